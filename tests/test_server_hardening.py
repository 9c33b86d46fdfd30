"""Hardening of the Jupyter server extension: bad, hostile or unlucky requests get a JSON answer that says
what happened, and none of them can hold up other users' requests.

Runs against the in-process server of pytest-jupyter, configured as in test_server.py (store in a temporary
folder, `http://localhost:3001` allowed). The memory bounds of oversized uploads and SIGTERM are measured on
a real server process in test_server_limits.py.
"""
from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import subprocess
import sys
import threading
import time

import pytest
from tornado.httpclient import HTTPClientError

from vp_jupyter import legacy
from vp_jupyter.server.validation import SMALL_REQUEST_BYTES

from builders import decode_twice, log_records, multipart
from test_server import (ALLOWED, API, APP, EXAMPLES, NO_TOKEN, example_request, jp_server_config,  # noqa: F401
                         login_cookie, needs_examples, post_run, series_case, small_case, store_root, wait_for)

NEAR_MISSES = ["http://localhost:3001.evil.example", "http://evil-localhost:3001", "http://localhost:3002",
               "https://localhost:3001", "http://localhost", "null"]


def vp_app_log(jp_serverapp) -> logging.Logger:
    """The logger of the Visual Plumes extension app running in `jp_serverapp`."""
    (app,) = jp_serverapp.extension_manager.extension_apps["vp_jupyter"]
    return app.log


def json_error(err: pytest.ExceptionInfo) -> dict:
    assert err.value.response.headers["Content-Type"].startswith("application/json")
    return json.loads(err.value.response.body)


async def fill_workers(jp_fetch, count: int = 2) -> list[str]:
    """Runs that keep the workers busy for a while (each 400 hourly cases), so new runs wait in the queue."""
    ids = []
    for _ in range(count):
        response = await jp_fetch(*API, "runs", method="POST", body=json.dumps(series_case(400)))
        ids.append(json.loads(response.body)["id"])
    return ids


async def drop_runs(jp_fetch, ids: list[str]) -> None:
    for run_id in ids:
        await jp_fetch(*API, "runs", run_id, method="DELETE", raise_error=False)


# -- 5. a UI run deleted while its run_analysis request waits --------------------------------------

@needs_examples
async def test_deleting_a_ui_run_while_its_request_waits_answers_the_legacy_error(jp_fetch) -> None:
    """Busy workers keep the UI run waiting; should it still finish before the DELETE lands (a race the test
    cannot rule out on a loaded machine), the attempt does not count and is repeated."""
    blockers = await fill_workers(jp_fetch, 4)
    body, content_type = example_request(1)
    seen: set[str] = set()
    try:
        for _attempt in range(5):
            waiting = asyncio.ensure_future(post_run(jp_fetch, body, content_type))
            deadline = time.monotonic() + 60
            while True:
                runs = json.loads((await jp_fetch(*API, "runs", params={"source": "ui"})).body)["runs"]
                new = [run["id"] for run in runs if run["id"] not in seen]
                if new:
                    break
                assert time.monotonic() < deadline, "the UI run never appeared"
                await asyncio.sleep(0.02)
            seen.update(new)
            assert (await jp_fetch(*API, "runs", new[0], method="DELETE")).code == 204
            response = await waiting
            assert response.code == 200
            payload = json.loads(response.body)
            if isinstance(payload, dict) and "removed before" not in payload["error"]:
                break                       # the DELETE came while the request waited
    finally:
        await drop_runs(jp_fetch, blockers)
    assert payload == {"success": False, "error": "Error running the model: the run was cancelled"}


# -- 7. a store that cannot be written -------------------------------------------------------------

@pytest.fixture
def read_only_store(store_root):
    """The server's store made read-only after the server started: a read-only bind mount as root (root
    ignores file modes), file modes otherwise."""
    store_root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [store_root, *store_root.rglob("*")] if path.is_dir()}
        for path in modes:
            path.chmod(0o555)
        yield store_root
        for path, mode in modes.items():
            path.chmod(mode)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(store_root), str(store_root)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"running as root, and a read-only bind mount is not possible here: {mounted.stderr.strip()}")
    try:
        yield store_root
    finally:
        subprocess.run(["umount", str(store_root)], check=True)


@needs_examples
async def test_a_read_only_store_gives_a_json_error_naming_the_store(jp_fetch, read_only_store) -> None:
    body, content_type = example_request(1)
    payload = json.loads((await post_run(jp_fetch, body, content_type)).body)
    assert payload["success"] is False
    assert str(read_only_store) in payload["error"] and "cannot be written" in payload["error"]
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*API, "runs", method="POST", body=json.dumps(small_case()))
    assert err.value.code == 503
    assert str(read_only_store) in json_error(err)["error"]


# -- 8. bodies that break parsers ------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", ["runs", "studies"])
async def test_deeply_nested_json_is_a_400(jp_fetch, endpoint) -> None:
    depth = 100_000
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*API, endpoint, method="POST", body='{"a":' * depth + "1" + "}" * depth)
    assert err.value.code == 400
    assert "nested too deeply" in json_error(err)["error"]


async def test_a_lone_surrogate_in_the_name_is_a_400_naming_name(jp_fetch) -> None:
    case = small_case()
    case["name"] = "\ud800"
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*API, "runs", method="POST", body=json.dumps(case))     # sent as the escape \ud800
    assert err.value.code == 400
    problems = json_error(err)["problems"]
    assert any(problem.startswith("name:") and "surrogate" in problem for problem in problems), problems


# -- 9. every answer under the mount is JSON -------------------------------------------------------

@pytest.mark.parametrize("method, parts, legacy_path", [
    ("POST", ("visualplumes", "app", "run_analysis/"), True),
    ("GET", ("visualplumes", "app", "no-such-page"), True),
    ("GET", ("visualplumes", "app", "download_zip_archive/"), True),
    ("GET", ("visualplumes", "api", "runs", "20261125T173724Z-" + "0" * 32, "bogus"), False),
    ("DELETE", ("visualplumes", "api", "nothing"), False),
    ("GET", ("visualplumes", "home"), False),
])
async def test_unknown_paths_under_the_mount_are_json_404(jp_fetch, method, parts, legacy_path) -> None:
    body = b"" if method == "POST" else None
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*parts, method=method, body=body, allow_nonstandard_methods=True)
    assert err.value.code == 404
    payload = json_error(err)
    assert "no such endpoint" in payload["error"]
    assert payload.get("success") is (False if legacy_path else None)
    if parts[-1] == "run_analysis/":
        assert "no trailing slash" in payload["error"]


@needs_examples
async def test_a_client_gone_mid_run_logs_one_line_not_a_traceback(jp_fetch, jp_serverapp, jp_http_port,
                                                                   jp_base_url, jp_auth_header) -> None:
    blockers = await fill_workers(jp_fetch, 4)
    body, content_type = example_request(1)
    head = (f"POST {jp_base_url}visualplumes/app/run_analysis HTTP/1.1\r\nHost: 127.0.0.1:{jp_http_port}\r\n"
            + "".join(f"{key}: {value}\r\n" for key, value in jp_auth_header.items())
            + f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n")
    with log_records(vp_app_log(jp_serverapp)) as log:
        try:        # a browser tab closed while its run waits behind the busy workers
            _, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
            writer.write(head.encode() + body)
            await writer.drain()
            writer.close()
            deadline = time.monotonic() + 60
            while True:
                runs = json.loads((await jp_fetch(*API, "runs", params={"source": "ui"})).body)["runs"]
                if runs:
                    break
                assert time.monotonic() < deadline, "the UI run never appeared"
                await asyncio.sleep(0.05)
        finally:
            await drop_runs(jp_fetch, blockers)
        assert (await wait_for(jp_fetch, runs[0]["id"]))["status"] == "succeeded"     # the run is kept
        deadline = time.monotonic() + 30
        while not any("went away" in message for message in log.messages()):
            assert time.monotonic() < deadline, "the server never noticed the closed connection"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)                 # time for a second line or a traceback, were there one
    assert len([m for m in log.messages() if "went away" in m]) == 1
    assert not [r for r in log.records if r.exc_info or "Traceback" in r.getMessage()
                or "StreamClosedError" in r.getMessage()]


# -- 10. legacy contract details -------------------------------------------------------------------

@needs_examples
@pytest.mark.parametrize("mangle", ["no boundary", "wrong boundary", "truncated"])
async def test_malformed_multipart_is_the_legacy_json_error(jp_fetch, mangle) -> None:
    body, content_type = example_request(1)
    if mangle == "no boundary":
        content_type = "multipart/form-data"
    elif mangle == "wrong boundary":
        content_type = "multipart/form-data; boundary=not-the-one-used"
    else:
        body = body[: len(body) // 2]
    response = await post_run(jp_fetch, body, content_type)
    assert response.code == 200
    payload = json.loads(response.body)
    assert payload["success"] is False and "not a valid multipart form" in payload["error"]


async def test_a_preflight_says_vary_origin_once(jp_fetch) -> None:
    headers = {**NO_TOKEN, "Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    response = await jp_fetch(*APP, "run_analysis", method="OPTIONS", headers=headers)
    vary = [value.strip().lower() for line in response.headers.get_list("Vary") for value in line.split(",")]
    assert vary.count("origin") == 1, response.headers.get_list("Vary")


# -- 11. a refusal the web UI (and the server's log) can explain -----------------------------------

@needs_examples
async def test_a_request_without_login_from_the_ui_can_read_what_to_do(jp_fetch, jp_serverapp) -> None:
    body, content_type = example_request(1)
    with log_records(vp_app_log(jp_serverapp)) as log, pytest.raises(HTTPClientError) as err:
        await post_run(jp_fetch, body, content_type, headers={**NO_TOKEN, "Origin": ALLOWED})
    assert err.value.code == 403
    headers = err.value.response.headers
    assert headers["Access-Control-Allow-Origin"] == ALLOWED and headers["Access-Control-Allow-Credentials"] == "true"
    payload = json_error(err)
    assert payload["success"] is False
    assert payload["error"].startswith("Not logged in to the Visual Plumes server: open http://")
    assert jp_serverapp.base_url in payload["error"] and "log in" in payload["error"]
    assert any("refused POST" in m and ALLOWED in m for m in log.messages())
    # the archive link of a logged-out browser: the same, with CORS headers for the allowed origin
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*APP, "download_zip_archive", "x", headers={**NO_TOKEN, "Origin": ALLOWED})
    assert err.value.code == 403 and err.value.response.headers["Access-Control-Allow-Origin"] == ALLOWED


@needs_examples
async def test_a_cookie_request_without_xsrf_from_the_same_origin_is_refused_with_the_reason(
        jp_fetch, jp_serverapp) -> None:
    cookie = await login_cookie(jp_fetch, jp_serverapp)
    with log_records(vp_app_log(jp_serverapp)) as log, pytest.raises(HTTPClientError) as err:
        await jp_fetch(*API, "runs", method="POST", body=json.dumps(small_case()),
                       headers={**NO_TOKEN, "Cookie": cookie})
    assert err.value.code == 403
    assert "xsrf" in json_error(err)["error"].lower()
    assert any("refused POST" in m and "xsrf" in m.lower() for m in log.messages())


# -- 13. the origin rule matches whole origins, never a prefix or a suffix ----------------------------

@needs_examples
@pytest.mark.parametrize("origin", NEAR_MISSES)
async def test_near_miss_origins_are_refused(jp_fetch, jp_serverapp, origin) -> None:
    cookie = await login_cookie(jp_fetch, jp_serverapp)
    body, content_type = example_request(1)
    with pytest.raises(HTTPClientError) as err:
        await post_run(jp_fetch, body, content_type, headers={**NO_TOKEN, "Cookie": cookie, "Origin": origin})
    assert err.value.code == 403
    assert "Access-Control-Allow-Origin" not in err.value.response.headers
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*APP, "run_analysis", method="OPTIONS",
                       headers={**NO_TOKEN, "Origin": origin, "Access-Control-Request-Method": "POST"})
    assert err.value.code == 403
    assert "Access-Control-Allow-Origin" not in err.value.response.headers
    # a token does not make a foreign page's request acceptable either
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*API, "runs", headers={"Origin": origin})
    assert err.value.code == 403


# -- 4. checking requests: bounded, and never in the way of other requests ---------------------------

def huge_layer_request(layers: int) -> tuple[bytes, str]:
    """Example 1 with `layers` ambient layers (a body far over SMALL_REQUEST_BYTES)."""
    data = json.loads((EXAMPLES / "example1.projectData.json").read_text())
    first = data["ambientProfileData"][0]["data"][0]
    rows = [{**first, "id": i, "depth_or_height": f"{50.0 * i / layers:.4f}"} for i in range(layers)]
    data["ambientProfileData"][0]["data"] = rows
    text = json.dumps(data)
    assert len(text) > SMALL_REQUEST_BYTES
    return multipart({"projectData": text})


@pytest.fixture
def slow_checks(monkeypatch):
    """Checking a large legacy request takes until the test releases it (as a very large case would):
    the checks of such requests stay busy while the test watches what else the server still does."""
    release = threading.Event()
    started: list[int] = []
    real = legacy.parse_run_request

    def parse(form, files, **kwargs):
        if len(form.get("projectData", "")) > SMALL_REQUEST_BYTES:
            started.append(1)
            release.wait(120)
        return real(form, files, **kwargs)

    monkeypatch.setattr(legacy, "parse_run_request", parse)
    yield release, started
    release.set()


@needs_examples
@pytest.mark.timeout(300)
async def test_a_plain_run_completes_while_huge_posts_are_being_checked(jp_fetch, slow_checks) -> None:
    release, started = slow_checks
    body, content_type = huge_layer_request(1000)
    huge = [asyncio.ensure_future(post_run(jp_fetch, body, content_type)) for _ in range(6)]
    deadline = time.monotonic() + 60
    while not started:
        assert time.monotonic() < deadline, "the huge posts never reached their checks"
        await asyncio.sleep(0.05)
    plain_body, plain_type = example_request(1)
    plain = await asyncio.wait_for(post_run(jp_fetch, plain_body, plain_type), 120)
    assert decode_twice(plain.body)["success"] is True
    assert not any(task.done() for task in huge), "the huge posts were meant to be still in their checks"
    release.set()
    for response in await asyncio.gather(*huge):
        assert response.code == 200 and json.loads(response.body)         # each one answered


@needs_examples
async def test_one_user_cannot_queue_more_checks_than_runs(jp_fetch, jp_serverapp, slow_checks) -> None:
    release, started = slow_checks
    jp_serverapp.web_app.settings["vp_jupyter"].max_concurrent_runs_per_user = 2
    body, content_type = huge_layer_request(1000)
    huge = [asyncio.ensure_future(post_run(jp_fetch, body, content_type)) for _ in range(2)]
    deadline = time.monotonic() + 60
    while len(started) < 1 or jp_serverapp.web_app.settings["vp_jupyter"].validator.pending(getpass.getuser()) < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    third = json.loads((await post_run(jp_fetch, body, content_type)).body)
    assert third["success"] is False and "try again" in third["error"]
    release.set()
    await asyncio.gather(*huge)


def test_checks_in_progress_do_not_hold_up_the_end_of_the_process() -> None:
    script = (
        "import asyncio, threading\n"
        "from vp_jupyter.server.validation import Validator\n"
        "async def main():\n"
        "    validator = Validator()\n"
        "    never = threading.Event()\n"
        "    for size in (10, 10**7):\n"
        "        asyncio.ensure_future(validator.run(never.wait, size))\n"
        "    await asyncio.sleep(0.5)\n"
        "asyncio.run(main())\n"
        "print('exited')\n")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "exited" in done.stdout, done.stderr
    assert time.monotonic() - start < 60


async def test_the_validation_threads_end_with_the_server(jp_fetch, jp_serverapp) -> None:
    app = jp_serverapp.web_app.settings["vp_jupyter"]
    await jp_fetch(*API, "runs", method="POST", body=json.dumps(small_case()))       # starts the lanes
    threads = app.validator.threads
    assert threads and all(thread.is_alive() and thread.daemon for thread in threads)
    await app.stop_extension()
    for thread in threads:
        thread.join(10)
    assert not [t for t in threads if t.is_alive()]
