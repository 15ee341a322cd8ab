"""DuckDB's types and the neutral Arrow type strings (`landfall.types`), both ways.

`duck_type("timestamp[us, tz=UTC]")` is `TIMESTAMPTZ`; `arrow_type("BIGINT[]")` is `list<item: int64>`. Types
map to what a Parquet file written by DuckDB holds (a `HUGEINT` column is written as `double`), so that a type
named from DuckDB's description of a query and one read from the files it wrote are the same string.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING

import duckdb

from landfall.types import parse_type, user_type

if TYPE_CHECKING:
    import pyarrow as pa

#: DuckDB's types a reader's detection gives that are read as another, so that no value changes: whole numbers
#: beyond 64 bits (12345678901234567890, which DuckDB's Parquet writer stores as doubles) as `DECIMAL(38,0)`,
#: beyond 38 digits (a CSV's `123...` of 45 digits, `BIGNUM`, which it stores as binary) as text
_EXACT = {"HUGEINT": "DECIMAL(38,0)", "UHUGEINT": "DECIMAL(38,0)", "BIGNUM": "VARCHAR"}


def exact_kind(kind: str) -> str:
    """The type a DuckDB type of a reader's detection (at any depth) is read as, so that no value changes:
    whole numbers beyond 64 bits as `DECIMAL(38,0)`, beyond 38 digits as text."""
    return retyped(kind, _EXACT)


def retyped(kind: str, leaves: Mapping[str, str]) -> str:
    """`kind` (a DuckDB type) with each leaf type that `leaves` names (`TIMESTAMP_NS`) replaced by the type it
    maps to, at any depth (`kind` itself when none is). Through the type's tree, not its text: DuckDB writes a
    struct field named like a type unquoted (`STRUCT(TIMESTAMP_NS INTEGER)`), and the field keeps its name."""
    if not any(name in kind for name in leaves):
        return kind
    new, changed = _retyped(_type(kind), leaves)
    return new if changed else kind


def _retyped(t: duckdb.typing.DuckDBPyType, leaves: Mapping[str, str]) -> tuple[str, bool]:
    kind = t.id
    if kind in ("struct", "union", "map", "list", "array"):
        members = t.children[1:] if kind == "union" else t.children  # a union's first child is its tag
        if kind == "array":
            members = members[:1]
        inner = [(n, *_retyped(c, leaves)) for n, c in members]
        changed = any(ch for _, _, ch in inner)
        if kind in ("struct", "union"):
            fields = ", ".join(f'"{n.replace(chr(34), chr(34) * 2)}" {c}' for n, c, _ in inner)
            return f"{kind.upper()}({fields})", changed
        if kind == "map":
            return f"MAP({inner[0][1]}, {inner[1][1]})", changed
        if kind == "list":
            return f"{inner[0][1]}[]", changed
        return f"{inner[0][1]}[{int(dict(t.children)['size'])}]", changed
    name = str(t)
    return leaves.get(name, name), name in leaves


_SIMPLE = {
    "tinyint": "int8",
    "smallint": "int16",
    "integer": "int32",
    "bigint": "int64",
    "utinyint": "uint8",
    "usmallint": "uint16",
    "uinteger": "uint32",
    "ubigint": "uint64",
    "hugeint": "double",
    "uhugeint": "double",
    "float": "float",
    "double": "double",
    "boolean": "bool",
    "varchar": "string",
    "enum": "string",
    "blob": "binary",
    "bit": "binary",
    "bignum": "binary",
    "date": "date32[day]",
    "timestamp": "timestamp[us]",
    "timestamp_s": "timestamp[us]",  # Parquet has no seconds unit
    "timestamp_ms": "timestamp[ms]",
    "timestamp_ns": "timestamp[ns]",
    "timestamp with time zone": "timestamp[us, tz=UTC]",
    "timestamptz_ns": "timestamp[ns, tz=UTC]",
    "time": "time64[us]",
    "time_ns": "time64[ns]",
    "time with time zone": "time64[us]",
    "interval": "month_day_nano_interval",
    "uuid": "extension<arrow.uuid>",
    "geometry": "binary",  # a GeoParquet column: its WKB bytes (DuckDB writes them with the file's `geo` metadata)
    '"null"': "null",
    "null": "null",
}
_TIMESTAMPS = {"s": "TIMESTAMP_S", "ms": "TIMESTAMP_MS", "us": "TIMESTAMP", "ns": "TIMESTAMP_NS"}
_lock = threading.Lock()
_con: duckdb.DuckDBPyConnection | None = None


def sql_type(name: str) -> str:
    """The DuckDB type for a type name users write (`int`, `date`, `decimal(10,2)`, ...)."""
    return duck_type(user_type(name))


#: Arrow type strings of scalar types (as pyarrow prints them) -> their DuckDB types, without parsing them with
#: pyarrow (70 ms to import, with numpy: a `landfall query` needed it for this alone)
SCALARS = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint8": "UTINYINT",
    "uint16": "USMALLINT",
    "uint32": "UINTEGER",
    "uint64": "UBIGINT",
    "halffloat": "FLOAT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "string_view": "VARCHAR",
    "date32[day]": "DATE",
    "date64[ms]": "DATE",
    "time64[us]": "TIME",
    "time64[ns]": "TIME_NS",
    "timestamp[s]": "TIMESTAMP_S",
    "timestamp[ms]": "TIMESTAMP_MS",
    "timestamp[us]": "TIMESTAMP",
    "timestamp[ns]": "TIMESTAMP_NS",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
    "timestamp[ns, tz=UTC]": "TIMESTAMPTZ_NS",
    "binary": "BLOB",
    "large_binary": "BLOB",
}
_ARROW_DECIMAL = re.compile(r"decimal(?:128|256)\((\d+), (\d+)\)")


@lru_cache(maxsize=4096)
def duck_type(arrow: str) -> str:
    """The DuckDB type for an Arrow type string."""
    if (scalar := SCALARS.get(arrow)) is not None:
        return scalar
    if m := _ARROW_DECIMAL.fullmatch(arrow):
        precision, scale = int(m.group(1)), int(m.group(2))
        return f"DECIMAL({precision},{scale})" if precision <= 38 else "DOUBLE"
    return _duck(parse_type(arrow))


def _duck(t: pa.DataType) -> str:
    import pyarrow as pa

    if isinstance(t, pa.BaseExtensionType):
        if t.extension_name == "arrow.uuid":
            return "UUID"
        if t.extension_name == "arrow.json":
            return "JSON"
        return _duck(t.storage_type)
    if pa.types.is_timestamp(t):
        if t.tz:
            return "TIMESTAMPTZ_NS" if t.unit == "ns" else "TIMESTAMPTZ"
        return _TIMESTAMPS[t.unit]
    if pa.types.is_time64(t) and t.unit == "ns":
        return "TIME_NS"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})" if t.precision <= 38 else "DOUBLE"
    if pa.types.is_fixed_size_list(t):
        return f"{_duck(t.value_type)}[{t.list_size}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"{_duck(t.value_type)}[]"
    if pa.types.is_map(t):
        return f"MAP({_duck(t.key_type)}, {_duck(t.item_type)})"
    if pa.types.is_struct(t):
        return "STRUCT(" + ", ".join(f'"{f.name.replace(chr(34), chr(34) * 2)}" {_duck(f.type)}' for f in t) + ")"
    if pa.types.is_dictionary(t):
        return _duck(t.value_type)
    for check, name in (
        (pa.types.is_int8, "TINYINT"),
        (pa.types.is_int16, "SMALLINT"),
        (pa.types.is_int32, "INTEGER"),
        (pa.types.is_int64, "BIGINT"),
        (pa.types.is_uint8, "UTINYINT"),
        (pa.types.is_uint16, "USMALLINT"),
        (pa.types.is_uint32, "UINTEGER"),
        (pa.types.is_uint64, "UBIGINT"),
        (pa.types.is_float16, "FLOAT"),
        (pa.types.is_float32, "FLOAT"),
        (pa.types.is_float64, "DOUBLE"),
        (pa.types.is_boolean, "BOOLEAN"),
        (pa.types.is_string, "VARCHAR"),
        (pa.types.is_large_string, "VARCHAR"),
        (pa.types.is_string_view, "VARCHAR"),
        (pa.types.is_date, "DATE"),
        (pa.types.is_time, "TIME"),
        (pa.types.is_duration, "INTERVAL"),
        (pa.types.is_interval, "INTERVAL"),
        (pa.types.is_null, '"NULL"'),
    ):
        if check(t):
            return name
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BLOB"
    raise ValueError(f"no DuckDB type for Arrow type `{t}`")


_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


@lru_cache(maxsize=4096)
def arrow_type(duck: str) -> str:
    """The Arrow type string for a DuckDB type (as DESCRIBE writes it)."""
    simple = duck.strip().lower()
    if simple in _SIMPLE and simple != "enum":  # a plain name: no DuckDB database to parse it (one costs ~15 ms)
        return _SIMPLE[simple]
    if simple.startswith("enum("):  # lineage constants are one-value ENUMs
        return "string"
    if m := _DECIMAL.fullmatch(simple):
        return f"decimal128({int(m[1])}, {int(m[2])})"
    return _arrow(_type(duck))


def _type(duck: str) -> duckdb.typing.DuckDBPyType:
    """DuckDB's parse of a type string (one in-memory database per process, made when first needed)."""
    global _con
    with _lock:
        if _con is None:
            _con = duckdb.connect(":memory:")
        return _con.type(duck)


def _arrow(t: duckdb.typing.DuckDBPyType) -> str:
    """The canonical Arrow type string (as `landfall.types.type_name` writes it), built without pyarrow."""
    kind = t.id
    if kind == "varchar" and str(t) == "JSON":
        return "extension<arrow.json>"
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "decimal":
        d = dict(t.children)
        return f"decimal128({int(d['precision'])}, {int(d['scale'])})"
    if kind in ("list", "array"):  # a fixed-size array too: Parquet stores it as a list
        return f"list<item: {_arrow(t.children[0][1])}>"
    if kind == "map":
        d = dict(t.children)
        return f"map<{_arrow(d['key'])}, {_arrow(d['value'])}>"
    if kind == "struct":
        return "struct<" + ", ".join(f"{n}: {_arrow(c)}" for n, c in t.children) + ">"
    if kind == "union":
        return "string"
    raise ValueError(f"no Arrow type for DuckDB type `{t}`")
