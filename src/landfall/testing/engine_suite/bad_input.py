"""The engine conformance suite: rows that cannot be read go to the quarantine with their lines, and bad input
fails alone, naming its file, line and reason."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from landfall.testing.engine_suite.base import (
    SAMPLED_ROWS,
    EngineFixtures,
    assert_ok,
    error_of,
    only_run,
    sampled_head,
)
from landfall.testing.lake import wf


class BadInputTests(EngineFixtures):
    """Rows set aside in the quarantine, each with its line and reason; bad input fails alone, naming its file,
    line and reason."""

    def test_unparseable_rows_go_to_quarantine_with_line_and_reason(self, make):
        lake = make(wf("t", read={"bad_rows": "quarantine"}), wf("j", read={"bad_rows": "quarantine"}))
        lake.land("t/a.csv", "id,name\n1,a\n2,b,extra\n3,c\n")
        lake.land("j/a.jsonl", '{"id": 1}\n{"id": \n[1]\n{"id": 4}\n')
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (3,)]
        assert lake.rows("SELECT _line, _rule, _raw FROM quarantine.t") == [(3, "parse", "2,b,extra")]
        assert lake.rows("SELECT id FROM j ORDER BY id") == [(1,), (4,)]
        rows = lake.rows("SELECT _line, _rule, _raw FROM quarantine.j ORDER BY _line")
        assert rows == [(2, "parse", '{"id": '), (3, "parse", "[1]")]
        assert only_run(lake, "t/a.csv").rows_quarantined == 1

    def test_a_long_line_set_aside_keeps_all_of_its_text(self, make):
        """`_raw` is the whole line, however long (before, on DuckDB: its first 10,000 characters, without a word:
        DuckDB's rejects keep no more of a CSV line, and landfall cut a JSON Lines line there too); of a CSV record
        over several lines (a quoted value spanning them), all of them (before, on DuckDB: its first 10,000
        characters)."""
        aside = {"bad_rows": "quarantine"}
        lake = make(wf("j", read=aside), wf("t", read=aside), wf("m", read=aside))
        long_json = '{"id": 2, "note": "' + "x" * 30_000 + '", "broken": }'
        long_csv = "2," + "é" * 30_000 + ",extra"
        lines_csv = '2,"' + "é" * 15_000 + '\n""' + "x" * 15_000 + '\r\nend",extra'
        lake.land("j/a.jsonl", '{"id": 1}\n' + long_json + '\n{"id": 3}\n')
        lake.land("t/a.csv", "id,name\n1,a\n" + long_csv + "\n3,c\n")
        lake.land("m/a.csv", 'id,name\n1,"a\nb"\n' + lines_csv + "\n3,c\n")
        assert_ok(lake, lake.process())
        for table, long, at in (("j", long_json, 2), ("t", long_csv, 3), ("m", lines_csv, 4)):
            assert lake.rows(f"SELECT id FROM {table} ORDER BY id") == [(1,), (3,)]
            ((line, raw),) = lake.rows(f"SELECT _line, _raw FROM quarantine.{table}")
            assert (line, len(raw), raw == long) == (at, len(long), True), table

    def test_a_bad_line_beside_a_long_number_is_set_aside_or_named(self, make):
        """A JSON Lines file holding a number of more digits than a double holds (read from a copy where its field
        is text) and a line that is no JSON: with `bad_rows: quarantine` the line is set aside with its line number
        (before, on DuckDB: it vanished, the run counting 2 rows in and none set aside); without, the file fails
        naming it."""
        lake = make(wf("q", read={"bad_rows": "quarantine"}), wf("f", retry={"max_attempts": 1}))
        body = '{"id": 1, "v": 1234567890.123456789}\n{"id": 2, "v":\n{"id": 3, "v": 2.5}\n'
        lake.land("q/a.jsonl", body)
        lake.land("f/a.jsonl", body)
        lake.process()
        assert lake.rows("SELECT id, v FROM q ORDER BY id") == [(1, "1234567890.123456789"), (3, "2.5")]
        assert lake.rows("SELECT _line, _raw FROM quarantine.q") == [(2, '{"id": 2, "v":')]
        run = only_run(lake, "q/a.jsonl")
        assert (run.status, run.rows_in, run.rows_out, run.rows_quarantined) == ("succeeded", 3, 2, 1)
        assert (error_of(lake, "f/a.jsonl") or "").startswith("`f/a.jsonl` line 2: invalid JSON"), error_of(
            lake, "f/a.jsonl"
        )

    def test_half_a_surrogate_pair_is_a_bad_row(self, make):
        """A line of JSON Lines holding half of a UTF-16 surrogate pair (`"\\ud800"`) is set aside with its line and
        reason (before: on DuckDB, Python's check let it through and DuckDB's reader refused it, failing the whole
        file naming a copy of it in a temporary folder; on Spark, it loaded as `?`)."""
        lake = make(wf("j", read={"bad_rows": "quarantine"}))
        lines = ['{"id": 1}', '{"id": 2, "s": "a\\ud800"}', '{"id": 3, "s": "\\udc00\\ud83d"}']
        lines += ['{"id": 4, "s": "\\ud83d\\ude00 \\\\ud800"}']  # a pair; a backslash and `ud800`
        lake.land("j/a.jsonl", "\n".join(lines) + "\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, s FROM j ORDER BY id") == [(1, None), (4, "\U0001f600 \\ud800")]
        rows = lake.rows("SELECT _line, _rule, _reason FROM quarantine.j ORDER BY _line")
        assert [r[:2] for r in rows] == [(2, "parse"), (3, "parse")], rows
        assert "`\\ud800` (column 18) is half of a UTF-16 surrogate pair" in rows[0][2], rows
        assert "`\\udc00` (column 17) is half of a UTF-16 surrogate pair" in rows[1][2], rows

    def test_a_key_twice_in_one_object_keeps_the_last_value(self, make):
        """Of a key twice in one object of JSON Lines, the last value loads, as in a JSON document (before, on
        DuckDB: its reader refused the record, `has duplicate key`, and the whole file failed)."""
        lake = make(wf("f"), wf("q", read={"bad_rows": "quarantine"}))
        lines = ['{"id": 1, "x": {"a": 0}, "v": 1.5}', '{"id": 2, "x": {"a": 1, "a": 2}, "v": 0.30000000000000004}']
        lines += ['{"id": 4, "x": {"a": 5}, "id": 3, "v": -0.0}', "{broken"]
        lake.land("f/a.jsonl", "\n".join(lines[:3]) + "\n")
        lake.land("q/a.jsonl", "\n".join(lines) + "\n")
        assert_ok(lake, lake.process())
        for t in ("f", "q"):
            assert lake.rows(f"SELECT id, x.a, v FROM {t} ORDER BY id") == [
                (1, 0, 1.5),
                (2, 2, 0.30000000000000004),
                (3, 5, -0.0),
            ]
        assert lake.rows("SELECT _line, _raw FROM quarantine.q") == [(4, "{broken")]

    def test_a_record_with_the_empty_key_loads_it_as_a_column(self, make):
        """A record holding the empty key (`{"": 4}`, valid JSON) loads it as the column `empty_key`. Before, on
        DuckDB, whose reader takes such an object for no record, one such line in a JSON Lines file turned every
        record into a `value` row of JSON text, and one past the reader's sample failed the file (`has unknown key
        ""`); a document of them loaded as `value` rows too. On Spark, the file failed (`json_read expected
        records`), and Spark's own reader drops the key."""
        lake = make(wf("j"), wf("l"), wf("d", read={"format": "json"}), wf("c", retry={"max_attempts": 1}))
        lake.land("j/a.jsonl", '{"id": 1, "v": 1.5}\n{"id": 2, "": "e", "v": 2.5}\n')
        late = "".join(f'{{"id": {i}, "v": 0.5}}\n' for i in range(1, 25_000)) + '{"id": 25000, "": "late"}\n'
        lake.land("l/a.jsonl", late)
        lake.land("d/a.json", '[{"id": 1, "": "e"}, {"id": 2, "v": 12345678901234567890}]')
        lake.land("c/a.jsonl", '{"id": 1, "": "e", "empty_key": "x"}\n')
        lake.process()
        assert lake.rows("SELECT id, empty_key, v FROM j ORDER BY id") == [(1, None, 1.5), (2, "e", 2.5)]
        assert lake.rows("SELECT count(*), count(empty_key), max(empty_key) FROM l") == [(25_000, 1, "late")]
        got = lake.rows("SELECT id, empty_key, CAST(v AS VARCHAR) FROM d ORDER BY id")
        assert got == [(1, "e", None), (2, None, "12345678901234567890")], got
        assert (error_of(lake, "c/a.jsonl") or "").startswith(
            "`c/a.jsonl` line 1: the record holds both the empty key and `empty_key`"
        ), error_of(lake, "c/a.jsonl")

    def test_records_holding_no_field_are_rows_of_nulls(self, make):
        """Records that hold no field (`{}`) are rows NULL in every column, as a record lacking a column is NULL in
        it. Before, on DuckDB, whose reader takes such objects for no records, a file of them loaded as `value` rows
        holding the text `{}`, and the table gained a `value` column; on Spark, the file failed (`json_read expected
        records`), and under `read: {records: true}` it did on both. A new table gets no columns from them: the file
        fails, naming it."""
        lake = make(
            wf("j"),
            wf("d", read={"format": "json"}),
            wf("r", read={"records": True}),
            wf("n", retry={"max_attempts": 1}),
        )
        lake.land("j/a.jsonl", '{"id": 1, "name": "x"}\n')
        lake.land("d/a.json", '[{"id": 1}]')
        lake.land("r/a.json", '[{"id": 1}]')
        assert_ok(lake, lake.process())
        lake.land("j/b.jsonl", "{}\n{}\n")
        lake.land("d/b.json", "[{}, {}, {}]")
        lake.land("r/b.json", "[{}, {}]")
        lake.land("n/a.jsonl", "{}\n{}\n")
        lake.process()
        assert lake.rows("SELECT id, name, _source_file FROM j ORDER BY _source_file, id") == [
            (1, "x", "j/a.jsonl"),
            (None, None, "j/b.jsonl"),
            (None, None, "j/b.jsonl"),
        ]
        assert lake.rows("SELECT count(*), count(id) FROM d") == [(4, 1)]
        assert lake.rows("SELECT count(*), count(id) FROM r") == [(3, 1)]
        for table, columns in {"j": ["id", "name"], "d": ["id"], "r": ["id"]}.items():
            described = [r[0] for r in lake.rows(f"SELECT column_name FROM (DESCRIBE {table})")]
            assert described == [*columns, "_source_file", "_ingested_at", "_run_id"], described
        assert (error_of(lake, "n/a.jsonl") or "").startswith(
            "`n/a.jsonl` line 1: every record is `{}`, holding no field"
        ), error_of(lake, "n/a.jsonl")

    def test_csv_files_put_together_load_without_their_repeated_header_lines(self, make):
        """A CSV file made of files put together (`cat jan.csv feb.csv`) holds a header line each: read as rows,
        they made every column text (`id` is no number) and loaded the header as a row. Such a line is passed
        over, its line number kept for the rest, and the run says so; a file of one column, whose value may be its
        name, is read as written."""
        lake = make(wf("t"), wf("q", read={"bad_rows": "quarantine"}), wf("one"))
        part = "id,name,amount\n1,a,2.5\n2,b,3.5\n"
        lake.land("t/all.csv", part + part.replace("1,a", "3,c").replace("2,b", "4,bad"))
        lake.land("q/all.csv", part + part.replace("1,a", "3,c").replace("2,b,3.5", "4,d,5.5,9"))
        lake.land("one/words.csv", "word\nhello\nword\n")
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, name, amount FROM t ORDER BY id")
        assert rows == [(1, "a", 2.5), (2, "b", 3.5), (3, "c", 2.5), (4, "bad", 3.5)], rows
        assert only_run(lake, "t/all.csv").note == "1 line repeating the header passed over (line 4)"
        assert lake.rows("SELECT id FROM q ORDER BY id") == [(1,), (2,), (3,)]
        assert lake.rows("SELECT _line FROM quarantine.q") == [(6,)]  # the line of the file, as landed
        assert lake.rows("SELECT word FROM one ORDER BY word") == [("hello",), ("word",)]

    def test_a_header_line_past_the_part_looked_through_first_is_passed_over(self, make, monkeypatch):
        """A header line again past the part of the file looked through before the read
        (`repeated_header.HEADER_LOOK`, here 1,000 bytes) and past the type sample is found by its values, its
        columns' own names, that do not fit them: passed over too, the columns keep their types."""
        import landfall.engines.duckdb.repeated_header as repeated

        monkeypatch.setattr(repeated, "HEADER_LOOK", 1000)
        lake = make(wf("h", retry={"max_attempts": 1}))
        rows = [f"{r},{r % 7},{r * 0.5}" for r in range(24_000)]
        lake.land("h/a.csv", "id,k,v\n" + "\n".join([*rows[:22_000], "id,k,v", *rows[22_000:]]) + "\n")
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT count(*), sum(id), typeof(id), typeof(v) FROM h GROUP BY ALL")
        assert got == [(24_000, 287_988_000, "BIGINT", "DOUBLE")], got
        assert only_run(lake, "h/a.csv").note == "1 line repeating the header passed over (line 22002)"

    def test_a_text_column_of_the_table_keeps_a_file_s_text_as_written(self, make):
        """A file whose values of a column the table holds as text look like another type (`f` and `t` read as
        booleans, `+7` and `8.50` as numbers) loads them as written, not as the other type's words (`false`,
        `7.0`), also under the name the steps give it."""
        lake = make(wf("s"), wf("n", transform=[{"normalize_names": True}, {"rename": {"user_name": "who"}}]))
        lake.land("s/a.csv", "id,name,code\n1,a,x1\n")
        lake.land("n/a.csv", "id,User Name\n1,a\n")
        assert_ok(lake, lake.process())
        lake.land("s/b.csv", "id,name,code\n6,f,+7\n7,t,8.50\n")
        lake.land("n/b.csv", "id,User Name\n6,f\n7,t\n")
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, name, code FROM s ORDER BY id")
        assert rows == [(1, "a", "x1"), (6, "f", "+7"), (7, "t", "8.50")], rows
        assert lake.rows("SELECT id, who FROM n ORDER BY id") == [(1, "a"), (6, "f"), (7, "t")]

    def test_a_declared_type_sets_aside_what_it_cannot_hold_whole(self, make):
        """With `bad_rows: quarantine`, a value a declared type cannot hold whole goes to the quarantine with its
        line, column and reason, as it fails the file without it: a word a date cast takes (`epoch`, `infinity`),
        a time of day in a date column, a fraction in an integer column. The rest of the file loads."""
        lake = make(wf("t", read={"types": {"d": "date", "n": "int"}, "bad_rows": "quarantine"}))
        lake.land(
            "t/a.csv",
            "id,d,n\n1,2024-01-01,7\n2,epoch,7\n3,Infinity,7\n4,2024-01-03 10:30,7\n5,2024-01-04,2.5\n6,,\n",
        )
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, CAST(d AS VARCHAR), n FROM t ORDER BY id") == [
            (1, "2024-01-01", 7),
            (6, None, None),
        ]
        rows = lake.rows("SELECT _line, _rule, _column, _raw FROM quarantine.t ORDER BY _line")
        assert rows == [
            (3, "parse", "d", "2,epoch,7"),
            (4, "parse", "d", "3,Infinity,7"),
            (5, "parse", "d", "4,2024-01-03 10:30,7"),
            (6, "parse", "n", "5,2024-01-04,2.5"),
        ], rows
        assert all("epoch" in r for (r,) in lake.rows("SELECT _reason FROM quarantine.t WHERE _line = 3"))
        assert only_run(lake, "t/a.csv").rows_quarantined == 4

    def test_every_row_of_a_file_may_be_set_aside_each_with_its_line(self, make):
        """A declared type the file does not follow (dates written `31/01/2024`) sets aside nearly every row,
        each with its own line and text, records spanning two lines counted (on DuckDB 20,000 such rows took
        10 s, each fetched and inserted alone; a million, minutes)."""
        lake = make(wf("t", read={"types": {"d": "date"}, "bad_rows": "quarantine"}))
        records = [
            f'{i},2024-01-01,"two\nlines"' if i % 1000 == 0 else f"{i},{i % 28 + 1:02d}/01/2024,n{i}"
            for i in range(20_000)
        ]
        lake.land("t/a.csv", "id,d,note\n" + "\n".join(records) + "\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT count(*), min(id), max(id) FROM t") == [(20, 0, 19_000)]
        expected = {2 + i + i // 1000 + 1: records[i] for i in range(20_000) if i % 1000}
        found = dict(lake.rows("SELECT _line, _raw FROM quarantine.t"))
        assert len(found) == len(expected) and found == expected, sorted(set(found.items()) ^ set(expected.items()))[:3]
        assert only_run(lake, "t/a.csv").rows_quarantined == 19_980

    def test_a_file_with_many_ragged_rows_loads_to_its_end(self, make):
        """DuckDB 2.0's parallel CSV reader, storing the rows it cannot parse, may stop before the end of a file
        without a word: 400,000 rows with every other one ragged loaded 152,264 rows and quarantined 152,263 (all
        past line 304,527 lost). Every line is a row loaded or set aside."""
        lake = make(wf("t", read={"bad_rows": "quarantine"}))
        rows = [f"{i},2024-01-{i % 28 + 1:02d},n{i}" + (",x" if i % 2 else "") for i in range(400_000)]
        lake.land("t/a.csv", "id,d,name\n" + "\n".join(rows) + "\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT count(*), max(id) FROM t") == [(200_000, 399_998)]
        assert lake.rows("SELECT count(*), min(_line), max(_line) FROM quarantine.t") == [(200_000, 3, 400_001)]
        run = only_run(lake, "t/a.csv")
        assert (run.rows_in, run.rows_out, run.rows_quarantined) == (400_000, 200_000, 200_000)

    def test_a_line_ending_unlike_the_first_ones_is_read(self, make):
        """A CRLF file with one line ending in a lone LF (files joined, a line added by another tool) failed whole
        on DuckDB: inside the sniffer's sample `could not detect the CSV dialect`, past it `The CSV Parser state
        machine reached an invalid state`, in quarantine mode a ragged row's line. It loads, and rows set aside
        keep their lines."""
        lake = make(wf("f", write={"table": "f"}), wf("q", read={"bad_rows": "quarantine"}, write={"table": "q"}))

        def crlf(rows: int, every: int, where: str) -> bytes:
            lines = ["id,d,name"] + [
                f"{i},2024-01-{i % 28 + 1:02d},n{i}" + (",x" if every and i % every == 1 else "") for i in range(rows)
            ]
            text = "\r\n".join(lines) + "\r\n"
            if where == "end":
                return (text[:-2] + "\n").encode()
            half = len(text) // 2
            return (text[:half] + text[half:].replace("\r\n", "\n", 1)).encode()

        for where, rows in (("end", 60_000), ("middle", 20_000)):  # past the sniffer's sample; inside it
            lake.land(f"f/{where}.csv", crlf(rows, 0, where))
            lake.land(f"q/{where}.csv", crlf(rows, 2, where))
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT _source_file, count(*), max(id) FROM f GROUP BY ALL ORDER BY 1") == [
            ("f/end.csv", 60_000, 59_999),
            ("f/middle.csv", 20_000, 19_999),
        ]
        assert lake.rows("SELECT _source_file, count(*) FROM q GROUP BY ALL ORDER BY 1") == [
            ("q/end.csv", 30_000),
            ("q/middle.csv", 10_000),
        ]
        lines = "SELECT count(*), sum(CASE WHEN split_part(_raw, ',', 1)::BIGINT + 2 = _line THEN 0 ELSE 1 END)"
        assert lake.rows(f"{lines} FROM quarantine.q") == [(40_000, 0)]

    def test_a_line_break_inside_a_quoted_value_is_kept_as_written(self, make):
        """A quoted value holding a CRLF in a file of LF lines (a text field written on Windows, exported on
        Linux), or a lone LF in a file of CRLF lines, keeps its line break as written, as DuckDB's and pandas'
        readers keep it (before: the value lost its CR: the endings looked mixed, and the copy whose endings are all
        LF was made inside quoted values too). A file whose lines do end in both keeps its values too."""
        lake = make(wf("t"), workers=1)
        rows = [("1", '"a\r\nb"'), ("2", '"c\nd"'), ("3", "e"), ("4", '"f\r\n\r\ng"')]
        for name, ending in (("lf", "\n"), ("crlf", "\r\n")):
            lake.land(f"t/{name}.csv", ("id,name" + ending + "".join(f"{i},{v}{ending}" for i, v in rows)).encode())
        # lines ending in both (a line added by another tool), a CRLF and a lone LF inside values
        mixed = 'id,name\r\n1,"a\r\nb"\r\n2,"c\nd"\n3,e\r\n4,"f\r\n\r\ng"\n'
        lake.land("t/mixed.csv", mixed.encode())
        assert_ok(lake, lake.process())
        want = [(1, "a\r\nb"), (2, "c\nd"), (3, "e"), (4, "f\r\n\r\ng")]
        for name in ("lf", "crlf", "mixed"):
            got = lake.rows(f"SELECT id, name FROM t WHERE _source_file = 't/{name}.csv' ORDER BY id")
            assert got == want, (name, got)

    def test_a_late_value_past_the_type_sample_loads_in_quarantine_mode_too(self, make):
        """A value past the type sample that does not fit the detected type makes the column a type that holds
        it, with `bad_rows: quarantine` as without: DuckDB, storing rejects, set the row aside as if it could
        not be parsed (`CAST: ... Could not convert string "abc" to 'BIGINT'`). A ragged row is still set aside."""
        lake = make(wf("t", read={"bad_rows": "quarantine"}), workers=1)
        rows = SAMPLED_ROWS
        head = sampled_head()
        lake.land("t/a.csv", head + f"{rows},abc,2024-01-02 10:30:00\n{rows + 1},1,2024-01-01,extra\n")
        lake.land("t/b.csv", "id,n,d\n40000,7,2024-01-03\n")
        assert_ok(lake, lake.process())
        got = lake.rows(f"SELECT id, CAST(n AS VARCHAR), CAST(d AS VARCHAR) FROM t WHERE id >= {rows} ORDER BY id")
        assert got == [(rows, "abc", "2024-01-02 10:30:00"), (40000, "7", "2024-01-03 00:00:00")], got
        assert lake.rows("SELECT count(*) FROM t") == [(rows + 2,)]
        assert lake.rows("SELECT _line, _raw FROM quarantine.t") == [(rows + 3, f"{rows + 1},1,2024-01-01,extra")]

    def test_a_declared_type_sets_aside_what_it_cannot_hold_whole_in_json_lines(self, make):
        lake = make(wf("j", read={"format": "jsonl", "types": {"d": "date", "n": "int"}, "bad_rows": "quarantine"}))
        lines = ['{"id": 1, "d": "2024-01-01", "n": 7}', '{"id": 2, "d": "epoch", "n": 7}']
        lines += ['{"id": 3, "d": "2024-01-03 10:30", "n": 7}', '{"id": 4, "d": "2024-01-04", "n": 2.5}']
        lake.land("j/a.jsonl", "\n".join([*lines, '{"id": 5, "d": null, "n": "8"}']) + "\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, CAST(d AS VARCHAR), n FROM j ORDER BY id") == [(1, "2024-01-01", 7), (5, None, 8)]
        rows = lake.rows("SELECT _line, _rule, _column, _raw FROM quarantine.j ORDER BY _line")
        assert rows == [(2, "parse", "d", lines[1]), (3, "parse", "d", lines[2]), (4, "parse", "n", lines[3])], rows
        reasons = lake.rows("SELECT _reason FROM quarantine.j ORDER BY _line")
        assert "value `epoch` of column `d`" in reasons[0][0] and "value `2.5` of column `n`" in reasons[2][0], reasons

    # --- bad input ---------------------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("key", "content", "read", "start", "words"),
        [
            ("a.csv", "id,name\n1,a\n2,b\n3,c,d\n4,e\n", {"delimiter": ","}, "`t/a.csv` line 4: ", ["fields"]),
            ("b.csv", "id,n\n1,2\n2,x\n", {"types": {"n": "int"}}, "`t/b.csv` line 3: ", ["x"]),
            ("c.jsonl", '{"a": 1}\n{"a": 2\n', {}, "`t/c.jsonl` line 2: ", ["JSON"]),
            ("d.json", '[{"a": 1},\n {"a": 2},\n]', {}, "`t/d.json` line 3: ", ["JSON"]),
            ("e.csv", 'id,name\n1,"a"\n2,"unterminated\n3,c\n', {"quote": '"'}, "`t/e.csv` line 3: ", ["quote"]),
            # what Python's parser reads and DuckDB's refuses (before: DuckDB's words, naming a local path)
            ("g.jsonl", '{"a": "x"}\n\n{"a": "\\ud800"}\n', {}, "`t/g.jsonl` line 3: ", ["(column 8)", "surrogate"]),
            ("h.json", '[{"a": "x"},\n {"a": "y\\udc00"}]', {}, "`t/h.json` line 2: ", ["(column 10)", "surrogate"]),
        ],
    )
    def test_bad_input_names_file_line_and_reason(self, make, key, content, read, start, words):
        lake = make(wf("t", read=read, retry={"max_attempts": 1}))
        lake.land(f"t/{key}", content)
        lake.process()
        err = error_of(lake, f"t/{key}")
        assert err.startswith(start), err
        assert all(w in err for w in words), err
        assert "Traceback" not in err

    def test_a_damaged_parquet_file_fails_alone_saying_so(self, make, tmp_path):
        """A Parquet file cut short, one that is not Parquet at all and an empty one each fail alone, named, with
        a reason for people (not the engine's words with the file's local path); a good one beside them loads."""

        pq.write_table(pa.table({"id": [1, 2, 3]}), tmp_path / "good.parquet")
        good = (tmp_path / "good.parquet").read_bytes()
        lake = make(wf("t", read={"format": "parquet"}, retry={"max_attempts": 1}))
        lake.land("t/good.parquet", good)
        lake.land("t/cut.parquet", good[: len(good) // 2])
        lake.land("t/text.parquet", b"id\n1\n2\n" * 20)
        lake.land("t/empty.parquet", b"")
        lake.process()
        assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]
        for key in ("t/cut.parquet", "t/text.parquet", "t/empty.parquet"):
            err = error_of(lake, key)
            assert err.startswith(f"`{key}`: not a readable Parquet file"), err
            assert str(lake.root) not in err and "Traceback" not in err, err

    def test_a_bad_file_in_a_batch_fails_alone(self, make):
        lake = make(wf("t", read={"types": {"id": "int"}}, retry={"max_attempts": 1}))
        for i in range(5):
            lake.land(f"t/{i}.csv", f"id,name\n{i},n{i}\n")
        lake.land("t/bad.csv", "id,name\n9,a\nx,b\n")
        lake.process()
        assert lake.status() == {**{f"t/{i}.csv": "succeeded" for i in range(5)}, "t/bad.csv": "dead"}
        assert lake.rows("SELECT count(*) FROM t") == [(5,)]

    def test_batched_files_keep_their_own_rows_and_lineage(self, make):
        lake = make(wf("t"))
        for i in range(6):
            lake.land(f"t/{i}.csv", "id,v\n" + "".join(f"{i * 10 + j},{j}\n" for j in range(i + 1)))
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT _source_file, count(*), min(_run_id) IS NOT NULL FROM t GROUP BY 1 ORDER BY 1")
        assert got == [(f"t/{i}.csv", i + 1, True) for i in range(6)]
        for i in range(6):
            run = only_run(lake, f"t/{i}.csv")
            assert (run.rows_in, run.rows_out) == (i + 1, i + 1)
            assert lake.rows(f"SELECT DISTINCT _run_id FROM t WHERE _source_file = 't/{i}.csv'") == [(run.run_id,)]

    def test_a_value_a_cast_step_cannot_convert_to_a_date_or_time_names_its_line(self, make):
        """A `cast` to a timestamp that a value does not fit: DuckDB names the value (`timestamp field value out of
        range: "2024-13-45"`, `invalid timestamp field format: "abc"`, from JSON `Unable to cast '1704164645' to
        TIMESTAMP WITH TIME ZONE`) but not its record: the message named neither the line nor the type the step
        casts to, as other cast failures (and Spark's) do."""
        lake = make(wf("o", transform=[{"cast": {"ts": "timestamptz"}}], retry={"max_attempts": 1}))
        lake.land("o/num.jsonl", '{"id": 1, "ts": "2024-01-02T03:04:05Z"}\n{"id": 2, "ts": 1704164645}\n')
        lake.land("o/word.jsonl", '{"id": 1, "ts": "2024-01-02T03:04:05Z"}\n\n{"id": 2, "ts": "2024-13-45"}\n')
        lake.land("o/range.csv", "id,ts\n1,2024-01-02T03:04:05Z\n2,2024-13-45\n")
        lake.land("o/word.csv", "id,ts\n1,2024-01-02T03:04:05Z\n\n2,abc\n")
        lake.process()
        errors = {key: error_of(lake, key) for key in ("o/num.jsonl", "o/word.jsonl", "o/range.csv", "o/word.csv")}
        assert errors == {
            "o/num.jsonl": "`o/num.jsonl` line 2: value `1704164645` of column `ts` is not a valid TIMESTAMPTZ",
            "o/word.jsonl": "`o/word.jsonl` line 3: value `2024-13-45` of column `ts` is not a valid TIMESTAMPTZ",
            "o/range.csv": "`o/range.csv` line 3: value `2024-13-45` of column `ts` is not a valid TIMESTAMPTZ",
            "o/word.csv": "`o/word.csv` line 4: value `abc` of column `ts` is not a valid TIMESTAMPTZ",
        }, errors
