"""SQLite state store: the embedded default (WAL, one connection per thread, `BEGIN IMMEDIATE` writes)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from landfall.state.sql import SqlStateStore


class SqliteStateStore(SqlStateStore):
    autoinc = "AUTOINCREMENT"

    def __init__(self, url: str) -> None:
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(url)

    def _connect(self) -> Any:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")
        # autocommit mode (isolation_level=None): transactions are begun explicitly below
        return _Conn(conn)

    def _begin(self, cur: Any, *, write: bool = True) -> None:
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")


class _Conn:
    """sqlite3 in autocommit mode with explicit BEGIN; commit/rollback issue the statements."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def cursor(self) -> sqlite3.Cursor:
        return self._conn.cursor()

    def commit(self) -> None:
        self._conn.execute("COMMIT")

    def rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def close(self) -> None:
        self._conn.close()
