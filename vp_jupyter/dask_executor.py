"""The Dask executor: runs the Runner's tasks, `vp.run(..., executor=)` chunks and sweep members on a
dask.distributed cluster, behind the runner's `Executor` interface.

    from vp_jupyter.dask_executor import DaskExecutor
    executor = DaskExecutor("tcp://scheduler:8786")      # or DaskExecutor(client), DaskExecutor(cluster)
    executor = DaskExecutor.from_gateway("https://gateway.example", workers=8)   # needs dask-gateway
    runner = Runner(store, executor)                      # independent chunks spread over the cluster
    vp.run(case, executor=executor); vp.sweep(case, grid, executor=executor)

What this module owns:

* **Connecting**: from a scheduler address, an existing `distributed.Client` (never closed here: its owner
  closes it), a cluster object (its `scheduler_address` and `security`: `LocalCluster`, a dask-gateway
  cluster, ...), the current default client, or a dask-gateway server (`from_gateway`, which imports
  `dask_gateway` only when called). `distributed` itself is imported only when an executor is made, so
  `import vp_jupyter` stays light.
* **Submitting**: `submit(fn, *args)` sends the task with `pure=False` and a fresh key (identical
  arguments are never deduplicated) and returns a `concurrent.futures.Future` with its outcome.
  `max_workers`, the number of tasks the Runner keeps in flight, is the cluster's total worker threads
  when the executor is made (or the given value). The engine is pure Python and holds the GIL, so use
  workers with one thread each (`dask worker --nthreads 1`) and as many worker processes as cores.
* **Worker messages**: a task's `vp_jupyter.tasks.report(...)` calls (its pid when it starts, cases done
  in a chunk) travel as Dask events (`Worker.log_event` on a topic private to this executor, forwarded by
  the scheduler) to `listener`, so `Runner.status()` shows in-chunk progress and `worker_pids()` the
  Dask worker processes. Without them, progress still grows chunk by chunk.
* **Stopping running work** (`terminate()`): Dask cannot kill a running task, and cancelling its future
  does not stop it. Tasks here stop cooperatively instead: `terminate()` tells every worker (with
  `Client.run`, which does not queue behind tasks) that the tasks this executor submitted so far must
  stop; a task checks that each time it reports, that is when it starts and about every
  `tasks.PROGRESS_INTERVAL_S` while it runs cases, so it ends within about one case. Its future then
  fails with `WorkerDied(intentional=True)`, as a terminated local worker's does. A task that does not
  report (finishing a run, a sweep task) runs to its end; its result is then simply delivered.
  The Runner waits (up to `runner.IDLE_WAIT_S`) for a stopped run's tasks to end before it records the
  run and clears its staging files, so a stopped task does not write into the store afterwards.
* **Failures**: a task that killed its worker too often (`distributed.KilledWorker`: Dask already
  retried it on other workers) fails with `WorkerDied` naming the worker processes that ran it; a task
  the cluster dropped (cancelled, lost, client closed) fails with `WorkerDied` and no pids, which the
  Runner retries a few times.

Requirements on the cluster: every worker has vp-jupyter (the same version) installed, and **every
worker sees the archive store's folder at the same path** (a shared file system): the Runner's tasks
write chunk results to `<store>/.staging` and save finished runs into the store themselves.
`vp.run(..., executor=)` and `vp.sweep` need no shared folder: their tasks return the outputs.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import uuid
from concurrent.futures import Future, InvalidStateError, wait as wait_for
from functools import partial
from typing import Any, Callable, Mapping

from .tasks import WORKER_DIED, WorkerDied, check_count

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0        # connecting to a scheduler; waiting for a first worker
_TASK_STARTED = "vp-dask-task"  # executor-internal message: (kind, key, pid) when a task starts
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


class TaskStopped(Exception):
    """Raised inside a task on a Dask worker at its next report once `DaskExecutor.terminate` asked the
    tasks submitted before it to stop (the task then returns a `_Stopped` marker)."""


class _Stopped:
    """What a stopped task returns instead of its result."""


def check_scheduler_address(address: Any, name: str = "address") -> str:
    """`address` if it looks like a Dask scheduler address (`tcp://host:8786`, `tls://…`, `host:8786`),
    else ValueError naming `name` and the value (the dashboard's http URL is a common mix-up)."""
    scheme, separator, rest = address.partition("://") if isinstance(address, str) else ("", "", "")
    if not separator:
        scheme, rest = "", address
    if (not isinstance(address, str) or not rest or rest.startswith("/") or any(c.isspace() for c in address)
            or (separator and not _SCHEME.fullmatch(scheme))):
        raise ValueError(f"{name} must be a Dask scheduler address such as 'tcp://scheduler:8786' (got {address!r})")
    if scheme.lower() in ("http", "https"):
        raise ValueError(f"{name} must be a Dask scheduler address such as 'tcp://scheduler:8786', not the "
                         f"dashboard's web address (got {address!r})")
    return address


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ImportError("the Dask executor needs the distributed package, which is not installed "
                          "(pip install 'vp-jupyter[dask]' or 'dask[distributed]')") from None
    return distributed


class DaskExecutor:
    """Runs tasks on a dask.distributed cluster (see the module docstring).

    `target`: a scheduler address (`"tcp://host:8786"`), a `distributed.Client` (used as it is and left
    open by `shutdown`), a cluster object (`LocalCluster`, a dask-gateway cluster: a client is made for
    it), or None for the current default client. `max_workers`: tasks to keep in flight (default: the
    cluster's total worker threads, waiting up to `timeout` s for a first worker). `timeout`: seconds to
    wait for the scheduler and for a first worker."""

    def __init__(self, target: Any = None, *, max_workers: int | None = None,
                 timeout: float = CONNECT_TIMEOUT_S):
        distributed = _import_distributed()
        check_count("max_workers", max_workers)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0 (got {timeout!r})")
        self.listener: Callable[[tuple], None] | None = None
        self._own_client = True
        self._own_cluster: Any = None          # a cluster made by from_gateway: shut down with the executor
        if isinstance(target, str) or isinstance(getattr(target, "scheduler_address", None), str):
            # a cluster object (LocalCluster, a gateway cluster): its address and its TLS settings
            address = target if isinstance(target, str) else target.scheduler_address
            security = None if isinstance(target, str) else getattr(target, "security", None)
            check_scheduler_address(address)
            try:
                client = distributed.Client(address, security=security, timeout=timeout, set_as_default=False)
            except (OSError, TimeoutError) as err:
                raise ConnectionError(f"cannot connect to the Dask scheduler at {address!r}: {err}") from None
        elif isinstance(target, distributed.Client):
            client, self._own_client = target, False
        elif target is None:
            try:
                client = distributed.default_client()
            except ValueError:
                raise ValueError("no Dask client: give DaskExecutor a scheduler address, a distributed.Client "
                                 "or a cluster") from None
            self._own_client = False
        else:
            raise TypeError("DaskExecutor needs a scheduler address, a distributed.Client or a cluster "
                            f"(got {type(target).__name__})")
        self._client = client
        self.address = str(getattr(client, "scheduler_address", None) or getattr(client.scheduler, "address", ""))
        self._id = uuid.uuid4().hex
        self._topic = f"vp-jupyter-{self._id}"
        self._lock = threading.Lock()
        self._generation = 0                   # bumped by terminate(): older tasks must stop
        self._tasks: dict[str, tuple[Any, Future]] = {}     # key -> (Dask future, our future) in flight
        self._pids: dict[str, set[int]] = {}   # key -> worker processes that started it
        self._closed = False
        self.tasks_stopped = 0                 # tasks that ended because terminate() asked them to
        try:
            self.max_workers = max_workers or self._cluster_threads(timeout)
            client.subscribe_topic(self._topic, self._on_event)
        except BaseException:
            if self._own_client:
                client.close()
            raise

    @classmethod
    def from_gateway(cls, address: str | None = None, *, cluster_name: str | None = None,
                     workers: int | None = None, cluster_options: Mapping[str, Any] | None = None,
                     max_workers: int | None = None, timeout: float = CONNECT_TIMEOUT_S,
                     **gateway_kwargs: Any) -> "DaskExecutor":
        """An executor on a dask-gateway cluster: the cluster named `cluster_name` (left running by
        `shutdown`), or a new one made with `cluster_options` (the gateway's option names) and scaled to
        `workers`, shut down with the executor. `address`: the gateway server (default: dask-gateway's
        own configuration); `gateway_kwargs` go to `dask_gateway.Gateway` (auth, proxy_address, ...).
        Needs the dask-gateway package."""
        try:
            import dask_gateway
        except ImportError:
            raise ImportError("DaskExecutor.from_gateway needs the dask-gateway package, which is not "
                              "installed (pip install dask-gateway)") from None
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
            raise ValueError(f"workers must be a whole number >= 0 or None (got {workers!r})")
        if cluster_options is not None and not isinstance(cluster_options, Mapping):
            raise TypeError(f"cluster_options must be a dict of gateway option -> value (got "
                            f"{type(cluster_options).__name__})")
        gateway = dask_gateway.Gateway(address, **gateway_kwargs)
        if cluster_name:
            cluster, own = gateway.connect(cluster_name), False
        else:
            cluster, own = gateway.new_cluster(**dict(cluster_options or {})), True
        try:
            if workers:
                cluster.scale(workers)
            executor = cls(cluster, max_workers=max_workers, timeout=timeout)
        except BaseException:
            if own:
                cluster.close()
            raise
        executor._own_cluster = cluster if own else None
        return executor

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r}, max_workers={self.max_workers})"

    def _cluster_threads(self, timeout: float) -> int:
        threads = sum(self._client.nthreads().values())
        if threads:
            return threads
        try:
            self._client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            pass
        threads = sum(self._client.nthreads().values())
        if not threads:
            raise RuntimeError(f"the Dask cluster at {self.address} has no workers (waited {timeout:g} s); "
                               "start some, or give max_workers")
        return threads

    # -- the Executor interface --------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        """Run `fn(*args)` on a worker (`fn` module-level, arguments picklable); a concurrent Future."""
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a DaskExecutor that was shut down")
            generation = self._generation
        key = f"vp-{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex}"
        outer: Future = Future()
        try:
            remote = self._client.submit(_run_task, (self._id, self._topic, generation, key), fn, *args,
                                         key=key, pure=False)
        except Exception as err:
            raise RuntimeError(f"could not submit the task to the Dask cluster at {self.address}: {err}") from err
        with self._lock:
            self._tasks[key] = (remote, outer)
        remote.add_done_callback(partial(self._transfer, key, outer))
        outer.add_done_callback(partial(self._cancelled, key))
        return outer

    def terminate(self) -> None:
        """Stop every task submitted so far (each at its next report; see the module docstring): their
        futures fail with `WorkerDied(intentional=True)`. Tasks submitted afterwards run normally."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            busy = bool(self._tasks)
        if busy:                            # Client.run blocks: never in the caller's thread (a supervisor)
            threading.Thread(target=self._tell_workers_to_stop, args=(generation,), daemon=True,
                             name="vp-dask-stop").start()

    def shutdown(self, wait: bool = True) -> None:
        """No more tasks. `wait`: wait for the tasks in flight, else stop them. A client or cluster this
        executor made is closed; one it was given is left open."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._generation += 1
            generation = self._generation
            pending = [outer for _, outer in self._tasks.values()]
        if wait and pending:
            wait_for(pending)
        elif pending:
            self._tell_workers_to_stop(generation)
        try:
            self._client.unsubscribe_topic(self._topic)
        except Exception:                   # the client is closing or closed already
            pass
        if self._own_client:
            self._client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()

    def __enter__(self) -> "DaskExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(wait=exc[0] is None)

    @property
    def client(self) -> Any:
        """The `distributed.Client` tasks go through."""
        return self._client

    # -- internals ---------------------------------------------------------------------------------

    def _tell_workers_to_stop(self, generation: int) -> None:
        try:
            self._client.run(_stop_tasks, self._id, generation)
        except Exception as err:            # a worker went away meanwhile: its tasks are gone anyway
            log.warning("telling the Dask workers to stop this executor's tasks failed: %s", err)

    def _transfer(self, key: str, outer: Future, remote: Any) -> None:
        """Dask callback thread: give our future the Dask future's outcome."""
        with self._lock:
            self._tasks.pop(key, None)
            pids = self._pids.pop(key, set())
        if outer.done():                    # cancelled by its owner
            return
        try:
            status = remote.status
            if status == "finished":
                value = remote.result()
                if isinstance(value, _Stopped):
                    with self._lock:
                        self.tasks_stopped += 1
                    outer.set_exception(WorkerDied("the task was stopped", intentional=True))
                else:
                    outer.set_result(value)
            elif status == "error":
                outer.set_exception(self._translate(remote.exception(), pids))
            else:
                outer.set_exception(WorkerDied(f"the Dask cluster dropped the task ({status})"))
        except InvalidStateError:           # cancelled meanwhile
            pass
        except Exception as err:            # e.g. the result could not be fetched
            try:
                outer.set_exception(WorkerDied(f"the task's result could not be fetched from the Dask cluster: {err}"))
            except InvalidStateError:
                pass

    @staticmethod
    def _translate(error: BaseException, pids: "set[int]") -> BaseException:
        """A task's exception as the Runner understands it."""
        from distributed.scheduler import KilledWorker

        if isinstance(error, KilledWorker):     # Dask retried it on other workers already
            return WorkerDied(f"{WORKER_DIED} (Dask: {error})", frozenset(pids))
        return error

    def _cancelled(self, key: str, outer: Future) -> None:
        """Our future was cancelled by its owner: release the Dask task (if it runs already, it runs on)."""
        if not outer.cancelled():
            return
        with self._lock:
            entry = self._tasks.pop(key, None)
            self._pids.pop(key, None)
        if entry is not None:
            try:
                entry[0].cancel()
            except Exception:               # the client is closing: the task goes with it
                pass

    def _on_event(self, event: Any) -> None:
        """Client event loop: a message a task reported, forwarded to `listener`."""
        try:
            _, message = event
            message = tuple(message)
        except (TypeError, ValueError):
            return
        if message and message[0] == _TASK_STARTED:
            if len(message) == 3:
                with self._lock:
                    if message[1] in self._tasks:
                        self._pids.setdefault(message[1], set()).add(int(message[2]))
            return
        listener = self.listener
        if listener is not None:
            try:
                listener(message)
            except Exception:               # a listener bug must not break the client's event loop
                log.exception("worker message listener failed")


# ----------------------------------------------------------------------------------------- worker side

_STOP_BELOW: dict[str, int] = {}   # executor id -> tasks submitted with a lower generation must stop
_CURRENT = threading.local()       # the task this worker thread runs


class _Task:
    __slots__ = ("executor", "topic", "generation", "worker")

    def __init__(self, executor: str, topic: str, generation: int, worker: Any):
        self.executor, self.topic, self.generation, self.worker = executor, topic, generation, worker


class _WorkerChannel:
    """`vp_jupyter.tasks` message channel in a Dask worker process: `report(...)` from a task's thread becomes
    an event on its executor's topic, after checking whether the task was asked to stop. Tasks running in
    other threads of the same worker (also other executors') each have their own context."""

    def send(self, message: Any) -> None:
        task = getattr(_CURRENT, "task", None)
        if task is None:
            return
        if _STOP_BELOW.get(task.executor, 0) > task.generation:
            raise TaskStopped("stopped by DaskExecutor.terminate")
        if task.worker is not None:
            try:
                task.worker.log_event(task.topic, list(message))
            except Exception:               # progress is best effort
                pass


_WORKER_CHANNEL = _WorkerChannel()


def _run_task(spec: tuple, fn: Callable[..., Any], *args: Any) -> Any:
    """Runs on a Dask worker: `fn(*args)` with its reports going to the executor that submitted it."""
    from . import tasks

    executor, topic, generation, key = spec
    try:
        from distributed import get_worker
        worker = get_worker()
    except (ImportError, ValueError):       # not in a worker (a synchronous scheduler): no messages
        worker = None
    if not tasks.in_worker():
        tasks.set_channel(_WORKER_CHANNEL)
    previous = getattr(_CURRENT, "task", None)
    _CURRENT.task = _Task(executor, topic, generation, worker)
    try:
        _WORKER_CHANNEL.send((_TASK_STARTED, key, os.getpid()))    # a task stopped before it started ends here
        return fn(*args)
    except TaskStopped:                     # an outcome, not a failure: no error in the worker's log
        return _Stopped()
    finally:
        _CURRENT.task = previous


def _stop_tasks(executor: str, generation: int) -> None:
    """Runs on every worker (Client.run): tasks of `executor` submitted before `generation` must stop."""
    if _STOP_BELOW.get(executor, 0) < generation:
        _STOP_BELOW[executor] = generation
