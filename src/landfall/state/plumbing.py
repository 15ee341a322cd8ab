"""The plumbing every SQL state store shares (SQLite, PostgreSQL): one transaction over a DB-API connection, the
driver's placeholders (statements are written with `?`), the hooks where a backend's isolation differs (named
locks, waking idle workers), the schema migrations, and multi-row statements."""

from __future__ import annotations

import threading
import time
from abc import ABCMeta, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from landfall.errors import StateLost
from landfall.redaction import redact
from landfall.state.migrations import LATEST, MIGRATIONS, MIGRATIONS_TABLE
from landfall.state.reads import chunks, marks

# kinds of named locks (`_serialize`, `_claim`)
LOCK_MIGRATE, LOCK_TABLE, LOCK_CONTENT, LOCK_KEY, LOCK_ORDER = 1, 2, 3, 4, 5


class Wakeups:
    """A count of wake-ups and the condition idle workers sleep on: `bump` adds one; `wait(token, seconds)` is
    True once the count is no longer `token` (a token is `count`, read before looking for work)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.count = 0

    def bump(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait(self, token: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        with self._cond:
            while self.count == token:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True


class SqlPlumbing(metaclass=ABCMeta):
    """Connections, transactions and migrations. Subclasses provide `_connection`, `_wait_change` and the dialect
    bits. (Not an `ABC` subclass: it comes before `SqlReads` in a store's bases, and `SqlReads` before
    `StateStore`.)"""

    param = "?"  # the driver's placeholder; statements here are written with `?`
    ddl: dict[str, str] = {}  # migration placeholders (`{id}`)
    skip_locked = ""  # appended to a SELECT of queued runs to lease: lock them, skip those others lock
    for_update = ""  # appended to a SELECT of runs about to change: lock them until the transaction ends
    driver_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: str) -> None:
        self.url = url
        self._open = threading.local()  # `depth`: transactions this thread has open
        self._migrate()

    def _in_transaction(self) -> bool:
        """Whether this thread is inside one of this store's transactions."""
        return getattr(self._open, "depth", 0) > 0

    # --- plumbing --------------------------------------------------------------------------------------------

    @abstractmethod
    def _connection(self) -> AbstractContextManager[Any]:
        """A DB-API connection for one transaction (`commit`/`rollback` end it)."""

    def _begin(self, cur: Any, *, write: bool = True, single: bool = False) -> None:
        """Begin a transaction (drivers that begin implicitly need nothing); `single`: it is one statement, which
        a backend may run on its own (atomic by itself, without BEGIN and COMMIT round trips)."""

    def _translate(self, exc: BaseException) -> BaseException | None:
        """A landfall error for a driver error (None: raise it as it is)."""
        return None

    def _serialize(self, cur: Any, locks: Sequence[tuple[int, Sequence[str]]]) -> None:
        """Hold a lock on each (kind, name) until the transaction ends (waiting for other holders), taken in the
        order of `locks` (and of the names, sorted, within a kind)."""

    def _claim(self, cur: Any, kind: int, names: Sequence[str]) -> set[str]:
        """Take the lock on each name no other transaction holds; the names taken."""
        return set(names)

    def _notify(self, cur: Any) -> None:
        """Wake idle workers (of every process) when this transaction commits: work was queued, or runs ended (a
        `process` waiting for the queue to drain may go on). Writes that change neither (a lease that found
        nothing, a heartbeat) wake nobody: idle workers would otherwise wake each other for ever."""
        cur.woke = True
        self._announce(cur)

    def _announce(self, cur: Any) -> None:
        """Tell other processes' idle workers, as part of this transaction (PostgreSQL: `NOTIFY`; SQLite's idle
        workers poll the database's `data_version` instead)."""

    def _committed(self) -> None:
        """A transaction of this process that called `_notify` committed: wake this process's idle workers now,
        without waiting for a poll or the server's round trip."""

    @abstractmethod
    def _change_token(self) -> Any:
        """Something that changes when the store may have new work (compared by `_wait_change`)."""

    @abstractmethod
    def _wait_change(self, token: Any, seconds: float) -> bool:
        """Wait up to `seconds` for the store to change since `token`; True if it did."""

    def _sql(self, text: str) -> str:
        return text if self.param == "?" else text.replace("%", "%%").replace("?", self.param)

    @contextmanager
    def transaction(self, *, write: bool = True, single: bool = False) -> Iterator[Any]:
        """A transaction; `write=False` for reads, which then never wait for (or hold) the write lock; `single`
        for a write of one statement (see `_begin`)."""
        self._open.depth = getattr(self._open, "depth", 0) + 1
        try:
            with self._connection() as conn:
                cur = conn.cursor()
                wrapped = _Cursor(cur, self._sql)
                try:
                    self._begin(cur, write=write, single=single)
                    yield wrapped
                except BaseException:
                    with suppress(Exception):
                        conn.rollback()
                    raise
                else:
                    conn.commit()
                    if wrapped.woke:
                        self._committed()
                finally:
                    with suppress(Exception):
                        cur.close()
        except self.driver_errors as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            raise translated from exc
        finally:
            self._open.depth -= 1

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.transaction(write=False) as cur:
            cur.execute(text, params)
            return cur.fetchall()

    def _migrate(self) -> None:
        with self.transaction() as cur:
            self._serialize(cur, [(LOCK_MIGRATE, ["schema"])])
            cur.execute(MIGRATIONS_TABLE)
            cur.execute("SELECT max(version) FROM schema_migrations")
            have = cur.fetchone()[0] or 0
            if have > LATEST:
                raise StateLost(
                    f"state database `{self.display_url}` has schema version {have}, made by a newer landfall; "
                    f"this one knows versions up to {LATEST}: upgrade landfall"
                )
            for version, about, statements in MIGRATIONS:
                if version <= have:
                    continue
                for stmt in statements:
                    if callable(stmt):
                        stmt(cur)
                    else:
                        cur.execute(stmt.format(**self.ddl))
                cur.execute(
                    "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                    (version, about, time.time()),
                )

    def schema_version(self) -> int:
        return int(self._query("SELECT max(version) FROM schema_migrations")[0][0] or 0)

    @property
    def display_url(self) -> str:
        """The URL without a password, for messages."""
        return redact(self.url)


def rows_of(rows: Sequence[Sequence[Any]]) -> str:
    """`(?, ?), (?, ?)`: placeholders for rows of a multi-row VALUES list."""
    return ", ".join(f"({marks(row)})" for row in rows)


def insert_many(cur: Any, into: str, rows: Sequence[Sequence[Any]]) -> None:
    """INSERT rows with multi-row VALUES, a few hundred per statement (not one statement per row)."""
    for part in chunks(rows, 300):
        cur.execute(f"INSERT INTO {into} VALUES {rows_of(part)}", [x for row in part for x in row])


class _Cursor:
    """A cursor that rewrites `?` placeholders for the backend's paramstyle."""

    def __init__(self, cur: Any, sql: Any) -> None:
        self._cur, self._sqlf = cur, sql
        self.woke = False  # the transaction called `_notify`: idle workers are woken when it commits

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(self._sqlf(text), tuple(params))

    def executemany(self, text: str, seq: Sequence[Sequence[Any]]) -> Any:
        seq = [tuple(p) for p in seq]
        if seq:
            self._cur.executemany(self._sqlf(text), seq)

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()
