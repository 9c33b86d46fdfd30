"""The typed parts of a case (model settings, diffuser, ambient profile, time series, output options),
`CaseError`, and the translation between the case JSON layout and these parts.

The part classes accept raw values (numbers, numeric strings, None); `Case` validates and normalises them.
`ModelSettings`, `Diffuser` and `AmbientLayer` are generated from the field tables in `fields.py`.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping

from .fields import (AMBIENT_FIELDS, AMBIENT_SERIES, AMBIENT_VARIABLES, DIFFUSER_FIELDS, DIFFUSER_SERIES,
                     MODEL_FIELDS, OUTPUT_FIELDS)


class CaseError(ValueError):
    """Invalid case input. `problems` lists every problem found, each `field.path: message (got VALUE)`."""

    HEAD = "invalid case:"          # how the message starts

    def __init__(self, problems: "list[str] | str"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        count = len(self.problems)
        head = f"{self.HEAD} 1 problem" if count == 1 else f"{self.HEAD} {count} problems"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


def fmt(value: Any) -> str:
    """A user value as shown in messages: numbers as given, strings quoted, JSON spelling for bool/null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Replace:
    def replace(self, **changes: Any):
        """A copy with some fields changed (parts are immutable)."""
        return dataclasses.replace(self, **changes)


def _table_class(name: str, specs: Mapping, defaults: bool, doc: str, extra: list | None = None,
                 first_required: str | None = None) -> type:
    fields_ = []
    if first_required:
        fields_.append((first_required, Any))
    for spec_name, spec in specs.items():
        if spec_name != first_required:
            fields_.append((spec_name, Any, field(default=spec.default if defaults else None)))
    cls = dataclasses.make_dataclass(name, fields_ + (extra or []), bases=(_Replace,), frozen=True,
                                     namespace={"__doc__": doc})
    cls.__module__ = "vp_jupyter.inputs"
    return cls


ModelSettings = _table_class(
    "ModelSettings", MODEL_FIELDS, True,
    doc="Model parameters (spec §1.1); every field has its default. Enums by member name.")
Diffuser = _table_class(
    "Diffuser", DIFFUSER_FIELDS, False,
    extra=[("units", dict, field(default_factory=dict))],
    doc="Diffuser values (spec §1.2) in the units of `units` (field name -> unit string; missing = SI). "
        "`units['isopleth']` is the isopleth type: concentration, salinity, temperature or speed.")
AmbientLayer = _table_class(
    "AmbientLayer", AMBIENT_FIELDS, False, first_required="z",
    doc="One ambient layer: z (depth, or height above the bottom) and the variables given there "
        "(None = filled from the other layers, spec §5.2).")
OutputOptions = _table_class(
    "OutputOptions", OUTPUT_FIELDS, True, doc="Output options: extra SI columns, graphs.")


@dataclass(frozen=True)
class AmbientProfile(_Replace):
    """The ambient water column: layers from the surface down, units per variable (missing = SI),
    `z_is_depth` (false: z is the height above the bottom), extrapolation per variable
    ({"salinity": {"surface": "EXTRAPOLATED", "bottom": "CONSTANT"}}, default CONSTANT)."""
    layers: Any = ()
    units: dict = field(default_factory=dict)
    z_is_depth: Any = True
    extrapolation: dict = field(default_factory=dict)


@dataclass(frozen=True)
class DiffuserSeries(_Replace):
    """A diffuser time series, `increment_hours` per row, values in `units`. The data is either `csv`
    (CSV text with one value per line, first column used; or a list of numbers or of rows) or `file` (a path
    to a CSV file; a relative path is relative to the case file's folder, else to the current directory)."""
    csv: Any = None
    increment_hours: Any = None
    units: Any = None
    file: Any = None


@dataclass(frozen=True)
class AmbientSeries(_Replace):
    """An ambient time series: `csv` (text, or a list of rows) or `file` (a CSV file), first line the levels,
    then one line of values per row. `depth_units` (default: the ambient z units), `z_is_depth` (default:
    the ambient z_is_depth)."""
    csv: Any = None
    increment_hours: Any = None
    units: Any = None
    depth_units: Any = None
    z_is_depth: Any = None
    file: Any = None


@dataclass(frozen=True)
class Timeseries(_Replace):
    """Case times start, start + increment, … <= end (spec §12) in `units` (or the per-time units)."""
    end_time: Any
    time_increment: Any
    start_time: Any = 0.0
    units: Any = "s"
    start_units: Any = None
    end_units: Any = None
    increment_units: Any = None
    diffuser: dict = field(default_factory=dict)
    ambient: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------ JSON layout -> parts

CASE_KEYS = ("name", "description", "source", "model", "diffuser", "ambient", "timeseries", "output")


class Problems:
    """Collects problems; `add(path, message, got)` formats `path: message (got VALUE)`."""
    _NOTHING = object()

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str, got: Any = _NOTHING) -> None:
        text = f"{path}: {message}" if got is Problems._NOTHING else f"{path}: {message} (got {fmt(got)})"
        if text not in self.items:
            self.items.append(text)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise CaseError(self.items)


def _mapping(value: Any, path: str, problems: Problems, allowed: "tuple[str, ...] | None") -> dict:
    """`value` as a dict with string keys; unknown keys are reported (typos must not pass silently)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.add(path, "must be an object", value)
        return {}
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            problems.add(path, "keys must be strings", key)
        elif allowed is not None and key not in allowed:
            problems.add(f"{path}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
        else:
            out[key] = item
    return out


def _text(value: Any, path: str, problems: Problems) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.add(path, "must be a string", value)
        return ""
    return value


def model_from_dict(data: Any, problems: Problems, path: str = "model") -> Any:
    return ModelSettings(**_mapping(data, path, problems, tuple(MODEL_FIELDS)))


def diffuser_from_dict(data: Any, problems: Problems, path: str = "diffuser") -> Any:
    data = _mapping(data, path, problems, ("values", "units"))
    values = _mapping(data.get("values"), path, problems, tuple(DIFFUSER_FIELDS))
    units = _mapping(data.get("units"), f"{path}.units", problems, tuple(DIFFUSER_FIELDS))
    return Diffuser(**values, units=units)


def layer_from_dict(data: Any, problems: Problems, path: str) -> Any:
    data = _mapping(data, path, problems, tuple(AMBIENT_FIELDS))
    return AmbientLayer(**{"z": None, **data})


def ambient_from_dict(data: Any, problems: Problems, path: str = "ambient") -> AmbientProfile:
    data = _mapping(data, path, problems, ("units", "z_is_depth", "extrapolation", "layers"))
    layers_raw = data.get("layers")
    layers: list = []
    if layers_raw is None:
        problems.add(f"{path}.layers", "is required (a list of at least 2 layers)")
    elif not isinstance(layers_raw, (list, tuple)):
        problems.add(f"{path}.layers", "must be a list of layers", layers_raw)
    else:
        layers = [layer_from_dict(item, problems, f"{path}.layers[{i}]") for i, item in enumerate(layers_raw)]
    units = _mapping(data.get("units"), f"{path}.units", problems, tuple(AMBIENT_FIELDS))
    extrapolation = {}
    for var, modes in _mapping(data.get("extrapolation"), f"{path}.extrapolation", problems,
                               AMBIENT_VARIABLES).items():
        extrapolation[var] = _mapping(modes, f"{path}.extrapolation.{var}", problems, ("surface", "bottom"))
    return AmbientProfile(layers=layers, units=units, z_is_depth=data.get("z_is_depth", True),
                          extrapolation=extrapolation)


def timeseries_from_dict(data: Any, problems: Problems, path: str = "timeseries") -> "Timeseries | None":
    if data is None:
        return None
    keys = ("start_time", "end_time", "time_increment", "units", "start_units", "end_units",
            "increment_units", "diffuser", "ambient")
    data = _mapping(data, path, problems, keys)
    diffuser = {}
    for var, item in _mapping(data.pop("diffuser", None), f"{path}.diffuser", problems, DIFFUSER_SERIES).items():
        item = _mapping(item, f"{path}.diffuser.{var}", problems, ("csv", "file", "increment_hours", "units"))
        diffuser[var] = DiffuserSeries(**item)
    ambient = {}
    for var, item in _mapping(data.pop("ambient", None), f"{path}.ambient", problems, AMBIENT_SERIES).items():
        item = _mapping(item, f"{path}.ambient.{var}", problems,
                        ("csv", "file", "increment_hours", "units", "depth_units", "z_is_depth"))
        ambient[var] = AmbientSeries(**item)
    return Timeseries(**{"end_time": None, "time_increment": None, **data}, diffuser=diffuser, ambient=ambient)


def output_from_dict(data: Any, problems: Problems, path: str = "output") -> Any:
    return OutputOptions(**_mapping(data, path, problems, tuple(OUTPUT_FIELDS)))


def parts_from_dict(data: Any, problems: Problems) -> dict[str, Any]:
    """The keyword arguments of `Case(...)` from a case dict (structure only; values are checked by Case)."""
    data = _mapping(data, "case", problems, CASE_KEYS)
    if "diffuser" not in data:
        problems.add("diffuser", "is required")
    if "ambient" not in data:
        problems.add("ambient", "is required")
    source = data.get("source")
    if source is not None and not isinstance(source, Mapping):
        problems.add("source", "must be an object", source)
        source = None
    return dict(
        name=_text(data.get("name"), "name", problems),
        description=_text(data.get("description"), "description", problems),
        source=dict(source) if source else None,
        model=model_from_dict(data.get("model"), problems),
        diffuser=diffuser_from_dict(data.get("diffuser"), problems),
        ambient=ambient_from_dict(data.get("ambient"), problems),
        timeseries=timeseries_from_dict(data.get("timeseries"), problems),
        output=output_from_dict(data.get("output"), problems),
    )


# ------------------------------------------------------------------------------ parts -> JSON layout

def parts_to_dict(case: Any) -> dict[str, Any]:
    """The case JSON of a validated (normalised) Case."""
    diffuser = case.diffuser
    out: dict[str, Any] = {"name": case.name, "description": case.description}
    if case.source:
        out["source"] = dict(case.source)
    out["model"] = {n: getattr(case.model, n) for n in MODEL_FIELDS}
    out["diffuser"] = {
        "values": {n: getattr(diffuser, n) for n in DIFFUSER_FIELDS if getattr(diffuser, n) is not None},
        "units": dict(diffuser.units),
    }
    ambient = case.ambient
    out["ambient"] = {
        "units": dict(ambient.units),
        "z_is_depth": ambient.z_is_depth,
        "extrapolation": {v: dict(m) for v, m in ambient.extrapolation.items()},
        "layers": [{n: getattr(layer, n) for n in AMBIENT_FIELDS if getattr(layer, n) is not None}
                   for layer in ambient.layers],
    }
    ts = case.timeseries
    if ts is not None:
        block: dict[str, Any] = {k: getattr(ts, k) for k in ("start_time", "end_time", "time_increment", "units")}
        for key in ("start_units", "end_units", "increment_units"):
            if getattr(ts, key) is not None:
                block[key] = getattr(ts, key)
        # a series read from a file keeps its `file` reference (the resolved path), never the data
        block["diffuser"] = {v: {k: getattr(s, k) for k in (_source_key(s), "increment_hours", "units")}
                             for v, s in ts.diffuser.items()}
        block["ambient"] = {v: {k: getattr(s, k) for k in (_source_key(s), "increment_hours", "units",
                                                          "depth_units", "z_is_depth")}
                            for v, s in ts.ambient.items()}
        out["timeseries"] = block
    out["output"] = {n: getattr(case.output, n) for n in OUTPUT_FIELDS}
    return out


def _source_key(series: Any) -> str:
    return "file" if series.file is not None else "csv"
