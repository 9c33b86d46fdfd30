"""Times the reference Python port of Visual Plumes (github.com/sfei/Visual-Plumes-Models) on the public
reference cases, for `benchmarks/run.py --reference-port PATH` (or env VP_REFERENCE_PORT).

The port is GPL and is not part of this repository: the user clones it and passes the folder that holds its
`Middleware.py`. This file is our own driver. The parent side (the benchmark) turns each case file into plain
port inputs (unit strings resolved to the port's constant names with our unit vocabulary) and hands them, as
JSON on stdin, to a child process running this same file, which imports only the port and the standard
library (so the port's modules never mix with ours). The child runs the first case file once untimed (imports,
first calls), then runs `Middleware.run` on each case file up to `repeats` times with `time.perf_counter`
around that call only (the port's "model time"; building its input objects is outside), stopping early once a
file's runs add up to `budget_s` (the 144-case TRwtp series takes tens of seconds per run). It answers with the
times and the last plume row of each case, which the parent compares with `golden/SUMMARY.json` to show that
the port was fed correctly.

    python benchmarks/reference_port.py PATH [CASE.json ...]      times the port on the cases (default: all)
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ENV_VAR = "VP_REFERENCE_PORT"
PORT_URL = "github.com/sfei/Visual-Plumes-Models"

# our unit kinds -> the port's unit classes (the port's constant names are our Unit.name, spec §2)
PORT_UNIT_CLASS = {
    "length": "Length", "speed": "Speed", "angle": "Angle", "time": "Time", "flow": "FlowRate",
    "salinity": "Salinity", "temperature": "Temperature", "concentration": "Concentration",
    "decay_rate": "DecayRate", "diffusivity": "EddyDiffusivity", "unitless": "Unitless", "isopleth": "Isopleth",
}
# model settings given by enum member name in a case file -> the port's enum class
PORT_ENUMS = {"model": "Model", "bacteria_model": "BacteriaModel", "similarity_profile": "SimilarityProfile",
              "max_reversals": "MaxVerticalReversals", "farfield_diffusivity": "FarfieldDiffusivity"}
# the 23 columns added to the port's 9 default plume columns (reference README "Plume columns"), internal SI
EXTRA_COLUMNS = (
    ("element", "vertical_angle", "Angle"), ("element", "horizontal_angle", "Angle"),
    ("element", "total_time", "Time"), ("element", "cl_dilution", "Unitless"), ("model", "net_dilution", "Unitless"),
    ("element", "salinity", "Salinity"), ("element", "temperature", "Temperature"), ("element", "height", "Length"),
    ("element", "mass", "Mass"), ("element", "d_mass", "Mass"), ("element", "total_surf_dsp", "Length"),
    ("model", "travel", "Length"), ("model", "iso_diameter", "Length"), ("model", "um3isoplet", "Unitless"),
    ("model", "density_diff", "Density"), ("model", "mass_pollutant", "Mass"), ("ambient", "density", "Density"),
    ("ambient", "salinity", "Salinity"), ("ambient", "temperature", "Temperature"),
    ("ambient", "bg_conc", "Concentration"), ("ambient", "kt", "DecayRate"), ("ambient", "current_dir", "Angle"),
    ("element", "buildup", "Concentration"),
)
# SUMMARY.json keys -> index of the port's default plume columns
SUMMARY_COLUMNS = {"depth": 0, "width": 1, "x": 4, "y": 5, "conc": 7, "dilution": 8}


class ReferencePortError(RuntimeError):
    """The reference port cannot be used: a wrong path, or the port failed on a case."""


# -- parent side (the benchmark's process) ---------------------------------------------------------------------

def port_path(given: "str | os.PathLike | None" = None) -> "Path | None":
    """The port folder from `--reference-port` (given) or VP_REFERENCE_PORT; None when neither is set.
    Raises ReferencePortError when the folder is not a checkout of the port."""
    raw = given if given not in (None, "") else os.environ.get(ENV_VAR) or None
    if raw is None:
        return None
    path = Path(raw).expanduser().resolve()
    source = "--reference-port" if given not in (None, "") else ENV_VAR
    if not path.is_dir():
        raise ReferencePortError(f"{source} {raw}: no such folder; give the folder of a clone of {PORT_URL} "
                                 "(the one holding Middleware.py)")
    missing = [name for name in ("__init__.py", "Middleware.py", "UMUnit.py") if not (path / name).is_file()]
    if missing:
        raise ReferencePortError(f"{source} {raw}: not the reference port ({', '.join(missing)} missing); give the "
                                 f"folder of a clone of {PORT_URL} (the one holding Middleware.py)")
    return path


def _unit(text: Any, kind: str, where: str) -> list[str]:
    from vp_jupyter import units

    try:
        unit = units.parse_unit(text, kind)
    except units.UnitError as err:
        raise ReferencePortError(f"{where}: {err}") from None
    return [PORT_UNIT_CLASS[kind], unit.name]


def _series_text(series: dict, case_dir: "Path | None", where: str) -> str:
    if isinstance(series.get("csv"), str):
        return series["csv"]
    if isinstance(series.get("file"), str):
        path = Path(series["file"])
        return (path if path.is_absolute() or case_dir is None else case_dir / path).read_text()
    raise ReferencePortError(f"{where}: the driver takes a series as csv text or a file")


def port_inputs(case: dict, case_dir: "Path | None" = None) -> dict:
    """The port's inputs for one case file (reference README "Case schema"), as plain JSON: values as given,
    every unit as [port unit class, constant name], enums by member name, series as CSV text."""
    from vp_jupyter.inputs.fields import AMBIENT_FIELDS, DIFFUSER_FIELDS, TIMESERIES_FIELDS

    diffuser, ambient = case.get("diffuser", {}), case.get("ambient", {})
    unknown = sorted(set(case.get("model", {})) - _port_model_names())
    if unknown:
        raise ReferencePortError(f"model: the driver does not know {', '.join(unknown)}")
    inputs = {
        "model": dict(case.get("model", {})),
        "diffuser_values": dict(diffuser.get("values", {})),
        "diffuser_units": {name: _unit(diffuser.get("units", {}).get(name), spec.kind, f"diffuser.units.{name}")
                           for name, spec in DIFFUSER_FIELDS.items()},
        "ambient_units": {name: _unit(ambient.get("units", {}).get(name), spec.kind, f"ambient.units.{name}")
                          for name, spec in AMBIENT_FIELDS.items()},
        "z_is_depth": ambient.get("z_is_depth", True) is not False,
        "extrapolation": ambient.get("extrapolation", {}),
        "layers": [dict(layer) for layer in ambient.get("layers", [])],
        "timeseries": None,
    }
    series = case.get("timeseries")
    if series:
        time_kind = TIMESERIES_FIELDS["start_time"].kind
        inputs["timeseries"] = {
            "start_time": series.get("start_time", 0), "end_time": series["end_time"],
            "time_increment": series["time_increment"],
            "units": {name: _unit(series.get(f"{name}_units", series.get("units")), time_kind, f"timeseries.{name}")
                      for name in ("start", "end", "increment")},
            "diffuser": {var: {"increment_hours": s["increment_hours"], "csv": _series_text(s, case_dir, var),
                               "units": _unit(s.get("units"), DIFFUSER_FIELDS[var].kind,
                                              f"timeseries.diffuser.{var}.units")}
                         for var, s in series.get("diffuser", {}).items()},
            "ambient": {var: {"increment_hours": s["increment_hours"], "csv": _series_text(s, case_dir, var),
                              "units": _unit(s.get("units"), AMBIENT_FIELDS[var].kind,
                                             f"timeseries.ambient.{var}.units"),
                              "depth_units": _unit(s.get("depth_units"), AMBIENT_FIELDS["z"].kind,
                                                   f"timeseries.ambient.{var}.depth_units"),
                              "z_is_depth": s.get("z_is_depth", True) is not False}
                        for var, s in series.get("ambient", {}).items()},
        }
    return inputs


def _port_model_names() -> set[str]:
    from vp_jupyter.inputs.fields import MODEL_FIELDS

    return set(MODEL_FIELDS)


def time_port(port: Path, case_files: list[Path], repeats: int = 5, budget_s: float = 10.0,
              timeout: float = 3600.0) -> dict[str, dict]:
    """Runs the port on each case file in a child process: {case name: {"seconds": [model time of each run],
    "cases": port cases in the file, "last_rows": [...]}}. Raises ReferencePortError when it fails."""
    request = {"port": str(port), "repeats": repeats, "budget_s": budget_s,
               "cases": [{"name": path.stem, "inputs": port_inputs(json.loads(path.read_text()), path.parent)}
                         for path in case_files]}
    try:
        done = subprocess.run([sys.executable, "-I", str(Path(__file__).resolve()), "--child"],
                              input=json.dumps(request), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ReferencePortError(f"the reference port took longer than {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise ReferencePortError(f"the reference port's process failed: {tail}")
    answer = json.loads(done.stdout)
    failed = {name: result["error"] for name, result in answer.items() if "error" in result}
    if failed:
        raise ReferencePortError("the reference port failed on " +
                                 "; ".join(f"{name}: {error}" for name, error in failed.items()))
    return answer


def per_case_seconds(result: dict) -> float:
    """Median model time of one case file divided by its number of port cases."""
    return statistics.median(result["seconds"]) / result["cases"]


def golden_agreement(results: dict[str, dict], summary: dict) -> tuple[int, int, float]:
    """(files compared, files whose every case ends on the golden's step and status, the largest relative
    difference of depth, width, x, y, concentration and dilution in those last rows)."""
    compared = matching = 0
    worst = 0.0
    for name, result in results.items():
        golden = summary.get(name)
        if not golden or not golden.get("success"):
            continue
        compared += 1
        rows, expected = result["last_rows"], golden["cases"]
        same = len(rows) == len(expected)
        for row, want in zip(rows, expected):
            same = same and row["step"] == want["steps"] and row["status"] == want["status"]
            for key, index in SUMMARY_COLUMNS.items():
                got, ref = row["values"][index], want[key]
                if got is None or ref is None:
                    continue
                scale = max(abs(ref), 1e-6 if key in ("x", "y") else 1e-12)
                worst = max(worst, abs(got - ref) / scale)
        matching += same
    return compared, matching, worst


# -- child side (imports only the port and the standard library) ----------------------------------------------

def _load_port(folder: str):
    """The port's package from its folder (a clone's folder name need not be a Python name)."""
    import importlib.util

    import numpy
    if not hasattr(numpy, "NaN"):          # the port uses np.NaN, which NumPy 2 removed
        numpy.NaN = numpy.nan
    spec = importlib.util.spec_from_file_location("visualplumes_reference", Path(folder) / "__init__.py",
                                                  submodule_search_locations=[folder])
    package = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = package
    spec.loader.exec_module(package)
    return package


def _port_unit(vp, pair: list[str]) -> Any:
    return getattr(getattr(vp.units, pair[0]), pair[1])


def _build(vp, inputs: dict, scratch: Path) -> dict:
    """Fresh port objects for one run (Middleware.run changes them)."""
    from importlib import import_module

    interpolation = import_module(vp.__name__ + ".ambient.AmbientStore").Interpolation
    model = vp.ModelParameters()
    for name, value in inputs["model"].items():
        setattr(model, name, getattr(vp, PORT_ENUMS[name])[value] if name in PORT_ENUMS else value)
    diffuser, diffuser_store = vp.DiffuserParameters(), vp.DiffuserStore()
    for name, value in inputs["diffuser_values"].items():
        setattr(diffuser, name, value)
    for name, pair in inputs["diffuser_units"].items():
        diffuser_store.get(name).units = _port_unit(vp, pair)
    ambient_store = vp.AmbientStore()
    for name, pair in inputs["ambient_units"].items():
        ambient_store.get(name).units = _port_unit(vp, pair)
    ambient_store.z.z_is_depth = inputs["z_is_depth"]
    for name, modes in inputs["extrapolation"].items():
        subset = ambient_store.get(name)
        subset.extrapolation_sfc = interpolation[modes.get("surface", "CONSTANT")]
        subset.extrapolation_btm = interpolation[modes.get("bottom", "CONSTANT")]
    layers = []
    for values in inputs["layers"]:
        layer = vp.Ambient()
        for name, value in values.items():
            setattr(layer, name, value)
        layers.append(layer)
    timeseries = None
    if inputs["timeseries"]:
        series = inputs["timeseries"]
        timeseries = vp.TimeseriesHandler()
        timeseries.start_time, timeseries.end_time = series["start_time"], series["end_time"]
        timeseries.time_increment = series["time_increment"]
        timeseries.units.start_time = _port_unit(vp, series["units"]["start"])
        timeseries.units.end_time = _port_unit(vp, series["units"]["end"])
        timeseries.units.time_increment = _port_unit(vp, series["units"]["increment"])
        for group, store, kind in (("diffuser", diffuser_store, vp.DiffuserTimeseries),
                                   ("ambient", ambient_store, vp.AmbientTimeseries)):
            for var, data in series[group].items():
                subset = store.get(var)
                subset.units, subset.ts_increment = _port_unit(vp, data["units"]), data["increment_hours"]
                if group == "ambient":
                    subset.ts_depth_units = _port_unit(vp, data["depth_units"])
                    subset.z_is_depth = data["z_is_depth"]
                csv = scratch / f"{group}.{var}.csv"
                csv.write_text(data["csv"])
                setattr(getattr(timeseries, group), var, kind(str(csv), subset))
    return dict(model_params=model, diffuser_params=diffuser, diffuser_store=diffuser_store,
                timeseries_handler=timeseries, ambient_stack=layers, ambient_store=ambient_store,
                output_handler=_output_handler(vp, diffuser_store, ambient_store))


def _output_handler(vp, diffuser_store, ambient_store):
    """The port's 9 default plume columns plus the 23 SI columns the goldens carry."""
    u = vp.units
    feet_speeds = (u.Speed.FEET_PER_SECOND, u.Speed.KNOTS, u.Speed.MILES_PER_HOUR, u.Speed.FATHOMS_PER_SECOND)
    xy = u.Length.FEET if ambient_store.current_speed.units in feet_speeds else u.Length.METERS
    speed = ambient_store.current_speed.units
    handler = vp.OutputUM3()
    for regime, name, label, kind, unit in (
            ("element", "depth", "Depth", u.Length, diffuser_store.depth.units),
            ("element", "diameter", "Width", u.Length, diffuser_store.diameter.units),
            ("ambient", "current_speed", "Amb-vel", u.Speed, speed),
            ("element", "speed", "Velocity", u.Speed, speed),
            ("element", "x_displacement", "X-pos", u.Length, xy), ("element", "y_displacement", "Y-pos", u.Length, xy),
            ("element", "density", "Density", u.Density, u.Density.KILOGRAMS_PER_CUBIC_METER),
            ("element", "concentration", "Pollutant", u.Concentration, diffuser_store.concentration.units),
            ("element", "dilution", "Dilution", u.Unitless, None)):
        handler.add_parameter(regime, name, label, kind, unit)
    for regime, name, kind in EXTRA_COLUMNS:
        handler.add_parameter(regime, name, name, getattr(u, kind), None)
    return handler


def _finite(value: Any) -> Any:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _time_case(vp, inputs: dict, repeats: int, budget_s: float, scratch: Path) -> dict:
    import time

    seconds, output = [], None
    while not seconds or (len(seconds) < repeats and sum(seconds) < budget_s):
        kwargs = _build(vp, inputs, scratch)
        start = time.perf_counter()
        output = vp.Middleware.run(**kwargs)
        seconds.append(time.perf_counter() - start)
        if not output.get("success"):
            return {"error": f"{output.get('error')!r}"}
    last_rows = [{"step": rows[-1]["step"], "status": rows[-1]["status"],
                  "values": [_finite(v) for v in rows[-1]["values"]]} for rows in output["plume"]["outputs"]]
    return {"seconds": seconds, "cases": output["cases"], "last_rows": last_rows}


def _child() -> None:
    import tempfile
    import traceback

    request = json.load(sys.stdin)
    vp = _load_port(request["port"])
    answer = {}
    with tempfile.TemporaryDirectory(prefix="vp-refport-") as scratch:
        try:                                              # warm: imports and first calls, untimed
            _time_case(vp, request["cases"][0]["inputs"], 1, 0.0, Path(scratch))
        except Exception:                                 # reported below, with the case's name
            pass
        for case in request["cases"]:
            try:
                answer[case["name"]] = _time_case(vp, case["inputs"], request["repeats"], request["budget_s"],
                                                  Path(scratch))
            except Exception as err:                      # report it with the case's name, keep timing the rest
                answer[case["name"]] = {"error": f"{type(err).__name__}: {err} "
                                                 f"({traceback.extract_tb(err.__traceback__)[-1].filename})"}
    json.dump(answer, sys.stdout)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child()
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip().splitlines()[-1].strip())
        return 0 if argv else 2
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    reference = root.parent / "shared" / "reference"
    try:
        port = port_path(argv[0])
        files = [Path(p) for p in argv[1:]] or sorted((reference / "cases").glob("*.json"))
        results = time_port(port, files)
    except ReferencePortError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name, result in results.items():
        print(f"{name:<36} {result['cases']:>4} cases  {per_case_seconds(result) * 1000:9.1f} ms per case")
    print(f"median per case: {statistics.median(map(per_case_seconds, results.values())) * 1000:.1f} ms")
    summary = reference / "golden" / "SUMMARY.json"
    if summary.is_file():
        compared, matching, worst = golden_agreement(results, json.loads(summary.read_text()))
        print(f"last plume rows vs golden/SUMMARY.json: {matching}/{compared} files on the golden's steps and "
              f"statuses, largest relative difference {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
