"""`Case`: a validated, normalised case (one definition of the inputs) and its SI engine cases."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from .. import units as u
from . import normalise
from .build import CaseBuilder, effective_units, row_index
from .fields import AMBIENT_SERIES, DIFFUSER_SERIES
from .parts import (CaseError, Problems, ambient_from_dict, diffuser_from_dict, model_from_dict, output_from_dict,
                    parts_from_dict, parts_to_dict, timeseries_from_dict)


class Case:
    """A validated case. Build it from parts or load it (`Case.load`) from a case file, dict or Case.

        case = Case(diffuser=Diffuser(diameter=0.1, depth=20, effluent_flow=0.1, concentration=100),
                    ambient=AmbientProfile(layers=[AmbientLayer(0, current_speed=0.1, current_dir=0,
                                                                salinity=33, temperature=15),
                                                   AmbientLayer(30)]))

    Parts may also be given as dicts in the case JSON layout. Invalid input raises `CaseError` listing every
    problem. Parts are immutable; `case.replace(diffuser=...)` makes a new, validated Case.

    Attributes: `model` (ModelSettings), `diffuser` (Diffuser, values in their units, None = not given),
    `ambient` (AmbientProfile), `timeseries` (Timeseries or None), `output` (OutputOptions), `name`,
    `description`, `source`; `diffuser_units` / `ambient_units` (field -> Unit, SI where none was given;
    a time series' unit replaces the field's; `diffuser_units["isopleth"]` is the unit of the isopleth
    value, `isopleth_type` its type); `case_times` (seconds, one per engine case).

    Time series read from files (`file`): a relative path is relative to `base_dir` (set by `Case.load` to
    the folder of the case file), else to the current directory; `allow_files=False` refuses `file` series
    (use it for cases from untrusted clients). `max_cases` limits the number of cases (default
    `vp_jupyter.inputs.normalise.MAX_CASES`, 100 000).
    """

    def __init__(self, diffuser: Any = None, ambient: Any = None, model: Any = None, timeseries: Any = None,
                 output: Any = None, name: str = "", description: str = "", source: "Mapping | None" = None,
                 *, base_dir: "str | os.PathLike | None" = None, max_cases: "int | None" = None,
                 allow_files: bool = True):
        _check_max_cases(max_cases)
        self.base_dir = Path(base_dir) if base_dir is not None else None
        self.max_cases = max_cases
        self.allow_files = bool(allow_files)
        problems = Problems()
        if diffuser is None:
            problems.add("diffuser", "is required")
        if ambient is None:
            problems.add("ambient", "is required")
        # dicts in the JSON layout are accepted for every part
        if isinstance(model, Mapping) or model is None:
            model = model_from_dict(model, problems)
        if isinstance(diffuser, Mapping) or diffuser is None:
            diffuser = diffuser_from_dict(diffuser, problems)
        if isinstance(ambient, Mapping) or ambient is None:
            ambient = ambient_from_dict(ambient or {"layers": []}, problems)
        if isinstance(timeseries, Mapping):
            timeseries = timeseries_from_dict(timeseries, problems)
        if isinstance(output, Mapping) or output is None:
            output = output_from_dict(output, problems)
        for label, text in (("name", name), ("description", description)):
            if not isinstance(text, str):
                problems.add(label, "must be a string", text)
            elif not _encodable(text):      # it could never be saved (UTF-8) with the run
                problems.add(label, "must be valid Unicode text (it holds a lone surrogate such as \\ud800)", text)
        if source is not None and not _encodable(json.dumps(source, ensure_ascii=False, default=str)):
            problems.add("source", "must be valid Unicode text (it holds a lone surrogate such as \\ud800)")
        self.name = name if isinstance(name, str) else ""
        self.description = description if isinstance(description, str) else ""
        self.source = dict(source) if isinstance(source, Mapping) else None

        self.model = normalise.model(model, problems)
        series_names = set(getattr(timeseries, "diffuser", None) or ())
        self.diffuser, d_units = normalise.diffuser(diffuser, series_names, problems)
        self.ambient, a_units, layers_ok = normalise.ambient(ambient, problems)
        if timeseries is None:
            self.timeseries, d_series, a_series, times = None, {}, {}, [0.0]
        else:
            self.timeseries, d_series, a_series, times = normalise.timeseries(
                timeseries, a_units["z"], self.ambient.z_is_depth, problems, base_dir=self.base_dir,
                max_cases=max_cases, allow_files=self.allow_files)
        self._series = {**{f"diffuser.{n}": d_series[n] for n in DIFFUSER_SERIES if n in d_series},
                        **{f"ambient.{n}": a_series[n] for n in AMBIENT_SERIES if n in a_series}}
        self.output = normalise.output(output, problems)
        d_units, a_units, self.isopleth_type = effective_units(d_units, a_units, d_series, a_series)
        built = CaseBuilder(self.model, self.diffuser, d_units, self.isopleth_type, self.ambient, a_units,
                            layers_ok, d_series, a_series, problems).build(times)
        problems.raise_if_any()
        self._engine_cases = built.engine_cases
        self._layer_tables = built.layer_tables
        self.case_times = list(times)
        # seconds between cases: the tidal-buildup step (spec §11; 1 s without a time series)
        self.time_step = times[1] - times[0] if len(times) > 1 else 1.0
        self.diffuser_units: dict[str, u.Unit] = dict(built.diffuser_units)
        self.ambient_units: dict[str, u.Unit] = dict(built.ambient_units)

    # ------------------------------------------------------------------------------------- construction
    @classmethod
    def load(cls, source: Any, max_cases: "int | None" = None, allow_files: bool = True,
             files: "Mapping[str, str | os.PathLike] | None" = None) -> "Case":
        """A Case from a path to a case JSON file (str or Path), a dict in the case layout, or a Case; also
        from a project the Visual Plumes web UI saved ("Save Project Config"; path or dict), translated as
        the web UI's own run would be (`vp_jupyter.legacy.project`).

        Time-series `file` paths in a case file are relative to its folder (for a dict: to the current
        directory); `allow_files=False` refuses them (cases from untrusted clients). `max_cases`: the largest
        number of cases allowed (default `normalise.MAX_CASES`). `files`: for a saved project only, the CSV
        files of the time series it takes from files (a project never holds them), e.g.
        `{"effluent_flow": "flow.csv"}`. A Case given as `source` is returned as it is."""
        _check_max_cases(max_cases)
        if isinstance(source, Case):
            return source
        if isinstance(source, (str, os.PathLike)):
            path = Path(source)
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except OSError as err:
                raise CaseError([f"{path}: cannot read the case file ({err.strerror or err})"]) from None
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                raise CaseError([f"{path}: not a valid JSON case file ({err})"]) from None
            if _is_project(data):
                return _load_project(data, files, max_cases, allow_files, label=str(source))
            _no_files(files, path)
            return cls.from_dict(data, base_dir=path.resolve().parent, max_cases=max_cases,
                                 allow_files=allow_files)
        if isinstance(source, Mapping):
            if _is_project(source):
                return _load_project(source, files, max_cases, allow_files)
            _no_files(files, "the case")
            return cls.from_dict(source, max_cases=max_cases, allow_files=allow_files)
        raise CaseError([f"case: expected a path, a dict or a Case (got {type(source).__name__})"])

    @classmethod
    def from_dict(cls, data: Any, base_dir: "str | os.PathLike | None" = None,
                  max_cases: "int | None" = None, allow_files: bool = True) -> "Case":
        """A Case from a dict in the case JSON layout (reference README "Case schema"). Relative time-series
        `file` paths are relative to `base_dir` (default: the current directory)."""
        problems = Problems()
        parts = parts_from_dict(data, problems)
        try:
            case = cls(**parts, base_dir=base_dir, max_cases=max_cases, allow_files=allow_files)
        except CaseError as err:
            problems.items.extend(p for p in err.problems if p not in problems.items)
        problems.raise_if_any()
        return case

    def to_dict(self, inline_files: bool = False) -> dict[str, Any]:
        """The case JSON (round-trips through `Case.load`). A series read from a file keeps its `file`
        reference (the resolved path); `inline_files=True` writes the data read at load time as `csv`
        instead (a self-contained case, e.g. for an archive)."""
        out = parts_to_dict(self)
        if inline_files and "timeseries" in out:
            for key, series in self._series.items():
                where, variable = key.split(".", 1)
                entry = out["timeseries"][where][variable]
                if "file" in entry:
                    out["timeseries"][where][variable] = {"csv": series.text,
                                                         **{k: v for k, v in entry.items() if k != "file"}}
        return out

    def replace(self, **changes: Any) -> "Case":
        """A new, validated Case with some parts (or name/description/source) replaced."""
        parts = dict(diffuser=self.diffuser, ambient=self.ambient, model=self.model, timeseries=self.timeseries,
                     output=self.output, name=self.name, description=self.description, source=self.source)
        unknown = set(changes) - set(parts)
        if unknown:
            raise TypeError(f"Case.replace: unknown part(s) {', '.join(sorted(unknown))}; allowed: {', '.join(parts)}")
        return Case(**{**parts, **changes}, base_dir=self.base_dir, max_cases=self.max_cases,
                    allow_files=self.allow_files)

    # ------------------------------------------------------------------------------------------ outputs
    def engine_cases(self) -> list:
        """The normalised SI inputs of the engine, one EngineCase per case time (spec §12)."""
        return list(self._engine_cases)

    def layer_table(self, index: int = 0) -> list[dict[str, float]]:
        """The filled ambient layers of case `index` (spec §5.2) in input units: one dict per layer with
        `depth` (as a depth, in the z units) and every variable (the reference's ambient table, without density)."""
        return [dict(row) for row in self._layer_tables[index]]

    def series_info(self) -> list[dict[str, Any]]:
        """The parsed time series, diffuser ones first in the order depth, effluent_flow, salinity,
        temperature, concentration, then the ambient ones (legacy §3.3 memo order). One dict each:
        `where` ("diffuser"/"ambient"), `variable`, `units` (label), `increment_hours`, `rows` (number of
        data rows), `levels` (ambient: the first CSV line, in `depth_units`), `depth_units`, `z_is_depth`,
        `file` (the resolved CSV path, None for inline csv)."""
        info = []
        for key, series in self._series.items():
            where, variable = key.split(".", 1)
            units = (self.diffuser_units if where == "diffuser" else self.ambient_units)[variable]
            item = {"where": where, "variable": variable, "units": units.label,
                    "increment_hours": series.increment_hours, "rows": len(series.rows),
                    "levels": list(series.levels), "file": series.file}
            if where == "ambient":
                item.update(depth_units=series.depth_unit.label, z_is_depth=series.z_is_depth)
            info.append(item)
        return info

    def series_rows(self, index: int = 0) -> list[int]:
        """The CSV data row (0-based) each time series uses in case `index`, in the order of
        `series_info()`: floor(t / increment) modulo the number of rows, t from 0 (spec §12)."""
        time_s = self.case_times[index]
        return [row_index(time_s, series) for series in self._series.values()]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Case) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        count = len(self._engine_cases)
        return f"Case(name={self.name!r}, {count} engine case{'s' if count != 1 else ''})"



def _check_max_cases(max_cases: Any) -> None:
    if max_cases is not None and (isinstance(max_cases, bool) or not isinstance(max_cases, int) or max_cases < 1):
        raise ValueError(f"max_cases must be a whole number >= 1 or None (got {max_cases!r})")


def _is_project(data: Any) -> bool:
    """A saved web-UI project rather than a case (the check lives with the legacy format it belongs to)."""
    from ..legacy.project import is_project     # the legacy package sits above the inputs: imported late

    return is_project(data)


def _load_project(project: Any, files: Any, max_cases: "int | None", allow_files: bool,
                  label: str = "project.json") -> "Case":
    from ..legacy.project import load_project

    if files and not allow_files:
        raise CaseError(["files: time-series files are refused here (allow_files=False)"])
    return load_project(project, files, label=label, max_cases=max_cases)


def _no_files(files: Any, where: Any) -> None:
    if files:
        raise CaseError([f"files: only a saved web-UI project takes time-series files this way; {where} is a case "
                         f"in the case format, which names its files in timeseries.<group>.<field>.file"])


def _encodable(text: str) -> bool:
    """Can `text` be written as UTF-8 (JSON escapes such as "\\ud800" give strings that cannot)?"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
