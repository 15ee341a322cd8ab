"""The SQL every state store backend shares (SQLite, PostgreSQL): `SqlStateStore` implements `StateStore` once
(the queue, leases and the dead-letter list here; commits in `commits.py`; the read-only queries in `reads.py`;
connections, transactions and migrations in `plumbing.py`). A backend supplies the
connection, how a transaction begins and the few places where isolation differs:

- `skip_locked` / `for_update`: row locks on the runs a statement takes (PostgreSQL `FOR UPDATE [SKIP LOCKED]`;
  SQLite needs none: a write transaction there is `BEGIN IMMEDIATE`, one writer at a time);
- `_serialize(cur, locks)`: wait for a lock per (kind, name) until the transaction ends (catalog commits of one
  table, commits of the same content, migrations); `_claim(...)`: the same without waiting;
- `_announce(cur)` and `_wait_change(...)`: waking idle workers when work is queued or runs end (`_notify`).

Every change to a leased run is guarded by its holder and status, and its row count is checked: a worker whose
lease was taken back gets `LeaseLost` and changes nothing.

The queue *is* the runs table: a run with status `queued` is a queue entry; leasing it sets `running`, the
worker and a lease deadline that heartbeats push forward; acking it sets a final status. A run and its queue
entry can therefore never disagree, and a crash at any point leaves every file in exactly one visible state.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from landfall.errors import ConcurrentChange, LeaseLost, NoSuchRun
from landfall.events import ObjectCreated
from landfall.processes import process_gone
from landfall.state.base import MAX_INTERRUPTIONS, Run, StateStore, new_id
from landfall.state.commits import SqlCommits
from landfall.state.plumbing import LOCK_KEY, LOCK_ORDER, LOCK_TABLE, insert_many
from landfall.state.reads import CHUNK, DEAD_LETTER, RUN_COLUMNS, RUN_FROM, chunks, marks, run_from_row

# a queued run `r` that may run now: no version of its file is running (two versions of one file never run
# together) and no older version is waiting (versions run in the order they were discovered). Two lookups on
# `runs_key (file_key, status)`, whatever the planner knows of the table.
_FREE = (
    "NOT EXISTS (SELECT 1 FROM runs b WHERE b.file_key = r.file_key AND b.status = 'running') "
    "AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.file_key = r.file_key AND b.status = 'queued' "
    "AND b.file_id < r.file_id)"
)


class SqlStateStore(SqlCommits, StateStore):
    """The SQL every backend shares: the queue here, commits in `SqlCommits`, reads in `SqlReads`, the plumbing in
    `SqlPlumbing`. Subclasses provide `_connection`, `_wait_change` and the dialect bits."""

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
        # in the order they landed (their ids are the queue's order, and that of the tables in order)
        unique = sorted({(e.key, e.size, e.mtime, e.etag): e for e in events}.values(), key=lambda e: (e.mtime, e.key))
        created: list[Run] = []
        for chunk in chunks(unique):  # one transaction per chunk keeps the write lock short
            created.extend(self._discover_chunk(chunk, route))
        return created

    def _discover_chunk(self, events: Sequence[ObjectCreated], route: Any) -> list[Run]:
        now = self.now()
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
        self,
        worker: str,
        *,
        limit: int,
        max_bytes: int,
        lease_seconds: float,
        limits: dict[str, int] | None = None,
        in_order: Sequence[str] = (),
        in_order_workflows: Sequence[str] = (),
    ) -> list[Run]:
        with self.transaction() as cur:
            now = self.now()  # once the transaction is open: a lease never starts before the end it waited for
            free, args = _FREE, [now]
            groups = {"table_name": sorted(set(in_order)), "workflow": sorted(set(in_order_workflows))}
            for column, names in groups.items():
                if names:  # of a table (a workflow) in order, only its first waiting run starts a batch, if it may
                    heads = self._heads(cur, column, names, now)
                    free += f" AND (r.{column} IS NULL OR r.{column} NOT IN ({marks(names)})"
                    free += f" OR r.run_id IN ({marks(heads)}))" if heads else ")"
                    args += [*names, *heads]
            cur.execute(
                f"SELECT r.workflow, r.table_name FROM runs r WHERE r.status = 'queued' AND r.available_at <= ? "
                f"AND {free} ORDER BY r.available_at, r.file_id LIMIT 1" + self.skip_locked,
                args,
            )
            first = cur.fetchone()
            if not first:
                return []
            workflow, table = first
            limit = min(limit, (limits or {}).get(workflow, limit))
            # the batch of a group in order: its runs in the order their files landed, none passed over
            turn = ("table_name", table) if table in groups["table_name"] else None
            turn = ("workflow", workflow) if workflow in groups["workflow"] else turn
            order, upto, bound = "r.available_at, r.file_id", "", []
            if turn:
                order, barrier = "r.file_id", self._barrier(cur, *turn, workflow, now)
                upto, bound = ("AND r.file_id < ? ", [barrier]) if barrier is not None else ("", [])
            cur.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.status = 'queued' AND r.available_at <= ? "
                f"AND r.workflow = ? AND {_FREE} {upto}ORDER BY {order} LIMIT ?" + self.skip_locked,
                (now, workflow, *bound, limit * 2),
            )
            candidates = [run_from_row(row) for row in cur.fetchall()]
            # two versions of one file never run together, nor two batches of a table in order: claim the keys
            # (and the table), then look at what runs (a new statement sees every lease committed before the claim)
            claimed = self._claim(cur, LOCK_KEY, sorted({r.file_key for r in candidates}))
            busy = self._running(cur, "file_key", claimed)
            # a table's claim is its name, as before hops had one (a host of an earlier release claims the same)
            order_key = turn[1] if turn and turn[0] == "table_name" else f"workflow {workflow}"
            if turn and (not self._claim(cur, LOCK_ORDER, [order_key]) or self._running(cur, *turn)):
                return []
            chosen = {r.run_id: r for r in _choose(candidates, claimed - busy, limit, max_bytes, turn is not None)}
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

    @staticmethod
    def _heads(cur: Any, column: str, names: list[str], now: float) -> list[str]:
        """The first waiting run (the earliest landed) of each of `names` (tables or workflows, by `column`) where
        it may run now: none of its group is running and it is not waiting for a retry. Index seeks on
        `runs_table (table_name, status, file_id)` and `runs_workflow_order (workflow, status, file_id)`."""
        cur.execute(
            f"SELECT r.run_id FROM runs r JOIN (SELECT v.column1 AS t, (SELECT min(b.file_id) FROM runs b "
            f"WHERE b.{column} = v.column1 AND b.status = 'queued') AS head FROM (VALUES "
            + ", ".join("(?)" for _ in names)
            + f") AS v) h ON r.{column} = h.t AND r.file_id = h.head AND r.status = 'queued' "
            f"WHERE r.available_at <= ? AND NOT EXISTS (SELECT 1 FROM runs b WHERE b.{column} = h.t "
            "AND b.status = 'running')",
            (*names, now),
        )
        return [row[0] for row in cur.fetchall()]

    @staticmethod
    def _barrier(cur: Any, column: str, name: str, workflow: str, now: float) -> int | None:
        """The earliest landed waiting run of a table (a workflow) in order that a batch of `workflow` stops
        before: one waiting for a retry, or another workflow's."""
        cur.execute(
            f"SELECT min(file_id) FROM runs WHERE {column} = ? AND status = 'queued' "
            "AND (available_at > ? OR workflow <> ?)",
            (name, now, workflow),
        )
        row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @staticmethod
    def _running(cur: Any, column: str, names: Iterable[str]) -> set[str]:
        """Those of `names` (file keys or tables, by `column`) that a running run has."""
        found: set[str] = set()
        for part in chunks(sorted(names)):
            cur.execute(
                f"SELECT DISTINCT {column} FROM runs WHERE status = 'running' AND {column} IN ({marks(part)})", part
            )
            found.update(r[0] for r in cur.fetchall())
        return found

    def heartbeat(self, worker: str, run_ids: Sequence[str], lease_seconds: float) -> list[str]:
        until = self.now() + lease_seconds
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
        self._requeue_held(run_ids, worker, self.now() + seconds)

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
            nxt = self._requeue(cur, run, max_attempts, self.now() + retry_in, attempt=run.attempt + 1)
            self._notify(cur)
            return nxt

    def _finish(
        self, cur: Any, run: Run, status: str, error: str, steps: list[dict[str, Any]] | None, content_hash: str | None
    ) -> None:
        cur.execute(
            "UPDATE runs SET status = ?, finished_at = ?, error = ?, steps = ?, lease_until = NULL "
            "WHERE run_id = ? AND status = ?",
            (status, self.now(), error, json.dumps(steps or []), run.run_id, run.status),
        )
        if cur.rowcount != 1:  # the row lock (or the one writer) makes this impossible: say so if it happens
            raise ConcurrentChange(f"run {run.run_id} changed while being recorded; retrying")
        if content_hash:
            cur.execute("UPDATE files SET content_hash = ? WHERE id = ?", (content_hash, run.file_id))

    def _requeue(
        self, cur: Any, run: Run, max_attempts: int, available_at: float, *, attempt: int, interruptions: int = 0
    ) -> Run:
        return self._requeue_many(cur, [(run, max_attempts, attempt)], available_at, interruptions=interruptions)[0]

    def _requeue_many(
        self,
        cur: Any,
        runs: Sequence[tuple[Run, int, int]],
        available_at: float,
        *,
        interruptions: int = 0,
        note: str | None = None,
    ) -> list[Run]:
        """A new queued run for each `(run, max_attempts, attempt)`: the same file version, one statement for all."""
        now = self.now()
        out = [
            Run(
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
                queued_at=now,
                available_at=available_at,
                interruptions=interruptions,
                note=note,
            )
            for run, _, attempt in runs
        ]
        cur.executemany(
            "INSERT INTO runs (run_id, file_id, file_key, workflow, table_name, status, attempt, max_attempts, "
            "queued_at, available_at, interruptions, note) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
            [
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
                    note,
                )
                for nxt, (_, max_attempts, _) in zip(out, runs, strict=True)
            ],
        )
        return out

    def _next_attempts(self, cur: Any, runs: Sequence[tuple[Run, int]], note: str | None = None) -> list[Run]:
        """Each `(run, max_attempts)` queued again now as its next attempt (given one more try if it had used
        them all), as `dlq retry` and a reload take a file again."""
        again = [(run, max(most, run.attempt + 1), run.attempt + 1) for run, most in runs]
        return self._requeue_many(cur, again, self.now(), note=note)

    def reap(self, now: float | None = None, *, max_interruptions: int = MAX_INTERRUPTIONS) -> list[Run]:
        now = self.now() if now is None else now
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
                        f"`{run.file_key}`: the worker died {'once' if times == 1 else f'{times} times'} while "
                        "loading this file (last: "
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
        now = self.now()
        if next_at is not None and next_at <= now:
            return True
        wait = timeout if next_at is None else min(timeout, next_at - now)
        return self._wait_change(token, max(0.0, wait)) or (next_at is not None and self.now() >= next_at)

    # --- leases on work that is not a run --------------------------------------------------------------------

    def hold(self, name: str, holder: str, seconds: float) -> bool:
        now = self.now()
        with self.transaction(single=True) as cur:
            cur.execute(
                "INSERT INTO leases (name, holder, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET holder = excluded.holder, until = excluded.until "
                "WHERE leases.holder = excluded.holder OR leases.until < ?",
                (name, holder, now + seconds, now),
            )
            return cur.rowcount == 1

    def renew(self, name: str, holder: str, seconds: float) -> bool:
        now = self.now()
        with self.transaction(single=True) as cur:
            cur.execute(
                "UPDATE leases SET until = ? WHERE name = ? AND holder = ? AND until >= ?",
                (now + seconds, name, holder, now),
            )
            return cur.rowcount == 1

    def let_go(self, name: str, holder: str) -> None:
        with self.transaction(single=True) as cur:
            cur.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))

    def _dead_ids(self, cur: Any, run_ids: Sequence[str] | None) -> list[str]:
        cur.execute(f"SELECT r.run_id FROM runs r WHERE {DEAD_LETTER}")
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
        with self.transaction() as cur:
            ids = self._dead_ids(cur, run_ids)
            taken: set[str] = set()
            for chunk in chunks(ids):  # what another retry took meanwhile is not taken again
                cur.execute(
                    f"UPDATE runs SET purged = 1 WHERE run_id IN ({marks(chunk)}) AND purged = 0 RETURNING run_id",
                    tuple(chunk),
                )
                taken.update(r[0] for r in cur.fetchall())
            found = _runs_with_attempts(cur, [rid for rid in ids if rid in taken])
            out = self._next_attempts(cur, [found[rid] for rid in ids if rid in found])
            if out:
                self._notify(cur)
            return out

    def reload(self, file_ids: Sequence[int], note: str) -> list[Run]:
        with self.transaction() as cur:
            return self._reload(cur, file_ids, note)

    def _reload(self, cur: Any, file_ids: Iterable[int], note: str) -> list[Run]:
        """Queue each file's version again (its latest run, unless that is queued or running), with `note`; a dead
        run is taken off the dead-letter list, as `retry_dead` takes it. A few statements for any number."""
        latest: dict[int, Any] = {}
        for chunk in chunks(sorted(set(file_ids))):
            cur.execute(
                f"SELECT {RUN_COLUMNS}, r.max_attempts FROM {RUN_FROM} WHERE r.file_id IN ({marks(chunk)}) "
                "ORDER BY r.file_id, r.queued_at DESC, r.run_id DESC",
                tuple(chunk),
            )
            for row in cur.fetchall():
                latest.setdefault(row[1], row)  # the first of each file's: its latest run
        again = [
            (run_from_row(row[:-1]), row[-1] or 1)
            for _, row in sorted(latest.items())
            if row[4] not in ("queued", "running")
        ]
        if not again:
            return []
        cur.executemany(
            "UPDATE runs SET purged = 1 WHERE run_id = ?", [(run.run_id,) for run, _ in again if run.status == "dead"]
        )
        out = self._next_attempts(cur, again, note)
        self._notify(cur)
        return out

    def drop_tables(self, names: Sequence[str], note: str) -> list[Run]:
        with self.transaction() as cur:
            self._serialize(cur, [(LOCK_TABLE, list(names))])
            cur.execute(  # a catalog rebuilt from the folders knows a row's landed file by its key alone (id 0)
                "SELECT DISTINCT CASE WHEN s.file_id > 0 THEN s.file_id "
                "ELSE (SELECT max(f.id) FROM files f WHERE f.key = s.source_key) END "
                f"FROM table_file_sources s WHERE s.table_name IN ({marks(names)})",
                tuple(names),
            )
            file_ids = [r[0] for r in cur.fetchall() if r[0] is not None]
            cur.execute(  # and the newest version of each file loaded into them (its rows may all have lost to
                # other files' in a merge table) or that died loading them (under a new layout, say)
                f"SELECT r.file_id FROM runs r WHERE r.table_name IN ({marks(names)}) "
                "AND (r.status = 'succeeded' OR (r.status = 'dead' AND r.purged = 0)) "
                "AND r.file_id = (SELECT max(f.id) FROM files f WHERE f.key = r.file_key)",
                tuple(names),
            )
            file_ids += [r[0] for r in cur.fetchall()]
            for table in ("table_file_sources", "table_files", "table_schemas"):
                cur.execute(f"DELETE FROM {table} WHERE table_name IN ({marks(names)})", tuple(names))
            cur.execute(f"DELETE FROM tables WHERE name IN ({marks(names)})", tuple(names))
            return self._reload(cur, file_ids, note)

    def reroute(self, route: Any, workflows: Collection[Any] | None = None) -> list[Run]:
        with self.transaction(write=False) as cur:
            cur.execute(
                "SELECT r.run_id, r.file_key, r.status, NULL, NULL, NULL FROM runs r WHERE r.status = 'unrouted' "
                "AND r.file_id = (SELECT max(f.id) FROM files f WHERE f.key = r.file_key)"
            )
            rows = cur.fetchall()
            if workflows is not None:  # queued for a workflow that no longer takes their file, or writes elsewhere
                cur.execute(
                    "SELECT r.run_id, r.file_key, r.status, r.workflow, r.table_name, r.max_attempts FROM runs r "
                    "WHERE r.status = 'queued'"
                )
                rows += cur.fetchall()
        current = {wf.name: wf for wf in workflows or ()}
        found, moved = [], []  # what changes; what changes workflow (or is queued), which is returned
        for rid, key, status, was, table, attempts in rows:
            wf = route(key)
            if (wf.name if wf else None) != was:
                found.append((rid, status, wf))
                moved.append(rid)
            elif (same := current.get(was)) and (table, attempts) != (same.write.table, same.retry.max_attempts):
                found.append((rid, status, same))  # the same workflow: the table and attempts it has now
        if not found:
            return []
        now = self.now()
        by_workflow: dict[tuple[str, Any, Any, Any], list[str]] = {}
        for rid, status, wf in found:
            to = (wf.name, wf.write.table, wf.retry.max_attempts) if wf else (None, None, None)
            by_workflow.setdefault((status, *to), []).append(rid)
        with self.transaction() as cur:
            for (status, name, table, attempts), rids in by_workflow.items():
                for chunk in chunks(rids):
                    if name is None:  # its workflow is gone and none matches its file now
                        cur.execute(
                            "UPDATE runs SET status = 'unrouted', finished_at = ?, error = 'no workflow matches `' || "
                            "file_key || '` now (it was queued for workflow `' || workflow || '`); add a workflow "
                            f"whose `match` covers it' WHERE run_id IN ({marks(chunk)}) AND status = 'queued'",
                            (now, *chunk),
                        )
                        continue
                    cur.execute(
                        "UPDATE runs SET status = 'queued', workflow = ?, table_name = ?, max_attempts = ?, "
                        "queued_at = CASE WHEN status = 'unrouted' THEN ? ELSE queued_at END, "
                        "available_at = CASE WHEN status = 'unrouted' THEN ? ELSE available_at END, "
                        f"finished_at = NULL, error = NULL WHERE run_id IN ({marks(chunk)}) AND status = ?",
                        (name, table, attempts, now, now, *chunk, status),
                    )
                    cur.execute(
                        "UPDATE files SET workflow = ? "
                        f"WHERE id IN (SELECT file_id FROM runs WHERE run_id IN ({marks(chunk)}))",
                        (name, *chunk),
                    )
            self._notify(cur)
            now_are = _runs_with_attempts(cur, moved)
        return [now_are[rid][0] for rid in moved if rid in now_are]

    def purge_dead(self, run_ids: Sequence[str] | None) -> int:
        with self.transaction() as cur:
            ids = self._dead_ids(cur, run_ids)
            cur.executemany("UPDATE runs SET purged = 1 WHERE run_id = ?", [(i,) for i in ids])
            return len(ids)


def _runs_with_attempts(cur: Any, run_ids: Sequence[str]) -> dict[str, tuple[Run, int]]:
    """Runs by id, each with its `max_attempts`: one query per thousand."""
    out: dict[str, tuple[Run, int]] = {}
    for chunk in chunks(list(run_ids)):
        cur.execute(f"SELECT {RUN_COLUMNS}, r.max_attempts FROM {RUN_FROM} WHERE r.run_id IN ({marks(chunk)})", chunk)
        for row in cur.fetchall():
            out[row[0]] = (run_from_row(row[:-1]), row[-1] or 1)
    return out


def _choose(candidates: list[Run], free_keys: set[str], limit: int, max_bytes: int, in_turn: bool = False) -> list[Run]:
    """The batch to lease from candidates in queue order: one version per file (the older first), within
    `limit` and `max_bytes` (but at least one run); a run whose worker died before goes alone, so a file that
    kills its worker takes no other file down with it. `in_turn`: the candidates are in the order their files
    landed and none is passed over (the batch ends at the first that cannot be taken)."""
    chosen: list[Run] = []
    seen: set[str] = set()
    total = 0
    for run in candidates:
        if run.file_key in seen or run.file_key not in free_keys:
            if in_turn:
                break
            seen.add(run.file_key)
            continue
        seen.add(run.file_key)
        if run.interruptions:
            if not chosen:
                return [run]
            if in_turn:
                break
            continue
        if chosen and (len(chosen) >= limit or total + run.size > max_bytes):
            break
        chosen.append(run)
        total += run.size
    return chosen
