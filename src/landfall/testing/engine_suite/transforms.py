"""The engine conformance suite: transform steps and quality rules."""

from __future__ import annotations

import datetime
import json
from typing import Any, ClassVar

import pytest
import yaml

from landfall.testing.engine_suite.base import (
    NESTED,
    EngineFixtures,
    assert_ok,
    column_types,
    error_of,
    jsonl,
    only_run,
)
from landfall.testing.lake import wf


class TransformTests(EngineFixtures):
    """Transform steps and quality rules (quarantine with file, line and reason)."""

    # --- steps -------------------------------------------------------------------------------------------------

    def test_rename_cast_compute_filter_drop(self, make):
        steps = [
            {"rename": {"Unit Price": "price"}},
            {"cast": {"qty": "int", "day": "date"}},
            {"compute": {"total": "price * qty", "qty": "qty + 0"}},
            {"filter": "qty > 0"},
            {"drop": {"columns": ["note", "not_there"], "missing_ok": True}},
        ]
        lake = make(wf("t", read={"all_strings": False, "types": {"qty": "string"}}, transform=steps))
        lake.land("t/a.csv", "id,Unit Price,qty,day,note\n1,2.5,4,2024-01-01,x\n2,1.0,0,2024-01-02,y\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT * EXCLUDE (_source_file, _ingested_at, _run_id) FROM t") == [
            (1, 2.5, 4, __import__("datetime").date(2024, 1, 1), 10.0)
        ]
        run = only_run(lake, "t/a.csv")
        assert (run.rows_in, run.rows_out) == (2, 1)

    def test_a_step_that_takes_text_for_a_number_names_itself_and_how_to_read_it(self, make):
        """`price * qty` over a `price` read as text (`2,5`: a decimal comma not declared): the file fails with
        the step named and the read option that reads such numbers."""
        lake = make(wf("t", transform=[{"filter": "qty > 0"}, {"compute": {"total": "price * qty"}}]))
        lake.land("t/a.csv", "id;price;qty\n1;2,5;3\n2;4,25;1\n")
        lake.process()
        error = error_of(lake, "t/a.csv")
        assert "workflow `t` step 2 (`compute`): " in error, error
        assert 'numbers written with a decimal comma are read as numbers with `read: {decimal_separator: ","}`' in (
            error
        ), error

    def test_cast_to_every_type(self, make):
        cast = {
            "s": "string",
            "i": "int",
            "i32": "int32",
            "i16": "int16",
            "i8": "int8",
            "f": "float",
            "f32": "float32",
            "b": "bool",
            "d": "date",
            "ts": "timestamp",
            "tz": "timestamptz",
            "t": "time",
            "dec": "decimal(10,2)",
        }
        lake = make(wf("t", read={"all_strings": True}, transform=[{"cast": cast}]))
        lake.land(
            "t/a.csv",
            ",".join(cast) + "\n" + "x,1,2,3,4,1.5,2.5,true,2024-01-02,2024-01-02 03:04:05,"
            "2024-01-02 03:04:05+00,03:04:05,12.34\n",
        )
        assert_ok(lake, lake.process())
        types = column_types(lake, "t")
        assert {c: types[c] for c in cast} == {
            "s": "string",
            "i": "int64",
            "i32": "int32",
            "i16": "int16",
            "i8": "int8",
            "f": "double",
            "f32": "float",
            "b": "bool",
            "d": "date32[day]",
            "ts": "timestamp[us]",
            "tz": "timestamp[us, tz=UTC]",
            "t": "time64[us]",
            "dec": "decimal128(10, 2)",
        }
        row = lake.rows("SELECT s, i, i32, i16, i8, f, f32, b, CAST(dec AS VARCHAR) FROM t")
        assert row == [("x", 1, 2, 3, 4, 1.5, 2.5, True, "12.34")]

    def test_percentiles_are_exact_in_every_form(self, make):
        """DuckDB's `quantile_cont(x, q)`, `quantile_disc`, `median` and the SQL standard's `percentile_cont(q) WITHIN
        GROUP (ORDER BY x)` give the same exact values on both engines (before, on Spark: `quantile_cont` failed the
        file, `The percentile_cont requires 1 parameters`, and the standard's form was an estimate,
        PERCENTILE_APPROX)."""
        sql = (
            "SELECT g, quantile_cont(x, 0.25) AS qc, quantile_disc(x, 0.5) AS qd, median(x) AS md, "
            "percentile_cont(0.75) WITHIN GROUP (ORDER BY x) AS pc FROM input GROUP BY g"
        )
        lake = make(wf("t", transform=[{"sql": sql}]))
        lake.land("t/a.csv", "g,x\n1,1\n1,2\n1,4\n1,10\n2,5\n")
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT g, CAST(qc AS DOUBLE), CAST(qd AS DOUBLE), CAST(md AS DOUBLE), pc FROM t ORDER BY g")
        assert got == [(1, 1.75, 2.0, 3.0, 5.5), (2, 5.0, 5.0, 5.0, 5.0)], got

    def test_text_never_rounds_into_an_integer(self, make):
        lake = make(wf("t", read={"all_strings": True}, transform=[{"cast": {"n": "int"}}], retry={"max_attempts": 1}))
        lake.land("t/a.csv", "n\n1\n2.5\n")
        lake.process()
        err = error_of(lake, "t/a.csv")
        assert err.startswith("`t/a.csv`") and "2.5" in err

    def test_a_fraction_never_rounds_into_an_integer(self, make):
        """`cast: {n: int}` on numbers read as doubles: a whole one converts, `1.5` fails the file naming it (DuckDB's
        cast would round it to 2, Spark's truncate it to 1: the same config loaded other numbers on each engine)."""
        steps = [{"cast": {"n": "int"}}]
        lake = make(wf("t", transform=steps), wf("f", transform=steps, retry={"max_attempts": 1}))
        lake.land("t/a.csv", "n\n1.0\n3.0\n")
        lake.land("f/a.csv", "n\n1.0\n1.5\n")
        lake.process()
        assert lake.rows("SELECT n FROM t ORDER BY n") == [(1,), (3,)]
        err = error_of(lake, "f/a.csv")
        assert err.startswith("`f/a.csv` line 3: value `1.5` ") and err.endswith("not a valid BIGINT"), err

    def test_dedupe_keeps_the_latest_row_per_key(self, make):
        steps = [{"dedupe": {"keys": ["id"], "order_by": "version"}}]
        lake = make(wf("t", transform=steps))
        lake.land("t/a.csv", "id,version,v\n1,1,old\n1,3,new\n2,1,only\n1,2,mid\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, v FROM t ORDER BY id") == [(1, "new"), (2, "only")]

    def test_sql_step_reads_input(self, make):
        steps = [{"sql": "SELECT region, sum(amount) AS total FROM input GROUP BY region"}]
        lake = make(wf("t", transform=steps))
        lake.land("t/a.csv", "region,amount\neu,1\nus,2\neu,3\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT region, total FROM t ORDER BY 1") == [("eu", 4), ("us", 2)]

    def test_a_list_aggregate_keeps_nulls_on_both_engines(self, make):
        """`list(x)` (`array_agg`) keeps a NULL value as DuckDB's does; Spark's COLLECT_LIST dropped it: the same
        workflow made `[1, null]` and `[1]`."""
        steps = [{"sql": "SELECT k, list_sort(list(v)) AS vs, array_length(list(v)) AS n FROM input GROUP BY k"}]
        lake = make(wf("t", transform=steps))
        lake.land("t/a.csv", "k,v\na,1\na,\nb,\n")
        assert_ok(lake, lake.process())
        got = {k: (sorted(vs, key=lambda x: (x is None, x)), n) for k, vs, n in lake.rows("SELECT k, vs, n FROM t")}
        assert got == {"a": ([1, None], 2), "b": ([None], 1)}

    def test_list_functions_and_regexp_options_mean_the_same_on_both_engines(self, make):
        """`list_contains` is false for a value a list holding NULLs lacks (Spark's ARRAY_CONTAINS was NULL),
        `list_distinct` leaves NULLs out (Spark's kept one), and `regexp_matches(s, p, 'i')` ignores case (Spark's
        RLIKE dropped the option: no match)."""
        parts = {
            "c": "list_contains([a, b], 7)",
            "d": "list_sort(list_distinct([a, a, b]))",
            "r": "regexp_matches(s, 'HELLO', 'i')",
        }
        lake = make(wf("t", transform=[{"compute": parts}], read={"types": {"a": "int", "b": "int"}}))
        lake.land("t/a.csv", "a,b,s\n7,,hello world\n,,bye\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT c, d, r FROM t ORDER BY s") == [(False, [], False), (True, [7], True)]

    def test_sql_step_joins_a_table_of_the_lake(self, make):
        """A `sql` step joins another workflow's table by name, at the version current when its run starts,
        without that table's lineage columns."""
        dims = wf("customers", write={"table": "customers", "mode": "merge", "keys": ["customer_id"]})
        steps = [{"sql": "SELECT o.*, c.segment FROM input o LEFT JOIN customers c USING (customer_id)"}]
        lake = make(dims, wf("orders", transform=steps))
        lake.land("customers/a.csv", "customer_id,segment\n7,retail\n8,pro\n")
        assert_ok(lake, lake.process())
        lake.land("orders/a.csv", "order_id,customer_id\n1,7\n2,9\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT order_id, segment FROM orders ORDER BY 1") == [(1, "retail"), (2, None)]
        cols = [r[0] for r in lake.rows("SELECT column_name FROM (DESCRIBE orders)")]
        assert cols.count("_source_file") == 1 and cols.count("_run_id") == 1

    def test_normalize_names(self, make):
        lake = make(wf("t", normalize_names=True), wf("u", normalize_names=True))
        lake.land("t/a.csv", "Order ID,unitPrice,Unit Price,Größe (cm),Straße,数量\n1,2,3,4,5,6\n")
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT order_id, unit_price, unit_price_2, grosse_cm, strasse, 数量 FROM t")
        assert got == [(1, 2, 3, 4, 5, 6)]
        # a table made when accents were not taken off (`Größe` was `gr_e`) keeps its column
        lake.land("u/a.csv", "id,gr_e\n1,2\n")
        assert_ok(lake, lake.process())
        lake.land("u/b.csv", "id,Größe\n3,4\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, gr_e FROM u ORDER BY id") == [(1, 2), (3, 4)]
        assert "grosse" not in column_types(lake, "u")

    def test_flatten_objects_into_columns(self, make):
        steps = [{"flatten": {"max_depth": 1, "keep_json": []}}, {"drop": ["items", "tags"]}]
        lake = make(wf("t", transform=steps), wf("k", transform=[{"flatten": {"keep_json": ["customer.address"]}}]))
        lake.land("t/a.jsonl", jsonl(NESTED))
        lake.land("k/a.jsonl", jsonl(NESTED))
        assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, customer_name, customer_address FROM t ORDER BY id")
        assert [r[:2] for r in rows] == [(1, "Ann"), (2, "Bo"), (3, None)]
        assert json.loads(rows[0][2]) == {"city": "Oslo", "zip": "0150"}
        rows = lake.rows("SELECT id, customer_name, customer_address FROM k ORDER BY id")
        assert json.loads(rows[1][2]) == {"city": "Rome", "zip": "00100"} and rows[2][2] is None

    def test_flatten_refuses_two_keys_that_would_share_a_column(self, make):
        """`{"a": {"b": 1}, "a_b": 2}` flattened with `_` makes `a_b` twice. DuckDB numbered the second (`a_b_1`),
        so a file holding only one of them put it in `a_b` whichever it was: `a.b` of one file and `a_b` of
        another in one column without a word. The file fails naming both keys and the way out; with another
        separator both load."""
        lake = make(
            wf("t", transform=[{"flatten": {}}], retry={"max_attempts": 1}),
            wf("s", transform=[{"flatten": {"separator": "__"}}]),
        )
        lake.land("t/a.jsonl", '{"id": 1, "a": {"b": 1}, "a_b": 2}\n')
        lake.land("s/a.jsonl", '{"id": 1, "a": {"B": 1}, "a_b": 2}\n')
        lake.process()
        error = error_of(lake, "t/a.jsonl")
        assert "step 1 (`flatten`): `a.b` and `a_b` would both be column `a_b`: choose a `separator`" in error
        assert lake.rows("SELECT a__B, a_b FROM s") == [(1, 2)]
        lake = make(wf("e", transform=[{"explode": "items"}], retry={"max_attempts": 1}))  # elements' fields too
        lake.land("e/a.jsonl", '{"id": 1, "items": [{"sku": "a"}], "items_sku": "top"}\n')
        lake.process()
        error = error_of(lake, "e/a.jsonl")
        assert "step 1 (`explode`): `items_sku` and `items.sku` would both be column `items_sku`: rename one" in error

    def test_explode_lists_into_rows(self, make):
        steps = [{"explode": "items"}, {"drop": ["customer", "tags"]}]
        lake = make(wf("t", transform=steps))
        lake.land("t/a.jsonl", jsonl(NESTED))
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, items_sku, items_qty FROM t ORDER BY id, items_sku") == [
            (1, "a", 2),
            (1, "b", 1),
            (2, None, None),
            (3, "c", 5),
        ]

    def test_child_tables_by_key_and_by_generated_ids(self, make):
        keyed = {"child_tables": {"columns": {"items": "items", "tags": None}, "key": ["id"]}}
        lake = make(wf("o", transform=[keyed]), wf("n", transform=[{"child_tables": ["items", "items.parts"]}]))
        lake.land("o/a.jsonl", jsonl(NESTED))
        nested = [{"id": 1, "items": [{"sku": "a", "parts": [{"p": 1}, {"p": 2}]}, {"sku": "b", "parts": []}]}]
        lake.land("n/a.jsonl", jsonl(nested))
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id FROM o ORDER BY id") == [(1,), (2,), (3,)]
        assert lake.rows("SELECT id, _pos, sku, qty FROM items ORDER BY id, _pos") == [
            (1, 0, "a", 2),
            (1, 1, "b", 1),
            (3, 0, "c", 5),
        ]
        assert lake.rows("SELECT id, _pos, value FROM o__tags ORDER BY id, _pos") == [(1, 0, "new"), (1, 1, "promo")]
        assert lake.rows("SELECT DISTINCT _source_file FROM items") == [("o/a.jsonl",)]
        got = lake.rows(
            "SELECT i.sku, p._pos, p.p FROM n__items__parts p JOIN n__items i ON p._parent_row_id = i._row_id "
            "JOIN n ON i._parent_row_id = n._row_id ORDER BY 1, 2"
        )
        assert got == [("a", 0, 1), ("a", 1, 2)]

    def test_child_tables_of_a_file_whose_lists_are_all_null_load_its_rows(self, make):
        """A file whose list column held only nulls (no type to JSON's reader) failed the step: ``"NULL", not a
        list; it cannot become a child table``. Its rows load, with no child rows; a changed file's version of them
        takes its earlier child rows out, nested ones too. Found by tests/test_generated_modes.py."""
        lake = make(wf("n", transform=[{"child_tables": ["items", "items.parts"]}]))
        lake.land("n/a.jsonl", jsonl([{"id": 1, "items": [{"sku": "a", "parts": [{"p": 1}]}]}]), mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("n/b.jsonl", jsonl([{"id": 2, "items": None}]), mtime=1_700_000_010)
        lake.land("n/a.jsonl", jsonl([{"id": 3, "items": None}, {"id": 4, "items": None}]), mtime=1_700_000_020)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id FROM n ORDER BY id") == [(2,), (3,), (4,)]
        assert lake.rows("SELECT count(*) FROM n__items") == [(0,)]
        assert lake.rows("SELECT count(*) FROM n__items__parts") == [(0,)]

    def test_child_tables_are_made_by_their_first_elements(self, make):
        """A first file whose lists were all empty (`[]`: no elements to type) made the child table with JSON
        values, which it kept: the next file's strings were stored as JSON (`"x"`, quotes and all). A child table
        is made by its first rows, as a table is."""
        lake = make(wf("n", transform=[{"child_tables": ["tags"]}]))
        lake.land("n/a.jsonl", jsonl([{"id": 1, "tags": []}]), mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        assert "n__tags" not in {t.name for t in lake.pipeline.tables()}
        lake.land("n/b.jsonl", jsonl([{"id": 2, "tags": ["x", "y"]}]), mtime=1_700_000_010)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT value, typeof(value) FROM n__tags ORDER BY _pos") == [
            ("x", "VARCHAR"),
            ("y", "VARCHAR"),
        ]

    def test_child_tables_a_value_that_does_not_fit_the_table_names_its_line(self, make):
        """The child tables are written first, so they read the rows first: a value that does not fit the table
        fails the file naming its line, as without them (before: DuckDB's `Could not convert string 'A' to BIGINT
        when casting from source column id`, no line)."""
        keyed = {"child_tables": {"columns": ["tags"], "key": ["id"]}}
        lake = make(wf("o", transform=[keyed], retry={"max_attempts": 1}), workers=1)
        lake.land("o/1.jsonl", jsonl([{"id": 1, "tags": [{"k": 1}]}]), mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land(
            "o/2.jsonl", jsonl([{"id": 2, "tags": [{"k": 2}]}, {"id": "A", "tags": [{"k": 3}]}]), mtime=1_700_000_001
        )
        lake.process()
        assert error_of(lake, "o/2.jsonl") == "`o/2.jsonl` line 2: value `A` of column `id` is not a valid BIGINT"
        assert lake.rows("SELECT id FROM o__tags") == [(1,)]

    def test_child_tables_widen_as_tables_do_and_name_the_line_of_a_value_that_does_not_fit(self, make):
        """A child table's column widens as any table's does (a date field given a timestamp: the column becomes
        a timestamp). Before, a timestamp with seconds inside a JSON object or list was read as text (the check of
        its form used `?` as LIKE's one-character wildcard, which is `_`), and the file failed: ``value
        `2026-01-02 10:30:00` of column `d` is not a valid DATE; no line of the file holds it as written: a
        `transform` step made it``. A value that fits no way is named with its line and the list it is in."""
        lake = make(wf("o", transform=[{"child_tables": ["items"]}], retry={"max_attempts": 1}), workers=1)
        lake.land("o/1.jsonl", jsonl([{"id": 1, "items": [{"d": "2026-01-02"}]}]), mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("o/2.jsonl", jsonl([{"id": 2, "items": [{"d": "2026-01-02 10:30:00"}]}]), mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT CAST(d AS VARCHAR) FROM o__items ORDER BY d") == [
            ("2026-01-02 00:00:00",),
            ("2026-01-02 10:30:00",),
        ]
        bad = [{"id": 3, "items": [{"d": "2026-01-03 00:00:00"}]}, {"id": 4, "items": [{"d": "hello"}]}]
        lake.land("o/3.jsonl", jsonl(bad), mtime=1_700_000_002)
        lake.process()
        assert error_of(lake, "o/3.jsonl") == (
            "`o/3.jsonl` line 2: value `hello` of column `d` is not a valid TIMESTAMP (child table `o__items`, "
            "from `items`)"
        )
        assert lake.rows("SELECT count(*) FROM o__items") == [(2,)]

    def test_partitions_merge_and_overwrite(self, make):
        merge = {"table": "m", "mode": "merge", "keys": ["id"], "order_by": "v", "partition_by": ["year(day)"]}
        lake = make(wf("m", write=merge), wf("o", write={"table": "o", "mode": "overwrite"}), workers=1)
        lake.land("m/1.csv", "id,v,day\n1,1,2023-05-01\n2,1,2024-05-01\n", mtime=1_700_000_000)
        lake.land("o/1.csv", "id\n1\n2\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("m/2.csv", "id,v,day\n2,2,2024-06-01\n3,1,2024-07-01\n1,0,2023-01-01\n", mtime=1_700_000_001)
        lake.land("o/2.csv", "id\n3\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, v, year FROM m ORDER BY id") == [(1, 1, 2023), (2, 2, 2024), (3, 1, 2024)]
        assert lake.rows("SELECT id FROM o") == [(3,)]

    def test_a_struct_field_to_partition_or_merge_by_names_the_step_that_makes_it_a_column(self, make):
        """`partition_by: [customer.country]`, as a stream takes a record's field: the file failed listing the
        columns there are. Now the message names the step that makes the field a column, and that step works."""
        write = {"table": "n", "partition_by": ["customer.country"]}
        lake = make(
            wf("n", read={"format": "jsonl"}, write=write),
            wf("m", read={"format": "jsonl"}, write={"table": "m", "mode": "merge", "keys": ["customer.id"]}),
        )
        for name in ("n", "m"):
            lake.land(f"{name}/a.jsonl", '{"id": 1, "customer": {"id": 7, "country": "FR"}}\n')
        lake.process()
        errors = {r.workflow: r.error for r in lake.pipeline.runs() if r.status == "dead"}
        assert "partition column `customer.country` is not in the output" in errors["n"], errors
        assert (
            "`customer.country` is a field of `customer`: make it a column in a step (`compute: {customer_country: "
            '"customer.country"}`) and name that'
        ) in errors["n"]
        assert "merge column `customer.id` is not in the output" in errors["m"]
        assert '(`compute: {customer_id: "customer.id"}`)' in errors["m"]
        step = {"compute": {"customer_country": "customer.country"}}
        fixed = make(
            wf(
                "n",
                read={"format": "jsonl"},
                transform=[step],
                write={"table": "n", "partition_by": ["customer_country"]},
            )
        )
        fixed.land("n/a.jsonl", '{"id": 1, "customer": {"id": 7, "country": "FR"}}\n')
        assert_ok(fixed, fixed.process())
        assert fixed.rows("SELECT id, customer_country FROM n") == [(1, "FR")]

    def test_a_time_partition_of_a_column_holding_only_nulls_is_the_null_partition(self, make):
        """`partition_by: [year(ts)]` over a JSON file whose `ts` is null in every record: the column had no type,
        `year()` of it was refused (`Could not choose a best candidate function`), and the file was retried and
        dead, whether it made the table or came later."""
        write = {"table": "p", "mode": "overwrite", "overwrite": "partitions", "partition_by": ["year(ts)"]}
        lake = make(wf("p", read={"format": "jsonl"}, write=write))
        lake.land("p/0.jsonl", '{"id": 0, "ts": null}\n', mtime=1_700_000_000)
        lake.land("p/1.jsonl", '{"id": 1, "ts": "2024-01-05 10:00:00"}\n{"id": 2, "ts": null}\n', mtime=1_700_000_001)
        lake.land("p/2.jsonl", '{"id": 3, "ts": null}\n', mtime=1_700_000_002)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, year FROM p ORDER BY id") == [(1, 2024), (3, None)]

    def test_overwrite_by_day_partitions_replaces_only_the_days_a_file_brings(self, make):
        """The README's `partition_by: ["day(sold_at)"]` made `day=1` hold every month's 1st, and the file of
        2026-02-01 replaced 2026-01-01's rows; the config now asks for the levels above (`test_config`), with
        which each day is its own partition."""
        parts = ["year(sold_at)", "month(sold_at)", "day(sold_at)"]
        write = {"table": "d", "mode": "overwrite", "overwrite": "partitions", "partition_by": parts}
        lake = make(wf("d", read={"format": "csv", "types": {"sold_at": "timestamp"}}, write=write))
        lake.land("d/jan.csv", "id,sold_at\n1,2026-01-01 10:00:00\n2,2026-01-02 11:00:00\n", mtime=1_700_000_000)
        lake.land("d/feb.csv", "id,sold_at\n3,2026-02-01 09:00:00\n", mtime=1_700_000_001)
        lake.land("d/jan-1-again.csv", "id,sold_at\n4,2026-01-01 12:00:00\n", mtime=1_700_000_002)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, year, month, day FROM d ORDER BY id") == [
            (2, 2026, 1, 2),
            (3, 2026, 2, 1),
            (4, 2026, 1, 1),
        ]

    def test_a_time_partition_of_text_names_the_column_and_the_way_out(self, make):
        """`partition_by: [year(ts)]` over a CSV whose `ts` is in a form no reader takes for a timestamp: the
        engine's binder error (`No function matches ... 'year(VARCHAR)'`), tried three times. Now the file fails at
        once, naming the column, what it holds, and how to declare it; the declaration it names loads it."""
        write = {"table": "p", "partition_by": ["year(ts)"]}
        lake = make(wf("p", read={"format": "csv"}, write=write))
        lake.land("p/1.csv", "id,ts\n1,05/01/2024 10h\n")
        lake.process()
        (run,) = lake.pipeline.runs()
        assert run.status == "dead" and run.attempt == 1, (run.status, run.attempt, run.error)
        assert (
            "partition `year(ts)` takes a date or a timestamp, but `ts` is VARCHAR here (`05/01/2024 10h`); make it "
            "one: `read: {types: {ts: timestamp}}` (with `read.timestamp_format`"
        ) in run.error
        read = {"format": "csv", "types": {"ts": "timestamp"}, "timestamp_format": "%d/%m/%Y %Hh"}
        fixed = make(wf("p", read=read, write=write))
        fixed.land("p/1.csv", "id,ts\n1,05/01/2024 10h\n")
        assert_ok(fixed, fixed.process())
        assert fixed.rows("SELECT id, year FROM p") == [(1, 2024)]

    @pytest.mark.parametrize("ext", ["csv", "jsonl"])
    def test_a_time_partition_column_of_no_values_yet_takes_a_later_files_dates(self, make, ext):
        """A first file whose `d` held no value (empty CSV fields, which DuckDB's detection types as text; JSON
        nulls) gave the table a `d` of text on DuckDB: a later file's dates there were text too, which `year(d)`
        refused, and the declaration the message named did not help (the table's type won). Such a column is a
        timestamp now, as its partitions say (JSON nulls stay untyped, and take the type of the first dates)."""
        write = {"table": "p", "partition_by": ["year(d)"]}
        lake = make(wf("p", read={"format": ext}, write=write))
        first = "d,v\n,1\n" if ext == "csv" else '{"d": null, "v": 1}\n'
        lake.land(f"p/1.{ext}", first, mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        second = "d,v\n2026-02-09,2\n" if ext == "csv" else '{"d": "2026-02-09", "v": 2}\n'
        lake.land(f"p/2.{ext}", second, mtime=1_700_000_010)
        assert_ok(lake, lake.process())
        kind = "TIMESTAMP" if ext == "csv" else "DATE"  # JSON nulls have no type: the first dates give it
        assert lake.rows("SELECT v, CAST(d AS DATE), typeof(d), year FROM p ORDER BY v") == [
            (1, None, kind, None),
            (2, datetime.date(2026, 2, 9), kind, 2026),
        ]

    def test_merge_a_changed_file_replaces_its_earlier_rows(self, make):
        """In a merge table too, a changed file's rows replace its earlier rows: a key its new version leaves out
        goes, and its new value wins over its old one even with a smaller `order_by`; other files' rows stay, and
        are known as theirs in the files a merge rewrote."""
        lake = _merge_tables(make, {"keys": ["id"], "order_by": "v"})
        for t in ("m", "d"):
            lake.land(f"{t}/a.csv", "id,v,name\n1,1,a1\n2,1,a2\n3,5,a3\n", mtime=1_700_000_000)
            lake.land(f"{t}/b.csv", "id,v,name\n1,2,b1\n4,1,b4\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):  # the corrected file: 2 taken out, 3 set back to an older value
            lake.land(f"{t}/a.csv", "id,v,name\n1,1,a1\n3,4,a3-fixed\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):
            got = lake.rows(f"SELECT id, v, name, _source_file FROM {t} ORDER BY id")
            assert got == [(1, 2, "b1", f"{t}/b.csv"), (3, 4, "a3-fixed", f"{t}/a.csv"), (4, 1, "b4", f"{t}/b.csv")]
        for t in ("m", "d"):  # a version whose keys no row has: the earlier rows go all the same, also those a
            # merge of another file carried into its files (before: recorded as that file's, and left in)
            lake.land(f"{t}/b.csv", "id,v,name\n7,1,b7\n", mtime=1_700_000_002)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):
            assert lake.rows(f"SELECT id, name FROM {t} ORDER BY id") == [(3, "a3-fixed"), (7, "b7")]
        for t in ("m", "d"):  # a version with no rows takes the file's rows out
            lake.land(f"{t}/a.csv", "id,v,name\n", mtime=1_700_000_003)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):
            assert lake.rows(f"SELECT id, name FROM {t} ORDER BY id") == [(7, "b7")]

    def test_a_value_a_step_made_that_does_not_fit_the_table_says_a_step_made_it(self, make):
        """A `compute` step makes text for a number column of the table: no line of the file holds the value, so
        the error says a step made it (before, on DuckDB: `Could not convert string 'big' to BIGINT when casting
        from source column n`, as if the file held it)."""
        lake = make(wf("c", retry={"max_attempts": 1}), workers=1)
        lake.land("c/1.csv", "id,n\n1,10\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        doc = yaml.safe_load(lake.config.read_text())
        doc["workflows"][0]["transform"] = [{"compute": {"n": "CASE WHEN id > 2 THEN 'big' ELSE '7' END"}}]
        lake.config.write_text(yaml.safe_dump(doc))
        lake.close()
        lake._pipeline = None
        lake.land("c/2.csv", "id,n\n2,20\n3,30\n", mtime=1_700_000_001)
        lake.process()
        assert error_of(lake, "c/2.csv") == (
            "`c/2.csv`: value `big` of column `n` is not a valid BIGINT; no line of the file holds it as written: a "
            "`transform` step made it"
        )

    def test_merge_a_value_that_does_not_fit_the_table_names_its_line(self, make):
        """A text value in a merge table's typed column (a key or another) fails the file naming its line, as in
        an append table (before, in a key: DuckDB's `Could not convert string 'A1' to BIGINT when casting from
        source column id`, no line)."""
        lake = _merge_tables(make, {"keys": ["id"]})
        for t in ("m", "d"):
            lake.land(f"{t}/1.csv", "id,n\n1,10\n2,20\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):
            lake.land(f"{t}/key.csv", "id,n\n3,30\nA1,40\n", mtime=1_700_000_001)
            lake.land(f"{t}/value.csv", "id,n\n1,11\n4,x\n", mtime=1_700_000_002)
        lake.process()
        for t in ("m", "d"):
            assert (
                error_of(lake, f"{t}/key.csv")
                == f"`{t}/key.csv` line 3: value `A1` of column `id` is not a valid BIGINT"
            )
            assert (
                error_of(lake, f"{t}/value.csv")
                == f"`{t}/value.csv` line 3: value `x` of column `n` is not a valid BIGINT"
            )
            assert lake.rows(f"SELECT id, n FROM {t} ORDER BY id") == [(1, 10), (2, 20)]

    def test_merge_keeps_every_row_whose_key_is_null(self, make):
        """A row with a NULL key matches no row, as in SQL's MERGE: it is added, never updated nor deduplicated
        (before: the rows of one file with no key were one row, the others lost without a word), and a changed
        file's version replaces them as it does its other rows."""
        lake = _merge_tables(make, {"keys": ["id", "k"]})
        for t in ("m", "d"):
            lake.land(f"{t}/a.csv", "id,k,v\n1,x,a\n,x,b\n,x,c\n2,,d\n2,,e\n", mtime=1_700_000_000)
            lake.land(f"{t}/b.csv", "id,k,v\n1,x,f\n,x,g\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):
            assert lake.rows(f"SELECT v FROM {t} ORDER BY v") == [("b",), ("c",), ("d",), ("e",), ("f",), ("g",)]
        for t in ("m", "d"):
            lake.land(f"{t}/a.csv", "id,k,v\n,x,h\n", mtime=1_700_000_002)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):
            assert lake.rows(f"SELECT v FROM {t} ORDER BY v") == [("f",), ("g",), ("h",)]

    def test_merge_a_null_order_by_is_the_least(self, make):
        """A row whose `order_by` is NULL loses to one with a value, within a file and across files, on both engines
        and formats (the greatest wins; NULL is no value)."""
        lake = _merge_tables(make, {"keys": ["k"], "order_by": "seq"})
        for t in ("m", "d"):
            lake.land(f"{t}/a.csv", "k,seq,v\n1,5,old\n2,,old\n3,,b\n3,5,a\n", mtime=1_700_000_000)
            lake.land(f"{t}/b.csv", "k,seq,v\n1,,new\n2,3,new\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        for t in ("m", "d"):
            assert lake.rows(f"SELECT k, v FROM {t} ORDER BY k") == [(1, "old"), (2, "new"), (3, "a")]

    def test_lineage_columns(self, make):
        lake = make(wf("t"))
        lake.land("t/a.csv", "id\n1\n")
        assert_ok(lake, lake.process())
        run = only_run(lake, "t/a.csv")
        rows = lake.rows("SELECT _source_file, _run_id, _ingested_at IS NOT NULL FROM t")
        assert rows == [("t/a.csv", run.run_id, True)]
        assert column_types(lake, "t")["_ingested_at"] == "timestamp[us, tz=UTC]"

    def test_a_column_named_like_lineage_fails_the_file_instead_of_losing_its_values(self, make):
        """A landed file's own `_source_file` (an export of another lake's table) was overwritten by the lineage
        column, or dropped with `lineage: false`, without a word; its rename keeps it."""
        lake = make(
            wf("t"), wf("n", lineage=False, on_change="append"), wf("r", transform=[{"rename": {"_run_id": "run_id"}}])
        )
        for name in ("t", "n"):
            lake.land(f"{name}/a.csv", "id,_source_file\n1,upstream.csv\n")
        lake.land("r/a.csv", "id,_run_id\n1,abc\n")
        lake.land("t/b.csv", "id,_source_file,_ingested_at,_run_id\n1,a.csv,2026-01-01,x\n")  # another lake's table
        lake.process()
        assert (  # every one named at once (the first alone before: renaming it failed on the next)
            "columns `_source_file`, `_ingested_at`, `_run_id` have the names of lineage columns landfall adds to "
            "every row, so their values would be lost; rename them in a transform step (`- rename: {_source_file: "
            "source_file, _ingested_at: ingested_at, _run_id: run_id}`) or drop them (`- drop: [_source_file, "
            "_ingested_at, _run_id]`)"
        ) in error_of(lake, "t/b.csv")
        for name in ("t", "n"):
            assert only_run(lake, f"{name}/a.csv").status == "dead"
            assert "column `_source_file` has the name of a lineage column landfall adds to every row, so its " in (
                error_of(lake, f"{name}/a.csv")
            )
        assert lake.rows("SELECT id, run_id, _source_file FROM r") == [(1, "abc", "r/a.csv")]

    # --- quality -----------------------------------------------------------------------------------------------

    RULES: ClassVar[list[dict[str, Any]]] = [
        {"not_null": ["id"], "action": "quarantine"},
        {"range": {"column": "price", "min": 0, "max": 100}, "action": "quarantine"},
        {"regex": {"column": "email", "pattern": "^[^@]+@[^@]+$"}, "action": "quarantine"},
        {"accepted_values": {"column": "kind", "values": ["a", "b"]}, "action": "warn"},
        {"expect": "qty BETWEEN 1 AND 10", "action": "quarantine"},
        {"unique": ["id"], "action": "quarantine", "name": "one_per_id"},
        {"row_count": {"min": 1}, "action": "fail"},
    ]

    def test_rules_quarantine_rows_with_their_file_line_and_reason(self, make):
        lake = make(wf("t", read={"types": {"id": "string"}}, validate=self.RULES, retry={"max_attempts": 1}))
        lake.land(
            "t/a.csv",
            "id,price,email,kind,qty\n"
            "o1,10,a@x.io,a,1\n"  # line 2: good
            ",5,b@x.io,b,1\n"  # line 3: null id
            "o3,-1,c@x.io,a,1\n"  # line 4: price out of range
            '"o4",3,"not an\nemail",a,1\n'  # lines 5-6: one record, bad email
            "o6,3,f@x.io,z,1\n"  # line 7: kind not accepted: warned, written
            "o7,3,g@x.io,a,50\n"  # line 8: qty
            "o6,4,h@x.io,a,2\n",  # line 9: second o6 (7 records)
        )
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id FROM t ORDER BY id") == [("o1",)]
        got = lake.rows("SELECT _source_file, _line, _rule, _column, _reason, id FROM quarantine.t ORDER BY _line")
        assert got == [
            ("t/a.csv", 3, "not_null(id)", "id", "missing value (null)", None),
            ("t/a.csv", 4, "range(price)", "price", "out of range >= 0 and <= 100", "o3"),
            ("t/a.csv", 5, "regex(email)", "email", "does not match ^[^@]+@[^@]+$", "o4"),
            ("t/a.csv", 7, "one_per_id", "id", "duplicate key", "o6"),
            ("t/a.csv", 8, "expect(qty BETWEEN 1 AND 10)", "", "expected qty BETWEEN 1 AND 10", "o7"),
            ("t/a.csv", 9, "one_per_id", "id", "duplicate key", "o6"),
        ]
        run = only_run(lake, "t/a.csv")
        assert (run.rows_in, run.rows_out, run.rows_quarantined) == (7, 1, 6)
        assert run.quality["accepted_values(kind)"] == {"action": "warn", "violations": 1}
        assert run.quality["one_per_id"] == {"action": "quarantine", "violations": 2}

    def test_a_range_rule_on_a_text_column_judges_its_numbers_and_sets_aside_a_value_that_is_none(self, make):
        """A column a stray word made text (`abc` among amounts) is judged as numbers: `-3` is out of range and
        `abc`, no number, is in no range; both are set aside, the rest loads as written. (It failed the file:
        `Cannot compare values of type VARCHAR and type DECIMAL(2,1)`.)"""
        rules = [{"range": {"column": "amount", "min": 1, "max": 10}, "action": "quarantine"}]
        lake = make(wf("t", validate=rules, retry={"max_attempts": 1}))
        lake.land("t/a.csv", "id,amount\n1,5\n2,-3\n3,abc\n4,2.5\n5,\n6,1e1\n7,11\n")
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, amount FROM t ORDER BY id") == [(1, "5"), (4, "2.5"), (5, None), (6, "1e1")]
        got = lake.rows("SELECT _line, amount, _reason FROM quarantine.t ORDER BY _line")
        assert got == [
            (3, "-3", "out of range >= 1 and <= 10"),
            (4, "abc", "out of range >= 1 and <= 10"),
            (8, "11", "out of range >= 1 and <= 10"),
        ]

    def test_a_rule_that_cannot_judge_a_text_column_names_the_rule_the_column_and_a_value(self, make):
        """An `expect` comparing a column a stray word made text with a number: the file fails at once (another
        read gives the same column) naming the rule, its SQL, the text column and one of its values that is not
        a number, and what reads it (it said `workflow `t` rules: Cannot compare values of type VARCHAR ...`)."""
        rules = [{"expect": "amount > 0", "name": "positive", "action": "quarantine"}]
        lake = make(wf("t", validate=rules))
        lake.land("t/a.csv", "id,amount\n1,5\n2,abc\n")
        lake.process()
        run = only_run(lake, "t/a.csv")
        assert (run.status, run.attempt) == ("dead", 1), run
        error = error_of(lake, "t/a.csv")
        assert error.startswith("`t/a.csv`: workflow `t` rule `positive` (`amount > 0`): "), error
        assert error.endswith(
            '`amount` is text here (`abc`): if `abc` means no value, `read: {null_values: ["abc"]}`; else cast it in '
            "a `transform` step (`cast: {amount: double}`) or declare its type (`read: {types: {amount: double}}`)"
        ), error

    def test_lines_count_skipped_rows_and_rows_set_aside(self, make):
        rules = [{"not_null": ["v"], "action": "quarantine"}]
        read = {"skip_rows": 1, "bad_rows": "quarantine", "delimiter": ","}
        lake = make(wf("t", read=read, validate=rules), wf("j", validate=rules), wf("d", validate=rules))
        lake.land("t/a.csv", "# exported\nid,v\n1,a\n2,b,c\n3,\n4,d\n")
        lake.land("j/a.jsonl", '{"id": 1, "v": "a"}\n\n{"id": 2}\n{"id": 3, "v": "c"}\n')
        # a JSON document: the line each record starts on, not its number (the third record starts on line 6)
        lake.land("d/a.json", '[\n  {"id": 1, "v": "a"},\n  {"id": 2,\n   "v": "b"},\n\n  {\n    "id": 3\n  }\n]\n')
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT _line, _rule FROM quarantine.t ORDER BY _line") == [(4, "parse"), (5, "not_null(v)")]
        assert lake.rows("SELECT _line, id FROM quarantine.j") == [(3, 2)]
        assert lake.rows("SELECT _line, id FROM quarantine.d") == [(6, 3)]

    def test_a_fail_rule_fails_the_file_naming_rule_count_and_line(self, make):
        rules = [{"unique": ["id"], "action": "fail"}]
        lake = make(wf("t", validate=rules, retry={"max_attempts": 1}))
        lake.land("t/a.csv", "id\n1\n2\n1\n")
        lake.land("t/b.csv", "id\n5\n")
        lake.process()
        assert error_of(lake, "t/a.csv") == "`t/a.csv` line 2: rule `unique(id)` failed for 2 of 3 rows (action: fail)"
        assert lake.rows("SELECT id FROM t") == [(5,)]

    def test_row_count_and_unique_against_the_table(self, make):
        rules = [{"row_count": {"max": 2}, "action": "fail"}, {"unique": {"columns": ["id"], "against_table": True}}]
        lake = make(wf("t", validate=rules, retry={"max_attempts": 1}), workers=1)
        lake.land("t/a.csv", "id\n1\n2\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("t/b.csv", "id\n3\n4\n5\n", mtime=1_700_000_001)
        lake.land("t/c.csv", "id\n2\n", mtime=1_700_000_002)
        lake.process()
        assert error_of(lake, "t/b.csv") == "`t/b.csv`: rule `row_count` failed: 3 rows, expected at most 2"
        assert "rule `unique(id)` failed for 1 of 1 rows" in error_of(lake, "t/c.csv")
        # a changed file's rows are not duplicates of its own earlier rows, which they replace
        lake.land("t/a.csv", "id\n1\n6\n", mtime=1_700_000_003)
        lake.process()
        assert (only_run(lake, "t/a.csv").status, only_run(lake, "t/a.csv").rows_out) == ("succeeded", 2)
        assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (6,)]

    def test_unique_against_the_table_writes_a_row_with_no_key_and_names_a_key_that_does_not_fit(self, make):
        """A NULL key passes `unique` (before, against the table: `NULL IN (...)` is NULL, and the row was neither
        written nor set aside: lost, the run saying 3 rows in, 1 out, 1 quarantined). A key a stray word made text
        is compared as the table holds it (before: `Cannot compare values of type VARCHAR and BIGINT`)."""
        rules = [{"unique": {"columns": ["id"], "against_table": True}, "action": "quarantine"}]
        lake = make(wf("t", validate=rules, retry={"max_attempts": 1}), workers=1)
        lake.land("t/a.csv", "id,n\n1,10\n2,20\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("t/b.csv", "id,n\n3,30\n,40\n1,50\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, n FROM t ORDER BY n") == [(1, 10), (2, 20), (3, 30), (None, 40)]
        assert lake.rows("SELECT id, n FROM quarantine.t") == [(1, 50)]
        assert (only_run(lake, "t/b.csv").rows_in, only_run(lake, "t/b.csv").rows_out) == (3, 2)
        lake.land("t/c.csv", "id,n\n4,60\n2,70\nB,80\n", mtime=1_700_000_002)
        lake.process()
        assert error_of(lake, "t/c.csv") == "`t/c.csv` line 4: value `B` of column `id` is not a valid BIGINT"
        assert lake.rows("SELECT count(*) FROM t") == [(4,)]


def _merge_tables(make: Any, merge: dict[str, Any]) -> Any:
    """A lake of two merge tables written as `merge` says: `m` (Parquet) from `m/`, `d` (Delta) from `d/`."""
    write = {"mode": "merge", **merge}
    return make(
        wf("m", write={"table": "m", **write}), wf("d", write={"table": "d", "format": "delta", **write}), workers=1
    )
