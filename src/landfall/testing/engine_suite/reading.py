"""The engine conformance suite: reading files (formats, dialects, types, encodings, values past the type
sample)."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from landfall.testing.engine_suite.base import (
    EngineFixtures,
    _json_or_text,
    assert_ok,
    column_types,
    error_of,
)
from landfall.testing.lake import wf


class ReadingTests(EngineFixtures):
    """Reading: formats, dialects, detected types, encodings and values past the type sample."""

    # --- reading -----------------------------------------------------------------------------------------------

    def test_csv_dialect_header_and_types_are_detected(self, make):
        lake = make(wf("t"))
        lake.land(
            "t/a.csv",
            "id;name;price;day;stamp;ok\n"
            '1;"Ann; Lee";10.5;2024-01-02;2024-01-02 03:04:05;true\n'
            '2;"Bo ""B""";20;2024-02-03;2024-02-03 04:05:06;false\n',
        )
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT id, name, price, CAST(day AS VARCHAR), CAST(stamp AS VARCHAR), ok FROM t ORDER BY id")
        assert got == [
            (1, "Ann; Lee", 10.5, "2024-01-02", "2024-01-02 03:04:05", True),
            (2, 'Bo "B"', 20.0, "2024-02-03", "2024-02-03 04:05:06", False),
        ]
        types = column_types(lake, "t")
        assert {k: types[k] for k in ("id", "name", "price", "day", "stamp", "ok")} == {
            "id": "int64",
            "name": "string",
            "price": "double",
            "day": "date32[day]",
            "stamp": "timestamp[us]",
            "ok": "bool",
        }

    def test_a_declared_type_of_a_column_a_file_lacks_is_passed_over(self, make):
        """`read.types` and `schema.hints` declare a column some files lack: such a file loads, the column NULL in
        its rows, as any column it lacks (before: a JSON Lines file failed with DuckDB's `Column "code" in REPLACE
        list not found`, and with hints every such file failed: `schema hints: no column`). A hint names its
        column in any case, as SQL names are matched."""
        lake = make(
            wf("r", read={"types": {"amount": "double", "code": "string"}}, retry={"max_attempts": 1}),
            wf("h", schema={"hints": {"amount": "double", "Code": "string"}}, retry={"max_attempts": 1}),
            workers=1,
        )
        for t in ("r", "h"):
            lake.land(f"{t}/1.csv", "id,amount,code\n1,5,007\n", mtime=1_700_000_000)
            lake.land(f"{t}/2.csv", "id,amount\n2,6\n", mtime=1_700_000_001)
            lake.land(f"{t}/3.jsonl", '{"id": 3}\n', mtime=1_700_000_002)
            lake.land(f"{t}/4.jsonl", '{"id": 4, "code": "010"}\n', mtime=1_700_000_003)
        assert_ok(lake, lake.process())
        for t in ("r", "h"):
            got = lake.rows(f"SELECT id, amount, code FROM {t} ORDER BY id")
            assert got == [(1, 5.0, "007"), (2, 6.0, None), (3, None, None), (4, None, "010")], t

    def test_csv_read_options_override_detection(self, make):
        read = {
            "format": "csv",
            "delimiter": "|",
            "quote": "'",
            "header": False,
            "null_values": ["n/a"],
            "skip_rows": 2,
            "types": {"column0": "string"},
        }
        lake = make(wf("t", read=read))
        lake.land("t/a.txt", "a title line\nanother\n007|'x|y'|n/a\n010|'z'|3\n")
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT column0, column1, column2 FROM t ORDER BY 1")
        assert got == [("007", "x|y", None), ("010", "z", 3)]

    def test_csv_date_and_timestamp_formats(self, make):
        read = {"date_format": "%d/%m/%Y", "timestamp_format": "%d/%m/%Y %H:%M"}
        lake = make(wf("t", read=read))
        lake.land("t/a.csv", "d,ts\n31/12/2024,31/12/2024 23:59\n01/02/2024,01/02/2024 00:01\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT CAST(d AS VARCHAR), CAST(ts AS VARCHAR) FROM t ORDER BY d") == [
            ("2024-02-01", "2024-02-01 00:01:00"),
            ("2024-12-31", "2024-12-31 23:59:00"),
        ]
        # letters written in a format (`T`, `Z`) are text to match, not fields
        lake = make(wf("u", read={"timestamp_format": "%Y-%m-%dT%H:%M:%SZ"}))
        lake.land("u/a.csv", "ts\n2024-12-31T23:59:01Z\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT CAST(ts AS VARCHAR) FROM u") == [("2024-12-31 23:59:01",)]

    def test_csv_dates_whose_day_and_month_are_never_told_apart_stay_text(self, make):
        """A CSV date column written day and month first whose values never tell which is which (each number at
        most 12) is text: DuckDB's sniffer reads such dates day first, so a file written month first loaded
        February 1 as January 2 without a word. A value that tells (`13/04/2024`) makes the column dates, in that
        order; a declared format reads them; into a table's date column they fail, saying how to name the order."""
        lake = make(wf("t", retry={"max_attempts": 1}), workers=1)
        lake.land("t/a.csv", "id,d,ts\n1,02/01/2024,02/01/2024 10:00:00\n2,03/04/2024,03/04/2024 11:00:00\n")
        assert_ok(lake, lake.process())
        assert {column_types(lake, "t")[c] for c in ("d", "ts")} == {"string"}
        assert lake.rows("SELECT d, ts FROM t ORDER BY id") == [
            ("02/01/2024", "02/01/2024 10:00:00"),
            ("03/04/2024", "03/04/2024 11:00:00"),
        ]
        for order, told, want in (("day", "13/04/2024", "2024-04-13"), ("month", "04/13/2024", "2024-04-13")):
            lake = make(wf(order), workers=1)
            lake.land(f"{order}/a.csv", f"id,d\n1,02/01/2024\n2,{told}\n")
            assert_ok(lake, lake.process())
            first = "2024-01-02" if order == "day" else "2024-02-01"
            assert lake.rows(f"SELECT CAST(d AS VARCHAR) FROM {order} ORDER BY id") == [(first,), (want,)]
        lake = make(wf("us", read={"date_format": "%m/%d/%Y"}), workers=1)
        lake.land("us/a.csv", "id,d\n1,02/01/2024\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT CAST(d AS VARCHAR) FROM us") == [("2024-02-01",)]
        lake = make(wf("iso", retry={"max_attempts": 1}), workers=1)
        lake.land("iso/a.csv", "id,d\n1,2024-01-02\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("iso/b.csv", "id,d\n2,05/06/2024\n", mtime=1_700_000_001)
        lake.process()
        err = error_of(lake, "iso/b.csv")
        assert "line 2: value `05/06/2024` of column `d` is not a valid DATE; its day and month cannot be told" in err
        assert "`read.date_format`" in err, err

    def test_all_strings_keeps_every_value_as_text(self, make):
        lake = make(wf("t", read={"all_strings": True}))
        lake.land("t/a.csv", 'id,amount,note\n007,1.50,""\n8,2,x\n')
        assert_ok(lake, lake.process())
        assert {column_types(lake, "t")[c] for c in ("id", "amount", "note")} == {"string"}
        assert lake.rows("SELECT id, amount, note FROM t ORDER BY id") == [("007", "1.50", ""), ("8", "2", "x")]

    @pytest.mark.parametrize(
        ("encoding", "declared"),
        [("latin-1", "latin-1"), ("utf-16", None), ("cp1252", None), ("utf-8-sig", None)],
    )
    def test_text_in_any_encoding_becomes_utf8(self, make, encoding, declared):
        lake = make(wf("t", read={"encoding": declared} if declared else {}))
        lake.land("t/a.csv", "id,name\n1,Zoë\n2,Ångström\n".encode(encoding))
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT name FROM t ORDER BY id") == [("Zoë",), ("Ångström",)]

    def test_gzip_and_tab_separated_files(self, make):
        lake = make(wf("t"))
        lake.land("t/a.csv.gz", gzip.compress(b"id,v\n1,a\n"))
        lake.land("t/b.tsv", "id\tv\n2\tb\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, v FROM t ORDER BY id") == [(1, "a"), (2, "b")]

    def test_json_lines_json_arrays_and_parquet(self, make, tmp_path):
        lake = make(wf("t"))
        lake.land("t/a.jsonl", '{"id": 1, "v": "a"}\n\n{"id": 2, "v": null}\n')
        lake.land("t/b.json", '[{"id": 3, "v": "c"}, {"id": 4}]')
        pq.write_table(pa.table({"id": pa.array([5], pa.int64()), "v": ["e"]}), tmp_path / "c.parquet")
        lake.land("t/c.parquet", (tmp_path / "c.parquet").read_bytes())
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, v FROM t ORDER BY id") == [(1, "a"), (2, None), (3, "c"), (4, None), (5, "e")]

    def test_a_column_of_mixed_json_values_takes_later_files_of_one_kind(self, make):
        lake = make(wf("t"), workers=1)
        lake.land("t/1.json", '[{"id": 1, "a": 1}, {"id": 2, "a": "x"}, {"id": 3, "a": {"k": true}}]', mtime=1)
        assert_ok(lake, lake.process())
        for i, value in ((4, '"b"'), (5, "7")):  # one file at a time: each file's `a` has one kind
            lake.land(f"t/{i}.json", f'{{"id": {i}, "a": {value}}}', mtime=i)
            assert_ok(lake, lake.process())
        got = [(i, _json_or_text(a)) for i, a in lake.rows("SELECT id, CAST(a AS VARCHAR) FROM t ORDER BY id")]
        assert got == [(1, 1), (2, "x"), (3, {"k": True}), (4, "b"), (5, 7)]  # as JSON, or as text where not JSON

    def test_json_that_is_not_records(self, make):
        lake = make(wf("v"), wf("r", read={"records": "true"}, retry={"max_attempts": 1}))
        lake.land("v/a.json", '[1, [2, 3], {"x": 4}]')
        lake.land("r/a.json", "[1, 2]")
        lake.process()
        assert lake.rows("SELECT value FROM v") == [("1",), ("[2,3]",), ('{"x":4}',)]
        assert error_of(lake, "r/a.json").startswith("`r/a.json` line 1: expected records")

    def test_json_records_beside_other_values_are_records_with_bad_ones(self, make):
        """A JSON file whose values are mostly objects, or whose table holds records, is a file of records: a value
        of another kind among them fails the file naming its line (before: the file loaded as one `value` column
        of JSON text, its records NULL in every column of their table)."""
        lake = make(wf("t", retry={"max_attempts": 1}), workers=1)
        lake.land("t/0.jsonl", '{"a": 1, "b": "x"}\n', mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        bad = {"t/1.jsonl": '{"a": 2, "b": "y"}\n[1, 2]\n', "t/2.json": '[\n  {"a": 3},\n  {"a": 4},\n  5\n]'}
        for i, (key, text) in enumerate(bad.items(), 1):
            lake.land(key, text, mtime=1_700_000_000 + i)
            lake.process()
        assert "`t/1.jsonl` line 2: " in error_of(lake, "t/1.jsonl")
        assert "`t/2.json` line 4: " in error_of(lake, "t/2.json"), error_of(lake, "t/2.json")
        assert lake.rows("SELECT a, b FROM t") == [(1, "x")]
        assert [n for n, _ in lake.pipeline.table("t").schema if not n.startswith("_")] == ["a", "b"]

    def test_json_lines_named_json_are_read_as_json_lines(self, make):
        """A `.json` file of one object per line (as many tools write them) loads as JSON Lines, a bad line
        naming its line; a document stays a document; with `format: json` declared, JSON Lines load as JSON Lines
        whatever their name (`.jsonl` included), and a file that is neither fails saying how to read it."""
        lake = make(wf("t"), wf("d", read={"format": "json"}, retry={"max_attempts": 1}))
        lake.land("t/e.json", '{"id": 1, "a": "x"}\n\n{"id": 2, "a": "y"}\n')
        lake.land("t/doc.json", '{\n  "id": 3,\n  "a": "z"\n}\n')
        lake.land("t/bad.json", '{"id": 4}\n{"id": 5\n')
        lake.land("d/e.json", '{"id": 1}\n{"id": 2}\n')
        lake.land("d/f.jsonl", '{"id": 3}\n{"id": 4}\n')
        lake.land("d/g.json", '[{"id": 5}]')
        lake.land("d/bad.json", '{"id": 6}\n{"id": 7\n')
        lake.process()
        assert lake.rows("SELECT id, a, _source_file FROM t ORDER BY id") == [
            (1, "x", "t/e.json"),
            (2, "y", "t/e.json"),
            (3, "z", "t/doc.json"),
        ]
        assert error_of(lake, "t/bad.json").startswith("`t/bad.json` line 2:"), error_of(lake, "t/bad.json")
        assert lake.rows("SELECT id, _source_file FROM d ORDER BY id") == [
            (1, "d/e.json"),
            (2, "d/e.json"),
            (3, "d/f.jsonl"),
            (4, "d/f.jsonl"),
            (5, "d/g.json"),
        ]
        assert error_of(lake, "d/bad.json") == (
            "`d/bad.json` line 2: invalid JSON: Extra data (column 1); the file holds one JSON value per line (JSON "
            "Lines): name it `.jsonl` or set `read: {format: jsonl}`"
        )

    def test_words_a_date_cast_accepts_stay_text_in_json(self, make):
        # DuckDB casts `infinity`, `-infinity` and `epoch` to dates: a JSON string is a date only when written as one
        lake = make(wf("t"))
        lake.land("t/a.json", '[{"id": 1, "a": "Infinity", "n": {"d": "-infinity", "e": "2024-01-02"}}]')
        lake.land("t/b.jsonl", '{"id": 2, "a": "epoch", "l": ["infinity"]}\n{"id": 3, "a": null, "l": []}\n')
        lake.land("t/c.jsonl", '{"id": 4, "d": "2024-01-01"}\n' * 2 + '{"id": 5, "d": "infinity"}\n')
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, a, CAST(n AS VARCHAR), CAST(l AS VARCHAR), d FROM t ORDER BY id")
        assert [(i, a, d) for i, a, _, _, d in rows] == [
            (1, "Infinity", None),
            (2, "epoch", None),
            (3, None, None),
            (4, None, "2024-01-01"),
            (4, None, "2024-01-01"),
            (5, None, "infinity"),
        ]
        assert "-infinity" in rows[0][2] and "2024-01-02" in rows[0][2] and rows[1][3] == "[infinity]"
        types = dict(lake.pipeline.table("t").schema)
        assert (types["a"], types["d"], types["l"]) == ("string", "string", "list<item: string>"), types

    def test_words_a_date_cast_accepts_stay_text_in_a_json_map(self, make):
        """In the values of an object of many keys (which DuckDB's detection makes a map of dates) too: `epoch`
        there is not 1970-01-01."""
        lake = make(wf("t", read={"format": "jsonl"}))
        records = [f'{{"id": {i}, "m": {{"d{i}": "2024-01-02"}}}}' for i in range(300)]
        records[7] = '{"id": 7, "m": {"d7": "epoch"}}'
        lake.land("t/a.jsonl", "\n".join(records) + "\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT m['d6'], m['d7'] FROM t WHERE id IN (6, 7) ORDER BY id") == [
            ("2024-01-02", None),
            (None, "epoch"),
        ]

    def test_numbers_written_with_a_decimal_comma_are_read_when_declared(self, make):
        """`read: {decimal_separator: ","}`: `2,5` is 2.5 in a detected or declared column; a column holding
        a number written with `.` among them stays text (DuckDB's reader refuses it: no value is guessed)."""
        lake = make(wf("t", read={"decimal_separator": ",", "types": {"d": "decimal(10,2)"}}))
        lake.land("t/a.csv", "id;x;d;mixed;word\n1;2,5;10,25;1,5;a,b\n2;-0,5;3;2.5;c\n3;4;0,1;3;d\n")
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, x, CAST(d AS VARCHAR), mixed, word FROM t ORDER BY id")
        assert rows == [(1, 2.5, "10.25", "1,5", "a,b"), (2, -0.5, "3.00", "2.5", "c"), (3, 4.0, "0.10", "3", "d")]
        types = column_types(lake, "t")
        assert (types["x"], types["mixed"]) == ("double", "string"), types
        quoted = make(wf("c", read={"decimal_separator": ",", "delimiter": ","}))  # `,` both: numbers quoted
        quoted.land("c/a.csv", 'id,v\n1,"2,5"\n2,"3,75"\n')
        assert_ok(quoted, quoted.process())
        assert quoted.rows("SELECT id, v FROM c ORDER BY id") == [(1, 2.5), (2, 3.75)]
        late = make(wf("u", read={"decimal_separator": ","}))  # a `.` past the sample: the column is text
        late.land("u/a.csv", "n;v\n" + "".join(f"{i};{i},5\n" for i in range(30_000)) + "30000;1.5\n")
        assert_ok(late, late.process())
        assert late.rows("SELECT count(*), max(CASE WHEN v = '1.5' THEN 1 END) FROM u") == [(30_001, 1)]
        assert column_types(late, "u")["v"] == "string"

    def test_words_a_date_cast_accepts_stay_text_in_csv(self, make):
        lake = make(wf("t"))
        lake.land("t/a.csv", "id,a,d\n1,epoch,2024-01-01\n2,Infinity,2024-01-02\n")
        lake.land("t/b.csv", "id,e\n3,2024-01-03\n4,-infinity\n")
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, a, CAST(d AS VARCHAR), e FROM t ORDER BY id")
        assert rows == [
            (1, "epoch", "2024-01-01", None),
            (2, "Infinity", "2024-01-02", None),
            (3, None, None, "2024-01-03"),
            (4, None, None, "-infinity"),
        ]
        types = dict(lake.pipeline.table("t").schema)
        assert (types["a"], types["d"], types["e"]) == ("string", "date32[day]", "string"), types

    def test_files_with_different_headers_loaded_together_keep_their_text(self, make):
        """Files of one batch whose headers differ are read group by group and combined by column name: a column
        one reads as booleans (`t`) or numbers (`007`) and another as text is text as written, not `true` or
        `7`; numbers of different types stay numbers, and a column of one group keeps its type."""
        lake = make(wf("t"))
        lake.land("t/a.csv", "id,name,code,amount\n1,abc,x1,10\n")
        lake.land("t/b.csv", "id,code,name,extra\n2,007,t,f\n")
        lake.land("t/c.csv", "id,amount,day\n3,2.5,2024-01-02\n")
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, name, code, amount, extra, CAST(day AS VARCHAR) FROM t ORDER BY id")
        assert rows == [
            (1, "abc", "x1", 10.0, None, None),
            (2, "t", "007", None, False, None),
            (3, None, None, 2.5, None, "2024-01-02"),
        ], rows
        types = dict(lake.pipeline.table("t").schema)
        assert [types[n] for n in ("name", "code", "amount", "extra", "day")] == [
            "string",
            "string",
            "double",
            "bool",
            "date32[day]",
        ], types

    def test_whole_numbers_beyond_64_bits_are_exact(self, make):
        """An id such as 12345678901234567890 (past int64) loads as decimal(38,0), not as a double that rounds it
        to 12345678901234567168: in CSV (in the sample or after it) and in JSON Lines."""
        big = "12345678901234567890"
        lake = make(wf("t"))
        lake.land("t/a.csv", f"id,n\n{big},1\n2,2\n")
        lake.land("t/b.jsonl", '{"id": 18446744073709551615, "n": 3}\n{"id": 4, "n": 4}\n')
        assert_ok(lake, lake.process())
        late = make(wf("u"))
        late.land("u/a.csv", "id\n" + "".join(f"{i}\n" for i in range(30_000)) + f"-{big}\n")
        assert_ok(late, late.process())
        rows = lake.rows("SELECT CAST(id AS VARCHAR), n FROM t ORDER BY n")
        assert rows == [(big, 1), ("2", 2), ("18446744073709551615", 3), ("4", 4)], rows
        assert dict(lake.pipeline.table("t").schema)["id"] == "decimal128(38, 0)"
        assert late.rows("SELECT CAST(min(id) AS VARCHAR), count(*) FROM u") == [(f"-{big}", 30_001)]
        assert dict(late.pipeline.table("u").schema)["id"] == "decimal128(38, 0)"
        # beyond 38 digits (DuckDB's BIGNUM, which its Parquet writer stores as binary): text, every digit kept
        huge = "1234567890" * 4 + "12345"
        lake = make(wf("h"), workers=1)
        lake.land("h/a.csv", f"id,n\n1,{huge}\n2,-5\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT n FROM h ORDER BY id") == [(huge,), ("-5",)]
        assert dict(lake.pipeline.table("h").schema)["n"] == "string"

    def test_json_keys_that_differ_only_in_case_keep_their_values(self, make):
        """`Name` and `name` are two keys to JSON and one name to SQL: both load, the second as `name_1` (its
        values were lost: the read asked for a key `name_1`); twins inside an object fail the file saying so."""
        lake = make(wf("t"))
        lake.land("t/a.jsonl", '{"id": 1, "Name": "a"}\n{"id": 2, "name": "b"}\n{"id": 3, "Name": "c", "name": "d"}\n')
        assert_ok(lake, lake.process())
        assert lake.rows('SELECT id, "Name", name_1 FROM t ORDER BY id') == [
            (1, "a", None),
            (2, None, "b"),
            (3, "c", "d"),
        ]
        lake.land("t/b.jsonl", '{"id": 4, "o": {"A": 1, "a": 2}}\n')
        lake.process()
        assert "keys that differ only in case (`a`)" in error_of(lake, "t/b.jsonl")

    def test_json_keys_named_like_a_renamed_twin_are_keys_of_their_own(self, make):
        """`id_2` beside `id` is a key of its own, not a twin DuckDB renamed (before, on Spark: ``keys that differ
        only in case (`id` and another)``, the file dead)."""
        lake = make(wf("t"))
        lake.land("t/a.jsonl", '{"id": 1, "id_2": 7, "Amount_1": 2}\n{"id": 2, "id_2": 8, "amount": 3}\n')
        assert_ok(lake, lake.process())
        assert lake.rows('SELECT id, id_2, "Amount_1", amount FROM t ORDER BY id') == [(1, 7, 2, None), (2, 8, None, 3)]

    def test_the_longest_line_the_reader_takes_is_in_the_detection_sample(self, make):
        # DuckDB's engine reads a file's detection sample with a smaller buffer than its reads: it must hold the
        # longest line the reader takes (2,000,000 bytes), and the words in the date column past it are found
        lake = make(wf("t"))
        note = "x" * 1_999_000
        lake.land("t/a.csv", f"id,note,d\n1,{note},2024-01-01\n2,short,epoch\n3,short,2024-01-03\n")
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, length(note), d FROM t ORDER BY id")
        assert rows == [(1, 1_999_000, "2024-01-01"), (2, 5, "epoch"), (3, 5, "2024-01-03")]

    def test_a_line_longer_than_the_reader_takes_names_its_line_and_the_setting(self, make):
        long_line = "y" * 2_200_000
        text = "a,d\n" + "x,2024-01-02\n" * 100 + f"{long_line},2024-01-03\n" + "z,2024-01-04\n"
        lake = make(wf("t"))
        lake.land("t/a.csv", text)
        lake.process()
        (run,) = lake.pipeline.runs()
        assert run.status == "dead", run
        assert run.error.startswith("`t/a.csv` line 102: the line is 2,200,011 bytes long"), run.error
        assert "`read.max_line_size`" in run.error, run.error
        wider = make(wf("u", read={"max_line_size": 3_000_000}))
        wider.land("u/a.csv", text)
        assert_ok(wider, wider.process())
        assert wider.rows("SELECT count(*), max(length(a)), max(d)::VARCHAR FROM u") == [(102, 2_200_000, "2024-01-04")]

    def test_a_late_value_of_another_form_keeps_its_column_as_text(self, make):
        lake = make(wf("t"))
        rows = 30_000  # past a reader's sample of the first rows
        lake.land("t/a.csv", "a,b\n" + "".join(f"{i},x\n" for i in range(rows)) + "oops,y\n")
        lake.land("t/b.jsonl", "".join(f'{{"a": {i}}}\n' for i in range(rows)) + '{"a": "oops"}\n')
        assert_ok(lake, lake.process())
        got = lake.rows(
            "SELECT _source_file, count(*), max(CASE WHEN a = 'oops' THEN 1 END) FROM t GROUP BY 1 ORDER BY 1"
        )
        assert got == [("t/a.csv", rows + 1, 1), ("t/b.jsonl", rows + 1, 1)]
        assert column_types(lake, "t")["a"] == "string"

    def test_a_late_value_widens_its_column_to_a_type_that_holds_it(self, make):
        lake = make(wf("t"))
        rows = 30_000  # past a reader's sample of the first rows
        lake.land("t/a.csv", "n\n" + "".join(f"{i}\n" for i in range(rows)) + "123456789012345678901234567890\n")
        assert_ok(lake, lake.process())
        assert column_types(lake, "t")["n"] == "decimal128(38, 0)"  # a whole number: exact, not a double
        assert lake.rows("SELECT count(*), max(n)::VARCHAR FROM t") == [(rows + 1, "123456789012345678901234567890")]
        lake.land("t/b.csv", "n\n1\n2\n")  # the integers of a later file fit the table's decimal
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT count(*), sum(n)::VARCHAR FROM t WHERE _source_file = 't/b.csv'") == [(2, "3")]
        assert column_types(lake, "t")["n"] == "decimal128(38, 0)"

    def test_a_late_value_is_never_rounded_or_cut_to_fit_a_sampled_type(self, make):
        lake = make(wf("t"))
        rows = 30_000  # past a reader's sample of the first rows
        lake.land("t/a.csv", "n,d\n" + "".join(f"{i},2024-01-01\n" for i in range(rows)) + "2.5,2024-01-02 10:30:00\n")
        assert_ok(lake, lake.process())
        got = lake.rows(
            "SELECT CAST(n AS DOUBLE), CAST(d AS VARCHAR) FROM t WHERE CAST(d AS VARCHAR) LIKE '2024-01-02%'"
        )
        assert got == [(2.5, "2024-01-02 10:30:00")]

    def test_a_late_json_value_of_another_kind_is_never_cast_to_fit_a_sampled_type(self, make):
        """The same in JSON Lines, where each value says its kind: past the sample, `2.5` in a column of whole
        numbers, `7` in a column of booleans and `true` in a column of fractions keep what they are (a wider
        type, or text), never `2`, `true` and `1.0`."""
        lake = make(wf("t", read={"format": "jsonl"}), wf("d", read={"format": "json"}))
        rows = 30_000  # past a reader's sample of the first records
        head = "".join(f'{{"id": {i}, "n": {i}, "b": true, "f": 1.5}}\n' for i in range(rows))
        late = '{"id": -1, "n": 2.5, "b": 7, "f": true}'
        lake.land("t/a.jsonl", f"{head}{late}\n")
        lake.land("d/a.json", f"[{head.replace(chr(10), ',')}{late}]")  # a document of the same records
        assert_ok(lake, lake.process())
        for table in ("t", "d"):
            got = lake.rows(
                f"SELECT CAST(n AS VARCHAR), CAST(b AS VARCHAR), CAST(f AS VARCHAR) FROM {table} WHERE id = -1"
            )
            assert got == [("2.5", "7", "true")], (table, got)

    def test_a_late_json_value_of_another_kind_keeps_its_kind_at_any_depth(self, make):
        """Inside an object and a list too, and of every kind: past the sample a fraction in a field of whole
        numbers or in a list of them, `true` and a number written as text (`"7"`) in columns of whole numbers, a
        fraction beside whole numbers beyond 64 bits keep what they are; whole numbers beyond a double's exact
        range (2^53) beside them stay exact."""
        lake = make(wf("t", read={"format": "jsonl"}))
        rows, big, wide = 30_000, 2**70, 2**60  # past a reader's sample of the first records
        head = "".join(
            f'{{"id": {i}, "o": {{"n": {i}}}, "l": [{i}, 1], "t": {i}, "s": {i}, "h": {big + i}, "x": {wide + i}}}\n'
            for i in range(rows)
        )
        lake.land("t/a.jsonl", head + '{"id": -1, "o": {"n": 2.5}, "l": [1, 0.5], "t": true, "s": "7", "h": 1.5}\n')
        assert_ok(lake, lake.process())
        got = lake.rows(
            "SELECT CAST(o.n AS VARCHAR), CAST(l[2] AS VARCHAR), CAST(t AS VARCHAR), CAST(s AS VARCHAR), "
            "CAST(h AS VARCHAR), x FROM t WHERE id = -1"
        )
        assert got == [("2.5", "0.5", "true", "7", "1.5", None)], got
        assert lake.rows("SELECT CAST(x AS VARCHAR) FROM t WHERE id = 7") == [(str(wide + 7),)]

    def test_a_late_json_value_of_another_kind_keeps_its_kind_in_a_map(self, make):
        """The values of an object of many keys (which DuckDB's detection makes a map) too: past the sample, a
        fraction among whole numbers keeps its fraction, and `true` stays `true`."""
        lake = make(wf("t", read={"format": "jsonl"}), wf("u", read={"format": "jsonl"}))
        head = "".join(f'{{"id": {i}, "m": {{"k{i}": {i}, "j{i}": 1}}}}\n' for i in range(30_000))
        lake.land("t/a.jsonl", head + '{"id": -1, "m": {"z": 2.5}}\n')
        lake.land("u/a.jsonl", head + '{"id": -1, "m": {"z": 2.5, "y": true}}\n')
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT m['z'], m['k7'] FROM t WHERE id IN (-1, 7) ORDER BY id") == [(2.5, None), (None, 7)]
        got = lake.rows("SELECT CAST(m['z'] AS VARCHAR), CAST(m['y'] AS VARCHAR) FROM u WHERE id = -1")
        assert got == [("2.5", "true")], got

    def test_every_file_of_a_batch_has_its_types_detected(self, make):
        """A batch of files with one header is read in one query: the twelfth file's `2.5` makes the column
        `double` (DuckDB sniffs the first ten files of a read unless told otherwise)."""
        lake = make(wf("t"), workers=1)
        for i in range(12):
            lake.land(
                f"t/{i:02d}.csv",
                "id,n\n" + "".join(f"{i * 10 + j},{j}\n" for j in range(5)) + ("99,2.5\n" if i == 11 else ""),
            )
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT count(*), max(n), sum(n) FILTER (WHERE id = 99) FROM t") == [(61, 4.0, 2.5)]
        assert lake.rows("SELECT DISTINCT typeof(n) FROM t") == [("DOUBLE",)]
