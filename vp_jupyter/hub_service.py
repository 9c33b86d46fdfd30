"""Visual Plumes as a JupyterHub-managed service: the extension's handlers and one shared archive store,
mounted at `/services/visualplumes/` behind the hub's proxy.

    python -m vp_jupyter.hub_service [--config=FILE] [--VisualPlumesHubService.<setting>=…]
    vp-jupyter-hub-service …                      (the same, as a console script)

JupyterHub starts it as a managed service and passes, in the environment, where to listen
(`JUPYTERHUB_SERVICE_URL`), the URL prefix (`JUPYTERHUB_SERVICE_PREFIX`), the service's API token, the
hub's API URL and the OAuth client (`JUPYTERHUB_API_TOKEN`, `JUPYTERHUB_API_URL`, `JUPYTERHUB_CLIENT_ID`,
`JUPYTERHUB_OAUTH_CALLBACK_URL`, `JUPYTERHUB_OAUTH_ACCESS_SCOPES`), which `HubOAuth` reads. Settings: every
`VisualPlumesSettings` trait (store_root, executor, max_workers, limits, retention, allowed_origins) plus
the ones below; `HubOAuth.<trait>` configures the hub client. Who sees which run, and the XSRF rule of
the legacy endpoint, are described in `vp_jupyter.server.hub_handlers`.

Hub configuration it needs (roles and scopes):

* users: `access:services!service=visualplumes` (browser login and their own API tokens), e.g. in the
  `user` role next to `self`;
* users' servers (notebooks, `vp.Client()`): the same scope in the `server` role or in
  `c.Spawner.server_token_scopes` (a server's token only gets the scopes its user also holds), plus
  `read:services!service=visualplumes` (for the user too) if `vp.Client()` should find the service's URL
  by itself instead of reading `VP_JUPYTER_SERVICE_URL`;
* this service, when `team_groups` is set: `read:groups` (or `read:groups!group=<g>` for each team group),
  to read the members of the groups (nothing else: a user's own groups and admin flag come with the
  identity the hub returns for their token);
* the service entry: `"oauth_no_confirm": True` spares browsers (the web UI) a confirmation page.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from urllib.parse import urlparse

try:
    from jupyterhub.services.auth import HubOAuth
    from jupyterhub.utils import make_ssl_context
except ImportError as err:  # pragma: no cover - depends on the installation
    raise ImportError("the Visual Plumes hub service needs JupyterHub (>= 5): "
                      "pip install 'vp-jupyter[hub]'") from err
from tornado import web
from tornado.httpserver import HTTPServer
from traitlets import Bool, Float, List, Unicode, default, validate
from traitlets.config import Application

from . import __version__
from .server.settings import HUB_RETENTION_DAYS, HUB_RETENTION_MB, VisualPlumesSettings

SERVICE_NAME = "visualplumes"
DEFAULT_URL = "http://127.0.0.1:10101"


class VisualPlumesHubService(VisualPlumesSettings, Application):
    """The Visual Plumes JupyterHub service: legacy web-UI endpoints, the JSON API and the team's run archive."""

    name = "vp-jupyter-hub-service"
    version = __version__
    description = __doc__.split("\n\n", 1)[0]
    aliases = {**Application.aliases, "config": "VisualPlumesHubService.config_file"}
    classes = [VisualPlumesSettings, HubOAuth]

    config_file = Unicode("", config=True, help="A traitlets Python config file to load (c.VisualPlumesHubService…).")
    service_name = Unicode(
        config=True, help="The service's name in the hub (default: $JUPYTERHUB_SERVICE_NAME, else visualplumes).")
    service_url = Unicode(
        config=True, help="Where to listen, http(s)://host:port (default: $JUPYTERHUB_SERVICE_URL, else "
                          f"{DEFAULT_URL}).")
    service_prefix = Unicode(
        config=True, help="URL prefix of the service behind the proxy (default: $JUPYTERHUB_SERVICE_PREFIX, else "
                          "/services/<service_name>/).")
    team_groups = List(
        Unicode(), default_value=[], config=True,
        help="Hub groups that are teams: a member of one of them sees the runs of every member of the listed "
             "groups they belong to (seeing only; deleting stays with the owner).")
    admins_see_all = Bool(True, config=True, help="Hub admins see (and may delete) every run.")
    group_cache_seconds = Float(60.0, config=True, help="How long the members of a team group are kept, seconds.")
    cookie_secret_file = Unicode(
        "", config=True,
        help="File with the secret that signs the login cookies (created, mode 600, when missing). Empty: a new "
             "secret at every start, so browsers log in again (without asking) after a restart.")

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    @default("retention_max_age_days")
    def _default_retention_days(self) -> float:
        return HUB_RETENTION_DAYS

    @default("retention_max_total_mb")
    def _default_retention_mb(self) -> float:
        return HUB_RETENTION_MB

    @default("service_name")
    def _default_service_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME") or SERVICE_NAME

    @default("service_url")
    def _default_service_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL") or DEFAULT_URL

    @default("service_prefix")
    def _default_service_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or f"/services/{self.service_name}/"

    @validate("service_prefix")
    def _check_prefix(self, proposal):
        value = proposal["value"]
        if not value.startswith("/"):
            raise ValueError(f"service_prefix must be a URL path starting with / (got {value!r})")
        return value if value.endswith("/") else value + "/"

    @validate("service_url")
    def _check_url(self, proposal):
        parsed = urlparse(proposal["value"])
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"service_url must look like http://host:port (got {proposal['value']!r})")
        return proposal["value"]

    @validate("team_groups")
    def _check_groups(self, proposal):
        for name in proposal["value"]:
            if not name.strip():
                raise ValueError(f"team_groups: group names must not be empty (got {proposal['value']!r})")
        return proposal["value"]

    @validate("group_cache_seconds")
    def _check_cache(self, proposal):
        if not proposal["value"] >= 0:
            raise ValueError(f"group_cache_seconds must be >= 0 (got {proposal['value']!r})")
        return proposal["value"]

    # -- set-up ------------------------------------------------------------------------------------
    def initialize(self, argv=None) -> None:
        self.parse_command_line(argv)
        if self.config_file:
            if not Path(self.config_file).is_file():
                raise FileNotFoundError(f"--config: no such file {self.config_file!r}")
            self.load_config_file(self.config_file)
        self.hub_auth = self.make_hub_auth()
        self.store = self.make_store()
        self.runner = self.make_runner(self.store)
        self.start_store_upkeep()
        self.web_app = self.make_web_app()
        self.log.info("Visual Plumes hub service %s at %s: store %s, %s", self.service_name, self.service_prefix,
                      self.store.root, self.describe_workers())

    def make_hub_auth(self) -> HubOAuth:
        auth = HubOAuth(parent=self, base_url=self.service_prefix)
        if not auth.access_scopes:   # never "any hub user": the service's own access scope at least
            auth.access_scopes = {f"access:services!service={self.service_name}"}
        return auth

    def cookie_secret(self) -> bytes:
        if not self.cookie_secret_file:
            return secrets.token_bytes(32)
        path = Path(self.cookie_secret_file)
        if path.is_file():
            secret = path.read_bytes().strip()
            if len(secret) < 32:
                raise ValueError(f"cookie_secret_file {path}: the secret must have at least 32 bytes")
            return secret
        secret = secrets.token_hex(32).encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secret)
        return secret

    def make_web_app(self) -> web.Application:
        from .server.hub_handlers import NotFoundHandler, TeamDirectory, hub_handler_table

        routes = hub_handler_table(self.service_prefix.rstrip("/"))
        ssl = make_ssl_context(self.hub_auth.keyfile, self.hub_auth.certfile, cafile=self.hub_auth.client_ca)
        teams = TeamDirectory(self.hub_auth.api_url, self.hub_auth.api_token, self.group_cache_seconds, ssl,
                              self.log)
        return web.Application(routes, default_handler_class=NotFoundHandler, cookie_secret=self.cookie_secret(),
                               visualplumes=self, hub_auth=self.hub_auth, hub_teams=teams,
                               login_url=self.hub_auth.login_url, log_function=self._log_request)

    def _log_request(self, handler: web.RequestHandler) -> None:
        status = handler.get_status()
        level = self.log.info if status < 400 else self.log.warning
        level("%d %s %s %.1f ms", status, handler.request.method, handler.request.path,
              1000.0 * handler.request.request_time())

    def listen(self) -> HTTPServer:
        """Start serving `web_app` at `service_url`; the HTTP server."""
        parsed = urlparse(self.service_url)
        ssl = None
        if parsed.scheme == "https":
            import ssl as ssl_module

            ssl = make_ssl_context(self.hub_auth.keyfile, self.hub_auth.certfile, cafile=self.hub_auth.client_ca,
                                   purpose=ssl_module.Purpose.CLIENT_AUTH)
        server = HTTPServer(self.web_app, xheaders=True, ssl_options=ssl,
                            max_body_size=self.max_upload_bytes + 1024 * 1024)
        server.listen(parsed.port or (443 if parsed.scheme == "https" else 80), parsed.hostname)
        return server

    # -- running -----------------------------------------------------------------------------------
    def start(self) -> None:
        asyncio.run(self.serve())

    async def serve(self) -> None:
        """Serve until SIGTERM / SIGINT (JupyterHub stops its services with SIGTERM), then stop the runner."""
        server = self.listen()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        self.log.info("listening on %s", self.service_url)
        try:
            await stopping.wait()
        finally:
            server.stop()
            self.close_validator()
            await loop.run_in_executor(None, self.runner.shutdown)
            studies = getattr(self, "vp_study_jobs", None)  # studies started through api/studies
            if studies is not None:
                studies.shutdown()


def main(argv: list[str] | None = None) -> None:
    app = VisualPlumesHubService()
    app.initialize(argv)
    app.start()


if __name__ == "__main__":
    main(sys.argv[1:])
