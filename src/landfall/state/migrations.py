"""The state store's schema, as numbered migrations both SQL backends apply in order.

A database records the migrations it has had in `schema_migrations`; opening it applies the missing ones in one
transaction (one process at a time), so a state database made by an older landfall upgrades itself on open. A
database from a newer landfall (a version this one does not know) is refused, never downgraded.

Migration 1 is the schema landfall had before migrations were recorded: its statements are all `IF NOT EXISTS`,
so on such a database it changes nothing and only records itself. Never edit a migration that has shipped; add
the next one.

Dialect placeholders: `{id}` is an auto-numbered primary key. A step may also be a function of the transaction's
cursor, for data that SQL alone cannot rewrite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _arrow_types(cur: Any) -> None:
    """Catalog schemas name their column types as Arrow type strings (`int64`), not DuckDB's names (`BIGINT`)."""
    from landfall.types import neutral

    for table, keys in (("tables", ("name",)), ("table_schemas", ("table_name", "version"))):
        cur.execute(f"SELECT {', '.join(keys)}, schema FROM {table}")
        for *key, schema in cur.fetchall():
            new = json.dumps([[n, neutral(t)] for n, t in json.loads(schema)])
            if new != schema:
                where = " AND ".join(f"{k} = ?" for k in keys)
                cur.execute(f"UPDATE {table} SET schema = ? WHERE {where}", (new, *key))


MIGRATIONS: list[tuple[int, str, list[str | Callable[[Any], None]]]] = [
    (
        1,
        "files, runs (the queue), catalog tables, leases",
        [
            """CREATE TABLE IF NOT EXISTS files (
                id {id}, key TEXT NOT NULL, size BIGINT NOT NULL, mtime DOUBLE PRECISION NOT NULL,
                etag TEXT NOT NULL DEFAULT '', content_hash TEXT, discovered_at DOUBLE PRECISION NOT NULL,
                workflow TEXT, UNIQUE (key, size, mtime, etag))""",
            "CREATE INDEX IF NOT EXISTS files_hash ON files (workflow, content_hash)",
            """CREATE TABLE IF NOT EXISTS runs (
                run_id TEXT PRIMARY KEY, file_id BIGINT NOT NULL REFERENCES files(id), file_key TEXT NOT NULL,
                workflow TEXT, table_name TEXT, status TEXT NOT NULL, attempt INTEGER NOT NULL, max_attempts INTEGER,
                queued_at DOUBLE PRECISION, available_at DOUBLE PRECISION, started_at DOUBLE PRECISION,
                finished_at DOUBLE PRECISION, lease_until DOUBLE PRECISION, worker TEXT, batch_id TEXT,
                rows_in BIGINT, rows_out BIGINT, bytes BIGINT, output_files TEXT, error TEXT, note TEXT, steps TEXT,
                purged INTEGER NOT NULL DEFAULT 0, rows_quarantined BIGINT, quality TEXT)""",
            "CREATE INDEX IF NOT EXISTS runs_queue ON runs (status, available_at)",
            "CREATE INDEX IF NOT EXISTS runs_file ON runs (file_id)",
            "CREATE INDEX IF NOT EXISTS runs_workflow ON runs (workflow, status)",
            """CREATE TABLE IF NOT EXISTS tables (
                name TEXT PRIMARY KEY, location TEXT NOT NULL, format TEXT NOT NULL, workflow TEXT,
                schema TEXT NOT NULL, schema_version INTEGER NOT NULL, partition_by TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS table_schemas (
                table_name TEXT NOT NULL, version INTEGER NOT NULL, schema TEXT NOT NULL, run_id TEXT,
                created_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (table_name, version))""",
            """CREATE TABLE IF NOT EXISTS table_files (
                table_name TEXT NOT NULL, path TEXT NOT NULL, partition TEXT NOT NULL, rows BIGINT NOT NULL,
                bytes BIGINT NOT NULL, commit_id TEXT, added_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (table_name, path))""",
            """CREATE TABLE IF NOT EXISTS table_file_sources (
                table_name TEXT NOT NULL, path TEXT NOT NULL, source_key TEXT NOT NULL, file_id BIGINT NOT NULL,
                run_id TEXT NOT NULL, rows BIGINT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS tfs_path ON table_file_sources (table_name, path)",
            "CREATE INDEX IF NOT EXISTS tfs_key ON table_file_sources (table_name, source_key)",
            """CREATE TABLE IF NOT EXISTS leases (
                name TEXT PRIMARY KEY, holder TEXT NOT NULL, until DOUBLE PRECISION NOT NULL)""",
        ],
    ),
    (
        2,
        "runs.interruptions (a dead worker is not an attempt); indexes for paging runs and for recent activity",
        [
            "ALTER TABLE runs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0",
            "CREATE INDEX IF NOT EXISTS runs_newest ON runs (queued_at, run_id)",
            "CREATE INDEX IF NOT EXISTS runs_finished ON runs (finished_at)",
            "CREATE INDEX IF NOT EXISTS runs_key ON runs (file_key, status)",
        ],
    ),
    (3, "catalog column types are Arrow type strings (were DuckDB type names)", [_arrow_types]),
    (
        4,
        "an index that counts the dead-letter list without reading the runs (overview, /metrics)",
        ["CREATE INDEX IF NOT EXISTS runs_dead ON runs (status, purged)"],
    ),
    (
        5,
        "an index that finds a table's running and waiting runs (tables whose files run in the order they landed)",
        ["CREATE INDEX IF NOT EXISTS runs_table ON runs (table_name, status, file_id)"],
    ),
    (
        6,
        "the workflow index also finds a workflow's first waiting run (hops whose files run in the order they landed)",
        [
            "CREATE INDEX IF NOT EXISTS runs_workflow_order ON runs (workflow, status, file_id)",
            "DROP INDEX IF EXISTS runs_workflow",
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"""
