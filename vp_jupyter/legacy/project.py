"""Saved web-UI projects (frontend-client.md "Saved project files"): the JSON file the web UI's "Save Project
Config" writes, read as a case.

The file holds the UI's state (`diffuserTable`, `ambientStore`, the model options under their `projectData`
names), not the request. `project_data` is the pure function the spec describes: the `projectData` object
the UI sends after loading the file (the diffuser row and the ambient tab with id 0, which the UI selects
after a load; the four options a saved project does not hold at their UI defaults). That object goes
through the same translation as a `run_analysis` request (`translate.case_from_project_data`), so the same
values give the same case as the UI run.

The CSV contents of time series are never saved in a project. A project that takes values from
time-series files (the UI disables a diffuser column whose values come from a file; a hand-made project
may carry `diffuserTimeSeries` / `ambientFiles` entries with a file) needs them given: `files=` maps a
series name (`effluent_flow`, `current_speed`, … as the UI names them, or `diffuser.<field>` /
`ambient.<field>` as our case format does) to a CSV path. Each given series takes the project's own
series settings when it has them, else the unit of its column in the project, 1 hour per row and the
ambient profile's depth (or height) convention and units.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from ..inputs import AMBIENT_FIELDS, DIFFUSER_FIELDS, Case, CaseError
from ..inputs.fields import AMBIENT_SERIES, DIFFUSER_SERIES
from .errors import LegacyError
from .translate import case_from_project_data, series_key

# the options the UI sends from its state but "Save Project Config" does not write: their UI defaults
# (frontend-client.md §c); a project that has them keeps its own values
UNSAVED_OPTIONS = {"eqOfState": "S_T", "similarityProfile": "default", "estimateFarfieldBackground": False,
                   "outputAllFarfieldTimeIncrements": False}
# projectData keys copied from the project as they are (the model options share their names)
COPIED_OPTIONS = ("modelConfigType", "maxDilutionReported", "tidalPollutantBuildup", "bacterialModelValue",
                  "writeStepFreq", "stopOnBottomHit", "maxReverals", "dontStopOnSurfaceHit", "allowInducedCurrent",
                  "reportEffectiveDillution", "currentVectorAveraging", "diffPortContCoeff", "lightAbsorpCoeff",
                  "um3AspCoeff", "farfieldDiffusivity", "farfieldCoeff", "useShoreVector", "distToShore",
                  "dirToShore")
SELECTED_ID = 0                 # the row and tab the UI runs after loading a project
NO_FILE = "No file selected"    # the UI's file name of a series without a file
SERIES_BLOCKS = {"diffuser": "diffuserTimeSeries", "ambient": "ambientFiles"}

# where the paths of the projectData object are in the project file (for messages)
_PATHS = (("diffuserData[0]", "diffuserTable.data[{row}]"), ("diffuserStore", "diffuserTable.store"),
          ("ambientProfileData[0]", "ambientStore.tabs[{tab}]"))

ProjectFiles = Mapping[str, "str | os.PathLike"]


def is_project(data: Any) -> bool:
    """True for a saved web-UI project (its top-level `diffuserTable` and `ambientStore`), as opposed to a
    case in our format."""
    return isinstance(data, Mapping) and "diffuserTable" in data and "ambientStore" in data


def _selected(items: Any, what: str, problems: list[str]) -> "tuple[int, Mapping | None]":
    """(index, item) of the entry with id 0 in a list of rows or tabs."""
    if not isinstance(items, list) or not items:
        problems.append(f"{what}: must be a non-empty list (got {json.dumps(items)[:60]})")
        return 0, None
    for index, item in enumerate(items):
        if isinstance(item, Mapping) and item.get("id") == SELECTED_ID:
            return index, item
    ids = ", ".join(str(item.get("id")) for item in items if isinstance(item, Mapping))
    problems.append(f"{what}: no entry with id {SELECTED_ID}, the one the web UI runs after loading a project "
                    f"(ids: {ids})")
    return 0, None


def _block(project: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    value = project.get(key)
    if not isinstance(value, Mapping):
        problems.append(f"{key}: must be an object (got {json.dumps(value)[:60]})")
        return {}
    return value


def _parts(project: Mapping[str, Any]) -> "tuple[Mapping, Mapping, int, int, list[str]]":
    """(diffuser row, ambient tab, row index, tab index, problems) of the rows the UI would run."""
    problems: list[str] = []
    table = _block(project, "diffuserTable", problems)
    tabs = _block(project, "ambientStore", problems)
    row_index, row = _selected(table.get("data"), "diffuserTable.data", problems) if table else (0, None)
    tab_index, tab = _selected(tabs.get("tabs"), "ambientStore.tabs", problems) if tabs else (0, None)
    return row or {}, tab or {}, row_index, tab_index, problems


def project_data(project: Mapping[str, Any], series: "Mapping[str, set[str]] | None" = None) -> dict[str, Any]:
    """The `projectData` object the web UI sends for a loaded project (its `diffuserTimeSeries` and
    `ambientFiles` hold the series named in `series`, {group: {variable}}, as chosen files)."""
    row, tab, _, _, _ = _parts(project)
    table = project.get("diffuserTable") if isinstance(project.get("diffuserTable"), Mapping) else {}
    store = table.get("store")
    data: dict[str, Any] = {"diffuserStore": store, "diffuserData": [row] if row else []}
    data["diffuserTimeSeries"] = _series_entries(project, "diffuser", (series or {}).get("diffuser", ()), store, tab)
    data["ambientProfileData"] = [tab] if tab else []
    data["ambientFiles"] = _series_entries(project, "ambient", (series or {}).get("ambient", ()), store, tab)
    for key in COPIED_OPTIONS:
        if key in project:
            data[key] = project[key]
    for key, default in UNSAVED_OPTIONS.items():
        data[key] = project.get(key, default)
    return data


def _series_entries(project: Mapping[str, Any], group: str, names: Any, store: Any, tab: Mapping) -> dict:
    """The series block of one group: the project's own entries, and for every given series one with a
    chosen file (its settings as the module docstring says)."""
    saved = project.get(SERIES_BLOCKS[group])
    out = {k: dict(v) for k, v in saved.items() if isinstance(v, Mapping)} if isinstance(saved, Mapping) else {}
    for name in names:
        key = series_key(group, name)
        entry = out.setdefault(key, {})
        entry["file"] = {}
        entry.setdefault("increment", 1)
        if group == "diffuser":
            column = store.get(DIFFUSER_FIELDS[name].legacy_key or name) if isinstance(store, Mapping) else None
            entry.setdefault("measurement_unit", column.get("value") if isinstance(column, Mapping) else "")
        else:
            columns = tab.get("store") if isinstance(tab.get("store"), Mapping) else {}
            column, levels = columns.get(key), columns.get(AMBIENT_FIELDS["z"].legacy_key or "z")
            entry.setdefault("measurement_unit", column.get("mu") if isinstance(column, Mapping) else "")
            levels = levels if isinstance(levels, Mapping) else {}
            entry.setdefault("depth_or_height", "depth" if levels.get("z_is_depth", True) in (True, "true")
                             else "height")
            entry.setdefault("depth_or_height_units", levels.get("mu", "m"))
    return out


def project_series_needed(project: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The time series a project takes from files: {group: {variable: the file name the project saved, or
    ""}}. A diffuser column the UI disabled (it does so when a file gives the column) or a series entry
    with a file counts."""
    needed: dict[str, dict[str, str]] = {"diffuser": {}, "ambient": {}}
    table = project.get("diffuserTable") if isinstance(project.get("diffuserTable"), Mapping) else {}
    store = table.get("store") if isinstance(table.get("store"), Mapping) else {}
    for name in DIFFUSER_SERIES:
        for key in {DIFFUSER_FIELDS[name].legacy_key or name, series_key("diffuser", name)}:
            column = store.get(key)
            if isinstance(column, Mapping) and column.get("isEnabled") is False:
                needed["diffuser"][name] = ""
    for group, names in (("diffuser", DIFFUSER_SERIES), ("ambient", AMBIENT_SERIES)):
        saved = project.get(SERIES_BLOCKS[group])
        for name in names:
            entry = saved.get(series_key(group, name)) if isinstance(saved, Mapping) else None
            if isinstance(entry, Mapping) and (entry.get("file") is not None
                                               or entry.get("filename") not in (None, "", NO_FILE)):
                needed[group][name] = str(entry.get("filename") or "")
    return needed


def series_name(text: str) -> "tuple[str, str] | None":
    """(group, variable) of a series name as `files=` takes it: the UI's name (`effluent_flow`,
    `current_speed`, …, also as the file part `effluent_flow-diffuser-file`) or `diffuser.<field>` /
    `ambient.<field>`."""
    text = str(text).strip()
    group, dot, variable = text.partition(".")
    if dot and group in ("diffuser", "ambient"):
        names = DIFFUSER_SERIES if group == "diffuser" else AMBIENT_SERIES
        return (group, variable) if variable in names else None
    part = re.fullmatch(r"(\w+)-(diffuser|ambient)-file", text)
    if part:
        text = part[1]
    for group, names in (("diffuser", DIFFUSER_SERIES), ("ambient", AMBIENT_SERIES)):
        for name in names:
            if series_key(group, name) == text:
                return group, name
    return None


def series_names() -> list[str]:
    """Every name `files=` takes, the UI's names (diffuser first)."""
    return [series_key(group, name) for group, names in (("diffuser", DIFFUSER_SERIES), ("ambient", AMBIENT_SERIES))
            for name in names]


def _usage(label: str, names: list[str]) -> str:
    flags = " ".join(f"--file {name}=PATH.csv" for name in names)
    mapping = ", ".join(f"{name!r}: 'PATH.csv'" for name in names)
    return f"vp-jupyter run {label} {flags} (in Python: vp.run({label!r}, files={{{mapping}}}))"


def _read_files(files: ProjectFiles, needed: Mapping[str, Mapping[str, str]], label: str,
                problems: list[str]) -> dict[str, dict[str, tuple[str, bytes]]]:
    """The CSVs given for the project's series, by group and variable; problems for unknown names, files
    that cannot be read and series the project needs but were not given."""
    given: dict[str, dict[str, tuple[str, bytes]]] = {"diffuser": {}, "ambient": {}}
    for name, path in files.items():
        where = series_name(name)
        if where is None:
            problems.append(f"files: {name!r} is not a time-series name; use one of {', '.join(series_names())}")
            continue
        try:
            given[where[0]][where[1]] = (str(path), Path(path).read_bytes())
        except OSError as err:
            problems.append(f"files: {name}: cannot read {str(path)!r} ({err.strerror or err})")
    missing = [(group, name, saved) for group, items in needed.items() for name, saved in items.items()
               if name not in given[group]]
    if missing:
        names = [series_key(group, name) for group, name, _ in missing]
        described = "; ".join(f"{series_key(group, name)} ({group} time series"
                              + (f", saved as {saved!r})" if saved else ")") for group, name, saved in missing)
        problems.append(f"{label}: the project takes values from time-series files that a saved project does not "
                        f"hold: {described}. Give each file: {_usage(label, names)}")
    return given


def _where(text: str, row: int, tab: int) -> str:
    """A legacy problem text with the request's paths as paths of the project file."""
    for old, new in _PATHS:
        text = text.replace(old, new.format(row=row, tab=tab))
    return text


def load_project(project: Mapping[str, Any], files: "ProjectFiles | None" = None, *, label: str = "project.json",
                 max_cases: "int | None" = None) -> Case:
    """The `Case` of a saved web-UI project (its decoded JSON object; `Case.load` reads files and calls
    this). `label`: how messages name the project (its path).

    `files`: series name -> CSV path for the time series the project takes from files (module docstring).
    Raises `CaseError` listing every problem: those of the project in the words of the web UI (its field
    labels and the paths of the project file), and every series the project needs but `files` lacks,
    with the command that gives it."""
    if not is_project(project):
        raise CaseError([f"{label}: not a saved web-UI project (it needs diffuserTable and ambientStore)"])
    _, _, row_index, tab_index, problems = _parts(project)
    given = _read_files(files or {}, project_series_needed(project), label, problems)
    if problems:
        raise CaseError(problems)
    data = project_data(project, {group: set(items) for group, items in given.items()})
    name = project.get("projectName")
    try:
        return case_from_project_data(data, given, max_cases=max_cases,
                                      name=name if isinstance(name, str) and name else Path(label).stem,
                                      source={"web_ui_project": Path(label).name})
    except LegacyError as err:
        raise CaseError([_where(text, row_index, tab_index) for text in err.problems]) from None
