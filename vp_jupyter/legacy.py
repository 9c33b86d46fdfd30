"""The legacy Visual Plumes wire format (legacy-http-api.md): the ONLY module that knows it.

`parse_run_request` turns a `run_analysis` request (the `projectData` JSON and the CSV file parts) into a
`Case`; `success_body`, `error_body`, `health_body` and `archive_bytes` turn a `Result` (or an error) into the
responses and the zip archive the unmodified front end expects. Pure functions: no Tornado, no Jupyter, no
file system. Field names and legacy keys come from the field tables of `vp_jupyter.inputs.fields`; this module
adds only what is specific to the wire (value spellings, presence rules, stage messages, output headers).

Project decisions of legacy-http-api.md §8 (they override the legacy behaviour):
* Q1 booleans: the eight flags and `z_is_depth` are true for JSON true or "true", false for false, "false",
  "" or null; anything else is an error naming the field.
* Q3 `farfieldDiffusivity`: "CONSTANT" constant, "POWER_4_3" or "" the 4/3 power law, anything else an error.
* Q4 success body: a JSON string holding the JSON of the result object; NaN and infinities are written as null.
* Q5 units: every string of §2.8 keeps its meaning, kt / N-deg / N-rad are aliases (`vp_jupyter.units`);
  unknown, empty or wrong-category strings are errors naming the field ("" stays valid for num_of_ports).
* Q7 `output_id` is the run id string given by the caller; archive members are named `output_<run id>.…`.
* Q8 archive: the legacy names and formats; case numbers padded to max(2, digits of the case count).
* Q10 ambient `e_sfc` / `e_btm`: constant, extrapolated, linear_to_zero (missing = constant); others an error.
* Q11 time-series increments may be fractional hours (> 0). Q12 a port_depth series works (the Case does it).
* Q13 `text_outputs` is `vp_jupyter.report.text_report` (Appendix A layout), built without `sys.stdout`.
* Q16 errors: the legacy stage message as a prefix, then the field (legacy path), the reason and the value;
  never empty. Q17 malformed requests raise `LegacyError` (the handler answers with the JSON error object).
Where no decision exists the legacy rule is kept: unknown `similarityProfile` means the default profile,
`eqOfState` other than "S_T" means p,S,T, file parts of unknown fields are ignored.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import time
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from . import units as u
from .engine.seawater import density
from .engine.types import MAX_REVERSALS
from .inputs import Case, CaseError
from .inputs.fields import (AMBIENT_FIELDS, AMBIENT_SERIES, DIFFUSER_FIELDS, DIFFUSER_SERIES, MODEL_FIELDS,
                            SERIES_FIELDS, TIMESERIES_FIELDS, FieldSpec)
from .inputs.parts import fmt

if TYPE_CHECKING:  # pragma: no cover
    from .engine.types import CaseOutput
    from .results import Result

__all__ = [
    "LegacyError", "parse_run_request", "success_body", "success_object", "error_body", "error_message",
    "health_body", "archive_bytes", "archive_members", "archive_filename", "content_disposition",
    "cors_headers", "preflight_headers", "RUN_ANALYSIS_PATH", "DOWNLOAD_ZIP_PATH", "DOWNLOAD_ZIP_ROUTE",
    "SUCCESS_CONTENT_TYPE", "ERROR_CONTENT_TYPE", "HEALTH_CONTENT_TYPE", "ZIP_CONTENT_TYPE",
    "CORS_ALLOW_HEADERS", "CORS_ALLOW_METHODS", "CORS_MAX_AGE", "STAGE_MESSAGES", "GRAPH_SERIES",
]

# ------------------------------------------------------------------------------------ endpoints (§1)

RUN_ANALYSIS_PATH = "run_analysis"                  # §1.1: no trailing slash
DOWNLOAD_ZIP_PATH = "download_zip_archive"
DOWNLOAD_ZIP_ROUTE = DOWNLOAD_ZIP_PATH + r"/([^/]+)"  # §1.1: the id is one path segment
SUCCESS_CONTENT_TYPE = "application/json"           # §5.1 (the body is a JSON string)
ERROR_CONTENT_TYPE = "application/json"             # §4.1
HEALTH_CONTENT_TYPE = "application/json"            # §1.1
ZIP_CONTENT_TYPE = "application/zip"                # §6.4
# §1.3: the preflight answer of the legacy back end (django-cors-headers defaults)
CORS_ALLOW_HEADERS = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"
CORS_ALLOW_METHODS = "DELETE, GET, OPTIONS, PATCH, POST, PUT"
CORS_MAX_AGE = "86400"
HEALTH_MESSAGE = "Success!"


def cors_headers(origin: str) -> dict[str, str]:
    """Headers of an answer to an allowed `origin` (§1.3, §12): the origin echoed, with credentials."""
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true", "Vary": "Origin"}


def preflight_headers(origin: str) -> dict[str, str]:
    """Headers of the answer to a CORS preflight from an allowed `origin` (§1.3)."""
    return {**cors_headers(origin), "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Allow-Methods": CORS_ALLOW_METHODS, "Access-Control-Max-Age": CORS_MAX_AGE}


_SAFE_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def _check_run_id(run_id: str) -> str:
    """Run ids become file names (§6.3); only a flat, URL-safe name is accepted here."""
    if not isinstance(run_id, str) or not _SAFE_RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id must match {_SAFE_RUN_ID.pattern} (got {run_id!r})")
    return run_id


def archive_filename(run_id: str) -> str:
    """The download's file name, `output_<id>.zip` (§6.4)."""
    return f"output_{_check_run_id(run_id)}.zip"


def content_disposition(run_id: str) -> str:
    """An attachment with the legacy file name (frontend-client.md §a recommends attachment over inline)."""
    return f'attachment; filename="{archive_filename(run_id)}"'


def health_body() -> str:
    """GET /app/ and GET /app/run_analysis (§1.1, Q15)."""
    return json.dumps({"message": HEALTH_MESSAGE})


# ------------------------------------------------------------------------------------- errors (§4)

# §4.1 stage messages (verbatim), by stage number; 0 is the project's for a malformed request (Q17)
STAGE_REQUEST, STAGE_MODEL, STAGE_DIFFUSER_FILES, STAGE_DIFFUSER_STORE, STAGE_DIFFUSER = 0, 1, 2, 3, 4
STAGE_DIFFUSER_SERIES, STAGE_AMBIENT_FILES, STAGE_AMBIENT, STAGE_AMBIENT_SERIES, STAGE_INIT = 5, 6, 7, 8, 9
STAGE_RUN = 11
STAGE_MESSAGES = {
    STAGE_REQUEST: "Invalid run_analysis request, please check the request parts.",
    STAGE_MODEL: "Error loading model parameter input, please check Model Selection settings.",
    STAGE_DIFFUSER_FILES: "Error processing diffuser time series files, please check timeseries file format(s).",
    STAGE_DIFFUSER_STORE: "Error loading diffuser store options, please check options.",
    STAGE_DIFFUSER: "Error loading diffuser parameter input, please check input and re-run analysis.",
    STAGE_DIFFUSER_SERIES: "Error loading diffuser time series data, please check time series file data.",
    STAGE_AMBIENT_FILES: "Error processing ambient time series file(s), please check ambient time series file "
                         "formatting.",
    STAGE_AMBIENT: "Error loading ambient condition input options and/or data, please check ambient condition "
                   "tabs.",
    STAGE_AMBIENT_SERIES: "Error loading ambient time series data, please check ambient time series file data.",
    STAGE_INIT: "Error initializing UM3 model, please contact site administrators.",
    STAGE_RUN: "",
}
_EMPTY_ERROR = "Visual Plumes run failed without an error message."   # Q16: never empty


class LegacyError(ValueError):
    """A request the legacy endpoint refuses. `str(err)` / `err.message` is the text for the legacy error
    body (§4.1 stage message + field, reason and value, Q16); `err.problems` lists the single problems."""

    def __init__(self, message: str, problems: "list[str] | None" = None):
        self.message = message.strip() or _EMPTY_ERROR
        self.problems = list(problems) if problems else [self.message]
        super().__init__(self.message)


def error_body(message: str) -> str:
    """The handled-error body of §4.1: a JSON *object* (not double-encoded), sent with HTTP 200."""
    text = message.strip() if isinstance(message, str) else str(message)
    return json.dumps({"success": False, "error": text or _EMPTY_ERROR})


def error_message(error: BaseException) -> str:
    """The legacy error text for an exception raised while running a parsed case (stages 10-11, Q16):
    `LegacyError` as it is, a `CaseError` (a case the model refuses) as its problems, anything else as its
    type and text. Never empty."""
    if isinstance(error, LegacyError):
        return error.message
    if isinstance(error, CaseError):
        return "; ".join(p for p in error.problems if p) or _EMPTY_ERROR
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# ------------------------------------------------------------------------------ request -> Case (§2, §3)

_NOTHING = object()          # a key that is not there


def _empty(raw: Any) -> bool:
    """§2.0: '' and null are "no value" (a string of blanks too: float() would refuse it)."""
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def _text_of(raw: Any) -> Any:
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


def _series_key(group: str, name: str) -> str:
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


class _Request:
    """Translates one decoded `projectData` object and its file parts into the case dict; collects the
    problems found on the way (presence, flags, enums, empty values) and remembers where every case value
    came from, so the Case's own problems can be reported with the legacy names."""

    def __init__(self, data: Mapping[str, Any], files: Mapping[str, Any]):
        self.data = data
        self.files = files
        self.problems: list[tuple[int, str]] = []
        self.reported: set[str] = set()
        self.origin: dict[str, _Origin] = {}
        self.ambient_series: set[str] = set()      # ambient variables with an uploaded file part

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
    def uploaded(self) -> tuple[dict[str, tuple[str, Any]], dict[str, tuple[str, Any]]]:
        """The real file parts by variable: {variable: (part name, content)} for the diffuser and ambient."""
        by_key = {"diffuser": {_series_key("diffuser", n): n for n in DIFFUSER_SERIES},
                  "ambient": {_series_key("ambient", n): n for n in AMBIENT_SERIES}}
        found: dict[str, dict[str, tuple[str, Any]]] = {"diffuser": {}, "ambient": {}}
        for part, content in self.files.items():
            if part == "projectData":
                continue
            tokens = str(part).split("-")
            if len(tokens) < 2:                   # §1.2: a part name without '-' is an error
                self.problem(STAGE_DIFFUSER_FILES, str(part),
                             f"file part {part!r}: the part name must be <field>-diffuser-file or "
                             f"<field>-ambient-file")
                continue
            field, kind = tokens[0], tokens[1]
            if kind in found and field in by_key[kind]:
                found[kind][by_key[kind][field]] = (str(part), content)
            # unknown fields and kinds are ignored, as by the legacy back end (§1.2)
        return found["diffuser"], found["ambient"]

    def csv_text(self, part: str, content: Any, stage: int) -> "str | None":
        try:
            text = _text_of(content)
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
        key = _series_key(group, name)
        return self.obj(self.get(block, key, f"{top}.{key}", stage), f"{top}.{key}", stage)

    def series_units(self, group: str, names: Mapping[str, Any]) -> dict[str, Any]:
        """The measurement_unit of every uploaded series (it replaces the table unit, §2.7)."""
        top = "diffuserTimeSeries" if group == "diffuser" else "ambientFiles"
        stage = STAGE_DIFFUSER_SERIES if group == "diffuser" else STAGE_AMBIENT_SERIES
        specs = DIFFUSER_FIELDS if group == "diffuser" else AMBIENT_FIELDS
        out = {}
        for name in names:
            meta = self.series_meta(group, name)
            path = f"{top}.{_series_key(group, name)}.measurement_unit"
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
            key = _series_key(group, name)
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
        d_files, a_files = self.uploaded()
        d_units = self.series_units("diffuser", d_files)
        a_units = self.series_units("ambient", a_files)
        self.ambient_series = set(a_files)
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
            message = message.replace(unfilled[0], f"no row gives {_series_key('ambient', unfilled[1])}", 1) \
                .replace("at least one layer or as a time series", "at least one row or as a time-series file")
        origin = self.origin.get(path)
        if origin is not None:
            return origin.stage, _render(origin, message)
        match = re.fullmatch(r"timeseries\.(diffuser|ambient)\.(\w+)\.csv(.*)", path)
        if match:                                 # a CSV part: name the part and its line
            group, name, rest = match.groups()
            stage = STAGE_DIFFUSER_SERIES if group == "diffuser" else STAGE_AMBIENT_SERIES
            return stage, f"{_series_key(group, name)}-{group}-file{rest}: {message}"
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


def _message(problems: list[tuple[int, str]]) -> tuple[str, list[str]]:
    """One error text: per stage (in processing order) the stage message, then its problems."""
    ordered = sorted(problems, key=lambda item: item[0])
    lines: list[str] = []
    current = None
    for stage, text in ordered:
        prefix = STAGE_MESSAGES.get(stage, "")
        if stage != current:
            lines.append(f"{prefix} {text}".strip())
            current = stage
        else:
            lines[-1] += f"; {text}"
    return "\n".join(lines), [text for _, text in ordered]


def _project_data(form: Mapping[str, Any], files: Mapping[str, Any]) -> dict[str, Any]:
    def fail(text: str) -> LegacyError:
        return LegacyError(f"{STAGE_MESSAGES[STAGE_REQUEST]} {text}", [text])

    if "projectData" in form:
        raw = form["projectData"]
    elif "projectData" in files:       # sent as a file part (e.g. curl -F projectData=@case.json)
        raw = files["projectData"]
    else:
        raise fail("projectData is missing: the request must have a form part named projectData holding the "
                   "project JSON")
    try:
        text = _text_of(raw)
    except UnicodeDecodeError as err:
        raise fail(f"projectData is not UTF-8 text (byte {err.start + 1})") from None
    if not isinstance(text, str):
        raise fail(f"projectData must be JSON text (got {type(text).__name__})")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise fail(f"projectData is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
            type(data), "a number")
        raise fail(f"projectData must be a JSON object (got {kind})")
    return data


def parse_run_request(form: Mapping[str, Any], files: Mapping[str, Any], *,
                      max_cases: "int | None" = None) -> Case:
    """The `Case` of a `run_analysis` request (legacy-http-api.md §1.2, §2, §3).

    `form`: the text parts by name (str, or UTF-8 bytes); only `projectData` is read, so the front end's
    `"null"` text parts are ignored. `files`: the real file parts by part name `<field>-<kind>-file`
    (bytes or str). `max_cases` limits the number of time-series cases (default: the Case's limit).
    Raises `LegacyError` (never anything else) whose message is the legacy error text (§4.1, Q16, Q17).
    """
    data = _project_data(form, files)
    request = _Request(data, {k: v for k, v in files.items() if k != "projectData"})
    case_dict = request.case_dict()
    if request.problems:
        raise LegacyError(*_message(request.problems))
    try:
        return Case.load(case_dict, max_cases=max_cases)
    except CaseError as err:
        translated = [item for item in map(request.translate, err.problems) if item is not None]
        raise LegacyError(*_message(translated or [(STAGE_RUN, p) for p in err.problems])) from None
    except Exception as err:   # noqa: BLE001 - Q17: a validation bug must still give the JSON error object
        text = f"Internal error while checking the input: {type(err).__name__}: {err}"
        raise LegacyError(f"{STAGE_MESSAGES[STAGE_INIT]} {text}", [text]) from err


# ------------------------------------------------------------------------------ Result -> response (§5)

# §5.2 "units" class names and §2.8 numeric codes ("in_units") of the project's unit labels
_UNIT_CLASS = {"length": "Length", "speed": "Speed", "angle": "Angle", "time": "Time", "flow": "FlowRate",
               "salinity": "Salinity", "temperature": "Temperature", "concentration": "Concentration",
               "decay_rate": "DecayRate", "diffusivity": "EddyDiffusivity", "density": "Density",
               "unitless": "Unitless", "isopleth": "Isopleth", "mass": "Mass"}
_UNIT_CODE: dict[tuple[str, str], float] = {
    ("length", "m"): 1, ("length", "cm"): 100, ("length", "ft"): 3.2808, ("length", "in"): 39.37,
    ("length", "ftm"): 0.5468,
    ("speed", "m/s"): 1, ("speed", "cm/s"): 100, ("speed", "ftm/s"): 1 / 0.514444, ("speed", "kts"): 1.94384,
    ("speed", "mph"): 2.2369363, ("speed", "ft/s"): 3.2808,
    ("angle", "deg"): 1, ("angle", "rad"): math.pi / 180, ("angle", "s-deg"): -1, ("angle", "s-rad"): -math.pi / 180,
    ("time", "s"): 1, ("time", "min"): 1 / 60, ("time", "hr"): 1 / 3600, ("time", "d"): 1 / 86400,
    ("flow", "MGD"): 22.824465, ("flow", "m3/s"): 1, ("flow", "MLD"): 86.4, ("flow", "ft3/s"): 35.314667,
    ("flow", "bbl/d"): 86400 / 0.15898284,
    ("salinity", "PSU"): 1, ("salinity", "mmhos/cm"): 2, ("salinity", "kg/m3"): 3, ("salinity", "sigmaT"): 4,
    ("salinity", "lbs/ft3"): 5,
    ("concentration", "ppm"): 1e6, ("concentration", "kg/kg"): 1, ("concentration", "ppb"): 1e9,
    ("concentration", "%"): 100, ("concentration", "col/dl"): -1,
    ("temperature", "°C"): 1, ("temperature", "°F"): 3, ("temperature", "°K"): 2,
    ("decay_rate", "s-1"): 1, ("decay_rate", "d-1"): 86400, ("decay_rate", "T90h"): -2.30258509 / 3600,
    ("decay_rate", "ly/hr"): -1, ("decay_rate", "hr-1"): 3600,
    ("diffusivity", "m0.67/s2"): 1, ("density", "sigmaT"): -1, ("unitless", ""): 1,
}
_SIGMA_T = u.parse_unit("sigmaT", "density")
_FEET = u.parse_unit("ft", "length")
_METRES = u.parse_unit("m", "length")
_HOURS = u.parse_unit("hr", "time")
_UNITLESS = u.si_unit("unitless")


def _unit_fields(unit: "u.Unit") -> dict[str, Any]:
    return {"units": _UNIT_CLASS.get(unit.kind, unit.kind), "in_units": _UNIT_CODE.get((unit.kind, unit.label), 1),
            "units_label": unit.label}


def _header(name: str, label: str, unit: "u.Unit", regime: "str | None" = None) -> dict[str, Any]:
    head = {"regime": regime} if regime is not None else {}
    return {**head, "name": name, "label": label, **_unit_fields(unit)}


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _convert(value: float, unit: "u.Unit", **context: Any) -> "float | None":
    """SI -> `unit`, None for a missing or non-finite value or one that cannot be converted."""
    if value is None or not math.isfinite(value):
        return None
    try:
        result = u.from_si(value, unit, **context)
    except (ValueError, ArithmeticError):
        return None
    return result if math.isfinite(result) else None


def _signed_angle(value: float, unit: "u.Unit") -> "float | None":
    """A vertical angle (signed, -90..90 deg) in deg or rad without the [0, 360) wrap of `from_si`."""
    if value is None or not math.isfinite(value):
        return None
    degrees = (value + 180.0) % 360.0 - 180.0
    return math.radians(degrees) if unit.label in ("rad", "s-rad") else degrees


# §5.3 diffuser columns: (name, label); port_spacing only with several ports
_DIFFUSER_COLUMNS = (("diameter", "Port diameter"), ("vertical_angle", "Vertical angle"),
                     ("horizontal_angle", "Horizontal angle"), ("offset_x", "X-offset"), ("offset_y", "Y-offset"),
                     ("num_ports", "Num. ports"), ("port_spacing", "Port spacing"),
                     ("acute_mixing_zone", "Mixing zone distance"), ("isopleth", "Isopleth"),
                     ("depth", "Port depth"), ("effluent_flow", "Total flow"), ("salinity", "Salinity"),
                     ("temperature", "Temperature"), ("concentration", "Pollutant"))
# §5.3 ambient columns: (name, label, Brooks only); density last
_AMBIENT_COLUMNS = (("current_speed", "Current speed", False), ("current_dir", "Current direction", False),
                    ("salinity", "Salinity", False), ("temperature", "Temperature", False),
                    ("bg_conc", "Background concentration", False), ("decay_rate", "Decay rate", False),
                    ("ff_velocity", "Far-field speed", True), ("ff_dir", "Far-field direction", True),
                    ("ff_diff_coeff", "Dispersion", True))


def _diffuser_block(result: "Result") -> dict[str, Any]:
    case, engine_cases = result.case, result.engine_cases
    units = case.diffuser_units
    several = engine_cases[0].diffuser.num_ports > 1
    columns = [(n, label) for n, label in _DIFFUSER_COLUMNS if n != "port_spacing" or several]
    headers = [_header(n, label, _UNITLESS if n == "num_ports" else units[n]) for n, label in columns]
    outputs = []
    for engine_case in engine_cases:
        d = engine_case.diffuser
        row: list[Any] = []
        for name, _ in columns:
            if name == "num_ports":
                row.append(int(d.num_ports))
            elif name == "vertical_angle":
                row.append(_signed_angle(d.vertical_angle, units[name]))
            else:
                row.append(_convert(getattr(d, name), units[name], temperature_c=d.temperature))
        outputs.append(row)
    return {"headers": headers, "outputs": outputs}


def _ambient_block(result: "Result") -> dict[str, Any]:
    case = result.case
    units = case.ambient_units
    brooks = result.engine_cases[0].settings.brooks_far_field
    columns = [(n, label) for n, label, far in _AMBIENT_COLUMNS if brooks or not far]
    headers = [_header("depth", "Depth", units["z"])]
    headers += [_header(n, label, units[n]) for n, label in columns]
    headers.append(_header("density", "Density", _SIGMA_T))
    outputs = []
    for index, engine_case in enumerate(result.engine_cases):
        levels = []
        for layer in case.layer_table(index):
            row = [_finite(layer["depth"])] + [_finite(layer[n]) for n, _ in columns]
            try:       # density as the ambient table of the text report computes it (sigmaT)
                temperature = u.to_si(layer["temperature"], units["temperature"])
                salinity = u.to_si(layer["salinity"], units["salinity"], temperature_c=temperature)
                depth_m = u.to_si(layer["depth"], units["z"])
                sigma_t = density(salinity, temperature, depth_m, engine_case.settings.at_equilibrium) - 1000.0
            except (ValueError, ArithmeticError, TypeError):
                sigma_t = None
            levels.append(row + [_finite(sigma_t)])
        outputs.append(levels)
    return {"headers": headers, "outputs": outputs}


def _plume_spec(case: Case) -> list[tuple[str, str, str, str, "u.Unit", Callable[[Mapping[str, Sequence[float]]], list]]]:
    """§5.3 / Q6: the 14 plume columns (label, regime, name, engine column, unit, engine columns -> the
    column of shown values)."""
    d, a = case.diffuser_units, case.ambient_units

    def to(unit: "u.Unit", column: str, temperature: str = "temperature") -> Callable[[Mapping], list]:
        if unit.rule == "factor" and unit.kind != "angle":     # the bulk of the values: one multiply each
            factor = unit.factor
            return lambda columns: [x if math.isfinite(x) else None for x in (v * factor for v in columns[column])]
        return lambda columns: [_convert(v, unit, temperature_c=t)
                                for v, t in zip(columns[column], columns[temperature])]

    def each(shown: Callable[[float], Any], column: str) -> Callable[[Mapping], list]:
        return lambda columns: [shown(v) for v in columns[column]]

    return [
        ("Depth", "element", "depth", "depth", d["depth"], to(d["depth"], "depth")),
        ("Width", "element", "diameter", "diameter", d["diameter"], to(d["diameter"], "diameter")),
        ("V-angle", "element", "vertical_angle", "vertical_angle", d["vertical_angle"],
         each(lambda v: _signed_angle(v, d["vertical_angle"]), "vertical_angle")),
        ("Salinity", "element", "salinity", "salinity", a["salinity"], to(a["salinity"], "salinity")),
        ("Temp.", "element", "temperature", "temperature", a["temperature"], to(a["temperature"], "temperature")),
        ("Pollutant", "element", "concentration", "concentration", d["concentration"],
         to(d["concentration"], "concentration")),
        ("Density", "element", "density", "density", _SIGMA_T, to(_SIGMA_T, "density")),
        ("Amb-den", "ambient", "density", "ambient_density", _SIGMA_T, to(_SIGMA_T, "ambient_density")),
        ("Amb-cur", "ambient", "current_speed", "ambient_current_speed", a["current_speed"],
         to(a["current_speed"], "ambient_current_speed", "ambient_temperature")),
        ("Velocity", "element", "speed", "velocity", u.si_unit("speed"), each(_finite, "velocity")),
        ("Dilution", "element", "dilution", "dilution", _UNITLESS, each(_finite, "dilution")),
        ("X-pos", "element", "x_displacement", "x", _FEET, to(_FEET, "x")),
        ("Y-pos", "element", "y_displacement", "y", _FEET, to(_FEET, "y")),
        ("Iso diameter", "model", "iso_diameter", "iso_diameter", d["diameter"], to(d["diameter"], "iso_diameter")),
    ]


def _rows(output: "CaseOutput") -> list[dict[str, float]]:
    return [{name: values[i] for name, values in output.columns.items()} for i in range(len(output.steps))]


def _memos(output: "CaseOutput") -> list[str]:
    return list(output.memos) + ([output.error] if output.error else [])


def _plume_block(result: "Result") -> dict[str, Any]:
    spec = _plume_spec(result.case)
    headers = [_header(name, label, unit, regime) for label, regime, name, _, unit, _ in spec]
    outputs = []
    for output in result.outputs:
        shown_columns = [shown(output.columns) for *_, shown in spec]
        outputs.append([{"step": int(step), "values": list(values), "status": status}
                        for step, status, values in zip(output.steps, output.statuses, zip(*shown_columns))])
    return {"headers": headers, "outputs": outputs, "memos": [_memos(o) for o in result.outputs],
            "postmemos": [list(o.postmemos) for o in result.outputs]}


_DIFFUSIVITY_LABEL = {"CONSTANT": "Eddy diffusivity", "POWER_4_3": "4/3 eddy diffusivity"}


def _farfield_spec(result: "Result") -> list[tuple[str, str, str, str, "u.Unit"]]:
    """§5.3 far-field columns: (label, regime, name, engine column, unit)."""
    d, a = result.case.diffuser_units, result.case.ambient_units
    settings = result.engine_cases[0].settings
    return [
        ("Time", "model", "run_time", "time", _HOURS),
        ("Current speed", "ambient", "ff_velocity", "ff_velocity", a["ff_velocity"]),
        ("Current direction", "ambient", "ff_dir", "ff_dir", a["ff_dir"]),
        ("Width", "model", "adj_width", "width", _METRES),
        ("Distance", "element", "total_surf_dsp", "distance", _METRES),
        ("Background concentration", "ambient", "bg_conc", "background", a["bg_conc"]),   # the library's unit
        ("Concentration", "element", "concentration", "concentration", d["concentration"]),
        ("Dilution", "element", "dilution", "dilution", _UNITLESS),
        ("Decay rate", "ambient", "kt", "decay_rate", u.si_unit("decay_rate")),
        ("Dispersion", "ambient", "ff_diff_coeff", "ff_diff_coeff", u.si_unit("diffusivity")),
        (_DIFFUSIVITY_LABEL.get(settings.farfield_diffusivity, "Eddy diffusivity"), "model", "diffusivity",
         "diffusivity_argument", _UNITLESS),
    ]


def _farfield_ran(result: "Result") -> bool:
    return any(o.was_run for o in result.farfield_outputs)


def _farfield_block(result: "Result") -> dict[str, Any]:
    if not _farfield_ran(result):
        return {"was_run": False, "headers": [], "outputs": [], "memos": []}
    spec = _farfield_spec(result)
    outputs = []
    for farfield in result.farfield_outputs:
        rows = []
        for i, step in enumerate(farfield.steps):
            values = [_convert(farfield.columns[column][i], unit) for _, _, _, column, unit in spec]
            rows.append({"step": int(step), "values": values})
        outputs.append(rows)
    return {"was_run": True, "headers": [_header(n, label, unit, regime) for label, regime, n, _, unit in spec],
            "outputs": outputs, "memos": [list(o.memos) for o in result.farfield_outputs]}


def _timeseries_memos(result: "Result") -> list[list[str]]:
    """Per case `["Timeseries indices: i, j, …"]` (§3.3), or [] without time series."""
    case = result.case
    if not case.series_info():
        return [[] for _ in result.outputs]
    return [[f"Timeseries indices: {', '.join(str(r) for r in case.series_rows(i))}"]
            for i in range(result.case_count)]


def _params(result: "Result") -> list[str]:
    from .report import parameter_block

    return parameter_block(result.engine_cases[0].settings, result.case.to_dict())


# -- §5.4 graphs ------------------------------------------------------------------------------------

GRAPH_SERIES = ("trajectory", "boundary1", "boundary2", "ambdensity", "density", "path", "out1", "out2", "pathv",
                "dilution", "cldilution", "enddilution", "mzdilution", "concentration", "mzconcentration",
                "custom1", "custom2")
GRAPH_CASE_LIMIT = 5      # model.md §12: the per-step graphs cover the first five cases
_BREAK = [None, None]     # §5.4: a line break between cases


def _axis(unit: "u.Unit", label: str) -> dict[str, Any]:
    return {**_unit_fields(unit), "axis_label": label}


def _point(x: "float | None", y: "float | None") -> list[Any]:
    return [_finite(x), _finite(y)]


def _graphs(result: "Result", ambient: Mapping[str, Any]) -> dict[str, Any]:
    """The 17 graph series of §5.4 (built by the project; the legacy library's graph code is not specified).

    Per-step series (first GRAPH_CASE_LIMIT cases, [null, null] between cases), all in the case's units:
    trajectory = (horizontal distance from the origin, depth) of the centre line; boundary1 / boundary2 =
    the upper / lower plume boundary in that vertical plane (centre ± half the isopleth diameter, normal to
    the path); ambdensity = the ambient layers (sigmaT, depth); density = plume density (sigmaT, depth);
    path = centre line (x, y); out1 / out2 = left / right plume edge in plan (± half the isopleth diameter
    normal to the horizontal direction); pathv = the ambient current at the port, drawn from the source over
    the plume's horizontal reach; dilution / cldilution = average / centre-line dilution against the
    horizontal distance from the source. Per-case series (every case, x = case number): enddilution /
    concentration = dilution / concentration of the last near-field row; mzdilution / mzconcentration = the
    same at the row that reached the mixing zone ("MZ dis"), null when it was not reached. custom1/2: empty.
    """
    case = result.case
    x_unit, z_unit = case.diffuser_units["offset_x"], case.ambient_units["z"]
    conc_unit = case.diffuser_units["concentration"]
    series: dict[str, list] = {name: [] for name in GRAPH_SERIES}

    def x(value: float) -> "float | None":
        return _convert(value, x_unit)

    def z(value: float) -> "float | None":
        return _convert(value, z_unit)

    shown = list(zip(result.outputs, result.engine_cases))[:GRAPH_CASE_LIMIT]
    for index, (output, engine_case) in enumerate(shown):
        if index:
            for name in GRAPH_SERIES[:11]:
                series[name].append(list(_BREAK))
        source_x, source_y = engine_case.diffuser.offset_x, engine_case.diffuser.offset_y
        reach = 0.0
        for row in _rows(output):
            radius = row["iso_diameter"] / 2.0
            distance = math.hypot(row["x"], row["y"])
            theta = math.radians(row["vertical_angle"])
            phi = math.radians(row["horizontal_angle"])
            series["trajectory"].append(_point(x(distance), z(row["depth"])))
            series["boundary1"].append(_point(x(distance - radius * math.sin(theta)),
                                              z(row["depth"] - radius * math.cos(theta))))
            series["boundary2"].append(_point(x(distance + radius * math.sin(theta)),
                                              z(row["depth"] + radius * math.cos(theta))))
            series["density"].append(_point(row["density"] - 1000.0, z(row["depth"])))
            series["path"].append(_point(x(row["x"]), x(row["y"])))
            series["out1"].append(_point(x(row["x"] - radius * math.sin(phi)), x(row["y"] + radius * math.cos(phi))))
            series["out2"].append(_point(x(row["x"] + radius * math.sin(phi)), x(row["y"] - radius * math.cos(phi))))
            # legacy-http-api.md: the dilution graphs are against the distance from the source
            series["dilution"].append(_point(x(row["source_distance"]), row["dilution"]))
            series["cldilution"].append(_point(x(row["source_distance"]), row["cl_dilution"]))
            if math.isfinite(row["source_distance"]):
                reach = max(reach, row["source_distance"])
        series["ambdensity"] += [_point(level[-1], level[0]) for level in ambient["outputs"][index]]
        direction = output.columns["ambient_current_dir"][0] if output.steps else 0.0
        reach = reach or engine_case.diffuser.diameter
        if math.isfinite(direction):
            heading = math.radians(direction)
            series["pathv"] += [_point(x(source_x), x(source_y)),
                                _point(x(source_x + reach * math.cos(heading)),
                                       x(source_y + reach * math.sin(heading)))]
    for number, output in enumerate(result.outputs, start=1):
        rows = _rows(output)
        last = rows[-1] if rows else None
        at_mz = next((row for row, status in zip(rows, output.statuses) if "MZ dis" in status), None)
        series["enddilution"].append([number, _finite(last["dilution"]) if last else None])
        series["concentration"].append([number, _convert(last["concentration"], conc_unit) if last else None])
        series["mzdilution"].append([number, _finite(at_mz["dilution"]) if at_mz else None])
        series["mzconcentration"].append([number, _convert(at_mz["concentration"], conc_unit) if at_mz else None])

    distance_origin, depth = _axis(x_unit, "Distance from Origin"), _axis(z_unit, "Depth")
    plan_x, plan_y = _axis(x_unit, "West-East"), _axis(x_unit, "South-North")
    from_source, dilution = _axis(x_unit, "Distance from Source"), _axis(_UNITLESS, "Dilution")
    sequence, concentration = _axis(_UNITLESS, "Case sequence"), _axis(conc_unit, "Concentration")
    density_axis = _axis(_SIGMA_T, "Density")
    axes = {
        "trajectory": (distance_origin, depth), "boundary1": (distance_origin, depth),
        "boundary2": (distance_origin, depth), "ambdensity": (density_axis, depth), "density": (density_axis, depth),
        "path": (plan_x, plan_y), "out1": (plan_x, plan_y), "out2": (plan_x, plan_y), "pathv": (plan_x, plan_y),
        "dilution": (from_source, dilution), "cldilution": (from_source, dilution),
        "enddilution": (sequence, dilution), "mzdilution": (sequence, dilution),
        "concentration": (sequence, concentration), "mzconcentration": (sequence, concentration),
        "custom1": (None, None), "custom2": (None, None),
    }
    return {name: {"coords": series[name], "units": {"x": axes[name][0], "y": axes[name][1]}}
            for name in GRAPH_SERIES}


# -- §5.1 / §5.2 the body ------------------------------------------------------------------------------

def success_object(result: "Result", run_id: str) -> dict[str, Any]:
    """The decoded result object of §5.2 (keys in the legacy order), JSON-safe: NaN / infinities -> None."""
    from .report import text_report
    from .results import json_safe

    case = result.case
    casetime: list[Any] = [0] if case.timeseries is None else [float(t) for t in result.case_times]   # §3.3
    farfield = _farfield_block(result)
    ambient = _ambient_block(result)
    return json_safe({
        "success": True,
        "error": None,
        "errortraceback": None,
        "cases": result.case_count,
        "casetime": casetime,
        "modelparams": {"memos": _params(result)},
        "timeseries": {"memos": _timeseries_memos(result)},
        "diffuser": _diffuser_block(result),
        "ambient": ambient,
        "plume": _plume_block(result),
        "farfield": farfield,
        "tpb": {"was_run": bool(result.tidal.was_run), "memos": list(result.tidal.memos)},
        "graphs": _graphs(result, ambient),
        "text_outputs": text_report(result),
        "output_id": run_id,                      # Q7: the run's string id
    })


def success_body(result: "Result", run_id: str) -> str:
    """The success body of §5.1: a JSON string literal holding the JSON text of `success_object` (Q4).

    The inner text uses Python's defaults (", " / ": " separators, ASCII escapes) like the legacy back end;
    non-finite numbers are null (Q4 recommendation), so the front end's NaN repair finds nothing to do."""
    inner = json.dumps(success_object(result, run_id), allow_nan=False)
    return json.dumps(inner)


# ------------------------------------------------------------------------------------ archive (§6.3)

RULE = "-" * 51


def _case_width(count: int) -> int:
    """Q8: the case-number width is the number of digits of the case count, at least 2."""
    return max(2, len(str(count)))


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _csv(header: list[str], rows: list[list[Any]], finite: bool = False) -> bytes:
    """Python csv defaults (comma, minimal quoting, CRLF), UTF-8 without BOM; floats as str(float), a
    non-finite one as an empty cell. `finite`: the rows hold no non-finite floats (None already)."""
    stream = io.StringIO(newline="")
    writer = csv.writer(stream)
    writer.writerow(header)
    writer.writerows(rows if finite else ([_cell(v) for v in row] for row in rows))
    return stream.getvalue().encode("utf-8")


def _column_title(header: Mapping[str, Any]) -> str:
    return f"{header['label']} ({header['units_label']})" if header["units_label"] else header["label"]


def _archive_files(result: "Result", run_id: str) -> list[tuple[str, bytes]]:
    stem = f"output_{_check_run_id(run_id)}"
    width = _case_width(result.case_count)
    params = _params(result)
    diffuser, ambient, plume = _diffuser_block(result), _ambient_block(result), _plume_block(result)
    farfield = _farfield_block(result)
    series_memos = _timeseries_memos(result)
    files = [
        (f"{stem}.params.txt", ("\n".join(params) + "\n" if params else "").encode("utf-8")),
        (f"{stem}.diffuser.csv", _csv(["Case"] + [_column_title(h) for h in diffuser["headers"]],
                                      [[n] + row for n, row in enumerate(diffuser["outputs"], start=1)])),
    ]
    for index in range(result.case_count):
        number = index + 1
        tag = f"{stem}.{number:0{width}d}"
        files.append((f"{tag}.ambient.csv", _csv([_column_title(h) for h in ambient["headers"]],
                                                 ambient["outputs"][index])))
        hours = result.case_times[index] / 3600.0
        lines = [RULE, f"Case {number} (+{hours:.2f} hrs):", RULE, *series_memos[index]]
        if plume["memos"][index]:
            lines += ["", *plume["memos"][index]]
        if plume["postmemos"][index]:
            lines += ["", *plume["postmemos"][index]]
        if farfield["was_run"] and result.farfield_outputs[index].was_run:
            lines += ["", *farfield["memos"][index]]
        files.append((f"{tag}.memos.txt", ("\n".join(lines) + "\n").encode("utf-8")))
        # the plume values went through _convert / _finite / _signed_angle: non-finite ones are None
        files.append((f"{tag}.plume.csv", _csv(["Step"] + [_column_title(h) for h in plume["headers"]],
                                               [[r["step"], *r["values"], r["status"]]
                                                for r in plume["outputs"][index]], finite=True)))
        if farfield["was_run"]:
            files.append((f"{tag}.farfield.csv", _csv([_column_title(h) for h in farfield["headers"]],
                                                      [r["values"] for r in farfield["outputs"][index]])))
    if result.tidal.was_run:
        files.append((f"{stem}.tpb.txt", "\n".join(result.tidal.memos).encode("utf-8")))
    return files


def archive_members(result: "Result", run_id: str) -> list[str]:
    """The member names of the archive, in archive order (§6.3)."""
    return [name for name, _ in _archive_files(result, run_id)]


def archive_bytes(result: "Result", run_id: str) -> bytes:
    """The zip of §6.3: flat member names `output_<run id>.…`, ZIP_DEFLATED, CSVs with CRLF (Q8 padding)."""
    buffer = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in _archive_files(result, run_id):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
