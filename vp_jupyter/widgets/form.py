"""`CaseForm`: the notebook form of a case, generated from the field tables, with inline validation,
Load/Save of case JSON, a Run button with a progress bar, and the run's summary, plot and archive link."""
from __future__ import annotations

import html
import inspect
import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import ipywidgets as widgets

from ..inputs.fields import DIFFUSER_FIELDS, MODEL_FIELDS, OUTPUT_FIELDS, TIMESERIES_FIELDS, FieldSpec
from . import output as views
from .ambient import AmbientTable
from .fields import (ERROR_COLOUR, PROBLEM_CSS, FieldWidget, MessageRouter, Target, field_grid, message_html,
                     message_widget, plain)
from .series import SeriesSection

# model settings groups: (title, rule on the field name); a field no rule claims goes to "General"
MODEL_GROUPS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("Stop conditions", lambda n: "stop" in n.split("_") or n in ("max_reversals", "max_dilution")),
    ("Far field", lambda n: "ff" in n.split("_") or "farfield" in n or n.startswith(("brooks", "far_field"))),
    ("Tidal buildup", lambda n: n.startswith("tpb_") or n.startswith("tidal")),
)
SECTIONS = ("Diffuser", "Ambient", "Model settings", "Time series")
DIFFUSER_NOTE = ("One diffuser per case, as in the case format: a group of <i>Number of ports</i> identical ports, "
                 "<i>Port spacing</i> apart. Values that change from case to case come from the Time series tab. "
                 "* = required.")


def model_group(name: str) -> str:
    """The settings group of a model field (see `MODEL_GROUPS`)."""
    return next((title for title, rule in MODEL_GROUPS if rule(name)), "General")


class CaseForm(widgets.VBox):
    """A form for one case, generated from the field tables (`vp_jupyter.inputs.fields`).

        form = vp.CaseForm()                      # field defaults; or CaseForm("case.json"), CaseForm(case)
        form                                      # shows it in a notebook
        form.field("diffuser.diameter").value = 0.3
        form.unit("diffuser.depth").value = "ft"
        form.run_button.click(); form.wait()      # or form.run() (blocks)
        form.result, form.run_id

    `case`: a Case, a case dict, a path to a case JSON file, or JSON text (None: the field defaults, no
    layers filled in). `store`: the RunStore runs are recorded in (None: the default store, the one the
    Jupyter server uses; False: runs are not stored, so there is no archive link).

    Every change validates the case (`Case.load`): each problem appears in red next to its field (or its
    ambient row, time-series row, table), the tab title shows how many problems a section has, and the
    status line lists problems that belong to no field. Run validates first; invalid input starts no run.
    """

    def __init__(self, case: Any = None, store: Any = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.store = store
        self.result = None
        self.run_id: str | None = None
        self.problems: list[str] = []
        self._source_block: Any = None
        self._thread: threading.Thread | None = None
        self._quiet = 0                  # > 0 while many values are set at once (no validation per change)
        self._fields: dict[str, FieldWidget] = {}

        on_change = self._on_change
        # -- case name and description
        self.name = widgets.Text(description="Name", layout=widgets.Layout(width="40em"), continuous_update=False)
        self.description = widgets.Textarea(description="Description", layout=widgets.Layout(width="40em",
                                                                                          height="3.5em"),
                                            continuous_update=False)
        self.name.observe(on_change, names="value")
        self.description.observe(on_change, names="value")
        self._meta_message = message_widget()

        # -- sections, each generated from its field table
        self.diffuser_fields = self._make_fields("diffuser", DIFFUSER_FIELDS)
        self.diffuser_message = message_widget()
        diffuser_box = plain(widgets.VBox, [plain(widgets.HTML, f"<small>{DIFFUSER_NOTE}</small>"),
                                            self.diffuser_message, field_grid(self.diffuser_fields.values())])
        self.ambient = AmbientTable(on_change)
        self.model_fields = self._make_fields("model", MODEL_FIELDS)
        self.output_fields = self._make_fields("output", OUTPUT_FIELDS)
        self.model_message = message_widget()
        groups: dict[str, list[FieldWidget]] = {"General": []}
        for title, _ in MODEL_GROUPS:
            groups[title] = []
        for name, item in self.model_fields.items():
            groups[model_group(name)].append(item)
        groups["Output"] = list(self.output_fields.values())
        titles = [t for t, items in groups.items() if items]
        self.model_groups = widgets.Accordion(children=[field_grid(groups[t]) for t in titles], titles=titles,
                                              selected_index=0)
        model_box = widgets.VBox([self.model_message, self.model_groups])
        self.timeseries = SeriesSection(on_change)
        self.tabs = widgets.Tab(children=[diffuser_box, self.ambient.box, model_box, self.timeseries.box],
                                titles=SECTIONS)

        # -- buttons, progress, messages, output
        self.load_upload = widgets.FileUpload(accept=".json,application/json", multiple=False,
                                              description="Load", tooltip="Load a case JSON file")
        self.load_upload.observe(self._on_load_upload, names="value")
        self.save_button = widgets.Button(description="Save", icon="download",
                                          tooltip="Make a download link for the case JSON")
        self.save_button.on_click(lambda _: self.save())
        self.run_button = widgets.Button(description="Run", icon="play", button_style="primary",
                                         tooltip="Validate and run the case")
        self.run_button.on_click(lambda _: self.start())
        self.report_button = widgets.Button(description="Report", icon="file-text", disabled=True,
                                            tooltip="Make the HTML report of the last run (a download link)")
        self.report_button.on_click(lambda _: self.report())
        self.report_link = message_widget()
        self.progress = widgets.IntProgress(value=0, min=0, max=1, description="", bar_style="info",
                                            layout=widgets.Layout(width="16em", visibility="hidden"))
        self.progress_label = plain(widgets.Label, "")
        self.save_link = message_widget()
        self.status = message_widget()
        self.summary = message_widget()
        self.plot = widgets.Image(format="png", layout=widgets.Layout(display="none", max_width="100%"))
        self.archive_link = message_widget()
        self.output = widgets.VBox([self.summary, self.plot, self.archive_link, self.report_link])
        buttons = widgets.HBox([self.load_upload, self.save_button, self.run_button, self.report_button, self.progress,
                                self.progress_label], layout=widgets.Layout(align_items="center"))
        self.children = [plain(widgets.HTML, PROBLEM_CSS),
                         plain(widgets.VBox, [self.name, self.description, self._meta_message]), self.tabs, buttons,
                         self.save_link, self.status, self.output]
        if case is not None:
            self.load(case)
        else:                            # a blank profile of two layers to fill in (no messages yet)
            self._quiet += 1
            self.ambient.add_layer()
            self.ambient.add_layer()
            self._quiet -= 1

    def __repr__(self) -> str:
        name = self.name.value or "unnamed case"
        state = f"{len(self.problems)} problem(s)" if self.problems else "no problems shown"
        return f"<CaseForm {name!r}: {state}, run_id={self.run_id!r}>"

    # ------------------------------------------------------------------------------------ construction

    def _make_fields(self, section: str, specs: Mapping[str, FieldSpec]) -> dict[str, FieldWidget]:
        made = {}
        for name, spec in specs.items():
            item = FieldWidget(spec, f"{section}.{name}")
            item.observe(self._on_change)
            made[name] = item
            self._fields[item.path] = item
        return made

    @classmethod
    def from_run(cls, run_id: str, store: Any = None) -> "CaseForm":
        """A form with the case of a stored run (from a notebook, the CLI, the JSON API or the web UI: the
        store keeps every run's normalised case.json) and, for a succeeded run, its summary, plot and archive
        link. New runs go to the same store."""
        from ..store import RunStore

        store = store if store is not None else RunStore()
        record = store.get(run_id)
        form = cls(store.load_case(run_id), store=store)
        note = (f"Reopened run {html.escape(record.id)} ({html.escape(record.source)}, {record.status}, "
                f"created {html.escape(record.created)})")
        if record.status == "succeeded":
            try:
                form._show_result(store.load_result(run_id), record.id, store)
            except Exception as err:                      # the case is still useful without its result
                note += f"; its result could not be shown: {html.escape(str(err))}"
        elif record.error:
            note += f": {html.escape(record.error)}"
        form.status.value = f"<span>{note}</span>"
        return form

    @classmethod
    def from_file(cls, path: "str | os.PathLike", files: "Mapping[str, Any] | None" = None,
                  store: Any = None) -> "CaseForm":
        """A form with the case of a file: a case JSON file, or a project the Visual Plumes web UI saved
        ("Save Project Config"), translated as the web UI's run would be (`files`: the CSVs of the time
        series such a project takes from files, e.g. `{"effluent_flow": "flow.csv"}`). A case file with
        problems is shown with them; a project that cannot be translated raises `CaseError`."""
        from ..inputs import Case, CaseError
        from ..legacy.project import is_project

        try:
            case = Case.load(path, files=files)
        except CaseError:
            try:
                data = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise
            if is_project(data) or files:
                raise
            return cls(path, store=store)
        return cls(case, store=store)

    # ------------------------------------------------------------------------------------ field access

    def field(self, path: str) -> widgets.Widget:
        """The input widget of a case path: `diffuser.diameter` (or `diffuser.values.diameter`),
        `model.max_dilution`, `output.extra_columns`, `ambient.layers[2].z`, `ambient.z_is_depth`,
        `ambient.extrapolation.salinity.surface`, `timeseries.end_time`,
        `timeseries.diffuser.effluent_flow.csv`, `timeseries.enabled`, `name`, `description`."""
        path = path.replace("diffuser.values.", "diffuser.")
        if path in self._fields:
            return self._fields[path].input
        if path in ("name", "description"):
            return getattr(self, path)
        if path == "ambient.z_is_depth":
            return self.ambient.z_is_depth
        if path.startswith("ambient.layers["):
            index, _, name = path[len("ambient.layers["):].partition("].")
            return self.ambient.cell(int(index), name)
        if path.startswith("ambient.extrapolation."):
            var, _, end = path[len("ambient.extrapolation."):].partition(".")
            return self.ambient.extrapolation[var][end]
        if path == "timeseries.enabled":
            return self.timeseries.enabled
        if path.startswith("timeseries."):
            rest = path[len("timeseries."):]
            if rest in TIMESERIES_FIELDS:
                self.timeseries.build()
                return self.timeseries.fields[rest].input
            key, _, name = rest.rpartition(".")
            row = self.timeseries.row(key) if key in self.timeseries.variables else None
            if row is not None:
                if name in row.inputs:
                    return row.inputs[name]
                if name == "upload":
                    return row.upload
                if name in ("units", "depth_units") and getattr(row, name) is not None:
                    return getattr(row, name)
        raise KeyError(f"no form field {path!r}")

    def unit(self, path: str) -> widgets.Dropdown:
        """The unit drop-down of a field: `diffuser.depth` (or `diffuser.units.depth`), `ambient.salinity`
        (or `ambient.units.salinity`), `timeseries.end_time`, `timeseries.diffuser.effluent_flow`."""
        path = path.replace(".units.", ".")
        if path.startswith("ambient.") and path[len("ambient."):] in self.ambient.units:
            return self.ambient.units[path[len("ambient."):]]
        rest = path[len("timeseries."):] if path.startswith("timeseries.") else None
        if rest in TIMESERIES_FIELDS:
            self.timeseries.build()
        item = self._fields.get(path) or self.timeseries.fields.get(rest)
        if item is not None and item.unit is not None:
            return item.unit
        if rest in self.timeseries.variables:
            return self.timeseries.row(rest).units
        raise KeyError(f"no unit drop-down for {path!r}")

    def message(self, path: str) -> widgets.HTML:
        """The message widget where problems of `path` are shown (next to the field, its row or table)."""
        target = self._router().find(path)
        if target is None:
            raise KeyError(f"no message for {path!r}")
        return target.message

    def add_layer(self, **values: Any) -> None:
        """Add an ambient layer at the bottom, e.g. `form.add_layer(z=60, salinity=33.4)`."""
        self.ambient.add_layer(values)

    # ----------------------------------------------------------------------------------- case <-> form

    def case_dict(self) -> dict[str, Any]:
        """The case JSON the form describes (valid or not)."""
        out: dict[str, Any] = {}
        if self.name.value.strip():
            out["name"] = self.name.value
        if self.description.value.strip():
            out["description"] = self.description.value
        if self._source_block is not None:
            out["source"] = self._source_block
        out["model"] = {name: item.get() for name, item in self.model_fields.items() if item.get() is not None}
        values = {name: item.get() for name, item in self.diffuser_fields.items()}
        out["diffuser"] = {"values": {k: v for k, v in values.items() if v is not None},
                           "units": {name: item.get_unit() for name, item in self.diffuser_fields.items()
                                     if item.get_unit() is not None}}
        out["ambient"] = self.ambient.get()
        block = self.timeseries.get()
        if block is not None:
            out["timeseries"] = block
        out["output"] = {name: item.get() for name, item in self.output_fields.items() if item.get() is not None}
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """The case JSON as text."""
        return json.dumps(self.case_dict(), indent=indent, ensure_ascii=False)

    def load(self, source: Any) -> None:
        """Show a case: a Case, a case dict, a path to a case JSON file, or JSON text / bytes. Time series read
        from files are shown inline (as CSV text) when the case is valid; keys the form cannot show are named
        in the status line."""
        from ..inputs import Case, CaseError

        data = source
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = json.loads(bytes(source).decode("utf-8-sig"))
        elif isinstance(data, str) and data.lstrip()[:1] in ("{", "["):
            data = json.loads(data)
        elif isinstance(data, (str, os.PathLike)):
            path = Path(data)
            try:
                data = Case.load(path).to_dict(inline_files=True)
            except CaseError:
                data = json.loads(path.read_text(encoding="utf-8"))
        elif isinstance(data, Case):
            data = data.to_dict(inline_files=True)
        if not isinstance(data, Mapping):
            raise TypeError(f"a case must be a Case, a dict, a path or JSON text (got {type(source).__name__})")
        self._set(data)

    def _set(self, data: Mapping[str, Any]) -> None:
        ignored = [k for k in data if k not in ("name", "description", "source", "model", "diffuser", "ambient",
                                                 "timeseries", "output")]
        self._quiet += 1
        try:
            self.name.value = data.get("name") if isinstance(data.get("name"), str) else ""
            self.description.value = data.get("description") if isinstance(data.get("description"), str) else ""
            self._source_block = data.get("source")
            for section, items in (("model", self.model_fields), ("output", self.output_fields)):
                block = data.get(section) if isinstance(data.get(section), Mapping) else {}
                for name, item in items.items():
                    item.set(block.get(name))
                ignored += [f"{section}.{k}" for k in block if k not in items]
            diffuser = data.get("diffuser") if isinstance(data.get("diffuser"), Mapping) else {}
            values = diffuser.get("values") if isinstance(diffuser.get("values"), Mapping) else {}
            units = diffuser.get("units") if isinstance(diffuser.get("units"), Mapping) else {}
            for name, item in self.diffuser_fields.items():
                item.set(values.get(name))
                item.set_unit(units.get(name))
            ignored += [f"diffuser.values.{k}" for k in values if k not in self.diffuser_fields]
            ignored += [f"diffuser.units.{k}" for k in units
                        if k not in self.diffuser_fields or self.diffuser_fields[k].unit is None and units[k]]
            ignored += self.ambient.set(data.get("ambient"))
            ignored += self.timeseries.set(data.get("timeseries"))
        finally:
            self._quiet -= 1
        self.validate()
        if ignored:
            self.status.value += (f'<div style="color:{ERROR_COLOUR}">Not shown in the form (dropped): '
                                  f"{html.escape(', '.join(ignored))}</div>")

    # --------------------------------------------------------------------------------------- validation

    def _router(self) -> MessageRouter:
        router = MessageRouter()
        router.add("name", Target(self._meta_message, [self.name], "", "meta"))
        router.add("description", Target(self._meta_message, [self.description], "", "meta"))
        router.add("source", Target(self._meta_message, [], "", "meta"))
        router.add("diffuser", Target(self.diffuser_message, [], "diffuser", SECTIONS[0]))
        for name, item in self.diffuser_fields.items():
            router.add(item.path, item.target(SECTIONS[0]))
            router.add(f"diffuser.units.{name}", Target(item.message, [item.unit] if item.unit else [],
                                                        f"diffuser.units.{name}", SECTIONS[0]))
        for path, target in self.ambient.targets(SECTIONS[1]).items():
            router.add(path, target)
        for section in ("model", "output"):
            router.add(section, Target(self.model_message, [], "", SECTIONS[2]))
        for item in (*self.model_fields.values(), *self.output_fields.values()):
            router.add(item.path, item.target(SECTIONS[2]))
        for path, target in self.timeseries.targets(SECTIONS[3]).items():
            router.add(path, target)
        return router

    def validate(self) -> Any:
        """Check the case (`Case.load`) and show every problem next to its field; returns the Case, or None
        when the input is invalid (then `problems` lists the problems)."""
        from ..inputs import Case, CaseError

        case, problems = None, []
        try:
            case = Case.load(self.case_dict())
        except CaseError as err:
            problems = list(err.problems)
        except Exception as err:            # a bug must not pass as a valid case, nor break the widget
            problems = [f"the case could not be checked: {type(err).__name__}: {err}"]
        self.show_problems(problems)
        return case

    def show_problems(self, problems: list[str]) -> None:
        """Show `CaseError` problems next to their fields, clear the other messages, update the tab titles
        and the status line (which lists the problems that belong to no field)."""
        self.problems = list(problems)
        router = self._router()
        unrouted = router.show(problems)
        counts = router.sections(problems)
        for index, title in enumerate(SECTIONS):
            count = counts.get(title, 0)
            self.tabs.set_title(index, f"{title} ({count} ⚠)" if count else title)
        if not problems:
            self.status.value = ""
            return
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''}: see the red messages next to the fields"
        if unrouted:
            head += "; not tied to a field:"
        self.status.value = (f'<div style="color:{ERROR_COLOUR}"><b>{html.escape(head)}</b></div>'
                             + message_html(unrouted))

    def _on_change(self, _: Any) -> None:
        if self._quiet:
            return
        self.validate()

    # --------------------------------------------------------------------------------------- load/save

    def _on_load_upload(self, change: Any) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        try:
            self.load(bytes(item["content"]))
        except (ValueError, TypeError) as err:          # JSONDecodeError and UnicodeDecodeError are ValueErrors
            self.status.value = message_html([f"{item.get('name', 'upload')}: not a case JSON file ({err})"])
        else:
            self.status.value = (f"<span>Loaded {html.escape(str(item.get('name', 'the upload')))}</span>"
                                 + self.status.value)
        finally:
            self.load_upload.value = ()

    def save(self, path: "str | os.PathLike | None" = None) -> str:
        """Write the case JSON to `path` (when given) and show a download link for it; returns the JSON."""
        text = self.to_json()
        self.validate()
        filename = views.safe_filename(self.name.value) + ".json"
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        note = f" (note: the case has {len(self.problems)} problem(s))" if self.problems else ""
        self.save_link.value = views.data_link(text.encode("utf-8"), filename, "application/json",
                                               f"Download {filename}") + html.escape(note)
        return text

    # --------------------------------------------------------------------------------------------- run

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Validate and, when the case is valid, run it in a background thread (what the Run button does).
        Returns True when a run was started."""
        if self.running:
            return False
        case = self.validate()
        if case is None:
            self.status.value = (f'<div style="color:{ERROR_COLOUR}"><b>Not run.</b></div>' + self.status.value)
            return False
        self.result, self.run_id = None, None
        self.summary.value = self.archive_link.value = self.report_link.value = ""
        self.report_button.disabled = True
        self.plot.layout.display = "none"
        total = len(case.case_times)
        self.progress.max, self.progress.value = max(total, 1), 0
        self.progress.bar_style = "info"
        self.progress.layout.visibility = "visible"
        self.progress_label.value = f"0 / {total} case{'s' if total != 1 else ''}"
        self.run_button.disabled = True
        self._thread = threading.Thread(target=self._run, args=(case,), name="vp-jupyter CaseForm run",
                                        daemon=True)
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> Any:
        """Wait for the run started by Run (or `start`) to finish; returns the Result (None if it failed)."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"the run did not finish within {timeout} s")
        return self.result

    def run(self, timeout: float | None = None) -> Any:
        """Validate, run and wait (programmatic Run); returns the Result, None when invalid or failed."""
        return self.wait(timeout) if self.start() else None

    def _store(self) -> Any:
        if self.store is False:
            return None
        if self.store is None or self.store is True:
            from ..store import RunStore
            return RunStore()
        return self.store

    def _run(self, case: Any) -> None:
        import vp_jupyter as vp

        total = len(case.case_times)
        started = time.monotonic()

        def progress(done: int, count: int) -> None:
            self.progress.value = done
            self.progress_label.value = f"{done} / {count} case{'s' if count != 1 else ''}"

        try:
            store = self._store()
            options: dict[str, Any] = {"store": store if store is not None else False}
            if "progress" in inspect.signature(vp.run).parameters:
                options["progress"] = progress
            result = vp.run(case, **options)
            progress(total, total)
            self.result, self.run_id = result, getattr(result, "run_id", None)
            self.progress.bar_style = "success"
            self.status.value = f"<span>Finished in {time.monotonic() - started:.1f} s.</span>"
            self._show_result(result, self.run_id, store)
            self.report_button.disabled = False
        except Exception as err:                      # shown in the form; the thread must not die silently
            self.progress.bar_style = "danger"
            text = "\n".join(err.problems) if hasattr(err, "problems") else f"{type(err).__name__}: {err}"
            self.status.value = (f'<div style="color:{ERROR_COLOUR}"><b>The run failed:</b></div>'
                                 + message_html(text.splitlines()))
        finally:
            self.run_button.disabled = False

    def report(self, path: "str | os.PathLike | None" = None) -> "str | None":
        """The HTML report of the last run (what the Report button does): written to `path` when given, and
        offered as a download link; returns the HTML (None when there is no result yet)."""
        if self.result is None:
            self.report_link.value = "<span>Run the case first; the report describes its result.</span>"
            return None
        text = self.result.report(path)
        filename = views.safe_filename(self.name.value) + "_report.html"
        self.report_link.value = views.data_link(text.encode("utf-8"), filename, "text/html", f"Download {filename}")
        return text

    def _show_result(self, result: Any, run_id: str | None, store: Any) -> None:
        self.summary.value = views.summary_html(result, run_id)
        try:
            png = views.plot_png(result)
        except Exception as err:                      # a plot problem must not hide the table
            png = None
            self.summary.value += message_html([f"The plot failed: {type(err).__name__}: {err}"])
        if png:
            self.plot.value = png
            self.plot.layout.display = ""
            if result.case_count > 1:
                self.summary.value += ("<p><small>The plot shows case 1; <code>form.result.plot(case=N)</code> "
                                       "draws another.</small></p>")
        else:
            self.plot.layout.display = "none"
        self.archive_link.value = (views.archive_link_html(store, run_id) if run_id and store is not None
                                   else "")
