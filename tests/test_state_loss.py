"""Losing or replacing the state store never makes landfall skip data: the Delta commit marker names the file
version itself (key and content), and a new state store rebuilds its catalog from the tables zone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime

import deltalake
import pytest
from spark_helpers import SPARK, java_or_skip

from conftest import wf


def lose_state(lake) -> None:
    lake.close()
    lake._pipeline = None
    for f in (lake.root / "lake/_landfall").glob("state.db*"):
        f.unlink()


def delta_ids(lake, table: str) -> list[int]:
    return sorted(
        r["id"] for r in deltalake.DeltaTable(str(lake.root / f"lake/tables/{table}")).to_pyarrow_table().to_pylist()
    )


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_a_new_file_after_the_state_store_is_lost_is_written(make_lake, tmp_path, fmt):
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt})])
    lake.land("t/a.csv", "id,name\n1,a\n2,a\n")
    assert lake.process().ok
    shutil.move(lake.landing / "t/a.csv", tmp_path / "a.csv")  # the landed file is archived elsewhere
    lose_state(lake)
    lake.land("t/b.csv", "id,name\n3,b\n4,b\n5,b\n")
    summary = lake.process()
    assert summary.count("succeeded") == 1, lake.pipeline.runs()[0].note
    assert "earlier attempt" not in (lake.pipeline.runs()[0].note or "")
    assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,), (4,), (5,)]  # the catalog, rebuilt
    if fmt == "delta":
        assert delta_ids(lake, "t") == [1, 2, 3, 4, 5]
    on_disk = sorted(p.name for p in (lake.root / "lake/tables/t").rglob("*.parquet"))
    assert on_disk == sorted(f.path.rsplit("/", 1)[-1] for f in lake.pipeline.store.table_files("t"))


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_files_loaded_before_the_state_store_was_lost_are_not_loaded_twice(make_lake, fmt):
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt, "partition_by": ["name"]})])
    lake.land("t/a.csv", "id,name\n1,a\n2,a\n")
    lake.land("t/b.csv", "id,name\n3,b\n")
    assert lake.process().ok
    version = deltalake.DeltaTable(str(lake.root / "lake/tables/t")).version() if fmt == "delta" else None
    lose_state(lake)
    assert lake.rows("SELECT id, name FROM t ORDER BY id") == [(1, "a"), (2, "a"), (3, "b")]  # rebuilt on open
    lake.land("t/c.csv", "id,name\n4,c\n")
    assert lake.process().ok
    assert lake.rows("SELECT id, name FROM t ORDER BY id") == [(1, "a"), (2, "a"), (3, "b"), (4, "c")]
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    if fmt == "delta":  # the marker in the Delta log names these very versions: recorded, not written again
        assert "committed by an earlier attempt" in runs["t/a.csv"].note
        assert deltalake.DeltaTable(str(lake.root / "lake/tables/t")).version() == version + 1
        assert delta_ids(lake, "t") == [1, 2, 3, 4]
    lake.land("t/a.csv", "id,name\n1,a\n2,z\n")  # a changed version replaces its own rows, as before the loss
    assert lake.process().ok
    assert lake.rows("SELECT id, name FROM t ORDER BY id") == [(1, "a"), (2, "z"), (3, "b"), (4, "c")]
    table = lake.pipeline.table("t")
    assert table.partition_by == ["name"] and table.row_count == 4


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_partition_values_of_every_kind_read_back_the_same_everywhere(make_lake, tmp_path, fmt, engine):
    """NULL, the texts `NULL` and `__HIVE_DEFAULT_PARTITION__` (the name of NULL's folder), `/`, `%`, `=`, `..`,
    spaces and non-ASCII: the Delta log said NULL for both texts (deltalake, and every Delta reader, read NULL),
    and a catalog rebuilt from a Parquet table's folders (a new state store) took the NULL partition for the text
    `__HIVE_DEFAULT_PARTITION__`, so `overwrite: partitions` no longer replaced it. On Spark, which names NULL's
    folder so too, the text was NULL in every table."""
    settings = {}
    if engine == "spark":
        java_or_skip()
        settings = {"engine": "spark", "spark": SPARK}
    values = [None, "NULL", "__HIVE_DEFAULT_PARTITION__", "a/b", "50%", "x=y", "..", " spaced ", "日本"]
    write = {"table": "s", "format": fmt, "mode": "overwrite", "overwrite": "partitions", "partition_by": ["region"]}
    lake = make_lake([wf("s", read={"format": "jsonl"}, write=write)], **settings)
    lake.land("s/a.jsonl", "".join(json.dumps({"id": i, "region": v}) + "\n" for i, v in enumerate(values)))
    assert lake.process().ok
    want = list(enumerate(values))
    key = lambda row: (row[0], row[1] or "")  # noqa: E731
    assert sorted(lake.rows("SELECT id, region FROM s"), key=key) == want
    if fmt == "delta":
        dt = deltalake.DeltaTable(str(lake.root / "lake/tables/s"))
        assert sorted(((r["id"], r["region"]) for r in dt.to_pyarrow_table().to_pylist()), key=key) == want
    shutil.move(lake.landing / "s/a.jsonl", tmp_path / "a.jsonl")  # archived: the rebuilt catalog is all there is
    lose_state(lake)
    assert sorted(lake.rows("SELECT id, region FROM s"), key=key) == want
    assert sorted(
        (f.partition["region"] or "", f.partition["region"] is None) for f in lake.pipeline.store.table_files("s")
    ) == sorted((v or "", v is None) for v in values)
    lake.land("s/b.jsonl", '{"id": 10, "region": null}\n{"id": 11, "region": "NULL"}\n')
    assert lake.process().ok
    kept = [(i, v) for i, v in want if v not in (None, "NULL")]
    assert sorted(lake.rows("SELECT id, region FROM s"), key=key) == sorted(kept + [(10, None), (11, "NULL")], key=key)


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_partition_columns_of_every_type_read_back_the_same_everywhere(make_lake, tmp_path, fmt, engine):
    """A Delta table partitioned by a timestamp with a zone took DuckDB's text (`2024-01-01 08:00:00+00`) into its
    log, which Delta readers refuse: the table was unreadable from its first commit (the file dead, every later
    one too). And a catalog rebuilt from a Delta log took its typed values' text (`True` for a folder's `true`), so
    `overwrite: partitions` no longer replaced that partition."""
    settings = {}
    if engine == "spark":
        java_or_skip()
        settings = {"engine": "spark", "spark": SPARK}
    types = {"tz": "timestamptz", "dec": "decimal(10,2)", "f": "double", "d": "date", "b": "boolean", "t": "timestamp"}
    write = {"table": "s", "format": fmt, "mode": "overwrite", "overwrite": "partitions", "partition_by": list(types)}
    lake = make_lake([wf("s", read={"format": "jsonl"}, transform=[{"cast": types}], write=write)], **settings)
    first = {"tz": "2024-01-01T10:00:00.123456+02:00", "dec": "12.50", "f": 0.30000000000000004, "d": "2024-02-29"}
    first |= {"b": True, "t": "2024-01-01 23:59:59.999999"}
    nulls = dict.fromkeys(types) | {"f": -0.0, "b": False}
    lake.land("s/a.jsonl", json.dumps({"id": 1} | first) + "\n" + json.dumps({"id": 2} | nulls) + "\n")
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    select = "SELECT id, CAST(tz AS VARCHAR), CAST(dec AS VARCHAR), f, d, b, CAST(t AS VARCHAR) FROM s ORDER BY id"
    want = [
        (1, "2024-01-01 08:00:00.123456+00", "12.50", 0.30000000000000004, date(2024, 2, 29), True),
        (2, None, None, -0.0, None, False),
    ]
    want = [w + (("2024-01-01 23:59:59.999999",) if w[0] == 1 else (None,)) for w in want]
    assert lake.rows(select) == want
    if fmt == "delta":
        got = deltalake.DeltaTable(str(lake.root / "lake/tables/s")).to_pyarrow_table().to_pylist()
        by_id = {r["id"]: r for r in got}
        assert by_id[1]["tz"] == datetime(2024, 1, 1, 8, 0, 0, 123456, tzinfo=UTC) and by_id[1]["b"] is True
        assert by_id[2]["tz"] is None and str(by_id[2]["f"]) == "-0.0"
    before = sorted(sorted(f.partition.items()) for f in lake.pipeline.store.table_files("s"))
    shutil.move(lake.landing / "s/a.jsonl", tmp_path / "a.jsonl")
    lose_state(lake)
    assert lake.rows(select) == want
    assert sorted(sorted(f.partition.items()) for f in lake.pipeline.store.table_files("s")) == before
    lake.land("s/b.jsonl", json.dumps({"id": 3} | first) + "\n")  # replaces the partition of row 1
    assert lake.process().ok
    assert [r[0] for r in lake.rows(select)] == [2, 3]


def test_catalog_rebuild_keeps_schema_partitions_children_and_quarantine(make_lake):
    lake = make_lake(
        [
            wf(
                "o",
                read={"format": "jsonl"},
                transform=[{"child_tables": ["items"]}],
                validate=[{"not_null": "name", "action": "quarantine"}],
                write={"table": "o", "format": "delta"},
            )
        ]
    )
    lake.land("o/a.jsonl", '{"id": 1, "name": "x", "items": [1, 2]}\n{"id": 2, "name": null, "items": [3]}\n')
    assert lake.process().ok
    before = {t.name: (t.schema, t.partition_by, t.row_count, t.file_count, t.workflow) for t in lake.pipeline.tables()}
    lose_state(lake)
    after = {t.name: (t.schema, t.partition_by, t.row_count, t.file_count, t.workflow) for t in lake.pipeline.tables()}
    assert after == before
    assert set(after) == {"o", "o__items", "quarantine.o"}


@pytest.mark.slow
def test_a_big_file_hashed_alongside_the_engine_is_recognized_after_the_state_store_is_lost(make_lake):
    import duckdb

    from landfall.runner import HASH_ALONGSIDE_BYTES

    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": "delta"})])
    big = lake.landing / "t/big.csv"
    big.parent.mkdir(parents=True)
    duckdb.sql(f"COPY (SELECT range AS id, 'row ' || range AS name FROM range(1500000)) TO '{big}' (HEADER)")
    assert big.stat().st_size > HASH_ALONGSIDE_BYTES  # its marker is known only once the engine has read it
    assert lake.process().ok
    version = deltalake.DeltaTable(str(lake.root / "lake/tables/t")).version()
    lose_state(lake)
    assert lake.process().ok
    (run,) = lake.pipeline.runs()
    assert "committed by an earlier attempt" in run.note
    assert deltalake.DeltaTable(str(lake.root / "lake/tables/t")).version() == version
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM t") == [(1_500_000, 1_500_000)]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_a_rebuild_reads_again_a_table_another_process_committed_to_meanwhile(make_lake, monkeypatch, fmt):
    import landfall.catalog

    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt})])
    lake.land("t/a.csv", "id,name\n1,a\n2,a\n")
    assert lake.process().ok
    scan, meanwhile = landfall.catalog.scan, []

    def another_process_commits(*args, **kwargs):  # after the rebuild has read the table, before it commits
        found = scan(*args, **kwargs)
        if not meanwhile:
            lake.land("t/b.csv", "id,name\n3,b\n")
            cmd = [sys.executable, "-m", "landfall", "--config", str(lake.config), "process"]
            meanwhile.append(subprocess.run(cmd, capture_output=True, text=True, timeout=180))
        return found

    monkeypatch.setattr(landfall.catalog, "scan", another_process_commits)
    (rebuilt,) = lake.pipeline.rebuild_catalog(["t"])
    assert meanwhile[0].returncode == 0, meanwhile[0].stdout + meanwhile[0].stderr
    assert rebuilt.rows == 3  # read again: the file list read first would have dropped b's file
    assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]
    if fmt == "delta":
        assert delta_ids(lake, "t") == [1, 2, 3]
