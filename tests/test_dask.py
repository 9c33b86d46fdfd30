"""The Dask executor: the Runner, `vp.run` and `vp.sweep` on a dask.distributed cluster give the same
results as the local process pool; chunks spread over the workers, a tidal-buildup series stays one task;
progress and worker pids arrive while a run is on the cluster; a stopped run (time limit, cancel) ends
cleanly with a consistent store; the server settings build the executor or say what is wrong.

One LocalCluster of 2 worker processes with 1 thread each serves the whole module. Runners that need
their own settings get their own DaskExecutor on the shared client (a Runner takes over its executor's
listener). No timing is asserted except the run time limit itself (1 s on a run needing far longer).
"""
from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream

import vp_jupyter as vp
from vp_jupyter.dask_executor import DaskExecutor
from vp_jupyter.runner import WORKER_DIED, Runner, WorkerDied, run_chunk
from vp_jupyter.server.settings import VisualPlumesSettings
from vp_jupyter.store import RunStore

from builders import assert_no_partial_runs, assert_same_tables
from builders import wait_until as _wait_until

WAIT_S = 180.0          # upper bound for anything to happen on a loaded machine (never reached normally)


def series_case(cases: int, *, brooks: bool = False, tidal: bool = False, write_step_freq: int = 10) -> dict:
    """One port at 20 m in a two-layer ambient with hourly series of effluent flow and surface current
    speed; optionally the Brooks far field, or tidal buildup with a current that reverses every hour (so
    effluent comes back over the outfall and the buildup is not zero)."""
    values = {"diameter": 0.2, "vertical_angle": 10.0, "horizontal_angle": 0.0, "num_ports": 1,
              "acute_mixing_zone": 500.0, "isopleth": 0.0, "depth": 20.0, "salinity": 0.0,
              "temperature": 20.0, "concentration": 100.0}
    top = {"z": 0.0, "current_dir": 90.0, "salinity": 33.0, "temperature": 16.0, "bg_conc": 0.0,
           "decay_rate": 0.0}
    bottom = {"z": 25.0, "current_speed": 0.05, "salinity": 33.6, "temperature": 11.0}
    model = {"write_step_freq": write_step_freq}
    if brooks:
        model.update(brooks_far_field=True, ff_increment=400.0)
        for layer in (top, bottom):
            layer.update(ff_velocity=0.1, ff_dir=90.0, ff_diff_coeff=0.0004)
    flows = "".join(f"{0.03 + 0.01 * (i % 5):.2f}\n" for i in range(cases))
    speeds = "".join(f"{0.05 + 0.03 * (i % 4):.2f},0.05\n" for i in range(cases))
    series = {"start_time": 0, "end_time": cases - 1, "time_increment": 1, "units": "hr",
              "diffuser": {"effluent_flow": {"increment_hours": 1, "csv": flows}},
              "ambient": {"current_speed": {"increment_hours": 1, "depth_units": "m", "csv": "0,25\n" + speeds}}}
    if tidal:
        model.update(tidal_pollution_buildup=True, tpb_channel_width=50.0, tpb_segment_length=100.0,
                     tpb_upstream_dir=90.0, tpb_coast_bin=40, tpb_coast_concentration=0.0,
                     tpb_mixing_zone_ceil=2.0)
        turns = "".join("90,90\n" if i % 2 == 0 else "270,270\n" for i in range(cases))
        series["ambient"]["current_dir"] = {"increment_hours": 1, "depth_units": "m", "csv": "0,25\n" + turns}
    return {"name": "dask test", "model": model, "diffuser": {"values": values, "units": {}},
            "ambient": {"units": {}, "layers": [top, bottom]}, "timeseries": series}


# exactly the same tables (no float tolerance), statuses, memos and tidal buildup
assert_identical = functools.partial(assert_same_tables, exact=True)
wait_until = functools.partial(_wait_until, timeout=WAIT_S)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def client(cluster):
    with Client(cluster, set_as_default=False) as client:
        yield client


@pytest.fixture(scope="module")
def worker_pids(client) -> set[int]:
    return set(client.run(os.getpid).values())


@pytest.fixture(scope="module")
def executor(client):
    executor = DaskExecutor(client)
    yield executor
    executor.shutdown()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> RunStore:
    return RunStore(tmp_path_factory.mktemp("dask") / "runs")


@pytest.fixture(scope="module")
def dask_runner(store, executor):
    with Runner(store, executor) as runner:
        yield runner


@pytest.fixture(scope="module")
def local_runner(tmp_path_factory):
    with Runner(RunStore(tmp_path_factory.mktemp("local") / "runs"), max_workers=2) as runner:
        yield runner


# ------------------------------------------------------------------------------------------- runs

def test_an_independent_series_on_dask_equals_the_local_pool_and_spreads_over_the_workers(
        dask_runner, local_runner, executor, client, store) -> None:
    case = series_case(200, brooks=True)
    assert executor.max_workers == 2 == dask_runner.max_workers
    with get_task_stream(client) as stream:
        run_id = dask_runner.submit(case, source="api", owner="alice")
        result = dask_runner.result(run_id, timeout=WAIT_S)
    local_id = local_runner.submit(case, source="api", owner="alice")
    expected = local_runner.result(local_id, timeout=WAIT_S)

    assert result.case_count == 200 and expected.farfield.shape[0] > 0
    assert_identical(result, expected)
    assert_identical(store.load_result(run_id), expected)
    assert dask_runner.status(run_id)["status"] == local_runner.status(local_id)["status"] == "succeeded"
    assert dask_runner.status(run_id)["progress"] == {"done": 200, "total": 200}
    assert store.get(run_id).case_count == 200
    chunks = dask_runner.chunks(run_id)
    assert len(chunks) >= 4 and chunks[0][0] == 0 and chunks[-1][1] == 200
    # every chunk and the finish task ran on the cluster, the chunks on both workers
    ran = [(task["key"], task["worker"]) for task in stream.data]
    chunk_workers = {worker for key, worker in ran if key.startswith("vp-run_chunk-")}
    assert len([key for key, _ in ran if key.startswith("vp-run_chunk-")]) == len(chunks)
    assert len([key for key, _ in ran if key.startswith("vp-finalize_run-")]) == 1
    assert chunk_workers == set(client.nthreads())
    assert_no_partial_runs(store)


def test_a_tidal_buildup_series_on_dask_equals_the_local_pool_and_runs_as_one_task(
        dask_runner, local_runner, executor, monkeypatch) -> None:
    case = series_case(40, tidal=True)
    submitted = []
    real_submit = executor.submit

    def spy(fn, *args):
        submitted.append(fn.__name__)
        return real_submit(fn, *args)

    monkeypatch.setattr(executor, "submit", spy)
    run_id = dask_runner.submit(case, source="notebook")
    result = dask_runner.result(run_id, timeout=WAIT_S)
    monkeypatch.undo()
    expected = local_runner.result(local_runner.submit(case, source="notebook"), timeout=WAIT_S)

    assert submitted == ["run_coupled"]             # the series ran and was finished in one task
    assert dask_runner.chunks(run_id) == [(0, 40)]
    assert result.tidal.was_run and max(result.tidal.buildup) > 0
    assert_identical(result, expected)
    assert_identical(result, vp.run(case, store=False))


def test_progress_and_worker_pids_show_while_a_run_is_on_dask(client, store, worker_pids) -> None:
    total = 4000            # long enough for several progress reports even with the compiled step loop
    with Runner(store, DaskExecutor(client), chunk_size=10_000) as runner:     # one chunk: only the
        run_id = runner.submit(series_case(total, write_step_freq=100), source="api")   # worker reports move it
        seen, pids = [], set()
        while True:
            status = runner.status(run_id)
            seen.append(status["progress"]["done"])
            assert status["progress"]["total"] == total
            pids.update(runner.worker_pids(run_id))
            if status["status"] not in ("queued", "running"):
                break
            time.sleep(0.01)
    assert status["status"] == "succeeded", status
    assert seen == sorted(seen) and seen[-1] == total
    assert any(0 < done < total for done in seen)      # in-chunk progress from the worker's reports
    assert pids and pids <= worker_pids and os.getpid() not in pids


def test_a_run_over_its_time_limit_on_dask_is_stopped_and_recorded_as_failed(client, tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    executor = DaskExecutor(client)
    total = 20_000          # a coupled series (seconds): run and saved by one task, unless it is stopped
    with Runner(store, executor, timeout_s=1.0) as runner:
        run_id = runner.submit(series_case(total, tidal=True, write_step_freq=100), source="api")
        status = runner.wait_sync(run_id, WAIT_S)
        assert status["status"] == "failed"
        assert status["error"] == "run exceeded the time limit of 1 s"
        # the running task was stopped (not left to run and save its result), and it has ended
        assert executor.tasks_stopped == 1
        assert not any(client.processing().values())
        record = store.get(run_id)
        assert record.status == "failed" and "plume.parquet" not in record.files  # no result stored
        assert_no_partial_runs(store)
        # the executor still works
        run_id = runner.submit(series_case(3), source="api")
        assert runner.wait_sync(run_id, WAIT_S)["status"] == "succeeded"
    assert store.get(run_id).status == "succeeded"
    assert_no_partial_runs(store)


def test_cancelling_a_run_on_dask_stops_it_and_other_runs_still_succeed(client, tmp_path) -> None:
    store = RunStore(tmp_path / "runs")
    bystander_case = series_case(150, write_step_freq=100)
    executor = DaskExecutor(client)
    with Runner(store, executor, chunk_size=10_000) as runner:
        doomed = runner.submit(series_case(10_000, write_step_freq=100), source="ui", owner="fay")   # one chunk, seconds
        bystander = runner.submit(bystander_case, source="api", owner="gus")
        wait_until(lambda: runner.worker_pids(doomed) and runner.worker_pids(bystander), "both runs to start")
        assert runner.cancel(doomed) is True
        status = runner.wait_sync(doomed, WAIT_S)
        assert status["status"] == "cancelled" and status["error"] == "the run was cancelled"
        assert executor.tasks_stopped >= 1           # the doomed chunk (and the bystander's, run again)
        assert runner.wait_sync(bystander, WAIT_S)["status"] == "succeeded"
        assert_identical(runner.result(bystander), vp.run(bystander_case, store=False))
    assert store.get(doomed).status == "cancelled" and "plume.parquet" not in store.get(doomed).files
    assert not any(client.processing().values())
    assert_no_partial_runs(store)


# ------------------------------------------------------------------------------------------- Python API

def test_vp_run_and_sweep_with_a_dask_executor_equal_the_local_results(executor, worker_pids, tmp_path) -> None:
    case = series_case(30, brooks=True)
    calls = []
    result = vp.run(case, executor=executor, store=RunStore(tmp_path / "runs"),
                    progress=lambda done, total: calls.append((done, total)))
    assert_identical(result, vp.run(case, store=False))
    assert result.run_id and vp.load(result.run_id, store=tmp_path / "runs").case_count == 30
    assert calls[-1] == (30, 30) and all(total == 30 for _, total in calls)
    tidal = series_case(12, tidal=True)
    assert_identical(vp.run(tidal, executor=executor, store=False), vp.run(tidal, store=False))

    grid = {"diffuser.depth": [15.0, 20.0], "ambient.layers[0].salinity": [30.0, 33.0]}
    table = vp.sweep(series_case(5), grid, executor=executor, progress=False)
    with ThreadPoolExecutor(2) as threads:          # the same members run in this process
        expected = vp.sweep(series_case(5), grid, executor=threads, progress=False)
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    assert len(table) == 4 * 5
    assert set(table.attrs["worker_pids"]) <= worker_pids


def test_shutting_down_waits_for_or_stops_the_tasks_in_flight(cluster, client, tmp_path) -> None:
    own = DaskExecutor(cluster)                     # makes its own client: closed by shutdown
    slow = own.submit(time.sleep, 0.5)
    own.shutdown(wait=True)
    assert slow.done() and slow.result() is None
    assert own.client.status == "closed"
    with pytest.raises(RuntimeError, match="shut down"):
        own.submit(os.getpid)

    given = DaskExecutor(client)                    # left open by shutdown
    messages: list = []
    given.listener = messages.append                # as a Runner does
    cases = vp.Case.load(series_case(12_000, write_step_freq=100)).engine_cases()     # seconds of work
    chunk = given.submit(run_chunk, cases, 3600.0, 7, str(tmp_path), 0)
    wait_until(lambda: any(m[0] == "progress" for m in messages), "the chunk to report progress")
    assert messages[0][:2] == ("start", 7) and messages[0][2] in set(client.run(os.getpid).values())
    given.shutdown(wait=False)                      # stops it at its next report
    with pytest.raises(WorkerDied) as stopped:
        chunk.result(WAIT_S)
    assert stopped.value.intentional and given.tasks_stopped == 1
    assert list(tmp_path.iterdir()) == []          # it never wrote its chunk file
    assert client.status == "running"


def test_identical_tasks_are_not_deduplicated(executor) -> None:
    first, second = executor.submit(time.time_ns), executor.submit(time.time_ns)
    assert first.result(WAIT_S) != second.result(WAIT_S)


def test_a_task_that_killed_its_workers_fails_as_a_dead_worker(executor) -> None:
    from distributed.scheduler import KilledWorker

    killed = KilledWorker("vp-run_chunk-1", SimpleNamespace(address="tcp://w:1"), 3)
    error = executor._translate(killed, {4242})
    assert isinstance(error, WorkerDied) and error.pids == {4242} and not error.intentional
    assert str(error).startswith(WORKER_DIED)
    plain = ValueError("model bug")
    assert executor._translate(plain, set()) is plain


def test_bad_executor_arguments_are_named(client) -> None:
    with pytest.raises(TypeError, match="scheduler address, a distributed.Client or a cluster .got int"):
        DaskExecutor(42)
    with pytest.raises(ValueError, match=r"max_workers must be a whole number >= 1 or None \(got 0\)"):
        DaskExecutor(client, max_workers=0)
    with pytest.raises(ValueError, match=r"timeout must be .* \(got -1\)"):
        DaskExecutor(client, timeout=-1)
    with pytest.raises(ValueError, match=r"not the dashboard's web address \(got 'http://localhost:8787'\)"):
        DaskExecutor("http://localhost:8787")
    with pytest.raises(ValueError, match=r"address must be a Dask scheduler address .*\(got 'tcp://a b'\)"):
        DaskExecutor("tcp://a b")
    assert DaskExecutor(client, max_workers=5).max_workers == 5


def test_an_unreachable_scheduler_is_named() -> None:
    with socket.socket() as probe:                  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(ConnectionError, match=f"cannot connect to the Dask scheduler at '{address}'"):
        DaskExecutor(address, timeout=1)


def test_importing_the_module_does_not_import_distributed() -> None:
    code = ("import sys, vp_jupyter as vp, vp_jupyter.dask_executor as d; "
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules, 'eager import'; "
            "assert vp.DaskExecutor is d.DaskExecutor")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------------------- gateway

class FakeGatewayCluster:
    """Stands in for a dask-gateway cluster: it points at the test cluster's scheduler."""

    def __init__(self, address: str, options: dict):
        self.scheduler_address, self.options = address, options
        self.scaled_to, self.closed = None, False

    def scale(self, n: int) -> None:
        self.scaled_to = n

    def close(self) -> None:
        self.closed = True


def fake_gateway_module(scheduler_address: str, made: list) -> object:
    class Gateway:
        def __init__(self, address=None, **kwargs):
            self.address, self.kwargs = address, kwargs

        def new_cluster(self, **options):
            made.append(FakeGatewayCluster(scheduler_address, options))
            made[-1].gateway = self
            return made[-1]

        def connect(self, name):
            made.append(FakeGatewayCluster(scheduler_address, {"connected": name}))
            return made[-1]

    module = type(sys)("dask_gateway")
    module.Gateway = Gateway
    return module


def test_from_gateway_makes_scales_and_shuts_down_its_cluster(cluster, worker_pids, monkeypatch) -> None:
    made: list = []
    monkeypatch.setitem(sys.modules, "dask_gateway", fake_gateway_module(cluster.scheduler_address, made))
    executor = DaskExecutor.from_gateway("https://gateway.example", workers=3,
                                         cluster_options={"worker_memory": 4}, auth="jupyterhub")
    try:
        (made_cluster,) = made
        assert made_cluster.gateway.address == "https://gateway.example"
        assert made_cluster.gateway.kwargs == {"auth": "jupyterhub"}
        assert made_cluster.options == {"worker_memory": 4} and made_cluster.scaled_to == 3
        assert executor.max_workers == 2
        assert executor.submit(os.getpid).result(WAIT_S) in worker_pids
    finally:
        executor.shutdown()
    assert made_cluster.closed                      # made for the executor: shut down with it
    connected = DaskExecutor.from_gateway("https://gateway.example", cluster_name="shared")
    connected.shutdown()
    assert made[-1].options == {"connected": "shared"} and not made[-1].closed


def test_from_gateway_without_dask_gateway_names_the_package(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_gateway", None)      # as it is here: not installed
    with pytest.raises(ImportError, match=r"needs the dask-gateway package.*pip install dask-gateway"):
        DaskExecutor.from_gateway("https://gateway.example")


# ------------------------------------------------------------------------------------------- settings

def test_the_dask_setting_without_an_address_says_which_setting_is_missing() -> None:
    settings = VisualPlumesSettings(executor="dask")
    with pytest.raises(ValueError, match=r"executor 'dask' needs dask_scheduler_address .* or "
                                         r"dask_gateway_address; both are empty"):
        settings.make_executor()


def test_bad_dask_settings_are_named_with_their_value(monkeypatch) -> None:
    with pytest.raises(ValueError, match=r"dask_scheduler_address must be a Dask scheduler address .*"
                                         r"\(got 'http://scheduler:8787'\)"):
        VisualPlumesSettings(executor="dask", dask_scheduler_address="http://scheduler:8787").make_executor()
    with pytest.raises(ValueError, match=r"only one of dask_scheduler_address \(got 'tcp://a:1'\) and "
                                         r"dask_gateway_address \(got 'https://gw'\)"):
        VisualPlumesSettings(executor="dask", dask_scheduler_address="tcp://a:1",
                             dask_gateway_address="https://gw").make_executor()
    with pytest.raises(ValueError, match=r"dask_max_workers must be >= 0 \(got -2\)"):
        VisualPlumesSettings(executor="dask", dask_scheduler_address="tcp://a:1",
                             dask_max_workers=-2).make_executor()
    monkeypatch.setitem(sys.modules, "dask_gateway", None)
    with pytest.raises(ImportError, match=r"dask_gateway_address 'https://gw'.*dask-gateway package"):
        VisualPlumesSettings(executor="dask", dask_gateway_address="https://gw").make_executor()
    with pytest.raises(Exception, match=r"executor must be one of local, dask \(got 'slurm'\)"):
        VisualPlumesSettings(executor="slurm")


def test_the_dask_setting_builds_a_runner_on_the_cluster(cluster, worker_pids, tmp_path) -> None:
    settings = VisualPlumesSettings(executor="dask", dask_scheduler_address=cluster.scheduler_address,
                                    dask_max_workers=3, run_timeout=600.0)
    store = RunStore(tmp_path / "runs")
    runner = settings.make_runner(store)
    try:
        assert isinstance(runner.executor, DaskExecutor) and runner.max_workers == 3
        case = series_case(8)
        run_id = runner.submit(case, source="api")
        assert_identical(runner.result(run_id, timeout=WAIT_S), vp.run(case, store=False))
    finally:
        runner.shutdown()
    # the server's runner owns the executor it was built with: its Dask client closes with it
    assert runner.executor._closed and runner.executor._client.status == "closed"
    assert_no_partial_runs(store)
