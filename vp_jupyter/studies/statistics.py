"""Statistics of an outcome table (the cases of a series, or the members of a study): percentiles, the
fraction of cases below a target dilution or above a concentration limit, and the exceedance curve.

    stats = vp.statistics(result, target_dilution=100, concentration_limit=0.5)
    stats.outcomes                    # one row per case (`studies.outcomes`)
    stats.percentiles()               # 1, 5, 10, 50, 90, 95, 99th percentiles of the numeric outcomes
    stats.fraction_below(100)         # share of cases whose dilution at the mixing-zone boundary is < 100
    stats.exceedance("mz_dilution")   # the exceedance curve as a table; stats.plot_exceedance() draws it

Definitions (documented in the README, section "Studies"):

* percentiles: linear interpolation between order statistics (`numpy.nanpercentile`, method "linear",
  Hyndman & Fan 1996 definition 7, as R and Excel's PERCENTILE.INC);
* ``fraction_below(t)``: the number of cases with a finite value strictly below t, over the number of
  cases with a finite value; ``fraction_above(c)`` likewise with strictly above. Cases where the outcome
  is missing (NaN) are left out of both counts and reported as ``missing``;
* exceedance curve: for each distinct value v, the fraction of cases whose value is at or below v
  (``fraction_at_or_below``, the empirical distribution function) and strictly above it
  (``fraction_above``, the empirical exceedance probability): plain fractions a reader can recount, no
  plotting-position formula.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

PERCENTILES = (1, 5, 10, 50, 90, 95, 99)
DILUTION, CONCENTRATION = "mz_dilution", "mz_concentration"


class OutcomeStatistics:
    """Statistics of an outcome table (see the module docstring).

    `outcomes`: a DataFrame with the numeric outcome columns of `studies.outcomes` (``attrs["units"]``).
    `target_dilution` / `concentration_limit`: the thresholds the summary counts against (optional;
    in the table's units: concentrations in the case's concentration unit)."""

    def __init__(self, outcomes: "pd.DataFrame", *, target_dilution: float | None = None,
                 concentration_limit: float | None = None, what: str = "cases"):
        self.outcomes = outcomes
        self.units = dict(outcomes.attrs.get("units") or {})
        self.target_dilution = check_threshold("target_dilution", target_dilution)
        self.concentration_limit = check_threshold("concentration_limit", concentration_limit)
        self.what = what

    def __repr__(self) -> str:
        return f"<OutcomeStatistics of {len(self.outcomes)} {self.what}>"

    def values(self, column: str) -> np.ndarray:
        """The finite values of one outcome column."""
        if column not in self.outcomes:
            raise KeyError(f"no outcome column {column!r}; columns: {', '.join(map(str, self.outcomes.columns))}")
        values = np.asarray(self.outcomes[column], dtype=float)
        return values[np.isfinite(values)]

    def percentiles(self, q: Sequence[float] = PERCENTILES, columns: Sequence[str] | None = None) -> "pd.DataFrame":
        """Percentiles (0-100) of the numeric outcomes: one row per percentile, one column per outcome."""
        import pandas as pd

        from .outcomes import NUMERIC_OUTCOMES

        q = [float(p) for p in q]
        if any(not 0 <= p <= 100 for p in q):
            raise ValueError(f"percentiles must lie in 0..100 (got {q})")
        columns = [c for c in (columns or NUMERIC_OUTCOMES) if c in self.outcomes]
        data = {}
        for column in columns:
            values = self.values(column)
            data[column] = (np.percentile(values, q, method="linear") if values.size
                            else np.full(len(q), np.nan))
        frame = pd.DataFrame(data, index=pd.Index(q, name="percentile"))
        frame.attrs["units"] = {c: self.units.get(c, "") for c in columns}
        return frame

    def fraction_below(self, target: float, column: str = DILUTION) -> float:
        """Share of cases (with a value) whose `column` is strictly below `target` (NaN when none has one)."""
        values = self.values(column)
        return float(np.count_nonzero(values < target) / values.size) if values.size else math.nan

    def fraction_above(self, limit: float, column: str = CONCENTRATION) -> float:
        """Share of cases (with a value) whose `column` is strictly above `limit` (NaN when none has one)."""
        values = self.values(column)
        return float(np.count_nonzero(values > limit) / values.size) if values.size else math.nan

    def missing(self, column: str = DILUTION) -> int:
        """Cases without a finite value of `column`."""
        return int(len(self.outcomes) - self.values(column).size)

    def exceedance(self, column: str = DILUTION) -> "pd.DataFrame":
        """The exceedance curve of one outcome: each distinct finite value, how many cases have it, the
        fraction at or below it and the fraction strictly above it."""
        import pandas as pd

        values = np.sort(self.values(column))
        distinct, counts = np.unique(values, return_counts=True)
        at_or_below = np.cumsum(counts) / values.size if values.size else counts.astype(float)
        frame = pd.DataFrame({"value": distinct, "count": counts, "fraction_at_or_below": at_or_below,
                              "fraction_above": 1.0 - at_or_below})
        frame.attrs["units"] = {"value": self.units.get(column, ""), "count": "", "fraction_at_or_below": "",
                                "fraction_above": ""}
        frame.attrs["column"] = column
        return frame

    def summary(self) -> dict[str, Any]:
        """The headline numbers: count, missing, 10th / 50th / 90th percentile dilution at the boundary,
        and the fractions against the thresholds given (JSON-safe)."""
        from ..results import json_safe

        dilution = self.values(DILUTION)
        out: dict[str, Any] = {"count": int(len(self.outcomes)), "missing": self.missing(DILUTION)}
        for p in (5, 10, 50, 90, 95):
            out[f"p{p}_mz_dilution"] = float(np.percentile(dilution, p)) if dilution.size else math.nan
        if self.target_dilution is not None:
            out["target_dilution"] = self.target_dilution
            out["fraction_below_target"] = self.fraction_below(self.target_dilution)
        if self.concentration_limit is not None:
            out["concentration_limit"] = self.concentration_limit
            out["fraction_above_limit"] = self.fraction_above(self.concentration_limit)
        return json_safe(out)

    def plot_exceedance(self, column: str = DILUTION, ax: Any = None) -> "Figure":
        """The exceedance curve: fraction of cases at or below each value (log value axis when all are
        positive), with the target dilution or concentration limit marked."""
        from .plots import exceedance_figure

        threshold = self.target_dilution if column == DILUTION else (
            self.concentration_limit if column == CONCENTRATION else None)
        return exceedance_figure(self.exceedance(column), column, self.units.get(column, ""), threshold,
                                 self.what, ax=ax)

    def _repr_html_(self) -> str:
        import html

        summary = self.summary()
        table = self.percentiles(columns=[DILUTION, CONCENTRATION, "source_distance", "rise_height"])
        lines = [f"<p><strong>Outcome statistics</strong> of {summary['count']} {html.escape(self.what)}"
                 f" ({summary['missing']} without a dilution at the mixing-zone boundary)</p>"]
        if "fraction_below_target" in summary:
            lines.append(f"<p>below the target dilution {self.target_dilution:g}: "
                         f"{_percent(summary['fraction_below_target'])}</p>")
        if "fraction_above_limit" in summary:
            lines.append(f"<p>above the concentration limit {self.concentration_limit:g}: "
                         f"{_percent(summary['fraction_above_limit'])}</p>")
        return "".join(lines) + table.to_html(float_format=lambda v: f"{v:.4g}")


def statistics(source: Any, *, target_dilution: float | None = None,
               concentration_limit: float | None = None) -> OutcomeStatistics:
    """Outcome statistics of a Result's cases (a time series) or of a Study's members.

    `target_dilution`: count the cases whose dilution at the mixing-zone boundary is below it;
    `concentration_limit`: count those whose concentration there is above it (case concentration units)."""
    from ..results import Result
    from .study import Study

    if isinstance(source, Study):
        return source.statistics(target_dilution=target_dilution, concentration_limit=concentration_limit)
    if not isinstance(source, Result):
        raise TypeError(f"statistics of a Result or a Study (got {type(source).__name__})")
    from .outcomes import outcome_table

    return OutcomeStatistics(outcome_table(source), target_dilution=target_dilution,
                             concentration_limit=concentration_limit)


def check_threshold(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a number > 0 (got {value!r})")
    return float(value)


def _percent(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f} %"
