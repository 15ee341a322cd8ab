"""Reading Parquet: DuckDB's `read_parquet` over a job's files, and a copy of a file whose values it would not read
exactly (decimals of more than 38 digits)."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING

from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.sql import _filename_arg

if TYPE_CHECKING:
    import pyarrow as pa


def _parquet_sql(cx: JobContext, paths: str) -> str:
    return f"SELECT * FROM read_parquet({paths}, {', '.join(_filename_arg(cx) + ['union_by_name = true'])})"


def exact_copy(path: str, scratch: str) -> str:
    """`path`, or a copy of it in `scratch` whose decimals of more than 38 digits (`decimal256`, at any depth) are
    text, every digit as written. DuckDB, Spark and Delta tables hold decimals of up to 38 digits, and DuckDB's
    reader takes a wider one as a double (123456789012345678901234567890123456789012345678.12 as
    1.2345678901234566e+47). The copy is written a row group at a time; a file whose footer does not read is
    returned as it is, for the reader to name what is wrong with it."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception:  # damaged or not Parquet: the reader's error names it
        return path
    target = pa_schema_as_text(schema)
    if target is None:
        return path
    folder = os.path.join(scratch, "_exact")
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(folder, f"{uuid.uuid4().hex[:8]}-{os.path.basename(path)}")
    with pq.ParquetFile(path) as pf, pq.ParquetWriter(out, target, compression="zstd") as writer:
        for batch in pf.iter_batches():
            writer.write_batch(batch.cast(target))
    return out


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
