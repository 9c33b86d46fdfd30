"""Step 1 of validation: parse every raw value of the case parts (numbers, flags, enums, unit strings, CSV
time series) into normalised parts, collecting problems. Checks that need SI values are in `build.py`.

Parsing rules: None or "" is a missing value; numbers and numeric strings are accepted, booleans, NaN and
infinities are not; flags take true/false (or the strings "true"/"false"); enum names and unit strings are
case-insensitive and stored as their canonical spelling.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .. import units as u
from .fields import (AMBIENT_FIELDS, DIFFUSER_FIELDS, DIFFUSER_SERIES, EXTRAPOLATION_MODES, MAX_AMBIENT_LAYERS,
                     MAX_CASES, MODEL_FIELDS, OUTPUT_FIELDS, SERIES_FIELDS, TIMESERIES_FIELDS, FieldSpec)
from .parts import (AmbientLayer, AmbientProfile, AmbientSeries, Diffuser, DiffuserSeries, ModelSettings,
                    OutputOptions, Problems, Timeseries, fmt, layer_from_dict)

INVALID = object()       # a value that was reported as a problem
# MAX_CASES (fields.py) is the default time-series case limit; `Case(..., max_cases=N)`,
# `Case.load(source, max_cases=N)` and `Case.from_dict(data, max_cases=N)` override it.
MAX_CSV_PROBLEMS = 10    # per series: CSV cell and range problems listed before "… more" (a bad file is long)


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
        if spec.type in ("float", "int"):
            settled = spec.settle(value, value, lambda bound: bound)     # model parameters are SI
            if settled is None:
                problems.add(f"model.{name}", spec.bounds_text(value), raw)
            else:
                values[name] = int(settled) if spec.type == "int" else settled
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
    too_many = len(raw_layers) > MAX_AMBIENT_LAYERS
    if too_many:
        problems.add("ambient.layers", f"at most {MAX_AMBIENT_LAYERS} layers are allowed",
                     _Text(f"{len(raw_layers)} layers"))
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
    if len(raw_layers) < 2 and not too_many:
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
    """One parsed time series: `rows` of values (diffuser: one value per row); ambient: `levels` too.
    `source` is the name used in messages: the file as given in the case, or the series path + ".csv";
    `file` is the resolved path of the CSV file (None for inline data)."""
    unit: "u.Unit | None"
    increment_hours: float
    rows: list
    levels: list = field(default_factory=list)
    depth_unit: "u.Unit | None" = None
    z_is_depth: bool = True
    source: str = ""
    file: "str | None" = None
    text: str = ""


class ProblemLimit:
    """Counts the problems of one series and reports only the first MAX_CSV_PROBLEMS of them."""

    def __init__(self, source: str, problems: Problems):
        self.source, self.problems, self.count = source, problems, 0

    def add(self, path: str, message: str) -> None:
        self.count += 1
        if self.count <= MAX_CSV_PROBLEMS:
            self.problems.add(path, message)

    def close(self) -> None:
        if self.count > MAX_CSV_PROBLEMS:
            self.problems.add(self.source, f"{self.count - MAX_CSV_PROBLEMS} more problems in this series "
                                           f"are not listed ({self.count} in all)")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return repr(float(value))
    return str(value)


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) or (not isinstance(value, (str, bytes)) and hasattr(value, "tolist"))


def rows_to_csv(rows: Any) -> str:
    """CSV text from a list of numbers (one per line) or a list of rows (lists of numbers); numpy arrays
    and pandas series work too. Item n becomes line n, so messages point at the item."""
    lines = []
    for row in (rows.tolist() if hasattr(rows, "tolist") else rows):
        cells = row.tolist() if hasattr(row, "tolist") and not isinstance(row, (str, bytes)) else row
        cells = cells if isinstance(cells, (list, tuple)) else [cells]
        lines.append(",".join(_cell_text(cell) for cell in cells))
    return "\n".join(lines) + ("\n" if lines else "")


def _read_file(raw: Any, path: str, base_dir: "str | os.PathLike | None",
               problems: Problems) -> "tuple[str | None, str, str | None]":
    """(text or None after a reported problem, the file name for messages, the resolved path)."""
    if isinstance(raw, os.PathLike):
        raw = os.fspath(raw)
    if not isinstance(raw, str) or not raw.strip():
        problems.add(f"{path}.file", "must be the path of a CSV file", raw)
        return None, f"{path}.file", None
    given = Path(raw).expanduser()
    resolved = os.path.abspath(given if given.is_absolute() else Path(base_dir or os.getcwd()) / given)
    try:
        data = Path(resolved).read_bytes()
    except FileNotFoundError:
        problems.add(f"{path}.file", f"file not found: {resolved}", raw)
        return None, raw, resolved
    except IsADirectoryError:
        problems.add(f"{path}.file", f"is a folder, not a CSV file: {resolved}", raw)
        return None, raw, resolved
    except OSError as err:
        problems.add(f"{path}.file", f"cannot read {resolved}: {err.strerror or err}", raw)
        return None, raw, resolved
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        problems.add(f"{path}.file", f"{resolved} is not UTF-8 text (byte {err.start + 1})", raw)
        return None, raw, resolved
    return text, raw, resolved


def _series_text(series: Any, path: str, base_dir: "str | os.PathLike | None", problems: Problems,
                 allow_files: bool = True) -> "tuple[str | None, str, str | None, bool]":
    """The CSV text of a series from `csv` (text or a list of rows) or `file` (exactly one of them), the name
    used in its messages, the resolved file path (None for inline data) and whether it came from a list."""
    if series.csv is not None and series.file is not None:
        problems.add(path, "give either csv or file, not both")
        return None, f"{path}.csv", None, False
    if series.file is not None and not allow_files:
        problems.add(f"{path}.file", "reading files is not allowed here; give the data inline as csv")
        return None, f"{path}.file", None, False
    if series.file is not None:
        return (*_read_file(series.file, path, base_dir, problems), False)
    if series.csv is None:
        problems.add(f"{path}.csv", "is required: give csv (CSV text or a list of rows) or file (a CSV file)")
        return None, f"{path}.csv", None, False
    if _is_list(series.csv):
        return rows_to_csv(series.csv), f"{path}.csv", None, True
    if not isinstance(series.csv, str):
        problems.add(f"{path}.csv", "must be CSV text or a list of rows", series.csv)
        return None, f"{path}.csv", None, False
    return series.csv, f"{path}.csv", None, False


def _csv(text: str, source: str, problems: Problems, from_list: bool = False
         ) -> "tuple[list[list[Any]], bool]":
    """Rows of numbers (None for a bad cell) and whether every cell is a number; reports empty lines inside
    the data, empty cells and non-numeric cells with their line and column (both 1-based). Trailing empty
    lines of a text are dropped; every item of a list is a row (an empty item is an empty value)."""
    lines = text.lstrip("\ufeff").splitlines()
    while lines and not lines[-1].strip() and not from_list:
        lines.pop()
    rows, limit = [], ProblemLimit(source, problems)
    for n, line in enumerate(lines, start=1):
        where = f"{source} line {n}"
        if not line.strip() and not from_list:
            limit.add(where, "empty line inside the data")
            rows.append([None])
            continue
        row = []
        for column, cell in enumerate(line.split(","), start=1):
            text_cell, value = cell.strip(), None
            if not text_cell:
                limit.add(where, f"empty value in column {column}")
            else:
                try:
                    value = float(text_cell)
                except (ValueError, OverflowError):
                    limit.add(where, f"must be a number (got {fmt(text_cell)}) in column {column}")
                else:
                    if not math.isfinite(value):
                        limit.add(where, f"must be a finite number (got {fmt(text_cell)}) in column {column}")
                        value = None
            row.append(value)
        rows.append(row)
    limit.close()
    return rows, limit.count == 0


def _series_shape(group: str, rows: list, data: SeriesData, problems: Problems) -> bool:
    """Spec §12 / legacy §3.4–3.5 layouts: diffuser one value per row (first column); ambient first line the
    levels (>= 2, >= 0, depths increasing or heights decreasing, no repeats), then one value per level."""
    source = data.source
    if group == "diffuser":
        if not rows:
            problems.add(source, "needs at least one row (one value per line; the file or text is empty)")
            return False
        data.rows = [row[0] for row in rows]
        return True
    if len(rows) < 2:
        problems.add(source, "needs a line of levels and at least one line of values"
                             + (" (the file or text is empty)" if not rows else " (got only the levels)"))
        return False
    levels, ok = rows[0], True
    word = "depth" if data.z_is_depth else "height"
    if len(levels) < 2:
        problems.add(f"{source} line 1", "needs at least 2 depth levels", len(levels))
        ok = False
    if len(levels) > MAX_AMBIENT_LAYERS:
        problems.add(f"{source} line 1", f"at most {MAX_AMBIENT_LAYERS} depth levels are allowed",
                     _Text(f"{len(levels)} levels"))
        return False
    if all(level is not None for level in levels):
        for column, (a, b) in enumerate(zip(levels, levels[1:]), start=2):
            if b == a:
                problems.add(f"{source} line 1", f"{word} {fmt_num(b)} is repeated in columns {column - 1} "
                                                 f"and {column}; levels must be distinct")
                ok = False
            elif (b < a) if data.z_is_depth else (b > a):
                rule = "depths must increase" if data.z_is_depth else "heights must decrease"
                problems.add(f"{source} line 1",
                             f"{rule} (got {fmt_num(b)} after {fmt_num(a)}) in column {column}")
                ok = False
        if any(level < 0 for level in levels):
            problems.add(f"{source} line 1", "levels must be >= 0", _Text(", ".join(fmt_num(v) for v in levels)))
            ok = False
    limit = ProblemLimit(source, problems)
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(levels):
            limit.add(f"{source} line {n}", f"needs {len(levels)} values, one per level (got {len(row)})")
            ok = False
    limit.close()
    data.levels, data.rows = levels, rows[1:]
    return ok


def _case_times(part: Any, problems: Problems, max_cases: "int | None") -> tuple[dict, list[float]]:
    """The normalised time labels and the case times in seconds: start, start + increment, … <= end."""
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
            problems.add(f"timeseries.{name}", spec.bounds_text(seconds), value)
            seconds = None
        times[name] = seconds
    case_times: list[float] = []
    limit = MAX_CASES if max_cases is None else max_cases
    start, end, step = times.get("start_time"), times.get("end_time"), times.get("time_increment")
    if None not in (start, end, step):
        if end < start:
            start_unit = labels.get("start_units", labels["units"])
            problems.add("timeseries.end_time", f"must be >= start_time (got {fmt(labels['end_time'])}); "
                                                f"start_time is {fmt(labels['start_time'])} {start_unit}")
        else:
            ratio = (end - start) / step + 1e-9
            if not ratio < limit:
                count = f"{math.floor(ratio) + 1}" if ratio < 1e15 else f"{ratio:.6g}"
                problems.add("timeseries", f"too many cases; at most {limit}, the max_cases limit",
                             _Text(f"{count} cases"))
            else:
                case_times = [start + k * step for k in range(math.floor(ratio) + 1)]
    return labels, case_times


def timeseries(part: Any, ambient_z_unit: "u.Unit | None", ambient_z_is_depth: bool, problems: Problems,
               base_dir: "str | os.PathLike | None" = None, max_cases: "int | None" = None,
               allow_files: bool = True) -> tuple[Any, dict[str, SeriesData], dict[str, SeriesData], list[float]]:
    """Normalised Timeseries, parsed diffuser and ambient series, and the case times in seconds (spec §12).

    A series' data comes from `csv` (text or a list of rows) or `file` (read now; a relative path is relative
    to `base_dir`, else to the current directory). The normalised series keeps `file` as the resolved path,
    so `Case.to_dict()` keeps the reference and round-trips from any directory. `allow_files=False` refuses
    `file` (for cases from untrusted clients, e.g. a web request)."""
    if not isinstance(part, Timeseries):
        problems.add("timeseries", "must be a Timeseries, an object or null", part)
        return None, {}, {}, [0.0]
    labels, case_times = _case_times(part, problems, max_cases)

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
                keys = tuple(f.name for f in cls.__dataclass_fields__.values())
                for key in series:
                    if key not in keys:
                        problems.add(f"{path}.{key}", f"unknown key; allowed: {', '.join(keys)}")
                series = cls(**{k: v for k, v in series.items() if k in keys})
            if not isinstance(series, cls):
                problems.add(path, f"must be a {cls.__name__} or an object", series)
                continue
            built = _one_series(group, var, series, path, specs[var], case_times, ambient_z_unit,
                                ambient_z_is_depth, base_dir, problems, allow_files)
            normalised_out[var] = cls(**built[0])
            if built[1] is not None:
                parsed_out[var] = built[1]
    normalised = Timeseries(start_time=labels.get("start_time", part.start_time),
                            end_time=labels.get("end_time", part.end_time),
                            time_increment=labels.get("time_increment", part.time_increment),
                            units=labels["units"], start_units=labels.get("start_units"),
                            end_units=labels.get("end_units"), increment_units=labels.get("increment_units"),
                            diffuser=normalised_diffuser, ambient=normalised_ambient)
    if not part.diffuser and not part.ambient:
        case_times = [0.0]               # legacy §3.3: without any series there is one case, at t = 0
    return normalised, diffuser_series, ambient_series, case_times


def _one_series(group: str, var: str, series: Any, path: str, spec: FieldSpec, case_times: list[float],
                ambient_z_unit: "u.Unit | None", ambient_z_is_depth: bool, base_dir: Any,
                problems: Problems, allow_files: bool = True) -> "tuple[dict[str, Any], SeriesData | None]":
    """The normalised fields of one series and its parsed data (None after a reported problem)."""
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
    text, source, resolved, from_list = _series_text(series, path, base_dir, problems, allow_files)
    fields_out: dict[str, Any] = dict(csv=series.csv, increment_hours=increment,
                                      units=series_unit.label if series_unit else None, file=series.file)
    if text is not None and resolved is None:
        fields_out.update(csv=text, file=None)          # a list of rows is kept as CSV text
    elif text is not None:
        fields_out.update(file=resolved)                # the resolved path, so to_dict works from anywhere
    data = SeriesData(series_unit, increment if isinstance(increment, float) else 0.0, [], source=source,
                      file=resolved, text=text or "")
    if group == "ambient":
        data.depth_unit = (unit(series.depth_units, AMBIENT_FIELDS["z"], f"{path}.depth_units", problems)
                           if series.depth_units is not None else ambient_z_unit)
        data.z_is_depth = flag(series.z_is_depth, f"{path}.z_is_depth", problems, ambient_z_is_depth)
        fields_out.update(depth_units=data.depth_unit.label if data.depth_unit else None,
                          z_is_depth=data.z_is_depth)
    if text is None:
        return fields_out, None
    rows, cells_ok = _csv(text, source, problems, from_list)
    ok = _series_shape(group, rows, data, problems) and cells_ok
    ok = ok and isinstance(increment, float) and (group == "diffuser" or data.depth_unit is not None)
    return fields_out, data if ok else None
