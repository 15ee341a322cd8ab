"""The DuckDB engine passes the engine conformance suite (landfall.testing.engine_suite)."""

from __future__ import annotations

import pytest

from landfall.engines.duckdb.read_csv import WHOLES_AT_MOST
from landfall.testing.engine_suite import EngineTests

from conftest import wf


class TestDuckDBEngine(EngineTests):
    @pytest.fixture
    def engine_config(self):
        return {"engine": "duckdb"}


class TestDuckDBEngineStreaming(TestDuckDBEngine):
    """The same suite with every file read the way large files are (not parsed into memory first; a CSV's
    dialect and columns fixed by one sniff)."""

    @pytest.fixture(autouse=True)
    def _as_if_large(self, monkeypatch):
        from landfall.engines.duckdb import jsonkeys, reading

        monkeypatch.setattr(reading, "MATERIALIZE_BYTES", 0)
        # a lone JSON file read by DuckDB's own detection, which refuses a key past its sample as it reads
        monkeypatch.setattr(jsonkeys, "REFUSING_BYTES", 0)
        monkeypatch.setattr(jsonkeys, "more_than_the_sample", lambda *_: True)


@pytest.mark.parametrize(
    ("steps", "parsed_first"),
    [
        ({}, False),
        ({"transform": [{"filter": "n > 1"}]}, True),
        ({"validate": [{"not_null": ["n"], "action": "quarantine"}]}, True),
    ],
)
def test_a_small_file_is_parsed_into_memory_only_when_read_more_than_once(make_lake, monkeypatch, steps, parsed_first):
    """A workflow without steps, rules or merge reads a file once, in the COPY that writes the table: parsing it
    into memory first would only copy the rows. Steps and rules read it several times: a small file is parsed
    once, into memory."""
    from landfall.engines.duckdb.context import JobContext

    tables: list[str] = []
    real = JobContext.table
    monkeypatch.setattr(JobContext, "table", lambda self, select: tables.append(select) or real(self, select))
    lake = make_lake([{"name": "t", "match": "t/", "read": {"format": "csv"}, "write": {"table": "t"}, **steps}])
    lake.land("t/a.csv", "n,day\n1,2024-01-01\n2,2024-01-02\n3,2024-01-03\n")
    assert lake.process().ok
    assert any(s.startswith("SELECT * FROM __lf_v") for s in tables) == parsed_first
    assert lake.pipeline.query("SELECT count(*), max(day)::VARCHAR FROM t")[1][0][1] == "2024-01-03"


def test_a_late_value_read_again_is_not_scanned_for_its_line(make_lake, monkeypatch):
    """A value past the type sample that does not fit makes the engine read the file again with that column as
    text: the error is not final, so the file is not scanned with Python's parsers to name its line (a third of
    the load's time on a 1M-row file). A final error still names its line."""
    import importlib

    module = importlib.import_module("landfall.engines.duckdb.diagnose")  # the package exports a function of that name
    scanned: list[str] = []
    real = module.diagnose
    monkeypatch.setattr(module, "diagnose", lambda path, *a, **kw: scanned.append(path) or real(path, *a, **kw))
    lake = make_lake([{"name": "t", "match": "t/", "read": {"format": "csv"}, "write": {"table": "t"}}])
    rows = 30_000  # past the reader's sample of the first rows
    lake.land("t/a.csv", "id,n\n" + "".join(f"{i},{i % 7}\n" for i in range(rows)) + f"{rows},n/a\n")
    assert lake.process().ok
    assert scanned == []
    assert lake.rows("SELECT typeof(n), count(*), max(n) FILTER (WHERE id = 30000) FROM t GROUP BY ALL") == [
        ("VARCHAR", rows + 1, "n/a")
    ]
    lake.land("t/b.csv", "id,n\n1,2\n2,3,4\n")
    result = lake.process()
    assert not result.ok and len(scanned) == 1
    assert "line 3" in lake.pipeline.runs()[0].error


def test_a_csv_sample_is_scanned_for_date_words_only_when_its_first_lines_hold_one(make_lake, monkeypatch):
    """DuckDB's date casts take `epoch`, `infinity`, `-infinity` and `inf` as dates: a date column whose sample
    holds one is read as text, which takes a scan of the sample. A file none of whose first lines holds `inf` or
    `epoch` (in any case) cannot hold one there, and is not scanned."""
    from landfall.engines.duckdb import reading

    scanned: list[set[str]] = []
    real = reading.dates_in
    monkeypatch.setattr(
        reading, "dates_in", lambda con, sample, dated, *a: scanned.append(dated) or real(con, sample, dated, *a)
    )
    lake = make_lake([{"name": n, "match": f"{n}/", "read": {"format": "csv"}, "write": {"table": n}} for n in "ab"])
    lake.land("a/a.csv", "id,day\n" + "".join(f"{i},2024-01-{i % 28 + 1:02}\n" for i in range(3000)))
    assert lake.process().ok
    assert scanned == []
    lake.land("b/b.csv", "id,day\n1,2024-02-01\n2,EPOCH\n")
    assert lake.process().ok
    assert scanned == [{"day"}]
    assert lake.rows("SELECT typeof(day), day FROM b ORDER BY id") == [("VARCHAR", "2024-02-01"), ("VARCHAR", "EPOCH")]


@pytest.mark.parametrize("compressed", [False, True])
def test_date_words_are_looked_for_in_the_first_lines_across_reads(tmp_path, compressed):
    import gzip

    from landfall.engines.duckdb.datewords import may_hold_date_words

    def file(text: str) -> str:
        path = tmp_path / ("f.csv.gz" if compressed else "f.csv")
        path.write_bytes(gzip.compress(text.encode()) if compressed else text.encode())
        return str(path)

    line = "2024-01-01,abcdefghijklmnopqrstuvwxyz0123456789\n"  # 48 bytes
    before = line * ((1 << 20) // len(line))  # a word cut by the end of the first 1 MiB read
    cut = (1 << 20) - len(before) - 2
    assert may_hold_date_words(file(before + "x" * cut + "-InFinity\n" + line), 1_000_000)
    assert not may_hold_date_words(file(before + "x" * cut + "-finity\n" + line), 1_000_000)
    first = before + "x" * (cut + 1) + "\n"  # the first 1 MiB read, whole lines
    assert not may_hold_date_words(file(first + "epoch\n"), 1_000)  # past the lines looked at
    assert may_hold_date_words(file(first + "epoch\n"), 1_000_000)
    assert may_hold_date_words(file(line * 200_000), 1_000_000)  # more than 8 MiB to look through: scanned


def test_written_stats_say_when_a_date_column_may_hide_a_word():
    """`epoch` is read as 1970-01-01 and `infinity` as an infinite date: only files whose stats show one of those
    (in a column or a field inside it) are looked at again for a word past the type sample."""
    from landfall.engines.duckdb.datewords import _may_hide_a_word

    def hides(low: str, high: str, key: str = '"d"') -> bool:
        return _may_hide_a_word({key: {"min": low, "max": high, "null_count": "0"}, '"e"': {"null_count": "3"}}, "d")

    assert not hides("2024-01-01", "2024-12-31")
    assert not hides("1970-01-02", "2024-12-31")
    assert hides("1970-01-01", "2024-12-31")
    assert hides("1960-05-01", "1980-12-31")
    assert hides("2024-01-01", "infinity")
    assert hides("-infinity", "2024-01-01 10:00:00")
    assert hides("1970-01-01 00:00:00", "2024-01-01 10:00:00")
    assert not hides("1971-01-01 00:00:01+00", "2024-01-01 10:00:00+00")
    assert hides("00:00:00", "23:00:00") and not hides("00:00:01", "23:00:00")
    assert hides("2024-01-01", "infinity", key='"d"."element"') and not hides("2024-01-01", "infinity", key='"dd"')
    assert not hides("1", "7") and not _may_hide_a_word({}, "d")


def test_a_date_column_is_followed_through_the_steps_that_keep_its_values():
    """The written stats vouch for a date column under the name the steps give it; a step that may change its
    values (or picks rows by it) has the files looked at (None)."""
    import msgspec

    from landfall.config.steps import Step
    from landfall.engines.duckdb.datewords import _through

    def through(step: dict, after: list[str], name: str = "d", prefix: bool = False):
        return _through(msgspec.convert(step, Step), name, prefix, ["id", "d"], after)

    assert through({"kind": "rename", "rename": {"d": "day"}}, ["id", "day"]) == ("day", False)
    assert through({"kind": "normalize_names"}, ["id", "d"]) == ("d", False)
    assert through({"kind": "sql", "sql": "SELECT * EXCLUDE (id) FROM input"}, ["d"]) == ("d", False)
    assert through({"kind": "sql", "sql": "SELECT id, d + 1 AS d FROM input"}, ["id", "d"]) is None
    assert through({"kind": "filter", "filter": "id > 2"}, ["id", "d"]) == ("d", False)
    assert through({"kind": "filter", "filter": "d > '2024-01-01'"}, ["id", "d"]) is None
    assert through({"kind": "compute", "compute": {"y": "year(d)"}}, ["id", "d", "y"]) == ("d", False)
    assert through({"kind": "compute", "compute": {"d": "d + 1"}}, ["id", "d"]) is None
    assert through({"kind": "drop", "drop": ["d"]}, ["id"]) is None
    assert through({"kind": "flatten"}, ["id", "d_e", "d_f"]) == ("d_", True)
    assert through({"kind": "flatten", "flatten": {"keep_json": ["d"]}}, ["id", "d"]) is None
    assert through({"kind": "rename", "rename": {"d_e": "x"}}, ["id", "x"], name="d_", prefix=True) is None


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_dates_spanning_1970_without_a_word_are_not_read_again(make_lake, monkeypatch, fmt):
    """Stats that span the epoch call for a look for a word; finding none, the file is not read again."""
    import json

    from landfall.engines.duckdb import engine

    plans: list[object] = []
    real = engine.late_date_words
    monkeypatch.setattr(engine, "late_date_words", lambda cx, files: plans.append(real(cx, files)) or plans[-1])
    lake = make_lake([{"name": "t", "match": "t/", "read": {"format": fmt}, "write": {"table": "t"}}])
    days = [f"19{60 + i % 20}-01-0{1 + i % 9}" for i in range(100)]
    if fmt == "csv":
        lake.land("t/a.csv", "id,born\n" + "".join(f"{i},{d}\n" for i, d in enumerate(days)))
    else:
        lake.land(
            "t/a.jsonl", "".join(json.dumps({"id": i, "born": d, "n": {"at": d}}) + "\n" for i, d in enumerate(days))
        )
    assert lake.process().ok
    assert plans == [None]
    assert dict(lake.pipeline.table("t").schema)["born"] == "date32[day]"


def test_times_of_several_forms_stay_times(make_lake):
    """CSV times, and JSON ones at the top of a record, are read as text and converted in their forms (DuckDB's
    readers take no format for them, and their cast drops an offset): times with and without seconds or a
    fraction stay a time column (Spark has none)."""
    lake = make_lake([wf("u"), wf("j")])
    lake.land("u/forms.csv", "id,t\n1,10:00\n2,10:00:01.5\n3, 10:00:02\n")
    lake.land("j/forms.jsonl", '{"id":1,"t":"10:00"}\n{"id":2,"t":"10:00:01.5"}\n{"id":3,"t":"10:00:02"}\n')
    assert lake.process().ok
    for table in ("u", "j"):
        assert lake.rows(f"SELECT typeof(t), CAST(t AS VARCHAR) FROM {table} ORDER BY id") == [
            ("TIME", "10:00:00"),
            ("TIME", "10:00:01.5"),
            ("TIME", "10:00:02"),
        ], table


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_a_big_json_file_refuses_a_late_key_as_it_is_read(make_lake, monkeypatch, fmt):
    """A big JSON file with more records than the type sample is read with DuckDB's own detection, which refuses a
    key past the sample as it reads: the file is read again with its types detected on the whole file, and the
    key loads; without one the load reads the file once. Before, every such file was read a second time after
    the load to look for a late key (1.36 s of a 5 s load of a 240 MiB document). Its numbers and booleans, which
    that detection casts a late value of another kind into, are read once more alone (`jsonkinds.late_kinds`)."""
    import json

    from landfall.engines.duckdb import jsonkeys

    monkeypatch.setattr(jsonkeys, "REFUSING_BYTES", 1 << 20)  # a 1.6 MiB file is big here
    looked = []
    monkeypatch.setattr(jsonkeys, "late_key", lambda *a, **k: looked.append(a) or False)
    n = 41_000  # twice the sample at least
    records = [{"id": i, "o": {"k": 1}, "l": [{"p": 1}]} for i in range(n)]

    def text(rows):
        return "".join(json.dumps(r) + "\n" for r in rows) if fmt == "jsonl" else json.dumps(rows)

    lake = make_lake([wf("j", read={"format": fmt})])
    lake.land(f"j/plain.{fmt}", text(records), mtime=1_700_000_000)
    assert lake.process().ok
    assert lake.rows("SELECT count(*), sum(o.k) FROM j") == [(n, n)]
    late = {"id": -1, "o": {"k": 2, "z": "in o"}, "l": [{"p": 2, "q": "in l"}], "extra": "top"}
    lake.land(f"j/late.{fmt}", text([*records, late]), mtime=1_700_000_001)
    assert lake.process().ok
    assert lake.rows("SELECT extra, o.z, l[1].q FROM j WHERE id = -1") == [("top", "in o", "in l")]
    assert lake.rows("SELECT count(*), count(extra) FROM j") == [(2 * n + 1, 1)]
    assert looked == []  # no look through a file after its load
    # which casts a late value of another kind into the type it detected: the numbers and booleans are read again
    kinds = make_lake([wf("k", read={"format": fmt})])
    kinds.land(f"k/kinds.{fmt}", text([*records, {"id": -2, "o": {"k": 2.5}, "l": [{"p": True}]}]))
    assert kinds.process().ok
    got = kinds.rows("SELECT CAST(o.k AS VARCHAR), CAST(l[1].p AS VARCHAR) FROM k WHERE id = -2")
    assert got == [("2.5", "true")]
    assert looked == []


def test_the_look_for_late_keys_detects_on_a_small_sample_only_when_that_holds_every_key(tmp_path):
    """The look through a file for a key past the type sample is DuckDB's own read, which refuses a key it did not
    detect; it detects on 256 records when those hold every key of the columns read (a third of the look's time
    is the usual sample's detection). A key that first shows after those 256 records, but in the sample, is no
    late key; one past the sample, at the top or inside an object, is."""
    import json

    import duckdb

    from landfall.engines.duckdb.jsonkeys import late_key

    con = duckdb.connect()
    columns = {"id": "BIGINT", "o": "STRUCT(k BIGINT, z BIGINT)", "z": "VARCHAR"}

    def look(records: list[dict]) -> bool:
        path = tmp_path / f"{len(records)}-{len(list(tmp_path.iterdir()))}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        return late_key(con, [str(path)], "newline_delimited", columns)

    plain = [{"id": i, "o": {"k": i}} for i in range(30_000)]
    later = [*plain[:1000], {"id": -1, "o": {"k": 1, "z": 2}, "z": "x"}, *plain[1000:]]
    assert not look(later)  # `z` in the sample, past the first 256 records: the look detects on the usual sample
    assert look([*plain, {"id": -2, "o": {"k": 1}, "y": "top"}])
    assert look([*plain, {"id": -3, "o": {"k": 1, "y": 2}}])


@pytest.mark.parametrize(
    "padding", [0, pytest.param(WHOLES_AT_MOST, marks=pytest.mark.slow)], ids=["converted", "looked-through"]
)
def test_a_late_whole_number_written_otherwise_keeps_how_it_is_written(make_lake, padding):
    """Past its sample DuckDB's CSV reader converted text into a column of whole numbers loosely, without a word
    (duckdb/duckdb#25824): `2.5` as 3, `007` as 7, `+5` as 5, `1_000` as 1000, `0x1F` as 31. Its sniffer keeps
    each of those out of such a column in the sample; past it, landfall now does the same: the column is read
    again as a type that holds the value (`double` for a number, text for a code or other writing), and a value
    with spaces around it, or `-0`, is still the whole number. So in a file of more such columns than landfall
    converts one by one (`padding`), whose values are looked through after the load instead."""
    lake = make_lake([wf("t")])
    rows = 21_000 if padding else 30_000  # past a reader's sample of the first 20,480 rows
    late = ["2.5", "007", "+5", "1_000", "0x1F", " 7 ", "-0"]
    names = [f"c{i}" for i in range(len(late))]
    pad = [f"p{i}" for i in range(padding)]
    body = "".join(f"{i}{f',{i}' * len(late)}{',1' * padding}\n" for i in range(rows))
    lake.land("t/a.csv", f"{','.join(['id', *names, *pad])}\n{body}-1,{','.join(late)}{',2' * padding}\n")
    assert lake.process().ok
    got = lake.rows(f"SELECT {', '.join(f'CAST({n} AS VARCHAR)' for n in names)} FROM t WHERE id = -1")
    assert got == [("2.5", "007", "5.0", "1_000", "0x1F", "7", "0")], got
    types = dict(lake.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"))
    assert [types[n] for n in names] == ["DOUBLE", "VARCHAR", "DOUBLE", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT"]
    assert {types[n] for n in pad} <= {"BIGINT"}
    assert lake.rows("SELECT count(*), sum(CAST(c5 AS BIGINT)) FROM t WHERE id >= 0") == [
        (rows, rows * (rows - 1) // 2)
    ]


def test_a_late_json_value_of_another_kind_keeps_its_kind_beside_keys_that_differ_only_in_case(make_lake):
    """A file with keys that differ only in case (`name` beside `Name`, read as `Name_1`) is read without pinned
    types (the reader finds no key `Name_1`), and so read, DuckDB casts a later value of another kind into the
    type its sample detected (`2.5` into a column of whole numbers as 2): its types are detected on the whole
    file instead. Whole numbers of both signs there are 64-bit integers, as in a pinned read."""
    lake = make_lake([wf("t", read={"format": "jsonl"})])
    head = "".join(f'{{"id": {i}, "name": "a{i}", "Name": "b{i}", "n": {i}, "d": {-i}}}\n' for i in range(30_000))
    lake.land("t/a.jsonl", head + '{"id": 30000, "name": "a", "Name": "b", "n": 2.5, "d": 4}\n')
    assert lake.process().ok
    assert lake.rows('SELECT name, "Name_1", n, d FROM t WHERE id IN (7, 30000) ORDER BY id') == [
        ("a7", "b7", 7.0, -7),
        ("a", "b", 2.5, 4),
    ]
    types = dict(lake.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"))
    assert (types["id"], types["d"]) == ("BIGINT", "BIGINT"), types


def test_a_json_document_read_through_pythons_parser_keeps_64_bit_integers(make_lake):
    """A valid JSON document DuckDB's reader refuses (a duplicate key) is read through Python's parser, with its
    types detected on every record: whole numbers of both signs there are 64-bit integers, as in DuckDB's own
    read, at the top and in an object; beyond 64 bits, decimal(38,0)."""
    lake = make_lake([wf("t", read={"format": "json"})])
    records = [f'{{"id": {i}, "d": {i if i % 2 else -i}, "o": {{"k": {-i}}}, "h": {i}}}' for i in range(10)]
    records[3] = '{"id": 3, "d": 3, "d": 4, "o": {"k": -3}, "h": 18446744073709551616}'
    lake.land("t/a.json", "[" + ",\n".join(records) + "]")
    assert lake.process().ok
    assert lake.rows("SELECT d, o.k, CAST(h AS VARCHAR) FROM t WHERE id = 3") == [(4, -3, "18446744073709551616")]
    types = dict(lake.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 't'"))
    assert (types["d"], types["o"], types["h"]) == ("BIGINT", "STRUCT(k BIGINT)", "DECIMAL(38,0)"), types


def test_a_json_document_read_through_pythons_parser_keeps_numbers_as_written(make_lake):
    """The records such a document gives DuckDB hold its numbers as written: `1e400` makes its column text, as in
    a document DuckDB reads itself (before: Python's parser turned it into an infinity, written `Infinity`, and it
    loaded as a double's infinity); `2.50E+3` and `-0.0` are still doubles."""
    lake = make_lake([wf("t", read={"format": "json"})])
    lake.land("t/a.json", '[{"id": 1, "id": 2, "big": 1e400, "v": 2.50E+3},\n {"id": 3, "big": 5, "v": -0.0}]')
    assert lake.process().ok
    assert lake.rows("SELECT id, big, v FROM t ORDER BY id") == [(2, "1e400", 2500.0), (3, "5", -0.0)]


def test_the_copy_that_keeps_long_numbers_as_written_keeps_a_bad_line_as_it_is(make_lake):
    """A JSON Lines file read from a copy where a field's numbers are strings (`jsonnumbers.digits_as_text`) still
    fails naming a line that is not one JSON value, or holds half a surrogate pair: the copy keeps such a line as
    it is (a copy of the record alone would drop the text after it without a word)."""
    lake = make_lake([wf("j", retry={"max_attempts": 1})])
    lake.land("j/a.jsonl", '{"id": 1, "v": 1234567890.123456789}\n{"id": 2, "v": 2.5} trailing\n')
    lake.land("j/b.jsonl", '{"id": 1, "v": 1234567890.123456789}\n{"id": 2, "v": 2.5, "s": "\\ud800"}\n')
    lake.process()
    errors = {r.file_key: r.error for r in lake.pipeline.runs(limit=None)}
    assert errors["j/a.jsonl"] == "`j/a.jsonl` line 2: invalid JSON: Extra data (column 20)"
    assert errors["j/b.jsonl"].startswith("`j/b.jsonl` line 2: invalid JSON: `\\ud800` (column 27) is half of")


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_sum_of_integers_is_a_whole_number_with_every_digit(make_lake, fmt):
    """`sum()` of integers is DuckDB's HUGEINT, which its Parquet writer stores as a double: the table's column was
    DOUBLE (3.0), and a sum past 2^53 lost its last digits (18446744073709551614 as 1.8446744073709552e+19). Now it
    is `decimal(38,0)`, exact; a table that holds it as a double already keeps it so (its files load as before)."""
    sql = "SELECT region, sum(n) AS total, sum(n) FILTER (WHERE n < 0) AS none FROM input GROUP BY region"
    workflow = {"name": "s", "match": "s/", "transform": [{"sql": sql}], "write": {"table": "s", "format": fmt}}
    lake = make_lake([workflow], workers=1)
    big = 2**63 - 1
    lake.land("s/a.csv", f"region,n\neu,{big}\neu,{big}\nus,5\n")
    assert lake.process().ok
    assert lake.rows("SELECT region, CAST(total AS VARCHAR) FROM s ORDER BY region") == [
        ("eu", str(2 * big)),
        ("us", "5"),
    ]
    assert dict(lake.pipeline.table("s").schema)["total"] == "decimal128(38, 0)"

    # a table whose sums were made doubles before (here by a workflow that casts them) keeps them so
    doubled = {
        **workflow,
        "name": "d",
        "match": "s/d/",
        "transform": [{"sql": sql.replace("sum(n) AS", "sum(n)::DOUBLE AS")}],
    }
    old = make_lake([doubled, {**workflow, "match": "s/e/"}], workers=1)
    old.land("s/d/a.csv", "region,n\neu,1\n")
    assert old.process().ok
    old.land("s/e/b.csv", "region,n\nus,2\n")
    assert old.process().ok
    assert old.rows("SELECT region, total FROM s ORDER BY region") == [("eu", 1.0), ("us", 2.0)]
    assert dict(old.pipeline.table("s").schema)["total"] == "double"


def test_a_table_that_holds_intervals_as_intervals_keeps_them(make_lake, monkeypatch):
    """A Parquet table made before intervals were stored as text holds them as Parquet intervals: its later files
    write them so too (instead of failing: ``column `age` is VARCHAR in this file but INTERVAL in the table``)."""
    from landfall.tables.base import TableWriter

    workflow = {"name": "t", "match": "t/", "transform": [{"compute": {"age": "b - a"}}], "write": {"table": "t"}}
    lake = make_lake([workflow], workers=1)
    before = {k: v for k, v in TableWriter.stored_as.items() if k != "month_day_nano_interval"}
    with monkeypatch.context() as m:
        m.setattr(TableWriter, "stored_as", before)
        lake.land("t/a.csv", "a,b\n2024-01-01 00:00:00,2024-01-02 10:30:00\n")
        assert lake.process().ok
    assert dict(lake.pipeline.table("t").schema)["age"] == "month_day_nano_interval"
    lake.land("t/b.csv", "a,b\n2024-01-01 00:00:00,2024-01-03 00:00:00\n")
    assert lake.process().ok
    assert lake.rows("SELECT CAST(age AS VARCHAR) FROM t ORDER BY 1") == [("1 day 10:30:00",), ("2 days",)]
