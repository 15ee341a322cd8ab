"""Drop files, run the pipeline, query the tables: the core contracts end to end."""

from __future__ import annotations

import gzip
import json
import os
import time
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest

from conftest import wf

SALES = {
    "name": "sales",
    "match": "sales/",
    "read": {"format": "csv"},
    "transform": [
        {"rename": {"Order ID": "order_id", "Unit Price": "price"}},
        {"cast": {"order_date": "date", "quantity": "int"}},
        {"compute": {"total": "price * quantity"}},
        {"filter": "quantity > 0"},
        {"sql": "SELECT * EXCLUDE (internal_note) FROM input"},
    ],
    "write": {"table": "sales", "format": "parquet", "partition_by": ["order_date"]},
    "retry": {"max_attempts": 3, "backoff_seconds": 0.01},
}
HEADER = "Order ID,order_date,Unit Price,quantity,internal_note\n"


def test_file_lands_table_appears_with_types_partitions_and_lineage(make_lake):
    lake = make_lake([SALES])
    lake.land("sales/jan.csv", HEADER + "1,2024-01-01,2.5,3,x\n2,2024-01-02,1.0,0,y\n3,2024-01-02,4.0,1,z\n")
    summary = lake.process()
    assert summary.ok and summary.count("succeeded") == 1
    cols, rows = lake.pipeline.query("SELECT * FROM sales ORDER BY order_id")
    assert cols == ["order_id", "order_date", "price", "quantity", "total", "_source_file", "_ingested_at", "_run_id"]
    assert [(r[0], str(r[1]), r[4], r[5]) for r in rows] == [
        (1, "2024-01-01", 7.5, "sales/jan.csv"),
        (3, "2024-01-02", 4.0, "sales/jan.csv"),
    ]
    run = lake.pipeline.runs()[0]
    assert (run.status, run.rows_in, run.rows_out, run.attempt) == ("succeeded", 3, 2, 1)
    assert rows[0][7] == run.run_id
    table = lake.pipeline.table("sales")
    assert dict(table.schema)["order_date"] == "date32[day]" and dict(table.schema)["quantity"] == "int64"
    assert table.row_count == 2 and table.partition_by == ["order_date"]
    files = sorted(
        p.relative_to(lake.root / "lake/tables/sales").as_posix()
        for p in (lake.root / "lake/tables/sales").rglob("*.parquet")
    )
    assert [f.split("/")[0] for f in files] == ["order_date=2024-01-01", "order_date=2024-01-02"]
    assert all(run.run_id not in f for f in files)  # named by the commit (batch), recorded per run
    meta = pq.ParquetFile(next((lake.root / "lake/tables/sales").rglob("*.parquet"))).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_same_bytes_load_once_under_any_name(make_lake):
    lake = make_lake([SALES])
    body = HEADER + "1,2024-01-01,2.5,3,x\n"
    lake.land("sales/a.csv", body)
    lake.process()
    lake.land("sales/copy-of-a.csv", body)
    lake.land("sales/a-again.csv", body)
    lake.process()
    assert lake.rows("SELECT count(*) FROM sales") == [(1,)]
    st = lake.status()
    assert st == {"sales/a.csv": "succeeded", "sales/copy-of-a.csv": "skipped", "sales/a-again.csv": "skipped"}
    skipped = lake.pipeline.runs(status="skipped")[0]
    assert "same content as `sales/a.csv`" in skipped.note


@pytest.mark.parametrize("mode", ["append", "merge", "overwrite", "on_change_append"])
def test_a_file_changed_back_to_what_it_held_before_loads_again(make_lake, mode):
    """`f.csv` held id 1, then id 2 (whose rows replaced id 1's), then id 1 again. The last version was skipped as
    "same content as `t/f.csv`" (its own first version, whose rows were gone): the table kept id 2 while the file
    held id 1. A copy of it under another name is still a duplicate, and under `on_change: append` (earlier
    versions' rows stay) so is the version changed back."""
    write = {"table": "t"} | ({"mode": mode, "keys": ["k"]} if mode == "merge" else {})
    write |= {"mode": "overwrite"} if mode == "overwrite" else {}
    extra = {"on_change": "append"} if mode == "on_change_append" else {}
    lake = make_lake([wf("t", read={"format": "csv"}, write=write, **extra)], workers=1)
    for i, body in enumerate(["k,id\nx,1\n", "k,id\nx,2\n", "k,id\nx,1\n"]):
        lake.land("t/f.csv", body, mtime=1_700_000_000 + i)
        assert lake.process().ok
    kept = [(1,), (2,)] if mode == "on_change_append" else [(1,)]
    assert lake.rows("SELECT id FROM t ORDER BY id") == kept
    lake.land("t/copy.csv", "k,id\nx,1\n", mtime=1_700_000_010)
    assert lake.process().ok
    if mode != "merge" and mode != "overwrite":  # there a file under another name is the newest (loaded)
        assert lake.pipeline.runs(key="t/copy.csv")[0].status == "skipped"
    assert lake.rows("SELECT DISTINCT id FROM t ORDER BY id") == kept


def test_changed_file_with_same_name_replaces_its_rows(make_lake):
    lake = make_lake([SALES, wf("other", table="sales_b", read={"format": "csv"})])
    lake.land("sales/a.csv", HEADER + "1,2024-01-01,2.5,3,x\n2,2024-01-02,2.5,3,x\n", mtime=1_700_000_000)
    lake.land("sales/b.csv", HEADER + "9,2024-01-01,1.0,1,x\n", mtime=1_700_000_000)
    lake.process()
    assert lake.rows("SELECT count(*) FROM sales") == [(3,)]
    lake.land("sales/a.csv", HEADER + "1,2024-01-01,3.0,3,x\n", mtime=1_700_000_100)
    lake.process()
    rows = lake.rows("SELECT order_id, price, _source_file FROM sales ORDER BY order_id")
    assert rows == [(1, 3.0, "sales/a.csv"), (9, 1.0, "sales/b.csv")]
    # the same name touched without a content change is skipped, not loaded twice
    os.utime(lake.landing / "sales/a.csv", (1_700_000_200, 1_700_000_200))
    lake.process()
    assert lake.rows("SELECT count(*) FROM sales") == [(2,)]
    assert lake.pipeline.runs(key="sales/a.csv")[0].status == "skipped"


def test_bad_file_fails_alone_with_file_line_reason_then_dead_letter(make_lake):
    lake = make_lake([SALES])
    lake.land("sales/good1.csv", HEADER + "1,2024-01-01,2.5,3,x\n")
    lake.land("sales/bad.csv", HEADER + "2,2024-01-01,2.5,3,x\n3,2024-01-01,2.5,three,x\n")
    lake.land("sales/good2.csv", HEADER + "4,2024-01-02,2.5,1,x\n")
    before = (lake.landing / "sales/bad.csv").read_bytes()
    summary = lake.process()
    assert not summary.ok
    assert lake.rows("SELECT order_id FROM sales ORDER BY 1") == [(1,), (4,)]
    runs = lake.pipeline.runs(key="sales/bad.csv")
    # a file that cannot parse fails the same way every time: dead at once, not after 3 attempts with backoff
    assert [(r.status, r.attempt) for r in runs] == [("dead", 1)]
    assert (summary.count("dead"), summary.count("failed"), summary.count("succeeded")) == (1, 0, 2)
    err = runs[0].error
    assert "`sales/bad.csv`" in err and "line 3" in err and "three" in err
    assert (lake.landing / "sales/bad.csv").read_bytes() == before  # never deleted or altered
    dead = lake.pipeline.store.dead_runs()
    assert [r.file_key for r in dead] == ["sales/bad.csv"]
    # the file corrected where it landed: its new version loads, and the old one's failure leaves the list
    lake.land("sales/bad.csv", HEADER + "2,2024-01-01,2.5,3,x\n3,2024-01-01,2.5,4,x\n", mtime=1_800_000_000)
    summary = lake.process()
    assert summary.ok and summary.dead_letter == 0 and lake.pipeline.store.dead_runs() == []
    assert lake.rows("SELECT order_id FROM sales ORDER BY 1") == [(1,), (2,), (3,), (4,)]


def test_unparseable_json_names_file_and_line(make_lake):
    lake = make_lake([wf("ev", read={"format": "jsonl"}, retry={"max_attempts": 1})])
    lake.land("ev/a.jsonl", '{"a": 1}\n{"a": 2}\n{"a": oops}\n')
    lake.land("ev/b.jsonl", '{"a": 5}\n')
    lake.process()
    assert lake.rows("SELECT a FROM ev") == [(5,)]
    err = lake.pipeline.runs(key="ev/a.jsonl")[0].error
    assert "`ev/a.jsonl` line 3" in err and "invalid JSON" in err


def test_dead_letter_retry_after_fixing_the_workflow(make_lake, tmp_path):
    lake = make_lake([wf("n", read={"format": "csv"}, transform=[{"cast": {"x": "int"}}], retry={"max_attempts": 1})])
    lake.land("n/a.csv", "x\n1\nabc\n")
    assert not lake.process().ok
    dead = lake.pipeline.store.dead_runs()
    assert len(dead) == 1 and "`n/a.csv`" in dead[0].error and "abc" in dead[0].error
    # fix the workflow: keep text
    text = lake.config.read_text().replace("x: int", "x: string")
    lake.config.write_text(text)
    lake.close()
    lake._pipeline = None
    again = lake.pipeline.store.retry_dead(None)
    assert len(again) == 1 and again[0].attempt == 2
    assert lake.process().ok
    assert lake.rows("SELECT x FROM n ORDER BY x") == [("1",), ("abc",)]
    assert lake.pipeline.store.dead_runs() == []


def test_unrouted_files_are_recorded_not_dropped(make_lake):
    lake = make_lake([SALES])
    lake.land("misc/readme.txt", "hello")
    lake.land("sales/a.csv", HEADER + "1,2024-01-01,2.5,3,x\n")
    lake.process()
    assert lake.status() == {"misc/readme.txt": "unrouted", "sales/a.csv": "succeeded"}
    run = lake.pipeline.runs(status="unrouted")[0]
    assert "no workflow matches `misc/readme.txt`" in run.error
    # a workflow for them is added: the next `process` loads them (it said `nothing to do`)
    import yaml

    doc = yaml.safe_load(lake.config.read_text())
    doc["workflows"].append(wf("misc", read={"format": "csv"}))
    lake.config.write_text(yaml.safe_dump(doc))
    lake.close()
    lake._pipeline = None
    assert lake.process().count("succeeded") == 1
    assert lake.status() == {"misc/readme.txt": "succeeded", "sales/a.csv": "succeeded"}  # a header, no rows


def test_files_queued_for_a_workflow_renamed_or_removed_since_load_under_the_one_matching_them_now(make_lake):
    """`process` failed with ``no workflow named `a`; known: `b` `` and left the run `running`; `up`'s worker
    threads died on it (a traceback each) and the file ended dead, "it may crash workers"."""
    import yaml

    lake = make_lake([wf("a", match="s/", table="t"), wf("x", match="x/")])
    lake.land("s/1.csv", "id\n1\n")
    lake.land("x/2.csv", "id\n2\n")
    assert lake.pipeline.discover() and lake.status() == {"s/1.csv": "queued", "x/2.csv": "queued"}
    doc = yaml.safe_load(lake.config.read_text())
    doc["workflows"] = [wf("b", match="s/", table="t")]  # `a` renamed `b`; `x` removed
    lake.config.write_text(yaml.safe_dump(doc))
    lake.close()
    lake._pipeline = None
    assert lake.process().count("succeeded") == 1
    assert lake.status() == {"s/1.csv": "succeeded", "x/2.csv": "unrouted"}
    assert lake.rows("SELECT id, _source_file FROM t") == [(1, "s/1.csv")]
    assert (
        "no workflow matches `x/2.csv` now (it was queued for workflow `x`)"
        in lake.pipeline.runs(status="unrouted")[0].error
    )
    # a run a host on the old config queued once this one had looked: its worker moves it, and loads it
    old = {"s/": SimpleNamespace(name="a", write=SimpleNamespace(table="t"), retry=SimpleNamespace(max_attempts=3))}
    lake.land("s/3.csv", "id\n3\n")
    lake.pipeline.store.discover(lake.pipeline.listing.scan(), lambda key: old.get(key[:2]))
    assert lake.process(discover=False).count("succeeded") == 1
    assert sorted(lake.rows("SELECT id FROM t")) == [(1,), (3,)]
    assert {r.workflow for r in lake.pipeline.runs(status="succeeded")} == {"b"}


def test_a_file_queued_before_its_table_was_renamed_is_recorded_under_the_new_name(make_lake):
    """Its rows went to `t2`, but `landfall.runs` said `t` (and the order of a merge table's files was kept per
    old name)."""
    import yaml

    lake = make_lake([wf("a", match="s/", table="t")])
    lake.land("s/1.csv", "id\n1\n")
    lake.pipeline.discover()
    doc = yaml.safe_load(lake.config.read_text())
    doc["workflows"][0]["write"]["table"] = "t2"
    lake.config.write_text(yaml.safe_dump(doc))
    lake.close()
    lake._pipeline = None
    assert lake.process().ok
    assert lake.rows('SELECT file_id, "table", status FROM landfall.runs') == [("s/1.csv", "t2", "succeeded")]
    assert lake.rows("SELECT id FROM t2") == [(1,)]


def test_an_unrouted_file_a_match_naming_the_landing_zone_would_take_says_so(make_lake, caplog):
    """`match: landing/sales/` (the zone's own folder written in) took no file, and the files were `unrouted`
    with "add a workflow whose `match` covers it", beside a workflow that seemed to."""
    lake = make_lake([wf("a", match="landing/s/")])
    lake.land("s/1.csv", "id\n1\n")
    lake.land("t/2.csv", "id\n2\n")
    lake.land("LANDING/S/3.csv", "id\n3\n")  # a folder named in other letters
    lake.process()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("unrouted: ")]
    assert sorted(said) == [
        "unrouted: LANDING/S/3.csv (workflow `a` has `match: landing/s/`, which tells letter case apart)",
        f"unrouted: s/1.csv (workflow `a` has `match: landing/s/`, but `match` is relative to the landing zone "
        f"({lake.landing}): `s/` takes this file)",
        "unrouted: t/2.csv",
    ]


def test_most_specific_match_wins(make_lake):
    lake = make_lake(
        [
            wf("all", match="data/", table="all_t", read={"format": "csv"}),
            wf("eu", match="data/eu/", table="eu_t", read={"format": "csv"}),
            wf("eu_csv", match="data/eu/*.csv", table="eu_csv_t"),
        ]
    )
    lake.land("data/x.csv", "a\n1\n")
    lake.land("data/eu/y.csv", "a\n2\n")
    lake.land("data/eu/z.txt", "a\n3\n")
    lake.land("data/eu/deep/w.csv", "a\n4\n")
    lake.process()
    routed = {r.file_key: r.workflow for r in lake.pipeline.runs()}
    assert routed == {"data/x.csv": "all", "data/eu/y.csv": "eu_csv", "data/eu/z.txt": "eu", "data/eu/deep/w.csv": "eu"}


def test_many_small_files_batch_but_keep_their_own_runs(make_lake):
    lake = make_lake([wf("m", read={"format": "csv"})], workers=1)
    for i in range(60):
        lake.land(f"m/f{i:03}.csv", f"id,v\n{i},{i * 2}\n{i + 1000},{i}.5\n" if i == 7 else f"id,v\n{i},{i * 2}\n")
    summary = lake.process()
    assert summary.count("succeeded") == 60
    runs = lake.pipeline.runs(limit=None)
    assert len(runs) == 60 and len({r.run_id for r in runs}) == 60
    assert len({r.batch_id for r in runs}) == 1  # one batch: the first file makes the table, the rest one query
    assert lake.rows("SELECT typeof(v) FROM m LIMIT 1") == [("DOUBLE",)]  # widened by f007's 7.5, as one by one
    assert lake.rows("SELECT count(*), count(DISTINCT _run_id), count(DISTINCT _source_file) FROM m") == [(61, 60, 60)]
    assert {r.rows_out for r in runs if r.file_key != "m/f007.csv"} == {1}
    assert lake.pipeline.runs(key="m/f007.csv")[0].rows_out == 2


def test_batch_with_a_bad_file_splits_so_only_it_fails(make_lake):
    lake = make_lake(
        [wf("m", read={"format": "csv"}, transform=[{"cast": {"v": "int"}}], retry={"max_attempts": 1})], workers=1
    )
    for i in range(10):
        lake.land(f"m/f{i}.csv", f"id,v\n{i},{'bad' if i == 4 else i}\n")
    lake.process()
    st = lake.status()
    assert st.pop("m/f4.csv") == "dead" and set(st.values()) == {"succeeded"}
    assert lake.rows("SELECT count(*) FROM m") == [(9,)]


def test_normalize_names_drop_dedupe_and_partition_expressions(make_lake):
    lake = make_lake(
        [
            wf(
                "ev",
                read={"format": "jsonl"},
                normalize_names=True,
                transform=[
                    {"drop": ["secret"]},
                    {"dedupe": {"keys": ["event_id"], "order_by": "seq"}},
                    {"cast": {"ts": "timestamp"}},
                ],
                write={"table": "ev", "partition_by": ["year(ts)", "month(ts)"]},
            )
        ]
    )
    rows = [
        {"Event ID": "a", "ts": "2026-01-05 10:00:00", "secret": 1, "seq": 1, "UserAgent": "cli"},
        {"Event ID": "a", "ts": "2026-01-05 10:00:00", "secret": 1, "seq": 2, "UserAgent": "web"},
        {"Event ID": "b", "ts": "2026-02-01 00:00:00", "secret": 1, "seq": 1, "UserAgent": "cli"},
    ]
    lake.land("ev/1.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert lake.process().ok
    cols, got = lake.pipeline.query("SELECT event_id, user_agent, year, month FROM ev ORDER BY 1")
    assert got == [("a", "web", 2026, 1), ("b", "cli", 2026, 2)]
    assert "secret" not in [c for c, _ in lake.pipeline.table("ev").schema]
    assert sorted(p.name for p in (lake.root / "lake/tables/ev").glob("year=*/month=*")) == ["month=1", "month=2"]


def test_json_array_and_gzip_inputs(make_lake):
    lake = make_lake([wf("j")])
    lake.land("j/a.json", json.dumps([{"id": 1, "name": "x"}, {"id": 2, "name": "y"}]))
    lake.land("j/b.jsonl.gz", gzip.compress(b'{"id": 3, "name": "z"}\n'))
    lake.land("j/c.csv.gz", gzip.compress(b"id,name\n4,w\n"))
    assert lake.process().ok
    assert lake.rows("SELECT id, name FROM j ORDER BY id") == [(1, "x"), (2, "y"), (3, "z"), (4, "w")]


@pytest.mark.parametrize(
    ("encoding", "declared"),
    [
        ("latin-1", True),
        ("cp1252", False),
        ("utf-16", False),
        ("utf-16-be", True),
        ("shift_jis", True),
        ("utf-8-sig", False),
    ],
)
def test_text_in_any_encoding_becomes_utf8_strings(make_lake, encoding, declared):
    text = "name,city\nJosé Álvarez,Zürich\n" if encoding != "shift_jis" else "name,city\n山田,東京\n"
    if encoding == "cp1252":
        text = "name,city\n“quoted” Müller – €5,Köln\n"
    read = {"format": "csv", **({"encoding": encoding} if declared else {})}
    lake = make_lake([wf("e", read=read)])
    lake.land("e/a.csv", text.encode(encoding))
    assert lake.process().ok, lake.pipeline.runs()[0].error
    expected = tuple(text.splitlines()[1].split(","))
    assert lake.rows("SELECT name, city FROM e") == [expected]
    assert dict(lake.pipeline.table("e").schema)["name"] == "string"


def test_header_only_and_empty_files_load_as_zero_rows(make_lake):
    """They make no table: a header alone would fix every column as text (see test_bad_input.py)."""
    lake = make_lake([wf("h", read={"format": "csv"})])
    lake.land("h/only-header.csv", "a,b,c\n")
    lake.land("h/empty.csv", "")
    assert lake.process().ok
    assert lake.pipeline.tables() == []
    assert [(r.status, r.rows_out) for r in lake.pipeline.runs()] == [("succeeded", 0), ("succeeded", 0)]


def test_a_header_with_an_unnamed_column_alone_loads_nothing_into_its_table(make_lake):
    """pandas writes a frame with its index as `,a,b`; DuckDB's sniffer takes a line with an empty field for a row.
    When the table has the columns such a line names (the first column's `column0`, whatever the case of the
    others), the line is the header of an empty extract: before, it loaded as a row of the names themselves."""
    lake = make_lake([wf("x", read={"format": "csv"})])
    lake.land("x/1.csv", ",id,Name,name\n0,7,a,b\n", mtime=1_700_000_000)
    assert lake.process().ok
    lake.land("x/2.csv", ",id,name,NAME\n", mtime=1_700_000_001)  # the header of an empty frame
    lake.land("x/3.csv", ",id,nom\n", mtime=1_700_000_002)  # not this table's columns: a row, as before
    assert lake.process().ok
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    assert (runs["x/2.csv"].rows_out, runs["x/2.csv"].note) == (0, "nothing to load: a header and no rows")
    assert runs["x/3.csv"].rows_out == 1
    assert lake.rows("SELECT id, _source_file FROM x ORDER BY _source_file") == [(7, "x/1.csv"), (None, "x/3.csv")]


def test_a_header_naming_a_declared_column_alone_loads_nothing(make_lake):
    """DuckDB's sniffer takes `t` and `f` for booleans, so `id,t` alone was a row: the first file of a daily
    extract that came empty made a table of `column0, column1` holding `id` and `true`. A line naming a column
    `read.types` or `schema.hints` declares is a header."""
    lake = make_lake(
        [
            wf("d", read={"format": "csv", "types": {"ID": "int"}}),
            wf("h", read={"format": "csv"}, schema={"hints": {"f": "string"}}),
            wf("n", read={"format": "csv"}),
        ]
    )
    lake.land("d/1.csv", "id,t\n")
    lake.land("h/1.csv", "id,f\n")
    lake.land("n/1.csv", "id,t\n")  # nothing says so: a row, as the sniffer reads it
    assert lake.process().ok
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    for key in ("d/1.csv", "h/1.csv"):
        assert (runs[key].rows_out, runs[key].note) == (0, "nothing to load: a header and no rows"), key
    assert [t.name for t in lake.pipeline.tables()] == ["n"]
    lake.land("d/2.csv", "id,t\n1,x\n")
    assert lake.process().ok
    assert lake.rows("SELECT id, t FROM d") == [(1, "x")]


def test_read_options_override_detection(make_lake):
    lake = make_lake(
        [
            wf(
                "o",
                read={
                    "format": "csv",
                    "delimiter": ";",
                    "null_values": ["NA", "-"],
                    "types": {"zip": "string"},
                    "date_format": "%d/%m/%Y",
                    "header": True,
                },
            )
        ]
    )
    lake.land("o/a.csv", "zip;when;n\n08123;31/12/2024;NA\n00501;01/01/2025;4\n")
    assert lake.process().ok
    assert lake.rows('SELECT zip, CAST("when" AS VARCHAR), n FROM o ORDER BY zip') == [
        ("00501", "2025-01-01", 4),
        ("08123", "2024-12-31", None),
    ]


def test_schema_growth_makes_a_new_version_and_queries_span_both(make_lake):
    lake = make_lake([wf("g", read={"format": "csv"})])
    lake.land("g/1.csv", "id,v\n1,10\n", mtime=1_700_000_000)
    lake.process()
    lake.land("g/2.csv", "id,v,extra\n2,2.5,x\n", mtime=1_700_000_001)
    lake.process()
    assert lake.rows("SELECT id, v, extra FROM g ORDER BY id") == [(1, 10.0, None), (2, 2.5, "x")]
    versions = lake.pipeline.store.schema_versions("g")
    assert [v["version"] for v in versions] == [1, 2]
    assert {c["name"]: c["arrow_type"] for c in versions[1]["schema"]}["v"] == "double"


def test_retried_run_never_duplicates_rows(make_lake, monkeypatch):
    """A commit that fails after the engine wrote its files leaves nothing behind; the retry loads once."""
    lake = make_lake([wf("r", read={"format": "csv"})])
    lake.land("r/a.csv", "id\n1\n2\n")
    store = lake.pipeline.store
    real = store.commit
    calls = {"n": 0}

    def flaky(table, results, **kw):
        calls["n"] += 1
        if calls["n"] == 1 and table is not None:
            raise OSError("disk full (simulated)")
        return real(table, results, **kw)

    monkeypatch.setattr(store, "commit", flaky)
    assert lake.process().ok
    assert lake.rows("SELECT count(*) FROM r") == [(2,)]
    assert [r.status for r in lake.pipeline.runs()] == ["succeeded", "failed"]
    on_disk = list((lake.root / "lake/tables/r").rglob("*.parquet"))
    assert len(on_disk) == 1  # the failed attempt's published file was removed


def test_process_picks_up_files_landed_while_stopped(make_lake):
    lake = make_lake([wf("s", read={"format": "csv"})])
    lake.land("s/1.csv", "id\n1\n")
    lake.process()
    lake.close()
    lake._pipeline = None
    lake.land("s/2.csv", "id\n2\n")
    assert lake.process().count("succeeded") == 1
    assert lake.rows("SELECT count(*) FROM s") == [(2,)]
    assert lake.process().outcomes == []  # nothing new: nothing runs


def test_ingest_copies_and_queues(make_lake, tmp_path):
    lake = make_lake([wf("s", read={"format": "csv"})])
    src = tmp_path / "outside"
    src.mkdir()
    (src / "a.csv").write_text("id\n1\n")
    (src / "b.csv").write_text("id\n2\n")
    runs = lake.pipeline.ingest([src], prefix="s")
    assert sorted(r.file_key for r in runs) == ["s/a.csv", "s/b.csv"]
    assert (lake.landing / "s/a.csv").read_text() == "id\n1\n"
    assert not list(lake.landing.rglob(".*"))  # no temp files left
    assert lake.process(discover=False).count("succeeded") == 2
    again = lake.pipeline.ingest([src / "a.csv"], prefix="s")  # same bytes again: a new version, skipped
    assert len(again) == 1
    lake.process()
    assert lake.rows("SELECT count(*) FROM s") == [(2,)]


def test_ingest_queues_the_files_placed_and_then_names_each_key_the_zone_cannot_hold(make_lake, tmp_path):
    from landfall.errors import UnsafeKey

    lake = make_lake([wf("s", read={"format": "csv"})])
    (lake.landing / "s").mkdir(parents=True)
    (lake.landing / "s/b").write_text("a file, not a folder")
    src = tmp_path / "outside"
    for i, rel in enumerate(("a.csv", "b/c.csv", "d.csv")):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(f"id\n{i}\n")
    with pytest.raises(UnsafeKey, match=r"1 of 3 files not placed \(the others are queued\): key `s/b/c.csv`"):
        lake.pipeline.ingest([src], prefix="s")
    assert lake.process(discover=False).count("succeeded") == 2
    refused: list[str] = []
    assert len(lake.pipeline.ingest([src], prefix="s", on_refused=lambda key, why: refused.append(key))) == 2
    assert refused == ["s/b/c.csv"]


def test_a_fault_of_landfall_outside_any_files_load_fails_the_batch_naming_it_and_the_rest_go_on(
    make_lake, monkeypatch
):
    """A fault of landfall's own before a batch's job (here: telling a file's format) ended `process` with a
    traceback, and under `up` held the runs until their lease ran out, to be dead-lettered at last as
    interrupted by a dying worker. Now each run fails with the error, retried and then dead naming it, and the
    other workflows' files load."""
    from landfall import runner

    lake = make_lake([wf("s", read={"format": "csv"}, retry={"max_attempts": 2, "backoff_seconds": 0}), wf("t")])
    real = runner.detected_format

    def broken(workflow, key, path):
        if workflow.name == "s":
            raise RuntimeError("boom")
        return real(workflow, key, path)

    monkeypatch.setattr(runner, "detected_format", broken)
    lake.land("s/a.csv", "id\n1\n")
    lake.land("t/a.csv", "id\n2\n")
    summary = lake.process()
    assert (summary.count("succeeded"), summary.count("dead")) == (1, 1)
    (dead,) = lake.pipeline.store.runs(status="dead")
    assert dead.file_key == "s/a.csv" and dead.attempt == 2, dead
    assert dead.error == "landfall failed outside the file's load (RuntimeError: boom); not the file's fault"
    monkeypatch.setattr(runner, "detected_format", real)
    lake.pipeline.retry_dead()
    assert lake.process().count("succeeded") == 1
    assert lake.rows("SELECT id FROM s") == [(1,)]


def test_lease_expiry_requeues_and_cleans_up(make_lake):
    lake = make_lake([wf("s", read={"format": "csv"})], lease_seconds=0.5)
    lake.land("s/1.csv", "id\n1\n")
    p = lake.pipeline
    p.discover()
    leased = p.store.lease("otherhost:1:x", limit=10, max_bytes=1 << 30, lease_seconds=0.5)
    assert [r.status for r in leased] == ["running"]
    time.sleep(0.6)
    summary = lake.process()
    assert summary.count("succeeded") == 1
    runs = p.runs(key="s/1.csv")
    assert [r.status for r in runs] == ["succeeded", "failed"]
    assert "lease expired" in runs[1].error


def test_a_heartbeat_warns_of_runs_taken_back_only_when_a_lease_ran_out(make_lake, caplog):
    """A heartbeat between a batch's commit and its end (runs recorded, deferred or failed by the worker itself)
    finds its runs no longer running: that is the batch's own doing, not a take-back. Before, it warned `500 leased
    runs were taken back` about runs that had just succeeded (seen twice in a `landfall process` of 100,000 files).
    A run taken back by recovery (its lease ran out: no heartbeat for longer than `lease_seconds`) still warns."""
    from landfall.runner import Runner

    lake = make_lake([wf("s", read={"format": "csv"})], lease_seconds=2)
    lake.land("s/good.csv", "id\n1\n")
    lake.land("s/bad.csv", b"id\n\xff\x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0e\x0f\x10\x11\x12\x13\x14\x15\n")
    (worker,) = lake.pipeline._workers(1, None)
    real = Runner.run_batch

    def then_beat(self, runs):  # the heartbeat thread's turn comes right after the batch recorded its runs
        out = real(self, runs)
        worker.heartbeat()
        return out

    lake.pipeline.discover()
    with caplog.at_level("WARNING", logger="landfall.worker"):
        Runner.run_batch = then_beat
        try:
            while worker.step():
                pass
        finally:
            Runner.run_batch = real
    statuses = sorted(r.status for r in lake.pipeline.runs())
    assert statuses == ["dead", "succeeded"]  # one ended well, one failed for good (binary data): both recorded
    assert not [r.getMessage() for r in caplog.records if r.name == "landfall.worker"]

    lake.land("s/late.csv", "id\n2\n")
    lake.pipeline.discover()
    (run,) = lake.pipeline.store.lease(worker.id, limit=1, max_bytes=1 << 30, lease_seconds=0.05)
    worker._held, worker._renewed = [run.run_id], time.monotonic() - 2  # its last renewal a lease ago
    time.sleep(0.1)
    assert [r.run_id for r in lake.pipeline.store.reap()] == [run.run_id]  # taken back by recovery
    with caplog.at_level("WARNING", logger="landfall.worker"):
        worker.heartbeat()
    assert [r for r in caplog.records if "1 leased runs are no longer held" in r.getMessage()]
    worker.close()


def test_workflows_with_a_sql_step_run_file_by_file(make_lake):
    """A free-form query may aggregate: batching files would change its result, so each file runs alone."""
    lake = make_lake(
        [wf("agg", read={"format": "csv"}, transform=[{"sql": "SELECT k, sum(v) AS total FROM input GROUP BY k"}])],
        workers=1,
    )
    for i in range(5):
        lake.land(f"agg/{i}.csv", f"k,v\nk{i},1\nk{i},2\n")
    assert lake.process().ok
    assert lake.rows("SELECT k, total, _source_file FROM agg ORDER BY k") == [
        (f"k{i}", 3, f"agg/{i}.csv") for i in range(5)
    ]
    assert len({r.batch_id for r in lake.pipeline.runs()}) == 5


def test_mixed_line_endings_and_mixed_value_forms_still_load(make_lake):
    lake = make_lake([wf("m", read={"format": "csv"}, retry={"max_attempts": 1})])
    lake.land("m/newlines.csv", b"a,b\n1,2\r\n3,4\r5,6\r\r\n7,8\n")
    lake.land("m/stamps.csv", b"id,ts\n1,2024-03-08 01:25:58\n2,03/10/2024 01:25:58\n")
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    assert lake.rows("SELECT a, b FROM m WHERE a IS NOT NULL ORDER BY a") == [(1, 2), (3, 4), (5, 6), (7, 8)]
    assert lake.rows("SELECT ts FROM m WHERE ts IS NOT NULL ORDER BY id") == [
        ("2024-03-08 01:25:58",),
        ("03/10/2024 01:25:58",),
    ]  # two forms in one column: kept as text


def test_json_that_is_not_records_fails_clearly_when_records_are_required(make_lake):
    lake = make_lake([wf("j", read={"records": "true"}, retry={"max_attempts": 1})])
    lake.land("j/scalar.json", "42")
    lake.land("j/mixed.json", '[{"a": 1}, 2]')
    lake.land("j/lines.jsonl", '{"a": 1}\n[1, 2]\n')
    lake.land("j/ok.json", '[{"a": 3}]')
    lake.process()
    assert lake.rows("SELECT a FROM j") == [(3,)]
    assert [c for c, _ in lake.pipeline.table("j").schema if not c.startswith("_")] == ["a"]  # no stray `json`
    errors = {r.file_key: r.error for r in lake.pipeline.runs(status="dead")}
    assert (
        "`j/scalar.json` line 1: expected records (JSON objects), but the top level is a number"
        in errors["j/scalar.json"]
    )
    assert (
        "`j/mixed.json` line 1: expected records (JSON objects), but element 2 of the array is a number"
        in (errors["j/mixed.json"])
    )
    assert "`j/lines.jsonl` line 2: expected a JSON object per line, found an array" in errors["j/lines.jsonl"]


def test_json_that_is_not_records_loads_as_values_by_default(make_lake):
    lake = make_lake([wf("v")])
    lake.land("v/scalar.json", "42")
    lake.land("v/list.json", '[1, "two", {"three": 3}]')
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    assert sorted(lake.rows("SELECT value FROM v")) == [('"two"',), ("1",), ("42",), ('{"three":3}',)]


def test_text_never_rounds_into_an_integer_column(make_lake):
    """DuckDB casts '2.5' to BIGINT as 3; landfall refuses, whether batched or alone."""
    lake = make_lake([wf("r", read={"format": "csv"}, retry={"max_attempts": 1})], workers=1)
    lake.land("r/1.csv", "id,amount\n1,10\n", mtime=1_700_000_000)
    lake.land("r/2.csv", "id,amount\n2,2.5\n", mtime=1_700_000_000)
    assert lake.process().ok
    assert lake.rows("SELECT id, amount FROM r ORDER BY id") == [(1, 10.0), (2, 2.5)]
    lake2 = make_lake(
        [
            wf(
                "c",
                read={"format": "csv", "all_strings": True},
                transform=[{"cast": {"n": "int"}}],
                retry={"max_attempts": 1},
            )
        ]
    )
    lake2.land("c/a.csv", "n\n1\n2.5\n")
    lake2.process()
    err = lake2.pipeline.runs()[0].error
    assert "`c/a.csv` line 3" in err and "2.5" in err


def test_process_takes_back_a_lease_that_expires_while_it_waits(make_lake):
    """A run leased by a worker on another host that died: `process` waits for it, then takes it back once its
    lease expires, instead of waiting forever."""
    lake = make_lake([wf("s", read={"format": "csv"})], lease_seconds=1.5)
    lake.land("s/1.csv", "id\n1\n")
    p = lake.pipeline
    p.discover()
    assert len(p.store.lease("otherhost:1:x", limit=10, max_bytes=1 << 30, lease_seconds=1.5)) == 1
    started = time.monotonic()
    summary = lake.process()  # the lease is live at the start: not reaped then
    assert summary.count("succeeded") == 1 and time.monotonic() - started < 10
    assert [r.status for r in p.runs(key="s/1.csv")] == ["succeeded", "failed"]


def test_faults_that_are_not_the_files_are_retried_with_backoff(make_lake, monkeypatch):
    """An error that may pass later (here the engine runs out of memory twice) is retried per `retry`, and the
    summary counts the file once, by how it ended."""
    import duckdb

    from landfall.engines.duckdb.context import JobContext

    lake = make_lake([wf("r", read={"format": "csv"}, retry={"max_attempts": 3, "backoff_seconds": 0.01})])
    lake.land("r/a.csv", "id\n1\n2\n")
    real = JobContext.describe
    calls = {"n": 0}

    def flaky(self, view):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate (simulated)")
        return real(self, view)

    monkeypatch.setattr(JobContext, "describe", flaky)
    summary = lake.process()
    assert summary.ok and summary.count("succeeded") == 1 and summary.count("failed") == 0
    runs = lake.pipeline.runs(key="r/a.csv")
    assert [(r.status, r.attempt) for r in runs] == [("succeeded", 3), ("failed", 2), ("failed", 1)]
    assert "not the file's fault" in runs[1].error


def test_a_step_that_cannot_bind_is_dead_at_once(make_lake):
    """An unknown column in a `filter` fails the same way on every attempt: no backoff, one dead file."""
    lake = make_lake([wf("f", read={"format": "csv"}, transform=[{"filter": "qty > 0"}], retry={"max_attempts": 3})])
    lake.land("f/a.csv", "id,quantity\n1,2\n")
    summary = lake.process()
    assert (summary.count("dead"), summary.count("failed")) == (1, 0)
    (run,) = lake.pipeline.runs(key="f/a.csv")
    assert (run.status, run.attempt) == ("dead", 1)
    assert "step 1 (`filter`)" in run.error and "qty" in run.error


def test_a_step_given_text_for_a_number_says_which_column_and_how_to_read_it(make_lake):
    """DuckDB refuses `qty > 0` over a `qty` read as text; the message names the column, one of its values that is
    not a number, and what reads it: `null_values` for a word, `decimal_separator` for `2,5`, else a cast."""
    lake = make_lake([wf("f", transform=[{"filter": "qty > 0"}], retry={"max_attempts": 1})])
    lake.land("f/a.csv", "id,qty\n1,2\n2,n/a\n")
    lake.land("f/b.csv", "id;qty\n1;2,5\n")
    lake.land("f/c.csv", "id,qty\n1,2\n2,3 units\n")
    lake.process()
    errors = {r.file_key: r.error for r in lake.pipeline.runs()}
    assert errors["f/a.csv"].endswith(
        "an explicit cast is required; `qty` is text here (`n/a`): if `n/a` means no value, `read: {null_values: "
        '["n/a"]}`; else cast it in a step before this one (`cast: {qty: double}`) or declare its type (`read: '
        "{types: {qty: double}}`)"
    ), errors["f/a.csv"]
    assert errors["f/b.csv"].endswith(
        "`qty` is text here (`2,5`): numbers written with a decimal comma are read as numbers with `read: "
        '{decimal_separator: ","}`'
    ), errors["f/b.csv"]
    assert errors["f/c.csv"].endswith(
        "`qty` is text here (`3 units`): cast it in a step before this one (`cast: "
        "{qty: double}`) or declare its type (`read: {types: {qty: double}}`)"
    ), errors


def test_drop_of_a_missing_column_fails_like_rename_unless_missing_ok(make_lake):
    lake = make_lake(
        [
            wf("d", read={"format": "csv"}, transform=[{"drop": ["note", "nope"]}], retry={"max_attempts": 1}),
            wf("ok", read={"format": "csv"}, transform=[{"drop": {"columns": ["note", "nope"], "missing_ok": True}}]),
        ]
    )
    lake.land("d/a.csv", "id,note\n1,x\n")
    lake.land("ok/a.csv", "id,note\n1,x\n")
    lake.process()
    (run,) = lake.pipeline.runs(key="d/a.csv")
    assert run.status == "dead" and "no column `nope` to drop" in run.error, run.error
    assert lake.pipeline.query("SELECT * FROM ok")[0][:1] == ["id"]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_lineage_false_writes_no_lineage_columns(make_lake, fmt):
    """`lineage: false` was accepted and ignored; now the table has no `_source_file`, `_ingested_at`, `_run_id`,
    runs still count their rows, and merge still works (each file runs alone)."""
    lake = make_lake(
        [
            wf("a", read={"format": "csv"}, lineage=False, on_change="append", write={"table": "a", "format": fmt}),
            wf(
                "m",
                read={"format": "csv"},
                lineage=False,
                write={"table": "m", "format": fmt, "mode": "merge", "keys": ["id"]},
            ),
        ]
    )
    for i in range(3):
        lake.land(f"a/{i}.csv", f"id,v\n{i},x\n{i + 10},y\n")
    lake.land("m/1.csv", "id,v\n1,old\n2,old\n", mtime=1_700_000_000)
    assert lake.process().ok
    lake.land("m/2.csv", "id,v\n2,new\n3,new\n", mtime=1_700_000_100)
    assert lake.process().ok
    cols, rows = lake.pipeline.query("SELECT * FROM a ORDER BY id")
    assert cols == ["id", "v"] and len(rows) == 6
    assert lake.rows("SELECT id, v FROM m ORDER BY id") == [(1, "old"), (2, "new"), (3, "new")]
    assert [n for n, _ in lake.pipeline.table("m").schema] == ["id", "v"]
    assert {r.rows_out for r in lake.pipeline.runs(workflow="a")} == {2}


def test_lineage_false_with_replace_on_change_is_refused(tmp_path):
    import yaml

    from landfall.config import load_settings
    from landfall.errors import ConfigError

    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump({"workflows": [wf("a", lineage=False)]}))
    with pytest.raises(ConfigError, match="`lineage: false` leaves out `_source_file`, which `on_change: replace`"):
        load_settings(tmp_path / "landfall.yaml")


def test_max_interruptions_sets_when_a_file_that_kills_its_worker_is_dead(make_lake):
    """`max_interruptions: 1`: the first worker that dies while loading a file sends it to the dead-letter list
    (the default, 3, queues it again twice, without using an attempt)."""
    import time

    from landfall.recovery import recover

    for limit, status in ((1, "dead"), (3, "queued")):
        lake = make_lake([wf("f")], max_interruptions=limit)
        lake.land("f/a.csv", "id\n1\n")
        lake.pipeline.discover()
        (run,) = lake.pipeline.store.lease("otherhost:1:x", limit=1, max_bytes=1 << 30, lease_seconds=0.01)
        time.sleep(0.05)  # its worker is gone: the lease runs out
        recover(lake.pipeline.settings, lake.pipeline.store)
        runs = lake.pipeline.runs(key="f/a.csv")
        assert runs[0].status == status, [(r.status, r.error) for r in runs]
        if status == "dead":
            assert "the worker died once while loading this file" in runs[0].error
