"""The compact form of engine outputs (`OutputTable`, `tasks.pack_outputs` / `join_outputs`): chunk outputs
packed, pickled and joined come back as the engine made them, and a Result built from the joined tables
gives the same tables, dict, summary and stored files as one built from the engine's own lists."""
from __future__ import annotations

import functools
import math
import pickle
import struct

import pytest

import vp_jupyter as vp
from vp_jupyter import store_results
from vp_jupyter.engine.series import run_series
from vp_jupyter.engine.types import FARFIELD_COLUMNS, PLUME_COLUMNS, CaseOutput, FarFieldOutput, TidalOutput
from vp_jupyter.inputs import Case
from vp_jupyter.output_table import FARFIELD, PLUME, OutputTable
from vp_jupyter.results import Result
from vp_jupyter.tasks import join_outputs, pack_outputs, plan_chunks

from builders import assert_same_tables, complete_case

small_case = functools.partial(complete_case, "output table test")


def bits(values) -> list:
    """Floats by their bits (NaN equals NaN, -0.0 differs from 0.0)."""
    return [struct.pack("<d", value) for value in values]


def assert_same_outputs(got, expected) -> None:
    assert len(got) == len(expected)
    for case_number, (a, b) in enumerate(zip(got, expected), start=1):
        assert type(a) is type(b), case_number
        assert a.steps == b.steps and a.memos == b.memos, case_number
        assert list(a.columns) == list(b.columns), case_number
        for name in b.columns:
            assert all(type(v) is float for v in a.columns[name]), (case_number, name)
            assert bits(a.columns[name]) == bits(b.columns[name]), (case_number, name)
        if isinstance(b, CaseOutput):
            assert (a.statuses, a.postmemos, a.stop_reason, a.error) == (b.statuses, b.postmemos, b.stop_reason,
                                                                         b.error), case_number
        else:
            assert a.was_run == b.was_run, case_number


def plume_output(rows: int, *, start: float = 0.0, error: "str | None" = None) -> CaseOutput:
    return CaseOutput(steps=list(range(1, rows + 1)), statuses=[f"s{i}" for i in range(rows)],
                      columns={name: [start + k + i / 8 for i in range(rows)] for k, name in enumerate(PLUME_COLUMNS)},
                      memos=["memo"], postmemos=["post\nmemo"], stop_reason="surface" if rows else "", error=error)


class Series:
    """What `run_series` returns, made up (pack_outputs reads only these three)."""

    def __init__(self, plumes, farfields, tidal=None):
        self.plumes, self.farfields, self.tidal = plumes, farfields, tidal or TidalOutput()


def test_packing_round_trip_keeps_nan_infinities_empty_and_refused_cases() -> None:
    odd = plume_output(3, start=1.0)
    odd.columns["dilution"] = [math.nan, math.inf, -math.inf]
    odd.columns["x"] = [-0.0, 5e-324, 1.7976931348623157e308]
    plumes = [plume_output(2), odd, plume_output(0, error="the near-field (UM3) model failed (math domain error)"),
              plume_output(4, error="the near-field (UM3) model gave a value that is not finite")]
    farfields = [FarFieldOutput(), FarFieldOutput(was_run=True, memos=["ran, no row"]),
                 FarFieldOutput(was_run=True, steps=[7, 8], columns={n: [1.5, math.nan] for n in FARFIELD_COLUMNS}),
                 FarFieldOutput()]
    packed = pickle.loads(pickle.dumps(pack_outputs(Series(plumes, farfields)), protocol=pickle.HIGHEST_PROTOCOL))
    plume_table, farfield_table, tidal = join_outputs([packed])
    assert list(plume_table.rows) == [2, 3, 0, 4] and plume_table.total_rows == 9
    assert list(farfield_table.rows) == [0, 0, 2, 0]
    assert tidal == TidalOutput()
    assert_same_outputs(plume_table.outputs(), plumes)
    assert_same_outputs(farfield_table.outputs(), farfields)
    assert plume_table.field("error") == [p.error for p in plumes]
    assert list(plume_table.last_rows()) == [1, 4, -1, 8]


def test_chunks_joined_equal_the_whole_and_nothing_joins_to_empty_tables() -> None:
    plumes = [plume_output(rows, start=rows) for rows in (3, 0, 1, 5, 2, 2, 0)]
    farfields = [FarFieldOutput() for _ in plumes]
    parts = [pickle.loads(pickle.dumps(pack_outputs(Series(plumes[a:b], farfields[a:b]))))
             for a, b in plan_chunks(len(plumes), False, 1, chunk_size=3)]
    assert len(parts) == 3
    joined, far, _ = join_outputs(parts)
    whole = OutputTable.from_outputs(plumes, PLUME)
    assert_same_outputs(joined.outputs(), whole.outputs())
    assert list(joined.rows) == list(whole.rows) and list(joined.steps) == list(whole.steps)
    assert joined.statuses == whole.statuses and joined.fields == whole.fields
    assert far.total_rows == 0 and len(far) == len(plumes)
    empty_plumes, empty_far, tidal = join_outputs([])
    assert len(empty_plumes) == 0 and empty_plumes.outputs() == [] and set(empty_plumes.columns) == set(PLUME_COLUMNS)
    assert len(empty_far) == 0 and empty_far.total_rows == 0 and not tidal.was_run


def test_columns_that_do_not_match_the_steps_are_refused_when_packing() -> None:
    short = plume_output(3)
    short.columns["depth"] = short.columns["depth"][:2]
    with pytest.raises(ValueError, match="case 2: its plume columns"):
        OutputTable.from_outputs([plume_output(1), short], PLUME)


def chunked_result(case: Case, chunk_size: int) -> Result:
    """The case run in chunks, each packed and pickled as a chunk task hands it over, joined as a finish does."""
    engine_cases = case.engine_cases()
    parts = []
    for start, stop in plan_chunks(len(engine_cases), False, 1, chunk_size=chunk_size):
        series = run_series(engine_cases[start:stop], case.time_step)
        parts.append(pickle.loads(pickle.dumps(pack_outputs(series), protocol=pickle.HIGHEST_PROTOCOL)))
    plumes, farfields, tidal = join_outputs(parts)
    return Result(case, plumes, engine_cases, farfields, tidal)


def assert_same_result(got: Result, expected: Result) -> None:
    """The tables, the stored files and the dict of a Result from packed chunks equal the in-process one's."""
    assert_same_tables(got, expected, exact=True)
    assert repr(got.final_rows()) == repr(expected.final_rows())     # repr: NaN equals NaN
    light = store_results.result_files(got, {"case": 1})
    assert light == store_results.result_files(expected, {"case": 1})
    assert got.to_dict(tables=False) == expected.to_dict(tables=False)
    assert got.to_dict() == expected.to_dict()          # this one materialises the per-case outputs
    assert_same_outputs(got.farfield_outputs, expected.farfield_outputs)


@pytest.mark.parametrize("brooks", [False, True], ids=["no far field", "far field"])
def test_a_series_from_packed_chunks_equals_the_in_process_result(brooks) -> None:
    case = Case.load(small_case(cases=7, brooks=brooks))
    expected = vp.run(case, store=False, workers=1)
    got = chunked_result(case, chunk_size=3)
    assert got._outputs is None              # nothing so far needed the per-case outputs
    assert any(o.steps for o in expected.farfield_outputs) == brooks
    assert_same_result(got, expected)
    assert_same_outputs(got.outputs, [CaseOutput(**{**vars(o), "final": None}) for o in expected.outputs])


def test_a_tidal_buildup_series_through_one_packed_chunk_equals_the_in_process_result() -> None:
    raw = small_case(cases=6)
    raw["model"].update(tidal_pollution_buildup=True, tpb_channel_width=50.0, tpb_segment_length=100.0,
                        tpb_upstream_dir=90.0, tpb_coast_bin=40, tpb_coast_concentration=0.0, tpb_mixing_zone_ceil=2.0)
    case = Case.load(raw)
    expected = vp.run(case, store=False, workers=1)
    assert expected.tidal.was_run and len(expected.tidal.buildup) == 6
    got = chunked_result(case, chunk_size=6)
    assert got.tidal == expected.tidal
    assert_same_result(got, expected)


def test_a_result_with_a_case_the_model_refused_keeps_its_error_and_summary() -> None:
    case = Case.load(small_case(cases=3))
    engine_cases = case.engine_cases()
    series = run_series(engine_cases, case.time_step)
    series.plumes[1] = CaseOutput(error="the near-field (UM3) model failed (math domain error)")
    expected = Result(case, series.plumes, engine_cases, series.farfields, series.tidal)
    plumes, farfields, tidal = join_outputs([pickle.loads(pickle.dumps(pack_outputs(series)))])
    got = Result(case, plumes, engine_cases, farfields, tidal)
    summary = got.final_rows()[1]
    assert summary["steps"] == 0 and summary["status"] == "" and math.isnan(summary["dilution"])
    assert got.outputs[1].error == expected.outputs[1].error and got.plume_table.field("error")[1]
    assert_same_result(got, expected)
