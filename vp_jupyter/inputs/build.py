"""Step 2 of validation and the translation to the engine: unit conversion to SI, range checks on the SI
values, bottom depth (spec §5.1), layer filling (spec §5.2) and time-series cases (spec §12) -> EngineCase.

Conversion order (spec §5.2, §6.1): depth and temperature first, because salinity given as a density or a
conductivity needs the temperature in °C at the same place. Given values and filled values are both
range-checked; a filled value's message says so.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .. import units as u
from ..engine import types as et
from ..engine.ambient import fill_values
from .fields import AMBIENT_FIELDS, DIFFUSER_FIELDS, MIN_PORT_SPACING, FieldSpec
from .normalise import ProblemLimit, SeriesData, _Text
from .parts import Problems, fmt

_NEEDS_TEMPERATURE = ("density", "sigma_t", "conductivity")     # salinity units that are not psu
# spec §5.2 conversion order: temperature first, then salinity (needs °C), then the rest
_AMBIENT_ORDER = ("temperature", "salinity", "current_speed", "current_dir", "bg_conc", "decay_rate",
                  "ff_velocity", "ff_dir", "ff_diff_coeff")
_DIFFUSER_ORDER = ("depth", "temperature", "salinity", "diameter", "offset_x", "offset_y", "vertical_angle",
                   "horizontal_angle", "num_ports", "port_spacing", "acute_mixing_zone", "effluent_flow",
                   "concentration")
_ISOPLETH_QUANTITY = {"concentration": "concentration", "salinity": "salinity", "temperature": "temperature",
                      "speed": "current_speed"}
_FAR_FIELD = ("ff_velocity", "ff_dir", "ff_diff_coeff")


@dataclass
class Built:
    """The engine cases, per case the filled layers in input units, and the effective units."""
    engine_cases: list
    layer_tables: list
    diffuser_units: dict
    ambient_units: dict


def effective_units(diffuser_units: Mapping[str, "u.Unit | None"], ambient_units: Mapping[str, "u.Unit | None"],
                    diffuser_series: Mapping[str, SeriesData], ambient_series: Mapping[str, SeriesData]
                    ) -> tuple[dict, dict, "str | None"]:
    """Units per field with SI defaults; a time series' own unit replaces the field's unit (legacy §3.6).
    The diffuser `isopleth` entry becomes the unit of the matching quantity (spec §1.2)."""
    d_units = dict(diffuser_units)
    a_units = dict(ambient_units)
    for name, series in diffuser_series.items():
        if series.unit is not None:
            d_units[name] = series.unit
    for name, series in ambient_series.items():
        if series.unit is not None:
            a_units[name] = series.unit
    isopleth = d_units.get("isopleth")
    isopleth_type = isopleth.label if isopleth is not None else None
    if isopleth_type is not None:
        quantity = _ISOPLETH_QUANTITY[isopleth_type]
        d_units["isopleth"] = a_units[quantity] if quantity == "current_speed" else d_units[quantity]
    return d_units, a_units, isopleth_type


def check(spec: FieldSpec, value: float, unit: u.Unit, path: str, problems: "Problems | ProblemLimit",
          temperature_c: "float | None" = None, filled: bool = False, column: "int | None" = None
          ) -> "float | None":
    """SI value of `value` in `unit`, or None after reporting a conversion error or a value out of bounds.
    `column` (a CSV value): the message ends with "in column N"."""
    where = "" if column is None else f" in column {column}"
    spec = spec.for_rule(unit.rule)
    try:
        si = u.to_si(value, unit, temperature_c=temperature_c, wrap=False)
    except (ValueError, ArithmeticError) as err:      # UnitError is a ValueError
        problems.add(path, ("filled value: " if filled else "") + str(err) + where)
        return None
    if not math.isfinite(si):
        problems.add(path, ("filled value " if filled else "") + f"is out of range after conversion "
                     f"(got {_given(value, unit)})" + where)
        return None
    settled = spec.settle(value, si, lambda bound: u.from_si(bound, unit, temperature_c=temperature_c, wrap=False))
    if settled is not None:
        if unit.kind == "angle":
            return u.to_si(value, unit, temperature_c=temperature_c) if settled == si else settled % 360.0
        return settled
    message = ("filled value " if filled else "") + spec.bounds_text(si) + (f": {spec.note}" if spec.note else "")
    problems.add(path, f"{message} (got {_given(value, unit)}){where}")
    return None


def _given(value: float, unit: u.Unit) -> "_Text":
    """A value as the user gave it, with its unit, for a message."""
    return _Text(fmt(value) + ("" if unit.is_si or not unit.label else f" {unit.label}"))


def row_index(time_s: float, series: SeriesData) -> int:
    """spec §12: row floor(t / increment) modulo the number of rows, t from 0 (not from the start time)."""
    return math.floor(time_s / (series.increment_hours * 3600.0) + 1e-9) % len(series.rows)


def engine_settings(model: Any) -> et.Settings:
    values = {f.name: getattr(model, f.name) for f in dataclasses.fields(et.Settings)}
    if not model.tidal_pollution_buildup:      # spec §1.1: the channel width only counts with TPB
        values["tpb_channel_width"] = 1e6
    values["write_step_freq"] = float(values["write_step_freq"])
    values["max_dilution"] = float(values["max_dilution"])
    return et.Settings(**values)


def _at(profile: et.VariableProfile, depths: Sequence[float], bottom_depth: float) -> list[float]:
    """A filled SI profile evaluated at `depths` with the §5.2 rules (used as conversion context)."""
    return fill_values(depths, profile.values, profile.surface, profile.bottom, bottom_depth,
                       point_depths=profile.depths)


class CaseBuilder:
    """Builds one EngineCase per case time from normalised parts (see `Case`)."""

    def __init__(self, model: Any, diffuser: Any, d_units: dict, isopleth_type: "str | None", ambient: Any,
                 a_units: dict, layers_ok: bool, d_series: dict, a_series: dict, problems: Problems):
        self.model, self.diffuser, self.d_units, self.isopleth_type = model, diffuser, d_units, isopleth_type
        self.ambient, self.a_units, self.layers_ok = ambient, a_units, layers_ok
        self.d_series, self.a_series, self.problems = d_series, a_series, problems
        self.bad_series: set[str] = set()       # "diffuser.name" / "ambient.name" with a value out of range
        self.settings = engine_settings(model)
        # a variable given by the layers (no time series) is the same in every case with the same depths:
        # filled and checked once (a year of hourly cases would otherwise repeat it 8 760 times)
        self._layer_variables: dict[tuple, tuple] = {}
        self._diffuser_values: dict[tuple, float] = {}      # the same for diffuser fields without a series
        self._geometries: dict = {}                         # port depth -> `_geometry` (the same for every case)

    def build(self, case_times: Sequence[float]) -> "Built | None":
        self._check_series_rows()
        cases, tables = [], []
        for time_s in case_times:
            diffuser, port_depth = self._diffuser(time_s)
            built = self._ambient(time_s, port_depth)
            if diffuser is None or built is None:
                continue
            ambient, table = built
            cases.append(et.EngineCase(settings=self.settings, diffuser=diffuser, ambient=ambient))
            tables.append(table)
        if self.problems:
            return None
        return Built(cases, tables, self.d_units, self.a_units)

    def _check_series_rows(self) -> None:
        """Every row of every series whose conversion needs no context, checked once up front, before any
        case is built; at most MAX_CSV_PROBLEMS problems are listed per series."""
        for group, specs, series_map, first_line in (("diffuser", DIFFUSER_FIELDS, self.d_series, 1),
                                                     ("ambient", AMBIENT_FIELDS, self.a_series, 2)):
            units = self.d_units if group == "diffuser" else self.a_units
            for name, series in series_map.items():
                unit = units[name]
                if unit is None or unit.rule in _NEEDS_TEMPERATURE:
                    continue
                limit = ProblemLimit(series.source, self.problems)
                for k, row in enumerate(series.rows):
                    for column, value in enumerate(row if isinstance(row, list) else [row], start=1):
                        check(specs[name], value, unit, f"{series.source} line {k + first_line}", limit,
                              column=column)
                limit.close()
                if limit.count:
                    self.bad_series.add(f"{group}.{name}")

    # ------------------------------------------------------------------------------------------ diffuser
    def _diffuser(self, time_s: float) -> tuple["et.Diffuser | None", "float | None"]:
        """SI diffuser of one case (spec §6.1) and the port depth in m (None if invalid)."""
        si: dict[str, Any] = {}
        for name in _DIFFUSER_ORDER:
            spec, unit = DIFFUSER_FIELDS[name], self.d_units[name]
            series = self.d_series.get(name)
            if series is not None and f"diffuser.{name}" in self.bad_series:
                si[name] = None                       # reported by _check_series_rows
                continue
            if series is not None:
                row = row_index(time_s, series)
                value, path = series.rows[row], f"{series.source} line {row + 1}"
            else:
                known = self._diffuser_values.get(
                    (name, si.get("temperature") if unit is not None and unit.rule in _NEEDS_TEMPERATURE else None))
                if known is not None:               # converted for an earlier case (below)
                    si[name] = known
                    continue
                value, path = getattr(self.diffuser, name), f"diffuser.{name}"
                value = spec.default if value is None else value
            if value is None or unit is None:
                si[name] = None
            elif name == "num_ports":
                si[name] = value if spec.in_bounds(value) else None
                if si[name] is None:
                    self.problems.add(path, "must be a positive whole number" if value < 1 else
                                      f"must be a whole number, {spec.bounds_text()}", value)
            elif unit.rule in _NEEDS_TEMPERATURE and si.get("temperature") is None:
                si[name] = None                       # the temperature problem is reported already
            elif series is None:            # the same in every case (given its temperature): converted once
                context = si.get("temperature") if unit.rule in _NEEDS_TEMPERATURE else None
                si[name] = check(spec, value, unit, path, self.problems, temperature_c=context)
                if si[name] is not None:
                    self._diffuser_values[(name, context)] = si[name]
            else:
                si[name] = check(spec, value, unit, path, self.problems, temperature_c=si.get("temperature"),
                                 column=1)
        if si["num_ports"] is not None and si["num_ports"] > 1 and si["port_spacing"] is not None \
                and si["port_spacing"] < MIN_PORT_SPACING:
            rule = "> 0" if si["port_spacing"] <= 0 else f">= {MIN_PORT_SPACING:g} m"
            self.problems.add("diffuser.port_spacing", f"must be {rule} when num_ports > 1",
                              self.diffuser.port_spacing if self.diffuser.port_spacing is not None else 0)
            si["port_spacing"] = None
        si["isopleth"] = self._isopleth(si.get("temperature"))
        if any(v is None for v in si.values()):
            return None, si["depth"]
        ports = int(si["num_ports"])
        return et.Diffuser(
            diameter=si["diameter"], depth=si["depth"], effluent_flow=si["effluent_flow"],
            vertical_angle=si["vertical_angle"], horizontal_angle=si["horizontal_angle"], num_ports=ports,
            port_spacing=et.MISSING if ports == 1 else si["port_spacing"],     # spec §6.1
            offset_x=si["offset_x"], offset_y=si["offset_y"], acute_mixing_zone=si["acute_mixing_zone"],
            isopleth_type=self.isopleth_type, isopleth=si["isopleth"], salinity=si["salinity"],
            temperature=si["temperature"], concentration=si["concentration"]), si["depth"]

    def _isopleth(self, temperature_c: "float | None") -> "float | None":
        """spec §1.2: the isopleth value in the unit of the matching quantity; >= 0 except for temperature."""
        unit, raw = self.d_units["isopleth"], self.diffuser.isopleth
        if unit is None or self.isopleth_type is None:
            return None
        value = 0.0 if raw is None else raw
        if unit.rule in _NEEDS_TEMPERATURE and temperature_c is None:
            return None
        try:
            si = u.to_si(value, unit, temperature_c=temperature_c)
        except u.UnitError as err:
            self.problems.add("diffuser.isopleth", str(err))
            return None
        if self.isopleth_type != "temperature" and si < 0:
            self.problems.add("diffuser.isopleth", f"a {self.isopleth_type} isopleth must be >= 0",
                              _Text(fmt(value) + (f" {unit.label}" if unit.label else "")))
            return None
        return si

    # ------------------------------------------------------------------------------------------- ambient
    def _ambient(self, time_s: float, port_depth: "float | None") -> "tuple[et.Ambient, list] | None":
        z_unit = self.a_units["z"]
        if not self.layers_ok or z_unit is None:
            self._check_given_layer_values()
            return None
        geometry = self._geometries.get(port_depth)
        if geometry is None:
            geometry = self._geometry(port_depth, z_unit)
            if geometry is None:
                return None
            self._geometries[port_depth] = geometry
        bottom, depths, levels = geometry

        ok = True
        profiles: dict[str, et.VariableProfile] = {}
        table: dict[str, list[float]] = {}
        temperature_at_layers: "list[float] | None" = None
        for name in _AMBIENT_ORDER:
            built = self._variable(name, time_s, depths, levels.get(name), bottom, profiles, temperature_at_layers)
            if built is None:
                ok = False
                continue
            profiles[name], table[name] = built
            if name == "temperature":
                temperature_at_layers = _at(profiles[name], depths, bottom)
        if not ok:
            return None
        rows = [{"depth": u.from_si(d, z_unit), **{n: table[n][i] for n in _AMBIENT_ORDER}}
                for i, d in enumerate(depths)]
        decay_is_light = self.a_units["decay_rate"].rule == "light"   # spec §3
        return et.Ambient(profiles=profiles, bottom_depth=bottom, decay_is_light=decay_is_light), rows

    def _geometry(self, port_depth: "float | None", z_unit: u.Unit
                  ) -> "tuple[float, list[float], dict[str, list[float]]] | None":
        """Bottom depth (spec §5.1), layer depths and ambient series levels (m, as depths) for a port depth;
        None after reporting a problem. The same in every case with that port depth (`_ambient` keeps them)."""
        layers, z_is_depth = self.ambient.layers, self.ambient.z_is_depth
        z_m = [u.to_si(layer.z, z_unit) for layer in layers]
        levels: dict[str, list[float]] = {}
        for name, series in self.a_series.items():
            levels[name] = [u.to_si(level, series.depth_unit) for level in series.levels]
        # spec §5.1: H = port depth, raised to the deepest layer (z as depth) and the deepest series level
        bottom = port_depth if port_depth is not None else max(z_m)
        if z_is_depth:
            bottom = max(bottom, max(z_m))
        for name, series in self.a_series.items():
            if series.z_is_depth:
                bottom = max(bottom, max(levels[name]))
        ok = True
        if not z_is_depth:
            for i, z in enumerate(z_m):
                if z > bottom * (1 + 1e-12):
                    self.problems.add(f"ambient.layers[{i}].z",
                                      f"a height above the bottom must be <= the bottom depth "
                                      f"({u.from_si(bottom, z_unit):g} {z_unit.label}, the port depth)",
                                      _Text(f"{fmt(layers[i].z)} {z_unit.label}"))
                    ok = False
        depths = z_m if z_is_depth else [max(bottom - z, 0.0) for z in z_m]
        for name, series in self.a_series.items():
            if not series.z_is_depth:
                if max(levels[name]) > bottom * (1 + 1e-12):
                    self.problems.add(f"{series.source} line 1",
                                      f"heights must be <= the bottom depth ({bottom:g} m)",
                                      _Text(", ".join(fmt(v) for v in series.levels)))
                    ok = False
                levels[name] = [max(bottom - h, 0.0) for h in levels[name]]
        for where, column in [("ambient.layers", depths)] + [(f"{self.a_series[n].source} line 1", v)
                                                             for n, v in levels.items()]:
            if any(b <= a for a, b in zip(column, column[1:])):
                self.problems.add(where, "levels are too close together: equal after conversion to metres")
                ok = False
        if not ok:
            return None
        return bottom, depths, levels

    def _check_given_layer_values(self) -> None:
        """Without usable depths nothing can be filled; still report given values out of bounds."""
        for i, layer in enumerate(self.ambient.layers):
            for name in _AMBIENT_ORDER:
                value, unit = getattr(layer, name), self.a_units[name]
                if value is not None and unit is not None and unit.rule not in _NEEDS_TEMPERATURE:
                    check(AMBIENT_FIELDS[name], value, unit, f"ambient.layers[{i}].{name}", self.problems)

    def _variable(self, name: str, time_s: float, depths: list[float], series_levels: "list[float] | None",
                  bottom: float, profiles: dict, temperature_at_layers: "list[float] | None"
                  ) -> "tuple[et.VariableProfile, list[float]] | None":
        """One variable: filled (spec §5.2) in input units for the table, converted to SI for the engine."""
        spec, unit = AMBIENT_FIELDS[name], self.a_units[name]
        if unit is None:
            return None
        modes = self.ambient.extrapolation.get(name, {})
        surface, bottom_mode = modes.get("surface", "CONSTANT"), modes.get("bottom", "CONSTANT")
        needs_t = unit.rule in _NEEDS_TEMPERATURE
        if needs_t and "temperature" not in profiles:
            return None                                 # the temperature problem is reported already
        series = self.a_series.get(name)
        if series is not None and f"ambient.{name}" in self.bad_series:
            return None                                 # reported by _check_series_rows
        if series is not None:                          # spec §12: the series' own depth list
            row = row_index(time_s, series)
            values = series.rows[row]
            path = f"{series.source} line {row + 2}"
            context = _at(profiles["temperature"], series_levels, bottom) if needs_t else [None] * len(values)
            si = [check(spec, v, unit, path, self.problems, temperature_c=t, column=column)
                  for column, (v, t) in enumerate(zip(values, context), start=1)]
            if any(v is None for v in si):
                return None
            table = fill_values(depths, values, surface, bottom_mode, bottom, point_depths=series_levels)
            return et.VariableProfile(tuple(series_levels), tuple(si), surface, bottom_mode), table
        key = (name, tuple(depths), bottom, tuple(temperature_at_layers) if needs_t else None)
        known = self._layer_variables.get(key)
        if known is None:
            known = self._layer_variable(name, depths, bottom, temperature_at_layers, surface, bottom_mode)
            if known is not None:
                self._layer_variables[key] = known
        return known

    def _layer_variable(self, name: str, depths: list[float], bottom: float,
                        temperature_at_layers: "list[float] | None", surface: str, bottom_mode: str
                        ) -> "tuple[et.VariableProfile, list[float]] | None":
        """`_variable` of a variable the layers give (no time series)."""
        spec, unit = AMBIENT_FIELDS[name], self.a_units[name]
        needs_t = unit.rule in _NEEDS_TEMPERATURE
        given = [getattr(layer, name) for layer in self.ambient.layers]
        context = temperature_at_layers if needs_t else [None] * len(depths)
        if all(v is None for v in given):
            if name in ("bg_conc", "decay_rate") or (name in _FAR_FIELD and not self.model.brooks_far_field):
                zeros = (0.0,) * len(depths)            # spec §1.3: missing far-field values (Brooks off) are 0
                table = [u.from_si(0.0, unit) for _ in depths]
                return et.VariableProfile(tuple(depths), zeros, surface, bottom_mode), table
            needed = " (needed with brooks_far_field)" if name in _FAR_FIELD else ""
            self.problems.add("ambient.layers", f"no layer gives {name}{needed}; give it in at least one layer "
                                                f"or as a time series")
            return None
        filled = fill_values(depths, given, surface, bottom_mode, bottom)
        si = [check(spec, v, unit, f"ambient.layers[{i}].{name}", self.problems, temperature_c=t,
                    filled=given[i] is None) for i, (v, t) in enumerate(zip(filled, context))]
        if any(v is None for v in si):
            return None
        return et.VariableProfile(tuple(depths), tuple(si), surface, bottom_mode), filled
