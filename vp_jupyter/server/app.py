"""`VisualPlumesApp`: the ExtensionApp that owns the archive store, the runner and every setting."""
from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Integer, List, Unicode, default

from ..runner import Runner
from ..store import RunStore

URL_PREFIX = "visualplumes"


class VisualPlumesApp(ExtensionApp):
    """Visual Plumes in Jupyter: the legacy web-UI endpoints, the JSON API and the shared run archive."""

    name = "vp_jupyter"
    extension_url = f"/{URL_PREFIX}/api/runs"
    load_other_extensions = True

    store_root = Unicode(
        "", config=True,
        help="Folder of the run archive store. Default: $VP_JUPYTER_STORE, else <jupyter data dir>/vp_jupyter/runs. "
             "The server exports it as VP_JUPYTER_STORE to the kernels it starts, so notebooks share it.")
    allowed_origins = List(
        Unicode(), default_value=[], config=True,
        help="Origins of the Visual Plumes web UI allowed to call the legacy run endpoint with the login cookie "
             "and no XSRF value (e.g. http://localhost:3001). Every other origin gets 403.")
    max_workers = Integer(
        0, config=True, help="Worker processes for model runs (0: one per CPU core).")
    mp_start_method = Unicode(
        "spawn", config=True, help="How worker processes start: 'spawn' or 'forkserver' (never fork).")
    run_timeout = Float(
        600.0, config=True, help="Wall-clock limit of one run, seconds; a run over it fails.")
    max_cases = Integer(
        100_000, config=True, help="Most cases (time slices) one run may have.")
    max_upload_bytes = Integer(
        20 * 1024 * 1024, config=True, help="Largest request body accepted by the run endpoints, bytes.")
    max_concurrent_runs_per_user = Integer(
        4, config=True, help="Runs one user may have queued or running at once.")
    retention_max_age_days = Float(
        0.0, config=True, help="Delete stored runs older than this many days (0: keep forever).")
    retention_max_total_mb = Float(
        0.0, config=True, help="Delete the oldest stored runs while the store exceeds this size in MB (0: no limit).")

    @default("store_root")
    def _default_store_root(self) -> str:
        return ""

    def initialize_settings(self) -> None:
        self.store = RunStore(self.store_root or None, max_age_s=self.retention_max_age_days * 86400.0 or None,
                              max_total_bytes=int(self.retention_max_total_mb * 1024 * 1024) or None)
        # notebooks started by this server record into the same store (architecture: the store is the meeting point)
        os.environ["VP_JUPYTER_STORE"] = str(self.store.root)
        if self.mp_start_method not in ("spawn", "forkserver"):
            raise ValueError(f"VisualPlumesApp.mp_start_method must be 'spawn' or 'forkserver' "
                             f"(got {self.mp_start_method!r})")
        self.runner = Runner(self.store, max_workers=self.max_workers or None, timeout_s=self.run_timeout,
                             max_cases=self.max_cases, mp_context=self.mp_start_method)
        self.apply_retention()
        self.log.info("Visual Plumes: store %s, %s worker(s)", self.store.root, self.max_workers or os.cpu_count())

    def apply_retention(self) -> list[str]:
        age = self.retention_max_age_days * 86400.0 or None
        size = int(self.retention_max_total_mb * 1024 * 1024) or None
        if age is None and size is None:
            return []
        return self.store.apply_retention(max_age_s=age, max_total_bytes=size)

    def initialize_handlers(self) -> None:
        from .handlers import handler_table

        self.handlers.extend(handler_table(URL_PREFIX))

    async def stop_extension(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.shutdown()
