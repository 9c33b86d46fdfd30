"""Studies started through the JSON API (`POST api/studies`): the request checked, the study run in a
background thread of the server — one study at a time, its members through `sweeps.run_cases` on the
jobs' own local pool of worker processes (spawned, as the runner's) — and recorded in the store as one
entry of kind "study", succeeded or failed. `shutdown()` (the server stopping) terminates that pool: a
study in progress is recorded as cancelled, never left half-written. `delete(id)` (`DELETE api/runs/<id>`)
drops a queued study and stops a running one (its workers are terminated), which is then not stored at all,
as a run deleted while it runs. While it is queued or running its status is answered from here, in the
form of `Runner.status` (plus ``kind``); afterwards from the store like any run.

The request body:

    {"study": "uncertainty", "case": {...}, "inputs": {"diffuser.effluent_flow": ["normal", 0.1, 0.02]},
     "n": 200, "seed": 1, "method": "lhs", "target_dilution": 100, "concentration_limit": 0.5}
    {"study": "sensitivity", "case": {...}, "bounds": {"diffuser.effluent_flow": [0.05, 0.2]},
     "method": "sobol", "n": 64, "seed": 1, "output": "mz_dilution"}
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..inputs import Case
    from ..store import RunStore

log = logging.getLogger(__name__)

UNCERTAINTY_OPTIONS = ("n", "seed", "method", "target_dilution", "concentration_limit")
SENSITIVITY_OPTIONS = ("n", "seed", "method", "output")
MAX_API_MEMBERS = 20_000
SHUT_DOWN = "the server stopped before the study finished"


class StudyDeleted(Exception):
    """Raised in a study's progress callback once the study was deleted: it stops the members' plan."""


@dataclass
class StudyRequest:
    """A checked study request: the base case, which study, and the keyword arguments of
    `vp.uncertainty` / `vp.sensitivity` (inputs or bounds included)."""
    case: "Case"
    kind: str
    arguments: dict[str, Any]


def parse_request(data: Any, max_cases: int | None = None) -> StudyRequest:
    """Check a `POST api/studies` body (CaseError listing every problem)."""
    from ..inputs import Case, CaseError
    from .run import _check_count, _check_keys, check_bounds
    from .sampling import distributions

    if not isinstance(data, dict):
        raise CaseError(["body: must be a JSON object with 'study', 'case' and 'inputs' or 'bounds'"])
    kind = data.get("study")
    if kind not in ("uncertainty", "sensitivity"):
        raise CaseError([f"study: must be 'uncertainty' or 'sensitivity' (got {kind!r})"])
    allowed = {"study", "case", "inputs" if kind == "uncertainty" else "bounds",
               *(UNCERTAINTY_OPTIONS if kind == "uncertainty" else SENSITIVITY_OPTIONS)}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise CaseError([f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"])
    if not isinstance(data.get("case"), dict):
        raise CaseError(["case: must be a case object (the case JSON format)"])
    case = Case.load(data["case"], allow_files=False, max_cases=max_cases)
    target = "inputs" if kind == "uncertainty" else "bounds"
    _check_keys(case, data.get(target))
    if kind == "uncertainty":
        try:
            distributions(data[target])
        except ValueError as err:
            raise CaseError([str(err)]) from None
    else:
        check_bounds(case, data[target])
    n = data.get("n", 200 if kind == "uncertainty" else None)
    if n is not None:
        _check_count(n)
        members = n * (1 if kind == "uncertainty" else len(data[target]) + 2)
        if members > MAX_API_MEMBERS:
            raise CaseError([f"n: {members} members is more than the {MAX_API_MEMBERS} a server study may have"])
    arguments = {key: data[key] for key in allowed - {"study", "case"} if key in data}
    return StudyRequest(case, kind, arguments)


@dataclass
class _Job:
    id: str
    owner: str
    source: str
    request: StudyRequest
    created: float = field(default_factory=time.time)
    started: float | None = None
    state: str = "queued"
    done: int = 0
    total: int = 0
    deleted: bool = False

    def status(self) -> dict[str, Any]:
        from ..store import iso_time

        return {"id": self.id, "status": self.state, "progress": {"done": self.done, "total": self.total},
                "created": iso_time(self.created), "started": iso_time(self.started), "finished": None,
                "duration_s": None, "error": None, "source": self.source, "owner": self.owner,
                "case_name": self.request.case.name, "case_count": len(self.request.case.case_times),
                "kind": "study"}


class StudyJobs:
    """Studies queued or running in a server (see the module docstring). `max_workers`: worker processes
    of each study's pool (None: one per CPU core)."""

    def __init__(self, store: "RunStore", max_workers: int | None = None):
        self.store, self.max_workers = store, max_workers
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vp-study")
        self._workers: Any = None           # the LocalProcessExecutor of the members, made on first use
        self._closed = False

    def submit(self, request: StudyRequest, *, owner: str, source: str = "api") -> str:
        """Queue a checked study; its run id at once."""
        from ..store import new_run_id

        job = _Job(new_run_id(), owner, source, request)
        with self._lock:
            self._jobs[job.id] = job
        self._pool.submit(self._run, job)
        return job.id

    def status(self, run_id: str) -> dict[str, Any] | None:
        """The status of a queued or running study (None when it is not one)."""
        with self._lock:
            job = self._jobs.get(run_id)
            return job.status() if job is not None else None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [job.status() for job in self._jobs.values()]

    def delete(self, run_id: str) -> bool:
        """Drop a queued study, stop a running one (nothing of it is stored); False when `run_id` is not a
        study queued or running here."""
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None:
                return False
            job.deleted = True
            workers = self._workers if job.state == "running" else None
        if workers is not None:             # one study runs at a time: these workers run only its members
            workers.terminate()
        return True

    def active_count(self, owner: str | None = None) -> int:
        with self._lock:
            return sum(1 for job in self._jobs.values() if owner is None or job.owner == owner)

    def shutdown(self) -> None:
        """Stop: queued studies are dropped, a running one has its workers terminated (recorded as cancelled)."""
        with self._lock:
            self._closed = True
            workers = self._workers
        self._pool.shutdown(wait=False, cancel_futures=True)
        if workers is not None:
            workers.terminate()
            workers.shutdown(wait=False)

    def _executor(self) -> Any:
        from ..runner import LocalProcessExecutor

        with self._lock:
            if self._workers is None:
                self._workers = LocalProcessExecutor(self.max_workers)
            return self._workers

    def _run(self, job: _Job) -> None:
        from .run import sensitivity, uncertainty
        from .storage import save_study

        with self._lock:
            if job.deleted:                 # deleted while it was queued
                self._jobs.pop(job.id, None)
                return
            job.started, job.state = time.time(), "running"

        def progress(done: int, total: int) -> None:
            if job.deleted:
                raise StudyDeleted(job.id)
            job.done, job.total = done, total

        request = job.request
        study_of = uncertainty if request.kind == "uncertainty" else sensitivity
        try:
            study = study_of(request.case, **request.arguments, executor=self._executor(), progress=progress,
                             store=False)
            if not job.deleted:
                save_study(study, self.store, source=job.source, started=job.started, finished=time.time(),
                           owner=job.owner, run_id=job.id)
        except Exception as error:          # recorded as a failed (or cancelled) study, never lost
            if job.deleted:                 # stopped by `delete` (its workers were terminated): not kept
                log.info("study %s was deleted while it ran", job.id)
                return
            log.warning("study %s failed: %s", job.id, error)
            stopped = self._closed
            try:
                self.store.save(request.case, source=job.source, owner=job.owner,
                                status="cancelled" if stopped else "failed", started=job.started,
                                finished=time.time(), run_id=job.id, kind="study",
                                error=SHUT_DOWN if stopped else f"{type(error).__name__}: {error}")
            except Exception:               # pragma: no cover - the store itself failed
                log.exception("study %s could not be recorded", job.id)
        finally:
            with self._lock:
                self._jobs.pop(job.id, None)
            if job.deleted:                 # deleted at any point while it was here: nothing of it stays
                self._forget(job.id)


    def _forget(self, run_id: str) -> None:
        from ..store import RunNotFound

        try:
            self.store.delete(run_id)
        except RunNotFound:
            pass


def jobs_of(app: Any) -> StudyJobs:
    """The StudyJobs of a server app (made on first use, with the store and the worker count of its runner)."""
    jobs = getattr(app, "vp_study_jobs", None)
    if jobs is None:
        jobs = StudyJobs(app.store, getattr(app.runner, "max_workers", None))
        app.vp_study_jobs = jobs
    return jobs
