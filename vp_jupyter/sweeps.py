"""Sweeps: run a case over a grid of input values in worker processes and tabulate the outcome.

    table = vp.sweep(case, {"diffuser.effluent_flow": [0.05, 0.1, 0.2],
                            "ambient.current_speed": [0.05, 0.1, 0.2]})
    table                     # one row per member and case: swept values, dilution, depth, distance, status
    table.attrs["units"]      # unit of every column (swept keys: the case's own units; results: SI)

Visual Plumes' and CORMIX's sensitivity analysis, done as a grid. The grid is the cartesian product of
the value lists, the first key varying slowest; each combination is a *member*, a complete case. Every
member is validated before anything runs (one `CaseError` names each bad member and field), then the
members' cases are split into chunks and spread over worker processes through the task interface
(`vp_jupyter.tasks`: the process-wide `local_pool.shared_executor` that `vp.run` uses too, or any executor, e.g. a `DaskExecutor`
for a Dask cluster). A member with tidal buildup runs its cases in order in one task. `run_cases` runs
any list of cases that way (the members of a study); `run_single` runs one case (`vp.run(case,
workers=...)` / `executor=`).

Keys (values in the units the case gives that field in; model settings in SI):

* ``diffuser.<field>``: a diffuser value, e.g. ``diffuser.effluent_flow``, ``diffuser.depth``;
* ``ambient.<variable>``: that ambient variable in every layer that gives a value for it (the layers that
  leave it empty are still filled by interpolation); when no layer gives one, in every layer (a uniform
  profile). So ``ambient.current_speed: [0.1]`` on a profile with 0.2 m/s at the surface and 0.1 m/s at
  the bottom gives 0.1 m/s everywhere: the value is *set*, not scaled;
* ``ambient.layers[i].<variable>``: that variable (or ``z``) in layer i only (0-based, from the surface);
* ``model.<setting>``: a model setting, e.g. ``model.aspiration_coeff`` or ``model.max_reversals``.

A field that has a time series in the case cannot be swept (the series would override the value).
Keys are applied in the order given, so ``ambient.layers[0].salinity`` after ``ambient.salinity`` wins in
layer 0.

(The module is `sweeps`, plural: importing a submodule named `sweep` would replace the function
`vp_jupyter.sweep` with the module.)
"""
from __future__ import annotations

import itertools
import math
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from .progress import progress_bar
from .tasks import Plan, assemble, chunk_plan, run_plan, worker_count

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from .inputs import Case
    from .results import Result
    from .tasks import Executor

#: problems listed in one CaseError before the rest are only counted
MAX_LISTED_PROBLEMS = 20

_LAYER_KEY = re.compile(r"ambient\.layers\[(\d+)\]\.(\w+)")

# result columns and their units (SI, as Result.summary)
RESULT_UNITS = {
    "case": "",
    "time": "s",
    "steps": "",
    "status": "",
    "stop_reason": "",
    "dilution": "1",
    "cl_dilution": "1",
    "depth": "m",
    "horizontal_distance": "m",
    "source_distance": "m",
    "concentration": "kg/kg",
    "travel_time": "s",
}
FARFIELD_RESULT_UNITS = {"ff_dilution": "1", "ff_distance": "m", "ff_concentration": "kg/kg"}
TIDAL_RESULT_UNITS = {"buildup": "kg/kg"}


@dataclass
class Member:
    """One combination of the grid: its 0-based `index`, the swept `values` (key -> value, case units) and
    the validated `case` to run."""
    index: int
    values: dict[str, Any]
    case: "Case"

    def label(self) -> str:
        return f"member {self.index} ({', '.join(f'{k}={_show(v)}' for k, v in self.values.items())})"


# ----------------------------------------------------------------------------------------- the grid

def members(case: Any, grid: Mapping[str, Sequence[Any]]) -> list[Member]:
    """The grid's members, each a validated Case (see the module docstring for the keys).

    `case`: a Case, a dict in the case layout or a path. `grid`: key -> list of values. Raises CaseError
    listing every bad key and every invalid member (by index, swept values and field)."""
    from .inputs import Case, CaseError

    base = Case.load(case)
    keys, value_lists, problems = _check_grid(base, grid)
    if problems:
        raise CaseError(problems)
    out: list[Member] = []
    member_problems: list[str] = []
    bad_members = 0
    for index, combination in enumerate(itertools.product(*value_lists)):
        values = dict(zip(keys, combination))
        member = Member(index, values, base)
        try:
            member.case = apply(base, values)
        except CaseError as err:
            bad_members += 1
            for problem in err.problems:
                member_problems.append(f"{member.label()}: {problem}")
        out.append(member)
    if member_problems:
        shown = member_problems[:MAX_LISTED_PROBLEMS]
        if len(member_problems) > len(shown):
            shown.append(f"... and {len(member_problems) - len(shown)} more problem(s); "
                         f"{bad_members} of {len(out)} members are invalid")
        raise CaseError(shown)
    return out


def apply(case: "Case", values: Mapping[str, Any]) -> "Case":
    """A new, validated Case: `case` with the swept `values` (key -> value) set (CaseError if invalid)."""
    diffuser, ambient, model = case.diffuser, case.ambient, case.model
    layers = list(ambient.layers)
    for key, value in values.items():
        where, _, name = key.partition(".")
        match = _LAYER_KEY.fullmatch(key)
        if match:
            i, var = int(match.group(1)), match.group(2)
            layers[i] = layers[i].replace(**{var: value})
        elif where == "diffuser":
            diffuser = diffuser.replace(**{name: value})
        elif where == "model":
            model = model.replace(**{name: value})
        else:                               # ambient.<variable>
            given = [i for i, layer in enumerate(layers) if getattr(layer, name) is not None]
            for i in given or range(len(layers)):
                layers[i] = layers[i].replace(**{name: value})
    return case.replace(diffuser=diffuser, ambient=ambient.replace(layers=tuple(layers)), model=model)


def key_unit(case: "Case", key: str) -> str:
    """Unit label of a sweep key's values: the case's unit of that field (model settings: SI)."""
    from . import units as u
    from .inputs.fields import MODEL_FIELDS

    match = _LAYER_KEY.fullmatch(key)
    if match:
        return case.ambient_units[match.group(2)].label
    where, _, name = key.partition(".")
    if where == "diffuser":
        return case.diffuser_units[name].label
    if where == "ambient":
        return case.ambient_units[name].label
    spec = MODEL_FIELDS[name]
    return u.si_unit(spec.kind).label if spec.type in ("float", "int") else ""


def _check_grid(case: "Case", grid: Any) -> tuple[list[str], list[list[Any]], list[str]]:
    """The keys, their value lists, and the problems of the grid itself (keys and value lists)."""
    from .inputs.fields import AMBIENT_FIELDS, AMBIENT_VARIABLES, DIFFUSER_FIELDS, MODEL_FIELDS

    problems: list[str] = []
    if not isinstance(grid, Mapping) or not grid:
        return [], [], [f"sweep: the grid must be a non-empty dict of key -> list of values (got {_show(grid)})"]
    series = case.timeseries
    diffuser_series = set(getattr(series, "diffuser", None) or ())
    ambient_series = set(getattr(series, "ambient", None) or ())
    keys, value_lists = [], []
    for key, raw in grid.items():
        if not isinstance(key, str):
            problems.append(f"sweep: keys must be strings like 'diffuser.effluent_flow' (got {_show(key)})")
            continue
        where, _, name = key.partition(".")
        match = _LAYER_KEY.fullmatch(key)
        if match:
            i, var = int(match.group(1)), match.group(2)
            if var not in AMBIENT_FIELDS:
                problems.append(f"sweep key {key!r}: unknown ambient field {var!r}; allowed: {', '.join(AMBIENT_FIELDS)}")
            elif i >= len(case.ambient.layers):
                problems.append(f"sweep key {key!r}: the case has {len(case.ambient.layers)} ambient layers "
                                f"(indices 0 to {len(case.ambient.layers) - 1})")
            elif var in ambient_series:
                problems.append(f"sweep key {key!r}: ambient.{var} has a time series in this case "
                                f"(timeseries.ambient.{var}), which replaces the layer values")
        elif where == "diffuser":
            if name not in DIFFUSER_FIELDS:
                problems.append(f"sweep key {key!r}: unknown diffuser field {name!r}; allowed: {', '.join(DIFFUSER_FIELDS)}")
            elif name in diffuser_series:
                problems.append(f"sweep key {key!r}: diffuser.{name} has a time series in this case "
                                f"(timeseries.diffuser.{name}), which replaces the value")
        elif where == "ambient":
            if name not in AMBIENT_VARIABLES:
                problems.append(f"sweep key {key!r}: unknown ambient variable {name!r}; allowed: "
                                f"{', '.join(AMBIENT_VARIABLES)} (or ambient.layers[i].<field> for one layer)")
            elif name in ambient_series:
                problems.append(f"sweep key {key!r}: ambient.{name} has a time series in this case "
                                f"(timeseries.ambient.{name}), which replaces the layer values")
        elif where == "model":
            if name not in MODEL_FIELDS:
                problems.append(f"sweep key {key!r}: unknown model setting {name!r}; allowed: {', '.join(MODEL_FIELDS)}")
        else:
            problems.append(f"sweep key {key!r}: must start with 'diffuser.', 'ambient.' or 'model.'")
        values = _value_list(raw)
        if values is None:
            problems.append(f"sweep key {key!r}: needs a non-empty list of values (got {_show(raw)})")
            values = []
        keys.append(key)
        value_lists.append(values)
    return keys, value_lists, problems


def _value_list(raw: Any) -> "list[Any] | None":
    """The values as a list of plain Python values (numpy scalars unwrapped); None if not a non-empty list."""
    if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Iterable):
        return None
    values = [v.item() if hasattr(v, "item") and not isinstance(v, (str, bytes)) else v for v in raw]
    return values or None


def _show(value: Any) -> str:
    from .inputs.parts import fmt

    return fmt(value)


# ----------------------------------------------------------------------------------------- running

def sweep(case: Any, grid: Mapping[str, Sequence[Any]], *, max_workers: int | None = None,
          executor: "Executor | None" = None, progress: bool = True, store: Any = False,
          mp_context: str = "spawn") -> "pd.DataFrame":
    """Run `case` over the cartesian `grid` of input values and return a tidy DataFrame.

    `case`: a Case, a dict in the case layout or a path. `grid`: ``{key: [values]}`` with keys
    ``diffuser.<field>``, ``ambient.<variable>`` (set in every layer that gives it; in all layers when none
    does), ``ambient.layers[i].<field>`` or ``model.<setting>``, values in the case's own units (model
    settings in SI). The first key varies slowest.

    Every member is validated first: an invalid one raises :class:`CaseError` naming the member (index and
    swept values) and the field. Members run in worker processes: `max_workers` (default: one per CPU
    core) of the process-wide spawned pool `vp.run` uses too (kept between calls, so only the first call
    waits for the workers to start; with ``mp_context="forkserver"`` a pool made for the call), or the
    given `executor` (e.g. a Runner's, or a
    `vp_jupyter.dask_executor.DaskExecutor` to spread them over a Dask cluster's workers). It works from
    any caller: a notebook, a script without ``if __name__ == "__main__":``, ``python -c`` (the workers do
    not import the caller's main module). `progress`: a progress bar (tqdm when installed, else a line of
    text); False silences it.

    `store`: False (the default for sweeps: a grid makes many runs) keeps the results in memory only;
    True records every member as a run in the archive store ($VP_JUPYTER_STORE), a RunStore records them
    there, and the table gets a `run_id` column.

    Returns one row per member and case: ``member`` (0-based grid index), one column per swept key (named
    by the key, in the case's units), ``case`` (1-based), ``time`` (case start, s), ``steps``, ``status``
    (final status text), ``stop_reason``, ``dilution``, ``cl_dilution``, ``depth``,
    ``horizontal_distance`` (from the coordinate origin), ``source_distance``, ``concentration``, ``travel_time`` (the last near-field row,
    SI), and when any member runs the Brooks far field ``ff_dilution``, ``ff_distance``,
    ``ff_concentration`` (its last far-field row; NaN where it did not run), and when any member has tidal
    buildup ``buildup`` (the concentration fed into the case). ``attrs["units"]`` gives every
    column's unit, ``attrs["grid"]`` the grid, ``attrs["worker_pids"]`` the processes that ran it.
    """
    member_list = members(case, grid)
    plan = _plan(member_list, worker_count(executor, max_workers))
    results = _run(plan, executor, max_workers, bool(progress), "sweep", mp_context)
    run_ids = _store(member_list, results, store) if store is not False and store is not None else None
    return _table(plan, member_list, results, grid, run_ids)


def run_cases(cases: "Sequence[Case]", *, executor: "Executor | None" = None, max_workers: int | None = None,
              progress: Any = None, label: Any = None) -> "list[Result]":
    """Run several validated cases (the members of a sweep or study) on worker processes and return their
    Results, in order. Their engine cases are split into chunks (a case with tidal buildup is one task)
    and spread over `executor`, else over the shared local pool of `max_workers` processes (default: one
    per CPU core; `local_pool.shared_executor`, kept between calls). `progress`: True for a progress bar, a callable `progress(done, total)`
    (cases), or None / False. `label(i) -> str` names member i in messages (default "member i: ").
    CaseError lists the cases the model refused (per member); `tasks.TaskFailed` (a RuntimeError) names the
    member and cases of a task that failed."""
    plan = chunk_plan(list(cases), worker_count(executor, max_workers), label or (lambda i: f"member {i}: "))
    return _run(plan, executor, max_workers, progress, "cases")


def run_single(case: "Case", *, executor: "Executor | None" = None, max_workers: int | None = None,
               progress: Any = None) -> "Result":
    """One case's cases as tasks (`vp.run(..., workers= / executor=)`): like `run_cases` for one case, with
    messages worded as `vp.run` words them (no member label)."""
    plan = chunk_plan([case], worker_count(executor, max_workers))
    return _run(plan, executor, max_workers, progress, "run")[0]


def _run(plan: Plan, executor: Any, max_workers: Any, progress: Any, bar_label: str,
         mp_context: Any = "spawn") -> list["Result"]:
    """Run a plan's tasks on `executor` (else the shared local pool, see `_executor`) with a progress bar
    or callback; the members' Results."""
    bar = _progress(progress, plan.total, bar_label)
    try:
        with _executor(executor, max_workers, len(plan.tasks), mp_context) as (running_on, only_ours):
            run_plan(plan, running_on, bar, stop_workers=only_ours)
    finally:
        bar.close()
    return _results(plan)


@contextmanager
def _executor(executor: Any, max_workers: Any, tasks: int, mp_context: Any = "spawn") -> Iterator[tuple[Any, bool]]:
    """The executor to run on, and whether its work in flight is all this call's (so an error or Ctrl-C
    may stop it): the given executor (not stopped); else the process-wide spawned pool of `max_workers`
    (default: one per core) that `vp.run` uses too (`local_pool.shared_executor`: its workers stay up
    between calls, so a call does not pay the pool's start); else, for another `mp_context`, a pool made
    for this call (no more workers than tasks), shut down after."""
    if executor is not None:
        yield executor, False
        return
    from . import local_pool

    if mp_context == "spawn":
        yield local_pool.shared_executor(worker_count(None, max_workers)), True
        return
    own = local_pool.LocalProcessExecutor(max(1, min(worker_count(None, max_workers), tasks)), mp_context)
    try:
        yield own, True
    except BaseException:
        own.shutdown(wait=False)
        raise
    own.shutdown(wait=True)


def _plan(member_list: "list[Member]", workers: int) -> Plan:
    """Split every member's cases into tasks: about CHUNKS_PER_WORKER tasks per worker over the whole grid,
    a coupled (tidal buildup) member in one task."""
    return chunk_plan([m.case for m in member_list], workers, lambda i: f"{member_list[i].label()}: ")


def _results(plan: Plan) -> list["Result"]:
    """One Result per member from its tasks' outputs (in case order); CaseError if the model refused one."""
    from .inputs import CaseError
    from .results import Result

    results, problems = [], []
    for number, (plumes, farfields, tidal) in enumerate(assemble(plan)):
        for case_number, error in enumerate(plumes.field("error"), start=1):
            if error:                       # the model refused a case: as vp.run does
                where = f"case {case_number}: " if len(plumes) > 1 else ""
                problems.append(f"{plan.label(number)}{where}{error}")
        results.append(Result(plan.cases[number], plumes, plan.engine_cases[number], farfields, tidal))
    if problems:
        raise CaseError(problems[:MAX_LISTED_PROBLEMS])
    return results


def _store(member_list: "list[Member]", results: list["Result"], store: Any) -> list[str]:
    """Record every member as a run in the archive store (as `vp.run` records one); their run ids."""
    from . import _record, _store as store_from_argument

    target = store_from_argument(store)
    run_ids = []
    for member, result in zip(member_list, results):
        now = time.time()
        result.run_id = _record(target, member.case, result, "notebook", now, now)
        run_ids.append(result.run_id)
    return run_ids


def _table(plan: Plan, member_list: "list[Member]", results: list["Result"], grid: Mapping[str, Any],
           run_ids: "list[str] | None") -> "pd.DataFrame":
    import pandas as pd

    keys = list(member_list[0].values) if member_list else list(grid)
    with_farfield = any(o.was_run for r in results for o in r.farfield_outputs)
    with_tidal = any(r.tidal.was_run for r in results)
    rows = []
    for member, result in zip(member_list, results):
        for final, far in zip(result.final_rows(), result.farfield_outputs):
            row: dict[str, Any] = {"member": member.index, **member.values}
            row.update({"time": final["start_time"], **{k: final[k] for k in RESULT_UNITS if k in final}})
            if with_farfield:
                has_rows = far.was_run and bool(far.steps)
                row["ff_dilution"] = far.columns["dilution"][-1] if has_rows else math.nan
                row["ff_distance"] = far.columns["distance"][-1] if has_rows else math.nan
                row["ff_concentration"] = far.columns["concentration"][-1] if has_rows else math.nan
            if with_tidal:
                row["buildup"] = (result.tidal.buildup[final["case"] - 1] if result.tidal.was_run
                                  else math.nan)
            if run_ids is not None:
                row["run_id"] = run_ids[member.index]
            rows.append(row)
    columns = ["member", *keys, *RESULT_UNITS]
    units: dict[str, str] = {"member": "", **{k: key_unit(member_list[0].case, k) for k in keys}, **RESULT_UNITS}
    if with_farfield:
        columns += list(FARFIELD_RESULT_UNITS)
        units.update(FARFIELD_RESULT_UNITS)
    if with_tidal:
        columns += list(TIDAL_RESULT_UNITS)
        units.update(TIDAL_RESULT_UNITS)
    if run_ids is not None:
        columns.append("run_id")
        units["run_id"] = ""
    frame = pd.DataFrame(rows, columns=columns)
    frame.attrs["units"] = units
    frame.attrs["grid"] = {k: _value_list(v) for k, v in grid.items()}
    frame.attrs["worker_pids"] = sorted({t.pid for t in plan.tasks if t.pid is not None})
    return frame


# ----------------------------------------------------------------------------------------- progress

class _CallbackProgress:
    """`progress(done, total)` as chunks finish (a callable given as `progress`)."""

    def __init__(self, progress: Any, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def update(self, n: int) -> None:
        self.done += n
        self.progress(self.done, self.total)

    def close(self) -> None:
        pass


def _progress(progress: Any, total: int, label: str) -> Any:
    """A bar (`update(n)`, `close()`) from a `progress` argument: True, a callable, or None / False."""
    if callable(progress):
        return _CallbackProgress(progress, total)
    return progress_bar(total, label, bool(progress))
