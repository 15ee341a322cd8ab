"""The state database as a file and as a schema: deleted, replaced or corrupt under landfall; made by an older
landfall (upgraded on open) or a newer one (refused)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from landfall.cli import main
from landfall.errors import StateLost
from landfall.state import open_state
from landfall.state.migrations import LATEST, MIGRATIONS
from landfall.state.sqlite import SqliteStateStore
from landfall.testing.lake import wf
from landfall.testing.state_suite import ev, route_by_prefix

# The state schema as landfall created it before migrations were recorded (release 2026-12-01), verbatim.
SCHEMA_BEFORE_MIGRATIONS = [
    """CREATE TABLE IF NOT EXISTS files (
        id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, size BIGINT NOT NULL, mtime DOUBLE PRECISION NOT NULL,
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

OLD_ROWS = [
    "INSERT INTO files (key, size, mtime, etag, discovered_at, workflow) VALUES ('a/old.csv', 10, 1.0, '', 1.0, 'a')",
    "INSERT INTO files (key, size, mtime, etag, discovered_at, workflow) VALUES ('a/next.csv', 10, 1.0, '', 1.0, 'a')",
    "INSERT INTO runs (run_id, file_id, file_key, workflow, table_name, status, attempt, max_attempts, queued_at, "
    "available_at, finished_at, rows_out) VALUES ('20261122T044501Z-3f9a1c0b', 1, 'a/old.csv', 'a', 't_a', "
    "'succeeded', 1, 3, 1.0, 1.0, 2.0, 7)",
    "INSERT INTO runs (run_id, file_id, file_key, workflow, table_name, status, attempt, max_attempts, queued_at, "
    "available_at) VALUES ('20261122T044502Z-00aa11bb', 2, 'a/next.csv', 'a', 't_a', 'queued', 1, 3, 1.5, 1.5)",
]


def check_upgraded(store) -> None:
    assert store.schema_version() == LATEST
    old = store.run("20261122T044501Z-3f9a1c0b")
    assert (old.status, old.rows_out, old.interruptions) == ("succeeded", 7, 0)
    assert [r.run_id for r in store.runs()][-1] == "20261122T044501Z-3f9a1c0b"  # old ids page with new ones
    (queued,) = store.lease("w", limit=5, max_bytes=1 << 30, lease_seconds=30)
    assert queued.file_key == "a/next.csv"
    assert len(store.discover([ev("a/new.csv")], route_by_prefix())) == 1
    assert store.unknown([ev("a/old.csv")]) == []


def test_a_state_database_from_before_migrations_upgrades_itself_on_open(tmp_path):
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as conn:
        for stmt in SCHEMA_BEFORE_MIGRATIONS + OLD_ROWS:
            conn.execute(stmt)
    store = SqliteStateStore(f"sqlite:///{path}")
    try:
        check_upgraded(store)
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        applied = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert applied == [v for v, _, _ in MIGRATIONS]


def test_a_state_database_from_a_newer_landfall_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    open_state(url).close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)", (LATEST + 1,))
    with pytest.raises(StateLost, match=f"schema version {LATEST + 1}, made by a newer landfall"):
        open_state(url)


@pytest.mark.postgres
@pytest.mark.slow  # starts a PostgreSQL server; the SQLite upgrade above runs in the fast run
def test_a_postgresql_state_database_at_the_first_migration_upgrades_itself(postgres):
    from landfall.state.postgres import PostgresStateStore

    url = postgres.create_database()
    database = url.rsplit("/", 1)[1]
    first = [stmt.format(**PostgresStateStore.ddl) for stmt in MIGRATIONS[0][2]]
    postgres.psql(
        ";\n".join(
            [
                *first,
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                "applied_at DOUBLE PRECISION NOT NULL)",
                "INSERT INTO schema_migrations VALUES (1, 'first', 0)",
                *OLD_ROWS,  # a fresh identity numbers the two files 1 and 2, as the runs expect
            ]
        ),
        database,
    )
    store = PostgresStateStore(url)
    try:
        check_upgraded(store)
    finally:
        store.close()


def lake_with_one_loaded_file(make_lake):
    lake = make_lake([wf("s", read={"format": "csv"})], reconcile_seconds=0.3, settle_seconds=0.0)
    lake.land("s/a.csv", "id\n1\n")
    assert lake.process().ok
    lake.pipeline.close()
    return lake, lake.root / "lake/_landfall/state.db"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_up_stops_with_one_line_when_the_state_file_is_deleted_or_replaced(make_lake, how):
    lake, db = lake_with_one_loaded_file(make_lake)
    proc = subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(3)  # running: listing every 0.3 s
        assert proc.poll() is None
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(f"{db}{suffix}"):
                os.unlink(f"{db}{suffix}")
        if how == "replaced":
            open_state(f"sqlite:///{db}").close()  # someone started over with a new, empty state database
        lake.land("s/b.csv", "id\n2\n")
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out
    assert f"state database `{db}` was {how}" in out
    assert "Traceback" not in out and len([line for line in out.splitlines() if str(db) in line]) == 1


def test_a_corrupt_state_database_is_one_line_naming_the_file(make_lake):
    lake, db = lake_with_one_loaded_file(make_lake)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(f"{db}{suffix}"):
            os.unlink(f"{db}{suffix}")
    db.write_bytes(b"this is not a database at all" * 200)
    for args in (["process"], ["runs", "--json"]):
        result = CliRunner().invoke(main, ["--config", str(lake.config), *args])
        assert result.exit_code == 1, result.output
        assert f"state database `{db}` is corrupt" in result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
