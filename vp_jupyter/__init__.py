"""vp-jupyter: the Visual Plumes UM3 effluent-plume model for Python and Jupyter — the public API.

    import vp_jupyter as vp
    result = vp.run("case.json")        # a path, a dict in the case schema, or a Case
    result.plume                        # pandas DataFrame, SI, units in result.plume.attrs["units"]
    print(result.text_report())
    result.plot()                       # elevation, plan, dilution and concentration views (matplotlib)
    vp.runs()                           # the archive store as a DataFrame, newest first
    vp.load(result.run_id)              # any stored run back as a Result (also web-UI runs)
    study = vp.uncertainty(case, {"diffuser.effluent_flow": ["normal", 0.1, 0.01]}, n=200)
    study.report("report.html")         # a self-contained HTML report (also result.report(...))

Heavy modules (pandas, the engine, the input layer) are imported on first use, so `import vp_jupyter`
and the command line stay fast.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY_NAMES = {
    "Case": "vp_jupyter.inputs",
    "CaseError": "vp_jupyter.inputs",
    "ModelSettings": "vp_jupyter.inputs",
    "Diffuser": "vp_jupyter.inputs",
    "AmbientProfile": "vp_jupyter.inputs",
    "AmbientLayer": "vp_jupyter.inputs",
    "Result": "vp_jupyter.results",
    "sweep": "vp_jupyter.sweeps",
    "uncertainty": "vp_jupyter.studies",
    "sensitivity": "vp_jupyter.studies",
    "statistics": "vp_jupyter.studies",
    "Study": "vp_jupyter.studies",
    "RunStore": "vp_jupyter.store",
    "CaseForm": "vp_jupyter.widgets",
    "Client": "vp_jupyter.client",
    "ServiceError": "vp_jupyter.client",
    "DaskExecutor": "vp_jupyter.dask_executor",
}

__all__ = ["run", "runs", "load", "__version__", *_LAZY_NAMES]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    import pandas as pd

    from .dask_executor import DaskExecutor
    from .inputs import AmbientLayer, AmbientProfile, Case, CaseError, Diffuser, ModelSettings
    from .client import Client, ServiceError
    from .results import Result
    from .store import RunStore
    from .studies import Study, sensitivity, statistics, uncertainty


#: a series with at least this many independent cases runs on the local cores by default (`vp.run`)
PARALLEL_MIN_CASES = 200


def run(source: Any, *, store: Any = True, source_label: str = "notebook", progress: Any = None,
        workers: int | None = None, executor: Any = None, files: Any = None) -> "Result":
    """Run the UM3 model (with far field and tidal buildup when the case asks) and return its :class:`Result`.

    `source` is a path to a case JSON file, a dict in the case schema, or a :class:`Case`; or a project
    the Visual Plumes web UI saved ("Save Project Config"), run with the same values as the web UI would.
    `files`: for such a project, the CSV files of the time series it takes from files (a saved project
    never holds them), e.g. ``files={"effluent_flow": "flow.csv"}``; see :meth:`Case.load`.
    Invalid input raises :class:`CaseError` listing every problem; so does a case the model
    refuses to run.

    `store`: where the run is recorded. True (the default) records it in the archive store
    (`$VP_JUPYTER_STORE` — which the Jupyter server exports to its kernels, so notebook runs appear
    next to the web UI's — else `<jupyter data dir>/vp_jupyter/runs`); if that store cannot be
    written, a RuntimeWarning says so and the result is returned unrecorded. A
    :class:`~vp_jupyter.store.RunStore` or a folder path records it there (errors are raised).
    False or None keeps the result in memory only. A recorded result has its `run_id`
    (see :func:`load`); `source_label` is the source written in the record (`notebook`, `cli`, …).
    `progress`: True shows a progress bar (tqdm when installed, else a line of text); a callable is
    called as progress(done, total) (the notebook form's progress bar); None or False: nothing.

    `workers`: how many local worker processes run a time series. By default (None) a series of at
    least PARALLEL_MIN_CASES (200) independent cases is split into chunks spread over all CPU cores (a
    pool of worker processes kept for later runs; it works from notebooks, scripts without a main
    guard and ``python -c``); a single case, a shorter series and a series coupled by tidal buildup
    run in this process. ``workers=1`` always runs here; ``workers=N`` uses N processes for any series.

    `executor`: run the cases there instead, e.g. a :class:`~vp_jupyter.dask_executor.DaskExecutor`
    (a Dask cluster) or a `vp_jupyter.local_pool.LocalProcessExecutor`. Independent cases are split
    into chunks spread over its workers, a tidal-buildup series runs in one task; the tasks return
    their outputs (the workers need no access to the store) and the Result, identical to an
    in-process run, is assembled and recorded here.
    """
    import time

    from .inputs import Case
    from .tasks import check_count

    check_count("workers", workers)
    case = Case.load(source, files=files)
    started = time.time()
    if executor is not None:
        from .sweeps import run_single

        result = run_single(case, executor=executor, progress=progress)
    elif _in_parallel(case, workers):
        from .sweeps import run_single

        # the shared pool (on an error or Ctrl-C its running chunks are stopped: they were all this run's)
        result = run_single(case, max_workers=workers, progress=progress)
    else:
        result = _run_here(case, progress)
    if store is False or store is None:
        return result
    target = _store(store)
    try:
        result.run_id = _record(target, case, result, source_label, started, time.time())
    except OSError as error:
        if store is not True:
            raise
        import warnings

        warnings.warn(f"the run was not recorded in the archive store {target.root}: "
                      f"{error.strerror or error}; the result is returned without a run id",
                      RuntimeWarning, stacklevel=2)
    return result


def _in_parallel(case: "Case", workers: int | None) -> bool:
    """Whether `vp.run` spreads this case's series over worker processes (see `workers`)."""
    if workers == 1 or len(case.case_times) < 2:
        return False
    if workers is None and len(case.case_times) < PARALLEL_MIN_CASES:
        return False
    return not case.model.tidal_pollution_buildup      # a coupled series runs in order in one task


def _run_here(case: "Case", progress: Any) -> "Result":
    """Run every case of `case` in this process."""
    from .engine.series import run_series
    from .inputs import CaseError
    from .progress import progress_bar
    from .results import Result

    engine_cases = case.engine_cases()
    bar = None
    if progress is True:
        bar = progress_bar(len(engine_cases), "run")
        progress = lambda done, total: bar.update(done - bar.n)  # noqa: E731
    elif not callable(progress):
        progress = None
    try:
        series = run_series(engine_cases, case.time_step, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for number, output in enumerate(series.plumes, start=1):
        if output.error:
            where = f"case {number}: " if len(engine_cases) > 1 else ""
            raise CaseError([f"{where}{output.error}"])
    return Result(case, series.plumes, engine_cases, series.farfields, series.tidal)


def runs(source: str | None = None, owner: str | None = None, status: str | None = None,
         store: Any = None, client: Any = None, *, limit: int | None = None, before: str | None = None,
         text: str | None = None, since: Any = None, until: Any = None, kind: str | None = None) -> "pd.DataFrame":
    """The runs of the archive store as a DataFrame, one row per run, newest first.

    Columns: ``id``, ``created`` (UTC datetimes), ``source`` (notebook, ui, api, cli), ``owner``,
    ``status`` (succeeded, failed, cancelled), ``case_name``, ``case_count``, ``duration_s``, ``error``,
    ``kind`` (``run``, or ``study`` for a stored uncertainty or sensitivity study).
    Filters: `source` / `owner` / `status` (equal), `text` (part of the case name, any case — a web-UI
    run is named after its project, else "web UI run <time>"), `since` / `until` (created in [since,
    until): datetimes, ISO text or epoch seconds). `limit`: at most that many rows (default: all);
    ``frame.attrs["next"]`` is then the cursor of the rows that follow (None at the end): pass it as
    `before` for the next page. `kind`: only runs ("run") or only studies ("study"); default both.
    `store`: a :class:`~vp_jupyter.store.RunStore` or a folder; default the store :func:`run` records
    into. `client`: a :class:`~vp_jupyter.client.Client` — the runs of that server you may see instead
    (queued and running ones too).
    """
    filters = dict(source=source, owner=owner, status=status, limit=limit, before=before, text=text, since=since,
                   until=until)
    if client is not None:
        if store is not None:
            raise TypeError("give store or client, not both")
        return client.runs(**filters)
    page = _store(store).page(**filters, kind=kind)
    rows = [{name: getattr(record, name) for name in RUN_COLUMNS} for record in page.records]
    return runs_frame(rows, page.next)


def runs_frame(rows: "list[dict[str, Any]]", next_cursor: str | None = None) -> "pd.DataFrame":
    """The DataFrame of :func:`runs` from run rows (dicts holding at least the RUN_COLUMNS keys);
    `next_cursor` goes to ``attrs["next"]``."""
    import pandas as pd

    frame = pd.DataFrame([{name: row.get(name) for name in RUN_COLUMNS} for row in rows], columns=list(RUN_COLUMNS))
    frame["kind"] = frame["kind"].fillna("run")
    frame["created"] = pd.to_datetime(frame["created"], utc=True, format="ISO8601")
    frame["case_count"] = frame["case_count"].astype("int64")
    frame["duration_s"] = frame["duration_s"].astype("float64")
    frame.attrs["next"] = next_cursor
    return frame


def load(run_id: Any, store: Any = None, client: Any = None) -> "Result | Study":
    """A stored run back as a :class:`Result` (its `run_id` set), whoever started it: a notebook,
    the web UI, the JSON API or the command line.

    `run_id`: the id text (``vp.runs().id[0]``, ``result.run_id``) or a run record. Malformed text
    raises ValueError; an id that is not in the store, or a run that failed or was cancelled (it has
    no result), raises KeyError, each with a message that says which. `store`: as for :func:`runs`.
    A stored study (kind "study", from :func:`uncertainty` or :func:`sensitivity`) comes back as a Study.
    `client`: a :class:`~vp_jupyter.client.Client` — load the run from that server instead.
    """
    from .store import RunNotFound

    if client is not None:
        if store is not None:
            raise TypeError("give store or client, not both")
        return client.load(run_id)
    run_id = getattr(run_id, "id", run_id)
    target = _store(store)
    record = target.get(run_id)     # InvalidRunId (ValueError) or RunNotFound (KeyError)
    if record.status != "succeeded":
        why = f": {record.error}" if record.error else ""
        raise RunNotFound(f"run {record.id} {record.status}{why}; it has no result to load")
    if record.kind == "study":
        from .studies.storage import load_study

        return load_study(target, record.id)
    result = target.load_result(record.id)
    result.run_id = record.id
    return result


# columns of `runs()`, in order (fields of RunRecord)
RUN_COLUMNS = ("id", "created", "source", "owner", "status", "case_name", "case_count", "duration_s", "error",
               "kind")


def _store(store: Any) -> "RunStore":
    """A RunStore from the `store` argument of run / runs / load: None or True → the default root."""
    from .store import RunStore

    if store is None or store is True:
        return RunStore()
    if isinstance(store, RunStore):
        return store
    if isinstance(store, (str, os.PathLike)):
        return RunStore(store)
    raise TypeError(f"store must be True, False, None, a RunStore or a folder path (got {type(store).__name__})")


def _record(target: "RunStore", case: "Case", result: "Result", source_label: str, started: float,
            finished: float) -> str:
    """Save a succeeded run in `target`; returns the run id. (Its legacy zip is not stored: the server's
    download and the notebook form build it from the stored result.)"""
    import getpass

    from .store import new_run_id

    run_id = new_run_id(started)
    record = target.save(case, result, source=source_label, owner=_owner(getpass), status="succeeded",
                         started=started, finished=finished, run_id=run_id)
    return record.id


def _owner(getpass: Any) -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):     # no user name (some containers)
        return ""


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """Entry point for `jupyter server`: the Visual Plumes extension app."""
    from .server.app import VisualPlumesApp

    return [{"module": "vp_jupyter.server.app", "app": VisualPlumesApp}]


def __getattr__(name: str) -> Any:
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'vp_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
