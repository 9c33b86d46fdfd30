"""`projectData` -> Case (legacy-http-api.md §2, §3): the decoded `projectData` object of a `run_analysis`
request, with the time-series CSVs that came with it, becomes a case dict in our own format; the problems
found on the way (presence, flags, enums, empty values) and the Case's own problems are reported with the
legacy names, paths and values (Q16). No multipart here (`request.py`) and no saved project files
(`project.py`): both hand their decoded object and series to `case_from_project_data`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..engine.types import MAX_REVERSALS
from ..inputs import Case, CaseError
from ..inputs.fields import (AMBIENT_FIELDS, AMBIENT_SERIES, DIFFUSER_FIELDS, DIFFUSER_SERIES, MODEL_FIELDS,
                             SERIES_FIELDS, TIMESERIES_FIELDS, FieldSpec)
from ..inputs.parts import fmt
from .errors import (STAGE_AMBIENT, STAGE_AMBIENT_SERIES, STAGE_DIFFUSER, STAGE_DIFFUSER_FILES,
                     STAGE_DIFFUSER_SERIES, STAGE_DIFFUSER_STORE, STAGE_INIT, STAGE_MESSAGES, STAGE_MODEL, STAGE_RUN,
                     LegacyError, join_problems)

# a series given with the request: {group ("diffuser" / "ambient"): {variable: (label, CSV text or bytes)}};
# the label names it in messages (the file part's name, or the file's path)
SeriesFiles = Mapping[str, Mapping[str, "tuple[str, Any]"]]

_NOTHING = object()          # a key that is not there


def _empty(raw: Any) -> bool:
    """§2.0: '' and null are "no value" (a string of blanks too: float() would refuse it)."""
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def text_of(raw: Any) -> Any:
    """A form value or file part as text (bytes are UTF-8; a list of values gives its first one)."""
    if isinstance(raw, (list, tuple)):
        raw = raw[0] if raw else ""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return bytes(raw).decode("utf-8")
    return raw


# §2.1 / §2.2: model fields whose request value is not the value itself
_CONFIG_VALUE = {"brooks_far_field": "brooks", "tidal_pollution_buildup": "tidal"}     # modelConfigType
_ENUM_VALUES: dict[str, dict[str, str]] = {
    "bacteria_model": {"mancini": "COLIFORM_MANCINI", "coliform": "COLIFORM_301H",
                       "enterococcus": "ENTEROCCOUS_301H"},
    "max_reversals": {name: name for name in MAX_REVERSALS},
    "similarity_profile": {"default": "DEFAULT", "power": "POWER_3_2", "gaussian": "GAUSSIAN"},
    "farfield_diffusivity": {"CONSTANT": "CONSTANT", "POWER_4_3": "POWER_4_3", "": "POWER_4_3"},     # Q3
}
_ENUM_FALLBACK = {"similarity_profile": "DEFAULT"}       # §2.2: anything else is the default profile
# §2.1 / §2.4: fields read only when a model option is on (their values do not matter otherwise)
_ONLY_WITH = {"ff_increment": "brooks_far_field", "dist_to_shore": "use_shore_vector",
              "dir_to_shore": "use_shore_vector"}
_EMPTY_IS_ERROR = {"write_step_freq", "max_dilution", "ff_increment", "dist_to_shore", "dir_to_shore"}
_EMPTY_STRING_VALUE = {"tpb_channel_width": 100.0}       # §2.4 / Q14: channel_width '' becomes 100
# §2.7 / Q2: the time-series part name of a diffuser variable differs from its table key only here
_SERIES_KEY_EXCEPTIONS = {"concentration": "effluent_concentration"}
# Q10: the UI's extrapolation choices
_EXTRAPOLATION = {"constant": "CONSTANT", "extrapolated": "EXTRAPOLATED", "linear_to_zero": "LINEAR_TO_ZERO"}
_TIME_UNIT_KEYS = {"start_time": "start_units", "end_time": "end_units", "time_increment": "increment_units"}
# engine wording in validation messages -> the request's wording
_PHRASES = (("when tidal_pollution_buildup is on", "when modelConfigType is 'tidal'"),
            ("when use_shore_vector is on", "when useShoreVector is true"),
            ("(needed with brooks_far_field)", "(needed when modelConfigType is 'brooks')"),
            ("when num_ports > 1", "when num_of_ports > 1"))
_AMBIENT_BASE = "ambientProfileData[0]"


def series_key(group: str, name: str) -> str:
    """The legacy key of a time-series variable: `<key>-<group>-file`, diffuserTimeSeries / ambientFiles."""
    if group == "diffuser":
        return _SERIES_KEY_EXCEPTIONS.get(name) or DIFFUSER_FIELDS[name].legacy_key or name
    return AMBIENT_FIELDS[name].legacy_key or name


@dataclass(frozen=True)
class _Origin:
    """Where a value of the case dict came from: legacy path, stage, a label for messages, the raw value."""
    legacy: str
    stage: int
    label: str
    raw: Any = _NOTHING


class ProjectDataReader:
    """Reads one decoded `projectData` object and its series into the case dict; collects the problems
    found on the way and remembers where every case value came from, so the Case's own problems can be
    reported with the legacy names (`translate`)."""

    def __init__(self, data: Mapping[str, Any], series: SeriesFiles, problems: "list[tuple[int, str]] | None" = None):
        self.data = data
        self.series = {group: dict(series.get(group) or {}) for group in ("diffuser", "ambient")}
        self.problems: list[tuple[int, str]] = list(problems or ())
        self.reported: set[str] = set()
        self.origin: dict[str, _Origin] = {}
        self.ambient_series: set[str] = set(self.series["ambient"])      # ambient variables given as a series
        self.series_labels = {(group, name): label for group, items in self.series.items()
                              for name, (label, _) in items.items()}

    # -- bookkeeping -----------------------------------------------------------------------------
    def problem(self, stage: int, path: str, text: str) -> None:
        if path not in self.reported:
            self.reported.add(path)
            self.problems.append((stage, text))

    def record(self, case_path: str, legacy: str, stage: int, label: str, raw: Any = _NOTHING) -> None:
        self.origin[case_path] = _Origin(legacy, stage, label, raw)

    def get(self, container: Any, key: str, path: str, stage: int) -> Any:
        """container[key], or _NOTHING after reporting a missing key (§2.9: every read key must be present).
        A container that is not an object was reported already (or is reported now)."""
        if container is None or container is _NOTHING:
            return _NOTHING
        if key not in container:
            self.problem(stage, path, f"{path} is missing")
            return _NOTHING
        return container[key]

    def obj(self, value: Any, path: str, stage: int) -> "Mapping | None":
        if value is _NOTHING:
            return None
        if not isinstance(value, Mapping):
            self.problem(stage, path, f"{path} must be an object (got {fmt(value)})")
            return None
        return value

    def first(self, value: Any, path: str, stage: int) -> "Mapping | None":
        """Element [0] of an array (§2.5 / §2.6 and Q9: only the first row or profile is used)."""
        if value is _NOTHING:
            return None
        if not isinstance(value, list) or not value:
            self.problem(stage, path, f"{path} must be a non-empty array (got {fmt(value)})")
            return None
        return self.obj(value[0], f"{path}[0]", stage)

    def flag(self, raw: Any, path: str, stage: int, label: str) -> "bool | None":
        """Q1: true / "true" -> True; false / "false" / "" / null -> False; anything else is an error."""
        if raw is True or raw == "true":
            return True
        if raw is False or raw is None or raw in ("false", ""):
            return False
        self.problem(stage, path, f"{label} must be true or false ({path} = {fmt(raw)})")
        return None

    def unit(self, raw: Any, spec: FieldSpec, path: str, stage: int, case_path: str) -> Any:
        """A unit string for the case (checked there against the field's kind); "" is an error (Q5)."""
        label = "Isopleth type" if spec.kind == "isopleth" else f"{spec.label} unit"
        self.record(case_path, path, stage, label, raw)
        if _empty(raw):
            self.problem(stage, path, f"{label} is empty; expected one of {', '.join(spec.allowed_units)} "
                                      f"({path} = {fmt(raw)})")
            return _NOTHING
        return raw

    # -- §2.1 model parameters ---------------------------------------------------------------------
    def model(self) -> dict[str, Any]:
        stage, out, raws = STAGE_MODEL, {}, {}
        for name, spec in MODEL_FIELDS.items():
            if spec.legacy_key is None:          # `model`, `elevation_proj_plane`: never sent (§2.1)
                continue
            raw = self.lookup(spec.legacy_key, stage)
            if raw is _NOTHING:
                continue
            raws[name] = raw
            self.record(f"model.{name}", spec.legacy_key, stage, spec.label, raw)
            if name in _CONFIG_VALUE:
                out[name] = raw == _CONFIG_VALUE[name]
            elif name == "at_equilibrium":
                out[name] = raw == "S_T"            # §2.2: anything else selects p,S,T
            elif spec.type == "bool":
                value = self.flag(raw, spec.legacy_key, stage, spec.label)
                if value is not None:
                    out[name] = value
            elif spec.type == "enum":
                value = self.enum(name, spec, raw)
                if value is not None:
                    out[name] = value
        for name, raw in raws.items():            # numbers, once the options they depend on are known
            spec = MODEL_FIELDS[name]
            if spec.type not in ("float", "int"):
                continue
            needs = "tidal_pollution_buildup" if name.startswith("tpb_") else _ONLY_WITH.get(name)
            if needs is not None and not out.get(needs):
                continue
            if not _empty(raw):
                out[name] = raw                   # the Case parses and range-checks it
            elif isinstance(raw, str) and name in _EMPTY_STRING_VALUE:
                out[name] = _EMPTY_STRING_VALUE[name]
            elif name in _EMPTY_IS_ERROR or (name.startswith("tpb_") and raw is None):
                self.problem(stage, spec.legacy_key, f"{spec.label} is empty ({spec.legacy_key} = {fmt(raw)})")
            # other empty values keep the model default (§2.10)
        return out

    def lookup(self, dotted: str, stage: int) -> Any:
        container: Any = self.data
        path = ""
        for key in dotted.split("."):
            if path and self.obj(container, path, stage) is None:
                return _NOTHING
            path = f"{path}.{key}" if path else key
            container = self.get(container, key, path, stage)
            if container is _NOTHING:
                return _NOTHING
        return container

    def enum(self, name: str, spec: FieldSpec, raw: Any) -> "str | None":
        choices = _ENUM_VALUES[name]
        if isinstance(raw, str) and raw in choices:
            return choices[raw]
        if name in _ENUM_FALLBACK:
            return _ENUM_FALLBACK[name]
        allowed = ", ".join(repr(k) for k in choices)
        self.problem(STAGE_MODEL, spec.legacy_key, f"{spec.label} must be one of {allowed} "
                                                   f"({spec.legacy_key} = {fmt(raw)})")
        return None

    # -- §2.5 diffuser -----------------------------------------------------------------------------
    def diffuser(self, series_units: Mapping[str, Any]) -> dict[str, Any]:
        self.store = self.obj(self.lookup("diffuserStore", STAGE_DIFFUSER_STORE), "diffuserStore",
                              STAGE_DIFFUSER_STORE)
        self.row = self.first(self.lookup("diffuserData", STAGE_DIFFUSER), "diffuserData", STAGE_DIFFUSER)
        values: dict[str, Any] = {}
        units: dict[str, Any] = {}
        for name, spec in DIFFUSER_FIELDS.items():
            key = spec.legacy_key or name
            entry = self.obj(self.get(self.store, key, f"diffuserStore.{key}", STAGE_DIFFUSER_STORE),
                             f"diffuserStore.{key}", STAGE_DIFFUSER_STORE)
            unit_path = f"diffuserStore.{key}.value"
            unit_raw = self.get(entry, "value", unit_path, STAGE_DIFFUSER_STORE)
            # num_of_ports is unitless whatever its store value (§2.5, Q5); a series' measurement_unit
            # replaces the store unit (§2.7) and is passed with the series
            if name != "num_ports" and name not in series_units and unit_raw is not _NOTHING:
                unit = self.unit(unit_raw, spec, unit_path, STAGE_DIFFUSER_STORE, f"diffuser.units.{name}")
                if unit is not _NOTHING:
                    units[name] = unit
            path = f"diffuserData[0].{key}"
            raw = self.get(self.row, key, path, STAGE_DIFFUSER)
            if raw is not _NOTHING:
                self.record(f"diffuser.{name}", path, STAGE_DIFFUSER, spec.label, raw)
                if not _empty(raw):
                    values[name] = raw
        return {"values": values, "units": units}

    # -- §2.7 / §3 time series -----------------------------------------------------------------------
    def csv_text(self, part: str, content: Any, stage: int) -> "str | None":
        try:
            text = text_of(content)
        except UnicodeDecodeError as err:
            self.problem(stage, part, f"{part}: the file is not UTF-8 text (byte {err.start + 1})")
            return None
        if not isinstance(text, str):
            self.problem(stage, part, f"{part}: the file part must hold CSV text")
            return None
        return text

    def series_meta(self, group: str, name: str) -> "Mapping | None":
        top = "diffuserTimeSeries" if group == "diffuser" else "ambientFiles"
        stage = STAGE_DIFFUSER_SERIES if group == "diffuser" else STAGE_AMBIENT_SERIES
        block = self.obj(self.lookup(top, stage), top, stage)
        key = series_key(group, name)
        return self.obj(self.get(block, key, f"{top}.{key}", stage), f"{top}.{key}", stage)

    def series_units(self, group: str, names: Mapping[str, Any]) -> dict[str, Any]:
        """The measurement_unit of every uploaded series (it replaces the table unit, §2.7)."""
        top = "diffuserTimeSeries" if group == "diffuser" else "ambientFiles"
        stage = STAGE_DIFFUSER_SERIES if group == "diffuser" else STAGE_AMBIENT_SERIES
        specs = DIFFUSER_FIELDS if group == "diffuser" else AMBIENT_FIELDS
        out = {}
        for name in names:
            meta = self.series_meta(group, name)
            path = f"{top}.{series_key(group, name)}.measurement_unit"
            raw = self.get(meta, "measurement_unit", path, stage)
            if raw is not _NOTHING:
                out[name] = self.unit(raw, specs[name], path, stage, f"timeseries.{group}.{name}.units")
        return out

    def timeseries(self, d_files: Mapping[str, tuple[str, Any]], a_files: Mapping[str, tuple[str, Any]],
                   d_units: Mapping[str, Any], a_units: Mapping[str, Any]) -> "dict[str, Any] | None":
        if not d_files and not a_files:
            return None                           # §3.3: one case at t = 0
        block: dict[str, Any] = {}
        stage = STAGE_DIFFUSER_FILES
        for name, spec in TIMESERIES_FIELDS.items():   # §3.1 step 1: read only when files are sent
            key = spec.legacy_key or name
            path = f"diffuserData[0].{key}"
            raw = self.get(self.row, key, path, stage)
            if raw is not _NOTHING:
                self.record(f"timeseries.{name}", path, stage, spec.label, raw)
                if _empty(raw):
                    self.problem(stage, path, f"{spec.label} is empty ({path} = {fmt(raw)})")
                else:
                    block[name] = raw
            entry = self.obj(self.get(self.store, key, f"diffuserStore.{key}", stage), f"diffuserStore.{key}",
                             stage)
            unit_path = f"diffuserStore.{key}.value"
            unit_raw = self.get(entry, "value", unit_path, stage)
            if unit_raw is not _NOTHING:
                unit = self.unit(unit_raw, spec, unit_path, stage, f"timeseries.{_TIME_UNIT_KEYS[name]}")
                if unit is not _NOTHING:
                    block[_TIME_UNIT_KEYS[name]] = unit
        self.record("timeseries", "diffuserData[0].start_time, end_time, time_increment", stage, "Time series")
        block["diffuser"] = self.series_group("diffuser", DIFFUSER_SERIES, d_files, d_units)
        block["ambient"] = self.series_group("ambient", AMBIENT_SERIES, a_files, a_units)
        return block

    def series_group(self, group: str, order: tuple[str, ...], files: Mapping[str, tuple[str, Any]],
                     units: Mapping[str, Any]) -> dict[str, Any]:
        top = "diffuserTimeSeries" if group == "diffuser" else "ambientFiles"
        stage = STAGE_DIFFUSER_SERIES if group == "diffuser" else STAGE_AMBIENT_SERIES
        out = {}
        for name in order:                         # §3.3 memo order: the field-table order
            if name not in files:
                continue
            part, content = files[name]
            key = series_key(group, name)
            meta = self.series_meta(group, name)
            entry: dict[str, Any] = {}
            if units.get(name, _NOTHING) is not _NOTHING:
                entry["units"] = units[name]
            increment = SERIES_FIELDS["increment_hours"]
            legacy_key = increment.legacy_key or "increment"
            path = f"{top}.{key}.{legacy_key}"
            raw = self.get(meta, legacy_key, path, stage)
            if raw is not _NOTHING:
                self.record(f"timeseries.{group}.{name}.increment_hours", path, stage, increment.label, raw)
                entry["increment_hours"] = raw   # Q11: fractional hours allowed; the Case checks > 0
            if group == "ambient":
                legacy_key = SERIES_FIELDS["z_is_depth"].legacy_key or "depth_or_height"
                path = f"{top}.{key}.{legacy_key}"
                raw = self.get(meta, legacy_key, path, stage)
                if raw is not _NOTHING:
                    self.record(f"timeseries.ambient.{name}.z_is_depth", path, stage, "Depth or height", raw)
                    entry["z_is_depth"] = raw == "depth"     # §2.7: "depth" means depths, anything else heights
                path = f"{top}.{key}.depth_or_height_units"
                raw = self.get(meta, "depth_or_height_units", path, stage)
                if raw is not _NOTHING:
                    unit = self.unit(raw, AMBIENT_FIELDS["z"], path, stage, f"timeseries.ambient.{name}.depth_units")
                    if unit is not _NOTHING:
                        entry["depth_units"] = unit
            text = self.csv_text(part, content, stage)
            if text is not None:
                entry["csv"] = text
            out[name] = entry
        return out

    # -- §2.6 ambient ------------------------------------------------------------------------------
    def ambient(self, series: Mapping[str, Any]) -> dict[str, Any]:
        stage, base = STAGE_AMBIENT, _AMBIENT_BASE
        profile = self.first(self.lookup("ambientProfileData", stage), "ambientProfileData", stage)
        store = self.obj(self.get(profile, "store", f"{base}.store", stage), f"{base}.store", stage)
        rows = self.get(profile, "data", f"{base}.data", stage)
        self.record("ambient.layers", f"{base}.data", stage, "Ambient profile")
        self.record("ambient", base, stage, "Ambient profile")
        out: dict[str, Any] = {"units": {}, "extrapolation": {}, "layers": []}
        for name, spec in AMBIENT_FIELDS.items():
            key = spec.legacy_key or name
            path = f"{base}.store.{key}"
            entry = self.obj(self.get(store, key, path, stage), path, stage)
            if name == "z":
                raw = self.get(entry, "z_is_depth", f"{path}.z_is_depth", stage)
                if raw is not _NOTHING:
                    self.record("ambient.z_is_depth", f"{path}.z_is_depth", stage, "Depth or height", raw)
                    z_is_depth = self.flag(raw, f"{path}.z_is_depth", stage, "z_is_depth")
                    if z_is_depth is not None:
                        out["z_is_depth"] = z_is_depth
            raw = self.get(entry, "mu", f"{path}.mu", stage)
            if raw is not _NOTHING and name not in series:     # a series' measurement_unit replaces mu
                unit = self.unit(raw, spec, f"{path}.mu", stage, f"ambient.units.{name}")
                if unit is not _NOTHING:
                    out["units"][name] = unit
            if name != "z" and entry is not None:            # Q10; depth_or_height is not extrapolated
                modes = {}
                for end, legacy_end in (("surface", "e_sfc"), ("bottom", "e_btm")):
                    mode = entry.get(legacy_end)
                    if mode is None:
                        continue                              # missing means constant (Q10)
                    mode_path = f"{path}.{legacy_end}"
                    self.record(f"ambient.extrapolation.{name}.{end}", mode_path, stage,
                                f"{spec.label} {end} extrapolation", mode)
                    if isinstance(mode, str) and mode.strip().lower() in _EXTRAPOLATION:
                        modes[end] = _EXTRAPOLATION[mode.strip().lower()]
                    else:
                        self.problem(stage, mode_path,
                                     f"{spec.label} {end} extrapolation must be one of "
                                     f"{', '.join(repr(m) for m in _EXTRAPOLATION)} ({mode_path} = {fmt(mode)})")
                if modes:
                    out["extrapolation"][name] = modes
        if rows is not _NOTHING and not isinstance(rows, list):
            self.problem(stage, f"{base}.data", f"{base}.data must be an array of rows (got {fmt(rows)})")
        for i, row in enumerate(rows if isinstance(rows, list) else []):
            row = self.obj(row, f"{base}.data[{i}]", stage)
            layer: dict[str, Any] = {}
            for name, spec in AMBIENT_FIELDS.items():
                key = spec.legacy_key or name
                path = f"{base}.data[{i}].{key}"
                raw = self.get(row, key, path, stage)
                if raw is _NOTHING:
                    continue
                self.record(f"ambient.layers[{i}].{name}", path, stage, spec.label, raw)
                if name not in series and not _empty(raw):   # §2.6: a series replaces the column
                    layer[name] = raw
            out["layers"].append(layer)
        return out

    # -- the whole request ------------------------------------------------------------------------
    def case_dict(self) -> dict[str, Any]:
        model = self.model()
        d_files, a_files = self.series["diffuser"], self.series["ambient"]
        d_units = self.series_units("diffuser", d_files)
        a_units = self.series_units("ambient", a_files)
        diffuser = self.diffuser(d_units)
        timeseries = self.timeseries(d_files, a_files, d_units, a_units)
        ambient = self.ambient(a_files)
        return {"name": "run_analysis request", "model": model, "diffuser": diffuser, "ambient": ambient,
                "timeseries": timeseries}

    # -- Case problems -> legacy messages ------------------------------------------------------------
    def translate(self, problem: str) -> "tuple[int, str] | None":
        """(stage, text) of one Case problem `path: message`, with the legacy path, label and value; None
        for a consequence of a problem reported already (a column left empty because its series is bad)."""
        path, sep, message = problem.partition(": ")
        if not sep:
            return STAGE_RUN, problem
        for old, new in _PHRASES:
            message = message.replace(old, new)
        unfilled = re.match(r"no layer gives (\w+)", message)
        if unfilled and unfilled[1] in AMBIENT_FIELDS:
            if unfilled[1] in self.ambient_series:
                return None                       # its uploaded series has a problem of its own
            message = message.replace(unfilled[0], f"no row gives {series_key('ambient', unfilled[1])}", 1) \
                .replace("at least one layer or as a time series", "at least one row or as a time-series file")
        origin = self.origin.get(path)
        if origin is not None:
            return origin.stage, _render(origin, message)
        match = re.fullmatch(r"timeseries\.(diffuser|ambient)\.(\w+)\.csv(.*)", path)
        if match:                                 # a CSV: name the file part (or file) and its line
            group, name, rest = match.groups()
            stage = STAGE_DIFFUSER_SERIES if group == "diffuser" else STAGE_AMBIENT_SERIES
            label = self.series_labels.get((group, name)) or f"{series_key(group, name)}-{group}-file"
            return stage, f"{label}{rest}: {message}"
        if path.startswith("ambient.layers"):
            return STAGE_AMBIENT, f"{path.replace('ambient.layers', _AMBIENT_BASE + '.data', 1)}: {message}"
        return STAGE_RUN, f"{path}: {message}"


_GOT = re.compile(r" \(got .*\)$")


def _render(origin: _Origin, message: str) -> str:
    """Q16: `<label> <reason> (<legacy path> = <value as sent>)`."""
    if origin.raw is not _NOTHING:
        message = _GOT.sub("", message)
    joiner = " " if message.startswith(("must ", "is ", "needs ", "cannot ")) else ": "
    where = origin.legacy if origin.raw is _NOTHING else f"{origin.legacy} = {fmt(origin.raw)}"
    return f"{origin.label}{joiner}{message} ({where})"


def case_from_project_data(data: Mapping[str, Any], series: SeriesFiles, *, max_cases: "int | None" = None,
                           problems: "list[tuple[int, str]] | None" = None, name: str = "run_analysis request",
                           source: "Mapping[str, Any] | None" = None) -> Case:
    """The `Case` of a decoded `projectData` object and its series (`SeriesFiles`). `problems`: (stage,
    text) pairs found before (e.g. bad file part names), reported with the others; `name` and `source`: the
    case's. Raises `LegacyError` (never anything else) whose message is the legacy error text (§4.1, Q16,
    Q17)."""
    reader = ProjectDataReader(data, series, problems)
    case_dict = {**reader.case_dict(), "name": name, **({"source": dict(source)} if source else {})}
    if reader.problems:
        raise LegacyError(*join_problems(reader.problems))
    try:
        return Case.load(case_dict, max_cases=max_cases)
    except CaseError as err:
        translated = [item for item in map(reader.translate, err.problems) if item is not None]
        raise LegacyError(*join_problems(translated or [(STAGE_RUN, p) for p in err.problems])) from None
    except Exception as err:   # noqa: BLE001 - Q17: a validation bug must still give the JSON error object
        text = f"Internal error while checking the input: {type(err).__name__}: {err}"
        raise LegacyError(f"{STAGE_MESSAGES[STAGE_INIT]} {text}", [text]) from err
