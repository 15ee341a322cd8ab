"""Each pattern of DuckDB's error text the engine decides on (`landfall.engines.duckdb.errors`), raised by DuckDB
itself: a DuckDB release that rewords one fails here, not in a user's run."""

from __future__ import annotations

import duckdb
import pytest

from landfall.engines.duckdb import errors


def error_of(sql: str) -> str:
    with pytest.raises(duckdb.Error) as caught:
        duckdb.connect().sql(sql).fetchall()
    return str(caught.value)


@pytest.fixture
def late_text_csv(tmp_path):
    path = tmp_path / "late.csv"  # past DuckDB's 20,480-row sample, `a` stops being a number
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(30_000)) + "oops,y\n")
    return str(path)


def test_a_csv_value_that_breaks_the_sampled_type(late_text_csv):
    text = error_of(f"SELECT * FROM read_csv('{late_text_csv}')")
    assert errors.type_detection_miss(text)
    assert errors.converting_column(text) == "a"
    assert errors.error_line(text) == 30_002
    assert errors.conversion(text)
    assert errors.not_converted(text) == ("oops", "BIGINT")
    assert errors.reason(text) == 'Error when converting column "a". Could not convert string "oops" to \'BIGINT\''


def test_a_json_value_that_breaks_the_sampled_type(tmp_path):
    path = tmp_path / "late.jsonl"
    path.write_text("".join(f'{{"a": {i}}}\n' for i in range(30_000)) + '{"a": "oops"}\n')
    text = error_of(f"SELECT * FROM read_json('{path}', format = 'newline_delimited')")
    assert errors.type_detection_miss(text)
    assert errors.error_line(text) == 30_001
    assert errors.reason(text).startswith("JSON transform error: ")
    assert str(path) not in errors.reason(text)


def test_a_json_timestamp_that_breaks_the_pinned_format(tmp_path):
    """Read with the types pinned and a timestamp format (`jsondates.pin_dates`), a later value with an offset
    breaks the type: DuckDB says "transform error" (not "Could not convert") and gives no reason."""
    path = tmp_path / "late.jsonl"
    path.write_text('{"t": "2024-01-03T10:00:00"}\n{"t": "2024-01-03T10:00:00+05:00"}\n')
    pinned = "columns = {'t': 'TIMESTAMP'}, timestampformat = '%Y-%m-%dT%H:%M:%S'"
    text = error_of(f"SELECT * FROM read_json('{path}', format = 'newline_delimited', {pinned})")
    assert errors.type_detection_miss(text)
    assert errors.error_line(text) == 2
    assert errors.reason(text) == "JSON transform error: a value does not fit its column's type or date format"


def test_a_declared_type_that_a_value_does_not_fit():
    """A type declared in `read.types` is a cast after reading: DuckDB names the value and the column, no line."""
    text = error_of("""SELECT CAST("my col" AS BIGINT) FROM (SELECT 'x' AS "my col")""")
    assert errors.cast_column(text) == "my col"
    assert errors.not_converted(text) == ("x", "INT64")
    assert errors.error_line(text) is None
    text = error_of("""SELECT CAST(n AS BIGINT) FROM (SELECT '{"a": 1}'::JSON AS n)""")  # from a JSON column
    assert errors.cast_column(text) == "n"
    assert errors.cast_json_value(text) == '{"a":1}'


def test_a_json_record_larger_than_the_buffer(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text('{"a": "' + "x" * (40 << 20) + '"}\n')
    text = error_of(f"SELECT * FROM read_json('{path}', format = 'newline_delimited')")
    assert errors.object_too_large(text)
    assert not errors.type_detection_miss(text)


def test_a_json_record_with_a_key_twice_in_one_object(tmp_path):
    path = tmp_path / "twice.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b": {"c": 1, "c": 2}}\n')
    text = error_of(f"SELECT * FROM read_json('{path}', format = 'newline_delimited')")
    assert errors.repeated_key(text) and errors.error_line(text) == 2


def test_json_that_is_not_records(tmp_path):
    path = tmp_path / "values.json"
    path.write_text("[1, 2]")
    assert errors.not_records(error_of(f"SELECT * FROM read_json('{path}', records = true)"))


def test_a_value_that_does_not_convert():
    text = error_of("SELECT CAST('abc' AS INTEGER)")
    assert errors.conversion(text) and not errors.type_detection_miss(text)
    assert errors.not_converted(text) == ("abc", "INT32")


def test_the_dialect_sniffer_gives_up(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text('id,name\n1,"a"\n2,"unterminated\n3,c\n')
    text = error_of(f"SELECT * FROM read_csv('{path}', delim = ',', quote = '\"')")
    assert errors.reason(text) == "could not detect the CSV dialect (delimiter, quote, columns)"


def test_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,name\n1,Zoë\n".encode("latin-1"))
    text = error_of(f"SELECT * FROM read_csv('{path}', delim = ',', header = true)")
    assert errors.reason(text).startswith("the file is not valid UTF-8 here; set `read.encoding`")
    assert errors.error_line(text) == 2


def test_a_record_with_the_wrong_number_of_fields(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b,c\n" + "1,2,3\n" * 30_000 + "4,5\n")  # past the sniffer's sample
    with pytest.raises(duckdb.Error) as exc:
        duckdb.sql(f"SELECT * FROM read_csv('{path}')").fetchall()
    assert errors.wrong_field_count(str(exc.value))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT '2,5' * 3",  # text times a number
        "SELECT 'x' > 10",  # text compared with a number
        "SELECT CASE WHEN true THEN 'a' ELSE 1 END",  # a choice between text and a number
    ],
)
def test_text_where_a_number_belongs(sql):
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT '2,5' AS price, 3 AS qty")
    with pytest.raises(duckdb.Error) as caught:
        con.execute(sql.replace("'2,5'", "price").replace("'x'", "price").replace("'a'", "price") + " FROM t")
    assert errors.wrong_operand_type(str(caught.value)), str(caught.value)


def test_a_number_where_text_belongs_blames_no_text_column():
    """`lpad(qty, 3, '0')` of a BIGINT column: DuckDB's `No function matches ... 'lpad(BIGINT, INTEGER_LITERAL,
    STRING_LITERAL)'` is no text column's fault (before, the step's error went on to say a text column of the
    step, any, should be cast to a number)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT '2,5' AS price, 3 AS qty")
    with pytest.raises(duckdb.Error) as caught:
        con.execute("SELECT lpad(qty, 3, '0'), upper(price) FROM t")
    assert not errors.wrong_operand_type(str(caught.value)), str(caught.value)


def test_a_csv_line_longer_than_the_reader_takes(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("a,b\n" + "x" * 2_100_000 + ",1\n")
    for sql in (f"SELECT * FROM read_csv('{path}')", f"SELECT * FROM sniff_csv('{path}')"):
        assert errors.line_too_long(error_of(sql)) == 2_000_000
    text = error_of(f"SELECT * FROM read_csv('{path}', max_line_size = 1000000, buffer_size = 2097152)")
    assert errors.line_too_long(text) == 1_000_000
    assert errors.line_too_long("Invalid Input Error: CSV Error on Line: 2") is None


def test_keys_that_differ_only_in_case_inside_an_object(tmp_path):
    path = tmp_path / "twins.jsonl"
    path.write_text('{"id": 1, "o": {"A": 1, "a": 2}}\n')
    text = error_of(f"SELECT * FROM read_json('{path}')")
    assert errors.reason(text).startswith("an object holds keys that differ only in case (`a`)"), text


def test_a_json_value_that_is_no_object_or_has_an_unknown_key_for_a_struct():
    """`casts.conformed` of a JSON column into a struct: a value that is no object fails with DuckDB's words for a
    value it could not convert, the whole type named; an object with a key the struct lacks, with landfall's."""
    from landfall.engines.duckdb.casts import conformed

    want = "struct<t: string, n: int64>"
    sql = "SELECT {} FROM (SELECT '{}'::JSON AS c)"
    text = error_of(sql.format(conformed("c", "extension<arrow.json>", want, "c"), "[1,2]"))
    assert errors.not_converted(text) == ("[1,2]", 'STRUCT("t" VARCHAR, "n" BIGINT)')
    assert errors.cast_column(text) == "c"
    text = error_of(sql.format(conformed("c", "extension<arrow.json>", want, "c"), '{"t":"x","z":1}'))
    assert errors.unknown_struct_key(text) == ("c", "z")
    text = error_of(sql.format(conformed("c", "extension<arrow.json>", want, "c"), '{"t":"x","n":"abc"}'))
    assert errors.not_converted(text) == ("abc", "BIGINT") and errors.cast_column(text) == "c"
