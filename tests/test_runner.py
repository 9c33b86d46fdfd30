"""The runner: runs in worker processes, chunked series, progress, time limits, dead workers, cancelling.

Worker pools are spawned (as in a server); the tests wait with generous limits and assert no timings
except the run time limit itself (a 1 s limit on a run that needs far longer). Runs are finished in a
worker, so the archive / response makers the tests pass are module-level functions (spawned workers
import this module to find them); a "gate" file holds a finish task until the test opens it.
"""
from __future__ import annotations

import asyncio
import functools
import io
import gzip
import json
import logging
import pickle
import os
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

import vp_jupyter as vp
from vp_jupyter import legacy
from vp_jupyter import runner as runner_module
from vp_jupyter.inputs import CaseError
from vp_jupyter.results import Result
from vp_jupyter.runner import SHUT_DOWN, WORKER_DIED, LocalProcessExecutor, RunFailed, Runner, plan_chunks
from vp_jupyter.store import InvalidRunId, RunNotFound, RunStore

from builders import assert_no_partial_runs, assert_same_tables, complete_case
from builders import wait_until as _wait_until

WAIT_S = 120.0          # upper bound for anything to happen on a loaded machine (never reached normally)
STATUS_KEYS = {"id", "status", "progress", "created", "started", "finished", "duration_s", "error", "source", "owner",
               "case_name", "case_count"}


# a 1-port diffuser at 20 m, two layers, SI units; optionally `cases` hourly cases and the Brooks far field
small_case = functools.partial(complete_case, "runner test")
wait_until = functools.partial(_wait_until, timeout=WAIT_S)


def tidal_case(cases: int = 6) -> dict:
    """A series coupled by tidal pollution buildup (one chunk, run and finished in one task)."""
    case = small_case(cases=cases)
    case["model"].update(tidal_pollution_buildup=True, tpb_channel_width=50.0, tpb_segment_length=100.0,
                         tpb_upstream_dir=90.0, tpb_coast_bin=40, tpb_coast_concentration=0.0,
                         tpb_mixing_zone_ceil=2.0)
    return case


def slow_case(cases: int = 10_000) -> dict:
    """Many hourly cases (about 0.5 ms of work each here with the compiled loop, 5 ms in pure Python: a
    few seconds, long enough to be stopped while it runs), few rows."""
    case = small_case(cases=cases)
    case["model"]["write_step_freq"] = 100
    return case


# makers run in the worker that finishes a run, so they are module-level (picklable by reference)

def text_archive(result, run_id: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"output_{run_id}.txt", result.text_report())
    return buffer.getvalue()


def broken_archive(result, run_id: str) -> bytes:
    raise OSError("disk full")


def broken_response(result, run_id: str) -> str:
    raise ValueError("no body today")


def gated_archive(gate: str, result, run_id: str) -> bytes:
    """`text_archive` once the file `gate` exists (bind `gate` with functools.partial)."""
    deadline = time.monotonic() + WAIT_S
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(0.01)
    return text_archive(result, run_id)


def finishing(runner: Runner, run_id: str) -> list[int]:
    """The pid of the worker finishing the run, once every case is done and the finish task has started."""
    status = runner.status(run_id)
    if status["status"] == "running" and status["progress"]["done"] == status["progress"]["total"]:
        return runner.worker_pids(run_id)
    return []


def staging_of(store: RunStore, run_id: str) -> list[str]:
    return sorted(p.name for p in store.staging.iterdir() if p.name.startswith(run_id)) if store.staging.exists() else []


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("runner") / "runs")


@pytest.fixture(scope="module")
def runner(store):
    with Runner(store, max_workers=2) as runner:
        yield runner


class ThreadExecutor:
    """Another executor behind the same interface (as a Dask one will be): threads in this process."""

    def __init__(self, max_workers: int = 2, fail_with: Exception | None = None):
        self.max_workers = max_workers
        self.fail_with = fail_with
        self._pool = ThreadPoolExecutor(max_workers)

    def submit(self, fn, /, *args) -> Future:
        if self.fail_with is not None:
            error = self.fail_with

            def fn(*_args):
                raise error
        return self._pool.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


# ------------------------------------------------------------------------------------------- runs

def test_a_run_succeeds_and_lands_in_the_store(runner, store) -> None:
    run_id = runner.submit(small_case(), source="api", owner="alice", request={"projectData": {"x": 1}})
    first = runner.status(run_id)
    assert set(first) == STATUS_KEYS and first["status"] in ("queued", "running", "succeeded")
    result = runner.result(run_id, timeout=WAIT_S)
    assert_same_tables(result, vp.run(small_case()))
    status = runner.status(run_id)
    assert status["status"] == "succeeded" and status["error"] is None
    assert status["progress"] == {"done": 1, "total": 1}
    assert status["duration_s"] >= 0 and status["finished"] >= status["started"] >= status["created"]
    record = store.get(run_id)
    assert (record.status, record.source, record.owner, record.case_count) == ("succeeded", "api", "alice", 1)
    assert store.load_request(run_id) == {"projectData": {"x": 1}}
    assert_same_tables(store.load_result(run_id), result)
    assert runner.active_count() == 0


def test_an_independent_series_is_split_over_the_workers_in_case_order(runner, store) -> None:
    case = small_case(cases=20, brooks=True)
    run_id = runner.submit(case, source="notebook", owner="bob")
    result = runner.result(run_id, timeout=WAIT_S)
    assert runner.max_workers == 2
    chunks = runner.chunks(run_id)
    assert len(chunks) >= 4 and chunks[0][0] == 0 and chunks[-1][1] == 20
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
    expected = vp.run(case)
    assert_same_tables(result, expected)
    assert runner.status(run_id)["progress"] == {"done": 20, "total": 20}
    assert_same_tables(store.load_result(run_id), expected)


def test_a_tidal_buildup_series_runs_as_one_chunk(runner, store) -> None:
    case = small_case(cases=6)
    case["model"].update(tidal_pollution_buildup=True, tpb_channel_width=50.0, tpb_segment_length=100.0,
                         tpb_upstream_dir=90.0, tpb_coast_bin=40, tpb_coast_concentration=0.0,
                         tpb_mixing_zone_ceil=2.0)
    run_id = runner.submit(case, source="api")
    result = runner.result(run_id, timeout=WAIT_S)
    assert runner.chunks(run_id) == [(0, 6)]
    expected = vp.run(case)
    assert expected.tidal.was_run
    assert_same_tables(result, expected)
    assert_same_tables(store.load_result(run_id), expected)


def test_progress_grows_to_the_total(runner) -> None:
    run_id = runner.submit(slow_case(60), source="api")
    seen = []
    while True:
        status = runner.status(run_id)
        seen.append(status["progress"]["done"])
        if status["status"] not in ("queued", "running"):
            break
        time.sleep(0.02)
    assert status["status"] == "succeeded"
    assert seen == sorted(seen) and seen[-1] == 60
    assert status["progress"] == {"done": 60, "total": 60}


def test_waiting_does_not_block_the_event_loop(runner) -> None:
    async def scenario():
        ticks = 0
        finished = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not finished.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        run_id = runner.submit(small_case(cases=4), source="ui", owner="carol")
        ticks_at_submit = ticks
        status = await asyncio.wait_for(runner.wait(run_id), WAIT_S)
        finished.set()
        await task
        return status, ticks - ticks_at_submit

    status, ticks_while_waiting = asyncio.run(scenario())
    assert status["status"] == "succeeded" and status["progress"] == {"done": 4, "total": 4}
    assert ticks_while_waiting > 0
    result = asyncio.run(asyncio.wait_for(runner.result_async(status["id"]), WAIT_S))
    assert_same_tables(result, vp.run(small_case(cases=4)))


def test_the_archive_maker_is_called_and_its_zip_stored(runner, store) -> None:
    run_id = runner.submit(small_case(), source="ui", owner="dan", make_archive=text_archive)
    assert runner.wait_sync(run_id, WAIT_S)["status"] == "succeeded"
    with zipfile.ZipFile(store.archive_path(run_id)) as archive:     # called with this run's id
        assert archive.namelist() == [f"output_{run_id}.txt"]
        assert archive.read(f"output_{run_id}.txt").decode() == vp.run(small_case(), store=False).text_report()

    run_id = runner.submit(small_case(), source="ui", make_archive=broken_archive)
    status = runner.wait_sync(run_id, WAIT_S)
    assert status["status"] == "failed" and status["error"] == "building the output archive failed: disk full"
    with pytest.raises(RunFailed, match="disk full"):
        runner.result(run_id)
    assert set(store.get(run_id).files) == {"meta.json", "case.json"}
    assert staging_of(store, run_id) == []

    run_id = runner.submit(small_case(cases=3), source="ui", make_archive=text_archive, make_response=broken_response)
    status = runner.wait_sync(run_id, WAIT_S)
    assert status["status"] == "failed" and status["error"] == "building the response failed: no body today"
    assert set(store.get(run_id).files) == {"meta.json", "case.json"}
    assert staging_of(store, run_id) == []


def test_makers_must_be_picklable_as_they_run_in_a_worker(runner) -> None:
    def local_archive(result, run_id):
        return b""

    with pytest.raises(TypeError, match="module-level"):
        runner.submit(small_case(), source="api", make_archive=local_archive)
    with pytest.raises(TypeError, match="make_response"):
        runner.submit(small_case(), source="api", make_response=lambda result, run_id: "")
    assert runner.active_count() == 0


def test_the_response_body_is_made_in_the_worker_and_stored_with_the_run(runner, store) -> None:
    for case in (small_case(cases=7, brooks=True), tidal_case()):
        run_id = runner.submit(case, source="ui", make_archive=legacy.archive_bytes, make_response=legacy.success_body)
        assert runner.wait_sync(run_id, WAIT_S)["status"] == "succeeded"
        expected = vp.run(case, store=False)
        assert runner.response_path(run_id) == store.response_path(run_id)
        body = gzip.decompress(store.response_path(run_id).read_bytes()).decode("utf-8")
        assert body == legacy.success_body(expected, run_id)
        assert "response.json.gz" in store.get(run_id).files
        with zipfile.ZipFile(store.archive_path(run_id)) as archive:
            assert archive.namelist() == legacy.archive_members(expected, run_id)
        stored = json.loads(b"".join(store.iter_result_json(run_id)))
        assert stored["cases"] == len(expected.outputs) and stored["name"] == "runner test"
        assert_same_tables(Result.from_dict(stored), expected)
    plain = runner.submit(small_case(), source="api")      # no response maker: no stored body
    assert runner.wait_sync(plain, WAIT_S)["status"] == "succeeded"
    with pytest.raises(RunNotFound, match="response"):
        runner.response_path(plain)


def test_this_process_never_builds_a_result_nor_reads_chunk_outputs(runner, store, monkeypatch) -> None:
    """The parent coordinates only: chunk outputs go to files, ONE worker task assembles, archives, makes the
    response and saves. A Result built here (or a chunk file unpickled here) would stall a server's loop."""
    built, loaded = [], []
    real_init, real_load = Result.__init__, pickle.load

    def spy_init(self, *args, **kwargs):
        built.append("Result()")
        real_init(self, *args, **kwargs)

    def spy_from_dict(cls, *args, **kwargs):
        built.append("Result.from_dict")
        raise AssertionError("Result.from_dict in the parent")

    def spy_load(*args, **kwargs):
        loaded.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(Result, "__init__", spy_init)
    monkeypatch.setattr(Result, "from_dict", classmethod(spy_from_dict))
    monkeypatch.setattr(pickle, "load", spy_load)
    monkeypatch.setattr(runner_module, "join_outputs", lambda parts: loaded.append(parts) or parts)
    cases = {"independent": small_case(cases=20, brooks=True), "coupled": tidal_case()}
    ids = {name: runner.submit(case, source="api", make_archive=legacy.archive_bytes,
                               make_response=legacy.success_body) for name, case in cases.items()}
    finals = {name: runner.wait_sync(run_id, WAIT_S) for name, run_id in ids.items()}
    assert built == [] and loaded == []
    monkeypatch.undo()
    assert all(final["status"] == "succeeded" for final in finals.values()), finals
    assert len(runner.chunks(ids["independent"])) > 1 and runner.chunks(ids["coupled"]) == [(0, 6)]
    for name, run_id in ids.items():
        assert_same_tables(runner.result(run_id), vp.run(cases[name], store=False))
        assert staging_of(store, run_id) == []


def test_unknown_and_invalid_ids(runner) -> None:
    with pytest.raises(InvalidRunId):
        runner.status("../../etc/passwd")
    with pytest.raises(RunNotFound):
        runner.status("20260101T000000Z-" + "0" * 32)
    with pytest.raises(RunNotFound):
        runner.cancel("20260101T000000Z-" + "0" * 32)
    with pytest.raises(ValueError, match="source"):
        runner.submit(small_case(), source="carrier pigeon")
    with pytest.raises(CaseError):
        runner.submit({"diffuser": {}}, source="api")


def test_deleted_runs_are_gone_everywhere(runner, store) -> None:
    elsewhere = runner.submit(small_case(), source="api")
    runner.wait_sync(elsewhere, WAIT_S)
    store.delete(elsewhere)                 # e.g. by another process or the retention policy
    with pytest.raises(RunNotFound):
        runner.status(elsewhere)
    assert elsewhere not in [s["id"] for s in runner.list()]

    finished = runner.submit(small_case(), source="api")
    runner.wait_sync(finished, WAIT_S)
    runner.delete(finished)
    assert not store.exists(finished)
    with pytest.raises(RunNotFound):
        runner.status(finished)

    running = runner.submit(slow_case(), source="api")
    wait_until(lambda: runner.worker_pids(running), "the run to start")
    runner.delete(running)
    wait_until(lambda: runner.active_count() == 0, "the deleted run to stop")
    assert not store.exists(running)
    with pytest.raises(RunNotFound):
        runner.status(running)
    with pytest.raises(RunNotFound):
        runner.delete(running)
    assert_no_partial_runs(store)


# ------------------------------------------------------------------------------------------- failures

def test_a_killed_worker_fails_its_run_and_the_next_run_succeeds(runner, store) -> None:
    run_id = runner.submit(slow_case(), source="api", owner="erin")
    pids = wait_until(lambda: runner.worker_pids(run_id), "a worker to start on the run")
    os.kill(pids[0], signal.SIGKILL)
    status = runner.wait_sync(run_id, WAIT_S)
    assert status["status"] == "failed"
    assert status["error"] == WORKER_DIED
    record = store.get(run_id)
    assert record.status == "failed" and record.error == WORKER_DIED
    assert set(record.files) == {"meta.json", "case.json"}
    with pytest.raises(RunFailed, match="died unexpectedly"):
        runner.result(run_id)
    assert not store.parts_dir(run_id).exists()
    assert_no_partial_runs(store)

    run_id = runner.submit(small_case(cases=3), source="api", owner="erin")
    assert_same_tables(runner.result(run_id, timeout=WAIT_S), vp.run(small_case(cases=3)))
    assert pids[0] not in runner.executor.worker_pids()


def test_chunk_results_pass_through_files_removed_when_the_run_succeeds(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    with Runner(store, max_workers=2, chunk_size=20) as runner:
        run_id = runner.submit(slow_case(200), source="api")
        parts = store.parts_dir(run_id)
        seen = wait_until(lambda: sorted(p.name for p in parts.glob("chunk-*.pkl")), "a chunk's results file")
        assert set(seen) <= {runner_module.part_name(i) for i in range(10)}
        assert runner.wait_sync(run_id, WAIT_S)["status"] == "succeeded"
        assert not parts.exists()
        assert runner.result(run_id).case_count == 200
        assert_no_partial_runs(store)


def test_a_finishing_worker_that_dies_fails_the_run_and_leaves_nothing(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    gate = tmp_path / "gate"                # never opened: the finish task waits until it is killed
    with Runner(store, max_workers=2) as runner:
        run_id = runner.submit(small_case(cases=12), source="ui",
                               make_archive=functools.partial(gated_archive, str(gate)))
        pids = wait_until(lambda: finishing(runner, run_id), "the finish task to start")
        assert len(pids) == 1
        assert sorted(p.name for p in store.parts_dir(run_id).iterdir()) == [
            runner_module.part_name(i) for i in range(len(runner.chunks(run_id)))]
        os.kill(pids[0], signal.SIGKILL)
        status = runner.wait_sync(run_id, WAIT_S)
        assert (status["status"], status["error"]) == ("failed", WORKER_DIED)
        assert set(store.get(run_id).files) == {"meta.json", "case.json"}
        assert not store.parts_dir(run_id).exists()
        assert_no_partial_runs(store)
        gate.touch()                        # the pool recovers
        again = runner.submit(small_case(cases=3), source="api", make_archive=text_archive)
        assert runner.wait_sync(again, WAIT_S)["status"] == "succeeded"


def test_a_finish_task_killed_with_a_cancelled_run_is_run_again(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="vp_jupyter.runner")
    store = RunStore(tmp_path / "runs")
    gate = tmp_path / "gate"
    with Runner(store, max_workers=2, chunk_size=10_000) as runner:
        finished = runner.submit(small_case(cases=4), source="api",
                                 make_archive=functools.partial(gated_archive, str(gate)))
        wait_until(lambda: finishing(runner, finished), "the finish task to start")
        doomed = runner.submit(slow_case(), source="api")
        wait_until(lambda: runner.worker_pids(doomed), "the other run to start")
        assert runner.cancel(doomed)        # terminates every worker, the finish task's too
        assert runner.wait_sync(doomed, WAIT_S)["status"] == "cancelled"
        assert runner.cancel(finished) is False             # being finished: past cancelling
        gate.touch()
        assert runner.wait_sync(finished, WAIT_S)["status"] == "succeeded"
        assert zipfile.ZipFile(store.archive_path(finished)).namelist() == [f"output_{finished}.txt"]
        assert_no_partial_runs(store)
    assert f"run {finished}: it is finished again" in caplog.text


def test_shutting_down_while_a_run_is_being_finished_records_it_as_cancelled(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    runner = Runner(store, max_workers=1)
    run_id = runner.submit(small_case(cases=3), source="api",
                           make_archive=functools.partial(gated_archive, str(tmp_path / "gate")))
    wait_until(lambda: finishing(runner, run_id), "the finish task to start")
    runner.shutdown()
    record = store.get(run_id)
    assert (record.status, record.error) == ("cancelled", SHUT_DOWN)
    assert set(record.files) == {"meta.json", "case.json"}
    assert_no_partial_runs(store)


def test_a_run_over_its_time_limit_fails_and_the_pool_recovers(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    with Runner(store, max_workers=2, timeout_s=1.0) as runner:
        run_id = runner.submit(slow_case(20_000), source="api")     # several seconds on 2 workers
        status = runner.wait_sync(run_id, WAIT_S)
        assert status["status"] == "failed"
        assert status["error"] == "run exceeded the time limit of 1 s"
        assert status["progress"]["done"] < 20_000
        record = store.get(run_id)
        assert record.status == "failed" and "result.json" not in record.files
        assert_no_partial_runs(store)
        run_id = runner.submit(small_case(), source="api")
        assert runner.wait_sync(run_id, WAIT_S)["status"] == "succeeded"


def test_cancelling_queued_and_running_runs(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    with Runner(store, max_workers=1, chunk_size=10_000) as runner:
        running = runner.submit(slow_case(), source="ui", owner="fay")
        queued = runner.submit(small_case(), source="ui", owner="fay")
        other = runner.submit(small_case(), source="api", owner="gus")
        wait_until(lambda: runner.worker_pids(running), "the first run to start")
        assert runner.status(queued)["status"] == "queued"
        assert runner.active_count("fay") == 2 and runner.active_count() == 3
        listed = {s["id"]: s["status"] for s in runner.list(owner="fay")}
        assert listed == {running: "running", queued: "queued"}

        assert runner.cancel(queued) is True
        assert runner.wait_sync(queued, WAIT_S)["status"] == "cancelled"
        assert store.get(queued).status == "cancelled" and store.get(queued).started is None
        assert runner.cancel(running) is True
        status = runner.wait_sync(running, WAIT_S)
        assert status["status"] == "cancelled" and status["error"] == "the run was cancelled"
        assert runner.cancel(running) is False
        assert runner.wait_sync(other, WAIT_S)["status"] == "succeeded"
        assert [s["status"] for s in runner.list(owner="fay")] == ["cancelled", "cancelled"]
        assert runner.active_count() == 0
        assert_no_partial_runs(store)


def test_runs_killed_along_with_a_cancelled_run_are_run_again(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="vp_jupyter.runner")
    store = RunStore(tmp_path / "runs")
    with Runner(store, max_workers=2, chunk_size=10_000) as runner:
        doomed = runner.submit(slow_case(), source="api")
        bystander = runner.submit(slow_case(150), source="api")
        wait_until(lambda: runner.worker_pids(doomed) and runner.worker_pids(bystander), "both runs to start")
        assert runner.cancel(doomed)
        assert runner.wait_sync(doomed, WAIT_S)["status"] == "cancelled"
        status = runner.wait_sync(bystander, WAIT_S)
        assert status["status"] == "succeeded", status
        assert status["progress"] == {"done": 150, "total": 150}
        assert store.get(bystander).case_count == 150
    assert f"run {bystander}: cases 1-150 are run again" in caplog.text


EXIT_SCRIPT = """
import sys, time
sys.path.insert(0, {repo!r})
from vp_jupyter.runner import Runner
from vp_jupyter.store import RunStore

if __name__ == "__main__":
    runner = Runner(RunStore({root!r}), max_workers=1, chunk_size=100_000)
    run_id = runner.submit({case!r}, source="cli")
    deadline = time.monotonic() + {wait!r}
    while not runner.worker_pids(run_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    print(run_id, flush=True)
    # the script ends without runner.shutdown(): the exit must not wait for the run
"""


def test_exiting_without_shutdown_stops_the_workers_and_records_the_run(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    script = EXIT_SCRIPT.format(repo=str(Path(__file__).resolve().parents[1]), root=str(store.root),
                                case=slow_case(), wait=WAIT_S)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=4 * WAIT_S)
    assert done.returncode == 0, done.stderr
    record = store.get(done.stdout.strip())
    assert (record.status, record.error) == ("cancelled", SHUT_DOWN)    # not left to run to the end
    assert_no_partial_runs(store)


def test_a_case_error_in_the_worker_fails_the_run_with_its_message(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    error = CaseError(["case 2: the model refused this case"])
    with Runner(store, executor=ThreadExecutor(fail_with=error)) as runner:
        run_id = runner.submit(small_case(cases=3), source="cli")
        status = runner.wait_sync(run_id, WAIT_S)
    assert status["status"] == "failed" and status["error"] == str(error)
    assert store.get(run_id).error == str(error)
    assert_no_partial_runs(store)


class RefusingExecutor(ThreadExecutor):
    """Runs tasks in threads; the chunk report of the chunk starting at case 5 says the model refused its
    2nd case (the engine itself refuses nothing the input layer lets through)."""

    def submit(self, fn, /, *args) -> Future:
        if fn is not runner_module.run_chunk:
            return super().submit(fn, *args)

        def refusing(*call_args):
            meta = fn(*call_args)
            if call_args[4] == 1:           # chunk index 1: cases 5-8
                meta["refused"] = [1, "the model refused this case"]
            return meta
        return super().submit(refusing, *args)


def test_a_case_the_model_refuses_fails_the_run_without_finishing_it(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    with Runner(store, executor=RefusingExecutor(), chunk_size=4) as runner:
        run_id = runner.submit(small_case(cases=10), source="cli", make_archive=broken_archive)
        status = runner.wait_sync(run_id, WAIT_S)
    assert status["status"] == "failed"
    assert status["error"] == str(CaseError(["case 6: the model refused this case"]))
    assert set(store.get(run_id).files) == {"meta.json", "case.json"}
    assert_no_partial_runs(store)


def test_any_executor_with_the_small_interface_will_do(tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    case = small_case(cases=5)
    with Runner(store, executor=ThreadExecutor(), max_cases=5) as runner:
        run_id = runner.submit(case, source="cli")
        assert_same_tables(runner.result(run_id, timeout=WAIT_S), vp.run(case))
        with pytest.raises(CaseError, match="at most 5"):
            runner.submit(small_case(cases=6), source="cli")
        # a later runner on the same store answers from the store
    with Runner(store, executor=ThreadExecutor()) as later:
        assert later.status(run_id)["status"] == "succeeded"
        assert asyncio.run(later.wait(run_id))["progress"] == {"done": 5, "total": 5}
        assert_same_tables(later.result(run_id), vp.run(case))
        assert [s["id"] for s in later.list()] == [run_id]


# ------------------------------------------------------------------------------------------- pieces

def test_chunk_plan() -> None:
    assert plan_chunks(1, False, 2) == [(0, 1)]
    assert plan_chunks(20, True, 2) == [(0, 20)]
    assert plan_chunks(20, False, 2) == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 18), (18, 20)]
    big = plan_chunks(8760, False, 2)
    assert big[0] == (0, 250) and big[-1][1] == 8760 and len(big) == 36
    assert plan_chunks(5, False, 2, chunk_size=2) == [(0, 2), (2, 4), (4, 5)]


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_workers_run_at_a_lower_priority_than_this_process() -> None:
    executor = LocalProcessExecutor(max_workers=1)
    try:
        pid = executor.submit(runner_module._noop, 0.0).result(WAIT_S)
        mine = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, mine + runner_module.WORKER_NICENESS)
    finally:
        executor.shutdown()
    with pytest.raises(ValueError, match="niceness"):
        LocalProcessExecutor(niceness=-5)


def test_the_executor_never_forks() -> None:
    with pytest.raises(ValueError, match="fork"):
        LocalProcessExecutor(mp_context="fork")
    import multiprocessing
    with pytest.raises(ValueError, match="fork"):
        LocalProcessExecutor(mp_context=multiprocessing.get_context("fork"))


def test_the_case_the_finishing_worker_gets_equals_the_validated_reference_cases(reference_dir) -> None:
    """The FinalizeTask carries the runner's validated Case pickled (the worker does not validate it again):
    for every public reference case it comes back equal, engine cases and layer tables included."""
    store = RunStore(reference_dir / "unused-store")
    paths = sorted((reference_dir / "cases").glob("*.json"))
    assert len(paths) >= 10
    for path in paths:
        case = vp.Case.load(path)
        task = runner_module.FinalizeTask(store=store, run_id="x", case=case, source="api", owner="", created=0.0,
                                          started=None)
        got = pickle.loads(pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)).case
        assert got.to_dict(inline_files=True) == case.to_dict(inline_files=True), path.name
        assert got.engine_cases() == case.engine_cases(), path.name
        assert [got.layer_table(i) for i in range(len(case.case_times))] == \
            [case.layer_table(i) for i in range(len(case.case_times))], path.name


def test_a_run_keeps_the_series_file_as_it_was_read_when_it_was_submitted(runner, store, tmp_path) -> None:
    """The worker that finishes a run gets the Case read at submission: a series file changed meanwhile
    changes neither the stored case nor the results."""
    series = tmp_path / "flow.csv"
    series.write_text("0.04\n0.06\n0.05\n")
    case = small_case(cases=3, series_file=series)
    expected = vp.run(case, store=False)
    run_id = runner.submit(case, source="api")
    series.write_text("0.5\n0.5\n0.5\n")
    assert runner.wait_sync(run_id, WAIT_S)["status"] == "succeeded"
    stored = json.loads((store.root / run_id / "case.json").read_text())
    assert stored["timeseries"]["diffuser"]["effluent_flow"]["csv"] == "0.04\n0.06\n0.05\n"
    assert "file" not in stored["timeseries"]["diffuser"]["effluent_flow"]
    assert_same_tables(runner.result(run_id), expected)
