"""The worker side of a stored run (the server's `Runner`): tasks that run a chunk of cases and leave its
outputs in the run's parts folder (`run_chunk`), finish a run — assemble the Result, build the legacy
archive and response, save the run atomically — (`finalize_run`), or do both for a series coupled by
tidal buildup (`run_coupled`). Each reports ("start", token, pid) and ("progress", token, cases done)
through `tasks.report` and returns only a small report: the parent never unpickles outputs.
"""
from __future__ import annotations

import logging
import os
import pickle
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from .local_pool import release_memory as _release_memory
from .store import RunNotFound, RunStore
from .tasks import ProgressReporter, in_worker, join_outputs, pack_outputs, report

if TYPE_CHECKING:  # pragma: no cover
    from .engine.types import EngineCase
    from .inputs import Case
    from .results import Result

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinalizeTask:
    """What a worker needs to finish a run, picklable. The case is the runner's own validated Case, pickled
    with its engine cases: unpickling a year of hourly cases costs a third of validating its JSON again
    (and a pickle here never comes from a user: only the runner makes these tasks)."""
    store: RunStore
    run_id: str
    case: "Case"
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
    """Worker function: run consecutive independent cases and leave their outputs in their compact form
    (`tasks.pack_outputs`: a few arrays per chunk) in `parts_dir` as `part_name(index)`, written to a
    temporary name and renamed. The engine's final element state is not kept (a stored Result has none).

    Reports ``("start", token, pid)`` and, every PROGRESS_INTERVAL_S, ``("progress", token, cases done)``.
    Returns only ``{"index", "cases", "file", "refused"}``; `refused` is None, or ``[offset, message]`` of
    the first case of the chunk the model refused (offset 0-based within the chunk)."""
    series = _run_cases(engine_cases, time_step, token)
    name = part_name(index)
    payload = pack_outputs(series)
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


def _load_parts(folder: Path, parts: "Sequence[str]") -> tuple[Any, Any, Any]:
    """The chunk outputs joined in case order: plume and far-field `OutputTable`, tidal output."""
    loaded = []
    for name in parts:
        with open(folder / name, "rb") as handle:
            loaded.append(pickle.load(handle))
    return join_outputs(loaded)


def _run_cases(engine_cases: "Sequence[EngineCase]", time_step: float, token: int) -> Any:
    from .engine.series import run_series

    report("start", token, os.getpid())
    return run_series(list(engine_cases), time_step, progress=ProgressReporter(token))


def _chunk_meta(index: int, series: Any, name: str | None) -> dict[str, Any]:
    refused = next(([offset, plume.error] for offset, plume in enumerate(series.plumes) if plume.error), None)
    return {"index": index, "cases": len(series.plumes), "file": name, "refused": refused}


def _finalize(task: FinalizeTask, plumes: list, farfields: list, tidal: Any) -> dict[str, Any]:
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
    case = task.case
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
    from .engine.series import cyclic_gc_paused

    if not in_worker():      # in the caller's process (a thread executor): leave it
        yield
        return
    with cyclic_gc_paused():
        yield
