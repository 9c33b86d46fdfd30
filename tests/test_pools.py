"""Worker pools from any caller, `vp.run` over the local cores, and the local pool's limits.

Scripts run in a subprocess the way a new user writes them: no ``if __name__ == "__main__":`` guard, as a
file, through ``python -c`` and through ``python -`` (standard input). The workers must not run the
caller's script again (its body prints a marker, counted once), and the results must equal in-process
ones.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import vp_jupyter as vp
from vp_jupyter import local_pool, tasks
from vp_jupyter.local_pool import LocalProcessExecutor, memory_limit_message
from vp_jupyter.sweeps import run_cases

from builders import alive_processes, assert_same_tables, complete_case, wait_until

WAIT_S = 180.0
REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import vp_jupyter as vp
from builders import complete_case

print("BODY RAN", flush=True)
table = vp.sweep(complete_case("script"), {{"diffuser.effluent_flow": [1.0, 2.0, 3.0]}}, progress=False)
result = vp.run(complete_case("script", cases=12), store=False, workers=2)
print(json.dumps({{"sweep_rows": len(table), "sweep_dilution": [float(d) for d in table["dilution"]],
                  "run_cases": result.case_count,
                  "run_dilution": [float(r["dilution"]) for r in result.final_rows()]}}), flush=True)
"""


def _expected() -> dict:
    table = vp.sweep(complete_case("script"), {"diffuser.effluent_flow": [1.0, 2.0, 3.0]}, progress=False,
                     max_workers=1)
    result = vp.run(complete_case("script", cases=12), store=False, workers=1)
    return {"sweep_rows": 3, "sweep_dilution": [float(d) for d in table["dilution"]], "run_cases": 12,
            "run_dilution": [float(r["dilution"]) for r in result.final_rows()]}


def _check(done: subprocess.CompletedProcess, expected: dict) -> None:
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert lines.count("BODY RAN") == 1, done.stdout          # the workers did not run the script again
    assert json.loads(lines[-1]) == expected


@pytest.fixture(scope="module")
def expected() -> dict:
    return _expected()


def test_a_script_without_a_main_guard_runs_sweeps_and_series(tmp_path, expected) -> None:
    script = tmp_path / "study.py"
    script.write_text(SCRIPT.format(tests=str(REPO / "tests")))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=WAIT_S,
                          cwd=tmp_path)
    _check(done, expected)


def test_python_dash_c_runs_sweeps_and_series(tmp_path, expected) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=str(REPO / "tests"))], capture_output=True,
                          text=True, timeout=WAIT_S, cwd=tmp_path)
    _check(done, expected)


def test_a_script_on_standard_input_runs_sweeps_and_series(tmp_path, expected) -> None:
    done = subprocess.run([sys.executable, "-"], input=SCRIPT.format(tests=str(REPO / "tests")),
                          capture_output=True, text=True, timeout=WAIT_S, cwd=tmp_path)
    _check(done, expected)


# ----------------------------------------------------------------------------------------- vp.run

def test_a_long_series_runs_on_the_local_cores_by_default_and_equals_one_process() -> None:
    case = complete_case("year", cases=vp.PARALLEL_MIN_CASES)
    seen: list[tuple[int, int]] = []
    parallel = vp.run(case, store=False, progress=lambda done, total: seen.append((done, total)))
    pool = local_pool._shared
    assert pool is not None and pool.worker_pids() and os.getpid() not in pool.worker_pids()
    assert seen[-1] == (vp.PARALLEL_MIN_CASES, vp.PARALLEL_MIN_CASES) and len(seen) > 1
    assert_same_tables(parallel, vp.run(case, store=False, workers=1), exact=True)


def test_single_cases_short_and_coupled_series_stay_in_process(monkeypatch) -> None:
    def no_pool(*args, **kwargs):
        raise AssertionError("this run must stay in the calling process")

    monkeypatch.setattr(local_pool, "shared_executor", no_pool)
    vp.run(complete_case("one"), store=False)
    vp.run(complete_case("short", cases=vp.PARALLEL_MIN_CASES - 1), store=False)
    tidal = complete_case("tidal", cases=vp.PARALLEL_MIN_CASES)
    tidal["model"].update(tidal_pollution_buildup=True, tpb_channel_width=50.0, tpb_segment_length=100.0,
                          tpb_upstream_dir=90.0, tpb_coast_bin=40, tpb_coast_concentration=0.0,
                          tpb_mixing_zone_ceil=2.0)
    vp.run(tidal, store=False)
    vp.run(complete_case("asked", cases=vp.PARALLEL_MIN_CASES), store=False, workers=1)


def test_progress_true_shows_a_bar_in_process_and_on_workers(capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)       # the text bar (tqdm draws the same numbers)
    vp.run(complete_case("bar", cases=5), store=False, progress=True)
    vp.run(complete_case("bar", cases=5), store=False, progress=True, workers=2)
    err = capsys.readouterr().err
    assert err.count("run: 5/5 cases") == 2
    vp.run(complete_case("quiet", cases=3), store=False, progress=False)
    assert capsys.readouterr().err == ""


def test_workers_must_be_a_whole_number() -> None:
    with pytest.raises(ValueError, match=r"workers must be a whole number >= 1 or None \(got 0\)"):
        vp.run(complete_case("w"), store=False, workers=0)


# ----------------------------------------------------------------------------------------- the pool

def test_a_task_over_the_memory_limit_fails_with_a_clear_message_and_the_pool_recovers() -> None:
    limit_mb = 300
    with_margin = (limit_mb + 150) * 2**20
    executor = LocalProcessExecutor(1, memory_limit_mb=limit_mb)
    try:
        baseline_pid = executor.submit(local_pool._noop, 0.0).result(WAIT_S)
        peak = {"rss": 0}
        stop = threading.Event()
        watcher = threading.Thread(target=_watch_rss, args=(baseline_pid, peak, stop), daemon=True)
        watcher.start()
        future = executor.submit(grow_memory, 2000)
        with pytest.raises(tasks.WorkerMemoryExceeded) as caught:
            future.result(WAIT_S)
        stop.set()
        watcher.join()
        assert str(caught.value) == memory_limit_message(limit_mb)
        assert 0 < peak["rss"] < with_margin, f"peak {peak['rss'] / 2**20:.0f} MiB"
        print(f"memory limit {limit_mb} MB: the worker's peak RSS was {peak['rss'] / 2**20:.0f} MiB")
        assert executor.submit(local_pool._noop, 0.0).result(WAIT_S) > 0     # the pool runs the next task
    finally:
        executor.shutdown()


def grow_memory(mb: int) -> int:
    """A task that keeps allocating (10 MB at a time, a little work between) until it has `mb` MB."""
    return len(grow_and_hold(mb))


def _watch_rss(pid: int, peak: dict, stop: threading.Event) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak["rss"] = max(peak["rss"], process.memory_info().rss)
        except psutil.Error:
            return
        time.sleep(0.02)


def test_a_killed_worker_names_how_it_died() -> None:
    executor = LocalProcessExecutor(1)
    try:
        future = executor.submit(local_pool._noop, 60.0)
        pids = wait_until(lambda: executor.worker_pids(), "a worker to start", WAIT_S)
        time.sleep(0.3)
        os.kill(pids[0], signal.SIGKILL)
        with pytest.raises(tasks.WorkerDied) as caught:
            future.result(WAIT_S)
        assert caught.value.pids == {pids[0]}
        assert str(caught.value) == f"{tasks.WORKER_DIED} (exit codes [-9])"
        assert executor.submit(local_pool._noop, 0.0).result(WAIT_S) != pids[0]
        # a crash is not worded as a kill
        future = executor.submit(os.abort)
        with pytest.raises(tasks.WorkerDied) as caught:
            future.result(WAIT_S)
        assert caught.value.cause.startswith("the worker process running this case ended unexpectedly "
                                             "(signal SIGABRT")
    finally:
        executor.shutdown()


def test_workers_end_when_their_parent_is_killed(tmp_path) -> None:
    import psutil

    script = ("import sys, time\n"
              f"sys.path.insert(0, {str(REPO)!r})\n"
              "from vp_jupyter.local_pool import LocalProcessExecutor, _noop\n"
              "pool = LocalProcessExecutor(2)\n"
              "futures = [pool.submit(_noop, 600.0) for _ in range(2)]\n"
              "time.sleep(1.0)\n"
              "print(*pool.worker_pids(), flush=True)\n"
              "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        family = [p.pid for p in psutil.Process(parent.pid).children(recursive=True)]
        assert set(pids) <= set(family)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10.0
        while alive_processes(family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive_processes(family), f"still alive 10 s after the parent was killed: {alive_processes(family)}"
    finally:
        parent.kill()


def hungry_archive(mb: int, result, run_id: str) -> bytes:
    """A legacy-archive maker (it runs in the worker that finishes a run) that needs `mb` MB."""
    return bytes(len(grow_and_hold(mb)))


def grow_and_hold(mb: int) -> list:
    held = []
    for _ in range(mb // 10):
        held.append(bytearray(10 * 2**20))
        sum(range(20000))
    return held


def test_a_run_over_the_worker_memory_limit_fails_saying_so_and_the_next_run_succeeds(tmp_path) -> None:
    import functools

    from vp_jupyter.runner import Runner
    from vp_jupyter.store import RunStore

    from builders import assert_no_partial_runs

    store = RunStore(tmp_path / "runs")
    with Runner(store, max_workers=1, memory_limit_mb=400) as runner:
        doomed = runner.submit(complete_case("hungry", cases=3), source="api",
                               make_archive=functools.partial(hungry_archive, 3000))
        status = runner.wait_sync(doomed, WAIT_S)
        assert status["status"] == "failed"
        assert status["error"].endswith(memory_limit_message(400)), status["error"]
        assert store.get(doomed).error == status["error"]
        fine = runner.submit(complete_case("fine", cases=3), source="api")
        assert runner.wait_sync(fine, WAIT_S)["status"] == "succeeded"
    assert_no_partial_runs(store)


def test_a_plan_stops_at_its_time_limit_or_when_cancelled_and_its_workers_with_it() -> None:
    slow = complete_case("slow", cases=10_000)      # seconds of work with the compiled loop
    slow["model"]["write_step_freq"] = 100
    plan = tasks.chunk_plan([vp.Case.load(slow)], workers=1)
    executor = LocalProcessExecutor(1)
    try:
        executor.submit(local_pool._noop, 0.0).result(WAIT_S)
        first = executor.worker_pids()
        with pytest.raises(TimeoutError, match="time limit of 0.5 s"):
            tasks.run_plan(plan, executor, time_limit_s=0.5, stop_workers=True)
        wait_until(lambda: not alive_processes(first), "the stopped worker to end", WAIT_S)
        executor.submit(local_pool._noop, 0.0).result(WAIT_S)
        second = executor.worker_pids()
        cancel = threading.Event()
        threading.Timer(0.5, cancel.set).start()
        with pytest.raises(tasks.Cancelled):
            tasks.run_plan(plan, executor, cancel=cancel, stop_workers=True)
        wait_until(lambda: not alive_processes(second), "the cancelled worker to end", WAIT_S)
        assert executor.submit(local_pool._noop, 0.0).result(WAIT_S) not in first + second
    finally:
        executor.shutdown()


def test_a_sweep_and_server_runs_share_one_executor(tmp_path) -> None:
    from vp_jupyter.runner import Runner
    from vp_jupyter.store import RunStore

    slow = complete_case("shared", cases=800)
    slow["model"]["write_step_freq"] = 100
    with Runner(RunStore(tmp_path / "runs"), max_workers=2) as runner:
        run_id = runner.submit(slow, source="api")
        seen: list[tuple[int, int]] = []
        result = run_cases([vp.Case.load(complete_case("member", cases=40))], executor=runner.executor,
                                     progress=lambda done, total: seen.append((done, total)))
        assert result[0].case_count == 40 and seen[-1] == (40, 40)
        wait_until(lambda: runner.worker_pids(run_id), "the run's workers to report", WAIT_S)   # still heard
        assert runner.wait_sync(run_id, WAIT_S)["status"] == "succeeded"
