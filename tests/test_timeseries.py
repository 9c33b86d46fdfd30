"""Time series (spec §12, legacy-http-api.md §3): CSV from text, lists or files, problems reported with the
file (or series path), line and column before any computation, case times and row selection
(floor(t / increment) mod rows, t from 0), depth-layered ambient series, every series variable through
`vp.run` (also those that crash the reference), Brooks with ambient series, and a property test."""
from __future__ import annotations

import functools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vp_jupyter as vp
from builders import minimal_case, write_case
from vp_jupyter.inputs import AmbientSeries, Case, CaseError, DiffuserSeries, Timeseries, json_schema, normalise

FT = 1 / 3.2808                     # m per ft (the Visual Plumes factor, spec §2)


base_case = functools.partial(minimal_case, "series")    # a small valid single-port case (SI, ppm)


def with_series(diffuser=None, ambient=None, start=0, end=3, increment=1, units="hr", **times):
    case = base_case()
    case["timeseries"] = {"start_time": start, "end_time": end, "time_increment": increment, "units": units,
                          "diffuser": diffuser or {}, "ambient": ambient or {}, **times}
    return case


def flow_series(csv="0.1\n0.2\n0.15\n", increment_hours=1, **extra):
    return {"effluent_flow": {"increment_hours": increment_hours, "csv": csv, **extra}}


def speed_series(csv="0,30\n0.1,0.05\n0.2,0.1\n", increment_hours=1, **extra):
    return {"current_speed": {"increment_hours": increment_hours, "csv": csv, **extra}}


def problems_of(source, **kwargs):
    with pytest.raises(CaseError) as err:
        Case.load(source, **kwargs)
    return err.value.problems


def assert_problem(source, expected, **kwargs):
    """The case is rejected and one problem is exactly `expected`."""
    found = problems_of(source, **kwargs)
    assert expected in found, found
    return found


def file_case(tmp_path, flow="0.1\n0.2\n0.15\n", speed="0,30\n0.1,0.05\n0.2,0.1\n",
              flow_name="effluent_flow.csv", speed_name="current_speed.csv"):
    """A case file in tmp_path whose flow and current-speed series are CSV files beside it."""
    (tmp_path / flow_name).write_text(flow)
    (tmp_path / speed_name).write_text(speed)
    case = with_series(diffuser={"effluent_flow": {"increment_hours": 1, "file": flow_name}},
                       ambient={"current_speed": {"increment_hours": 1, "file": speed_name}})
    return write_case(tmp_path, case)


# ------------------------------------------------------------------------------------- CSV from files

def test_file_series_give_the_same_cases_as_inline_csv(tmp_path):
    from_files = Case.load(file_case(tmp_path))
    inline = Case.load(with_series(diffuser=flow_series(), ambient=speed_series()))
    assert from_files.case_times == inline.case_times == [0.0, 3600.0, 7200.0, 10800.0]
    assert from_files.engine_cases() == inline.engine_cases()
    flows = [ec.diffuser.effluent_flow for ec in from_files.engine_cases()]
    assert flows == pytest.approx([0.1, 0.2, 0.15, 0.1])
    run_files, run_inline = vp.run(from_files), vp.run(inline)
    assert run_files.summary().equals(run_inline.summary())


def test_relative_file_paths_are_relative_to_the_case_file(tmp_path, monkeypatch):
    data = tmp_path / "cases" / "data"
    data.mkdir(parents=True)
    (data / "flow.csv").write_text("0.1\n0.3\n")
    case = with_series(end=1, diffuser={"effluent_flow": {"increment_hours": 1, "file": "data/flow.csv"}})
    path = write_case(tmp_path / "cases", case)
    monkeypatch.chdir(tmp_path)                          # not the case folder
    loaded = Case.load(path)
    assert [ec.diffuser.effluent_flow for ec in loaded.engine_cases()] == [0.1, 0.3]
    # a dict has no folder: relative to the current directory (or to base_dir)
    assert_problem(case, f"timeseries.diffuser.effluent_flow.file: file not found: "
                         f"{tmp_path / 'data' / 'flow.csv'} (got 'data/flow.csv')")
    assert Case.from_dict(case, base_dir=tmp_path / "cases").engine_cases() == loaded.engine_cases()
    monkeypatch.chdir(tmp_path / "cases")
    assert Case.load(case).engine_cases() == loaded.engine_cases()


def test_to_dict_keeps_the_file_reference_and_round_trips(tmp_path, monkeypatch):
    case = Case.load(file_case(tmp_path))
    block = case.to_dict()["timeseries"]
    assert block["diffuser"]["effluent_flow"] == {"file": str(tmp_path / "effluent_flow.csv"),
                                                  "increment_hours": 1.0, "units": None}
    assert "csv" not in block["ambient"]["current_speed"]
    assert block["ambient"]["current_speed"]["file"] == str(tmp_path / "current_speed.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = Case.load(json.loads(json.dumps(case.to_dict())))
    assert again == case and again.engine_cases() == case.engine_cases()
    # the data is read when the case is loaded: a changed file gives a changed case
    (tmp_path / "effluent_flow.csv").write_text("0.5\n")
    assert [ec.diffuser.effluent_flow for ec in Case.load(case.to_dict()).engine_cases()] == [0.5] * 4


def test_to_dict_can_inline_the_file_data(tmp_path):
    case = Case.load(file_case(tmp_path))
    inlined = case.to_dict(inline_files=True)
    assert inlined["timeseries"]["diffuser"]["effluent_flow"] == {"csv": "0.1\n0.2\n0.15\n",
                                                                  "increment_hours": 1.0, "units": None}
    assert inlined["timeseries"]["ambient"]["current_speed"]["csv"] == "0,30\n0.1,0.05\n0.2,0.1\n"
    (tmp_path / "effluent_flow.csv").unlink()
    (tmp_path / "current_speed.csv").unlink()
    assert Case.load(inlined).engine_cases() == case.engine_cases()


def test_files_can_be_refused_for_untrusted_cases(tmp_path):
    (tmp_path / "secret.csv").write_text("0.1\n")
    case = with_series(diffuser={"effluent_flow": {"increment_hours": 1, "file": str(tmp_path / "secret.csv")}})
    assert len(Case.load(case).engine_cases()) == 4
    for load in (lambda: Case.load(case, allow_files=False), lambda: Case.from_dict(case, allow_files=False)):
        with pytest.raises(CaseError) as err:
            load()
        assert err.value.problems == ["timeseries.diffuser.effluent_flow.file: reading files is not allowed here; "
                                      "give the data inline as csv"]
    inline = Case.load(with_series(diffuser=flow_series()), allow_files=False)
    with pytest.raises(CaseError, match="reading files is not allowed"):
        inline.replace(timeseries=inline.timeseries.replace(
            diffuser={"effluent_flow": DiffuserSeries(file=tmp_path / "secret.csv", increment_hours=1)}))


def test_replace_resolves_new_relative_files_against_the_case_folder(tmp_path, monkeypatch):
    case = Case.load(file_case(tmp_path))
    (tmp_path / "other.csv").write_text("0.4\n")
    monkeypatch.chdir(tmp_path.parent)
    changed = case.replace(timeseries=case.timeseries.replace(
        diffuser={"effluent_flow": DiffuserSeries(file="other.csv", increment_hours=1)}))
    assert [ec.diffuser.effluent_flow for ec in changed.engine_cases()] == [0.4] * 4


def test_series_from_python_lists_numpy_and_paths(tmp_path):
    text = Case.load(with_series(diffuser=flow_series(), ambient=speed_series()))
    lists = text.replace(timeseries=Timeseries(
        start_time=0, end_time=3, time_increment=1, units="hr",
        diffuser={"effluent_flow": DiffuserSeries(csv=[0.1, 0.2, 0.15], increment_hours=1)},
        ambient={"current_speed": AmbientSeries(csv=[[0, 30], [0.1, 0.05], [0.2, 0.1]], increment_hours=1)}))
    assert lists.engine_cases() == text.engine_cases()
    assert lists.to_dict()["timeseries"]["diffuser"]["effluent_flow"]["csv"] == "0.1\n0.2\n0.15\n"
    arrays = text.replace(timeseries=lists.timeseries.replace(
        diffuser={"effluent_flow": DiffuserSeries(csv=np.array([0.1, 0.2, 0.15]), increment_hours=1)},
        ambient={"current_speed": AmbientSeries(csv=np.array([[0, 30], [0.1, 0.05], [0.2, 0.1]]),
                                                increment_hours=1)}))
    assert arrays.engine_cases() == text.engine_cases()
    (tmp_path / "flow.csv").write_text("0.1\n0.2\n0.15\n")
    path_object = text.replace(timeseries=lists.timeseries.replace(
        diffuser={"effluent_flow": DiffuserSeries(file=tmp_path / "flow.csv", increment_hours=1)}))
    assert path_object.engine_cases() == text.engine_cases()
    # list items are the lines of the messages
    bad = with_series(diffuser=flow_series(csv=[0.1, "x", None]))
    found = problems_of(bad)
    assert "timeseries.diffuser.effluent_flow.csv line 2: must be a number (got 'x') in column 1" in found
    assert "timeseries.diffuser.effluent_flow.csv line 3: empty value in column 1" in found


def test_file_with_bom_crlf_and_trailing_blank_lines(tmp_path):
    path = file_case(tmp_path, flow="\ufeff0.1\r\n0.2\r\n0.15\r\n\r\n\r\n")
    assert [ec.diffuser.effluent_flow for ec in Case.load(path).engine_cases()] == pytest.approx([0.1, 0.2, 0.15, 0.1])


def test_json_schema_takes_csv_or_file():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json_schema())
    inline = with_series(diffuser=flow_series(), ambient=speed_series())
    files = with_series(diffuser={"effluent_flow": {"increment_hours": 1, "file": "flow.csv"}},
                        ambient={"current_speed": {"increment_hours": 1, "file": "speed.csv", "z_is_depth": True}})
    lists = with_series(diffuser=flow_series(csv=[0.1, 0.2]), ambient=speed_series(csv=[[0, 30], [0.1, 0.2]]))
    for good in (inline, files, lists):
        assert not list(validator.iter_errors(good))
    both = with_series(diffuser={"effluent_flow": {"increment_hours": 1, "csv": "0.1\n", "file": "flow.csv"}})
    neither = with_series(diffuser={"effluent_flow": {"increment_hours": 1}})
    for bad in (both, neither):
        assert list(validator.iter_errors(bad))


def test_readme_worked_example(tmp_path):
    """The worked example of the README section "Time series": case times, rows and values."""
    case = {
        "name": "hourly flow, layered current",
        "diffuser": {"values": {"diameter": 0.05, "depth": 49, "vertical_angle": 20, "acute_mixing_zone": 100,
                                "temperature": 25, "salinity": 0, "concentration": 100},
                     "units": {"concentration": "ppm"}},
        "ambient": {"layers": [{"z": 0, "current_dir": 90, "salinity": 33, "temperature": 15}, {"z": 50}]},
        "timeseries": {
            "start_time": 1, "end_time": 6, "time_increment": 1, "units": "hr",
            "diffuser": {"effluent_flow": {"file": "flow.csv", "units": "MGD", "increment_hours": 1}},
            "ambient": {"current_speed": {"file": "current_speed.csv", "units": "m/s", "increment_hours": 2,
                                          "depth_units": "m", "z_is_depth": True}}},
    }
    (tmp_path / "flow.csv").write_text("0.02\n0.04\n0.05\n0.05\n")
    (tmp_path / "current_speed.csv").write_text("0,50\n0.10,0.00\n0.20,0.05\n0.02,0.00\n")
    result = vp.run(write_case(tmp_path, case, "outfall.json"))
    loaded = result.case
    assert loaded.case_times == [3600.0 * h for h in range(1, 7)]
    assert [loaded.series_rows(k) for k in range(6)] == [[1, 0], [2, 1], [3, 1], [0, 2], [1, 2], [2, 0]]
    assert list(result.cases["effluent_flow"] * 22.824465) == pytest.approx([0.04, 0.05, 0.05, 0.02, 0.04, 0.05],
                                                                            rel=1e-4)
    speeds = [ec.ambient.profiles["current_speed"].values for ec in result.engine_cases]
    assert speeds == [pytest.approx(v) for v in [(0.10, 0.0), (0.20, 0.05), (0.20, 0.05), (0.02, 0.0),
                                                 (0.02, 0.0), (0.10, 0.0)]]
    assert len(result.summary()) == 6


# ------------------------------------------------------------------------- problems: file, line, column

def test_non_numeric_cell_in_a_file_names_file_line_and_column(tmp_path):
    path = file_case(tmp_path, flow="0.1\n0.2\nabc\n")
    assert_problem(path, "effluent_flow.csv line 3: must be a number (got 'abc') in column 1")


def test_non_numeric_cell_inline_names_the_series_path(tmp_path):
    case = with_series(ambient=speed_series(csv="0,30\n0.1,0.05\n0.2,0.1x\n"))
    assert_problem(case, "timeseries.ambient.current_speed.csv line 3: must be a number (got '0.1x') in column 2")


def test_wrong_number_of_values_in_a_file(tmp_path):
    speed = "0,10,30\n" + "0.1,0.1,0.1\n" * 5 + "0.2,0.1\n"
    path = file_case(tmp_path, speed=speed)
    assert_problem(path, "current_speed.csv line 7: needs 3 values, one per level (got 2)")


def test_wrong_number_of_values_inline():
    case = with_series(ambient=speed_series(csv="0,30\n0.1,0.05\n0.2,0.1,0.3\n"))
    assert_problem(case, "timeseries.ambient.current_speed.csv line 3: needs 2 values, one per level (got 3)")


def test_empty_cell(tmp_path):
    path = file_case(tmp_path, speed="0,30\n0.1,\n")
    assert_problem(path, "current_speed.csv line 2: empty value in column 2")


def test_empty_line_inside_the_data(tmp_path):
    path = file_case(tmp_path, flow="0.1\n\n0.2\n")
    assert_problem(path, "effluent_flow.csv line 2: empty line inside the data")


def test_non_finite_cell():
    case = with_series(diffuser=flow_series(csv="0.1\ninf\n"))
    assert_problem(case, "timeseries.diffuser.effluent_flow.csv line 2: must be a finite number (got 'inf') "
                         "in column 1")


def test_value_out_of_range_in_a_file_names_file_line_and_column(tmp_path):
    (tmp_path / "flow.csv").write_text("1\n-2\n")
    case = with_series(diffuser={"effluent_flow": {"increment_hours": 1, "units": "MGD", "file": "flow.csv"}})
    assert_problem(write_case(tmp_path, case), "flow.csv line 2: must be > 0 (got -2 MGD) in column 1")
    path = file_case(tmp_path, speed="0,30\n0.1,0.05\n0.1,-0.2\n")
    assert_problem(path, "current_speed.csv line 3: must be between 0 and 10 m/s (got -0.2) in column 2")


@pytest.mark.parametrize("flow, speed, expected", [
    ("", None, "effluent_flow.csv: needs at least one row (one value per line; the file or text is empty)"),
    ("  \n\n", None, "effluent_flow.csv: needs at least one row (one value per line; the file or text is empty)"),
    (None, "0,30\n", "current_speed.csv: needs a line of levels and at least one line of values (got only the levels)"),
    (None, "", "current_speed.csv: needs a line of levels and at least one line of values (the file or text is empty)"),
])
def test_series_without_a_data_row(tmp_path, flow, speed, expected):
    kwargs = {k: v for k, v in (("flow", flow), ("speed", speed)) if v is not None}
    assert_problem(file_case(tmp_path, **kwargs), expected)


@pytest.mark.parametrize("increment", [0, -0.5])
def test_increment_hours_must_be_positive(increment):
    case = with_series(diffuser=flow_series(increment_hours=increment))
    assert_problem(case, f"timeseries.diffuser.effluent_flow.increment_hours: must be > 0 (got {increment})")


def test_depths_must_increase(tmp_path):
    path = file_case(tmp_path, speed="0,30,20\n0.1,0.1,0.1\n")
    assert_problem(path, "current_speed.csv line 1: depths must increase (got 20 after 30) in column 3")


def test_heights_must_decrease():
    case = with_series(ambient=speed_series(csv="0,10\n0.1,0.2\n", z_is_depth=False))
    assert_problem(case, "timeseries.ambient.current_speed.csv line 1: heights must decrease (got 10 after 0) "
                         "in column 2")


def test_repeated_levels():
    case = with_series(ambient=speed_series(csv="0,12.5,12.5\n0.1,0.1,0.1\n"))
    assert_problem(case, "timeseries.ambient.current_speed.csv line 1: depth 12.5 is repeated in columns 2 "
                         "and 3; levels must be distinct")
    case = with_series(ambient=speed_series(csv="20,20\n0.1,0.1\n", z_is_depth=False))
    assert_problem(case, "timeseries.ambient.current_speed.csv line 1: height 20 is repeated in columns 1 "
                         "and 2; levels must be distinct")


def test_end_time_before_start_time():
    case = with_series(diffuser=flow_series(), start=120, end=1, units="min", end_units="hr")
    assert_problem(case, "timeseries.end_time: must be >= start_time (got 1); start_time is 120 min")


def test_too_many_cases_default_limit():
    assert normalise.MAX_CASES == 100_000
    case = with_series(diffuser=flow_series(), start=0, end=100_000, increment=1, units="s")   # 100 001 cases
    assert_problem(case, "timeseries: too many cases; at most 100000, the max_cases limit (got 100001 cases)")


def test_too_many_cases_limit_is_configurable(monkeypatch):
    case = with_series(diffuser=flow_series(), end=4)                                       # 5 cases
    assert_problem(case, "timeseries: too many cases; at most 4, the max_cases limit (got 5 cases)", max_cases=4)
    assert len(Case.load(case, max_cases=5).engine_cases()) == 5
    assert len(Case.from_dict(case, max_cases=5).engine_cases()) == 5
    monkeypatch.setattr(normalise, "MAX_CASES", 3)                                          # the module default
    assert_problem(case, "timeseries: too many cases; at most 3, the max_cases limit (got 5 cases)")
    assert len(Case.load(case, max_cases=10).engine_cases()) == 5
    with pytest.raises(CaseError, match="at most 3"):
        vp.run(case)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_max_cases_argument_is_checked(bad):
    with pytest.raises(ValueError, match="max_cases must be a whole number >= 1"):
        Case.load(with_series(diffuser=flow_series()), max_cases=bad)


def test_missing_file_is_named(tmp_path):
    case = with_series(diffuser={"effluent_flow": {"increment_hours": 1, "file": "no_such.csv"}})
    assert_problem(write_case(tmp_path, case),
                   f"timeseries.diffuser.effluent_flow.file: file not found: {tmp_path / 'no_such.csv'} "
                   f"(got 'no_such.csv')")


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    (tmp_path / "utf16.csv").write_bytes("0.1\n".encode("utf-16"))
    case = with_series(diffuser={"effluent_flow": {"increment_hours": 1, "file": "folder.csv"}},
                       ambient={"current_speed": {"increment_hours": 1, "file": "utf16.csv"}})
    found = problems_of(write_case(tmp_path, case))
    assert (f"timeseries.diffuser.effluent_flow.file: is a folder, not a CSV file: {tmp_path / 'folder.csv'} "
            f"(got 'folder.csv')") in found
    assert (f"timeseries.ambient.current_speed.file: {tmp_path / 'utf16.csv'} is not UTF-8 text (byte 1) "
            f"(got 'utf16.csv')") in found


@pytest.mark.parametrize("series, expected", [
    ({"increment_hours": 1, "csv": "0.1\n", "file": "flow.csv"},
     "timeseries.diffuser.effluent_flow: give either csv or file, not both"),
    ({"increment_hours": 1},
     "timeseries.diffuser.effluent_flow.csv: is required: give csv (CSV text or a list of rows) or file (a CSV file)"),
    ({"increment_hours": 1, "file": ""},
     "timeseries.diffuser.effluent_flow.file: must be the path of a CSV file (got '')"),
    ({"increment_hours": 1, "csv": 12},
     "timeseries.diffuser.effluent_flow.csv: must be CSV text or a list of rows (got 12)"),
    ({"increment_hours": 1, "csv": "0.1\n", "fiel": "x.csv"}, "timeseries.diffuser.effluent_flow.fiel: unknown key"),
])
def test_exactly_one_of_csv_and_file(series, expected):
    found = problems_of(with_series(diffuser={"effluent_flow": series}))
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_found_before_any_computation(monkeypatch):
    """Rows that no case uses are checked too, and the engine never starts."""
    import vp_jupyter.engine.series as engine_series

    def must_not_run(*args, **kwargs):
        raise AssertionError("the engine ran on an invalid case")

    monkeypatch.setattr(engine_series, "run_series", must_not_run)
    case = with_series(end=1, diffuser=flow_series(csv="0.1\n0.2\n0.3\n0.4\n-1\n"),
                       ambient=speed_series(csv="0,30\n0.1,0.1\n0.1,0.1\n0.1,0.1\n0.1,abc\n"))
    with pytest.raises(CaseError) as err:
        vp.run(case)
    assert err.value.problems == [
        "timeseries.ambient.current_speed.csv line 5: must be a number (got 'abc') in column 2",
        "timeseries.diffuser.effluent_flow.csv line 5: must be > 0 (got -1) in column 1",
    ]


def test_a_long_bad_file_lists_the_first_problems_and_a_count(tmp_path):
    path = file_case(tmp_path, flow="x\n" * 30)
    found = problems_of(path)
    listed = [p for p in found if p.startswith("effluent_flow.csv line")]
    assert listed == [f"effluent_flow.csv line {n}: must be a number (got 'x') in column 1" for n in range(1, 11)]
    assert "effluent_flow.csv: 20 more problems in this series are not listed (30 in all)" in found


# ----------------------------------------------------------------------------- case times and row indices

def flows(case):
    return [round(ec.diffuser.effluent_flow, 12) for ec in case.engine_cases()]


def test_quarter_hour_rows_with_cases_in_minutes():
    series = flow_series(csv="0.1\n0.2\n0.3\n0.4\n", increment_hours=0.25)
    case = Case.load(with_series(diffuser=series, start=0, end=90, increment=15, units="min"))
    assert case.case_times == [0.0, 900.0, 1800.0, 2700.0, 3600.0, 4500.0, 5400.0]
    assert [case.series_rows(k) for k in range(7)] == [[0], [1], [2], [3], [0], [1], [2]]
    assert flows(case) == [0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3]


def test_a_decimal_increment_is_not_lost_to_rounding():
    # 33 min = 0.55 h exactly, but 1980 / (0.55 * 3600) is 0.9999999999999999 in floating point
    series = flow_series(csv="0.1\n0.2\n", increment_hours=0.55)
    case = Case.load(with_series(diffuser=series, start=0, end=66, increment=33, units="min"))
    assert [case.series_rows(k)[0] for k in range(3)] == [0, 1, 0]
    assert flows(case) == [0.1, 0.2, 0.1]


def test_cases_in_days_with_four_hour_rows():
    series = flow_series(csv="0.1\n0.2\n0.3\n0.4\n0.5\n", increment_hours=4)
    case = Case.load(with_series(diffuser=series, start=0, end=1, increment=0.25, units="d"))
    assert case.case_times == [0.0, 21600.0, 43200.0, 64800.0, 86400.0]
    # t = 0, 6, 12, 18, 24 h -> floor(t / 4 h) = 0, 1, 3, 4, 6 -> mod 5 rows = 0, 1, 3, 4, 1
    assert [case.series_rows(k)[0] for k in range(5)] == [0, 1, 3, 4, 1]
    assert flows(case) == [0.1, 0.2, 0.4, 0.5, 0.2]


def test_rows_count_from_time_zero_not_from_the_start():
    # legacy §3.3: start/end 2 h / 5 h with a 4-row hourly series uses rows 2, 3, 0, 1
    series = flow_series(csv="0.1\n0.2\n0.3\n0.4\n")
    case = Case.load(with_series(diffuser=series, start=120, end=5, increment=60, units="hr",
                                 start_units="min", increment_units="min"))
    assert case.case_times == [7200.0, 10800.0, 14400.0, 18000.0]
    assert [case.series_rows(k) for k in range(4)] == [[2], [3], [0], [1]]
    assert flows(case) == [0.3, 0.4, 0.1, 0.2]


def test_series_cycle_when_shorter_than_the_run():
    series = flow_series(csv="0.1\n0.3\n", increment_hours=1)
    result = vp.run(with_series(diffuser=series, start=0, end=5, increment=1))
    assert list(result.cases["effluent_flow"]) == pytest.approx([0.1, 0.3, 0.1, 0.3, 0.1, 0.3])
    dilutions = list(result.summary()["dilution"])
    assert dilutions[0] == dilutions[2] == dilutions[4] != dilutions[1] == dilutions[3] == dilutions[5]


def test_half_hour_cases_use_each_hourly_row_twice():
    case = Case.load(with_series(diffuser=flow_series(csv="0.1\n0.2\n"), end=1.5, increment=0.5))
    assert flows(case) == [0.1, 0.1, 0.2, 0.2]


def test_series_info_and_rows_in_memo_order():
    case = Case.load(with_series(diffuser={"concentration": {"increment_hours": 2, "csv": "100\n200\n"},
                                           **flow_series()},
                                 ambient=speed_series(csv="0,10\n0.1,0.2\n", depth_units="ft")))
    info = case.series_info()
    assert [(s["where"], s["variable"], s["rows"]) for s in info] == [
        ("diffuser", "effluent_flow", 3), ("diffuser", "concentration", 2), ("ambient", "current_speed", 1)]
    assert info[2]["levels"] == [0.0, 10.0] and info[2]["depth_units"] == "ft" and info[2]["file"] is None
    assert [case.series_rows(k) for k in range(4)] == [[0, 0, 0], [1, 0, 0], [2, 1, 0], [0, 1, 0]]


# ------------------------------------------------------------------------- depth-layered ambient series

def test_depth_layered_current_series_in_its_own_depth_units():
    case = with_series(end=1, ambient=speed_series(csv="0,10,40\n0.3,0.2,0.1\n0.6,0.4,0.2\n", units="m/s",
                                                   depth_units="ft"))
    case["diffuser"]["values"]["depth"] = 20 * FT               # a third of the way from 10 ft to 40 ft
    loaded = Case.load(case)
    profile = loaded.engine_cases()[1].ambient.profiles["current_speed"]
    assert profile.depths == pytest.approx((0.0, 10 * FT, 40 * FT))
    assert profile.values == pytest.approx((0.6, 0.4, 0.2))
    # the ambient layers (0 m, 30 m) are filled from the series: 30 m lies beyond 40 ft = 12.19 m (constant)
    assert [row["current_speed"] for row in loaded.layer_table(0)] == pytest.approx([0.3, 0.1])
    result = vp.run(loaded)
    # at the port (20 ft): a third of the way from 10 ft to 40 ft
    assert list(result.cases["port_current_speed"]) == pytest.approx([0.2 - 0.1 / 3, 0.4 - 0.2 / 3])


def test_height_layered_series():
    case = with_series(end=1, ambient=speed_series(csv="30,10\n0.2,0.1\n0.4,0.3\n", z_is_depth=False))
    case["diffuser"]["values"]["depth"] = 30                    # bottom at 30 m: heights 30, 10 -> depths 0, 20
    profile = Case.load(case).engine_cases()[0].ambient.profiles["current_speed"]
    assert profile.depths == pytest.approx((0.0, 20.0)) and profile.values == pytest.approx((0.2, 0.1))


# --------------------------------------------- series that crash the reference (spec §12) run through vp.run

def first_rows(result):
    plume = result.plume
    return plume[plume["step"] == 0].set_index("case")


def test_port_depth_series_gives_deeper_starts():
    result = vp.run(with_series(end=2, diffuser={"depth": {"increment_hours": 1, "units": "ft",
                                                           "csv": "30\n50\n70\n"}}))
    assert list(first_rows(result)["depth"]) == pytest.approx([30 * FT, 50 * FT, 70 * FT])
    final = list(result.summary()["depth"])
    assert final[0] < final[1] < final[2]                   # a deeper port ends deeper


def test_effluent_concentration_series_scales_the_concentration():
    result = vp.run(with_series(end=1, diffuser={"concentration": {"increment_hours": 1, "units": "ppm",
                                                                   "csv": "100\n200\n"}}))
    summary = result.summary()
    assert summary["dilution"][0] == pytest.approx(summary["dilution"][1], rel=1e-12)
    assert summary["concentration"][1] == pytest.approx(2 * summary["concentration"][0], rel=1e-9)


def test_effluent_salinity_series_makes_the_effluent_denser():
    result = vp.run(with_series(end=1, diffuser={"salinity": {"increment_hours": 1, "csv": "0\n30\n"}}))
    first = first_rows(result)
    assert list(first["salinity"]) == pytest.approx([0, 30])
    assert first["density"][2] > first["density"][1] + 20
    final = list(result.summary()["depth"])
    assert final[1] > final[0]                              # less buoyant: rises less


def test_effluent_temperature_series_changes_the_density():
    result = vp.run(with_series(end=1, diffuser={"temperature": {"increment_hours": 1, "units": "F",
                                                                 "csv": "77\n50\n"}}))
    first = first_rows(result)
    assert list(first["temperature"]) == pytest.approx([25, 10])
    assert first["density"][2] > first["density"][1]        # colder effluent is denser
    final = list(result.summary()["depth"])
    assert final[1] > final[0]


def test_ambient_salinity_series():
    result = vp.run(with_series(end=1, ambient={"salinity": {"increment_hours": 1,
                                                             "csv": "0,30\n30,31\n33,34\n"}}))
    cases = result.cases
    assert list(cases["port_salinity"]) == pytest.approx([30 + 2 / 3, 33 + 2 / 3])
    assert cases["port_density"][2] > cases["port_density"][1]
    dilution = list(result.summary()["dilution"])
    assert dilution[1] > dilution[0]                        # a larger density difference mixes more


def test_ambient_temperature_series():
    result = vp.run(with_series(end=1, ambient={"temperature": {"increment_hours": 1,
                                                                "csv": "0,30\n20,18\n10,8\n"}}))
    cases = result.cases
    assert list(cases["port_temperature"]) == pytest.approx([18 + 2 / 3, 8 + 2 / 3])
    assert cases["port_density"][2] > cases["port_density"][1]
    plume = first_rows(result)
    assert list(plume["ambient_temperature"]) == pytest.approx([18 + 2 / 3, 8 + 2 / 3])


def test_brooks_far_field_with_ambient_series():
    case = with_series(end=1, ambient={**speed_series(),
                                       "ff_velocity": {"increment_hours": 1, "csv": "0,30\n0.05,0.05\n0.2,0.2\n"}})
    case["model"]["brooks_far_field"] = True
    case["ambient"]["layers"][0].update(ff_dir=0, ff_diff_coeff=0.0003)
    result = vp.run(case)
    farfield = result.farfield
    assert not farfield.empty and set(farfield["case"]) == {1, 2}
    assert list(farfield.groupby("case")["ff_velocity"].first()) == pytest.approx([0.05, 0.2])


def test_brooks_with_a_vanishing_far_field_speed():
    case = with_series(end=1, ambient={"ff_velocity": {"increment_hours": 1, "csv": "0,30\n0.1,0.1\n1e-250,1e-250\n"}})
    case["model"]["brooks_far_field"] = True
    case["ambient"]["layers"][0].update(ff_dir=0, ff_diff_coeff=0.0003)
    result = vp.run(case)
    assert set(result.farfield["case"]) == {1}          # 0.1 m/s in case 1; case 2's current cannot move it
    assert any("too slow" in memo for memo in result.farfield_memos[2])
    assert np.isfinite(result.farfield.drop(columns=["case", "step"]).to_numpy(dtype=float)).all()


# ------------------------------------------------------------------------------------------ property test

_DIFFUSER_RANGES = {"depth": (2.0, 40.0), "effluent_flow": (0.01, 1.0), "salinity": (0.0, 35.0),
                    "temperature": (0.0, 35.0), "concentration": (0.01, 1000.0)}   # concentration in ppm
# speeds span 1e-300 … 1 m/s: a vanishing far-field speed must give a memo, never an overflow
_AMBIENT_RANGES = {"current_speed": (1e-300, 1.0), "current_dir": (0.0, 359.0), "salinity": (0.0, 40.0),
                   "temperature": (0.0, 30.0), "bg_conc": (0.0, 1e-5), "decay_rate": (0.0, 1e-4),
                   "ff_velocity": (1e-300, 1.0), "ff_dir": (0.0, 359.0), "ff_diff_coeff": (1e-5, 0.01)}
_SPEEDS = ("current_speed", "ff_velocity")


def _values(name, low, high):
    values = st.floats(low, high)
    return st.one_of(st.just(0.0), values) if name in _SPEEDS else values
_TIME_UNITS = {"min": 60, "hr": 3600, "d": 86400}


@st.composite
def series_cases(draw):
    """A valid case with random case times (fractional hours, minutes, days), 1–12 cases and random series."""
    unit = draw(st.sampled_from(sorted(_TIME_UNITS)))
    scale = {"min": 1, "hr": 4, "d": 8}[unit]                # times on exact binary fractions of the unit
    start = Fraction(draw(st.integers(0, 40)), scale)
    step = Fraction(draw(st.integers(1, 12)), scale)
    count = draw(st.integers(1, 12))
    times = [float((start + k * step) * _TIME_UNITS[unit]) for k in range(count)]
    case = base_case()
    case["model"]["brooks_far_field"] = draw(st.booleans())
    case["ambient"]["layers"][0].update(ff_velocity=0.1, ff_dir=0, ff_diff_coeff=0.0003)
    block = {"start_time": float(start), "end_time": float(start + (count - 1) * step),
             "time_increment": float(step), "units": unit, "diffuser": {}, "ambient": {}}
    expected = []                                            # (where, variable, increment, levels, rows)
    variables = [("diffuser", name) for name in _DIFFUSER_RANGES] + [("ambient", name) for name in _AMBIENT_RANGES]
    chosen = draw(st.lists(st.sampled_from(variables), unique=True, min_size=1, max_size=5))
    for name in [name for where, name in chosen if where == "diffuser"]:
        low, high = _DIFFUSER_RANGES[name]
        increment = Fraction(draw(st.integers(1, 400)), 100)  # 0.01 h … 4 h
        rows = draw(st.lists(st.floats(low, high), min_size=1, max_size=30))
        block["diffuser"][name] = {"increment_hours": float(increment), "csv": rows_text([[v] for v in rows])}
        expected.append(("diffuser", name, increment, [], [[v] for v in rows]))
    for name in [name for where, name in chosen if where == "ambient"]:
        low, high = _AMBIENT_RANGES[name]
        increment = Fraction(draw(st.integers(1, 400)), 100)
        levels = sorted(draw(st.sets(st.integers(0, 50), min_size=2, max_size=4)))
        rows = draw(st.lists(st.lists(_values(name, low, high), min_size=len(levels), max_size=len(levels)),
                             min_size=1, max_size=30))
        block["ambient"][name] = {"increment_hours": float(increment), "csv": rows_text([levels] + rows)}
        expected.append(("ambient", name, increment, [float(v) for v in levels], rows))
    case["timeseries"] = block
    return case, times, expected


def rows_text(rows):
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows)


def _expected_row(time_s: float, increment_hours: Fraction, count: int) -> int:
    return math.floor(Fraction(time_s) / (increment_hours * 3600)) % count


_ORDER = {"diffuser": list(_DIFFUSER_RANGES), "ambient": list(_AMBIENT_RANGES)}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_cases())
def test_random_valid_series_cases_run_or_raise_case_error(drawn):
    case, times, expected = drawn
    try:
        result = vp.run(case)
    except CaseError as err:
        assert err.problems
        return
    loaded = result.case
    assert loaded.case_times == times
    assert len(result.summary()) == len(times)
    memo_order = sorted(expected, key=lambda e: (e[0] == "ambient", _ORDER[e[0]].index(e[1])))
    for k, (time_s, engine_case) in enumerate(zip(times, result.engine_cases)):
        rows_used = [_expected_row(time_s, inc, len(rows)) for _, _, inc, _, rows in memo_order]
        assert loaded.series_rows(k) == rows_used
        for (where, name, _, levels, rows), row in zip(memo_order, rows_used):
            if where == "diffuser":
                value = getattr(engine_case.diffuser, name)
                assert value == pytest.approx(rows[row][0] * (1e-6 if name == "concentration" else 1.0))
            else:
                profile = engine_case.ambient.profiles[name]
                assert list(profile.depths) == pytest.approx(levels)
                assert list(profile.values) == pytest.approx(rows[row])


@pytest.mark.parametrize("enabled", [True, False])
def test_a_series_runs_without_the_cyclic_gc_and_leaves_it_as_it_was(enabled: bool) -> None:
    """run_series pauses the cyclic garbage collector while its cases run (their outputs pile up as plain
    lists the collector walked again and again) and restores it afterwards, also when a callback raises."""
    import gc

    from vp_jupyter.engine.series import run_series

    engine_cases = vp.Case.load(minimal_case("gc")).engine_cases() * 3
    seen = []
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        run_series(engine_cases, progress=lambda done, total: seen.append(gc.isenabled()))
        assert seen == [False] * 3 and gc.isenabled() == enabled

        def fail(done: int, total: int) -> None:
            raise RuntimeError("stop")
        with pytest.raises(RuntimeError):
            run_series(engine_cases, progress=fail)
        assert gc.isenabled() == enabled
    finally:
        (gc.enable if was else gc.disable)()
