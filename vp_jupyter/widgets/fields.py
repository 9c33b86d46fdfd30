"""Widgets generated from the field tables (`vp_jupyter.inputs.fields`): one `FieldSpec` becomes a label, a
value input, a unit drop-down and an inline message; plus the message routing shared by the whole form.

Value inputs by field type: bool -> Checkbox (a Dropdown with a "default" entry when the field has no
default), enum -> Dropdown of the choices, str -> Text, float/int -> `NumberText` (a text box that may be
blank, so "not given" is possible and every entry, even "abc", reaches `Case.load` and gets its message).
Bounds are not enforced by the widgets: they are in SI units while the input is in the chosen unit, so the
range checks of `Case.load` decide, and their messages appear next to the field.
"""
from __future__ import annotations

import html
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import ipywidgets as widgets
from ipywidgets.widgets.widget_bool import CheckboxStyle
from ipywidgets.widgets.widget_description import DescriptionStyle
from ipywidgets.widgets.widget_string import HTMLStyle, LabelStyle, TextStyle
from traitlets import Unicode

from .. import units as u
from ..inputs.fields import FieldSpec
from ..inputs.parts import fmt

ERROR_COLOUR = "#c62828"
# the value of a drop-down entry meaning "not given" (ipywidgets shows a None value as no selection at all)
NOT_GIVEN = ""
# an input with a problem gets this CSS class (a red border from `PROBLEM_CSS`, which the form carries), so
# inputs can share their layouts: a border set on a layout would mark every input sharing it
PROBLEM_CLASS = "vp-problem"
PROBLEM_CSS = (f"<style>.{PROBLEM_CLASS} input, .{PROBLEM_CLASS} select, .{PROBLEM_CLASS} textarea "
               f"{{border: 1px solid {ERROR_COLOUR} !important}}</style>")


# ------------------------------------------------------------------------------ shared layouts and styles

_SHARED: dict[tuple, widgets.Widget] = {}


def shared(kind: type, **traits: Any) -> widgets.Widget:
    """One `Layout` or style instance per kind and traits, shared by every widget that only shows it: each
    widget would otherwise bring its own two models, which a saved notebook stores. Never for a widget
    whose layout changes (an input marked red has its own)."""
    key = (kind, tuple(sorted(traits.items())))
    instance = _SHARED.get(key)
    if instance is None or getattr(instance, "comm", None) is None:        # closed: make a new one
        instance = _SHARED[key] = kind(**traits)
    return instance


def plain(kind: type, *args: Any, layout: "dict[str, Any] | None" = None, **kwargs: Any) -> widgets.Widget:
    """A display widget (label, HTML, box, button) with a shared layout (`layout` traits) and style."""
    style_kind = {widgets.Label: LabelStyle, widgets.HTML: HTMLStyle, widgets.Button: widgets.ButtonStyle}.get(kind)
    if style_kind is not None and "style" not in kwargs:
        kwargs["style"] = shared(style_kind)
    return kind(*args, layout=shared(widgets.Layout, **(layout or {})), **kwargs)


def input_style(kind: type, label_width: "str | None" = None) -> widgets.Widget:
    """The shared style of an input kind; `label_width`: the width of its description (its label)."""
    style_kind = {widgets.Dropdown: DescriptionStyle, widgets.Checkbox: CheckboxStyle,
                  NumberText: TextStyle, widgets.Text: TextStyle, widgets.Textarea: TextStyle}[kind]
    return shared(style_kind, **({"description_width": label_width} if label_width else {}))


# ------------------------------------------------------------------------------------------- values

def number_text(value: Any) -> str:
    """A number as the text shown in a `NumberText`: blank for None, else as messages show values (`fmt`:
    whole floats without ".0", others as repr); strings as they are."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return fmt(value)


def parse_number(text: str) -> Any:
    """The case value of a number box: None when blank, an int or float when the text is a finite number,
    else the text itself (so `Case.load` reports it, e.g. "must be a number (got 'abc')")."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


class _NumberTrait(Unicode):
    """Text that also accepts numbers (written with `number_text`) and None (blank)."""

    def validate(self, obj: Any, value: Any) -> str:
        if value is None or (isinstance(value, numbers.Number) and not isinstance(value, str)):
            return number_text(value)
        return super().validate(obj, value)


class NumberText(widgets.Text):
    """A text box for a number that may be left blank. `value` is the text; assigning a number writes it
    (`box.value = 0.3` -> "0.3"), None clears it. `number` is the parsed value (see `parse_number`)."""
    value = _NumberTrait("", help="the number as text; blank = not given").tag(sync=True)

    @property
    def number(self) -> Any:
        return parse_number(self.value)


def field_help(spec: FieldSpec) -> str:
    """The tooltip of a field: description, bounds, default (SI), required, unit kind."""
    parts = [spec.label + "."]
    if spec.description:
        parts.append(spec.description)
    bounds = spec.bounds_text()
    if bounds:
        parts.append(f"Value {bounds} (checked after conversion to {spec.default_unit}).")
    if spec.note:
        parts.append(f"({spec.note})")
    if spec.default is not None and spec.type != "bool":
        unit = "" if spec.kind in ("unitless", "isopleth") else f" {spec.default_unit}"
        parts.append(f"Default: {number_text(spec.default) if spec.type in ('float', 'int') else spec.default}"
                     f"{unit}.")
    if spec.required:
        parts.append("Required.")
    if spec.timeseries:
        parts.append("May come from a time series instead.")
    return " ".join(parts)


def has_unit(spec: FieldSpec) -> bool:
    """True when the field gets a unit drop-down (every kind but unitless; isopleth: the isopleth type)."""
    return spec.kind != "unitless" and spec.type in ("float", "int")


def unit_dropdown(spec: FieldSpec, *, none_label: str | None = None, width: str = "9.5em") -> widgets.Dropdown:
    """A drop-down of the units allowed for `spec` (`units.units_of(kind)` unless the field restricts them),
    the SI unit first and selected; `none_label`: a first entry meaning "not given" (value `NOT_GIVEN`)."""
    labels = list(spec.allowed_units)
    options: list = [(label or "-", label) for label in labels]
    if none_label is not None:
        options.insert(0, (none_label, NOT_GIVEN))
    value = NOT_GIVEN if none_label is not None else spec.default_unit
    return widgets.Dropdown(options=options, value=value, layout=shared(widgets.Layout, width=width),
                            style=input_style(widgets.Dropdown),
                            tooltip=f"{spec.label}: {'isopleth type' if spec.kind == 'isopleth' else 'unit'}")


def set_unit(dropdown: widgets.Dropdown, spec: FieldSpec, text: Any) -> None:
    """Select the unit `text` (any spelling `units.parse_unit` accepts); None selects the default. An unknown
    or wrong-kind unit is added as an extra entry, so `Case.load` reports it next to the field."""
    values = [value for _, value in dropdown_pairs(dropdown)]
    if text is None or text == "":
        _select(dropdown, NOT_GIVEN if NOT_GIVEN in values else spec.default_unit)
        return
    try:
        label = u.parse_unit(text, spec.kind).label
    except (u.UnitError, TypeError):
        label = None
    _select(dropdown, label if label is not None and label in values else str(text))


_EXTRA = " (?)"      # label suffix of an entry added to show a value that is not one of the choices


def dropdown_pairs(dropdown: widgets.Dropdown) -> list[tuple[str, Any]]:
    """The (label, value) pairs of a drop-down whose options were given as values or as pairs."""
    return [o if isinstance(o, tuple) else (str(o), o) for o in dropdown.options]


def _select(dropdown: widgets.Dropdown, value: Any) -> None:
    """Select `value`, adding it as an extra entry when it is not a choice (earlier extras are dropped)."""
    pairs = [p for p in dropdown_pairs(dropdown) if not p[0].endswith(_EXTRA)]
    if all(v != value or type(v) is not type(value) for _, v in pairs):
        pairs.append((f"{value}{_EXTRA}", value))
    if pairs != dropdown_pairs(dropdown):
        dropdown.options = pairs
    dropdown.value = value


def make_input(spec: FieldSpec, *, none_label: str = "default", width: str = "11em",
               multiline: bool = False, label_width: "str | None" = None) -> widgets.Widget:
    """The value input of one field (see the module docstring), set to the field's default. `label_width`:
    the input carries the field's label as its description, that wide (no separate label widget)."""
    tip = field_help(spec)
    labelled: dict[str, Any] = {}
    if label_width:
        labelled["description"] = spec.label + (" *" if spec.required else "")
        width = f"calc({label_width} + {width})"

    def style(kind: type) -> widgets.Widget:
        return input_style(kind, label_width)

    layout = shared(widgets.Layout, width=width)
    if spec.type == "bool":
        if spec.default is None:
            return widgets.Dropdown(options=[(none_label, NOT_GIVEN), ("yes", True), ("no", False)],
                                    value=NOT_GIVEN, layout=layout, tooltip=tip, style=style(widgets.Dropdown),
                                    **labelled)
        return widgets.Checkbox(value=bool(spec.default), indent=bool(label_width), tooltip=tip,
                                layout=shared(widgets.Layout, width=width if label_width else "auto"),
                                style=style(widgets.Checkbox), **labelled)
    if spec.type == "enum":                  # wide enough for the longest names (SECOND_MAX_RISE_OR_FALL)
        return widgets.Dropdown(options=list(spec.choices), value=spec.default, tooltip=tip,
                                layout=shared(widgets.Layout, width="auto", min_width=width),
                                style=style(widgets.Dropdown), **labelled)
    if spec.type == "str":
        cls = widgets.Textarea if multiline else widgets.Text
        return cls(value="", layout=layout, tooltip=tip, continuous_update=False, style=style(cls), **labelled)
    return NumberText(value=spec.default, placeholder="required" if spec.required else "",
                      layout=layout, tooltip=tip, continuous_update=False, style=style(NumberText), **labelled)


def get_value(spec: FieldSpec, widget: widgets.Widget) -> Any:
    """The case value of an input made by `make_input` (None = not given)."""
    if isinstance(widget, NumberText):
        return widget.number
    if isinstance(widget, (widgets.Text, widgets.Textarea)):
        return widget.value if widget.value.strip() else None
    return None if widget.value == NOT_GIVEN else widget.value


def set_value(spec: FieldSpec, widget: widgets.Widget, value: Any) -> None:
    """Show the case value `value` (None = the field's default) in an input made by `make_input`."""
    if isinstance(widget, widgets.Checkbox):
        if value is None:
            value = spec.default
        elif isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        widget.value = bool(value)
    elif isinstance(widget, widgets.Dropdown):
        choices = [v for label, v in dropdown_pairs(widget) if not label.endswith(_EXTRA)]
        if value is None:
            value = spec.default if spec.default in choices else choices[0]
        elif isinstance(value, str):           # enum names are matched case-insensitively, like Case.load
            value = next((c for c in choices if isinstance(c, str) and c.lower() == value.strip().lower()), value)
        _select(widget, value)                 # a value not among the choices is shown; Case.load reports it
    elif isinstance(widget, NumberText):
        widget.value = spec.default if value is None else value
    else:
        widget.value = "" if value is None else str(value)


def observe_value(widget: widgets.Widget, handler: Callable[[Any], None]) -> None:
    widget.observe(handler, names="value")


def small_label(text: str, tooltip: str = "") -> widgets.HTML:
    """A wrapping, small-print label (column headers and row labels of the grids)."""
    return plain(widgets.HTML, f'<div style="line-height:1.15; font-size:0.9em">{html.escape(text)}</div>',
                 tooltip=tooltip or None)


def message_row(message: widgets.HTML) -> widgets.HTML:
    """`message` made a grid item spanning every column but the first: a row of its own under the inputs it
    is about (empty, it takes no height). Set as `grid_area`: ipywidgets 8 applies `grid_column` and then
    removes the unset `grid-area` shorthand, which clears it again."""
    message.layout = shared(widgets.Layout, grid_area="auto / 2 / auto / -1")
    return message


def spacer(width: str) -> widgets.Box:
    """An empty box `width` wide; one model shown wherever it is needed (a model may have many views)."""
    return shared(widgets.Box, layout=shared(widgets.Layout, width=width))


def field_grid(items: Iterable["FieldWidget"]) -> widgets.GridBox:
    """One grid of field rows (input with its label, unit, message): one box for them all."""
    return widgets.GridBox([cell for item in items for cell in item.cells()],
                           layout=shared(widgets.Layout, grid_template_columns="max-content 9.5em auto",
                                         grid_gap="2px 6px", align_items="center"))


def message_widget() -> widgets.HTML:
    """An empty message (problems appear there in red)."""
    return plain(widgets.HTML)


# ----------------------------------------------------------------------------------------- messages

def message_html(lines: Sequence[str]) -> str:
    """Problems as red HTML lines (empty string when there is none)."""
    if not lines:
        return ""
    body = "<br>".join(html.escape(line) for line in lines)
    return f'<span style="color:{ERROR_COLOUR}">{body}</span>'


def mark(widget: widgets.Widget, bad: bool) -> None:
    """A red border on an input with a problem (`PROBLEM_CLASS`); none otherwise."""
    if bad and not is_marked(widget):
        widget.add_class(PROBLEM_CLASS)
    elif not bad and is_marked(widget):
        widget.remove_class(PROBLEM_CLASS)


def is_marked(widget: widgets.Widget) -> bool:
    """True when `mark` shows the input as having a problem."""
    return PROBLEM_CLASS in widget._dom_classes


@dataclass
class Target:
    """Where the problems of one case path are shown: the message widget next to the field, the inputs to
    mark red, and the path prefix removed from the problem text shown there."""
    message: widgets.HTML
    marks: Sequence[widgets.Widget] = ()
    strip: str = ""
    section: str = ""

    def line(self, problem: str) -> str:
        if self.strip and problem.startswith(self.strip):
            rest = problem[len(self.strip):].lstrip(".")
            return rest[2:] if rest.startswith(": ") else rest
        return problem


def problem_path(problem: str) -> str:
    """The path part of a `CaseError` problem (`path: message (got …)`)."""
    head, sep, _ = problem.partition(": ")
    return head if sep else ""


def starts_path(path: str, prefix: str) -> bool:
    """True when `prefix` is `path` or one of its parents (`a.b` for `a.b.c`, `a.b[1]`, `a.b line 3`)."""
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[ ")


class MessageRouter:
    """Routes `CaseError` problems to the message widgets next to the fields (longest matching path wins);
    problems that match no path are returned for the summary line."""

    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}

    def add(self, path: str, target: Target) -> None:
        self.targets[path] = target

    def find(self, path: str) -> Target | None:
        best = None
        for key, target in self.targets.items():
            if starts_path(path, key) and (best is None or len(key) > len(best[0])):
                best = (key, target)
        return best[1] if best else None

    def show(self, problems: Iterable[str]) -> list[str]:
        """Show every problem next to its field and clear every other message; returns the unrouted ones."""
        lines: dict[int, list[str]] = {}
        marked: set[int] = set()
        unrouted = []
        for problem in problems:
            target = self.find(problem_path(problem))
            if target is None:
                unrouted.append(problem)
                continue
            bucket = lines.setdefault(id(target.message), [])
            text = target.line(problem)
            if text not in bucket:
                bucket.append(text)
            marked.update(id(w) for w in target.marks)
        seen: set[int] = set()
        for target in self.targets.values():
            if id(target.message) not in seen:
                seen.add(id(target.message))
                value = message_html(lines.get(id(target.message), []))
                if target.message.value != value:
                    target.message.value = value
            for widget in target.marks:
                mark(widget, id(widget) in marked)
        return unrouted

    def sections(self, problems: Iterable[str]) -> dict[str, int]:
        """Number of routed problems per section (for the tab titles)."""
        counts: dict[str, int] = {}
        for problem in problems:
            target = self.find(problem_path(problem))
            if target is not None and target.section:
                counts[target.section] = counts.get(target.section, 0) + 1
        return counts


# -------------------------------------------------------------------------------------- one field

@dataclass
class FieldWidget:
    """One field of the diffuser, model, output or time-range tables: the value input labelled with the
    field's label (tooltip: description, bounds, default), unit drop-down (when the kind has units) and the
    red message beside them."""
    spec: FieldSpec
    path: str
    with_unit: bool = True
    label_width: str = "15em"
    input: widgets.Widget = field(init=False)
    unit: widgets.Dropdown | None = field(init=False)
    message: widgets.HTML = field(init=False)

    def __post_init__(self) -> None:
        spec = self.spec
        self.input = make_input(spec, label_width=self.label_width)
        self.unit = unit_dropdown(spec) if self.with_unit and has_unit(spec) else None
        self.message = message_widget()

    def cells(self) -> list[widgets.Widget]:
        """The field's row in a `field_grid`: input, unit drop-down (or a blank), message."""
        return [self.input, self.unit if self.unit is not None else spacer("9.5em"), self.message]

    def get(self) -> Any:
        return get_value(self.spec, self.input)

    def set(self, value: Any) -> None:
        set_value(self.spec, self.input, value)

    def get_unit(self) -> Any:
        return self.unit.value if self.unit is not None and self.unit.value != NOT_GIVEN else None

    def set_unit(self, text: Any) -> None:
        if self.unit is not None:
            set_unit(self.unit, self.spec, text)

    def reset(self) -> None:
        self.set(None)
        self.set_unit(None)

    def observe(self, handler: Callable[[Any], None]) -> None:
        observe_value(self.input, handler)
        if self.unit is not None:
            observe_value(self.unit, handler)

    def target(self, section: str) -> Target:
        marks = [self.input] + ([self.unit] if self.unit is not None else [])
        return Target(self.message, marks, strip=self.path, section=section)
