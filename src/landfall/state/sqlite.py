"""SQLite state store: the embedded default.

WAL journal, one connection per thread, write transactions `BEGIN IMMEDIATE` (one writer at a time, so the
shared SQL needs no row locks here). Idle workers poll `PRAGMA data_version`, which changes when another
connection commits: a few microseconds every 100 ms, no query over the runs; a commit of this process that queues
work or ends runs wakes them at once.

The database file is watched: deleted or replaced under a running landfall (another inode at the path), the
store raises `StateLost` naming the path instead of writing on into a file nobody will read again.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from landfall.errors import StateLost, StateUnavailable, denied
from landfall.state.plumbing import Wakeups
from landfall.state.sql import SqlStateStore
from landfall.storage.local import flush

POLL_SECONDS = 0.1


class SqliteStateStore(SqlStateStore):
    ddl = {"id": "INTEGER PRIMARY KEY AUTOINCREMENT"}
    driver_errors = (sqlite3.Error,)

    def __init__(self, url: str) -> None:
        path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url.removeprefix("sqlite://")
        self.path = path
        self._local = threading.local()
        # weak: a thread's connection closes when the thread ends (each `process` call starts new workers)
        self._all_conns: weakref.WeakSet[_Conn] = weakref.WeakSet()
        self._conns_lock = threading.Lock()
        self._identity: tuple[int, int] | None = None
        self._wakeups = Wakeups()  # this process's commits that wake (`_committed`)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(url)
        if path != ":memory:":
            st = os.stat(path)
            self._identity = (st.st_dev, st.st_ino)

    @property
    def display_url(self) -> str:
        return self.path

    def sync(self) -> None:
        """With `synchronous=NORMAL` a commit reaches the write-ahead log's file but is flushed to disk only at the
        next checkpoint; flushing the log's file puts every commit so far on disk (SQLite replays it on open).
        Without one, every commit is in the database file, flushed when its checkpoint completed."""
        if self.path == ":memory:":
            return
        with suppress(FileNotFoundError):
            flush(f"{self.path}-wal")

    # --- connections -----------------------------------------------------------------------------------------

    def _connect(self) -> _Conn:
        conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=60000")
        # autocommit mode (isolation_level=None): transactions are begun explicitly (`_begin`)
        return _Conn(conn)

    def _thread_conn(self) -> _Conn:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.add(conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[_Conn]:
        self._check_file()
        yield self._thread_conn()

    def _begin(self, cur: Any, *, write: bool = True, single: bool = False) -> None:
        cur.execute("BEGIN IMMEDIATE" if write else "BEGIN DEFERRED")  # in-process: a BEGIN costs no round trip

    def _check_file(self) -> None:
        """Stop at once if the database file was deleted or replaced since it was opened."""
        if self._identity is None:
            return
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise StateLost(
                f"state database `{self.path}` was deleted while landfall was running; stop every landfall "
                "process on this lake before starting again (a new state database would load every landed file "
                "again)"
            ) from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise StateLost(
                f"state database `{self.path}` was replaced by another file while landfall was running; stop "
                "every landfall process on this lake, then start again on the file that should be there"
            )

    def _translate(self, exc: BaseException) -> BaseException | None:
        if isinstance(exc, sqlite3.IntegrityError):
            return None
        text = str(exc)
        where = f"state database `{self.path}`"
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            return StateLost(
                f"{where} is corrupt ({text}); stop landfall, move the file aside and restore a copy (starting "
                "over with none loads every landed file again)"
            )
        if "full" in text:
            return StateUnavailable(f"{where}: the disk is full ({text}); free space and landfall carries on")
        if "locked" in text or "busy" in text:
            return StateUnavailable(f"{where} stayed locked by another process for 60 s ({text}); retrying")
        if "unable to open" in text or "disk I/O" in text or "readonly" in text:
            if (why := self._denied()) is not None:  # waited on until someone fixes it, so say what to fix
                return StateUnavailable(f"{where} cannot be read or written: {why}")
            return StateUnavailable(f"{where} cannot be read or written ({text})")
        return None

    def _denied(self) -> str | None:
        """What landfall's user may not do with the database or its folder (SQLite writes its journal beside the
        file), or None."""
        folder = os.path.dirname(os.path.abspath(self.path))
        for path, mode in ((folder, os.W_OK | os.X_OK), (self.path, os.R_OK | os.W_OK)):
            if os.path.exists(path) and not os.access(path, mode):
                return denied(PermissionError(13, "Permission denied", path))
        return None

    # --- waiting for work ------------------------------------------------------------------------------------

    def _committed(self) -> None:
        self._wakeups.bump()

    def _change_token(self) -> Any:
        return self._wakeups.count, self._data_version()

    def _data_version(self) -> int:
        return self._thread_conn().raw.execute("PRAGMA data_version").fetchone()[0]

    def _wait_change(self, token: Any, seconds: float) -> bool:
        count, version = token
        deadline = time.monotonic() + seconds
        while True:  # this process's commits wake at once; other processes' are seen at the next poll
            left = deadline - time.monotonic()
            if self._wakeups.wait(count, max(0.0, min(POLL_SECONDS, left))) or self._data_version() != version:
                return True
            if left <= 0:
                return False

    def close(self) -> None:
        with self._conns_lock:
            for conn in list(self._all_conns):
                try:
                    conn.close()
                except Exception:  # pragma: no cover - closing from another thread
                    pass
            self._all_conns = weakref.WeakSet()
        self._local = threading.local()


class _Conn:
    """sqlite3 in autocommit mode with explicit BEGIN; commit/rollback issue the statements."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.raw = conn

    def cursor(self) -> sqlite3.Cursor:
        return self.raw.cursor()

    def commit(self) -> None:
        self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    def __del__(self) -> None:
        # A thread's connection is dropped when the thread ends. sqlite3's own statement cache makes each connection
        # a reference cycle, so without this it stayed open (its file handles, its WAL) until the cyclic garbage
        # collector ran, and its last checkpoint could write into a database file replaced since.
        try:
            self.raw.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass
