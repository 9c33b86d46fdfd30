"""`Study`: the outcome of `vp.uncertainty` or `vp.sensitivity`: its members table, statistics, plots,
report, and its JSON form (how it is stored in the archive store and sent by the JSON API).

    study.members              # one row per member (and case): sampled inputs, status, problem, outcomes
    study.quantiles()          # 5 / 50 / 95 % of the outcomes over the members that ran
    study.indices              # sensitivity studies: Sobol S1 / ST with confidence intervals, or Morris mu*, sigma
    study.plot_distribution()  # histogram of the dilution at the mixing-zone boundary
    study.plot_fan()           # dilution against distance: median and 5-95 % band
    study.report("study.html") # one self-contained HTML file

A member whose sampled values the input layer refuses (e.g. a negative flow drawn from a wide normal) is
not run: its row has status ``invalid`` and the input layer's message in ``problem``; a member the model
itself refuses has status ``refused`` and the model's message. Statistics are taken over the members that
ran (``ok``).
"""
from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .outcomes import NUMERIC_OUTCOMES
from .statistics import CONCENTRATION, DILUTION, OutcomeStatistics

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from ..inputs import Case
    from ..results import Result

KINDS = ("uncertainty", "sensitivity")
FORMAT = 1
STUDY_FILE = "study.json"       # the study's document in its run folder of the archive store
QUANTILES = (0.05, 0.5, 0.95)


class Study:
    """A study of one case (see the module docstring). `kind`: uncertainty or sensitivity; `inputs`: key ->
    the distribution (uncertainty) or [low, high] bounds (sensitivity) as given, JSON-safe; `settings`:
    n, seed, method, …; `members`: the members table; `fan`: dilution quantiles against distance; `indices`:
    the sensitivity indices (None for an uncertainty study); `results`: the members' Results (in memory
    only; None for invalid members and for a study loaded from the store)."""

    def __init__(self, kind: str, case: "Case", inputs: dict[str, Any], settings: dict[str, Any],
                 members: "pd.DataFrame", fan: "pd.DataFrame | None" = None, indices: "pd.DataFrame | None" = None,
                 results: "Sequence[Result | None] | None" = None, provenance: dict[str, Any] | None = None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
        self.kind, self.case, self.inputs, self.settings = kind, case, dict(inputs), dict(settings)
        self.members, self.fan, self.indices = members, fan, indices
        self.results = list(results) if results is not None else None
        self.provenance = dict(provenance or {})
        self.run_id: str | None = None

    # -- numbers -----------------------------------------------------------------------------------

    @property
    def ok(self) -> "pd.DataFrame":
        """The rows of the members that ran."""
        frame = self.members[self.members["status"] == "ok"]
        frame.attrs = dict(self.members.attrs)
        return frame

    @property
    def invalid(self) -> "pd.DataFrame":
        """Members that did not run: refused by the input layer or by the model (with the `problem`)."""
        keys = [c for c in ("member", *self.inputs, "problem") if c in self.members]
        return self.members.loc[self.members["status"] != "ok", keys]

    def statistics(self, *, target_dilution: float | None = None,
                   concentration_limit: float | None = None) -> OutcomeStatistics:
        """Outcome statistics over the members that ran (percentiles, fractions below / above, exceedance)."""
        return OutcomeStatistics(self.ok, target_dilution=target_dilution,
                                 concentration_limit=concentration_limit, what="members")

    def quantiles(self, q: Sequence[float] = QUANTILES, columns: Sequence[str] | None = None) -> "pd.DataFrame":
        """Quantiles (0-1) of the outcomes over the members that ran: one row per quantile."""
        frame = self.statistics().percentiles([100 * float(v) for v in q], columns)
        frame.index = frame.index / 100
        frame.index.name = "quantile"
        return frame

    def summary(self) -> dict[str, Any]:
        """Counts of members (total, ran, invalid) and the headline statistics (JSON-safe)."""
        from ..results import json_safe

        settings = self.settings
        stats = self.statistics(target_dilution=settings.get("target_dilution"),
                                concentration_limit=settings.get("concentration_limit")).summary()
        members = self.members.drop_duplicates("member")
        out = {"members": int(len(members)), "ran": int((members["status"] == "ok").sum()),
               "invalid": int((members["status"] != "ok").sum()), **stats}
        return json_safe(out)

    # -- plots -------------------------------------------------------------------------------------

    def plot_distribution(self, column: str = DILUTION, ax: Any = None) -> "Figure":
        """Histogram of one outcome over the members that ran, with the 5 / 50 / 95 % quantiles."""
        from .plots import distribution_figure

        values = np.asarray(self.ok[column], dtype=float) if column in self.ok else np.array([])
        quantiles = self.quantiles(columns=[column])[column].to_dict() if column in self.ok else {}
        return distribution_figure(values, column, self.units.get(column, ""), quantiles, ax=ax)

    def plot_fan(self, ax: Any = None) -> "Figure":
        """Dilution against horizontal distance: median, 25-75 % and 5-95 % bands across members."""
        from .plots import fan_figure

        if self.fan is None or self.fan.empty:
            raise ValueError("this study has no dilution profiles (no member ran)")
        return fan_figure(self.fan, self._mixing_zone_m() or None, ax=ax)

    def plot_indices(self, ax: Any = None) -> "Figure":
        """The sensitivity indices as a bar chart (sensitivity studies)."""
        from .plots import indices_figure

        if self.indices is None:
            raise ValueError("an uncertainty study has no sensitivity indices; use vp.sensitivity")
        return indices_figure(self.indices, self.settings["method"], self.settings["output"], ax=ax)

    def plot_exceedance(self, column: str = DILUTION, ax: Any = None) -> "Figure":
        """The exceedance curve of one outcome over the members that ran."""
        settings = self.settings
        return self.statistics(target_dilution=settings.get("target_dilution"),
                               concentration_limit=settings.get("concentration_limit")).plot_exceedance(column, ax)

    def report(self, path: Any = None, *, pdf: Any = None) -> str:
        """The study as one self-contained HTML file (see :mod:`vp_jupyter.report_html`): written to
        `path` when given; the HTML text is returned. `pdf`: also print it to this PDF file (headless
        Chromium)."""
        from ..report_html import write_report

        return write_report(self, path, pdf=pdf)

    # -- facts -------------------------------------------------------------------------------------

    @property
    def units(self) -> dict[str, str]:
        return dict(self.members.attrs.get("units") or {})

    def _mixing_zone_m(self) -> float:
        engine = self.case.engine_cases()[0]
        return float(engine.diffuser.acute_mixing_zone)

    def __repr__(self) -> str:
        summary = self.summary()
        return (f"<Study {self.kind} of {self.case.name!r}: {summary['members']} members, {summary['ran']} ran, "
                f"{summary['invalid']} invalid>")

    def _repr_html_(self) -> str:
        summary = self.summary()
        rows = "".join(f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(_text(v))}</td></tr>"
                       for k, v in self.inputs.items())
        quantiles = self.quantiles(columns=[DILUTION, CONCENTRATION, "source_distance", "rise_height"])
        indices = "" if self.indices is None else self.indices.to_html(index=False, float_format=lambda v: f"{v:.3g}")
        run = f"<p>run id <code>{html.escape(self.run_id)}</code></p>" if self.run_id else ""
        return (f"<div><strong>vp-jupyter {self.kind} study</strong> of {html.escape(str(self.case.name))}: "
                f"{summary['members']} members ({summary['ran']} ran, {summary['invalid']} invalid)"
                f"<table><thead><tr><th>input</th><th>{'distribution' if self.kind == 'uncertainty' else 'range'}"
                f"</th></tr></thead><tbody>{rows}</tbody></table>"
                f"{quantiles.to_html(float_format=lambda v: f'{v:.4g}')}{indices}{run}"
                "<p><code>.members</code>, <code>.quantiles()</code>, <code>.statistics()</code>, "
                "<code>.plot_distribution()</code>, <code>.plot_fan()</code>, <code>.report()</code></p></div>")

    # -- JSON --------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (non-finite numbers become null): what the store keeps and the API sends."""
        from .. import __version__
        from ..results import json_safe

        return json_safe({
            "format": FORMAT, "kind": "study", "study": self.kind, "vp_jupyter_version": __version__,
            "name": self.case.name, "inputs": self.inputs, "settings": self.settings,
            "summary": self.summary(), "provenance": self.provenance,
            "members": _frame_dict(self.members),
            "fan": _frame_dict(self.fan) if self.fan is not None else None,
            "indices": _frame_dict(self.indices) if self.indices is not None else None,
            "case": self.case.to_dict(inline_files=True),
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any], case: "Case | None" = None) -> "Study":
        """A Study from :meth:`to_dict` output (its members' Results are not kept: `results` is None)."""
        from ..inputs import Case

        if data.get("kind") != "study":
            raise ValueError("not a study document (its 'kind' is not 'study')")
        case = case if case is not None else Case.from_dict(data["case"])
        members = _frame_from(data["members"], numeric=NUMERIC_OUTCOMES + tuple(data.get("inputs") or ()))
        fan = _frame_from(data["fan"]) if data.get("fan") else None
        indices = _frame_from(data["indices"]) if data.get("indices") else None
        return cls(data["study"], case, data.get("inputs") or {}, data.get("settings") or {}, members, fan, indices,
                   provenance=data.get("provenance"))


def is_study_document(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "study"


def _frame_dict(frame: "pd.DataFrame") -> dict[str, Any]:
    return {"columns": list(map(str, frame.columns)),
            "data": {str(c): frame[c].tolist() for c in frame.columns},
            "units": dict(frame.attrs.get("units") or {})}


def _frame_from(data: dict[str, Any], numeric: Sequence[str] = ()) -> "pd.DataFrame":
    import pandas as pd

    columns = data["columns"]
    values = {c: data["data"][c] for c in columns}
    for column in columns:              # null (a non-finite number in JSON) back to NaN
        if column in numeric or all(v is None or isinstance(v, (int, float)) for v in values[column]):
            if not any(isinstance(v, bool) for v in values[column]):
                values[column] = [math.nan if v is None else v for v in values[column]]
    frame = pd.DataFrame(values, columns=columns)
    frame.attrs["units"] = dict(data.get("units") or {})
    return frame


def _text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"{value[0]}({', '.join(f'{v:g}' if isinstance(v, (int, float)) else str(v) for v in value[1:])})" \
            if value and isinstance(value[0], str) else " … ".join(f"{v:g}" for v in value)
    return str(value)

