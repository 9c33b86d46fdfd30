"""Result of a run: the plume table (SI, units in attrs), its case-unit view, memos, summary, JSON form.

A :class:`Result` wraps the engine's raw :class:`~vp_jupyter.engine.types.CaseOutput` objects (one per
case) and builds tables from their columns on demand. pandas is imported only when a table is asked
for, so the command line can summarise and serialise a run without it.
"""
from __future__ import annotations

import html
import json
import math
from functools import cached_property
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .display_units import case_unit_plan, convert_from_si, farfield_unit_plan, position_unit
from .engine.types import FARFIELD_COLUMNS, PLUME_COLUMNS, CaseOutput, EngineCase, FarFieldOutput, TidalOutput
from .output_table import FARFIELD, PLUME, OutputTable

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

    from .inputs import Case

# leading bookkeeping columns of the plume table (no physical unit)
INDEX_COLUMNS = ("case", "step", "status")
UNITLESS = ""


# summary columns (final row of every case) and their SI units
SUMMARY_UNITS = {
    "case": UNITLESS,
    "start_time": "s",
    "steps": UNITLESS,
    "status": UNITLESS,
    "stop_reason": UNITLESS,
    "dilution": "1",
    "cl_dilution": "1",
    "depth": "m",
    "horizontal_distance": "m",
    "source_distance": "m",
    "diameter": "m",
    "concentration": "kg/kg",
    "travel_time": "s",
}


class Result:
    """The outcome of :func:`vp_jupyter.run`.

    Attributes and methods:

    * ``case`` — the :class:`~vp_jupyter.inputs.Case` that was run; ``cases`` — number of cases.
    * ``outputs`` — the raw engine outputs, one :class:`CaseOutput` per case (read them, do not change them:
      the tables are built from them once); ``plume_table`` / ``farfield_table`` — the same joined over the
      cases, a float array per column (:class:`~vp_jupyter.output_table.OutputTable`).
    * ``plume`` — DataFrame, one row per written step of every case, SI units
      (``plume.attrs["units"]``); ``plume_in_case_units()`` — the same in the case's own units.
    * ``farfield`` — DataFrame of the Brooks far-field rows (SI); ``farfield_in_case_units()``;
      ``farfield_memos``; ``tidal`` — the tidal pollution buildup output.
    * ``memos`` — ``{case number: [memo lines]}``; ``summary()`` — one row per case.
    * ``to_dict()`` / ``to_json()`` — JSON-safe form (non-finite numbers become null).
    * ``text_report()`` — the Visual Plumes style text report; ``plot()`` — the standard views (matplotlib);
      ``report(path)`` — a self-contained HTML report.
    * ``run_id`` — the id of the run in the archive store when it was recorded (``vp.load(run_id)``).
    """

    def __init__(self, case: "Case", outputs: "Sequence[CaseOutput] | OutputTable",
                 engine_cases: Sequence[EngineCase] | None = None,
                 farfields: "Sequence[FarFieldOutput] | OutputTable | None" = None, tidal: TidalOutput | None = None):
        """`outputs` / `farfields`: the engine outputs of every case, as a list or joined in an OutputTable
        (as chunks of a run hand them over); the other form is built from it when asked for."""
        self.case = case
        if isinstance(outputs, OutputTable):
            self._outputs: "list[CaseOutput] | None" = None
            self.plume_table = outputs
        else:
            self._outputs = list(outputs)
        if isinstance(farfields, OutputTable):
            self._farfield_outputs: "list[FarFieldOutput] | None" = None
            self.farfield_table = farfields
        else:
            self._farfield_outputs = (list(farfields) if farfields is not None
                                      else [FarFieldOutput() for _ in range(self.case_count)])
        self._engine_cases = list(engine_cases) if engine_cases is not None else None
        self.tidal: TidalOutput = tidal if tidal is not None else TidalOutput()
        self.run_id: str | None = None          # set when the run is recorded in the archive store
        self.worker_pids: list[int] = []        # processes that computed it (`sweeps.run_cases`)
        expected = len(case.case_times)
        farfield_count = len(self._farfield_outputs if self._farfield_outputs is not None else self.farfield_table)
        if self.case_count != expected or len(self.engine_cases) != expected or farfield_count != expected:
            raise ValueError(f"the case has {expected} case(s) but {self.case_count} output(s), {farfield_count} "
                             f"far-field output(s) and {len(self.engine_cases)} engine case(s) were given")

    @property
    def outputs(self) -> list[CaseOutput]:
        """The engine output of every case."""
        if self._outputs is None:
            self._outputs = self.plume_table.outputs()
        return self._outputs

    @property
    def farfield_outputs(self) -> list[FarFieldOutput]:
        """The Brooks far-field output of every case (was_run False where it was not run)."""
        if self._farfield_outputs is None:
            self._farfield_outputs = self.farfield_table.outputs()
        return self._farfield_outputs

    @cached_property
    def plume_table(self) -> OutputTable:
        """The plume outputs of every case joined: a float array per column, rows per case, steps, statuses."""
        return OutputTable.from_outputs(self.outputs, PLUME)

    @cached_property
    def farfield_table(self) -> OutputTable:
        """The far-field outputs of every case joined (no rows where it was not run)."""
        return OutputTable.from_outputs(self.farfield_outputs, FARFIELD)

    # -- basic facts -------------------------------------------------------------------------------

    @property
    def case_count(self) -> int:
        """Number of cases run."""
        return len(self._outputs) if self._outputs is not None else len(self.plume_table)

    @cached_property
    def cases(self) -> "pd.DataFrame":
        """One row per case, indexed by case number: its start time (s) and the SI diffuser inputs and
        ambient values at the port actually used (time series applied), plus the tidal buildup fed in."""
        import pandas as pd

        from .engine.ambient import AmbientColumn, AmbientState

        rows = []
        for number, (engine_case, start) in enumerate(zip(self.engine_cases, self.case_times), start=1):
            dif, st = engine_case.diffuser, engine_case.settings
            column = AmbientColumn(engine_case.ambient, vector_averaging=st.current_vector_averaging,
                                   at_equilibrium=st.at_equilibrium, bacteria_model=st.bacteria_model,
                                   light_absorb_coeff=st.light_absorb_coeff)
            at_port = column.evaluate(dif.depth, AmbientState(), near_field=False)
            row = {"case": number, "time": start}
            row.update({name: getattr(dif, name) for name in CASE_DIFFUSER_UNITS})
            row.update({f"port_{name}": getattr(at_port, name) for name in CASE_AMBIENT_UNITS})
            row["bottom_depth"] = engine_case.ambient.bottom_depth
            row["buildup"] = (self.tidal.buildup[number - 1] if number <= len(self.tidal.buildup)
                              else engine_case.buildup)
            rows.append(row)
        frame = pd.DataFrame(rows).set_index("case", drop=False)
        frame.index.name = None
        frame.attrs["units"] = {"case": UNITLESS, "time": "s", **CASE_DIFFUSER_UNITS,
                                **{f"port_{k}": v for k, v in CASE_AMBIENT_UNITS.items()},
                                "bottom_depth": "m", "buildup": "kg/kg"}
        return frame

    @cached_property
    def farfield(self) -> "pd.DataFrame":
        """Brooks far-field rows of every case (spec §10), SI, ``attrs["units"]`` per column; empty
        (with the columns) when the far field was not run."""
        import pandas as pd

        data = _table_columns(self.farfield_table)
        frame = pd.DataFrame(data)
        frame.attrs["units"] = {"case": UNITLESS, "step": UNITLESS, **FARFIELD_COLUMNS}
        return frame

    def farfield_in_case_units(self) -> "pd.DataFrame":
        """The far-field table converted to the units the case was given in (as Visual Plumes reports it).

        ``ff_velocity`` in the ambient far-field speed units, ``ff_dir`` in the ambient far-field direction
        units (compass units give bearings clockwise from north), ``concentration`` and ``background`` in
        the diffuser concentration units. ``distance``, ``width``, ``x`` and ``y`` stay in m (Visual Plumes
        reports the far field in metres whatever the input units); ``time`` stays in s (the text report shows
        hours); decay rate (s-1), dispersion and the diffusivity argument stay as they are.
        ``attrs["units"]`` gives the unit of every column.
        """
        si = self.farfield
        frame = si.copy()
        units = dict(si.attrs["units"])
        for name, unit in farfield_unit_plan(self.case).items():
            frame[name] = convert_from_si(si[name].to_numpy(), unit)
            units[name] = unit.label
        frame.attrs["units"] = units
        return frame

    @property
    def farfield_memos(self) -> dict[int, list[str]]:
        """Far-field memo lines per case (1-based); empty lists when the far field was not run."""
        return {number: list(o.memos) for number, o in enumerate(self.farfield_outputs, start=1)}

    @property
    def engine_cases(self) -> list[EngineCase]:
        """The SI engine inputs of every case (recomputed from the case when not given)."""
        if self._engine_cases is None:
            self._engine_cases = list(self.case.engine_cases())
        return self._engine_cases

    @cached_property
    def case_times(self) -> tuple[float, ...]:
        """Start time of every case in seconds (0 without a time series; spec §12); read once from the case
        (reports index it once per case)."""
        return tuple(self.case.case_times)

    @property
    def memos(self) -> dict[int, list[str]]:
        """Memo lines per case (1-based): the step-0 memos, then the post-run memos split into lines."""
        return {number: memo_lines(output) for number, output in enumerate(self.outputs, start=1)}

    # -- tables ------------------------------------------------------------------------------------

    @cached_property
    def plume(self) -> "pd.DataFrame":
        """Every written step of every case, SI units; ``attrs["units"]`` maps each column to its unit.

        Columns: ``case`` (1-based), ``step``, ``status``, then every engine plume column
        (``depth``, ``diameter``, ``x``, ``y``, ``dilution``, ``cl_dilution``, ``concentration``, …).
        """
        import pandas as pd

        data = _table_columns(self.plume_table)
        frame = pd.DataFrame(data)
        frame.attrs["units"] = {**{c: UNITLESS for c in INDEX_COLUMNS}, **PLUME_COLUMNS}
        return frame

    def plume_in_case_units(self) -> "pd.DataFrame":
        """The plume table converted to the units the case was given in.

        Following the Visual Plumes plume columns: ``depth`` in the diffuser depth units, ``diameter``
        in the diffuser diameter units, ``ambient_current_speed`` and ``velocity`` in the ambient
        current-speed units, ``x`` / ``y`` in ft when the current speed is in ft/s, kts, mph or ftm/s
        (else m), ``concentration`` and ``ambient_bg_conc`` in the diffuser concentration units, the
        salinity and temperature columns (plume and ambient) in the ambient salinity / temperature
        units. Every other column stays SI. ``attrs["units"]`` gives the unit of every column.
        """
        si = self.plume
        frame = si.copy()
        units = dict(si.attrs["units"])
        for name, unit in case_unit_plan(self.case).items():
            frame[name] = convert_from_si(si[name].to_numpy(), unit, _context_columns(si, name))
            units[name] = unit.label
        frame.attrs["units"] = units
        return frame

    def summary(self) -> "pd.DataFrame":
        """One row per case: final step, status, dilution, depth, horizontal distance, … (SI).

        ``horizontal_distance`` is measured from the coordinate origin, ``source_distance`` from the
        diffuser source (its x/y offsets), as the plume columns of the same names.
        """
        import pandas as pd

        frame = pd.DataFrame(self.final_rows(), columns=list(SUMMARY_UNITS))
        frame.attrs["units"] = dict(SUMMARY_UNITS)
        return frame

    def final_rows(self) -> list[dict[str, Any]]:
        """The summary rows as plain dicts (no pandas needed)."""
        import numpy as np

        table = self.plume_table
        last = table.last_rows()
        has_rows = last >= 0
        at_last = np.where(has_rows, last, 0)

        def final(values: Any, empty: Any) -> list:
            """The value of every case's last row; `empty` for a case without rows."""
            picked = values[at_last] if len(values) else np.zeros(len(last), dtype=values.dtype)
            return [value if ok else empty for value, ok in zip(picked.tolist(), has_rows.tolist())]

        finals = {name: final(table.columns[name], math.nan)
                  for name in ("dilution", "cl_dilution", "depth", "x", "y", "diameter", "concentration", "time")}
        steps = final(table.steps, 0)
        statuses = [table.statuses[index] if index >= 0 else "" for index in last.tolist()]
        rows = []
        for index, (engine_case, start, stop_reason) in enumerate(
                zip(self.engine_cases, self.case_times, table.field("stop_reason"))):
            diffuser = engine_case.diffuser
            x, y = finals["x"][index], finals["y"][index]
            rows.append({
                "case": index + 1,
                "start_time": start,
                "steps": steps[index],
                "status": statuses[index],
                "stop_reason": stop_reason,
                "dilution": finals["dilution"][index],
                "cl_dilution": finals["cl_dilution"][index],
                "depth": finals["depth"][index],
                "horizontal_distance": math.hypot(x, y),
                "source_distance": math.hypot(x - diffuser.offset_x, y - diffuser.offset_y),
                "diameter": finals["diameter"][index],
                "concentration": finals["concentration"][index],
                "travel_time": finals["time"][index],
            })
        return rows

    def _display_rows(self) -> tuple[list[dict[str, Any]], str, str]:
        """Summary rows with depth and distance from the source in case units, and those two unit labels."""
        from .units import from_si

        depth_unit, distance_unit = self.case.diffuser_units["depth"], position_unit(self.case)
        rows = [{**row, "depth": from_si(row["depth"], depth_unit),
                 "source_distance": from_si(row["source_distance"], distance_unit)}
                for row in self.final_rows()]
        return rows, depth_unit.label, distance_unit.label

    def case_lines(self) -> list[str]:
        """One line per case: final step, status, dilution, depth and distance in case units (the CLI's)."""
        rows, depth_label, distance_label = self._display_rows()
        return [f"case {row['case']}: {row['steps']} steps, {row['status'] or row['stop_reason'] or 'no status'}, "
                f"dilution {row['dilution']:.2f}, depth {row['depth']:.2f} {depth_label}, "
                f"distance from source {row['source_distance']:.2f} {distance_label}"
                for row in rows]

    # -- serialisation and display -----------------------------------------------------------------

    def to_dict(self, tables: bool = True, *, columns_as_they_are: bool = False) -> dict[str, Any]:
        """JSON-safe form: inputs, SI units, per-case columnar plume rows, memos and summary. `tables=False`
        leaves out the per-case steps, statuses and columns (the archive store keeps those as Parquet).

        `columns_as_they_are`: the plume and far-field columns are the outputs' own lists, not copies
        with NaN and ±Infinity as None: for a writer that turns those into null itself."""
        from . import __version__

        # the columns are most of the data: made JSON-safe a column at a time (`_json_floats`), not value by value
        columns_of = (lambda output, names: {name: output.columns[name] for name in names}) if columns_as_they_are \
            else (lambda output, names: {name: _json_floats(output.columns[name]) for name in names})

        start_times = [json_safe(time) for time in self.case_times]
        if tables:
            per_case = [{"case": number, "start_time": start_times[number - 1], "steps": list(output.steps),
                         "statuses": list(output.statuses), "columns": columns_of(output, PLUME_COLUMNS),
                         "memos": list(output.memos), "postmemos": list(output.postmemos)}
                        for number, output in enumerate(self.outputs, start=1)]
            farfield = [{"case": number, "was_run": output.was_run, "steps": list(output.steps),
                         "columns": columns_of(output, FARFIELD_COLUMNS), "memos": list(output.memos)}
                        for number, output in enumerate(self.farfield_outputs, start=1)]
        else:       # from the joined tables: the per-case outputs are not needed
            plume, far = self.plume_table, self.farfield_table
            per_case = [{"case": number, "start_time": start_times[number - 1], "memos": list(memos),
                         "postmemos": list(postmemos)}
                        for number, (memos, postmemos) in enumerate(zip(plume.field("memos"), plume.field("postmemos")),
                                                                    start=1)]
            farfield = [{"case": number, "was_run": was_run, "memos": list(memos)}
                        for number, (was_run, memos) in enumerate(zip(far.field("was_run"), far.field("memos")), start=1)]
        head = json_safe({
            "vp_jupyter_version": __version__,
            "name": self.case.name,
            "cases": self.case_count,
            "units": dict(PLUME_COLUMNS),
            "farfield_units": dict(FARFIELD_COLUMNS),
        })
        tail = json_safe({
            "tidal": {"was_run": self.tidal.was_run, "buildup": list(self.tidal.buildup),
                      "highest": self.tidal.highest, "memos": list(self.tidal.memos)},
        })
        tail["summary"] = [_json_safe_row(row) for row in self.final_rows()]
        return {**head, "farfield": farfield, **tail, "plume": per_case, "case": json_safe(self.case.to_dict())}

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as strict JSON text (no NaN / Infinity)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: "Mapping[str, Any]", case: "Case | None" = None) -> "Result":
        """Rebuild a Result from :meth:`to_dict` output (for example a stored run's result, ``RunStore.load_result``).

        `case`: the Case that was run (default: rebuilt from ``data["case"]``). The plume, far-field and
        tidal tables come back equal, except that values that were not finite (stored as null) come back as
        NaN. The engine's final element state (``CaseOutput.final``) is not stored: it is None.
        """
        from .inputs import Case
        from .inputs.normalise import MAX_CASES

        per_case = data.get("plume") or []
        if case is None:
            case = Case.from_dict(data["case"], max_cases=max(MAX_CASES, len(per_case)))
        summary = data.get("summary") or []
        plumes = []
        for index, entry in enumerate(per_case):
            columns = entry.get("columns") or {}
            stop_reason = summary[index].get("stop_reason") if index < len(summary) else None
            plumes.append(CaseOutput(
                steps=[int(step) for step in entry.get("steps") or []],
                statuses=["" if s is None else str(s) for s in entry.get("statuses") or []],
                # a column added since the result was stored reads as NaN
                columns={name: _floats_from_json(columns.get(name)) or [math.nan] * len(entry.get("steps") or [])
                         for name in PLUME_COLUMNS},
                memos=list(entry.get("memos") or []),
                postmemos=list(entry.get("postmemos") or []),
                stop_reason=stop_reason or ""))
        farfields = None
        if data.get("farfield") is not None:
            farfields = [FarFieldOutput(
                was_run=bool(entry.get("was_run")),
                steps=[int(step) for step in entry.get("steps") or []],
                columns={name: _floats_from_json((entry.get("columns") or {}).get(name))
                         for name in FARFIELD_COLUMNS},
                memos=list(entry.get("memos") or []))
                for entry in data["farfield"]]
        tidal_data = data.get("tidal") or {}
        tidal = TidalOutput(was_run=bool(tidal_data.get("was_run")),
                            buildup=_floats_from_json(tidal_data.get("buildup")),
                            highest=_float_from_json(tidal_data.get("highest", 0.0)),
                            memos=list(tidal_data.get("memos") or []))
        return cls(case, plumes, None, farfields, tidal)

    def plot(self, case: int = 1, views: "str | Sequence[str]" = ("elevation", "plan", "dilution", "concentration"),
             ax: Any = None, **kwargs: Any) -> "Figure":
        """The standard Visual Plumes views of one case as a matplotlib Figure (see :mod:`vp_jupyter.plots`):
        elevation (side view), plan view, dilution and concentration against distance, with the mixing zone
        and the isopleth. `case`: 1-based case number; `views`: one name or several; `ax`: axes to draw into."""
        from .plots import plot_result

        return plot_result(self, case=case, views=views, ax=ax, **kwargs)

    def text_report(self) -> str:
        """The Visual Plumes style text report (see :func:`vp_jupyter.report.text_report`)."""
        from .report import text_report

        return text_report(self)

    def report(self, path: Any = None, *, pdf: Any = None, target_dilution: float | None = None,
               concentration_limit: float | None = None) -> str:
        """The report a regulator can read: one self-contained HTML file (inputs with units, summary,
        plots, the text report, memos, deviations that apply, provenance; see :mod:`vp_jupyter.report_html`),
        written to `path` when given; the HTML text is returned. `pdf`: also print it to this PDF file
        (needs a headless Chromium). A series' statistics count the cases below `target_dilution` and
        above `concentration_limit` (case concentration units) when given."""
        from .report_html import write_report

        return write_report(self, path, pdf=pdf, target_dilution=target_dilution,
                            concentration_limit=concentration_limit)

    def __repr__(self) -> str:
        return f"<Result {self.case.name!r}: {self.case_count} case(s), {sum(len(o.steps) for o in self.outputs)} plume rows>"

    def _repr_html_(self) -> str:
        rows, depth_label, distance_label = self._display_rows()
        shown = rows[:10]
        body = "".join(
            f"<tr><td>{r['case']}</td><td>{r['steps']}</td><td>{html.escape(r['status'] or r['stop_reason'])}</td>"
            f"<td>{r['dilution']:.4g}</td><td>{r['depth']:.4g}</td><td>{r['source_distance']:.4g}</td></tr>"
            for r in shown)
        more = f"<p>… {len(rows) - len(shown)} more cases</p>" if len(rows) > len(shown) else ""
        return (
            f"<div><strong>vp-jupyter result</strong> {html.escape(str(self.case.name))}: "
            f"{self.case_count} case(s)"
            "<table><thead><tr><th>case</th><th>steps</th><th>final status</th><th>dilution</th>"
            f"<th>depth ({html.escape(depth_label)})</th>"
            f"<th>distance from source ({html.escape(distance_label)})</th></tr></thead>"
            f"<tbody>{body}</tbody></table>{more}{self._farfield_html()}{self._tidal_html()}"
            f"{self._run_id_html()}"
            "<p><code>.plume</code> (SI), <code>.plume_in_case_units()</code>, <code>.memos</code>, "
            "<code>.summary()</code>, <code>.text_report()</code>, <code>.plot()</code></p></div>")

    def _run_id_html(self) -> str:
        """The run id when the run is recorded in the archive store, else empty."""
        if self.run_id is None:
            return ""
        return f"<p>run id <code>{html.escape(self.run_id)}</code> (<code>vp.load(run_id)</code>)</p>"

    def _farfield_html(self) -> str:
        """One paragraph on the Brooks far field when it ran: its rows and, per case (at most 10), the
        dilution and distance at the end of the far field; empty when it did not run."""
        ran = [(number, o) for number, o in enumerate(self.farfield_outputs, start=1) if o.was_run]
        if not ran:
            return ""
        rows = sum(len(o.steps) for _, o in ran)
        ends = [f"{o.columns['dilution'][-1]:.4g} at {o.columns['distance'][-1]:.4g} m (case {number})"
                for number, o in ran if o.steps]
        if ends:
            more = f", … {len(ends) - 10} more" if len(ends) > 10 else ""
            detail = "; final dilution " + ", ".join(ends[:10]) + more
        else:  # it ran but wrote no row: say why (first memo of the first case)
            memo = next((o.memos[0] for _, o in ran if o.memos), "")
            detail = f" ({memo})" if memo else ""
        return (f"<p>Brooks far field: {rows} row(s){html.escape(detail)} "
                "(<code>.farfield</code>, <code>.farfield_in_case_units()</code>)</p>")

    def _tidal_html(self) -> str:
        """The highest tidal pollution buildup (diffuser concentration units) when TPB ran, else empty."""
        if not self.tidal.was_run:
            return ""
        from .units import from_si

        unit = self.case.diffuser_units["concentration"]
        highest = from_si(self.tidal.highest, unit)
        return (f"<p>Tidal pollution buildup: highest buildup {highest:.4g} {html.escape(unit.label)} "
                "(<code>.tidal</code>)</p>")


# SI units of the per-case input table (`Result.cases`)
CASE_DIFFUSER_UNITS = {
    "diameter": "m", "depth": "m", "effluent_flow": "m3/s", "vertical_angle": "deg",
    "horizontal_angle": "deg", "num_ports": UNITLESS, "port_spacing": "m", "acute_mixing_zone": "m",
    "isopleth": "", "salinity": "psu", "temperature": "degC", "concentration": "kg/kg",
}
CASE_AMBIENT_UNITS = {
    "current_speed": "m/s", "current_dir": "deg", "salinity": "psu", "temperature": "degC",
    "bg_conc": "kg/kg", "decay_rate": "1/s", "density": "kg/m3",
}


# -- helpers ---------------------------------------------------------------------------------------

def memo_lines(output: CaseOutput) -> list[str]:
    """The step-0 memos followed by the post-run memos, each embedded line on its own."""
    return list(output.memos) + [line for memo in output.postmemos for line in memo.split("\n")]


def _context_columns(frame: "pd.DataFrame", name: str) -> dict[str, Any]:
    """SI columns a non-factor conversion of `name` may need (temperature, salinity, depth)."""
    prefix = "ambient_" if name.startswith("ambient_") else ""
    return {
        "temperature_c": frame[prefix + "temperature"].to_numpy(),
        "salinity_psu": frame[prefix + "salinity"].to_numpy(),
        "depth_m": frame["depth"].to_numpy(),
    }


def json_safe(value: Any) -> Any:
    """Recursively turn `value` into JSON-native types; NaN and ±Infinity become None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        return json_safe(value.item())
    return value


def _json_safe_row(row: dict[str, Any]) -> dict[str, Any]:
    """`json_safe` of a flat row of plain numbers and texts (a summary row), without a call per value."""
    return {key: value if type(value) in _PLAIN or (type(value) is float and math.isfinite(value)) else json_safe(value)
            for key, value in row.items()}


_PLAIN = (int, str, bool)


def _json_floats(values: Any) -> list:
    """A numeric column as a list of JSON-safe numbers (NaN and ±Infinity become None). The sum is finite
    only when every value is (a NaN or an infinity propagates), so a clean column costs one pass."""
    column = list(values)
    try:
        if all(type(v) is float for v in column) and math.isfinite(sum(column)):
            return column
    except OverflowError:           # finite values whose sum overflows: check them one by one
        pass
    return json_safe(column)


def _float_from_json(value: Any) -> float:
    """A number from :meth:`Result.to_dict` JSON: null (a non-finite value) becomes NaN."""
    return math.nan if value is None else float(value)


def _floats_from_json(values: Any) -> list[float]:
    return [math.nan if v is None else float(v) for v in values or ()]


def _table_columns(table: OutputTable) -> dict[str, Any]:
    """The columns of the plume (with status) or far-field table: case number, step, then every engine column."""
    data: dict[str, Any] = {"case": table.case_numbers, "step": table.steps}
    if table.statuses is not None:
        data["status"] = table.statuses
    data.update(table.columns)
    return data
