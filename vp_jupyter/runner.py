"""The server's runner: a job table of runs executed on the task interface (`tasks.py`), recorded in the store.

    runner = Runner(RunStore())                       # a local pool of worker processes (local_pool.py)
    run_id = runner.submit(case, source="api", owner="alice")   # returns at once, status "queued"
    runner.status(run_id)                             # {"status": "running", "progress": {"done": 3, "total": 20}, …}
    record = await runner.wait(run_id)                # from an event loop; or runner.result(run_id) to block
    result = runner.result(run_id)                    # the Result, read back from the store (RunFailed if it did not succeed)
    runner.store.iter_result_json(run_id)             # the result's JSON as stored, in pieces, e.g. to send it

Where things live: this module is the public API (submit, status, list, wait, result, cancel, delete,
shutdown); `jobs.py` the job table entries; `run_dispatch.py` what the shared dispatch loop
(`task_dispatch.py`) runs next and what task outcomes mean for runs (retries, failures, time limits);
`run_finish.py` recording runs that ended; `run_worker.py` the worker
functions; `run_journal.py` the in-flight notes that let the next runner record runs a crash interrupted;
`tasks.py` executors, chunks and worker messages shared with `vp.run` and sweeps; `local_pool.py` the
local process pool.

Design:

* **Executors** (`tasks.Executor`): `submit(fn, *args) -> concurrent.futures.Future`, `shutdown()`,
  optionally `terminate()` (stop all running work now) and a `listener` for worker messages.
  `LocalProcessExecutor` (local_pool.py) runs a loky process pool (fresh interpreters, never fork: a
  server has threads) and replaces it when it breaks. A future that fails with
  `concurrent.futures.BrokenExecutor` means its worker went away; `WorkerDied.pids` names the processes
  that died on their own, when known, and `WorkerDied.cause` what their runs fail with. Tasks must be
  module-level functions with picklable arguments (so must `make_archive` / `make_response`).
* **Chunks**: cases without tidal buildup are independent (`couples_cases` False), so a run is split into
  chunks of consecutive cases spread over the workers; a coupled series runs as one chunk. Workers get
  the chunk's SI `EngineCase`s (not the case JSON: no re-validation per chunk, no dependence on
  time-series files), write the engine outputs (one `OutputTable` per chunk: `tasks.pack_outputs`) to
  the run's parts folder in the store's staging area (`RunStore.parts_dir`) and return only a small report.
* **Finishing happens in a worker, never in this process**: when every chunk is done the parent submits
  ONE finish task (`finalize_run`) to the executor. It gets the validated Case pickled, joins the chunk
  files in case order (one concatenate per column), assembles the `Result`, asks `make_archive(result, run_id)` for the legacy zip and
  `make_response(result, run_id)` for a response body (`response.json.gz`, e.g. the legacy success body),
  saves the run to the store atomically and removes the parts. A coupled series runs and is finished in
  the same task (`run_coupled`). The parent only reads the record the worker returns: it never unpickles
  outputs or builds a `Result`, so a server's event loop never waits for the GIL behind that work.
  `result(run_id)` reads the Result back from the store (notebooks); a server sends the stored files.
* **One supervisor thread** owns dispatching: finish tasks first, then chunks round-robin between runs,
  at most `max_workers` tasks at a time, so a short run is not stuck behind a long one and "running"
  means a worker has it. Workers run at a lower priority (`LocalProcessExecutor(niceness=...)`), so on
  oversubscribed CPUs the submitting process (a server's event loop) is scheduled before them. Completion arrives through future callbacks; no lock is held while calling the executor.
* **Failures**: a run over its wall-clock limit, or cancelled while running, has its workers terminated
  (the pool is replaced; chunks of other runs that were killed with it are simply run again). A worker
  that dies fails the run whose chunk it was running, with `WORKER_DIED`; other runs' chunks are retried.
  Every run that ends is recorded in the store: succeeded with its result, failed or cancelled as
  metadata only. Nothing partial ever lands in the store (it writes atomically), and a run that ends
  leaves nothing in staging (its chunk files and any interrupted save are removed once its tasks are
  gone). A run accepted is noted in the store (`run_journal`): after a crash of the whole process the
  next runner on the store records it as failed (`INTERRUPTED`) and removes its leftovers. Workers end
  when their parent process is gone; a worker over its memory limit fails its run with a message saying
  so (`memory_limit_mb`). The finish task is not
  subject to cancelling or the time limit (like saving before); if it is killed with other work it runs
  again, and if its worker dies the run fails with `WORKER_DIED`.
* **Progress**: workers report their pid when a chunk starts and the number of cases done every
  `PROGRESS_INTERVAL_S` over a pipe shared by the pool; `status()` adds finished chunks and in-flight counts.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import pickle
import threading
import time
import weakref
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .jobs import Job, JobTask, record_status
from .run_dispatch import CANCELLED, Dispatcher
from .run_finish import Finisher
from .run_journal import note_accepted, recover_interrupted
from .task_dispatch import TERMINATE, WAKE
from .store import DEFAULT_PAGE, SOURCES, RunNotFound, RunStore, check_filters, check_run_id, new_run_id
from .store_index import DEFAULT_KIND, created_us, make_cursor
from .tasks import Executor, check_count, plan_chunks
# names the runner's users import from here, defined where they moved when the runner was split up
from .local_pool import WORKER_NICENESS, LocalProcessExecutor, _noop  # noqa: F401,E402
from .run_journal import INTERRUPTED  # noqa: F401,E402
from .run_dispatch import START_GRACE_S, time_limit_message  # noqa: F401,E402
from .run_worker import FinalizeTask, finalize_run, part_name, run_chunk, run_coupled  # noqa: F401,E402
from .tasks import PROGRESS_INTERVAL_S, WORKER_DIED, WorkerDied, join_outputs, pack_outputs, report  # noqa: F401,E402

if TYPE_CHECKING:  # pragma: no cover
    from .results import Result

log = logging.getLogger(__name__)

SHUT_DOWN = "the runner was shut down before the run finished"


class RunFailed(RuntimeError):
    """`Runner.result` of a run that failed or was cancelled: `status` and `error` say what happened."""

    def __init__(self, run_id: str, status: str, error: str | None):
        self.run_id, self.status, self.error = run_id, status, error
        super().__init__(f"run {run_id} {status}: {error}" if error else f"run {run_id} {status}")




def _status_filter(*, source: Any, owner: Any, owners: Any, status: Any, text: Any, since: Any,
                   until: Any) -> Callable[[dict[str, Any]], bool]:
    """A test of `status()` dicts for the filters of `Runner.page` (times as µs since the epoch)."""
    visible = None if owners is None else set(owners)
    needle = (text or "").casefold()

    def wanted(entry: dict[str, Any]) -> bool:
        created = created_us(entry["created"])
        return ((source is None or entry["source"] == source) and (owner is None or entry["owner"] == owner)
                and (visible is None or entry["owner"] in visible) and (status is None or entry["status"] == status)
                and needle in (entry.get("case_name") or "").casefold()
                and (since is None or created >= since) and (until is None or created < until))
    return wanted


class Runner(Dispatcher, Finisher):
    """Runs cases in an executor and records every run in a store (see the module docstring).

    `store`: a RunStore (default: the default store). `executor`: default a `LocalProcessExecutor` with
    `max_workers` workers started with `mp_context` (spawn, or forkserver). `timeout_s`: wall-clock limit
    of a run from the moment a worker first starts on it (None: no limit). `max_cases`: largest number of
    cases a submitted case may have (None: the input layer's limit). `chunk_size`: cases per chunk of an
    independent series (default: about CHUNKS_PER_WORKER chunks per worker, at most MAX_CHUNK_CASES).
    The executor's workers must see the store's folder (they write the chunk results and the run there).
    `owns_executor`: shut the executor down with the runner (default: only when the runner made it).
    `memory_limit_mb`: resident memory each worker of the runner's own local pool may use (None: no
    limit); a run over it fails with a message saying so. `prestart`: start the workers now, in the
    background, so the first run does not wait for them.
    On start the runner records the runs a runner that died left in flight in the store as failed
    (`run_journal.INTERRUPTED`) and removes their staging leftovers (`recovered`: their ids).
    """

    def __init__(self, store: RunStore | None = None, executor: Executor | None = None, *,
                 max_workers: int | None = None, timeout_s: float | None = None, max_cases: int | None = None,
                 chunk_size: int | None = None, mp_context: Any = "spawn", owns_executor: bool | None = None,
                 memory_limit_mb: float | None = None, prestart: bool = False):
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                      or not timeout_s > 0):
            raise ValueError(f"timeout_s must be a number > 0 or None (got {timeout_s!r})")
        check_count("max_cases", max_cases)
        check_count("chunk_size", chunk_size)
        self.store = store if store is not None else RunStore()
        self._own_executor = executor is None if owns_executor is None else bool(owns_executor)
        self.executor = (executor if executor is not None
                         else LocalProcessExecutor(max_workers, mp_context, memory_limit_mb=memory_limit_mb))
        max_workers = int(getattr(self.executor, "max_workers", None) or max_workers or os.cpu_count() or 1)
        self.timeout_s = timeout_s
        self.max_cases = max_cases
        self.chunk_size = chunk_size
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}                    # active runs (queued, running, finishing)
        self._finished: "OrderedDict[str, Job]" = OrderedDict()
        self._order: deque[Job] = deque()                  # runs with chunks waiting, round robin
        self._finals: deque[Job] = deque()                 # runs waiting for their finish task
        self._finisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vp-runner-save")
        self._start_dispatching(self.executor, max_workers, name="vp-runner", lock=self._lock)
        _LIVE_RUNNERS.add(self)
        _register_exit_hook()
        try:
            self.recovered = recover_interrupted(self.store)
        except OSError as err:              # e.g. a read-only store: runs cannot be submitted either
            log.error("recording the runs interrupted in %s failed: %s", self.store.root, err)
            self.recovered = []
        if prestart and callable(getattr(self.executor, "prestart", None)):
            threading.Thread(target=self._prestart, name="vp-runner-prestart", daemon=True).start()

    # -- public API --------------------------------------------------------------------------------

    def submit(self, case: Any, *, source: str, owner: str = "", request: Any = None,
               request_files: "Mapping[str, bytes] | None" = None,
               make_archive: "Callable[[Result, str], bytes] | None" = None,
               make_response: "Callable[[Result, str], str | bytes] | None" = None) -> str:
        """Queue a run and return its id at once. `case`: a Case (no work here) or anything `Case.load`
        takes (validated here: for big cases do that off the event loop). `request` / `request_files`:
        the original request, stored with the run. `make_archive(result, run_id) -> bytes`: builds the
        legacy zip; `make_response(result, run_id) -> str`: a response body stored with the run
        (`response_path`). Both run in a worker process, so they must be picklable (module-level)."""
        from .engine.series import couples_cases
        from .inputs import Case, CaseError

        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
        if not isinstance(owner, str):
            raise TypeError("owner must be a string")
        for name, maker in (("make_archive", make_archive), ("make_response", make_response)):
            if maker is not None:
                _check_picklable(name, maker)
        case = Case.load(case, max_cases=self.max_cases)
        engine_cases = case.engine_cases()
        if self.max_cases is not None and len(engine_cases) > self.max_cases:
            raise CaseError([f"timeseries: the case has {len(engine_cases)} cases; at most {self.max_cases} "
                             "are allowed here"])
        coupled = couples_cases(engine_cases)
        chunks = [JobTask(start, stop, index) for index, (start, stop) in
                  enumerate(plan_chunks(len(engine_cases), coupled, self.max_workers, self.chunk_size))]
        case_json = case.to_dict(inline_files=True)
        if any(series["file"] for series in case.series_info()):
            # the run keeps its series as read now (the worker that finishes it gets this Case), not the files
            case = Case.from_dict(case_json, max_cases=self.max_cases)
        job = Job(id=new_run_id(), case=case, case_json=case_json, engine_cases=engine_cases,
                   time_step=case.time_step, coupled=coupled, source=source, owner=owner, request=request,
                   request_files=request_files, make_archive=make_archive, make_response=make_response,
                   chunks=chunks, created=time.time(), total=len(engine_cases), case_name=case.name)
        job.pending.extend(chunks)
        job.done_future.set_running_or_notify_cancel()      # waiters can never cancel it
        note_accepted(self.store, job.id, job.case_json, case_count=job.total, source=source, owner=owner,
                      created=job.created)
        if not coupled:
            self.store.parts_dir(job.id, create=True)
        with self._lock:
            if self._closed:
                closed = True
            else:
                closed = False
                self._jobs[job.id] = job
                self._order.append(job)
        if closed:
            self.store.discard_staging(job.id)
            self.store.clear_in_flight(job.id)
            raise RuntimeError("the runner was shut down")
        self._events.put(WAKE)
        return job.id

    def status(self, run_id: str) -> dict[str, Any]:
        """`id, status (queued/running/succeeded/failed/cancelled), progress {done, total}, created, started,
        finished, duration_s, error, source, owner, case_name, case_count` (times ISO-8601 UTC). RunNotFound
        if unknown."""
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id)
            if job is not None:
                return job.status()
            job = self._finished.get(run_id)
        if job is not None and (job.record is None or self.store.exists(run_id)):
            return job.status()             # (a run whose saving failed is known only here)
        if job is not None:                 # removed from the store meanwhile
            with self._lock:
                self._finished.pop(run_id, None)
        return record_status(self.store.get(run_id))

    def list(self, source: str | None = None, owner: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[dict[str, Any]]:
        """Active and stored runs (as `status()` dicts), newest first, optionally filtered."""
        with self._lock:                    # before the store: a run ending meanwhile shows as running
            active = {job.id: job.status() for job in self._jobs.values()}
            ended = [(job.id, job.status(), job.record is None) for job in self._finished.values()]
        stored = {r.id: record_status(r) for r in self.store.list(source=source, owner=owner)}
        # runs ended here are told from memory, unless they were removed from the store meanwhile
        known = {run_id: status for run_id, status, unsaved in ended if run_id in stored or unsaved}
        merged = list({**stored, **known, **active}.values())
        merged = [s for s in merged if (source is None or s["source"] == source)
                  and (owner is None or s["owner"] == owner) and (status is None or s["status"] == status)]
        merged.sort(key=lambda s: (s["created"] or "", s["id"]), reverse=True)
        return merged if limit is None else merged[:max(0, int(limit))]

    def page(self, limit: int | None = DEFAULT_PAGE, before: str | None = None, *, source: str | None = None,
             owner: str | None = None, owners: "Sequence[str] | None" = None, status: str | None = None,
             text: str | None = None, since: Any = None, until: Any = None,
             kind: str | None = DEFAULT_KIND) -> tuple[list[dict[str, Any]], str | None]:
        """One page of runs (as `status()` dicts), newest first, and the cursor of the next page (None on
        the last): the store's page (`RunStore.page`, same arguments) with the runs active here merged in
        where they belong, so queued and running runs (of kind "run") are listed too. Reads the index: call it off an
        event loop."""
        checked = check_filters(limit=limit, before=before, source=source, status=status, since=since, until=until)
        with self._lock:                    # before the store: a run ending meanwhile shows as running
            live = [job.status() for job in self._jobs.values()]
            live += [job.status() for job in self._finished.values() if job.record is None]   # saving failed
        if kind not in (None, DEFAULT_KIND):
            live = []
        page = self.store.page(limit, before, source=source, owner=owner, owners=owners, status=status, text=text,
                               since=since, until=until, kind=kind)
        stored = [record_status(record) for record in page.records]

        def key(entry: dict[str, Any]) -> tuple[int, str]:
            return created_us(entry["created"]), entry["id"]

        floor = key(stored[-1]) if page.next is not None and stored else None      # the page reaches down to here
        wanted = _status_filter(source=source, owner=owner, owners=owners, status=status, text=text,
                                since=checked["since"], until=checked["until"])
        merged = {entry["id"]: entry for entry in stored}
        for entry in live:
            where = key(entry)
            if (wanted(entry) and (checked["before"] is None or where < checked["before"])
                    and (floor is None or where >= floor)):
                merged[entry["id"]] = entry
        rows = sorted(merged.values(), key=key, reverse=True)
        more = page.next is not None
        if limit is not None and len(rows) > limit:
            rows, more = rows[:limit], True
        return rows, (make_cursor(rows[-1]["created"], rows[-1]["id"]) if more and rows else None)

    def active_ids(self) -> list[str]:
        """Ids of the runs queued or running here (retention must spare them)."""
        with self._lock:
            return list(self._jobs)

    def active_count(self, owner: str | None = None) -> int:
        """Runs queued or running (of `owner`, or of everyone)."""
        with self._lock:
            return sum(1 for job in self._jobs.values() if owner is None or job.owner == owner)

    def worker_pids(self, run_id: str) -> list[int]:
        """Process ids of the workers running tasks of this run right now (its chunks, or its finish)."""
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None:
                return []
            return sorted({c.pid for c in job.tasks() if c.token is not None and c.pid is not None})

    def chunks(self, run_id: str) -> list[tuple[int, int]]:
        """The [start, stop) case ranges a run was split into (active or recently finished runs)."""
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id) or self._finished.get(run_id)
            if job is None:
                raise RunNotFound(f"run {run_id} is not active")
            return [(c.start, c.stop) for c in job.chunks]

    async def wait(self, run_id: str) -> dict[str, Any]:
        """Wait without blocking the event loop until the run has ended; its final `status()`."""
        future = self._done_future(run_id)
        if future is not None and not future.done():
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()

            def wake(_: Future) -> None:
                try:
                    loop.call_soon_threadsafe(lambda: waiter.done() or waiter.set_result(None))
                except RuntimeError:        # the loop was closed meanwhile
                    pass

            future.add_done_callback(wake)
            await waiter
        return self.status(run_id)

    def wait_sync(self, run_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the run has ended (TimeoutError after `timeout` s); its final `status()`."""
        future = self._done_future(run_id)
        if future is not None:
            try:
                future.result(timeout)
            except TimeoutError:
                raise TimeoutError(f"run {run_id} did not finish within {timeout} s") from None
        return self.status(run_id)

    def result(self, run_id: str, timeout: float | None = None) -> "Result":
        """Block until the run has ended and return its Result, rebuilt from the store (the Result is made
        in a worker; this process only ever reads it back); RunFailed if it failed or was cancelled."""
        final = self.wait_sync(run_id, timeout)
        if final["status"] != "succeeded":
            raise RunFailed(run_id, final["status"], final["error"])
        result = self.store.load_result(run_id)
        result.run_id = run_id
        return result

    async def result_async(self, run_id: str) -> "Result":
        """`result()` for an event loop: waits without blocking it and loads the stored result in a thread."""
        await self.wait(run_id)
        return await asyncio.get_running_loop().run_in_executor(None, self.result, run_id)

    def response_path(self, run_id: str) -> Path:
        """Path of the body `make_response` made for the run, stored with it (RunNotFound if none)."""
        return self.store.response_path(run_id)

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run (a running one has its workers terminated). False when it has
        already ended; RunNotFound when there is no such run."""
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id)
            ended = job is None or job.state not in ("queued", "running")
            known = job is not None or run_id in self._finished
            terminate = False if ended else self._abort(job, "cancelled", CANCELLED)
        if terminate:
            self._events.put(TERMINATE)
        if ended and not known:
            self.store.get(run_id)          # RunNotFound if it never existed
        return not ended

    def delete(self, run_id: str) -> None:
        """Remove a run: a stored one from the store; a queued or running one is cancelled and dropped
        instead of being stored. RunNotFound if there is no such run."""
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id)
            terminate = False
            if job is not None:
                job.discard = True
                terminate = self._abort(job, "cancelled", CANCELLED)
            self._finished.pop(run_id, None)
        if terminate:
            self._events.put(TERMINATE)
        if job is None:
            self.store.delete(run_id)

    def shutdown(self, wait: bool = True) -> None:
        """Stop: runs not finished yet (queued, running, or waiting to be finished) are recorded as
        cancelled, the workers are stopped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for job in list(self._jobs.values()):
                self._abort(job, "cancelled", SHUT_DOWN, finishing=True)
        self._terminate_executor()
        self._stop_dispatching()
        self._finisher.shutdown(wait=wait)
        if self._own_executor:
            self.executor.shutdown(wait=wait)

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # -- internals ---------------------------------------------------------------------------------

    def _prestart(self) -> None:
        """Start the workers (and import the model there) now, so the first run does not wait for them."""
        try:
            self.executor.prestart()
        except Exception as err:            # the first run starts them, or reports why it cannot
            log.warning("starting the worker processes ahead failed: %s", err)

    def _done_future(self, run_id: str) -> Future | None:
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id) or self._finished.get(run_id)
        if job is not None:
            return job.done_future
        self.store.get(run_id)              # RunNotFound if unknown
        return None

_LIVE_RUNNERS: "weakref.WeakSet[Runner]" = weakref.WeakSet()
_exit_hook_registered = False


def _shut_down_live_runners() -> None:
    """At interpreter exit: stop the workers of runners nobody shut down, recording their unfinished
    runs as cancelled (otherwise the process pool would make the exit wait for every running chunk)."""
    for runner in list(_LIVE_RUNNERS):
        try:
            runner.shutdown()
        except Exception:                   # exiting anyway
            log.exception("shutting down a runner at exit failed")


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if _exit_hook_registered:
        return
    _exit_hook_registered = True
    # threading's exit hooks run before the process pool's own (which joins running work) when registered
    # after it; plain atexit hooks would run only after that join
    register = getattr(threading, "_register_atexit", None) or atexit.register
    try:
        register(_shut_down_live_runners)
    except RuntimeError:                    # already shutting down
        pass


def _check_picklable(name: str, maker: Any) -> None:
    if not callable(maker):
        raise TypeError(f"{name} must be callable")
    try:
        pickle.dumps(maker)
    except Exception as err:
        raise TypeError(f"{name} runs in a worker process, so it must be picklable (a module-level function); "
                        f"{maker!r} is not ({err})") from None
