"""The engine conformance suite: dates, times of day and timestamps, read whole and strictly: a late value with
more than the sampled type holds (a time of day in a date column, an offset, digits past the microsecond) is kept
as written, never cut to fit."""

from __future__ import annotations

from typing import Any

import pytest

from landfall.testing.engine_suite.base import SAMPLED_ROWS, EngineFixtures, assert_ok, column_types, sampled_head
from landfall.testing.lake import Lake, wf


class DateTests(EngineFixtures):
    """Dates, times of day and timestamps: every ISO form, read strictly, late values kept whole."""

    def test_a_late_time_of_day_in_a_date_column_is_kept(self, make):
        """A date column's only late value that is not a date alone, in a file under the size read in pieces: no
        other column fails to cast on the way (DuckDB's own date cast takes `2024-01-02 10:30:00` as 2024-01-02),
        yet the time is kept."""
        lake = make(wf("t"))
        rows = 30_000  # past a reader's sample of the first rows
        lake.land(
            "t/a.csv", "id,d\n" + "".join(f"{i},2024-01-01\n" for i in range(rows)) + f"{rows},2024-01-02 10:30:00\n"
        )
        assert_ok(lake, lake.process())
        got = lake.rows(f"SELECT count(*), max(CAST(d AS VARCHAR)) FILTER (WHERE id = {rows}) FROM t")
        assert got == [(rows + 1, "2024-01-02 10:30:00")]

    def test_a_late_timestamp_with_an_offset_or_more_text_is_kept_whole(self, make):
        """DuckDB's own timestamp cast loads `2024-01-03 10:00:00+05:00` as 10:00 (the offset dropped) and
        `2024-01-03 11:00:00 x` as 11:00: past the sample, such a value makes its column text, every value as
        written."""
        lake = make(wf("t"))
        rows = 30_000  # past a reader's sample of the first rows
        late = ["2024-01-03 10:00:00+05:00", "2024-01-03 11:00:00 x"]
        for i, value in enumerate(late):
            body = "".join(f"{j},2024-01-02 10:00:{j % 60:02d}\n" for j in range(rows))
            lake.land(f"t/{i}.csv", f"id,t\n{body}{rows},{value}\n")
        assert_ok(lake, lake.process())  # one batch: the second file's sample holds the first's late value
        assert column_types(lake, "t")["t"] == "string"
        got = lake.rows(
            f"SELECT _source_file, count(*), max(t) FILTER (WHERE id = {rows}) FROM t GROUP BY 1 ORDER BY 1"
        )
        assert got == [("t/0.csv", rows + 1, late[0]), ("t/1.csv", rows + 1, late[1])]
        alone = make(wf("u"))  # a file alone: read in the sample's format, which the late value breaks
        alone.land("u/a.csv", f"id,t\n{body}{rows},{late[0]}\n")
        assert_ok(alone, alone.process())
        assert alone.rows(f"SELECT count(*), max(t) FILTER (WHERE id = {rows}) FROM u") == [(rows + 1, late[0])]

    def test_a_time_of_day_with_an_offset_or_more_digits_is_kept_whole(self, make):
        """DuckDB's own time cast loads `10:00:00+02` and `10:00:00Z` as 10:00 (the offset dropped) and
        `10:00:00.123456789` as `10:00:00.123456`; its sniffer keeps the first two as text but takes the third for a
        time. Such a value makes its column text, every value as written: in a CSV's sample or past it (before: the
        offset or the digits dropped without a word)."""
        lake = make(wf("t"), workers=1)
        rows = 30_000  # past a reader's sample of the first rows
        body = "".join(f"{j},{j % 24:02d}:{j % 60:02d}:{j % 60:02d}\n" for j in range(rows))
        late = ["10:00:00+02", "10:00:00Z", "10:00:00.123456789"]
        for i, value in enumerate(late):
            lake.land(f"t/late{i}.csv", f"id,t\n{body}{rows},{value}\n")
        lake.land("t/early.csv", "id,t\n1,10:00:00.123456789\n2,10:00:01\n")
        assert_ok(lake, lake.process())
        assert column_types(lake, "t")["t"] == "string"
        got = lake.rows(
            f"SELECT _source_file, t FROM t WHERE id = {rows} OR _source_file = 't/early.csv' ORDER BY 1, id"
        )
        assert got == [("t/early.csv", "10:00:00.123456789"), ("t/early.csv", "10:00:01")] + [
            (f"t/late{i}.csv", value) for i, value in enumerate(late)
        ]

    def test_a_time_of_day_in_json_with_an_offset_or_more_digits_is_kept_whole(self, make):
        """The same in JSON Lines, whose reader detects strings of times as times and casts later ones loosely
        (`10:00:00+02` as 10:00): a column or a field holding such a value is text, every value as written; times
        of several forms stay times (on Spark, which has no time type, times are text)."""
        lake = make(wf("j"), workers=1)
        rows = 30_000  # past a reader's sample of the first records
        body = "".join(f'{{"id":{i},"t":"10:00:{i % 60:02d}","m":{{"t":"11:00:00"}}}}\n' for i in range(rows))
        lake.land("j/late.jsonl", body + f'{{"id":{rows},"t":"10:00:00+02","m":{{"t":"11:00:00Z"}}}}\n')
        lake.land("j/early.jsonl", '{"id":1,"t":"10:00:00.123456789","m":{"t":"11:00:00"}}\n')
        assert_ok(lake, lake.process())
        texts = "CAST(t AS VARCHAR), CAST(m.t AS VARCHAR)"
        got = lake.rows(f"SELECT _source_file, {texts} FROM j WHERE id IN (1, {rows}) ORDER BY 1, id")
        assert got == [
            ("j/early.jsonl", "10:00:00.123456789", "11:00:00"),
            ("j/late.jsonl", "10:00:01", "11:00:00"),
            ("j/late.jsonl", "10:00:00+02", "11:00:00Z"),
        ]

    def test_a_timestamp_with_more_than_microseconds_is_kept_whole(self, make):
        """A timestamp column holds microseconds: a value with more digits of a fraction (`.123456789`, as Go,
        Java and pandas write nanoseconds) would be cut to `.123456`. Such a value makes its column text, every
        value as written: in a CSV's sample (the cast cut it before) or past it, and in JSON Lines."""
        rows = 30_000  # past a reader's sample of the first rows
        nanos = "2024-01-02 10:00:00.123456789"
        early = make(wf("e"))
        early.land("e/a.csv", f"id,t\n1,{nanos}\n2,2024-01-02 10:00:01.5\n3,2024-01-02 10:00:02\n")
        assert_ok(early, early.process())
        assert column_types(early, "e")["t"] == "string"
        assert early.rows("SELECT list(t ORDER BY id) FROM e") == [
            ([nanos, "2024-01-02 10:00:01.5", "2024-01-02 10:00:02"],)
        ]
        late = make(wf("l"))
        body = "".join(f"{j},2024-01-02 10:00:{j % 60:02d}.{j % 1000:06d}\n" for j in range(rows))
        late.land("l/a.csv", f"id,t\n{body}{rows},{nanos}\n")
        assert_ok(late, late.process())
        assert late.rows(f"SELECT count(*), max(t) FILTER (WHERE id = {rows}) FROM l") == [(rows + 1, nanos)]
        js = make(wf("j", read={"format": "jsonl"}))
        js.land(
            "j/a.jsonl", f'{{"id": 1, "t": "{nanos.replace(" ", "T")}"}}\n{{"id": 2, "t": "2024-01-02T10:00:01"}}\n'
        )
        assert_ok(js, js.process())
        assert js.rows("SELECT max(t) FILTER (WHERE id = 1) FROM j") == [(nanos.replace(" ", "T"),)]

    def test_timestamps_of_each_form_stay_timestamps_and_are_read_strictly(self, make):
        """Timestamps written in one form (`T` or a space, with or without seconds or a fraction) load as
        timestamps with the values DuckDB's own cast gives them, and are read in that form: a late value with an
        offset still makes the column text. Values with and without fractions load each in its form."""
        rows = 30_000  # past a reader's sample of the first rows
        forms = ["2024-01-02T10:00:{s:02d}", "2024-01-02 10:00:{s:02d}.5", "2024-01-02 10:{s:02d}"]
        highest = ["2024-01-02 10:00:59", "2024-01-02 10:00:59.5", "2024-01-02 10:59:00"]
        for i, form in enumerate(forms):
            body = "id,t\n" + "".join(f"{j},{form.format(s=j % 60)}\n" for j in range(rows))
            clean, late = make(wf(f"c{i}")), make(wf(f"l{i}"))
            clean.land(f"c{i}/a.csv", body)
            late.land(f"l{i}/a.csv", body + f"{rows},2024-01-03 10:00:00+05:00\n")
            assert_ok(clean, clean.process())
            assert_ok(late, late.process())
            assert column_types(clean, f"c{i}")["t"].startswith("timestamp"), form
            assert clean.rows(f"SELECT CAST(max(t) AS VARCHAR) FROM c{i}") == [(highest[i],)]
            assert column_types(late, f"l{i}")["t"] == "string", form
            assert late.rows(f"SELECT max(t) FILTER (WHERE id = {rows}) FROM l{i}") == [("2024-01-03 10:00:00+05:00",)]
        mixed = make(wf("m"))
        mixed.land("m/a.csv", "id,t\n1,2024-01-02 10:00:00\n2,2024-01-02 10:00:01.25\n")
        assert_ok(mixed, mixed.process())
        assert mixed.rows("SELECT CAST(max(t) AS VARCHAR) FROM m") == [("2024-01-02 10:00:01.25",)]

    def test_timestamps_with_and_without_a_fraction_stay_timestamps(self, make):
        """Python's `isoformat()` leaves the fraction out when the microseconds are zero, so a column of its
        timestamps comes in two forms. A late value of the other form keeps the column a timestamp, either way
        round; with both forms in the sample, a late value of a third form does too, and a late value with an
        offset still makes the column text, kept as written."""
        rows = 30_000  # past a reader's sample of the first rows

        def stamp(j: int, fraction: bool) -> str:
            return f"2024-01-02T{j // 3600:02d}:{j // 60 % 60:02d}:{j % 60:02d}" + (
                f".{j % 999 + 1:03d}" if fraction else ""
            )

        cases = {  # name: (fraction of the j-th value, the late value, whether the column stays a timestamp)
            "f": (lambda j: True, "2024-01-03T10:00:00", True),
            "w": (lambda j: False, "2024-01-03T10:00:00.25", True),
            "m": (lambda j: j % 2 == 0, "2024-01-03 10:00", True),
            "o": (lambda j: j % 2 == 0, "2024-01-03T10:00:00+05:00", False),
        }
        for name, (fraction, late, typed) in cases.items():
            lake = make(wf(name))
            body = "".join(f"{j},{stamp(j, fraction(j))}\n" for j in range(rows))
            lake.land(f"{name}/a.csv", f"id,t\n{body}{rows},{late}\n")
            assert_ok(lake, lake.process())
            kind = column_types(lake, name)["t"]
            assert kind.startswith("timestamp") if typed else kind == "string", (name, kind)
            got = lake.rows(
                f"SELECT count(*), CAST(min(t) AS VARCHAR), CAST(max(t) FILTER (WHERE id = {rows}) AS VARCHAR), "
                f"CAST(max(t) FILTER (WHERE id = 1) AS VARCHAR) FROM {name}"
            )
            first = "2024-01-02 00:00:00" + (".001" if fraction(0) else "")
            second = "2024-01-02 00:00:01" + (".002" if fraction(1) else "")
            if typed:
                assert got == [
                    (rows + 1, first, late.replace("T", " ") + (":00" if late.count(":") == 1 else ""), second)
                ]
            else:
                assert got == [(rows + 1, stamp(0, True), late, stamp(1, False))], name

    def test_json_timestamps_in_every_iso_form_are_timestamps(self, make):
        """JSON has no timestamp type: timestamps are strings, as Python's `isoformat()` (a fraction, left out when
        zero) and pandas' `to_json` (milliseconds) write them. A string column whose every sampled value is a
        timestamp of one of the ISO forms loads as a timestamp; a late value of another form keeps it a
        timestamp; a late value with an offset, or a word, makes it text, every value as written; text that only
        starts like a date stays text."""
        rows = 30_000  # past a reader's sample of the first records

        def stamp(j: int) -> str:
            base = f"2024-01-02T{j // 3600:02d}:{j // 60 % 60:02d}:{j % 60:02d}"
            return base if j % 1000 == 0 else f"{base}.{j % 999 + 1:06d}"

        cases = {  # name: (the late value, whether the column stays a timestamp)
            "f": ("2024-01-03 10:00:00Z", True),
            "o": ("2024-01-03T10:00:00+05:00", False),
            "w": ("soon", False),
        }
        for name, (late, typed) in cases.items():
            lake = make(wf(name, read={"format": "jsonl"}))
            body = "".join(f'{{"id": {j}, "t": "{stamp(j)}", "s": "2024-01-02 is day {j}"}}\n' for j in range(rows))
            lake.land(f"{name}/a.jsonl", f'{body}{{"id": {rows}, "t": "{late}", "s": "x"}}\n')
            assert_ok(lake, lake.process())
            types = column_types(lake, name)
            assert types["s"] == "string", types
            assert types["t"].startswith("timestamp") if typed else types["t"] == "string", (name, types)
            got = lake.rows(
                f"SELECT count(*), CAST(max(t) FILTER (WHERE id = 0) AS VARCHAR), "
                f"CAST(max(t) FILTER (WHERE id = 1) AS VARCHAR), CAST(max(t) FILTER (WHERE id = {rows}) AS VARCHAR) "
                f"FROM {name}"
            )
            if typed:
                assert got == [(rows + 1, "2024-01-02 00:00:00", "2024-01-02 00:00:01.000002", "2024-01-03 10:00:00")]
            else:
                assert got == [(rows + 1, stamp(0), stamp(1), late)], name

    def test_a_late_json_date_or_timestamp_with_more_is_never_cut(self, make):
        """A JSON date or timestamp past the type sample with more than its column's form (a time of day after a
        date, an offset after a timestamp, at the top level or inside an object) is never cut to fit: the column
        keeps the value whole (as text, or as the instant it names), and the earlier values stay as they were."""
        rows = 30_000  # past a reader's sample of the first records

        def record(j: int) -> str:
            t = f"2024-01-03T{j // 3600 % 24:02d}:{j // 60 % 60:02d}:{j % 60:02d}"
            return f'{{"id": {j}, "t": "{t}", "d": "2024-01-03", "n": {{"u": "{t}"}}}}\n'

        late = '{"id": 30000, "t": "2024-01-03T10:00:00+05:00", "d": "2024-01-04 10:30", "n": {"u": "x 10:00"}}\n'
        lake = make(wf("t", read={"format": "jsonl"}))
        lake.land("t/a.jsonl", "".join(record(j) for j in range(rows)) + late)
        assert_ok(lake, lake.process())
        got = lake.rows(
            "SELECT CAST(t AS VARCHAR), CAST(d AS VARCHAR), CAST(n.u AS VARCHAR) FROM t "
            "WHERE id IN (1, 30000) ORDER BY id"
        )
        (t1, d1, u1), (t, d, u) = got
        assert t1 in ("2024-01-03 00:00:01", "2024-01-03T00:00:01") and u1 == t1, got  # a timestamp, or as written
        assert d1 in ("2024-01-03", "2024-01-03 00:00:00"), got  # a date, or its midnight in a timestamp column
        assert t in ("2024-01-03T10:00:00+05:00", "2024-01-03 05:00:00+00"), got
        assert d in ("2024-01-04 10:30", "2024-01-04 10:30:00"), got
        assert u == "x 10:00", got

    def test_a_late_time_of_day_is_kept_in_a_batch_read_file_by_file(self, make):
        """The same, in a batch whose other file breaks the types sampled on the first (`2.5` in an integer
        column): the batch is then read file by file, each with what was detected on it."""
        lake = make(wf("t"), workers=1)
        rows = SAMPLED_ROWS
        head = sampled_head()
        lake.land("t/a.csv", head + f"{rows},1,2024-01-02 10:30:00\n")
        lake.land("t/b.csv", "id,n,d\n40000,2.5,2024-01-03\n")
        assert_ok(lake, lake.process())
        got = lake.rows(f"SELECT id, CAST(n AS DOUBLE), CAST(d AS VARCHAR) FROM t WHERE id >= {rows} ORDER BY id")
        assert got == [(rows, 1.0, "2024-01-02 10:30:00"), (40000, 2.5, "2024-01-03 00:00:00")]

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_times_of_day_load_as_times(self, make, tmp_path, fmt):
        """A column of times of day (a CSV's, a JSON file's, a Parquet file's of milliseconds or microseconds) is a
        time column where the table holds one (Parquet) and its text where it does none (Delta); a time inside a
        JSON object or list is text as written, as DuckDB's reader leaves it. Before, Spark made every time text,
        so one Parquet table took other types from each engine."""
        import datetime as dt

        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table(
            {
                "id": pa.array([5], pa.int64()),
                "t": pa.array([dt.time(8, 15, 0, 250_000)], pa.time32("ms")),
                "u": pa.array([dt.time(9, 0, 0, 1)], pa.time64("us")),
            }
        )
        pq.write_table(table, tmp_path / "c.parquet")
        lake = make(wf("t", write={"table": "t", "format": fmt}), workers=1)
        lake.land("t/a.csv", "id,t\n1,10:30:00\n2,23:59:59.5\n3,\n")
        lake.land("t/b.jsonl", '{"id": 4, "t": "01:02", "s": {"a": "09:00"}, "l": ["01:02:03"]}\n')
        lake.land("t/c.parquet", (tmp_path / "c.parquet").read_bytes())
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT id, CAST(t AS VARCHAR), CAST(s.a AS VARCHAR), CAST(u AS VARCHAR) FROM t ORDER BY id")
        assert got == [
            (1, "10:30:00", None, None),
            (2, "23:59:59.5", None, None),
            (3, None, None, None),
            (4, "01:02:00", "09:00", None),
            (5, "08:15:00.25", None, "09:00:00.000001"),
        ]
        assert lake.rows("SELECT l FROM t WHERE id = 4") == [(["01:02:03"],)]
        types = dict(lake.pipeline.table("t").schema)
        time = "time64[us]" if fmt == "parquet" else "string"
        assert (types["t"], types["u"], types["s"], types["l"]) == (
            time,
            time,
            "struct<a: string>",
            "list<item: string>",
        )

    def test_a_late_value_that_is_no_time_of_day_makes_its_column_text(self, make):
        """Past the sample, a value DuckDB's time cast would take loosely (`24:00:00`, a date before the time, an
        offset, a seventh digit of a second) keeps its column text, every value as written; `1:2` and ` 10:31` are
        times (01:02:00, 10:31:00)."""
        late = {"a": "24:00:00", "b": "2024-01-01 10:30:00", "c": "10:30:00+02", "d": "10:30:00.1234567"}
        late |= {"e": "1:2", "f": " 10:31"}
        lake = make(*[wf(k) for k in late], workers=1)
        head = "id,t\n" + "".join(f"{i},10:30:00\n" for i in range(SAMPLED_ROWS))
        for k, value in late.items():
            lake.land(f"{k}/a.csv", head + f"{SAMPLED_ROWS},{value}\n")
        assert_ok(lake, lake.process())
        got = {k: lake.rows(f"SELECT CAST(t AS VARCHAR) FROM {k} WHERE id = {SAMPLED_ROWS}")[0][0] for k in late}
        kinds = {k: column_types(lake, k)["t"] for k in late}
        assert got == {**{k: late[k] for k in "abcd"}, "e": "01:02:00", "f": "10:31:00"}, got
        assert kinds == {**dict.fromkeys("abcd", "string"), **dict.fromkeys("ef", "time64[us]")}, kinds

    def test_a_time_made_in_sql_is_a_time(self, make):
        """`CAST(... AS TIME)` and a `TIME` literal in a `compute` step make times on both engines (before, on Spark:
        a timestamp of today at that time, as sqlglot writes DuckDB's TIME for Spark)."""
        steps = [{"compute": {"t": "CAST(s AS TIME)", "noon": "TIME '12:00:00'"}}]
        lake = make(wf("t", read={"all_strings": True}, transform=steps))
        lake.land("t/a.csv", "id,s\n1,10:30:00\n2,23:59:59.5\n")
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT CAST(t AS VARCHAR), CAST(noon AS VARCHAR) FROM t ORDER BY id")
        assert got == [("10:30:00", "12:00:00"), ("23:59:59.5", "12:00:00")]
        types = dict(lake.pipeline.table("t").schema)
        assert (types["t"], types["noon"]) == ("time64[us]", "time64[us]")

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_a_difference_of_timestamps_is_an_interval_as_duckdb_writes_it(self, make, fmt):
        """`b - a` of timestamps is an interval, stored as its text as DuckDB writes one, negative and
        sub-millisecond ones too; `b - a` of dates a number of days. Before: on DuckDB a Parquet table refused a
        negative interval (`Parquet files do not support negative intervals`: the file dead) and cut one to
        milliseconds; on Spark every interval was a bare count of microseconds (`124200000000`), as text."""
        steps = [
            {
                "compute": {
                    "age": "b - a",
                    "days": "CAST(b AS DATE) - CAST(a AS DATE)",
                    "span": "INTERVAL 14 MONTH",
                    "back": "-INTERVAL 1 MONTH",
                }
            }
        ]
        lake = make(wf("t", transform=steps, write={"table": "t", "format": fmt}))
        lake.land(
            "t/a.csv",
            "id,a,b\n1,2024-01-01 00:00:00,2024-01-02 10:30:00\n2,2024-01-02 10:30:00,2024-01-01 00:00:00\n"
            "3,2024-01-01 11:30:00.25,2024-01-01 10:00:00\n4,2024-01-01 00:00:00,2024-03-01 00:00:00\n"
            "5,2024-01-01 00:00:00,2024-01-01 00:00:00.000001\n6,2024-01-01 00:00:00,2024-01-01 00:00:00\n"
            "7,,2024-01-01\n",
        )
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT age, days FROM t ORDER BY id")
        assert got == [
            ("1 day 10:30:00", 1),
            ("-1 day -10:30:00", -1),
            ("-01:30:00.25", 0),
            ("60 days", 60),
            ("00:00:00.000001", 0),
            ("00:00:00", 0),
            (None, None),
        ]
        assert lake.rows("SELECT DISTINCT span, back FROM t") == [("1 year 2 months", "-1 month")]
        types = dict(lake.pipeline.table("t").schema)
        assert (types["age"], types["days"], types["span"]) == ("string", "int64", "string")

    def test_days_of_the_week_and_epochs_count_as_duckdb_counts_them(self, make):
        """DuckDB numbers a week's days from Sunday = 0 (`dayofweek`, `dow`, `weekday`) and `isodow` from Monday = 1
        to Sunday = 7; `epoch` is seconds with their fraction; `monthname` and `dayname` are whole names. Before, on
        Spark: Sunday = 1 (DAYOFWEEK), Monday = 0 (WEEKDAY), `isodow` Thursday = 6, `epoch` whole seconds, `Feb`
        and `Thu`: other values, without a word."""
        parts = {
            "a": "dayofweek(d)",
            "b": "extract(dow FROM d)",
            "c": "date_part('dow', d)",
            "w": "weekday(d)",
            "i": "isodow(d)",
            "j": "date_part('isodow', d)",
            "e": "epoch(ts)",
            "m": "monthname(d)",
            "n": "dayname(d)",
        }
        lake = _computed(make, parts, "id,d,ts\n1,2024-02-25,2024-02-25 00:00:01.5\n2,2024-02-29,2024-02-29 23:59:59\n")
        got = lake.rows(f"SELECT {', '.join(parts)} FROM t ORDER BY id")
        assert got == [
            (0, 0, 0, 0, 7, 7, 1708819201.5, "February", "Sunday"),
            (4, 4, 4, 4, 4, 4, 1709251199.0, "February", "Thursday"),
        ], got

    def test_date_trunc_keeps_the_kind_of_timestamp(self, make):
        """`date_trunc` of a date or a zone-less timestamp is a zone-less timestamp, of a timestamp with a zone one
        with a zone, on both engines (before, on Spark: always with a zone, so a table took another type from each
        engine, and with `engine: auto` a file was dead, `TIMESTAMPTZ in this file but TIMESTAMP in the table`)."""
        parts = {"md": "date_trunc('month', d)", "dn": "date_trunc('day', n)", "hz": "date_trunc('hour', z)"}
        lake = _computed(make, parts, "d,n,z\n2024-02-29,2024-02-29 10:30:00,2024-02-29T10:30:00Z\n,,\n")
        rows = lake.rows("SELECT CAST(md AS VARCHAR), CAST(dn AS VARCHAR), CAST(hz AS VARCHAR) FROM t ORDER BY md")
        assert rows == [("2024-02-01 00:00:00", "2024-02-29 00:00:00", "2024-02-29 10:00:00+00"), (None, None, None)]
        types = dict(lake.pipeline.table("t").schema)
        assert [types[c] for c in parts] == ["timestamp[us]", "timestamp[us]", "timestamp[us, tz=UTC]"], types

    def test_an_interval_added_to_a_date_makes_a_timestamp_on_both_engines(self, make):
        """`d + INTERVAL 1 DAY` (or `-`, or `date_add(d, INTERVAL 3 DAY)`) is a zone-less timestamp on DuckDB; on
        Spark it was a DATE (and `date_add` with an interval failed every file): a table took another type from each
        engine. An instant stays one. And `printf` is NULL when an argument is (Spark's wrote `null`)."""
        parts = {
            "a": "d + INTERVAL 1 DAY",
            "b": "d - INTERVAL 1 MONTH",
            "c": "date_add(d, INTERVAL 3 DAY)",
            "e": "INTERVAL 2 HOUR + z",
            "p": "printf('%s/%d', CAST(d AS VARCHAR), n)",
        }
        lake = _computed(make, parts, "d,n,z\n2024-02-29,7,2024-02-29T10:30:00Z\n,,\n")
        got = lake.rows("SELECT " + ", ".join(f"CAST({c} AS VARCHAR)" for c in parts) + " FROM t ORDER BY a")
        assert got == [
            (
                "2024-03-01 00:00:00",
                "2024-01-29 00:00:00",
                "2024-03-03 00:00:00",
                "2024-02-29 12:30:00+00",
                "2024-02-29/7",
            ),
            (None, None, None, None, None),
        ]
        types = dict(lake.pipeline.table("t").schema)
        assert [types[c] for c in "abce"] == ["timestamp[us]"] * 3 + ["timestamp[us, tz=UTC]"], types

    def test_date_diff_counts_boundaries_and_strftime_writes_duckdbs_digits_on_both_engines(self, make):
        """`date_diff(unit, a, b)` counts the unit's boundaries between `a` and `b`, as DuckDB's does (23:59:59 to
        the next day's 00:00:01 is a day and an hour); Spark's counted whole units elapsed (none). `strftime`'s `%j`
        is the day of the year in three digits (Spark's pattern wrote two)."""
        parts = {
            "h": "date_diff('hour', a, b)",
            "d": "date_diff('day', a, b)",
            "m": "date_diff('month', a, b)",
            "y": "date_diff('year', a, b)",
            "j": "strftime(a, '%j %d/%m/%y')",
        }
        csv = "a,b\n2025-12-31 23:59:59,2026-01-01 00:00:01\n2026-02-03 10:00:00,2026-02-03 10:59:59\n"
        lake = _computed(make, parts, csv)
        got = lake.rows("SELECT h, d, m, y, j FROM t ORDER BY a")
        assert got == [(1, 1, 1, 1, "365 31/12/25"), (0, 0, 0, 0, "034 03/02/26")]

    def test_timestamps_from_epochs_keep_duckdbs_kinds_and_fractions(self, make):
        """`to_timestamp(seconds)` is a timestamp with a zone and keeps the seconds' fraction, `epoch_ms(ms)` and
        `make_timestamp(us)` are zone-less (before, on Spark: `to_timestamp` was zone-less whole seconds, the others
        had a zone: other types, which a table written by both engines refuses)."""
        parts = {"s": "to_timestamp(x)", "ms": "epoch_ms(n)", "us": "make_timestamp(n * 1000)"}
        lake = _computed(make, parts, "x,n\n1700000000.25,1700000000123\n")
        got = lake.rows("SELECT CAST(s AS VARCHAR), CAST(ms AS VARCHAR), CAST(us AS VARCHAR) FROM t")
        assert got == [("2023-11-14 22:13:20.25+00", "2023-11-14 22:13:20.123", "2023-11-14 22:13:20.123")], got
        types = dict(lake.pipeline.table("t").schema)
        assert [types[c] for c in parts] == ["timestamp[us, tz=UTC]", "timestamp[us]", "timestamp[us]"], types


def _computed(make: Any, parts: dict[str, str], csv: str) -> Lake:
    """A lake whose workflow `t` computes `parts` over the CSV `csv`, loaded."""
    lake = make(wf("t", transform=[{"compute": parts}]))
    lake.land("t/a.csv", csv)
    assert_ok(lake, lake.process())
    return lake
