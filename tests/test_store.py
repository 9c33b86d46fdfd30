"""The archive store: run ids, atomic run folders, listing, deletion, retention, result round trip."""
from __future__ import annotations

import builtins
import calendar
import functools
import gzip
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import vp_jupyter as vp
from vp_jupyter.store import (RUN_ID_PATTERN, InvalidRunId, RunNotFound, RunRecord, RunStore, check_run_id,
                              new_run_id)

from builders import complete_case

REPO_ROOT = Path(__file__).resolve().parents[1]
VALID_ID = "20261125T173724Z-" + "0123456789abcdef" * 2


# a 1-port diffuser at 20 m, two layers, SI units; optionally `cases` hourly cases (or a series file) and
# the Brooks far field
small_case = functools.partial(complete_case, "store test")


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


@pytest.fixture(scope="module")
def result() -> vp.Result:
    return vp.run(small_case(cases=3, brooks=True))


def save(store: RunStore, result=None, *, status="succeeded", **options):
    case = result.case if result is not None else vp.Case.load(small_case())
    defaults = dict(source="api", owner="alice", started=time.time() - 2.0, finished=time.time())
    return store.save(case, result, status=status, **{**defaults, **options})


# ------------------------------------------------------------------------------------------- run ids

def test_new_ids_match_the_pattern_are_unique_and_start_with_the_utc_time() -> None:
    ids = {new_run_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(RUN_ID_PATTERN.fullmatch(i) and check_run_id(i) == i for i in ids)
    assert new_run_id(now=0.0).startswith("19700101T000000Z-")
    assert new_run_id(now=1795624050.9).startswith("20261125T162730Z-")
    stamped = calendar.timegm(time.strptime(new_run_id()[:16], "%Y%m%dT%H%M%SZ"))
    assert abs(stamped - time.time()) < 3600            # UTC, not local time


BAD_IDS = [
    "", "../x", "a/b", "..", ".staging", VALID_ID.upper(), VALID_ID + "0", VALID_ID[:-1], VALID_ID + "\n",
    " " + VALID_ID, VALID_ID.replace("-", "/"), "../" + VALID_ID, VALID_ID[:17] + "g" * 32,
    "２０２６１１２５T173724Z-" + "0" * 32,        # non-ASCII digits
    "x" * 10_000, None, 123, b"20261125T173724Z-" + b"0" * 32,
]


@pytest.mark.parametrize("bad", BAD_IDS, ids=range(len(BAD_IDS)))
def test_bad_ids_are_rejected_before_any_file_system_access(store, monkeypatch, bad) -> None:
    with pytest.raises(InvalidRunId):
        check_run_id(bad)
    touched: list[str] = []

    def watch(name, real):
        def call(*args, **kwargs):
            touched.append(name)
            return real(*args, **kwargs)
        return call

    calls = [] if bad is None else [  # save(run_id=None) means "make a new id"
        lambda: store.save(None, source="api", owner="", status="failed", run_id=bad)]
    calls += [lambda method=method: method(bad) for method in (
        store.get, store.load_case, store.load_result, store.archive_path, store.delete, store.load_request,
        store.size, store.exists, store.iter_result_json, store.response_path, store.parts_dir,
        store.discard_staging)]
    outcomes = []
    with monkeypatch.context() as patch:
        for name in ("stat", "lstat", "scandir", "listdir", "rename", "mkdir", "open", "unlink", "rmdir"):
            patch.setattr(os, name, watch(name, getattr(os, name)))
        patch.setattr(builtins, "open", watch("open", builtins.open))
        for call in calls:
            try:
                call()
            except Exception as err:  # noqa: BLE001 - checked below, outside the patch
                outcomes.append(type(err))
            else:
                outcomes.append(None)
    assert outcomes == [InvalidRunId] * len(calls)
    assert touched == []


def test_invalid_run_id_message_is_short() -> None:
    with pytest.raises(InvalidRunId) as caught:
        check_run_id("y" * 10_000)
    assert len(str(caught.value)) < 200


# ------------------------------------------------------------------------------------------- saving

def test_save_writes_a_complete_run_folder(store, result) -> None:
    record = save(store, result, request={"projectData": {"a": 1}}, request_files={"flow-diffuser-file": b"1\n2\n"},
                  archive_bytes=b"PK-not-really-a-zip", error=None)
    folder = store.root / record.id
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted(record.files)
    assert set(record.files) == {"meta.json", "case.json", "plume.parquet", "farfield.parquet", "result.json.gz",
                                 "request.json", "request_files/flow-diffuser-file", f"output_{record.id}.zip"}
    assert record.status == "succeeded" and record.source == "api" and record.owner == "alice"
    assert record.case_name == "store test" and record.case_count == 3
    assert record.engine_version == vp.__version__
    assert record.duration_s == pytest.approx(2.0, abs=0.5)
    assert record.created.endswith("Z") and record.started == record.created
    assert store.get(record.id) == record
    assert json.loads((folder / "meta.json").read_text())["id"] == record.id
    assert json.loads((folder / "case.json").read_text()) == result.case.to_dict()
    assert store.load_request(record.id) == {"projectData": {"a": 1}}
    assert store.load_request_file(record.id, "flow-diffuser-file") == b"1\n2\n"
    assert store.archive_path(record.id).read_bytes() == b"PK-not-really-a-zip"
    assert store.load_case(record.id) == result.case
    assert not list(store.staging.iterdir())


def test_a_response_body_is_kept_with_a_succeeded_run_and_files_are_found_by_path(store, result) -> None:
    record = save(store, result, response='"{\\"success\\": true}"')
    assert "response.json.gz" in record.files                 # compressed: served as it is to gzip clients
    assert store.response_path(record.id) == store.root / record.id / "response.json.gz"
    assert gzip.decompress(store.response_path(record.id).read_bytes()) == b'"{\\"success\\": true}"'
    streamed = b"".join(store.iter_result_json(record.id))
    assert json.loads(streamed) == json.loads(json.dumps({**result.to_dict(), "case": result.case.to_dict()}))
    failed = save(store, None, status="failed", error="boom", response=b"ignored: not a succeeded run")
    assert set(failed.files) == {"meta.json", "case.json"}
    for locate in (store.iter_result_json, store.response_path):
        with pytest.raises(RunNotFound):
            locate(failed.id)
    with pytest.raises(RunNotFound):
        store.iter_result_json(VALID_ID)


def test_raw_request_bytes_and_no_archive(store, result) -> None:
    record = save(store, result, request=b"--boundary\r\nraw multipart\r\n")
    assert store.load_request(record.id) == b"--boundary\r\nraw multipart\r\n"
    assert "request.bin" in record.files
    with pytest.raises(RunNotFound):
        store.archive_path(record.id)


def test_failed_runs_are_metadata_only(store, result) -> None:
    record = save(store, None, status="failed", error="run exceeded the time limit of 5 s", source="ui")
    assert record.status == "failed" and record.error == "run exceeded the time limit of 5 s"
    assert set(record.files) == {"meta.json", "case.json"}
    with pytest.raises(RunNotFound, match="no result"):
        store.load_result(record.id)
    with pytest.raises(ValueError, match="needs its result"):
        save(store, None, status="succeeded")
    with pytest.raises(ValueError, match="source"):
        save(store, result, source="email")
    with pytest.raises(ValueError, match="status"):
        save(store, result, status="done")
    with pytest.raises(ValueError, match="part name"):
        save(store, result, request_files={"../evil": b""})
    with pytest.raises(FileExistsError):
        save(store, result, run_id=record.id)


def test_an_exception_while_writing_leaves_no_trace(store, result, monkeypatch) -> None:
    real = RunStore._write_bytes

    def failing(self, path, value):
        if path.name == "plume.parquet":
            raise OSError(28, "No space left on device")
        real(self, path, value)

    monkeypatch.setattr(RunStore, "_write_bytes", failing)
    with pytest.raises(OSError, match="No space"):
        save(store, result, run_id=VALID_ID)
    assert not (store.root / VALID_ID).exists()
    assert store.list() == [] and list(store.staging.iterdir()) == []


CRASH_SCRIPT = """
import os, sys, time
sys.path.insert(0, {repo!r})
sys.path.insert(0, {tests!r})     # as pytest does: test_store imports `builders` from there
import vp_jupyter as vp
from vp_jupyter.store import RunStore
import tests.test_store as helpers

def crash(self, path, value):
    if path.name == "plume.parquet":
        with open(path, "wb") as handle:
            handle.write(value[:100])           # half written
        os._exit(3)                              # the process dies on the spot
    real(self, path, value)

real = RunStore._write_bytes
RunStore._write_bytes = crash
store = RunStore({root!r})
result = vp.run(helpers.small_case(), store=False)     # only the save below may crash
store.save(result.case, result, source="cli", owner="", status="succeeded", run_id={run_id!r})
"""


def test_a_crash_while_writing_leaves_only_a_staging_leftover(store) -> None:
    script = CRASH_SCRIPT.format(repo=str(REPO_ROOT), tests=str(REPO_ROOT / "tests"), root=str(store.root),
                                 run_id=VALID_ID)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 3, done.stderr
    assert not (store.root / VALID_ID).exists()
    assert store.list() == []
    with pytest.raises(RunNotFound):
        store.get(VALID_ID)
    leftovers = list(store.staging.iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith(VALID_ID)
    assert store.clean_staging() == []                  # young: could be a write in progress elsewhere
    assert store.clean_staging(older_than_s=0) == [leftovers[0].name]
    assert list(store.staging.iterdir()) == []


# ------------------------------------------------------------------------------------------- reading

def test_list_is_newest_first_and_filters(store, result) -> None:
    now = time.time()
    plan = [("api", "alice", "succeeded", 50), ("ui", "bob", "failed", 40), ("notebook", "alice", "succeeded", 30),
            ("cli", "carol", "cancelled", 20), ("ui", "alice", "succeeded", 10)]
    ids = []
    for source, owner, status, age in plan:
        record = save(store, result if status == "succeeded" else None, source=source, owner=owner,
                      status=status, created=now - age, started=now - age, finished=now - age + 1,
                      error=None if status == "succeeded" else "stopped")
        ids.append(record.id)
    newest_first = list(reversed(ids))
    assert [r.id for r in store.list()] == newest_first
    assert [r.id for r in store.list(owner="alice")] == [ids[4], ids[2], ids[0]]
    assert [r.id for r in store.list(source="ui")] == [ids[4], ids[1]]
    assert [r.id for r in store.list(status="failed")] == [ids[1]]
    assert [r.id for r in store.list(owner="alice", source="ui", status="succeeded")] == [ids[4]]
    assert [r.id for r in store.list(limit=2)] == newest_first[:2]
    assert store.list(owner="nobody") == []


def test_list_skips_everything_that_is_not_a_readable_run(store, result, tmp_path) -> None:
    record = save(store, result)
    (store.root / "notes").mkdir()
    (store.root / ("20260101T000000Z-" + "a" * 32)).mkdir()                   # no meta.json
    broken = store.root / ("20260101T000000Z-" + "b" * 32)
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")
    elsewhere = tmp_path / "elsewhere"                                       # a planted symlink
    elsewhere.mkdir()
    planted_id = "20260101T000000Z-" + "c" * 32
    (elsewhere / "meta.json").write_text(json.dumps({**record.to_dict(), "id": planted_id}))
    (store.root / planted_id).symlink_to(elsewhere, target_is_directory=True)
    assert [r.id for r in store.list()] == [record.id]
    for bad in ("20260101T000000Z-" + "a" * 32, "20260101T000000Z-" + "b" * 32, planted_id):
        with pytest.raises(RunNotFound):
            store.get(bad)
    with pytest.raises(RunNotFound):
        store.delete(planted_id)
    assert elsewhere.exists()


def test_load_result_round_trip_gives_equal_tables(store, result) -> None:
    record = save(store, result)
    loaded = store.load_result(record.id)
    assert loaded.case == result.case and loaded.case_count == 3
    pd.testing.assert_frame_equal(loaded.plume, result.plume)
    assert len(result.farfield) > 0
    pd.testing.assert_frame_equal(loaded.farfield, result.farfield)
    pd.testing.assert_frame_equal(loaded.summary(), result.summary())
    pd.testing.assert_frame_equal(loaded.cases, result.cases)
    pd.testing.assert_frame_equal(loaded.plume_in_case_units(), result.plume_in_case_units())
    assert loaded.memos == result.memos and loaded.farfield_memos == result.farfield_memos
    assert loaded.to_dict() == {**result.to_dict(), "case": loaded.case.to_dict()}
    assert loaded.text_report() == result.text_report()


def test_a_time_series_file_is_inlined_so_the_stored_case_stands_alone(store, tmp_path) -> None:
    series = tmp_path / "flow.csv"
    series.write_text("0.04\n0.06\n")
    result = vp.run(small_case(cases=2, series_file=series))
    record = save(store, result)
    series.unlink()
    stored = json.loads((store.root / record.id / "case.json").read_text())
    assert stored["timeseries"]["diffuser"]["effluent_flow"]["csv"] == "0.04\n0.06\n"
    assert "file" not in stored["timeseries"]["diffuser"]["effluent_flow"]
    assert store.load_case(record.id).engine_cases() == result.case.engine_cases()
    pd.testing.assert_frame_equal(store.load_result(record.id).plume, result.plume)


def test_the_result_json_is_streamed_in_pieces_and_whole(store, monkeypatch) -> None:
    import vp_jupyter.store_results as results_module

    monkeypatch.setattr(results_module, "CASES_PER_PIECE", 3)     # several pieces, the last one partial
    result = vp.run(small_case(cases=7, brooks=True), store=False)
    result.outputs[1].columns["dilution"][0] = float("nan")       # non-finite values become null
    record = save(store, result)
    pieces = list(store.iter_result_json(record.id))
    assert len(pieces) > 6
    assert json.loads(b"".join(pieces)) == json.loads(json.dumps({**result.to_dict(), "case": result.case.to_dict()}))
    pd.testing.assert_frame_equal(store.load_result(record.id).plume, result.plume)


# ------------------------------------------------------------------------------------------- removing

def test_discard_staging_removes_one_runs_parts_and_interrupted_writes(store, result) -> None:
    other = "20261125T173724Z-" + "f" * 32
    parts = store.parts_dir(VALID_ID)
    assert parts == store.staging / f"{VALID_ID}.parts" and not parts.exists()
    assert store.parts_dir(VALID_ID, create=True) == parts and parts.is_dir()
    (parts / "chunk-00000.pkl").write_bytes(b"outputs")
    (store.staging / f"{VALID_ID}.0badf00d.new").mkdir()         # a save whose process was killed
    (store.staging / f"{VALID_ID}.0badf00d.new" / "result.json").write_text('{"plume": [')
    store.parts_dir(other, create=True)
    assert store.discard_staging(VALID_ID, keep_parts=True) == [f"{VALID_ID}.0badf00d.new"]
    assert parts.is_dir()
    assert store.discard_staging(VALID_ID) == [f"{VALID_ID}.parts"]
    assert sorted(p.name for p in store.staging.iterdir()) == [f"{other}.parts"]   # other runs untouched
    assert store.discard_staging(VALID_ID) == []
    assert store.list() == []
    record = save(store, result, run_id=VALID_ID)           # the run itself is not in staging
    assert store.discard_staging(VALID_ID) == [] and store.get(VALID_ID) == record
    assert store.clean_staging(older_than_s=0) == [f"{other}.parts"]            # leftovers of a crash



def test_delete_removes_the_run_at_once(store, result) -> None:
    keep, doomed = save(store, result), save(store, result)
    store.delete(doomed.id)
    assert not (store.root / doomed.id).exists()
    assert [r.id for r in store.list()] == [keep.id]
    assert list(store.staging.iterdir()) == []
    with pytest.raises(RunNotFound):
        store.get(doomed.id)
    with pytest.raises(RunNotFound):
        store.delete(doomed.id)


def test_retention_by_age(store, result) -> None:
    now = time.time()
    day = 86400.0
    old, middle, new = (save(store, result, created=now - age, started=now - age, finished=now - age)
                        for age in (10 * day, 3 * day, 60.0))
    assert store.apply_retention() == []                 # off by default
    assert store.apply_retention(max_age_s=5 * day) == [old.id]
    assert [r.id for r in store.list()] == [new.id, middle.id]
    configured = RunStore(store.root, max_age_s=2 * day)
    assert configured.apply_retention(keep=[middle.id]) == []
    assert configured.apply_retention() == [middle.id]
    assert [r.id for r in store.list()] == [new.id]


def test_retention_by_total_size_removes_the_oldest_first(store, result) -> None:
    now = time.time()
    records = [save(store, None, status="failed", error="x", archive_bytes=None,
                    request=b"z" * 20_000, created=now - 100 + i, started=now - 100 + i, finished=now - 99 + i)
               for i in range(4)]
    sizes = [store.size(r.id) for r in records]
    assert all(size > 20_000 for size in sizes)
    limit = sizes[2] + sizes[3]
    assert store.apply_retention(max_total_bytes=limit, keep=[records[0].id]) == [records[1].id, records[2].id]
    assert [r.id for r in store.list()] == [records[3].id, records[0].id]
    assert store.apply_retention(max_total_bytes=0) == [records[0].id, records[3].id]
    assert store.list() == []
    with pytest.raises(ValueError):
        store.apply_retention(max_total_bytes=-1)


# ------------------------------------------------------------------------------------------- root

def test_root_from_argument_environment_or_jupyter_data_dir(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VP_JUPYTER_STORE", str(tmp_path / "from-env"))
    assert RunStore().root == tmp_path / "from-env"
    assert RunStore(tmp_path / "given").root == tmp_path / "given"
    monkeypatch.delenv("VP_JUPYTER_STORE")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    assert RunStore().root == tmp_path / "jupyter-data" / "vp_jupyter" / "runs"
    assert RunStore().list() == []                      # a store that was never written is empty
    assert not (tmp_path / "jupyter-data").exists()


def test_env_var_store_is_used_for_saving(tmp_path, monkeypatch, result) -> None:
    monkeypatch.setenv("VP_JUPYTER_STORE", str(tmp_path / "env-store"))
    record = save(RunStore(), result)
    assert (tmp_path / "env-store" / record.id / "plume.parquet").is_file()


def test_record_round_trips_through_its_dict(store, result) -> None:
    record = save(store, result)
    assert RunRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_server_retention_settings_reach_the_store(store, result) -> None:
    """The server settings (days, MB) become the store's policy; applying them at start removes what they say."""
    from vp_jupyter.server.settings import VisualPlumesSettings

    now, day = time.time(), 86400.0
    old, new = (save(store, result, created=now - age, started=now - age, finished=now - age)
                for age in (10 * day, 60.0))
    keep_all = VisualPlumesSettings(store_root=str(store.root), retention_max_age_days=0, retention_max_total_mb=0)
    keep_all.store = keep_all.make_store()
    assert keep_all.apply_retention() == []                    # 0 = keep forever
    laptop = VisualPlumesSettings(store_root=str(store.root)).make_store()    # on by default
    assert (laptop.max_age_s, laptop.max_total_bytes) == (90 * day, 5 * 1024 ** 3)
    by_age = VisualPlumesSettings(store_root=str(store.root), retention_max_age_days=5.0, retention_max_total_mb=0)
    by_age.store = by_age.make_store()
    assert (by_age.store.max_age_s, by_age.store.max_total_bytes) == (5 * day, None)
    assert by_age.apply_retention() == [old.id]
    by_size = VisualPlumesSettings(store_root=str(store.root), retention_max_total_mb=0.5)
    by_size.store = by_size.make_store()
    assert by_size.store.max_total_bytes == 512 * 1024
    assert [r.id for r in store.list()] == [new.id]
