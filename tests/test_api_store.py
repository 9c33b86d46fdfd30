"""The Python API and the archive store: `vp.run` records by default, `vp.runs()` lists, `vp.load()` brings back.

Every test has its own empty store ($VP_JUPYTER_STORE, set by conftest's autouse fixture).
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

import vp_jupyter as vp
from builders import env_store
from conftest import reference_case
from vp_jupyter.store import InvalidRunId, RunNotFound, RunStore

RUN_COLUMNS = ["id", "created", "source", "owner", "status", "case_name", "case_count", "duration_s", "error", "kind"]


def small_case(name: str = "api store test", flow: float = 0.02) -> dict:
    return {
        "name": name,
        "diffuser": {"values": {"diameter": 0.1, "vertical_angle": 10, "depth": 20, "effluent_flow": flow,
                                "temperature": 20, "concentration": 1, "acute_mixing_zone": 100}, "units": {}},
        "ambient": {"units": {}, "layers": [
            {"z": 0, "current_speed": 0.1, "current_dir": 0, "salinity": 33, "temperature": 15},
            {"z": 30, "salinity": 33.5, "temperature": 12}]},
    }


def assert_same_tables(loaded: "vp.Result", original: "vp.Result") -> None:
    pd.testing.assert_frame_equal(loaded.plume, original.plume)
    pd.testing.assert_frame_equal(loaded.farfield, original.farfield)
    pd.testing.assert_frame_equal(loaded.summary(), original.summary())
    assert loaded.memos == original.memos


def test_the_suite_never_writes_into_the_real_store(tmp_path_factory) -> None:
    root = Path(os.environ["VP_JUPYTER_STORE"])
    assert root.is_relative_to(tmp_path_factory.getbasetemp())
    assert RunStore().root == Path(os.path.abspath(root))


def test_run_records_by_default_as_a_notebook_run() -> None:
    result = vp.run(small_case())
    assert result.run_id is not None
    record = env_store().get(result.run_id)
    assert (record.source, record.status, record.case_name, record.case_count) == (
        "notebook", "succeeded", "api store test", 1)
    assert record.duration_s is not None and record.duration_s >= 0
    assert set(record.files) == {"meta.json", "case.json", "plume.parquet", "result.json.gz"}   # compact: no zip
    assert result.run_id in result._repr_html_()


def test_store_false_keeps_the_result_in_memory_only() -> None:
    result = vp.run(small_case(), store=False)
    assert result.run_id is None
    assert env_store().list() == []
    assert vp.runs().empty


def test_an_explicit_store_or_folder_receives_the_run(tmp_path) -> None:
    by_object = vp.run(small_case(), store=RunStore(tmp_path / "a"))
    by_path = vp.run(small_case(), store=tmp_path / "b", source_label="api")
    assert [r.id for r in RunStore(tmp_path / "a").list()] == [by_object.run_id]
    assert [(r.id, r.source) for r in RunStore(tmp_path / "b").list()] == [(by_path.run_id, "api")]
    assert env_store().list() == []             # nothing went to the default store
    assert list(vp.runs(store=tmp_path / "b").id) == [by_path.run_id]


def test_runs_lists_the_store_newest_first_as_a_dataframe() -> None:
    first = vp.run(small_case("first"))
    time.sleep(0.01)
    second = vp.run(small_case("second", flow=0.03))
    frame = vp.runs()
    assert list(frame.columns) == RUN_COLUMNS
    assert list(frame.id) == [second.run_id, first.run_id]
    assert list(frame.case_name) == ["second", "first"]
    assert list(frame.source) == ["notebook", "notebook"] and list(frame.status) == ["succeeded"] * 2
    assert pd.api.types.is_datetime64_any_dtype(frame["created"]) and str(frame["created"].dt.tz) == "UTC"
    assert frame["created"].is_monotonic_decreasing
    assert frame["case_count"].tolist() == [1, 1] and (frame["duration_s"] >= 0).all()
    assert frame["error"].isna().all()


def test_runs_filters_by_source_owner_and_status() -> None:
    notebook = vp.run(small_case())
    case = vp.Case.load(small_case("from the web UI"))
    ui = env_store().save(case, vp.run(case, store=False), source="ui", owner="alice", status="succeeded")
    failed = env_store().save(case, None, source="api", owner="bob", status="failed", error="worker died")
    assert list(vp.runs(source="ui").id) == [ui.id]
    assert list(vp.runs(owner="bob").id) == [failed.id]
    assert list(vp.runs(status="succeeded").id) == [ui.id, notebook.run_id]      # newest first
    row = vp.runs(status="failed").iloc[0]
    assert (row.source, row.owner, row.error) == ("api", "bob", "worker died")
    assert vp.runs(source="cli").empty and list(vp.runs(source="cli").columns) == RUN_COLUMNS


def test_runs_of_an_empty_or_missing_store_is_an_empty_frame(tmp_path) -> None:
    frame = vp.runs(store=tmp_path / "never created")
    assert frame.empty and list(frame.columns) == RUN_COLUMNS
    assert pd.api.types.is_datetime64_any_dtype(frame["created"])


def test_load_returns_equal_tables_and_sets_the_run_id() -> None:
    original = vp.run(small_case())
    loaded = vp.load(original.run_id)
    assert loaded.run_id == original.run_id
    assert_same_tables(loaded, original)
    assert vp.load(vp.runs().id[0]).run_id == original.run_id   # ids straight from the listing


def test_load_of_a_reference_case_with_far_field_and_time_series() -> None:
    for name in ("07_brooks_farfield_4_3", "example_timeseries"):
        original = vp.run(reference_case(name))
        loaded = vp.load(original.run_id)
        assert_same_tables(loaded, original)
        assert loaded.case_count == original.case_count


def test_load_of_a_run_written_by_the_server() -> None:
    """The web UI's runs are written by the server with RunStore.save(..., source="ui"): a notebook loads them."""
    case = vp.Case.load(small_case("web UI run"))
    result = vp.run(case, store=False)
    record = env_store().save(case, result, source="ui", owner="web user", status="succeeded",
                              started=time.time() - 1, finished=time.time(),
                              request={"projectData": {"name": "web UI run"}})
    loaded = vp.load(record.id)
    assert loaded.run_id == record.id and loaded.case.name == "web UI run"
    assert_same_tables(loaded, result)
    row = vp.runs().iloc[0]
    assert (row.id, row.source, row.owner) == (record.id, "ui", "web user")


def test_bad_ids_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="not a valid run id: '../etc'"):
        vp.load("../etc")
    with pytest.raises(InvalidRunId):
        vp.load(42)
    missing = "20261125T173724Z-" + "0" * 32
    with pytest.raises(KeyError) as raised:
        vp.load(missing)
    assert isinstance(raised.value, RunNotFound)
    assert str(raised.value) == f"no run {missing} in {env_store().root}"


def test_loading_a_failed_run_says_it_has_no_result() -> None:
    case = vp.Case.load(small_case())
    record = env_store().save(case, None, source="ui", status="failed", error="run timed out after 600 s")
    with pytest.raises(KeyError, match="failed: run timed out after 600 s; it has no result to load"):
        vp.load(record.id)


def test_an_unwritable_default_store_warns_and_returns_the_result(tmp_path, monkeypatch) -> None:
    blocker = tmp_path / "not a folder"
    blocker.write_text("")
    monkeypatch.setenv("VP_JUPYTER_STORE", str(blocker))
    with pytest.warns(RuntimeWarning, match="not recorded in the archive store"):
        result = vp.run(small_case())
    assert result.run_id is None and result.summary().dilution[0] > 1
    with pytest.raises(OSError):                # an explicitly named store is not silently skipped
        vp.run(small_case(), store=blocker)


def test_a_bad_store_argument_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="store must be"):
        vp.run(small_case(), store=3)


def test_runs_and_load_are_public_and_lazy() -> None:
    assert {"run", "runs", "load", "RunStore"} <= set(vp.__all__)
    assert vp.RunStore is RunStore
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vp.runs()
