"""Running cases away from the caller: executors behind one small interface, chunking, progress, time limits.

    runner = Runner(RunStore())                       # a local pool of spawned worker processes
    run_id = runner.submit(case, source="api", owner="alice")   # returns at once, status "queued"
    runner.status(run_id)                             # {"status": "running", "progress": {"done": 3, "total": 20}, …}
    record = await runner.wait(run_id)                # from an event loop; or runner.result(run_id) to block
    result = runner.result(run_id)                    # the Result (RunFailed if the run did not succeed)

Design:

* **Executors** (`Executor`): `submit(fn, *args) -> concurrent.futures.Future`, `shutdown()`, optionally
  `terminate()` (stop all running work now) and a `listener` for worker messages. `LocalProcessExecutor`
  wraps a `ProcessPoolExecutor` started with spawn or forkserver (never fork: a server has threads) and
  replaces the pool when it breaks. A future that fails with `concurrent.futures.BrokenExecutor` means its
  worker went away; `WorkerDied.pids` names the processes that died on their own, when known.
* **Chunks**: cases without tidal buildup are independent (`couples_cases` False), so a run is split into
  chunks of consecutive cases spread over the workers and put back together in case order; a coupled
  series runs as one chunk. Workers get the chunk's SI `EngineCase`s (not the case JSON: no re-validation
  per chunk, no dependence on time-series files) and return the engine outputs with columns packed as
  float arrays. The parent assembles the `Result`, asks `make_archive(result, run_id)` for the legacy zip
  and saves the run to the store (in a small thread pool, never on the caller's thread).
* **One supervisor thread** owns dispatching: chunks go to the executor round-robin between runs, at
  most `max_workers` at a time, so a short run is not stuck behind a long one and "running" means a
  worker has it. Completion arrives through future callbacks; no lock is held while calling the executor.
* **Failures**: a run over its wall-clock limit, or cancelled while running, has its workers terminated
  (the pool is replaced; chunks of other runs that were killed with it are simply run again). A worker
  that dies fails the run whose chunk it was running, with `WORKER_DIED`; other runs' chunks are retried.
  Every run that ends is recorded in the store: succeeded with its result, failed or cancelled as
  metadata only. Nothing partial ever lands in the store (it writes atomically).
* **Progress**: workers report their pid when a chunk starts and the number of cases done every
  `PROGRESS_INTERVAL_S` over a pipe shared by the pool; `status()` adds finished chunks and in-flight counts.
"""
from __future__ import annotations

import asyncio
import atexit
import itertools
import logging
import math
import multiprocessing
import os
import queue
import threading
import time
import weakref
from array import array
from collections import OrderedDict, deque
from concurrent.futures import BrokenExecutor, Future, InvalidStateError, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from .store import SOURCES, RunNotFound, RunRecord, RunStore, check_run_id, iso_time, new_run_id

if TYPE_CHECKING:  # pragma: no cover
    from .engine.types import EngineCase
    from .inputs import Case
    from .results import Result

log = logging.getLogger(__name__)

WORKER_DIED = "the worker process running this case died unexpectedly (killed or out of memory)"
CANCELLED = "the run was cancelled"
SHUT_DOWN = "the runner was shut down before the run finished"
PROGRESS_INTERVAL_S = 0.25
MAX_CHUNK_CASES = 250          # cases per chunk at most (progress and load balance)
CHUNKS_PER_WORKER = 4          # aim for this many chunks per worker (load balance)
START_GRACE_S = 60.0           # time allowed for worker start-up before a run's time limit starts anyway
MAX_RETRIES = 3                # a chunk killed together with another run's work is run again this often
KEEP_RESULTS = 2               # finished results kept in memory for result() (older ones come from the store)
KEEP_FINISHED = 256            # finished runs whose status is answered from memory


def time_limit_message(limit_s: float) -> str:
    return f"run exceeded the time limit of {limit_s:g} s"


class RunFailed(RuntimeError):
    """`Runner.result` of a run that failed or was cancelled: `status` and `error` say what happened."""

    def __init__(self, run_id: str, status: str, error: str | None):
        self.run_id, self.status, self.error = run_id, status, error
        super().__init__(f"run {run_id} {status}: {error}" if error else f"run {run_id} {status}")


class WorkerDied(BrokenExecutor):
    """A worker process went away while the future's work was pending or running.

    `pids`: worker processes that died on their own (killed from outside, out of memory, crashed), when
    known; `intentional`: the executor terminated its workers itself (`terminate()`)."""

    def __init__(self, message: str, pids: "frozenset[int]" = frozenset(), intentional: bool = False):
        super().__init__(message)
        self.pids = frozenset(pids)
        self.intentional = intentional


# ----------------------------------------------------------------------------------------- executors

@runtime_checkable
class Executor(Protocol):
    """What the Runner needs from an executor (a local process pool now; Dask later).

    * `max_workers`: how many tasks it runs at once (the Runner keeps at most that many in flight).
    * `submit(fn, *args)`: run `fn(*args)` (module-level, picklable) somewhere; a concurrent Future.
    * `shutdown(wait=True)`: release the workers.
    Optional: `terminate()` stops all running work at once (pending and running futures then fail with
    `BrokenExecutor`; the executor stays usable), and `listener`, an attribute the Runner sets to a
    callable receiving worker messages (see `report`).
    """
    max_workers: int

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...

    def shutdown(self, wait: bool = True) -> None: ...


class _Generation:
    """One ProcessPoolExecutor and the message pipe its workers write to."""

    def __init__(self, number: int, pool: ProcessPoolExecutor, reader: Any, writer: Any):
        self.number = number
        self.pool = pool
        self.reader, self.writer = reader, writer
        self.processes: dict[int, Any] = {}
        self.recv_lock = threading.Lock()
        self.failure: WorkerDied | None = None
        self.intentional = False
        self.closed = False

    def note_processes(self) -> None:
        """Remember the pool's worker processes (a private attribute, read only to tell who died)."""
        try:
            self.processes.update(dict(getattr(self.pool, "_processes", None) or {}))
        except RuntimeError:                # changed while copied: the next submit catches up
            pass


class LocalProcessExecutor:
    """A pool of `max_workers` (default: CPU count) spawned or forkserver worker processes.

    Wraps `concurrent.futures.ProcessPoolExecutor`. When a worker dies the pool breaks: its futures fail
    with `WorkerDied` (naming the dead pids) and the next `submit` starts a fresh pool. `terminate()`
    kills the current workers on purpose (their futures fail with `WorkerDied(intentional=True)`).
    Workers report over a pipe (`report`) to `listener(message)`, called on an internal thread."""

    def __init__(self, max_workers: int | None = None, mp_context: Any = "spawn",
                 listener: Callable[[tuple], None] | None = None):
        if isinstance(mp_context, str):
            if mp_context not in ("spawn", "forkserver"):
                raise ValueError(f"mp_context must be 'spawn' or 'forkserver' (got {mp_context!r}); "
                                 "fork is unsafe in a process with threads such as a server")
            mp_context = multiprocessing.get_context(mp_context)
        elif mp_context.get_start_method() == "fork":
            raise ValueError("a fork context is unsafe in a process with threads such as a server")
        if max_workers is not None and (isinstance(max_workers, bool) or not isinstance(max_workers, int)
                                        or max_workers < 1):
            raise ValueError(f"max_workers must be a whole number >= 1 (got {max_workers!r})")
        self.max_workers = max_workers or os.cpu_count() or 1
        self.listener = listener
        self._context = mp_context
        self._lock = threading.Lock()
        self._current: _Generation | None = None
        self._numbers = itertools.count(1)
        self._closed = False

    # -- pool generations --------------------------------------------------------------------------

    def _generation(self) -> _Generation:
        """The current pool, starting a new one if there is none or it broke (call with the lock held)."""
        if self._current is not None and self._current.failure is not None:
            self._retire(self._current)
        if self._current is None:
            reader, writer = self._context.Pipe(duplex=False)
            pool = ProcessPoolExecutor(self.max_workers, mp_context=self._context,
                                       initializer=_worker_init, initargs=(writer,))
            gen = _Generation(next(self._numbers), pool, reader, writer)
            threading.Thread(target=self._read_messages, args=(gen,), daemon=True,
                             name=f"vp-runner-messages-{gen.number}").start()
            self._current = gen
        return self._current

    def _retire(self, gen: _Generation) -> None:
        """Stop using a pool (call with the lock held). Closing our end of its message pipe lets the
        message thread see the end of the pipe once the pool's workers are gone."""
        if self._current is gen:
            self._current = None
        try:
            gen.writer.close()
        except OSError:
            pass

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        outer: Future = Future()
        for _attempt in range(3):
            with self._lock:
                if self._closed:
                    raise RuntimeError("cannot submit to an executor that was shut down")
                gen = self._generation()
                try:
                    inner = gen.pool.submit(fn, *args)
                except (BrokenProcessPool, RuntimeError):
                    self._retire(gen)       # broken: start a new pool
                    continue
                gen.note_processes()
            break
        else:
            raise WorkerDied("could not start worker processes")
        inner.add_done_callback(partial(self._transfer, gen, outer))
        outer.add_done_callback(lambda f: f.cancelled() and inner.cancel())
        return outer

    def _transfer(self, gen: _Generation, outer: Future, inner: Future) -> None:
        """Copy the pool future's outcome to ours, turning a broken pool into WorkerDied."""
        try:
            if inner.cancelled():
                outer.cancel()
                return
            error = inner.exception()
            if isinstance(error, BrokenProcessPool):
                error = self._broken(gen)
            if error is not None:
                outer.set_exception(error)
            else:
                outer.set_result(inner.result())
        except InvalidStateError:           # cancelled by its owner meanwhile
            pass

    def _broken(self, gen: _Generation) -> WorkerDied:
        """Runs in the pool's manager thread as it fails the futures of a broken pool, before it
        terminates the surviving workers: the processes that have already exited are the ones that died.
        Messages still in the pipe are delivered first, so the listener knows who was running what."""
        with gen.recv_lock:
            if gen.failure is None:
                if gen.intentional:
                    gen.failure = WorkerDied("the worker processes were terminated", intentional=True)
                else:
                    dead = frozenset(pid for pid, p in list(gen.processes.items()) if p.exitcode is not None)
                    gen.failure = WorkerDied(WORKER_DIED, dead)
                self._drain(gen)
                gen.closed = True
        return gen.failure                  # the next submit starts a new pool

    def terminate(self) -> None:
        """Kill the current workers now (a new pool starts on the next submit)."""
        with self._lock:
            gen = self._current
            if gen is None:
                return
            gen.intentional = True
            self._retire(gen)
        gen.note_processes()
        for process in list(gen.processes.values()):
            try:
                process.kill()
            except (OSError, ValueError, AttributeError):
                pass
        # the pool notices the dead workers and fails every pending future; this only stops new work
        gen.pool.shutdown(wait=False, cancel_futures=True)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            gen = self._current
            if gen is not None:
                self._retire(gen)
        if gen is not None:
            gen.pool.shutdown(wait=wait, cancel_futures=True)

    def worker_pids(self) -> list[int]:
        """Process ids of the current pool's live workers."""
        with self._lock:
            gen = self._current
        if gen is None:
            return []
        gen.note_processes()
        return sorted(pid for pid, p in list(gen.processes.items()) if p.exitcode is None)

    def prestart(self) -> None:
        """Start every worker now (so the first run does not pay for process start-up)."""
        for future in [self.submit(_noop, 0.05) for _ in range(self.max_workers)]:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())

    # -- messages ----------------------------------------------------------------------------------

    def _read_messages(self, gen: _Generation) -> None:
        """Deliver a pool's worker messages until the pool is broken or every writer is gone."""
        try:
            while True:
                with gen.recv_lock:
                    if gen.closed:
                        break
                    if gen.reader.poll(0.2):
                        self._deliver(gen.reader.recv())
        except (EOFError, OSError):
            pass
        finally:
            with gen.recv_lock:
                gen.closed = True
                try:
                    gen.reader.close()
                except OSError:
                    pass

    def _drain(self, gen: _Generation) -> None:
        try:
            while gen.reader.poll(0):
                self._deliver(gen.reader.recv())
        except (EOFError, OSError):
            pass

    def _deliver(self, message: Any) -> None:
        listener = self.listener
        if listener is not None:
            try:
                listener(message)
            except Exception:               # a listener bug must not stop the message thread
                log.exception("worker message listener failed")


# ----------------------------------------------------------------------------------------- worker side

_CHANNEL: Any = None


def _worker_init(channel: Any) -> None:
    """Pool initializer: remember the message pipe; leave Ctrl-C to the parent."""
    global _CHANNEL
    _CHANNEL = channel
    try:
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ImportError, ValueError, OSError):
        pass


def report(*message: Any) -> None:
    """Send a small message (a tuple, far below 4 KiB, so the pipe write is atomic) to the parent's
    executor listener; does nothing outside a LocalProcessExecutor worker."""
    if _CHANNEL is not None:
        try:
            _CHANNEL.send(message)
        except (OSError, ValueError):
            pass


def _noop(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def run_chunk(engine_cases: "Sequence[EngineCase]", time_step: float, token: int) -> dict[str, Any]:
    """Worker function: run consecutive cases (the whole series when they are coupled by tidal buildup).

    Reports ``("start", token, pid)`` and, every PROGRESS_INTERVAL_S, ``("progress", token, cases done)``.
    Returns ``{"plumes": [CaseOutput], "farfields": [FarFieldOutput], "tidal": TidalOutput}`` with the
    columns packed as float arrays (compact to send back)."""
    from .engine.series import run_series

    report("start", token, os.getpid())
    last = [time.monotonic()]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL_S:
            last[0] = now
            report("progress", token, done)

    series = run_series(list(engine_cases), time_step, progress=progress)
    return {"plumes": [_pack(p) for p in series.plumes], "farfields": [_pack(f) for f in series.farfields],
            "tidal": series.tidal}


def _pack(output: Any) -> Any:
    output.columns = {name: array("d", values) for name, values in output.columns.items()}
    return output


def _unpack(output: Any) -> Any:
    output.columns = {name: values.tolist() if isinstance(values, array) else list(values)
                      for name, values in output.columns.items()}
    return output


def plan_chunks(count: int, coupled: bool, workers: int, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """[start, stop) case ranges: one for a coupled series, else about CHUNKS_PER_WORKER per worker."""
    if coupled or count <= 1:
        return [(0, count)]
    size = chunk_size or min(MAX_CHUNK_CASES, max(1, math.ceil(count / (CHUNKS_PER_WORKER * max(1, workers)))))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


# ----------------------------------------------------------------------------------------- jobs

@dataclass(eq=False)
class _Chunk:
    start: int
    stop: int
    token: int | None = None        # the dispatch in flight, if any
    pid: int | None = None          # worker running it (from its start message)
    done: int = 0                   # cases done in the dispatch in flight
    attempts: int = 0
    output: dict | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(eq=False)
class _Job:
    id: str
    case: "Case"
    engine_cases: list
    time_step: float
    source: str
    owner: str
    request: Any
    request_files: Any
    make_archive: Callable[["Result", str], bytes] | None
    chunks: list[_Chunk]
    created: float
    total: int                      # number of cases
    state: str = "queued"           # queued, running, finishing, succeeded, failed, cancelled
    final_status: str | None = None  # while finishing: where it is going
    started: float | None = None
    started_mono: float | None = None
    limit_from: float | None = None  # monotonic time a worker first started on it (the time limit counts from here)
    finished: float | None = None
    error: str | None = None
    cases_done: int = 0
    pending: deque = field(default_factory=deque)
    done_future: Future = field(default_factory=Future)
    result: Any = None
    record: RunRecord | None = None
    discard: bool = False           # deleted: not stored when it ends

    def progress(self) -> dict[str, int]:
        if self.state == "succeeded":
            return {"done": self.total, "total": self.total}
        in_flight = sum(c.done for c in self.chunks if c.token is not None and c.output is None)
        return {"done": min(self.total, self.cases_done + in_flight), "total": self.total}

    def status(self) -> dict[str, Any]:
        state = "running" if self.state == "finishing" else self.state
        duration = (self.finished - self.started) if self.started is not None and self.finished is not None else None
        return {"id": self.id, "status": state, "progress": self.progress(), "created": iso_time(self.created),
                "started": iso_time(self.started), "finished": iso_time(self.finished), "duration_s": duration,
                "error": self.error, "source": self.source, "owner": self.owner}


def record_status(record: RunRecord) -> dict[str, Any]:
    """A stored run in the form of `Runner.status`."""
    done = record.case_count if record.status == "succeeded" else 0
    return {"id": record.id, "status": record.status, "progress": {"done": done, "total": record.case_count},
            "created": record.created, "started": record.started, "finished": record.finished,
            "duration_s": record.duration_s, "error": record.error, "source": record.source,
            "owner": record.owner}


_WAKE = ("wake",)
_STOP = ("stop",)
_TERMINATE = ("terminate",)


class Runner:
    """Runs cases in an executor and records every run in a store (see the module docstring).

    `store`: a RunStore (default: the default store). `executor`: default a `LocalProcessExecutor` with
    `max_workers` workers started with `mp_context` (spawn, or forkserver). `timeout_s`: wall-clock limit
    of a run from the moment a worker first starts on it (None: no limit). `max_cases`: largest number of
    cases a submitted case may have (None: the input layer's limit). `chunk_size`: cases per chunk of an
    independent series (default: about CHUNKS_PER_WORKER chunks per worker, at most MAX_CHUNK_CASES).
    """

    def __init__(self, store: RunStore | None = None, executor: Executor | None = None, *,
                 max_workers: int | None = None, timeout_s: float | None = None, max_cases: int | None = None,
                 chunk_size: int | None = None, mp_context: Any = "spawn"):
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                      or not timeout_s > 0):
            raise ValueError(f"timeout_s must be a number > 0 or None (got {timeout_s!r})")
        for name, value in (("max_cases", max_cases), ("chunk_size", chunk_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1 or None (got {value!r})")
        self.store = store if store is not None else RunStore()
        self._own_executor = executor is None
        self.executor = executor if executor is not None else LocalProcessExecutor(max_workers, mp_context)
        self._has_messages = hasattr(self.executor, "listener")
        if self._has_messages:
            self.executor.listener = self._on_worker_message
        self.max_workers = int(getattr(self.executor, "max_workers", None) or max_workers or os.cpu_count() or 1)
        self.timeout_s = timeout_s
        self.max_cases = max_cases
        self.chunk_size = chunk_size
        self._lock = threading.RLock()
        self._events: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self._jobs: dict[str, _Job] = {}                    # active runs (queued, running, finishing)
        self._finished: "OrderedDict[str, _Job]" = OrderedDict()
        self._order: deque[_Job] = deque()                  # runs with chunks waiting, round robin
        self._tasks: dict[int, tuple[_Job, _Chunk]] = {}    # dispatch token -> its chunk
        self._in_flight: set[int] = set()                   # tokens whose futures are not done yet
        self._tokens = itertools.count(1)
        self._closed = False
        self._finisher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vp-runner-save")
        self._thread = threading.Thread(target=self._supervise, name="vp-runner", daemon=True)
        self._thread.start()
        _LIVE_RUNNERS.add(self)
        _register_exit_hook()

    # -- public API --------------------------------------------------------------------------------

    def submit(self, case: Any, *, source: str, owner: str = "", request: Any = None,
               request_files: "Mapping[str, bytes] | None" = None,
               make_archive: "Callable[[Result, str], bytes] | None" = None) -> str:
        """Queue a run and return its id at once. `case`: a Case (no work here) or anything `Case.load`
        takes (validated here: for big cases do that off the event loop). `request` / `request_files`:
        the original request, stored with the run. `make_archive(result, run_id) -> bytes`: builds the
        legacy zip (called off the caller's thread)."""
        from .inputs import Case, CaseError

        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
        if not isinstance(owner, str):
            raise TypeError("owner must be a string")
        case = Case.load(case, max_cases=self.max_cases)
        engine_cases = case.engine_cases()
        if self.max_cases is not None and len(engine_cases) > self.max_cases:
            raise CaseError([f"timeseries: the case has {len(engine_cases)} cases; at most {self.max_cases} "
                             "are allowed here"])
        from .engine.series import couples_cases

        chunks = [_Chunk(start, stop) for start, stop in
                  plan_chunks(len(engine_cases), couples_cases(engine_cases), self.max_workers, self.chunk_size)]
        job = _Job(id=new_run_id(), case=case, engine_cases=engine_cases, time_step=case.time_step,
                   source=source, owner=owner, request=request, request_files=request_files,
                   make_archive=make_archive, chunks=chunks, created=time.time(),
                   total=len(engine_cases))
        job.pending.extend(chunks)
        job.done_future.set_running_or_notify_cancel()      # waiters can never cancel it
        with self._lock:
            if self._closed:
                raise RuntimeError("the runner was shut down")
            self._jobs[job.id] = job
            self._order.append(job)
        self._events.put(_WAKE)
        return job.id

    def status(self, run_id: str) -> dict[str, Any]:
        """`id, status (queued/running/succeeded/failed/cancelled), progress {done, total}, created, started,
        finished, duration_s, error, source, owner` (times ISO-8601 UTC). RunNotFound if unknown."""
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
        """Process ids of the workers running chunks of this run right now."""
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id)
            if job is None:
                return []
            return sorted({c.pid for c in job.chunks if c.token is not None and c.pid is not None})

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
        """Block until the run has ended and return its Result; RunFailed if it failed or was cancelled."""
        final = self.wait_sync(run_id, timeout)
        if final["status"] != "succeeded":
            raise RunFailed(run_id, final["status"], final["error"])
        with self._lock:
            job = self._finished.get(run_id)
            held = job.result if job is not None else None
            if job is not None:
                job.result = None
        return held if held is not None else self.store.load_result(run_id)

    async def result_async(self, run_id: str) -> "Result":
        """`result()` for an event loop: waits without blocking it and loads a stored result in a thread."""
        await self.wait(run_id)
        return await asyncio.get_running_loop().run_in_executor(None, self.result, run_id)

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
        """Stop: runs still queued or running are recorded as cancelled, the workers are stopped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for job in list(self._jobs.values()):
                if job.state in ("queued", "running"):
                    self._abort(job, "cancelled", SHUT_DOWN)
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

    def _done_future(self, run_id: str) -> Future | None:
        run_id = check_run_id(run_id)
        with self._lock:
            job = self._jobs.get(run_id) or self._finished.get(run_id)
        if job is not None:
            return job.done_future
        self.store.get(run_id)              # RunNotFound if unknown
        return None

    def _on_worker_message(self, message: Any) -> None:
        """Executor listener (another thread): a worker started a chunk or counted cases done."""
        try:
            kind, token, value = message
        except (TypeError, ValueError):
            return
        with self._lock:
            entry = self._tasks.get(token)
            if entry is None:
                return
            job, chunk = entry
            if kind == "start":
                chunk.pid = int(value)
                if job.limit_from is None:
                    job.limit_from = time.monotonic()
            elif kind == "progress":
                chunk.done = min(int(value), chunk.size)

    def _on_done(self, token: int, future: Future) -> None:
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
                        terminate |= self._chunk_done(event[1], event[2])
                    try:
                        event = self._events.get_nowait()
                    except queue.Empty:
                        event = None
                terminate |= self._check_time_limits()
                dispatch = [] if stop or self._closed else self._dispatch()
            if terminate:
                self._terminate_executor()
            for token, args in dispatch:
                self._submit(token, args)
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

    def _dispatch(self) -> list[tuple[int, tuple]]:
        """Pick chunks for free worker slots, round robin between runs (lock held)."""
        picked = []
        while len(self._in_flight) < self.max_workers and self._order:
            job = self._order.popleft()
            if job.state not in ("queued", "running") or not job.pending:
                continue
            chunk = job.pending.popleft()
            token = next(self._tokens)
            chunk.token, chunk.pid, chunk.done = token, None, 0
            self._tasks[token] = (job, chunk)
            self._in_flight.add(token)
            if job.state == "queued":
                job.state, job.started, job.started_mono = "running", time.time(), time.monotonic()
            if job.pending:
                self._order.append(job)
            picked.append((token, (job.engine_cases[chunk.start:chunk.stop], job.time_step, token)))
        return picked

    def _submit(self, token: int, args: tuple) -> None:
        try:
            future = self.executor.submit(run_chunk, *args)
        except Exception as err:            # e.g. the executor cannot start workers
            future = Future()
            future.set_exception(err)
        future.add_done_callback(partial(self._on_done, token))

    def _chunk_done(self, token: int, future: Future) -> bool:
        """A dispatched chunk ended (lock held). True when the workers must be terminated."""
        self._in_flight.discard(token)
        entry = self._tasks.pop(token, None)
        if entry is None:
            return False                    # its run ended meanwhile: nothing to do
        job, chunk = entry
        pid = chunk.pid
        chunk.token, chunk.pid = None, None
        if future.cancelled():
            return self._retry(job, chunk, count=False)
        error = future.exception()
        if error is None:
            chunk.output = future.result()
            job.cases_done += chunk.size
            if all(c.output is not None for c in job.chunks):
                job.state, job.final_status = "finishing", "succeeded"
                self._jobs_finishing(job)
            return False
        if isinstance(error, BrokenExecutor):
            if getattr(error, "intentional", False):
                return self._retry(job, chunk, count=False)
            if pid is not None and pid in getattr(error, "pids", ()):
                return self._abort(job, "failed", WORKER_DIED)
            return self._retry(job, chunk, count=True)
        return self._abort(job, "failed", _error_text(error))

    def _retry(self, job: _Job, chunk: _Chunk, count: bool) -> bool:
        """Run a chunk again (it was killed with other work, or its worker died without us knowing which)."""
        if count:
            chunk.attempts += 1
            if chunk.attempts > MAX_RETRIES:
                return self._abort(job, "failed", WORKER_DIED)
        log.info("run %s: cases %d-%d are run again (their worker was stopped)", job.id, chunk.start + 1, chunk.stop)
        chunk.done = 0
        job.pending.appendleft(chunk)
        if job not in self._order:
            self._order.appendleft(job)
        return False

    def _abort(self, job: _Job, status: str, error: str) -> bool:
        """End a queued or running run as failed or cancelled (lock held); its chunks are dropped.
        True when some of them are running, so the workers must be terminated."""
        if job.state not in ("queued", "running"):
            return False
        running = False
        for chunk in job.chunks:
            if chunk.token is not None:
                running = True
                self._tasks.pop(chunk.token, None)
                chunk.token = None
        job.pending.clear()
        log.log(logging.INFO if status == "cancelled" else logging.WARNING, "run %s %s: %s", job.id, status, error)
        job.state, job.final_status, job.error = "finishing", status, error
        self._jobs_finishing(job)
        return running

    def _jobs_finishing(self, job: _Job) -> None:
        job.finished = time.time()
        try:
            self._finisher.submit(self._finish, job)
        except RuntimeError:                # finisher already shut down
            self._finish(job)

    def _terminate_executor(self) -> None:
        terminate = getattr(self.executor, "terminate", None)
        if terminate is not None:
            try:
                terminate()
            except Exception:
                log.exception("terminating the workers failed")

    def _finish(self, job: _Job) -> None:
        """Assemble, archive and store a run that ended (finisher thread)."""
        status, error, result, archive, record = job.final_status, job.error, None, None, None
        try:
            if status == "succeeded":
                result = self._assemble(job)
                if result is None:          # the model refused a case (job.error says which)
                    status, error = "failed", job.error
                elif job.make_archive is not None:
                    try:
                        archive = job.make_archive(result, job.id)
                    except Exception as err:
                        log.exception("building the archive of run %s failed", job.id)
                        status, error, result = "failed", f"building the output archive failed: {err}", None
                job.finished = time.time()
            if not job.discard:
                record = self._save(job, status, error, result, archive)
                status, error = record.status, record.error
            if status != "succeeded":
                result = None
        except Exception as err:            # never leave a waiter hanging
            log.exception("finishing run %s failed", job.id)
            status, error, record, result = "failed", f"finishing the run failed: {err}", None, None
        with self._lock:
            discard = job.discard
            job.state, job.error, job.record = status, error, record
            job.result = result
            for chunk in job.chunks:
                chunk.output = None         # the result holds the data now
            # only the status is answered from memory now: let the inputs go
            job.case = job.request = job.request_files = job.make_archive = None
            job.engine_cases = []
            self._jobs.pop(job.id, None)
            if not discard:
                self._finished[job.id] = job
            while len(self._finished) > KEEP_FINISHED:
                self._finished.popitem(last=False)
            holders = [j for j in self._finished.values() if j.result is not None]
            for old in holders[:-KEEP_RESULTS]:
                old.result = None
        if discard and record is not None:  # deleted while it was being saved
            try:
                self.store.delete(job.id)
            except RunNotFound:
                pass
        job.done_future.set_result(job.status())
        try:
            self.store.apply_retention(keep=[job.id])
        except Exception:
            log.exception("applying the store's retention policy failed")

    def _assemble(self, job: _Job) -> "Result | None":
        """The Result from the chunk outputs in case order; None (job.error set) when a case was refused."""
        from .engine.types import TidalOutput
        from .inputs import CaseError
        from .results import Result

        plumes, farfields, tidal = [], [], TidalOutput()
        for chunk in job.chunks:
            output = chunk.output
            plumes.extend(_unpack(p) for p in output["plumes"])
            farfields.extend(_unpack(f) for f in output["farfields"])
            if output["tidal"].was_run:
                tidal = output["tidal"]
        for number, plume in enumerate(plumes, start=1):
            if plume.error:                 # the model refused the case: as vp.run does
                where = f"case {number}: " if len(plumes) > 1 else ""
                job.error = str(CaseError([f"{where}{plume.error}"]))
                return None
        return Result(job.case, plumes, job.engine_cases, farfields, tidal)

    def _save(self, job: _Job, status: str, error: str | None, result: Any, archive: bytes | None) -> RunRecord:
        common = dict(source=job.source, owner=job.owner, created=job.created, started=job.started,
                      finished=job.finished, request=job.request, request_files=job.request_files,
                      run_id=job.id)
        try:
            return self.store.save(job.case, result if status == "succeeded" else None, status=status,
                                   error=error, archive_bytes=archive if status == "succeeded" else None, **common)
        except FileExistsError:
            raise
        except Exception as err:
            if status != "succeeded":
                raise
            log.exception("saving run %s failed", job.id)
            error = f"saving the run failed: {err}"
            return self.store.save(job.case, None, status="failed", error=error, **common)


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


def _error_text(error: BaseException) -> str:
    from .inputs import CaseError

    if isinstance(error, CaseError):
        return str(error)
    return f"the model failed: {type(error).__name__}: {error}"
