"""`VisualPlumesApp`: the ExtensionApp that owns the archive store and the runner (settings: `settings.py`)."""
from __future__ import annotations

import os

from jupyter_server.extension.application import ExtensionApp

from .handlers import extension_handlers
from .paths import URL_PREFIX
from .settings import VisualPlumesSettings


class VisualPlumesApp(VisualPlumesSettings, ExtensionApp):
    """Visual Plumes in Jupyter: the legacy web-UI endpoints, the JSON API and the shared run archive."""

    name = "vp_jupyter"
    extension_url = f"/{URL_PREFIX}/"          # the home page
    load_other_extensions = True

    def initialize_settings(self) -> None:
        self.store = self.make_store()
        # notebooks started by this server record into the same store (architecture: the store is the meeting point)
        os.environ["VP_JUPYTER_STORE"] = str(self.store.root)
        self.runner = self.make_runner(self.store)
        self.start_store_upkeep()
        self.log.info("Visual Plumes: store %s, %s", self.store.root, self.describe_workers())
        from ..engine.um3_compiled import compile_in_background

        # the workers load the compiled UM3 loop from Numba's disk cache; fill it now (first start: ~30 s)
        self.warm_up_process = compile_in_background()

    def initialize_handlers(self) -> None:
        self.handlers.extend(extension_handlers(f"/{URL_PREFIX}"))

    async def stop_extension(self) -> None:
        self.close_validator()
        warm_up = getattr(self, "warm_up_process", None)
        if warm_up is not None and warm_up.poll() is None:
            warm_up.terminate()
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.shutdown()
        studies = getattr(self, "vp_study_jobs", None)      # studies started through api/studies
        if studies is not None:
            studies.shutdown()
