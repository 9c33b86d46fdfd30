"""The one task interface: chunks of engine cases as tasks on an executor, their progress, cancelling,
time limits and outcomes — shared by the server's `Runner`, `vp.run`, `vp.sweep` / `sweeps.run_cases`
and the studies built on it (the dispatch loop itself: `task_dispatch.py`).

    plan = chunk_plan([case_a, case_b], workers=4)         # every case's engine cases in chunks
    outputs = run_plan(plan, executor, progress=bar)       # in-memory outputs per case (vp.run, sweeps)

What it owns:

* **Executors** (`Executor`): `submit(fn, *args) -> concurrent.futures.Future`, `max_workers`,
  `shutdown()`, optionally `terminate()` (stop all running work now) and a `listener` for worker
  messages. `vp_jupyter.local_pool.LocalProcessExecutor` (this machine's cores) and
  `vp_jupyter.dask_executor.DaskExecutor` (a Dask cluster) implement it; a future that fails with
  `WorkerDied` means its worker went away (`pids`: the processes that died on their own, when known;
  `cause`: what a run it was running failed with).
* **Chunks**: cases without tidal buildup are independent, so a series is split into chunks of
  consecutive cases (`plan_chunks`: about CHUNKS_PER_WORKER per worker, at most MAX_CHUNK_CASES); a
  series coupled by tidal buildup is one chunk. `chunk_plan` does that for several cases at once (the
  members of a sweep or study share the chunk size, so small members are not split finely).
* **Worker messages**: a task calls `report(kind, token, value)` ("start" with its pid, "progress" with
  cases done); the executor delivers them to its `listener`. `in_worker()` tells task code whether it
  runs in a pool worker (where it may tune the process, e.g. its garbage collector).
* **One dispatch loop** (`task_dispatch.TaskDispatcher`): a supervisor thread keeps the executor's
  worker slots busy, routes worker messages to the tasks they are about, and hands each task's outcome
  to its owner. The server's `Runner` (a job table of many runs, outputs in the store) and `run_plan`
  (one plan, outputs returned here: `vp.run`, sweeps, studies) are its two owners.
* **Running a plan in memory** (`run_plan`): at most IN_FLIGHT_PER_WORKER tasks per worker in flight,
  outputs returned by the tasks (no shared folder needed), progress as workers report cases done,
  `cancel` (a threading.Event) and `time_limit_s` stop it (the executor's workers are terminated when
  it is the plan's own), a task stopped together with other work is run again, and a failed task
  raises `TaskFailed` naming the member and the cases.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from .inputs import Case

WORKER_DIED = "the worker process running this case died unexpectedly (killed or out of memory)"
PROGRESS_INTERVAL_S = 0.25      # how often a task reports cases done
MAX_CHUNK_CASES = 250           # cases per chunk at most (progress and load balance)
CHUNKS_PER_WORKER = 4           # aim for this many chunks per worker (load balance)
IN_FLIGHT_PER_WORKER = 2        # run_plan: tasks kept in flight per worker (a shared executor is not flooded)


def check_count(name: str, value: Any) -> "int | None":
    """`value` if it is None or a whole number >= 1 (worker and chunk counts), else ValueError naming `name`."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a whole number >= 1 or None (got {value!r})")
    return value


class WorkerDied(BrokenExecutor):
    """A worker process went away while the future's work was pending or running.

    `pids`: worker processes that died on their own (killed from outside, out of memory, crashed), when
    known; `intentional`: the executor terminated its workers itself (`terminate()`); `cause`: the error
    a run that was running there fails with (WORKER_DIED unless the executor knows better, e.g. the
    worker memory limit)."""

    def __init__(self, message: str, pids: "frozenset[int]" = frozenset(), intentional: bool = False,
                 cause: str | None = None):
        super().__init__(message)
        self.pids = frozenset(pids)
        self.intentional = intentional
        self.cause = cause or WORKER_DIED


class WorkerMemoryExceeded(MemoryError):
    """Raised in a task whose worker went over its memory limit (`local_pool`); its text is the error of
    the run."""


class TaskFailed(RuntimeError):
    """`run_plan`: a task failed; the message names the case (in a sweep or study: the member) and cases."""


@runtime_checkable
class Executor(Protocol):
    """Where tasks run (`LocalProcessExecutor`, `DaskExecutor`; see the module docstring)."""
    max_workers: int

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...

    def shutdown(self, wait: bool = True) -> None: ...


# ----------------------------------------------------------------------------------------- messages

_CHANNEL: Any = None


def set_channel(channel: Any) -> None:
    """In a worker: where `report` sends messages (an object with `send(message)`)."""
    global _CHANNEL
    _CHANNEL = channel


def in_worker() -> bool:
    """True in a worker process of an executor that listens to its tasks (local pool, Dask)."""
    return _CHANNEL is not None


def report(*message: Any) -> None:
    """Send a small message (a tuple, far below 4 KiB, so a pipe write is atomic) to the executor's
    listener; does nothing outside a worker."""
    if _CHANNEL is not None:
        try:
            _CHANNEL.send(message)
        except (OSError, ValueError):
            pass


class ProgressReporter:
    """`progress(done, total)` for the engine's series loop that reports ("progress", token, done) at most
    every PROGRESS_INTERVAL_S."""

    def __init__(self, token: Any):
        self.token, self.last = token, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            report("progress", self.token, done)


# ----------------------------------------------------------------------------------------- chunks

def cases_per_chunk(total_cases: int, workers: int) -> int:
    """Cases per chunk: about CHUNKS_PER_WORKER chunks per worker, at most MAX_CHUNK_CASES."""
    return min(MAX_CHUNK_CASES, max(1, math.ceil(total_cases / (CHUNKS_PER_WORKER * max(1, workers)))))


def plan_chunks(count: int, coupled: bool, workers: int, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """[start, stop) case ranges: one for a coupled series, else about CHUNKS_PER_WORKER per worker."""
    if coupled or count <= 1:
        return [(0, count)]
    size = chunk_size or cases_per_chunk(count, workers)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


@dataclass
class Chunk:
    """A task of a plan: cases [start, stop) of member `member` (a case of the plan); `output` once it
    returned."""
    member: int
    start: int
    stop: int
    output: Any = None
    pid: int | None = None
    token: int | None = None        # the dispatch in flight, if any
    done: int = 0                   # cases done in the dispatch in flight
    reported: int = 0               # cases counted as done (progress)
    attempts: int = 0

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass
class Plan:
    """Members to run (each a validated Case: the cases of a sweep or study, or the one case of a run),
    their engine cases and the tasks (chunks) they were split into. `label(i)`: how messages name member
    i ("" for a single run; sweeps: "member 3 (key=value): ")."""
    cases: list
    engine_cases: list[list] = field(default_factory=list)
    tasks: list[Chunk] = field(default_factory=list)
    label: Callable[[int], str] = lambda i: ""

    @property
    def total(self) -> int:
        return sum(chunk.size for chunk in self.tasks)


def chunk_plan(cases: "Sequence[Case]", workers: int, label: "Callable[[int], str] | None" = None) -> Plan:
    """Split every case's engine cases into chunks (one chunk size over all of them; a case with tidal
    buildup in one chunk)."""
    from .engine.series import couples_cases

    plan = Plan(list(cases), [case.engine_cases() for case in cases])
    if label is not None:
        plan.label = label
    size = cases_per_chunk(sum(len(e) for e in plan.engine_cases), workers)
    for number, engine_cases in enumerate(plan.engine_cases):
        for start, stop in plan_chunks(len(engine_cases), couples_cases(engine_cases), workers, chunk_size=size):
            plan.tasks.append(Chunk(number, start, stop))
    return plan


def worker_count(executor: Any, max_workers: Any = None) -> int:
    """Workers of `executor`, else `max_workers`, else one per CPU core."""
    if executor is not None:
        return int(getattr(executor, "max_workers", None) or 1)
    return check_count("max_workers", max_workers) or os.cpu_count() or 1


# ----------------------------------------------------------------------------------------- running a plan

def run_plan(plan: Plan, executor: Executor, progress: Any = None, *, cancel: "threading.Event | None" = None,
             time_limit_s: float | None = None, stop_workers: bool = False) -> list[Chunk]:
    """Run every task of `plan` on `executor` (worker function: `run_cases_task`) through the task
    dispatch loop (`task_dispatch.PlanRun`: at most IN_FLIGHT_PER_WORKER tasks per worker in flight, a
    task stopped with other work run again) and return the tasks with their outputs. `progress`: an
    object with `update(n)` (n more cases done), called in this thread as workers report cases done.
    `cancel`: set it (from another thread) to stop (raises Cancelled); `time_limit_s`: stop after that
    long (raises TimeoutError). Stopping, a failed task (TaskFailed) or Ctrl-C drop the tasks not
    started; with `stop_workers` (an executor only this plan uses) its running work is terminated too."""
    from .task_dispatch import PlanRun

    deadline = None if time_limit_s is None else time.monotonic() + time_limit_s
    run = PlanRun(plan, executor, max(1, IN_FLIGHT_PER_WORKER * worker_count(executor)))
    try:
        while True:
            try:
                outcome = run.outcomes.get(timeout=0.2)
            except queue.Empty:
                outcome = None
            if cancel is not None and cancel.is_set():
                raise Cancelled("the run was cancelled")
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"the run exceeded the time limit of {time_limit_s:g} s")
            if outcome is None:
                continue
            if outcome[0] == "progress" and progress is not None:
                progress.update(outcome[1])
            elif outcome[0] == "failed":
                raise outcome[1]
            elif outcome[0] == "finished":
                break
    except BaseException:
        if run.stop() and stop_workers and callable(getattr(executor, "terminate", None)):
            executor.terminate()            # stop the work in flight now
        raise
    run.stop()
    return plan.tasks


class Cancelled(Exception):
    """`run_plan` was cancelled through its `cancel` event."""


def run_cases_task(engine_cases: Sequence[Any], time_step: float, member: int,
                   token: Any = None) -> tuple[int, dict[str, Any]]:
    """Worker function: run some consecutive engine cases (all of a series, in order, when tidal buildup
    couples them), reporting ("start", token, pid) and cases done. Returns the worker's process id and
    the outputs in their compact form (`pack_outputs`)."""
    from .engine.series import run_series

    report("start", token, os.getpid())
    series = run_series(list(engine_cases), time_step, progress=ProgressReporter(token))
    return os.getpid(), pack_outputs(series)


def assemble(plan: Plan) -> list[tuple[Any, Any, Any]]:
    """Per case of the plan: its plume and far-field `OutputTable` (in case order) and tidal output, from
    the chunks' outputs (which are released)."""
    by_case: dict[int, list[Chunk]] = {}
    for chunk in plan.tasks:
        by_case.setdefault(chunk.member, []).append(chunk)
    assembled = []
    for number in range(len(plan.cases)):
        chunks = sorted(by_case.get(number, ()), key=lambda c: c.start)
        outputs = [chunk.output for chunk in chunks]
        for chunk in chunks:
            chunk.output = None
        assembled.append(join_outputs(outputs))
    return assembled


def pack_outputs(series: Any) -> dict[str, Any]:
    """The outputs of a series run (`engine.series.run_series`) as a chunk task hands them over:
    ``{"plumes": OutputTable, "farfields": OutputTable, "tidal": TidalOutput}`` (a few arrays per chunk,
    compact to pickle; `join_outputs` puts consecutive chunks together)."""
    from .output_table import FARFIELD, PLUME, OutputTable

    return {"plumes": OutputTable.from_outputs(series.plumes, PLUME),
            "farfields": OutputTable.from_outputs(series.farfields, FARFIELD), "tidal": series.tidal}


def join_outputs(parts: "Sequence[dict[str, Any]]") -> tuple[Any, Any, Any]:
    """The `pack_outputs` of consecutive chunks of one case joined in case order: (plume OutputTable,
    far-field OutputTable, tidal output — of the chunk that ran tidal buildup, which is the whole series)."""
    from .engine.types import TidalOutput
    from .output_table import FARFIELD, PLUME, OutputTable

    tidal = next((part["tidal"] for part in parts if part["tidal"].was_run), TidalOutput())
    return (OutputTable.join([part["plumes"] for part in parts], PLUME),
            OutputTable.join([part["farfields"] for part in parts], FARFIELD), tidal)
