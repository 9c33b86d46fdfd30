"""Running cases away from the caller: executors behind one small interface, chunking, progress, time limits.

    runner = Runner(RunStore())                       # a local pool of spawned worker processes
    run_id = runner.submit(case, source="api", owner="alice")   # returns at once, status "queued"
    runner.status(run_id)                             # {"status": "running", "progress": {"done": 3, "total": 20}, …}
    record = await runner.wait(run_id)                # from an event loop; or runner.result(run_id) to block
    result = runner.result(run_id)                    # the Result, read back from the store (RunFailed if it did not succeed)
    runner.store.result_path(run_id)                  # result.json as stored, e.g. to send as it is

Design:

* **Executors** (`Executor`): `submit(fn, *args) -> concurrent.futures.Future`, `shutdown()`, optionally
  `terminate()` (stop all running work now) and a `listener` for worker messages. `LocalProcessExecutor`
  wraps a `ProcessPoolExecutor` started with spawn or forkserver (never fork: a server has threads) and
  replaces the pool when it breaks. A future that fails with `concurrent.futures.BrokenExecutor` means its
  worker went away; `WorkerDied.pids` names the processes that died on their own, when known. Tasks
  must be module-level functions with picklable arguments (so must `make_archive` / `make_response`).
* **Chunks**: cases without tidal buildup are independent (`couples_cases` False), so a run is split into
  chunks of consecutive cases spread over the workers; a coupled series runs as one chunk. Workers get
  the chunk's SI `EngineCase`s (not the case JSON: no re-validation per chunk, no dependence on
  time-series files), write the engine outputs (columns packed as float arrays) to the run's parts
  folder in the store's staging area (`RunStore.parts_dir`) and return only a small report.
* **Finishing happens in a worker, never in this process**: when every chunk is done the parent submits
  ONE finish task (`finalize_run`) to the executor. It rebuilds the Case from its JSON, loads the chunk
  files in case order, assembles the `Result`, asks `make_archive(result, run_id)` for the legacy zip and
  `make_response(result, run_id)` for a response body (`response.json`, e.g. the legacy success body),
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
  gone; a crash of the whole process leaves them to `RunStore.clean_staging`). The finish task is not
  subject to cancelling or the time limit (like saving before); if it is killed with other work it runs
  again, and if its worker dies the run fails with `WORKER_DIED`.
* **Progress**: workers report their pid when a chunk starts and the number of cases done every
  `PROGRESS_INTERVAL_S` over a pipe shared by the pool; `status()` adds finished chunks and in-flight counts.
"""
from __future__ import annotations

import asyncio
import atexit
import gc
import itertools
import logging
import os
import pickle
import queue
import shutil
import threading
import time
import weakref
from collections import OrderedDict, deque
from contextlib import contextmanager
from concurrent.futures import BrokenExecutor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from .local_pool import WORKER_NICENESS, LocalProcessExecutor, _noop, release_memory as _release_memory  # noqa: F401
from .tasks import (CHUNKS_PER_WORKER, MAX_CHUNK_CASES, PROGRESS_INTERVAL_S, WORKER_DIED,  # noqa: F401
                    Executor, ProgressReporter, WorkerDied, WorkerMemoryExceeded, check_count, in_worker,
                    pack_columns, plan_chunks, report, unpack_columns)
from .run_journal import INTERRUPTED, note_accepted, recover_interrupted  # noqa: F401
from .store import SOURCES, RunNotFound, RunRecord, RunStore, check_run_id, iso_time, new_run_id

if TYPE_CHECKING:  # pragma: no cover
    from .engine.types import EngineCase
    from .inputs import Case
    from .results import Result

log = logging.getLogger(__name__)

CANCELLED = "the run was cancelled"
SHUT_DOWN = "the runner was shut down before the run finished"
START_GRACE_S = 60.0           # time allowed for worker start-up before a run's time limit starts anyway
MAX_RETRIES = 3                # a chunk killed together with another run's work is run again this often
KEEP_FINISHED = 256            # finished runs whose status is answered from memory


def time_limit_message(limit_s: float) -> str:
    return f"run exceeded the time limit of {limit_s:g} s"


class RunFailed(RuntimeError):
    """`Runner.result` of a run that failed or was cancelled: `status` and `error` say what happened."""

    def __init__(self, run_id: str, status: str, error: str | None):
        self.run_id, self.status, self.error = run_id, status, error
        super().__init__(f"run {run_id} {status}: {error}" if error else f"run {run_id} {status}")


# ----------------------------------------------------------------------------------------- worker side

@dataclass(frozen=True)
class FinalizeTask:
    """What a worker needs to finish a run: small and picklable (the case travels as its JSON and is
    rebuilt in the worker, so the parent never pickles thousands of engine cases in one go)."""
    store: RunStore
    run_id: str
    case: dict                      # Case.to_dict(inline_files=True)
    case_count: int
    source: str
    owner: str
    created: float
    started: float | None
    request: Any = None
    request_files: Any = None
    make_archive: Callable[["Result", str], bytes] | None = None
    make_response: Callable[["Result", str], "str | bytes"] | None = None


def part_name(index: int) -> str:
    """File name of the results of chunk `index` in the run's parts folder."""
    return f"chunk-{index:05d}.pkl"


def run_chunk(engine_cases: "Sequence[EngineCase]", time_step: float, token: int, parts_dir: str,
              index: int) -> dict[str, Any]:
    """Worker function: run consecutive independent cases and leave their outputs (columns packed as
    float arrays) in `parts_dir` as `part_name(index)`, written to a temporary name and renamed. The
    engine's final element state (`CaseOutput.final`, engine-internal: a stored Result has none either)
    is left out: it would cost most of the time of loading the parts back.

    Reports ``("start", token, pid)`` and, every PROGRESS_INTERVAL_S, ``("progress", token, cases done)``.
    Returns only ``{"index", "cases", "file", "refused"}``; `refused` is None, or ``[offset, message]`` of
    the first case of the chunk the model refused (offset 0-based within the chunk)."""
    series = _run_cases(engine_cases, time_step, token)
    name = part_name(index)
    for plume in series.plumes:
        plume.final = None
    payload = {"plumes": [pack_columns(p) for p in series.plumes], "farfields": [pack_columns(f) for f in series.farfields],
               "tidal": series.tidal}
    folder = Path(parts_dir)
    temporary = folder / f".{name}.{os.getpid()}.tmp"
    with open(temporary, "wb") as handle:       # no parts folder: the run has ended meanwhile
        pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(temporary, folder / name)
    return _chunk_meta(index, series, name)


def run_coupled(engine_cases: "Sequence[EngineCase]", time_step: float, token: int,
                task: FinalizeTask) -> dict[str, Any]:
    """Worker function for a series coupled by tidal buildup: run it and finish the run (`finalize_run`)
    in the same task. ``{"chunk": chunk report, "final": finish report}``; no "final" when the model
    refused a case (the parent records that failure)."""
    try:
        series = _run_cases(engine_cases, time_step, token)
        meta = _chunk_meta(0, series, None)
        if meta["refused"] is not None:
            return {"chunk": meta}
        with _no_cyclic_gc():
            final = _finalize(task, series.plumes, series.farfields, series.tidal)
        del series
        return {"chunk": meta, "final": final}
    finally:
        _release_memory()


def finalize_run(task: FinalizeTask, parts: "Sequence[str]", token: int) -> dict[str, Any]:
    """Worker function that finishes a run of independent chunks: loads the chunk results from the parts
    folder in case order, assembles the Result, builds the archive (`make_archive`) and the response
    body (`make_response`), saves the run to the store atomically and removes the parts.

    Returns ``{"record": RunRecord.to_dict(), "finished": epoch s}``. A failing archive / response /
    save gives a stored failed run (its record says why), not an exception."""
    report("start", token, os.getpid())
    try:
        with _no_cyclic_gc():
            plumes, farfields, tidal = _load_parts(task.store.parts_dir(task.run_id), parts)
            return _finalize(task, plumes, farfields, tidal)
    finally:
        _release_memory()


def _load_parts(folder: Path, parts: "Sequence[str]") -> tuple[list, list, Any]:
    """The chunk outputs in case order (plumes, far fields) and the tidal output."""
    from .engine.types import TidalOutput

    plumes: list = []
    farfields: list = []
    tidal = TidalOutput()
    for name in parts:
        with open(folder / name, "rb") as handle:
            output = pickle.load(handle)
        plumes.extend(unpack_columns(p) for p in output["plumes"])
        farfields.extend(unpack_columns(f) for f in output["farfields"])
        if output["tidal"].was_run:
            tidal = output["tidal"]
        del output
    return plumes, farfields, tidal


def _run_cases(engine_cases: "Sequence[EngineCase]", time_step: float, token: int) -> Any:
    from .engine.series import run_series

    report("start", token, os.getpid())
    return run_series(list(engine_cases), time_step, progress=ProgressReporter(token))


def _chunk_meta(index: int, series: Any, name: str | None) -> dict[str, Any]:
    refused = next(([offset, plume.error] for offset, plume in enumerate(series.plumes) if plume.error), None)
    return {"index": index, "cases": len(series.plumes), "file": name, "refused": refused}


def _finalize(task: FinalizeTask, plumes: list, farfields: list, tidal: Any) -> dict[str, Any]:
    from .inputs import Case
    from .inputs.normalise import MAX_CASES
    from .results import Result

    store, run_id = task.store, task.run_id
    try:
        record = store.get(run_id)          # an earlier attempt saved it just before it was stopped
    except RunNotFound:
        record = None
    if record is not None:
        shutil.rmtree(store.parts_dir(run_id), ignore_errors=True)
        return {"record": record.to_dict(), "finished": time.time()}
    store.discard_staging(run_id, keep_parts=True)      # a save of an earlier attempt that was stopped
    case = Case.from_dict(task.case, max_cases=max(MAX_CASES, task.case_count))
    result = Result(case, plumes, case.engine_cases(), farfields, tidal)
    del plumes, farfields
    status, error, archive, response = "succeeded", None, None, None
    if task.make_archive is not None:
        try:
            archive = task.make_archive(result, run_id)
        except Exception as err:
            log.exception("building the archive of run %s failed", run_id)
            status, error = "failed", f"building the output archive failed: {err}"
    if status == "succeeded" and task.make_response is not None:
        try:
            response = task.make_response(result, run_id)
        except Exception as err:
            log.exception("building the response of run %s failed", run_id)
            status, error, archive = "failed", f"building the response failed: {err}", None
    finished = time.time()
    common = dict(source=task.source, owner=task.owner, created=task.created, started=task.started,
                  finished=finished, request=task.request, request_files=task.request_files, run_id=run_id)
    try:
        if status == "succeeded":
            record = store.save(case, result, status=status, archive_bytes=archive, response=response, **common)
        else:
            record = store.save(case, None, status=status, error=error, **common)
    except FileExistsError:
        raise
    except Exception as err:
        if status != "succeeded":
            raise
        log.exception("saving run %s failed", run_id)
        del result, archive, response
        record = store.save(case, None, status="failed", error=f"saving the run failed: {err}", **common)
    shutil.rmtree(store.parts_dir(run_id), ignore_errors=True)
    return {"record": record.to_dict(), "finished": finished}


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """In a pool worker: no cyclic garbage collection while a run is finished. Its objects all live until
    the end (plain lists and dicts, no cycles), and the collector would walk their growing heap over and
    over (a third of the finish time of a year of hourly cases). `_release_memory` collects afterwards."""
    if not in_worker() or not gc.isenabled():      # in the caller's process (a thread executor): leave it
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ----------------------------------------------------------------------------------------- jobs

@dataclass(eq=False)
class _Chunk:
    """A task of a run: a range of its cases, or (`finalize`) the task that finishes the run."""
    start: int
    stop: int
    index: int = 0
    finalize: bool = False
    token: int | None = None        # the dispatch in flight, if any
    pid: int | None = None          # worker running it (from its start message)
    done: int = 0                   # cases done in the dispatch in flight
    attempts: int = 0
    meta: dict | None = None        # the worker's report once the cases are done (outputs are in a file)

    @property
    def size(self) -> int:
        return self.stop - self.start


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass(eq=False)
class _Job:
    id: str
    case: "Case"
    case_json: dict                 # the case as self-contained JSON, for the worker that finishes the run
    engine_cases: list
    time_step: float
    coupled: bool                   # one task runs the series and finishes the run
    source: str
    owner: str
    request: Any
    request_files: Any
    make_archive: Callable[["Result", str], bytes] | None
    make_response: Callable[["Result", str], "str | bytes"] | None
    chunks: list[_Chunk]
    created: float
    total: int                      # number of cases
    case_name: str = ""             # kept after `case` is released
    state: str = "queued"           # queued, running, finishing, succeeded, failed, cancelled
    final_status: str | None = None  # while finishing: where it is going
    started: float | None = None
    started_mono: float | None = None
    limit_from: float | None = None  # monotonic time a worker first started on it (the time limit counts from here)
    finished: float | None = None
    error: str | None = None
    cases_done: int = 0
    pending: deque = field(default_factory=deque)
    finalizer: _Chunk | None = None  # the finish task, once every chunk is done
    outcome: dict | None = None     # the finish report of the worker: the stored record
    active: int = 0                 # tasks dispatched whose futures are not done
    idle: threading.Event = field(default_factory=_set_event)   # set while `active` is 0
    done_future: Future = field(default_factory=Future)
    record: RunRecord | None = None
    discard: bool = False           # deleted: not kept in the store when it ends

    def tasks(self) -> list[_Chunk]:
        return self.chunks if self.finalizer is None else [*self.chunks, self.finalizer]

    def progress(self) -> dict[str, int]:
        if self.state == "succeeded":
            return {"done": self.total, "total": self.total}
        in_flight = sum(c.done for c in self.chunks if c.token is not None and c.meta is None)
        return {"done": min(self.total, self.cases_done + in_flight), "total": self.total}

    def status(self) -> dict[str, Any]:
        state = "running" if self.state == "finishing" else self.state
        duration = (self.finished - self.started) if self.started is not None and self.finished is not None else None
        return {"id": self.id, "status": state, "progress": self.progress(), "created": iso_time(self.created),
                "started": iso_time(self.started), "finished": iso_time(self.finished), "duration_s": duration,
                "error": self.error, "source": self.source, "owner": self.owner, "case_name": self.case_name,
                "case_count": self.total}


def record_status(record: RunRecord) -> dict[str, Any]:
    """A stored run in the form of `Runner.status`."""
    done = record.case_count if record.status == "succeeded" else 0
    return {"id": record.id, "status": record.status, "progress": {"done": done, "total": record.case_count},
            "created": record.created, "started": record.started, "finished": record.finished,
            "duration_s": record.duration_s, "error": record.error, "source": record.source,
            "owner": record.owner, "case_name": record.case_name, "case_count": record.case_count}


_WAKE = ("wake",)
_STOP = ("stop",)
_TERMINATE = ("terminate",)
IDLE_WAIT_S = 30.0                  # how long an ended run waits for its terminated tasks to go away


class Runner:
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
        self._has_messages = hasattr(self.executor, "listener")
        if self._has_messages:
            self.executor.listener = self._on_worker_message
        self._can_terminate = callable(getattr(self.executor, "terminate", None))
        self.max_workers = int(getattr(self.executor, "max_workers", None) or max_workers or os.cpu_count() or 1)
        self.timeout_s = timeout_s
        self.max_cases = max_cases
        self.chunk_size = chunk_size
        self._lock = threading.RLock()
        self._events: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self._jobs: dict[str, _Job] = {}                    # active runs (queued, running, finishing)
        self._finished: "OrderedDict[str, _Job]" = OrderedDict()
        self._order: deque[_Job] = deque()                  # runs with chunks waiting, round robin
        self._finals: deque[_Job] = deque()                 # runs waiting for their finish task
        self._tasks: dict[int, tuple[_Job, _Chunk]] = {}    # dispatch token -> its task
        self._in_flight: dict[int, _Job] = {}               # tokens whose futures are not done yet
        self._tokens = itertools.count(1)
        self._closed = False
        self._finisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vp-runner-save")
        self._thread = threading.Thread(target=self._supervise, name="vp-runner", daemon=True)
        self._thread.start()
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
        chunks = [_Chunk(start, stop, index) for index, (start, stop) in
                  enumerate(plan_chunks(len(engine_cases), coupled, self.max_workers, self.chunk_size))]
        job = _Job(id=new_run_id(), case=case, case_json=case.to_dict(inline_files=True), engine_cases=engine_cases,
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
        self._events.put(_WAKE)
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

    def result_path(self, run_id: str) -> Path:
        """Path of the stored `result.json` of a succeeded run (RunNotFound otherwise), to send as it is."""
        return self.store.result_path(run_id)

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
            self._events.put(_TERMINATE)
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
            self._events.put(_TERMINATE)
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
        self._events.put(_STOP)
        self._thread.join(timeout=30)
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

    def _on_worker_message(self, message: Any) -> None:
        """Executor listener (another thread): a worker started a task or counted cases done."""
        try:
            kind, token, value = message
        except (TypeError, ValueError):
            return
        with self._lock:
            entry = self._tasks.get(token)
            if entry is None:
                return
            job, task = entry
            if kind == "start":
                task.pid = int(value)
                if job.limit_from is None and not task.finalize:
                    job.limit_from = time.monotonic()
            elif kind == "progress" and not task.finalize:
                task.done = min(int(value), task.size)

    def _on_done(self, token: int, future: Future) -> None:
        """Future callback (an executor thread): free the slot at once, leave the rest to the supervisor."""
        with self._lock:
            job = self._in_flight.pop(token, None)
            if job is not None:
                job.active -= 1
                if job.active <= 0:
                    job.active = 0
                    job.idle.set()
        self._events.put(("done", token, future))

    def _supervise(self) -> None:
        while True:
            try:
                event = self._events.get(timeout=self._sleep_time())
            except queue.Empty:
                event = None
            stop = terminate = False
            with self._lock:
                while event is not None:
                    if event is _STOP:
                        stop = True
                    elif event is _TERMINATE:
                        terminate = True
                    elif event[0] == "done":
                        terminate |= self._task_done(event[1], event[2])
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        event = None
                terminate |= self._check_time_limits()
                dispatch = [] if stop or self._closed else self._dispatch()
            if terminate:
                self._terminate_executor()
            for token, fn, args in dispatch:
                self._submit(token, fn, args)
            if stop:
                return

    def _deadline(self, job: _Job) -> float | None:
        """When a running job hits its time limit (monotonic), counted from the moment a worker first
        started on it, so pool start-up is not charged to the run (within START_GRACE_S)."""
        if self.timeout_s is None or job.state != "running" or job.started_mono is None:
            return None
        if job.limit_from is not None:
            return job.limit_from + self.timeout_s
        return job.started_mono + self.timeout_s + (START_GRACE_S if self._has_messages else 0.0)

    def _sleep_time(self) -> float:
        with self._lock:
            deadlines = [d for d in map(self._deadline, self._jobs.values()) if d is not None]
        if not deadlines:
            return 1.0
        return min(1.0, max(0.01, min(deadlines) - time.monotonic()))

    def _check_time_limits(self) -> bool:
        now, terminate = time.monotonic(), False
        for job in list(self._jobs.values()):
            deadline = self._deadline(job)
            if deadline is not None and now > deadline:
                terminate |= self._abort(job, "failed", time_limit_message(self.timeout_s))
        return terminate

    def _finalize_task(self, job: _Job) -> FinalizeTask:
        return FinalizeTask(store=self.store, run_id=job.id, case=job.case_json, case_count=job.total,
                            source=job.source, owner=job.owner, created=job.created, started=job.started,
                            request=job.request, request_files=job.request_files,
                            make_archive=job.make_archive, make_response=job.make_response)

    def _dispatch(self) -> list[tuple[int, Callable[..., Any], tuple]]:
        """Pick tasks for free worker slots (lock held): runs waiting to be finished first, then chunks,
        round robin between runs."""
        picked = []
        while len(self._in_flight) < self.max_workers and (self._finals or self._order):
            token = next(self._tokens)
            if self._finals:
                job = self._finals.popleft()
                task = job.finalizer
                if (job.state != "finishing" or job.final_status != "succeeded" or task is None
                        or task.token is not None or job.outcome is not None):
                    continue
                args: tuple = (self._finalize_task(job), [c.meta["file"] for c in job.chunks], token)
                fn: Callable[..., Any] = finalize_run
            else:
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
                    fn, args = run_coupled, (cases, job.time_step, token, self._finalize_task(job))
                else:
                    fn, args = run_chunk, (cases, job.time_step, token, str(self.store.parts_dir(job.id)), task.index)
            task.token, task.pid, task.done = token, None, 0
            self._tasks[token] = (job, task)
            self._in_flight[token] = job
            job.active += 1
            job.idle.clear()
            picked.append((token, fn, args))
        return picked

    def _submit(self, token: int, fn: Callable[..., Any], args: tuple) -> None:
        with self._lock:                    # its run may have ended since it was picked
            wanted = token in self._tasks and not self._closed
        if not wanted:
            future: Future = Future()
            future.cancel()
        else:
            try:
                future = self.executor.submit(fn, *args)
            except Exception as err:        # e.g. the executor cannot start workers
                future = Future()
                future.set_exception(err)
        future.add_done_callback(partial(self._on_done, token))

    def _task_done(self, token: int, future: Future) -> bool:
        """A dispatched task ended (lock held). True when the workers must be terminated."""
        entry = self._tasks.pop(token, None)
        if entry is None:
            return False                    # its run ended meanwhile: nothing to do
        job, task = entry
        pid = task.pid
        task.token, task.pid = None, None
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

    def _task_succeeded(self, job: _Job, task: _Chunk, value: dict) -> bool:
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
        job.finalizer = _Chunk(0, job.total, finalize=True)
        self._finals.append(job)
        return False

    def _refusal(self, job: _Job) -> str | None:
        """The error of the first case the model refused (as vp.run words it), or None."""
        from .inputs import CaseError

        for chunk in job.chunks:
            refused = (chunk.meta or {}).get("refused")
            if refused:
                offset, message = refused
                where = f"case {chunk.start + int(offset) + 1}: " if job.total > 1 else ""
                return str(CaseError([f"{where}{message}"]))
        return None

    def _retry(self, job: _Job, task: _Chunk, count: bool) -> bool:
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

    def _abort(self, job: _Job, status: str, error: str, finishing: bool = False) -> bool:
        """End a queued or running run (with `finishing`: also one waiting to be finished) as failed or
        cancelled (lock held); its tasks are dropped. True when some of them are running, so the
        workers must be terminated."""
        awaiting_finish = job.state == "finishing" and job.final_status == "succeeded" and job.outcome is None
        if job.state not in ("queued", "running") and not (finishing and awaiting_finish):
            return False
        running = False
        for task in job.tasks():
            if task.token is not None:
                running = True
                self._tasks.pop(task.token, None)
                task.token = None
        job.pending.clear()
        log.log(logging.INFO if status == "cancelled" else logging.WARNING, "run %s %s: %s", job.id, status, error)
        job.state, job.final_status, job.error, job.outcome = "finishing", status, error, None
        self._jobs_finishing(job)
        return running

    def _jobs_finishing(self, job: _Job) -> None:
        job.finished = time.time()
        try:
            self._finisher.submit(self._finish, job)
        except RuntimeError:                # finisher already shut down: never wait while holding the lock
            threading.Thread(target=self._finish, args=(job,), name="vp-runner-save", daemon=True).start()

    def _terminate_executor(self) -> None:
        terminate = getattr(self.executor, "terminate", None)
        if terminate is not None:
            try:
                terminate()
            except Exception:
                log.exception("terminating the workers failed")

    def _finish(self, job: _Job) -> None:
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
            self.store.apply_retention(keep=[job.id])
        except Exception:
            log.exception("applying the store's retention policy failed")

    def _save(self, job: _Job, status: str, error: str | None) -> RunRecord:
        """Store a run that did not succeed (metadata only)."""
        try:
            return self.store.save(job.case, None, status=status, error=error, source=job.source, owner=job.owner,
                                   created=job.created, started=job.started, finished=job.finished,
                                   request=job.request, request_files=job.request_files, run_id=job.id)
        except FileExistsError:             # its worker stored it just before it was stopped: that stands
            return self.store.get(job.id)


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


def _error_text(error: BaseException) -> str:
    from .inputs import CaseError

    if isinstance(error, (CaseError, WorkerMemoryExceeded)):
        return str(error)
    return f"the model failed: {type(error).__name__}: {error}"
