"""`vp.uncertainty` and `vp.sensitivity`: sample a case's inputs, run the members through
`sweeps.run_cases` (the one way work is dispatched), tabulate their outcomes and make a `Study`.

Keys are those of `vp.sweep` (``diffuser.<field>``, ``ambient.<variable>``, ``ambient.layers[i].<field>``,
``model.<setting>``), values in the units the case gives the field in.

Sensitivity (SALib, Herman & Usher 2017): ``method="sobol"`` samples Saltelli's scheme with Sobol'
sequences (`SALib.sample.sobol`, n·(D+2) members for D inputs) and estimates first-order and total
indices (Sobol' 2001; Saltelli et al. 2010) with bootstrap confidence intervals; ``method="morris"``
samples n elementary-effect trajectories on a 4-level grid (n·(D+1) members; Morris 1991) and gives μ*
(Campolongo et al. 2007), μ and σ. The output is one outcome column (default: the dilution at the
mixing-zone boundary); a member with several cases contributes the mean over its cases.
"""
from __future__ import annotations

import getpass
import math
import re
import time
import warnings
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from .outcomes import OUTCOME_COLUMNS, dilution_path, outcome_rows, outcome_units
from .statistics import DILUTION, check_threshold
from .study import Study

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from ..inputs import Case
    from ..results import Result
    from ..runner import Executor

SENSITIVITY_METHODS = ("sobol", "morris")
MORRIS_LEVELS = 4
FAN_POINTS = 81
MAX_MEMBERS = 100_000
MAX_REFUSAL_ROUNDS = 10         # `run_cases` names at most 20 refused members a time
_MEMBER = re.compile(r"member (\d+)(?: \([^)]*\))?: (.*)", re.S)


def uncertainty(case: Any, inputs: Mapping[str, Any], n: int = 200, *, seed: Any = None, method: str = "lhs",
                target_dilution: float | None = None, concentration_limit: float | None = None,
                executor: "Executor | None" = None, max_workers: int | None = None, progress: Any = True,
                store: Any = True) -> Study:
    """A Monte Carlo uncertainty study: `n` members of `case` with the `inputs` drawn from their
    distributions (see :mod:`vp_jupyter.studies.sampling` for the spellings) by `method` ("lhs", "sobol"
    or "random"), run on `executor` (default: a local pool of `max_workers` processes) with a progress
    bar (`progress`). `target_dilution` / `concentration_limit` are kept for the study's statistics and
    report. `store`: True (default) records the study as one entry of the archive store (a RunStore or a
    folder: there; False: not recorded). Invalid sampled members are reported in the members table, not
    raised; invalid keys or distributions raise CaseError."""
    from ..inputs import Case, CaseError
    from .sampling import METHODS, distributions, sample

    started = time.time()
    base = Case.load(case)
    _check_count(n)
    if method not in METHODS:
        raise CaseError([f"method must be one of {', '.join(METHODS)} (got {method!r})"])
    try:
        check_threshold("target_dilution", target_dilution)
        check_threshold("concentration_limit", concentration_limit)
    except ValueError as err:
        raise CaseError([str(err)]) from None
    _check_keys(base, inputs)
    try:
        dists = distributions(inputs)
    except ValueError as err:
        raise CaseError([str(err)]) from None
    values = sample(dists, n, method, seed)
    rows = [{key: float(values[key][i]) for key in dists} for i in range(n)]
    members, results = _run_members(base, rows, executor, max_workers, progress)
    settings = {"n": n, "seed": _json_seed(seed), "method": method, "target_dilution": target_dilution,
                "concentration_limit": concentration_limit}
    specs = {key: (dist.spec if dist.spec is not None else dist.text) for key, dist in dists.items()}
    study = Study("uncertainty", base, specs, settings, members, _fan(results), None, results,
                  _provenance(base, started, executor, max_workers))
    return _stored(study, store, started)


def sensitivity(case: Any, bounds: Mapping[str, Sequence[float]], method: str = "sobol", n: int | None = None, *,
                seed: int | None = None, output: str = DILUTION, executor: "Executor | None" = None,
                max_workers: int | None = None, progress: Any = True, store: Any = True) -> Study:
    """A global sensitivity study of `output` to the inputs in `bounds` (key -> [low, high], uniform),
    by `method` "sobol" (n base samples, default 128: n·(D+2) members) or "morris" (n trajectories,
    default 20: n·(D+1) members); see the module docstring. `study.indices` holds the indices: for Sobol
    ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (95 % bootstrap half-widths), for Morris ``mu``, ``mu_star``,
    ``mu_star_conf``, ``sigma``. Bounds whose ends the input layer refuses raise CaseError."""
    from ..inputs import Case, CaseError

    started = time.time()
    base = Case.load(case)
    if method not in SENSITIVITY_METHODS:
        raise CaseError([f"method must be one of {', '.join(SENSITIVITY_METHODS)} (got {method!r})"])
    if output not in OUTCOME_COLUMNS or output in ("case", "mz_source", "stop_reason"):
        raise CaseError([f"output must be a numeric outcome column such as {DILUTION!r} (got {output!r})"])
    n = n if n is not None else (128 if method == "sobol" else 20)
    _check_count(n)
    ranges = check_bounds(base, bounds)
    problem = {"num_vars": len(ranges), "names": list(ranges), "bounds": list(ranges.values())}
    with warnings.catch_warnings():         # SALib: "n should be a power of 2" — still valid, less balanced
        warnings.simplefilter("ignore")
        if method == "sobol":
            from SALib.sample import sobol as sobol_sample

            matrix = sobol_sample.sample(problem, n, calc_second_order=False, seed=seed)
        else:
            from SALib.sample import morris as morris_sample

            matrix = morris_sample.sample(problem, n, num_levels=MORRIS_LEVELS, seed=seed)
    if len(matrix) > MAX_MEMBERS:
        raise CaseError([f"{len(matrix)} members is more than {MAX_MEMBERS}; lower n"])
    rows = [{key: float(value) for key, value in zip(ranges, point)} for point in matrix]
    members, results = _run_members(base, rows, executor, max_workers, progress)
    y = members.groupby("member", sort=True)[output].mean().to_numpy(float)
    indices = _indices(problem, method, matrix, y, seed)
    settings = {"n": n, "seed": seed, "method": method, "output": output, "members": len(rows)}
    study = Study("sensitivity", base, ranges, settings, members, _fan(results), indices, results,
                  _provenance(base, started, executor, max_workers))
    return _stored(study, store, started)


def check_bounds(base: "Case", bounds: Any) -> dict[str, list[float]]:
    """key -> [low, high] of a sensitivity study, checked: known keys, two numbers low < high, and both ends
    accepted by the input layer (CaseError listing every problem)."""
    from ..inputs import CaseError
    from ..sweeps import apply

    _check_keys(base, bounds)
    problems, ranges = [], {}
    for key, bound in bounds.items():
        if (not isinstance(bound, (list, tuple)) or len(bound) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bound)
                or not bound[0] < bound[1]):
            problems.append(f"sensitivity bound {key}: needs [low, high] numbers with low < high (got {bound!r})")
            continue
        for end in bound:
            try:
                apply(base, {key: float(end)})
            except CaseError as err:
                problems.extend(f"sensitivity bound {key}={end:g}: {p}" for p in err.problems)
        ranges[key] = [float(bound[0]), float(bound[1])]
    if problems:
        raise CaseError(problems)
    return ranges


# ----------------------------------------------------------------------------------------- members

def _run_members(base: "Case", rows: list[dict[str, float]], executor: Any, max_workers: Any,
                 progress: Any) -> "tuple[pd.DataFrame, list[Result | None]]":
    """Validate every member (a refusal is kept as its problem), run the valid ones through
    `sweeps.run_cases` and tabulate: one row per member and case."""
    import pandas as pd

    from ..inputs import CaseError
    from ..sweeps import apply, key_unit, run_cases

    cases: list[Any] = []
    problems: list[str | None] = []
    for values in rows:
        try:
            cases.append(apply(base, values))
            problems.append(None)
        except CaseError as err:
            cases.append(None)
            problems.append("; ".join(err.problems))
    statuses = ["ok" if case is not None else "invalid" for case in cases]
    results: list[Any] = [None] * len(cases)
    for _ in range(MAX_REFUSAL_ROUNDS):
        todo = [i for i, case in enumerate(cases) if case is not None and statuses[i] == "ok"]
        try:
            ran = run_cases([cases[i] for i in todo], executor=executor, max_workers=max_workers,
                            progress=progress) if todo else []
        except CaseError as err:            # the model refused some members: list them, run the others again
            refused = _refused(err, len(todo))
            if not refused:
                raise
            for position, problem in refused.items():
                statuses[todo[position]], problems[todo[position]] = "refused", problem
            continue
        for i, result in zip(todo, ran):
            results[i] = result
        break
    else:
        raise CaseError([f"the model refused members in {MAX_REFUSAL_ROUNDS} rounds; check the input ranges"])
    table = []
    keys = list(rows[0]) if rows else []
    for index, (values, result, problem) in enumerate(zip(rows, results, problems)):
        head = {"member": index, **values, "status": statuses[index], "problem": problem or ""}
        if result is None:
            table.append({**head, **{c: math.nan for c in OUTCOME_COLUMNS}, "case": 0, "mz_source": "",
                          "stop_reason": ""})
            continue
        table.extend({**head, **outcome} for outcome in outcome_rows(result))
    frame = pd.DataFrame(table, columns=["member", *keys, "status", "problem", *OUTCOME_COLUMNS])
    frame.attrs["units"] = {"member": "", **{k: key_unit(base, k) for k in keys}, "status": "", "problem": "",
                            **outcome_units(base.diffuser_units["concentration"].label)}
    return frame, results


def _refused(error: Exception, count: int) -> dict[int, str]:
    """Member position -> the model's refusal, from the CaseError of `run_cases` ("member i: …"; a single
    case's message has no member label)."""
    refused: dict[int, str] = {}
    for problem in getattr(error, "problems", []):
        match = _MEMBER.match(problem)
        if match:
            refused.setdefault(int(match.group(1)), match.group(2))
        elif count == 1:
            refused[0] = problem
    return {i: p for i, p in refused.items() if 0 <= i < count}


def _fan(results: "Sequence[Result | None]") -> "pd.DataFrame":
    """Quantiles (5, 25, 50, 75, 95 %) across members of the dilution at each horizontal distance; the fan
    ends where fewer than half the profiles still reach (`count` profiles reach each distance)."""
    import pandas as pd

    paths = [dilution_path(r, number) for r in results if r is not None for number in range(1, r.case_count + 1)]
    columns = ["distance", "p05", "p25", "p50", "p75", "p95", "count"]
    reach = max((float(path[0][-1]) for path in paths if path[0].size), default=0.0)
    if not paths:
        return pd.DataFrame(columns=columns)
    distances = np.linspace(0.0, reach if reach > 0 else 1.0, FAN_POINTS)
    profiles = np.array([np.interp(distances, d, s, left=np.nan, right=np.nan) if d.size else
                         np.full(FAN_POINTS, np.nan) for d, s in paths])
    count = np.isfinite(profiles).sum(axis=0)
    keep = count >= max(1, math.ceil(0.5 * len(profiles)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # all-NaN columns are dropped below
        bands = np.nanpercentile(profiles, [5, 25, 50, 75, 95], axis=0)
    frame = pd.DataFrame({"distance": distances, **{name: band for name, band in zip(columns[1:6], bands)},
                          "count": count})[keep].reset_index(drop=True)
    frame.attrs["units"] = {"distance": "m", **{c: "1" for c in columns[1:6]}, "count": ""}
    return frame


def _indices(problem: dict[str, Any], method: str, matrix: np.ndarray, y: np.ndarray, seed: Any) -> "pd.DataFrame":
    import pandas as pd

    names = problem["names"]
    if not np.all(np.isfinite(y)):           # some members did not run: no indices, said in the table
        columns = (["S1", "S1_conf", "ST", "ST_conf"] if method == "sobol" else ["mu", "mu_star", "mu_star_conf", "sigma"])
        return pd.DataFrame({"input": names, **{c: [math.nan] * len(names) for c in columns}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if method == "sobol":
            from SALib.analyze import sobol

            found = sobol.analyze(problem, y, calc_second_order=False, conf_level=0.95, print_to_console=False,
                                  seed=seed)
            columns = ("S1", "S1_conf", "ST", "ST_conf")
        else:
            from SALib.analyze import morris

            found = morris.analyze(problem, matrix, y, conf_level=0.95, print_to_console=False,
                                   num_levels=MORRIS_LEVELS, seed=seed)
            columns = ("mu", "mu_star", "mu_star_conf", "sigma")
    return pd.DataFrame({"input": names, **{c: np.asarray(found[c], dtype=float) for c in columns}})


# ----------------------------------------------------------------------------------------- helpers

def _check_keys(base: "Case", keys: Any) -> None:
    from ..inputs import CaseError
    from ..sweeps import _check_grid

    if not isinstance(keys, Mapping) or not keys:
        raise CaseError([f"a study needs a non-empty dict of key -> distribution or bounds (got {keys!r})"])
    _, _, problems = _check_grid(base, {key: [0.0] for key in keys})
    if problems:
        raise CaseError([p.replace("sweep key", "study key") for p in problems])


def _check_count(n: Any) -> None:
    from ..inputs import CaseError

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_MEMBERS:
        raise CaseError([f"n must be a whole number from 1 to {MAX_MEMBERS} (got {n!r})"])


def _json_seed(seed: Any) -> Any:
    return seed if seed is None or isinstance(seed, int) else repr(seed)


def _provenance(base: "Case", started: float, executor: Any, max_workers: Any) -> dict[str, Any]:
    import os

    from .. import __version__, _owner
    from ..report_html import case_hash
    from ..store import iso_time

    owner = _owner(getpass)
    workers = int(getattr(executor, "max_workers", 0) or max_workers or os.cpu_count() or 1)
    return {"vp_jupyter_version": __version__, "case_hash": case_hash(base), "created": iso_time(started),
            "owner": owner, "executor": type(executor).__name__ if executor is not None else "LocalProcessExecutor",
            "workers": workers}


def _stored(study: Study, store: Any, started: float) -> Study:
    finished = time.time()
    study.provenance["duration_s"] = finished - started
    if store is False or store is None:
        return study
    from .storage import save_study

    try:
        study.run_id = save_study(study, store, source="notebook", started=started, finished=finished)
    except OSError as error:
        if store is not True:
            raise
        warnings.warn(f"the study was not recorded in the archive store: {error.strerror or error}",
                      RuntimeWarning, stacklevel=3)
    study.provenance["run_id"] = study.run_id
    return study
