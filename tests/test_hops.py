"""Multi-hop pipelines: a workflow writes files into another prefix (`write.landing`) for the next workflow."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from landfall.errors import ConfigError

from conftest import REPO, load_settings, wf


def hop_lake(make_lake, fmt: str = "parquet", final: dict | None = None):
    return make_lake(
        [
            wf(
                "raw_sales",
                match="raw/sales/",
                transform=[{"flatten": {"separator": "_"}}],
                write={"landing": "staging/sales/", "format": fmt},
            ),
            wf("sales", match="staging/sales/", write=final or {"table": "sales"}),
        ]
    )


def lines(*records: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_raw_to_staging_to_table_names_both_hops(make_lake, fmt):
    lake = hop_lake(make_lake, fmt)
    lake.land("raw/sales/2026/a.jsonl", lines({"id": 1, "c": {"city": "Lyon"}}, {"id": 2, "c": {"city": "Graz"}}))
    lake.land("raw/sales/b.jsonl", lines({"id": 3, "c": {"city": "Porto"}}))
    summary = lake.process()
    assert summary.ok and summary.count("succeeded") == 4
    staged = sorted(p.relative_to(lake.landing).as_posix() for p in (lake.landing / "staging").rglob("*.*"))
    assert staged == [f"staging/sales/2026/a.{fmt}", f"staging/sales/b.{fmt}"]
    rows = lake.rows(
        "SELECT id, c_city, _source_file, _upstream_source_file, _upstream_run_id, _run_id FROM sales ORDER BY id"
    )
    assert [r[:4] for r in rows] == [
        (1, "Lyon", f"staging/sales/2026/a.{fmt}", "raw/sales/2026/a.jsonl"),
        (2, "Graz", f"staging/sales/2026/a.{fmt}", "raw/sales/2026/a.jsonl"),
        (3, "Porto", f"staging/sales/b.{fmt}", "raw/sales/b.jsonl"),
    ]
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    upstream = runs["raw/sales/2026/a.jsonl"]
    assert upstream.workflow == "raw_sales" and upstream.output_files == [f"staging/sales/2026/a.{fmt}"]
    assert str(rows[0][4]) == upstream.run_id  # the table's rows name the run that made their staging file
    assert str(rows[0][5]) == runs[f"staging/sales/2026/a.{fmt}"].run_id


def test_files_with_names_near_the_file_systems_limit_land_hop_and_load(make_lake, tmp_path):
    """A name of 242 to 255 bytes is a legal file name, but the names landfall made from it were not: `ingest`
    ended in a traceback (its temporary name `.<name>.<8 hex>.tmp`), a hop's file (`<name>.parquet`), a gzip or
    UTF-16 file's working copy failed with `File name too long`, each retried and dead-lettered."""
    import gzip

    lake = hop_lake(make_lake)
    stem = "é" * 60 + "x" * 129  # 249 bytes: each name below is 255
    src = tmp_path / "in"
    src.mkdir()
    (src / f"{stem}.jsonl").write_text(lines({"id": 1, "c": {"city": "Lyon"}}))
    (src / f"{stem[:-5]}-z.jsonl.gz").write_bytes(gzip.compress(lines({"id": 2, "c": {"city": "Graz"}}).encode()))
    (src / f"{stem[:-3]}-16.jsonl").write_bytes(lines({"id": 3, "c": {"city": "Bra\u015fov"}}).encode("utf-16"))
    lake.pipeline.ingest([src], prefix="raw/sales")
    summary = lake.process()
    assert summary.ok and summary.count("succeeded") == 6, summary.outcomes
    assert sorted(lake.rows("SELECT id, c_city FROM sales")) == [(1, "Lyon"), (2, "Graz"), (3, "Bra\u015fov")]
    staged = sorted(p.name for p in (lake.landing / "staging/sales").iterdir())
    assert all(len(n.encode()) <= 255 and n.endswith(".parquet") for n in staged), staged


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_a_new_version_of_a_raw_file_replaces_its_rows_downstream(make_lake, fmt):
    lake = hop_lake(make_lake, fmt)
    lake.land("raw/sales/a.jsonl", lines({"id": 1, "v": "old"}, {"id": 2, "v": "old"}))
    lake.land("raw/sales/b.jsonl", lines({"id": 9, "v": "other"}))
    lake.process()
    lake.land("raw/sales/a.jsonl", lines({"id": 1, "v": "new"}), mtime=2_000_000_000)
    lake.process()
    assert lake.rows("SELECT id, v FROM sales ORDER BY id") == [(1, "new"), (9, "other")]
    lake.land("raw/sales/a.jsonl", lines(), mtime=2_000_000_100)  # now empty: its rows go downstream too
    lake.process()
    assert lake.rows("SELECT id, v FROM sales ORDER BY id") == [(9, "other")]


def test_the_same_rows_from_two_raw_files_both_load(make_lake):
    """Two hop files with the same bytes are two files (named for their raw file), not one landed twice."""
    lake = make_lake(
        [
            wf("raw", match="raw/", transform=[{"drop": ["batch"]}], write={"landing": "staging/", "format": "jsonl"}),
            wf("final", match="staging/"),
        ]
    )
    lake.land("raw/a.jsonl", lines({"status": "ok", "batch": 1}))
    lake.land("raw/b.jsonl", lines({"status": "ok", "batch": 2}))
    assert lake.process().ok
    assert lake.rows("SELECT count(*) FROM final") == [(2,)]


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_write", "after_publish", "after_commit"])
def test_a_crash_in_a_hop_loads_each_row_once(make_lake, point):
    lake = hop_lake(make_lake, final={"table": "sales", "format": "delta"})
    for i in range(3):
        lake.land(f"raw/sales/f{i}.jsonl", lines(*({"id": i * 10 + j} for j in range(5))))
    cmd = [sys.executable, "-m", "landfall", "--config", str(lake.config), "process", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    crashed = subprocess.run(cmd, env={**env, "LANDFALL_CRASH_AT": point}, capture_output=True)
    assert crashed.returncode == -9
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM sales") == [(15, 15)]


def test_hop_settings_are_checked_at_load(tmp_path):
    def load(*workflows):
        (tmp_path / "landfall.yaml").write_text(json.dumps({"workflows": list(workflows)}))
        return load_settings(tmp_path / "landfall.yaml")

    hop = {"name": "hop", "match": "raw/", "write": {"landing": "staging/"}}
    assert load(hop).workflows[0].write.landing == "staging/"
    cases = [
        ({"name": "x", "match": "raw/", "write": {"table": "t", "landing": "s/"}}, "not both"),
        ({"name": "x", "match": "raw/", "write": {}}, "needs `table`"),
        ({"name": "x", "match": "raw/", "write": {"landing": "s/", "format": "delta"}}, "`delta` is a table format"),
        ({"name": "x", "match": "raw/", "write": {"table": "t", "format": "jsonl"}}, "`jsonl` is for"),
        ({"name": "x", "match": "raw/", "write": {"landing": "s/", "mode": "merge", "keys": ["id"]}}, "`mode: merge`"),
        ({"name": "x", "match": "raw/", "write": {"landing": "s/", "partition_by": ["d"]}}, "`partition_by`"),
        ({"name": "x", "match": "raw/", "write": {"landing": "../s/"}}, "`..` segment"),
        ({"name": "x", "match": "raw/", "write": {"landing": "raw/more/"}}, "its own `match` reads"),
        (
            {
                "name": "x",
                "match": "raw/",
                "write": {"landing": "s/"},
                "validate": [{"not_null": "id", "action": "quarantine"}],
            },
            "need a table",
        ),
    ]
    for doc, needle in cases:
        with pytest.raises(ConfigError) as err:
            load(doc)
        assert needle in str(err.value), (needle, str(err.value))
    with pytest.raises(ConfigError, match="needs `on_change: replace`"):
        load(hop, {"name": "next", "match": "staging/", "on_change": "append", "write": {"table": "t"}})


def test_a_joined_table_that_lost_a_file_fails_the_run_naming_the_table_not_the_file(make_lake):
    """A table a `sql` step joins lost a data file (removed by hand): the run failed at once, dead, with DuckDB's
    `No files found that match the pattern` as the step's error, as if the landed file were at fault. It now
    fails naming the joined table, its gone file and the way back, on the retry schedule; once the table is
    rebuilt and the dead file retried, it loads."""
    lake = make_lake(
        [
            wf("customers", match="dims/", write={"table": "customers"}),
            wf(
                "orders",
                match="orders/",
                retry={"max_attempts": 2, "backoff_seconds": 0},
                transform=[{"sql": "SELECT o.*, c.segment FROM input o LEFT JOIN customers c USING (customer_id)"}],
            ),
        ]
    )
    lake.land("dims/a.jsonl", lines({"customer_id": 7, "segment": "retail"}))
    lake.process()
    (gone,) = [f.path for f in lake.pipeline.store.table_files("customers")]
    os.remove(lake.root / "lake/tables/customers" / gone)
    lake.land("orders/a.jsonl", lines({"order_id": 1, "customer_id": 7}))
    summary = lake.process()
    assert summary.count("dead") == 1 and [o.status for o in summary.outcomes] == ["failed", "dead"]
    run = lake.pipeline.runs(key="orders/a.jsonl")[0]
    assert f"table `customers` cannot be read: its file `{gone}` is gone" in run.error, run.error
    assert "No files found" not in run.error
    lake.pipeline.rebuild_catalog(["customers"])
    lake.process()  # customers' lost file version loads again
    lake.pipeline.retry_dead(None)
    assert lake.process().ok
    assert lake.rows("SELECT order_id, segment FROM orders") == [(1, "retail")]


def test_a_sql_step_joins_a_table_at_its_current_version(make_lake):
    """Enrich with a dimension table: the run reads the table's version when the run starts."""
    lake = make_lake(
        [
            wf(
                "customers",
                match="dims/customers/",
                write={"table": "customers", "format": "delta", "mode": "merge", "keys": ["customer_id"]},
            ),
            wf(
                "orders",
                match="orders/",
                transform=[
                    {
                        "sql": "SELECT o.*, c.segment FROM input o LEFT JOIN customers c USING (customer_id)",
                    }
                ],
            ),
        ]
    )
    lake.land("orders/early.jsonl", lines({"order_id": 1, "customer_id": 7}))
    summary = lake.process()
    assert summary.count("failed") + summary.count("dead") == 1  # no customers yet: tried again later
    run = lake.pipeline.runs(key="orders/early.jsonl")[0]
    assert "joins table `customers`, which has no rows yet" in run.error
    lake.land(
        "dims/customers/a.jsonl", lines({"customer_id": 7, "segment": "retail"}, {"customer_id": 8, "segment": "pro"})
    )
    lake.process()
    lake.land("orders/b.jsonl", lines({"order_id": 2, "customer_id": 8}, {"order_id": 3, "customer_id": 9}))
    lake.process()
    rows = lake.rows("SELECT order_id, customer_id, segment FROM orders ORDER BY order_id")
    assert rows[-2:] == [(2, 8, "pro"), (3, 9, None)]
    cols = [c for c, *_ in lake.rows("SELECT column_name FROM (DESCRIBE orders)")]
    assert cols.count("_source_file") == 1  # the joined table's lineage columns stay out
    lake.land("dims/customers/b.jsonl", lines({"customer_id": 8, "segment": "enterprise"}))
    lake.process()
    lake.land("orders/c.jsonl", lines({"order_id": 4, "customer_id": 8}))
    lake.process()
    assert lake.rows("SELECT order_id, segment FROM orders WHERE order_id IN (2, 4) ORDER BY 1") == [
        (2, "pro"),  # read the version of its run: the update came after
        (4, "enterprise"),
    ]


def test_a_sql_step_may_join_only_tables_of_the_lake(tmp_path):
    doc = {
        "workflows": [
            {
                "name": "o",
                "match": "o/",
                "write": {"table": "o"},
                "transform": [{"sql": "SELECT * FROM input JOIN nope USING (id)"}],
            },
            {"name": "c", "match": "c/", "write": {"table": "customers"}},
        ]
    }
    (tmp_path / "landfall.yaml").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"transform\[0\]`: `sql`: table `nope` is not allowed; .*`customers` only"):
        load_settings(tmp_path / "landfall.yaml")
    doc["workflows"][0]["transform"] = [{"sql": "SELECT * FROM input JOIN read_parquet('/etc/x') USING (id)"}]
    (tmp_path / "landfall.yaml").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="read_parquet"):
        load_settings(tmp_path / "landfall.yaml")


def chain_lake(make_lake, **settings):
    """raw files -> (hop: flatten) staging files -> bronze table (append) -> silver table (fed by bronze, merged)."""
    return make_lake(
        [
            wf("raw", match="raw/", transform=[{"flatten": {"separator": "_"}}], write={"landing": "staging/"}),
            wf("bronze", match="staging/", write={"table": "bronze"}),
            fed(
                "silver",
                "bronze",
                transform=[{"filter": "amount > 0"}],
                write={"table": "silver", "format": "delta", "mode": "merge", "keys": ["id"]},
            ),
        ],
        **settings,
    )


def fed(name: str, table: str, **kw) -> dict:
    """A workflow fed by `table` (no `match`)."""
    doc = wf(name, source={"table": table}, **kw)
    doc.pop("match")
    return doc


def test_bronze_silver_gold_each_hop_once_with_lineage(make_lake):
    lake = chain_lake(make_lake)
    lake.land("raw/a.jsonl", lines({"id": 1, "amount": 5, "c": {"x": 1}}, {"id": 2, "amount": 0, "c": {"x": 2}}))
    lake.land("raw/b.jsonl", lines({"id": 3, "amount": 7, "c": {"x": 3}}))
    assert lake.process().ok
    assert lake.rows("SELECT id, amount, c_x FROM silver ORDER BY id") == [(1, 5, 1), (3, 7, 3)]
    lake.land("raw/c.jsonl", lines({"id": 1, "amount": 9, "c": {"x": 4}}))
    assert lake.process().ok
    assert lake.rows("SELECT id, amount FROM silver ORDER BY id") == [(1, 9), (3, 7)]
    assert lake.rows("SELECT count(*) FROM bronze") == [(4,)]
    (src, up_file, up_run), *_ = lake.rows(
        "SELECT _source_file, _upstream_source_file, _upstream_run_id FROM silver WHERE id = 1"
    )
    bronze_run = lake.pipeline.runs(key="staging/c.parquet")[0]
    assert src == f"_tables/bronze/{bronze_run.run_id}" and up_file == "staging/c.parquet"
    assert str(up_run) == bronze_run.run_id
    silver_runs = lake.pipeline.runs(workflow="silver")
    assert len(silver_runs) == 3 and {r.status for r in silver_runs} == {"succeeded"}
    assert lake.process().count("succeeded") == 0  # nothing is read twice


def test_a_run_fed_by_a_table_reads_the_files_of_its_rows_and_names_one_gone(make_lake):
    """A fed run reads its upstream run's rows from the files the catalog says hold them (it read every file of
    the table: a run's read grew with the table, and any file gone failed it). One of those files gone fails it
    naming the table and the file (it was DuckDB's `No files found`, as the fed key's fault); once the table is
    rebuilt every row reaches the fed table once."""
    lake = make_lake(
        [
            wf("bronze", match="o/", read={"format": "csv"}, write={"table": "bronze"}),
            {
                "name": "silver",
                "source": {"table": "bronze"},
                "retry": {"max_attempts": 1},
                "write": {"table": "silver"},
            },
        ]
    )
    lake.land("o/1.csv", "id\n1\n")
    assert lake.process().ok
    (gone,) = [f.path for f in lake.pipeline.store.table_files("bronze")]
    os.remove(lake.root / "lake/tables/bronze" / gone)
    lake.land("o/2.csv", "id\n2\n")
    assert lake.process().ok  # o/2.csv's rows are in a file of their own
    fed = lake.pipeline.runs(key=f"_tables/bronze/{lake.pipeline.runs(key='o/1.csv')[0].run_id}")[0]
    lake.pipeline.store.reload([fed.file_id], "read again")  # o/1.csv's run, fed again: its file is gone
    assert lake.process().count("dead") == 1
    (dead,) = lake.pipeline.store.dead_runs()
    assert dead.file_key == fed.file_key
    assert f"table `bronze` cannot be read: its file `{gone}` is gone" in dead.error, dead.error
    lake.pipeline.rebuild_catalog(["bronze"])
    assert lake.process().count("succeeded") == 2  # o/1.csv into bronze again, and on into silver
    assert lake.rows("SELECT id, _upstream_source_file FROM silver ORDER BY id") == [(1, "o/1.csv"), (2, "o/2.csv")]


@pytest.mark.parametrize("mode", ["append", "merge"])
def test_a_changed_file_replaces_its_rows_in_every_table_fed_from_it(make_lake, mode):
    """bronze (append) -> silver (fed, `mode`) -> gold (fed by silver, append): a new version of a landed file
    replaces its rows in bronze, and so in silver and gold: a row only its old version had goes, none twice."""
    write = {"table": "silver", "mode": mode, **({"keys": ["id"]} if mode == "merge" else {})}
    lake = make_lake(
        [
            wf("bronze", match="o/", write={"table": "bronze"}),
            fed("silver", "bronze", transform=[{"filter": "amount > 0"}], write=write),
            fed("gold", "silver", write={"table": "gold"}),
        ],
        workers=1,
    )
    lake.land("o/a.csv", "id,amount\n1,10\n2,20\n", mtime=1_700_000_000)
    lake.land("o/b.csv", "id,amount\n3,30\n", mtime=1_700_000_000)
    assert lake.process().ok
    lake.land("o/a.csv", "id,amount\n1,11\n", mtime=1_700_000_001)
    assert lake.process().ok
    for table in ("bronze", "silver", "gold"):
        assert lake.rows(f"SELECT id, amount FROM {table} ORDER BY id") == [(1, 11), (3, 30)], table
    lake.land("o/a.csv", "id,amount\n", mtime=1_700_000_002)  # now empty: its rows go everywhere
    assert lake.process().ok
    lake.land("o/b.csv", "id,amount\n3,31\n4,0\n", mtime=1_700_000_003)  # 4 is filtered out of silver
    assert lake.process().ok
    assert lake.rows("SELECT id, amount FROM bronze ORDER BY id") == [(3, 31), (4, 0)]
    for table in ("silver", "gold"):
        assert lake.rows(f"SELECT id, amount FROM {table} ORDER BY id") == [(3, 31)], table


def test_a_table_run_the_runner_did_not_report_is_found(make_lake, monkeypatch):
    """A crash between a commit and reporting its run to the workflows the table feeds: discovery finds it."""
    import landfall.sources.tables as tables

    lake = chain_lake(make_lake)
    monkeypatch.setattr(tables, "feed", lambda *a, **k: None)
    lake.land("raw/a.jsonl", lines({"id": 1, "amount": 5}))
    lake.pipeline.process()
    assert lake.pipeline.runs(workflow="silver") == []
    monkeypatch.undo()
    assert len(lake.pipeline.discover()) == 1
    lake.process()
    assert lake.rows("SELECT id FROM silver") == [(1,)]
    assert lake.pipeline.discover() == []


def test_table_sources_are_checked_at_load(tmp_path):
    def load(*workflows):
        (tmp_path / "landfall.yaml").write_text(json.dumps({"workflows": list(workflows)}))
        return load_settings(tmp_path / "landfall.yaml")

    bronze = {"name": "bronze", "match": "b/", "write": {"table": "bronze"}}
    fed = load(bronze, {"name": "s", "source": {"table": "bronze"}, "write": {"table": "silver"}}).workflows[1]
    assert fed.match == "_tables/bronze/" and fed.read.format == "parquet"
    cases = [
        ({"name": "s", "match": "x/", "source": {"table": "bronze"}, "write": {"table": "s"}}, "not both"),
        ({"name": "s", "write": {"table": "s"}}, "needs `match`"),
        ({"name": "s", "source": {"table": "nope"}, "write": {"table": "s"}}, "`nope` is not a table"),
        ({"name": "s", "source": {"table": "s"}, "write": {"table": "s"}}, "is the table it writes"),
    ]
    for doc, needle in cases:
        with pytest.raises(ConfigError) as err:
            load(bronze, doc)
        assert needle in str(err.value), (needle, str(err.value))
    with pytest.raises(ConfigError, match="`lineage: false`"):
        load({**bronze, "lineage": False}, {"name": "s", "source": {"table": "bronze"}, "write": {"table": "s"}})
    two = [{"name": n, "source": {"table": "bronze"}, "write": {"table": n}} for n in ("s", "t")]
    with pytest.raises(ConfigError, match="workflows `s` and `t` are both fed by table `bronze`; a table feeds one"):
        load(bronze, *two)


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after_publish", "after_table_commit", "after_commit"])
def test_a_crash_anywhere_in_the_chain_loads_each_row_once(make_lake, point):
    # bronze feeds a merge, so its files run in the order they landed: the crash stops the same file each time
    lake = chain_lake(make_lake, max_interruptions=4)
    for i in range(3):
        lake.land(f"raw/f{i}.jsonl", lines(*({"id": i * 10 + j, "amount": j + 1} for j in range(4))))
    cmd = [sys.executable, "-m", "landfall", "--config", str(lake.config), "process", "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for _ in range(3):  # each crash point is reached again by a later job: crash a few times, then finish
        subprocess.run(cmd, env={**env, "LANDFALL_CRASH_AT": point}, capture_output=True)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM silver") == [(12, 12)]
    assert lake.rows("SELECT count(*) FROM bronze") == [(12,)]
