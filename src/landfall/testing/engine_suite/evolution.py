"""The engine conformance suite: schema evolution (`schema.evolution`: evolve, rescue, freeze, discard_row), from
columns and types to struct fields, names in other case and values of mixed kinds."""

from __future__ import annotations

import json
import re
from typing import Any

import deltalake
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from landfall.testing.engine_suite.base import EngineFixtures, assert_ok, column_types, error_of, only_run
from landfall.testing.lake import Lake, wf


class EvolutionTests(EngineFixtures):
    """A file's columns against its table's, under each evolution policy."""

    def _two_files(self, make, evolution: str, hints: dict[str, str] | None = None, *, together: bool = False) -> Lake:
        """`e/1.csv`, then `e/2.csv` (another column, a text value in a number column); `together`: both land
        before the table exists, and are taken in one batch."""
        schema = {"evolution": evolution, **({"hints": hints} if hints else {})}
        lake = make(wf("e", read={"format": "csv"}, schema=schema, retry={"max_attempts": 1}), workers=1)
        lake.land("e/1.csv", "id,amount\n1,10\n2,20\n", mtime=1_700_000_000)
        if not together:
            assert_ok(lake, lake.process())
        lake.land("e/2.csv", "id,amount,extra\n3,abc,x\n4,40,\n", mtime=1_700_000_001)
        lake.process()
        return lake

    def test_evolve_adds_columns_and_widens_types(self, make):
        lake = make(wf("e"), workers=1)
        lake.land("e/1.csv", "id,amount\n1,10\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("e/2.csv", "id,amount,extra\n2,2.5,x\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, amount, extra FROM e ORDER BY id") == [(1, 10.0, None), (2, 2.5, "x")]
        assert len(lake.pipeline.store.schema_versions("e")) == 2

    def test_freeze_fails_a_differing_file_listing_every_difference(self, make):
        lake = self._two_files(make, "freeze")
        err = error_of(lake, "e/2.csv")
        assert err.startswith("`e/2.csv`: the schema differs from table `e` (schema evolution: freeze): ")
        assert "new column `extra`" in err and "column `amount` is " in err
        assert lake.rows("SELECT count(*) FROM e") == [(2,)]

    def test_freeze_fails_a_file_lacking_a_column_whatever_lands_beside_it(self, make):
        """A file lacking a table's column fails under `freeze` when it lands alone; landed beside a file that has
        the column, the two were read as one batch, whose columns were the table's, and it loaded (NULL there)."""
        lake = make(wf("f", retry={"max_attempts": 1}, schema={"evolution": "freeze"}, batch=True), workers=1)
        lake.land("f/1.csv", "id,note\n1,a\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("f/2.csv", "id,note\n2,b\n", mtime=1_700_000_001)
        lake.land("f/3.csv", "id\n3\n", mtime=1_700_000_002)
        lake.process()
        assert "column `note` (VARCHAR) is missing" in (error_of(lake, "f/3.csv") or ""), error_of(lake, "f/3.csv")
        assert lake.rows("SELECT id FROM f ORDER BY id") == [(1,), (2,)]

    @pytest.mark.parametrize("evolution", ["evolve", "rescue"])
    def test_json_values_of_mixed_kinds_into_a_text_column_are_their_text(self, make, evolution):
        """A column (or a struct's field) holding strings and numbers in one file is JSON to DuckDB's detection;
        into a table's text column each value is its text: `x`, `5`, `[1]` (before, DuckDB's cast of a JSON string
        kept its quotes: `"x"` was stored)."""
        lake = make(wf("e", read={"format": "jsonl"}, schema={"evolution": evolution}), workers=1)
        lake.land("e/1.jsonl", json.dumps({"id": 1, "v": "a", "c": {"t": "gold"}}) + "\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        recs = [
            {"id": 2, "v": "x", "c": {"t": "x"}},
            {"id": 3, "v": 5, "c": {"t": "y"}},
            {"id": 4, "v": [1], "c": {"t": 5}},
        ]
        lake.land("e/2.jsonl", "".join(json.dumps(r) + "\n" for r in recs), mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, v, c.t FROM e ORDER BY id") == [
            (1, "a", "gold"),
            (2, "x", "x"),
            (3, "5", "y"),
            (4, "[1]", "5"),
        ]

    def test_the_cast_step_makes_json_values_of_mixed_kinds_their_text(self, make):
        """`cast: {v: string}` on a column of strings and numbers (JSON to DuckDB's detection): each value's text,
        as on Spark (before, the DuckDB engine kept a JSON string's quotes: `"x"`)."""
        lake = make(wf("e", read={"format": "jsonl"}, transform=[{"cast": {"v": "string"}}]))
        lake.land("e/1.jsonl", "".join(json.dumps({"id": i, "v": v}) + "\n" for i, v in enumerate(["x", 5, [1], None])))
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, v FROM e ORDER BY id") == [(0, "x"), (1, "5"), (2, "[1]"), (3, None)]

    def test_a_struct_or_list_into_a_text_column_is_its_json(self, make):
        """A struct or a list landed into a text column (under `evolve`), or cast to text (`cast:`), is its JSON,
        on both engines (before: DuckDB's rendering `{'t': x}` on one, Spark's `{x}` on the other: key names
        lost)."""
        lake = make(
            wf("e", read={"format": "jsonl"}, transform=[{"cast": {"c": "string"}}], write={"table": "e"}), workers=1
        )
        recs = [{"id": 0, "s": "plain", "c": None}, {"id": 1, "s": {"t": "x", "n": 1}, "c": [{"u": True}]}]
        for i, rec in enumerate(recs):
            lake.land(f"e/{i}.jsonl", json.dumps(rec) + "\n", mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        rows = lake.rows("SELECT id, s, c FROM e ORDER BY id")
        assert rows[0] == (0, "plain", None)
        assert (json.loads(rows[1][1]), json.loads(rows[1][2])) == ({"t": "x", "n": 1}, [{"u": True}]), rows

    def test_freeze_takes_nulls_in_columns_and_struct_fields_as_no_difference(self, make):
        """A JSON `null` has no type: a file whose column, or a struct's field, holds only nulls does not differ
        from its table, even under `freeze` (before: `column `v` is "NULL", the table has VARCHAR`)."""
        lake = make(wf("e", read={"format": "jsonl"}, schema={"evolution": "freeze"}), workers=1)
        lake.land("e/1.jsonl", json.dumps({"id": 1, "v": "x", "c": {"t": "gold", "n": 5}}) + "\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land(
            "e/2.jsonl", json.dumps({"id": None, "v": None, "c": {"t": None, "n": None}}) + "\n", mtime=1_700_000_001
        )
        lake.land("e/3.jsonl", json.dumps({"id": 3, "v": "y", "c": None}) + "\n", mtime=1_700_000_002)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, v, c FROM e ORDER BY id NULLS LAST") == [
            (1, "x", {"t": "gold", "n": 5}),
            (3, "y", None),
            (None, None, {"t": None, "n": None}),
        ]
        lake.land("e/4.jsonl", json.dumps({"id": 4, "v": "z", "c": {"t": "a", "u": 1}}) + "\n", mtime=1_700_000_003)
        lake.process()
        assert "column `c` is STRUCT(" in error_of(lake, "e/4.jsonl")

    def test_files_that_make_a_table_together_are_held_to_the_first_as_one_by_one(self, make):
        """Two files landed together before the table exists: the first makes the table, the second is held to
        it (before, the batch merged both files' columns, and `freeze` froze the merge)."""
        lake = self._two_files(make, "freeze", together=True)
        err = error_of(lake, "e/2.csv")
        assert err.startswith("`e/2.csv`: the schema differs from table `e` (schema evolution: freeze): "), err
        assert lake.rows("SELECT count(*) FROM e") == [(2,)]
        assert set(column_types(lake, "e")) == {"id", "amount", "_source_file", "_ingested_at", "_run_id"}

    @pytest.mark.parametrize("together", [False, True], ids=["one_by_one", "together"])
    def test_under_evolve_files_that_make_a_table_together_load_as_one_by_one(self, make, together):
        """`evolve` too: the first file's `amount` is a number, so the second's text `abc` does not fit it, landed
        later or together (before, a batch making the table read `amount` as text and loaded both files)."""
        lake = self._two_files(make, "evolve", together=together)
        assert "value `abc` of column `amount` is not a valid BIGINT" in error_of(lake, "e/2.csv")
        assert lake.rows("SELECT id, amount FROM e ORDER BY id") == [(1, 10), (2, 20)]
        assert column_types(lake, "e")["amount"] == "int64"

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_evolve_fits_nested_fields_by_name(self, make, fmt):
        """Under `evolve`, a struct's fields (in lists too) evolve as columns do: a field a file lacks, or whose
        values are all null, is NULL in its rows; a new field is added (earlier rows NULL); a number or a bool
        in a text field is its text; a field's type widens (before: each of these failed its file, `column `c`
        is STRUCT("t" "NULL") in this file but STRUCT("t" VARCHAR) in the table`)."""
        lake = make(wf("e", read={"format": "jsonl"}, write={"table": "e", "format": fmt}), workers=1)
        files = [
            {"id": 1, "c": {"t": "gold", "n": 1}, "l": [{"x": 1}]},
            {"id": 2, "c": {"t": None, "n": 2}, "l": []},  # a null-typed field, an empty list
            {"id": 3, "c": {"t": 7}, "l": None},  # a number in a text field; `n` missing
            {"id": 4, "c": {"t": True, "n": 4, "u": "new"}, "l": [{"x": 2.5, "y": "q"}]},  # new fields, 1 -> 2.5
            {"id": 5, "c": None, "l": [{"x": 3}]},
        ]
        for i, rec in enumerate(files):
            lake.land(f"e/{i}.jsonl", json.dumps(rec) + "\n", mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        want = [
            (1, {"t": "gold", "n": 1, "u": None}, [{"x": 1.0, "y": None}]),
            (2, {"t": None, "n": 2, "u": None}, []),
            (3, {"t": "7", "n": None, "u": None}, None),
            (4, {"t": "true", "n": 4, "u": "new"}, [{"x": 2.5, "y": "q"}]),
            (5, None, [{"x": 3.0, "y": None}]),
        ]
        assert lake.rows("SELECT id, c, l FROM e ORDER BY id") == want
        if fmt == "delta":  # every file in the log's one schema: read by deltalake as by landfall
            got = deltalake.DeltaTable(lake.pipeline.table("e").location).to_pyarrow_table().sort_by("id")
            assert [(r["id"], r["c"], r["l"]) for r in got.select(["id", "c", "l"]).to_pylist()] == want
        # a field whose values fit neither way still fails its file, naming it
        lake.land("e/9.jsonl", json.dumps({"id": 9, "c": {"t": "x", "n": "many"}}) + "\n", mtime=1_700_000_009)
        lake.process()
        assert "column `c` is STRUCT(" in error_of(lake, "e/9.jsonl")

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_a_column_named_in_other_case_is_the_tables_column(self, make, fmt):
        """SQL names ignore case: a file whose header says `ID,Amount` loads into a table of `id, amount`, under
        the table's names, also under `freeze` (before: a Parquet table gained `ID` and `Amount` beside `id` and
        `amount`, read back as `ID_1`; a Delta table's commit failed, `Duplicate field name (case-insensitive)`)."""
        lake = make(wf("e", write={"table": "e", "format": fmt}, schema={"evolution": "freeze"}), workers=1)
        for i, text in enumerate(["id,amount\n1,10\n", "ID,Amount\n2,20\n", "Amount,iD\n30,3\n"]):
            lake.land(f"e/{i}.csv", text, mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, amount FROM e ORDER BY id") == [(1, 10), (2, 20), (3, 30)]
        assert [n for n, _ in lake.pipeline.table("e").schema if not n.startswith("_")] == ["id", "amount"]
        files = sorted(f.path for f in lake.pipeline.store.table_files("e"))
        names = {tuple(pq.read_schema(f"{lake.pipeline.table('e').location}/{p}").names[:2]) for p in files}
        assert names <= {("id", "amount"), ("amount", "id")}, names
        if fmt == "delta":
            got = deltalake.DeltaTable(lake.pipeline.table("e").location).to_pyarrow_table().sort_by("id")
            assert got.select(["id", "amount"]).to_pylist() == [{"id": i, "amount": 10 * i} for i in (1, 2, 3)]

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_a_struct_field_named_in_other_case_is_the_tables_field(self, make, fmt):
        """A struct's field named as the table's in other case (`T` for `t`), in a list too, is the table's field
        (before: the file failed, `Binder Error: Duplicate type parameter T for type "STRUCT"`)."""
        lake = make(wf("e", read={"format": "jsonl"}, write={"table": "e", "format": fmt}), workers=1)
        recs = [
            {"id": 1, "c": {"t": "x", "n": 1}, "l": [{"v": 1}]},
            {"id": 2, "c": {"T": "y", "N": 2}, "l": [{"V": 2}]},
        ]
        for i, rec in enumerate(recs):
            lake.land(f"e/{i}.jsonl", json.dumps(rec) + "\n", mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        want = [(1, {"t": "x", "n": 1}, [{"v": 1}]), (2, {"t": "y", "n": 2}, [{"v": 2}])]
        assert lake.rows("SELECT id, c, l FROM e ORDER BY id") == want
        if fmt == "delta":
            got = deltalake.DeltaTable(lake.pipeline.table("e").location).to_pyarrow_table().sort_by("id")
            assert [(r["id"], r["c"], r["l"]) for r in got.select(["id", "c", "l"]).to_pylist()] == want

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_evolve_types_a_column_that_held_only_nulls_by_its_first_values(self, make, fmt):
        """A table made from a file whose column held only nulls (JSON `null`: no type yet) takes the first values
        a later file brings, a number or a struct, in a new schema version (before: every later file with a value
        there was dead, `column `v` is BIGINT in this file but "NULL" in the table`)."""
        lake = make(wf("e", read={"format": "jsonl"}, write={"table": "e", "format": fmt}), workers=1)
        files = [{"id": 1, "v": None, "s": None}, {"id": 2, "v": 5, "s": {"t": "x"}}, {"id": 3, "v": 7, "s": None}]
        for i, rec in enumerate(files):
            lake.land(f"e/{i}.jsonl", json.dumps(rec) + "\n", mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        want = [(1, None, None), (2, 5, {"t": "x"}), (3, 7, None)]
        assert lake.rows("SELECT id, v, s FROM e ORDER BY id") == want
        types = dict(lake.pipeline.table("e").schema)
        assert (types["v"], types["s"]) == ("int64", "struct<t: string>"), types
        if fmt == "delta":
            got = deltalake.DeltaTable(lake.pipeline.table("e").location).to_pyarrow_table().sort_by("id")
            assert [(r["id"], r["v"], r["s"]) for r in got.select(["id", "v", "s"]).to_pylist()] == want

    @pytest.mark.parametrize("evolution", ["freeze", "rescue", "discard_row"])
    def test_every_policy_types_a_column_that_held_only_nulls_by_its_first_values(self, make, evolution):
        """The same under `freeze`, `rescue` and `discard_row`: a column with no type yet is no difference, nor is a
        file lacking it. Before, `freeze` failed the file (``column `t` is VARCHAR, the table has "NULL"; column
        `e` ("NULL") is missing``), `rescue` put every value of it into `_rescued_data`, and `discard_row` set
        every row holding one aside."""
        lake = make(wf("e", read={"format": "jsonl"}, schema={"evolution": evolution}), workers=1)
        lake.land("e/1.jsonl", json.dumps({"id": 1, "t": None, "n": None}) + "\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("e/2.jsonl", json.dumps({"id": 2, "t": "a"}) + "\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT * EXCLUDE (_source_file, _ingested_at, _run_id) FROM e ORDER BY id")
        assert got == [(1, None, None), (2, "a", None)]
        assert dict(lake.pipeline.table("e").schema)["t"] == "string"
        lake.land("e/3.jsonl", json.dumps({"id": 3, "t": 5}) + "\n", mtime=1_700_000_002)
        lake.process()  # once typed, the column is held to its type as any other
        if evolution == "freeze":
            assert "column `t` is BIGINT" in (error_of(lake, "e/3.jsonl") or ""), error_of(lake, "e/3.jsonl")

    def test_a_column_that_held_only_nulls_in_a_partitioned_table_takes_later_values(self, make):
        """The same in a table partitioned by a column: its files, in partition folders, hold the column of no type
        yet and no partition column."""
        write = {"table": "e", "partition_by": ["region"]}
        lake = make(wf("e", read={"format": "jsonl"}, write=write), workers=1)
        first = [{"id": 1, "region": "eu", "v": None}, {"id": 2, "region": "us", "v": None}]
        lake.land("e/0.jsonl", "".join(json.dumps(r) + "\n" for r in first), mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("e/1.jsonl", json.dumps({"id": 3, "region": "eu", "v": 5}) + "\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, region, v FROM e ORDER BY id") == [(1, "eu", None), (2, "us", None), (3, "eu", 5)]
        assert dict(lake.pipeline.table("e").schema)["v"] == "int64"
        files = lake.pipeline.store.table_files("e")
        location = lake.pipeline.table("e").location
        assert all("region" not in pq.read_schema(f"{location}/{f.path}").names for f in files)

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_evolve_fits_empty_objects_to_the_tables_struct(self, make, fmt):
        """A file whose objects in a struct column are all empty (`{}`, which DuckDB types as a map) loads, its
        rows' fields NULL, as when some objects hold keys (before: dead, `column `c` is MAP(VARCHAR, JSON) in this
        file but STRUCT("t" VARCHAR, "n" BIGINT) in the table`)."""
        lake = make(wf("e", read={"format": "jsonl"}, write={"table": "e", "format": fmt}), workers=1)
        files = [
            [{"id": 0, "c": {"t": "x", "n": 1}, "l": [{"x": 1}]}],
            [{"id": 1, "c": {}, "l": [{}]}, {"id": 2, "c": None, "l": []}],
        ]
        for i, recs in enumerate(files):
            lake.land(f"e/{i}.jsonl", "".join(json.dumps(r) + "\n" for r in recs), mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        want = [
            (0, {"t": "x", "n": 1}, [{"x": 1}]),
            (1, {"t": None, "n": None}, [{"x": None}]),
            (2, None, []),
        ]
        assert lake.rows("SELECT id, c, l FROM e ORDER BY id") == want
        if fmt == "delta":
            got = deltalake.DeltaTable(lake.pipeline.table("e").location).to_pyarrow_table().sort_by("id")
            assert [(r["id"], r["c"], r["l"]) for r in got.select(["id", "c", "l"]).to_pylist()] == want
        # objects of so many keys that DuckDB types them as a map: a key the struct has no field for fails the file
        many = {"id": 3, "c": {f"k{i}": i for i in range(210)}}
        lake.land("e/3.jsonl", json.dumps(many) + "\n", mtime=1_700_000_003)
        lake.process()
        err = error_of(lake, "e/3.jsonl")
        assert (
            "a value of column `c` holds key `k0`, `k1`, `k2` (and 207 more), which the table's struct has no "
            "field for (fields: t, n)" in err
        ), err
        assert lake.rows("SELECT count(*) FROM e") == [(3,)]

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_evolve_fits_objects_into_the_tables_map_column(self, make, fmt):
        """A table whose first objects in a column were all empty (`{}`) or had more than 200 keys holds that
        column as a map (DuckDB's type for them); later objects with keys load into it, field by field as keys,
        each value as the map's type holds it (JSON: `1`, `"x"`, `{"t":true}`; text: `x`, a struct its JSON), a
        null field no key (before: dead, `column `c` is STRUCT("a" BIGINT, ...) in this file but MAP(VARCHAR,
        JSON) in the table`)."""
        lake = make(wf("e", read={"format": "jsonl"}, write={"table": "e", "format": fmt}), workers=1)
        files = [
            [{"id": 0, "c": {}, "m": {f"k{i}": i for i in range(210)}}, {"id": 1, "c": {}, "m": None}],
            [{"id": 2, "c": {"a": 1, "b": "x", "s": {"t": True}}, "m": {"k1": 5}}, {"id": 3, "c": {"a": 2}}],
            [{"id": 4, "c": None, "m": {}}],
        ]
        for i, recs in enumerate(files):
            lake.land(f"e/{i}.jsonl", "".join(json.dumps(r) + "\n" for r in recs), mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        types = dict(lake.pipeline.table("e").schema)
        assert types["c"].startswith("map<string, ") and types["m"] == "map<string, int64>", types
        as_json = "json" in types["c"]  # Spark holds JSON as text
        held = {"a": "1", "b": '"x"' if as_json else "x", "s": '{"t":true}'}
        want = [(0, {}, 210, 1), (1, {}, None, None), (2, held, 1, 5), (3, {"a": "2"}, None, None)]
        want.append((4, None, 0, None))
        got = lake.rows("SELECT id, c, cardinality(m), m['k1'] FROM e ORDER BY id")
        assert [(i, None if c is None else dict(c), n, k1) for i, c, n, k1 in got] == want
        if fmt == "delta":
            got = deltalake.DeltaTable(lake.pipeline.table("e").location).to_pyarrow_table().sort_by("id")
            assert [None if r["c"] is None else dict(r["c"]) for r in got.select(["c"]).to_pylist()][2] == held
        # a value the map's type cannot hold fails the file, naming the column
        lake.land("e/5.jsonl", json.dumps({"id": 5, "m": {"k1": "x"}}) + "\n", mtime=1_700_000_005)
        lake.process()
        assert "column `m`" in error_of(lake, "e/5.jsonl")
        assert lake.rows("SELECT count(*) FROM e") == [(5,)]

    def test_evolve_fits_values_into_a_struct_field_of_mixed_kinds(self, make):
        """A struct field whose first values were of several kinds (JSON to the reader) takes a later file's text,
        numbers and objects, each as its JSON (before: dead, `Could not convert string 'x' to JSON`)."""
        lake = make(wf("e", read={"format": "jsonl"}, write={"table": "e"}), workers=1)
        files = [[{"id": 1, "s": {"v": 1}}, {"id": 2, "s": {"v": "a"}}], [{"id": 3, "s": {"v": "x"}}]]
        files.append([{"id": 4, "s": {"v": {"t": True}}}, {"id": 5, "s": {"v": 2.5}}])
        for i, recs in enumerate(files):
            lake.land(f"e/{i}.jsonl", "".join(json.dumps(r) + "\n" for r in recs), mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        as_json = "json" in dict(lake.pipeline.table("e").schema)["s"]  # Spark holds JSON as text
        texts = [r[0] for r in lake.rows("SELECT s.v FROM e ORDER BY id")]
        assert texts == ["1", '"a"', '"x"', '{"t":true}', "2.5"] if as_json else ["1", "a", "x", '{"t":true}', "2.5"]

    def test_values_of_several_kinds_into_a_struct_column_fail_naming_the_line(self, make):
        """A file whose column holds objects and other values (JSON to the reader) into a struct column: a value
        that is no object, an object with a key the struct has no field for, or a field value its type cannot hold
        fails the file, naming the line (before: `[1,2]` and `"s"` loaded as a struct of NULLs, a key and `abc` in
        a number field were dropped, all without a word)."""
        lake = make(wf("e", read={"format": "jsonl"}, write={"table": "e"}, retry={"max_attempts": 1}), workers=1)
        lake.land("e/0.jsonl", json.dumps({"id": 0, "c": {"t": "x", "n": 1}}) + "\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        bad = [({"t": "ok"}, [1, 2]), ({"t": "ok"}, "s"), ({"t": "y", "z": 1}, 5), ({"t": "y", "n": "abc"}, 5)]
        for i, values in enumerate(bad, 1):
            recs = [{"id": 10 * i + k, "c": v} for k, v in enumerate(values)]
            lake.land(f"e/{i}.jsonl", "".join(json.dumps(r) + "\n" for r in recs), mtime=1_700_000_000 + i)
            lake.process()
            err = error_of(lake, f"e/{i}.jsonl")
            assert re.search(rf"`e/{i}.jsonl` line [12]: ", err) and "column `c`" in err, err
        assert lake.rows("SELECT id, c FROM e") == [(0, {"t": "x", "n": 1})]

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_evolve_widens_integers_and_decimals_to_a_decimal_that_holds_both(self, make, fmt, tmp_path):
        """Under `evolve`, a decimal into an integer column (or the other way round, or a decimal of other digits)
        widens the column to a decimal with room for both, at the top level and in a struct (before: the table
        kept int64 and `12.50` read back as `13`)."""
        from decimal import Decimal as D

        lake = make(wf("e", read={"format": "parquet"}, write={"table": "e", "format": fmt}), workers=1)
        dec = pa.decimal128

        def struct(typ: pa.DataType, v: Any) -> pa.Array:
            return pa.array([{"v": v}], pa.struct([pa.field("v", typ)]))

        files = [
            {"a": pa.array([1234567890123], pa.int64()), "s": struct(pa.int32(), 5)},
            {"a": pa.array([D("12.50")], dec(10, 2)), "s": struct(dec(6, 3), D("1.125"))},
            {"a": pa.array([7], pa.int64()), "s": struct(pa.int32(), 6)},
            {"a": pa.array([D("1.125")], dec(4, 3)), "s": struct(pa.int64(), 7)},
        ]
        for i, cols in enumerate(files):
            pq.write_table(pa.table({"id": pa.array([i], pa.int64()), **cols}), tmp_path / f"{i}.parquet")
            lake.land(f"e/{i}.parquet", (tmp_path / f"{i}.parquet").read_bytes(), mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        want = [
            (0, D("1234567890123"), {"v": D(5)}),
            (1, D("12.5"), {"v": D("1.125")}),
            (2, D(7), {"v": D(6)}),
            (3, D("1.125"), {"v": D(7)}),
        ]
        assert lake.rows("SELECT id, a, s FROM e ORDER BY id") == want
        types = dict(lake.pipeline.table("e").schema)  # the catalog's
        assert types["a"] == "decimal128(22, 3)" and types["s"] == "struct<v: decimal128(22, 3)>", types
        if fmt == "delta":  # every file in the log's one schema: read by deltalake as by landfall
            got = deltalake.DeltaTable(lake.pipeline.table("e").location).to_pyarrow_table().sort_by("id")
            assert [(r["id"], r["a"], r["s"]) for r in got.select(["id", "a", "s"]).to_pylist()] == want

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_evolve_widens_a_decimal_column_to_double_for_doubles(self, make, fmt, tmp_path):
        """A decimal column (up to 15 digits) given doubles becomes double, as an integer column does; a decimal
        into a double column is its value (before: `column `a` is DOUBLE in this file but DECIMAL(10,2) in the
        table`, and the other way round)."""
        from decimal import Decimal as D

        lake = make(wf("e", read={"format": "parquet"}, write={"table": "e", "format": fmt}), workers=1)
        values = [
            pa.array([D("12.50")], pa.decimal128(10, 2)),
            pa.array([1.25]),
            pa.array([D("7.125")], pa.decimal128(12, 3)),
        ]
        for i, a in enumerate(values):
            pq.write_table(pa.table({"id": pa.array([i], pa.int64()), "a": a}), tmp_path / f"{i}.parquet")
            lake.land(f"e/{i}.parquet", (tmp_path / f"{i}.parquet").read_bytes(), mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, a FROM e ORDER BY id") == [(0, 12.5), (1, 1.25), (2, 7.125)]
        assert dict(lake.pipeline.table("e").schema)["a"] == "double"

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_a_column_no_file_holds_any_more_reads_as_null(self, make, fmt):
        """`c` came with `f.jsonl`, whose new version lacks it: its rows replaced, no file of the table held `c`
        any more, and every query of the table failed (`Column "c" referenced that exists in the SELECT clause -
        but this column cannot be referenced before it is defined`), as did a `sql` step joining it and a merge
        into a table in that state."""
        join = [{"sql": "SELECT i.id, t.c FROM input i LEFT JOIN t ON i.id = t.rid"}]
        lake = make(
            wf("t", read={"format": "jsonl"}, write={"table": "t", "format": fmt}),
            wf("m", read={"format": "jsonl"}, write={"table": "m", "format": fmt, "mode": "merge", "keys": ["rid"]}),
            wf("j", read={"format": "csv"}, transform=join),
            workers=1,
        )
        for table in ("t", "m"):
            lake.land(f"{table}/f.jsonl", '{"rid": 1, "c": true}\n', mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        for table in ("t", "m"):
            lake.land(f"{table}/f.jsonl", '{"rid": 2, "b": "x"}\n', mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT rid, b, c FROM t") == [(2, "x", None)]
        lake.land("m/g.jsonl", '{"rid": 2, "b": "y"}\n{"rid": 3, "c": false}\n', mtime=1_700_000_002)
        lake.land("j/a.csv", "id\n2\n", mtime=1_700_000_003)
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT rid, b, c FROM m ORDER BY rid") == [(2, "y", None), (3, None, False)]
        assert lake.rows("SELECT id, c FROM j") == [(2, None)]

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_an_overwritten_partition_is_one_value_however_its_widened_column_wrote_it(self, make, fmt):
        """`overwrite: partitions` by a column widened since its first files (dates, then timestamps; integers,
        then doubles): those files keep their folders (`p=2026-01-01`, `n=5`), where a file now writes
        `2026-01-01 00:00:00` and `5.0`. Compared as text, the partition a file brought was not replaced, and the
        rows it should have replaced stayed beside its own."""
        write = {"mode": "overwrite", "overwrite": "partitions", "format": fmt}
        lake = make(
            wf("d", read={"format": "csv"}, write={"table": "d", "partition_by": ["p"], **write}),
            wf("n", read={"format": "csv"}, write={"table": "n", "partition_by": ["n"], **write}),
            workers=1,
        )
        files = {
            "d": ["id,p\n1,2026-01-01\n", "id,p\n2,2026-01-02 10:00:00\n", "id,p\n3,2026-01-01\n"],
            "n": ["id,n\n1,5\n", "id,n\n2,5.5\n", "id,n\n3,5\n"],
        }
        for i in range(3):
            for table, texts in files.items():
                lake.land(f"{table}/{i}.csv", texts[i], mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        assert [(i, str(p)) for i, p in lake.rows("SELECT id, p FROM d ORDER BY id")] == [
            (2, "2026-01-02 10:00:00"),
            (3, "2026-01-01 00:00:00"),
        ]
        assert lake.rows("SELECT id, n FROM n ORDER BY id") == [(2, 5.5), (3, 5.0)]

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_evolve_widens_unsigned_integers(self, make, fmt, tmp_path):
        """Parquet's unsigned integers widen as signed ones do: `uint32` then `uint64` values, then negative
        `int16` ones, all load (before, on a Parquet table: dead, `column `u` is UBIGINT in this file but
        UINTEGER in the table`, then `SMALLINT ... UINTEGER`)."""
        lake = make(wf("e", read={"format": "parquet"}, write={"table": "e", "format": fmt}), workers=1)
        values = [pa.array([1], pa.uint32()), pa.array([2**40], pa.uint64()), pa.array([-3], pa.int16())]
        for i, u in enumerate(values):
            pq.write_table(pa.table({"id": pa.array([i], pa.int64()), "u": u}), tmp_path / f"{i}.parquet")
            lake.land(f"e/{i}.parquet", (tmp_path / f"{i}.parquet").read_bytes(), mtime=1_700_000_000 + i)
            assert_ok(lake, lake.process())
        assert lake.rows("SELECT id, u FROM e ORDER BY id") == [(0, 1), (1, 2**40), (2, -3)]
        assert dict(lake.pipeline.table("e").schema)["u"] == "decimal128(20, 0)"  # holds every uint64 and int64

    def test_a_parquet_value_that_does_not_fit_the_tables_type_names_its_row(self, make, tmp_path):
        """A Parquet file held to its table's types names the row (its position in the file) and the column of the
        first value that does not fit, as a text file names its line (before: DuckDB's own text, no row)."""
        lake = make(wf("e", read={"format": "parquet"}, retry={"max_attempts": 1}), workers=1)
        tables = {
            "1": pa.table({"id": pa.array([1, 2], pa.int64()), "x": pa.array([10, 20], pa.int64())}),
            # text after 2,000 numbers (four row groups)
            "2": pa.table(
                {"id": pa.array(range(3, 3003), pa.int64()), "x": [str(n) for n in range(2000)] + ["v0"] * 1000}
            ),
        }
        for i, (name, table) in enumerate(tables.items()):
            pq.write_table(table, tmp_path / f"{name}.parquet", row_group_size=500)
            lake.land(f"e/{name}.parquet", (tmp_path / f"{name}.parquet").read_bytes(), mtime=1_700_000_000 + i)
            lake.process()
        err = error_of(lake, "e/2.parquet")
        assert err == "`e/2.parquet` row 2001: value `v0` of column `x` is not a valid BIGINT", err
        assert lake.rows("SELECT id, x FROM e ORDER BY id") == [(1, 10), (2, 20)]

    def test_rescue_keeps_what_does_not_fit_in_rescued_data(self, make):
        lake = self._two_files(make, "rescue")
        rows = lake.rows("SELECT id, amount, _rescued_data FROM e ORDER BY id")
        assert rows[:2] == [(1, 10, None), (2, 20, None)] and rows[3] == (4, 40, None)
        assert rows[2][:2] == (3, None)
        assert json.loads(rows[2][2]) == {"amount": "abc", "extra": "x", "_file": "e/2.csv"}

    def test_rescued_data_holds_only_what_was_rescued(self, make):
        """A value that fit its column, or a NULL, is not in `_rescued_data`: it held `"amount": null` beside a
        rescued `extra`, and `"extra": null` beside a rescued `amount`, as if those had been rescued too."""
        lake = make(wf("e", read={"format": "csv"}, schema={"evolution": "rescue"}), workers=1)
        lake.land("e/1.csv", "id,amount\n1,10\n", mtime=1_700_000_000)
        assert_ok(lake, lake.process())
        lake.land("e/2.csv", "id,amount,extra\n3,abc,\n5,50,y\n6,60,\n", mtime=1_700_000_001)
        assert_ok(lake, lake.process())
        rows = {i: (a, r and json.loads(r)) for i, a, r in lake.rows("SELECT id, amount, _rescued_data FROM e")}
        assert rows == {
            1: (10, None),
            3: (None, {"amount": "abc", "_file": "e/2.csv"}),
            5: (50, {"extra": "y", "_file": "e/2.csv"}),
            6: (60, None),
        }

    def test_discard_row_quarantines_rows_that_do_not_fit(self, make):
        """... and the file's run counts both rows in, one out (before, on DuckDB: one in)."""
        lake = self._two_files(make, "discard_row")
        assert lake.rows("SELECT id, amount FROM e ORDER BY id") == [(1, 10), (2, 20), (4, 40)]
        rows = lake.rows("SELECT id, _line, _rule FROM quarantine.e")
        assert rows == [(3, 2, "schema")]
        run = only_run(lake, "e/2.csv")
        assert (run.rows_in, run.rows_out, run.rows_quarantined) == (2, 1, 1)

    def test_hints_declare_types(self, make):
        lake = make(wf("e", schema={"hints": {"amount": "double", "code": "string"}}))
        lake.land("e/1.csv", "id,amount,code\n1,10,007\n")
        assert_ok(lake, lake.process())
        types = column_types(lake, "e")
        assert (types["amount"], types["code"]) == ("double", "string")
        assert lake.rows("SELECT amount FROM e") == [(10.0,)]
