"""Speed and memory targets of vp-jupyter, measured (never asserted in the test suite).

    python benchmarks/run.py            every target
    python benchmarks/run.py engine     only the named ones (engine, cold, legacy, year, legacy-year, loop,
                                        first, vprun, sweep, limits, store)
    python benchmarks/run.py engine --reference-port PATH      (or env VP_REFERENCE_PORT=PATH)

Prints one line per target: name, measured value, target, PASS/FAIL. Needs ../shared/reference beside
the repository for the reference cases (targets that need it say so and are skipped otherwise).

The speed-ups are against the reference Python port's model time per case. With --reference-port (a clone of
github.com/sfei/Visual-Plumes-Models; GPL, not part of this repository) the port is timed on the same public
reference cases in the same run (benchmarks/reference_port.py); without it the documented figure
REFERENCE_PORT_S_PER_CASE is used (README "Performance") and the output says that the port was not run.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"
EXAMPLES = ROOT.parent / "shared" / "spec" / "examples"
sys.path.insert(0, str(ROOT))

import reference_port  # noqa: E402  (benchmarks/, beside this script)

RESULTS: list[tuple[str, str, str, bool]] = []
REFERENCE_PORT_S_PER_CASE = 0.16    # the reference port's model time per reference case (README "Performance")
YEAR_CASES = 8760
PORT: dict = {"path": None, "s_per_case": None}     # the port given on the command line, its time once measured


def report(name: str, measured: str, target: str, ok: bool) -> None:
    RESULTS.append((name, measured, target, ok))
    print(f"{name:<46} {measured:>22}   target {target:<14} {'PASS' if ok else 'FAIL'}", flush=True)


def skip(name: str, why: str) -> None:
    print(f"{name:<46} {'skipped':>22}   ({why})", flush=True)


def reference_s_per_case() -> float:
    """The reference port's median model time per public reference case: measured once in this run when the
    port is given, else the documented REFERENCE_PORT_S_PER_CASE."""
    if PORT["s_per_case"] is None:
        PORT["s_per_case"] = REFERENCE_PORT_S_PER_CASE
        if PORT["path"] is None:
            print(f"  reference port: not run side by side (no --reference-port or {reference_port.ENV_VAR}); "
                  f"speed-ups use the documented {REFERENCE_PORT_S_PER_CASE} s per case", flush=True)
        elif not (REFERENCE / "cases").is_dir():
            print(f"  reference port: not run (no reference cases at {REFERENCE}); speed-ups use the documented "
                  f"{REFERENCE_PORT_S_PER_CASE} s per case", flush=True)
        else:
            print(f"  reference port: timing {PORT['path']} on the reference cases (a few minutes) ...", flush=True)
            try:
                results = reference_port.time_port(PORT["path"], sorted((REFERENCE / "cases").glob("*.json")))
            except reference_port.ReferencePortError as err:
                report("engine: reference port model time per case, median", "error", "(measured)", False)
                print(f"  reference port: {err}; speed-ups use the documented {REFERENCE_PORT_S_PER_CASE} s per case",
                      flush=True)
                return PORT["s_per_case"]
            PORT["s_per_case"] = statistics.median(map(reference_port.per_case_seconds, results.values()))
            report("engine: reference port model time per case, median", f"{PORT['s_per_case'] * 1000:.0f} ms",
                   "(measured)", True)
            summary = REFERENCE / "golden" / "SUMMARY.json"
            if summary.is_file():
                compared, matching, worst = reference_port.golden_agreement(results, json.loads(summary.read_text()))
                print(f"  reference port vs golden/SUMMARY.json: last plume rows of {matching}/{compared} case files "
                      f"on the golden's steps and statuses, largest relative difference {worst:.1e}", flush=True)
    return PORT["s_per_case"]


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- 1. engine, warm -------------------------------------------------------------------------------

def engine() -> None:
    if not (REFERENCE / "cases").is_dir():
        return skip("engine", f"no reference cases at {REFERENCE}")
    import vp_jupyter as vp
    from vp_jupyter.engine import um3_compiled

    # a warm process (a server's worker, a notebook after its first runs) has the compiled loop loaded
    print(f"  UM3 step loop: {um3_compiled.engine_name()}", flush=True)
    per_case = []
    trwtp = None
    for path in sorted((REFERENCE / "cases").glob("*.json")):
        cases = vp.run(path, store=False).case_count                   # warm
        seconds = best_of(lambda: vp.run(path, store=False), 5)
        per_case.append(seconds / cases)
        if path.stem == "trwtp":
            trwtp = seconds
    median_ms = statistics.median(per_case) * 1000.0
    speedup = reference_s_per_case() * 1000.0 / median_ms
    report("engine: vp.run per reference case, median", f"{median_ms:.2f} ms ({speedup:.0f}x)", ">= 100x ref",
           speedup >= 100.0)
    if trwtp is not None:
        report("engine: vp.run trwtp.json (144 cases, tidal)", f"{trwtp:.3f} s", "<= 1 s", trwtp <= 1.0)


# -- 2. cold start ---------------------------------------------------------------------------------

def cold() -> None:
    case = REFERENCE / "cases" / "01_readme_single_port.json"
    if not case.is_file():
        return skip("cold start", f"no {case}")
    exe = shutil.which("vp-jupyter")
    command = [exe] if exe else [sys.executable, "-m", "vp_jupyter.cli"]
    env = {**os.environ, "VP_JUPYTER_STORE": tempfile.mkdtemp(prefix="vp-bench-store-")}
    subprocess.run([*command, "run", str(case)], check=True, capture_output=True, env=env)   # warm the disk cache
    seconds = best_of(lambda: subprocess.run([*command, "run", str(case)], check=True, capture_output=True,
                                             env=env), 5)
    report("cold start: vp-jupyter run 01 (whole process)", f"{seconds:.3f} s", "<= 1 s", seconds <= 1.0)


# -- 3/4. through the server -----------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`jupyter server` with the extension in a subprocess, on loopback, with its own store."""

    def __init__(self, store: Path | None = None) -> None:
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.dir = Path(tempfile.mkdtemp(prefix="vp-bench-server-"))
        self.store = store or self.dir / "store"            # a given store is kept; the default one is removed
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "Server":
        env = {**os.environ, "VP_JUPYTER_STORE": str(self.store), "JUPYTER_RUNTIME_DIR": str(self.dir / "rt")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={self.port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.dir}",
             "--ServerApp.jpserver_extensions={'vp_jupyter': True}", "--VisualPlumesApp.max_workers=2",
             "--VisualPlumesApp.max_concurrent_runs_per_user=16",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/api/status")
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("jupyter server did not start")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def request(self, path: str, data: bytes | None = None, headers: dict | None = None, method: str | None = None):
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"token {self.token}", **(headers or {})})
        with urllib.request.urlopen(req, timeout=300) as response:
            return response.read()

    def get(self, path: str):
        return self.request(path)

    def rss_bytes(self) -> int:
        """Resident memory of the server and all its descendants (worker processes)."""
        total, todo = 0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                total += int(next(l for l in status.splitlines() if l.startswith("VmRSS:")).split()[1]) * 1024
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except (OSError, StopIteration, ValueError):
                continue
        return total


def multipart(form: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "----vpBench" + uuid.uuid4().hex
    parts = []
    for name, value in form.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, body in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.csv"\r\n'
                     f"Content-Type: text/csv\r\n\r\n".encode() + body + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def legacy_round_trip(server: Server) -> None:
    example = EXAMPLES / "example1.projectData.json"
    if not example.is_file():
        return skip("server: legacy run_analysis example 1", f"no {example}")
    body, content_type = multipart({"projectData": example.read_text()}, {})
    post = lambda: server.request("/visualplumes/app/run_analysis", body, {"Content-Type": content_type})  # noqa: E731
    for _ in range(3):
        post()                                                                                     # warm
    median_ms = best_of(post, 20) * 1000.0
    report("server: legacy run_analysis example 1, median", f"{median_ms:.0f} ms", "<= 150 ms", median_ms <= 150.0)


def year_case() -> dict:
    """A year of hourly cases (8 760, no tidal buildup): TRwtp's diffuser, ambient and hourly series."""
    case = json.loads((REFERENCE / "cases" / "trwtp.json").read_text())
    case["model"]["tidal_pollution_buildup"] = False
    case["timeseries"].update(start_time=0, end_time=8759, time_increment=1, units="hr")
    for key in ("start_units", "end_units", "increment_units"):
        case["timeseries"].pop(key, None)
    return case


def year_through_api(server: Server) -> None:
    if not (REFERENCE / "cases" / "trwtp.json").is_file():
        return skip("server: 8760 hourly cases", "no reference trwtp case")
    body = json.dumps(year_case()).encode()
    start = time.perf_counter()
    accepted = json.loads(server.request("/visualplumes/api/runs", body, {"Content-Type": "application/json"}))
    run_id = accepted["id"]
    peak = 0
    progress_seen = set()
    while True:
        status = json.loads(server.get(f"/visualplumes/api/runs/{run_id}"))
        peak = max(peak, server.rss_bytes())
        progress_seen.add(status.get("progress", {}).get("done"))
        if status["status"] not in ("queued", "running"):
            break
        time.sleep(0.25)
    seconds = time.perf_counter() - start
    ok = status["status"] == "succeeded"
    speedup = reference_s_per_case() * YEAR_CASES / seconds
    report("server: 8760 hourly cases via POST api/runs", f"{seconds:.1f} s ({speedup:.0f}x)", ">= 300x ref",
           ok and speedup >= 300.0)
    report("server: progress updates seen during that run", f"{len(progress_seen - {None})} values", ">= 3",
           len(progress_seen - {None}) >= 3)
    report("memory: peak RSS server + workers, 8760 run", f"{peak / 2**20:.0f} MiB", "< 1024 MiB", ok and peak < 2**30)
    folder = server.store / run_id
    stored = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0
    report("store: that run's folder on disk (year of hourly cases)", f"{stored / 1e6:.1f} MB", "<= 20 MB",
           ok and 0 < stored <= 20e6)
    began = time.perf_counter()
    result = server.request(f"/visualplumes/api/runs/{run_id}/result", headers={"Accept-Encoding": "gzip"})
    report("store: GET its result (gzip on the wire)", f"{len(result) / 1e6:.1f} MB in {time.perf_counter() - began:.1f} s",
           "(measured)", True)


def series_case(hours: int) -> dict:
    """A one-port case with an hourly effluent-flow series of `hours` cases (no reference data needed)."""
    return {"name": "loop latency", "model": {"write_step_freq": 50},
            "diffuser": {"values": {"diameter": 0.2, "vertical_angle": 30.0, "horizontal_angle": 0.0, "num_ports": 1,
                                    "acute_mixing_zone": 100.0, "depth": 20.0, "salinity": 1.0, "temperature": 20.0,
                                    "concentration": 1e-4}, "units": {}},
            "ambient": {"units": {}, "layers": [
                {"z": 0.0, "current_speed": 0.1, "current_dir": 0.0, "salinity": 33.0, "temperature": 15.0},
                {"z": 30.0, "salinity": 33.5, "temperature": 12.0}]},
            "timeseries": {"start_time": 0, "end_time": hours - 1, "time_increment": 1, "units": "hr",
                           "diffuser": {"effluent_flow": {"increment_hours": 1, "units": "m3/s",
                                                          "csv": "0.04\n0.05\n0.06\n"}}}}


def loop_latency(server: Server) -> None:
    """How long Jupyter's own `api/status` takes while 8 runs of 400 cases keep every worker busy."""
    body = json.dumps(series_case(400)).encode()
    ids = [json.loads(server.request("/visualplumes/api/runs", body, {"Content-Type": "application/json"}))["id"]
           for _ in range(8)]
    latencies = []
    while True:
        start = time.perf_counter()
        server.get("/api/status")
        latencies.append(time.perf_counter() - start)
        statuses = [json.loads(server.get(f"/visualplumes/api/runs/{run_id}"))["status"] for run_id in ids]
        if not any(status in ("queued", "running") for status in statuses):
            break
        time.sleep(0.05)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000.0
    report("server: event-loop latency while runs execute, p99", f"{p99:.0f} ms ({len(latencies)} probes)",
           "<= 100 ms", p99 <= 100.0)
    report("server: event-loop latency while runs execute, max", f"{latencies[-1] * 1000.0:.0f} ms", "<= 250 ms",
           latencies[-1] <= 0.25)


def first_run_after_start() -> None:
    """The first legacy run of a server started a moment ago (the user opening the UI): its workers were
    started in the background at server start (setting prestart_workers)."""
    example = EXAMPLES / "example1.projectData.json"
    if not example.is_file():
        return skip("server: first run 3 s after start", f"no {example}")
    body, content_type = multipart({"projectData": example.read_text()}, {})
    with Server() as server:
        time.sleep(3.0)
        start = time.perf_counter()
        server.request("/visualplumes/app/run_analysis", body, {"Content-Type": content_type})
        first_ms = (time.perf_counter() - start) * 1000.0
    report("server: first run 3 s after start", f"{first_ms:.0f} ms", "<= 300 ms", first_ms <= 300.0)


def vp_run_year() -> None:
    """`vp.run` of the year case, each way twice in a fresh process: with workers=1 and by default (all
    cores). The first call loads the compiled loop (and starts the shared worker pool); the second is what
    later calls in a notebook take. Speed-ups compare the second calls."""
    if not (REFERENCE / "cases" / "trwtp.json").is_file():
        return skip("vp.run: 8760 hourly cases", "no reference trwtp case")
    code = ("import json, sys, time; sys.path.insert(0, sys.argv[1]); import vp_jupyter as vp\n"
            "case = vp.Case.load(json.loads(sys.argv[2])); times = []\n"
            "for workers in json.loads(sys.argv[3]):\n"
            "    start = time.perf_counter(); vp.run(case, store=False, workers=workers)\n"
            "    times.append(time.perf_counter() - start)\n"
            "print(json.dumps(times))\n")
    # the one-process run at the workers' priority (local_pool.WORKER_NICENESS), so a loaded machine treats
    # both alike
    one = subprocess.run([sys.executable, "-c", code, str(ROOT), json.dumps(year_case()), "[1, 1]"],
                         capture_output=True, text=True, check=True,
                         preexec_fn=(lambda: os.nice(10)) if hasattr(os, "nice") else None)
    many = subprocess.run([sys.executable, "-c", code, str(ROOT), json.dumps(year_case()), "[null, null]"],
                          capture_output=True, text=True, check=True)
    single_first, single = json.loads(one.stdout.strip().splitlines()[-1])
    first, warm = json.loads(many.stdout.strip().splitlines()[-1])
    target = 0.7 * (os.cpu_count() or 1)
    report("vp.run: 8760 hourly cases, one process", f"{single:.1f} s (first call {single_first:.1f} s)",
           "(reference)", True)
    report("vp.run: same, all cores, first call (pool starts)", f"{first:.1f} s (x{single_first / first:.2f})",
           "(measured)", True)
    report("vp.run: same, all cores, pool running", f"{warm:.1f} s (x{single / warm:.2f})", f">= x{target:.1f}",
           single / warm >= target)


def legacy_year_request() -> tuple[bytes, str]:
    """Example 3 of the legacy API stretched to a year of hourly cases: its two time-series files with
    8 760 rows (effluent flow and a current that vary over the day)."""
    data = json.loads((EXAMPLES / "example3.projectData.json").read_text())
    data["diffuserData"][0]["end_time"] = str(YEAR_CASES - 1)
    flows = "".join(f"{0.02 + 0.01 * (hour % 5):.2f}\n" for hour in range(YEAR_CASES))
    currents = "0,50\n" + "".join(f"{0.05 + 0.01 * (hour % 12):.2f},{0.01 * (hour % 3):.2f}\n"
                                  for hour in range(YEAR_CASES))
    return multipart({"projectData": json.dumps(data)}, {"effluent_flow-diffuser-file": flows.encode(),
                                                        "current_speed-ambient-file": currents.encode()})


def legacy_year(server: Server) -> None:
    if not (EXAMPLES / "example3.projectData.json").is_file():
        return skip("server: legacy run_analysis, a year", f"no {EXAMPLES / 'example3.projectData.json'}")
    body, content_type = legacy_year_request()
    start = time.perf_counter()
    answer = server.request("/visualplumes/app/run_analysis", body, {"Content-Type": content_type})
    seconds = time.perf_counter() - start
    ok = '"success": true' in json.loads(answer)
    report("server: legacy run_analysis of 8760 cases", f"{seconds:.1f} s", "< 10 s", ok and seconds < 10.0)


def server_targets(which: set[str]) -> None:
    with Server() as server:
        if "legacy" in which:
            legacy_round_trip(server)
        if "year" in which:
            year_through_api(server)
        if "loop" in which:
            loop_latency(server)
        if "legacy-year" in which:
            legacy_year(server)


def store_scale() -> None:
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "store_scale.py")], check=False)


def sweep() -> None:
    script = ROOT / "benchmarks" / "sweep_cores.py"
    if not script.is_file():
        return skip("sweep: 64 members use all cores", "benchmarks/sweep_cores.py missing")
    subprocess.run([sys.executable, str(script)], check=False)


# -- 6. bounded work from small inputs (README "Limits") ---------------------------------------------

TINY_INCREMENT_RUN = """
import json, resource, sys, time
from pathlib import Path
from vp_jupyter import legacy, run
examples = Path(sys.argv[1])
data = json.loads((examples / "example2.projectData.json").read_text())
files = {p.name[len("example2."):-len(".csv")]: p.read_bytes() for p in examples.glob("example2.*-file.csv")}
data["farfieldCoeff"] = 1e-6
start = time.perf_counter()
result = run(legacy.parse_run_request({"projectData": json.dumps(data)}, files), store=False)
legacy.success_object(result, "benchmark")
try:        # this process's own peak: ru_maxrss keeps the peak of the process it was forked from (Linux)
    peak_kib = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                        if line.startswith("VmHWM:")).split()[1])
except (OSError, StopIteration):
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(time.perf_counter() - start, peak_kib / 1024, len(result.farfield))
"""


def limits() -> None:
    import random

    from vp_jupyter.engine.ambient import fill_values

    for layers in (1_000, 8_000, 100_000):
        depths = [float(i) for i in range(layers)]
        values = [random.random() if i % 3 == 0 else None for i in range(layers)]
        seconds = best_of(lambda: fill_values(depths, values, "CONSTANT", "CONSTANT", float(layers)), 3)
        report(f"ambient fill of {layers} layers", f"{seconds * 1000:.1f} ms", "<= 1 s", seconds <= 1.0)
    if not (EXAMPLES / "example2.projectData.json").is_file():
        return skip("far field with a 1e-6 m increment", f"no legacy example 2 at {EXAMPLES}")
    out = subprocess.run([sys.executable, "-c", TINY_INCREMENT_RUN, str(EXAMPLES)], capture_output=True,
                         text=True, timeout=600, cwd=ROOT)
    if out.returncode != 0:
        return report("far field with a 1e-6 m increment", "error", "runs", False)
    seconds, peak_mb, rows = out.stdout.split()
    report(f"far field, 1e-6 m increment: time ({rows} rows)", f"{float(seconds):.2f} s", "<= 5 s",
           float(seconds) <= 5.0)
    report("far field, 1e-6 m increment: peak memory", f"{float(peak_mb):.0f} MiB", "<= 300 MiB",
           float(peak_mb) <= 300.0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Speed and memory targets of vp-jupyter.")
    parser.add_argument("targets", nargs="*", metavar="TARGET", help="targets to run (default: all)")
    parser.add_argument("--reference-port", metavar="PATH",
                        help=f"folder of a clone of {reference_port.PORT_URL} to time side by side "
                             f"(default: env {reference_port.ENV_VAR})")
    args = parser.parse_args(argv)
    try:
        PORT["path"] = reference_port.port_path(args.reference_port)
    except reference_port.ReferencePortError as err:
        parser.error(str(err))
    which = set(args.targets) or {"engine", "cold", "legacy", "year", "legacy-year", "loop", "first", "vprun",
                                  "sweep", "limits", "store"}
    print(f"vp-jupyter benchmarks on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    if "engine" in which:
        engine()
    if "cold" in which:
        cold()
    if which & {"legacy", "year", "legacy-year", "loop"}:
        server_targets(which)
    if "first" in which:
        first_run_after_start()
    if "vprun" in which:
        vp_run_year()
    if "sweep" in which:
        sweep()
    if "limits" in which:
        limits()
    if "store" in which:
        store_scale()                       # 100 000 runs: its own server and its own PASS/FAIL lines
    failed = [name for name, _, _, ok in RESULTS if not ok]
    print(f"{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
