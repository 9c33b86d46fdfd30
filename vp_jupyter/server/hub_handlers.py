"""The JupyterHub side of the handlers: `HubServiceBase` (who the request is, what it may see), the team
look-up in hub groups, the OAuth callback and the JSON 404 of the service.

Identity. Every request is identified by JupyterHub's `HubOAuth` (jupyterhub.services.auth): first an API
token (`Authorization: token …`, scripts and notebooks), else the OAuth cookie the service sets after a
browser login. The identified user must hold the service's access scopes (by default
`access:services!service=<name>`), else 403. Without an identity, a browser navigation (GET with
`Sec-Fetch-Mode: navigate`, or an `Accept` asking for HTML) is redirected to the hub's OAuth login and
comes back; every other request gets a JSON 401. Nothing is ever answered with HTML.

Visibility. A run belongs to the hub user who started it (a hub service: `service:<name>`). A user sees
their own runs, every run of the members of the `team_groups` they belong to (see only: delete stays
with the owner), and, when `admins_see_all`, a hub admin sees and deletes every run. Group members are
read from the hub API with the service's own token (`GET /groups/<name>`: scope `read:groups`, or
`read:groups!group=<name>` per team group), cached for `group_cache_seconds`; the user's own groups and
admin flag come with the identity (the hub adds them to every `/user` answer) and are cached by HubOAuth
for its `cache_max_age` (300 s by default).

XSRF. HubOAuth accepts the OAuth cookie only after `check_xsrf_cookie` for every request that is not a
plain navigation GET, a websocket or a same-origin no-cors GET; a refused check means "no cookie
identity" (the request is then answered 403 here, naming the reason). Token requests never need XSRF.
The unmodified Visual Plumes web UI posts `app/run_analysis` with `fetch(…, credentials: "include")` and
no XSRF value, so for that one endpoint (`legacy_xsrf_exempt`) the XSRF value may be replaced by the
browser's own statement that the request is same-origin: `Sec-Fetch-Site: same-origin`, or, from a browser
that does not send Sec-Fetch headers, an `Origin` whose host is the request's `Host`. Both headers are set
by the browser and cannot be written by page scripts, so a page of another site can never pass: it is
refused (and with `Sec-Fetch-Site: cross-site` / `same-site` even if its Origin looks right), as is a
POST that carries neither header. Origins listed in `allowed_origins` are accepted too, as on the single-
user extension. Caveat: on a hub without per-user subdomains every user server shares the hub's origin,
so a page served by another user's server counts as same-origin (as it does for JupyterHub's own cookies).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated, UserNotAllowed
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .handlers import Access, HandlerCommon, handler_table


class HubServiceBase(HandlerCommon, HubOAuthenticated, web.RequestHandler):
    """Base of the hub service's handlers (see the module docstring for identity, visibility and XSRF)."""

    server_kind = "JupyterHub service"

    auth_description = ("a JupyterHub API token with the scope `access:services!service=visualplumes` "
                        "(`Authorization: token …`), or the service's OAuth login cookie (browsers) with the "
                        "XSRF value; the legacy run endpoint accepts a same-origin browser POST without it")

    def initialize(self) -> None:
        self.hub_auth = self.settings["hub_auth"]
        self._access: Access | None = None
        self._xsrf_refusal: str | None = None

    @property
    def app(self):
        return self.settings["visualplumes"]

    @property
    def mount_url(self) -> str:
        return self.hub_auth.base_url.rstrip("/")

    @property
    def owner(self) -> str:
        model = self.current_user
        if model.get("kind", "user") == "service":
            return f"service:{model['name']}"
        return model["name"]

    def set_default_headers(self) -> None:
        # also on error replies (send_error resets the headers to these): an allowed origin can read them
        if "visualplumes" in self.settings:
            self.set_cors_headers()

    # -- identity ----------------------------------------------------------------------------------
    async def prepare(self) -> None:
        if self.request.method != "OPTIONS":
            await self.identify()
            if self._finished:           # redirected to the login
                return
        await super().prepare()

    async def identify(self) -> None:
        """Set `current_user` (the hub's user model) or answer: login redirect, 401 or 403."""
        model = await self.hub_auth.get_user(self, sync=False)
        if model:
            try:
                self.current_user = self.check_hub_user(model)
            except UserNotAllowed:
                needed = " or ".join(sorted(self.hub_scopes or ())) or "access to this service"
                raise web.HTTPError(403, f"{model.get('kind', 'user')} {model.get('name')} may not use this "
                                         f"service (it needs the scope {needed})") from None
            return
        self.current_user = None
        if self._xsrf_refusal:
            raise web.HTTPError(403, f"login cookie refused for this request ({self._xsrf_refusal}); send the "
                                     "XSRF value, or use a token (Authorization: token …)")
        if self.wants_login_page():
            self.redirect(self.get_login_url())
            return
        if self.hub_auth.get_token(self, in_cookie=False):
            raise web.HTTPError(401, "the token was not accepted by the hub (expired or revoked?)")
        raise web.HTTPError(401, f"authentication required: send a JupyterHub API token (Authorization: token …) "
                                 f"or log in with a browser at {self.hub_auth.base_url}")

    def wants_login_page(self) -> bool:
        """A browser navigating here (not a script or a fetch): it may be sent to the hub's login."""
        if self.request.method not in ("GET", "HEAD"):
            return False
        mode = self.request.headers.get("Sec-Fetch-Mode")
        if mode is not None:
            return mode == "navigate"
        return "text/html" in self.request.headers.get("Accept", "")

    def check_xsrf_cookie(self) -> None:
        try:
            return super().check_xsrf_cookie()
        except web.HTTPError as err:
            self._xsrf_refusal = err.log_message or "XSRF check failed"
            raise

    def legacy_xsrf_exempt(self) -> bool:
        """The legacy run endpoint's XSRF rule on the hub (module docstring, "XSRF")."""
        if super().legacy_xsrf_exempt():
            return True
        site = self.request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site == "same-origin"
        origin = self._request_origin()
        return bool(origin) and self._same_origin(origin)

    def login_hint(self) -> str:
        return (f"Not logged in to the Visual Plumes service: open {self.hub_auth.base_url} in this browser and "
                "log in to JupyterHub (scripts: send a JupyterHub API token, Authorization: token …)")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 401:
            self.set_header("WWW-Authenticate", 'token realm="JupyterHub"')
        super().write_error(status_code, **kwargs)

    # -- visibility --------------------------------------------------------------------------------
    async def access(self) -> Access:
        if self._access is None:
            model = self.current_user
            see_all = bool(self.app.admins_see_all and model.get("admin"))
            team: frozenset = frozenset()
            if not see_all and model.get("kind", "user") == "user":
                mine = [g for g in model.get("groups") or () if g in self.app.team_groups]
                team = await self.settings["hub_teams"].members(mine)
            self._access = Access(self.owner, see_all=see_all, team=team)
        return self._access


class TeamDirectory:
    """Members of hub groups, read from the hub API with the service's token and kept `max_age` seconds.

    A group that cannot be read (the token lacks `read:groups`, the group does not exist, the hub does not
    answer) counts as empty for that time, and the reason is logged once per look-up."""

    def __init__(self, api_url: str, api_token: str, max_age: float, ssl_options: Any = None,
                 log: logging.Logger | None = None):
        self.api_url = api_url.rstrip("/")
        self.api_token = api_token
        self.max_age = max_age
        self.ssl_options = ssl_options
        self.log = log or logging.getLogger(__name__)
        self._cache: dict[str, tuple[float, frozenset]] = {}

    async def members(self, groups: Any) -> frozenset:
        names = sorted(set(groups))
        found = await asyncio.gather(*(self.group(name) for name in names))
        return frozenset().union(*found)

    async def group(self, name: str) -> frozenset:
        cached = self._cache.get(name)
        if cached is not None and time.monotonic() - cached[0] < self.max_age:
            return cached[1]
        users = await self._fetch(name)
        self._cache[name] = (time.monotonic(), users)
        return users

    async def _fetch(self, name: str) -> frozenset:
        url = f"{self.api_url}/groups/{quote(name, safe='')}"
        try:
            response = await AsyncHTTPClient().fetch(url, headers={"Authorization": f"token {self.api_token}"},
                                                     ssl_options=self.ssl_options, request_timeout=20)
            users = json.loads(response.body).get("users")
        except HTTPClientError as err:
            hint = " (the service needs the scope read:groups)" if err.code == 403 else ""
            self.log.warning("cannot read the members of hub group %r: HTTP %s%s", name, err.code, hint)
            return frozenset()
        except (OSError, ValueError, AttributeError) as err:
            self.log.warning("cannot read the members of hub group %r: %s", name, err)
            return frozenset()
        if users is None:
            self.log.warning("hub group %r came without its members (the service needs the scope read:groups, "
                             "not only read:groups:name)", name)
            return frozenset()
        return frozenset(str(user) for user in users)


class OAuthCallbackHandler(HandlerCommon, HubOAuthCallbackHandler):
    """`oauth_callback`: finishes the hub's OAuth login (sets the cookie) and goes back; errors as JSON."""

    def initialize(self) -> None:
        self.hub_auth = self.settings["hub_auth"]

    @property
    def app(self):
        return self.settings["visualplumes"]

    async def prepare(self) -> None:      # no origin or size rules: the hub redirects the browser here
        return None


class NotFoundHandler(web.RequestHandler):
    """Any other path under the service: a JSON 404."""

    def prepare(self) -> None:
        raise web.HTTPError(404)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": f"no such endpoint: {self.request.path}", "status": status_code}))


def hub_handler_table(root: str) -> list[tuple[str, type]]:
    """Routes of the service under `root` (its prefix without the trailing slash): the OAuth callback, the
    home page (the hub's Services menu links there; a browser visit logs in) and every endpoint of
    `handlers.ENDPOINTS`, all on `HubServiceBase`."""
    return [(f"{root}/oauth_callback", OAuthCallbackHandler), *handler_table(root, HubServiceBase, HubServiceBase)]
