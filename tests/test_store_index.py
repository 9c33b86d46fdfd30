"""The store's index: drift repaired (on start, by reindex), concurrent writers in several processes, stable
pages, filters, retention that spares active runs, and runs stored in the layout before the index."""
from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vp_jupyter as vp
from vp_jupyter import cli
from vp_jupyter.runner import Runner
from vp_jupyter.store import RunRecord, RunStore, new_run_id
from vp_jupyter.store_index import INDEX_FILE, InvalidCursor

from builders import complete_case

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "store-v1"
small_case = functools.partial(complete_case, "index test")


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs", fsync=False)


@pytest.fixture(scope="module")
def case() -> vp.Case:
    return vp.Case.load(small_case())


def add(store: RunStore, case, *, created: float | None = None, owner: str = "alice", source: str = "api",
        status: str = "failed", name: str | None = None) -> RunRecord:
    """A stored run (metadata only: quick)."""
    created = time.time() if created is None else created
    if name is not None:
        case = case.replace(name=name)
    return store.save(case, None, source=source, owner=owner, status=status, error="stopped", created=created,
                      started=created, finished=created + 1, run_id=new_run_id(created))


def listed(store: RunStore, **filters) -> list[str]:
    return [record.id for record in store.page(limit=None, **filters).records]


def folders(store: RunStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir() if not p.name.startswith("."))


# ------------------------------------------------------------------------------------------- drift

def test_drift_is_repaired_on_start_and_by_reindex(store, case, tmp_path) -> None:
    from vp_jupyter.server.settings import VisualPlumesSettings

    now = time.time()
    records = [add(store, case, created=now - 100 + i) for i in range(5)]
    other = RunStore(tmp_path / "elsewhere", fsync=False)
    copied = add(other, case, created=now - 50, owner="bob")

    def make_drift() -> tuple[str, str]:
        gone = sorted(set(folders(store)) - {copied.id})[0]
        shutil.rmtree(store.root / gone)                                  # a row without a folder
        shutil.copytree(other.root / copied.id, store.root / copied.id)  # a folder without a row
        return gone, copied.id

    gone, arrived = make_drift()
    assert gone in listed(store) and arrived not in listed(store)        # the drift is real
    settings = VisualPlumesSettings(store_root=str(store.root), retention_max_age_days=0, retention_max_total_mb=0)
    settings.store = settings.make_store()
    settings.start_store_upkeep().join(30)                                # what the server and the hub do at start
    assert sorted(listed(store)) == folders(store) and arrived in listed(store) and gone not in listed(store)
    assert listed(store, owner="bob") == [arrived]

    shutil.rmtree(store.root / arrived)
    gone, arrived = make_drift()
    assert cli.main(["store", "reindex", "--store", str(store.root)]) == 0
    assert sorted(listed(store)) == folders(store) and len(folders(store)) == 4
    assert gone not in listed(store) and records[-1].id in listed(store)

    (store.root / INDEX_FILE).unlink()                                   # no index at all: rebuilt on first use
    for extra in ("-wal", "-shm"):
        (store.root / (INDEX_FILE + extra)).unlink(missing_ok=True)
    assert sorted(listed(RunStore(store.root))) == folders(store)
    assert cli.main(["store", "reindex", "--store", str(tmp_path / "nothing-here")]) == 2


def test_a_store_without_a_usable_index_still_lists_its_folders(store, case, monkeypatch) -> None:
    import sqlite3

    import vp_jupyter.store_index as store_index

    kept = add(store, case)
    real_connect = sqlite3.connect

    def refuse(target, *args, **kwargs):
        if target != ":memory:":
            raise sqlite3.OperationalError("unable to open database file")
        return real_connect(target, *args, **kwargs)

    monkeypatch.setattr(store_index.sqlite3, "connect", refuse)
    fresh = RunStore(store.root)
    assert listed(fresh) == [kept.id]                # from an in-memory index of the folders
    assert vp.runs(store=fresh).id.tolist() == [kept.id]


# ------------------------------------------------------------------------------------------- writers

NOTEBOOK_WRITER = """
import sys, time
sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
import vp_jupyter as vp
from vp_jupyter.store import RunStore
from builders import complete_case
store = RunStore({root!r}, fsync=False)
case = vp.Case.load(complete_case("from the notebook"))
for _ in range(3):
    vp.run(case, store=store)                         # a notebook's runs
for _ in range({count}):
    store.save(case, None, source="notebook", owner="nb", status="failed", error="x")
"""


def test_concurrent_writers_in_several_processes_never_lose_a_row(store, case) -> None:
    """A server's runner (whose worker processes save runs), the server's own thread and a notebook
    process all write at once; every run ends up in the index, with no repair."""
    count = 120
    assert listed(store) == []                       # the index exists before anyone writes
    notebook = subprocess.Popen([sys.executable, "-c", NOTEBOOK_WRITER.format(
        repo=str(REPO_ROOT), tests=str(REPO_ROOT / "tests"), root=str(store.root), count=count)], cwd=REPO_ROOT)
    with Runner(store, max_workers=2) as runner:
        submitted = [runner.submit(small_case(cases=3), source="api", owner="server") for _ in range(6)]
        saved_here = [add(store, case, owner="server-thread").id for _ in range(count)]
        for run_id in submitted:
            assert runner.wait_sync(run_id, 300)["status"] == "succeeded"
    assert notebook.wait(300) == 0
    index = store._index()
    assert index.ids() == set(folders(store))        # no folder without a row, no row without a folder
    assert len(folders(store)) == 6 + count + 3 + count
    assert set(submitted) | set(saved_here) <= index.ids()
    assert len(listed(store, owner="nb")) == count and len(listed(store, source="notebook")) == count + 3
    assert store.reconcile() == ([], [])             # nothing was left to repair


# ------------------------------------------------------------------------------------------- pages

def test_pages_stay_stable_while_runs_are_added(store, case) -> None:
    start = time.time() - 1000
    original = [add(store, case, created=start + i).id for i in range(25)]
    newest_first = list(reversed(original))
    first = store.page(limit=10)
    assert [r.id for r in first.records] == newest_first[:10] and first.next
    for i in range(7):                                # new runs arrive between the pages
        add(store, case, created=time.time() + i)
    second = store.page(limit=10, before=first.next)
    third = store.page(limit=10, before=second.next)
    assert [r.id for r in second.records] == newest_first[10:20]
    assert [r.id for r in third.records] == newest_first[20:] and third.next is None
    same_second = store.page(limit=10, before=first.next)            # a page read again is the same page
    assert [r.id for r in same_second.records] == newest_first[10:20]
    assert len(store.page(limit=None).records) == 32
    assert store.page(limit=3, before=original[5]).records[0].id == original[4]   # a run id is a cursor too


def test_runs_with_the_same_creation_time_are_paged_by_id(store, case) -> None:
    moment = time.time()
    ids = sorted((add(store, case, created=moment).id for _ in range(9)), reverse=True)
    seen, cursor = [], None
    while True:
        page = store.page(limit=2, before=cursor)
        seen += [r.id for r in page.records]
        if page.next is None:
            break
        cursor = page.next
    assert seen == ids


def test_filters_and_their_errors(store, case) -> None:
    now = time.time()
    a = add(store, case, created=now - 300, owner="alice", source="ui", name="Outfall A, summer")
    b = add(store, case, created=now - 200, owner="bob", source="api", name="outfall b")
    c = add(store, case, created=now - 100, owner="carol", source="notebook", name="100% mixing_zone")
    assert listed(store, text="OUTFALL") == [b.id, a.id]
    assert listed(store, text="%") == [c.id] and listed(store, text="_zone") == [c.id]     # taken literally
    assert listed(store, owners=["alice", "carol"]) == [c.id, a.id] and listed(store, owners=[]) == []
    assert listed(store, since=now - 250) == [c.id, b.id]
    assert listed(store, until=now - 150, source="api") == [b.id]
    assert listed(store, since=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 250))) == [c.id, b.id]
    assert listed(store, kind="study") == [] and len(listed(store, kind=None)) == 3
    study = store.save(case, None, source="notebook", status="failed", error="x", kind="study")
    assert listed(store, kind="study") == [study.id] and study.id not in listed(store)   # runs only by default
    assert store.get(study.id).kind == "study" and len(listed(store, kind=None)) == 4
    with pytest.raises(ValueError, match="kind"):
        store.save(case, None, source="notebook", status="failed", kind="../x")
    store.delete(study.id)
    for bad, message in (({"limit": -1}, "limit"), ({"source": "email"}, "source"), ({"status": "done"}, "status"),
                         ({"since": "last week"}, "since"), ({"before": "page 2"}, "before")):
        with pytest.raises(ValueError, match=message):
            store.page(**bad)
    with pytest.raises(InvalidCursor):
        store.page(before="123.not-a-run-id")
    frame = vp.runs(store=store, limit=2)
    assert frame.id.tolist() == [c.id, b.id] and frame.attrs["next"]
    assert vp.runs(store=store, before=frame.attrs["next"]).id.tolist() == [a.id]


# ------------------------------------------------------------------------------------------- retention

def test_retention_never_removes_an_active_run(store, case) -> None:
    old = add(store, case, created=time.time() - 10 * 86400)
    in_flight = RunRecord(id=new_run_id(time.time() - 20 * 86400), owner="alice", source="api",
                          created="2026-01-01T00:00:00Z", status="running", started=None, finished=None,
                          duration_s=None, engine_version=vp.__version__, case_name="in flight", case_count=1)
    store.update_index(in_flight, 10 ** 12)          # a writer's record of a run still running (no folder yet)
    assert store.apply_retention(max_age_s=0, max_total_bytes=0) == [old.id]
    assert listed(store, status="running") == [in_flight.id]
    assert store.reconcile() == ([], [])             # its row stays until its writer ends it
    with Runner(RunStore(store.root, max_age_s=0.0, fsync=False), max_workers=1) as runner:
        slow = runner.submit(small_case(cases=400), source="api")
        quick = runner.submit(small_case(), source="api")
        first = runner.wait_sync(quick, 300)          # its retention ran while the slow run was running
        assert first["status"] == "succeeded" and runner.status(slow)["status"] in ("queued", "running")
        assert runner.wait_sync(slow, 300)["status"] == "succeeded"
        assert runner.store.exists(slow)              # kept: it was the run that just ended
    assert not store.exists(quick)                   # removed by the slow run's retention (age > 0)


# ------------------------------------------------------------------------------------------- old layout

def test_runs_stored_before_the_index_still_list_load_and_serve(tmp_path) -> None:
    root = tmp_path / "old-store"
    shutil.copytree(FIXTURE, root)
    (run_id,) = [p.name for p in root.iterdir()]
    folder = root / run_id
    assert json.loads((folder / "meta.json").read_text())["format"] == 1 and (folder / "result.json").is_file()
    store = RunStore(root)
    (record,) = store.list()
    assert (record.id, record.source, record.case_name, record.case_count) == (run_id, "ui", "old layout fixture", 2)
    assert vp.runs(store=store, text="old layout").id.tolist() == [run_id]
    result = vp.load(run_id, store=store)
    stored = json.loads((folder / "result.json").read_text())
    assert result.run_id == run_id and result.case_count == 2 and len(result.plume) > 0 and len(result.farfield) > 0
    loaded = json.loads(json.dumps(result.to_dict()))     # the stored values come back (newer columns are added)
    for key in ("plume", "farfield"):
        for now, then in zip(loaded[key], stored[key], strict=True):
            assert {name: now["columns"][name] for name in then["columns"]} == then["columns"]
            assert now["steps"] == then["steps"] and now["memos"] == then["memos"]
            assert now.get("statuses") == then.get("statuses")
    assert b"".join(store.iter_result_json(run_id)) == (folder / "result.json").read_bytes()
    assert store.response_path(run_id) == folder / "response.json"
    assert store.archive_path(run_id).read_bytes()[:2] == b"PK"
    store.delete(run_id)
    assert store.list() == [] and store.reconcile() == ([], [])
