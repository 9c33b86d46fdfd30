"""The JupyterHub service (`vp_jupyter.hub_service`) against a tiny fake hub API, and `vp.Client` against it.

No real hub: a Tornado app answers the few hub endpoints the service and the client call — `/hub/api/user`
(who owns a token: name, groups, admin, scopes), `/hub/api/groups/<g>` (members; only for the service's
token), `/hub/api/services/<name>` and `/hub/api/oauth2/token` (the end of a browser login). Both apps run
on free ports in one background event loop; the tests talk to them over HTTP like a browser, a script or
a notebook would. The real-hub integration test is tests/test_hub.py.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import threading
import time
import zipfile
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pandas as pd
import pytest

pytest.importorskip("jupyterhub", reason="the hub service needs JupyterHub (pip install 'vp-jupyter[hub]')")

from tornado import web                                          # noqa: E402
from tornado.httpclient import HTTPClient, HTTPRequest, HTTPResponse  # noqa: E402
from tornado.httpserver import HTTPServer                         # noqa: E402
from tornado.testing import bind_unused_port                      # noqa: E402
from traitlets.config import Config                               # noqa: E402

import vp_jupyter as vp                                           # noqa: E402
from builders import decode_twice, log_records, multipart, stream_upload       # noqa: E402
from conftest import reference_case                               # noqa: E402
from test_server import EXAMPLES, example_request, series_case, small_case  # noqa: E402
from vp_jupyter import legacy                                      # noqa: E402
from vp_jupyter.client import ServiceError                        # noqa: E402
from vp_jupyter.hub_service import VisualPlumesHubService         # noqa: E402
from vp_jupyter.store import RunNotFound, RunStore                # noqa: E402

needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"spec examples not found at {EXAMPLES}")
PREFIX = "/services/visualplumes/"
SERVICE_TOKEN = "service-secret-token"
CLIENT_ID = "service-visualplumes"
ACCESS = "access:services!service=visualplumes"
USER_AGENT = "vp-test-browser/1.0"


def user(name: str, groups=(), admin=False, scopes=(ACCESS,)) -> dict:
    return {"kind": "user", "name": name, "admin": admin, "groups": list(groups), "scopes": list(scopes)}


TOKENS = {                     # token -> the hub's whoami answer
    "alice-token": user("alice", ["team-a"]),
    "bob-token": user("bob", ["team-a", "choir"]),
    "carol-token": user("carol", ["team-b"]),
    "erin-token": user("erin", ["choir"]),
    "root-token": user("root", admin=True),
    "mallory-token": user("mallory", ["team-a"], scopes=["read:users:name!user=mallory"]),
    "alice-server-token": user("alice", ["team-a"], scopes=[ACCESS, "read:services!service=visualplumes"]),
}
GROUPS = {"team-a": ["alice", "bob", "mallory"], "team-b": ["carol"], "choir": ["bob", "erin"]}
OAUTH_CODES = {"alice-code": "alice-token"}


class FakeHubAPI(web.RequestHandler):
    """The hub endpoints the service and the client use (JSON, token in the Authorization header)."""

    def initialize(self, hub: "Deployment") -> None:
        self.hub = hub

    def token(self) -> str:
        return self.request.headers.get("Authorization", "").partition(" ")[2]

    def get(self, what: str) -> None:
        token = self.token()
        if what == "user":
            if token not in TOKENS:
                raise web.HTTPError(403)
            return self.write(TOKENS[token])
        kind, _, name = what.partition("/")
        if kind == "groups":
            self.hub.group_lookups.append(name)
            if token != SERVICE_TOKEN:
                raise web.HTTPError(403)
            if name not in GROUPS:
                raise web.HTTPError(404)
            return self.write({"kind": "group", "name": name, "users": GROUPS[name], "properties": {}})
        if kind == "services" and name == "visualplumes":
            scopes = TOKENS.get(token, {}).get("scopes", [])
            if "read:services!service=visualplumes" not in scopes:
                return self.write({"kind": "service", "name": name, "admin": False})
            return self.write({"kind": "service", "name": name, "admin": False, "url": self.hub.service_origin,
                               "prefix": PREFIX})
        raise web.HTTPError(404)

    def post(self, what: str) -> None:
        if what != "oauth2/token":
            raise web.HTTPError(404)
        form = {key: values[0].decode() for key, values in self.request.body_arguments.items()}
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != SERVICE_TOKEN:
            raise web.HTTPError(403)
        self.write({"access_token": OAUTH_CODES[form["code"]], "token_type": "Bearer"})


class Deployment:
    """The fake hub and the service on free ports, served by one event loop in a background thread."""

    def __init__(self, store_root: Path):
        self.group_lookups: list[str] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        hub_socket, hub_port = bind_unused_port()
        service_socket, service_port = bind_unused_port()
        self.hub_api = f"http://127.0.0.1:{hub_port}/hub/api"
        self.service_origin = f"http://127.0.0.1:{service_port}"
        self.url = self.service_origin + PREFIX
        self.store = RunStore(store_root)
        config = Config({
            "VisualPlumesHubService": {"store_root": str(store_root), "max_workers": 1, "service_prefix": PREFIX,
                                       "service_url": self.service_origin, "team_groups": ["team-a", "team-b"],
                                       "max_concurrent_runs_per_user": 20},
            "HubOAuth": {"api_url": self.hub_api, "api_token": SERVICE_TOKEN, "oauth_client_id": CLIENT_ID,
                         "access_scopes": [ACCESS]},
        })
        self.app = VisualPlumesHubService(config=config)
        self.app.initialize([])
        hub_app = web.Application([(r"/hub/api/(.+)", FakeHubAPI, {"hub": self})])

        async def serve() -> list[HTTPServer]:
            hub_server, service_server = HTTPServer(hub_app), HTTPServer(self.app.web_app, xheaders=True)
            hub_server.add_sockets([hub_socket])
            service_server.add_sockets([service_socket])
            return [hub_server, service_server]

        self.servers = asyncio.run_coroutine_threadsafe(serve(), self.loop).result()

    def close(self) -> None:
        async def stop() -> None:
            for server in self.servers:
                server.stop()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result()
        self.app.close_validator()
        self.app.runner.shutdown()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    # -- HTTP like a script or a browser -------------------------------------------------------------
    def fetch(self, path: str, method: str = "GET", token: str | None = None, body: bytes | None = None,
              headers: dict | None = None, cookies: dict | None = None) -> HTTPResponse:
        all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if token:
            all_headers["Authorization"] = f"token {token}"
        if cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        url = path if path.startswith("http") else self.url + path
        client = HTTPClient()
        try:
            return client.fetch(HTTPRequest(url, method=method, body=body, headers=all_headers,
                                            follow_redirects=False, request_timeout=120), raise_error=False)
        finally:
            client.close()

    def json(self, path: str, token: str, method: str = "GET", **kwargs) -> tuple[int, dict]:
        response = self.fetch(path, method=method, token=token, **kwargs)
        assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
        return response.code, json.loads(response.body) if response.body else {}

    def submit(self, token: str, case: dict | None = None) -> str:
        code, reply = self.json("api/runs", token, "POST", body=json.dumps(case or small_case()).encode())
        assert code == 202, reply
        return reply["id"]

    def wait(self, run_id: str, token: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            code, status = self.json(f"api/runs/{run_id}", token)
            assert code == 200, status
            if status["status"] not in ("queued", "running"):
                return status
            assert time.monotonic() < deadline, status
            time.sleep(0.1)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("JUPYTERHUB_") or name == "VP_JUPYTER_SERVICE_URL":
                patch.delenv(name)
        deployment = Deployment(tmp_path_factory.mktemp("hub_store"))
        try:
            yield deployment
        finally:
            deployment.close()


@pytest.fixture(scope="module")
def runs_by_owner(hub) -> dict[str, str]:
    """One finished API run per user, started with their token."""
    ids = {name: hub.submit(f"{name}-token") for name in ("alice", "bob", "carol", "erin", "root")}
    for name, run_id in ids.items():
        assert hub.wait(run_id, f"{name}-token")["status"] == "succeeded"
    return ids


# ---------------------------------------------------------------------------------------------------
# identity and visibility

def test_runs_record_the_hub_user_as_owner(hub, runs_by_owner) -> None:
    for name, run_id in runs_by_owner.items():
        assert hub.store.get(run_id).owner == name
        assert hub.store.get(run_id).source == "api"


@pytest.mark.parametrize("name, sees", [
    ("alice", {"alice", "bob"}),            # team-a: alice, bob (and mallory, who has no access)
    ("bob", {"alice", "bob"}),              # bob is also in "choir", which is not a team group
    ("carol", {"carol"}),                   # team-b: only carol
    ("erin", {"erin"}),                     # no team group
    ("root", {"alice", "bob", "carol", "erin", "root"}),   # admin
])
def test_listing_shows_own_team_and_admin_runs(hub, runs_by_owner, name, sees) -> None:
    code, reply = hub.json("api/runs", f"{name}-token")
    assert code == 200
    listed = {run["id"] for run in reply["runs"]}
    assert listed & set(runs_by_owner.values()) == {runs_by_owner[owner] for owner in sees}
    assert {run["owner"] for run in reply["runs"]} <= sees
    code, mine = hub.json(f"api/runs?{urlencode({'owner': name})}", f"{name}-token")
    assert {run["owner"] for run in mine["runs"]} == {name}


def test_a_run_you_may_not_see_is_404_everywhere(hub, runs_by_owner) -> None:
    carols = runs_by_owner["carol"]
    for path in (f"api/runs/{carols}", f"api/runs/{carols}/result", f"api/runs/{carols}/archive",
                 f"app/download_zip_archive/{carols}"):
        code, reply = hub.json(path, "alice-token")
        assert code == 404 and reply["error"] == "no such run", (path, reply)
    code, reply = hub.json(f"api/runs/{carols}", "alice-token", method="DELETE")
    assert code == 404
    assert hub.store.exists(carols)
    # the same answer as for an id that does not exist at all
    missing = carols[:-4] + ("0000" if not carols.endswith("0000") else "1111")
    assert hub.json(f"api/runs/{missing}", "alice-token") == (404, reply)


def test_team_members_see_but_do_not_delete_each_others_runs(hub, runs_by_owner) -> None:
    bobs = runs_by_owner["bob"]
    code, status = hub.json(f"api/runs/{bobs}", "alice-token")
    assert code == 200 and status["owner"] == "bob"
    assert status["links"]["result"] == f"{PREFIX}api/runs/{bobs}/result"
    assert hub.fetch(f"api/runs/{bobs}/result", token="alice-token").code == 200
    archive = hub.fetch(f"app/download_zip_archive/{bobs}", token="alice-token")
    assert archive.code == 200 and archive.headers["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(archive.body)).namelist()
    code, reply = hub.json(f"api/runs/{bobs}", "alice-token", method="DELETE")
    assert code == 403 and "bob" in reply["error"]
    assert hub.store.exists(bobs)


def test_owners_and_admins_delete(hub) -> None:
    own = hub.submit("erin-token")
    hub.wait(own, "erin-token")
    assert hub.fetch(f"api/runs/{own}", method="DELETE", token="erin-token").code == 204
    assert not hub.store.exists(own)
    other = hub.submit("carol-token")
    hub.wait(other, "carol-token")
    assert hub.fetch(f"api/runs/{other}", method="DELETE", token="root-token").code == 204
    assert not hub.store.exists(other)


def test_group_members_are_looked_up_with_the_service_token_and_cached(hub, runs_by_owner) -> None:
    hub.json("api/runs", "alice-token")
    before = list(hub.group_lookups)
    hub.json("api/runs", "alice-token")
    hub.json("api/runs", "bob-token")
    assert hub.group_lookups == before            # cached: no new look-ups
    assert set(before) <= {"team-a", "team-b"}    # never the groups that are not teams ("choir")


def test_admins_see_all_can_be_switched_off(hub, runs_by_owner) -> None:
    hub.app.admins_see_all = False
    try:
        code, reply = hub.json("api/runs", "root-token")
        assert {run["owner"] for run in reply["runs"]} == {"root"}
        assert hub.json(f"api/runs/{runs_by_owner['alice']}", "root-token")[0] == 404
    finally:
        hub.app.admins_see_all = True


# ---------------------------------------------------------------------------------------------------
# authentication: JSON errors for scripts, the hub's login for browsers

@pytest.mark.parametrize("path", ["api/runs", "app/", "app/run_analysis", "api/openapi.json"])
def test_requests_without_credentials_get_a_json_401(hub, path) -> None:
    response = hub.fetch(path)
    assert response.code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert "token" in json.loads(response.body)["error"]
    assert "Location" not in response.headers
    post = hub.fetch("api/runs", method="POST", body=json.dumps(small_case()).encode())
    assert post.code == 401 and json.loads(post.body)["error"]


def test_unknown_tokens_and_users_without_the_access_scope_are_refused_in_json(hub) -> None:
    code, reply = hub.json("api/runs", "no-such-token")
    assert code == 401 and "not accepted" in reply["error"]
    code, reply = hub.json("api/runs", "mallory-token")
    assert code == 403 and ACCESS in reply["error"]


def test_unknown_paths_are_json_404(hub) -> None:
    response = hub.fetch("nothing/here", token="alice-token")
    assert response.code == 404 and json.loads(response.body)["error"].startswith("no such endpoint")
    code, reply = hub.json("api/runs/not-a-run-id", "alice-token")
    assert code == 404 and reply["error"] == "no such run"


def test_schema_openapi_and_landing_page_use_the_service_prefix(hub) -> None:
    code, document = hub.json("api/openapi.json", "alice-token")
    assert code == 200 and document["servers"] == [{"url": PREFIX.rstrip("/")}]
    assert "access:services!service=visualplumes" in document["info"]["description"]
    assert "diffuser" in hub.json("api/schema", "alice-token")[1]["properties"]
    page = hub.fetch("", token="alice-token")       # the home page: HTML, with the service's own URLs
    assert page.code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.body.decode()
    assert "JupyterHub service" in text and "Logged in as <b id=\"user\">alice</b>" in text
    assert f'id="api-url">{hub.url}app</code>' in text


def browser_login(hub, path: str) -> dict[str, str]:
    """Visit `path` like a browser without a session, follow the hub's OAuth round trip (the hub's part
    answered by the fake: it approves with code alice-code) and return the cookies the service set."""
    first = hub.fetch(path, headers={"Sec-Fetch-Mode": "navigate", "Accept": "text/html"})
    assert first.code == 302
    location = urlparse(first.headers["Location"])
    assert location.path == "/hub/api/oauth2/authorize"
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID and query["redirect_uri"] == PREFIX + "oauth_callback"
    cookies = set_cookies(first)
    callback = hub.fetch(f"oauth_callback?{urlencode({'code': 'alice-code', 'state': query['state']})}",
                         cookies=cookies, headers={"Sec-Fetch-Mode": "navigate"})
    assert callback.code == 302 and callback.headers["Location"] == PREFIX + path
    cookies = {k: v for k, v in {**cookies, **set_cookies(callback)}.items() if v}
    assert CLIENT_ID in cookies and "_xsrf" in cookies
    return cookies


def set_cookies(response: HTTPResponse) -> dict[str, str]:
    jar = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


@needs_examples
def test_browser_login_then_the_unmodified_web_ui_runs_and_downloads(hub) -> None:
    cookies = browser_login(hub, "app/")
    assert hub.fetch("app/", cookies=cookies, headers={"Sec-Fetch-Mode": "navigate"}).code == 200
    body, content_type = example_request(1)
    # what the UI's fetch sends from a page on the same origin: the cookie, Accept, and the browser's headers
    ui_headers = {"Content-Type": content_type, "Accept": "application/json", "Origin": hub.service_origin,
                  "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors"}
    response = hub.fetch("app/run_analysis", method="POST", body=body, cookies=cookies, headers=ui_headers)
    assert response.code == 200, response.body
    decoded = decode_twice(response.body)
    assert decoded["success"] is True and decoded["graphs"]
    run_id = decoded["output_id"]
    assert hub.store.get(run_id).owner == "alice" and hub.store.get(run_id).source == "ui"
    download = hub.fetch(f"app/download_zip_archive/{run_id}", cookies=cookies,
                         headers={"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"})
    assert download.code == 200 and download.headers["Content-Type"] == "application/zip"
    assert download.headers["Content-Disposition"] == f'attachment; filename="output_{run_id}.zip"'
    # a browser that sends Origin but no Sec-Fetch headers: the Origin must be this host
    older = {k: v for k, v in ui_headers.items() if not k.startswith("Sec-Fetch")}
    response = hub.fetch("app/run_analysis", method="POST", body=body, cookies=cookies, headers=older)
    assert response.code == 200 and decode_twice(response.body)["success"] is True


def test_cross_site_cookie_posts_are_refused_in_json(hub) -> None:
    cookies = browser_login(hub, "api/runs")
    body, content_type = multipart({"projectData": "{}"})
    refused = [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
        {"Origin": hub.service_origin, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"},
        {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"},      # a form on a sibling site
        {},                                                                 # no browser statement at all
    ]
    for headers in refused:
        response = hub.fetch("app/run_analysis", method="POST", body=body, cookies=cookies,
                             headers={"Content-Type": content_type, **headers})
        assert response.code == 403, (headers, response.body)
        payload = json.loads(response.body)
        assert payload["success"] is False and payload["error"], payload     # the web UI shows the message
        assert "Access-Control-Allow-Origin" not in response.headers


def test_the_json_api_needs_the_xsrf_value_with_the_cookie(hub) -> None:
    cookies = browser_login(hub, "api/runs")
    same_origin = {"Origin": hub.service_origin, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors",
                   "Content-Type": "application/json"}
    body = json.dumps(small_case()).encode()
    response = hub.fetch("api/runs", method="POST", body=body, cookies=cookies, headers=same_origin)
    assert response.code == 403 and "_xsrf" in json.loads(response.body)["error"]
    response = hub.fetch("api/runs", method="POST", body=body, cookies=cookies,
                         headers={**same_origin, "X-XSRFToken": cookies["_xsrf"]})
    assert response.code == 202
    run_id = json.loads(response.body)["id"]
    assert hub.wait(run_id, "alice-token")["owner"] == "alice"


@needs_examples
def test_legacy_run_with_a_token_through_the_service(hub) -> None:
    body, content_type = example_request(3)
    response = hub.fetch("app/run_analysis", method="POST", body=body, token="carol-token",
                         headers={"Content-Type": content_type})
    decoded = decode_twice(response.body)
    run_id = decoded["output_id"]
    assert hub.store.get(run_id).owner == "carol"
    assert hub.fetch(f"app/download_zip_archive/{run_id}", token="carol-token").code == 200
    assert hub.fetch(f"app/download_zip_archive/{run_id}", token="alice-token").code == 404


# ---------------------------------------------------------------------------------------------------
# vp.Client

def assert_same_result(remote: "vp.Result", local: "vp.Result") -> None:
    pd.testing.assert_frame_equal(remote.plume, local.plume)
    pd.testing.assert_frame_equal(remote.farfield, local.farfield)
    pd.testing.assert_frame_equal(remote.cases, local.cases)
    pd.testing.assert_frame_equal(remote.summary(), local.summary())
    assert remote.memos == local.memos
    assert remote.text_report() == local.text_report()
    assert remote.case.to_dict() == local.case.to_dict()


@pytest.mark.parametrize("make_case", [small_case, lambda: series_case(3)], ids=["single", "time series"])
def test_client_run_returns_what_vp_run_returns(hub, make_case) -> None:
    client = vp.Client(hub.url, token="alice-token")
    seen: list[tuple[int, int]] = []
    remote = client.run(make_case(), progress=lambda done, total: seen.append((done, total)))
    local = vp.run(make_case(), store=False)
    assert_same_result(remote, local)
    assert remote.run_id and hub.store.get(remote.run_id).owner == "alice"
    assert seen[-1] == (local.case_count, local.case_count)


def test_client_run_shows_a_progress_bar_on_request(hub, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)      # as if tqdm were not installed: the text bar
    client = vp.Client(hub.url, token="alice-token")
    client.run(series_case(3))
    assert capsys.readouterr().err == ""                     # no bar unless asked for
    client.run(series_case(3), progress=True)
    err = capsys.readouterr().err
    assert "run: 3/3 cases" in err and err.endswith("\n")


def test_client_run_raises_what_vp_run_raises_when_the_run_fails(hub, monkeypatch) -> None:
    """A case the model refuses is a CaseError, as from vp.run (the engine refuses nothing the input layer
    lets through, so the run's final status is given); any other failure is RunFailed with its error."""
    from vp_jupyter.inputs import CaseError
    from vp_jupyter.runner import RunFailed

    client = vp.Client(hub.url, token="alice-token")
    refused = str(CaseError(["case 2: the model refused this case", "case 5: the model refused this case"]))
    monkeypatch.setattr(client, "wait", lambda run_id, **_: {"status": "failed", "error": refused})
    with pytest.raises(CaseError) as caught:
        client.run(small_case())
    assert caught.value.problems == ["case 2: the model refused this case", "case 5: the model refused this case"]
    monkeypatch.setattr(client, "wait", lambda run_id, **_: {"status": "failed", "error": "run exceeded the time limit of 1 s"})
    with pytest.raises(RunFailed, match="time limit"):
        client.run(small_case())


def test_client_run_of_a_reference_case_with_far_field(hub) -> None:
    path = reference_case("07_brooks_farfield_4_3")
    remote = vp.Client(hub.url, token="alice-token").run(path)
    assert_same_result(remote, vp.run(path, store=False))


def test_client_runs_load_and_archive(hub, runs_by_owner, tmp_path) -> None:
    client = vp.Client(hub.url, token="alice-token")
    frame = client.runs()
    vp.run(small_case())                                 # recorded in this test's own local store
    local = vp.runs()
    assert list(frame.columns) == list(local.columns) and (frame.dtypes == local.dtypes).all()
    assert set(frame.owner) <= {"alice", "bob"} and runs_by_owner["bob"] in set(frame.id)
    pd.testing.assert_frame_equal(vp.runs(client=client, owner="bob"), client.runs(owner="bob"))
    assert set(client.runs(owner="bob").owner) == {"bob"}
    loaded = vp.load(runs_by_owner["bob"], client=client)
    assert loaded.run_id == runs_by_owner["bob"]
    assert_same_result(loaded, hub.store.load_result(runs_by_owner["bob"]))
    target = client.download_archive(runs_by_owner["bob"], tmp_path)
    assert target.name == f"output_{runs_by_owner['bob']}.zip"
    bobs = runs_by_owner["bob"]                           # no stored zip: built from the stored result
    assert target.read_bytes() == legacy.archive_bytes(hub.store.load_result(bobs), bobs)


def test_client_errors_are_clear(hub, runs_by_owner) -> None:
    client = vp.Client(hub.url, token="alice-token")
    with pytest.raises(vp.CaseError) as err:             # checked before anything is sent
        client.run(small_case(diameter=-1))
    assert any("diameter" in problem for problem in err.value.problems)
    hub.app.max_cases = 2
    try:
        with pytest.raises(vp.CaseError) as err:         # refused by the server, problems passed on
            client.submit(series_case(5))
        assert any("at most 2" in problem for problem in err.value.problems)
    finally:
        hub.app.max_cases = 100_000
    with pytest.raises(RunNotFound, match="no such run"):
        client.load(runs_by_owner["carol"])
    with pytest.raises(ValueError, match="not a valid run id"):
        client.status("../etc/passwd")
    with pytest.raises(ServiceError) as refused:
        vp.Client(hub.url, token="mallory-token").runs()
    assert refused.value.status == 403 and ACCESS in str(refused.value)
    with pytest.raises(ServiceError) as unauthenticated:
        vp.Client(hub.url, token="no-such-token").runs()
    assert unauthenticated.value.status == 401
    with pytest.raises(ServiceError, match="cannot reach"):
        vp.Client("http://127.0.0.1:9/services/visualplumes/", token="x").runs()


def test_client_finds_the_service_from_the_hub_environment(hub, monkeypatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", hub.hub_api)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-server-token")
    client = vp.Client()
    assert client.url == hub.url and client.token == "alice-server-token"
    assert isinstance(client.runs(), pd.DataFrame)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "alice-token")       # no read:services: a clear error
    with pytest.raises(ValueError, match="VP_JUPYTER_SERVICE_URL"):
        vp.Client()
    monkeypatch.setenv("VP_JUPYTER_SERVICE_URL", hub.url)
    assert vp.Client().url == hub.url
    monkeypatch.delenv("VP_JUPYTER_SERVICE_URL")
    monkeypatch.delenv("JUPYTERHUB_API_URL")
    with pytest.raises(ValueError, match="VP_JUPYTER_SERVICE_URL"):
        vp.Client()
    with pytest.raises(ValueError, match="url must be an http"):
        vp.Client("ftp://example.org/")


def test_an_allowed_other_origin_gets_cors_headers_on_the_service_too(hub) -> None:
    cookies = browser_login(hub, "app/")
    body, content_type = multipart({"projectData": "{not json"})
    ui = "http://ui.example:3001"
    hub.app.allowed_origins = [ui]
    try:
        response = hub.fetch("app/run_analysis", method="POST", body=body, cookies=cookies,
                             headers={"Content-Type": content_type, "Origin": ui, "Sec-Fetch-Site": "cross-site"})
    finally:
        hub.app.allowed_origins = []
    assert response.code == 200                        # accepted: a legacy error naming the field
    payload = json.loads(response.body)
    assert payload["success"] is False and "projectData" in payload["error"]
    assert response.headers["Access-Control-Allow-Origin"] == ui
    assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_a_preflight_to_the_service_says_vary_origin_once(hub) -> None:
    ui = "http://ui.example:3001"
    hub.app.allowed_origins = [ui]
    try:
        response = hub.fetch("app/run_analysis", method="OPTIONS",
                             headers={"Origin": ui, "Access-Control-Request-Method": "POST"})
    finally:
        hub.app.allowed_origins = []
    assert response.code == 200 and response.headers["Access-Control-Allow-Origin"] == ui
    vary = [value.strip().lower() for line in response.headers.get_list("Vary") for value in line.split(",")]
    assert vary.count("origin") == 1, response.headers.get_list("Vary")


def test_a_logged_out_browser_on_an_allowed_origin_can_read_the_refusal(hub) -> None:
    body, content_type = multipart({"projectData": "{}"})
    ui = "http://ui.example:3001"
    hub.app.allowed_origins = [ui]
    try:
        with log_records(hub.app.log) as log:
            response = hub.fetch("app/run_analysis", method="POST", body=body,
                                 headers={"Content-Type": content_type, "Origin": ui, "Sec-Fetch-Site": "cross-site"})
    finally:
        hub.app.allowed_origins = []
    assert response.code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ui
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    payload = json.loads(response.body)
    assert payload["success"] is False and "log in" in payload["error"] and PREFIX in payload["error"]
    assert any("refused POST" in m and ui in m for m in log.messages())


@pytest.mark.parametrize("origin", ["http://ui.example:3001.evil.example", "http://evil-ui.example:3001",
                                    "http://ui.example:3002", "https://ui.example:3001", "http://ui.example",
                                    "null"])
def test_near_misses_of_an_allowed_origin_are_refused_on_the_service(hub, origin) -> None:
    cookies = browser_login(hub, "app/")
    body, content_type = multipart({"projectData": "{not json"})
    hub.app.allowed_origins = ["http://ui.example:3001"]
    try:
        response = hub.fetch("app/run_analysis", method="POST", body=body, cookies=cookies,
                             headers={"Content-Type": content_type, "Origin": origin, "Sec-Fetch-Site": "cross-site"})
        preflight = hub.fetch("app/run_analysis", method="OPTIONS",
                              headers={"Origin": origin, "Access-Control-Request-Method": "POST"})
    finally:
        hub.app.allowed_origins = []
    for refused in (response, preflight):
        assert refused.code == 403, (origin, refused.body)
        assert json.loads(refused.body)["error"]
        assert "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_oversized_uploads_to_the_service_get_its_json_answer(hub, chunked) -> None:
    limit = hub.app.max_upload_bytes
    hub.app.max_upload_bytes = 100_000
    try:
        token = {"Authorization": "token alice-token"}
        status, body = stream_upload(hub.url + "app/run_analysis", 5_000_000, chunked=chunked, project="{}",
                                     headers=token)
        assert status == 200 and json.loads(body)["success"] is False
        assert "Upload too large" in json.loads(body)["error"]
        status, body = stream_upload(hub.url + "api/runs", 5_000_000, chunked=chunked, project="{}", headers=token)
        assert status == 413 and "exceeds the limit of 100000 bytes" in json.loads(body)["error"]
    finally:
        hub.app.max_upload_bytes = limit


def test_command_line_and_config_file(tmp_path, monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith("JUPYTERHUB_"):
            monkeypatch.delenv(name)
    config = tmp_path / "vp_hub_config.py"
    config.write_text("c.VisualPlumesHubService.team_groups = ['team-a']\n"
                      "c.VisualPlumesHubService.max_workers = 3\n"
                      f"c.VisualPlumesSettings.store_root = {str(tmp_path / 'store')!r}\n")
    hub_args = ["--HubOAuth.api_token=t", "--HubOAuth.oauth_client_id=service-visualplumes"]
    app = VisualPlumesHubService()
    app.initialize([f"--config={config}", "--VisualPlumesHubService.max_workers=2", *hub_args])
    try:
        assert app.team_groups == ["team-a"] and app.max_workers == 2       # the command line wins
        assert app.store.root == tmp_path / "store"
        assert app.service_prefix == "/services/visualplumes/" and app.service_url == "http://127.0.0.1:10101"
        assert app.hub_auth.access_scopes == {ACCESS} and app.hub_auth.base_url == "/services/visualplumes/"
    finally:
        app.runner.shutdown()
    with pytest.raises(FileNotFoundError, match="no_such.py"):
        VisualPlumesHubService().initialize([f"--config={tmp_path / 'no_such.py'}", *hub_args])
    with pytest.raises(Exception, match="team_groups"):
        VisualPlumesHubService(team_groups=["ok", " "])
    with pytest.raises(Exception, match="service_url"):
        VisualPlumesHubService(service_url="127.0.0.1:8000")


@pytest.fixture
def jp_server_config(tmp_path):
    return Config({"ServerApp": {"jpserver_extensions": {"vp_jupyter": True}},
                   "VisualPlumesApp": {"store_root": str(tmp_path / "extension_store"), "max_workers": 1}})


async def test_client_also_talks_to_the_single_user_extension(jp_serverapp, http_server, jp_base_url,
                                                              jp_http_port) -> None:
    """The same client with a Jupyter token against `<base_url>visualplumes/` (the request runs in a thread:
    the client blocks, the server answers on this test's event loop)."""
    client = vp.Client(f"http://127.0.0.1:{jp_http_port}{jp_base_url}visualplumes/",
                       token=jp_serverapp.identity_provider.token)
    loop = asyncio.get_running_loop()
    remote = await loop.run_in_executor(None, client.run, small_case())
    assert_same_result(remote, vp.run(small_case(), store=False))
    frame = await loop.run_in_executor(None, client.runs)
    assert list(frame.id) == [remote.run_id]


def test_client_studies_run_on_the_service_and_come_back_as_studies(hub, tmp_path) -> None:
    client = vp.Client(hub.url, token="alice-token")
    study = client.uncertainty(small_case(), {"diffuser.effluent_flow": ["uniform", 0.03, 0.08]}, n=6, seed=1)
    local = vp.uncertainty(small_case(), {"diffuser.effluent_flow": ["uniform", 0.03, 0.08]}, n=6, seed=1,
                           max_workers=1, progress=False, store=False)
    assert isinstance(study, vp.Study) and study.run_id
    assert study.members["mz_dilution"].tolist() == local.members["mz_dilution"].tolist()
    record = hub.store.get(study.run_id)
    assert record.kind == "study" and record.owner == "alice"
    assert study.run_id in set(client.runs().id)
    assert isinstance(client.load(study.run_id), vp.Study)
    sobol = client.sensitivity(small_case(), {"diffuser.effluent_flow": [0.03, 0.08]}, n=4, seed=1)
    assert list(sobol.indices["input"]) == ["diffuser.effluent_flow"] and len(sobol.members) == 4 * 3
    page = client.report(study.run_id, tmp_path / "study.html")
    assert '<section id="study">' in page.read_text(encoding="utf-8")
    with pytest.raises(vp.CaseError) as err:
        client.uncertainty(small_case(), {"diffuser.effluent_flow": ["normal", 0.05]}, n=3)
    assert any("normal takes 2 number(s)" in p for p in err.value.problems)
