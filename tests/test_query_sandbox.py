"""`landfall query` (and the HTTP query endpoint, which makes the same library call) is read-only over the
catalog's tables: each attack from the security probe is refused and leaves nothing behind. landfall's own records
are queryable as `landfall.runs`, `landfall.files`, `landfall.tables` and `landfall.schema_versions`."""

from __future__ import annotations

import json
import time

import duckdb
import pytest
from click.testing import CliRunner

from landfall.cli import main
from landfall.errors import NoSuchTable, QueryRefused, QueryTimeout

from conftest import Lake, wf

ATTACKS = [
    ("read_text", "SELECT * FROM read_text('/etc/shadow')"),
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')"),
    ("read_parquet outside", "SELECT * FROM read_parquet('{root}/outside.parquet')"),
    ("dot-dot from a table", "SELECT * FROM read_text('{lake}/tables/s/../../../landfall.yaml')"),
    ("glob", "SELECT * FROM glob('/etc/*')"),
    ("http", "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')"),
    ("copy", "COPY (SELECT 1) TO '{root}/written.csv'"),
    ("copy in a select", "SELECT * FROM (COPY (SELECT 1) TO '{root}/written.csv')"),
    ("attach", "ATTACH '{root}/written.db' AS w"),
    ("install", "INSTALL httpfs"),
    ("load", "LOAD httpfs"),
    ("set", "SET enable_external_access = true"),
    ("drop view", "DROP VIEW s"),
    ("create", "CREATE TABLE t AS SELECT 1"),
    ("two statements", "SELECT 1; DROP VIEW s"),
    ("export", "EXPORT DATABASE '{root}/exported'"),
    ("pragma", "PRAGMA enable_profiling"),
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """One lake for the module's read-only tests (each attack checks it left nothing behind)."""
    lake = Lake(tmp_path_factory.mktemp("sandbox"), [wf("s")])
    lake.land("s/a.csv", "id,name\n1,a\n2,b\n")
    assert lake.process().ok
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"secret": ["s3cr3t-outside-value"]}), lake.root / "outside.parquet")
    yield lake
    lake.close()


@pytest.mark.parametrize("name,sql", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_attack_is_refused_and_leaves_nothing(lake, name, sql):
    before = sorted(p.name for p in lake.root.iterdir())
    sql = sql.format(root=lake.root, lake=lake.root / "lake")
    with pytest.raises((QueryRefused, duckdb.Error)) as err:
        lake.pipeline.query(sql)
    assert "s3cr3t-outside-value" not in str(err.value) and "root:" not in str(err.value)
    assert sorted(p.name for p in lake.root.iterdir()) == before  # nothing written
    assert lake.rows("SELECT count(*) FROM s") == [(2,)]  # the view is still there


def test_the_cli_refuses_too_with_one_line(lake):
    runner = CliRunner()
    cfg = ["--config", str(lake.config)]
    out = runner.invoke(main, [*cfg, "query", "SELECT * FROM read_text('/etc/shadow')"])
    assert out.exit_code == 1 and "disabled by configuration" in out.output and "Traceback" not in out.output
    out = runner.invoke(main, [*cfg, "query", "DROP VIEW s"])
    assert out.exit_code == 1 and "read-only" in out.output and "`DROP`" in out.output


def test_row_limit_and_timeout(lake):
    res = lake.pipeline.query("SELECT * FROM range(1000)", limit=10)
    assert len(res.rows) == 10 and res.truncated
    res = lake.pipeline.query("SELECT * FROM range(10)", limit=10)
    assert len(res.rows) == 10 and not res.truncated
    cols, rows = lake.pipeline.query("SELECT 1 AS one")  # still unpacks as (columns, rows)
    assert cols == ["one"] and rows == [(1,)]
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        lake.pipeline.query("SELECT count(*) FROM range(100000000000) a", timeout=0.5)
    assert time.monotonic() - started < 10


def test_status_tables(make_lake):
    lake = make_lake([wf("s", retry={"max_attempts": 1}, transform=[{"cast": {"id": "int"}}])])
    lake.land("s/a.csv", "id,name\n1,a\n2,b\n")
    lake.land("s/bad.csv", "id,name\nx,a\n")
    lake.process()
    lake.land("s/c.csv", "id,name,extra\n3,c,e\n")  # a new column: schema version 2
    lake.process()
    runner = CliRunner()
    out = runner.invoke(
        main,
        [
            "--config",
            str(lake.config),
            "query",
            "SELECT file_id, workflow, status, started_at, finished_at, duration_seconds, rows_out, error "
            "FROM landfall.runs ORDER BY file_id",
            "--format",
            "json",
        ],
    )
    assert out.exit_code == 0, out.output
    runs = json.loads(out.output)
    assert [(r["file_id"], r["status"], r["rows_out"]) for r in runs] == [
        ("s/a.csv", "succeeded", 2),
        ("s/bad.csv", "dead", None),
        ("s/c.csv", "succeeded", 1),
    ]
    assert runs[0]["duration_seconds"] > 0 and runs[0]["finished_at"] >= runs[0]["started_at"]
    assert "s/bad.csv" in runs[1]["error"]
    files = lake.rows("SELECT file_id, status, runs FROM landfall.files ORDER BY 1")
    assert files == [("s/a.csv", "succeeded", 1), ("s/bad.csv", "dead", 1), ("s/c.csv", "succeeded", 1)]
    assert lake.rows("SELECT name, rows, schema_version FROM landfall.tables") == [("s", 3, 2)]
    changes = lake.rows("SELECT version, changes->>'$.added[0].name' FROM landfall.schema_versions ORDER BY 1")
    assert changes == [(1, "id"), (2, "extra")]
    joined = lake.rows(
        "SELECT count(*) FROM s JOIN landfall.runs r ON r.run_id = s._run_id WHERE r.status = 'succeeded'"
    )
    assert joined == [(3,)]
    with pytest.raises(QueryRefused):
        lake.pipeline.query("DELETE FROM landfall.runs")


def test_a_table_committed_while_a_query_starts_is_read_from_a_fresh_snapshot(make_lake, monkeypatch):
    # the race of a query with a table's first commit: the query read the catalog (no `m` yet), then the commit
    # landed before the statement ran; it used to fail with "no table `m`; did you mean `m`?"
    import landfall.query

    lake = make_lake([wf("m", read={"format": "csv"})])
    lake.land("m/a.csv", "k,v\n1,x\n2,y\n")
    real = landfall.query.make_views
    calls = []

    def commit_meanwhile(*args, **kwargs):
        broken = real(*args, **kwargs)
        calls.append(kwargs.get("tables"))
        if len(calls) == 1:
            assert lake.process().ok
        return broken

    monkeypatch.setattr(landfall.query, "make_views", commit_meanwhile)
    assert lake.pipeline.query("SELECT count(*) FROM m").rows == [(2,)]
    assert len(calls) == 2 and calls[0] == []  # the first snapshot had no table; the second has it


def test_no_table_names_the_tables_and_never_suggests_the_name_itself():
    from landfall.query import no_table

    assert "did you mean" not in no_table("m", ["m", "n"])
    assert "did you mean" not in no_table('"M"', ["m"])
    assert "no table `sale`; did you mean `sales`? (tables: `sales`;" in no_table("sale", ["sales"])


def test_a_query_makes_views_of_the_tables_it_reads_only(make_lake, monkeypatch):
    """Each view reads its table's files to know its columns: every query made one of every table (200 tables:
    0.2 s a query, here; on an object store, requests). Only the tables it names get one; a statement whose
    tables the search (or the parse) misses runs again with a view of every table."""
    import landfall.query

    lake = make_lake([wf(f"t{i}", read={"format": "csv"}) for i in range(3)])
    for i in range(3):
        lake.land(f"t{i}/a.csv", f"id\n{i}\n")
    assert lake.process().ok
    real, made = landfall.query.make_views, []

    def spy(*args, **kwargs):
        made.append(sorted(t.name for t in kwargs["tables"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(landfall.query, "make_views", spy)
    assert lake.pipeline.query("SELECT id FROM t1").rows == [(1,)]
    assert lake.pipeline.query("SELECT 1").rows == [(1,)]
    assert made == [["t1"], []]
    listings = (
        "SHOW TABLES",
        "SELECT table_name FROM information_schema.tables",
        "SELECT view_name FROM duckdb_views()",
    )
    for listing in listings:  # the database's own catalog lists every table
        assert {"t0", "t1", "t2"} <= {r[0] for r in lake.pipeline.query(listing).rows}, listing
    monkeypatch.setattr(landfall.query, "named", lambda tables, sql, exact: set())  # one that finds nothing
    made.clear()
    assert lake.pipeline.query("SELECT id FROM t2").rows == [(2,)]
    assert made == [[], ["t0", "t1", "t2"]]
    with pytest.raises(NoSuchTable):
        lake.pipeline.query("SELECT * FROM nope")


def test_a_pivot_that_finds_its_values_says_to_list_them(lake):
    """DuckDB makes a PIVOT without `IN (...)` two statements (a type of the values, then the query): it was
    refused as a `MULTI` statement; the refusal now says to list the values, with which it runs."""
    for sql in ("PIVOT s ON name USING count(*)", "SELECT * FROM (PIVOT s ON name USING count(*))"):
        with pytest.raises(QueryRefused, match=r"list them: `PIVOT t ON v IN \('a', 'b'\)"):
            lake.pipeline.query(sql)
    assert lake.pipeline.query("PIVOT (SELECT name FROM s) ON name IN ('a', 'b') USING count(*)").rows == [(1, 1)]


def test_values_python_cannot_hold_whole_come_back_as_text(lake):
    """An interval's months came back as 30 days (`age()` of two months: 5,184,000 seconds in JSON), and
    nanoseconds were cut to microseconds: such columns come back as DuckDB writes them, in order, beside
    columns of the same name."""
    sql = (
        "SELECT age(TIMESTAMP '2024-03-01', TIMESTAMP '2024-01-01') AS a, id AS a, "
        "'2024-01-01 10:00:00.123456789'::TIMESTAMP_NS AS ns, '10:00:00.123456789'::TIME_NS AS t "
        "FROM s ORDER BY id DESC;"
    )
    result = lake.pipeline.query(sql)
    assert result.columns == ["a", "a", "ns", "t"]
    assert result.rows == [
        ("2 months", 2, "2024-01-01 10:00:00.123456789", "10:00:00.123456789"),
        ("2 months", 1, "2024-01-01 10:00:00.123456789", "10:00:00.123456789"),
    ]
    out = CliRunner().invoke(
        main, ["--config", str(lake.config), "query", "--format", "json", "SELECT INTERVAL 1 MONTH AS m"]
    )
    assert out.exit_code == 0 and json.loads(out.output) == [{"m": "1 month"}], out.output
