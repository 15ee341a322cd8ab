"""Reading Parquet: DuckDB's `read_parquet` over a job's files, a copy of a file whose values it would not read
exactly (decimals of more than 38 digits), nanosecond timestamps as microseconds or text (`nanoseconds`), and the
copy Spark reads (`spark_copy`: no time, interval or nanosecond columns, which Spark cannot read)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

import duckdb

from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.sql import _filename_arg, lit, q
from landfall.engines.duckdb.types import retyped
from landfall.storage.local import fitted

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq


def _parquet_sql(cx: JobContext, paths: str) -> str:
    return f"SELECT * FROM read_parquet({paths}, {', '.join(_filename_arg(cx) + ['union_by_name = true'])})"


def exact_copy(path: str, scratch: str) -> str:
    """`path`, or a copy of it in `scratch` whose values a reader would change are text, every digit as written:
    decimals of more than 38 digits (`decimal256`, at any depth: DuckDB, Spark and Delta tables hold up to 38, and
    DuckDB's reader takes a wider one as a double, 123456789012345678901234567890123456789012345678.12 as
    1.2345678901234566e+47); and a copy whose legacy `INT96` timestamps (Impala, Hive) are nanosecond timestamps
    when one holds a digit below the microsecond, which DuckDB's and Spark's readers of `INT96` drop
    (`...00.123456789` as `...00.123456`; such columns are read once to know), for `nanoseconds` to read as text.
    The copy is written a row group at a time; a file whose footer does not read is returned as it is, for the
    reader to name what is wrong with it."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as pf:
            schema = pf.schema_arrow
            finer = _finer_int96(pf)
    except Exception:  # damaged or not Parquet: the reader's error names it
        return path
    target = pa_schema_as_text(schema)
    if target is None and not finer:
        return path
    target = target or schema  # the INT96 columns are written as INT64 nanoseconds: `nanoseconds` reads them
    folder = os.path.join(scratch, "_exact")
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(folder, f"{uuid.uuid4().hex[:8]}-{fitted(os.path.basename(path), 9)}")
    with pq.ParquetFile(path) as pf, pq.ParquetWriter(out, target, compression="zstd") as writer:
        for batch in pf.iter_batches():
            writer.write_batch(batch.cast(target))
    return out


def _finer_int96(pf: pq.ParquetFile) -> set[str]:
    """The top-level `INT96` timestamp columns of a Parquet file with a value below the microsecond."""
    import pyarrow as pa

    names = [
        c.path for c in (pf.schema.column(i) for i in range(pf.metadata.num_columns)) if c.physical_type == "INT96"
    ]
    finer: set[str] = set()
    for name in (n for n in names if "." not in n):
        for batch in pf.iter_batches(columns=[name]):
            try:
                batch.column(0).cast(pa.timestamp("us"), safe=True)
            except pa.ArrowInvalid:  # `would lose data`
                finer.add(name)
                break
    return finer


def pa_schema_as_text(schema: pa.Schema) -> pa.Schema | None:
    """`schema` with its decimals of more than 38 digits as strings, or None when it has none."""
    import pyarrow as pa

    fields = [f.with_type(_as_text(f.type)) for f in schema]
    return None if all(f.type == g.type for f, g in zip(fields, schema, strict=True)) else pa.schema(fields)


def _as_text(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_decimal(t) and t.precision > 38:
        return pa.string()
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_as_text(f.type)) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        item = t.value_field.with_type(_as_text(t.value_type))
        return pa.list_(item) if pa.types.is_list(t) else pa.large_list(item)
    if pa.types.is_map(t):
        return pa.map_(t.key_type, _as_text(t.item_type))
    return t


#: DuckDB's nanosecond timestamp types, and the microsecond ones they are read as when no value is cut
_MICROS = {"TIMESTAMP_NS": "TIMESTAMP", "TIMESTAMPTZ_NS": "TIMESTAMPTZ"}
_NANOS_AS_TEXT = dict.fromkeys(_MICROS, "VARCHAR")
#: the types of Parquet columns Spark cannot read: times (not `TIME WITH TIME ZONE`, which no Parquet file holds)
#: and intervals, read as text
_NOT_SPARK = dict.fromkeys(("TIME", "TIME_NS", "INTERVAL"), "VARCHAR")
_TIMES = {"TIME": "VARCHAR"}  # (a probe: whether a column holds a time at any depth)


def nanoseconds(con: duckdb.DuckDBPyConnection, relation: str, columns: Iterable[tuple[str, str]]) -> dict[str, str]:
    """For each column of `relation` holding nanosecond timestamps (at any depth; name -> DuckDB type), the type
    to read it as: microseconds when every value is a whole number of them (pandas writes nanoseconds; Delta
    tables, Spark and most readers hold microseconds: a Delta table of nanoseconds is one deltalake's reader
    refuses, and Spark cannot read such a file), else text, every digit as written
    (`2024-01-01 00:00:00.123456789`). One pass over those columns."""
    columns = list(columns)
    micros = {n: m for n, k in columns if (m := retyped(k, _MICROS)) != k}
    found = {n: k for n, k in columns if n in micros}
    if not found:
        return {}
    checks = ", ".join(
        f"coalesce(bool_or(CAST(CAST({q(n)} AS {micros[n]}) AS {k}) IS DISTINCT FROM {q(n)}), false)"
        for n, k in found.items()
    )
    finer = con.execute(f"SELECT {checks} FROM {relation}").fetchone() or ()
    return {n: retyped(k, _NANOS_AS_TEXT) if f else micros[n] for (n, k), f in zip(found.items(), finer, strict=True)}


def spark_copy(path: str, scratch: str, times: bool = False) -> str:
    """`path`, or a copy of it in `scratch` that Spark reads: Spark refuses a Parquet time column (`The data type
    TIME is not supported`; with a time type, `times`, one of milliseconds: `Illegal Parquet type: INT32
    (TIME(MILLIS,false))`), an interval (`Parquet type not yet supported: FIXED_LEN_BYTE_ARRAY (INTERVAL)`) and
    nanosecond timestamps (`Illegal Parquet type: INT64 (TIMESTAMP(NANOS,false))`), so times (of nanoseconds, or
    every time without `times`; DuckDB writes the others as microseconds) and intervals are text as DuckDB writes
    them (`10:30:00.123456789`, `1 day 02:00:00`, as Delta tables store them) and nanosecond timestamps are what
    `nanoseconds` makes of them, at any depth. Written by DuckDB in the file's row order (rules name rows by
    position); a file DuckDB cannot describe is returned as it is, for Spark's reader to name what is wrong."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        source = f"read_parquet({lit(path)})"
        try:
            columns = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        except duckdb.Error:
            return path
        described = [(n, k) for n, k, *_ in columns]
        nanos = nanoseconds(con, source, described)
        text = {k: v for k, v in _NOT_SPARK.items() if not (times and k == "TIME")}
        changed = [
            f"CAST({q(n)} AS {new}) AS {q(n)}" for n, k in described if (new := retyped(nanos.get(n, k), text)) != k
        ]
        timed = times and any(retyped(k, _TIMES) != k for _, k in described)  # milliseconds, maybe: copied as micros
        if not changed and not timed:
            return path
        folder = os.path.join(scratch, "_spark_types")
        os.makedirs(folder, exist_ok=True)
        out = os.path.join(folder, f"{uuid.uuid4().hex[:8]}-{fitted(os.path.basename(path), 9)}")
        rows = f"SELECT * REPLACE ({', '.join(changed)}) FROM {source}" if changed else f"SELECT * FROM {source}"
        con.execute(f"COPY ({rows}) TO {lit(out)} (FORMAT parquet, COMPRESSION zstd)")
        return out
    finally:
        con.close()
