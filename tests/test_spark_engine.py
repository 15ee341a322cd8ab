"""`engine: spark` on Spark `local[2]`: the same workflow gives the same tables, quarantine and runs as on DuckDB.

One Spark session serves the module (the JVM takes about 8 s to start)."""

from __future__ import annotations

import datetime
import random
import struct

import pytest
from spark_helpers import SPARK, compare, java_or_skip, runs_of, tables_of

from conftest import NEWER_ENCODINGS, look, wf

pytestmark = [pytest.mark.spark, pytest.mark.slow]
# 1 MiB splits: a file of a few MiB is read line by line by several tasks, as a file over 128 MiB is by default
SPLITS = {**SPARK, "conf": {**SPARK["conf"], "spark.sql.files.maxPartitionBytes": "1048576"}}


@pytest.fixture(scope="module", autouse=True)
def _java():
    java_or_skip()
    yield
    from landfall.engines.spark.session import stop

    stop()


def test_csv_with_quotes_types_and_steps(make_lake):
    flow = wf(
        "sales",
        read={"format": "csv"},
        transform=[
            {"rename": {"Unit Price": "price"}},
            {"compute": {"total": "price * qty", "month": "strftime(day, '%Y-%m')"}},
            {"filter": "qty > 0"},
            {"drop": ["internal"]},
        ],
        write={"table": "sales", "partition_by": ["country"]},
    )
    compare(
        make_lake,
        [flow],
        {
            "sales/a.csv": 'id,country,Unit Price,qty,day,note,internal\n1,FR,2.5,3,2024-01-02,"He said ""hi""",x\n'
            '2,DE,1.0,0,2024-01-03,,y\n3,FR,4,2,2024-01-04,"multi\nline",z\n',
            "sales/b.csv": "id,country,Unit Price,qty,day,note,internal\n4,,1.5,1,2024-01-05,x,w\n",
        },
    )


def _jsonl(rows) -> str:
    import json

    return "".join(json.dumps(r) + "\n" for r in rows)


def test_nested_orders_flatten_explode_and_child_tables(make_lake):
    from test_nested import ORDERS, ORDERS_WF

    children = wf(
        "kids",
        read={"format": "jsonl"},
        transform=[
            {"flatten": {"keep_json": ["metadata"]}},
            {"child_tables": {"columns": ["products"], "key": ["order_id"]}},
        ],
        write={"table": "orders_c"},
    )
    compare(make_lake, [ORDERS_WF, children], {"orders/a.jsonl": _jsonl(ORDERS), "kids/a.jsonl": _jsonl(ORDERS)})


def test_rules_quarantine_with_lines_and_fail_with_the_first_line(make_lake):
    rules = [
        {"not_null": ["id"], "action": "quarantine"},
        {"range": {"column": "qty", "min": 0, "max": 100}, "action": "quarantine"},
        {"accepted_values": {"column": "country", "values": ["FR", "DE"]}, "action": "warn"},
        {"regex": {"column": "email", "pattern": "@"}, "action": "quarantine"},
        {"expect": "qty * 2 < 150", "action": "quarantine"},
        {"unique": ["id"], "action": "quarantine"},
        {"row_count": {"min": 1}},
    ]
    body = (
        "id,country,qty,email\n1,FR,3,a@x\n,DE,4,b@x\n3,UK,500,c@x\n\n4,FR,5,nope\n5,DE,80,e@x\n6,FR,1,f@x\n"
        '6,DE,2,"g\n@x"\n7,FR,1,h@x\n'
    )
    compare(
        make_lake,
        [
            wf("q", read={"format": "csv"}, validate=rules, write={"table": "q"}),
            wf("f", read={"format": "csv"}, validate=[{"not_null": ["id"]}], write={"table": "f"}),
        ],
        {"q/a.csv": body, "f/a.csv": body},
    )


def test_bad_rows_quarantine_and_fail_name_the_line(make_lake):
    csv_body = "a,b,c\n1,2,3\n4,5\n6,7,8\n9,10,11,12\n13,14,15\n"
    jsonl_body = '{"a": 1}\n{"a": 2\n\n[1, 2]\n{"a": 3}\n'
    compare(
        make_lake,
        [
            wf("cq", read={"format": "csv", "bad_rows": "quarantine"}, write={"table": "cq"}),
            wf("cf", read={"format": "csv"}, write={"table": "cf"}),
            wf("jq", read={"format": "jsonl", "bad_rows": "quarantine"}, write={"table": "jq"}),
            wf("jf", read={"format": "jsonl"}, write={"table": "jf"}),
        ],
        {"cq/a.csv": csv_body, "cf/a.csv": csv_body, "jq/a.jsonl": jsonl_body, "jf/a.jsonl": jsonl_body},
    )


def test_numbers_of_more_digits_than_a_double_holds_are_judged_alike(make_lake):
    """Into a table's double column (`discard_row`: a value that does not fit sets its row aside), 600 numbers
    written every way: doubles printed at 15 to 25 digits (`%.17g`, numpy's `%.18e`), float32 values at 16 digits
    (whose last digit may round a tie), decimals of 14 to 24 digits. Each engine judges whether a double gives a
    number back whole its own way (DuckDB's `printf` of the double; Spark's exact `BigDecimal` of it, rounded): the
    same rows load and the same are set aside."""
    rng = random.Random(11)
    values = []
    for i in range(600):
        x = rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
        kind = i % 4
        if kind == 0:
            values.append(f"{x:.{rng.randint(14, 24)}e}")
        elif kind == 1:
            values.append(f"{x:.{rng.randint(15, 20)}g}")
        elif kind == 2:
            values.append(f"{struct.unpack('f', struct.pack('f', rng.random()))[0]:.16g}")
        else:
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(14, 24)))
            point = rng.randint(1, len(digits) - 1)
            values.append(f"{digits[:point]}.{digits[point:]}")
    body = "id,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values, 1))
    flow = wf("d", schema={"evolution": "discard_row"})
    lakes = {}
    for engine in ("duckdb", "spark"):  # the table's first file alone: its column is a double
        lake = lakes[engine] = make_lake([flow], engine=engine, spark=SPARK)
        lake.land("d/0.csv", "id,v\n0,1.5\n", mtime=1)
        lake.process()
        lake.land("d/a.csv", body, mtime=2)
        lake.process()
    duck, spark = lakes["duckdb"], lakes["spark"]
    assert runs_of(spark) == runs_of(duck)
    assert tables_of(spark) == tables_of(duck)
    kept = duck.rows("SELECT count(*) FROM d")[0][0]
    assert 300 < kept < 601, kept  # both kinds of value are there


def test_merge_by_key_on_delta_and_dedupe_and_sql(make_lake):
    merge = wf(
        "m",
        read={"format": "jsonl"},
        transform=[{"flatten": {}}, {"dedupe": {"keys": ["id"], "order_by": "ts"}}],
        write={"table": "m", "format": "delta", "mode": "merge", "keys": ["id"], "order_by": "ts"},
    )
    sql = wf(
        "s",
        read={"format": "csv"},
        transform=[{"sql": "SELECT country, CAST(sum(qty) AS BIGINT) AS qty, count(*) AS n FROM input GROUP BY ALL"}],
        write={"table": "s"},
    )
    files = {
        "m/1.jsonl": _jsonl([{"id": 1, "ts": 1, "v": {"x": "a"}}, {"id": 2, "ts": 1, "v": {"x": "b"}}]),
        "m/2.jsonl": _jsonl([{"id": 1, "ts": 3, "v": {"x": "c"}}, {"id": 1, "ts": 2, "v": {"x": "d"}}]),
        "m/3.jsonl": _jsonl([{"id": 2, "ts": 0, "v": {"x": "old"}}, {"id": 3, "ts": 5, "v": {"x": "e"}}]),
        "s/a.csv": "country,qty\nFR,1\nDE,2\nFR,3\n",
    }
    compare(make_lake, [merge, sql], files, workers=1)


def test_json_documents_and_parquet_input_and_time_partitions(make_lake, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {"id": [1, 2, 3], "ts": pa.array([1_700_000_000_000_000, 1_710_000_000_000_000, None], pa.timestamp("us"))}
    )
    pq.write_table(table, tmp_path / "in.parquet")
    files = {
        "d/a.json": '[{"id": 1, "at": "2024-01-02T10:00:00", "tags": ["x", "y"]}, '
        '{"id": 2, "at": "2024-03-02T11:00:00", "tags": []}]',
        "d/b.json": '{"id": 3, "at": "2024-05-02T12:30:00", "tags": null}',
        "v/a.json": "[1, 2, 3]",
        "p/a.parquet": (tmp_path / "in.parquet").read_bytes(),
    }
    compare(
        make_lake,
        [
            wf("d", read={"format": "json"}, write={"table": "d", "partition_by": ["year(at)", "month(at)"]}),
            wf("v", read={"format": "json"}, write={"table": "v"}),
            wf("p", read={"format": "parquet"}, write={"table": "p"}),
        ],
        files,
    )


# --- the corpus: csv-spectrum, encodings -----------------------------------------------------------------------


def _corpus():
    import os
    from pathlib import Path

    from conftest import CORPUS

    root = Path(os.environ.get("LANDFALL_CORPUS", CORPUS))
    if not (root / "csv-spectrum").is_dir():
        pytest.skip(f"corpus not found at {root} (shared/corpus beside the repository, or LANDFALL_CORPUS)")
    return root


ENCODED = [
    "tricky-csv/duckdb/encodings/latin1.csv",
    "tricky-csv/duckdb/encodings/latin1.csv.gz",
    "tricky-csv/duckdb/encodings/utf16.csv",
    "tricky-csv/duckdb/encodings/shift_jis.csv",
    "tricky-csv/duckdb/encodings/all_latin1.csv",
    "tricky-csv/frictionless/latin1.csv",
    "tricky-csv/messytables/utf-16le_encoded.csv",
]


@pytest.mark.corpus
@pytest.mark.parametrize("all_strings", [False, True], ids=["detected", "all_strings"])
def test_csv_spectrum_and_encodings_same_on_both_engines(make_lake, all_strings):
    root = _corpus()
    flows, files = [], {}
    for n, path in enumerate(sorted((root / "csv-spectrum" / "csvs").glob("*.csv"))):
        flows.append(wf(f"s{n}", read={"format": "csv", "all_strings": all_strings}, write={"table": f"s{n}"}))
        files[f"s{n}/{path.name}"] = path.read_bytes()
    for n, rel in enumerate(ENCODED):
        read = {"format": "csv", "all_strings": all_strings}
        if rel.endswith("shift_jis.csv"):
            read["encoding"] = "shift_jis"
        flows.append(wf(f"e{n}", read=read, write={"table": f"e{n}"}))
        files[f"e{n}/{rel.rsplit('/', 1)[1]}"] = (root / rel).read_bytes()
    compare(make_lake, flows, files)


def test_lines_are_exact_across_many_splits(make_lake):
    """A file read line by line by many tasks (1 MiB splits here): rows that break a rule and records that
    cannot be parsed are named by their lines, the header and blank lines counted."""
    lines = ["id,name,qty"]
    expected = []  # (line, rule) as a reader of the file counts them
    for i in range(1, 60_001):
        if i % 9_973 == 0:
            lines.append("")  # blank lines between records
        if i % 7_919 == 0:
            lines.append(f"{i},ragged")  # cannot be parsed: quarantined with its line
            expected.append((len(lines), "parse"))
            continue
        qty = -1 if i % 5_003 == 0 else i % 50
        lines.append(f"{i},name {i},{qty}")
        if qty < 0:
            expected.append((len(lines), "range(qty)"))
    body = "\n".join(lines) + "\n"
    assert len(body) > 1 << 20  # several splits, read line by line (bigger than one split)
    rules = [{"range": {"column": "qty", "min": 0}, "action": "quarantine"}]
    lake = make_lake(
        [wf("q", read={"format": "csv", "bad_rows": "quarantine"}, validate=rules, write={"table": "q"})],
        engine="spark",
        spark=SPLITS,
    )
    lake.land("q/a.csv", body)
    assert lake.process().ok
    assert lake.rows("SELECT _line, _rule FROM quarantine.q ORDER BY _line") == sorted(expected)
    assert lake.rows("SELECT count(*) FROM q") == [(60_000 - 7 - 11,)]
    run = lake.pipeline.runs()[0]
    assert (run.rows_in, run.rows_out, run.rows_quarantined) == (60_000, 60_000 - 18, 18)


def test_a_rewrite_of_several_table_files_drops_the_replaced_files_rows_from_each(tmp_path):
    """A landed file loaded again replaces its rows in every table file that holds them: each such file is copied
    without them, keeping its partition folder (before: the second file failed, `'str' object is not callable`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from landfall.engines.spark import upkeep
    from landfall.engines.spark.session import session

    spark = session(SPARK["master"], SPARK["conf"])
    files = []
    for i, part in enumerate(("day=1", "day=2")):
        (tmp_path / part).mkdir()
        path = tmp_path / part / f"part-{i}.parquet"
        pq.write_table(pa.table({"id": [i, 10 + i], "_source_file": ["a.csv", "b.csv"]}), path)
        files.append((str(path), f"{part}/part-{i}.parquet"))
    staging = tmp_path / "staging"
    made = upkeep.rewrite(spark, lambda path, _scratch: path, files, ["a.csv"], str(staging), "c1")
    assert [(f.relpath, f.rows, f.partition) for f in made] == [
        ("day=1/part-c1-r0.parquet", 1, {"day": "1"}),
        ("day=2/part-c1-r1.parquet", 1, {"day": "2"}),
    ]
    assert [pq.read_table(f.path).to_pydict() for f in made] == [
        {"id": [10], "_source_file": ["b.csv"]},
        {"id": [11], "_source_file": ["b.csv"]},
    ]


def test_a_number_beyond_a_doubles_range_in_a_file_read_by_many_tasks(make_lake):
    """A CSV bigger than one split is read line by line, its doubles parsed by Spark's own parser, which takes
    `1e400` for an infinity: an infinite value it parsed sends the file through again as text, where the number
    keeps its column as text (every value as written), as on DuckDB; an infinity written as a word is a double."""
    rows = "".join(f"{i},{i}.25\n" for i in range(1, 250_001))
    body = f"id,v\n{rows}250001,1e400\n"
    assert len(body) > 3 << 20  # several 1 MiB splits
    words = f"id,v\n{rows}250001,Infinity\n"
    lake = make_lake([wf("t"), wf("w")], engine="spark", spark=SPLITS)
    lake.land("t/a.csv", body)
    lake.land("w/a.csv", words)
    result = lake.process()
    assert result.ok, [r.error for r in lake.pipeline.runs()]
    assert lake.rows("SELECT typeof(v), v FROM t WHERE id IN (1, 250001) ORDER BY id") == [
        ("VARCHAR", "1.25"),
        ("VARCHAR", "1e400"),
    ]
    assert lake.rows("SELECT typeof(v), v FROM w WHERE id = 250001") == [("DOUBLE", float("inf"))]


@pytest.mark.parametrize("quoted_early", [True, False], ids=["quotes_in_the_sample", "no_quote_in_the_sample"])
def test_a_quoted_value_spanning_lines_deep_in_a_file_read_by_many_tasks(make_lake, quoted_early):
    """A CSV bigger than one split is read line by line; one quoted value spanning two lines, deep in the file
    (several splits in), sends it through again whole: every row loads, the value intact, as on DuckDB. With no
    quote in the first rows the sniffer sees no quote at all: Spark looks for `"` and detects on the whole file."""
    from spark_helpers import tables_of

    rows = ["id,name,qty,note"]
    for i in range(1, 140_001):
        if i == 120_000:
            note = '"two\nlines, ""quoted"""'
        elif quoted_early and i % 1_000 == 0:
            note = f'"note, {i}"'
        else:
            note = f"note {i}"
        rows.append(f"{i},name {i},{i % 97},{note}")
    body = ("\n".join(rows) + "\n").encode()
    assert len(body) > 3 << 20  # several 1 MiB splits, the value in one of the last
    flow = wf("t", read={"format": "csv"}, write={"table": "t"})
    lakes = {}
    # the DuckDB engine detects no quote in a sample without one and fails the file (line 120002)
    for engine in ("duckdb", "spark") if quoted_early else ("spark",):
        lakes[engine] = make_lake([flow], engine=engine, spark=SPLITS)
        lakes[engine].land("t/a.csv", body)
        result = lakes[engine].process()
        runs = lakes[engine].pipeline.runs()
        assert result.ok, [r.error for r in runs]
        assert (runs[0].status, runs[0].rows_in, runs[0].rows_out) == ("succeeded", 140_000, 140_000)
    spark = lakes["spark"]
    assert spark.rows("SELECT note FROM t WHERE id IN (2000, 120000) ORDER BY id") == [
        ("note, 2000" if quoted_early else "note 2000",),
        ('two\nlines, "quoted"',),
    ]
    assert spark.rows("SELECT count(*), sum(id), sum(qty), count(DISTINCT note) FROM t") == [
        (140_000, 140_000 * 140_001 // 2, sum(i % 97 for i in range(1, 140_001)), 140_000)
    ]
    assert dict(spark.pipeline.table("t").schema)["id"] == "int64"
    if quoted_early:
        assert tables_of(spark) == tables_of(lakes["duckdb"])


@pytest.mark.parametrize("split", [False, True], ids=["one_split", "many_splits"])
def test_a_ragged_row_is_found_whatever_columns_the_workflow_keeps(make_lake, split):
    """A record with too few fields fails its file with its line (or is set aside) on Spark as on DuckDB, when
    every column is text (Spark refuses to scan a file for its corrupt record column alone) and when the
    workflow keeps fewer columns than the file has (Spark's column pruning judged the record on those alone
    and loaded it), in a file read whole and in one read line by line by several tasks."""
    rows = ["a,b,c"] + [f"{i},{i},{i}" for i in range(1, (100_001 if split else 11))]
    rows[len(rows) // 2] = "0,0"  # a value of the right type, one field short
    body = "\n".join(rows) + "\n"
    assert (len(body) > 1 << 20) == split
    text, quarantine = {"format": "csv", "all_strings": True}, {"format": "csv", "bad_rows": "quarantine"}
    flows = [
        wf("text", read=text, write={"table": "text"}),
        wf("textq", read={**text, "bad_rows": "quarantine"}, write={"table": "textq"}),
        wf("drop", read=text, transform=[{"drop": ["b", "c"]}], write={"table": "drop"}),
        wf("sql", read=quarantine, transform=[{"sql": "SELECT a FROM input"}], write={"table": "sql"}),
    ]
    duck, spark = compare(
        make_lake, flows, {f"{f['name']}/a.csv": body for f in flows}, spark=SPLITS if split else SPARK
    )
    line = len(rows) // 2 + 1
    assert {r.file_key: r.error for r in spark.pipeline.runs() if r.error} == {
        key: f"`{key}` line {line}: expected 3 fields (as in the header), found 2"
        for key in ("text/a.csv", "drop/a.csv")
    }
    assert spark.rows("SELECT _line, _raw FROM quarantine.textq") == [(line, "0,0")]


def test_compaction_and_quarantine_replay_run_on_spark(make_lake):
    """The table upkeep an engine does (compaction; replaying quarantined rows once the rules change) works on
    Spark too: rows and their lineage stay, nothing is counted twice."""
    import yaml

    from landfall.engines.spark.engine import SparkEngine
    from landfall.maintenance import optimize
    from landfall.quarantine import replay

    rules = [{"range": {"column": "qty", "min": 0}, "action": "quarantine"}]
    flow = wf("q", read={"format": "csv"}, validate=rules, write={"table": "q", "partition_by": ["day"]})
    lake = make_lake([flow], engine="spark", spark=SPARK, workers=1)
    for i in range(3):
        lake.land(f"q/{i}.csv", f"id,qty,day\n{i * 10 + 1},5,mon\n{i * 10 + 2},-1,mon\n", mtime=1_700_000_000 + i)
    assert lake.process().ok
    p = lake.pipeline
    assert len(p.store.table_files("q")) == 3
    engine = SparkEngine.from_settings(p.settings)
    result = optimize(p.store, engine, "q", min_files=2, zones=p.zones)
    assert result.partitions == 1 and len(p.store.table_files("q")) == 1
    assert lake.rows("SELECT _source_file, id FROM q ORDER BY id") == [("q/0.csv", 1), ("q/1.csv", 11), ("q/2.csv", 21)]
    assert lake.rows("SELECT count(*) FROM quarantine.q") == [(3,)]
    # the rule is relaxed: the quarantined rows now pass and move to the table, once
    doc = yaml.safe_load(lake.config.read_text())
    doc["workflows"][0]["validate"][0]["range"]["min"] = -5
    lake.config.write_text(yaml.safe_dump(doc))
    lake.close()
    lake._pipeline = None
    p = lake.pipeline
    done = replay(p.settings, p.store, SparkEngine.from_settings(p.settings), "q", zones=p.zones)
    assert (done.replayed, done.still_quarantined) == (3, 0)
    assert lake.rows("SELECT id, qty, _source_file FROM q WHERE qty < 0 ORDER BY id") == [
        (2, -1, "q/0.csv"),
        (12, -1, "q/1.csv"),
        (22, -1, "q/2.csv"),
    ]
    assert lake.rows("SELECT count(*) FROM quarantine.q") == [(0,)]
    engine.close()


def test_write_parquet_version_v2_holds_on_spark(make_lake):
    """`write.parquet_version: v2` on Spark (parquet-java's `parquet.writer.version`): the run's, the quarantine's
    and a compaction's files use Parquet's newer encodings, and DuckDB reads the table back. `write.compression`
    holds for all of them too (the quarantine's files were zstd whatever it said)."""
    import pyarrow.parquet as pq

    from landfall.engines.spark.engine import SparkEngine
    from landfall.maintenance import optimize

    rules = [{"range": {"column": "qty", "min": 0}, "action": "quarantine"}]
    write = {"table": "q", "parquet_version": "v2", "compression": "snappy"}
    lake = make_lake(
        [wf("q", read={"format": "csv"}, validate=rules, write=write)], engine="spark", spark=SPARK, workers=1
    )
    for i in range(3):
        lake.land(f"q/{i}.csv", f"id,qty,name\n{i * 10 + 1},5,a{i}\n{i * 10 + 2},-1,b{i}\n", mtime=1_700_000_000 + i)
    assert lake.process().ok
    seen: dict[str, set[str]] = {}
    look(lake.root / "lake", seen)
    codecs = {pq.ParquetFile(path).metadata.row_group(0).column(0).compression for path in seen}
    p = lake.pipeline
    engine = SparkEngine.from_settings(p.settings)
    files_as = p.settings.workflows[0].write.files
    assert optimize(p.store, engine, "q", min_files=2, zones=p.zones, files_as=files_as).partitions == 1
    engine.close()
    look(lake.root / "lake", seen)
    codecs |= {
        pq.ParquetFile(path).metadata.row_group(0).column(0).compression
        for path in (lake.root / "lake/tables").rglob("*.parquet")
    }
    assert codecs == {"SNAPPY"}, codecs
    assert len(seen) == 3 + 3 + 1 and all(used & NEWER_ENCODINGS for used in seen.values()), seen
    assert lake.rows("SELECT id, name FROM q ORDER BY id") == [(1, "a0"), (11, "a1"), (21, "a2")]
    assert lake.rows("SELECT count(*) FROM quarantine.q") == [(3,)]


def test_batched_files_of_different_types_widen_as_on_duckdb(make_lake):
    """Files batched into one Spark job whose columns are detected as different types (an integer column in one,
    decimals in another): each file's types are detected and the table takes the wider one."""
    files = {f"t/{i}.csv": f"id,v\n{i},{i}\n" for i in range(4)}
    files["t/x.csv"] = "id,v\n9,2.5\n"
    compare(make_lake, [wf("t", read={"format": "csv"})], files)


def test_integers_padded_with_a_tab_load_as_on_duckdb(make_lake):
    """DuckDB's cast trims a tab (or another control character) around an integer; Spark's cast does too, so
    the column stays an integer on both engines (a pattern trimming spaces alone had kept it as text)."""
    rows = ["id,qty,note"] + [
        f"{i},{chr(34) + chr(9) + '7' + chr(34) if i % 50 == 0 else i % 97},n{i}" for i in range(1, 201)
    ]
    duck, lake = compare(make_lake, [wf("t", read={"format": "csv"})], {"t/a.csv": "\n".join(rows) + "\n"})
    assert lake.rows("SELECT qty FROM t WHERE id = 100") == [(7,)]
    assert dict(lake.pipeline.table("t").schema)["qty"] == "int64"


def test_dates_cast_cheaply_keep_what_the_pattern_keeps_out():
    """`yyyy-MM-dd` dates go through Spark's cast (a pattern costs far more per value): the same values parse,
    and what the cast alone would take (`2023`, `2023-08`, a time after the date, a sign, a five-digit year) is
    still not a date."""
    from pyspark.sql import functions as F

    from landfall.engines.spark.casts import text_as
    from landfall.engines.spark.session import session

    spark = session(SPARK["master"], SPARK["conf"])
    values = ["2023-08-18", "2023-8-1", " 2024-02-29 ", "2023", "2023-08", "2023-08-18 10:00", "2023-08-18T10:00"]
    values += ["2023-08-1 x", "+2023-8-1", "+2023-08-01", "02023-08-01", "20230-1-1", "-2023-01-01", "2023-02-30"]
    values += ["2023-13-01", "2023/08/18", "20230818", "2023-8-18T", "0001-01-01", "", None]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    both = df.select(
        "v",
        F.try_to_date(F.trim("v"), "yyyy-M-d").alias("pattern"),
        text_as(F.col("v"), "DATE", ("%Y-%m-%d", None)).alias("cast"),
    )
    differ = both.where(~F.col("cast").eqNullSafe(F.col("pattern"))).select("v").collect()
    assert differ == []
    assert both.where(F.col("cast").isNotNull()).count() == 5  # -2023-01-01 among them (Python has no year -2023)


def _rows_by_lines(n: int, special: dict[int, str] | None = None) -> bytes:
    special = special or {}
    rows = ["id,price,day,at,ok,note"]
    for i in range(1, n + 1):
        day, at = f"2024-0{1 + i % 9}-1{i % 10}", f"2024-01-02 03:04:{i % 60:02d}"
        rows.append(special.get(i, f"{i},{i % 1000}.25,{day},{at},true,n{i}"))
    return ("\n".join(rows) + "\n").encode()


@pytest.mark.parametrize(
    "case",
    ["clean", "blank_lines", "crlf_and_skipped_rows", "values_only_the_cast_takes", "a_value_that_misses"]
    + ["a_broken_record"],
)
def test_a_csv_read_line_by_line_is_parsed_by_spark_and_its_records_counted(make_lake, monkeypatch, case):
    """A CSV read line by line (bigger than a split) is read once, Spark's reader parsing doubles and dates
    itself and dropping records it cannot parse; the records the file holds are counted beside, so a
    dropped record sends the file through again as text, each record checked: values Spark's parser refuses but
    the strict cast takes (a date after a space) load, a value that misses
    its type makes the column text (as on DuckDB), a broken record is set aside with its line."""
    from landfall.engines.spark.engine import SparkEngine

    plans = []
    attempt = SparkEngine.attempt
    monkeypatch.setattr(SparkEngine, "attempt", lambda self, job, plan: plans.append(plan) or attempt(self, job, plan))
    n = 40_000
    special = {
        "clean": {},
        "blank_lines": {},
        "crlf_and_skipped_rows": {},
        "values_only_the_cast_takes": {30_000: "30000,1.5, 2024-01-05,2024-01-02 03:04:05Z,true,z"},
        "a_value_that_misses": {30_000: "30000,n/a,2024-01-05,2024-01-02 03:04:05,true,z"},
        "a_broken_record": {30_000: "30000,1.5,2024-01-05"},
    }[case]
    body = _rows_by_lines(n, special)
    if case == "blank_lines":
        body = body.replace(b"\n20000,", b"\n\n20000,").replace(b"\n30000,", b"\n\n\n30000,") + b"\n"
    read = {"format": "csv", "bad_rows": "quarantine"} if case == "a_broken_record" else {"format": "csv"}
    if case == "crlf_and_skipped_rows":
        body = b"exported by a tool\r\nat noon\r\n" + body.replace(b"\n", b"\r\n")
        read["skip_rows"] = 2
    assert len(body) > 1 << 20  # several 1 MiB splits: read line by line
    flow = wf("t", read=read, write={"table": "t"})
    lake = make_lake([flow], engine="spark", spark=SPLITS)
    lake.land("t/a.csv", body)
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    run = lake.pipeline.runs()[0]
    loaded = n - (case == "a_broken_record")
    assert (run.status, run.rows_in, run.rows_out) == ("succeeded", n, loaded)
    assert not plans[0].csv_text
    assert any(p.csv_text for p in plans) == (case not in ("clean", "blank_lines", "crlf_and_skipped_rows"))
    if case in ("clean", "blank_lines", "crlf_and_skipped_rows"):
        assert len(plans) == 1
    schema = dict(lake.pipeline.table("t").schema)
    price = "string" if case == "a_value_that_misses" else "double"
    types = (schema["price"], schema["day"], schema["at"], schema["ok"])
    assert types == (price, "date32[day]", "timestamp[us]", "bool")
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM t") == [(loaded, loaded)]
    if case == "values_only_the_cast_takes":
        assert lake.rows('SELECT price, day, "at" FROM t WHERE id = 30000') == [
            (1.5, datetime.date(2024, 1, 5), datetime.datetime(2024, 1, 2, 3, 4, 5))
        ]
    if case == "crlf_and_skipped_rows":
        assert lake.rows("SELECT note FROM t WHERE id IN (1, 40000) ORDER BY id") == [("n1",), ("n40000",)]
    if case == "a_broken_record":
        assert lake.rows("SELECT _line, _raw FROM quarantine.t") == [(30_001, "30000,1.5,2024-01-05")]


def test_spark_parses_what_it_parses_itself_exactly_as_the_strict_cast(tmp_path):
    """The contract `reading._spark_parsed` relies on: for the types Spark's CSV reader parses itself when a file
    is read line by line, every value it takes it reads as the strict cast (`casts.text_as`) does; what it
    refuses (a dropped record) is read again as text. Checked on the values where parsers differ."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from landfall.engines.spark.casts import text_as
    from landfall.engines.spark.reading import _spark_parsed
    from landfall.engines.spark.session import session

    spark = session(SPARK["master"], SPARK["conf"])
    values = {
        "DOUBLE": ["1", "-1.5e-3", "1e309", "NaN", "nan", "Inf", "-Inf", "inf", "Infinity", "+Infinity", "1d", "0x1p3"]
        + [" 1.5", "1.5 ", ".5", "5.", "+.5e+2", "١.٥", "1e", "--1", "1_0"],
        "DATE": ["2024-1-2", "2024-01-02", "+2024-01-02", "20240-01-02", "2024-02-30", "2024-13-01", "2024-01-02 "]
        + [" 2024-01-02", "2024-01-02T00:00", "2024", "0001-01-01", "-2024-01-02", "2024/01/02", "٢٠٢٤-٠١-٠٢"],
    }
    formats = ("%Y-%m-%d", None)
    ctx = type("Ctx", (), {"spark": spark})()
    # not these: Java's parsers take `١٢٣` as 123 and `falſe` as false, which the cast refuses, and cut
    # `2024-01-02 03:04:05.1234567` to microseconds, which the cast refuses too
    text_read = [("i", "BIGINT"), ("n", "INTEGER"), ("b", "BOOLEAN"), ("d", "DECIMAL(9,2)"), ("t", "TIMESTAMP")]
    assert _spark_parsed(ctx, text_read, formats) == {}
    for duck, texts in values.items():
        parsed = _spark_parsed(ctx, [("v", duck)], formats)
        assert set(parsed) == {"v"}, duck
        path = tmp_path / f"{duck}.csv"
        path.write_text("v\n" + "\n".join(texts) + "\n", encoding="utf-8")
        options = {"header": "true", "lineSep": "\n", "columnNameOfCorruptRecord": "bad"}
        typed = spark.read.options(**options, dateFormat="yyyy-M-d", enableDateTimeParsingFallback="false")
        typed = typed.schema(T.StructType([T.StructField("v", parsed["v"]), T.StructField("bad", T.StringType())]))
        text = spark.read.options(**options).schema("v string").csv(str(path))
        cast = text.select(F.col("v").alias("t"), text_as(F.col("v"), duck, formats).cast("string").alias("cast"))
        read = typed.csv(str(path)).select(F.col("v").cast("string").alias("typed"), "bad")
        got = dict(zip([r.t for r in cast.collect()], read.collect(), strict=True))
        by_cast = dict(cast.collect())
        for value, row in got.items():
            if row.bad is None:  # Spark took it: as the cast does
                if row.typed in ("Infinity", "-Infinity") and by_cast[value] is None:
                    continue  # `1e309`: an infinity Spark parsed reads the file again as text (`_beyond_a_double`)
                assert row.typed == by_cast[value], (duck, value, row.typed, by_cast[value])


def test_a_value_a_step_cannot_take_is_one_line_not_spark_logs(make_lake, capfd):
    """A step Spark fails at run time (ANSI mode: `2,5` is no number) dead-letters the file with Spark's reason,
    and nothing else reaches the terminal: before, Spark's `ERROR Utils: Aborting task` with its Java stack and
    pyspark's own JSON log line of the same error were printed for every failed task."""
    from spark_helpers import run_on

    flow = wf("a", transform=[{"compute": {"total": "price * quantity"}}], retry={"max_attempts": 1})
    lake = run_on(make_lake, "spark", [flow], {"a/x.csv": "id;price;quantity\n1;2,5;3\n"})
    (run,) = lake.pipeline.runs()
    assert run.status == "dead" and "`2,5`" in (run.error or "").replace("'", "`"), run.error
    err = capfd.readouterr().err
    assert "Aborting task" not in err and "QueryContextLogger" not in err and "\tat org." not in err, err[-3000:]
