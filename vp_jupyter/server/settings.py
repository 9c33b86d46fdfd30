"""`VisualPlumesSettings`: every setting of a Visual Plumes server, shared by the Jupyter server extension
(`VisualPlumesApp`) and the JupyterHub service (`vp_jupyter.hub_service`), and the store and runner built
from them. Set as `c.VisualPlumesApp.<name>` / `c.VisualPlumesHubService.<name>`, or for both as
`c.VisualPlumesSettings.<name>`."""
from __future__ import annotations

import logging
import os
import threading

from traitlets import Bool, Dict, Float, Integer, List, Unicode, validate
from traitlets.config import Configurable

from ..runner import Runner
from ..store import RunStore
from .validation import Validator

EXECUTORS = ("local", "dask")
# retention defaults (README, "Archive store"): a laptop keeps 90 days and at most 5 GB; the hub service
# (hub_service.py) keeps 180 days and at most 50 GB for the whole team
LAPTOP_RETENTION_DAYS = 90.0
LAPTOP_RETENTION_MB = 5 * 1024.0
HUB_RETENTION_DAYS = 180.0
HUB_RETENTION_MB = 50 * 1024.0
log = logging.getLogger(__name__)


class VisualPlumesSettings(Configurable):
    """Store, workers, limits and origins of a Visual Plumes server."""

    store_root = Unicode(
        "", config=True,
        help="Folder of the run archive store. Default: $VP_JUPYTER_STORE, else <jupyter data dir>/vp_jupyter/runs. "
             "The server exports it as VP_JUPYTER_STORE to the kernels it starts, so notebooks share it.")
    allowed_origins = List(
        Unicode(), default_value=[], config=True,
        help="Origins of the Visual Plumes web UI allowed to call the legacy run endpoint with the login cookie "
             "and no XSRF value (e.g. http://localhost:3001). Every other origin gets 403.")
    executor = Unicode(
        "local", config=True,
        help="Where model runs execute: 'local' (a pool of worker processes on this machine) or 'dask' "
             "(a dask.distributed cluster; see the dask_* settings). Its workers must see store_root.")
    max_workers = Integer(
        0, config=True, help="Worker processes for model runs with the local executor (0: one per CPU core).")
    mp_start_method = Unicode(
        "spawn", config=True, help="How local worker processes start: 'spawn' or 'forkserver' (never fork).")
    worker_memory_limit_mb = Float(
        4096.0, config=True,
        help="Resident memory one local worker process may use, MB (0: no limit). A run that needs more fails "
             "with a message saying so; the worker is replaced.")
    prestart_workers = Bool(
        True, config=True,
        help="Start the local worker processes in the background when the server starts, so the first run "
             "does not wait for them.")
    run_timeout = Float(
        600.0, config=True, help="Wall-clock limit of one run, seconds; a run over it fails.")
    max_cases = Integer(
        100_000, config=True, help="Most cases (time slices) one run may have.")
    max_upload_bytes = Integer(
        20 * 1024 * 1024, config=True, help="Largest request body accepted by the run endpoints, bytes.")
    max_concurrent_runs_per_user = Integer(
        4, config=True, help="Runs one user may have queued or running at once.")
    retention_max_age_days = Float(
        LAPTOP_RETENTION_DAYS, config=True,
        help="Delete stored runs older than this many days (0: keep forever). Default 90 (the hub service: 180). "
             "Runs queued or running are never deleted.")
    retention_max_total_mb = Float(
        LAPTOP_RETENTION_MB, config=True,
        help="Delete the oldest stored runs while the store exceeds this size in MB (0: no limit). Default 5120 "
             "(the hub service: 51200).")
    dask_scheduler_address = Unicode(
        "", config=True,
        help="executor 'dask': address of the Dask scheduler, e.g. tcp://scheduler:8786 (or use dask_gateway_address).")
    dask_gateway_address = Unicode(
        "", config=True,
        help="executor 'dask': address of a dask-gateway server to get the cluster from (needs the dask-gateway "
             "package).")
    dask_gateway_cluster_name = Unicode(
        "", config=True,
        help="executor 'dask' with a gateway: name of a running gateway cluster to use ('': start a new cluster).")
    dask_gateway_workers = Integer(
        0, config=True, help="executor 'dask' with a gateway: workers to scale a new cluster to (0: the gateway's default).")
    dask_gateway_cluster_options = Dict(
        {}, config=True, help="executor 'dask' with a gateway: options of a new cluster (the gateway's option names).")
    dask_max_workers = Integer(
        0, config=True,
        help="executor 'dask': tasks kept running on the cluster at once (0: its total worker threads at start).")

    @validate("worker_memory_limit_mb")
    def _check_memory_limit(self, proposal):
        if not proposal["value"] >= 0:
            raise ValueError(f"worker_memory_limit_mb must be >= 0 (0: no limit; got {proposal['value']!r})")
        return proposal["value"]

    @validate("executor")
    def _check_executor(self, proposal):
        if proposal["value"] not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)} (got {proposal['value']!r})")
        return proposal["value"]

    @validate("mp_start_method")
    def _check_start_method(self, proposal):
        if proposal["value"] not in ("spawn", "forkserver"):
            raise ValueError(f"mp_start_method must be 'spawn' or 'forkserver' (got {proposal['value']!r}); "
                             "fork is unsafe in a server")
        return proposal["value"]

    _validator: "Validator | None" = None

    @property
    def validator(self) -> Validator:
        """Where requests are parsed and checked (`validation.py`), made on first use."""
        if self._validator is None:
            self._validator = Validator()
        return self._validator

    def close_validator(self) -> None:
        """Let the validation threads end (daemons: stopping never waits for a check in progress)."""
        if self._validator is not None:
            self._validator.close()
            self._validator = None

    def make_store(self) -> RunStore:
        return RunStore(self.store_root or None, max_age_s=self.retention_max_age_days * 86400.0 or None,
                        max_total_bytes=int(self.retention_max_total_mb * 1024 * 1024) or None)

    def make_executor(self):
        """The executor the settings ask for (None: the Runner's own local process pool)."""
        if self.executor == "local":
            return None
        if self.executor != "dask":
            raise ValueError(f"executor {self.executor!r} is not available")
        from ..dask_executor import DaskExecutor, check_scheduler_address

        address, gateway = self.dask_scheduler_address, self.dask_gateway_address
        if not address and not gateway:
            raise ValueError("executor 'dask' needs dask_scheduler_address (e.g. 'tcp://scheduler:8786') or "
                             "dask_gateway_address; both are empty")
        if address and gateway:
            raise ValueError(f"give only one of dask_scheduler_address (got {address!r}) and "
                             f"dask_gateway_address (got {gateway!r})")
        if self.dask_max_workers < 0:
            raise ValueError(f"dask_max_workers must be >= 0 (got {self.dask_max_workers!r})")
        if self.dask_gateway_workers < 0:
            raise ValueError(f"dask_gateway_workers must be >= 0 (got {self.dask_gateway_workers!r})")
        max_workers = self.dask_max_workers or None
        if address:
            check_scheduler_address(address, "dask_scheduler_address")
            try:
                return DaskExecutor(address, max_workers=max_workers)
            except (OSError, RuntimeError) as err:
                raise RuntimeError(f"executor 'dask': dask_scheduler_address {address!r}: {err}") from None
        try:
            return DaskExecutor.from_gateway(gateway, cluster_name=self.dask_gateway_cluster_name or None,
                                             workers=self.dask_gateway_workers or None,
                                             cluster_options=dict(self.dask_gateway_cluster_options),
                                             max_workers=max_workers)
        except ImportError as err:
            raise ImportError(f"executor 'dask' with dask_gateway_address {gateway!r}: {err}") from None
        except (OSError, RuntimeError) as err:
            raise RuntimeError(f"executor 'dask': dask_gateway_address {gateway!r}: {err}") from None

    def make_runner(self, store: RunStore) -> Runner:
        return Runner(store, self.make_executor(), max_workers=self.max_workers or None,
                      timeout_s=self.run_timeout, max_cases=self.max_cases, mp_context=self.mp_start_method,
                      memory_limit_mb=self.worker_memory_limit_mb or None, prestart=self.prestart_workers,
                      owns_executor=True)     # a Dask client or gateway cluster made here closes with the server

    def apply_retention(self) -> list[str]:
        """Apply the retention settings to `self.store` now (`make_store` gave it them); the ids deleted."""
        return self.store.apply_retention()

    def start_store_upkeep(self) -> threading.Thread:
        """At start: repair drift between the run folders and the index (`RunStore.reconcile`, quick when
        there is none), then apply retention in a background thread, so requests never wait for it (the
        runner applies it again after every run, in its own thread)."""
        added, removed = self.store.reconcile()
        if added or removed:
            log.info("Visual Plumes: run index repaired (%d added, %d removed)", len(added), len(removed))

        def retain() -> None:
            try:
                runner = getattr(self, "runner", None)
                active = runner.active_ids() if runner is not None else []
                gone = self.store.apply_retention(keep=active)
                if gone:
                    log.info("Visual Plumes: retention removed %d run(s)", len(gone))
            except Exception:
                log.exception("Visual Plumes: applying retention failed")

        thread = threading.Thread(target=retain, name="vp-retention", daemon=True)
        thread.start()
        return thread

    def describe_workers(self) -> str:
        if self.executor == "local":
            return f"{self.max_workers or os.cpu_count()} local worker process(es)"
        return f"the {self.executor} executor"
