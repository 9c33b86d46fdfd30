"""The time-series part of the form (spec §12), generated from `TIMESERIES_FIELDS` (start, end, increment,
each with a time-unit drop-down) and `SERIES_FIELDS` (one row per diffuser and ambient variable that may
vary: CSV text with an upload button, file path, hours per row, units, and for ambient series the level
units and whether the levels are depths)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import ipywidgets as widgets

from ..inputs.fields import (AMBIENT_FIELDS, AMBIENT_SERIES, DIFFUSER_FIELDS, DIFFUSER_SERIES, SERIES_FIELDS,
                             TIMESERIES_FIELDS, FieldSpec)
from .fields import (NOT_GIVEN, FieldWidget, Target, field_grid, field_help, get_value, input_style, make_input, message_html,
                     message_row, message_widget, plain, set_unit, set_value, shared, small_label, unit_dropdown)

_TIME_UNIT_KEYS = {"start_time": "start_units", "end_time": "end_units", "time_increment": "increment_units"}


class SeriesRow:
    """One series (`group` diffuser/ambient, `variable`): the inputs of the SERIES_FIELDS that apply, the
    series' units (blank = the field's unit), an upload button that fills the CSV text, and a message."""

    def __init__(self, group: str, variable: str, on_change: Callable[[Any], None]):
        self.group, self.variable = group, variable
        self.path = f"timeseries.{group}.{variable}"
        self.spec: FieldSpec = (DIFFUSER_FIELDS if group == "diffuser" else AMBIENT_FIELDS)[variable]
        self.fields = {name: spec for name, spec in SERIES_FIELDS.items()
                       if group == "ambient" or name != "z_is_depth"}    # z_is_depth: ambient series only
        self.inputs: dict[str, widgets.Widget] = {}
        for name, spec in self.fields.items():
            self.inputs[name] = make_input(spec, none_label="as ambient", width="auto", multiline=name == "csv")
        self.inputs["csv"].layout = widgets.Layout(width="auto", height="3.2em")
        self.inputs["csv"].placeholder = "CSV data, or upload a file"
        self.inputs["increment_hours"].placeholder = "hours"     # required only when the series is given
        self.units = unit_dropdown(self.spec, none_label=f"as {group}", width="auto")
        self.units.tooltip = f"Unit of the series values (default: the unit of {self.spec.label})"
        self.depth_units = (unit_dropdown(AMBIENT_FIELDS["z"], none_label="as ambient z", width="auto")
                            if group == "ambient" else None)
        self.upload = widgets.FileUpload(accept=".csv,.txt,text/csv,text/plain", multiple=False,
                                         description="CSV", layout=widgets.Layout(width="auto"),
                                         tooltip=f"Upload a CSV file for {self.spec.label}")
        self.upload.observe(self._on_upload, names="value")
        self.message = message_widget()
        self.label = small_label(f"{group.capitalize()}: {self.spec.label}", field_help(self.spec))
        for widget in [*self.inputs.values(), self.units, *([self.depth_units] if self.depth_units else [])]:
            widget.observe(on_change, names="value")

    def cells(self) -> list[widgets.Widget]:
        """The row's widgets in the column order of `SeriesSection.columns`, then its message (a grid row of
        its own, under the inputs)."""
        return [self.label, self.inputs["csv"], self.upload, self.inputs["file"], self.inputs["increment_hours"],
                self.units, self.depth_units or plain(widgets.Label, ""),
                self.inputs.get("z_is_depth") or plain(widgets.Label, ""),
                message_row(self.message)]

    def _on_upload(self, change: Any) -> None:
        files = change["new"]
        if not files:
            return
        item = files[0]
        try:
            text = bytes(item["content"]).decode("utf-8-sig")
        except UnicodeDecodeError as err:
            self.message.value = message_html([f"{item.get('name', 'upload')}: not UTF-8 text "
                                               f"(byte {err.start + 1})"])
        else:
            self.inputs["file"].value = ""
            self.inputs["csv"].value = text
        self.upload.value = ()

    @property
    def given(self) -> bool:
        return bool(self.inputs["csv"].value.strip() or self.inputs["file"].value.strip())

    def get(self) -> dict[str, Any]:
        out = {}
        for name, spec in self.fields.items():
            value = get_value(spec, self.inputs[name])
            if value is not None:
                out[name] = value
        if self.units.value != NOT_GIVEN:
            out["units"] = self.units.value
        if self.depth_units is not None and self.depth_units.value != NOT_GIVEN:
            out["depth_units"] = self.depth_units.value
        return out

    def set(self, block: "Mapping[str, Any] | None") -> list[str]:
        block = block if isinstance(block, Mapping) else {}
        for name, spec in self.fields.items():
            value = block.get(name)
            if name == "csv" and isinstance(value, (list, tuple)):    # rows as lists: written as CSV text
                from ..inputs.normalise import rows_to_csv
                value = rows_to_csv(value)
            set_value(spec, self.inputs[name], value)
        set_unit(self.units, self.spec, block.get("units"))
        if self.depth_units is not None:
            set_unit(self.depth_units, AMBIENT_FIELDS["z"], block.get("depth_units"))
        known = set(self.fields) | {"units"} | ({"depth_units"} if self.depth_units is not None else set())
        return [f"{self.path}.{k}" for k in block if k not in known]

    def targets(self, section: str) -> dict[str, Target]:
        out = {self.path: Target(self.message, [], self.path, section)}
        for name, widget in self.inputs.items():
            out[f"{self.path}.{name}"] = Target(self.message, [widget], self.path, section)
        out[f"{self.path}.units"] = Target(self.message, [self.units], self.path, section)
        if self.depth_units is not None:
            out[f"{self.path}.depth_units"] = Target(self.message, [self.depth_units], self.path, section)
        file_name = self.inputs["file"].value.strip()
        if file_name:           # CSV problems of a file series are named by the file as given
            out[file_name] = Target(self.message, [self.inputs["file"]], "", section)
        return out


class SeriesSection:
    """`enabled` (a checkbox: without it the case has no time series), the time range fields
    (`fields["start_time"]`, …, each with its unit drop-down) and one `SeriesRow` per variable given
    (`rows["diffuser.effluent_flow"]`, …). Built on demand: the range and the series table when the
    section is first switched on (or a case with a time series is shown), a row when its variable is added
    (the "Add a series" drop-down, `row(key)`) or shown; so a case without time series costs a checkbox."""

    columns = ("Variable", "csv", "upload", "file", "increment_hours", "units", "depth_units", "z_is_depth")
    variables = tuple(f"{group}.{var}" for group, names in (("diffuser", DIFFUSER_SERIES), ("ambient", AMBIENT_SERIES))
                      for var in names)

    def __init__(self, on_change: Callable[[Any], None]):
        self._on_change = on_change
        self.enabled = widgets.Checkbox(value=False, indent=False, layout=shared(widgets.Layout, width="auto"),
                                        description="Run a time series of cases (start, start + increment, "
                                                    "… <= end; spec §12)")
        self.enabled.observe(on_change, names="value")
        self.enabled.observe(self._show, names="value")
        self.fields: dict[str, FieldWidget] = {}
        self.rows: dict[str, SeriesRow] = {}
        self.message = message_widget()
        self.detail: "widgets.VBox | None" = None
        self.box = plain(widgets.VBox, [self.enabled, self.message])

    def build(self) -> None:
        """Make the time range fields and the (empty) series table, once."""
        if self.detail is not None:
            return
        self.fields = {name: FieldWidget(spec, f"timeseries.{name}") for name, spec in TIMESERIES_FIELDS.items()}
        for item in self.fields.values():
            item.observe(self._on_change)
        headers = [small_label("Variable")]
        for column in self.columns[1:]:
            if column == "upload":
                headers.append(plain(widgets.Label, ""))
            elif column in SERIES_FIELDS:
                spec = SERIES_FIELDS[column]
                headers.append(small_label(spec.label, field_help(spec)))
            else:
                headers.append(small_label({"units": "Units", "depth_units": "Level units"}[column]))
        self._headers = headers
        self.grid = widgets.GridBox([], layout=widgets.Layout(
            grid_template_columns="13em minmax(12em, 2fr) 7em minmax(8em, 1fr) 6em 9em 9em 8em",
            grid_gap="2px 4px", align_items="center"))
        self.add_choice = widgets.Dropdown(options=self._choices(), layout=shared(widgets.Layout, width="22em"),
                                           style=input_style(widgets.Dropdown), description="Add a series",
                                           tooltip="A diffuser or ambient variable whose values come from a CSV")
        self.add_button = plain(widgets.Button, description="Add", icon="plus", layout={"width": "6em"})
        self.add_button.on_click(lambda _: self.add_choice.value and self.row(self.add_choice.value))
        adder = plain(widgets.HBox, [self.add_choice, self.add_button], layout={"align_items": "center"})
        self.detail = widgets.VBox([field_grid(self.fields.values()), adder, self.grid])
        self.box.children = [self.enabled, self.message, self.detail]
        self._show(None)

    def _choices(self) -> list[tuple[str, str]]:
        choices = [("", "")]
        for key in self.variables:
            if key not in self.rows:
                group, var = key.split(".")
                spec = (DIFFUSER_FIELDS if group == "diffuser" else AMBIENT_FIELDS)[var]
                choices.append((f"{group.capitalize()}: {spec.label}", key))
        return choices

    def row(self, key: str) -> SeriesRow:
        """The row of a series (`diffuser.effluent_flow`, `ambient.current_speed`, …), made when missing."""
        if key not in self.rows:
            if key not in self.variables:
                raise KeyError(f"no time series {key!r}; one of {', '.join(self.variables)}")
            self.build()
            group, var = key.split(".")
            self.rows[key] = SeriesRow(group, var, self._on_change)
            ordered = [self.rows[k] for k in self.variables if k in self.rows]
            self.grid.children = self._headers + [cell for item in ordered for cell in item.cells()]
            self.add_choice.options = self._choices()
            self.add_choice.value = ""
        return self.rows[key]

    def _show(self, _: Any) -> None:
        if self.enabled.value:
            self.build()
        if self.detail is not None:
            self.detail.layout.display = "" if self.enabled.value else "none"

    def get(self) -> "dict[str, Any] | None":
        """The timeseries block of the case JSON (None when off)."""
        if not self.enabled.value:
            return None
        self.build()
        out: dict[str, Any] = {}
        units = {name: item.get_unit() for name, item in self.fields.items()}
        for name, item in self.fields.items():
            value = item.get()
            if value is not None:
                out[name] = value
        if len(set(units.values())) == 1:
            out["units"] = units["start_time"]
        else:
            out["units"] = "s"
            for name, key in _TIME_UNIT_KEYS.items():
                out[key] = units[name]
        for group in ("diffuser", "ambient"):
            out[group] = {row.variable: row.get() for key, row in self.rows.items()
                          if row.group == group and row.given}
        return out

    def set(self, block: "Mapping[str, Any] | None") -> list[str]:
        """Show a timeseries block (None: off, everything reset); returns the keys it cannot show."""
        if isinstance(block, Mapping):
            self.build()
        self.enabled.value = isinstance(block, Mapping)
        block = block if isinstance(block, Mapping) else {}
        known = set(TIMESERIES_FIELDS) | {"units", *_TIME_UNIT_KEYS.values(), "diffuser", "ambient"}
        ignored = [f"timeseries.{k}" for k in block if k not in known]
        for name, item in self.fields.items():
            item.set(block.get(name))
            item.set_unit(block.get(_TIME_UNIT_KEYS[name]) or block.get("units"))
        for group, names in (("diffuser", DIFFUSER_SERIES), ("ambient", AMBIENT_SERIES)):
            given = block.get(group) if isinstance(block.get(group), Mapping) else {}
            for var in names:
                if var in given:
                    ignored += self.row(f"{group}.{var}").set(given[var])
                elif f"{group}.{var}" in self.rows:
                    self.rows[f"{group}.{var}"].set(None)
            ignored += [f"timeseries.{group}.{k}" for k in given if k not in names]
        return ignored

    def targets(self, section: str) -> dict[str, Target]:
        out = {"timeseries": Target(self.message, [], "timeseries", section)}
        for name, item in self.fields.items():
            out[item.path] = item.target(section)
            out[f"timeseries.{_TIME_UNIT_KEYS[name]}"] = Target(item.message, [item.unit], item.path, section)
        for row in self.rows.values():
            out.update(row.targets(section))
        return out
