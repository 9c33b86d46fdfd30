"""The outcome of every case of a Result as one row: what a mixing-zone decision is made on.

Columns (one row per case; ``attrs["units"]`` gives each unit):

* ``case``, ``time`` (case start, s);
* ``mz_dilution``, ``mz_concentration``, ``mz_distance``: at the acute mixing-zone boundary. Where the near
  field reaches it (the row marked "MZ dis"), that row; else, where the Brooks far field ran past it, the
  far field interpolated (linearly in distance) at the boundary; else the end of the near field, which is
  the conservative value (further mixing only adds dilution). ``mz_source`` says which: ``near field``,
  ``far field`` or ``end of near field``;
* ``dilution``, ``concentration``, ``source_distance`` (from the source), ``depth``: the last near-field row;
* ``rise_height``: port depth minus the shallowest depth the centre line reached (m);
* ``trap_dilution`` / ``trap_depth``, ``surface_dilution``, ``bottom_dilution``: at the first row marked
  "trap level", "surface" or "bottom hit" (NaN when the plume never got there);
* ``ff_dilution``: the last far-field row (NaN when the far field did not run);
* ``stop_reason``: why the near field ended.

Dilutions are the average (flux-weighted) dilution of the plume table; concentrations are in the case's
concentration unit; lengths in m.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..results import Result

MZ_MARK, TRAP_MARK, SURFACE_MARK, BOTTOM_MARK = "MZ dis", "trap level", "surface", "bottom hit"
MZ_SOURCES = ("near field", "far field", "end of near field")


def outcome_units(concentration_unit: str) -> dict[str, str]:
    """Column -> unit of the outcome table (concentrations in `concentration_unit`)."""
    return {
        "case": "", "time": "s", "mz_dilution": "1", "mz_concentration": concentration_unit, "mz_distance": "m",
        "mz_source": "", "dilution": "1", "concentration": concentration_unit, "source_distance": "m",
        "depth": "m", "rise_height": "m", "trap_dilution": "1", "trap_depth": "m", "surface_dilution": "1",
        "bottom_dilution": "1", "ff_dilution": "1", "stop_reason": "",
    }


OUTCOME_COLUMNS = tuple(outcome_units(""))
#: outcome columns that are numbers (statistics are taken of these)
NUMERIC_OUTCOMES = tuple(c for c in OUTCOME_COLUMNS if c not in ("case", "time", "mz_source", "stop_reason"))


def outcome_rows(result: "Result") -> list[dict[str, Any]]:
    """One dict per case of `result` (see the module docstring)."""
    from ..display_units import convert_from_si

    unit = result.case.diffuser_units["concentration"]
    to_case = float(convert_from_si([1.0], unit)[0])       # concentration units are factors of kg/kg
    rows = []
    for number, (output, far, engine, start) in enumerate(
            zip(result.outputs, result.farfield_outputs, result.engine_cases, result.case_times), start=1):
        cols = {name: np.asarray(values, dtype=float) for name, values in output.columns.items()}
        diffuser = engine.diffuser
        distance = np.hypot(cols["x"] - diffuser.offset_x, cols["y"] - diffuser.offset_y)
        row: dict[str, Any] = {"case": number, "time": float(start)}
        last = len(output.steps) - 1
        mark = _first(output.statuses, MZ_MARK)
        mz_limit = diffuser.acute_mixing_zone
        if mark is not None:
            row.update(mz_dilution=cols["dilution"][mark], mz_concentration=cols["concentration"][mark],
                       mz_distance=distance[mark], mz_source=MZ_SOURCES[0])
        elif far.was_run and far.steps and mz_limit > 0 and far.columns["distance"][-1] >= mz_limit:
            ff = {name: np.asarray(far.columns[name], dtype=float) for name in ("distance", "dilution", "concentration")}
            row.update(mz_dilution=float(np.interp(mz_limit, ff["distance"], ff["dilution"])),
                       mz_concentration=float(np.interp(mz_limit, ff["distance"], ff["concentration"])),
                       mz_distance=mz_limit, mz_source=MZ_SOURCES[1])
        elif last >= 0:
            row.update(mz_dilution=cols["dilution"][last], mz_concentration=cols["concentration"][last],
                       mz_distance=distance[last], mz_source=MZ_SOURCES[2])
        else:
            row.update(mz_dilution=math.nan, mz_concentration=math.nan, mz_distance=math.nan, mz_source="")
        row["mz_concentration"] *= to_case
        at_end = last if last >= 0 else None
        row.update(
            dilution=_at(cols["dilution"], at_end), concentration=_at(cols["concentration"], at_end) * to_case,
            source_distance=_at(distance, at_end), depth=_at(cols["depth"], at_end),
            rise_height=(diffuser.depth - float(np.nanmin(cols["depth"]))) if last >= 0 else math.nan)
        trap = _first(output.statuses, TRAP_MARK)
        row.update(trap_dilution=_at(cols["dilution"], trap), trap_depth=_at(cols["depth"], trap),
                   surface_dilution=_at(cols["dilution"], _first(output.statuses, SURFACE_MARK)),
                   bottom_dilution=_at(cols["dilution"], _first(output.statuses, BOTTOM_MARK)))
        row["ff_dilution"] = float(far.columns["dilution"][-1]) if far.was_run and far.steps else math.nan
        row["stop_reason"] = output.stop_reason
        rows.append({name: (float(value) if isinstance(value, (np.floating, np.integer)) else value)
                     for name, value in row.items()})
    return rows


def outcome_table(result: "Result") -> "pd.DataFrame":
    """The outcome rows of every case of `result` as a DataFrame (``attrs["units"]`` per column)."""
    import pandas as pd

    frame = pd.DataFrame(outcome_rows(result), columns=list(OUTCOME_COLUMNS))
    frame.attrs["units"] = outcome_units(result.case.diffuser_units["concentration"].label)
    return frame


def dilution_path(result: "Result", case: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal distance from the source (m) and average dilution along one case's near field and then its
    far field. The distance is made non-decreasing (a plume carried back over its source keeps its furthest
    reach), so dilution can be interpolated against it; non-finite rows are dropped."""
    output, far = result.outputs[case - 1], result.farfield_outputs[case - 1]
    diffuser = result.engine_cases[case - 1].diffuser
    x, y = np.asarray(output.columns["x"], dtype=float), np.asarray(output.columns["y"], dtype=float)
    reach = np.hypot(x - diffuser.offset_x, y - diffuser.offset_y)
    dilution = np.asarray(output.columns["dilution"], dtype=float)
    if far.was_run and far.steps:
        reach = np.concatenate([reach, np.asarray(far.columns["distance"], dtype=float)])
        dilution = np.concatenate([dilution, np.asarray(far.columns["dilution"], dtype=float)])
    finite = np.isfinite(reach) & np.isfinite(dilution)
    reach, dilution = reach[finite], dilution[finite]
    return (np.maximum.accumulate(reach) if reach.size else reach), dilution


def _first(statuses: list[str], mark: str) -> "int | None":
    for index, status in enumerate(statuses):
        if mark in status:
            return index
    return None


def _at(column: np.ndarray, index: "int | None") -> float:
    return float(column[index]) if index is not None else math.nan
