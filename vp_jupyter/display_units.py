"""The unit each result column is shown in for a case (Visual Plumes' choices), and SI columns converted to it.

Shared by the result tables (`results`), the plots (`plots`) and the reports, so those presentation modules
depend on this small module and never on `results` (which delegates to them): the imports form no cycle.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .inputs import Case
    from .units import Unit

# ambient current-speed units whose plume x/y positions Visual Plumes reports in feet
_FEET_SPEED_UNITS = ("ft/s", "kts", "mph", "ftm/s")
# unit kinds whose conversion is a pure factor (spec §2), so whole columns convert with one multiply
_FACTOR_KINDS = frozenset({"length", "speed", "concentration", "flow", "mass"})


def position_unit(case: "Case") -> "Unit":
    """Unit of the plume x / y positions: ft for English current-speed units, else m (spec §9.1)."""
    from .units import parse_unit

    speed_unit = case.ambient_units["current_speed"]
    english = any(speed_unit == parse_unit(text, "speed") for text in _FEET_SPEED_UNITS)
    return parse_unit("ft" if english else "m", "length")


def case_unit_plan(case: "Case") -> dict[str, "Unit"]:
    """Plume column -> the case unit it is shown in (columns not listed stay SI)."""
    diffuser, ambient = case.diffuser_units, case.ambient_units
    position = position_unit(case)
    return {
        "depth": diffuser["depth"],
        "diameter": diffuser["diameter"],
        "ambient_current_speed": ambient["current_speed"],
        "velocity": ambient["current_speed"],
        "x": position,
        "y": position,
        "concentration": diffuser["concentration"],
        "ambient_bg_conc": diffuser["concentration"],
        "salinity": ambient["salinity"],
        "temperature": ambient["temperature"],
        "ambient_salinity": ambient["salinity"],
        "ambient_temperature": ambient["temperature"],
    }


def farfield_unit_plan(case: "Case") -> dict[str, "Unit"]:
    """Far-field column -> the case unit it is shown in (columns not listed stay SI; lengths stay m)."""
    diffuser, ambient = case.diffuser_units, case.ambient_units
    return {
        "ff_velocity": ambient["ff_velocity"],
        "ff_dir": ambient["ff_dir"],
        "concentration": diffuser["concentration"],
        "background": diffuser["concentration"],
    }


def convert_from_si(values, unit: "Unit", context: dict[str, Any] | None = None):
    """Convert an array of SI values to `unit`: one multiply for factor units, else value by value.

    `context` holds per-value arrays for the keyword arguments of :func:`vp_jupyter.units.from_si`
    (``temperature_c``, ``salinity_psu``, ``depth_m``) that salinity and decay conversions need.
    Non-finite values stay NaN.
    """
    import numpy as np

    from .units import from_si

    values = np.asarray(values, dtype=float)
    if unit.kind in _FACTOR_KINDS:
        return values * from_si(1.0, unit)
    context = context or {}
    out = np.full(values.shape, np.nan)
    for i, value in enumerate(values):
        if math.isfinite(value):
            out[i] = from_si(float(value), unit, **{k: float(v[i]) for k, v in context.items()})
    return out
