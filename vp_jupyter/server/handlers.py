"""Tornado handlers: the endpoint logic, written once and served from two bases — thin: parse, authorise,
submit to the runner, respond.

* `ExtensionBase` (here): the Jupyter server extension, jupyter_server's `ExtensionHandlerMixin` +
  `APIHandler`, mounted at `<base_url>visualplumes/`. Its user owns every run and sees them all.
* `HubServiceBase` (`hub_handlers.py`): the JupyterHub-managed service, JupyterHub's `HubOAuthenticated` +
  a plain Tornado `RequestHandler`, mounted at `/services/visualplumes/`. Runs belong to hub users; who
  sees what is decided there (own runs, team groups, admins).

`handler_table(root, base, page_base)` mixes every endpoint's logic class with one base, and the home page
(`home.py`, the one HTML answer) with `page_base` (the extension's is a Jupyter page, not an API handler).
A base provides `app` (the store, the runner and the settings of `VisualPlumesSettings`), `owner` (the name
runs are recorded under), `mount_url` (URL path of the mount, no trailing slash), `server_kind` and
`await access()` (an `Access`: which runs the request may see and delete). A run the request may not see is answered exactly like a missing one (404),
so ids never leak.

Authentication and cross-origin rules: legacy-http-api.md §12 — every endpoint needs an identity (token
or login cookie); a browser request from another origin is accepted only from the configured allowed
origins (echoed with credentials, never `*`), and only the legacy run endpoint lets such an origin replace
the XSRF value (the hub base adds one more case, see `HubServiceBase.legacy_xsrf_exempt`). Errors are JSON,
never HTML; the legacy run endpoint's errors also carry `success: false`, so the web UI shows them.
"""
from __future__ import annotations

import asyncio
import getpass
import json
import os
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Callable
from urllib.parse import urlparse

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .. import legacy
from ..inputs import Case, CaseError, json_schema
from ..store import InvalidRunId, RunNotFound, check_run_id
from .home import HomePage
from .paths import URL_PREFIX

RUN_ID = r"([^/]+)"
PREFLIGHT_HEADERS = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with, x-xsrftoken"
PREFLIGHT_METHODS = "DELETE, GET, OPTIONS, POST"


@dataclass(frozen=True)
class Access:
    """Which runs one request may see and delete: its own (`user`), its team's (`team`, see only), or all."""
    user: str
    see_all: bool = False
    team: frozenset = frozenset()

    def may_see(self, owner: str) -> bool:
        return self.see_all or owner == self.user or owner in self.team

    def may_delete(self, owner: str) -> bool:
        return self.see_all or owner == self.user


class HandlerCommon:
    """What every handler does on either base: origin rules, CORS headers, size limit, JSON replies and
    errors, run ids, visibility. Mixed in before the Tornado base class."""

    auth_description = ""          # how clients authenticate, for the OpenAPI document

    # -- cross-origin rules (legacy-http-api.md §12) ------------------------------------------------
    def _request_origin(self) -> str | None:
        return self.request.headers.get("Origin")

    def _same_origin(self, origin: str) -> bool:
        return urlparse(origin.lower()).netloc == (self.request.headers.get("Host") or "").lower()

    def origin_allowed(self, origin: str | None) -> bool:
        return origin is None or self._same_origin(origin) or origin in self.app.allowed_origins

    def check_origin(self, origin_to_satisfy_tornado: str = "") -> bool:
        return self.origin_allowed(self._request_origin())

    def legacy_xsrf_exempt(self) -> bool:
        """May a cookie-authenticated POST to the legacy run endpoint skip the XSRF value? Yes when it
        comes from one of the allowed (other) origins: the Origin check replaces it (spec §12)."""
        origin = self._request_origin()
        return bool(origin and origin in self.app.allowed_origins and not self._same_origin(origin))

    def set_cors_headers(self) -> None:
        origin = self._request_origin()
        if origin and origin in self.app.allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.add_header("Vary", "Origin")

    async def prepare(self) -> None:
        origin = self._request_origin()
        if not self.origin_allowed(origin):
            raise web.HTTPError(403, f"origin {origin} is not allowed; add it to the allowed_origins setting")
        limit = self.app.max_upload_bytes
        length = self.request.headers.get("Content-Length")
        if self.request.method in ("POST", "PUT") and length and length.isdigit() and int(length) > limit:
            self.too_large = (int(length), limit)
        else:
            self.too_large = None
        ready = super().prepare()           # async in jupyter_server, plain in tornado
        if ready is not None:
            await ready

    @allow_unauthenticated
    def options(self, *args: Any) -> None:
        """CORS preflight: answered for allowed origins only (preflights carry no credentials)."""
        origin = self._request_origin()
        if not origin or origin not in self.app.allowed_origins:
            raise web.HTTPError(403, f"origin {origin} is not allowed")
        self.set_cors_headers()
        self.set_header("Access-Control-Allow-Methods", PREFLIGHT_METHODS)
        self.set_header("Access-Control-Allow-Headers", PREFLIGHT_HEADERS)
        self.set_header("Access-Control-Max-Age", "86400")
        self.set_status(200)
        self.finish()

    # -- replies -----------------------------------------------------------------------------------
    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, allow_nan=False))

    def error_payload(self, status_code: int, **kwargs: Any) -> dict[str, Any]:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and not isinstance(exc, web.HTTPError):
            message = "internal error; see the server log"
        return {"error": message, "status": status_code}

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.error_payload(status_code, **kwargs)))

    # -- runs and who may see them -----------------------------------------------------------------
    def run_id_or_404(self, text: str) -> str:
        try:
            return check_run_id(text)
        except InvalidRunId:
            raise web.HTTPError(404, "no such run") from None

    async def visible_status(self, run_id: str) -> dict:
        """The status of a run this request may see; 404 when there is no such run or it may not see it."""
        try:
            status = self.app.runner.status(self.run_id_or_404(run_id))
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None
        if not (await self.access()).may_see(status["owner"]):
            raise web.HTTPError(404, "no such run")
        return status

    def run_page_links(self, run_id: str) -> dict[str, str]:
        """The links of a run for a page: those of `run_links` and every other `api/runs/<id>/<name>`
        endpoint (e.g. a report)."""
        links = run_links(self, run_id)
        for path, _ in ENDPOINTS:
            head, _, name = path.rpartition("/")
            if head == f"api/runs/{RUN_ID}" and name not in links:
                links[name] = f"{self.mount_url}/api/runs/{run_id}/{name}"
        return links

    def over_user_limit(self) -> bool:
        return self.app.runner.active_count(self.owner) >= self.app.max_concurrent_runs_per_user


class ExtensionIdentity:
    """What both extension bases share: one user, who owns and sees every run."""

    server_kind = "Jupyter server extension"
    auth_description = ("a Jupyter token (`Authorization: token …`) or the login cookie with the XSRF value; "
                        "allowed origins may POST the legacy run without the XSRF value")

    @property
    def app(self):
        return self.extensionapp

    @property
    def owner(self) -> str:
        """Who the run belongs to: on a plain single-user server every authenticated client is the
        server's user (jupyter_server names token clients with random anonymous ids); behind another
        identity provider (e.g. JupyterHub) the identity's username."""
        from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

        if type(self.identity_provider) in (IdentityProvider, PasswordIdentityProvider):
            return getpass.getuser()
        user = self.current_user
        return getattr(user, "username", None) or str(user or "anonymous")

    @property
    def mount_url(self) -> str:
        return self.base_url.rstrip("/") + "/" + URL_PREFIX

    async def access(self) -> Access:
        return Access(self.owner, see_all=True)


class ExtensionBase(ExtensionIdentity, HandlerCommon, ExtensionHandlerMixin, APIHandler):
    """Base of the Jupyter server extension's JSON handlers."""


class ExtensionPageBase(ExtensionIdentity, HandlerCommon, ExtensionHandlerMixin, JupyterHandler):
    """Base of the extension's HTML page: a Jupyter page (a browser without a login goes to the login page)."""


# ---------------------------------------------------------------------------------------------------
# legacy endpoints (legacy-http-api.md §1, §5, §6)

class LegacyHealth:
    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(legacy.health_body())


class LegacyRun:
    """`run_analysis`: POST multipart → the double-encoded legacy body; GET → the health message."""

    def check_xsrf_cookie(self) -> None:
        if self.legacy_xsrf_exempt():
            return None
        return super().check_xsrf_cookie()

    def error_payload(self, status_code: int, **kwargs: Any) -> dict[str, Any]:
        # the web UI shows `error` of any JSON object with success false, whatever the HTTP status
        return {"success": False, **super().error_payload(status_code, **kwargs)}

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(legacy.health_body())

    def legacy_error(self, message: str) -> None:
        self.set_status(200)       # legacy §4.1: handled errors are HTTP 200 with a JSON object
        self.set_header("Content-Type", "application/json")
        self.finish(legacy.error_body(message))

    @web.authenticated
    async def post(self) -> None:
        if self.too_large:
            size, limit = self.too_large
            return self.legacy_error(f"Upload too large: {size} bytes (the limit is {limit} bytes).")
        form = {name: values[0].decode("utf-8", "replace")
                for name, values in self.request.body_arguments.items() if values}
        files = {name: parts[0].body for name, parts in self.request.files.items() if parts}
        try:
            case = await off_the_loop(partial(legacy.parse_run_request, form, files, max_cases=self.app.max_cases))
        except legacy.LegacyError as err:
            return self.legacy_error(str(err))
        if self.over_user_limit():
            return self.legacy_error(f"Too many runs in progress for {self.owner} "
                                     f"(the limit is {self.app.max_concurrent_runs_per_user}); try again shortly.")
        request = {"form": form, "files": {name: body.decode("utf-8", "replace") for name, body in files.items()}}
        runner = self.app.runner
        # the worker that finishes the run also makes the response body; it is sent from the store as it is
        run_id = runner.submit(case, source="ui", owner=self.owner, request=request,
                               make_archive=legacy.archive_bytes, make_response=legacy.success_body)
        status = await runner.wait(run_id)
        if status["status"] != "succeeded":
            return self.legacy_error(f"Error running the model: {status.get('error') or status['status']}")
        try:
            await send_file(self, lambda: runner.response_path(run_id), legacy.SUCCESS_CONTENT_TYPE)
        except RunNotFound:
            return self.legacy_error("Error running the model: the run was removed before its result was sent")


class LegacyDownload:
    """`download_zip_archive/<id>`: the run's legacy zip, as an attachment."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        await send_archive(self, status["id"])


async def off_the_loop(work: Callable[[], Any]) -> Any:
    """Run pure-Python work (parsing, validating a case) in a thread, so the event loop keeps answering."""
    return await asyncio.get_running_loop().run_in_executor(None, work)


async def send_file(handler: Any, locate: Callable[[], Any], content_type: str) -> None:
    """Send a stored file as the response body, read in chunks (RunNotFound when it is not there)."""
    try:
        stream = open(locate(), "rb")
    except FileNotFoundError:               # removed between the look-up and the open
        raise RunNotFound("the file was removed") from None
    with stream:
        handler.set_header("Content-Type", content_type)
        handler.set_header("Content-Length", str(os.fstat(stream.fileno()).st_size))
        while chunk := stream.read(256 * 1024):
            handler.write(chunk)
            await handler.flush()
    handler.finish()


async def send_archive(handler: Any, run_id: str) -> None:
    try:
        path = handler.app.store.archive_path(run_id)
    except RunNotFound:
        raise web.HTTPError(404, "no archive for this run") from None
    handler.set_header("Content-Disposition", f'attachment; filename="output_{run_id}.zip"')
    try:
        await send_file(handler, lambda: path, "application/zip")
    except RunNotFound:
        raise web.HTTPError(404, "no archive for this run") from None


# ---------------------------------------------------------------------------------------------------
# JSON API

def run_links(handler: Any, run_id: str) -> dict[str, str]:
    base = f"{handler.mount_url}/api/runs/{run_id}"
    return {"self": base, "result": base + "/result", "archive": base + "/archive"}


class Runs:
    @web.authenticated
    async def get(self) -> None:
        filters = {key: self.get_argument(key, None) for key in ("source", "owner", "status")}
        access = await self.access()
        runs = [run for run in self.app.runner.list(**filters) if access.may_see(run["owner"])]
        self.write_json({"runs": runs})

    @web.authenticated
    async def post(self) -> None:
        if self.too_large:
            size, limit = self.too_large
            raise web.HTTPError(413, f"request body of {size} bytes exceeds the limit of {limit} bytes")
        try:
            case = await off_the_loop(partial(load_case_body, self.request.body, self.app.max_cases))
        except CaseError as err:
            self.write_json({"error": "invalid case", "problems": list(err.problems), "status": 400}, 400)
            return
        if self.over_user_limit():
            raise web.HTTPError(429, f"{self.owner} already has {self.app.max_concurrent_runs_per_user} runs "
                                     "queued or running")
        run_id = self.app.runner.submit(case, source="api", owner=self.owner, make_archive=legacy.archive_bytes)
        self.set_header("Location", run_links(self, run_id)["self"])
        self.write_json({"id": run_id, "status": "queued", "links": run_links(self, run_id)}, 202)


def load_case_body(body: bytes, max_cases: int) -> Case:
    """The Case of a `POST api/runs` body (web.HTTPError 400 when it is not a JSON object)."""
    try:
        data = json.loads(body or b"null")
    except ValueError as err:
        raise web.HTTPError(400, f"body: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise web.HTTPError(400, "body: must be a case object (the case JSON format)")
    return Case.load(data, allow_files=False, max_cases=max_cases)


class Run:
    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        self.write_json({**status, "links": run_links(self, status["id"])})

    @web.authenticated
    async def delete(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        if not (await self.access()).may_delete(status["owner"]):
            raise web.HTTPError(403, f"run {status['id']} belongs to {status['owner']}; only they may delete it")
        try:
            self.app.runner.delete(status["id"])
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None
        self.set_status(204)
        self.finish()


class RunResult:
    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        if status["status"] != "succeeded":
            raise web.HTTPError(409, f"run is {status['status']}; a result exists only for succeeded runs")
        try:                                # result.json as the worker stored it: nothing rebuilt here
            await send_file(self, lambda: self.app.store.result_path(status["id"]), "application/json")
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None


class RunArchive:
    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        await send_archive(self, status["id"])


class Schema:
    @web.authenticated
    def get(self) -> None:
        self.write_json(json_schema())


class OpenAPI:
    @web.authenticated
    def get(self) -> None:
        from .openapi import openapi_document

        self.write_json(openapi_document(self.mount_url, self.auth_description))


# path under the mount -> endpoint logic
ENDPOINTS: list[tuple[str, type]] = [
    ("app/", LegacyHealth),
    ("app/run_analysis", LegacyRun),
    (f"app/download_zip_archive/{RUN_ID}", LegacyDownload),
    ("api/runs", Runs),
    (f"api/runs/{RUN_ID}", Run),
    (f"api/runs/{RUN_ID}/result", RunResult),
    (f"api/runs/{RUN_ID}/archive", RunArchive),
    ("api/schema", Schema),
    ("api/openapi.json", OpenAPI),
]


@lru_cache(maxsize=None)
def concrete_handler(logic: type, base: type) -> type:
    """The handler class of one endpoint on one base (the logic first, so it overrides the base)."""
    return type(f"{logic.__name__}Handler", (logic, base), {"__module__": base.__module__})


def handler_table(root: str, base: type = ExtensionBase, page_base: type = ExtensionPageBase) -> list[tuple[str, type]]:
    """Tornado routes under `root` (a URL path without trailing slash, e.g. `/visualplumes`): the home page
    at `root/` (on `page_base`) and every endpoint (on `base`)."""
    return [(f"{root}/?", concrete_handler(HomePage, page_base)),
            *((f"{root}/{path}", concrete_handler(logic, base)) for path, logic in ENDPOINTS)]
