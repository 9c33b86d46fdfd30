"""Tests of vp_jupyter.units: the unit vocabulary (spec §2, legacy §2.8, reference README) and conversions."""
import math

import pytest

from vp_jupyter.engine.seawater import density_st
from vp_jupyter.units import KINDS, Unit, UnitError, convert, from_si, parse_unit, si_unit, to_si, units_of


# ------------------------------------------------------------------------------------------ vocabulary

# every request string of legacy-http-api §2.8 -> (kind, label); plus the aliases of legacy Q5
LEGACY_STRINGS = {
    "m": ("length", "m"), "cm": ("length", "cm"), "ft": ("length", "ft"), "in": ("length", "in"),
    "fath": ("length", "ftm"),
    "m/s": ("speed", "m/s"), "cm/s": ("speed", "cm/s"), "ftm/s": ("speed", "ftm/s"), "kts": ("speed", "kts"),
    "mph": ("speed", "mph"), "ft/s": ("speed", "ft/s"), "kt": ("speed", "kts"),
    "deg": ("angle", "deg"), "rad": ("angle", "rad"), "Surv-deg": ("angle", "s-deg"),
    "Surv-rad": ("angle", "s-rad"), "N-deg": ("angle", "s-deg"), "N-rad": ("angle", "s-rad"),
    "s": ("time", "s"), "min": ("time", "min"), "hr": ("time", "hr"), "d": ("time", "d"),
    "MGD": ("flow", "MGD"), "m3/s": ("flow", "m3/s"), "MLD": ("flow", "MLD"), "ft3/s": ("flow", "ft3/s"),
    "bbl/d": ("flow", "bbl/d"),
    "psu": ("salinity", "PSU"), "mmho/cm": ("salinity", "mmhos/cm"), "kg/m3": ("salinity", "kg/m3"),
    "sigmaT": ("salinity", "sigmaT"), "lb/ft3": ("salinity", "lbs/ft3"),
    "ppm": ("concentration", "ppm"), "kg/kg": ("concentration", "kg/kg"), "ppb": ("concentration", "ppb"),
    "%": ("concentration", "%"), "col/dl": ("concentration", "col/dl"),
    "concent": ("isopleth", "concentration"), "salinity": ("isopleth", "salinity"),
    "temp": ("isopleth", "temperature"), "speed": ("isopleth", "speed"),
    "C": ("temperature", "°C"), "F": ("temperature", "°F"), "K": ("temperature", "°K"),
    "s-1": ("decay_rate", "s-1"), "d-1": ("decay_rate", "d-1"), "T90hr": ("decay_rate", "T90h"),
    "ly/hr": ("decay_rate", "ly/hr"), "hr-1": ("decay_rate", "hr-1"),
    "m0.67/s2": ("diffusivity", "m0.67/s2"),
}


@pytest.mark.parametrize("text", sorted(LEGACY_STRINGS))
def test_every_legacy_string_keeps_its_meaning(text):
    kind, label = LEGACY_STRINGS[text]
    assert parse_unit(text, kind).label == label


# reference README "Units vocabulary": labels, constant names, aliases
README_VOCABULARY = {
    "length": ("m cm ft in ftm", "METERS CENTIMETERS FEET INCHES FATHOMS",
               {"meter": "m", "meters": "m", "feet": "ft", "foot": "ft", "inch": "in", "fathom": "ftm",
                "fathoms": "ftm"}),
    "speed": ("m/s cm/s ft/s kts mph ftm/s", "METERS_PER_SECOND CENTIMETERS_PER_SECOND FEET_PER_SECOND KNOTS "
              "MILES_PER_HOUR FATHOMS_PER_SECOND",
              {"knots": "kts", "knot": "kts", "kt": "kts", "fps": "ft/s", "ft/sec": "ft/s"}),
    "angle": ("deg rad s-deg s-rad", "DEGREES RADIANS N_DEGREES N_RADIANS",
              {"degrees": "deg", "radians": "rad", "n_deg": "s-deg", "n-deg": "s-deg", "surveyor": "s-deg",
               "azimuth": "s-deg", "n_rad": "s-rad"}),
    "salinity": ("PSU mmhos/cm kg/m3 sigmaT lbs/ft3", "PRACTICAL_SALINITY_UNITS MILLIMHO_PER_CENTIMETER "
                 "KILOGRAMS_PER_CUBIC_METER SIGMA_T POUNDS_PER_CUBIC_FOOT",
                 {"psu": "PSU", "mmho/cm": "mmhos/cm", "sigma-t": "sigmaT", "lb/ft3": "lbs/ft3"}),
    "temperature": ("°C °F °K", "CELSIUS FAHRENHEIT KELVIN",
                    {"C": "°C", "degC": "°C", "F": "°F", "degF": "°F", "K": "°K"}),
    "concentration": ("kg/kg ppm ppb % col/dl", "KILOGRAM_PER_KILOGRAM PARTS_PER_MILLION PARTS_PER_BILLION "
                      "PERCENT COLONIES_PER_100ML", {"percent": "%", "col/100ml": "col/dl"}),
    "decay_rate": ("s-1 d-1 hr-1 T90h ly/hr", "PER_SECOND PER_DAY PER_HOUR T90_HOUR LY_PER_HOUR",
                   {"1/s": "s-1", "1/d": "d-1", "per_day": "d-1", "1/hr": "hr-1", "t90hr": "T90h",
                    "t90": "T90h"}),
    "flow": ("m3/s MLD MGD ft3/s bbl/d", "CUBIC_METERS_PER_SECOND MEGALITERS_PER_DAY MEGAGALLONS_PER_DAY "
             "CUBIC_FEET_PER_SECOND BARRELS_PER_DAY", {"cms": "m3/s", "cfs": "ft3/s", "bpd": "bbl/d"}),
    "time": ("s min hr d", "SECONDS MINUTES HOURS DAYS",
             {"sec": "s", "h": "hr", "hours": "hr", "days": "d"}),
    "isopleth": ("concentration salinity temperature speed", "CONCENTRATION SALINITY TEMPERATURE SPEED", {}),
    "diffusivity": ("m0.67/s2", "DIFFUSIVITY", {"m2/3/s": "m0.67/s2", "diffusivity": "m0.67/s2"}),
    "density": ("kg/m3 g/cm3 lbs/ft3 sigmaT", "KILOGRAMS_PER_CUBIC_METER GRAMS_PER_CUBIC_CENTIMETER "
                "POUNDS_PER_CUBIC_FOOT SIGMA_T", {}),
    "mass": ("kg gr lbs", "KILOGRAMS GRAMS POUNDS", {}),
}


@pytest.mark.parametrize("kind", sorted(README_VOCABULARY))
def test_readme_vocabulary_labels_constants_and_aliases(kind):
    labels, names, aliases = README_VOCABULARY[kind]
    assert [u.label for u in units_of(kind)] == labels.split()
    for label, name in zip(labels.split(), names.split()):
        assert parse_unit(name, kind).label == label
        assert parse_unit(name.lower(), kind).label == label
        assert parse_unit(label.upper(), kind).label == label      # case-insensitive
    for alias, label in aliases.items():
        assert parse_unit(alias, kind).label == label
        assert parse_unit(f"  {alias.upper()} ", kind).label == label


def test_empty_or_missing_unit_is_the_si_unit():
    expected = {"length": "m", "speed": "m/s", "angle": "deg", "time": "s", "flow": "m3/s", "salinity": "PSU",
                "temperature": "°C", "concentration": "kg/kg", "decay_rate": "s-1", "diffusivity": "m0.67/s2",
                "density": "kg/m3", "mass": "kg", "unitless": "", "isopleth": "concentration"}
    assert set(expected) == set(KINDS)
    for kind, label in expected.items():
        assert parse_unit(None, kind).label == label
        assert parse_unit("", kind).label == label
        assert si_unit(kind).label == label


def test_unitless_accepts_any_string():
    assert parse_unit("ports", "unitless") == si_unit("unitless")


def test_unknown_unit_message_lists_the_allowed_units():
    with pytest.raises(UnitError) as err:
        parse_unit("furlongs", "length")
    assert str(err.value) == "unknown unit 'furlongs' for a length; expected one of m, cm, ft, in, ftm"


def test_wrong_kind_message_names_both_kinds():
    with pytest.raises(UnitError, match=r"'ppm' is a concentration unit, not a length unit"):
        parse_unit("ppm", "length")
    with pytest.raises(UnitError, match=r"'ppm' is a concentration unit, not a salinity unit"):
        parse_unit("ppm", "salinity")
    with pytest.raises(UnitError, match=r"'MGD' is a flow rate unit, not an angle unit"):
        parse_unit("MGD", "angle")
    with pytest.raises(UnitError, match=r"'concent' is an isopleth type, not a length unit"):
        parse_unit("concent", "length")
    with pytest.raises(UnitError, match=r"unknown isopleth type 'conc'"):
        parse_unit("conc", "isopleth")


def test_non_string_unit_and_wrong_kind_unit_object():
    with pytest.raises(UnitError, match="must be a string"):
        parse_unit(3, "length")
    feet = parse_unit("ft", "length")
    assert parse_unit(feet, "length") is feet
    with pytest.raises(UnitError, match="'ft' is a length unit, not a speed unit"):
        parse_unit(feet, "speed")
    with pytest.raises(ValueError, match="unknown unit kind"):
        parse_unit("m", "volume")


# ------------------------------------------------------------------------------------------ conversions

def _u(text, kind):
    return parse_unit(text, kind)


@pytest.mark.parametrize("text, kind, value, si", [
    ("ft", "length", 3.2808, 1.0), ("in", "length", 39.37, 1.0), ("ftm", "length", 0.5468, 1.0),
    ("cm", "length", 250.0, 2.5),
    ("kts", "speed", 1.94384, 1.0), ("ftm/s", "speed", 1.0, 0.514444), ("mph", "speed", 2.2369363, 1.0),
    ("ft/s", "speed", 3.2808, 1.0), ("cm/s", "speed", 8.0, 0.08),
    ("MGD", "flow", 22.824465, 1.0), ("MLD", "flow", 86.4, 1.0), ("ft3/s", "flow", 35.314667, 1.0),
    ("bbl/d", "flow", 86400 / 0.15898284, 1.0),
    ("min", "time", 2.0, 120.0), ("hr", "time", 7.0, 25200.0), ("d", "time", 1.0, 86400.0),
    ("ppm", "concentration", 60.0, 6e-5), ("ppb", "concentration", 5000.0, 5e-6),
    ("%", "concentration", 1.0, 0.01), ("col/dl", "concentration", 1e7, 1e7),
    ("d-1", "decay_rate", 0.5, 0.5 / 86400), ("hr-1", "decay_rate", 1.0, 1 / 3600),
    ("g/cm3", "density", 1.025, 1025.0), ("sigmaT", "density", 25.0, 1025.0),
    ("lbs/ft3", "density", 0.062428, 1.0), ("gr", "mass", 1000.0, 1.0), ("lbs", "mass", 2.20462, 1.0),
    ("°F", "temperature", 212.0, 100.0), ("°F", "temperature", 68.0, 20.0), ("K", "temperature", 300.15, 27.0),
    ("m0.67/s2", "diffusivity", 3e-4, 3e-4),
])
def test_factor_and_temperature_conversions(text, kind, value, si):
    unit = _u(text, kind)
    assert to_si(value, unit) == pytest.approx(si, rel=1e-12)
    assert from_si(si, unit) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text, value, degrees", [
    ("deg", -45.0, 315.0),             # spec §2: even deg -> deg wraps
    ("deg", 360.0, 0.0), ("deg", 725.0, 5.0),
    ("rad", math.pi, 180.0),
    ("s-deg", 0.0, 90.0),              # north
    ("s-deg", 90.0, 0.0),              # east
    ("s-deg", 180.0, 270.0),           # south
    ("s-deg", 270.0, 180.0),           # west
    ("s-rad", math.pi / 2, 0.0),
    ("s-rad", math.pi, 270.0),
])
def test_angles_convert_to_maths_convention_and_wrap(text, value, degrees):
    unit = _u(text, "angle")
    assert to_si(value, unit) == pytest.approx(degrees, abs=1e-12)
    assert 0.0 <= to_si(value, unit) < 360.0


def test_angle_wrap_never_returns_the_period_and_can_be_disabled():
    deg = _u("deg", "angle")
    assert to_si(-1e-20, deg) == 0.0                 # (-1e-20) % 360 rounds to 360.0
    assert to_si(-45.0, deg, wrap=False) == -45.0
    assert to_si(-math.pi / 4, _u("rad", "angle"), wrap=False) == pytest.approx(-45.0)


def test_angles_from_si():
    assert from_si(0.0, _u("s-deg", "angle")) == 90.0
    assert from_si(270.0, _u("s-deg", "angle")) == 180.0
    assert from_si(-90.0, _u("deg", "angle")) == 270.0
    assert from_si(180.0, _u("rad", "angle")) == pytest.approx(math.pi)
    assert from_si(90.0, _u("s-rad", "angle")) == 0.0


def test_t90_decay_is_fixed():
    # spec §13 item 5: k = ln(10) / (T90 h * 3600 s)
    t90 = _u("T90h", "decay_rate")
    assert to_si(2.0, t90) == pytest.approx(math.log(10) / 7200.0, rel=1e-15)
    assert from_si(math.log(10) / 7200.0, t90) == pytest.approx(2.0)
    assert from_si(0.0, t90) == math.inf                  # no decay: T90 is infinite
    for bad in (0.0, -1.0):
        with pytest.raises(UnitError, match="T90 time must be > 0 hours"):
            to_si(bad, t90)


def test_light_decay_passes_through():
    light = _u("ly/hr", "decay_rate")
    assert to_si(300.0, light) == 300.0 and from_si(300.0, light) == 300.0


@pytest.mark.parametrize("salinity, temperature", [(0.0, 20.0), (35.0, 20.0), (33.0, 15.0), (68.0, 22.0),
                                                   (10.0, 4.0), (1.0, 30.0)])
def test_salinity_from_density_units_inverts_the_st_equation_of_state(salinity, temperature):
    rho = density_st(salinity, temperature)
    for text, value in (("kg/m3", rho), ("sigmaT", rho - 1000.0), ("lbs/ft3", rho * 0.062427961)):
        unit = _u(text, "salinity")
        assert to_si(value, unit, temperature_c=temperature) == pytest.approx(salinity, abs=1e-9)
        assert from_si(salinity, unit, temperature_c=temperature) == pytest.approx(value, rel=1e-12)


def test_salinity_from_density_spec_example():
    # spec §4.1: S=35, T=20 -> 1024.7839 kg/m3
    assert to_si(1024.7839, _u("kg/m3", "salinity"), temperature_c=20.0) == pytest.approx(35.0, abs=1e-5)


def test_salinity_from_density_without_solution_or_temperature():
    kg_m3 = _u("kg/m3", "salinity")
    with pytest.raises(UnitError, match="no salinity in"):
        to_si(990.0, kg_m3, temperature_c=20.0)          # lighter than fresh water at 20 °C
    with pytest.raises(UnitError, match="no salinity in"):
        to_si(1200.0, kg_m3, temperature_c=20.0)
    with pytest.raises(UnitError, match="needs the temperature"):
        to_si(1025.0, kg_m3)
    with pytest.raises(UnitError, match="needs the temperature"):
        to_si(20.0, _u("mmhos/cm", "salinity"), temperature_c=float("nan"))


def test_conductivity_pss78_standard_point():
    # PSS-78: C(35, 15 °C IPTS-68, 0) = 42.914 mS/cm defines S = 35
    mmho = _u("mmhos/cm", "salinity")
    assert to_si(42.914, mmho, temperature_c=15.0 / 1.00024) == pytest.approx(35.0, abs=1e-6)
    assert to_si(0.0, mmho, temperature_c=10.0) == 0.0
    with pytest.raises(UnitError, match="conductivity must be >= 0"):
        to_si(-1.0, mmho, temperature_c=10.0)


def test_conductivity_agrees_with_the_reference_table_within_two_and_a_half_percent():
    # spec §2: the reference's conductivity table (mmhos/cm at T = 0..30 °C, S = 10..40 psu)
    table = {0: (9.341, 17.456, 25.238, 32.851), 15: (13.967, 25.967, 37.351, 48.367),
             30: (19.127, 35.458, 50.856, 65.667)}
    mmho = _u("mmhos/cm", "salinity")
    for temperature, row in table.items():
        for salinity, conductivity in zip((10, 20, 30, 40), row):
            assert from_si(salinity, mmho, temperature_c=temperature) == pytest.approx(conductivity, rel=0.025)


@pytest.mark.parametrize("salinity", [0.0, 0.001, 0.5, 1.5, 2.5, 10.0, 35.0, 42.0, 70.0])
@pytest.mark.parametrize("temperature", [0.0, 12.5, 25.0, 35.0])
def test_conductivity_round_trip(salinity, temperature):
    mmho = _u("mmhos/cm", "salinity")
    conductivity = from_si(salinity, mmho, temperature_c=temperature)
    assert to_si(conductivity, mmho, temperature_c=temperature) == pytest.approx(salinity, abs=1e-9)


def test_conductivity_increases_with_salinity_and_temperature():
    mmho = _u("mmhos/cm", "salinity")
    values = [from_si(s, mmho, temperature_c=15.0) for s in (0.5, 1, 5, 10, 20, 35)]
    assert values == sorted(values)
    assert from_si(35, mmho, temperature_c=25.0) > from_si(35, mmho, temperature_c=5.0)


def test_every_convertible_unit_round_trips():
    for kind in KINDS:
        if kind == "isopleth":
            continue
        for unit in units_of(kind):
            for si in (0.5, 12.0, 33.0):
                if kind == "decay_rate" and unit.label == "T90h":
                    si = si * 1e-5
                back = to_si(from_si(si, unit, temperature_c=15.0), unit, temperature_c=15.0)
                assert back == pytest.approx(si, rel=1e-9, abs=1e-9), (kind, unit.label)


def test_isopleth_types_have_no_conversion():
    with pytest.raises(UnitError, match="not a unit"):
        to_si(1.0, _u("concentration", "isopleth"))


def test_convert_and_type_errors():
    assert convert(1.0, _u("ft", "length"), _u("in", "length")) == pytest.approx(39.37 / 3.2808)
    assert convert(25.0, _u("sigmaT", "salinity"), _u("psu", "salinity"), temperature_c=10.0) == pytest.approx(
        to_si(25.0, _u("sigmaT", "salinity"), temperature_c=10.0))
    with pytest.raises(UnitError, match="cannot convert"):
        convert(1.0, _u("ft", "length"), _u("kts", "speed"))
    with pytest.raises(TypeError):
        to_si(1.0, "ft")


def test_unit_is_hashable_and_compares_by_kind_and_label():
    assert _u("FEET", "length") == _u("ft", "length")
    assert {_u("ft", "length"), _u("foot", "length")} == {Unit("length", "ft")}
    assert _u("kg/m3", "salinity") != _u("kg/m3", "density")
    assert _u("m", "length").is_si and not _u("ft", "length").is_si
