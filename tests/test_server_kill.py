"""`kill -9` of a real `jupyter server` with runs in flight: nothing of it survives, and the next server on the
same store records the interrupted runs as failed and leaves no staging leftovers (issue 14, item 6)."""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from vp_jupyter.run_journal import INTERRUPTED
from vp_jupyter.store import RunStore

from builders import alive_processes, complete_case, free_port, start_jupyter, stop_process, wait_until

START_S = 120.0
WAIT_S = 120.0


class Server:
    """A `jupyter server` with the Visual Plumes extension on 127.0.0.1, its store in `store`."""

    def __init__(self, base: Path, store: Path, name: str):
        self.base, self.store = base, store
        config = base / "config"
        config.mkdir(exist_ok=True)
        (config / "jupyter_server_config.py").write_text(
            "c.ServerApp.jpserver_extensions = {'vp_jupyter': True}\n"
            "c.VisualPlumesApp.max_workers = 2\n")
        self.port, self.token = free_port(), uuid.uuid4().hex
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(base / f"runtime-{name}"),
               "VP_JUPYTER_STORE": str(store)}
        self.log_path = base / f"{name}.log"
        self.log = open(self.log_path, "wb")
        (base / "root").mkdir(exist_ok=True)
        self.process = start_jupyter(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             "--port-retries=0", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={base / 'root'}",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
            env=env, log=self.log, token=self.token, port=self.port, name="jupyter server", timeout=START_S)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


@pytest.mark.timeout(600)
def test_kill_9_of_the_server_leaves_no_process_and_the_next_server_records_the_runs(tmp_path) -> None:
    import psutil

    store_root = tmp_path / "store"
    first = Server(tmp_path, store_root, "first")
    try:
        slow = complete_case("interrupted", cases=12_000)     # seconds of work with the compiled loop
        slow["model"]["write_step_freq"] = 100
        ids = [first.call("POST", "/visualplumes/api/runs", slow)["id"] for _ in range(2)]
        wait_until(lambda: all(first.call("GET", f"/visualplumes/api/runs/{i}")["status"] == "running" for i in ids)
                   and first.call("GET", f"/visualplumes/api/runs/{ids[0]}")["progress"]["done"] > 0,
                   "both runs to be running", WAIT_S)
        staging = RunStore(store_root).staging
        assert {f"{i}.parts" for i in ids} <= {p.name for p in staging.iterdir()}      # chunk results exist
        family = [first.process.pid] + [p.pid for p in psutil.Process(first.process.pid).children(recursive=True)]
        assert len(family) >= 3                     # the server and its workers (and a resource tracker)
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(30)
        killed = time.monotonic()
        while alive_processes(family) and time.monotonic() - killed < 10.0:
            time.sleep(0.1)
        assert not alive_processes(family), f"processes of the killed server alive 10 s later: {alive_processes(family)}"
    finally:
        first.stop()

    second = Server(tmp_path, store_root, "second")
    try:
        runs = {run["id"]: run for run in second.call("GET", "/visualplumes/api/runs")["runs"]}
        for run_id in ids:
            assert (runs[run_id]["status"], runs[run_id]["error"]) == ("failed", INTERRUPTED)
            assert runs[run_id]["case_count"] == 12_000
            status = second.call("GET", f"/visualplumes/api/runs/{run_id}")
            assert (status["status"], status["error"]) == ("failed", INTERRUPTED)
        store = RunStore(store_root)
        assert not store.staging.exists() or list(store.staging.iterdir()) == []
        assert not store.in_flight_dir.exists()
    finally:
        second.stop()
