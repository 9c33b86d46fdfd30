"""The dispatching half of the server's `Runner` (a mixin; the Runner sets up its state), on the task
interface's dispatch loop (`task_dispatch.TaskDispatcher`): which task runs next — runs waiting to be
finished first, then chunks round robin between runs —, what a worker message means for a run (its
worker pid, cases done, the start of its time limit), what each task's end means (report, retry when it
was killed with other work, failure), and the runs' time limits. Ending a run hands it to the
`run_finish.Finisher` half.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import BrokenExecutor, Future
from typing import Any, Callable

from .jobs import Job, JobTask
from .run_worker import FinalizeTask, finalize_run, run_chunk, run_coupled
from .task_dispatch import TaskDispatcher
from .tasks import WORKER_DIED, WorkerMemoryExceeded

log = logging.getLogger("vp_jupyter.runner")

CANCELLED = "the run was cancelled"
START_GRACE_S = 60.0           # time allowed for worker start-up before a run's time limit starts anyway
MAX_RETRIES = 3                # a chunk killed together with another run's work is run again this often


def time_limit_message(limit_s: float) -> str:
    return f"run exceeded the time limit of {limit_s:g} s"


class Dispatcher(TaskDispatcher):
    """Dispatch order, task outcomes, retries and time limits of a `Runner`."""

    def _task_message(self, job: Job, task: JobTask, kind: str, value: Any) -> None:
        """A worker started a task of `job` (its time limit starts with its first chunk) or counted cases done."""
        if kind == "start":
            task.pid = int(value)
            if job.limit_from is None and not task.finalize:
                job.limit_from = time.monotonic()
        elif kind == "progress" and not task.finalize:
            task.done = min(int(value), task.size)

    def _deadline(self, job: Job) -> float | None:
        """When a running job hits its time limit (monotonic), counted from the moment a worker first
        started on it, so pool start-up is not charged to the run (within START_GRACE_S)."""
        if self.timeout_s is None or job.state != "running" or job.started_mono is None:
            return None
        if job.limit_from is not None:
            return job.limit_from + self.timeout_s
        return job.started_mono + self.timeout_s + (START_GRACE_S if self._has_messages else 0.0)

    def _deadlines(self) -> list[float]:
        return [d for d in map(self._deadline, self._jobs.values()) if d is not None]

    def _check_time_limits(self) -> bool:
        now, terminate = time.monotonic(), False
        for job in list(self._jobs.values()):
            deadline = self._deadline(job)
            if deadline is not None and now > deadline:
                terminate |= self._abort(job, "failed", time_limit_message(self.timeout_s))
        return terminate

    def _finalize_task(self, job: Job) -> FinalizeTask:
        return FinalizeTask(store=self.store, run_id=job.id, case=job.case,
                            source=job.source, owner=job.owner, created=job.created, started=job.started,
                            request=job.request, request_files=job.request_files,
                            make_archive=job.make_archive, make_response=job.make_response)

    def _pick(self) -> "tuple[Job, JobTask, Callable[[int], tuple[Callable[..., Any], tuple]]] | None":
        """The next task (lock held): runs waiting to be finished first, then chunks, round robin
        between runs."""
        while self._finals:
            job = self._finals.popleft()
            task = job.finalizer
            if (job.state != "finishing" or job.final_status != "succeeded" or task is None
                    or task.token is not None or job.outcome is not None):
                continue
            files = [c.meta["file"] for c in job.chunks]
            return job, task, lambda token: (finalize_run, (self._finalize_task(job), files, token))
        while self._order:
            job = self._order.popleft()
            if job.state not in ("queued", "running") or not job.pending:
                continue
            task = job.pending.popleft()
            if job.state == "queued":
                job.state, job.started, job.started_mono = "running", time.time(), time.monotonic()
            if job.pending:
                self._order.append(job)
            cases = job.engine_cases[task.start:task.stop]
            if job.coupled:
                return job, task, lambda token: (run_coupled, (cases, job.time_step, token, self._finalize_task(job)))
            parts = str(self.store.parts_dir(job.id))
            return job, task, lambda token: (run_chunk, (cases, job.time_step, token, parts, task.index))
        return None

    def _task_ended(self, job: Job, task: JobTask, pid: "int | None", future: Future) -> bool:
        """A dispatched task of `job` ended (lock held). True when the workers must be terminated."""
        if future.cancelled():
            return self._retry(job, task, count=False)
        error = future.exception()
        if error is None:
            return self._task_succeeded(job, task, future.result())
        if isinstance(error, BrokenExecutor):
            if getattr(error, "intentional", False):
                return self._retry(job, task, count=False)
            if pid is not None and pid in getattr(error, "pids", ()):
                return self._abort(job, "failed", getattr(error, "cause", WORKER_DIED), finishing=True)
            return self._retry(job, task, count=True)
        if task.finalize:
            log.error("finishing run %s failed: %s", job.id, error)
            return self._abort(job, "failed", f"finishing the run failed: {error}", finishing=True)
        return self._abort(job, "failed", _error_text(error))

    def _task_succeeded(self, job: Job, task: JobTask, value: dict) -> bool:
        """A task's report arrived (lock held): small metadata only, the outputs stay in files."""
        if task.finalize:
            job.outcome = value
            self._jobs_finishing(job)
            return False
        if job.coupled:
            task.meta = value["chunk"]
            job.cases_done += task.size
            refused = self._refusal(job)
            if refused is not None:
                return self._abort(job, "failed", refused)
            job.state, job.final_status, job.outcome = "finishing", "succeeded", value["final"]
            self._jobs_finishing(job)
            return False
        task.meta = value
        job.cases_done += task.size
        if any(c.meta is None for c in job.chunks):
            return False
        refused = self._refusal(job)
        if refused is not None:
            return self._abort(job, "failed", refused)
        job.state, job.final_status = "finishing", "succeeded"
        job.finalizer = JobTask(0, job.total, finalize=True)
        self._finals.append(job)
        return False

    def _refusal(self, job: Job) -> str | None:
        """The error of the first case the model refused (as vp.run words it), or None."""
        from .inputs import CaseError

        for chunk in job.chunks:
            refused = (chunk.meta or {}).get("refused")
            if refused:
                offset, message = refused
                where = f"case {chunk.start + int(offset) + 1}: " if job.total > 1 else ""
                return str(CaseError([f"{where}{message}"]))
        return None

    def _retry(self, job: Job, task: JobTask, count: bool) -> bool:
        """Run a task again (it was killed with other work, or its worker died without us knowing which)."""
        if count:
            task.attempts += 1
            if task.attempts > MAX_RETRIES:
                return self._abort(job, "failed", WORKER_DIED, finishing=True)
        if task.finalize:
            if job.state == "finishing" and job.final_status == "succeeded" and job.outcome is None:
                log.info("run %s: it is finished again (its worker was stopped)", job.id)
                self._finals.appendleft(job)
            return False
        log.info("run %s: cases %d-%d are run again (their worker was stopped)", job.id, task.start + 1, task.stop)
        task.done = 0
        job.pending.appendleft(task)
        if job not in self._order:
            self._order.appendleft(job)
        return False

    def _abort(self, job: Job, status: str, error: str, finishing: bool = False) -> bool:
        """End a queued or running run (with `finishing`: also one waiting to be finished) as failed or
        cancelled (lock held); its tasks are dropped. True when some of them are running, so the
        workers must be terminated."""
        awaiting_finish = job.state == "finishing" and job.final_status == "succeeded" and job.outcome is None
        if job.state not in ("queued", "running") and not (finishing and awaiting_finish):
            return False
        running = self._drop_tasks(job.tasks())
        job.pending.clear()
        log.log(logging.INFO if status == "cancelled" else logging.WARNING, "run %s %s: %s", job.id, status, error)
        job.state, job.final_status, job.error, job.outcome = "finishing", status, error, None
        self._jobs_finishing(job)
        return running


def _error_text(error: BaseException) -> str:
    from .inputs import CaseError

    if isinstance(error, (CaseError, WorkerMemoryExceeded)):
        return str(error)
    return f"the model failed: {type(error).__name__}: {error}"
