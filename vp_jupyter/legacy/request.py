"""The `run_analysis` request (legacy-http-api.md §1.2): its multipart parts — the `projectData` text and
the time-series file parts `<field>-<kind>-file` — decoded and handed to `translate.case_from_project_data`."""
from __future__ import annotations

import json
import time
from typing import Any, Mapping

from ..inputs import Case
from ..inputs.fields import AMBIENT_SERIES, DIFFUSER_SERIES
from .errors import STAGE_DIFFUSER_FILES, request_error
from .translate import case_from_project_data, series_key, text_of


def project_data_of(form: Mapping[str, Any], files: Mapping[str, Any]) -> dict[str, Any]:
    """The decoded `projectData` object of a request (a form part, or a file part); LegacyError (Q17)."""
    if "projectData" in form:
        raw = form["projectData"]
    elif "projectData" in files:       # sent as a file part (e.g. curl -F projectData=@case.json)
        raw = files["projectData"]
    else:
        raise request_error("projectData is missing: the request must have a form part named projectData "
                            "holding the project JSON")
    try:
        text = text_of(raw)
    except UnicodeDecodeError as err:
        raise request_error(f"projectData is not UTF-8 text (byte {err.start + 1})") from None
    if not isinstance(text, str):
        raise request_error(f"projectData must be JSON text (got {type(text).__name__})")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise request_error(f"projectData is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        kind = {list: "an array", str: "a string", type(None): "null", bool: "a boolean"}.get(
            type(data), "a number")
        raise request_error(f"projectData must be a JSON object (got {kind})")
    return data


def file_parts(files: Mapping[str, Any]) -> "tuple[dict[str, dict[str, tuple[str, Any]]], list[tuple[int, str]]]":
    """The real file parts by series: ({group: {variable: (part label, content)}}, problems). Unknown fields
    and kinds are ignored, as by the legacy back end; a part name without '-' is an error (§1.2)."""
    by_key = {"diffuser": {series_key("diffuser", n): n for n in DIFFUSER_SERIES},
              "ambient": {series_key("ambient", n): n for n in AMBIENT_SERIES}}
    found: dict[str, dict[str, tuple[str, Any]]] = {"diffuser": {}, "ambient": {}}
    problems: list[tuple[int, str]] = []
    for part, content in files.items():
        if part == "projectData":
            continue
        tokens = str(part).split("-")
        if len(tokens) < 2:
            problems.append((STAGE_DIFFUSER_FILES, f"file part {part!r}: the part name must be "
                                                   f"<field>-diffuser-file or <field>-ambient-file"))
            continue
        field, kind = tokens[0], tokens[1]
        if kind in found and field in by_key[kind]:
            found[kind][by_key[kind][field]] = (f"{field}-{kind}-file", content)
    return found, problems


UI_NAME_KEYS = ("projectName", "name")          # project names a front end may send (the stock one sends none)
MAX_UI_NAME = 200


def ui_run_name(data: Mapping[str, Any], received: float) -> str:
    """The name of a web-UI run: the project name the request carries (`projectName`, else `name`), else
    "web UI run <UTC time received>", so users can find the run again (`vp.runs(text=...)`)."""
    for key in UI_NAME_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())[:MAX_UI_NAME]
    return "web UI run " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(received))


def parse_run_request(form: Mapping[str, Any], files: Mapping[str, Any], *,
                      max_cases: "int | None" = None, received: float | None = None) -> Case:
    """The `Case` of a `run_analysis` request (legacy-http-api.md §1.2, §2, §3).

    `form`: the text parts by name (str, or UTF-8 bytes); only `projectData` is read, so the front end's
    `"null"` text parts are ignored. `files`: the real file parts by part name `<field>-<kind>-file`
    (bytes or str). `max_cases` limits the number of time-series cases (default: the Case's limit). The
    case is named by `ui_run_name` (`received`: when the request came, epoch s; default now).
    Raises `LegacyError` (never anything else) whose message is the legacy error text (§4.1, Q16, Q17).
    """
    data = project_data_of(form, files)
    series, problems = file_parts(files)
    name = ui_run_name(data, time.time() if received is None else received)
    return case_from_project_data(data, series, max_cases=max_cases, problems=problems, name=name)
