"""`vp.Client`: run cases on a Visual Plumes server over HTTP — the JupyterHub service from a notebook on
the hub, or any vp-jupyter server (the single-user extension too) — and get the same objects as locally.

    client = vp.Client()                  # on a hub: finds the service, authenticates as the notebook's user
    result = client.run("case.json", progress=True)   # = vp.run("case.json"), computed and stored by the service
    client.runs()                         # the runs you may see there: the DataFrame of vp.runs()
    client.load(run_id)                   # any of them back as a Result, like vp.load()
    client.download_archive(run_id, "out.zip")
    study = client.uncertainty("case.json", {"diffuser.effluent_flow": ["normal", 0.1, 0.02]}, n=200)
    client.report(run_id, "report.html")  # the HTML report of a run or study, made by the server

Only the standard library speaks HTTP here (notebooks need neither JupyterHub nor requests). Errors:
an invalid case raises `CaseError` (checked here first, then by the server, which names every problem);
an unknown run id or one you may not see raises `RunNotFound` (a KeyError, as `vp.load`); a run that
fails or is cancelled raises `RunFailed`; any other refusal raises `ServiceError` with the server's message.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import parse_qs, quote, urlencode, urlparse

from .progress import progress_bar
from .store import RunNotFound, check_run_id

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .results import Result
    from .studies import Study

ENV_URL = "VP_JUPYTER_SERVICE_URL"
SERVICE_NAME = "visualplumes"
ACTIVE = ("queued", "running")


class ServiceError(RuntimeError):
    """The server refused a request or could not be reached; `status` is the HTTP status (None: no answer)
    and `payload` the server's JSON error object, when there was one."""

    def __init__(self, message: str, status: int | None = None, payload: Any = None):
        super().__init__(message)
        self.status, self.payload = status, payload


class Client:
    """A Visual Plumes server seen from Python (see the module docstring).

    `url`: the server's mount, e.g. `https://hub.example.org/services/visualplumes/` or
    `http://localhost:8888/visualplumes/`. Default: `$VP_JUPYTER_SERVICE_URL`, else — inside a JupyterHub
    server — the address the hub API gives for the service `service` (the token needs the scope
    `read:services!service=visualplumes`). `token`: sent as `Authorization: token …`; default
    `$JUPYTERHUB_API_TOKEN` (a notebook's server token; it needs `access:services!service=visualplumes`).
    `timeout`: seconds one HTTP request may take; `poll_interval`: seconds between status checks.
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, service: str = SERVICE_NAME,
                 timeout: float = 60.0, poll_interval: float = 0.5):
        if token is None:
            token = os.environ.get("JUPYTERHUB_API_TOKEN") or None
        if token is not None and (not isinstance(token, str) or not token.strip()):
            raise ValueError(f"token must be a non-empty string or None (got {token!r})")
        for name, value in (("timeout", timeout), ("poll_interval", poll_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number > 0 (got {value!r})")
        self.token, self.timeout, self.poll_interval = token, float(timeout), float(poll_interval)
        self.url = _check_url(url or os.environ.get(ENV_URL) or self._discover(service))

    def __repr__(self) -> str:
        return f"vp.Client({self.url!r})"

    # -- runs --------------------------------------------------------------------------------------
    def submit(self, case: Any) -> str:
        """Start a run of `case` (anything `vp.run` takes) on the server; its run id, at once."""
        from .inputs import Case

        case = Case.load(case)                   # CaseError here, as vp.run; file paths read locally
        body = json.dumps(case.to_dict(inline_files=True), allow_nan=False).encode("utf-8")
        reply = self._json("POST", "api/runs", body=body, headers={"Content-Type": "application/json"})
        return reply["id"]

    def status(self, run_id: Any) -> dict[str, Any]:
        """The run's status: `status` (queued, running, succeeded, failed, cancelled), `progress`
        {done, total}, times, `error`, `owner`, … (the server's `api/runs/<id>`)."""
        return self._json("GET", f"api/runs/{_run_id(run_id)}")

    def wait(self, run_id: Any, progress: Any = None, timeout: float | None = None) -> dict[str, Any]:
        """Poll until the run has ended; its final status. `progress`: True for a progress bar, or a
        callable progress(done, total) called when the count changes. TimeoutError after `timeout` s."""
        run_id = _run_id(run_id)
        report = _progress_reporter(progress)
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = min(0.1, self.poll_interval)
        try:
            while True:
                status = self.status(run_id)
                report(status["progress"]["done"], status["progress"]["total"])
                if status["status"] not in ACTIVE:
                    return status
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"run {run_id} did not finish within {timeout} s (it is {status['status']})")
                time.sleep(pause)
                pause = min(self.poll_interval, pause * 2)
        finally:
            report.close()

    def run(self, case: Any, progress: Any = None, timeout: float | None = None) -> "Result":
        """Run `case` on the server and return its Result — the same as `vp.run(case)` returns — with the
        run id of the server's store in `result.run_id`. `progress`: as for :meth:`wait`."""
        from .inputs import CaseError
        from .runner import RunFailed

        run_id = self.submit(case)
        final = self.wait(run_id, progress=progress, timeout=timeout)
        error = final.get("error") or ""
        if final["status"] == "failed" and error.startswith(CaseError.HEAD):
            # the model refused a case: raised as vp.run raises it (the runner records the CaseError's text)
            raise CaseError([line.strip() for line in error.splitlines()[1:] if line.strip()] or [error])
        if final["status"] != "succeeded":
            raise RunFailed(run_id, final["status"], final.get("error"))
        return self._result(run_id)

    def load(self, run_id: Any) -> "Result | Study":
        """A run of the server (one you may see) back as a Result (a study as a Study), like `vp.load`: RunNotFound (KeyError)
        when there is no such run or it has no result (failed, cancelled, still running)."""
        run_id = _run_id(run_id)
        status = self.status(run_id)
        if status["status"] != "succeeded":
            why = f": {status['error']}" if status.get("error") else ""
            raise RunNotFound(f"run {run_id} {status['status']}{why}; it has no result to load")
        return self._result(run_id)

    def runs(self, source: str | None = None, owner: str | None = None, status: str | None = None, *,
             limit: int | None = None, before: str | None = None, text: str | None = None, since: Any = None,
             until: Any = None) -> "pd.DataFrame":
        """The runs you may see on the server, newest first: the DataFrame of `vp.runs()` (same columns and
        filters), running ones included. `limit`: at most that many (default: all, fetched a page at a
        time); ``attrs["next"]`` is then the cursor to pass as `before` for the rows that follow."""
        from . import runs_frame
        from .store import MAX_PAGE, iso_time

        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a whole number >= 0 or None (got {limit!r})")
        query = {key: value for key, value in (("source", source), ("owner", owner), ("status", status),
                                               ("text", text)) if value is not None}
        for key, value in (("since", since), ("until", until)):
            if value is not None:
                query[key] = iso_time(value)
        rows: list = []
        cursor = before
        while limit is None or len(rows) < limit:
            size = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(rows))
            page = self._json("GET", "api/runs?" + urlencode({**query, "limit": size,
                                                               **({"before": cursor} if cursor else {})}))
            rows.extend(page["runs"])
            cursor = parse_qs(urlparse(page["next"]).query).get("before", [None])[0] if page.get("next") else None
            if cursor is None:
                break
        return runs_frame(rows, cursor)

    def download_archive(self, run_id: Any, path: "str | os.PathLike") -> Path:
        """Save the run's zip archive (the legacy layout the web UI downloads) to `path` (a folder: as
        `output_<id>.zip` in it); the path written."""
        run_id = _run_id(run_id)
        target = Path(path)
        if target.is_dir():
            target = target / f"output_{run_id}.zip"
        partial = target.with_name(target.name + ".part")
        with self._open("GET", f"api/runs/{run_id}/archive") as response:
            try:
                with open(partial, "wb") as out:
                    shutil.copyfileobj(response, out, 256 * 1024)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        return target

    def uncertainty(self, case: Any, inputs: dict[str, Any], n: int = 200, *, seed: int | None = None,
                    method: str = "lhs", target_dilution: float | None = None,
                    concentration_limit: float | None = None, progress: Any = None,
                    timeout: float | None = None) -> "Study":
        """`vp.uncertainty` run by the server (distributions spelled as lists, e.g. ["normal", mean, sd]): the
        Study, recorded in the server's store (its `run_id`)."""
        return self._study(case, "uncertainty", "inputs", inputs, progress, timeout, n=n, seed=seed, method=method,
                           target_dilution=target_dilution, concentration_limit=concentration_limit)

    def sensitivity(self, case: Any, bounds: dict[str, Any], method: str = "sobol", n: int | None = None, *,
                    seed: int | None = None, output: str = "mz_dilution", progress: Any = None,
                    timeout: float | None = None) -> "Study":
        """`vp.sensitivity` run by the server: the Study (Sobol or Morris indices in `study.indices`)."""
        return self._study(case, "sensitivity", "bounds", bounds, progress, timeout, n=n, seed=seed, method=method,
                           output=output)

    def report(self, run_id: Any, path: "str | os.PathLike") -> Path:
        """Save the server's HTML report of a run or study (`api/runs/<id>/report`) to `path`; the path."""
        run_id = _run_id(run_id)
        target = Path(path)
        with self._open("GET", f"api/runs/{run_id}/report") as response:
            body = response.read()
        target.write_bytes(body)
        return target

    def _study(self, case: Any, kind: str, key: str, values: Any, progress: Any, timeout: float | None,
               **options: Any) -> "Study":
        from .inputs import Case
        from .runner import RunFailed

        case = Case.load(case)
        body = {"study": kind, "case": case.to_dict(inline_files=True), key: values,
                **{name: value for name, value in options.items() if value is not None}}
        reply = self._json("POST", "api/studies", body=json.dumps(body, allow_nan=False).encode("utf-8"),
                           headers={"Content-Type": "application/json"})
        final = self.wait(reply["id"], progress=progress, timeout=timeout)
        if final["status"] != "succeeded":
            raise RunFailed(reply["id"], final["status"], final.get("error"))
        return self._result(reply["id"])

    def delete(self, run_id: Any) -> None:
        """Cancel a queued or running run of yours, or delete a finished one."""
        self._open("DELETE", f"api/runs/{_run_id(run_id)}").close()

    # -- HTTP --------------------------------------------------------------------------------------
    def _result(self, run_id: str) -> "Result | Study":
        from .results import Result
        from .studies.study import Study, is_study_document

        with self._open("GET", f"api/runs/{run_id}/result", headers={"Accept-Encoding": "gzip"}) as response:
            data = response.read()
            if response.headers.get("Content-Encoding") == "gzip":
                data = gzip.decompress(data)
        data = json.loads(data)
        result = Study.from_dict(data) if is_study_document(data) else Result.from_dict(data)
        result.run_id = run_id
        return result

    def _json(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Any:
        with self._open(method, path, body, headers) as response:
            data = response.read()
        try:
            return json.loads(data)
        except ValueError:
            raise ServiceError(f"{method} {self.url}{path}: the answer is not JSON: {data[:200]!r}") from None

    def _open(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Any:
        return _request(method, self.url + path, self.token, body, headers, self.timeout)

    def _discover(self, service: str) -> str:
        """The service's URL from the hub API (JUPYTERHUB_API_URL), or a ValueError saying what to set."""
        api = os.environ.get("JUPYTERHUB_API_URL")
        advice = (f"pass vp.Client(url=...), or set {ENV_URL} (e.g. https://hub.example.org/services/{service}/)")
        if not api:
            raise ValueError(f"where is the Visual Plumes service? {advice}; inside a JupyterHub server it is "
                             "looked up through JUPYTERHUB_API_URL, which is not set here")
        try:
            with _request("GET", f"{api.rstrip('/')}/services/{quote(service, safe='')}", self.token, None, None,
                          self.timeout) as response:
                model = json.loads(response.read())
        except (ServiceError, RunNotFound, ValueError) as err:
            raise ValueError(f"the hub did not say where the service {service!r} is ({err}); {advice}, or give "
                             f"the server role the scope read:services!service={service}") from None
        url, prefix = model.get("url"), model.get("prefix")
        if not url or not prefix:
            raise ValueError(f"the hub's answer for the service {service!r} has no url and prefix (the token needs "
                             f"read:services!service={service}, not only read:services:name); {advice}")
        return url.rstrip("/") + "/" + prefix.lstrip("/")


def _request(method: str, url: str, token: str | None, body: bytes | None, headers: dict | None,
             timeout: float) -> Any:
    """Open one HTTP request; errors become CaseError / RunNotFound / ServiceError with the server's message."""
    from .inputs import CaseError

    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Accept": "application/json", **(headers or {})})
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        with err:
            raw = err.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        message = _message(payload) or raw[:200].decode("utf-8", "replace") or err.reason
        if err.code == 400 and isinstance(payload, dict) and payload.get("problems"):
            raise CaseError(list(payload["problems"])) from None
        if err.code == 404 and isinstance(payload, dict) and "error" in payload:
            raise RunNotFound(f"{message} ({method} {url})") from None
        hint = ""
        if err.code in (401, 403):
            hint = f"; the token needs the scope access:services!service={SERVICE_NAME}"
        raise ServiceError(f"{method} {url}: HTTP {err.code}: {message}{hint}", err.code, payload) from None
    except urllib.error.URLError as err:
        raise ServiceError(f"cannot reach {url}: {err.reason}") from None
    except OSError as err:                  # e.g. a timeout while connecting
        raise ServiceError(f"cannot reach {url}: {err}") from None


def _message(payload: Any) -> str | None:
    if isinstance(payload, dict):
        text = payload.get("error") or payload.get("message")
        return str(text) if text else None
    return None


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
        raise ValueError(f"url must be an http(s) URL of the service, e.g. "
                         f"https://hub.example.org/services/{SERVICE_NAME}/ (got {url!r})")
    return url.rstrip("/") + "/"


def _run_id(run_id: Any) -> str:
    return check_run_id(getattr(run_id, "run_id", None) or getattr(run_id, "id", run_id))


class _Reporter:
    """Progress of one run: nothing, a callable progress(done, total), or a bar (`progress.progress_bar`)."""

    def __init__(self, call: Callable[[int, int], Any] | None = None, bar: bool = False):
        self.call, self.bar, self.last, self.shown = call, bar, None, None

    def __call__(self, done: int, total: int) -> None:
        if (done, total) == self.last:
            return
        self.last = (done, total)
        if self.call is not None:
            self.call(done, total)
        elif self.bar:
            if self.shown is None:
                self.shown = progress_bar(total, "run")
            self.shown.update(done - self.shown.n)

    def close(self) -> None:
        if self.shown is not None:
            self.shown.close()


def _progress_reporter(progress: Any) -> _Reporter:
    if progress is None or progress is False:
        return _Reporter()
    if progress is True:
        return _Reporter(bar=True)
    if callable(progress):
        return _Reporter(call=progress)
    raise TypeError(f"progress must be None, True/False or a callable progress(done, total) (got {progress!r})")
