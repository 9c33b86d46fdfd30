"""No run lost to a crash: the runner notes every run it accepts in the store (`RunStore.note_in_flight`)
and removes the note once the run is stored; a runner starting on the same store records the runs of a
runner that is gone (killed, crashed, the machine restarted) as failed with INTERRUPTED and removes their
staging leftovers (chunk results, interrupted saves).

A note names the process holding the run (pid, its start time and the host): runs of a runner that is
still alive (another server or kernel sharing the store) are left alone, and so are notes from another
host, whose processes cannot be checked from here.
"""
from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from .store import RunNotFound, RunStore

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the server stopped"


def holder() -> dict[str, Any]:
    """This process, as a note names it."""
    return {"pid": os.getpid(), "process_started": _process_started(os.getpid()), "host": socket.gethostname()}


def note_accepted(store: RunStore, run_id: str, case_json: dict, *, case_count: int, source: str, owner: str,
                  created: float) -> None:
    """Note a run that was just accepted (its record if this process dies before it is stored)."""
    store.note_in_flight(run_id, {"case": case_json, "case_count": case_count, "source": source, "owner": owner,
                                  "created": created, "holder": holder()})


def recover_interrupted(store: RunStore) -> list[str]:
    """Record the runs of dead holders as failed (INTERRUPTED), clear their notes and staging leftovers.
    Returns their ids."""
    recovered = []
    for note in store.in_flight():
        run_id = note["id"]
        if _holder_alive(note.get("holder")):
            continue
        try:
            _record_interrupted(store, note)
        except Exception:                   # a note that cannot be recorded must not stop a server starting
            log.exception("recording the interrupted run %s failed", run_id)
        store.discard_staging(run_id)
        store.clear_in_flight(run_id)
        recovered.append(run_id)
        log.warning("run %s was interrupted when its server stopped; recorded as failed", run_id)
    return recovered


def _record_interrupted(store: RunStore, note: dict) -> None:
    from .inputs import Case
    from .inputs.normalise import MAX_CASES

    try:
        store.get(note["id"])
        return                              # it was stored just before the crash: that stands
    except RunNotFound:
        pass
    case = Case.from_dict(note["case"], max_cases=max(MAX_CASES, int(note.get("case_count") or 0)))
    store.save(case, None, status="failed", error=INTERRUPTED, source=note["source"], owner=note.get("owner", ""),
               created=note.get("created"), finished=time.time(), run_id=note["id"])


def _holder_alive(who: Any) -> bool:
    """Whether the process a note names is still running (unknown hosts count as alive)."""
    if not isinstance(who, dict):
        return False
    if who.get("host") != socket.gethostname():
        return True
    pid = who.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    started = _process_started(pid)
    return started is not None and started == who.get("process_started")


def _process_started(pid: int) -> float | None:
    """Start time of a running process (None if there is none): tells a reused pid from the holder."""
    try:
        import psutil

        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except Exception:                       # gone, or not allowed to look
        return None
