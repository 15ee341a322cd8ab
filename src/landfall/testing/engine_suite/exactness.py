"""The engine conformance suite: a value is never rounded or cut to fit a type landfall applies on its own (a
declared `read.types`, `schema.hints`, the table's types under each `schema.evolution` policy). A value that
fits whole is converted; one that does not fails the file naming its line and the value, or under `rescue` and
`discard_row` is kept in `_rescued_data` or set aside with its row. (A declared `double` is the one type whose
values are the nearest of their kind: a double is what was asked for.)"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from landfall.testing.engine_suite.base import SAMPLED_ROWS, EngineFixtures, assert_ok, column_types, error_of, jsonl
from landfall.testing.lake import Lake, wf

# a table's first file: a whole number, a date, a timestamp, a decimal
FIRST = "id,n,d,t,m\n1,10,2024-01-01,2024-01-01 10:00:00,1.25\n"
# a second file whose values fit the first's types whole (written another way), then ones that fit only cut
FITS = "id,n,d,t,m\n2,20,2024-01-02 00:00:00,2024-01-02T10:00:00,1.50\n"
CUT = {
    "n": "id,n,d,t,m\n3,2.5,2024-01-03,2024-01-03 10:00:00,1.25\n",
    "d": "id,n,d,t,m\n3,30,2024-01-03 10:30:00,2024-01-03 10:00:00,1.25\n",
    "t": "id,n,d,t,m\n3,30,2024-01-03,2024-01-03 10:00:00+05:00,1.25\n",
    "m": "id,n,d,t,m\n3,30,2024-01-03,2024-01-03 10:00:00,1.234\n",
}
KEPT = [
    (1, 10, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 10), 1.25),
    (2, 20, dt.date(2024, 1, 2), dt.datetime(2024, 1, 2, 10), 1.5),
]
TYPES = {"n": "int", "d": "date", "t": "timestamp", "m": "decimal(10,2)"}
# each CUT file's value, and the type it does not fit whole
REFUSED = (
    ("n", "2.5", "BIGINT"),
    ("d", "2024-01-03 10:30:00", "DATE"),
    ("t", "2024-01-03 10:00:00+05:00", "TIMESTAMP"),
    ("m", "1.234", "DECIMAL(10,2)"),
)


class ExactnessTests(EngineFixtures):
    """No value is rounded or cut to fit a type landfall applies (see the module's docstring)."""

    def _table(self, make, evolution: str) -> Lake:
        """A table `e` of FIRST's types (declared, so every file is read as text first: the table's types are
        applied by the evolution policy), then FITS, then each of CUT."""
        strings = {c: "string" for c in ("n", "d", "t", "m")}
        lake = make(
            wf("e", read={"types": strings}, schema={"evolution": evolution}, retry={"max_attempts": 1}),
            wf("first", match="first/", read={"types": TYPES}, write={"table": "e"}),
            workers=1,
        )
        lake.land("first/1.csv", FIRST, mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("e/2.csv", FITS, mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        for i, (column, body) in enumerate(CUT.items()):
            lake.land(f"e/cut-{column}.csv", body, mtime=1_700_000_002 + i)
        lake.process()
        return lake

    def test_a_text_value_is_cast_to_the_tables_type_only_whole(self, make):
        lake = self._table(make, "evolve")
        assert lake.rows("SELECT id, n, d, t, m FROM e ORDER BY id") == KEPT
        for column, value, kind in REFUSED:
            error = error_of(lake, f"e/cut-{column}.csv")
            assert error == f"`e/cut-{column}.csv` line 2: value `{value}` of column `{column}` is not a valid {kind}"

    def test_hexadecimal_binary_and_underscored_numbers_stay_as_written(self, make):
        """DuckDB reads `0x00FF` as the number 255 and `0b101` as 5 (its CSV detection made such a column BIGINT:
        `0xDeadBeef` loaded as 3735928559, the digits' width and case gone) and its casts read `1_000` as 1000. A
        column of them is text, every value as written, as pandas, Spark and Polars read it; into a table's number
        column such a value fails the file, naming its line (before: `0x10` loaded as 16)."""
        lake = make(wf("t"), wf("n", retry={"max_attempts": 1}), workers=1)
        lake.land("t/a.csv", "id,h,u,b\n1,0xDeadBeef,1_000,0b101\n2,0x00FF,2_000,0b1\n")
        lake.land("n/a.csv", "id,v\n1,a\n", mtime=1)
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT h, u, b FROM t ORDER BY id")
        assert got == [("0xDeadBeef", "1_000", "0b101"), ("0x00FF", "2_000", "0b1")]
        assert column_types(lake, "t")["h"] == column_types(lake, "t")["b"] == "string"
        for name, value in (("b", "0x10"), ("c", "1_000"), ("d", "0b101")):
            lake.land(f"n/{name}.csv", f"id,v\n{value},{name}\n", mtime=2)
            lake.process()
            assert error_of(lake, f"n/{name}.csv").startswith(
                f"`n/{name}.csv` line 2: value `{value}` of column `id` is not a valid BIGINT"
            ), error_of(lake, f"n/{name}.csv")
        assert lake.rows("SELECT id FROM n") == [(1,)]

    def test_a_number_beyond_a_doubles_range_stays_as_written(self, make):
        """DuckDB's CSV reader and casts take `1e400` for an infinity without a word (before: a column of doubles
        loaded `1e400` as inf, past the type sample or in it). A column holding one is text, every value as
        written; declared a double, such a value fails the file naming its line. An infinity written as a word
        (`inf`, `-Infinity`) is a double's."""
        lake = make(wf("t"), wf("w"), wf("d", read={"types": {"v": "double"}}, retry={"max_attempts": 1}), workers=1)
        rows = "".join(f"{i},{i}.5\n" for i in range(SAMPLED_ROWS))
        lake.land("t/late.csv", f"id,v\n{rows}{SAMPLED_ROWS},1e400\n")
        lake.land("w/words.csv", "id,v\n1,2.5\n2,inf\n3,-Infinity\n")
        lake.land("d/a.csv", "id,v\n1,2.5\n2,-1E+999\n")
        lake.process()
        assert column_types(lake, "t")["v"] == "string"
        assert lake.rows(f"SELECT id, v FROM t WHERE id IN (1, {SAMPLED_ROWS}) ORDER BY id") == [
            (1, "1.5"),
            (SAMPLED_ROWS, "1e400"),
        ]
        assert column_types(lake, "w")["v"] == "double"
        assert lake.rows("SELECT v FROM w ORDER BY id") == [(2.5,), (float("inf"),), (float("-inf"),)]
        assert error_of(lake, "d/a.csv") == "`d/a.csv` line 3: value `-1E+999` of column `v` is not a valid DOUBLE"

    def test_a_number_of_more_digits_than_a_double_holds_stays_as_written(self, make):
        """DuckDB's CSV detection types `1234567890.123456789` a double, which holds 1234567890.1234567 (before:
        loaded so, its last digits gone without a word). A column holding such a value in the type sample is
        text, every value as written (and so is one past the sample in a column of whole numbers, which a double
        would take otherwise); declared a decimal it is exact. Long values a double gives back whole (a program
        wrote them from doubles, at 17 digits or numpy's 19) keep their column a double. So in files loaded
        together, when a file past the first holds one."""
        lake = make(wf("t"), wf("d"), wf("m", read={"types": {"v": "decimal(38,24)"}}), wf("l"), workers=1)
        body = "id,v\n1,1.5\n2,1234567890.123456789\n3,0.000000123456789012345678\n"
        lake.land("t/a.csv", body)
        # past the type sample, in a column of whole numbers
        lake.land(
            "l/late.csv", "id,v\n" + "".join(f"{i},{i}\n" for i in range(SAMPLED_ROWS)) + "-1,1234567890.123456789\n"
        )
        lake.land("m/a.csv", body)
        lake.land("d/a.csv", "id,v\n1,0.30000000000000004\n2,1.000000000000000056e-01\n3,0.10000000000000001\n4,2.5\n")
        assert_ok(lake, lake.process())
        assert column_types(lake, "t")["v"] == "string"
        got = lake.rows("SELECT v FROM t ORDER BY id")
        assert got == [("1.5",), ("1234567890.123456789",), ("0.000000123456789012345678",)]
        assert column_types(lake, "m")["v"] == "decimal128(38, 24)"
        got = [v for (v,) in lake.rows("SELECT CAST(v AS VARCHAR) FROM m ORDER BY id")]
        assert got == ["1.5" + "0" * 23, "1234567890.123456789" + "0" * 15, "0.000000123456789012345678"]
        assert column_types(lake, "d")["v"] == "double"
        assert lake.rows("SELECT v FROM d ORDER BY id") == [(0.30000000000000004,), (0.1,), (0.1,), (2.5,)]
        assert lake.rows("SELECT v FROM l WHERE id IN (-1, 7) ORDER BY id") == [("1234567890.123456789",), ("7",)]
        # a new column, from files loaded together, the first of which has short numbers only
        lake.land("t/b1.csv", "id,w\n4,2.5\n")
        lake.land("t/b2.csv", "id,w\n5,1234567890.123456789\n")
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT w, typeof(w) FROM t WHERE id > 3 ORDER BY id")
        assert got == [("2.5", "VARCHAR"), ("1234567890.123456789", "VARCHAR")]

    def test_a_number_of_more_digits_than_a_double_holds_is_refused_by_a_double_column(self, make):
        """Into a table's double column a number of more digits than a double holds fails its file naming the line
        and the value (before: `1234567890.123456789` loaded as 1234567890.1234567, the table's first file having
        made the column a double); one a program wrote from a double, at any number of digits, is that double (also
        one whose last digit rounds a tie, either way: `0.1000137329101562`, the float32 0.10001373291015625
        printed at 16 digits). Declared a double (`read.types`), a number is the nearest double: a double is what
        was asked for."""
        lake = make(
            wf("t", retry={"max_attempts": 1}), wf("d", read={"types": {"v": "double"}}, retry={"max_attempts": 1})
        )
        lake.land("t/1.csv", "id,v\n1,1.5\n", mtime=1)
        assert_ok(lake, lake.process())
        kept = "id,v\n2,0.30000000000000004\n3,1.000000000000000056e-01\n4,0.1000137329101562\n5,-0.10000000000000001\n"
        kept += "6,5.960464477539063e-08\n"  # Python's text of 2**-24 (5.9604644775390625e-08): a tie, rounded up
        lake.land("t/2.csv", kept, mtime=2)
        assert_ok(lake, lake.process())
        for name in ("t/3.csv", "d/3.csv"):
            lake.land(name, "id,v\n7,2.5\n8,1234567890.123456789\n", mtime=3)
        lake.process()
        assert error_of(lake, "t/3.csv") == (
            "`t/3.csv` line 3: value `1234567890.123456789` of column `v` is not a valid DOUBLE: a double "
            "holds 1234567890.1234567; declare the column a decimal or text to keep every digit"
        )
        got = lake.rows("SELECT v FROM t ORDER BY id")
        assert got == [(1.5,), (0.30000000000000004,), (0.1,), (0.1000137329101562,), (-0.1,), (2**-24,)]
        assert lake.rows("SELECT v FROM d ORDER BY id") == [(2.5,), (1234567890.1234567,)]

    def test_a_number_of_more_digits_than_a_double_holds_in_json_lines_stays_as_written(self, make):
        """DuckDB's JSON reader gives no text back for a number it reads as a double (before:
        `1234567890.123456789` loaded as 1234567890.1234567, even into a text column). A field (at the top, in an
        object, a list's items) holding such a number in the type sample is text, every value as written; long
        numbers a double gives back whole keep their field a double; declared a decimal, exact; every column text
        (`read.all_strings`), the number's text, not its double's (before: its double's); into a table's double
        column, refused naming the line."""
        lake = make(*_long_number_workflows({}), wf("t", retry={"max_attempts": 1}))
        for name in ("j", "m", "s"):
            lake.land(f"{name}/a.jsonl", "\n".join([*LONG_NUMBERS[:2], "", LONG_NUMBERS[2]]) + "\n")
        lake.land("t/1.jsonl", '{"id": 1, "v": 1.5}\n', mtime=1)
        assert_ok(lake, lake.process())
        _assert_long_numbers_kept(lake)
        lake.land("t/2.jsonl", '{"id": 2, "v": 2.5}\n{"id": 3, "v": 1234567890.123456789}\n', mtime=2)
        lake.process()
        assert error_of(lake, "t/2.jsonl") == _refused_long_number("t/2.jsonl", 2)

    def test_a_number_of_more_digits_than_a_double_holds_in_a_json_document_stays_as_written(self, make):
        """As in JSON Lines, in a JSON document (before: `1234567890.123456789` loaded as 1234567890.1234567): a
        field holding such a number is text, every value as written, in an array of records written over many
        lines, in a document of one record, and in a document of values (its `value` rows hold the number's text);
        declared a decimal, exact; every column text (`read.all_strings`), the number's text; a document landed
        with others as when it lands alone; into a table's double column, refused naming the document's line."""
        json_read = {"format": "json"}
        lake = make(
            *_long_number_workflows(json_read),
            wf("o", read=json_read),
            wf("v", read=json_read),
            wf("t", read=json_read, retry={"max_attempts": 1}),
            workers=1,
        )
        for name in ("j", "m", "s"):
            lake.land(f"{name}/a.json", "[\n  " + ",\n  ".join(LONG_NUMBERS) + "\n]\n")
        lake.land("o/a.json", '{"id": 1,\n "v": 1234567890.123456789}')
        lake.land("v/a.json", "[1234567890.123456789, 2.5]")
        lake.land("t/1.json", '[{"id": 1, "v": 1.5}]', mtime=1)
        assert_ok(lake, lake.process())
        _assert_long_numbers_kept(lake)
        assert lake.rows("SELECT v FROM o") == [("1234567890.123456789",)]
        assert sorted(lake.rows("SELECT value FROM v")) == [("1234567890.123456789",), ("2.5",)]
        # landed together: the table's first file alone, then the rest (the one holding a long number alone too)
        lake.land("j/b1.json", '[{"id": 4, "w": 2.5}]', mtime=2)
        lake.land("j/b2.json", '[{"id": 5, "w": 1.5}]', mtime=2)
        lake.land("j/b3.json", '[{"id": 6, "v": 7.123456789012345678, "w": 3.5}]', mtime=2)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT v, w FROM j WHERE id > 3 ORDER BY id") == [
            (None, 2.5),
            (None, 1.5),
            ("7.123456789012345678", 3.5),
        ]
        lake.land("t/2.json", '[\n {"id": 2, "v": 2.5},\n {"id": 3,\n  "v": 1234567890.123456789}\n]', mtime=3)
        lake.process()
        assert error_of(lake, "t/2.json") == _refused_long_number("t/2.json", 4)

    def test_a_number_beyond_a_doubles_range_in_json_lines_stays_as_written(self, make):
        """DuckDB's JSON reader takes `1e400` for an infinity without a word, as its CSV reader does: a column
        holding one, past the type sample, is text, every value as written."""
        lake = make(wf("j"), workers=1)
        records = jsonl([{"id": i, "v": i + 0.5} for i in range(SAMPLED_ROWS)])
        lake.land("j/late.jsonl", records + f'{{"id":{SAMPLED_ROWS},"v":1e400}}\n')
        assert_ok(lake, lake.process())
        assert column_types(lake, "j")["v"] == "string"
        assert lake.rows(f"SELECT v FROM j WHERE id IN (1, {SAMPLED_ROWS}) ORDER BY id") == [("1.5",), ("1e400",)]

    def test_a_number_beyond_a_doubles_range_inside_an_object_or_a_list_stays_as_written(self, make):
        """The same inside objects and lists (before: `{"m": {"v": 1e400}}` loaded `m.v` as inf): the field, or
        the list's items, are text, every value as written; the object's other fields keep their types. In the
        type sample or past it, and through `flatten`."""
        lake = make(wf("s"), wf("p"), wf("f", transform=[{"flatten": {}}]), workers=1)

        def record(i: int, v: str = "", items: str = "") -> str:
            return f'{{"id":{i},"m":{{"v":{v or f"{i}.5"},"n":{i}}},"w":[{items or f"{i}.25"}]}}\n'

        lake.land("s/in.jsonl", record(1) + record(2, "1e400", "2e400, 1.5"))
        late = "".join(record(i) for i in range(SAMPLED_ROWS)) + record(SAMPLED_ROWS, "-1e999")
        lake.land("p/late.jsonl", late)
        lake.land("f/late.jsonl", late)
        assert_ok(lake, lake.process())
        types = column_types(lake, "s")
        assert (types["m"], types["w"]) == ("struct<v: string, n: int64>", "list<element: string>"), types
        got = lake.rows("SELECT m.v, m.n, w FROM s ORDER BY id")
        assert got == [("1.5", 1, ["1.25"]), ("1e400", 2, ["2e400", "1.5"])]
        types = column_types(lake, "p")
        assert (types["m"], types["w"]) == ("struct<v: string, n: int64>", "list<element: double>"), types
        got = lake.rows(f"SELECT m.v, w FROM p WHERE id IN (1, {SAMPLED_ROWS}) ORDER BY id")
        assert got == [("1.5", [1.25]), ("-1e999", [SAMPLED_ROWS + 0.25])]
        assert (column_types(lake, "f")["m_v"], column_types(lake, "f")["m_n"]) == ("string", "int64")
        assert lake.rows(f"SELECT m_v FROM f WHERE id = {SAMPLED_ROWS}") == [("-1e999",)]

    def test_rescue_keeps_a_value_that_fits_only_cut(self, make):
        lake = self._table(make, "rescue")
        rows = lake.rows("SELECT id, n, d, t, m, _rescued_data, _source_file FROM e ORDER BY id, _source_file")
        assert [r[:5] for r in rows[:2]] == KEPT and rows[0][5] is None and rows[1][5] is None
        rescued = {r[6]: (r[1:5], json.loads(r[5])) for r in rows[2:]}
        whole = {"n": 30, "d": dt.date(2024, 1, 3), "t": dt.datetime(2024, 1, 3, 10), "m": 1.25}
        for column, value, _ in REFUSED:
            values, kept = rescued[f"e/cut-{column}.csv"]
            expected = tuple(None if c == column else whole[c] for c in ("n", "d", "t", "m"))
            assert values == expected, (column, values)
            assert kept[column] == value and kept["_file"] == f"e/cut-{column}.csv", kept

    def test_discard_row_sets_aside_a_row_whose_value_fits_only_cut(self, make):
        lake = self._table(make, "discard_row")
        assert lake.rows("SELECT id, n, d, t, m FROM e ORDER BY id") == KEPT
        got = lake.rows("SELECT _source_file, _line, _rule FROM quarantine.e ORDER BY _source_file")
        assert got == [(f"e/cut-{c}.csv", 2, "schema") for c in sorted(CUT)]

    def test_a_word_is_never_cast_to_a_date(self, make):
        """DuckDB's casts read `epoch` as 1970-01-01 and `infinity`, `inf` as an infinite date or timestamp: no
        word becomes a table's or a declared date or timestamp (in a declared format too); the file fails naming
        it."""
        formats = {"date_format": "%d/%m/%Y", "timestamp_format": "%d/%m/%Y %H:%M"}
        lake = make(
            wf("e", read={"types": {"d": "string", "t": "string"}}, retry={"max_attempts": 1}),
            wf("first", match="first/", read={"types": {"d": "date", "t": "timestamp"}}, write={"table": "e"}),
            wf("c", read={"types": {"d": "date", "t": "timestamp"}}, retry={"max_attempts": 1}),
            wf("f", read={"types": {"d": "date", "t": "timestamp"}, **formats}, retry={"max_attempts": 1}),
            wf("j", read={"format": "jsonl", "types": {"d": "date"}}, retry={"max_attempts": 1}),
            workers=1,
        )
        lake.land("first/1.csv", "id,d,t\n1,2024-01-01,2024-01-01 10:00:00\n")
        assert_ok(lake, lake.process())
        refused = {
            "e/d.csv": ("2,epoch,2024-01-02 10:00:00", "epoch", "d", "DATE"),
            "e/t.csv": ("3,2024-01-03,-inf", "-inf", "t", "TIMESTAMP"),
            "c/d.csv": ("4,Infinity,2024-01-04 10:00:00", "Infinity", "d", "DATE"),
            "f/d.csv": ("5,epoch,05/01/2024 10:00", "epoch", "d", "DATE"),
            "f/t.csv": ("6,06/01/2024,INF", "INF", "t", "TIMESTAMP"),
        }
        for key, (row, *_) in refused.items():
            lake.land(key, f"id,d,t\n{row}\n")
        lake.land("j/ok.jsonl", jsonl([{"id": 8, "d": "2024-01-08"}]))
        lake.land("j/d.jsonl", jsonl([{"id": 9, "d": "2024-01-09"}, {"id": 10, "d": "epoch"}]))
        refused["j/d.jsonl"] = ("", "epoch", "d", "DATE")
        lake.process()
        lake.land("f/ok.csv", "id,d,t\n7,07/01/2024,07/01/2024 10:00\n")
        lake.process()
        assert lake.rows("SELECT id, d, t FROM f") == [(7, dt.date(2024, 1, 7), dt.datetime(2024, 1, 7, 10))]
        assert lake.rows("SELECT id, d FROM j") == [(8, dt.date(2024, 1, 8))]
        assert lake.rows("SELECT id FROM e") == [(1,)] and "c" not in {t.name for t in lake.pipeline.tables()}
        for key, (_, value, column, kind) in refused.items():
            assert error_of(lake, key) == f"`{key}` line 2: value `{value}` of column `{column}` is not a valid {kind}"

    def test_the_cast_step_makes_no_word_a_date(self, make):
        """`cast:` casts as SQL does (a timestamp's text to a date gives its date), but `epoch` is no date on
        either engine (DuckDB's cast reads it as 1970-01-01, Spark's as nothing): the file fails naming it."""
        cast = {"transform": [{"cast": {"d": "date"}}], "read": {"types": {"d": "string"}}}
        lake = make(wf("c", retry={"max_attempts": 1}, **cast))
        lake.land("c/ok.csv", "id,d\n1,2024-01-03 10:30:00\n")
        lake.land("c/word.csv", "id,d\n2,2024-01-04\n3,epoch\n")
        lake.process()
        assert lake.rows("SELECT id, d FROM c") == [(1, dt.date(2024, 1, 3))]
        assert error_of(lake, "c/word.csv") == "`c/word.csv` line 3: value `epoch` of column `d` is not a valid DATE"

    def test_the_cast_step_is_the_same_on_both_engines(self, make):
        """A number or a boolean is no date or time, nor the other way round, whatever the rows: DuckDB failed such
        a file at its first value (``Unimplemented type for cast (BIGINT -> TIMESTAMP WITH TIME ZONE)``, no step
        named) and passed one of no rows, while Spark read a number as seconds since 1970 (`3` as
        1970-01-01 00:00:03+00). An instant as text names UTC's offset on both (Spark's had none), and a value that
        is no boolean says BOOLEAN on both (DuckDB's error, BOOL)."""
        casts = {"n": "timestamptz", "d": "bigint", "b": "date"}
        lake = make(
            *[
                wf(f"r{i}", retry={"max_attempts": 1}, transform=[{"filter": "n <> 4"}, {"cast": {c: t}}])
                for i, (c, t) in enumerate(casts.items())
            ],
            wf("z", transform=[{"cast": {"z": "string"}}]),
            wf("w", retry={"max_attempts": 1}, transform=[{"cast": {"v": "boolean"}}]),
            wf("j", retry={"max_attempts": 1}, transform=[{"cast": {"v": "json", "d": "json", "n": "json"}}]),
            wf("k", retry={"max_attempts": 1}, transform=[{"compute": {"k": "CAST(v AS INTEGER)"}}]),
        )
        record = {"n": 3, "d": "2026-01-02", "b": True, "z": "2026-01-02T10:30:00+02:00", "v": "7"}
        for i in range(len(casts)):
            lake.land(f"r{i}/a.jsonl", json.dumps(record) + "\n")
            lake.land(f"r{i}/none.jsonl", json.dumps({**record, "n": 4}) + "\n")  # no row left to cast: refused
        lake.land("z/a.jsonl", json.dumps(record) + "\n")
        lake.land("w/a.jsonl", json.dumps(record) + "\n")
        lake.land(
            "j/a.jsonl", json.dumps({**record, "v": '{"a": [1, 2]}', "d": dt.date(2026, 1, 2).isoformat()}) + "\n"
        )
        lake.land("j/b.jsonl", json.dumps(record) + "\n" + json.dumps({**record, "v": "abc"}) + "\n")
        lake.land("k/a.jsonl", json.dumps(record) + "\n" + json.dumps({**record, "v": "abc"}) + "\n")
        lake.process()
        said = {"n": ("BIGINT", "TIMESTAMPTZ"), "d": ("DATE", "BIGINT"), "b": ("BOOLEAN", "DATE")}
        for i, (c, (have, want)) in enumerate(said.items()):
            for key in (f"r{i}/a.jsonl", f"r{i}/none.jsonl"):
                got = error_of(lake, key) or ""
                assert f"step 2 (`cast`): column `{c}` is {have}, which a `cast` step does not make a {want}" in got, (
                    got
                )
        assert lake.rows("SELECT z FROM z") == [("2026-01-02 08:30:00+00",)]
        assert error_of(lake, "w/a.jsonl") == "`w/a.jsonl` line 1: value `7` of column `v` is not a valid BOOLEAN"
        # to `json`: text that is JSON as written, other values as JSON (a date as a JSON string); Spark wrote
        # Spark's text of each (`2026-01-02`, not JSON), and DuckDB failed text that is no JSON naming no line
        got = lake.rows("SELECT CAST(v AS VARCHAR), CAST(d AS VARCHAR), CAST(n AS VARCHAR) FROM j")
        assert got == [('{"a": [1, 2]}', '"2026-01-02"', "3")]
        assert error_of(lake, "j/b.jsonl") == "`j/b.jsonl` line 2: value `abc` of column `v` is not a valid JSON"
        # a cast in SQL: the value, its column and line on both (Spark's said `[CAST_INVALID_INPUT] ...`, no line)
        assert error_of(lake, "k/a.jsonl") == "`k/a.jsonl` line 2: value `abc` of column `v` is not a valid INTEGER"

    def test_a_word_past_the_type_sample_keeps_its_date_column_text(self, make):
        """A column whose first 20,480 rows are dates is detected as dates; a word a date cast takes further on
        (`infinity`, `Epoch`) makes it text, as one in the sample does, instead of loading as an infinite date or
        1970-01-01. A date column spanning 1970 without a word stays a date."""
        lake = make(wf("w", retry={"max_attempts": 1}))
        rows = "".join(f"{i},2024-01-{i % 28 + 1:02},2024-01-01 10:00:00,2023-05-05\n" for i in range(30_000))
        late = "30000,infinity,2024-01-02 10:00:00,1960-01-01\n30001,Epoch,-infinity,1980-01-01\n"
        lake.land("w/a.csv", "id,d,t,u\n" + rows + late)
        assert_ok(lake, lake.process())
        types = dict(lake.pipeline.table("w").schema)
        assert (types["d"], types["t"], types["u"]) == ("string", "string", "date32[day]"), types
        assert lake.rows("SELECT d, t, CAST(u AS VARCHAR) FROM w WHERE id >= 30000 ORDER BY id") == [
            ("infinity", "2024-01-02 10:00:00", "1960-01-01"),
            ("Epoch", "-infinity", "1980-01-01"),
        ]

    def test_a_word_past_the_type_sample_is_found_under_a_new_name(self, make):
        """The word is found however the steps name or shape the date column on its way to the table (renamed,
        normalized, flattened out of an object, or changed by a step)."""
        lake = make(
            wf("r", transform=[{"rename": {"d": "day"}}], retry={"max_attempts": 1}),
            wf("n", transform=[{"normalize_names": True}], retry={"max_attempts": 1}),
            wf("c", transform=[{"compute": {"d": "d + 1"}}], retry={"max_attempts": 1}),
            wf("s", transform=[{"sql": "SELECT id, d + 1 AS d FROM input"}], retry={"max_attempts": 1}),
            wf("j", read={"format": "jsonl"}, transform=[{"flatten": {}}], retry={"max_attempts": 1}),
        )
        rows = "".join(f"{i},2024-01-{i % 28 + 1:02}\n" for i in range(30_000)) + "30000,Epoch\n"
        lake.land("r/a.csv", "id,d\n" + rows)
        lake.land("n/a.csv", "id,Order Day\n" + rows)
        lake.land("c/a.csv", "id,d\n" + rows)
        lake.land("s/a.csv", "id,d\n" + rows)
        first = [{"id": i, "n": {"e": "2024-01-03"}} for i in range(30_000)]
        lake.land("j/a.jsonl", jsonl([*first, {"id": 30_000, "n": {"e": "epoch"}}]))
        lake.process()
        assert lake.rows("SELECT day FROM r WHERE id = 30000") == [("Epoch",)]
        assert lake.rows("SELECT order_day FROM n WHERE id = 30000") == [("Epoch",)]
        assert lake.rows("SELECT CAST(n_e AS VARCHAR) FROM j WHERE id = 30000") == [("epoch",)]
        # `d + 1` of text does not compute: the file fails at that step, where it loaded 1970-01-02
        assert "step 1 (`compute`)" in error_of(lake, "c/a.csv")
        assert "step 1 (`sql`)" in error_of(lake, "s/a.csv")

    def test_a_word_past_the_type_sample_keeps_its_json_dates_text(self, make):
        lake = make(wf("j", read={"format": "jsonl"}, retry={"max_attempts": 1}))
        first = [{"id": i, "d": "2024-01-02", "n": {"e": "2024-01-03"}, "u": "2023-05-05"} for i in range(30_000)]
        late = [{"id": 30_000, "d": "infinity", "n": {"e": "epoch"}, "u": "1960-01-01"}]
        lake.land("j/a.jsonl", jsonl(first + late))
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT CAST(d AS VARCHAR), CAST(n AS VARCHAR), CAST(u AS VARCHAR) FROM j WHERE id = 30000")
        assert rows[0][0] == "infinity" and "epoch" in rows[0][1] and rows[0][2] == "1960-01-01", rows
        types = dict(lake.pipeline.table("j").schema)
        assert (types["d"], types["u"]) == ("string", "date32[day]"), types

    def test_a_declared_timestamp_takes_no_more_than_microseconds(self, make):
        """A timestamp holds microseconds: a declared timestamp column refuses `.123456789` (the cast cut it to
        `.123456`), naming the value; six digits or fewer load."""
        lake = make(wf("s", read={"types": {"t": "timestamp"}}, retry={"max_attempts": 1}))
        lake.land("s/fits.csv", "id,t\n1,2024-01-03 10:00:00.123456\n2,2024-01-03T10:00:00.5\n")
        lake.land("s/cut.csv", "id,t\n3,2024-01-03 10:00:00.1\n4,2024-01-03 10:00:00.123456789\n")
        lake.process()
        assert lake.rows("SELECT id, t FROM s ORDER BY id") == [
            (1, dt.datetime(2024, 1, 3, 10, 0, 0, 123456)),
            (2, dt.datetime(2024, 1, 3, 10, 0, 0, 500000)),
        ]
        error = error_of(lake, "s/cut.csv")
        assert error.startswith("`s/cut.csv` line 3: value `2024-01-03 10:00:00.123456789` "), error

    def test_hints_take_a_value_only_whole(self, make):
        lake = make(wf("h", schema={"hints": TYPES}, retry={"max_attempts": 1}))
        lake.land("h/fits.csv", FIRST + FITS.split("\n", 1)[1])
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, n, d, t, m FROM h ORDER BY id") == KEPT
        for column, body in CUT.items():
            lake.land(f"h/cut-{column}.csv", body)
        lake.process()
        for column in ("n", "d", "m"):
            error = error_of(lake, f"h/cut-{column}.csv")
            assert error.startswith(f"`h/cut-{column}.csv` line 2: value `"), error
        # a column of timestamps with an offset is read as instants: as a timestamp, the same instant in UTC
        assert lake.rows("SELECT t FROM h WHERE id = 3") == [(dt.datetime(2024, 1, 3, 5),)]

    def test_a_declared_type_takes_a_value_only_whole(self, make):
        """DuckDB's CSV reader rounds `2.5` into a declared BIGINT (3) and `1.234` into DECIMAL(10,2), and cuts
        `2024-01-03 10:30:00` to its date, past its sample as in it. A declared column a file lacks is passed
        over."""
        lake = make(
            wf("c", read={"types": {**TYPES, "absent": "int"}}, retry={"max_attempts": 1}),
            wf("j", read={"types": {"n": "int", "d": "date"}}, retry={"max_attempts": 1}),
        )
        lake.land("c/fits.csv", FIRST + FITS.split("\n", 1)[1])
        many = "".join(f"{i},{i},2024-01-01,2024-01-01 10:00:00,1.25\n" for i in range(10, 30_010))
        for column, body in CUT.items():
            lake.land(f"c/cut-{column}.csv", "id,n,d,t,m\n" + many + body.split("\n", 1)[1])
        lake.land("j/fits.jsonl", jsonl([{"n": 1, "d": "2024-01-01"}, {"n": "2", "d": "2024-01-02 00:00:00"}]))
        lake.land("j/n.jsonl", jsonl([{"n": 1, "d": None}, {"n": 2.5, "d": None}]))
        lake.land("j/d.jsonl", jsonl([{"n": 1, "d": "2024-01-01"}, {"n": 2, "d": "2024-01-03 10:30:00"}]))
        lake.process()
        assert lake.rows("SELECT id, n, d, t, m FROM c ORDER BY id") == KEPT
        for column, value, kind in REFUSED:
            error = error_of(lake, f"c/cut-{column}.csv")
            assert error.startswith(f"`c/cut-{column}.csv` line 30002: value `{value}` "), error
            assert error.endswith(f" is not a valid {kind}"), error
        assert lake.rows("SELECT n, d FROM j ORDER BY n") == [(1, dt.date(2024, 1, 1)), (2, dt.date(2024, 1, 2))]
        for key, value, kind in (("j/n.jsonl", "2.5", "BIGINT"), ("j/d.jsonl", "2024-01-03 10:30:00", "DATE")):
            error = error_of(lake, key)
            assert error == f"`{key}` line 2: value `{value}` of column `{key[2]}` is not a valid {kind}", error

    def test_a_value_that_does_not_fit_is_found_in_its_own_column(self, make):
        """The line named is that of the first record whose column holds the value, not the first line holding
        the value anywhere (here in another column, on an earlier line, and a record without the column); in a
        JSON document, the line of the record's key."""
        lake = make(wf("t", read={"types": {"n": "int"}}, retry={"max_attempts": 1}))
        lake.land("t/a.jsonl", '{"n": "1"}\n{"m": "x"}\n{"n": "2"}\n\n{"n": "x"}\n{"n": "4"}\n')
        lake.land("t/b.jsonl", '{"n": 1}\n{"m": "x"}\n{"n": 2}\n\n{"n": "x"}\n{"n": 4}\n')
        lake.land(
            "t/c.json", '[\n  {"n": "1", "m": "x"},\n  {\n    "m": "y",\n    "n": "x"\n  }\n]\n'
        )  # its key's line
        lake.process()
        for key in ("t/a.jsonl", "t/b.jsonl", "t/c.json"):
            error = error_of(lake, key)
            assert error == f"`{key}` line 5: value `x` of column `n` is not a valid BIGINT", error
        table = make(
            wf("e", read={"types": {"n": "string", "m": "string"}}, retry={"max_attempts": 1}),
            wf("first", match="first/", read={"types": {"n": "int"}}, write={"table": "e"}),
            workers=1,
        )
        table.land("first/1.csv", "id,m,n\n1,a,10\n", mtime=1_700_000_000)
        assert_ok(table, table.process())
        table.land("e/2.csv", 'id,m,n\n2,x,20\n3,"y\nx",30\n4,z,x\n', mtime=1_700_000_001)
        table.process()
        error = error_of(table, "e/2.csv")
        assert error == "`e/2.csv` line 5: value `x` of column `n` is not a valid BIGINT", error

    def test_json_whole_numbers_beyond_64_bits_are_exact(self, make):
        """A JSON number too large for a 64-bit integer, which a JSON reader takes as a double (rounding
        123456789012345678901234567890 to 1.2345678901234568e+29), loads as decimal(38,0) where its column holds
        whole numbers only: at the top, in an object, in a list; in the sample and past it. A column that also
        holds a fraction stays double."""
        big = "123456789012345678901234567890"
        lake = make(wf("j", read={"format": "jsonl"}), wf("k", read={"format": "jsonl"}), workers=1)
        first = f'{{"id": 1, "n": {big}, "o": {{"x": {big}}}, "l": [{big}], "f": 1.5}}\n'
        lake.land("j/a.jsonl", first + '{"id": 2, "n": 5, "o": {"x": 1}, "l": [], "f": 2}\n')
        lake.land("k/a.jsonl", jsonl([{"id": i, "n": i} for i in range(SAMPLED_ROWS)]) + f'{{"id": -1, "n": -{big}}}\n')
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT CAST(n AS VARCHAR), CAST(o.x AS VARCHAR), CAST(l[1] AS VARCHAR), f FROM j ORDER BY id")
        assert got == [(big, big, big, 1.5), ("5", "1", None, 2.0)], got
        types = column_types(lake, "j")
        assert (types["n"], types["f"]) == ("decimal128(38, 0)", "double"), types
        assert lake.rows("SELECT CAST(n AS VARCHAR) FROM k WHERE id = -1") == [(f"-{big}",)]
        assert column_types(lake, "k")["n"] == "decimal128(38, 0)"
        # beyond 38 digits, which decimal(38,0) does not hold: text, every digit kept (at any depth)
        huge = "1234567890" * 4 + "12345"
        lake = make(wf("h", read={"format": "jsonl"}), workers=1)
        lake.land(
            "h/a.jsonl", f'{{"id": 1, "n": {huge}, "o": {{"x": -{huge}}}}}\n{{"id": 2, "n": 5, "o": {{"x": 1}}}}\n'
        )
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT n, o.x FROM h ORDER BY id") == [(huge, f"-{huge}"), ("5", "1")]
        assert column_types(lake, "h")["n"] == "string"

    def test_json_whole_numbers_of_both_signs_are_64_bit_integers(self, make):
        """A JSON column of whole numbers some positive and some negative is a 64-bit integer column, at the top,
        in an object, in a list, in a map (DuckDB's detection takes it for a 128-bit one, UBIGINT beside BIGINT,
        which would be stored as decimal(38,0)); a value beyond 64 bits past the type sample still makes it
        decimal(38,0), exact, and so does one in a map (which a double would round)."""
        lake = make(wf("j", read={"format": "jsonl"}), wf("k", read={"format": "jsonl"}), workers=1)
        lake.land(
            "j/a.jsonl", '{"id": 1, "n": 5, "o": {"x": 7}, "l": [3, -3]}\n{"id": 2, "n": -5, "o": {"x": -7}, "l": []}\n'
        )
        big = str(2**63)
        records = [{"id": i, "n": i if i % 2 else -i} for i in range(SAMPLED_ROWS)]
        lake.land("k/a.jsonl", jsonl(records) + f'{{"id": -1, "n": {big}}}\n')
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT n, o.x, l FROM j ORDER BY id") == [(5, 7, [3, -3]), (-5, -7, [])]
        types = column_types(lake, "j")
        assert (types["id"], types["n"], types["o"]) == ("int64", "int64", "struct<x: int64>"), types
        assert types["l"].startswith("list<") and types["l"].endswith(": int64>"), types
        assert lake.rows("SELECT CAST(n AS VARCHAR) FROM k WHERE id IN (-1, 3) ORDER BY id") == [(big,), ("3",)]
        assert column_types(lake, "k")["n"] == "decimal128(38, 0)"
        # the values of an object of many keys (which DuckDB's detection makes a map): 64-bit integers too, and
        # whole numbers beyond 64 bits exact
        huge = "123456789012345678901234567890"
        lake = make(wf("m", read={"format": "jsonl"}), workers=1)
        many = [f'{{"id": {i}, "t": {{"k{i}a": {i}, "k{i}b": -{i}}}, "h": {{"k{i}": {huge}}}}}' for i in range(300)]
        lake.land("m/a.jsonl", "\n".join(many) + "\n")
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT t['k7a'], t['k7b'], CAST(h['k7'] AS VARCHAR) FROM m WHERE id = 7")
        assert got == [(7, -7, huge)], got
        types = column_types(lake, "m")
        assert types["t"].startswith("map<string, int64"), types  # (pyarrow may name the map's field)
        assert types["h"].startswith("map<string, decimal128(38, 0)"), types

    # --- nothing past the type sample lost ---------------------------------------------------------------------

    @pytest.mark.parametrize("fmt", ["jsonl", "json"])
    def test_a_key_first_seen_past_the_type_sample_is_loaded(self, make, fmt):
        """A key that first appears past the reader's type sample, at the top of a record, in an object and in a
        list of objects, is loaded with the rest (readers skip a key they were not given without a word)."""
        lake = make(wf("j", read={"format": fmt}), workers=1)
        records: list[dict[str, Any]] = [{"id": i, "o": {"k": 1}, "l": [{"p": 1}]} for i in range(SAMPLED_ROWS)]
        records.append({"id": SAMPLED_ROWS, "o": {"k": 2, "z": "in o"}, "l": [{"p": 2, "q": "in l"}], "extra": "top"})
        lake.land(f"j/a.{fmt}", jsonl(records) if fmt == "jsonl" else json.dumps(records))
        assert_ok(lake, lake.process())
        got = lake.rows(f"SELECT extra, o.z, l[1].q, o.k FROM j WHERE id = {SAMPLED_ROWS}")
        assert got == [("top", "in o", "in l", 2)], got
        assert lake.rows("SELECT count(*), count(extra) FROM j") == [(SAMPLED_ROWS + 1, 1)]

    def test_a_key_first_seen_past_the_type_sample_is_loaded_from_a_document_only_python_reads(self, make):
        """The same in a JSON document DuckDB's reader refuses (a duplicate key: the last one wins), which is read
        from its records written as JSON Lines."""
        lake = make(wf("j", read={"format": "json"}), workers=1)
        records = [json.dumps({"id": i, "v": i}) for i in range(SAMPLED_ROWS)]
        records[3] = '{"id": 3, "v": 1, "v": 2}'
        records.append(json.dumps({"id": -1, "v": 0, "late": "kept"}))
        lake.land("j/a.json", "[" + ",\n".join(records) + "]")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT late FROM j WHERE id = -1") == [("kept",)]
        assert lake.rows("SELECT v FROM j WHERE id = 3") == [(2,)]

    def test_a_key_first_seen_past_the_type_sample_is_loaded_in_quarantine_mode(self, make):
        """The same with `bad_rows: quarantine` and a line that is no JSON, set aside (the file's other lines are
        then read from a copy)."""
        lake = make(wf("j", read={"format": "jsonl", "bad_rows": "quarantine"}), workers=1)
        head = jsonl([{"id": i, "n": i} for i in range(SAMPLED_ROWS)])
        lake.land("j/a.jsonl", head + '{"id": \n' + jsonl([{"id": -1, "n": 7, "extra": "kept"}]))
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT n, extra FROM j WHERE id = -1") == [(7, "kept")]
        assert lake.rows("SELECT count(*) FROM j") == [(SAMPLED_ROWS + 1,)]
        assert lake.rows("SELECT _line FROM quarantine.j") == [(SAMPLED_ROWS + 1,)]

    def test_past_the_type_sample_a_line_that_is_no_object_is_set_aside_in_quarantine_mode(self, make):
        """Past the sample, in quarantine mode: a line that is valid JSON but no object is set aside with its
        line, and a value that does not fit its column's sampled type changes the column's type (text here)."""
        lake = make(wf("j", read={"format": "jsonl", "bad_rows": "quarantine"}), workers=1)
        head = jsonl([{"id": i, "n": i} for i in range(SAMPLED_ROWS)])
        lake.land("j/a.jsonl", head + '[1]\n"text"\n' + jsonl([{"id": -1, "n": "n/a"}]))
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT count(*), max(CAST(n AS VARCHAR)) FILTER (WHERE id = -1) FROM j") == [
            (SAMPLED_ROWS + 1, "n/a")
        ]
        got = lake.rows("SELECT _line, _raw FROM quarantine.j ORDER BY _line")
        assert got == [(SAMPLED_ROWS + 1, "[1]"), (SAMPLED_ROWS + 2, '"text"')], got


# records whose numbers a double holds whole, and ones it does not (at the top, in an object, a list's items)
LONG_NUMBERS = [
    '{"id": 1, "v": 1.5, "o": {"x": 2.5, "y": 0.1}, "l": [1, 2.5]}',
    '{"id": 2, "v": 1234567890.123456789, "o": {"x": 12345678901234567.25, "y": 1.000000000000000056e-01}, '
    '"l": [0.30000000000000004, 0.123456789012345678901]}',
    '{"id": 3, "v": 0.30000000000000004, "o": {"x": 1e0, "y": 0.10000000000000001}, "l": []}',
]


def _long_number_workflows(read: dict[str, Any]) -> list[dict[str, Any]]:
    """Workflows `j` (types detected), `m` (`v` declared a decimal) and `s` (`all_strings`) reading `read`."""
    return [
        wf("j", read=read),
        wf("m", read={**read, "types": {"v": "decimal(38,18)"}}),
        wf("s", read={**read, "all_strings": True}),
    ]


def _assert_long_numbers_kept(lake: Lake) -> None:
    """`LONG_NUMBERS` loaded by `_long_number_workflows`: every digit of each number kept."""
    types = column_types(lake, "j")
    assert (types["v"], types["l"]) == ("string", "list<element: string>"), types
    assert types["o"] == "struct<x: string, y: double>", types
    assert lake.rows("SELECT v, o.x, o.y, l FROM j ORDER BY id") == [
        ("1.5", "2.5", 0.1, ["1", "2.5"]),
        ("1234567890.123456789", "12345678901234567.25", 0.1, ["0.30000000000000004", "0.123456789012345678901"]),
        ("0.30000000000000004", "1e0", 0.1, []),
    ]
    got = [v for (v,) in lake.rows("SELECT CAST(v AS VARCHAR) FROM m ORDER BY id")]
    assert got == ["1.500000000000000000", "1234567890.123456789000000000", "0.300000000000000040"]
    # every column text: the number's text, not its double's
    assert lake.rows("SELECT v FROM s ORDER BY id") == [("1.5",), ("1234567890.123456789",), ("0.30000000000000004",)]


def _refused_long_number(key: str, line: int) -> str:
    """The error of file `key` whose `line` holds `1234567890.123456789` for a table's double column `v`."""
    return (
        f"`{key}` line {line}: value `1234567890.123456789` of column `v` is not a valid DOUBLE: a double "
        "holds 1234567890.1234567; declare the column a decimal or text to keep every digit"
    )
