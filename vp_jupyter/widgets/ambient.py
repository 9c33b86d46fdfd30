"""The ambient profile as an editable table, generated from `AMBIENT_FIELDS`: a header row (labels with the
field descriptions as tooltips), a units row of drop-downs, one row of number cells per layer (blank = filled
from the other layers, spec §5.2) with a remove button and the row's messages, and two rows of extrapolation
drop-downs (above the top layer, below the bottom layer) per variable."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import ipywidgets as widgets

from ..inputs.fields import AMBIENT_FIELDS, EXTRAPOLATION_MODES
from .fields import (NumberText, Target, field_help, get_value, input_style, message_widget, plain, set_unit, set_value,
                     shared, unit_dropdown)
from .fields import message_row, small_label as _small

_ENDS = (("surface", "above the top layer"), ("bottom", "below the bottom layer"))
_MODE_LABELS = {"CONSTANT": "const.", "LINEAR_TO_ZERO": "lin. to 0", "EXTRAPOLATED": "extrap."}
_MODE_HELP = "const. = constant, lin. to 0 = linear to zero, extrap. = extrapolated (spec §5.2)"



class _Layer:
    """The widgets of one layer row."""

    def __init__(self, on_remove: Callable[["_Layer"], None]):
        # every cell has its own Layout: a shared one would share the red error border too
        self.cells = {name: NumberText(layout=shared(widgets.Layout, width="auto", min_width="6em"),
                                       style=input_style(NumberText), tooltip=field_help(spec),
                                       continuous_update=False, placeholder="required" if spec.required else "")
                      for name, spec in AMBIENT_FIELDS.items()}
        self.label = plain(widgets.Label, "")
        self.remove = plain(widgets.Button, icon="times", tooltip="Remove this layer", layout={"width": "2.5em"})
        self.remove.on_click(lambda _: on_remove(self))
        self.message = message_widget()
        self.message_row = message_row(self.message)          # a grid row of its own, under the layer


class AmbientTable:
    """The ambient part of the form. `layers` are the row widgets; `cell(i, name)` one number cell;
    `units[name]` the unit drop-downs; `extrapolation[var][end]` (end: surface/bottom) the mode drop-downs;
    `z_is_depth` a checkbox; `message` the table's own messages (units, extrapolation, whole-profile rules)."""

    def __init__(self, on_change: Callable[[Any], None]):
        self._on_change = on_change
        self.fields = dict(AMBIENT_FIELDS)
        self.variables = [name for name in self.fields if name != "z"]
        self.units = {name: unit_dropdown(spec, width="auto") for name, spec in self.fields.items()}
        self.extrapolation = {
            var: {end: widgets.Dropdown(options=[(_MODE_LABELS.get(m, m), m) for m in EXTRAPOLATION_MODES],
                                        value="CONSTANT", style=input_style(widgets.Dropdown),
                                        layout=shared(widgets.Layout, width="auto"),
                                        tooltip=f"{self.fields[var].label}: extrapolation {words}; {_MODE_HELP}")
                  for end, words in _ENDS}
            for var in self.variables}
        self.z_is_depth = widgets.Checkbox(
            value=True, indent=False, layout=shared(widgets.Layout, width="auto"), style=input_style(widgets.Checkbox),
            description="z is the depth below the surface (clear it for the height above the bottom; layers "
                        "always from the surface down)")
        self.z_is_depth_message = message_widget()
        self.layers: list[_Layer] = []
        columns = len(self.fields)
        self.grid = widgets.GridBox(layout=widgets.Layout(
            grid_template_columns=f"5em repeat({columns}, minmax(6.5em, 1fr)) 3em",
            grid_gap="2px 4px", align_items="center"))
        self.headers = [_small(spec.label + (" *" if spec.required else ""), field_help(spec))
                        for spec in self.fields.values()]
        self._row_titles = [_small("layer"), _small("units")] + [_small(f"extrapolation {words}") for _, words in _ENDS]
        self._blanks = [plain(widgets.Label, "") for _ in range(6)]
        self.add_button = widgets.Button(description="Add layer", icon="plus", tooltip="Add a layer at the bottom")
        self.add_button.on_click(lambda _: self.add_layer())
        self.message = message_widget()
        self.box = widgets.VBox([self.z_is_depth, self.z_is_depth_message, self.grid, self.add_button,
                                 self.message])
        for dropdown in self.units.values():
            dropdown.observe(on_change, names="value")
        for ends in self.extrapolation.values():
            for dropdown in ends.values():
                dropdown.observe(on_change, names="value")
        self.z_is_depth.observe(on_change, names="value")

    # -- rows ----------------------------------------------------------------------------------------

    def add_layer(self, values: "Mapping[str, Any] | None" = None, *, show: bool = True) -> _Layer:
        """Append a layer (blank, or with `values`: field name -> value). `show=False`: not laid out yet
        (many layers at once: lay the table out once, after the last)."""
        layer = _Layer(self.remove_layer)
        for name, cell in layer.cells.items():
            set_value(self.fields[name], cell, (values or {}).get(name))
            cell.observe(self._on_change, names="value")
        self.layers.append(layer)
        if show:
            self._layout()
            self._on_change(None)
        return layer

    def remove_layer(self, layer: "_Layer | int") -> None:
        """Remove a layer (the row widgets or its index)."""
        if isinstance(layer, int):
            layer = self.layers[layer]
        self.layers.remove(layer)
        self._layout()
        self._on_change(None)

    def cell(self, index: int, name: str) -> NumberText:
        return self.layers[index].cells[name]

    def _layout(self) -> None:
        blank = iter(self._blanks)        # empty grid cells, made once (a new one per layout would pile up)
        children: list[widgets.Widget] = [self._row_titles[0]] + self.headers + [next(blank)]
        children += [self._row_titles[1]] + list(self.units.values()) + [next(blank)]
        for number, layer in enumerate(self.layers, start=1):
            layer.label.value = str(number)
            children += [layer.label, *layer.cells.values(), layer.remove, layer.message_row]
        for (end, _), title in zip(_ENDS, self._row_titles[2:]):
            children += [title, next(blank)]
            children += [self.extrapolation[var][end] for var in self.variables]
            children += [next(blank)]
        self.grid.children = children

    # -- values --------------------------------------------------------------------------------------

    def get(self) -> dict[str, Any]:
        """The ambient block of the case JSON."""
        extrapolation = {var: {end: ends[end].value for end in ends}
                         for var, ends in self.extrapolation.items()
                         if any(d.value != "CONSTANT" for d in ends.values())}
        layers = []
        for layer in self.layers:
            values = {name: get_value(self.fields[name], cell) for name, cell in layer.cells.items()}
            layers.append({name: value for name, value in values.items() if value is not None})
        out: dict[str, Any] = {"units": {name: d.value for name, d in self.units.items() if d.value is not None},
                               "z_is_depth": self.z_is_depth.value}
        if extrapolation:
            out["extrapolation"] = extrapolation
        out["layers"] = layers
        return out

    def set(self, block: "Mapping[str, Any] | None") -> list[str]:
        """Show an ambient block of the case JSON; returns the keys the table cannot show."""
        block = block if isinstance(block, Mapping) else {}
        ignored = [f"ambient.{k}" for k in block if k not in ("units", "z_is_depth", "extrapolation", "layers")]
        units = block.get("units") if isinstance(block.get("units"), Mapping) else {}
        for name, dropdown in self.units.items():
            set_unit(dropdown, self.fields[name], units.get(name))
        ignored += [f"ambient.units.{k}" for k in units if k not in self.units]
        z_is_depth = block.get("z_is_depth", True)
        self.z_is_depth.value = z_is_depth if isinstance(z_is_depth, bool) else True
        modes = block.get("extrapolation") if isinstance(block.get("extrapolation"), Mapping) else {}
        for var, ends in self.extrapolation.items():
            given = modes.get(var) if isinstance(modes.get(var), Mapping) else {}
            for end, dropdown in ends.items():
                value = str(given.get(end, "CONSTANT")).upper()
                dropdown.value = value if value in EXTRAPOLATION_MODES else "CONSTANT"
        ignored += [f"ambient.extrapolation.{k}" for k in modes if k not in self.extrapolation]
        self.layers = []
        raw_layers = block.get("layers") if isinstance(block.get("layers"), (list, tuple)) else []
        for i, values in enumerate(raw_layers):
            values = values if isinstance(values, Mapping) else {}
            ignored += [f"ambient.layers[{i}].{k}" for k in values if k not in self.fields]
            self.add_layer(values, show=False)
        self._layout()
        return ignored

    # -- messages ------------------------------------------------------------------------------------

    def targets(self, section: str) -> dict[str, Target]:
        """Case paths -> where their problems are shown (rebuilt whenever layers change)."""
        out = {"ambient": Target(self.message, strip="ambient", section=section),
               "ambient.layers": Target(self.message, strip="ambient", section=section),
               "ambient.z_is_depth": Target(self.z_is_depth_message, [self.z_is_depth], "ambient.z_is_depth",
                                            section)}
        for name, dropdown in self.units.items():
            out[f"ambient.units.{name}"] = Target(self.message, [dropdown], "ambient", section)
        for var, ends in self.extrapolation.items():
            out[f"ambient.extrapolation.{var}"] = Target(self.message, list(ends.values()), "ambient", section)
            for end, dropdown in ends.items():
                out[f"ambient.extrapolation.{var}.{end}"] = Target(self.message, [dropdown], "ambient", section)
        for i, layer in enumerate(self.layers):
            row = f"ambient.layers[{i}]"
            out[row] = Target(layer.message, [], row, section)
            for name, cell in layer.cells.items():
                out[f"{row}.{name}"] = Target(layer.message, [cell], row, section)
        return out
