"""Catalog commits, shared by every SQL state store: the results of a batch's runs and the table changes they made,
recorded in one transaction that refuses a run whose lease was taken back (`LeaseLost`) and a file whose bytes
another worker committed meanwhile (`ContentRace`). Locks are taken in one order (content, tables, runs by id),
so concurrent commits never deadlock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from msgspec.structs import replace

from landfall.errors import ConcurrentChange, ContentRace, LeaseLost
from landfall.schema import merged
from landfall.state.base import RunResult, TableCommit
from landfall.state.plumbing import LOCK_CONTENT, LOCK_TABLE, SqlPlumbing, insert_many, rows_of
from landfall.state.reads import SqlReads, chunks, marks


class SqlCommits(SqlPlumbing, SqlReads):
    """Commits of runs' results and table changes (the catalog)."""

    def check_content(self, results: Sequence[RunResult], *, lease_seconds: float) -> None:
        with self.transaction() as cur:
            self._check_held(cur, results, lease_seconds)
            self._check_content(cur, results)

    def _check_held(self, cur: Any, results: Sequence[RunResult], lease_seconds: float | None = None) -> None:
        """Raise `LeaseLost` unless each result's worker holds its run; with `lease_seconds`, renew those leases
        (as a heartbeat does; without, it names the run a failed commit found taken back)."""
        by_worker: dict[str, list[str]] = {}
        for res in results:
            if res.worker is not None:
                by_worker.setdefault(res.worker, []).append(res.run_id)
        held = "run_id IN ({}) AND status = 'running' AND worker = ?"
        for worker, ids in by_worker.items():
            for chunk in chunks(ids):
                if lease_seconds is None:
                    cur.execute(f"SELECT run_id FROM runs WHERE {held.format(marks(chunk))}", (*chunk, worker))
                else:
                    cur.execute(
                        f"UPDATE runs SET lease_until = ? WHERE {held.format(marks(chunk))} RETURNING run_id",
                        (self.now() + lease_seconds, *chunk, worker),
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
        supersede = any(r.supersedes for r in loaded)  # the runs of one commit are of one workflow
        dups = self._duplicates(cur, workflow, {r.content_hash: r.run_id for r in loaded}, supersede)
        for run in dups.values():
            if run.file_id not in mine:  # an earlier load of the same file version (loaded again) is no race
                raise ContentRace(f"`{run.file_key}` with the same content committed first")

    def commit(self, table: TableCommit | None, results: Sequence[RunResult], also: Sequence[TableCommit] = ()) -> None:
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
            now = self.now()  # once the locks are held: the times of one table's commits follow their order
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
        first_run = tc.sources[0].run_id if tc.sources else None
        cur.execute("SELECT schema, schema_version, updated_at FROM tables WHERE name = ?", (tc.table,))
        row = cur.fetchone()
        if tc.as_of is not None and (row[2] if row is not None else 0) != tc.as_of:
            raise ConcurrentChange(f"table `{tc.table}` was changed by another commit while it was read; reading again")
        if tc.schema_of is not None and (row[1] if row is not None else 0) != tc.schema_of:
            raise ConcurrentChange(f"table `{tc.table}`: its schema changed while this batch was held to it; again")
        if tc.read is not None and row is not None:
            cur.execute("SELECT path FROM table_files WHERE table_name = ?", (tc.table,))
            if added := sorted({r[0] for r in cur.fetchall()} - set(tc.read)):
                raise ConcurrentChange(f"table `{tc.table}`: `{added[0]}` was added by another commit; reading again")
        schema = tc.schema
        if row is not None and not tc.exact:  # grown from the table as the job read it: another commit may have
            # added or widened columns since
            schema = merged([tuple(c) for c in json.loads(row[0])], schema, to_text=tc.to_text)
        schema_json = json.dumps(schema)
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
            if json.loads(row[0]) != [list(c) for c in schema]:
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
            if tc.exact:  # read from the table where it is now (a lake copied or moved): the catalog follows it
                cur.execute(
                    "UPDATE tables SET location = ?, format = ? WHERE name = ?", (tc.location, tc.format, tc.table)
                )
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
