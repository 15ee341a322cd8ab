"""Spark's types and the catalog's neutral Arrow type strings (`landfall.types`), both ways.

| catalog (Arrow) | Spark | note |
|---|---|---|
| `timestamp[us]` | `TIMESTAMP_NTZ` | no time zone on either side |
| `timestamp[us, tz=UTC]` | `TIMESTAMP` (LTZ) | an instant, shown in UTC |
| `uint64` | `DECIMAL(20,0)` | Spark has no unsigned integers; the smaller ones take the next wider signed type |
| `time64[us]` | `TIME` | Spark 4.1 and later (`spark.sql.timeType.enabled`, which landfall sets); before, `STRING` |
| `time64[ns]`, `extension<arrow.json>`, `extension<arrow.uuid>` | `STRING` | Spark's TIME holds microseconds |

A Spark type maps to what a Parquet file Spark writes holds, so a type named from a DataFrame's schema and one
read from the files written are the same string.
"""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

from landfall.types import parse_type, type_name

#: Spark's TIME type (Spark 4.1 and later, with `spark.sql.timeType.enabled`), else None: times are then text
TIME: type[T.DataType] | None = getattr(T, "TimeType", None)

_SIMPLE: list[tuple[type, pa.DataType]] = [
    (T.StringType, pa.string()),
    (T.LongType, pa.int64()),
    (T.IntegerType, pa.int32()),
    (T.ShortType, pa.int16()),
    (T.ByteType, pa.int8()),
    (T.DoubleType, pa.float64()),
    (T.FloatType, pa.float32()),
    (T.BooleanType, pa.bool_()),
    (T.DateType, pa.date32()),
    (T.TimestampNTZType, pa.timestamp("us")),
    (T.TimestampType, pa.timestamp("us", tz="UTC")),
    (T.BinaryType, pa.binary()),
    (T.NullType, pa.string()),
    *([(TIME, pa.time64("us"))] if TIME else []),
]


def spark_type(arrow: str | pa.DataType) -> T.DataType:
    """The Spark type for a catalog type (an Arrow type string such as `int64` or `list<item: string>`)."""
    t = parse_type(arrow) if isinstance(arrow, str) else arrow
    if isinstance(t, pa.BaseExtensionType):
        return T.StringType()  # JSON text, UUIDs as text
    if pa.types.is_int8(t):
        return T.ByteType()
    if pa.types.is_int16(t) or pa.types.is_uint8(t):
        return T.ShortType()
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return T.IntegerType()
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return T.LongType()
    if pa.types.is_uint64(t):
        return T.DecimalType(20, 0)
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return T.FloatType()
    if pa.types.is_float64(t):
        return T.DoubleType()
    if pa.types.is_boolean(t):
        return T.BooleanType()
    if pa.types.is_date(t):
        return T.DateType()
    if pa.types.is_timestamp(t):
        return T.TimestampType() if t.tz else T.TimestampNTZType()
    if pa.types.is_time(t) and t.unit != "ns" and TIME:
        return TIME()
    if pa.types.is_decimal(t):
        return T.DecimalType(min(t.precision, 38), t.scale)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return T.BinaryType()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return T.ArrayType(spark_type(t.value_type), True)
    if pa.types.is_struct(t):
        return T.StructType([T.StructField(f.name, spark_type(f.type), True) for f in t])
    if pa.types.is_map(t):
        return T.MapType(spark_type(t.key_type), spark_type(t.item_type), True)
    return T.StringType()  # null, nanosecond times, intervals: their text


def arrow_of(dt: T.DataType) -> pa.DataType:
    """The Arrow type of a Parquet column Spark writes for `dt`."""
    if isinstance(dt, T.ArrayType):
        return pa.list_(arrow_of(dt.elementType))
    if isinstance(dt, T.StructType):
        return pa.struct([pa.field(f.name, arrow_of(f.dataType)) for f in dt.fields])
    if isinstance(dt, T.MapType):
        return pa.map_(arrow_of(dt.keyType), arrow_of(dt.valueType))
    if isinstance(dt, T.DecimalType):
        return pa.decimal128(dt.precision, dt.scale)
    for cls, arrow in _SIMPLE:
        if isinstance(dt, cls):
            return arrow
    return pa.string()


def catalog_type(dt: T.DataType) -> str:
    """The catalog's type for a Spark type: an Arrow type string (`int64`, `list<item: string>`)."""
    return type_name(arrow_of(dt))


def schema_of(struct: T.StructType, hidden: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """`[(column, Arrow type string)]` of a DataFrame schema, without internal columns."""
    return [(f.name, catalog_type(f.dataType)) for f in struct.fields if f.name not in hidden]


def of_duckdb(name: str) -> T.DataType:
    """The Spark type for a type DuckDB's detection names (`BIGINT`, `STRUCT(a VARCHAR)[]`); whole numbers beyond
    64 bits (`HUGEINT`) are `decimal(38,0)`, beyond 38 digits text, as on the DuckDB engine."""
    from landfall.engines.duckdb.types import arrow_type, exact_kind

    return spark_type(arrow_type(exact_kind(name)))


def sql_name(dt: T.DataType) -> str:
    """How people see a Spark column's type in messages (`landfall query`'s names: `BIGINT`, `VARCHAR[]`)."""
    from landfall.types import sql_name as name

    return name(catalog_type(dt))
