"""Visual Plumes on a real JupyterHub: the example deployment (`deploy/`) with test overrides.

A module fixture starts JupyterHub on 127.0.0.1 (free ports for the proxy's public and API ports, the hub
and the service) in a temporary folder, from `deploy/jupyterhub_config.py` plus a test config that loads
it: DummyAuthenticator with a password, SimpleLocalProcessSpawner with home folders in the temporary
folder, configurable-http-proxy (npm), the "visualplumes" managed service with a temporary store, users
alice and carol in the team group, bob outside it, hubadmin a hub admin.

People act as a browser or a script would: they log in through the hub's login form, create API tokens
with their login cookie, submit runs through the service's JSON API and its legacy endpoint, start a
single-user server and run `vp.Client().run(...)` inside a kernel of it (driven over the kernel's
websocket channel, so the kernel sees exactly what the spawner gives it).

Locally the module is skipped when JupyterHub or configurable-http-proxy is missing; in CI (`CI=true`,
where `.ci/run` installs them) it fails instead. Every process started (hub, proxy, service, single-user
servers, kernels, workers) carries a marker in its environment; the teardown stops the hub, then ends
any marked process still alive, also after a failure.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from builders import multipart, require, stream_upload

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
EXAMPLES = REPO.parent / "shared" / "spec" / "examples"
CASE_FILE = REPO / "vp_jupyter" / "examples" / "stratified_outfall.json"
HUB_START_S = 180.0          # hub, proxy and service up (a loaded 2-core machine: ~10 s normally)
SPAWN_S = 300.0              # a single-user server ready
RUN_S = 300.0                # one model run finished (the example case: under a second of model time)
PASSWORD = "vp-hub-" + uuid.uuid4().hex[:12]
SERVICE = "visualplumes"
TEAM = "team"
USERS = ("alice", "bob", "carol", "hubadmin")
ACCESS = f"access:services!service={SERVICE}"

pytestmark = pytest.mark.timeout(900)


def _missing() -> list[str]:
    missing = []
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        missing.append("the Python package jupyterhub (the `test` extra)")
    if not shutil.which("configurable-http-proxy"):
        missing.append("configurable-http-proxy on PATH (npm install -g configurable-http-proxy)")
    return missing


@pytest.fixture(scope="module")
def requirements() -> None:
    require("JupyterHub test", _missing())


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


# ---------------------------------------------------------------------------------------------------
# the hub


class Hub:
    """A running JupyterHub: its public URL, temporary folder, log, and HTTP helpers."""

    def __init__(self, url: str, base: Path, store: Path, log: Path, service_port: int):
        self.url, self.base, self.store, self.log = url, base, store, log
        self.service = f"{url}/services/{SERVICE}"                          # through the proxy
        self.service_direct = f"http://127.0.0.1:{service_port}/services/{SERVICE}/"   # what kernels get
        self.sessions: dict[str, object] = {}
        self.tokens: dict[str, str] = {}

    def log_tail(self, size: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-size:]

    def login(self, name: str, password: str = PASSWORD):
        """A browser's login: GET the form (sets the _xsrf cookie), POST it with the _xsrf field."""
        import requests

        session = requests.Session()
        form = session.get(f"{self.url}/hub/login", timeout=60)
        assert form.status_code == 200, form.text[:500]
        field = re.search(r'name="_xsrf"\s+value="([^"]+)"', form.text)
        assert field, "the login form carries an _xsrf field"
        response = session.post(f"{self.url}/hub/login", timeout=60, allow_redirects=False,
                                data={"username": name, "password": password, "_xsrf": field.group(1)})
        return session, response

    def session(self, name: str):
        """`name`'s logged-in browser session (logged in once)."""
        if name not in self.sessions:
            session, response = self.login(name)
            assert response.status_code == 302, f"login of {name}: {response.status_code} {response.text[:300]}"
            self.sessions[name] = session
        return self.sessions[name]

    def create_token(self, name: str, scopes: list[str], note: str) -> str:
        """What the hub's token page does: POST /hub/api/users/<name>/tokens with the login cookie."""
        session = self.session(name)
        session.get(f"{self.url}/hub/token", timeout=60)                       # the page sets _xsrf
        response = session.post(f"{self.url}/hub/api/users/{name}/tokens", timeout=60,
                                headers={"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/")},
                                json={"scopes": scopes, "note": note, "expires_in": 3600})
        assert response.status_code == 201, f"token for {name}: {response.status_code} {response.text[:300]}"
        return response.json()["token"]

    def token(self, name: str) -> str:
        """`name`'s script token: access to the service only."""
        if name not in self.tokens:
            self.tokens[name] = self.create_token(name, [ACCESS], "visualplumes scripts")
        return self.tokens[name]

    def call(self, method: str, url: str, token: str | None = None, **kwargs):
        import requests

        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"token {token}"
        return requests.request(method, url, headers=headers, timeout=kwargs.pop("timeout", 120),
                                allow_redirects=kwargs.pop("allow_redirects", False), **kwargs)

    def as_user(self, name: str, method: str, path: str, **kwargs):
        """A request of `name`'s script to the service (path under /services/visualplumes/)."""
        return self.call(method, f"{self.service}/{path}", self.token(name), **kwargs)


def _test_config(base: Path, ports: dict[str, int], store: Path, marker: str) -> str:
    """The test's jupyterhub_config.py: the example deployment, then the test's overrides."""
    service_config = base / "service_config.py"
    service_config.write_text(
        f"c = get_config()\n"
        f"load_subconfig({str(DEPLOY / 'visualplumes_service_config.py')!r})\n"
        f"c.VisualPlumesHubService.team_groups = [{TEAM!r}]\n"
        f"c.VisualPlumesHubService.max_workers = 2\n"
        f"c.VisualPlumesHubService.cookie_secret_file = {str(base / 'service_cookie_secret')!r}\n"
        f"c.VisualPlumesHubService.run_timeout = {RUN_S}\n")
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    return f"""\
import sys
c = get_config()
load_subconfig({str(DEPLOY / 'jupyterhub_config.py')!r})

# network: everything on 127.0.0.1, on free ports
c.JupyterHub.bind_url = "http://127.0.0.1:{ports['public']}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{ports['hub']}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{ports['proxy_api']}"
c.ConfigurableHTTPProxy.pid_file = {str(base / 'proxy.pid')!r}
c.JupyterHub.db_url = "sqlite:///{base / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(base / 'jupyterhub_cookie_secret')!r}
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

# people: alice and carol form the team, bob works alone, hubadmin administers the hub
c.Authenticator.allowed_users = {{"alice", "bob", "carol"}}
c.Authenticator.admin_users = {{"hubadmin"}}
c.JupyterHub.load_groups = {{{TEAM!r}: {{"users": ["alice", "carol"]}}}}

# single-user servers: the hub's own Python, home folders in the test folder, as the test's user
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(base / 'homes' / '{username}')!r}
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.args = {['--allow-root'] if is_root else []!r}
c.Spawner.default_url = "/tree"
c.Spawner.start_timeout = {int(SPAWN_S)}
c.Spawner.http_timeout = {int(SPAWN_S)}
c.Spawner.environment["VP_HUB_TEST_MARKER"] = {marker!r}
c.Spawner.environment["VP_JUPYTER_SERVICE_URL"] = "http://127.0.0.1:{ports['service']}/services/{SERVICE}/"

# the service: a free port, the test's store and settings, as the test's user
service = next(s for s in c.JupyterHub.services if s["name"] == {SERVICE!r})
service["url"] = "http://127.0.0.1:{ports['service']}"
service["command"] = [sys.executable, "-m", "vp_jupyter.hub_service", {f"--config={service_config}"!r}]
service.pop("user", None)
service["cwd"] = {str(base)!r}
service["environment"].update({{"VP_JUPYTER_STORE": {str(store)!r}, "VP_HUB_TEST_MARKER": {marker!r}}})
service["timeout"] = {int(HUB_START_S)}
"""


def _marked_processes(marker: str) -> list[int]:
    """Processes whose environment carries `marker` (started by this module's hub), Linux only."""
    pids = []
    needle = f"VP_HUB_TEST_MARKER={marker}".encode()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                pids.append(int(entry.name))
        except (OSError, ValueError):
            continue
    return [pid for pid in pids if pid != os.getpid()]


def _end_processes(pids: list[int], grace_s: float = 20.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:               # a zombie is dead (its parent has not reaped it yet)
        return stat.read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _wait_for(what: str, check, timeout: float, hub_process=None, log: Path | None = None, every: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        if hub_process is not None and hub_process.poll() is not None:
            tail = log.read_text(errors="replace")[-6000:] if log else ""
            pytest.fail(f"JupyterHub exited with {hub_process.returncode} while waiting for {what}:\n{tail}",
                        pytrace=False)
        try:
            result = check()
            if result:
                return result
        except Exception as err:            # not up yet: connection refused, 503 from the proxy, ...
            last = err
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-6000:] if log else ""
            pytest.fail(f"{what}: not within {timeout:.0f} s (last error: {last!r})\n{tail}", pytrace=False)
        time.sleep(every)


@pytest.fixture(scope="module")
def hub(requirements, tmp_path_factory):
    """JupyterHub with the Visual Plumes service, started from the example deployment config."""
    import requests

    base = tmp_path_factory.mktemp("hub")
    (base / "homes").mkdir()
    store = base / "store"
    ports = dict(zip(("public", "proxy_api", "hub", "service"), _free_ports(4)))
    marker = uuid.uuid4().hex
    (base / "jupyterhub_config.py").write_text(_test_config(base, ports, store, marker))
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("JUPYTERHUB_", "JPY_", "VP_JUPYTER_", "CONFIGPROXY_"))}
    env.update({"VP_HUB_TRYOUT_PASSWORD": PASSWORD, "VP_HUB_TEST_MARKER": marker, "PYTHONUNBUFFERED": "1"})
    log = base / "jupyterhub.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(base / "jupyterhub_config.py"), "--debug"],
            cwd=base, env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    hub = Hub(f"http://127.0.0.1:{ports['public']}", base, store, log, ports["service"])
    try:
        _wait_for("the hub API through the proxy",
                  lambda: requests.get(f"{hub.url}/hub/api/", timeout=5).status_code == 200,
                  HUB_START_S, process, log)
        yield hub
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)        # the hub stops servers, service and proxy itself
            try:
                process.wait(90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        leftovers = _marked_processes(marker)
        if leftovers:
            _end_processes(leftovers)
        assert not [pid for pid in _marked_processes(marker) if _alive(pid)], "processes left behind"


@pytest.fixture(scope="module")
def service(hub):
    """The hub with its service answering: alice's token lists runs through the proxy."""
    hub.token("alice")
    _wait_for("the visualplumes service through the proxy",
              lambda: hub.as_user("alice", "GET", "api/runs", timeout=10).status_code == 200,
              HUB_START_S, log=hub.log, every=1.0)
    return hub


@pytest.fixture(scope="module")
def alice_server(hub):
    """alice's single-user server, started through the hub API with a token of hers: (URL, token)."""
    token = hub.create_token("alice", ["servers!user=alice", "read:users:name!user=alice",
                                       "access:servers!user=alice", ACCESS], "alice's server")
    response = hub.call("POST", f"{hub.url}/hub/api/users/alice/server", token)
    assert response.status_code in (201, 202), f"{response.status_code} {response.text[:500]}"

    def ready():
        user = hub.call("GET", f"{hub.url}/hub/api/users/alice", token, timeout=10).json()
        server = user.get("servers", {}).get("")
        return server if server and server.get("ready") else None

    server = _wait_for("alice's single-user server", ready, SPAWN_S, log=hub.log, every=1.0)
    return f"{hub.url}{server['url'].rstrip('/')}", token


def test_login_form_lets_allowed_users_in_with_the_password_only(hub) -> None:
    session, response = hub.login("bob", "not-the-password")
    assert response.status_code != 302 and "jupyterhub-session-id" not in session.cookies
    session, response = hub.login("mallory")                      # the right password, not an allowed user
    assert response.status_code != 302
    session, response = hub.login("bob")
    assert response.status_code == 302, response.text[:300]
    assert "jupyterhub-hub-login" in session.cookies.keys()
    me = session.get(f"{hub.url}/hub/api/user", timeout=60)
    assert me.status_code == 200 and me.json()["name"] == "bob"
    assert me.json()["groups"] == []
    assert hub.session("carol").get(f"{hub.url}/hub/api/user", timeout=60).json()["groups"] == [TEAM]


def test_single_user_server_loads_the_extension_under_user_name(hub, alice_server) -> None:
    server_url, token = alice_server
    assert server_url == f"{hub.url}/user/alice"
    response = hub.call("GET", f"{server_url}/visualplumes/api/runs", token)
    assert response.status_code == 200, response.text[:500]
    assert response.json() == {"runs": [], "limit": 50, "next": None}
    # a run through alice's own server lands in her own store (in her home), under her name
    case = json.loads(CASE_FILE.read_text())
    response = hub.call("POST", f"{server_url}/visualplumes/api/runs", token, json=case)
    assert response.status_code == 202, response.text[:500]
    run_id = response.json()["id"]
    status = _wait_for("the run on alice's server", lambda: _finished(
        hub.call("GET", f"{server_url}/visualplumes/api/runs/{run_id}", token, timeout=10).json()), RUN_S)
    assert status["status"] == "succeeded" and status["owner"] == "alice", status
    own_store = hub.base / "homes" / "alice" / ".local" / "share" / "jupyter" / "vp_jupyter" / "runs"
    assert json.loads((own_store / run_id / "meta.json").read_text())["owner"] == "alice"
    # without a token (and no login cookie) the server does not answer with runs
    anonymous = hub.call("GET", f"{server_url}/visualplumes/api/runs")
    assert anonymous.status_code in (302, 401, 403), anonymous.status_code
    # bob's token does not open alice's server
    bob = hub.create_token("bob", ["access:servers!user=bob", ACCESS], "bob's attempt")
    assert hub.call("GET", f"{server_url}/visualplumes/api/runs", bob).status_code in (302, 403, 404)


def _finished(status: dict) -> dict | None:
    return status if status.get("status") in ("succeeded", "failed", "cancelled") else None


# ---------------------------------------------------------------------------------------------------
# a kernel of a single-user server, driven over its websocket channel (Jupyter messaging protocol 5.3)


def _start_kernel(hub: Hub, server_url: str, token: str) -> str:
    response = hub.call("POST", f"{server_url}/api/kernels", token, json={"name": "python3"})
    assert response.status_code == 201, f"{response.status_code} {response.text[:500]}"
    return response.json()["id"]


async def _execute(server_url: str, token: str, kernel_id: str, code: str, timeout: float) -> dict:
    """Run `code` in the kernel: {"stdout", "errors", "reply"} once the kernel is idle again."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    session = uuid.uuid4().hex
    url = re.sub(r"^http", "ws", server_url) + f"/api/kernels/{kernel_id}/channels?session_id={session}"
    connection = await asyncio.wait_for(websocket_connect(
        HTTPRequest(url, headers={"Authorization": f"token {token}"}, connect_timeout=60, request_timeout=60)),
        timeout=90)
    msg_id = uuid.uuid4().hex
    connection.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "alice", "session": session,
                   "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False, "stop_on_error": True}}))
    stdout, errors, reply, idle = [], [], None, False
    deadline = time.monotonic() + timeout
    try:
        while reply is None or not idle:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the kernel did not finish within {timeout:.0f} s; output so far: "
                                   f"{''.join(stdout)[-2000:]!r}")
            raw = await asyncio.wait_for(connection.read_message(), timeout=remaining)
            if raw is None:
                raise ConnectionError(f"the kernel channel closed; output so far: {''.join(stdout)[-2000:]!r}")
            if isinstance(raw, bytes):          # binary frames carry buffers (widgets): not ours
                continue
            message = json.loads(raw)
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                stdout.append(content["text"])
            elif kind == "error":
                trace = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(content.get("traceback", [])))
                errors.append(f"{content['ename']}: {content['evalue']}\n{trace[-3000:]}")
            elif kind == "execute_reply":
                reply = content
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
    finally:
        connection.close()
    return {"stdout": "".join(stdout), "errors": errors, "reply": reply}


def _run_in_kernel(hub: Hub, server_url: str, token: str, code: str, timeout: float = RUN_S) -> dict:
    kernel_id = _start_kernel(hub, server_url, token)
    try:
        outcome = asyncio.run(_execute(server_url, token, kernel_id, code, timeout))
    finally:
        hub.call("DELETE", f"{server_url}/api/kernels/{kernel_id}", token)
    assert not outcome["errors"], "\n".join(outcome["errors"])
    assert outcome["reply"]["status"] == "ok", outcome["reply"]
    return outcome


def _printed(outcome: dict, tag: str) -> dict:
    """The JSON the kernel code printed after `tag`."""
    lines = [line for line in outcome["stdout"].splitlines() if line.startswith(tag)]
    assert len(lines) == 1, outcome["stdout"][-2000:]
    return json.loads(lines[0][len(tag):])


# ---------------------------------------------------------------------------------------------------
# runs through the service


def _case() -> dict:
    return json.loads(CASE_FILE.read_text())


def _legacy_request(number: int) -> tuple[bytes, str]:
    """The web UI's run_analysis request for spec example `number` (its projectData and CSV files)."""
    prefix = f"example{number}."
    files = {path.name[len(prefix):-len(".csv")]: path.read_bytes()
             for path in EXAMPLES.glob(f"{prefix}*-file.csv")}
    return multipart({"projectData": (EXAMPLES / f"{prefix}projectData.json").read_text()}, files)


def _legacy_output_id(response) -> str:
    assert response.status_code == 200, f"{response.status_code} {response.text[:500]}"
    decoded = json.loads(json.loads(response.text))           # the legacy body is double-encoded
    assert decoded["success"] is True and decoded["graphs"], str(decoded)[:500]
    return decoded["output_id"]


def _wait_run(hub: Hub, name: str, run_id: str) -> dict:
    status = _wait_for(f"run {run_id} of {name}", lambda: _finished(
        hub.as_user(name, "GET", f"api/runs/{run_id}", timeout=10).json()), RUN_S, every=0.5)
    assert status["status"] == "succeeded", status
    return status


def _stored_meta(hub: Hub, run_id: str) -> dict:
    return json.loads((hub.store / run_id / "meta.json").read_text())


@pytest.fixture(scope="module")
def api_runs(service) -> dict[str, str]:
    """alice's and bob's runs through the JSON API (POST api/runs): {owner: run id}."""
    runs = {}
    for name in ("alice", "bob"):
        response = service.as_user(name, "POST", "api/runs", json=_case())
        assert response.status_code == 202, f"{name}: {response.status_code} {response.text[:500]}"
        body = response.json()
        assert body["links"]["self"].endswith(f"/services/{SERVICE}/api/runs/{body['id']}"), body
        runs[name] = body["id"]
    for name, run_id in runs.items():
        _wait_run(service, name, run_id)
    return runs


@pytest.fixture(scope="module")
def legacy_runs(service) -> dict[str, str]:
    """alice's and bob's runs through the legacy endpoint (POST app/run_analysis): {owner: run id}."""
    if not EXAMPLES.is_dir():
        pytest.skip(f"spec examples not found at {EXAMPLES} (../shared beside the repository)")
    runs = {}
    for name, number in (("alice", 1), ("bob", 3)):
        body, content_type = _legacy_request(number)
        response = service.as_user(name, "POST", "app/run_analysis", data=body,
                                   headers={"Content-Type": content_type}, timeout=RUN_S)
        runs[name] = _legacy_output_id(response)
    return runs


@pytest.mark.parametrize("size, chunked", [(25_000_000, True), (200_000_000, False)],
                         ids=["chunked-25MB", "content-length-200MB"])
def test_oversized_uploads_through_the_proxy_get_the_services_json_answer(service, size, chunked) -> None:
    """The service refuses while the body streams and reads the rest, so the proxy relays its JSON answer
    (a connection closed mid-upload would become the proxy's HTML 503)."""
    token = {"Authorization": f"token {service.token('alice')}"}
    status, body = stream_upload(f"{service.service}/app/run_analysis", size, chunked=chunked, project="{}",
                                 headers=token)
    assert status == 200, body[:300]
    payload = json.loads(body)
    assert payload["success"] is False and "Upload too large" in payload["error"], payload
    status, body = stream_upload(f"{service.service}/api/runs", size, chunked=chunked, project="{}", headers=token)
    assert status == 413 and "exceeds the limit" in json.loads(body)["error"], body[:300]


def test_service_needs_a_hub_identity_with_its_access_scope(service) -> None:
    anonymous = service.call("GET", f"{service.service}/api/runs")
    assert anonymous.status_code == 401 and anonymous.json()["status"] == 401, anonymous.text[:300]
    forged = service.call("GET", f"{service.service}/api/runs", "not-a-token-" + uuid.uuid4().hex)
    assert forged.status_code in (401, 403), forged.status_code
    narrow = service.create_token("bob", ["read:users:name!user=bob"], "no service access")
    refused = service.call("GET", f"{service.service}/api/runs", narrow)
    assert refused.status_code == 403 and "access:services!service=visualplumes" in refused.json()["error"]
    legacy = service.call("POST", f"{service.service}/app/run_analysis", narrow, files={"projectData": "{}"})
    assert legacy.status_code == 403


def test_each_user_runs_through_the_json_api_and_the_legacy_endpoint(service, api_runs, legacy_runs) -> None:
    for name in ("alice", "bob"):
        status = service.as_user(name, "GET", f"api/runs/{api_runs[name]}").json()
        assert (status["owner"], status["source"], status["status"]) == (name, "api", "succeeded"), status
        status = service.as_user(name, "GET", f"api/runs/{legacy_runs[name]}").json()
        assert (status["owner"], status["source"], status["status"]) == (name, "ui", "succeeded"), status
        for run_id in (api_runs[name], legacy_runs[name]):        # in the service's one shared store
            assert _stored_meta(service, run_id)["owner"] == name
            assert (service.store / run_id / "plume.parquet").is_file()      # compact: the zip is built on request
    bob_cases = service.as_user("bob", "GET", f"api/runs/{legacy_runs['bob']}").json()["case_count"]
    assert bob_cases == 4                      # example 3: a time series of four cases from the CSV files


def _may_see(viewer: str, owner: str) -> bool:
    """The rules of the deployment: own runs, the team's runs (alice and carol), everything for hubadmin."""
    team = {"alice", "carol"}
    return viewer == owner or viewer == "hubadmin" or (viewer in team and owner in team)


def _check_visibility(hub: Hub, runs: dict[str, str]) -> None:
    listed = {viewer: {run["id"] for run in hub.as_user(viewer, "GET", "api/runs").json()["runs"]}
              for viewer in USERS}
    for owner, run_id in runs.items():
        for viewer in USERS:
            allowed = _may_see(viewer, owner)
            assert (run_id in listed[viewer]) == allowed, f"{viewer} listing {owner}'s run"
            for path in (f"api/runs/{run_id}", f"api/runs/{run_id}/result", f"api/runs/{run_id}/archive",
                         f"app/download_zip_archive/{run_id}"):
                response = hub.as_user(viewer, "GET", path)
                if allowed:
                    assert response.status_code == 200, f"{viewer} GET {owner}'s {path}: {response.status_code}"
                    if "archive" in path:
                        assert f"output_{run_id}.params.txt" in zipfile.ZipFile(io.BytesIO(response.content)).namelist()
                else:
                    assert response.status_code == 404, f"{viewer} GET {owner}'s {path}: {response.status_code}"
                    assert response.headers["Content-Type"].startswith("application/json")
                    assert owner not in response.text and "case_name" not in response.text


def test_users_see_their_own_and_their_teams_json_api_runs_only(service, api_runs) -> None:
    _check_visibility(service, api_runs)


def test_users_see_their_own_and_their_teams_legacy_runs_only(service, legacy_runs) -> None:
    _check_visibility(service, legacy_runs)


def test_team_members_see_but_only_the_owner_deletes(service) -> None:
    response = service.as_user("alice", "POST", "api/runs", json=_case())
    assert response.status_code == 202, response.text[:300]
    run_id = response.json()["id"]
    _wait_run(service, "alice", run_id)
    assert service.as_user("bob", "DELETE", f"api/runs/{run_id}").status_code == 404
    assert service.as_user("carol", "GET", f"api/runs/{run_id}").status_code == 200
    assert service.as_user("carol", "DELETE", f"api/runs/{run_id}").status_code in (403, 404)
    assert (service.store / run_id / "meta.json").is_file()
    assert service.as_user("alice", "DELETE", f"api/runs/{run_id}").status_code == 204
    assert not (service.store / run_id).exists()
    assert service.as_user("alice", "GET", f"api/runs/{run_id}").status_code == 404


def test_browser_logs_in_to_the_service_and_the_web_ui_posts_with_the_cookie(service) -> None:
    browser = service.session("carol")
    # a navigation to the service: the hub's OAuth (no confirmation page: oauth_no_confirm), then back
    page = browser.get(f"{service.service}/app/", timeout=60, headers={"Sec-Fetch-Mode": "navigate",
                                                                       "Accept": "text/html"})
    assert page.status_code == 200 and page.json() == {"message": "Success!"}, page.text[:300]
    assert [r.status_code for r in page.history] and page.url == f"{service.service}/app/"
    assert any("/hub/api/oauth2/authorize" in r.url for r in page.history)
    if not EXAMPLES.is_dir():
        pytest.skip(f"spec examples not found at {EXAMPLES}; the legacy POST part needs them")
    body, content_type = _legacy_request(1)
    # the web UI served from the hub's origin: fetch(..., credentials: "include"), no XSRF value
    posted = browser.post(f"{service.service}/app/run_analysis", data=body, timeout=RUN_S,
                          headers={"Content-Type": content_type, "Origin": service.url,
                                   "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"})
    run_id = _legacy_output_id(posted)
    assert _stored_meta(service, run_id)["owner"] == "carol"
    # a page of another site cannot use carol's cookie
    foreign = browser.post(f"{service.service}/app/run_analysis", data=body, timeout=60,
                           headers={"Content-Type": content_type, "Origin": "http://evil.example",
                                    "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"})
    assert foreign.status_code == 403


# what a notebook cell on the hub does (the kernel starts in alice's home, where case.json is)
NOTEBOOK_CODE = """
import json, os
import vp_jupyter as vp
client = vp.Client()
result = client.run("case.json")
mine = client.runs()
configured = os.environ.pop("VP_JUPYTER_SERVICE_URL")       # without it: asks the hub where the service is
discovered = vp.Client().url
os.environ["VP_JUPYTER_SERVICE_URL"] = configured
print("VP-RESULT " + json.dumps({
    "run_id": result.run_id, "client_url": client.url, "steps": int(result.summary()["steps"].iloc[0]),
    "dilution": float(result.plume["dilution"].iloc[-1]), "listed": result.run_id in set(mine["id"]),
    "own_store": os.environ.get("VP_JUPYTER_STORE"), "discovered_url": discovered,
}))
"""


def test_notebook_client_run_lands_in_the_shared_store(service, alice_server) -> None:
    import vp_jupyter as vp

    server_url, token = alice_server
    case = _case()
    (service.base / "homes" / "alice" / "case.json").write_text(json.dumps(case))
    outcome = _run_in_kernel(service, server_url, token, NOTEBOOK_CODE)
    printed = _printed(outcome, "VP-RESULT ")
    run_id = printed["run_id"]
    # the kernel found the service through the spawner's environment, and used its server's token
    assert printed["client_url"] == printed["discovered_url"] == service.service_direct
    assert printed["listed"] is True
    # the run is in the service's shared store, owned by alice, and not in alice's own store
    meta = _stored_meta(service, run_id)
    assert meta["owner"] == "alice" and meta["status"] == "succeeded", meta
    assert not (Path(printed["own_store"]) / run_id).exists()
    # the same numbers as a local run of the case
    local = vp.run(case, store=False)
    assert printed["steps"] == int(local.summary()["steps"].iloc[0])
    assert printed["dilution"] == pytest.approx(float(local.plume["dilution"].iloc[-1]), rel=1e-12)
    # the rules apply to it like to any run: carol (team) sees it, bob does not
    assert service.as_user("carol", "GET", f"api/runs/{run_id}").status_code == 200
    assert service.as_user("bob", "GET", f"api/runs/{run_id}").status_code == 404
