"""The read-only SQL every state store backend shares: runs (paged, newest first), the dead-letter list, the
catalog, duplicates by content, and the status queries the server and its metrics read. `SqlStateStore`
(`sql.py`) mixes it in; it needs only `_query` and `transaction`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from landfall.errors import NoSuchRun, NoSuchTable
from landfall.events import ObjectCreated
from landfall.state.base import RUN_STATUSES, DataFile, Run, SourceRows, Table, iso_time
from landfall.types import column_json

CHUNK = 500  # rows per statement for long lists (SQLite allows 32766 parameters)

RUN_COLUMNS = (
    "r.run_id, r.file_id, r.file_key, r.workflow, r.status, r.attempt, f.size, f.mtime, f.etag, "
    "f.content_hash, r.table_name, r.queued_at, r.available_at, r.started_at, r.finished_at, "
    "r.worker, r.batch_id, r.rows_in, r.rows_out, r.bytes, r.output_files, r.error, r.note, r.steps, "
    "r.rows_quarantined, r.quality, r.interruptions"
)
RUN_FROM = "runs r JOIN files f ON f.id = r.file_id"
# a run on the dead-letter list: dead, not retried or purged, and of its file's newest version (a version landed
# since replaces it: retrying the old one would read the new bytes, and the new version has its own run)
DEAD_LETTER = (
    "r.status = 'dead' AND r.purged = 0 AND r.file_id = (SELECT max(n.id) FROM files n WHERE n.key = r.file_key)"
)
_RUN_FIELDS = (
    "run_id file_id file_key workflow status attempt size mtime etag content_hash table_name queued_at available_at "
    "started_at finished_at worker batch_id rows_in rows_out bytes output_files error note steps rows_quarantined "
    "quality interruptions"
).split()
_JSON_FIELDS = {"output_files": "[]", "steps": "[]", "quality": "{}"}


def run_from_row(row: Sequence[Any]) -> Run:
    values = dict(zip(_RUN_FIELDS, row, strict=True))
    for name, empty in _JSON_FIELDS.items():
        values[name] = json.loads(values[name] or empty)
    values["interruptions"] = values["interruptions"] or 0
    return Run(**values)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def marks(items: Sequence[Any]) -> str:
    return ", ".join("?" for _ in items)


class SqlReads:
    """Read-only queries, shared by every SQL backend."""

    def _query(self, text: str, params: Sequence[Any] = ()) -> list[Any]:  # pragma: no cover - SqlStateStore's
        raise NotImplementedError

    def transaction(self, *, write: bool = True) -> AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def version_status(self, events: Sequence[ObjectCreated]) -> dict[ObjectCreated, str]:
        out: dict[ObjectCreated, str] = {}
        wanted = list({(e.key, e.size, e.mtime, e.etag): e for e in events}.values())
        for chunk in chunks(wanted):
            keys = sorted({e.key for e in chunk})
            rows = self._query(
                "SELECT f.key, f.size, f.mtime, f.etag, r.status FROM files f JOIN runs r ON r.file_id = f.id "
                f"WHERE f.key IN ({marks(keys)}) ORDER BY r.queued_at, r.run_id",
                keys,
            )
            latest = {(k, int(s), float(m), t): status for k, s, m, t, status in rows}  # the last run wins
            for e in chunk:
                status = latest.get((e.key, e.size, e.mtime, e.etag))
                if status is not None:
                    out[e] = status
        return out

    def holders(self) -> set[str]:
        return {r[0] for r in self._query("SELECT holder FROM leases WHERE until >= ?", (self.now(),))}

    def find_duplicates(self, workflow: str, hashes: dict[str, int], *, supersede: bool = False) -> dict[str, Run]:
        with self.transaction(write=False) as cur:
            found = self._duplicates(cur, workflow, hashes, supersede)
        return {h: run for h, run in found.items() if run.file_id != hashes[h]}

    def _duplicates(self, cur: Any, workflow: str, hashes: dict[str, Any], supersede: bool) -> dict[str, Run]:
        """The first succeeded run per content hash, in one query per chunk of hashes; with `supersede`, of a file
        version no later version of its file has been loaded over since."""
        out: dict[str, Run] = {}
        current = (
            " AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.file_key = r.file_key AND n.status = 'succeeded' "
            "AND n.file_id > r.file_id)"
            if supersede
            else ""
        )
        for chunk in chunks(list(hashes)):
            cur.execute(
                f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE f.workflow = ? AND r.status = 'succeeded' "
                f"AND f.content_hash IN ({marks(chunk)}){current} ORDER BY r.finished_at",
                (workflow, *chunk),
            )
            for row in cur.fetchall():
                run = run_from_row(row)
                out.setdefault(run.content_hash or "", run)
        return out

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
        with self.transaction(write=False) as cur:
            if before is not None:
                cur.execute("SELECT queued_at, run_id FROM runs WHERE run_id = ?", (before,))
                cursor = cur.fetchone()
                if cursor is None:
                    raise NoSuchRun(f"no run `{before}` to page from")
                # a row-value comparison: the index on (queued_at, run_id) is searched, not scanned from the top
                where.append("(r.queued_at, r.run_id) < (?, ?)")
                params.extend([cursor[0], cursor[1]])
            sql = f"SELECT {RUN_COLUMNS} FROM {RUN_FROM}"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY r.queued_at DESC, r.run_id DESC"
            if limit:
                sql += f" LIMIT {int(limit)}"
            cur.execute(sql, params)
            return [run_from_row(row) for row in cur.fetchall()]

    _STATUS_SQL = {
        "runs": "SELECT r.run_id, r.file_key, r.file_id, r.workflow, r.table_name, r.status, r.attempt, "
        "r.queued_at, r.started_at, r.finished_at, r.rows_in, r.rows_out, coalesce(r.bytes, f.size), "
        "r.rows_quarantined, f.content_hash, r.error, r.note, r.worker, r.batch_id FROM runs r "
        "JOIN files f ON f.id = r.file_id",
        "files": "SELECT f.id, f.key, f.size, f.mtime, f.etag, f.content_hash, f.discovered_at, f.workflow, "
        "(SELECT r.status FROM runs r WHERE r.file_id = f.id ORDER BY r.queued_at DESC, r.run_id DESC LIMIT 1), "
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

    def ended_since(self, since: float, limit: int = 1000) -> list[Run]:
        rows = self._query(
            f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.finished_at > ? ORDER BY r.finished_at LIMIT ?",
            (since, limit),
        )
        return [run_from_row(row) for row in rows]

    def last_landed(self, prefix: str) -> float | None:
        if prefix:  # a range on the key, which the files index serves, and LIKE for exactness
            after = prefix[:-1] + chr(ord(prefix[-1]) + 1)
            like = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
            rows = self._query(
                "SELECT max(discovered_at) FROM files WHERE key >= ? AND key < ? AND key LIKE ? ESCAPE '!'",
                (prefix, after, like),
            )
        else:
            rows = self._query("SELECT max(discovered_at) FROM files")
        return rows[0][0] if rows and rows[0][0] is not None else None

    def backlog(self) -> list[tuple[Any, ...]]:
        return self._query(
            "SELECT workflow, status, count(*), min(queued_at) FROM runs WHERE status IN ('queued', 'running') "
            "GROUP BY workflow, status"
        )

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
        rows = self._query(f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE r.run_id = ?", (run_id,))
        if not rows:
            raise NoSuchRun(f"no run `{run_id}`; list runs with `landfall runs`")
        return run_from_row(rows[0])

    def counts(self) -> dict[str, int]:
        found = dict(self._query("SELECT status, count(*) FROM runs GROUP BY status"))
        return {s: int(found.get(s, 0)) for s in RUN_STATUSES}

    def dead_runs(self, limit: int | None = None) -> list[Run]:
        rows = self._query(
            f"SELECT {RUN_COLUMNS} FROM {RUN_FROM} WHERE {DEAD_LETTER} "
            "ORDER BY r.finished_at DESC" + (f" LIMIT {int(limit)}" if limit else "")
        )
        return [run_from_row(row) for row in rows]

    def dead_letter_count(self) -> int:
        return int(self._query(f"SELECT count(*) FROM runs r WHERE {DEAD_LETTER}")[0][0])

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
        sql = "SELECT path, rows, bytes, partition, commit_id FROM table_files WHERE table_name = ?"
        if paths is None:
            rows = self._query(sql + " ORDER BY path", (name,))
        else:
            rows = []
            with self.transaction(write=False) as cur:
                for chunk in chunks(list(paths)):
                    cur.execute(sql + f" AND path IN ({marks(chunk)})", (name, *chunk))
                    rows.extend(cur.fetchall())
            rows.sort()
        return [DataFile(path=p, rows=r, bytes=b, partition=json.loads(part), commit_id=c) for p, r, b, part, c in rows]

    def schema_versions(self, name: str) -> list[dict[str, Any]]:
        rows = self._query(
            "SELECT version, schema, run_id, created_at FROM table_schemas WHERE table_name = ? ORDER BY version",
            (name,),
        )
        return [
            {
                "version": v,
                "schema": [column_json(n, t) for n, t in json.loads(s)],
                "run_id": r,
                "created_at": iso_time(c),
            }
            for v, s, r, c in rows
        ]

    def files_holding(self, table: str, source_keys: Sequence[str], exclude_file_ids: Sequence[int]) -> list[str]:
        found: set[str] = set()
        exclude = set(exclude_file_ids)
        with self.transaction(write=False) as cur:
            for keys in chunks(list(source_keys)):
                cur.execute(
                    "SELECT DISTINCT path, file_id FROM table_file_sources WHERE table_name = ? "
                    f"AND source_key IN ({marks(keys)})",
                    (table, *keys),
                )
                found.update(path for path, file_id in cur.fetchall() if file_id not in exclude)
        return sorted(found)

    def file_sources(self, table: str, path: str) -> list[SourceRows]:
        rows = self._query(
            "SELECT path, source_key, file_id, run_id, rows FROM table_file_sources WHERE table_name = ? AND path = ?",
            (table, path),
        )
        return [SourceRows(*r) for r in rows]
