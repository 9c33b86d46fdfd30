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

Limits (README "Security and limits"): the run endpoints take their body as it streams in and refuse it as
soon as it passes `max_upload_bytes` (`RequestBody`), then parse and check it in the validation lanes of
`validation.py`, never on the event loop; any other path under the mount is a JSON 404 (`NoSuchEndpoint`).
"""
from __future__ import annotations

import asyncio
import getpass
import gzip
import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, Callable, Iterator
from urllib.parse import urlencode, urlparse

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import httputil, iostream, web

from .. import legacy
from ..inputs import Case, CaseError, json_schema
from ..store import DEFAULT_PAGE, LIST_FILTERS, MAX_PAGE, InvalidRunId, RunNotFound, check_run_id
from ..studies.jobs import jobs_of
from .home import HomePage
from .paths import URL_PREFIX
from .validation import ValidationBusy

RUN_ID = r"([^/]+)"
PREFLIGHT_HEADERS = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with, x-xsrftoken"
PREFLIGHT_METHODS = "DELETE, GET, OPTIONS, POST"
# A body over max_upload_bytes is read on and dropped up to this size, so the client (or the hub's proxy, which
# would otherwise answer with its own HTML error) receives the JSON refusal; beyond it the refusal is sent at
# once and the connection closed.
DRAIN_LIMIT_BYTES = 1024 ** 3


class RequestBody:
    """The body of a request, taken while it streams in: kept up to `limit` bytes; past that, only counted."""

    def __init__(self, limit: int, declared: int | None = None):
        self.limit = limit
        self.declared = declared or 0          # the Content-Length, if any
        self.received = 0
        self.chunks: list[bytes] = []

    @property
    def size(self) -> int:
        return max(self.declared, self.received)

    @property
    def too_large(self) -> bool:
        return self.size > self.limit

    def add(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.too_large:
            self.chunks.clear()
        else:
            self.chunks.append(chunk)

    def data(self) -> bytes:
        return b"".join(self.chunks)


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

    def visible_owners(self) -> frozenset | None:
        """The owners whose runs this request may see (None: everyone's)."""
        return None if self.see_all else frozenset({self.user}) | self.team


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
        """The CORS headers of an answer to an allowed origin (idempotent: `Vary: Origin` once)."""
        origin = self._request_origin()
        if origin and origin in self.app.allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            if "origin" not in self._headers.get("Vary", "").lower():
                self.add_header("Vary", "Origin")

    async def prepare(self) -> None:
        origin = self._request_origin()
        if not self.origin_allowed(origin):
            raise web.HTTPError(403, f"origin {origin} is not allowed; add it to the allowed_origins setting")
        ready = super().prepare()           # async in jupyter_server, plain in tornado
        if ready is not None:
            await ready
        if self.streams_body and not self._finished:
            self.start_body()

    # -- the request body: streamed, and refused as soon as it passes max_upload_bytes ---------------
    streams_body = False           # True on endpoints that take a body (see `concrete_handler`)
    body: RequestBody | None = None

    def start_body(self) -> None:
        """Called once the request is authenticated, before its body is read."""
        length = self.request.headers.get("Content-Length", "")
        self.body = RequestBody(self.app.max_upload_bytes, int(length) if length.isdigit() else None)
        # the limits are ours: tornado's own would answer with a bare 400 or a closed connection
        self.request.connection.set_max_body_size(max(self.body.size, DRAIN_LIMIT_BYTES) + 1)
        waits_to_send = self.request.headers.get("Expect", "").lower() == "100-continue"
        if self.body.size > DRAIN_LIMIT_BYTES or (self.body.too_large and waits_to_send):
            self.refuse_upload()         # before the client sent the body (or before reading a gigabyte of it)

    def data_received(self, chunk: bytes) -> None:
        if self.body is None or self._finished:
            return
        self.body.add(chunk)
        if self.body.size > DRAIN_LIMIT_BYTES:
            self.refuse_upload()

    def upload(self) -> bytes | None:
        """The request body, or None when it was refused as too large (the answer is sent)."""
        if self._finished:
            return None
        if self.body is None:
            return self.request.body
        if self.body.too_large:
            self.refuse_upload()
            return None
        return self.body.data()

    def refuse_upload(self) -> None:
        self.app.log.warning("refused %s %s: body of %s bytes over max_upload_bytes (%d)", self.request.method,
                             self.request.path, self.body.size, self.body.limit)
        self.too_large_reply(self.body.size, self.body.limit)

    def too_large_reply(self, size: int, limit: int) -> None:
        self.write_json({"error": f"request body of {size} bytes exceeds the limit of {limit} bytes "
                                  "(setting max_upload_bytes)", "status": 413}, 413)

    async def check_case(self, work: Callable[[], Any], size: int) -> Any:
        """`work()` (parse and validate a request) in the server's validation lanes (`validation.py`)."""
        allowed = max(1, self.app.max_concurrent_runs_per_user - self.owner_active_count())
        return await self.app.validator.run(work, size, self.owner, allowed)

    async def checked_post(self, load: Callable[[bytes, int], Any], what: str) -> Any:
        """This POST's body read by `load(body, max_cases)` in the validation lanes, the per-user limit
        checked before and after (429); None when the answer was sent already (a body over the upload
        limit, or a 400 listing every problem of an invalid `what`)."""
        body = self.upload()
        if body is None:
            return None
        if self.over_user_limit():
            raise web.HTTPError(429, self.user_limit_message())
        try:
            checked = await self.check_case(partial(load, body, self.app.max_cases), len(body))
        except CaseError as err:
            self.write_json({"error": f"invalid {what}", "problems": list(err.problems), "status": 400}, 400)
            return None
        except ValidationBusy as err:
            raise web.HTTPError(503, str(err)) from None
        if self.over_user_limit():
            raise web.HTTPError(429, self.user_limit_message())
        return checked

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

    def on_connection_close(self) -> None:
        """The client went away before its answer (a browser closed mid-run): one line in the log; a run
        it started goes on and is kept in the store."""
        super().on_connection_close()
        if not self._finished:
            self.app.log.info("%s %s: the client went away before the answer was sent", self.request.method,
                              self.request.path)

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
        elif status_code == 403 and getattr(self, "_current_user", None) is None:
            message = self.login_hint()
        return {"error": message, "status": status_code}

    def login_hint(self) -> str:
        """What a request without credentials should do (the web UI shows it to the user)."""
        return (f"Not logged in to the Visual Plumes server: open {self.server_url()} in this browser and log in "
                "(scripts: send a token, Authorization: token …)")

    def server_url(self) -> str:
        return f"{self.request.protocol}://{self.request.host}{self.mount_url.rsplit('/', 1)[0]}/"

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # send_error cleared the headers: an allowed origin must still be able to read the refusal
        self.set_cors_headers()
        payload = self.error_payload(status_code, **kwargs)
        if status_code in (401, 403):
            self.app.log.warning("refused %s %s (origin %s): %s", self.request.method, self.request.path,
                                 self._request_origin() or "none", payload["error"])
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    # -- runs and who may see them -----------------------------------------------------------------
    def run_id_or_404(self, text: str) -> str:
        try:
            return check_run_id(text)
        except InvalidRunId:
            raise web.HTTPError(404, "no such run") from None

    async def visible_status(self, run_id: str) -> dict:
        """The status of a run (or study) this request may see; 404 when there is no such run or it may not
        see it."""
        run_id = self.run_id_or_404(run_id)
        try:
            status = jobs_of(self.app).status(run_id) or self.app.runner.status(run_id)
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

    async def succeeded_status(self, run_id: str, what: str) -> dict:
        """`visible_status` of a run that succeeded; 409 naming `what` exists only then."""
        status = await self.visible_status(run_id)
        if status["status"] != "succeeded":
            raise web.HTTPError(409, f"run is {status['status']}; {what} exists only for succeeded runs")
        return status

    def owner_active_count(self) -> int:
        """Runs and studies of this request's owner queued or running."""
        return self.app.runner.active_count(self.owner) + jobs_of(self.app).active_count(self.owner)

    def over_user_limit(self) -> bool:
        """This request's owner has max_concurrent_runs_per_user runs and studies queued or running."""
        return self.owner_active_count() >= self.app.max_concurrent_runs_per_user

    def user_limit_message(self) -> str:
        return (f"Too many runs in progress for {self.owner} (runs and studies; the limit is "
                f"{self.app.max_concurrent_runs_per_user}, "
                "setting max_concurrent_runs_per_user); try again shortly.")

    def submit_run(self, case: Case, **kwargs: Any) -> str:
        """Queue the run for this request's owner; web.HTTPError 503 naming the store when it cannot be
        recorded (a read-only or full disk)."""
        try:
            return self.app.runner.submit(case, owner=self.owner, **kwargs)
        except OSError as err:
            self.app.log.error("cannot record a new run in the store %s: %s", self.app.store.root, err)
            raise web.HTTPError(503, f"the run store {self.app.store.root} cannot be written "
                                     f"({err.strerror or err}); ask the server's administrator") from None


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

    streams_body = True

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

    def too_large_reply(self, size: int, limit: int) -> None:
        self.legacy_error(f"Upload too large: {size} bytes (the limit is {limit} bytes).")

    @web.authenticated
    async def post(self) -> None:
        body = self.upload()
        if body is None:
            return None
        if self.over_user_limit():
            return self.legacy_error(self.user_limit_message())
        work = partial(parse_legacy_body, self.request.headers, body, self.app.max_cases)
        try:
            case, request = await self.check_case(work, len(body))
        except legacy.LegacyError as err:
            return self.legacy_error(str(err))
        except ValidationBusy as err:
            return self.legacy_error(f"Cannot check the input now: {err}.")
        if self.over_user_limit():
            return self.legacy_error(self.user_limit_message())
        runner = self.app.runner
        # the worker that finishes the run also makes the response body; it is sent from the store as it is;
        # the zip is not stored: the download builds it from the stored result (`send_archive`)
        try:
            run_id = self.submit_run(case, source="ui", request=request, make_response=legacy.success_body)
            status = await runner.wait(run_id)
        except web.HTTPError as err:
            return self.legacy_error(f"Cannot start the run: {err.log_message}")
        except RunNotFound:               # deleted (DELETE api/runs/<id>) while this request waited
            return self.legacy_error("Error running the model: the run was cancelled")
        if status["status"] != "succeeded":
            return self.legacy_error(f"Error running the model: {status.get('error') or status['status']}")
        try:
            await send_stored_body(self, runner.response_path(run_id), legacy.SUCCESS_CONTENT_TYPE)
        except RunNotFound:
            return self.legacy_error("Error running the model: the run was removed before its result was sent")


def parse_legacy_body(headers: httputil.HTTPHeaders, body: bytes, max_cases: int) -> tuple[Case, dict]:
    """The Case of a `run_analysis` body and the request as it is stored with the run (LegacyError when the
    body is not a valid form or the case is refused)."""
    arguments: dict[str, list[bytes]] = {}
    parts: dict[str, list[httputil.HTTPFile]] = {}
    try:
        httputil.parse_body_arguments(headers.get("Content-Type", ""), body, arguments, parts, headers)
    except httputil.HTTPInputError as err:   # Q17: a malformed form is a legacy error, not an HTTP 400
        raise legacy.request_error(f"the body is not a valid multipart form ({err})") from None
    form = {name: values[0].decode("utf-8", "replace") for name, values in arguments.items() if values}
    files = {name: found[0].body for name, found in parts.items() if found}
    case = legacy.parse_run_request(form, files, max_cases=max_cases)
    return case, {"form": form, "files": {name: data.decode("utf-8", "replace") for name, data in files.items()}}


class LegacyDownload:
    """`download_zip_archive/<id>`: the run's legacy zip, as an attachment."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        await send_archive(self, status["id"])


async def off_the_loop(work: Callable[[], Any], executor: Any = None) -> Any:
    """Run pure-Python work (parsing, validating a case) in a thread, so the event loop keeps answering."""
    return await asyncio.get_running_loop().run_in_executor(executor, work)


# listings run one at a time in their own thread: however many clients list at once, the event loop shares
# the GIL with one listing thread only, so every other request keeps answering quickly
LISTING_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vp-listing")


async def send_file(handler: Any, locate: Callable[[], Any], content_type: str, encoding: str | None = None) -> None:
    """Send a stored file as the response body, read in chunks (RunNotFound when it is not there).
    `encoding`: the file's Content-Encoding (e.g. gzip), sent as it is."""
    try:
        stream = open(locate(), "rb")
    except FileNotFoundError:               # removed between the look-up and the open
        raise RunNotFound("the file was removed") from None
    with stream:
        handler.set_header("Content-Type", content_type)
        handler.set_header("Content-Length", str(os.fstat(stream.fileno()).st_size))
        if encoding:
            handler.set_header("Content-Encoding", encoding)
            handler.add_header("Vary", "Accept-Encoding")
        try:
            while chunk := stream.read(256 * 1024):
                handler.write(chunk)
                await handler.flush()
        except iostream.StreamClosedError:     # the client went away meanwhile (logged by on_connection_close)
            return
    handler.finish()


def accepts_gzip(handler: Any) -> bool:
    """Does the client take a gzip-encoded body (Accept-Encoding: gzip, not with q=0)?"""
    for part in handler.request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


async def send_pieces(handler: Any, pieces: Iterator[bytes], content_type: str, compress: bool = False) -> None:
    """Send a body made piece by piece in a thread (never whole in memory, never on the event loop);
    gzip-compressed on the way when `compress` (in that thread too)."""
    packer = zlib.compressobj(5, zlib.DEFLATED, 31) if compress else None
    ended = False

    def next_piece() -> bytes | None:
        nonlocal ended
        if ended:
            return None
        for piece in pieces:
            data = packer.compress(piece) if packer is not None else piece
            if data:
                return data
        ended = True
        return packer.flush() if packer is not None else None

    handler.set_header("Content-Type", content_type)
    if packer is not None:
        handler.set_header("Content-Encoding", "gzip")
    handler.add_header("Vary", "Accept-Encoding")
    try:
        while (data := await off_the_loop(next_piece)) is not None:
            handler.write(data)
            await handler.flush()
    except iostream.StreamClosedError:         # the client went away meanwhile (logged by on_connection_close)
        return
    handler.finish()


def gunzip_pieces(path: Any, size: int = 1 << 20) -> Iterator[bytes]:
    with gzip.open(path, "rb") as stream:
        while piece := stream.read(size):
            yield piece


async def send_stored_body(handler: Any, path: Any, content_type: str) -> None:
    """Send a body the store keeps (the legacy response): gzip files as they are to clients that take gzip,
    decompressed on the way to the others; runs stored before compression as they are."""
    if str(path).endswith(".gz"):
        if accepts_gzip(handler):
            await send_file(handler, lambda: path, content_type, encoding="gzip")
        else:
            await send_pieces(handler, gunzip_pieces(path), content_type)
    else:
        await send_file(handler, lambda: path, content_type)


async def send_archive(handler: Any, run_id: str) -> None:
    """The run's legacy zip: the stored one (runs stored with their zip), else built from the stored result
    in a thread (the store keeps results compact and the zip is derived from them)."""
    store = handler.app.store
    handler.set_header("Content-Disposition", f'attachment; filename="output_{run_id}.zip"')
    try:
        path = store.archive_path(run_id)
    except RunNotFound:
        path = None
    try:
        if path is not None:
            return await send_file(handler, lambda: path, "application/zip")
        result = await off_the_loop(partial(store.load_result, run_id))
        archive = await off_the_loop(partial(legacy.archive_bytes, result, run_id))
    except RunNotFound:
        raise web.HTTPError(404, "no archive for this run") from None
    handler.set_header("Content-Type", "application/zip")
    handler.write(archive)
    await handler.flush()                   # headers out before finish (the API base would set its JSON type)
    handler.finish()


# ---------------------------------------------------------------------------------------------------
# JSON API

def run_links(handler: Any, run_id: str) -> dict[str, str]:
    base = f"{handler.mount_url}/api/runs/{run_id}"
    return {"self": base, "result": base + "/result", "archive": base + "/archive", "report": base + "/report"}


class Runs:
    streams_body = True

    @web.authenticated
    async def get(self) -> None:
        """A page of the runs and studies this request may see, newest first: `limit` (default DEFAULT_PAGE,
        at most MAX_PAGE), `before` (the cursor of the `next` link), filters LIST_FILTERS. Read in a thread;
        studies still in progress (not yet in the store) head the first page."""
        filters = {key: self.get_argument(key, None) for key in LIST_FILTERS}
        filters = {key: value for key, value in filters.items() if value not in (None, "")}
        limit = page_limit(self.get_argument("limit", None))
        before = self.get_argument("before", None) or None
        access = await self.access()
        owners = access.visible_owners()
        studies = [] if before is not None else [
            study for study in jobs_of(self.app).list() if access.may_see(study["owner"])
            and all(study.get(key) == value for key, value in filters.items() if key in ("source", "owner", "status"))]

        def listing() -> str:               # the page and its JSON text, both made in the listing thread
            runs, cursor = self.app.runner.page(limit, before, owners=owners, kind=None, **filters)
            listed = {run["id"] for run in runs}
            runs += [study for study in studies if study["id"] not in listed]
            runs.sort(key=lambda entry: (entry["created"] or "", entry["id"]), reverse=True)
            for run in runs:
                run.setdefault("kind", "run")
            following = None
            if cursor is not None:
                following = f"{self.mount_url}/api/runs?" + urlencode({**filters, "limit": limit, "before": cursor})
            return json.dumps({"runs": runs, "limit": limit, "next": following}, allow_nan=False)

        try:
            body = await off_the_loop(listing, LISTING_THREAD)
        except ValueError as err:
            raise web.HTTPError(400, "%s", str(err)) from None
        self.set_header("Content-Type", "application/json")
        self.finish(body)

    @web.authenticated
    async def post(self) -> None:
        case = await self.checked_post(load_case_body, "case")
        if case is None:
            return
        run_id = self.submit_run(case, source="api")     # the zip is built on request
        self.set_header("Location", run_links(self, run_id)["self"])
        self.write_json({"id": run_id, "status": "queued", "links": run_links(self, run_id)}, 202)


def page_limit(text: str | None) -> int:
    """The page size of `GET api/runs?limit=` (web.HTTPError 400 when it is not 1…MAX_PAGE)."""
    if text is None or text == "":
        return DEFAULT_PAGE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE:
        raise web.HTTPError(400, "limit must be a whole number from 1 to %d (got %r)", MAX_PAGE, text[:40])
    return int(text)


def load_json(body: bytes, what: str) -> Any:
    """The JSON value of a request body (web.HTTPError 400 when it is not valid JSON or is nested too deeply
    for Python's parser); `what` names the expected format in the message."""
    try:
        return json.loads(body or b"null")
    except ValueError as err:
        raise web.HTTPError(400, f"body: not valid JSON ({err})") from None
    except RecursionError:
        raise web.HTTPError(400, f"body: nested too deeply to be {what}") from None


def load_case_body(body: bytes, max_cases: int) -> Case:
    """The Case of a `POST api/runs` body (web.HTTPError 400 when it is not a JSON object)."""
    data = load_json(body, "a case (the case JSON format)")
    if not isinstance(data, dict):
        raise web.HTTPError(400, "body: must be a case object (the case JSON format)")
    return Case.load(data, allow_files=False, max_cases=max_cases)


def load_study_body(body: bytes, max_cases: int) -> Any:
    """The study request of a `POST api/studies` body (web.HTTPError 400 for JSON that cannot be read;
    CaseError for a request that is not a valid study)."""
    from ..studies.jobs import parse_request

    return parse_request(load_json(body, "a study request"), max_cases)


class Run:
    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        self.write_json({"kind": "run", **status, "links": run_links(self, status["id"])})

    @web.authenticated
    async def delete(self, run_id: str) -> None:
        status = await self.visible_status(run_id)
        if not (await self.access()).may_delete(status["owner"]):
            raise web.HTTPError(403, f"run {status['id']} belongs to {status['owner']}; only they may delete it")
        try:
            if not jobs_of(self.app).delete(status["id"]):      # a study queued or running: stopped, not kept
                self.app.runner.delete(status["id"])
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None
        self.set_status(204)
        self.finish()


class RunResult:
    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.succeeded_status(run_id, "a result")
        store = self.app.store
        if status.get("kind") == "study":   # a study's result is its document
            from ..studies.study import STUDY_FILE

            await send_file(self, lambda: store.document_path(status["id"], STUDY_FILE), "application/json")
            return
        try:                                # written from the stored tables piece by piece, in a thread
            pieces = store.iter_result_json(status["id"])
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None
        await send_pieces(self, pieces, "application/json", compress=accepts_gzip(self))


class RunReport:
    """`api/runs/<id>/report`: the self-contained HTML report of a succeeded run or study, made in a thread."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = await self.succeeded_status(run_id, "a report")
        try:
            text = await asyncio.get_running_loop().run_in_executor(None, _report_text, self.app.store, status["id"])
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Disposition", f'inline; filename="report_{status["id"]}.html"')
        self.write(text)
        await self.flush()                  # headers sent now: jupyter_server's finish() would make it JSON
        self.finish()


def _report_text(store: Any, run_id: str) -> str:
    from .. import load
    from ..report_html import render

    return render(load(run_id, store=store))


class Studies:
    """`POST api/studies`: start an uncertainty or sensitivity study (see `vp_jupyter.studies.jobs`)."""
    streams_body = True

    @web.authenticated
    async def post(self) -> None:
        request = await self.checked_post(load_study_body, "study")     # checked as a case is
        if request is None:
            return
        run_id = jobs_of(self.app).submit(request, owner=self.owner)
        self.set_header("Location", run_links(self, run_id)["self"])
        self.write_json({"id": run_id, "status": "queued", "kind": "study", "links": run_links(self, run_id)}, 202)


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
    (f"api/runs/{RUN_ID}/report", RunReport),
    ("api/studies", Studies),
    ("api/schema", Schema),
    ("api/openapi.json", OpenAPI),
]


class NoSuchEndpoint:
    """Any other path under the mount: a JSON 404 naming the path (with `success: false` under `app/`, so
    the web UI shows it), never Jupyter's HTML page."""

    def check_xsrf_cookie(self) -> None:      # nothing happens here, so nothing to protect: answer 404
        return None

    def error_payload(self, status_code: int, **kwargs: Any) -> dict[str, Any]:
        payload = super().error_payload(status_code, **kwargs)
        if self.request.path.startswith(f"{self.mount_url}/app/"):
            payload = {"success": False, **payload}
        return payload

    def answer_404(self, *args: Any) -> None:
        path = self.request.path
        hint = " (no trailing slash)" if path.endswith("/") and len(path) > len(self.mount_url) + 1 else ""
        raise web.HTTPError(404, f"no such endpoint: {self.request.method} {path}{hint}")

    get = post = put = delete = patch = answer_404


@lru_cache(maxsize=None)
def concrete_handler(logic: type, base: type) -> type:
    """The handler class of one endpoint on one base (the logic first, so it overrides the base); endpoints
    that take a body read it as it streams in (`streams_body`)."""
    handler = type(f"{logic.__name__}Handler", (logic, base), {"__module__": base.__module__})
    return web.stream_request_body(handler) if handler.streams_body else handler


def handler_table(root: str, base: type = ExtensionBase, page_base: type = ExtensionPageBase) -> list[tuple[str, type]]:
    """Tornado routes under `root` (a URL path without trailing slash, e.g. `/visualplumes`): the home page
    at `root/` (on `page_base`) and every endpoint (on `base`)."""
    return [(f"{root}/?", concrete_handler(HomePage, page_base)),
            *((f"{root}/{path}", concrete_handler(logic, base)) for path, logic in ENDPOINTS)]


def extension_handlers(root: str) -> list[tuple[str, type]]:
    """The Jupyter extension's routes: `handler_table`, then a JSON 404 for anything else under `root`."""
    return [*handler_table(root), (f"{root}/.*", concrete_handler(NoSuchEndpoint, ExtensionBase))]
