"""The SQL every state store backend shares (SQLite, PostgreSQL): `SqlStateStore` implements `StateStore` once
(the queue, commits, leases and migrations here; the read-only queries in `reads.py`). A backend supplies the
connection, how a transaction begins and the few places where isolation differs:

- `skip_locked` / `for_update`: row locks on the runs a statement takes (PostgreSQL `FOR UPDATE [SKIP LOCKED]`;
  SQLite needs none: a write transaction there is `BEGIN IMMEDIATE`, one writer at a time);
- `_serialize(cur, locks)`: wait for a lock per (kind, name) until the transaction ends (catalog commits of one
  table, commits of the same content, migrations); `_claim(...)`: the same without waiting;
- `_notify(cur)` and `_wait_change(...)`: waking idle workers when work is queued.

Every change to a leased run is guarded by its holder and status, and its row count is checked: a worker whose
lease was taken back gets `LeaseLost` and changes nothing.

The queue *is* the runs table: a run with status `queued` is a queue entry; leasing it sets `running`, the
worker and a lease deadline that heartbeats push forward; acking it sets a final status. A run and its queue
entry can therefore never disagree, and a crash at any point leaves every file in exactly one visible state.
"""

from __future__ import annotations

import itertools
import json
import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from typing import Any

from landfall.errors import ConcurrentChange, ContentRace, LeaseLost, NoSuchRun, StateLost
from landfall.events import ObjectCreated
from landfall.redaction import redact
from landfall.state.base import (
    MAX_INTERRUPTIONS,
    Run,
    RunResult,
    StateStore,
    TableCommit,
    new_id,
    process_gone,
)
from landfall.state.migrations import LATEST, MIGRATIONS, MIGRATIONS_TABLE
from landfall.state.reads import CHUNK, RUN_COLUMNS, RUN_FROM, SqlReads, chunks, marks, run_from_row

# kinds of named locks (`_serialize`, `_claim`)
LOCK_MIGRATE, LOCK_TABLE, LOCK_CONTENT, LOCK_KEY = 1, 2, 3, 4

# a queued run `r` that may run now: no version of its file is running (two versions of one file never run
# together) and no older version is waiting (versions run in the order they were discovered). Two lookups on
# `runs_key (file_key, status)`, whatever the planner knows of the table.
_FREE = (
    "NOT EXISTS (SELECT 1 FROM runs b WHERE b.file_key = r.file_key AND b.status = 'running') "
    "AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.file_key = r.file_key AND b.status = 'queued' "
    "AND b.file_id < r.file_id)"
)


class SqlStateStore(SqlReads, StateStore):
    """The SQL every backend shares. Subclasses provide `_connection`, `_wait_change` and the dialect bits."""

    param = "?"  # the driver's placeholder; statements here are written with `?`
    ddl: dict[str, str] = {}  # migration placeholders (`{id}`)
    skip_locked = ""  # appended to a SELECT of queued runs to lease: lock them, skip those others lock
    for_update = ""  # appended to a SELECT of runs about to change: lock them until the transaction ends
    driver_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, url: str) -> None:
        self.url = url
        self._migrate()

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
        """Wake idle workers (of every process) when this transaction commits: work was queued."""

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
        try:
            with self._connection() as conn:
                cur = conn.cursor()
                try:
                    self._begin(cur, write=write, single=single)
                    yield _Cursor(cur, self._sql)
                except BaseException:
                    with suppress(Exception):
                        conn.rollback()
                    raise
                else:
                    conn.commit()
                finally:
                    with suppress(Exception):
                        cur.close()
        except self.driver_errors as exc:
            translated = self._translate(exc)
            if translated is None:
                raise
            raise translated from exc

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

    # --- load history and queue ------------------------------------------------------------------------------

    def unknown(self, events: Iterable[ObjectCreated]) -> list[ObjectCreated]:
        out: list[ObjectCreated] = []
        stream = iter(events)
        with self.transaction(write=False) as cur:
            while chunk := list(itertools.islice(stream, CHUNK)):
                keys = sorted({e.key for e in chunk})
                cur.execute(f"SELECT key, size, mtime, etag FROM files WHERE key IN ({marks(keys)})", keys)
                have = {(k, int(s), float(m), e) for k, s, m, e in cur.fetchall()}
                out.extend(e for e in chunk if (e.key, e.size, e.mtime, e.etag) not in have)
        return out

    def discover(self, events: Sequence[ObjectCreated], route: Any) -> list[Run]:
        unique = list({(e.key, e.size, e.mtime, e.etag): e for e in events}.values())
        created: list[Run] = []
        for chunk in chunks(unique):  # one transaction per chunk keeps the write lock short
            created.extend(self._discover_chunk(chunk, route))
        return created

    def _discover_chunk(self, events: Sequence[ObjectCreated], route: Any) -> list[Run]:
        now = time.time()
        flows = {e.key: route(e.key) for e in events}
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO files (key, size, mtime, etag, discovered_at, workflow) VALUES "
                + ", ".join("(?, ?, ?, ?, ?, ?)" for _ in events)
                + " ON CONFLICT (key, size, mtime, etag) DO NOTHING RETURNING id, key, size, mtime, etag",
                [
                    v
                    for e in events
                    for v in (e.key, e.size, e.mtime, e.etag, now, flows[e.key].name if flows[e.key] else None)
                ],
            )
            ids = {(k, int(s), float(m), t): i for i, k, s, m, t in cur.fetchall()}  # new versions only
            created = []
            for ev in events:
                file_id = ids.get((ev.key, ev.size, ev.mtime, ev.etag))
                if file_id is None:  # known already (discovered by another process meanwhile)
                    continue
                wf = flows[ev.key]
                run = Run(
                    run_id=new_id(),
                    file_id=file_id,
                    file_key=ev.key,
                    workflow=wf.name if wf else None,
                    status="queued" if wf else "unrouted",
                    attempt=1,
                    size=ev.size,
                    mtime=ev.mtime,
                    etag=ev.etag,
                    table_name=wf.write.table if wf else None,
                    queued_at=now,
                    available_at=now,
                )
                if wf is None:
                    run.finished_at = now
                    run.error = f"no workflow matches `{ev.key}`; add a workflow whose `match` covers it"
                created.append((run, wf.retry.max_attempts if wf else None))
            insert_many(
                cur,
                "runs (run_id, file_id, file_key, workflow, table_name, status, attempt, max_attempts, queued_at, "
                "available_at, finished_at, error)",
                [
                    (r.run_id, r.file_id, r.file_key, r.workflow, r.table_name, r.status, 1, most, now, now)
                    + (r.finished_at, r.error)
                    for r, most in created
                ],
            )
            if any(r.status == "queued" for r, _ in created):
                self._notify(cur)
        return [r for r, _ in created]

    def lease(
        self, worker: str, *, limit: int, max_bytes: int, lease_seconds: float, limits: dict[str, int] | None = None
    ) -> list[Run]:
        now = time.time()
        with self.transaction() as cur:
            cur.execute(
                f"SELECT r.workflow FROM runs r WHERE r.status = 'queued' AND r.available_at <= ? AND {_FREE} "
                "ORDER BY r.available_at, r.file_id LIMIT 1" + self.skip_locked,
                (now,),
            )
            first = cur.fetchone()
            if not first:
                return []
            limit = min(limit, (limits or {}).get(first[0], limit))
            cur.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.status = 'queued' AND r.available_at <= ? "
                f"AND r.workflow = ? AND {_FREE} ORDER BY r.available_at, r.file_id LIMIT ?" + self.skip_locked,
                (now, first[0], limit * 2),
            )
            candidates = [run_from_row(row) for row in cur.fetchall()]
            # two versions of one file never run together: claim the keys, then look at what runs (a new
            # statement sees every lease committed before the claim)
            claimed = self._claim(cur, LOCK_KEY, sorted({r.file_key for r in candidates}))
            busy: set[str] = set()
            for keys in chunks(sorted(claimed)):
                cur.execute(
                    f"SELECT DISTINCT file_key FROM runs WHERE status = 'running' AND file_key IN ({marks(keys)})",
                    keys,
                )
                busy.update(r[0] for r in cur.fetchall())
            chosen = {r.run_id: r for r in _choose(candidates, claimed - busy, limit, max_bytes)}
            if not chosen:
                return []
            batch = new_id("b")
            cur.execute(
                "UPDATE runs SET status = 'running', worker = ?, batch_id = ?, started_at = ?, lease_until = ? "
                f"WHERE run_id IN ({marks(chosen)}) AND status = 'queued' RETURNING run_id",
                (worker, batch, now, now + lease_seconds, *chosen),
            )
            taken = {r[0] for r in cur.fetchall()}
            for run in chosen.values():
                run.status, run.worker, run.batch_id, run.started_at = "running", worker, batch, now
            return [run for rid, run in chosen.items() if rid in taken]

    def heartbeat(self, worker: str, run_ids: Sequence[str], lease_seconds: float) -> list[str]:
        until = time.time() + lease_seconds
        held: set[str] = set()
        with self.transaction() as cur:
            for chunk in chunks(sorted(run_ids)):
                cur.execute(
                    f"UPDATE runs SET lease_until = ? WHERE run_id IN ({marks(chunk)}) AND worker = ? "
                    "AND status = 'running' RETURNING run_id",
                    (until, *chunk, worker),
                )
                held.update(r[0] for r in cur.fetchall())
        return [rid for rid in run_ids if rid not in held]

    def release(self, worker: str, run_ids: Sequence[str]) -> None:
        self._requeue_held(run_ids, worker, None)

    def defer(self, run_ids: Sequence[str], seconds: float, *, worker: str | None = None) -> None:
        self._requeue_held(run_ids, worker, time.time() + seconds)

    def _requeue_held(self, run_ids: Sequence[str], worker: str | None, available_at: float | None) -> None:
        if not run_ids:
            return
        guard = " AND worker = ?" if worker else ""
        with self.transaction() as cur:
            for chunk in chunks(sorted(run_ids)):
                cur.execute(
                    "UPDATE runs SET status = 'queued', worker = NULL, batch_id = NULL, started_at = NULL, "
                    "lease_until = NULL, available_at = COALESCE(?, available_at) "
                    f"WHERE run_id IN ({marks(chunk)}) AND status = 'running'{guard}",
                    (available_at, *chunk, *([worker] if worker else [])),
                )
            self._notify(cur)

    def fail(
        self,
        run_id: str,
        error: str,
        *,
        retry_in: float | None,
        steps: list[dict[str, Any]] | None = None,
        content_hash: str | None = None,
        worker: str | None = None,
    ) -> Run | None:
        with self.transaction() as cur:
            cur.execute(
                f"SELECT {RUN_COLUMNS}, r.max_attempts FROM {RUN_FROM} WHERE r.run_id = ?{self.for_update}", (run_id,)
            )
            row = cur.fetchone()
            if row is None:
                raise NoSuchRun(f"no run `{run_id}`")
            run, max_attempts = run_from_row(row[:-1]), row[-1] or 1
            if worker is not None and (run.status != "running" or run.worker != worker):
                raise LeaseLost(f"run {run_id} of `{run.file_key}` is no longer held by `{worker}`; not recorded")
            if run.status not in ("running", "queued"):
                return None
            final = retry_in is None or run.attempt >= max_attempts
            self._finish(cur, run, "dead" if final else "failed", error, steps, content_hash)
            if final:
                return None
            nxt = self._requeue(cur, run, max_attempts, time.time() + retry_in, attempt=run.attempt + 1)
            self._notify(cur)
            return nxt

    def _finish(
        self, cur: Any, run: Run, status: str, error: str, steps: list[dict[str, Any]] | None, content_hash: str | None
    ) -> None:
        cur.execute(
            "UPDATE runs SET status = ?, finished_at = ?, error = ?, steps = ?, lease_until = NULL "
            "WHERE run_id = ? AND status = ?",
            (status, time.time(), error, json.dumps(steps or []), run.run_id, run.status),
        )
        if cur.rowcount != 1:  # the row lock (or the one writer) makes this impossible: say so if it happens
            raise ConcurrentChange(f"run {run.run_id} changed while being recorded; retrying")
        if content_hash:
            cur.execute("UPDATE files SET content_hash = ? WHERE id = ?", (content_hash, run.file_id))

    def _requeue(
        self, cur: Any, run: Run, max_attempts: int, available_at: float, *, attempt: int, interruptions: int = 0
    ) -> Run:
        nxt = Run(
            run_id=new_id(),
            file_id=run.file_id,
            file_key=run.file_key,
            workflow=run.workflow,
            status="queued",
            attempt=attempt,
            size=run.size,
            mtime=run.mtime,
            etag=run.etag,
            table_name=run.table_name,
            queued_at=time.time(),
            available_at=available_at,
            interruptions=interruptions,
        )
        cur.execute(
            "INSERT INTO runs (run_id, file_id, file_key, workflow, table_name, status, attempt, "
            "max_attempts, queued_at, available_at, interruptions) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
            (
                nxt.run_id,
                nxt.file_id,
                nxt.file_key,
                nxt.workflow,
                nxt.table_name,
                nxt.attempt,
                max_attempts,
                nxt.queued_at,
                available_at,
                interruptions,
            ),
        )
        return nxt

    def reap(self, now: float | None = None, *, max_interruptions: int = MAX_INTERRUPTIONS) -> list[Run]:
        now = time.time() if now is None else now
        workers = [r[0] for r in self._query("SELECT DISTINCT worker FROM runs WHERE status = 'running'") if r[0]]
        gone = [w for w in workers if process_gone(w)]
        lost: list[Run] = []
        with self.transaction() as cur:
            cur.execute(
                f"SELECT {RUN_COLUMNS}, r.max_attempts FROM {RUN_FROM} WHERE r.status = 'running' AND "
                f"(r.lease_until < ?{f' OR r.worker IN ({marks(gone)})' if gone else ''}) "
                "ORDER BY r.run_id" + self.skip_locked,
                (now, *gone),
            )
            for row in cur.fetchall():
                run, max_attempts = run_from_row(row[:-1]), row[-1] or 1
                times = run.interruptions + 1
                why = "exited" if run.worker in gone else "stopped (lease expired)"
                if times >= max_interruptions:
                    error = (
                        f"`{run.file_key}`: the worker died {times} times while loading this file (last: "
                        f"`{run.worker}` {why}); it may crash workers (memory, a native library): look at the "
                        "file, then `landfall dlq retry`"
                    )
                    self._finish(cur, run, "dead", error, None, None)
                else:
                    error = (
                        f"worker `{run.worker}` {why} while running; queued again, not counted as an attempt "
                        f"(interruption {times} of {max_interruptions})"
                    )
                    self._finish(cur, run, "failed", error, None, None)
                    self._requeue(cur, run, max_attempts, now, attempt=run.attempt, interruptions=times)
                lost.append(run)
            if lost:
                self._notify(cur)
        return lost

    def pending(self) -> bool:
        rows = self._query(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM runs WHERE status = 'queued') "
            "OR EXISTS (SELECT 1 FROM runs WHERE status = 'running')"
        )
        return bool(rows)

    def wait_for_work(self, timeout: float) -> bool:
        token = self._change_token()
        rows = self._query(
            f"SELECT r.available_at FROM runs r WHERE r.status = 'queued' AND {_FREE} ORDER BY r.available_at LIMIT 1"
        )
        next_at = rows[0][0] if rows else None
        now = time.time()
        if next_at is not None and next_at <= now:
            return True
        wait = timeout if next_at is None else min(timeout, next_at - now)
        return self._wait_change(token, max(0.0, wait)) or (next_at is not None and time.time() >= next_at)

    # --- commits ---------------------------------------------------------------------------------------------

    def check_content(self, results: Sequence[RunResult]) -> None:
        with self.transaction(write=False) as cur:
            self._check_held(cur, results)
            self._check_content(cur, results)

    def _check_held(self, cur: Any, results: Sequence[RunResult]) -> None:
        by_worker: dict[str, list[str]] = {}
        for res in results:
            if res.worker is not None:
                by_worker.setdefault(res.worker, []).append(res.run_id)
        for worker, ids in by_worker.items():
            for chunk in chunks(ids):
                cur.execute(
                    f"SELECT run_id FROM runs WHERE run_id IN ({marks(chunk)}) AND status = 'running' AND worker = ?",
                    (*chunk, worker),
                )
                lost = set(chunk) - {r[0] for r in cur.fetchall()}
                if lost:
                    raise LeaseLost(f"run {min(lost)} is no longer held by `{worker}`; its work is dropped")

    def _check_content(self, cur: Any, results: Sequence[RunResult]) -> None:
        """Raise `ContentRace` if another file with the same bytes was loaded meanwhile."""
        loaded = [r for r in results if r.status == "succeeded" and r.content_hash]
        if not loaded:
            return
        marks = ", ".join("?" for _ in loaded)
        cur.execute(f"SELECT workflow, file_id FROM runs WHERE run_id IN ({marks})", [r.run_id for r in loaded])
        found = cur.fetchall()
        workflow, mine = found[0][0], {file_id for _, file_id in found}
        dups = self._duplicates(cur, workflow, {r.content_hash: r.run_id for r in loaded})
        for run in dups.values():
            if run.file_id not in mine:  # an earlier load of the same file version (loaded again) is no race
                raise ContentRace(f"`{run.file_key}` with the same content committed first")

    def commit(self, table: TableCommit | None, results: Sequence[RunResult], also: Sequence[TableCommit] = ()) -> None:
        now = time.time()
        commits = ([table] if table is not None else []) + list(also)
        with self.transaction() as cur:
            # one lock order (content, then tables, then runs by id): concurrent commits never deadlock
            self._serialize(
                cur,
                [
                    (LOCK_CONTENT, [r.content_hash for r in results if r.content_hash]),
                    (LOCK_TABLE, [tc.table for tc in commits]),
                ],
            )
            self._check_content(cur, results)  # same bytes committed by another worker meanwhile
            for tc in commits:
                self._apply_table_commit(cur, tc, now)
            ordered = sorted(results, key=lambda r: r.run_id)
            for guarded in (True, False):
                batch = [r for r in ordered if bool(r.worker) == guarded]
                for part in chunks(batch, 200):
                    self._record_results(cur, part, now, guarded)
            hashed = [(res.run_id, res.content_hash) for res in ordered if res.content_hash]
            for part in chunks(hashed, 500):
                cur.execute(
                    f"UPDATE files SET content_hash = v.column2 FROM (VALUES {rows_of(part)}) AS v, runs "
                    "WHERE runs.run_id = v.column1 AND files.id = runs.file_id",
                    [x for pair in part for x in pair],
                )
            if results:  # a file's next version, or a `process` waiting for the queue to drain, may go on
                self._notify(cur)

    def _record_results(self, cur: Any, results: Sequence[RunResult], now: float, guarded: bool) -> None:
        """Final results of running runs, in one statement; `LeaseLost` (the commit rolls back) if any run is no
        longer running (or, `guarded`, no longer held by its result's worker)."""
        values = [
            (
                res.run_id,
                res.status,
                res.rows_in,
                res.rows_out,
                res.bytes,
                json.dumps(res.output_files),
                res.note,
                json.dumps(res.steps),
                res.rows_quarantined,
                json.dumps(res.quality) if res.quality else None,
                *([res.worker] if guarded else []),
            )
            for res in results
        ]
        cur.execute(  # VALUES columns are column1, column2, ... in both dialects; CAST types the all-NULL ones
            "UPDATE runs SET status = v.column2, finished_at = ?, rows_in = CAST(v.column3 AS BIGINT), "
            "rows_out = CAST(v.column4 AS BIGINT), bytes = CAST(v.column5 AS BIGINT), output_files = v.column6, "
            "note = v.column7, steps = v.column8, lease_until = NULL, error = NULL, "
            "rows_quarantined = CAST(v.column9 AS BIGINT), quality = v.column10 "
            f"FROM (VALUES {rows_of(values)}) AS v WHERE runs.run_id = v.column1 AND runs.status = 'running'"
            + (" AND runs.worker = v.column11" if guarded else ""),
            [now, *(x for row in values for x in row)],
        )
        if cur.rowcount != len(results):  # one was taken back meanwhile: the whole commit rolls back
            self._check_held(cur, results)
            raise LeaseLost(f"a run of this commit ({results[0].run_id}, ...) is no longer running; dropped")

    def _apply_table_commit(self, cur: Any, tc: TableCommit, now: float) -> None:
        schema_json = json.dumps(tc.schema)
        first_run = tc.sources[0].run_id if tc.sources else None
        cur.execute("SELECT schema, schema_version FROM tables WHERE name = ?", (tc.table,))
        row = cur.fetchone()
        if row is None:
            cur.execute(
                "INSERT INTO tables (name, location, format, workflow, schema, schema_version, "
                "partition_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
                (tc.table, tc.location, tc.format, tc.workflow, schema_json, json.dumps(tc.partition_by), now, now),
            )
            cur.execute(
                "INSERT INTO table_schemas (table_name, version, schema, run_id, created_at) VALUES (?, 1, ?, ?, ?)",
                (tc.table, schema_json, first_run, now),
            )
        else:
            version = row[1]
            if json.loads(row[0]) != [list(c) for c in tc.schema]:
                version += 1
                cur.execute(
                    "INSERT INTO table_schemas (table_name, version, schema, run_id, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (tc.table, version, schema_json, first_run, now),
                )
            cur.execute(
                "UPDATE tables SET schema = ?, schema_version = ?, partition_by = ?, updated_at = ?, "
                "workflow = ? WHERE name = ? AND schema_version = ?",
                (schema_json, version, json.dumps(tc.partition_by), now, tc.workflow, tc.table, row[1]),
            )
            if cur.rowcount != 1:  # the table lock makes this impossible: say so if it happens
                raise ConcurrentChange(f"table `{tc.table}` was changed by another commit; retrying")
        if tc.exact:
            cur.execute("SELECT path FROM table_files WHERE table_name = ?", (tc.table,))
            have = {r[0] for r in cur.fetchall()}
            want = {f.path for f in tc.add}
            for path in sorted(have - want):
                cur.execute("DELETE FROM table_files WHERE table_name = ? AND path = ?", (tc.table, path))
                cur.execute("DELETE FROM table_file_sources WHERE table_name = ? AND path = ?", (tc.table, path))
            tc = replace(
                tc, add=[f for f in tc.add if f.path not in have], sources=[s for s in tc.sources if s.path not in have]
            )
        for path in tc.remove:
            cur.execute("DELETE FROM table_files WHERE table_name = ? AND path = ?", (tc.table, path))
            if cur.rowcount != 1:
                raise ConcurrentChange(f"table `{tc.table}`: `{path}` was changed by another commit; retrying")
            cur.execute("DELETE FROM table_file_sources WHERE table_name = ? AND path = ?", (tc.table, path))
        insert_many(
            cur,
            "table_files (table_name, path, partition, rows, bytes, commit_id, added_at)",
            [(tc.table, f.path, json.dumps(f.partition), f.rows, f.bytes, tc.commit_id, now) for f in tc.add],
        )
        insert_many(
            cur,
            "table_file_sources (table_name, path, source_key, file_id, run_id, rows)",
            [(tc.table, s.path, s.source_key, s.file_id, s.run_id, s.rows) for s in tc.sources],
        )

    # --- leases on work that is not a run --------------------------------------------------------------------

    def hold(self, name: str, holder: str, seconds: float) -> bool:
        now = time.time()
        with self.transaction(single=True) as cur:
            cur.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, until = excluded.until "
                "WHERE leases.holder = excluded.holder OR leases.until < ?",
                (name, holder, now + seconds, now),
            )
            return cur.rowcount == 1

    def let_go(self, name: str, holder: str) -> None:
        with self.transaction(single=True) as cur:
            cur.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def _dead_ids(self, cur: Any, run_ids: Sequence[str] | None) -> list[str]:
        cur.execute("SELECT run_id FROM runs WHERE status = 'dead' AND purged = 0")
        dead = [r[0] for r in cur.fetchall()]
        if run_ids is None:
            return dead
        known = set(dead)
        missing = [rid for rid in run_ids if rid not in known]
        if missing:
            raise NoSuchRun(
                f"not on the dead-letter list: {', '.join(f'`{m}`' for m in missing)}; see `landfall dlq list`"
            )
        return list(dict.fromkeys(run_ids))

    def retry_dead(self, run_ids: Sequence[str] | None) -> list[Run]:
        now = time.time()
        with self.transaction() as cur:
            out = []
            for rid in self._dead_ids(cur, run_ids):
                cur.execute(f"SELECT {RUN_COLUMNS}, r.max_attempts FROM {RUN_FROM} WHERE r.run_id = ?", (rid,))
                row = cur.fetchone()
                run = run_from_row(row[:-1])
                cur.execute("UPDATE runs SET purged = 1 WHERE run_id = ? AND purged = 0", (rid,))
                if cur.rowcount != 1:  # retried by someone else meanwhile
                    continue
                out.append(self._requeue(cur, run, max(row[-1] or 1, run.attempt + 1), now, attempt=run.attempt + 1))
            if out:
                self._notify(cur)
            return out

    def reload(self, file_ids: Sequence[int], note: str) -> list[Run]:
        now = time.time()
        out = []
        with self.transaction() as cur:
            for file_id in sorted(set(file_ids)):
                cur.execute(
                    f"SELECT {RUN_COLUMNS}, r.max_attempts FROM {RUN_FROM} WHERE r.file_id = ? "
                    "ORDER BY r.queued_at DESC, r.run_id DESC LIMIT 1",
                    (file_id,),
                )
                row = cur.fetchone()
                if row is None or row[4] in ("queued", "running"):
                    continue
                run = run_from_row(row[:-1])
                nxt = self._requeue(cur, run, max(row[-1] or 1, run.attempt + 1), now, attempt=run.attempt + 1)
                cur.execute("UPDATE runs SET note = ? WHERE run_id = ?", (note, nxt.run_id))
                nxt.note = note
                out.append(nxt)
            if out:
                self._notify(cur)
        return out

    def purge_dead(self, run_ids: Sequence[str] | None) -> int:
        with self.transaction() as cur:
            ids = self._dead_ids(cur, run_ids)
            cur.executemany("UPDATE runs SET purged = 1 WHERE run_id = ?", [(i,) for i in ids])
            return len(ids)


def rows_of(rows: Sequence[Sequence[Any]]) -> str:
    """`(?, ?), (?, ?)`: placeholders for rows of a multi-row VALUES list."""
    return ", ".join(f"({marks(row)})" for row in rows)


def insert_many(cur: Any, into: str, rows: Sequence[Sequence[Any]]) -> None:
    """INSERT rows with multi-row VALUES, a few hundred per statement (not one statement per row)."""
    for part in chunks(rows, 300):
        cur.execute(f"INSERT INTO {into} VALUES {rows_of(part)}", [x for row in part for x in row])


def _choose(candidates: list[Run], free_keys: set[str], limit: int, max_bytes: int) -> list[Run]:
    """The batch to lease from candidates in queue order: one version per file (the older first), within
    `limit` and `max_bytes` (but at least one run); a run whose worker died before goes alone, so a file that
    kills its worker takes no other file down with it."""
    chosen: list[Run] = []
    seen: set[str] = set()
    total = 0
    for run in candidates:
        if run.file_key in seen or run.file_key not in free_keys:
            seen.add(run.file_key)
            continue
        seen.add(run.file_key)
        if run.interruptions:
            if not chosen:
                return [run]
            continue
        if chosen and (len(chosen) >= limit or total + run.size > max_bytes):
            break
        chosen.append(run)
        total += run.size
    return chosen


class _Cursor:
    """A cursor that rewrites `?` placeholders for the backend's paramstyle."""

    def __init__(self, cur: Any, sql: Any) -> None:
        self._cur, self._sqlf = cur, sql

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
