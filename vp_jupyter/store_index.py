"""The run index: one SQLite database (standard library, WAL mode) beside the run folders of a store.

The folders stay the source of truth; the index holds a copy of every run's record so that listing,
filtering, sorting and retention never read thousands of `meta.json` files. Every writer of the store (the
server, the hub service, its worker processes, notebook kernels, the command line) updates it through
`RunStore` on save, delete and retention; `RunStore.reconcile()` repairs drift (a folder without a row, a
row without a folder) and `RunStore.reindex()` rebuilds it from the folders.

    root/.index.sqlite3   (+ -wal, -shm while in use)

Concurrency: each process and thread opens its own connection; WAL lets readers run beside one writer,
and writers wait for each other up to `BUSY_TIMEOUT_S` (SQLite's busy timeout). WAL needs shared memory
between the processes, so the index must live on a local file system (see the README, "Archive store").

Pages are ordered newest first by (created, id) and addressed by a keyset cursor: `before=<cursor>` gives
the runs strictly older than the cursor, so runs added meanwhile never shift a page. A cursor is
`<created, µs since the epoch>.<run id>` (opaque to clients: they follow the `next` they are given).
"""
from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

log = logging.getLogger(__name__)

INDEX_FILE = ".index.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 30.0
ACTIVE_STATUSES = ("queued", "running")
DEFAULT_KIND = "run"
_CURSOR = re.compile(r"(-?[0-9]{1,20})\.([0-9]{8}T[0-9]{6}Z-[0-9a-f]{32})")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL DEFAULT '{DEFAULT_KIND}',
    created_us INTEGER NOT NULL,
    owner TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    case_name TEXT NOT NULL,
    size_bytes INTEGER NOT NULL DEFAULT 0,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (kind, created_us, id);
CREATE INDEX IF NOT EXISTS runs_by_age ON runs (created_us, id);
CREATE INDEX IF NOT EXISTS runs_by_owner ON runs (owner, kind, created_us, id);
CREATE INDEX IF NOT EXISTS runs_by_source ON runs (source, kind, created_us, id);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, kind, created_us, id);
PRAGMA user_version = {SCHEMA_VERSION}
"""
_STATEMENTS = [statement.strip() for statement in _SCHEMA.split(";") if statement.strip()]


class InvalidCursor(ValueError):
    """A `before=` value that is not a cursor this index gave out (nor a run id)."""


@dataclass(frozen=True)
class Page:
    """One page of a listing: the records (RunRecord, newest first) and the cursor of the next page (None:
    this is the last page)."""
    records: list
    next: str | None


def created_us(created: str | None) -> int:
    """Microseconds since the epoch of an ISO-8601 time (the sort key); 0 when it cannot be read."""
    if not created:
        return 0
    try:
        stamp = datetime.fromisoformat(created[:-1] + "+00:00" if created.endswith("Z") else created)
    except ValueError:
        return 0
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    delta = stamp - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def make_cursor(created: str | None, run_id: str) -> str:
    """The cursor of the page that follows the run (`created` ISO text, `run_id`)."""
    return f"{created_us(created)}.{run_id}"


def parse_cursor(text: Any) -> tuple[int, str]:
    """(created µs, run id) of a cursor; a bare run id counts as its own cursor (its id's timestamp)."""
    if isinstance(text, str):
        match = _CURSOR.fullmatch(text)
        if match:
            return int(match[1]), match[2]
        if re.fullmatch(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{32}", text):
            stamp = datetime.strptime(text[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
            return int(stamp.timestamp()) * 1_000_000 + 999_999, text
    shown = repr(text) if not isinstance(text, str) or len(text) <= 80 else repr(text[:80]) + "…"
    raise InvalidCursor(f"before: not a page cursor (use the `next` value of the previous page): {shown}")


class RunIndex:
    """The SQLite index of one store root (see the module docstring). Picklable: connections are opened
    per process and thread, on first use. `memory=True`: a private in-memory index (used when the root
    cannot hold one, e.g. a read-only store)."""

    def __init__(self, root: Path, memory: bool = False):
        self.root = Path(root)
        self.path = self.root / INDEX_FILE
        self.memory = memory
        self._local = threading.local()
        self._memory_conn: sqlite3.Connection | None = None
        self._memory_lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self.root, "path": self.path, "memory": self.memory}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["root"], state["memory"])

    # -- connections -------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.memory or self.path.is_file()

    def connect(self) -> sqlite3.Connection:
        """This thread's connection (made, and the schema created, on first use)."""
        if self.memory:
            with self._memory_lock:
                if self._memory_conn is None:
                    conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
                    for statement in _STATEMENTS:
                        conn.execute(statement)
                    self._memory_conn = conn
                return self._memory_conn
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            if conn.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() != "wal":
                log.warning("the run index %s is not in WAL mode (file system without shared memory?)", self.path)
            conn.execute("PRAGMA synchronous=NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise sqlite3.DatabaseError(f"run index {self.path} has schema {version}; this version reads "
                                            f"{SCHEMA_VERSION} (run `vp-jupyter store reindex`)")
            if version == 0:
                with _transaction(conn):
                    for statement in _STATEMENTS:
                        conn.execute(statement)
        except BaseException:
            conn.close()
            raise
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local = threading.local()

    # -- writing -----------------------------------------------------------------------------------

    def put(self, record: dict[str, Any], size_bytes: int = 0, kind: str | None = None) -> None:
        """Add or replace the row of one run (`record`: RunRecord.to_dict())."""
        self.put_many([(record, size_bytes, kind)])

    def put_many(self, rows: Iterable[tuple[dict[str, Any], int, "str | None"]]) -> int:
        values = [_row(record, size, kind) for record, size, kind in rows]
        if not values:
            return 0
        conn = self.connect()
        with _transaction(conn):
            conn.executemany("INSERT OR REPLACE INTO runs (id, kind, created_us, owner, source, status, case_name, "
                             "size_bytes, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        return len(values)

    def remove(self, run_ids: Iterable[str]) -> int:
        ids = [(run_id,) for run_id in run_ids]
        if not ids:
            return 0
        conn = self.connect()
        with _transaction(conn):
            before = conn.total_changes
            conn.executemany("DELETE FROM runs WHERE id = ?", ids)
            return conn.total_changes - before

    def clear(self) -> None:
        conn = self.connect()
        with _transaction(conn):
            conn.execute("DELETE FROM runs")

    # -- reading -----------------------------------------------------------------------------------

    def ids(self, include_active: bool = True) -> set[str]:
        query = "SELECT id FROM runs" if include_active else (
            f"SELECT id FROM runs WHERE status NOT IN ({_marks(ACTIVE_STATUSES)})")
        return {row[0] for row in self.connect().execute(query, () if include_active else ACTIVE_STATUSES)}

    def count(self) -> int:
        return self.connect().execute("SELECT count(*) FROM runs").fetchone()[0]

    def get(self, run_id: str) -> dict[str, Any] | None:
        row = self.connect().execute("SELECT record FROM runs WHERE id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def page(self, limit: int | None, before: str | None = None, *, source: str | None = None,
             owner: str | None = None, owners: "Sequence[str] | None" = None, status: str | None = None,
             text: str | None = None, since_us: int | None = None, until_us: int | None = None,
             kind: str | None = DEFAULT_KIND) -> tuple[list[dict[str, Any]], str | None]:
        """Records (dicts) newest first, and the next cursor. `owners`: only runs of these owners (who
        may see what); `text`: case-insensitive part of the case name; `since_us` / `until_us`: created
        in [since, until). `limit` None: every match."""
        where, args = [], []
        for column, value in (("kind", kind), ("source", source), ("owner", owner), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if owners is not None:
            owners = sorted(set(owners))
            if not owners:
                return [], None
            where.append(f"owner IN ({_marks(owners)})")
            args.extend(owners)
        if text:
            escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("case_name LIKE ? ESCAPE '\\'")
            args.append(f"%{escaped}%")
        if since_us is not None:
            where.append("created_us >= ?")
            args.append(since_us)
        if until_us is not None:
            where.append("created_us < ?")
            args.append(until_us)
        if before is not None:
            key_us, key_id = parse_cursor(before)
            if key_id == before:            # a bare run id: its row's creation time, when it has a row
                row = self.connect().execute("SELECT created_us FROM runs WHERE id = ?", (key_id,)).fetchone()
                key_us = row[0] if row else key_us
            where.append("(created_us, id) < (?, ?)")       # a row value: an index range, not a scan
            args.extend((key_us, key_id))
        query = "SELECT record, created_us, id FROM runs"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY created_us DESC, id DESC"
        if limit is not None:
            query += " LIMIT ?"
            args.append(int(limit) + 1)
        rows = self.connect().execute(query, args).fetchall()
        more = limit is not None and len(rows) > limit
        if more:
            rows = rows[:limit]
        next_cursor = f"{rows[-1][1]}.{rows[-1][2]}" if more and rows else None
        return [json.loads(row[0]) for row in rows], next_cursor

    def retention_candidates(self, older_than_us: int | None = None,
                             limit: int | None = None) -> list[tuple[str, int, int]]:
        """(id, created µs, size) of runs that may be removed (not queued or running), oldest first:
        those created before `older_than_us`, at most `limit`."""
        query = f"SELECT id, created_us, size_bytes FROM runs WHERE status NOT IN ({_marks(ACTIVE_STATUSES)})"
        args: list[Any] = list(ACTIVE_STATUSES)
        if older_than_us is not None:
            query += " AND created_us < ?"
            args.append(older_than_us)
        query += " ORDER BY created_us, id"
        if limit is not None:
            query += " LIMIT ?"
            args.append(limit)
        return self.connect().execute(query, args).fetchall()

    def total_size(self) -> int:
        return self.connect().execute("SELECT coalesce(sum(size_bytes), 0) FROM runs").fetchone()[0]


class _transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection: the write lock is taken
    at the start, so two writers never deadlock upgrading read locks."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: Any, *rest: Any) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


def _row(record: dict[str, Any], size: int, kind: str | None) -> tuple:
    return (record["id"], kind or record.get("kind") or DEFAULT_KIND, created_us(record.get("created")),
            record.get("owner") or "", record.get("source") or "", record.get("status") or "",
            record.get("case_name") or "", int(size or 0),
            json.dumps(record, allow_nan=False, ensure_ascii=False, separators=(",", ":")))


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" * len(values))
