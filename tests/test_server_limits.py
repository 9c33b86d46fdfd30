"""Request limits of a real `jupyter server` with the extension, measured from outside: oversized uploads
(chunked and with Content-Length) are refused with the JSON answer while the body streams, and the whole
process tree (server and workers) stays far below the memory the body would need; SIGTERM stops a server
whose request checks are busy.

The server runs in a subprocess and the uploads are streamed from a generator, so neither the client's
copy of the body nor the test process counts in the measured memory.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from builders import free_port, start_jupyter, stop_process, stream_upload

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
EXAMPLE1 = SHARED / "spec" / "examples" / "example1.projectData.json"
MB = 1_000_000
PEAK_LIMIT = 600 * MB          # the bound for the process tree while a huge upload is refused
START_S = 90


class LiveServer:
    """`jupyter server` with the extension in a subprocess, on loopback, with its own store and token."""

    def __init__(self, base: Path, *settings: str):
        self.base, self.port, self.token = base, free_port(), uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "JUPYTER_CONFIG_DIR": str(base / "config"), "JUPYTER_RUNTIME_DIR": str(base / "rt"),
               "JUPYTER_DATA_DIR": str(base / "data"), "VP_JUPYTER_STORE": str(base / "store")}
        self.log = open(base / "server.log", "wb")
        self.process = start_jupyter(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
             "--port-retries=0", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={base}",
             "--ServerApp.jpserver_extensions={'vp_jupyter': True}", "--VisualPlumesApp.max_workers=2", *settings,
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
            env=env, log=self.log, token=self.token, port=self.port, name="jupyter server", timeout=START_S)

    def log_text(self) -> str:
        return (self.base / "server.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


class PeakMemory:
    """Peak resident memory of a process tree, from outside: every 20 ms the tree's processes are found and
    each one's own peak (VmHWM, kept by the kernel) is read; the sum of those peaks bounds the tree's."""

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for process in processes:
                try:
                    status = Path(f"/proc/{process.pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1]) * 1024
                        self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), peak)
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return sum(self.peaks.values())


def upload(server: LiveServer, path: str, size: int, chunked: bool, project: str) -> tuple[int, bytes]:
    return stream_upload(server.url + path, size, chunked=chunked, project=project,
                         headers={"Authorization": f"token {server.token}"})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("limits"))
    yield live
    live.stop()


def project_text() -> str:
    return EXAMPLE1.read_text() if EXAMPLE1.is_file() else json.dumps({"modelConfigType": "none"})


@pytest.mark.timeout(600)
@pytest.mark.parametrize("size, chunked, endpoint", [
    (25 * MB, True, "app/run_analysis"),
    (25 * MB, True, "api/runs"),
    (200 * MB, False, "app/run_analysis"),
    (200 * MB, False, "api/runs"),
], ids=["chunked-25MB-legacy", "chunked-25MB-api", "200MB-legacy", "200MB-api"])
def test_oversized_uploads_are_refused_while_streaming(server, size, chunked, endpoint) -> None:
    memory = PeakMemory(server.process.pid)
    try:
        status, body = upload(server, f"/visualplumes/{endpoint}", size, chunked, project_text())
    finally:
        peak = memory.stop()
    answer = json.loads(body)
    if endpoint == "app/run_analysis":      # legacy §4.1: a handled error is HTTP 200 with success false
        assert status == 200 and answer["success"] is False, answer
        assert "Upload too large" in answer["error"] and f"{size} bytes" in answer["error"]
    else:
        assert status == 413 and "exceeds the limit" in answer["error"], answer
    assert peak < PEAK_LIMIT, f"process tree peak {peak / MB:.0f} MB while refusing {size / MB:.0f} MB"
    assert "refused POST" in server.log_text()


def test_an_upload_within_the_limit_still_runs(server) -> None:
    if not EXAMPLE1.is_file():
        pytest.skip(f"spec examples not found at {EXAMPLE1}")
    status, body = upload(server, "/visualplumes/app/run_analysis", 200_000, True, project_text())
    assert status == 200
    assert json.loads(json.loads(body))["success"] is True      # double-encoded success body (§5.1)


def huge_layer_project(layers: int) -> str:
    """Example 1's projectData with `layers` ambient layers: seconds to minutes of checking."""
    data = json.loads(EXAMPLE1.read_text())
    first = data["ambientProfileData"][0]["data"][0]
    data["ambientProfileData"][0]["data"] = [{**first, "id": i, "depth_or_height": f"{50.0 * i / layers:.5f}"}
                                             for i in range(layers)]
    return json.dumps(data)


@pytest.mark.timeout(300)
def test_sigterm_stops_a_server_whose_request_checks_are_busy(tmp_path) -> None:
    if not EXAMPLE1.is_file():
        pytest.skip(f"spec examples not found at {EXAMPLE1}")
    live = LiveServer(tmp_path)
    try:
        project = huge_layer_project(10_000)      # the most layers a case may have
        posts = [threading.Thread(target=lambda: _ignore_errors(upload, live, "/visualplumes/app/run_analysis",
                                                                len(project) + 1000, True, project), daemon=True)
                 for _ in range(4)]
        for post in posts:
            post.start()
        time.sleep(3)                       # the bodies are in; their checks have started
        tree = [live.process, *psutil.Process(live.process.pid).children(recursive=True)]
        stopped = time.monotonic()
        live.process.send_signal(signal.SIGTERM)
        live.process.wait(60)
        gone, alive = psutil.wait_procs([p for p in tree if p.pid != live.process.pid], timeout=30)
        assert not alive, f"still alive after SIGTERM: {alive}"
        assert time.monotonic() - stopped < 45, "SIGTERM waited for the request checks"
    finally:
        live.stop()


def _ignore_errors(function, *args) -> None:
    try:
        function(*args)
    except OSError:                         # the server stopped while the request was open
        pass


def test_a_client_that_waits_for_100_continue_is_refused_before_it_sends_the_body(server) -> None:
    """curl and other clients ask `Expect: 100-continue` for big uploads: they get the refusal instead of
    the go-ahead and never send the 200 MB."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall((f"POST /visualplumes/app/run_analysis HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                      f"Authorization: token {server.token}\r\n"
                      "Content-Type: multipart/form-data; boundary=xyz\r\n"
                      f"Content-Length: {200 * MB}\r\nExpect: 100-continue\r\n\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"100 Continue" not in answer, head
    payload = json.loads(body)
    assert payload["success"] is False and "Upload too large" in payload["error"]
