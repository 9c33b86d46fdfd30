"""`vp.sweep`: the grid, validation of every member up front, the tidy table, and parallel workers.

Cases are small and built here (no reference data). Most tests share one spawned pool of 2 workers
(`executor=`); a few let the sweep start and stop its own pool.
"""
from __future__ import annotations

import copy
import itertools
import math
import os
import sys

import pytest

import vp_jupyter as vp
from vp_jupyter import sweeps
from vp_jupyter.inputs import CaseError
from vp_jupyter.store import RunStore
from vp_jupyter.units import parse_unit, to_si

from builders import alive_processes, wait_until

RESULT_COLUMNS = ["case", "time", "steps", "status", "stop_reason", "dilution", "cl_dilution", "depth",
                  "horizontal_distance", "source_distance", "concentration", "travel_time"]


def small_case(*, cases: int = 1, brooks: bool = False, tidal: bool = False) -> dict:
    """One port at 20 m in a three-layer ambient (current given in the top and bottom layers only),
    flow in MGD and depths in ft, so case units differ from SI; optionally an hourly time series of
    `cases` cases (ambient temperature varying), the Brooks far field or tidal buildup (then the current
    turns every hour)."""
    values = {"diameter": 0.2, "vertical_angle": 10.0, "num_ports": 1, "acute_mixing_zone": 500.0,
              "depth": 65.0, "effluent_flow": 1.5, "salinity": 0.0, "temperature": 20.0, "concentration": 100.0}
    layers = [{"z": 0.0, "current_speed": 0.12, "current_dir": 90.0, "salinity": 33.0, "temperature": 16.0},
              {"z": 40.0, "salinity": 33.3},
              {"z": 80.0, "current_speed": 0.06, "salinity": 33.6, "temperature": 11.0}]
    model = {"write_step_freq": 20}
    if brooks:
        model.update(brooks_far_field=True, ff_increment=300.0)
        for layer in layers:
            layer.update(ff_velocity=0.1, ff_dir=90.0, ff_diff_coeff=0.0004)
    if tidal:
        model.update(tidal_pollution_buildup=True, tpb_channel_width=50.0, tpb_segment_length=100.0,
                     tpb_upstream_dir=90.0, tpb_coast_bin=40, tpb_coast_concentration=0.0,
                     tpb_mixing_zone_ceil=2.0)
    case = {"name": "sweep test", "model": model,
            "diffuser": {"values": values, "units": {"effluent_flow": "MGD", "depth": "ft"}},
            "ambient": {"units": {"z": "ft"}, "layers": layers}}
    if cases > 1:
        rows = "".join(f"{16 + (i % 3)},{11 + (i % 2)}\n" for i in range(cases))
        case["timeseries"] = {"start_time": 0, "end_time": cases - 1, "time_increment": 1, "units": "hr",
                              "ambient": {"temperature": {"increment_hours": 1, "depth_units": "ft",
                                                          "csv": "0,80\n" + rows}}}
        if tidal:                           # a reversing tide brings effluent back over the outfall
            turns = "".join("90,90\n" if i % 2 == 0 else "270,270\n" for i in range(cases))
            case["timeseries"]["ambient"]["current_dir"] = {"increment_hours": 1, "depth_units": "ft",
                                                            "csv": "0,80\n" + turns}
    return case


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    """Every test gets an empty default store, so nothing is recorded outside tmp_path."""
    root = tmp_path / "store"
    monkeypatch.setenv("VP_JUPYTER_STORE", str(root))
    return root


def single(member_case) -> "object":
    """vp.run of one member, kept in memory."""
    return vp.run(member_case, store=False)


def assert_rows_match_run(rows, result) -> None:
    """The sweep rows of one member equal the summary (and far field / buildup) of its own vp.run."""
    summary = result.summary()
    assert list(rows["case"]) == list(summary["case"])
    for column in ("steps", "status", "stop_reason", "dilution", "cl_dilution", "depth", "horizontal_distance",
                   "source_distance", "concentration", "travel_time"):
        assert list(rows[column]) == list(summary[column]), column
    assert list(rows["time"]) == list(summary["start_time"])


# ----------------------------------------------------------------------------------------- the grid

def test_the_grid_is_the_cartesian_product_first_key_slowest(pool) -> None:
    grid = {"diffuser.effluent_flow": [1.0, 2.0, 4.0], "ambient.current_speed": [0.05, 0.2]}
    table = vp.sweep(small_case(), grid, executor=pool, progress=False)
    assert len(table) == 6
    assert list(table.columns[:3]) == ["member", "diffuser.effluent_flow", "ambient.current_speed"]
    assert list(table.columns[3:]) == RESULT_COLUMNS
    assert list(table["member"]) == list(range(6))
    assert list(zip(table["diffuser.effluent_flow"], table["ambient.current_speed"])) == \
        list(itertools.product(*grid.values()))
    assert table.attrs["grid"] == grid


def test_one_row_per_member_and_case() -> None:
    grid = {"diffuser.concentration": [50, 100, 200]}
    table = vp.sweep(small_case(cases=4), grid, max_workers=2, progress=False)
    assert len(table) == 3 * 4
    assert list(table["member"]) == [0] * 4 + [1] * 4 + [2] * 4
    assert list(table["case"]) == [1, 2, 3, 4] * 3
    assert list(table["time"]) == [0.0, 3600.0, 7200.0, 10800.0] * 3
    assert list(table["diffuser.concentration"]) == [50] * 4 + [100] * 4 + [200] * 4


def test_values_are_in_case_units_and_land_in_the_members(pool) -> None:
    grid = {"diffuser.effluent_flow": [1.0, 3.0], "diffuser.depth": [60.0, 70.0]}
    table = vp.sweep(small_case(), grid, executor=pool, progress=False)
    assert table.attrs["units"]["diffuser.effluent_flow"] == "MGD"
    assert table.attrs["units"]["diffuser.depth"] == "ft"
    assert table.attrs["units"]["depth"] == "m" and table.attrs["units"]["dilution"] == "1"
    for member in sweeps.members(small_case(), grid):
        row = table[table["member"] == member.index].iloc[0]
        assert member.case.diffuser.effluent_flow == row["diffuser.effluent_flow"]
        assert member.case.diffuser.depth == row["diffuser.depth"]
        assert member.case.diffuser_units["effluent_flow"].label == "MGD"
        # the engine got the values converted from the case units
        engine = member.case.engine_cases()[0].diffuser
        assert engine.effluent_flow == to_si(row["diffuser.effluent_flow"], parse_unit("MGD", "flow"))
        assert engine.depth == to_si(row["diffuser.depth"], parse_unit("ft", "length"))
        assert engine.effluent_flow == pytest.approx(row["diffuser.effluent_flow"] * 0.0438, rel=1e-3)


def test_results_equal_individual_runs_of_the_members(pool) -> None:
    case = small_case()
    grid = {"diffuser.effluent_flow": [0.8, 2.5], "ambient.current_speed": [0.03, 0.25],
            "model.aspiration_coeff": [0.1, 0.12]}
    table = vp.sweep(case, grid, executor=pool, progress=False)
    dilutions = set()
    for member in sweeps.members(case, grid):
        rows = table[table["member"] == member.index]
        assert_rows_match_run(rows, single(member.case))
        dilutions.add(round(float(rows["dilution"].iloc[0]), 6))
    assert len(dilutions) == 8           # every member is a different plume


def test_sweep_members_are_the_same_cases_as_editing_the_case_by_hand() -> None:
    base = vp.Case.load(small_case())
    [member] = sweeps.members(base, {"diffuser.effluent_flow": [2.0], "model.max_reversals": ["INITIAL_TRAP_LEVEL"]})
    by_hand = small_case()
    by_hand["diffuser"]["values"]["effluent_flow"] = 2.0
    by_hand["model"]["max_reversals"] = "INITIAL_TRAP_LEVEL"
    assert member.case == vp.Case.load(by_hand)


def test_ambient_variable_is_set_in_every_layer_that_gives_it() -> None:
    base = vp.Case.load(small_case())
    [member] = sweeps.members(base, {"ambient.current_speed": [0.3]})
    assert [layer.current_speed for layer in member.case.ambient.layers] == [0.3, None, 0.3]
    # a variable no layer gives is set in every layer (a uniform profile)
    [member] = sweeps.members(base, {"ambient.bg_conc": [0.5]})
    assert [layer.bg_conc for layer in member.case.ambient.layers] == [0.5, 0.5, 0.5]
    # one layer only
    [member] = sweeps.members(base, {"ambient.layers[2].salinity": [34.0]})
    assert [layer.salinity for layer in member.case.ambient.layers] == [33.0, 33.3, 34.0]
    # keys apply in order: the layer key after the variable key wins in its layer
    [member] = sweeps.members(base, {"ambient.salinity": [30.0], "ambient.layers[0].salinity": [29.0]})
    assert [layer.salinity for layer in member.case.ambient.layers] == [29.0, 30.0, 30.0]
    assert sweeps.key_unit(base, "ambient.layers[0].z") == "ft"


# ----------------------------------------------------------------------------------------- validation

def test_an_invalid_member_raises_case_error_naming_member_and_field(monkeypatch) -> None:
    def no_workers(*args, **kwargs):
        raise AssertionError("nothing may run before every member is valid")

    monkeypatch.setattr("vp_jupyter.runner.LocalProcessExecutor", no_workers)
    grid = {"diffuser.effluent_flow": [1.0, -2.0], "ambient.current_speed": [0.1, 0.2]}
    with pytest.raises(CaseError) as caught:
        vp.sweep(small_case(), grid, progress=False)
    problems = caught.value.problems
    assert len(problems) == 2               # members 2 and 3 have the bad flow
    assert problems[0].startswith("member 2 (diffuser.effluent_flow=-2, ambient.current_speed=0.1): ")
    assert problems[1].startswith("member 3 (diffuser.effluent_flow=-2, ambient.current_speed=0.2): ")
    assert all("diffuser.effluent_flow: must be > 0" in p for p in problems)


@pytest.mark.parametrize("grid, message", [
    ({"diffuser.flow": [1]}, "sweep key 'diffuser.flow': unknown diffuser field 'flow'"),
    ({"ambient.z": [1]}, "sweep key 'ambient.z': unknown ambient variable 'z'"),
    ({"ambient.layers[3].salinity": [1]}, "sweep key 'ambient.layers[3].salinity': the case has 3 ambient layers"),
    ({"model.speed": [1]}, "sweep key 'model.speed': unknown model setting 'speed'"),
    ({"timeseries.end_time": [1]}, "sweep key 'timeseries.end_time': must start with"),
    ({"diffuser.depth": 20}, "sweep key 'diffuser.depth': needs a non-empty list of values (got 20)"),
    ({"diffuser.depth": []}, "sweep key 'diffuser.depth': needs a non-empty list of values"),
    ({"diffuser.depth": "20"}, "sweep key 'diffuser.depth': needs a non-empty list of values"),
    ({}, "sweep: the grid must be a non-empty dict"),
])
def test_bad_keys_and_value_lists_are_case_errors(grid, message) -> None:
    with pytest.raises(CaseError) as caught:
        vp.sweep(small_case(), grid, progress=False)
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_a_field_with_a_time_series_cannot_be_swept() -> None:
    with pytest.raises(CaseError, match=r"ambient.temperature has a time series in this case"):
        vp.sweep(small_case(cases=3), {"ambient.temperature": [10, 12]}, progress=False)


def test_model_setting_values_are_validated_too() -> None:
    with pytest.raises(CaseError) as caught:
        sweeps.members(small_case(), {"model.max_reversals": ["SECOND_MAX_RISE_OR_FALL", "SOMETIMES"]})
    [problem] = caught.value.problems
    assert problem.startswith("member 1 (model.max_reversals='SOMETIMES'): model.max_reversals")


def test_numpy_values_are_plain_numbers_in_the_table(pool) -> None:
    import numpy as np

    table = vp.sweep(small_case(), {"diffuser.effluent_flow": np.array([1.0, 2.0])}, executor=pool,
                     progress=False)
    assert list(table["diffuser.effluent_flow"]) == [1.0, 2.0]
    assert table.attrs["grid"] == {"diffuser.effluent_flow": [1.0, 2.0]}


# ----------------------------------------------------------------------------------------- running

def test_members_run_in_parallel_worker_processes() -> None:
    grid = {"diffuser.effluent_flow": [1.0, 1.5, 2.0, 2.5], "ambient.current_speed": [0.05, 0.1, 0.15, 0.2]}
    table = vp.sweep(small_case(), grid, max_workers=2, progress=False)
    pids = table.attrs["worker_pids"]
    assert len(pids) == 2 and os.getpid() not in pids
    assert len(table) == 16 and table["dilution"].gt(1).all()


def test_sweeps_without_an_executor_run_on_the_shared_pool_and_leave_it_running() -> None:
    from vp_jupyter import local_pool

    grid = {"diffuser.effluent_flow": [1.0, 1.5, 2.0, 2.5]}
    first = vp.sweep(small_case(cases=3), grid, max_workers=2, progress=False)
    second = vp.sweep(small_case(cases=3), grid, max_workers=2, progress=False)
    pool = local_pool._shared
    assert pool is not None and pool.max_workers == 2
    ran_on = set(first.attrs["worker_pids"]) | set(second.attrs["worker_pids"])
    assert ran_on and ran_on <= set(pool.worker_pids())     # the same workers, still up after both sweeps


def test_ctrl_c_in_run_cases_on_the_shared_pool_stops_its_running_work() -> None:
    from vp_jupyter import local_pool

    grid = {"diffuser.effluent_flow": [1.0, 1.5, 2.0, 2.5], "ambient.current_speed": [0.05, 0.1, 0.15, 0.2]}
    vp.sweep(small_case(), {"diffuser.effluent_flow": [1.0, 2.0]}, max_workers=2, progress=False)
    workers = local_pool._shared.worker_pids()

    def interrupt(done, total):
        raise KeyboardInterrupt

    cases = [member.case for member in sweeps.members(small_case(cases=24), grid)]
    with pytest.raises(KeyboardInterrupt):
        sweeps.run_cases(cases, max_workers=2, progress=interrupt)
    wait_until(lambda: not alive_processes(workers), "the interrupted sweep's workers to stop", 120.0)
    table = vp.sweep(small_case(), {"diffuser.effluent_flow": [1.0, 2.0]}, max_workers=2, progress=False)
    assert table["dilution"].gt(1).all()                    # the pool starts again on demand


def test_another_start_method_gets_a_pool_of_its_own_and_shuts_it_down(monkeypatch) -> None:
    from vp_jupyter import local_pool

    def no_shared_pool(*args, **kwargs):
        raise AssertionError("a forkserver sweep must not use the spawned shared pool")

    monkeypatch.setattr(local_pool, "shared_executor", no_shared_pool)
    table = vp.sweep(small_case(), {"diffuser.effluent_flow": [1.0, 2.0]}, max_workers=2, progress=False,
                     mp_context="forkserver")
    assert table["dilution"].gt(1).all()
    wait_until(lambda: not alive_processes(table.attrs["worker_pids"]), "the sweep's own pool to shut down", 120.0)


def test_tidal_buildup_member_runs_its_cases_in_order_in_one_task(pool) -> None:
    case = small_case(cases=5, tidal=True)
    grid = {"diffuser.effluent_flow": [1.0, 2.0]}
    plan = sweeps._plan(sweeps.members(case, grid), workers=2)
    assert [(t.member, t.start, t.stop) for t in plan.tasks] == [(0, 0, 5), (1, 0, 5)]
    table = vp.sweep(case, grid, executor=pool, progress=False)
    assert table.attrs["units"]["buildup"] == "kg/kg"
    for member in sweeps.members(case, grid):
        expected = single(member.case)
        assert expected.tidal.was_run
        rows = table[table["member"] == member.index]
        assert_rows_match_run(rows, expected)
        assert list(rows["buildup"]) == list(expected.tidal.buildup)
        assert rows["buildup"].iloc[0] == 0 and rows["buildup"].max() > 0  # earlier cases feed later ones


def test_independent_time_series_members_are_split_across_tasks() -> None:
    plan = sweeps._plan(sweeps.members(small_case(cases=8), {"diffuser.concentration": [50, 100]}), workers=2)
    assert len(plan.tasks) > 2
    assert sorted((t.member, t.start) for t in plan.tasks)[0] == (0, 0)
    for member in (0, 1):
        spans = sorted((t.start, t.stop) for t in plan.tasks if t.member == member)
        assert spans[0][0] == 0 and spans[-1][1] == 8
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_far_field_end_when_brooks_runs(pool) -> None:
    case = small_case(brooks=True)
    grid = {"ambient.ff_velocity": [0.05, 0.2]}
    table = vp.sweep(case, grid, executor=pool, progress=False)
    assert table.attrs["units"]["ff_dilution"] == "1" and table.attrs["units"]["ff_distance"] == "m"
    for member in sweeps.members(case, grid):
        expected = single(member.case)
        row = table[table["member"] == member.index].iloc[0]
        far = expected.farfield
        assert row["ff_dilution"] == far["dilution"].iloc[-1]
        assert row["ff_distance"] == far["distance"].iloc[-1]
        assert row["ff_concentration"] == far["concentration"].iloc[-1]
        assert row["ff_dilution"] > row["dilution"]
    # a member without Brooks gets NaN
    mixed = vp.sweep(case, {"model.brooks_far_field": [True, False]}, executor=pool, progress=False)
    assert not math.isnan(mixed["ff_dilution"].iloc[0]) and math.isnan(mixed["ff_dilution"].iloc[1])
    # no far-field columns when no member runs Brooks
    assert "ff_dilution" not in vp.sweep(small_case(), {"diffuser.depth": [60]}, executor=pool, progress=False)


# ----------------------------------------------------------------------------------------- store and progress

def test_sweeps_are_not_stored_by_default_and_can_be(pool, private_store) -> None:
    grid = {"diffuser.effluent_flow": [1.0, 2.0]}
    table = vp.sweep(small_case(), grid, executor=pool, progress=False)
    assert "run_id" not in table
    assert not private_store.exists() or RunStore(private_store).list() == []
    stored = vp.sweep(small_case(), grid, executor=pool, progress=False, store=True)
    records = RunStore(private_store).list()
    assert sorted(r.id for r in records) == sorted(stored["run_id"])
    assert {r.source for r in records} == {"notebook"}
    loaded = RunStore(private_store).load_result(stored["run_id"].iloc[1])
    assert loaded.case.diffuser.effluent_flow == 2.0
    assert loaded.summary()["dilution"].iloc[0] == stored["dilution"].iloc[1]


def test_progress_false_is_silent_and_text_progress_without_tqdm(pool, capsys, monkeypatch) -> None:
    vp.sweep(small_case(), {"diffuser.effluent_flow": [1.0, 2.0]}, executor=pool, progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)      # as if tqdm were not installed
    vp.sweep(small_case(), {"diffuser.effluent_flow": [1.0, 2.0]}, executor=pool)
    err = capsys.readouterr().err
    assert "sweep: 0/2 cases" in err and "sweep: 2/2 cases" in err


def test_progress_uses_tqdm_when_installed(pool, capsys) -> None:
    pytest.importorskip("tqdm")
    vp.sweep(small_case(), {"diffuser.effluent_flow": [1.0, 2.0, 3.0]}, executor=pool)
    assert "3/3" in capsys.readouterr().err


def test_the_input_case_is_not_changed(pool) -> None:
    case = small_case()
    before = copy.deepcopy(case)
    loaded = vp.Case.load(case)
    vp.sweep(loaded, {"ambient.current_speed": [0.3]}, executor=pool, progress=False)
    assert case == before
    assert [layer.current_speed for layer in loaded.ambient.layers] == [0.12, None, 0.06]
