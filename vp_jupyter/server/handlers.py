"""Tornado handlers: thin — parse, authorise, submit to the runner, respond.

Legacy endpoints (wire format in `vp_jupyter.legacy`) under `<base_url>visualplumes/app/`, the JSON API
under `<base_url>visualplumes/api/`. Authentication and cross-origin rules: legacy-http-api.md §12 —
every handler needs a Jupyter identity (token or login cookie); a browser request from another origin
is accepted only from the configured allowed origins (echoed with credentials, never `*`), and only the
legacy run endpoint lets such an origin replace the XSRF value. Errors are JSON, never HTML.
"""
from __future__ import annotations

import asyncio
import getpass
import json
import os
from functools import partial
from typing import Any, Callable
from urllib.parse import urlparse

from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .. import legacy
from ..inputs import Case, CaseError, json_schema
from ..store import InvalidRunId, RunNotFound, check_run_id

RUN_ID = r"([^/]+)"
PREFLIGHT_HEADERS = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with, x-xsrftoken"
PREFLIGHT_METHODS = "DELETE, GET, OPTIONS, POST"


class VisualPlumesHandler(ExtensionHandlerMixin, APIHandler):
    """Common ground: the extension's store/runner, origin rules, CORS headers and JSON errors."""

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

    # -- cross-origin rules (legacy-http-api.md §12) ------------------------------------------------
    def _request_origin(self) -> str | None:
        return self.request.headers.get("Origin")

    def _same_origin(self, origin: str) -> bool:
        return urlparse(origin.lower()).netloc == (self.request.headers.get("Host") or "").lower()

    def origin_allowed(self, origin: str | None) -> bool:
        return origin is None or self._same_origin(origin) or origin in self.app.allowed_origins

    def check_origin(self, origin_to_satisfy_tornado: str = "") -> bool:
        return self.origin_allowed(self._request_origin())

    def set_cors_headers(self) -> None:
        origin = self._request_origin()
        if origin and origin in self.app.allowed_origins:
            self.set_header("Access-Control-Allow-Origin", origin)
            self.set_header("Access-Control-Allow-Credentials", "true")
            self.add_header("Vary", "Origin")

    async def prepare(self) -> None:
        origin = self._request_origin()
        if not self.origin_allowed(origin):
            raise web.HTTPError(403, f"origin {origin} is not allowed; add it to VisualPlumesApp.allowed_origins")
        limit = self.app.max_upload_bytes
        length = self.request.headers.get("Content-Length")
        if self.request.method in ("POST", "PUT") and length and length.isdigit() and int(length) > limit:
            self.too_large = (int(length), limit)
        else:
            self.too_large = None
        await super().prepare()

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

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload, allow_nan=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and not isinstance(exc, web.HTTPError):
            message = "internal error; see the server log"
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "status": status_code}))

    def run_id_or_404(self, text: str) -> str:
        try:
            return check_run_id(text)
        except InvalidRunId:
            raise web.HTTPError(404, "no such run") from None

    def over_user_limit(self) -> bool:
        return self.app.runner.active_count(self.owner) >= self.app.max_concurrent_runs_per_user


# ---------------------------------------------------------------------------------------------------
# legacy endpoints (legacy-http-api.md §1, §5, §6)

class LegacyHealthHandler(VisualPlumesHandler):
    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(legacy.health_body())


class LegacyRunHandler(VisualPlumesHandler):
    """`run_analysis`: POST multipart → the double-encoded legacy body; GET → the health message."""

    def check_xsrf_cookie(self) -> None:
        # spec §12: for the legacy run endpoint a listed Origin replaces the XSRF value
        origin = self._request_origin()
        if origin and origin in self.app.allowed_origins and not self._same_origin(origin):
            return None
        return super().check_xsrf_cookie()

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


class LegacyDownloadHandler(VisualPlumesHandler):
    """`download_zip_archive/<id>`: the run's legacy zip, as an attachment."""

    @web.authenticated
    async def get(self, run_id: str) -> None:
        await send_archive(self, self.run_id_or_404(run_id))


async def off_the_loop(work: Callable[[], Any]) -> Any:
    """Run pure-Python work (parsing, validating a case) in a thread, so the event loop keeps answering."""
    return await asyncio.get_running_loop().run_in_executor(None, work)


async def send_file(handler: VisualPlumesHandler, locate: Callable[[], Any], content_type: str) -> None:
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


async def send_archive(handler: VisualPlumesHandler, run_id: str) -> None:
    try:
        path = handler.app.store.archive_path(run_id)
    except RunNotFound:
        raise web.HTTPError(404, "no archive for this run") from None
    handler.set_header("Content-Type", "application/zip")
    handler.set_header("Content-Disposition", f'attachment; filename="output_{run_id}.zip"')
    handler.set_header("Content-Length", str(path.stat().st_size))
    with open(path, "rb") as stream:
        while chunk := stream.read(256 * 1024):
            handler.write(chunk)
            await handler.flush()
    handler.finish()


# ---------------------------------------------------------------------------------------------------
# JSON API

def run_links(handler: VisualPlumesHandler, run_id: str) -> dict[str, str]:
    base = handler.base_url.rstrip("/") + "/visualplumes/api/runs/" + run_id
    return {"self": base, "result": base + "/result", "archive": base + "/archive"}


class RunsHandler(VisualPlumesHandler):
    @web.authenticated
    def get(self) -> None:
        filters = {key: self.get_argument(key, None) for key in ("source", "owner", "status")}
        runs = self.app.runner.list(**filters)
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


class RunHandler(VisualPlumesHandler):
    def status_or_404(self, run_id: str) -> dict:
        try:
            return self.app.runner.status(self.run_id_or_404(run_id))
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None

    @web.authenticated
    def get(self, run_id: str) -> None:
        status = self.status_or_404(run_id)
        self.write_json({**status, "links": run_links(self, status["id"])})

    @web.authenticated
    def delete(self, run_id: str) -> None:
        status = self.status_or_404(run_id)
        self.app.runner.delete(status["id"])
        self.set_status(204)
        self.finish()


class RunResultHandler(RunHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = self.status_or_404(run_id)
        if status["status"] != "succeeded":
            raise web.HTTPError(409, f"run is {status['status']}; a result exists only for succeeded runs")
        try:                                # result.json as the worker stored it: nothing rebuilt here
            await send_file(self, lambda: self.app.store.result_path(status["id"]), "application/json")
        except RunNotFound:
            raise web.HTTPError(404, "no such run") from None


class RunArchiveHandler(RunHandler):
    @web.authenticated
    async def get(self, run_id: str) -> None:
        status = self.status_or_404(run_id)
        await send_archive(self, status["id"])


class SchemaHandler(VisualPlumesHandler):
    @web.authenticated
    def get(self) -> None:
        self.write_json(json_schema())


class OpenAPIHandler(VisualPlumesHandler):
    @web.authenticated
    def get(self) -> None:
        from .openapi import openapi_document

        self.write_json(openapi_document(self.base_url))


def handler_table(prefix: str) -> list[tuple[str, type]]:
    app, api = f"/{prefix}/app", f"/{prefix}/api"
    return [
        (f"{app}/", LegacyHealthHandler),
        (f"{app}/run_analysis", LegacyRunHandler),
        (f"{app}/download_zip_archive/{RUN_ID}", LegacyDownloadHandler),
        (f"{api}/runs", RunsHandler),
        (f"{api}/runs/{RUN_ID}", RunHandler),
        (f"{api}/runs/{RUN_ID}/result", RunResultHandler),
        (f"{api}/runs/{RUN_ID}/archive", RunArchiveHandler),
        (f"{api}/schema", SchemaHandler),
        (f"{api}/openapi.json", OpenAPIHandler),
    ]
