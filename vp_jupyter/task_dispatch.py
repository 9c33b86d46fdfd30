"""The one dispatch loop of the task interface: a supervisor thread that keeps an executor's worker slots
busy with tasks of several groups (the runs of the server's `Runner`, the plan of a `vp.run`, sweep or
study), routes worker messages (a task's pid when it starts, cases done) to them, and hands each task's
outcome to its owner.

`TaskDispatcher` is the machinery; its owner decides with four hooks, all called with the lock held:

* `_pick()` → `(group, task, make_call)` or None: the next task to run; `make_call(token)` gives the
  worker function and its arguments (a task reports with its token);
* `_task_ended(group, task, pid, future)` → True when the executor's running work must be terminated;
* `_task_message(group, task, kind, value)`: a worker message about a dispatched task;
* `_deadlines()` / `_check_time_limits()`: time limits (none by default).

A group has `active` (its tasks whose futures are not done) and `idle` (a threading.Event set while
`active` is 0); a task has `token`, `pid` and `done`. Tokens are unique in the process, so several
dispatchers can share one executor: its `listener` is a fan-out (`listen`) and each ignores the others'
tokens. No lock is held while calling the executor.
"""
from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from concurrent.futures import Future
from functools import partial
from typing import Any, Callable

log = logging.getLogger(__name__)

WAKE = ("wake",)
STOP = ("stop",)
TERMINATE = ("terminate",)
_TOKENS = itertools.count(1)        # task tokens, unique in this process


class _Listeners:
    """An executor's `listener` that passes each worker message to every dispatcher using the executor."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[Any], None]] = []

    def __call__(self, message: Any) -> None:
        for callback in list(self.callbacks):
            try:
                callback(message)
            except Exception:               # one listener's bug must not starve the others
                log.exception("worker message listener failed")


def listen(executor: Any, callback: Callable[[Any], None]) -> bool:
    """Add `callback` to the executor's worker-message listeners; False when it sends no messages."""
    if not hasattr(executor, "listener"):
        return False
    current = executor.listener
    if not isinstance(current, _Listeners):
        fan_out = _Listeners()
        if current is not None:
            fan_out.callbacks.append(current)
        executor.listener = current = fan_out
    current.callbacks.append(callback)
    return True


def unlisten(executor: Any, callback: Callable[[Any], None]) -> None:
    current = getattr(executor, "listener", None)
    if isinstance(current, _Listeners) and callback in current.callbacks:
        current.callbacks.remove(callback)


class TaskDispatcher:
    """Supervisor thread, worker slots, messages and task outcomes on one executor (see the module
    docstring). Subclasses call `_start_dispatching` once their own state is ready."""

    executor: Any
    max_workers: int

    def _start_dispatching(self, executor: Any, max_workers: int, *, name: str,
                           lock: "threading.RLock | None" = None) -> None:
        self.executor = executor
        self.max_workers = max_workers
        self._lock = lock if lock is not None else threading.RLock()
        self._events: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        self._tasks: dict[int, tuple[Any, Any]] = {}      # token -> (group, task) of tasks still wanted
        self._in_flight: dict[int, Any] = {}              # token -> group, while its future is not done
        self._closed = False
        self._has_messages = listen(executor, self._on_worker_message)
        self._can_terminate = callable(getattr(executor, "terminate", None))
        self._thread = threading.Thread(target=self._supervise, name=name, daemon=True)
        self._thread.start()

    def _stop_dispatching(self, timeout: float = 30.0) -> None:
        self._events.put(STOP)
        self._thread.join(timeout=timeout)
        unlisten(self.executor, self._on_worker_message)

    # -- hooks -------------------------------------------------------------------------------------

    def _pick(self) -> "tuple[Any, Any, Callable[[int], tuple[Callable[..., Any], tuple]]] | None":
        raise NotImplementedError

    def _task_ended(self, group: Any, task: Any, pid: "int | None", future: Future) -> bool:
        raise NotImplementedError

    def _task_message(self, group: Any, task: Any, kind: str, value: Any) -> None:
        pass

    def _deadlines(self) -> list[float]:
        return []

    def _check_time_limits(self) -> bool:
        return False

    # -- the loop ----------------------------------------------------------------------------------

    def _on_worker_message(self, message: Any) -> None:
        """Executor listener (another thread): a worker started a task or counted cases done."""
        try:
            kind, token, value = message
        except (TypeError, ValueError):
            return
        with self._lock:
            entry = self._tasks.get(token)
            if entry is not None:
                self._task_message(entry[0], entry[1], kind, value)

    def _on_done(self, token: int, future: Future) -> None:
        """Future callback (an executor thread): free the slot at once, leave the rest to the supervisor."""
        with self._lock:
            group = self._in_flight.pop(token, None)
            if group is not None:
                group.active -= 1
                if group.active <= 0:
                    group.active = 0
                    group.idle.set()
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
                    if event is STOP:
                        stop = True
                    elif event is TERMINATE:
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

    def _sleep_time(self) -> float:
        with self._lock:
            deadlines = self._deadlines()
        if not deadlines:
            return 1.0
        return min(1.0, max(0.01, min(deadlines) - time.monotonic()))

    def _dispatch(self) -> list[tuple[int, Callable[..., Any], tuple]]:
        """Fill the free worker slots (lock held)."""
        picked = []
        while len(self._in_flight) < self.max_workers:
            choice = self._pick()
            if choice is None:
                break
            group, task, make_call = choice
            token = next(_TOKENS)
            fn, args = make_call(token)
            task.token, task.pid, task.done = token, None, 0
            self._tasks[token] = (group, task)
            self._in_flight[token] = group
            group.active += 1
            group.idle.clear()
            picked.append((token, fn, args))
        return picked

    def _submit(self, token: int, fn: Callable[..., Any], args: tuple) -> None:
        with self._lock:                    # its group may have ended since it was picked
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
            return False                    # its group ended meanwhile: nothing to do
        group, task = entry
        pid = task.pid
        task.token, task.pid = None, None
        return self._task_ended(group, task, pid, future)

    def _drop_tasks(self, tasks: Any) -> bool:
        """Forget the dispatched ones of `tasks` (their group ended; lock held). True if any was running."""
        running = False
        for task in tasks:
            if task.token is not None:
                running = True
                self._tasks.pop(task.token, None)
                task.token = None
        return running

    def _terminate_executor(self) -> None:
        if self._can_terminate:
            try:
                self.executor.terminate()
            except Exception:
                log.exception("terminating the workers failed")


# ----------------------------------------------------------------------------------------- a plan in memory

MAX_RETRIES = 3                     # a task whose worker went away without us knowing why is run again this often


class PlanRun(TaskDispatcher):
    """The tasks of one `tasks.Plan` on an executor, outputs returned to this process (`tasks.run_plan`).
    The plan is the dispatcher's one group; outcomes go to the calling thread through `outcomes`:
    ("progress", cases), ("failed", TaskFailed) or ("finished",)."""

    def __init__(self, plan: Any, executor: Any, in_flight: int):
        from collections import deque

        self.plan = plan
        self.waiting = deque(plan.tasks)
        self.remaining = len(plan.tasks)
        self.active = 0
        self.idle = threading.Event()
        self.idle.set()
        self.outcomes: "queue.SimpleQueue[tuple]" = queue.SimpleQueue()
        if not plan.tasks:
            self.outcomes.put(("finished",))
        self._start_dispatching(executor, in_flight, name="vp-plan")
        self._events.put(WAKE)              # dispatch now

    def stop(self) -> bool:
        """No more tasks; True when some were running (their work may be terminated)."""
        with self._lock:
            self._closed = True
            self.waiting.clear()
            running = self._drop_tasks(self.plan.tasks)
        self._stop_dispatching()
        return running

    def _pick(self) -> Any:
        from .tasks import run_cases_task

        if not self.waiting:
            return None
        chunk = self.waiting.popleft()
        cases = self.plan.engine_cases[chunk.member][chunk.start:chunk.stop]
        time_step = self.plan.cases[chunk.member].time_step
        return self, chunk, lambda token: (run_cases_task, (cases, time_step, chunk.member, token))

    def _task_message(self, group: Any, chunk: Any, kind: str, value: Any) -> None:
        if kind == "start":
            chunk.pid = int(value)
        elif kind == "progress":
            self._count(chunk, min(int(value), chunk.size))

    def _count(self, chunk: Any, done: int) -> None:
        """Tell the caller about cases done (each case once, also when a task is run again)."""
        more = done - chunk.reported
        if more > 0:
            chunk.reported = done
            self.outcomes.put(("progress", more))

    def _task_ended(self, group: Any, chunk: Any, pid: "int | None", future: Future) -> bool:
        from .tasks import TaskFailed, WorkerDied, WorkerMemoryExceeded

        where = f"{self.plan.label(chunk.member)}cases {chunk.start + 1}-{chunk.stop}: "
        if future.cancelled():
            return self._again(chunk, count=False)
        error = future.exception()
        if error is None:
            chunk.pid, chunk.output = future.result()
            self._count(chunk, chunk.size)
            self.remaining -= 1
            if self.remaining == 0:
                self.outcomes.put(("finished",))
            return False
        if isinstance(error, WorkerDied):
            if error.intentional:           # stopped with other work on a shared executor
                return self._again(chunk, count=False)
            if pid is None or pid not in error.pids:
                return self._again(chunk, count=True)
            failure = TaskFailed(f"{where}{error.cause}")
        elif isinstance(error, WorkerMemoryExceeded):
            failure = TaskFailed(f"{where}{error}")
        else:
            failure = TaskFailed(f"{where}{type(error).__name__}: {error}")
        failure.__cause__ = error
        self.outcomes.put(("failed", failure))
        return False

    def _again(self, chunk: Any, count: bool) -> bool:
        from .tasks import WORKER_DIED, TaskFailed

        if count:
            chunk.attempts += 1
            if chunk.attempts > MAX_RETRIES:
                where = f"{self.plan.label(chunk.member)}cases {chunk.start + 1}-{chunk.stop}: "
                self.outcomes.put(("failed", TaskFailed(f"{where}{WORKER_DIED}")))
                return False
        if not self._closed:
            self.waiting.appendleft(chunk)
        return False
