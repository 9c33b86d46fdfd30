"""Unit kinds, unit strings and conversions to and from SI (spec §2, legacy-http-api §2.8, reference README).

Owns: the vocabulary of unit strings (labels, constant names, aliases and the legacy request strings, matched
case-insensitively), `parse_unit`, and `to_si` / `from_si` for every kind. SI here is the engine's internal
system (spec §0): m, m/s, deg (maths convention, counter-clockwise from east, wrapped to [0, 360)), s, m³/s,
psu, °C, kg/kg, s⁻¹, m^(2/3)/s, kg/m³, kg.

Project decisions (spec §13 item 5, legacy Q5):
* Unknown strings and strings of another kind raise `UnitError`; there is no silent fallback.
* Salinity in kg/m3, lbs/ft3 or sigmaT is a density: it is inverted to psu through the S,T equation of state
  (`engine.seawater.density_st`, spec §4.1) at the given temperature, by bisection on [0, 120] psu (the formula
  is monotone in S; the wide bracket admits desalination brines). No solution -> `UnitError`.
* Salinity in mmhos/cm (= mS/cm) is a conductivity: converted with the Practical Salinity Scale 1978
  (UNESCO 1981/1983; conductivity ratio to C(35, 15 °C, 0) = 42.914 mS/cm, temperature-corrected with r_t,
  IPTS-68 temperature = 1.00024 × ITS-90), at atmospheric pressure, extended below 2 psu by Hill et al. (1986)
  so that zero conductivity is zero salinity. The inverse (psu -> mmhos/cm) is solved by bisection.
* T90h decay: k = ln(10) / (T90 hours × 3600) s⁻¹; T90 <= 0 is invalid. ly/hr values are solar radiation and
  pass through unchanged (the engine reads `Ambient.decay_is_light`, spec §3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from .engine.seawater import density_st

__all__ = [
    "KINDS", "Unit", "UnitError", "parse_unit", "to_si", "from_si", "convert", "units_of", "si_unit",
    "unit_labels",
]


class UnitError(ValueError):
    """An unknown unit string, a unit of the wrong kind, or a value that cannot be converted."""


@dataclass(frozen=True)
class Unit:
    """One unit of one kind. `factor`: value in this unit = SI value × factor (spec §2); `rule` picks the
    conversion: "factor", "celsius"/"fahrenheit"/"kelvin", "compass" (angle, clockwise from north), "density"
    (salinity given as a density, `factor` then converts to kg/m³), "sigma_t", "conductivity", "t90",
    "light", "none" (isopleth types)."""
    kind: str
    label: str
    name: str = field(default="", compare=False)
    factor: float = field(default=1.0, compare=False)
    rule: str = field(default="factor", compare=False)
    aliases: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        return self.label

    @property
    def is_si(self) -> bool:
        return self == si_unit(self.kind)


# kind -> the noun used in messages
_KIND_NOUN = {
    "length": "length", "speed": "speed", "angle": "angle", "time": "time", "flow": "flow rate",
    "salinity": "salinity", "temperature": "temperature", "concentration": "concentration",
    "decay_rate": "decay rate", "diffusivity": "diffusivity", "density": "density", "mass": "mass",
    "unitless": "unitless", "isopleth": "isopleth type",
}
KINDS = tuple(_KIND_NOUN)

_DEG_PER_RAD = math.pi / 180.0
_LB_FT3_PER_KG_M3 = 0.062427961        # salinity as lbs/ft3 (spec §2, salinity conversions)


def _u(kind: str, label: str, name: str, factor: float = 1.0, rule: str = "factor", *aliases: str) -> Unit:
    return Unit(kind, label, name, factor, rule, aliases)


# The first unit of each kind is its SI default. Aliases include the legacy request strings (legacy §2.8)
# and the UI strings `kt`, `N-deg`, `N-rad` (legacy Q5).
_TABLE: tuple[Unit, ...] = (
    _u("length", "m", "METERS", 1, "factor", "meter", "meters", "metre", "metres"),
    _u("length", "cm", "CENTIMETERS", 100, "factor", "centimeter", "centimeters"),
    _u("length", "ft", "FEET", 3.2808, "factor", "feet", "foot"),
    _u("length", "in", "INCHES", 39.37, "factor", "inch", "inches"),
    _u("length", "ftm", "FATHOMS", 0.5468, "factor", "fath", "fathom", "fathoms"),
    _u("speed", "m/s", "METERS_PER_SECOND", 1),
    _u("speed", "cm/s", "CENTIMETERS_PER_SECOND", 100),
    _u("speed", "ft/s", "FEET_PER_SECOND", 3.2808, "factor", "fps", "ft/sec"),
    _u("speed", "kts", "KNOTS", 1.94384, "factor", "knots", "knot", "kt"),
    _u("speed", "mph", "MILES_PER_HOUR", 2.2369363),
    # spec §2: labelled "fathoms per second" but it is knots (factor 1/0.514444)
    _u("speed", "ftm/s", "FATHOMS_PER_SECOND", 1 / 0.514444),
    _u("angle", "deg", "DEGREES", 1, "factor", "degrees", "degree"),
    _u("angle", "rad", "RADIANS", _DEG_PER_RAD, "factor", "radians", "radian"),
    _u("angle", "s-deg", "N_DEGREES", 1, "compass", "n_deg", "n-deg", "surv-deg", "surveyor", "azimuth"),
    _u("angle", "s-rad", "N_RADIANS", _DEG_PER_RAD, "compass", "n_rad", "n-rad", "surv-rad"),
    _u("time", "s", "SECONDS", 1, "factor", "sec", "second", "seconds"),
    _u("time", "min", "MINUTES", 1 / 60, "factor", "minute", "minutes"),
    _u("time", "hr", "HOURS", 1 / 3600, "factor", "h", "hour", "hours"),
    _u("time", "d", "DAYS", 1 / 86400, "factor", "day", "days"),
    _u("flow", "m3/s", "CUBIC_METERS_PER_SECOND", 1, "factor", "cms"),
    _u("flow", "MLD", "MEGALITERS_PER_DAY", 86.4),
    _u("flow", "MGD", "MEGAGALLONS_PER_DAY", 22.824465),
    _u("flow", "ft3/s", "CUBIC_FEET_PER_SECOND", 35.314667, "factor", "cfs"),
    _u("flow", "bbl/d", "BARRELS_PER_DAY", 86400 / 0.15898284, "factor", "bpd"),
    _u("salinity", "PSU", "PRACTICAL_SALINITY_UNITS", 1),
    _u("salinity", "mmhos/cm", "MILLIMHO_PER_CENTIMETER", 1, "conductivity", "mmho/cm", "ms/cm"),
    _u("salinity", "kg/m3", "KILOGRAMS_PER_CUBIC_METER", 1, "density"),
    _u("salinity", "sigmaT", "SIGMA_T", 1, "sigma_t", "sigma-t"),
    _u("salinity", "lbs/ft3", "POUNDS_PER_CUBIC_FOOT", _LB_FT3_PER_KG_M3, "density", "lb/ft3"),
    _u("temperature", "°C", "CELSIUS", 1, "celsius", "C", "degC", "deg C"),
    _u("temperature", "°F", "FAHRENHEIT", 1, "fahrenheit", "F", "degF", "deg F"),
    _u("temperature", "°K", "KELVIN", 1, "kelvin", "K", "degK"),
    _u("concentration", "kg/kg", "KILOGRAM_PER_KILOGRAM", 1),
    _u("concentration", "ppm", "PARTS_PER_MILLION", 1e6),
    _u("concentration", "ppb", "PARTS_PER_BILLION", 1e9),
    _u("concentration", "%", "PERCENT", 100, "factor", "percent"),
    # spec §2: col/dl uses |code| = 1 as its factor, so it behaves exactly like kg/kg
    _u("concentration", "col/dl", "COLONIES_PER_100ML", 1, "factor", "col/100ml"),
    _u("decay_rate", "s-1", "PER_SECOND", 1, "factor", "1/s"),
    _u("decay_rate", "d-1", "PER_DAY", 86400, "factor", "1/d", "per_day"),
    _u("decay_rate", "hr-1", "PER_HOUR", 3600, "factor", "1/hr", "1/h", "per_hour"),
    _u("decay_rate", "T90h", "T90_HOUR", 1, "t90", "t90hr", "t90"),
    _u("decay_rate", "ly/hr", "LY_PER_HOUR", 1, "light"),
    _u("diffusivity", "m0.67/s2", "DIFFUSIVITY", 1, "factor", "m2/3/s", "diffusivity"),
    _u("density", "kg/m3", "KILOGRAMS_PER_CUBIC_METER", 1),
    _u("density", "g/cm3", "GRAMS_PER_CUBIC_CENTIMETER", 0.001),
    _u("density", "lbs/ft3", "POUNDS_PER_CUBIC_FOOT", 0.062428, "factor", "lb/ft3"),
    _u("density", "sigmaT", "SIGMA_T", 1, "sigma_t", "sigma-t"),
    _u("mass", "kg", "KILOGRAMS", 1),
    _u("mass", "gr", "GRAMS", 1000),
    _u("mass", "lbs", "POUNDS", 2.20462, "factor", "lb"),
    _u("unitless", "", "UNITLESS", 1),
    _u("isopleth", "concentration", "CONCENTRATION", 1, "none", "concent"),
    _u("isopleth", "salinity", "SALINITY", 1, "none"),
    _u("isopleth", "temperature", "TEMPERATURE", 1, "none", "temp"),
    _u("isopleth", "speed", "SPEED", 1, "none"),
)

_BY_KIND: dict[str, tuple[Unit, ...]] = {k: tuple(u for u in _TABLE if u.kind == k) for k in KINDS}
_LOOKUP: dict[str, dict[str, Unit]] = {k: {} for k in KINDS}
for _unit in _TABLE:
    for _key in (_unit.label, _unit.name, *_unit.aliases):
        _key = _key.strip().lower()
        _previous = _LOOKUP[_unit.kind].setdefault(_key, _unit)
        assert _previous is _unit, f"unit string {_key!r} is ambiguous within {_unit.kind}"
# input kinds first, so an ambiguous wrong-kind string (kg/m3) is named by its input kind
_KIND_ORDER = [k for k in KINDS if k not in ("density", "mass")] + ["density", "mass"]


def units_of(kind: str) -> tuple[Unit, ...]:
    """All units of `kind`, the SI default first."""
    _check_kind(kind)
    return _BY_KIND[kind]


def si_unit(kind: str) -> Unit:
    """The SI (default) unit of `kind`."""
    return units_of(kind)[0]


def unit_labels(kind: str) -> list[str]:
    return [u.label for u in units_of(kind)]


def _check_kind(kind: str) -> None:
    if kind not in _BY_KIND:
        raise ValueError(f"unknown unit kind {kind!r}; expected one of {', '.join(KINDS)}")


def _article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def parse_unit(text: "str | Unit | None", kind: str) -> Unit:
    """The unit of `kind` that `text` names (case-insensitive: label, constant name, alias or legacy string).

    None or an empty string gives the SI unit of the kind. Any string is accepted for "unitless"
    (reference README). Raises UnitError for an unknown string or a unit of another kind.
    """
    _check_kind(kind)
    if isinstance(text, Unit):
        if text.kind != kind:
            raise UnitError(f"'{text.label}' is {_article(_KIND_NOUN[text.kind])} unit, "
                            f"not {_article(_KIND_NOUN[kind])} unit")
        return text
    if text is None:
        return si_unit(kind)
    if not isinstance(text, str):
        raise UnitError(f"a unit must be a string (got {text!r})")
    key = text.strip().lower()
    if key == "" or kind == "unitless":
        return si_unit(kind)
    found = _LOOKUP[kind].get(key)
    if found is not None:
        return found
    expected = ", ".join(unit_labels(kind))
    for other in _KIND_ORDER:
        if other != kind and other != "unitless" and key in _LOOKUP[other]:
            if kind == "isopleth":
                return _raise(f"'{text}' is {_article(_KIND_NOUN[other])} unit, not an isopleth type; "
                              f"expected one of {expected}")
            if other == "isopleth":
                return _raise(f"'{text}' is an isopleth type, not {_article(_KIND_NOUN[kind])} unit; "
                              f"expected one of {expected}")
            return _raise(f"'{text}' is {_article(_KIND_NOUN[other])} unit, not {_article(_KIND_NOUN[kind])} "
                          f"unit; expected one of {expected}")
    if kind == "isopleth":
        return _raise(f"unknown isopleth type '{text}'; expected one of {expected}")
    return _raise(f"unknown unit '{text}' for {_article(_KIND_NOUN[kind])}; expected one of {expected}")


def _raise(message: str) -> Unit:
    raise UnitError(message)


# ------------------------------------------------------------------------------------------------ angles

def _wrap(value: float, period: float) -> float:
    """Wrap into [0, period) (spec §2: every angle conversion wraps, even deg -> deg)."""
    wrapped = value % period
    return 0.0 if wrapped >= period else wrapped


# ------------------------------------------------------------------------------- salinity (spec §13.5)

_SALINITY_BRACKET = (0.0, 120.0)


def _salinity_from_density(rho: float, temperature_c: float) -> float:
    """psu whose S,T density (spec §4.1) at `temperature_c` is `rho` kg/m³, by bisection."""
    lo, hi = _SALINITY_BRACKET
    f_lo, f_hi = density_st(lo, temperature_c) - rho, density_st(hi, temperature_c) - rho
    if not (math.isfinite(rho) and math.isfinite(f_lo) and math.isfinite(f_hi)) or f_lo > 0 or f_hi < 0:
        raise UnitError(
            f"no salinity in [{lo:g}, {hi:g}] psu has density {rho!r} kg/m3 at {temperature_c!r} °C "
            f"(range {density_st(lo, temperature_c):.4f} to {density_st(hi, temperature_c):.4f} kg/m3)")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi) or hi - lo < 1e-13:
            break
        if density_st(mid, temperature_c) - rho > 0:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


# PSS-78 (UNESCO 1983, Lewis & Perkin 1981) at zero sea pressure; Hill, Dauphinee & Woods (1986) below 2 psu.
_C35_15 = 42.914                          # mS/cm, conductivity of S = 35 at 15 °C (IPTS-68), p = 0
_PSS_A = (0.0080, -0.1692, 25.3851, 14.0941, -7.0261, 2.7081)
_PSS_B = (0.0005, -0.0056, -0.0066, -0.0375, 0.0636, -0.0144)
_PSS_K = 0.0162
_PSS_C = (0.6766097, 2.00564e-2, 1.104259e-4, -6.9698e-7, 1.0031e-9)


def _pss78_salinity(conductivity: float, temperature_c: float) -> float:
    """Practical salinity from conductivity (mS/cm) and temperature (°C, ITS-90) at atmospheric pressure."""
    t68 = 1.00024 * temperature_c
    r = conductivity / _C35_15
    r_t = r / sum(c * t68 ** i for i, c in enumerate(_PSS_C))    # Rp = 1 at p = 0
    root = math.sqrt(r_t)
    f_t = (t68 - 15.0) / (1.0 + _PSS_K * (t68 - 15.0))
    salinity = sum(a * root ** i for i, a in enumerate(_PSS_A)) \
        + f_t * sum(b * root ** i for i, b in enumerate(_PSS_B))
    if salinity < 2.0:                    # Hill et al. (1986) low-salinity extension
        x, y = 400.0 * r_t, 100.0 * r_t
        salinity -= _PSS_A[0] / (1.0 + 1.5 * x + x * x) + _PSS_B[0] * f_t / (1.0 + math.sqrt(y) + y + y ** 1.5)
    return max(salinity, 0.0)             # the extension dips a hair below 0 just above zero conductivity


def _conductivity_from_salinity(salinity: float, temperature_c: float) -> float:
    """Inverse of `_pss78_salinity` in conductivity, by bisection (salinity rises with conductivity)."""
    if salinity <= 0.0:
        return 0.0
    lo, hi = 0.0, _C35_15
    while _pss78_salinity(hi, temperature_c) < salinity:
        hi *= 2.0
        if hi > 1e4:
            raise UnitError(f"no conductivity gives salinity {salinity!r} psu at {temperature_c!r} °C")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi) or hi - lo < 1e-13:
            break
        if _pss78_salinity(mid, temperature_c) > salinity:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


def _need(value: "float | None", what: str, unit: Unit) -> float:
    if value is None or not math.isfinite(value):
        raise UnitError(f"converting {_KIND_NOUN[unit.kind]} in {unit.label} needs the {what} (got {value!r})")
    return float(value)


# ------------------------------------------------------------------------------------------ conversions

def to_si(value: float, unit: Unit, *, temperature_c: "float | None" = None, salinity_psu: "float | None" = None,
          depth_m: "float | None" = None, wrap: bool = True) -> float:
    """`value` in `unit` -> SI (spec §2). Salinity from a density or conductivity needs `temperature_c`.

    Angles are wrapped to [0, 360) degrees unless `wrap` is False (used to range-check a vertical angle).

    `salinity_psu` and `depth_m` are accepted for the decay-rate and salinity entry points of spec §2 and
    are not needed by any conversion the project supports.
    """
    if not isinstance(unit, Unit):
        raise TypeError(f"to_si needs a Unit (use parse_unit), got {unit!r}")
    v = float(value)
    rule = unit.rule
    if unit.kind == "angle":
        if rule == "compass":             # spec §2: compass bearing -> maths convention
            v = 90.0 - v / unit.factor
        else:
            v = v / unit.factor
        return _wrap(v, 360.0) if wrap else v
    if rule == "factor":
        return v / unit.factor
    if rule == "celsius":
        return v
    if rule == "fahrenheit":
        return (v - 32.0) * 5.0 / 9.0
    if rule == "kelvin":
        return v - 273.15
    if rule == "sigma_t":
        if unit.kind == "density":
            return v + 1000.0
        return _salinity_from_density(v + 1000.0, _need(temperature_c, "temperature", unit))
    if rule == "density":                 # salinity given as a density (spec §13 item 5, fixed)
        return _salinity_from_density(v / unit.factor, _need(temperature_c, "temperature", unit))
    if rule == "conductivity":
        if not v >= 0:
            raise UnitError(f"a conductivity must be >= 0 mmhos/cm (got {value!r})")
        return _pss78_salinity(v, _need(temperature_c, "temperature", unit))
    if rule == "t90":                     # spec §13 item 5: k = ln 10 / T90 (fixed)
        if not v > 0:
            raise UnitError(f"a T90 time must be > 0 hours (got {value!r})")
        return math.log(10.0) / (v * 3600.0)
    if rule == "light":                   # solar radiation, interpreted by the bacteria model (spec §3)
        return v
    raise UnitError(f"{_KIND_NOUN[unit.kind]} '{unit.label}' is not a unit and has no conversion")


def from_si(value: float, unit: Unit, *, temperature_c: "float | None" = None,
            salinity_psu: "float | None" = None, depth_m: "float | None" = None, wrap: bool = True) -> float:
    """SI `value` -> `unit`; the inverse of `to_si` (angles come back wrapped to [0, 360°) or [0, 2π),
    unless `wrap` is false)."""
    if not isinstance(unit, Unit):
        raise TypeError(f"from_si needs a Unit (use parse_unit), got {unit!r}")
    v = float(value)
    rule = unit.rule
    if unit.kind == "angle":
        if not wrap:
            return (90.0 - v if rule == "compass" else v) * unit.factor
        degrees = _wrap(90.0 - v if rule == "compass" else v, 360.0)
        return _wrap(degrees * unit.factor, 360.0 * unit.factor)
    if rule == "factor":
        return v * unit.factor
    if rule == "celsius":
        return v
    if rule == "fahrenheit":
        return v * 9.0 / 5.0 + 32.0
    if rule == "kelvin":
        return v + 273.15
    if rule == "sigma_t":
        if unit.kind == "density":
            return v - 1000.0
        return density_st(v, _need(temperature_c, "temperature", unit)) - 1000.0
    if rule == "density":
        return density_st(v, _need(temperature_c, "temperature", unit)) * unit.factor
    if rule == "conductivity":
        if not v >= 0:
            raise UnitError(f"a salinity must be >= 0 psu to convert to mmhos/cm (got {value!r})")
        return _conductivity_from_salinity(v, _need(temperature_c, "temperature", unit))
    if rule == "t90":
        return math.log(10.0) / (v * 3600.0) if v > 0 else math.inf
    if rule == "light":
        return v
    raise UnitError(f"{_KIND_NOUN[unit.kind]} '{unit.label}' is not a unit and has no conversion")


def convert(value: float, source: Unit, target: Unit, **context: "float | None") -> float:
    """`value` from `source` to `target` of the same kind, through SI."""
    if source.kind != target.kind:
        raise UnitError(f"cannot convert {_KIND_NOUN[source.kind]} '{source.label}' "
                        f"to {_KIND_NOUN[target.kind]} '{target.label}'")
    return from_si(to_si(value, source, **context), target, **context)
