"""The finishing half of the server's `Runner` (a mixin; the Runner sets up its state): records every run
that ended — a succeeded run was stored by its worker, a failed or cancelled one is stored here as
metadata once its stopped tasks are gone — removes its staging leftovers and its in-flight note, answers
its waiters and applies the store's retention policy.
"""
from __future__ import annotations

import logging
import threading
import time

from .jobs import Job
from .store import RunNotFound, RunRecord

log = logging.getLogger("vp_jupyter.runner")

KEEP_FINISHED = 256            # finished runs whose status is answered from memory
IDLE_WAIT_S = 30.0             # how long an ended run waits for its terminated tasks to go away


class Finisher:
    """Recording the runs of a `Runner` that ended (on its finisher threads)."""

    def _jobs_finishing(self, job: Job) -> None:
        job.finished = time.time()
        try:
            self._finisher.submit(self._finish, job)
        except RuntimeError:                # finisher already shut down: never wait while holding the lock
            threading.Thread(target=self._finish, args=(job,), name="vp-runner-save", daemon=True).start()

    def _finish(self, job: Job) -> None:
        """Record a run that ended (finisher thread). A succeeded run was stored by its worker: only its
        record is read here. A failed or cancelled one is stored as metadata (once its terminated tasks
        are gone, so none of them writes afterwards). Then the run's staging leftovers are removed."""
        if job.outcome is None and self._can_terminate and not job.idle.wait(IDLE_WAIT_S):
            log.warning("run %s: its stopped tasks have not ended after %g s", job.id, IDLE_WAIT_S)
        status, error, record = job.final_status, job.error, None
        try:
            if job.outcome is not None:
                record = RunRecord.from_dict(job.outcome["record"])
                status, error = record.status, record.error
                job.finished = float(job.outcome.get("finished") or job.finished or time.time())
            elif not job.discard:
                record = self._save(job, status, error)
                status, error = record.status, record.error
        except Exception as err:            # never leave a waiter hanging
            log.exception("finishing run %s failed", job.id)
            status, error, record = "failed", f"finishing the run failed: {err}", None
        try:
            self.store.discard_staging(job.id)      # chunk results, a save interrupted by a kill
            self.store.clear_in_flight(job.id)      # recorded: no longer at risk
        except OSError:
            log.exception("removing the staging files of run %s failed", job.id)
        with self._lock:
            discard = job.discard
            job.state, job.error, job.record = status, error, record
            # only the status is answered from memory now: let the inputs go
            job.case = job.case_json = job.request = job.request_files = None
            job.make_archive = job.make_response = None
            job.engine_cases = []
            job.outcome = None
            self._jobs.pop(job.id, None)
            if not discard:
                self._finished[job.id] = job
            while len(self._finished) > KEEP_FINISHED:
                self._finished.popitem(last=False)
        if discard:                         # deleted while it was running or being saved
            try:
                self.store.delete(job.id)
            except RunNotFound:
                pass
        job.done_future.set_result(job.status())
        try:
            self.store.apply_retention(keep=[job.id, *self.active_ids()])     # in this thread: never in a request's way
        except Exception:
            log.exception("applying the store's retention policy failed")

    def _save(self, job: Job, status: str, error: str | None) -> RunRecord:
        """Store a run that did not succeed (metadata only)."""
        try:
            return self.store.save(job.case, None, status=status, error=error, source=job.source, owner=job.owner,
                                   created=job.created, started=job.started, finished=job.finished,
                                   request=job.request, request_files=job.request_files, run_id=job.id)
        except FileExistsError:             # its worker stored it just before it was stopped: that stands
            return self.store.get(job.id)
