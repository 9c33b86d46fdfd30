"""Tests of vp_jupyter.inputs: the case format, validation (every rule of the module docstring), the SI engine
cases (spec §5.1, §5.2, §6.1, §12) and agreement with the reference goldens' input tables."""
import copy
import functools
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import complete_case, minimal_case
from conftest import REFERENCE, require_shared
from vp_jupyter.engine.seawater import density_st
from vp_jupyter.engine.types import MISSING, EngineCase
from vp_jupyter.inputs import (AMBIENT_FIELDS, DIFFUSER_FIELDS, MODEL_FIELDS, AmbientLayer, AmbientProfile,
                               AmbientSeries, Case, CaseError, Diffuser, DiffuserSeries, ModelSettings,
                               Timeseries, json_schema)
from vp_jupyter.units import from_si, parse_unit, to_si

# without ../shared the reference tests skip, or fail in CI (conftest.require_shared via `reference_dir`)
needs_reference = pytest.mark.usefixtures("reference_dir")
CASE_FILES = sorted((REFERENCE / "cases").glob("*.json")) or [REFERENCE / "cases" / "(reference cases missing)"]

FT, KTS, MGD = 3.2808, 1.94384, 22.824465


base_case = functools.partial(minimal_case, "base")      # a small valid case in the JSON layout


def with_changes(**sections):
    """base_case() with keys set: with_changes(diffuser_values={...}, model={...}, ...)."""
    case = base_case()
    for key, changes in sections.items():
        if key == "diffuser_values":
            case["diffuser"]["values"].update(changes)
        elif key == "diffuser_units":
            case["diffuser"]["units"].update(changes)
        elif key == "ambient":
            case["ambient"].update(changes)
        else:
            case.setdefault(key, {}).update(changes)
    return case


def problems_of(case):
    with pytest.raises(CaseError) as err:
        Case.load(case)
    return err.value.problems


def assert_problem(case, *fragments):
    """The case is rejected and one problem contains every fragment."""
    found = problems_of(case)
    assert any(all(f in p for f in fragments) for p in found), found
    return found


def one(case) -> EngineCase:
    engine_cases = Case.load(case).engine_cases()
    assert len(engine_cases) == 1
    return engine_cases[0]


# ------------------------------------------------------------------------------------------ a valid case

def test_base_case_engine_inputs_in_si():
    ec = one(base_case())
    d = ec.diffuser
    assert (d.diameter, d.depth, d.effluent_flow, d.num_ports) == (0.1, 20.0, 0.1, 1)
    assert d.concentration == pytest.approx(1e-4)
    assert d.port_spacing == MISSING                           # spec §6.1: single port
    assert d.isopleth_type == "concentration" and d.isopleth == 0.0
    assert d.offset_x == d.offset_y == 0.0                     # missing diffuser values are 0
    amb = ec.ambient
    assert amb.bottom_depth == 30.0 and not amb.decay_is_light
    assert set(amb.profiles) == set(AMBIENT_FIELDS) - {"z"}
    assert amb.profiles["temperature"].depths == (0.0, 30.0)
    assert amb.profiles["temperature"].values == (15.0, 12.0)
    assert amb.profiles["salinity"].values == (33.0, 33.0)    # spec §5.2 CONSTANT bottom fill
    for name in ("bg_conc", "decay_rate", "ff_velocity", "ff_dir", "ff_diff_coeff"):
        assert amb.profiles[name].values == (0.0, 0.0)        # defaults when no layer gives them
    assert ec.settings.tpb_channel_width == 1e6 and ec.settings.max_dilution == 10000.0


def test_python_construction_equals_the_dict_form():
    case = Case(
        name="base",
        diffuser=Diffuser(diameter=0.1, depth=20, effluent_flow=0.1, concentration=100, temperature=25,
                          salinity=0, vertical_angle=10, horizontal_angle=0, acute_mixing_zone=50,
                          units={"concentration": "ppm"}),
        ambient=AmbientProfile(layers=[AmbientLayer(0, current_speed=0.1, current_dir=0, salinity=33, temperature=15),
                                       AmbientLayer(30, temperature=12)]),
        model=ModelSettings())
    assert case == Case.load(base_case())
    assert case.engine_cases() == Case.load(base_case()).engine_cases()
    assert case.model.max_dilution == 10000 and case.model.similarity_profile == "DEFAULT"


def test_parts_are_immutable_and_replace_revalidates():
    case = Case.load(base_case())
    with pytest.raises(Exception):
        case.diffuser.diameter = 2.0
    bigger = case.replace(diffuser=case.diffuser.replace(diameter=0.2))
    assert bigger.engine_cases()[0].diffuser.diameter == 0.2
    with pytest.raises(CaseError, match=r"diffuser.diameter: must be > 0 \(got -1\)"):
        case.replace(diffuser=case.diffuser.replace(diameter=-1))
    with pytest.raises(TypeError):
        case.replace(colour="red")


def test_load_accepts_path_str_dict_and_case(tmp_path):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(base_case()))
    case = Case.load(path)
    assert Case.load(str(path)) == case == Case.load(base_case())
    assert Case.load(case) is case


def test_load_errors_are_case_errors(tmp_path):
    with pytest.raises(CaseError, match="cannot read the case file"):
        Case.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CaseError, match="not a valid JSON case file"):
        Case.load(bad)
    with pytest.raises(CaseError, match="expected a path, a dict or a Case"):
        Case.load(42)
    with pytest.raises(CaseError, match="case: must be an object"):
        Case.from_dict([1, 2])


def test_to_dict_round_trips():
    case = Case.load(with_changes(model={"similarity_profile": "power_3_2"}, diffuser_units={"depth": "FEET"}))
    data = case.to_dict()
    assert data["model"]["similarity_profile"] == "POWER_3_2"    # canonical spellings
    assert data["diffuser"]["units"]["depth"] == "ft"
    assert json.loads(json.dumps(data)) == data                 # plain JSON
    assert Case.load(data) == case
    assert Case.load(data).engine_cases() == case.engine_cases()


def test_units_maps_fill_in_si_defaults():
    case = Case.load(with_changes(ambient={"units": {"z": "ft", "current_speed": "kt"}}))
    assert case.diffuser_units["diameter"] == parse_unit("m", "length")
    assert case.diffuser_units["concentration"].label == "ppm"
    assert case.diffuser_units["isopleth"].label == "ppm"        # unit of the isopleth value
    assert case.isopleth_type == "concentration"
    assert set(case.diffuser_units) == set(DIFFUSER_FIELDS)
    assert set(case.ambient_units) == set(AMBIENT_FIELDS)
    assert case.ambient_units["z"].label == "ft" and case.ambient_units["current_speed"].label == "kts"
    assert case.ambient_units["decay_rate"].label == "s-1"


def test_numeric_strings_and_whole_floats_are_accepted():
    ec = one(with_changes(diffuser_values={"diameter": " 0.1 ", "num_ports": "2.0", "port_spacing": "1e1"}))
    assert ec.diffuser.diameter == 0.1 and ec.diffuser.num_ports == 2 and ec.diffuser.port_spacing == 10.0
    assert isinstance(ec.diffuser.num_ports, int)


# -------------------------------------------------------------------------------------- validation rules

@pytest.mark.parametrize("bad", [float("nan"), "nan", "NaN", float("inf"), "-inf", "Infinity"])
def test_nan_and_inf_are_rejected(bad):
    assert_problem(with_changes(diffuser_values={"diameter": bad}), "diffuser.diameter: must be a finite number")


def test_nan_in_a_layer_and_in_the_model():
    case = base_case()
    case["ambient"]["layers"][1]["temperature"] = float("nan")
    case["model"]["aspiration_coeff"] = "inf"
    found = problems_of(case)
    assert "ambient.layers[1].temperature: must be a finite number (got nan)" in found
    assert "model.aspiration_coeff: must be a finite number (got 'inf')" in found


@pytest.mark.parametrize("bad", ["abc", [1], {"a": 1}, True])
def test_non_numeric_values_are_rejected(bad):
    assert_problem(with_changes(diffuser_values={"effluent_flow": bad}), "diffuser.effluent_flow: must be a number")


@pytest.mark.parametrize("bad", [0, -1])
def test_diameter_must_be_positive(bad):
    found = problems_of(with_changes(diffuser_values={"diameter": bad}))
    assert found == [f"diffuser.diameter: must be > 0 (got {bad})"]


def test_effluent_flow_must_be_positive():
    assert_problem(with_changes(diffuser_values={"effluent_flow": -0.5}), "diffuser.effluent_flow: must be > 0",
                   "(got -0.5)")
    assert_problem(with_changes(diffuser_values={"effluent_flow": 0}), "diffuser.effluent_flow: must be > 0",
                   "(got 0)")


@pytest.mark.parametrize("bad, message", [(0, "must be a positive whole number (got 0)"),
                                          (-2, "must be a positive whole number (got -2)"),
                                          (1.5, "must be a whole number (got 1.5)"),
                                          ("2.5", "must be a whole number (got '2.5')")])
def test_num_ports_must_be_a_positive_integer(bad, message):
    assert_problem(with_changes(diffuser_values={"num_ports": bad, "port_spacing": 2}), f"diffuser.num_ports: {message}")


def test_several_ports_need_a_spacing():
    assert_problem(with_changes(diffuser_values={"num_ports": 4}), "diffuser.port_spacing: must be > 0 when num_ports > 1",
                   "(got 0)")
    assert_problem(with_changes(diffuser_values={"num_ports": 4, "port_spacing": -3}),
                   "diffuser.port_spacing: must be between 0 and 1000 m (got -3)")
    ec = one(with_changes(diffuser_values={"num_ports": 4, "port_spacing": 3}, diffuser_units={"port_spacing": "ft"}))
    assert ec.diffuser.num_ports == 4 and ec.diffuser.port_spacing == pytest.approx(3 / FT)


@pytest.mark.parametrize("bad", [0, -5])
def test_zero_concentration_is_refused(bad):
    assert_problem(with_changes(diffuser_values={"concentration": bad}), "diffuser.concentration: must be > 0",
                   "model refuses", f"(got {bad} ppm)")


def test_required_diffuser_values():
    case = base_case()
    for name in ("diameter", "depth", "effluent_flow", "concentration"):
        del case["diffuser"]["values"][name]
    found = problems_of(case)
    for name in ("diameter", "depth", "effluent_flow", "concentration"):
        assert f"diffuser.{name}: is required" in found


def test_negative_salinity_decay_and_background_are_rejected():
    case = base_case()
    case["diffuser"]["values"]["salinity"] = -1
    case["ambient"]["layers"][0].update(decay_rate=-0.1, bg_conc=-2, salinity=-3)
    found = problems_of(case)
    assert "diffuser.salinity: must be between 0 and 300 PSU (got -1)" in found
    assert "ambient.layers[0].decay_rate: must be between 0 and 0.01 s-1 (got -0.1)" in found
    assert "ambient.layers[0].bg_conc: must be between 0 and 1e+12 kg/kg (got -2)" in found
    assert "ambient.layers[0].salinity: must be between 0 and 300 PSU (got -3)" in found


def test_negative_sigma_t_is_fine_but_below_fresh_water_is_not():
    # sigmaT of brackish effluent is negative; it converts through the S,T equation of state (spec §13.5)
    ec = one(with_changes(diffuser_values={"salinity": density_st(2.0, 25.0) - 1000.0, "temperature": 25},
                          diffuser_units={"salinity": "sigmaT"}))
    assert ec.diffuser.salinity == pytest.approx(2.0, abs=1e-9)
    assert_problem(with_changes(diffuser_values={"salinity": -10.0}, diffuser_units={"salinity": "sigmaT"}),
                   "diffuser.salinity: no salinity in [0, 120] psu has density 990.0 kg/m3")


@pytest.mark.parametrize("value, unit", [(250, "F"), (-10, "C"), (400, "K"), (101, "C")])
def test_temperature_sanity_range_after_conversion(value, unit):
    assert_problem(with_changes(diffuser_values={"temperature": value}, diffuser_units={"temperature": unit}),
                   "diffuser.temperature: must be between -2 and 100 °C", "sanity", f"(got {value}")


def test_ambient_temperature_sanity_range():
    case = base_case()
    case["ambient"]["units"] = {"temperature": "F"}
    case["ambient"]["layers"][0]["temperature"] = 20            # -6.7 °C
    case["ambient"]["layers"][1]["temperature"] = 50
    assert_problem(case, "ambient.layers[0].temperature: must be between -2 and 100 °C", "(got 20 °F)")


@pytest.mark.parametrize("layers", [[], [{"z": 0, "salinity": 33, "temperature": 15, "current_speed": 0, "current_dir": 0}]])
def test_at_least_two_layers(layers):
    assert_problem(with_changes(ambient={"layers": layers}), "ambient.layers: at least 2 layers are needed",
                   f"(got {len(layers)})")


def test_layers_must_be_a_list_and_ambient_is_required():
    assert_problem(with_changes(ambient={"layers": "0,30"}), "ambient.layers: must be a list of layers")
    case = base_case()
    del case["ambient"]
    assert_problem(case, "ambient: is required")


def test_depths_must_increase():
    case = base_case()
    case["ambient"]["layers"].append({"z": 5})
    case["ambient"]["layers"].append({"z": 5})
    found = problems_of(case)
    assert "ambient.layers[2].z: depths must increase (got 5 after 30)" in found
    assert "ambient.layers[3].z: depths must increase (got 5 after 5)" in found


def test_surface_depth_equal_to_bottom_depth():
    case = base_case()
    case["ambient"]["layers"][1]["z"] = 0
    assert problems_of(case) == ["ambient.layers[1].z: depths must increase (got 0 after 0)"]


def test_heights_must_decrease_from_the_surface_down():
    case = with_changes(ambient={"z_is_depth": False})
    assert_problem(case, "ambient.layers[1].z: heights above the bottom must decrease from the surface down",
                   "(got 30 after 0)")


def test_negative_z_and_missing_z():
    case = base_case()
    case["ambient"]["layers"][0]["z"] = -1
    assert_problem(case, "ambient.layers[0].z: must be >= 0 (got -1)")
    case = base_case()
    del case["ambient"]["layers"][1]["z"]
    assert_problem(case, "ambient.layers[1].z: is required")


@pytest.mark.parametrize("depth", [0, -4])
def test_port_depth_must_be_positive(depth):
    assert_problem(with_changes(diffuser_values={"depth": depth}), "diffuser.depth: must be > 0", f"(got {depth})")


def test_port_below_the_deepest_layer_sets_the_bottom_depth():
    # spec §5.1: H = port depth raised to the deepest layer; a deeper port simply sets H
    ec = one(with_changes(diffuser_values={"depth": 45}))
    assert ec.ambient.bottom_depth == 45.0
    assert ec.ambient.profiles["temperature"].depths == (0.0, 30.0)
    ec = one(with_changes(diffuser_values={"depth": 10}))
    assert ec.ambient.bottom_depth == 30.0


def test_heights_are_measured_from_the_port_at_the_bottom():
    case = with_changes(ambient={"z_is_depth": False})
    case["ambient"]["layers"] = [{"z": 20, "current_speed": 0.1, "current_dir": 0, "salinity": 33, "temperature": 15},
                                 {"z": 5, "temperature": 12}, {"z": 0}]
    ec = one(case)
    assert ec.ambient.bottom_depth == 20.0                          # H = port depth
    assert ec.ambient.profiles["temperature"].depths == (0.0, 15.0, 20.0)
    case["ambient"]["layers"][0]["z"] = 25
    assert_problem(case, "ambient.layers[0].z: a height above the bottom must be <= the bottom depth",
                   "(got 25 m)")


def test_required_ambient_variables():
    case = base_case()
    del case["ambient"]["layers"][0]["salinity"]
    assert_problem(case, "ambient.layers: no layer gives salinity")


def test_far_field_values_needed_only_with_brooks():
    assert_problem(with_changes(model={"brooks_far_field": True}),
                   "ambient.layers: no layer gives ff_velocity (needed with brooks_far_field)")
    case = with_changes(model={"brooks_far_field": True})
    case["ambient"]["layers"][0].update(ff_velocity=0.1, ff_dir=90, ff_diff_coeff=3e-4)
    ec = one(case)
    assert ec.ambient.profiles["ff_velocity"].values == (0.1, 0.1)


@pytest.mark.parametrize("where, unit, message", [
    ("diffuser", {"diameter": "furlongs"},
     "diffuser.units.diameter: unknown unit 'furlongs' for a length; expected one of m, cm, ft, in, ftm"),
    ("diffuser", {"effluent_flow": "ppm"}, "diffuser.units.effluent_flow: 'ppm' is a concentration unit, not a flow rate unit"),
    ("ambient", {"salinity": "ppm"}, "ambient.units.salinity: 'ppm' is a concentration unit, not a salinity unit"),
    ("ambient", {"z": "kts"}, "ambient.units.z: 'kts' is a speed unit, not a length unit"),
    ("ambient", {"decay_rate": "per fortnight"}, "ambient.units.decay_rate: unknown unit 'per fortnight'"),
])
def test_unknown_and_wrong_kind_units(where, unit, message):
    case = base_case()
    case[where].setdefault("units", {}).update(unit)
    assert_problem(case, message)


def test_unit_synonyms_across_the_case():
    case = with_changes(diffuser_units={"horizontal_angle": "Surv-deg", "depth": "fath", "effluent_flow": "MGD"},
                        ambient={"units": {"current_speed": "kt", "current_dir": "N-deg", "z": "FEET"}})
    ec = one(case)
    assert ec.diffuser.horizontal_angle == 90.0                   # compass north -> maths 90°
    assert ec.diffuser.depth == pytest.approx(20 / 0.5468)
    assert ec.diffuser.effluent_flow == pytest.approx(0.1 / MGD)
    assert ec.ambient.profiles["current_speed"].values[0] == pytest.approx(0.1 / KTS)
    assert ec.ambient.profiles["current_dir"].values[0] == 90.0


@pytest.mark.parametrize("name, bad, allowed", [
    ("max_reversals", "THIRD_TRAP", "INITIAL_TRAP_LEVEL, MAX_RISE_OR_FALL, SECOND_TRAP_LEVEL, SECOND_MAX_RISE_OR_FALL"),
    ("similarity_profile", "power", "DEFAULT, POWER_3_2, GAUSSIAN"),
    ("farfield_diffusivity", "", "CONSTANT, POWER_4_3"),
    ("bacteria_model", "mancini", "COLIFORM_MANCINI, COLIFORM_301H, ENTEROCCOUS_301H"),
    ("model", "UM2", "UM3"),
])
def test_unknown_enum_names_list_the_allowed_ones(name, bad, allowed):
    assert_problem(with_changes(model={name: bad}), f"model.{name}: must be one of {allowed} (got {bad!r})")


def test_enum_names_are_case_insensitive():
    case = Case.load(with_changes(model={"max_reversals": "initial_trap_level"}))
    assert case.model.max_reversals == "INITIAL_TRAP_LEVEL"


def test_extrapolation_modes():
    case = with_changes(ambient={"extrapolation": {"temperature": {"surface": "linear_to_zero", "bottom": "EXTRAPOLATED"}}})
    ec = one(case)
    assert (ec.ambient.profiles["temperature"].surface, ec.ambient.profiles["temperature"].bottom) == \
        ("LINEAR_TO_ZERO", "EXTRAPOLATED")
    assert_problem(with_changes(ambient={"extrapolation": {"salinity": {"surface": "LINEAR"}}}),
                   "ambient.extrapolation.salinity.surface: must be one of CONSTANT, LINEAR_TO_ZERO, EXTRAPOLATED")
    assert_problem(with_changes(ambient={"extrapolation": {"salinty": {}}}), "ambient.extrapolation.salinty: unknown key")


@pytest.mark.parametrize("path, mutate", [
    ("case.colour", lambda c: c.update(colour="red")),
    ("model.max_dillution", lambda c: c["model"].update(max_dillution=5)),
    ("diffuser.diamter", lambda c: c["diffuser"]["values"].update(diamter=0.1)),
    ("diffuser.units.temprature", lambda c: c["diffuser"]["units"].update(temprature="C")),
    ("diffuser.value", lambda c: c["diffuser"].update(value={})),
    ("ambient.z_is_dept", lambda c: c["ambient"].update(z_is_dept=True)),
    ("ambient.layers[1].temp", lambda c: c["ambient"]["layers"][1].update(temp=3)),
    ("ambient.units.speed", lambda c: c["ambient"].update(units={"speed": "m/s"})),
    ("output.graphs", lambda c: c.update(output={"graphs": True})),
    ("timeseries.stop_time", lambda c: c.update(timeseries={"end_time": 1, "time_increment": 1, "stop_time": 2})),
])
def test_unknown_keys_are_rejected_with_the_allowed_keys(path, mutate):
    case = base_case()
    mutate(case)
    assert_problem(case, f"{path}: unknown key; allowed: ")


def test_isopleth_types_and_conversions():
    assert_problem(with_changes(diffuser_units={"isopleth": "colour"}),
                   "diffuser.units.isopleth: unknown isopleth type 'colour'; expected one of concentration, "
                   "salinity, temperature, speed")
    assert_problem(with_changes(diffuser_units={"isopleth": "ppm"}),
                   "diffuser.units.isopleth: 'ppm' is a concentration unit, not an isopleth type")
    # concentration: the diffuser concentration unit
    assert one(with_changes(diffuser_values={"isopleth": 60})).diffuser.isopleth == pytest.approx(6e-5)
    # temperature: the diffuser temperature unit
    ec = one(with_changes(diffuser_values={"isopleth": 68, "temperature": 77},
                          diffuser_units={"isopleth": "temp", "temperature": "F"}))
    assert ec.diffuser.isopleth_type == "temperature" and ec.diffuser.isopleth == pytest.approx(20.0)
    # speed: the ambient current speed unit
    ec = one(with_changes(diffuser_values={"isopleth": 2}, diffuser_units={"isopleth": "SPEED"},
                          ambient={"units": {"current_speed": "cm/s"}}))
    assert ec.diffuser.isopleth == pytest.approx(0.02)
    # salinity: the diffuser salinity unit, converted at the effluent temperature
    ec = one(with_changes(diffuser_values={"isopleth": density_st(30.0, 25.0), "salinity": 1000.0},
                          diffuser_units={"isopleth": "salinity", "salinity": "kg/m3"}))
    assert ec.diffuser.isopleth == pytest.approx(30.0, abs=1e-9)
    assert_problem(with_changes(diffuser_values={"isopleth": -1}), "diffuser.isopleth: a concentration isopleth must be >= 0",
                   "(got -1 ppm)")


@pytest.mark.parametrize("value, unit", [(95, "deg"), (-91, "deg"), (2.5, "rad")])
def test_vertical_angle_range(value, unit):
    assert_problem(with_changes(diffuser_values={"vertical_angle": value}, diffuser_units={"vertical_angle": unit}),
                   "diffuser.vertical_angle: must be between -90 and 90 deg", f"(got {value}")


def test_vertical_angle_wraps_and_compass_units_are_not_allowed():
    ec = one(with_changes(diffuser_values={"vertical_angle": -45}))
    assert ec.diffuser.vertical_angle == 315.0                       # spec §2: wrapped to [0, 360)
    assert_problem(with_changes(diffuser_units={"vertical_angle": "s-deg"}),
                   "diffuser.units.vertical_angle: 's-deg' is not allowed for vertical_angle; expected one of deg, rad")


def test_mixing_zone_distance_must_not_be_negative():
    assert_problem(with_changes(diffuser_values={"acute_mixing_zone": -1}), "diffuser.acute_mixing_zone: must be between 0 and 1e+07 m (got -1)")
    assert one(with_changes(diffuser_values={"acute_mixing_zone": 0})).diffuser.acute_mixing_zone == 0.0


@pytest.mark.parametrize("name, bad, message", [
    ("max_dilution", 0, "must be > 0 (got 0)"),
    ("max_dilution", -10, "must be > 0 (got -10)"),
    ("write_step_freq", 0, "must be between 1 and 1e+06 (got 0)"),
    ("write_step_freq", 2.5, "must be a whole number (got 2.5)"),
    ("contraction_coeff", 0, "must be > 0 (got 0)"),
    ("contraction_coeff", 0.05, "must be between 0.1 and 1 (got 0.05)"),
    ("contraction_coeff", 1.01, "must be between 0.1 and 1 (got 1.01)"),
    ("aspiration_coeff", 0, "must be > 0 (got 0)"),
    ("aspiration_coeff", -0.1, "must be > 0 (got -0.1)"),
    ("ff_increment", 0, "must be > 0 (got 0)"),
    ("tpb_channel_width", -1, "must be > 0 (got -1)"),
    ("current_vector_averaging", "yes", "must be true or false (got 'yes')"),
    ("stop_on_bottom_hit", 1, "must be true or false (got 1)"),
])
def test_model_parameter_bounds(name, bad, message):
    assert_problem(with_changes(model={name: bad}), f"model.{name}: {message}")


def test_model_parameter_good_values():
    case = Case.load(with_changes(model={"contraction_coeff": 1.0, "write_step_freq": "50", "stop_on_bottom_hit": "true"}))
    assert case.model.contraction_coeff == 1.0 and case.model.write_step_freq == 50
    assert case.model.stop_on_bottom_hit is True
    assert case.engine_cases()[0].settings.write_step_freq == 50.0


@pytest.mark.parametrize("coast_bin", [0, 9, 100, 50.5])
def test_tpb_coast_bin_must_be_10_to_99_when_tpb_is_on(coast_bin):
    message = "must be a whole number" if coast_bin == 50.5 else "must be an integer 10..99 when tidal_pollution_buildup is on"
    assert_problem(with_changes(model={"tidal_pollution_buildup": True, "tpb_coast_bin": coast_bin}),
                   f"model.tpb_coast_bin: {message}")


def test_tpb_channel_width_only_counts_with_tpb():
    ec = one(with_changes(model={"tidal_pollution_buildup": True, "tpb_coast_bin": 65, "tpb_channel_width": 39.6}))
    assert ec.settings.tpb_channel_width == 39.6 and ec.settings.tpb_coast_bin == 65
    ec = one(with_changes(model={"tpb_channel_width": 39.6}))               # spec §1.1: forced to 1e6
    assert ec.settings.tpb_channel_width == 1e6


def test_tpb_and_brooks_are_exclusive():
    case = with_changes(model={"tidal_pollution_buildup": True, "tpb_coast_bin": 65, "brooks_far_field": True})
    case["ambient"]["layers"][0].update(ff_velocity=0.1, ff_dir=0, ff_diff_coeff=3e-4)
    assert problems_of(case) == ["model.brooks_far_field: cannot be combined with tidal_pollution_buildup "
                                 "(choose one far-field model) (got true)"]


def test_shore_vector_needs_a_distance():
    assert_problem(with_changes(model={"use_shore_vector": True, "dist_to_shore": 0}),
                   "model.dist_to_shore: must be > 0 m when use_shore_vector is on (got 0)")


def test_all_problems_are_listed_in_one_error():
    case = base_case()
    case["diffuser"]["values"].update(diameter=-1, concentration=0, num_ports=3)
    case["diffuser"]["units"]["depth"] = "furlongs"
    case["ambient"]["layers"][1]["z"] = 0
    case["ambient"]["layers"][0]["decay_rate"] = -1
    case["model"].update(max_reversals="FOO", write_step_freq=0)
    case["colour"] = "red"
    with pytest.raises(CaseError) as err:
        Case.load(case)
    found = err.value.problems
    expected = ["diffuser.diameter: must be > 0 (got -1)", "diffuser.concentration: must be > 0",
                "diffuser.port_spacing: must be > 0 when num_ports > 1", "diffuser.units.depth: unknown unit 'furlongs'",
                "ambient.layers[1].z: depths must increase (got 0 after 0)",
                "ambient.layers[0].decay_rate: must be between 0 and 0.01 s-1 (got -1)", "model.max_reversals: must be one of",
                "model.write_step_freq: must be between 1 and 1e+06 (got 0)", "case.colour: unknown key"]
    for fragment in expected:
        assert any(fragment in p for p in found), (fragment, found)
        assert fragment in str(err.value)
    assert str(err.value).startswith(f"invalid case: {len(found)} problems")


def test_case_error_from_a_list_and_a_string():
    assert CaseError(["a: b", "c: d"]).problems == ["a: b", "c: d"]
    assert CaseError("a: b").problems == ["a: b"] and "a: b" in str(CaseError("a: b"))
    assert isinstance(CaseError("x"), ValueError)


# ------------------------------------------------------------------------------------------ unit handling

def test_ambient_salinity_density_units_use_the_layer_temperature():
    case = base_case()
    case["ambient"]["units"] = {"salinity": "kg/m3"}
    case["ambient"]["layers"][0]["salinity"] = density_st(33.0, 15.0)
    case["ambient"]["layers"][1]["salinity"] = density_st(34.0, 12.0)
    ec = one(case)
    assert ec.ambient.profiles["salinity"].values == pytest.approx((33.0, 34.0), abs=1e-9)


def test_conductivity_salinity_in_layers():
    case = base_case()
    case["ambient"]["units"] = {"salinity": "mmhos/cm"}
    conductivity = from_si(33.0, parse_unit("mmhos/cm", "salinity"), temperature_c=15.0)
    case["ambient"]["layers"][0]["salinity"] = conductivity
    ec = one(case)
    assert ec.ambient.profiles["salinity"].values[0] == pytest.approx(33.0, abs=1e-9)
    # the bottom layer is filled with the same conductivity (spec §5.2) and converted at 12 °C
    expected = to_si(conductivity, parse_unit("mmhos/cm", "salinity"), temperature_c=12.0)
    assert ec.ambient.profiles["salinity"].values[1] == pytest.approx(expected)
    assert expected > 33.0                        # the same conductivity in colder water is saltier


def test_decay_units():
    case = base_case()
    case["ambient"]["units"] = {"decay_rate": "T90hr"}
    case["ambient"]["layers"][0]["decay_rate"] = 2.0
    assert one(case).ambient.profiles["decay_rate"].values[0] == pytest.approx(math.log(10) / 7200)
    case["ambient"]["layers"][0]["decay_rate"] = 0.0
    assert_problem(case, "ambient.layers[0].decay_rate: a T90 time must be > 0 hours (got 0.0)")
    case["ambient"]["units"] = {"decay_rate": "ly/hr"}
    case["ambient"]["layers"][0]["decay_rate"] = 300.0
    ec = one(case)
    assert ec.ambient.decay_is_light and ec.ambient.profiles["decay_rate"].values[0] == 300.0


def test_filled_values_are_checked_too():
    case = base_case()
    case["ambient"]["extrapolation"] = {"temperature": {"bottom": "EXTRAPOLATED"}}
    case["ambient"]["layers"] = [{"z": 0, "current_speed": 0.1, "current_dir": 0, "salinity": 33, "temperature": 15},
                                 {"z": 10, "temperature": 5}, {"z": 40}]
    assert_problem(case, "ambient.layers[2].temperature: filled value must be between -2 and 100 °C", "(got -25)")


# ------------------------------------------------------------------------------------------- time series

def series_case():
    case = base_case()
    del case["diffuser"]["values"]["effluent_flow"]
    case["diffuser"]["units"]["effluent_flow"] = "m3/s"
    case["timeseries"] = {
        "start_time": 0, "end_time": 3, "time_increment": 1, "units": "hr",
        "diffuser": {"effluent_flow": {"increment_hours": 1, "units": "MGD", "csv": "1\n2\n3\n"}},
        "ambient": {"current_speed": {"increment_hours": 2, "units": "cm/s", "depth_units": "ft", "z_is_depth": True,
                                      "csv": "0,120\n10,5\n20,6\n"}},
    }
    return case


def test_timeseries_cases_and_rows():
    case = Case.load(series_case())
    assert case.case_times == [0.0, 3600.0, 7200.0, 10800.0]
    ecs = case.engine_cases()
    # spec §12: row floor(t / increment) mod rows; the series' unit replaces the field's unit
    assert [ec.diffuser.effluent_flow * MGD for ec in ecs] == pytest.approx([1, 2, 3, 1])
    assert case.diffuser_units["effluent_flow"].label == "MGD"
    speeds = [ec.ambient.profiles["current_speed"] for ec in ecs]
    assert [p.values for p in speeds] == [pytest.approx((0.10, 0.05))] * 2 + [pytest.approx((0.20, 0.06))] * 2
    # ambient series keep their own depth list, in their own depth units (project fix, spec §13)
    assert speeds[0].depths == pytest.approx((0.0, 120 / FT))
    assert ecs[0].ambient.bottom_depth == pytest.approx(120 / FT)       # spec §5.1: raised by the series
    table = case.layer_table(2)                                         # layers filled from the series (§12)
    assert [row["current_speed"] for row in table] == pytest.approx([20.0, 20 + (30 / (120 / FT)) * (6 - 20)])


def test_timeseries_start_cycles_and_fractional_increments():
    case = series_case()
    case["timeseries"].update(start_time=2, end_time=5)
    case["timeseries"]["diffuser"]["effluent_flow"]["increment_hours"] = 0.5
    loaded = Case.load(case)
    # t = 2, 3, 4, 5 h -> rows 4, 6, 8, 10 mod 3 -> 1, 0, 2, 1
    assert [ec.diffuser.effluent_flow * MGD for ec in loaded.engine_cases()] == pytest.approx([2, 1, 3, 2])


def test_timeseries_heights_and_port_depth_series():
    case = series_case()
    case["ambient"]["z_is_depth"] = False
    case["ambient"]["layers"] = [{"z": 20, "current_speed": 0.1, "current_dir": 0, "salinity": 33, "temperature": 15},
                                 {"z": 0, "temperature": 12}]
    case["timeseries"]["ambient"]["current_speed"].update(depth_units="m", z_is_depth=False, csv="20,0\n10,5\n")
    case["timeseries"]["diffuser"]["depth"] = {"increment_hours": 1, "csv": "20\n20\n20\n20\n"}
    del case["diffuser"]["values"]["depth"]
    ecs = Case.load(case).engine_cases()
    assert ecs[0].diffuser.depth == 20.0
    assert ecs[0].ambient.profiles["current_speed"].depths == (0.0, 20.0)
    assert ecs[0].ambient.profiles["current_speed"].values == pytest.approx((0.1, 0.05))


def test_python_built_timeseries():
    case = Case.load(series_case())
    again = case.replace(timeseries=Timeseries(
        start_time=0, end_time=3, time_increment=1, units="hr",
        diffuser={"effluent_flow": DiffuserSeries(csv="1\n2\n3\n", increment_hours=1, units="MGD")},
        ambient={"current_speed": AmbientSeries(csv="0,120\n10,5\n20,6\n", increment_hours=2, units="cm/s",
                                                depth_units="ft", z_is_depth=True)}))
    assert again.engine_cases() == case.engine_cases()
    assert Case.load(case.to_dict()).engine_cases() == case.engine_cases()


@pytest.mark.parametrize("mutate, message", [
    (lambda t: t.update(end_time=-1), "timeseries.end_time: must be between 0 and 1e+15 s (got -1)"),
    (lambda t: t.update(start_time=4), "timeseries.end_time: must be >= start_time (got 3)"),
    (lambda t: t.update(time_increment=0), "timeseries.time_increment: must be > 0 (got 0)"),
    (lambda t: t.pop("time_increment"), "timeseries.time_increment: is required"),
    (lambda t: t.update(units="fortnights"), "timeseries.units: unknown unit 'fortnights' for a time"),
    (lambda t: t.update(end_time=1e9, units="s", time_increment=1), "timeseries: too many cases; at most 100000"),
    (lambda t: t["diffuser"]["effluent_flow"].pop("increment_hours"),
     "timeseries.diffuser.effluent_flow.increment_hours: is required"),
    (lambda t: t["diffuser"]["effluent_flow"].update(increment_hours=0),
     "timeseries.diffuser.effluent_flow.increment_hours: must be > 0 (got 0)"),
    (lambda t: t["diffuser"]["effluent_flow"].update(csv="1\nabc\n"),
     "timeseries.diffuser.effluent_flow.csv line 2: must be a number (got 'abc')"),
    (lambda t: t["diffuser"]["effluent_flow"].update(csv="1\n\n2\n"),
     "timeseries.diffuser.effluent_flow.csv line 2: empty line inside the data"),
    (lambda t: t["diffuser"]["effluent_flow"].update(csv="1\n-2\n"),
     "timeseries.diffuser.effluent_flow.csv line 2: must be > 0 (got -2 MGD)"),
    (lambda t: t["diffuser"]["effluent_flow"].update(csv="1\nnan\n"),
     "timeseries.diffuser.effluent_flow.csv line 2: must be a finite number (got 'nan')"),
    (lambda t: t["diffuser"]["effluent_flow"].update(csv=""), "timeseries.diffuser.effluent_flow.csv: needs at least one row"),
    (lambda t: t["diffuser"]["effluent_flow"].update(units="ppm"),
     "timeseries.diffuser.effluent_flow.units: 'ppm' is a concentration unit, not a flow rate unit"),
    (lambda t: t["diffuser"].update(diameter={"csv": "1\n", "increment_hours": 1}), "timeseries.diffuser.diameter: unknown key"),
    (lambda t: t["ambient"].update(temprature={"csv": "1\n", "increment_hours": 1}), "timeseries.ambient.temprature: unknown key"),
    (lambda t: t["ambient"]["current_speed"].update(csv="0,50\n10\n"),
     "timeseries.ambient.current_speed.csv line 2: needs 2 values, one per level (got 1)"),
    (lambda t: t["ambient"]["current_speed"].update(csv="0\n10\n"),
     "timeseries.ambient.current_speed.csv line 1: needs at least 2 depth levels (got 1)"),
    (lambda t: t["ambient"]["current_speed"].update(csv="50,0\n10,5\n"),
     "timeseries.ambient.current_speed.csv line 1: depths must increase (got 0 after 50)"),
    (lambda t: t["ambient"]["current_speed"].update(csv="0,50\n"),
     "timeseries.ambient.current_speed.csv: needs a line of levels and at least one line of values"),
    (lambda t: t["ambient"]["current_speed"].update(csv="0,50\n-1,5\n"),
     "timeseries.ambient.current_speed.csv line 2: must be between 0 and 10 m/s (got -1 cm/s)"),
    (lambda t: t["ambient"]["current_speed"].update(depth_units="kts"),
     "timeseries.ambient.current_speed.depth_units: 'kts' is a speed unit, not a length unit"),
])
def test_timeseries_validation(mutate, message):
    case = series_case()
    mutate(case["timeseries"])
    assert_problem(case, message)


def test_salinity_series_in_sigma_t_uses_the_temperature_at_its_levels():
    case = series_case()
    case["timeseries"]["ambient"] = {"salinity": {"increment_hours": 1, "units": "sigmaT", "depth_units": "m",
                                                  "csv": f"0,30\n{density_st(33, 15) - 1000},{density_st(34, 12) - 1000}\n"}}
    ec = Case.load(case).engine_cases()[0]
    assert ec.ambient.profiles["salinity"].depths == (0.0, 30.0)
    assert ec.ambient.profiles["salinity"].values == pytest.approx((33.0, 34.0), abs=1e-9)


def test_timeseries_without_series_is_one_case():
    case = base_case()
    case["timeseries"] = {"start_time": 0, "end_time": 5, "time_increment": 1, "units": "hr"}
    loaded = Case.load(case)
    assert loaded.case_times == [0.0] and len(loaded.engine_cases()) == 1


def test_a_value_from_a_series_is_not_required_in_the_diffuser():
    case = series_case()
    del case["timeseries"]["diffuser"]
    assert_problem(case, "diffuser.effluent_flow: is required")


# ----------------------------------------------------------------------------------- JSON schema

def test_json_schema_covers_every_field():
    schema = json_schema()
    props = schema["properties"]
    assert set(props["model"]["properties"]) == set(MODEL_FIELDS)
    assert set(props["diffuser"]["properties"]["values"]["properties"]) == set(DIFFUSER_FIELDS)
    assert set(props["ambient"]["properties"]["layers"]["items"]["properties"]) == set(AMBIENT_FIELDS)
    assert props["model"]["properties"]["max_reversals"]["enum"] == [
        "INITIAL_TRAP_LEVEL", "MAX_RISE_OR_FALL", "SECOND_TRAP_LEVEL", "SECOND_MAX_RISE_OR_FALL"]
    assert props["diffuser"]["properties"]["values"]["properties"]["diameter"]["exclusiveMinimum"] == 0
    assert schema["additionalProperties"] is False
    json.dumps(schema)


@needs_reference
def test_json_schema_accepts_every_reference_case_and_rejects_typos():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    for path in CASE_FILES:
        errors = list(validator.iter_errors(json.loads(path.read_text())))
        assert not errors, (path.name, errors[:3])
    assert list(validator.iter_errors(with_changes(diffuser_values={"diamter": 1})))


# ------------------------------------------------------------------------------------- reference cases

@needs_reference
@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_every_reference_case_loads_and_round_trips(path):
    case = Case.load(path)
    engine_cases = case.engine_cases()
    assert len(engine_cases) == len(case.case_times) >= 1
    assert Case.load(case.to_dict()).engine_cases() == engine_cases


def _golden(name):
    return json.loads(require_shared(REFERENCE / "golden" / f"{name}.json").read_text())


@needs_reference
@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_input_tables_match_the_goldens(path):
    """Golden diffuser/ambient tables are in the input units: our SI values converted back must agree."""
    golden = _golden(path.stem)
    case = Case.load(path)
    engine_cases = case.engine_cases()
    diffuser_rows = golden["diffuser_table"]["rows"]
    ambient_rows = golden["ambient_table"]["rows"]
    if engine_cases and len(case.case_times) == 1 and not isinstance(ambient_rows[0][0], list):
        ambient_rows = [ambient_rows]
    if not isinstance(diffuser_rows[0], list):
        diffuser_rows = [diffuser_rows]
    assert len(diffuser_rows) == len(ambient_rows) == len(engine_cases)
    names = [h["name"] for h in golden["diffuser_table"]["headers"]]
    for row, ec in zip(diffuser_rows, engine_cases):
        for name, expected in zip(names, row):
            if name == "num_ports":
                assert ec.diffuser.num_ports == expected
                continue
            unit = case.diffuser_units[name]
            mine = from_si(getattr(ec.diffuser, name), unit, temperature_c=ec.diffuser.temperature)
            assert mine == pytest.approx(expected, rel=1e-9, abs=1e-9), name
    names = [h["name"] for h in golden["ambient_table"]["headers"]]
    for index, rows in enumerate(ambient_rows):
        table = case.layer_table(index)
        assert len(table) == len(rows)
        for layer, (row, mine) in enumerate(zip(rows, table)):
            for name, expected in zip(names, row):
                if name == "density":
                    continue
                if path.stem == "12_units_height_extrapolation" and name == "salinity" and layer == 0:
                    # spec §5.2 EXTRAPOLATED surface fill through (10 m, 30) and (20 m, 31) gives 29;
                    # the reference golden shows 30 (as CONSTANT would). Reported to the lead, not asserted.
                    continue
                assert mine[name] == pytest.approx(expected, rel=1e-9, abs=1e-12), (index, layer, name)


@needs_reference
def test_english_units_case_by_hand():
    """11_units_english_farfield: in/ft/MGD/°F/kts/s-deg/ppb/fathoms against hand-computed factors (spec §2)."""
    ec = one(json.loads((REFERENCE / "cases" / "11_units_english_farfield.json").read_text()))
    d = ec.diffuser
    assert d.diameter == pytest.approx(6 / 39.37)
    assert d.depth == pytest.approx(80 / FT)
    assert d.port_spacing == pytest.approx(20 / FT) and d.num_ports == 4
    assert d.acute_mixing_zone == pytest.approx(1000 / 0.5468)
    assert d.effluent_flow == pytest.approx(10 / MGD)
    assert d.temperature == pytest.approx(20.0)                      # 68 °F
    assert d.concentration == pytest.approx(5e-6)                    # 5000 ppb
    assert d.horizontal_angle == 90.0 and d.vertical_angle == 15.0   # 0 s-deg = north = 90° maths
    amb = ec.ambient
    assert amb.bottom_depth == pytest.approx(90 / FT)                # spec §5.1: deepest layer > port
    assert amb.profiles["current_speed"].depths == pytest.approx((0.0, 40 / FT, 90 / FT))
    assert amb.profiles["current_speed"].values == pytest.approx((0.3 / KTS, (0.3 - 0.1 * 40 / 90) / KTS, 0.2 / KTS))
    assert amb.profiles["current_dir"].values == (0.0, 0.0, 0.0)     # 90 s-deg = east = 0°
    assert amb.profiles["temperature"].values == pytest.approx((15.0, (55 - 32) * 5 / 9, 10.0))
    assert amb.profiles["ff_velocity"].values == pytest.approx((0.5 / FT,) * 3)
    assert amb.profiles["decay_rate"].values == (0.0, 0.0, 0.0)
    assert ec.settings.brooks_far_field and ec.settings.farfield_diffusivity == "POWER_4_3"


@needs_reference
def test_height_case_by_hand():
    """12_units_height_extrapolation: heights -> depths H − z with H = port depth (spec §5.1)."""
    case = Case.load(REFERENCE / "cases" / "12_units_height_extrapolation.json")
    ec = case.engine_cases()[0]
    assert ec.ambient.bottom_depth == 40.0
    assert ec.ambient.profiles["temperature"].depths == (0.0, 10.0, 20.0, 30.0, 40.0)
    assert ec.ambient.profiles["temperature"].values == pytest.approx((0.0, 17.0, 14.5, 12.0, 9.5))
    assert ec.ambient.profiles["current_speed"].values == pytest.approx((0.08, 0.07, 0.06, 0.05, 0.0))
    assert ec.diffuser.temperature == pytest.approx(27.0) and ec.diffuser.effluent_flow == pytest.approx(30 / 86.4)
    assert ec.diffuser.port_spacing == 3.0 and ec.diffuser.diameter == 0.25


# ------------------------------------------------------------------------------------------- fuzzing

_UNIT_STRINGS = st.sampled_from(["m", "ft", "ppm", "kts", "s-deg", "psu", "kg/m3", "sigmaT", "mmho/cm", "F", "K",
                                 "T90hr", "ly/hr", "d-1", "%", "MGD", "", "furlongs", "concent", "speed", "rad"])
_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.none(),
                    st.sampled_from(["nan", "1e3", " 2 ", "abc", "", "-0", "1e400", "0x10"]), st.booleans(),
                    st.integers(-10**400, 10**400), st.text(max_size=8),
                    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_PLACES = st.sampled_from(["diffuser", "model", "layer", "units_d", "units_a", "extrapolation", "timeseries",
                           "section", "series"])
_SECTIONS = ["model", "diffuser", "ambient", "timeseries", "output", "name"]


@settings(max_examples=int(__import__('os').environ.get('VP_FUZZ_EXAMPLES', 300)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_PLACES, st.integers(0, 40), st.one_of(_VALUES, _UNIT_STRINGS)), max_size=6))
def test_random_cases_load_or_raise_case_error(edits):
    case = series_case() if any(p in ("timeseries", "series") for p, _, _ in edits) else base_case()
    case = copy.deepcopy(case)
    diffuser_keys, model_keys, ambient_keys = list(DIFFUSER_FIELDS), list(MODEL_FIELDS), list(AMBIENT_FIELDS)
    for place, index, value in sorted(edits, key=lambda edit: edit[0] == "section"):   # whole sections last
        if place == "diffuser":
            case["diffuser"]["values"][diffuser_keys[index % len(diffuser_keys)]] = value
        elif place == "model":
            case["model"][model_keys[index % len(model_keys)]] = value
        elif place == "layer":
            layers = case["ambient"]["layers"]
            layers[index % len(layers)][ambient_keys[index % len(ambient_keys)]] = value
        elif place == "units_d":
            case["diffuser"]["units"][diffuser_keys[index % len(diffuser_keys)]] = value
        elif place == "units_a":
            case["ambient"].setdefault("units", {})[ambient_keys[index % len(ambient_keys)]] = value
        elif place == "extrapolation":
            var = ambient_keys[1 + index % (len(ambient_keys) - 1)]
            case["ambient"].setdefault("extrapolation", {})[var] = {"surface": value, "bottom": "EXTRAPOLATED"}
        elif place == "section":                     # a whole section replaced by a wrong type
            case[_SECTIONS[index % len(_SECTIONS)]] = value
        elif place == "series":
            series = case["timeseries"]["ambient"]["current_speed"]
            series[["csv", "increment_hours", "units", "depth_units", "z_is_depth"][index % 5]] = value
        else:
            keys = ["start_time", "end_time", "time_increment", "units"]
            case["timeseries"][keys[index % 4]] = value
    try:
        loaded = Case.load(case)
    except CaseError as err:
        assert err.problems and all(isinstance(p, str) and ": " in p for p in err.problems)
    else:
        for ec in loaded.engine_cases():
            for profile in ec.ambient.profiles.values():
                assert all(math.isfinite(v) for v in profile.values)
                assert list(profile.depths) == sorted(profile.depths)
            assert math.isfinite(ec.diffuser.diameter) and ec.diffuser.diameter > 0


_NUMBERS = st.one_of(st.floats(-1e6, 1e6), st.floats(allow_nan=False, allow_infinity=False), st.integers(-5, 200),
                     st.just(5e-324), st.none())


@settings(max_examples=int(__import__('os').environ.get('VP_FUZZ_EXAMPLES', 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(z=st.lists(st.one_of(st.floats(0, 1e4), st.just(5e-324), st.integers(0, 60)), min_size=2, max_size=5),
       columns=st.dictionaries(st.sampled_from(list(AMBIENT_FIELDS)[1:]), st.lists(_NUMBERS, min_size=5, max_size=5)),
       units=st.dictionaries(st.sampled_from(list(AMBIENT_FIELDS)), _UNIT_STRINGS),
       modes=st.dictionaries(st.sampled_from(list(AMBIENT_FIELDS)[1:]),
                             st.fixed_dictionaries({"surface": st.sampled_from(["CONSTANT", "LINEAR_TO_ZERO", "EXTRAPOLATED"]),
                                                    "bottom": st.sampled_from(["CONSTANT", "LINEAR_TO_ZERO", "EXTRAPOLATED"])})),
       z_is_depth=st.booleans(), port_depth=_NUMBERS)
def test_random_profiles_load_or_raise_case_error(z, columns, units, modes, z_is_depth, port_depth):
    case = base_case()
    layers = [{"z": value} for value in (sorted(z) if z_is_depth else sorted(z, reverse=True))]
    layers[0].update(current_speed=0.1, current_dir=0, salinity=33, temperature=15)
    for name, values in columns.items():
        for layer, value in zip(layers, values):
            layer[name] = value
    case["ambient"] = {"layers": layers, "units": units, "extrapolation": modes, "z_is_depth": z_is_depth}
    case["diffuser"]["values"]["depth"] = port_depth
    try:
        loaded = Case.load(case)
    except CaseError as err:
        assert err.problems
    else:
        ec = loaded.engine_cases()[0]
        for profile in ec.ambient.profiles.values():
            assert all(math.isfinite(v) for v in profile.values)
            assert all(b > a for a, b in zip(profile.depths, profile.depths[1:]))
            assert profile.depths[-1] <= ec.ambient.bottom_depth


# ------------------------------------------------------------------------------- ranges and precision

def test_a_bound_met_to_the_precision_given_is_accepted_as_the_bound() -> None:
    """π/2 written as 1.5708 rad is 90.0002°, and 28.4 °F is −2.0000000000000004 °C after conversion: both
    meet their bound to the precision they were written with, so they are accepted as the bound itself.
    A value past the bound at that precision, or written too coarsely to be read as rounded, is not."""
    def diffuser_of(values, units):
        return Case.load(with_changes(diffuser_values=values, diffuser_units=units)).engine_cases()[0].diffuser

    assert diffuser_of({"vertical_angle": 1.5708}, {"vertical_angle": "rad"}).vertical_angle == 90.0
    assert diffuser_of({"vertical_angle": -1.5708}, {"vertical_angle": "rad"}).vertical_angle == 270.0
    assert diffuser_of({"vertical_angle": "-1.5708"}, {"vertical_angle": "rad"}).vertical_angle == 270.0
    assert diffuser_of({"temperature": 28.4}, {"temperature": "F"}).temperature == -2.0
    assert diffuser_of({"vertical_angle": 1.5707}, {"vertical_angle": "rad"}).vertical_angle \
        == pytest.approx(1.5707 * 180.0 / math.pi)
    for angle in (1.5709, 1.6, 2):
        assert_problem(with_changes(diffuser_values={"vertical_angle": angle}, diffuser_units={"vertical_angle": "rad"}),
                       "diffuser.vertical_angle: must be between -90 and 90 deg", f"(got {angle} rad)")
    layer = with_changes()
    layer["ambient"]["layers"][0].update(temperature=-2.0001)
    assert_problem(layer, "ambient.layers[0].temperature: must be between -2 and 100")


@pytest.mark.parametrize("where, value", [
    ("diffuser.diameter", 1e-300), ("diffuser.diameter", 21.0), ("diffuser.effluent_flow", 1e308),
    ("diffuser.depth", 1e5), ("diffuser.salinity", 1e308), ("diffuser.concentration", 1e300),
    ("diffuser.num_ports", 1e12), ("diffuser.offset_x", -1e300), ("diffuser.horizontal_angle", 1e300),
    ("ambient.current_speed", 1e308), ("ambient.salinity", 1e308), ("ambient.decay_rate", 1.0),
    ("ambient.ff_diff_coeff", 1e10), ("ambient.current_dir", 1e300), ("model.aspiration_coeff", 1e-300),
    ("model.contraction_coeff", 1e-300), ("model.tpb_segment_length", 1e-300), ("model.ff_increment", 1e-9),
])
def test_values_outside_the_physical_range_are_rejected_naming_the_field(where, value) -> None:
    """Every field has a physically meaningful range (fields.py); before, a port of 1e-300 m crashed the
    model with ZeroDivisionError and a flow, current or salinity of 1e308 gave 2 001 rows of nulls."""
    section, name = where.split(".")
    if section == "diffuser":
        case, path = with_changes(diffuser_values={name: value}), f"diffuser.{name}:"
    elif section == "model":
        case, path = with_changes(model={name: value}), f"model.{name}:"
    else:
        case, path = with_changes(), f"ambient.layers[0].{name}:"
        case["ambient"]["layers"][0][name] = value
    spec = {"diffuser": DIFFUSER_FIELDS, "model": MODEL_FIELDS, "ambient": AMBIENT_FIELDS}[section][name]
    found = assert_problem(case, path, "must be")
    assert any(spec.bounds_text() in p for p in found), found


def test_too_many_ambient_layers_are_refused() -> None:
    from vp_jupyter.inputs.fields import LIMITS
    limit = LIMITS["ambient_layers"]
    case = with_changes()
    case["ambient"]["layers"] = [{"z": i * 0.01, "current_speed": 0.1, "current_dir": 0, "salinity": 33,
                                  "temperature": 15} for i in range(limit + 1)]
    assert problems_of(case) == [f"ambient.layers: at most {limit} layers are allowed (got {limit + 1} layers)"]
    case["ambient"]["layers"] = case["ambient"]["layers"][:limit]
    assert len(Case.load(case).engine_cases()[0].ambient.profiles["salinity"].depths) == limit


def test_a_diffuser_value_converted_once_for_a_series_still_follows_its_temperature_series() -> None:
    """Diffuser fields without a series are converted once per case set; one whose conversion needs the
    temperature (salinity as a density) must still take each case's temperature from its series."""
    raw = complete_case("salinity as density", cases=4)
    raw["diffuser"]["values"]["salinity"] = 1000.5
    raw["diffuser"]["units"] = {"salinity": "kg/m3"}
    raw["timeseries"]["diffuser"]["temperature"] = {"increment_hours": 1, "csv": "5\n20\n5\n30\n"}
    del raw["diffuser"]["values"]["temperature"]
    series = Case.load(raw).engine_cases()
    for index, temperature in enumerate((5.0, 20.0, 5.0, 30.0)):
        single = copy.deepcopy(raw)
        del single["timeseries"]
        single["diffuser"]["values"].update(temperature=temperature, effluent_flow=0.03 + 0.01 * index)
        alone = Case.load(single).engine_cases()[0]
        assert series[index].diffuser == alone.diffuser, index
    assert series[0].diffuser.salinity == series[2].diffuser.salinity != series[1].diffuser.salinity
