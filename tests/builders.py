"""Helpers shared by several test modules (fixtures stay in conftest.py; a helper one module uses stays there).

This module owns:

- case builders: `complete_case` (every field given, optional hourly flow series and Brooks far field; used
  by test_runner and test_store) and `minimal_case` (a small valid case, model defaults; used by test_inputs
  and test_timeseries). Each test module binds its own case name, which some tests check.
- legacy wire helpers: `multipart` (a browser's FormData body), `stream_upload` (a large multipart body
  streamed to a server, never held by the client) and `decode_twice` (the double-encoded legacy success body).
- store and file helpers: `env_store` (the per-test store conftest sets in $VP_JUPYTER_STORE) and
  `write_case` (a case as a JSON file).
- `require(test, missing)`: skip a test whose tools are missing, but fail it in CI (`CI=true`), where
  `.ci/run` must have installed them; `jupyter_process`: a Jupyter server subprocess for the browser tests.
- `log_records(logger)`: the records one logger emits, caught at that logger (for a Jupyter app's own logger,
  which does not propagate to pytest's caplog).
- waiting and comparisons: `wait_until` (poll a condition), `assert_same_tables` (two Results have the
  same tables, memos and tidal buildup) and `assert_no_partial_runs` (a store holds only complete runs).

tests/ has no __init__.py: pytest (rootdir conftest, "prepend" import mode) puts tests/ on sys.path, so test
modules import this one as `from builders import ...`. Spawned worker processes get the parent's sys.path,
so a test module whose functions run in workers (test_runner) can still import this module there; keep it
free of test-time state and of imports beyond the package and its dependencies.
"""
from __future__ import annotations

import http.client
import io
import json
import logging
import os
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest

from vp_jupyter.store import RunStore

# ------------------------------------------------------------------------------------------- case builders


def complete_case(name: str, *, cases: int = 1, brooks: bool = False, series_file: Path | None = None) -> dict:
    """A 1-port diffuser at 20 m in a two-layer ambient, SI units, every field given; optionally a time series
    of `cases` hourly cases (effluent flow varying; read from `series_file` when given) and the Brooks far
    field."""
    values = {"diameter": 0.2, "vertical_angle": 10.0, "horizontal_angle": 0.0, "num_ports": 1,
              "acute_mixing_zone": 500.0, "isopleth": 0.0, "depth": 20.0, "effluent_flow": 0.05,
              "salinity": 0.0, "temperature": 20.0, "concentration": 100.0}
    top = {"z": 0.0, "current_speed": 0.12, "current_dir": 90.0, "salinity": 33.0, "temperature": 16.0,
           "bg_conc": 0.0, "decay_rate": 0.0}
    bottom = {"z": 25.0, "salinity": 33.6, "temperature": 11.0}
    model = {"write_step_freq": 5}
    if brooks:
        model.update(brooks_far_field=True, ff_increment=400.0)
        for layer in (top, bottom):
            layer.update(ff_velocity=0.1, ff_dir=90.0, ff_diff_coeff=0.0004)
    case = {"name": name, "model": model, "diffuser": {"values": values, "units": {}},
            "ambient": {"units": {}, "layers": [top, bottom]}}
    if cases > 1 or series_file is not None:
        del values["effluent_flow"]
        series = ({"file": str(series_file)} if series_file is not None
                  else {"csv": "".join(f"{0.03 + 0.01 * (i % 5):.2f}\n" for i in range(cases))})
        case["timeseries"] = {"start_time": 0, "end_time": cases - 1, "time_increment": 1, "units": "hr",
                              "diffuser": {"effluent_flow": {"increment_hours": 1, **series}}}
    return case


def minimal_case(name: str) -> dict:
    """A small valid single-port case in the JSON layout (SI units, concentration in ppm, model defaults)."""
    return {
        "name": name,
        "model": {},
        "diffuser": {"values": {"diameter": 0.1, "depth": 20, "effluent_flow": 0.1, "concentration": 100,
                                "temperature": 25, "salinity": 0, "vertical_angle": 10, "horizontal_angle": 0,
                                "acute_mixing_zone": 50},
                     "units": {"concentration": "ppm"}},
        "ambient": {"layers": [{"z": 0, "current_speed": 0.1, "current_dir": 0, "salinity": 33, "temperature": 15},
                               {"z": 30, "temperature": 12}]},
    }


# ---------------------------------------------------------------------------------------- legacy wire format


def multipart(form: dict[str, str], files: dict[str, bytes] | None = None) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser's FormData (the web UI's) builds it, and its content type."""
    boundary = "----vpTestBoundary" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in form.items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode() + b"\r\n")
    for name, body in (files or {}).items():
        out.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}.csv"\r\n'
                  f"Content-Type: text/csv\r\n\r\n".encode())
        out.write(body + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def stream_upload(url: str, size: int, *, chunked: bool, project: str, headers: dict | None = None,
                  timeout: float = 600) -> tuple[int, bytes]:
    """POST to `url` a multipart body of `size` bytes (the `projectData` part, then a CSV file part of an
    unknown field filling the rest), streamed from a generator so the client never holds it; chunked, or with
    Content-Length. (status, body) of the answer."""
    boundary = "vpUpload" + uuid.uuid4().hex
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="projectData"\r\n\r\n{project}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="notes-diffuser-file"; filename="notes.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def pieces():
        yield head
        left, row = size - len(head) - len(tail), b"0.05\n" * 13_000
        while left > 0:
            yield row[:left]
            left -= len(row)
        yield tail

    parsed = urlsplit(url)
    all_headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})}
    if not chunked:
        all_headers["Content-Length"] = str(size)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    try:
        connection.request("POST", parsed.path, body=pieces(), headers=all_headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def decode_twice(body: str | bytes):
    """The legacy success body decoded: JSON whose value is a string holding the JSON document."""
    inner = json.loads(body)
    assert isinstance(inner, str), "the legacy success body is a JSON string (double-encoded, legacy-http-api §5.1)"
    return json.loads(inner)


# ------------------------------------------------------------------------------------------ store and files


def env_store() -> RunStore:
    """The store in $VP_JUPYTER_STORE: the per-test default store (conftest's autouse fixture)."""
    return RunStore(os.environ["VP_JUPYTER_STORE"])


def write_case(folder: Path, case: dict, name: str = "case.json") -> Path:
    """`case` written as JSON to folder/name (the folder made if missing); returns the file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(case))
    return path


# --------------------------------------------------------------------------------- waiting and comparisons


def wait_until(condition, what: str, timeout: float):
    """The first truthy value of `condition()`, polled every 10 ms; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def alive_processes(pids) -> list[int]:
    """The processes of `pids` still running (zombies waiting to be reaped count as gone)."""
    import psutil

    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def assert_same_tables(result, expected, *, exact: bool = False) -> None:
    """The same plume, far-field, cases and summary tables, plume statuses, memos and tidal buildup.
    `exact`: no float tolerance in the tables; otherwise pandas' default comparison (left to pandas: an explicit
    check_exact=False would also let integer columns differ within the tolerance)."""
    exactness = {"check_exact": True} if exact else {}
    for name in ("plume", "farfield", "cases"):
        pd.testing.assert_frame_equal(getattr(result, name), getattr(expected, name), **exactness)
    pd.testing.assert_frame_equal(result.summary(), expected.summary(), **exactness)
    assert list(result.plume["status"]) == list(expected.plume["status"])
    assert result.memos == expected.memos
    assert result.tidal == expected.tidal


def assert_no_partial_runs(store: RunStore) -> None:
    """Nothing left in staging, and every run folder complete (meta.json and case.json)."""
    assert not store.staging.exists() or list(store.staging.iterdir()) == []
    for folder in store.root.iterdir():
        if not folder.name.startswith("."):           # .staging, the index
            assert (folder / "meta.json").is_file() and (folder / "case.json").is_file()


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_jupyter(command: "list[str]", *, env: dict, log: Any, token: str, port: int, name: str,
                  timeout: float, cwd: "Path | None" = None) -> "subprocess.Popen":
    """Start a Jupyter server command (output to the open file `log`) on 127.0.0.1:`port` and return its
    process once `api/status` answers; fail the test (after stopping it) if it exits or does not answer
    within `timeout` s."""
    import urllib.request

    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               cwd=cwd)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{_log_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5) as response:
                if response.status == 200:
                    return process
        except OSError:
            pass
        if time.monotonic() > deadline:
            stop_process(process)
            pytest.fail(f"{name} did not answer within {timeout:.0f} s:\n{_log_tail(log)}")
        time.sleep(0.3)


def stop_process(process: "subprocess.Popen") -> None:
    """Ask a process to stop (SIGTERM), kill it when it has not within 30 s, and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _log_tail(log: Any) -> str:
    log.flush()
    return Path(log.name).read_text(errors="replace")[-3000:]


@contextmanager
def jupyter_process(command: "list[str]", *, env: dict, log_path: Path, token: str, port: int, name: str,
                    timeout: float, cwd: "Path | None" = None):
    """Run a Jupyter server command (output to `log_path`) on 127.0.0.1:`port`; yield its URL once
    `api/status` answers (see `start_jupyter`); stop it after (it shuts its kernels down)."""
    with open(log_path, "wb") as log:
        process = start_jupyter(command, env=env, log=log, token=token, port=port, name=name, timeout=timeout,
                                cwd=cwd)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(process)


def require(test: str, missing: "list[str]") -> None:
    """Skip `test` (e.g. "JupyterHub test") when `missing` names something, except in CI, where it fails."""
    if missing:
        message = f"{test} needs " + ", ".join(missing) + " (.ci/run installs them)"
        if IN_CI:
            pytest.fail(message + "; in CI they must be installed", pytrace=False)
        pytest.skip(message)


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@contextmanager
def log_records(logger: logging.Logger):
    """Collect what `logger` emits while the block runs, with a handler on the logger itself.

    A traitlets app's logger (VisualPlumesApp, VisualPlumesHubService) does not propagate to the root, and
    pytest's caplog reaches such a logger only when it was already non-propagating as the test phase began,
    which depends on which tests ran before; a handler of our own does not."""
    handler = _Records()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
