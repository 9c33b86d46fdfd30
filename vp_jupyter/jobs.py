"""The runner's job table entries: a run accepted by the `Runner` (`Job`), its tasks (`JobTask`: a chunk of
its cases, or the task that finishes it), their progress and the run's status as `Runner.status` answers
it (`record_status` for a run read back from the store).
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .store import RunRecord, iso_time

if TYPE_CHECKING:  # pragma: no cover
    from .inputs import Case
    from .results import Result


@dataclass(eq=False)
class JobTask:
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
class Job:
    id: str
    case: "Case"
    case_json: dict                 # the case as self-contained JSON, for the in-flight journal
    engine_cases: list
    time_step: float
    coupled: bool                   # one task runs the series and finishes the run
    source: str
    owner: str
    request: Any
    request_files: Any
    make_archive: Callable[["Result", str], bytes] | None
    make_response: Callable[["Result", str], "str | bytes"] | None
    chunks: list[JobTask]
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
    finalizer: JobTask | None = None  # the finish task, once every chunk is done
    outcome: dict | None = None     # the finish report of the worker: the stored record
    active: int = 0                 # tasks dispatched whose futures are not done
    idle: threading.Event = field(default_factory=_set_event)   # set while `active` is 0
    done_future: Future = field(default_factory=Future)
    record: RunRecord | None = None
    discard: bool = False           # deleted: not kept in the store when it ends

    def tasks(self) -> list[JobTask]:
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
            "owner": record.owner, "case_name": record.case_name, "case_count": record.case_count,
            "kind": record.kind}
