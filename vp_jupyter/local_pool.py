"""`LocalProcessExecutor`: the task interface (`tasks.Executor`) on this machine's cores — a pool of worker
processes that works from any caller, survives dead workers, caps each worker's memory and dies with its
parent.

* **Any caller**: the pool is loky's `ProcessPoolExecutor` (as joblib uses it). With the default start
  method ("spawn") each worker is a fresh interpreter started with fork+exec that does NOT import the
  caller's `__main__`: a script without `if __name__ == "__main__":`, `python -c` and `python -` work,
  and nothing forks a process that has threads (a server). "forkserver" uses the standard library's fork
  server instead (for servers only: it imports the main module once, in the fork server).
* **Dead workers**: when a worker dies the pool breaks; its futures fail with `tasks.WorkerDied` naming
  the processes that died (and why, when known) and the next `submit` starts a fresh pool.
  `terminate()` kills the current workers on purpose (`WorkerDied(intentional=True)`).
* **Memory limit** (`memory_limit_mb`): a thread in each worker watches its resident memory; over the
  limit it raises `tasks.WorkerMemoryExceeded` in the running task (the engine loop is Python, so it
  stops within a step) and, if the memory does not come down within MEMORY_GRACE_S, ends the worker
  (its run fails with the same message; the pool starts a new worker).
* **Dying with the parent**: each worker watches its parent process and exits within PARENT_POLL_S when
  the parent is gone (`kill -9` of a server leaves no workers behind; with them gone loky's resource
  tracker ends too).
* **Messages**: workers report over a pipe (`tasks.report`) to `listener(message)`, called on an
  internal thread.
* **Priority** (`niceness`): workers lower their scheduling priority, so on oversubscribed CPUs the
  process that submits work (a server's event loop, a notebook kernel) gets a CPU first.
"""
from __future__ import annotations

import atexit
import ctypes
import gc
import itertools
import logging
import os
import threading
import time
from concurrent.futures import Future, InvalidStateError
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, Callable

from loky import ProcessPoolExecutor, process_executor as _loky
from loky.process_executor import ShutdownExecutorError, TerminatedWorkerError

from . import tasks
from .tasks import WORKER_DIED, WorkerDied, WorkerMemoryExceeded, check_count

log = logging.getLogger(__name__)

# loky registers its exit hook (which stops every pool's workers) when a pool first starts, again for each
# pool. Exit hooks run last-registered first, and a Runner's must run before it (to record its runs as
# cancelled rather than failed by dead workers): register loky's once, now, before any Runner's.
if _loky.process_pool_executor_at_exit is None and hasattr(threading, "_register_atexit"):
    threading._register_atexit(_loky._python_exit)
    _loky.process_pool_executor_at_exit = True

WORKER_NICENESS = 10            # workers run at a lower priority than the process that submits work
PARENT_POLL_S = 0.5             # how often a worker checks that its parent is alive
MEMORY_POLL_S = 0.02            # how often a worker checks its memory
MEMORY_GRACE_S = 5.0            # time a task has to release memory after the limit was hit, before the worker ends
START_METHODS = ("spawn", "forkserver")


def memory_limit_message(limit_mb: float) -> str:
    return (f"the run needed more memory than a worker may use ({limit_mb:g} MB; server setting "
            "worker_memory_limit_mb, LocalProcessExecutor(memory_limit_mb=))")


class _Generation:
    """One loky pool and the message pipe its workers write to."""

    def __init__(self, number: int, pool: Any, reader: Any, writer: Any):
        self.number = number
        self.pool = pool
        self.reader, self.writer = reader, writer
        self.processes: dict[int, Any] = {}
        self.over_memory: set[int] = set()      # workers that reported hitting the memory limit
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
    """A pool of `max_workers` (default: CPU count) worker processes (see the module docstring).

    `mp_context`: "spawn" (default: fresh interpreters, the caller's main module is not imported) or
    "forkserver" — never "fork". `niceness`: POSIX priority decrease of the workers (0: as this process).
    `memory_limit_mb`: resident memory a worker may use (None: no limit). `idle_timeout_s`: workers idle
    that long exit (and are started again on demand); None keeps them."""

    def __init__(self, max_workers: int | None = None, mp_context: Any = "spawn",
                 listener: Callable[[tuple], None] | None = None, niceness: int = WORKER_NICENESS,
                 memory_limit_mb: float | None = None, idle_timeout_s: float | None = None):
        self._context = _context(mp_context)
        check_count("max_workers", max_workers)
        if isinstance(niceness, bool) or not isinstance(niceness, int) or not 0 <= niceness <= 19:
            raise ValueError(f"niceness must be a whole number from 0 to 19 (got {niceness!r})")
        for name, value in (("memory_limit_mb", memory_limit_mb), ("idle_timeout_s", idle_timeout_s)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
                raise ValueError(f"{name} must be a number > 0 or None (got {value!r})")
        self.max_workers = max_workers or os.cpu_count() or 1
        self.listener = listener
        self.niceness = niceness
        self.memory_limit_mb = memory_limit_mb
        self.idle_timeout_s = idle_timeout_s
        self._lock = threading.Lock()
        self._current: _Generation | None = None
        self._numbers = itertools.count(1)
        self._closed = False

    def __repr__(self) -> str:
        return f"LocalProcessExecutor(max_workers={self.max_workers})"

    # -- pool generations --------------------------------------------------------------------------

    def _generation(self) -> _Generation:
        """The current pool, starting a new one if there is none or it broke (call with the lock held)."""
        if self._current is not None and self._current.failure is not None:
            self._retire(self._current)
        if self._current is None:
            reader, writer = self._context.Pipe(duplex=False)
            limit = None if self.memory_limit_mb is None else int(self.memory_limit_mb * 1024 * 1024)
            message = None if limit is None else memory_limit_message(self.memory_limit_mb)
            # the workers' parent is this process, except with a fork server (then it is the fork server)
            parent = None if self._context.get_start_method() == "forkserver" else os.getpid()
            pool = ProcessPoolExecutor(self.max_workers, context=self._context, timeout=self.idle_timeout_s,
                                       initializer=_worker_init,
                                       initargs=(writer, self.niceness, limit, message, parent))
            gen = _Generation(next(self._numbers), pool, reader, writer)
            threading.Thread(target=self._read_messages, args=(gen,), daemon=True,
                             name=f"vp-pool-messages-{gen.number}").start()
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
                    inner = gen.pool.submit(_call, fn, *args)
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
        """Copy the pool future's outcome to ours, turning a broken or killed pool into WorkerDied."""
        try:
            if inner.cancelled():
                outer.cancel()
                return
            error = inner.exception()
            if isinstance(error, (BrokenProcessPool, ShutdownExecutorError)):
                error = self._broken(gen, error)
            if error is not None:
                outer.set_exception(error)
            else:
                outer.set_result(inner.result())
        except InvalidStateError:           # cancelled by its owner meanwhile
            pass

    def _broken(self, gen: _Generation, error: BaseException) -> WorkerDied:
        """The pool failed a future: its workers were terminated on purpose, or some died (the ones that
        have exited), or a worker could not start or could not read a task (loky's message says why).
        Messages still in the pipe are delivered first, so the listener knows who was running what."""
        with gen.recv_lock:
            if gen.failure is None:
                self._drain(gen)
                gen.note_processes()
                dead = frozenset(pid for pid, p in list(gen.processes.items()) if p.exitcode is not None)
                if gen.intentional:
                    gen.failure = WorkerDied("the worker processes were terminated", intentional=True)
                elif dead & gen.over_memory:
                    message = memory_limit_message(self.memory_limit_mb or 0)
                    gen.failure = WorkerDied(message, dead, cause=message)
                elif isinstance(error, TerminatedWorkerError) or dead:
                    codes = sorted({p.exitcode for p in gen.processes.values() if p.exitcode is not None})
                    gen.failure = WorkerDied(f"{WORKER_DIED} (exit codes {codes})", dead, cause=_death_cause(codes))
                else:                       # not a death: e.g. a task that cannot be unpickled in a worker
                    cause = error.__cause__ or error
                    gen.failure = WorkerDied(f"the worker pool failed: {error} {cause if cause is not error else ''}"
                                             .strip(), cause=f"the worker pool failed: {cause}")
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
        # loky kills the workers (SIGKILL of each process tree) and fails every pending future
        gen.pool.shutdown(wait=False, kill_workers=True)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            gen = self._current
            if gen is not None:
                self._retire(gen)
        if gen is not None:
            if not wait:
                gen.intentional = True
            gen.pool.shutdown(wait=wait, kill_workers=not wait)

    def worker_pids(self) -> list[int]:
        """Process ids of the current pool's live workers."""
        with self._lock:
            gen = self._current
        if gen is None:
            return []
        gen.note_processes()
        return sorted(pid for pid, p in list(gen.processes.items()) if p.exitcode is None)

    def prestart(self) -> list[Future]:
        """Start every worker now and import the model there, so the first run does not pay for it."""
        futures = [self.submit(_warm_up, 0.05) for _ in range(self.max_workers)]
        for future in futures:
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return futures

    # -- messages ----------------------------------------------------------------------------------

    def _read_messages(self, gen: _Generation) -> None:
        """Deliver a pool's worker messages until the pool is broken or every writer is gone."""
        try:
            while True:
                with gen.recv_lock:
                    if gen.closed:
                        break
                    if gen.reader.poll(0.2):
                        self._deliver(gen, gen.reader.recv())
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
            while not gen.closed and gen.reader.poll(0):
                self._deliver(gen, gen.reader.recv())
        except (EOFError, OSError):
            pass

    def _deliver(self, gen: _Generation, message: Any) -> None:
        if isinstance(message, tuple) and message and message[0] == _OVER_MEMORY:
            gen.over_memory.add(int(message[1]))
            return
        listener = self.listener
        if listener is not None:
            try:
                listener(message)
            except Exception:               # a listener bug must not stop the message thread
                log.exception("worker message listener failed")


SHARED_IDLE_TIMEOUT_S = 300.0   # workers of the shared pool exit after this long without work
_shared: "LocalProcessExecutor | None" = None
_shared_lock = threading.Lock()


def shared_executor(max_workers: int | None = None) -> LocalProcessExecutor:
    """The process-wide pool `vp.run` spreads series over (one per CPU core unless `max_workers` says
    otherwise); kept between runs, its idle workers exit after SHARED_IDLE_TIMEOUT_S, and it is shut down
    when the interpreter exits."""
    global _shared
    wanted = max_workers or os.cpu_count() or 1
    with _shared_lock:
        if _shared is None or _shared.max_workers != wanted:
            if _shared is not None:
                _shared.shutdown(wait=False)
            else:
                atexit.register(_shut_down_shared)
            _shared = LocalProcessExecutor(wanted, idle_timeout_s=SHARED_IDLE_TIMEOUT_S)
        return _shared


def _shut_down_shared() -> None:
    with _shared_lock:
        if _shared is not None:
            _shared.shutdown(wait=False)


def _death_cause(exit_codes: "list[int]") -> str:
    """What a run whose worker died fails with: WORKER_DIED for a kill (SIGKILL: from outside or the
    system's out-of-memory killer), else how the worker ended (a crash signal, an exit code)."""
    import signal

    if not exit_codes or all(code == -signal.SIGKILL for code in exit_codes):
        return WORKER_DIED
    how = []
    for code in exit_codes:
        if code < 0:
            try:
                how.append(f"signal {signal.Signals(-code).name}")
            except ValueError:
                how.append(f"signal {-code}")
        else:
            how.append(f"exit code {code}")
    return (f"the worker process running this case ended unexpectedly ({', '.join(how)}; its error output, "
            "if any, is in the log of the process that started it)")


def _context(mp_context: Any) -> Any:
    from loky.backend.context import get_context

    if isinstance(mp_context, str):
        if mp_context not in START_METHODS:
            raise ValueError(f"mp_context must be 'spawn' or 'forkserver' (got {mp_context!r}); "
                             "fork is unsafe in a process with threads such as a server")
        return get_context("loky" if mp_context == "spawn" else "forkserver")
    if mp_context.get_start_method() == "fork":
        raise ValueError("a fork context is unsafe in a process with threads such as a server")
    if mp_context.get_start_method() == "spawn":      # the standard spawn imports the caller's main module
        return get_context("loky")
    return mp_context


# ----------------------------------------------------------------------------------------- worker side

_OVER_MEMORY = "vp-over-memory"     # executor-internal message: (kind, pid, rss) when a worker hits its limit
_BUSY = threading.Event()           # set while a task runs in this worker
_LIMIT_TEXT = "the worker memory limit was exceeded"


class _MemoryLimitHit(WorkerMemoryExceeded):
    """Raised asynchronously in the task thread by the memory watchdog (raised as a class, so the message
    comes from the worker's settings)."""

    def __init__(self, *args: Any):
        super().__init__(*(args or (_LIMIT_TEXT,)))


def _worker_init(channel: Any, niceness: int = 0, memory_limit: int | None = None,
                 limit_text: str | None = None, parent: int | None = None) -> None:
    """Pool initializer: the message pipe; a lower priority; Ctrl-C left to the parent; a thread that
    ends the worker when its parent (`parent`, else the process that started it) is gone; the memory
    watchdog."""
    global _LIMIT_TEXT
    parent = parent or os.getppid()
    if os.getppid() != parent:              # the parent died while this worker was starting
        os._exit(1)
    tasks.set_channel(channel)
    if niceness:
        try:
            os.nice(niceness)
        except (AttributeError, OSError):   # not POSIX, or not allowed
            pass
    try:
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ImportError, ValueError, OSError):
        pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="vp-watch-parent").start()
    if memory_limit:
        _LIMIT_TEXT = limit_text or _LIMIT_TEXT
        threading.Thread(target=_watch_memory, args=(memory_limit, threading.main_thread().ident),
                         daemon=True, name="vp-watch-memory").start()


def _watch_parent(parent: int) -> None:
    """End this worker when its parent process is gone (it was killed: nothing else will end us)."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(1)


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        import psutil
        return psutil.Process().memory_info().rss


def _watch_memory(limit: int, task_thread: int) -> None:
    """Stop the running task when this worker's resident memory goes over `limit` bytes; end the worker if
    the memory does not come down within MEMORY_GRACE_S (the task is stuck in C code, or idle memory)."""
    over_since = None
    while True:
        time.sleep(MEMORY_POLL_S)
        rss = _resident_bytes()
        if rss <= limit:
            over_since = None
            continue
        now = time.monotonic()
        if over_since is None:
            over_since = now
            tasks.report(_OVER_MEMORY, os.getpid(), rss)
            if _BUSY.is_set():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(task_thread),
                                                           ctypes.py_object(_MemoryLimitHit))
        elif now - over_since > MEMORY_GRACE_S:
            os._exit(3)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """Runs a task in a worker: marks the worker busy (for the memory watchdog); after a task stopped by
    the memory limit, hands the freed memory back before the next task."""
    _BUSY.set()
    try:
        return fn(*args)
    except WorkerMemoryExceeded as err:
        hit = str(err)                      # (its traceback holds the task's big objects: let it go first)
    finally:
        _BUSY.clear()
    release_memory()
    raise WorkerMemoryExceeded(hit)


def release_memory() -> None:
    """In a pool worker, after a task: collect garbage and hand freed heap back to the system, so an idle
    worker does not keep the peak of its last task."""
    if not tasks.in_worker():
        return
    gc.collect()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):   # not glibc
        pass


def _warm_up(seconds: float) -> int:
    """`prestart` task: import what the model's tasks need, so the first run finds a warm worker."""
    from . import inputs, legacy, report, results, run_worker  # noqa: F401
    from .engine import series  # noqa: F401
    time.sleep(seconds)
    return os.getpid()


def _noop(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()
