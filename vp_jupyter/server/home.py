"""The home page at `<mount>/` (HTML from a Jinja2 template, no front-end build): what this server is, who is
logged in, the store and worker settings in effect, the recent runs (paged) with links to their archive,
result JSON and report, and how to connect the Visual Plumes web UI (its API_URL, the allowed origins and
the host-name rule of the login cookie).

`HomePage` is endpoint logic like those of `handlers.py`: mixed with the extension's page base or the hub
service's base, which provide `app`, `owner`, `mount_url`, `access()`, `run_page_links()` and
`server_kind`. It is the one HTML answer under the mount; everything else answers JSON.
"""
from __future__ import annotations

from functools import lru_cache, partial
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, PackageLoader, select_autoescape
from tornado import web

from .. import __version__

PAGE_SIZE = 25            # runs per page
MAX_PAGE_SIZE = 200


@lru_cache(maxsize=1)
def templates() -> Environment:
    return Environment(loader=PackageLoader("vp_jupyter.server", "templates"),
                       autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def recent_runs(runner: Any, owners: Any, limit: int, before: "str | None") -> tuple[list[dict], "str | None"]:
    """One page of runs, newest first: those of `owners` (None: everyone's), older than `before` (the
    cursor of the previous page, or a run id; None: from the newest). Returns (runs, the cursor to pass
    as `before` for the next page, or None).

    The one place the page reads the store's listing: the runner's page (the store's index, plus the runs
    still queued or running). It reads the index: call it off the event loop."""
    return runner.page(limit, before, owners=owners)


def _megabytes(size: float) -> str:
    return f"{size / (1024 * 1024):g} MB"


def settings_rows(app: Any) -> list[tuple[str, str]]:
    """(setting, value in effect) of the store and the workers, for the page."""
    retention = []
    if app.retention_max_age_days:
        retention.append(f"runs older than {app.retention_max_age_days:g} days are deleted")
    if app.retention_max_total_mb:
        retention.append(f"the oldest runs are deleted while the store exceeds {app.retention_max_total_mb:g} MB")
    return [
        ("Archive store", str(app.store.root)),
        ("Workers", app.describe_workers() + (f", started with {app.mp_start_method}" if app.executor == "local"
                                              else "")),
        ("Time limit of one run", f"{app.run_timeout:g} s"),
        ("Most cases in one run", f"{app.max_cases:,}"),
        ("Largest upload", _megabytes(app.max_upload_bytes)),
        ("Runs one user may have queued or running", str(app.max_concurrent_runs_per_user)),
        ("Retention", "; ".join(retention) or "off: runs are kept until deleted"),
    ]


class HomePage:
    """`<mount>/`: the home page (GET only; a browser without a login is sent to the login first)."""

    @web.authenticated
    async def get(self) -> None:
        try:
            limit = min(max(int(self.get_argument("limit", str(PAGE_SIZE))), 1), MAX_PAGE_SIZE)
        except ValueError:
            raise web.HTTPError(400, "limit: must be a whole number") from None
        before = self.get_argument("before", None) or None
        access = await self.access()
        from .handlers import LISTING_THREAD, off_the_loop

        try:
            runs, older = await off_the_loop(partial(recent_runs, self.app.runner, access.visible_owners(), limit,
                                                     before), LISTING_THREAD)
        except ValueError as err:
            raise web.HTTPError(400, "%s", str(err)) from None
        for run in runs:
            run["links"] = self.run_page_links(run["id"]) if run["status"] == "succeeded" else {}
        host = self.request.host
        origin = f"{self.request.protocol}://{host}"
        page = templates().get_template("home.html").render(
            version=__version__, server_kind=self.server_kind, user=self.owner, mount=self.mount_url,
            settings=settings_rows(self.app), runs=runs, before=before,
            older=f"{self.mount_url}/?{urlencode({'before': older, 'limit': limit})}" if older else None,
            newest=f"{self.mount_url}/" if before else None,
            api_url=f"{origin}{self.mount_url}/app", server_origin=origin,
            hostname=urlsplit(origin).hostname or host, allowed_origins=list(self.app.allowed_origins),
            see_all=access.see_all)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(page)
