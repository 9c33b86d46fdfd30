"""The archive store: one folder per run under one root, written atomically, shared by every entry point.

    root/
      <run id>/                 a finished run (appears only when complete: staged, then renamed)
        meta.json               RunRecord: id, kind, owner, source, created, status, timings, engine version, …
        case.json               the case as normalised JSON (time-series files inlined, see below)
        plume.parquet, farfield.parquet, result.json.gz
                                the result (succeeded runs only; `store_results`: tables as Parquet, the rest
                                as gzip JSON)
        study.json              a study's document instead (kind "study": `vp_jupyter.studies`)
        response.json.gz        the response body the legacy run endpoint sends, gzip-compressed, when one was made
        request.json | request.bin   the original request, when the run came from the web UI or the API
        request_files/<name>    uploaded parts of that request (CSV time series)
        output_<run id>.zip     the legacy zip archive, when one was given (the server builds it on request instead)
      .index.sqlite3            the index of every run's record (`store_index`), for listing and retention
      .staging/                 folders being written or deleted; leftovers of a crash (see clean_staging)
        <run id>.parts/         the chunk results of a run in progress (`parts_dir`), removed when it ends
      .inflight/<run id>.json   a note per run a server accepted and has not stored yet (see `note_in_flight`)

Runs written before the index (meta format 1) have `result.json` (the whole Result.to_dict()) and
`response.json` instead; they are read as they are. The folders are the source of truth: the index is
updated by every save, delete and retention, repaired by `reconcile()` (on server start, and when a
process first finds no index) and rebuilt by `reindex()` (`vp-jupyter store reindex`).

Run ids are a UTC timestamp plus 128 random bits (`20261125T173724Z-<32 hex>`). Every public method checks
an id against `RUN_ID_PATTERN` before any path is built, and paths are resolved and verified to stay
directly under the root, so a crafted id or a planted symlink never reaches outside it.

The root is the `root` argument, else the environment variable `VP_JUPYTER_STORE`, else
`<jupyter data dir>/vp_jupyter/runs`. Several processes (the server, notebook kernels) may share one root:
writes are atomic renames, readers skip folders that vanish or cannot be read, and the index is a SQLite
database in WAL mode that every process writes through its own connection.
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import secrets
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from . import store_results
from .store_index import ACTIVE_STATUSES, DEFAULT_KIND, Page, RunIndex, created_us

import orjson

if TYPE_CHECKING:  # pragma: no cover
    from .inputs import Case
    from .results import Result

log = logging.getLogger(__name__)

ENV_VAR = "VP_JUPYTER_STORE"
STAGING = ".staging"
IN_FLIGHT = ".inflight"
META_FORMAT = 2

# `[0-9]`, not `\d`: `\d` also matches non-ASCII digits
RUN_ID_PATTERN = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{32}")
SOURCES = ("notebook", "ui", "api", "cli")
STATUSES = ("succeeded", "failed", "cancelled")
RECORD_STATUSES = STATUSES + ACTIVE_STATUSES     # a record in the index may describe a run still in flight
DEFAULT_PAGE = 50
MAX_PAGE = 500
# the filters of a listing (RunStore.page, GET api/runs, vp.runs), with what they take
LIST_FILTERS = {
    "source": "ui, api, notebook or cli", "owner": "the owner's name",
    "status": "queued, running, succeeded, failed or cancelled", "text": "part of the case name (any case)",
    "since": "created at or after this ISO-8601 time", "until": "created before this ISO-8601 time",
}
KINDS = ("run", "study")         # a run of a case, or a study (many members of one case, one entry)

META_FILE = "meta.json"
CASE_FILE = "case.json"
RESPONSE_FILE = "response.json.gz"
LEGACY_RESPONSE_FILE = "response.json"          # format 1: the body as it is
REQUEST_JSON = "request.json"
REQUEST_BIN = "request.bin"
REQUEST_FILES = "request_files"

# names of uploaded request parts: no separators, no leading dot
_PART_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_MAX_OWNER = 256


class InvalidRunId(ValueError):
    """Text that is not a run id (checked before any file-system access)."""


class RunNotFound(KeyError):
    """No such run in the store (or the run has no such part, e.g. no result or no archive)."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else "run not found"


# ------------------------------------------------------------------------------------------- run ids

def new_run_id(now: float | None = None) -> str:
    """A new unguessable run id: UTC timestamp (to the second) + 128 random bits as 32 lowercase hex."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    return f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(16)}"


def check_run_id(text: Any) -> str:
    """`text` if it is a well-formed run id, else InvalidRunId (nothing else is ever turned into a path)."""
    if not isinstance(text, str) or RUN_ID_PATTERN.fullmatch(text) is None:
        shown = repr(text) if not isinstance(text, str) or len(text) <= 80 else repr(text[:80]) + "…"
        raise InvalidRunId(f"not a valid run id: {shown}")
    return text


# ------------------------------------------------------------------------------------------- time

def iso_time(value: Any) -> str | None:
    """ISO-8601 UTC text (`2026-11-25T17:37:24.123456Z`) of an epoch (s), a datetime or ISO text; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_time(value)
    if isinstance(value, datetime):
        stamp = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        stamp = datetime.fromtimestamp(float(value), timezone.utc)
    else:
        raise TypeError(f"expected a time (epoch seconds, datetime or ISO text), got {type(value).__name__}")
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """A timezone-aware datetime from ISO-8601 text (a trailing Z is UTC; no offset is taken as UTC)."""
    stamp = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return parse_time(iso_time(value)).timestamp()


# ------------------------------------------------------------------------------------------- record

@dataclass(frozen=True)
class RunRecord:
    """The metadata of a stored run (`meta.json`). Times are ISO-8601 UTC text; `files` lists the run's
    files relative to its folder (`meta.json` included)."""
    id: str
    owner: str
    source: str
    created: str
    status: str
    started: str | None
    finished: str | None
    duration_s: float | None
    engine_version: str
    case_name: str
    case_count: int
    error: str | None = None
    files: tuple[str, ...] = field(default_factory=tuple)
    kind: str = DEFAULT_KIND            # what the record is ("run"; other kinds share the store and its index)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["files"] = list(self.files)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunRecord":
        names = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in names}
        values["id"] = check_run_id(values.get("id"))
        values["files"] = tuple(values.get("files") or ())
        values["kind"] = values.get("kind") or DEFAULT_KIND
        if values.get("status") not in RECORD_STATUSES:
            raise ValueError(f"unknown run status {values.get('status')!r}")
        return cls(**values)


# ------------------------------------------------------------------------------------------- store

def default_root() -> Path:
    """`$VP_JUPYTER_STORE`, else `<jupyter data dir>/vp_jupyter/runs`."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    try:
        from jupyter_core.paths import jupyter_data_dir
        data_dir = Path(jupyter_data_dir())
    except ImportError:
        data_dir = Path("~/.local/share/jupyter").expanduser()
    return data_dir / "vp_jupyter" / "runs"


class RunStore:
    """Runs stored as folders under `root` (see the module docstring for the layout).

    `max_age_s` / `max_total_bytes`: the retention policy `apply_retention()` applies when called without
    arguments (both None, the default of a store made in Python: keep everything; the server's settings
    give it its documented defaults). `fsync`: flush files and folders to disk before a run becomes
    visible, so a power cut cannot leave a visible but truncated run.
    """

    def __init__(self, root: "str | os.PathLike | None" = None, *, max_age_s: float | None = None,
                 max_total_bytes: int | None = None, fsync: bool = True):
        base = Path(root).expanduser() if root is not None else default_root()
        self.root = Path(os.path.abspath(base))
        self.max_age_s = _non_negative("max_age_s", max_age_s)
        self.max_total_bytes = _non_negative("max_total_bytes", max_total_bytes)
        self.fsync = fsync
        self._index_obj: RunIndex | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_index_obj"] = None          # connections are per process
        return state

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------------------

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    def _real_root(self) -> Path:
        return self.root.resolve()

    def _run_dir(self, run_id: Any, must_exist: bool = True) -> Path:
        """The folder of `run_id` (checked id, no symlink, directly under the root)."""
        run_id = check_run_id(run_id)
        path = self.root / run_id
        if must_exist:
            if path.is_symlink() or not path.is_dir():
                raise RunNotFound(f"no run {run_id} in {self.root}")
            if path.resolve().parent != self._real_root():
                raise RunNotFound(f"no run {run_id} in {self.root}")
        return path

    def _file(self, run_id: Any, name: str, what: str) -> Path:
        path = self._run_dir(run_id) / name
        if path.is_symlink() or not path.is_file():
            raise RunNotFound(f"run {run_id} has no {what}")
        return path

    def _ensure_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.staging.mkdir(exist_ok=True, mode=0o700)

    # -- writing -----------------------------------------------------------------------------------

    def save(self, case: "Case", result: "Result | None" = None, *, source: str, owner: str = "",
             status: str, started: Any = None, finished: Any = None, created: Any = None,
             request: Any = None, request_files: "Mapping[str, bytes] | None" = None,
             error: str | None = None, archive_bytes: bytes | None = None,
             response: "str | bytes | None" = None, run_id: str | None = None,
             kind: str = DEFAULT_KIND, documents: "Mapping[str, Any] | None" = None) -> RunRecord:
        """Store one run atomically and return its record.

        Everything is written to a folder in `.staging` and renamed to `root/<run id>` at the end: a
        crash leaves at most a staging leftover (`clean_staging`), never a half run. `status` is
        succeeded (a `result` is required), failed or cancelled (`error` says why; a result is not
        stored). `request`: the original request, a JSON value (`request.json`) or raw bytes / text
        (`request.bin`); `request_files`: its uploaded parts, name -> bytes. `response`: a response body
        to keep with a succeeded run (`response.json.gz`: gzip of the text as UTF-8). Times are epoch seconds, datetimes
        or ISO text; `created` defaults to `started`, else now. `run_id`: a new id by default.
        `kind`: "run", or "study" (a study keeps its `documents` instead of a result: name -> JSON value,
        written as files of the run folder, e.g. ``study.json``); other kinds than "run" are listed only when
        asked for (`page(kind=...)`).
        """
        from . import __version__

        run_id = check_run_id(run_id) if run_id is not None else new_run_id()
        if source not in SOURCES:
            raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)} (got {status!r})")
        if not isinstance(owner, str) or len(owner) > _MAX_OWNER:
            raise ValueError(f"owner must be a string of at most {_MAX_OWNER} characters")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)} (got {kind!r})")
        if status == "succeeded" and result is None and kind == "run":
            raise ValueError("a succeeded run needs its result")
        for name in documents or {}:
            if not isinstance(name, str) or _PART_NAME.fullmatch(name) is None or name in (META_FILE, CASE_FILE):
                raise ValueError(f"not a valid document name: {name!r}")
        if error is not None and not isinstance(error, str):
            raise TypeError("error must be a string or None")
        for name in request_files or {}:
            if not isinstance(name, str) or _PART_NAME.fullmatch(name) is None:
                raise ValueError(f"not a valid request part name: {name!r}")
        started_s, finished_s = _epoch(started), _epoch(finished)
        created_s = _epoch(created) if created is not None else (started_s if started_s is not None else time.time())
        final = self._run_dir(run_id, must_exist=False)
        if os.path.lexists(final):
            raise FileExistsError(f"run {run_id} already exists in {self.root}")

        case_dict = self_contained_case(case.to_dict())
        self._ensure_dirs()
        work = self.staging / f"{run_id}.{secrets.token_hex(4)}.new"
        work.mkdir(mode=0o700)
        try:
            files = [CASE_FILE]
            self._write_json(work / CASE_FILE, case_dict)
            if result is not None and status == "succeeded":
                for name, content in store_results.result_files(result, case_dict).items():
                    self._write_bytes(work / name, content)
                    files.append(name)
            for name, document in (documents or {}).items():
                self._write_json(work / name, document)
                files.append(name)
            if request is not None:
                if isinstance(request, (bytes, bytearray, memoryview, str)):
                    raw = request.encode("utf-8") if isinstance(request, str) else bytes(request)
                    self._write_bytes(work / REQUEST_BIN, raw)
                    files.append(REQUEST_BIN)
                else:
                    self._write_json(work / REQUEST_JSON, request)
                    files.append(REQUEST_JSON)
            if request_files:
                (work / REQUEST_FILES).mkdir()
                for name, content in request_files.items():
                    self._write_bytes(work / REQUEST_FILES / name, bytes(content))
                    files.append(f"{REQUEST_FILES}/{name}")
            if archive_bytes is not None:
                name = archive_name(run_id)
                self._write_bytes(work / name, bytes(archive_bytes))
                files.append(name)
            if response is not None and status == "succeeded":
                body = response.encode("utf-8") if isinstance(response, str) else bytes(response)
                body = gzip.compress(body, store_results.GZIP_LEVEL)
                self._write_bytes(work / RESPONSE_FILE, body)
                del body
                files.append(RESPONSE_FILE)
            files.append(META_FILE)
            record = RunRecord(
                id=run_id, owner=owner, source=source, created=iso_time(created_s), status=status,
                started=iso_time(started_s), finished=iso_time(finished_s),
                duration_s=(finished_s - started_s) if started_s is not None and finished_s is not None else None,
                engine_version=__version__, case_name=case.name, case_count=len(case.case_times),
                error=error, files=tuple(sorted(files)), kind=kind)
            self._write_json(work / META_FILE, {"format": META_FORMAT, **record.to_dict()})
            if self.fsync:
                _fsync_dir(work)
            size = _tree_size(work)
            os.rename(work, final)          # atomic: the run appears complete or not at all
            if self.fsync:
                _fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        self.update_index(record, size)
        return record

    def _write_json(self, path: Path, value: Any) -> None:
        # orjson (UTF-8, compact, NaN and ±Infinity written as null, as json_safe makes them):
        # a year of hourly cases (60 MB) in a fifth of the time of json.dumps
        data = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        with open(path, "wb") as handle:
            handle.write(data)
            self._flush(handle)

    def _write_bytes(self, path: Path, data: bytes) -> None:
        with open(path, "wb") as handle:
            handle.write(data)
            self._flush(handle)

    def _flush(self, handle: Any) -> None:
        if self.fsync:
            handle.flush()
            os.fsync(handle.fileno())

    # -- reading -----------------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        """The record of a stored run (RunNotFound if there is none)."""
        path = self._file(run_id, META_FILE, "metadata")
        try:
            return RunRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as err:
            raise RunNotFound(f"run {run_id} has unreadable metadata ({err})") from None

    def exists(self, run_id: str) -> bool:
        try:
            self.get(run_id)
        except RunNotFound:
            return False
        return True

    def load_case(self, run_id: str) -> "Case":
        """The Case of a stored run."""
        from .inputs import Case
        from .inputs.normalise import MAX_CASES

        path = self._file(run_id, CASE_FILE, "case")
        data = json.loads(path.read_text(encoding="utf-8"))
        count = self.get(run_id).case_count
        return Case.from_dict(data, max_cases=max(MAX_CASES, count))

    def load_result(self, run_id: str) -> "Result":
        """The Result of a stored (succeeded) run, rebuilt from its result files and case.json."""
        from .results import Result

        folder = self._result_folder(run_id)
        case = self.load_case(run_id)
        return Result.from_dict(store_results.result_dict(folder), case=case)

    def iter_result_json(self, run_id: str) -> Iterator[bytes]:
        """The JSON text of the run's `Result.to_dict()`, in pieces (RunNotFound if the run is absent or did
        not succeed), e.g. to send it without building it whole."""
        return store_results.iter_result_json(self._result_folder(run_id))

    def _result_folder(self, run_id: str) -> Path:
        folder = self._run_dir(run_id)
        if not store_results.has_result(folder):
            raise RunNotFound(f"run {run_id} has no result (it did not succeed)")
        return folder

    def document_path(self, run_id: str, name: str) -> Path:
        """Path of a document stored with the run (e.g. a study's `study.json`; RunNotFound if absent)."""
        if not isinstance(name, str) or _PART_NAME.fullmatch(name) is None:
            raise RunNotFound(f"run {run_id} has no document {name!r}")
        return self._file(run_id, name, f"document {name!r}")

    def load_document(self, run_id: str, name: str) -> Any:
        """A JSON document stored with the run (RunNotFound if absent)."""
        with open(self.document_path(run_id, name), encoding="utf-8") as handle:
            return json.load(handle)

    def load_request(self, run_id: str) -> Any:
        """The original request of a run: the JSON value, or bytes for a raw request; None when none was stored."""
        folder = self._run_dir(run_id)
        if (folder / REQUEST_JSON).is_file():
            return json.loads(self._file(run_id, REQUEST_JSON, "request").read_text(encoding="utf-8"))
        if (folder / REQUEST_BIN).is_file():
            return self._file(run_id, REQUEST_BIN, "request").read_bytes()
        return None

    def load_request_file(self, run_id: str, name: str) -> bytes:
        """One uploaded part of the original request."""
        if not isinstance(name, str) or _PART_NAME.fullmatch(name) is None:
            raise RunNotFound(f"run {run_id} has no request part {name!r}")
        return self._file(run_id, f"{REQUEST_FILES}/{name}", f"request part {name!r}").read_bytes()

    def archive_path(self, run_id: str) -> Path:
        """Path of the run's legacy zip archive (RunNotFound if the run or its archive is absent)."""
        return self._file(run_id, archive_name(run_id), "archive")

    def response_path(self, run_id: str) -> Path:
        """Path of the response body stored with the run: `response.json.gz` (gzip; `.json` for runs stored
        before the index, as it is); RunNotFound if there is none."""
        if (self._run_dir(run_id) / LEGACY_RESPONSE_FILE).is_file():
            return self._file(run_id, LEGACY_RESPONSE_FILE, "stored response")
        return self._file(run_id, RESPONSE_FILE, "stored response")

    def list(self, source: str | None = None, owner: str | None = None, status: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        """Stored runs, newest first, optionally only those of one source / owner / status (all of them,
        unless `limit`; `page` lists a page at a time)."""
        return self.page(limit=None if limit is None else max(0, int(limit)), source=source, owner=owner,
                         status=status).records

    def page(self, limit: int | None = DEFAULT_PAGE, before: str | None = None, *, source: str | None = None,
             owner: str | None = None, owners: "Iterable[str] | None" = None, status: str | None = None,
             text: str | None = None, since: Any = None, until: Any = None, kind: str | None = DEFAULT_KIND) -> Page:
        """One page of the store's records, newest first (by creation time, then id), from the index.

        `limit`: records per page (None: all). `before`: the `next` cursor of the previous page (or a run
        id): only records older than it, so runs added meanwhile never shift the pages. Filters: `source`,
        `owner`, `status` (equal), `owners` (any of these owners: who may see what), `text` (part of the
        case name, any case), `since` / `until` (created in [since, until): epoch seconds, datetimes or
        ISO text), `kind` (None: every kind). Returns a `Page` (`records`, `next`: None on the last page).
        ValueError (InvalidCursor) for a bad argument, naming it."""
        filters = check_filters(limit=limit, before=before, source=source, status=status, since=since, until=until)
        if limit == 0 or not self.root.is_dir():
            return Page([], None)
        rows, next_cursor = self._index().page(
            limit, before, source=source, owner=owner, owners=None if owners is None else list(owners),
            status=status, text=text or None, since_us=filters["since"], until_us=filters["until"], kind=kind)
        records = []
        for row in rows:
            try:
                records.append(RunRecord.from_dict(row))
            except (ValueError, TypeError):
                log.warning("the run index holds an unreadable record of %s; run `vp-jupyter store reindex`",
                            row.get("id") if isinstance(row, dict) else row)
        return Page(records, next_cursor)

    # -- the index ---------------------------------------------------------------------------------

    def _index(self) -> RunIndex:
        """The store's index, ready to read: made and filled from the folders when this process finds
        none; a private in-memory one when the root cannot hold one (read-only, or not SQLite-capable)."""
        index = self._index_obj
        if index is not None:
            return index
        index = RunIndex(self.root)
        fresh = not index.exists()
        try:
            index.connect()
        except (sqlite3.Error, OSError) as err:
            log.warning("cannot use the run index in %s (%s); listing from the run folders instead", self.root, err)
            index = RunIndex(self.root, memory=True)
            fresh = True
        self._index_obj = index
        if fresh:
            self.reconcile()
        return index

    def update_index(self, record: RunRecord, size_bytes: int | None = None) -> None:
        """Write one record into the index (what save does; for a writer that changes a record itself,
        e.g. a run still in flight, status queued or running). A failure is logged, not raised: the
        folder stands, and `reconcile` repairs the index."""
        try:
            size = size_bytes if size_bytes is not None else self._size_or_zero(record.id)
            self._index().put(record.to_dict(), size)
        except (sqlite3.Error, OSError) as err:
            log.warning("run %s was stored but not indexed (%s); `vp-jupyter store reindex` repairs it", record.id, err)

    def _unindex(self, run_ids: "Sequence[str]") -> None:
        try:
            self._index().remove(run_ids)
        except (sqlite3.Error, OSError) as err:
            log.warning("removed runs are still in the index (%s); `vp-jupyter store reindex` repairs it", err)

    def reconcile(self) -> tuple[list[str], list[str]]:
        """Repair drift between the folders and the index: index every run folder that has no row, remove
        every row whose folder is gone (rows of runs still queued or running are left to their writer).
        Returns (ids added, ids removed)."""
        index = self._index()
        rows = index.ids(include_active=False)      # rows first: a run saved meanwhile is only re-added
        folders = set(self._run_names())
        added = self._index_folders(index, sorted(folders - index.ids()))
        stale = [run_id for run_id in sorted(rows - folders) if not (self.root / run_id).is_dir()]
        index.remove(stale)
        if added or stale:
            log.info("run index of %s repaired: %d run(s) added, %d removed", self.root, len(added), len(stale))
        return added, stale

    def reindex(self) -> int:
        """Rebuild the index from the run folders (`vp-jupyter store reindex`); the number of runs indexed."""
        index = self._index()
        index.clear()
        self._index_folders(index, sorted(self._run_names()))
        return index.count()

    def _index_folders(self, index: RunIndex, names: "Sequence[str]", batch: int = 500) -> list[str]:
        added: list[str] = []
        for start in range(0, len(names), batch):
            rows = []
            for name in names[start:start + batch]:
                try:
                    record = self.get(name)
                except (RunNotFound, OSError):
                    continue                # vanished or unreadable: not a run
                if record.id == name:
                    rows.append((record.to_dict(), self._size_or_zero(name), None))
                    added.append(name)
            index.put_many(rows)
        return added

    def _size_or_zero(self, run_id: str) -> int:
        try:
            return self.size(run_id)
        except (RunNotFound, OSError):
            return 0

    def _run_names(self) -> list[str]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return [e.name for e in entries if RUN_ID_PATTERN.fullmatch(e.name) and not e.is_symlink()]

    def size(self, run_id: str) -> int:
        """Bytes used by a run's files."""
        return _tree_size(self._run_dir(run_id))

    # -- removing ----------------------------------------------------------------------------------

    def delete(self, run_id: str) -> None:
        """Remove a run. It disappears at once (renamed into staging), then its files are removed."""
        folder = self._run_dir(run_id)
        self._ensure_dirs()
        doomed = self.staging / f"{run_id}.{secrets.token_hex(4)}.deleted"
        try:
            os.rename(folder, doomed)
        except FileNotFoundError:
            raise RunNotFound(f"no run {run_id} in {self.root}") from None
        self._unindex([run_id])
        shutil.rmtree(doomed, ignore_errors=True)

    def apply_retention(self, max_age_s: float | None = None, max_total_bytes: int | None = None, *,
                        keep: Iterable[str] = ()) -> list[str]:
        """Delete runs older than `max_age_s`, then the oldest runs until the store holds at most
        `max_total_bytes` (sizes as the index recorded them). Arguments left None take the store's
        configured policy. Runs named in `keep`, and runs queued or running, are never removed. Returns
        the removed ids, oldest first."""
        max_age_s = _non_negative("max_age_s", max_age_s if max_age_s is not None else self.max_age_s)
        max_total = _non_negative("max_total_bytes",
                                  max_total_bytes if max_total_bytes is not None else self.max_total_bytes)
        if (max_age_s is None and max_total is None) or not self.root.is_dir():
            return []
        kept = set(keep)
        index = self._index()
        removed: list[str] = []

        def remove(run_id: str) -> bool:
            if run_id in kept:
                return False
            try:
                if self.get(run_id).status in ACTIVE_STATUSES:
                    return False
                self.delete(run_id)
            except RunNotFound:
                self._unindex([run_id])     # someone else removed it
                return False
            removed.append(run_id)
            return True

        if max_age_s is not None:
            cutoff = int((time.time() - max_age_s) * 1_000_000)
            for run_id, _created, _size in index.retention_candidates(older_than_us=cutoff):
                remove(run_id)
        if max_total is not None:
            total = index.total_size()
            skipped: set[str] = set()
            while total > max_total:
                batch = [c for c in index.retention_candidates(limit=len(skipped) + 100) if c[0] not in skipped]
                if not batch:
                    break
                for run_id, _created, size in batch:
                    if total <= max_total:
                        break
                    if remove(run_id):
                        total -= size
                    else:
                        skipped.add(run_id)
        return removed

    def parts_dir(self, run_id: str, create: bool = False) -> Path:
        """`.staging/<run id>.parts`: where the workers of a run in progress leave their chunk results
        (created when `create`). It is removed when the run ends; a crash leaves it to `clean_staging`."""
        path = self.staging / f"{check_run_id(run_id)}.parts"
        if create:
            self._ensure_dirs()
            path.mkdir(mode=0o700, exist_ok=True)
        return path

    def discard_staging(self, run_id: str, keep_parts: bool = False) -> list[str]:
        """Remove the staging entries of one run: its chunk results (unless `keep_parts`) and folders of
        writes that were interrupted (a worker stopped while saving the run). Only for a run no one is
        saving right now. Returns the names removed."""
        prefix = f"{check_run_id(run_id)}."
        try:
            entries = list(os.scandir(self.staging))
        except FileNotFoundError:
            return []
        removed = []
        for entry in entries:
            if not entry.name.startswith(prefix) or (keep_parts and entry.name == prefix + "parts"):
                continue
            _remove_entry(entry)
            removed.append(entry.name)
        return sorted(removed)

    def clean_staging(self, older_than_s: float = 3600.0) -> list[str]:
        """Remove staging leftovers (writes or deletions interrupted by a crash) not touched for
        `older_than_s` seconds; younger ones may be writes in progress in another process. Returns
        the names removed."""
        try:
            entries = list(os.scandir(self.staging))
        except FileNotFoundError:
            return []
        removed = []
        now = time.time()
        for entry in entries:
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:
                continue
            if age < older_than_s:
                continue
            _remove_entry(entry)
            removed.append(entry.name)
        return sorted(removed)


    # -- runs in flight ----------------------------------------------------------------------------
    # A runner notes every run it accepts in `.inflight/<run id>.json` (the case and who runs it) and
    # removes the note once the run is stored, so a runner that starts after a crash can record the runs
    # the crash interrupted (`runner.recover_interrupted`).

    @property
    def in_flight_dir(self) -> Path:
        return self.root / IN_FLIGHT

    def note_in_flight(self, run_id: str, note: Mapping[str, Any]) -> None:
        """Write the note of a run that was accepted and is not stored yet (atomically)."""
        run_id = check_run_id(run_id)
        folder = self.in_flight_dir
        temporary = folder / f".{run_id}.{secrets.token_hex(4)}.tmp"
        for attempt in range(3):            # the folder is removed whenever it empties (clear_in_flight)
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                self._write_json(temporary, {**note, "id": run_id})
                os.replace(temporary, folder / f"{run_id}.json")
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise

    def clear_in_flight(self, run_id: str) -> None:
        """Remove a run's note (and the notes' folder once it is empty, leaving only runs in the root)."""
        (self.in_flight_dir / f"{check_run_id(run_id)}.json").unlink(missing_ok=True)
        try:
            self.in_flight_dir.rmdir()
        except OSError:                     # other notes, or gone already
            pass

    def in_flight(self) -> list[dict[str, Any]]:
        """The notes of runs in flight (or interrupted), unreadable ones left out."""
        notes = []
        try:
            entries = list(os.scandir(self.in_flight_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            if not entry.name.endswith(".json") or not RUN_ID_PATTERN.fullmatch(entry.name[:-5]):
                continue
            try:
                with open(entry.path, encoding="utf-8") as handle:
                    note = json.load(handle)
            except (OSError, ValueError):
                continue
            if isinstance(note, dict) and note.get("id") == entry.name[:-5]:
                notes.append(note)
        return notes


# ------------------------------------------------------------------------------------------- helpers

def check_filters(*, limit: Any = None, before: Any = None, source: Any = None, status: Any = None,
                  since: Any = None, until: Any = None) -> dict[str, Any]:
    """Check the arguments of a listing (ValueError naming the argument and the value); returns the time
    range as µs since the epoch (`since`, `until`) and the cursor's (created µs, id) as `before`."""
    from .store_index import parse_cursor

    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a whole number >= 0 or None (got {limit!r})")
    if source is not None and source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
    if status is not None and status not in RECORD_STATUSES:
        raise ValueError(f"status must be one of {', '.join(RECORD_STATUSES)} (got {status!r})")
    checked: dict[str, Any] = {"before": None if before is None else parse_cursor(before)}
    for name, value in (("since", since), ("until", until)):
        try:
            checked[name] = None if value is None else created_us(iso_time(value))
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a time: epoch seconds, a datetime or ISO-8601 text "
                             f"(got {value!r})") from None
    return checked


def archive_name(run_id: str) -> str:
    """File name of a run's legacy zip archive (legacy HTTP API §6.3)."""
    return f"output_{check_run_id(run_id)}.zip"


def self_contained_case(case_dict: dict[str, Any]) -> dict[str, Any]:
    """The case JSON with every time series read from a file inlined as `csv`, so a stored case does not
    depend on files outside the store. A file that cannot be read keeps its reference."""
    series_block = case_dict.get("timeseries")
    if not isinstance(series_block, dict):
        return case_dict
    for where in ("diffuser", "ambient"):
        for series in (series_block.get(where) or {}).values():
            path = series.get("file") if isinstance(series, dict) else None
            if not path:
                continue
            try:
                text = Path(path).read_text(encoding="utf-8-sig")
            except (OSError, UnicodeDecodeError) as err:
                log.warning("stored case keeps a reference to %s (cannot inline it: %s)", path, err)
                continue
            del series["file"]
            series["csv"] = text
    return case_dict


def _tree_size(path: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:                         # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _non_negative(name: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number >= 0 or None (got {value!r})")
    return value


def _remove_entry(entry: os.DirEntry) -> None:
    """Remove one staging leftover (folder or file); gone already is fine."""
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path, ignore_errors=True)
        return
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        pass
