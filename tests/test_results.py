"""Result tables built from hand-made engine outputs: columns, units, case numbering, unit views, JSON."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import vp_jupyter as vp
from vp_jupyter.engine.types import PLUME_COLUMNS, CaseOutput
from vp_jupyter.results import Result

# unit factors of spec §2 (value in unit = SI value × factor)
FT, INCH, KNOT, MPH, PPM = 3.2808, 39.37, 1.94384, 2.2369363, 1e6


def case_dict(diffuser_units: dict | None = None, ambient_units: dict | None = None,
              layer_temperature: float = 15, **diffuser_values) -> dict:
    """A valid single case; numbers are read in the given units."""
    values = {"diameter": 0.1, "vertical_angle": 0, "horizontal_angle": 0, "num_ports": 1,
              "acute_mixing_zone": 50, "isopleth": 0, "depth": 10, "effluent_flow": 0.01,
              "salinity": 0, "temperature": 20, "concentration": 1}
    values.update(diffuser_values)
    return {
        "name": "hand-built",
        "diffuser": {"values": values, "units": diffuser_units or {}},
        "ambient": {"units": ambient_units or {}, "layers": [
            {"z": 0, "current_speed": 0.1, "current_dir": 0, "salinity": 33, "temperature": layer_temperature,
             "bg_conc": 0, "decay_rate": 0},
            {"z": 40},
        ]},
    }


def make_output(rows: int, offset: float = 0.0, statuses: list[str] | None = None,
                memos: tuple[str, ...] = (), postmemos: tuple[str, ...] = ()) -> CaseOutput:
    """An engine output whose column k, row i holds offset + (k + 1) + i / 10 (distinct everywhere)."""
    columns = {name: [offset + (k + 1) + i / 10 for i in range(rows)] for k, name in enumerate(PLUME_COLUMNS)}
    return CaseOutput(steps=[i * 100 for i in range(rows)],
                      statuses=statuses if statuses is not None else [""] * rows,
                      columns=columns, memos=list(memos), postmemos=list(postmemos))


def make_result(outputs: list[CaseOutput], **case_kwargs) -> Result:
    """A Result of `outputs` for a case with as many (hourly) cases."""
    data = case_dict(**case_kwargs)
    if len(outputs) > 1:
        flows = "".join(f"{0.01 * (n + 1)}\n" for n in range(len(outputs)))
        data["timeseries"] = {"end_time": len(outputs) - 1, "time_increment": 1, "units": "hr",
                              "diffuser": {"effluent_flow": {"increment_hours": 1, "csv": flows}}}
    case = vp.Case.load(data)
    return Result(case, outputs, case.engine_cases())


def test_result_refuses_outputs_that_do_not_match_the_cases() -> None:
    case = vp.Case.load(case_dict())
    with pytest.raises(ValueError, match="1 case"):
        Result(case, [make_output(1), make_output(1)])


def test_plume_has_every_column_in_order_with_si_units_in_attrs() -> None:
    frame = make_result([make_output(3)]).plume
    assert list(frame.columns) == ["case", "step", "status", *PLUME_COLUMNS]
    units = frame.attrs["units"]
    assert set(units) == set(frame.columns)
    for name, unit in PLUME_COLUMNS.items():
        assert units[name] == unit
    assert units["depth"] == "m" and units["velocity"] == "m/s" and units["concentration"] == "kg/kg"
    assert units["density"] == "kg/m3" and units["ambient_density"] == "kg/m3"
    assert all(units[c] in ("", None) for c in ("case", "step", "status"))
    # the values are the engine's, untouched
    assert frame["depth"].tolist() == pytest.approx([1.0, 1.1, 1.2])


def test_cases_are_numbered_from_one_and_rows_concatenated_in_order() -> None:
    first = make_output(2, statuses=["", "trap level"])
    second = make_output(3, offset=100.0, statuses=["", "", "surface"])
    result = make_result([first, second])
    frame = result.plume
    assert result.case_count == 2
    assert result.cases["case"].tolist() == [1, 2]
    assert frame["case"].tolist() == [1, 1, 2, 2, 2]
    assert frame["step"].tolist() == [0, 100, 0, 100, 200]
    assert frame["status"].tolist() == ["", "trap level", "", "", "surface"]
    assert frame["dilution"].tolist() == pytest.approx(first.columns["dilution"] + second.columns["dilution"])
    assert frame["case"].dtype.kind == "i" and frame["step"].dtype.kind == "i"


def test_case_units_view_converts_english_units_by_their_factors() -> None:
    result = make_result(
        [make_output(2)],
        diffuser_units={"depth": "ft", "diameter": "in", "concentration": "ppm"},
        ambient_units={"current_speed": "kts", "temperature": "F"}, layer_temperature=59)
    si = result.plume
    shown = result.plume_in_case_units()
    expected_factor = {"depth": FT, "diameter": INCH, "ambient_current_speed": KNOT, "velocity": KNOT,
                       "x": FT, "y": FT,  # knots are an English speed unit: positions in feet
                       "concentration": PPM, "ambient_bg_conc": PPM}
    for name, factor in expected_factor.items():
        assert shown[name].to_numpy() == pytest.approx(si[name].to_numpy() * factor, rel=1e-12), name
    for name in ("temperature", "ambient_temperature"):
        assert shown[name].to_numpy() == pytest.approx(si[name].to_numpy() * 9 / 5 + 32, rel=1e-12)
    for name in ("salinity", "density", "iso_diameter", "time", "dilution", "horizontal_distance"):
        assert shown[name].tolist() == si[name].tolist(), name  # psu and SI columns stay as they are
    units = shown.attrs["units"]
    assert (units["depth"], units["diameter"], units["x"], units["y"]) == ("ft", "in", "ft", "ft")
    assert (units["velocity"], units["concentration"], units["temperature"]) == ("kts", "ppm", "°F")
    assert units["density"] == "kg/m3" and units["iso_diameter"] == "m"
    # the SI table is not modified by the view
    assert si.attrs["units"]["depth"] == "m"


@pytest.mark.parametrize(("speed_unit", "position_unit", "factor"),
                         [("m/s", "m", 1.0), ("cm/s", "m", 1.0), ("mph", "ft", FT), ("ft/s", "ft", FT)])
def test_positions_are_in_feet_only_for_english_speed_units(speed_unit, position_unit, factor) -> None:
    result = make_result([make_output(2)], ambient_units={"current_speed": speed_unit})
    shown = result.plume_in_case_units()
    assert shown.attrs["units"]["x"] == position_unit
    assert shown["y"].to_numpy() == pytest.approx(result.plume["y"].to_numpy() * factor, rel=1e-12)
    if speed_unit == "mph":
        assert shown["velocity"].to_numpy() == pytest.approx(result.plume["velocity"].to_numpy() * MPH)


def test_conductivity_salinity_converts_each_value_at_its_own_temperature() -> None:
    from vp_jupyter.units import from_si, parse_unit

    result = make_result([make_output(3)], ambient_units={"salinity": "mmhos/cm"})
    si, shown = result.plume, result.plume_in_case_units()
    mmhos = parse_unit("mmhos/cm", "salinity")
    for salinity, temperature in (("salinity", "temperature"), ("ambient_salinity", "ambient_temperature")):
        expected = [from_si(s, mmhos, temperature_c=t) for s, t in zip(si[salinity], si[temperature])]
        assert shown[salinity].tolist() == pytest.approx(expected, rel=1e-12)
        # a conductivity grows with temperature: the wrong temperature column would give other numbers
        wrong = [from_si(s, mmhos, temperature_c=t + 5) for s, t in zip(si[salinity], si[temperature])]
        assert shown[salinity].tolist() != pytest.approx(wrong, rel=1e-6)
    assert shown.attrs["units"]["ambient_salinity"] == "mmhos/cm"


def test_memos_are_step0_memos_then_post_run_lines() -> None:
    output = make_output(1, memos=("Froude No:    9.62 ", "k:            11.2"),
                         postmemos=("Horiz plane projections: 1;\nCL(m):      1.16",))
    result = make_result([output, make_output(1)])
    assert result.memos == {1: ["Froude No:    9.62 ", "k:            11.2",
                                "Horiz plane projections: 1;", "CL(m):      1.16"],
                            2: []}


def test_summary_has_one_row_per_case_with_the_final_state() -> None:
    first = make_output(2, statuses=["", "trap level"])
    first.stop_reason = "trap level"
    second = make_output(4, offset=10.0, statuses=["", "", "", "surface"])
    result = make_result([first, second], offset_x=3.0, offset_y=-4.0, diffuser_units={})
    summary = result.summary()
    assert summary["case"].tolist() == [1, 2]
    assert summary["start_time"].tolist() == [0.0, 3600.0]  # hourly cases
    assert summary["steps"].tolist() == [100, 300]
    assert summary["status"].tolist() == ["trap level", "surface"]
    assert summary["stop_reason"].tolist()[0] == "trap level"
    for row, output in zip(summary.itertuples(), (first, second)):
        assert row.dilution == output.columns["dilution"][-1]
        assert row.depth == output.columns["depth"][-1]
        # horizontal distance from the coordinate origin, and from the source at (3, -4) m
        x, y = output.columns["x"][-1], output.columns["y"][-1]
        assert row.horizontal_distance == pytest.approx(math.hypot(x, y))
        assert row.source_distance == pytest.approx(math.hypot(x - 3.0, y + 4.0))
    assert summary.attrs["units"]["horizontal_distance"] == summary.attrs["units"]["source_distance"] == "m"


def test_case_lines_give_steps_status_dilution_depth_and_distance_in_case_units() -> None:
    output = make_output(2, statuses=["", "surface"])
    result = make_result([output], diffuser_units={"depth": "ft"}, ambient_units={"current_speed": "ft/s"})
    (line,) = result.case_lines()
    depth_ft = output.columns["depth"][-1] * FT
    distance_ft = math.hypot(output.columns["x"][-1], output.columns["y"][-1]) * FT
    assert line == (f"case 1: 100 steps, surface, dilution {output.columns['dilution'][-1]:.2f}, "
                    f"depth {depth_ft:.2f} ft, distance from source {distance_ft:.2f} ft")


def test_json_form_is_strict_json_with_nan_as_null() -> None:
    output = make_output(3)
    output.columns["iso_diameter"][1] = math.nan
    output.columns["dilution"][2] = math.inf
    result = make_result([output])
    text = result.to_json()

    def reject(constant: str):
        raise AssertionError(f"non-standard JSON constant {constant}")

    data = json.loads(text, parse_constant=reject)
    case = data["plume"][0]
    assert case["case"] == 1 and case["steps"] == [0, 100, 200]
    assert case["columns"]["iso_diameter"][1] is None
    assert case["columns"]["dilution"][2] is None
    assert case["columns"]["depth"] == output.columns["depth"]
    assert data["units"]["depth"] == "m" and data["cases"] == 1
    assert data["summary"][0]["dilution"] is None  # the final dilution was infinite
    assert data["case"]["diffuser"]["values"]["diameter"] == 0.1  # the input travels with the result


def test_html_repr_is_a_compact_summary() -> None:
    outputs = [make_output(40, offset=float(n)) for n in range(12)]
    result = make_result(outputs)
    text = result._repr_html_()
    assert "12 case(s)" in text
    assert text.count("<tr>") == 1 + 10  # header + at most 10 cases
    assert "2 more cases" in text
    # not a dump of the 480 plume rows
    assert len(text) < 3000


def test_run_turns_a_model_refusal_into_a_case_error(monkeypatch) -> None:
    series = pytest.importorskip("vp_jupyter.engine.series")
    monkeypatch.setattr(series, "near_field",
                        lambda engine_case: CaseOutput(error="Effluent concentration must be > 0"))
    with pytest.raises(vp.CaseError) as raised:
        vp.run(case_dict())
    assert "Effluent concentration must be > 0" in str(raised.value)


def test_run_reports_invalid_input_as_a_case_error_naming_the_field() -> None:
    with pytest.raises(vp.CaseError) as raised:
        vp.run(case_dict(diameter=-1))
    assert any("diameter" in problem for problem in raised.value.problems)


def test_plume_of_a_real_run_is_consistent_with_its_outputs() -> None:
    pytest.importorskip("vp_jupyter.engine.um3")
    result = vp.run(case_dict())
    frame = result.plume
    assert len(frame) == sum(len(o.steps) for o in result.outputs) > 1
    assert frame["step"].iloc[0] == 0 and frame["dilution"].iloc[0] == pytest.approx(1.0)
    assert np.all(np.diff(frame["step"].to_numpy()) > 0)
    assert frame["dilution"].iloc[-1] == result.summary()["dilution"].iloc[0]


# -- far field and tidal buildup ------------------------------------------------------------------------

def make_farfield(rows: int, was_run: bool = True) -> "FarFieldOutput":
    """A far-field output whose column k, row i holds (k + 1) * 10 + i (distinct everywhere)."""
    from vp_jupyter.engine.types import FARFIELD_COLUMNS, FarFieldOutput

    columns = {name: [(k + 1) * 10.0 + i for i in range(rows)] for k, name in enumerate(FARFIELD_COLUMNS)}
    return FarFieldOutput(was_run=was_run, steps=list(range(rows)), columns=columns,
                          memos=["4/3 Power Law. Farfield dispersion based on wastefield width of 46.0 m"])


def result_with_farfield(farfield, tidal=None, **case_kwargs) -> Result:
    case = vp.Case.load(case_dict(**case_kwargs))
    return Result(case, [make_output(2)], case.engine_cases(), farfields=[farfield], tidal=tidal)


def test_farfield_in_case_units_converts_speed_direction_and_concentrations() -> None:
    result = result_with_farfield(
        make_farfield(3), diffuser_units={"concentration": "ppm", "depth": "ft"},
        ambient_units={"ff_velocity": "kts", "ff_dir": "s-deg", "current_speed": "ft/s", "bg_conc": "ppb"})
    si, shown = result.farfield, result.farfield_in_case_units()
    assert list(shown.columns) == list(si.columns) and len(shown) == 3
    assert shown["ff_velocity"].to_numpy() == pytest.approx(si["ff_velocity"].to_numpy() * KNOT, rel=1e-12)
    # compass bearing, clockwise from north: 90° - the maths angle, wrapped to [0, 360)
    assert shown["ff_dir"].to_numpy() == pytest.approx((90.0 - si["ff_dir"].to_numpy()) % 360.0, rel=1e-12)
    # concentrations in the diffuser concentration units (not the ambient bg_conc units)
    for name in ("concentration", "background"):
        assert shown[name].to_numpy() == pytest.approx(si[name].to_numpy() * PPM, rel=1e-12), name
    # lengths stay in metres even with English units, as Visual Plumes reports them; time stays in s
    for name in ("distance", "width", "x", "y", "time", "dilution", "decay_rate", "ff_diff_coeff",
                 "diffusivity_argument", "case", "step"):
        assert shown[name].tolist() == si[name].tolist(), name
    units = shown.attrs["units"]
    assert (units["ff_velocity"], units["ff_dir"], units["concentration"], units["background"]) == (
        "kts", "s-deg", "ppm", "ppm")
    assert (units["distance"], units["width"], units["x"], units["time"]) == ("m", "m", "m", "s")
    assert shown["ff_dir"].tolist() == pytest.approx([0.0, 359.0, 358.0])  # 90°, 91°, 92° maths convention
    # the SI table is not modified by the view
    assert si.attrs["units"]["ff_velocity"] == "m/s" and si["ff_dir"].tolist() == [90.0, 91.0, 92.0]


def test_farfield_in_case_units_of_a_run_without_far_field_is_empty_with_units() -> None:
    result = make_result([make_output(2)], ambient_units={"ff_velocity": "ft/s"})
    shown = result.farfield_in_case_units()
    assert shown.empty and "ff_velocity" in shown.columns
    assert shown.attrs["units"]["ff_velocity"] == "ft/s"


def test_farfield_in_case_units_gives_back_the_english_inputs_of_case_11() -> None:
    from conftest import reference_case

    data = json.loads(reference_case("11_units_english_farfield").read_text())
    layer = data["ambient"]["layers"][0]
    result = vp.run(data)
    shown = result.farfield_in_case_units()
    assert len(shown) == len(result.farfield) > 1
    # uniform far-field inputs: 0.5 ft/s towards 90 s-deg in every row
    assert shown["ff_velocity"].tolist() == pytest.approx([layer["ff_velocity"]] * len(shown), rel=1e-9)
    assert shown["ff_dir"].tolist() == pytest.approx([layer["ff_dir"]] * len(shown), abs=1e-9)
    assert shown["concentration"].to_numpy() == pytest.approx(result.farfield["concentration"].to_numpy() * 1e9,
                                                              rel=1e-12)
    assert shown.attrs["units"]["concentration"] == "ppb"


def test_html_repr_mentions_the_far_field_and_its_final_dilution() -> None:
    farfield = make_farfield(4)
    text = result_with_farfield(farfield)._repr_html_()
    assert "Brooks far field: 4 row(s)" in text
    final_dilution, final_distance = farfield.columns["dilution"][-1], farfield.columns["distance"][-1]
    assert f"final dilution {final_dilution:.4g} at {final_distance:.4g} m (case 1)" in text
    assert "<code>.farfield</code>" in text
    assert "far field" not in make_result([make_output(2)])._repr_html_()
    # a far field that ran but wrote no row says why
    empty = make_farfield(0)
    empty.memos = ["No farfield prediction when far vel = 0."]
    assert "0 row(s) (No farfield prediction when far vel = 0.)" in result_with_farfield(empty)._repr_html_()


def test_html_repr_mentions_the_highest_tidal_buildup_in_case_units() -> None:
    from vp_jupyter.engine.types import FarFieldOutput, TidalOutput

    tidal = TidalOutput(was_run=True, buildup=[0.0], highest=2.4e-6,
                        memos=["Highest buildup of concentration: 2.40e-06"])
    text = result_with_farfield(FarFieldOutput(), tidal=tidal, diffuser_units={"concentration": "ppm"})._repr_html_()
    assert "highest buildup 2.4 ppm" in text
    assert "Brooks far field" not in text
    assert "buildup" not in make_result([make_output(2)])._repr_html_()
    assert len(text) < 3000
