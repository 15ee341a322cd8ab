"""The SQL every state store backend shares (SQLite now, PostgreSQL next): the tables, and `SqlStateStore`, which
implements `StateStore` with them. A backend supplies the connection, how to begin a transaction and the
dialect's bits only.

The queue *is* the runs table: a run with status `queued` is a queue entry; leasing it sets `running`, the
worker and a lease deadline that heartbeats push forward; acking it sets a final status. A run and its queue
entry can therefore never disagree, and a crash at any point leaves every file in exactly one visible state.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from landfall.errors import ConcurrentChange, ContentRace, NoSuchRun, NoSuchTable
from landfall.events import ObjectCreated
from landfall.state.base import (
    RUN_STATUSES,
    DataFile,
    Run,
    RunResult,
    SourceRows,
    StateStore,
    Table,
    TableCommit,
    iso_time,
    new_id,
)

DDL = [
    """CREATE TABLE IF NOT EXISTS files (
        id INTEGER PRIMARY KEY {autoinc}, key TEXT NOT NULL, size BIGINT NOT NULL, mtime DOUBLE PRECISION NOT NULL,
        etag TEXT NOT NULL DEFAULT '', content_hash TEXT, discovered_at DOUBLE PRECISION NOT NULL,
        workflow TEXT, UNIQUE (key, size, mtime, etag))""",
    "CREATE INDEX IF NOT EXISTS files_hash ON files (workflow, content_hash)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, file_id INTEGER NOT NULL REFERENCES files(id), file_key TEXT NOT NULL,
        workflow TEXT, table_name TEXT, status TEXT NOT NULL, attempt INTEGER NOT NULL, max_attempts INTEGER,
        queued_at DOUBLE PRECISION, available_at DOUBLE PRECISION, started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION, lease_until DOUBLE PRECISION, worker TEXT, batch_id TEXT,
        rows_in BIGINT, rows_out BIGINT, bytes BIGINT, output_files TEXT, error TEXT, note TEXT, steps TEXT,
        purged INTEGER NOT NULL DEFAULT 0, rows_quarantined BIGINT, quality TEXT)""",
    "CREATE INDEX IF NOT EXISTS runs_queue ON runs (status, available_at)",
    "CREATE INDEX IF NOT EXISTS runs_file ON runs (file_id)",
    "CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow, status)",
    "CREATE INDEX IF NOT EXISTS runs_newest ON runs (queued_at, run_id)",
    "CREATE INDEX IF NOT EXISTS runs_finished ON runs (finished_at)",
    """CREATE TABLE IF NOT EXISTS tables (
        name TEXT PRIMARY KEY, location TEXT NOT NULL, format TEXT NOT NULL, workflow TEXT, schema TEXT NOT NULL,
        schema_version INTEGER NOT NULL, partition_by TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS table_schemas (
        table_name TEXT NOT NULL, version INTEGER NOT NULL, schema TEXT NOT NULL, run_id TEXT,
        created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (table_name, version))""",
    """CREATE TABLE IF NOT EXISTS table_files (
        table_name TEXT NOT NULL, path TEXT NOT NULL, partition TEXT NOT NULL, rows BIGINT NOT NULL,
        bytes BIGINT NOT NULL, commit_id TEXT, added_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (table_name, path))""",
    """CREATE TABLE IF NOT EXISTS table_file_sources (
        table_name TEXT NOT NULL, path TEXT NOT NULL, source_key TEXT NOT NULL, file_id INTEGER NOT NULL,
        run_id TEXT NOT NULL, rows BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS tfs_path ON table_file_sources (table_name, path)",
    "CREATE INDEX IF NOT EXISTS tfs_key ON table_file_sources (table_name, source_key)",
    """CREATE TABLE IF NOT EXISTS leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, until DOUBLE PRECISION NOT NULL)""",
]

_RUN_COLUMNS = (
    "r.run_id, r.file_id, r.file_key, r.workflow, r.status, r.attempt, f.size, f.mtime, f.etag, "
    "f.content_hash, r.table_name, r.queued_at, r.available_at, r.started_at, r.finished_at, "
    "r.worker, r.batch_id, r.rows_in, r.rows_out, r.bytes, r.output_files, r.error, r.note, r.steps, "
    "r.rows_quarantined, r.quality"
)
_RUN_FROM = "runs r JOIN files f ON f.id = r.file_id"


def _run_from_row(row: Sequence[Any]) -> Run:
    (
        run_id,
        file_id,
        key,
        wf,
        status,
        attempt,
        size,
        mtime,
        etag,
        chash,
        table,
        queued,
        avail,
        started,
        finished,
        worker,
        batch,
        rows_in,
        rows_out,
        nbytes,
        outputs,
        error,
        note,
        steps,
        quarantined,
        quality,
    ) = row
    return Run(
        run_id=run_id,
        file_id=file_id,
        file_key=key,
        workflow=wf,
        status=status,
        attempt=attempt,
        size=size,
        mtime=mtime,
        etag=etag,
        content_hash=chash,
        table_name=table,
        queued_at=queued,
        available_at=avail,
        started_at=started,
        finished_at=finished,
        worker=worker,
        batch_id=batch,
        rows_in=rows_in,
        rows_out=rows_out,
        bytes=nbytes,
        output_files=json.loads(outputs or "[]"),
        error=error,
        note=note,
        steps=json.loads(steps or "[]"),
        rows_quarantined=quarantined,
        quality=json.loads(quality or "{}"),
    )


class SqlStateStore(StateStore):
    """The SQL every backend shares. Subclasses provide `_connect`, `_begin` and the dialect bits."""

    autoinc = ""
    param = "?"

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._all_conns: list[Any] = []
        self._conns_lock = threading.Lock()
        with self.transaction() as cur:
            for stmt in DDL:
                cur.execute(stmt.format(autoinc=self.autoinc))

    # --- plumbing --------------------------------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection."""

    def _begin(self, cur: Any, *, write: bool = True) -> None:
        cur.execute("BEGIN")

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def _sql(self, text: str) -> str:
        return text if self.param == "?" else text.replace("?", self.param)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Any]:
        """A transaction; `write=False` for reads, which then never wait for (or hold) the write lock."""
        conn = self._conn()
        cur = conn.cursor()
        self._begin(cur, write=write)
        try:
            yield _Cursor(cur, self._sql)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.transaction(write=False) as cur:
            cur.execute(text, params)
            return cur.fetchall()

    def close(self) -> None:
        with self._conns_lock:
            for conn in self._all_conns:
                try:
                    conn.close()
                except Exception:  # pragma: no cover - closing from another thread
                    pass
            self._all_conns.clear()
        self._local = threading.local()

    # --- load history and queue ------------------------------------------------------------------------------

    def known_versions(self) -> set[tuple[str, int, float, str]]:
        return {(k, s, m, e) for k, s, m, e in self._query("SELECT key, size, mtime, etag FROM files")}

    def discover(self, events: Sequence[ObjectCreated], route: Any) -> list[Run]:
        now = time.time()
        created: list[Run] = []
        with self.transaction() as cur:
            for ev in events:
                cur.execute(
                    "SELECT id FROM files WHERE key = ? AND size = ? AND mtime = ? AND etag = ?",
                    (ev.key, ev.size, ev.mtime, ev.etag),
                )
                if cur.fetchone():
                    continue
                wf = route(ev.key)
                cur.execute(
                    "INSERT INTO files (key, size, mtime, etag, discovered_at, workflow) "
                    "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (ev.key, ev.size, ev.mtime, ev.etag, now, wf.name if wf else None),
                )
                file_id = cur.fetchone()[0]
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
                cur.execute(
                    "INSERT INTO runs (run_id, file_id, file_key, workflow, table_name, status, attempt, "
                    "max_attempts, queued_at, available_at, finished_at, error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run.run_id,
                        file_id,
                        ev.key,
                        run.workflow,
                        run.table_name,
                        run.status,
                        1,
                        wf.retry.max_attempts if wf else None,
                        now,
                        now,
                        run.finished_at,
                        run.error,
                    ),
                )
                created.append(run)
        return created

    def lease(
        self, worker: str, *, limit: int, max_bytes: int, lease_seconds: float, limits: dict[str, int] | None = None
    ) -> list[Run]:
        now = time.time()
        with self.transaction() as cur:
            cur.execute(
                "SELECT r.workflow FROM runs r WHERE r.status = 'queued' AND r.available_at <= ? "
                "ORDER BY r.available_at, r.file_id LIMIT 1",
                (now,),
            )
            first = cur.fetchone()
            if not first:
                return []
            limit = min(limit, (limits or {}).get(first[0], limit))
            cur.execute(
                f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.status = 'queued' AND r.available_at <= ? "
                "AND r.workflow = ? AND r.file_key NOT IN (SELECT file_key FROM runs WHERE status = 'running') "
                "ORDER BY r.available_at, r.file_id LIMIT ?",
                (now, first[0], limit * 2),
            )
            candidates = [_run_from_row(row) for row in cur.fetchall()]
            chosen: list[Run] = []
            keys: set[str] = set()
            total = 0
            for run in candidates:
                if run.file_key in keys:  # two versions of one file never run together; the older goes first
                    continue
                if chosen and (len(chosen) >= limit or total + run.size > max_bytes):
                    break
                chosen.append(run)
                keys.add(run.file_key)
                total += run.size
            if not chosen:
                return []
            batch = new_id("b")
            for run in chosen:
                run.status, run.worker, run.batch_id, run.started_at = "running", worker, batch, now
            cur.executemany(
                "UPDATE runs SET status = 'running', worker = ?, batch_id = ?, started_at = ?, "
                "lease_until = ? WHERE run_id = ? AND status = 'queued'",
                [(worker, batch, now, now + lease_seconds, r.run_id) for r in chosen],
            )
            return chosen

    def heartbeat(self, worker: str, run_ids: Sequence[str], lease_seconds: float) -> None:
        until = time.time() + lease_seconds
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE runs SET lease_until = ? WHERE run_id = ? AND worker = ? AND status = 'running'",
                [(until, rid, worker) for rid in run_ids],
            )

    def release(self, worker: str, run_ids: Sequence[str]) -> None:
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE runs SET status = 'queued', worker = NULL, batch_id = NULL, started_at = NULL, "
                "lease_until = NULL WHERE run_id = ? AND worker = ? AND status = 'running'",
                [(rid, worker) for rid in run_ids],
            )

    def defer(self, run_ids: Sequence[str], seconds: float) -> None:
        at = time.time() + seconds
        with self.transaction() as cur:
            cur.executemany(
                "UPDATE runs SET status = 'queued', worker = NULL, batch_id = NULL, started_at = NULL, "
                "lease_until = NULL, available_at = ? WHERE run_id = ? AND status = 'running'",
                [(at, rid) for rid in run_ids],
            )

    def fail(
        self,
        run_id: str,
        error: str,
        *,
        retry_in: float | None,
        steps: list[dict[str, Any]] | None = None,
        content_hash: str | None = None,
    ) -> Run | None:
        with self.transaction() as cur:
            return self._fail(cur, run_id, error, retry_in=retry_in, steps=steps, content_hash=content_hash)

    def _fail(
        self,
        cur: Any,
        run_id: str,
        error: str,
        *,
        retry_in: float | None,
        steps: list[dict[str, Any]] | None,
        content_hash: str | None,
    ) -> Run | None:
        now = time.time()
        cur.execute(f"SELECT {_RUN_COLUMNS}, r.max_attempts FROM {_RUN_FROM} WHERE r.run_id = ?", (run_id,))
        row = cur.fetchone()
        if row is None or row[4] not in ("running", "queued"):
            return None
        run, max_attempts = _run_from_row(row[:-1]), row[-1] or 1
        final = retry_in is None or run.attempt >= max_attempts
        cur.execute(
            "UPDATE runs SET status = ?, finished_at = ?, error = ?, steps = ?, lease_until = NULL WHERE run_id = ?",
            ("dead" if final else "failed", now, error, json.dumps(steps or []), run_id),
        )
        if content_hash:
            cur.execute("UPDATE files SET content_hash = ? WHERE id = ?", (content_hash, run.file_id))
        if final:
            return None
        return self._requeue(cur, run, max_attempts, now + (retry_in or 0.0))

    def _requeue(self, cur: Any, run: Run, max_attempts: int, available_at: float) -> Run:
        nxt = Run(
            run_id=new_id(),
            file_id=run.file_id,
            file_key=run.file_key,
            workflow=run.workflow,
            status="queued",
            attempt=run.attempt + 1,
            size=run.size,
            mtime=run.mtime,
            etag=run.etag,
            table_name=run.table_name,
            queued_at=time.time(),
            available_at=available_at,
        )
        cur.execute(
            "INSERT INTO runs (run_id, file_id, file_key, workflow, table_name, status, attempt, "
            "max_attempts, queued_at, available_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
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
            ),
        )
        return nxt

    def check_content(self, results: Sequence[RunResult]) -> None:
        with self.transaction(write=False) as cur:
            self._check_content(cur, results)

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
        with self.transaction() as cur:
            self._check_content(cur, results)  # same bytes committed by another worker meanwhile
            for tc in ([table] if table is not None else []) + list(also):
                self._apply_table_commit(cur, tc, now)
            cur.executemany(
                "UPDATE runs SET status = ?, finished_at = ?, rows_in = ?, rows_out = ?, bytes = ?, "
                "output_files = ?, note = ?, steps = ?, lease_until = NULL, error = NULL, rows_quarantined = ?, "
                "quality = ? WHERE run_id = ?",
                [
                    (
                        res.status,
                        now,
                        res.rows_in,
                        res.rows_out,
                        res.bytes,
                        json.dumps(res.output_files),
                        res.note,
                        json.dumps(res.steps),
                        res.rows_quarantined,
                        json.dumps(res.quality) if res.quality else None,
                        res.run_id,
                    )
                    for res in results
                ],
            )
            cur.executemany(
                "UPDATE files SET content_hash = ? WHERE id = (SELECT file_id FROM runs WHERE run_id = ?)",
                [(res.content_hash, res.run_id) for res in results if res.content_hash],
            )

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
                "workflow = ? WHERE name = ?",
                (schema_json, version, json.dumps(tc.partition_by), now, tc.workflow, tc.table),
            )
        if tc.exact:
            cur.execute("SELECT path FROM table_files WHERE table_name = ?", (tc.table,))
            have = {r[0] for r in cur.fetchall()}
            want = {f.path for f in tc.add}
            for path in have - want:
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
        cur.executemany(
            "INSERT INTO table_files (table_name, path, partition, rows, bytes, commit_id, added_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(tc.table, f.path, json.dumps(f.partition), f.rows, f.bytes, tc.commit_id, now) for f in tc.add],
        )
        cur.executemany(
            "INSERT INTO table_file_sources (table_name, path, source_key, file_id, run_id, rows) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(tc.table, s.path, s.source_key, s.file_id, s.run_id, s.rows) for s in tc.sources],
        )

    def hold(self, name: str, holder: str, seconds: float) -> bool:
        now = time.time()
        with self.transaction() as cur:
            cur.execute("SELECT holder, until FROM leases WHERE name = ?", (name,))
            row = cur.fetchone()
            if row is not None and row[0] != holder and row[1] >= now:
                return False
            cur.execute("DELETE FROM leases WHERE name = ?", (name,))
            cur.execute("INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)", (name, holder, now + seconds))
            return True

    def let_go(self, name: str, holder: str) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def holders(self) -> set[str]:
        return {r[0] for r in self._query("SELECT holder FROM leases WHERE until >= ?", (time.time(),))}

    def reap(self, now: float | None = None) -> list[Run]:
        now = time.time() if now is None else now
        host = socket.gethostname()
        with self.transaction() as cur:
            cur.execute(f"SELECT {_RUN_COLUMNS}, r.lease_until FROM {_RUN_FROM} WHERE r.status = 'running'")
            rows = cur.fetchall()
            lost: list[Run] = []
            for row in rows:
                run, lease_until = _run_from_row(row[:-1]), row[-1]
                expired = lease_until is not None and lease_until < now
                if not expired and run.worker:
                    w_host, _, rest = run.worker.partition(":")
                    pid = rest.partition(":")[0]
                    expired = w_host == host and pid.isdigit() and not _pid_alive(int(pid))
                if expired:
                    lost.append(run)
            for run in lost:
                self._fail(
                    cur,
                    run.run_id,
                    f"worker `{run.worker}` stopped while running (lease expired); retrying",
                    retry_in=0.0,
                    steps=None,
                    content_hash=None,
                )
            return lost

    def find_duplicates(self, workflow: str, hashes: dict[str, int]) -> dict[str, Run]:
        with self.transaction(write=False) as cur:
            found = self._duplicates(cur, workflow, hashes)
        return {h: run for h, run in found.items() if run.file_id != hashes[h]}

    def _duplicates(self, cur: Any, workflow: str, hashes: dict[str, Any]) -> dict[str, Run]:
        """The first succeeded run per content hash, in one query per 500 hashes."""
        out: dict[str, Run] = {}
        keys = list(hashes)
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            cur.execute(
                f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE f.workflow = ? AND r.status = 'succeeded' "
                f"AND f.content_hash IN ({', '.join('?' for _ in chunk)}) ORDER BY r.finished_at",
                (workflow, *chunk),
            )
            for row in cur.fetchall():
                run = _run_from_row(row)
                out.setdefault(run.content_hash or "", run)
        return out

    # --- runs ------------------------------------------------------------------------------------------------

    def runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        key: str | None = None,
        limit: int | None = None,
        before: str | None = None,
    ) -> list[Run]:
        where, params = [], []
        for column, value in (("r.status", status), ("r.workflow", workflow), ("r.file_key", key)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None:  # keyset paging: the runs after this one in newest-first order
            where.append("(r.queued_at, r.run_id) < (SELECT queued_at, run_id FROM runs WHERE run_id = ?)")
            params.append(before)
        sql = f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM}"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.queued_at DESC, r.run_id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [_run_from_row(row) for row in self._query(sql, params)]

    _STATUS_SQL = {
        "runs": "SELECT r.run_id, r.file_key, r.file_id, r.workflow, r.table_name, r.status, r.attempt, "
        "r.queued_at, r.started_at, r.finished_at, r.rows_in, r.rows_out, coalesce(r.bytes, f.size), "
        "r.rows_quarantined, f.content_hash, r.error, r.note, r.worker, r.batch_id FROM runs r "
        "JOIN files f ON f.id = r.file_id",
        "files": "SELECT f.id, f.key, f.size, f.mtime, f.etag, f.content_hash, f.discovered_at, f.workflow, "
        "(SELECT r.status FROM runs r WHERE r.file_id = f.id ORDER BY r.attempt DESC LIMIT 1), "
        "(SELECT count(*) FROM runs r WHERE r.file_id = f.id) FROM files f",
    }

    def status_rows(self, name: str) -> list[tuple[Any, ...]]:
        return self._query(self._STATUS_SQL[name])

    def finished_since(self, since: float, limit: int = 200_000) -> list[tuple[Any, ...]]:
        rows = self._query(
            "SELECT r.workflow, r.status, r.finished_at, r.started_at, f.discovered_at, r.rows_out, "
            "coalesce(r.bytes, f.size), r.rows_quarantined FROM runs r JOIN files f ON f.id = r.file_id "
            "WHERE r.finished_at >= ? ORDER BY r.finished_at DESC LIMIT ?",
            (since, limit),
        )
        return rows[::-1]

    def backlog(self) -> list[tuple[Any, ...]]:
        return self._query(
            "SELECT workflow, status, count(*), min(queued_at) FROM runs WHERE status IN ('queued', 'running') "
            "GROUP BY workflow, status"
        )

    def dead_letter_count(self) -> int:
        return int(self._query("SELECT count(*) FROM runs WHERE status = 'dead' AND purged = 0")[0][0])

    def totals(self, after: float | None, until: float, buckets: Sequence[float]) -> list[tuple[Any, ...]]:
        cases = "".join(
            f", sum(CASE WHEN r.finished_at - r.started_at <= {float(b)!r} THEN 1 ELSE 0 END)" for b in buckets
        )
        where = "r.finished_at <= ?" + (" AND r.finished_at > ?" if after is not None else "")
        return self._query(
            "SELECT r.workflow, r.status, count(*), sum(r.rows_in), sum(r.rows_out), sum(coalesce(r.bytes, f.size)), "
            f"sum(r.rows_quarantined), sum(r.finished_at - r.started_at){cases} FROM runs r "
            f"JOIN files f ON f.id = r.file_id WHERE {where} AND r.status IN ('succeeded', 'failed', 'dead', "
            "'skipped', 'unrouted') GROUP BY r.workflow, r.status",
            (until,) if after is None else (until, after),
        )

    def run(self, run_id: str) -> Run:
        rows = self._query(f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.run_id = ?", (run_id,))
        if not rows:
            raise NoSuchRun(f"no run `{run_id}`; list runs with `landfall runs`")
        return _run_from_row(rows[0])

    def counts(self) -> dict[str, int]:
        found = dict(self._query("SELECT status, count(*) FROM runs GROUP BY status"))
        return {s: int(found.get(s, 0)) for s in RUN_STATUSES}

    def dead_runs(self) -> list[Run]:
        rows = self._query(
            f"SELECT {_RUN_COLUMNS} FROM {_RUN_FROM} WHERE r.status = 'dead' AND r.purged = 0 "
            "ORDER BY r.finished_at DESC"
        )
        return [_run_from_row(row) for row in rows]

    def _dead_ids(self, cur: Any, run_ids: Sequence[str] | None) -> list[str]:
        cur.execute("SELECT run_id FROM runs WHERE status = 'dead' AND purged = 0")
        dead = [r[0] for r in cur.fetchall()]
        if run_ids is None:
            return dead
        missing = [rid for rid in run_ids if rid not in dead]
        if missing:
            raise NoSuchRun(
                f"not on the dead-letter list: {', '.join(f'`{m}`' for m in missing)}; see `landfall dlq list`"
            )
        return list(run_ids)

    def retry_dead(self, run_ids: Sequence[str] | None) -> list[Run]:
        now = time.time()
        with self.transaction() as cur:
            out = []
            for rid in self._dead_ids(cur, run_ids):
                cur.execute(f"SELECT {_RUN_COLUMNS}, r.max_attempts FROM {_RUN_FROM} WHERE r.run_id = ?", (rid,))
                row = cur.fetchone()
                run = _run_from_row(row[:-1])
                cur.execute("UPDATE runs SET purged = 1 WHERE run_id = ?", (rid,))
                out.append(self._requeue(cur, run, max(row[-1] or 1, run.attempt + 1), now))
            return out

    def reload(self, file_ids: Sequence[int], note: str) -> list[Run]:
        now = time.time()
        out = []
        with self.transaction() as cur:
            for file_id in sorted(set(file_ids)):
                cur.execute(
                    f"SELECT {_RUN_COLUMNS}, r.max_attempts FROM {_RUN_FROM} WHERE r.file_id = ? "
                    "ORDER BY r.attempt DESC LIMIT 1",
                    (file_id,),
                )
                row = cur.fetchone()
                if row is None or row[4] in ("queued", "running"):
                    continue
                run = _run_from_row(row[:-1])
                nxt = self._requeue(cur, run, max(row[-1] or 1, run.attempt + 1), now)
                cur.execute("UPDATE runs SET note = ? WHERE run_id = ?", (note, nxt.run_id))
                nxt.note = note
                out.append(nxt)
        return out

    def purge_dead(self, run_ids: Sequence[str] | None) -> int:
        with self.transaction() as cur:
            ids = self._dead_ids(cur, run_ids)
            cur.executemany("UPDATE runs SET purged = 1 WHERE run_id = ?", [(i,) for i in ids])
            return len(ids)

    # --- catalog ---------------------------------------------------------------------------------------------

    def _table_from_row(self, row: Sequence[Any]) -> Table:
        (name, location, fmt, wf, schema, version, parts, created, updated, rows, files, nbytes) = row
        return Table(
            name=name,
            location=location,
            format=fmt,
            workflow=wf,
            schema=[tuple(c) for c in json.loads(schema)],
            schema_version=version,
            partition_by=json.loads(parts),
            created_at=created,
            updated_at=updated,
            row_count=int(rows or 0),
            file_count=int(files or 0),
            bytes=int(nbytes or 0),
        )

    _TABLE_SQL = (
        "SELECT t.name, t.location, t.format, t.workflow, t.schema, t.schema_version, t.partition_by, "
        "t.created_at, t.updated_at, (SELECT sum(rows) FROM table_files f WHERE f.table_name = t.name), "
        "(SELECT count(*) FROM table_files f WHERE f.table_name = t.name), "
        "(SELECT sum(bytes) FROM table_files f WHERE f.table_name = t.name) FROM tables t"
    )

    def tables(self) -> list[Table]:
        return [self._table_from_row(r) for r in self._query(self._TABLE_SQL + " ORDER BY t.name")]

    def table(self, name: str) -> Table:
        rows = self._query(self._TABLE_SQL + " WHERE t.name = ?", (name,))
        if not rows:
            known = ", ".join(f"`{t.name}`" for t in self.tables()) or "none yet"
            raise NoSuchTable(f"no table `{name}`; known tables: {known}")
        return self._table_from_row(rows[0])

    def table_files(self, name: str, paths: Sequence[str] | None = None) -> list[DataFile]:
        if paths is not None:
            marks = ", ".join("?" for _ in paths) or "NULL"
            rows = self._query(
                "SELECT path, rows, bytes, partition, commit_id FROM table_files WHERE table_name = ? "
                f"AND path IN ({marks}) ORDER BY path",
                (name, *paths),
            )
        else:
            rows = self._query(
                "SELECT path, rows, bytes, partition, commit_id FROM table_files WHERE table_name = ? ORDER BY path",
                (name,),
            )
        return [DataFile(path=p, rows=r, bytes=b, partition=json.loads(part), commit_id=c) for p, r, b, part, c in rows]

    def schema_versions(self, name: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT version, schema, run_id, created_at FROM table_schemas WHERE table_name = ? ORDER BY version",
            (name,),
        )
        return [
            {
                "version": v,
                "schema": [{"name": n, "type": t} for n, t in json.loads(s)],
                "run_id": r,
                "created_at": iso_time(c),
            }
            for v, s, r, c in rows
        ]

    def files_holding(self, table: str, source_keys: Sequence[str], exclude_file_ids: Sequence[int]) -> list[str]:
        if not source_keys:
            return []
        marks = ", ".join("?" for _ in source_keys)
        excl = ", ".join("?" for _ in exclude_file_ids) or "NULL"
        rows = self._query(
            f"SELECT DISTINCT path FROM table_file_sources WHERE table_name = ? AND source_key IN "
            f"({marks}) AND file_id NOT IN ({excl})",
            (table, *source_keys, *exclude_file_ids),
        )
        return [r[0] for r in rows]

    def file_sources(self, table: str, path: str) -> list[SourceRows]:
        rows = self._query(
            "SELECT path, source_key, file_id, run_id, rows FROM table_file_sources WHERE table_name = ? AND path = ?",
            (table, path),
        )
        return [SourceRows(*r) for r in rows]


class _Cursor:
    """A cursor that rewrites `?` placeholders for the backend's paramstyle."""

    def __init__(self, cur: Any, sql: Any) -> None:
        self._cur, self._sqlf = cur, sql

    def execute(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(self._sqlf(text), tuple(params))

    def executemany(self, text: str, seq: Sequence[Sequence[Any]]) -> Any:
        return self._cur.executemany(self._sqlf(text), [tuple(p) for p in seq])

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True
