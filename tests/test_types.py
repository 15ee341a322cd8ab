"""Neutral column types: Arrow type strings, what user type names mean, DuckDB's types both ways, widening."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from landfall.engines.duckdb.types import SCALARS, _duck, arrow_type, duck_type, sql_type
from landfall.errors import SchemaConflict
from landfall.schema import align, merged, widened, widens_to
from landfall.types import USER_TYPES, column_json, neutral, parse_type, sql_name, type_name, user_type

ODD = [
    pa.list_(pa.field("element", pa.int32())),
    pa.large_list(pa.large_string()),
    pa.struct([("a: b", pa.int64()), ("c, d", pa.list_(pa.string())), ("e<f>", pa.bool_())]),
    pa.struct([pa.field("x", pa.struct([("y", pa.map_(pa.string(), pa.float64()))]), nullable=False)]),
    pa.list_(pa.int8(), 3),
    pa.timestamp("ms", tz="+00:00"),
    pa.timestamp("ns", tz="Europe/Oslo"),
    pa.decimal128(38, 9),
    pa.dictionary(pa.int16(), pa.string()),
    pa.uuid(),
    pa.json_(),
    pa.binary(16),
    pa.date64(),
    pa.time32("ms"),
    pa.duration("us"),
    pa.month_day_nano_interval(),
    pa.null(),
    pa.struct([]),
]


@pytest.mark.parametrize("t", ODD, ids=str)
def test_type_names_parse_back(t):
    name = type_name(t)
    assert type_name(parse_type(name)) == name


def test_type_names_are_canonical():
    assert type_name(pa.list_(pa.field("element", pa.int32()))) == "list<item: int32>"
    assert type_name(pa.large_string()) == "string"
    assert type_name(pa.dictionary(pa.int8(), pa.string())) == "string"
    assert type_name(pa.timestamp("us", tz="+00:00")) == "timestamp[us, tz=UTC]"
    assert parse_type("map<string, int32 ('m')>") == pa.map_(pa.string(), pa.int32())  # as pyarrow prints some maps


scalars = st.sampled_from([pa.int64(), pa.string(), pa.float64(), pa.bool_(), pa.date32(), pa.timestamp("us")])
names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8)
arrow_types = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(pa.list_, inner),
        st.builds(pa.map_, st.just(pa.string()), inner),
        st.lists(st.tuples(names, inner), min_size=1, max_size=3, unique_by=lambda f: f[0]).map(pa.struct),
    ),
    max_leaves=8,
)


@given(arrow_types)
def test_any_nested_type_parses_back(t):
    assert parse_type(type_name(t)) == t


def test_every_user_type_name_means_an_arrow_type_and_a_duckdb_type():
    for name in USER_TYPES:
        arrow = user_type(name)
        assert type_name(parse_type(arrow)) == arrow
        duckdb.sql(f"SELECT CAST(NULL AS {sql_type(name)})")
    assert user_type("Decimal(10, 2)") == "decimal128(10, 2)"
    assert user_type("timestamp[ms]") == "timestamp[ms]"  # any Arrow type string too
    with pytest.raises(ValueError, match="unknown type `intt`; expected one of"):
        user_type("intt")


DUCK = [
    "VARCHAR",
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
    "HUGEINT",
    "DOUBLE",
    "FLOAT",
    "BOOLEAN",
    "DATE",
    "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE",
    "TIMESTAMP_S",
    "TIMESTAMP_MS",
    "TIMESTAMP_NS",
    "TIME",
    "TIME_NS",
    "TIMESTAMPTZ_NS",
    "GEOMETRY",
    "DECIMAL(10,2)",
    "BLOB",
    "UUID",
    "JSON",
    "BIGINT[]",
    'STRUCT("a b" BIGINT, "c: d, e" VARCHAR[])',
    "MAP(VARCHAR, BIGINT)",
    "STRUCT(a STRUCT(b INTEGER[], c MAP(VARCHAR, DOUBLE))[])",
]


@pytest.mark.parametrize("duck", DUCK)
def test_duckdb_types_map_to_what_their_parquet_files_hold(duck, tmp_path):
    """The Arrow type named from DuckDB's description of a column is the type a reader of the Parquet file
    DuckDB writes finds, and it maps back to a DuckDB type that reads the file."""
    path = str(tmp_path / "x.parquet")
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"COPY (SELECT CAST(NULL AS {duck}) AS x) TO '{path}'")
    arrow = arrow_type(duck)
    assert arrow == type_name(pq.read_schema(path).field("x").type)
    con.execute(f"SELECT CAST(x AS {duck_type(arrow)}) FROM '{path}'").fetchall()


def test_legacy_duckdb_names_become_arrow_names():
    assert neutral("BIGINT") == "int64" and neutral("int64") == "int64"
    assert neutral("TIMESTAMP WITH TIME ZONE") == "timestamp[us, tz=UTC]"
    assert neutral("STRUCT(a VARCHAR)[]") == "list<item: struct<a: string>>"


def test_people_see_sql_names_and_the_json_carries_both():
    assert sql_name("list<item: int64>") == "BIGINT[]"
    assert column_json("d", "date32[day]") == {"name": "d", "type": "DATE", "arrow_type": "date32[day]"}


def test_widening_in_arrow_terms():
    assert widens_to("int32", "int64") and widens_to("int64", "double") and widens_to("date32[day]", "timestamp[us]")
    assert not widens_to("double", "int64") and not widens_to("string", "int64")
    # an integer fits a decimal with room for all its digits (a table of ids past 64 bits takes small ids)
    assert widens_to("int64", "decimal128(38, 0)") and widens_to("uint64", "decimal128(20, 0)")
    assert widens_to("int32", "decimal128(12, 2)") and not widens_to("int64", "decimal128(18, 0)")
    have = [("a", "int32"), ("b", "string"), ("c", "double")]
    assert align(have, [("a", "int64"), ("b", "int64"), ("c", "int64")]) == {"a": "int64", "b": "int64"}
    assert align([("a", "null")], [("a", "date32[day]")]) == {"a": "date32[day]"}
    with pytest.raises(SchemaConflict, match="column `d` is BOOLEAN in this file but DATE in the table"):
        align([("d", "bool")], [("d", "date32[day]")])
    assert merged([("a", "int64"), ("b", "string")], [("a", "double"), ("c", "bool")]) == [
        ("a", "double"),
        ("b", "string"),
        ("c", "bool"),
    ]
    # decimals: one with room on both sides of the point takes another; a table widens to one that holds both
    assert widens_to("decimal128(10, 2)", "decimal128(12, 3)") and not widens_to(
        "decimal128(10, 2)", "decimal128(10, 3)"
    )
    assert widened("int64", "decimal128(10, 2)") == widened("decimal128(10, 2)", "int64") == "decimal128(21, 2)"
    assert widened("decimal128(10, 2)", "decimal128(6, 4)") == "decimal128(12, 4)"
    assert widened("int64", "decimal128(38, 20)") is None and widened("int64", "float") == "double"
    assert align([("a", "decimal128(10, 2)")], [("a", "int64")]) == {"a": "decimal128(21, 2)"}
    # a decimal of up to 15 digits and a double: the double (as an integer column and a double)
    assert widened("decimal128(10, 2)", "double") == "double" and widened("double", "decimal128(12, 4)") == "double"
    assert widened("decimal128(18, 2)", "double") is None
    # unsigned integers: a wider unsigned type, or a signed one that holds both
    assert widened("uint32", "uint64") == "uint64" and widened("uint32", "int16") == "int64"
    assert widened("int16", "uint32") == "int64" and widened("int64", "uint64") == "decimal128(20, 0)"
    assert merged([("a", "int64")], [("a", "decimal128(10, 2)")]) == [("a", "decimal128(21, 2)")]
    # objects into a map column (DuckDB's type for objects all `{}`, or of over 200 keys): by key, when every
    # value fits the map's type; a struct or list into a text field is its JSON, as into a text column
    json_map, int_map = "map<string, extension<arrow.json>>", "map<string, int64>"
    assert align([("c", "struct<a: int64, b: struct<t: bool>>")], [("c", json_map)]) == {"c": json_map}
    assert align([("c", "struct<a: int32>"), ("m", json_map)], [("c", int_map), ("m", int_map)]) == {
        "c": int_map,
        "m": int_map,
    }
    with pytest.raises(SchemaConflict, match="column `c` is STRUCT"):
        align([("c", "struct<a: string>")], [("c", int_map)])
    assert align([("s", "struct<a: list<item: int64>>")], [("s", "struct<a: string>")]) == {"s": "struct<a: string>"}


def test_a_catalog_with_duckdb_type_names_is_migrated_on_open(make_lake):
    """Catalogs made before types were neutral hold DuckDB names (`BIGINT`): migration 3 rewrites them, and the
    table reads and loads on as before."""
    import json
    import sqlite3

    from conftest import wf

    lake = make_lake([wf("t")], workers=1)
    lake.land("t/1.csv", "id,day\n1,2024-01-01\n", mtime=1_700_000_000)
    assert lake.process().ok
    lake.close()
    db = sqlite3.connect(lake.root / "lake" / "_landfall" / "state.db")
    new = db.execute("SELECT schema FROM tables").fetchone()[0]
    old = json.dumps([[n, duck_type(t).replace("TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE")] for n, t in json.loads(new)])
    assert "BIGINT" in old and "TIMESTAMP WITH TIME ZONE" in old
    db.execute("UPDATE tables SET schema = ?", (old,))
    db.execute("UPDATE table_schemas SET schema = ?", (old,))
    db.execute("DELETE FROM schema_migrations WHERE version >= 3")  # as a database made before migration 3
    db.commit()
    db.close()
    lake._pipeline = None
    assert lake.pipeline.store.schema_version() >= 3
    assert dict(lake.pipeline.table("t").schema)["day"] == "date32[day]"
    lake.land("t/2.csv", "id,day\n2,2024-01-02\n", mtime=1_700_000_001)
    assert lake.process().ok
    assert lake.rows("SELECT id, CAST(day AS VARCHAR) FROM t ORDER BY id") == [(1, "2024-01-01"), (2, "2024-01-02")]
    assert len(lake.pipeline.store.schema_versions("t")) == 1  # the same schema: no new version


def test_plain_duckdb_type_names_map_without_a_database_as_duckdb_parses_them():
    """`arrow_type` answers plain names from a table (making a DuckDB database to parse one costs ~15 ms of a
    process); what it answers is what DuckDB's own parse of the name gives."""
    import duckdb

    from landfall.engines.duckdb import types as duck_types

    con = duckdb.connect()
    for kind in duck_types._SIMPLE:
        if kind == "enum":
            continue
        for spelling in (kind.upper(), kind):
            assert duck_types.arrow_type(spelling) == duck_types._arrow(con.type(spelling)), spelling
    for spelling in ("ENUM('a', 'b')", "DECIMAL(18,3)", "DECIMAL(38, 10)", "decimal(4,0)"):
        assert duck_types.arrow_type(spelling) == duck_types._arrow(con.type(spelling)), spelling
    assert duck_types.arrow_type("JSON") == "extension<arrow.json>"


@pytest.mark.parametrize(
    "arrow",
    [*SCALARS, "decimal128(10, 2)", "decimal128(38, 9)", "decimal256(40, 2)", "decimal128(1, 0)"],
)
def test_the_scalar_types_read_without_pyarrow_map_as_pyarrow_maps_them(arrow):
    """`duck_type` reads scalar type strings (and decimals) by a table, without importing pyarrow (for `landfall
    query`): the same DuckDB type as parsing them with pyarrow, whose text they are."""
    t = parse_type(arrow)
    assert str(t) == arrow
    assert duck_type(arrow) == _duck(t)
