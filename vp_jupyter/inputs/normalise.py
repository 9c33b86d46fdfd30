"""Step 1 of validation: parse every raw value of the case parts (numbers, flags, enums, unit strings, CSV
time series) into normalised parts, collecting problems. Checks that need SI values are in `build.py`.

Parsing rules: None or "" is a missing value; numbers and numeric strings are accepted, booleans, NaN and
infinities are not; flags take true/false (or the strings "true"/"false"); enum names and unit strings are
case-insensitive and stored as their canonical spelling.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import units as u
from .fields import (AMBIENT_FIELDS, DIFFUSER_FIELDS, DIFFUSER_SERIES, EXTRAPOLATION_MODES, MODEL_FIELDS,
                     OUTPUT_FIELDS, SERIES_FIELDS, TIMESERIES_FIELDS, FieldSpec)
from .parts import (AmbientLayer, AmbientProfile, AmbientSeries, Diffuser, DiffuserSeries, ModelSettings,
                    OutputOptions, Problems, Timeseries, layer_from_dict)

INVALID = object()       # a value that was reported as a problem
MAX_CASES = 100_000      # time-series case count limit (legacy §7: an unbounded end time never finishes)


def number(raw: Any, path: str, problems: Problems, integer: bool = False) -> Any:
    """float (or int) from a number or numeric string; None when missing; INVALID (reported) otherwise."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if isinstance(raw, bool) or not isinstance(raw, (numbers.Real, str)):
        problems.add(path, "must be a number", raw)
        return INVALID
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (ValueError, OverflowError):
        problems.add(path, "must be a number", raw)
        return INVALID
    if not math.isfinite(value):
        problems.add(path, "must be a finite number", raw)
        return INVALID
    if integer:
        if not value.is_integer():
            problems.add(path, "must be a whole number", raw)
            return INVALID
        return int(value)
    return value


def flag(raw: Any, path: str, problems: Problems, default: bool) -> bool:
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    problems.add(path, "must be true or false", raw)
    return default


def enum(raw: Any, path: str, problems: Problems, choices: tuple[str, ...], default: str) -> str:
    if raw is None:
        return default
    if isinstance(raw, str):
        for choice in choices:
            if raw.strip().lower() == choice.lower():
                return choice
    problems.add(path, f"must be one of {', '.join(choices)}", raw)
    return default


def unit(raw: Any, spec: FieldSpec, path: str, problems: Problems) -> "u.Unit | None":
    try:
        parsed = u.parse_unit(raw, spec.kind)
    except u.UnitError as err:
        problems.add(path, str(err))
        return None
    if spec.units and parsed.label not in spec.units:
        problems.add(path, f"'{raw}' is not allowed for {spec.name}; expected one of {', '.join(spec.units)}")
        return None
    return parsed


def _value(spec: FieldSpec, raw: Any, path: str, problems: Problems) -> Any:
    if spec.type == "bool":
        return flag(raw, path, problems, spec.default)
    if spec.type == "enum":
        return enum(raw, path, problems, spec.choices, spec.default)
    value = number(raw, path, problems, integer=spec.type == "int")
    return spec.default if value is None or value is INVALID else value


# ---------------------------------------------------------------------------------------------------- model

def model(settings: Any, problems: Problems) -> Any:
    """Normalised ModelSettings; checks the bounds (model parameters are in SI) and the cross rules of §1.1."""
    if not isinstance(settings, ModelSettings):
        problems.add("model", "must be a ModelSettings or an object", settings)
        settings = ModelSettings()
    values = {}
    for name, spec in MODEL_FIELDS.items():
        raw = getattr(settings, name)
        value = values[name] = _value(spec, raw, f"model.{name}", problems)
        if spec.type in ("float", "int") and not spec.in_bounds(value):
            problems.add(f"model.{name}", spec.bounds_text(), raw)
    if values["tidal_pollution_buildup"]:
        if not 10 <= values["tpb_coast_bin"] <= 99:        # spec §1.1
            problems.add("model.tpb_coast_bin", "must be an integer 10..99 when tidal_pollution_buildup is on",
                         settings.tpb_coast_bin)
        if values["brooks_far_field"]:
            problems.add("model.brooks_far_field",
                         "cannot be combined with tidal_pollution_buildup (choose one far-field model)", True)
    if values["use_shore_vector"] and values["dist_to_shore"] <= 0:
        problems.add("model.dist_to_shore", "must be > 0 m when use_shore_vector is on", settings.dist_to_shore)
    return ModelSettings(**values)


def output(options: Any, problems: Problems) -> Any:
    if not isinstance(options, OutputOptions):
        problems.add("output", "must be an OutputOptions or an object", options)
        options = OutputOptions()
    return OutputOptions(**{n: _value(s, getattr(options, n), f"output.{n}", problems)
                            for n, s in OUTPUT_FIELDS.items()})


# ------------------------------------------------------------------------------------------------- diffuser

def diffuser(part: Any, series: Mapping[str, Any], problems: Problems) -> tuple[Any, dict[str, "u.Unit | None"]]:
    """Normalised Diffuser (values as floats in their units, None = missing) and the unit of each field
    (the isopleth entry is the isopleth *type*; a time series' own unit replaces the field's unit later)."""
    if not isinstance(part, Diffuser):
        problems.add("diffuser", "must be a Diffuser or an object", part)
        part = Diffuser()
    raw_units = part.units if isinstance(part.units, Mapping) else {}
    if not isinstance(part.units, Mapping):
        problems.add("diffuser.units", "must be an object", part.units)
    units: dict[str, u.Unit | None] = {}
    for name, raw in raw_units.items():
        if name not in DIFFUSER_FIELDS:
            problems.add(f"diffuser.units.{name}", f"unknown key; allowed: {', '.join(DIFFUSER_FIELDS)}")
    for name, spec in DIFFUSER_FIELDS.items():
        units[name] = unit(raw_units.get(name), spec, f"diffuser.units.{name}", problems)
    values = {}
    for name, spec in DIFFUSER_FIELDS.items():
        value = number(getattr(part, name), f"diffuser.{name}", problems, integer=spec.type == "int")
        if value is None and spec.required and name not in series:
            problems.add(f"diffuser.{name}", "is required")
        values[name] = None if value is INVALID else value
    labels = {n: un.label for n, un in units.items() if un is not None and n in raw_units}
    return Diffuser(**values, units=labels), units


# -------------------------------------------------------------------------------------------------- ambient

def ambient(part: Any, problems: Problems) -> tuple[AmbientProfile, dict[str, "u.Unit | None"], bool]:
    """Normalised AmbientProfile, the unit of z and of each variable, and whether the layer depths are usable
    (at least 2 layers, every z a number >= 0, depths increasing / heights decreasing)."""
    if not isinstance(part, AmbientProfile):
        problems.add("ambient", "must be an AmbientProfile or an object", part)
        part = AmbientProfile()
    raw_units = part.units if isinstance(part.units, Mapping) else {}
    if not isinstance(part.units, Mapping):
        problems.add("ambient.units", "must be an object", part.units)
    for name in raw_units:
        if name not in AMBIENT_FIELDS:
            problems.add(f"ambient.units.{name}", f"unknown key; allowed: {', '.join(AMBIENT_FIELDS)}")
    units = {n: unit(raw_units.get(n), s, f"ambient.units.{n}", problems) for n, s in AMBIENT_FIELDS.items()}
    z_is_depth = flag(part.z_is_depth, "ambient.z_is_depth", problems, True)

    extrapolation = {}
    raw_extrapolation = part.extrapolation if isinstance(part.extrapolation, Mapping) else {}
    if not isinstance(part.extrapolation, Mapping):
        problems.add("ambient.extrapolation", "must be an object", part.extrapolation)
    for var, modes in raw_extrapolation.items():
        path = f"ambient.extrapolation.{var}"
        if var not in AMBIENT_FIELDS or var == "z":
            problems.add(path, f"unknown key; allowed: {', '.join(list(AMBIENT_FIELDS)[1:])}")
            continue
        if not isinstance(modes, Mapping):
            problems.add(path, "must be an object with surface and bottom", modes)
            continue
        for end in modes:
            if end not in ("surface", "bottom"):
                problems.add(f"{path}.{end}", "unknown key; allowed: surface, bottom")
        extrapolation[var] = {end: enum(modes.get(end), f"{path}.{end}", problems, EXTRAPOLATION_MODES, "CONSTANT")
                              for end in ("surface", "bottom")}

    layers, usable = [], True
    raw_layers = part.layers
    if not isinstance(raw_layers, (list, tuple)):
        problems.add("ambient.layers", "must be a list of layers", raw_layers)
        raw_layers, usable = [], False
    for i, layer in enumerate(raw_layers):
        if isinstance(layer, Mapping):
            layer = layer_from_dict(layer, problems, f"ambient.layers[{i}]")
        if not isinstance(layer, AmbientLayer):
            problems.add(f"ambient.layers[{i}]", "must be an AmbientLayer or an object", layer)
            usable = False
            continue
        values = {}
        for name, spec in AMBIENT_FIELDS.items():
            value = number(getattr(layer, name), f"ambient.layers[{i}].{name}", problems)
            values[name] = None if value is INVALID else value
            if name == "z" and value is None:
                problems.add(f"ambient.layers[{i}].z", "is required")
            if name == "z" and value in (None, INVALID):
                usable = False
        layers.append(AmbientLayer(**values))
    if len(raw_layers) < 2:
        problems.add("ambient.layers", "at least 2 layers are needed", len(raw_layers))
        usable = False
    # spec §1.3: ordered from the surface down, z >= 0, no two layers at one depth
    previous = None
    for i, layer in enumerate(layers):
        z = layer.z
        if z is None:
            previous = None
            continue
        if z < 0:
            problems.add(f"ambient.layers[{i}].z", "must be >= 0", z)
            usable = False
        if previous is not None and (z <= previous if z_is_depth else z >= previous):
            rule = "depths must increase" if z_is_depth else \
                "heights above the bottom must decrease from the surface down"
            problems.add(f"ambient.layers[{i}].z", rule, _Text(f"{fmt_num(z)} after {fmt_num(previous)}"))
            usable = False
        previous = z
    labels = {n: un.label for n, un in units.items() if un is not None and n in raw_units}
    profile = AmbientProfile(layers=tuple(layers), units=labels, z_is_depth=z_is_depth, extrapolation=extrapolation)
    return profile, units, usable


def fmt_num(value: float) -> "_Text":
    return _Text(str(int(value)) if float(value).is_integer() else repr(float(value)))


class _Text(str):
    """A preformatted 'got' text (shown without quotes)."""

    def __repr__(self) -> str:
        return str(self)


# ---------------------------------------------------------------------------------------------- time series

@dataclass
class SeriesData:
    """One parsed time series: `rows` of values (diffuser: one value per row); ambient: `levels` too."""
    unit: "u.Unit | None"
    increment_hours: float
    rows: list
    levels: list = field(default_factory=list)
    depth_unit: "u.Unit | None" = None
    z_is_depth: bool = True


def _csv(text: Any, path: str, problems: Problems) -> "list[list[float]] | None":
    """Rows of numbers; reports empty lines inside the data and non-numeric cells with their line number."""
    if not isinstance(text, str):
        problems.add(path, "is required (CSV text)" if text is None else "must be CSV text", text)
        return None
    lines = text.lstrip("\ufeff").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows, ok = [], True
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            problems.add(f"{path} line {n}", "empty line inside the data")
            ok = False
            continue
        row = []
        for cell in line.split(","):
            value = number(cell, f"{path} line {n}", problems)
            if value is None:
                problems.add(f"{path} line {n}", "empty value", line)
            if value is None or value is INVALID:
                ok = False
            row.append(value)
        rows.append(row)
    return rows if ok else None


def timeseries(part: Any, ambient_z_unit: "u.Unit | None", ambient_z_is_depth: bool,
               problems: Problems) -> tuple[Any, dict[str, SeriesData], dict[str, SeriesData], list[float]]:
    """Normalised Timeseries, parsed diffuser and ambient series, and the case times in seconds (spec §12)."""
    if not isinstance(part, Timeseries):
        problems.add("timeseries", "must be a Timeseries, an object or null", part)
        return None, {}, {}, [0.0]
    times, labels = {}, {}
    unit_spec = TIMESERIES_FIELDS["start_time"]
    base_unit = unit(part.units, unit_spec, "timeseries.units", problems) or u.si_unit("time")
    labels["units"] = base_unit.label
    for name, units_key in (("start_time", "start_units"), ("end_time", "end_units"),
                            ("time_increment", "increment_units")):
        spec = TIMESERIES_FIELDS[name]
        raw_unit = getattr(part, units_key)
        time_unit = base_unit if raw_unit is None else unit(raw_unit, unit_spec, f"timeseries.{units_key}", problems)
        if raw_unit is not None and time_unit is not None:
            labels[units_key] = time_unit.label
        value = number(getattr(part, name), f"timeseries.{name}", problems)
        if value is None and spec.required:
            problems.add(f"timeseries.{name}", "is required")
        value = spec.default if value is None else value
        if value is INVALID or value is None or time_unit is None:
            times[name] = None
            continue
        labels[name] = value
        seconds = u.to_si(value, time_unit)
        if not math.isfinite(seconds) or not spec.in_bounds(seconds):
            problems.add(f"timeseries.{name}", spec.bounds_text(), value)
            seconds = None
        times[name] = seconds
    case_times: list[float] = []
    start, end, step = times.get("start_time"), times.get("end_time"), times.get("time_increment")
    if None not in (start, end, step):
        if end < start:
            problems.add("timeseries.end_time", "must be >= start_time", labels["end_time"])
        else:
            ratio = (end - start) / step + 1e-9
            if not ratio < MAX_CASES:
                problems.add("timeseries", f"too many cases; at most {MAX_CASES}",
                             _Text(f"{ratio:.6g} cases"))
            else:
                count = math.floor(ratio) + 1
                case_times = [start + k * step for k in range(count)]

    diffuser_series, ambient_series = {}, {}
    normalised_diffuser, normalised_ambient = {}, {}
    groups = (("diffuser", part.diffuser, DiffuserSeries, DIFFUSER_FIELDS, diffuser_series, normalised_diffuser),
              ("ambient", part.ambient, AmbientSeries, AMBIENT_FIELDS, ambient_series, normalised_ambient))
    for group, mapping, cls, specs, parsed_out, normalised_out in groups:
        if not isinstance(mapping, Mapping):
            problems.add(f"timeseries.{group}", "must be an object (variable -> series)", mapping)
            mapping = {}
        for var, series in mapping.items():
            path = f"timeseries.{group}.{var}"
            allowed = DIFFUSER_SERIES if group == "diffuser" else tuple(specs)[1:]
            if var not in allowed:
                problems.add(path, f"unknown key; allowed: {', '.join(allowed)}")
                continue
            if isinstance(series, Mapping):
                series = cls(**{"csv": None, "increment_hours": None, **series})
            if not isinstance(series, cls):
                problems.add(path, f"must be a {cls.__name__} or an object", series)
                continue
            spec = specs[var]
            series_unit = unit(series.units, spec, f"{path}.units", problems) if series.units is not None else None
            increment = number(series.increment_hours, f"{path}.increment_hours", problems)
            if increment is None:
                problems.add(f"{path}.increment_hours", "is required")
            elif increment is not INVALID and increment <= 0:
                problems.add(f"{path}.increment_hours", SERIES_FIELDS["increment_hours"].bounds_text(), increment)
                increment = INVALID
            elif increment is not INVALID and case_times and not case_times[-1] / (increment * 3600.0) < 1e15:
                problems.add(f"{path}.increment_hours", "is too small for the case times", increment)
                increment = INVALID
            fields_out: dict[str, Any] = dict(csv=series.csv, increment_hours=increment,
                                              units=series_unit.label if series_unit else None)
            data = SeriesData(series_unit, increment if isinstance(increment, float) else 0.0, [])
            if group == "ambient":
                data.depth_unit = (unit(series.depth_units, AMBIENT_FIELDS["z"], f"{path}.depth_units", problems)
                                   if series.depth_units is not None else ambient_z_unit)
                data.z_is_depth = flag(series.z_is_depth, f"{path}.z_is_depth", problems, ambient_z_is_depth)
                fields_out.update(depth_units=data.depth_unit.label if data.depth_unit else None,
                                  z_is_depth=data.z_is_depth)
            rows = _csv(series.csv, f"{path}.csv", problems)
            ok = rows is not None and isinstance(increment, float) and (group == "diffuser" or data.depth_unit)
            if rows is not None:
                ok = _series_shape(group, rows, data, f"{path}.csv", problems) and ok
            normalised_out[var] = cls(**fields_out)
            if ok:
                parsed_out[var] = data
    normalised = Timeseries(start_time=labels.get("start_time", part.start_time),
                            end_time=labels.get("end_time", part.end_time),
                            time_increment=labels.get("time_increment", part.time_increment),
                            units=labels["units"], start_units=labels.get("start_units"),
                            end_units=labels.get("end_units"), increment_units=labels.get("increment_units"),
                            diffuser=normalised_diffuser, ambient=normalised_ambient)
    if not part.diffuser and not part.ambient:
        case_times = [0.0]               # legacy §3.3: without any series there is one case, at t = 0
    return normalised, diffuser_series, ambient_series, case_times


def _series_shape(group: str, rows: list, data: SeriesData, path: str, problems: Problems) -> bool:
    """Spec §12 / legacy §3.4–3.5 layouts: diffuser one value per row (first column); ambient first line the
    levels (>= 2, >= 0, depths increasing or heights decreasing), then rows of one value per level."""
    if group == "diffuser":
        if not rows:
            problems.add(path, "needs at least one row")
            return False
        data.rows = [row[0] for row in rows]
        return True
    if len(rows) < 2:
        problems.add(path, "needs a line of levels and at least one line of values")
        return False
    levels, ok = rows[0], True
    if len(levels) < 2:
        problems.add(f"{path} line 1", "needs at least 2 depth levels", len(levels))
        ok = False
    for a, b in zip(levels, levels[1:]):
        if (b <= a) if data.z_is_depth else (b >= a):
            rule = "depths must increase" if data.z_is_depth else "heights must decrease"
            problems.add(f"{path} line 1", rule, _Text(f"{fmt_num(b)} after {fmt_num(a)}"))
            ok = False
    if any(level < 0 for level in levels):
        problems.add(f"{path} line 1", "levels must be >= 0", _Text(", ".join(fmt_num(v) for v in levels)))
        ok = False
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(levels):
            problems.add(f"{path} line {n}", f"needs {len(levels)} values, one per level", len(row))
            ok = False
    data.levels, data.rows = levels, rows[1:]
    return ok
