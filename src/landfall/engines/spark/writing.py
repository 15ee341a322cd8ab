"""Writing on Spark: lineage columns, the table's types and partitions, merge (copy-on-write upsert), Parquet
files in the job's staging folder with the stats the table formats need, rewrites and compaction.

Spark names its files itself (`part-00000-<uuid>.c000.zstd.parquet`) and escapes partition folders its own
way; landfall renames each file to `part-<commit>-<n>.parquet` (recovery finds a crashed commit's files by that
name) under folders escaped as DuckDB escapes them, so a table reads the same whichever engine wrote it. Row
counts and min/max/null counts come from each file's Parquet footer (pyarrow).
"""

from __future__ import annotations

import datetime
import os
import shutil
from collections import Counter
from functools import reduce
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall import partitions
from landfall.config import ParquetFiles
from landfall.engines.base import StagedFile, not_a_time, not_in_output, refuse_lineage_names, untyped_times
from landfall.engines.duckdb.types import arrow_type
from landfall.engines.spark.casts import conformed, interval_value, strict_cast
from landfall.engines.spark.context import HIDDEN, LINEAGE, SRC, Ctx, c, columns
from landfall.engines.spark.types import schema_of, spark_type, sql_name
from landfall.errors import InvalidInput
from landfall.schema import align
from landfall.types import stored_type

# Spark writes '' as a NULL partition, and the text `__HIVE_DEFAULT_PARTITION__` as it writes NULL: such values
# go through Spark's folders as these, and come back
EMPTY_PARTITION = "\u0001landfall-empty\u0001"
NULL_TEXT_PARTITION = "\u0001landfall-null-text\u0001"
_SPARK_FOLDERS = {EMPTY_PARTITION: "", NULL_TEXT_PARTITION: partitions.NULL}
_PART_FUNCS = {"year": F.year, "month": F.month, "day": F.dayofmonth, "hour": F.hour}


def source_key(ctx: Ctx) -> Column:
    """Each row's landed file (`_source_file`)."""
    if not ctx.batch:
        return F.lit(ctx.inputs[0].source.key)
    pairs = [x for inp in ctx.inputs for x in (F.lit(inp.index), F.lit(inp.source.key))]
    return F.element_at(F.create_map(*pairs), c(SRC))


def with_lineage(ctx: Ctx, df: DataFrame) -> DataFrame:
    """`_source_file`, `_ingested_at`, `_run_id` on every row (replacing columns of those names); landfall's
    internal columns go."""
    if ctx.batch:
        pairs = [x for inp in ctx.inputs for x in (F.lit(inp.index), F.lit(inp.source.run_id))]
        run_id = F.element_at(F.create_map(*pairs), c(SRC))
    else:
        run_id = F.lit(ctx.inputs[0].source.run_id)
    keep = [c(n) for n in df.columns if n not in HIDDEN and n not in LINEAGE]
    return df.select(
        *keep,
        source_key(ctx).alias("_source_file"),
        F.lit(ctx.job.ingested_at).cast(T.TimestampType()).alias("_ingested_at"),
        run_id.alias("_run_id"),
    )


def finish(ctx: Ctx, df: DataFrame) -> DataFrame:
    """Lineage, partition columns and the table's types."""
    if SRC not in df.columns and ctx.batch:
        raise InvalidInput(
            f"workflow `{ctx.workflow.name}`: a `sql` step dropped the file column; select `*` from "
            "`input` or set `batch: false`"
        )
    refuse_lineage_names(df.columns)
    return shape_for_table(ctx, with_lineage(ctx, df))


def shape_for_table(ctx: Ctx, df: DataFrame) -> DataFrame:
    """Partition expression columns, and the table's types where they fit without loss."""
    wf = ctx.workflow
    names = columns(df)
    table = dict(ctx.job.table_schema or [])
    for p in wf.write.partition_by:
        if p.column not in names:
            raise not_in_output(wf, "partition column", [p.column], list(names))
        if p.function:
            kind, of = df.schema[p.column].dataType, c(p.column)
            if not isinstance(kind, (T.DateType, T.TimestampType, T.TimestampNTZType)):
                one = df.where(of.isNotNull()).select(of).first()
                if one is not None:
                    raise not_a_time(wf, p.function, p.column, sql_name(kind), one[0])
                of = of.cast("timestamp")  # nulls alone (JSON nulls, empty CSV fields): as timestamps
                json_nulls = "NULL" in ctx.json_detected.get(p.column, "")  # no type yet: a later file's
                if not json_nulls and untyped_times(wf, {p.column}, table):  # the column too, unless typed already
                    df = df.withColumn(p.column, c(p.column).cast(T.TimestampNTZType()))
            df = df.withColumn(p.name, _PART_FUNCS[p.function](of).cast("long"))
    intervals = {f.name: v for f in df.schema.fields if (v := interval_value(c(f.name), f.dataType)) is not None}
    if intervals:
        df = df.withColumns(intervals)
    return fitted_to(ctx, stored_types(ctx, df), ctx.job.table_schema)


def stored_types(ctx: Ctx, df: DataFrame) -> DataFrame:
    """Columns of types the table format cannot hold (`Job.stored_as`: Delta's missing time type) cast to what it
    stores instead, at any depth (Spark casts a struct's fields by position; a time's text is DuckDB's)."""
    if not ctx.job.stored_as:
        return df
    casts = {}
    for name, arrow in schema_of(df.schema, HIDDEN):
        stored = stored_type(arrow, ctx.job.stored_as)
        if stored != arrow:
            casts[name] = c(name).cast(spark_type(stored))
    return df.withColumns(casts) if casts else df


def as_read(ctx: Ctx, df: DataFrame) -> list[tuple[str, str]]:
    """`df`'s columns and their Arrow types, a column whose JSON values DuckDB's detection typed as JSON or NULL
    at any depth (Spark holds both as text) as that type, unless a step changed it."""
    out = []
    for name, arrow in schema_of(df.schema, HIDDEN):
        read = ctx.json_detected.get(name)
        if read and ("JSON" in read or "NULL" in read) and spark_type(arrow_type(read)) == spark_type(arrow):
            arrow = arrow_type(read)
        out.append((name, arrow))
    return out


def fitted_to(ctx: Ctx, df: DataFrame, table_schema: list[tuple[str, str]] | None) -> DataFrame:
    """`df`'s columns as their table's types where they fit without loss (`schema.align`): a struct or list
    column by its fields' names, an object into a map column by key (`as_read`: the types `align` judges)."""
    if not table_schema:
        return df
    have = as_read(ctx, df)
    casts = align(have, table_schema)
    if not casts:
        return df
    arrows = dict(have)
    types = {f.name: f.dataType for f in df.schema.fields}
    return df.withColumns(
        {
            n: conformed(c(n), arrows[n], t, name=n)
            if t.startswith(("struct<", "list<", "map<"))
            else strict_cast(c(n), types[n], spark_type(t), name=n)
            for n, t in casts.items()
        }
    )


def read_table_files(ctx: Ctx, paths: list[str], *, tag: bool = False) -> DataFrame:
    """A table's files (absolute paths) with their partition columns, typed as the table has them; with `tag`,
    `__lf_file` says which of `paths` each row is in."""
    folder = os.path.join(ctx.job.scratch_dir, "_spark", "_table")
    os.makedirs(folder, exist_ok=True)
    links = []
    for i, path in enumerate(paths):
        link = os.path.join(folder, f"{i}.parquet")
        if not os.path.lexists(link):
            local = ctx.local(path, folder) if ctx.local else path
            os.symlink(os.path.abspath(local), link)
        links.append(link)
    df = ctx.spark.read.option("mergeSchema", "true").parquet(*links)
    index = F.regexp_extract(F.col("_metadata.file_path"), r"/([0-9]+)\.parquet$", 1).cast("int")
    df = df.select("*", index.alias("__lf_file"))
    types = dict(ctx.job.table_schema or [])
    rel = dict(ctx.job.table_files)
    for name in ctx.job.partition_names:
        values = [_partition_of(rel.get(p, os.path.basename(p))).get(name) for p in paths]
        pairs = [x for i, v in enumerate(values) for x in (F.lit(i), F.lit(v))]
        col = F.element_at(F.create_map(*pairs), c("__lf_file")) if pairs else F.lit(None)
        df = df.withColumn(name, col.cast(spark_type(types.get(name, "string"))))
    return df if tag else df.drop("__lf_file")


def not_from(keys: list[str]) -> Column:
    """The row is not of these landed files (`_source_file`)."""
    return c("_source_file").isNull() | ~c("_source_file").isin(keys)


def merge(ctx: Ctx, df: DataFrame, loaded: str | None = None) -> tuple[DataFrame, list[str]]:
    """Copy-on-write upsert: the table files holding any of the batch's keys are rewritten together with the
    batch, keeping one row per key: the greatest `order_by`, then the later file, then the batch. Rows of
    earlier versions of the batch's files (`Job.replaced_rows`) are left out of the files it rewrites (the job
    rewrites the other files that hold some). With `loaded` (a column of the batch: when its rows were first
    loaded, for a quarantine replay) the later load wins instead of the later file, the batch's rows on a tie."""
    from pyspark.sql import Window

    w = ctx.workflow.write
    names = columns(df)
    missing = [k for k in w.keys + ([w.order_by] if w.order_by else []) if k not in names]
    if missing:
        raise not_in_output(ctx.workflow, "merge column", missing, list(names))
    rank, old_rank = F.lit(0), F.lit(0)
    for i, src in enumerate(ctx.job.sources):
        rank = F.when(c("_source_file") == src.key, F.lit(i + 1)).otherwise(rank)
    if loaded is not None:
        rank = F.unix_micros(c(loaded).cast("timestamp")) * 2 + 1
        old_rank = F.unix_micros(c("_ingested_at").cast("timestamp")) * 2
    batch = df.withColumn("__lf_rank", rank)
    replaced: list[str] = []
    union = batch
    if ctx.job.table_files:
        # the batch is read twice (its keys, then the rows): once, here, which is the action that completes the
        # job's observations (the read's and the rules' counts; Spark failed to report them once a key lookup
        # had run the plan first: `AssertionError` in `toPyRow`)
        batch = union = batch.localCheckpoint(eager=True)
        abs_paths = [a for a, _ in ctx.job.table_files]
        table = read_table_files(ctx, abs_paths, tag=True)
        hits = (
            table.join(batch.select(*[c(k) for k in w.keys]).distinct(), on=w.keys, how="left_semi")
            .select("__lf_file")
            .distinct()
            .collect()
        )
        picked = sorted(int(h[0]) for h in hits)
        replaced = [ctx.job.table_files[i][1] for i in picked]
        if picked:
            old = table.where(c("__lf_file").isin(picked)).drop("__lf_file").withColumn("__lf_rank", old_rank)
            if earlier := ctx.job.replaced_rows():  # earlier versions of the batch's files
                old = old.where(not_from(earlier))
            union = batch.unionByName(old, allowMissingColumns=True)
    order = ([c(w.order_by).desc_nulls_last()] if w.order_by else []) + [c("__lf_rank").desc()]
    window = Window.partitionBy(*[c(k) for k in w.keys]).orderBy(*order)
    unkeyed = reduce(lambda a, b: a | b, [c(k).isNull() for k in w.keys])  # matches no row (SQL's MERGE): added
    merged = union.withColumn("__lf_n", F.row_number().over(window)).where((c("__lf_n") == 1) | unkeyed)
    return merged.drop("__lf_n", "__lf_rank", *([loaded] if loaded else [])), replaced


def write(
    ctx_or_spark: Any,
    df: DataFrame,
    out_dir: str,
    commit_id: str,
    partition_by: list[str],
    files_as: ParquetFiles,
    suffix: str = "",
) -> list[StagedFile]:
    """Write `df` as Parquet under `out_dir` (Hive folders for `partition_by`) as `files_as` says, each file
    renamed `part-<commit><suffix>-<n>.parquet`, with its rows, bytes, partition values and column stats."""
    spark_dir = out_dir.rstrip("/") + "._spark"
    shutil.rmtree(spark_dir, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)
    kinds = {f.name: f.dataType for f in df.schema.fields}
    keep_empty = {
        p: F.when(c(p) == "", F.lit(EMPTY_PARTITION))
        .when(c(p) == partitions.NULL, F.lit(NULL_TEXT_PARTITION))
        .otherwise(c(p))
        for p in partition_by
        if isinstance(kinds[p], T.StringType)
    }
    if keep_empty:
        df = df.withColumns(keep_empty)
    writer = df.write.mode("overwrite").options(
        compression=files_as.compression,  # Spark's `none` is uncompressed
        **{"parquet.writer.version": files_as.version},  # parquet-java's v1 | v2, passed on by the writer's options
    )
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.parquet(spark_dir)
    files = []
    n = 0
    for folder, _, names in sorted(os.walk(spark_dir)):
        for name in sorted(names):
            if not name.endswith(".parquet") or name.startswith(("_", ".")):
                continue
            path = os.path.join(folder, name)
            meta = pq.read_metadata(path)
            if meta.num_rows == 0:
                continue
            values = _partition_of(os.path.relpath(folder, spark_dir), spark=True)
            rel_dir = "/".join(partitions.folder(k, values.get(k)) for k in partition_by)
            rel = (
                f"{rel_dir}/part-{commit_id}{suffix}-{n}.parquet"
                if rel_dir
                else f"part-{commit_id}{suffix}-{n}.parquet"
            )
            n += 1
            dest = os.path.join(out_dir, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            os.replace(path, dest)
            files.append(
                StagedFile(
                    path=dest,
                    relpath=rel,
                    rows=meta.num_rows,
                    bytes=os.path.getsize(dest),
                    partition={k: values.get(k) for k in partition_by},
                    stats=footer_stats(meta),
                )
            )
    shutil.rmtree(spark_dir, ignore_errors=True)
    return files


def null_typed(
    ctx: Ctx, df: DataFrame, files: list[StagedFile], files_as: ParquetFiles
) -> tuple[list[StagedFile], list[str]]:
    """The columns DuckDB's detection typed NULL (JSON keys that held only nulls: no type yet) that hold no value in
    any file written, each file written again (by DuckDB, in its row order) with them of the null type, as the
    DuckDB engine writes them: Spark's Parquet writer has none and wrote them as text, which the table would then
    keep, every later value made its text. Typed NULL, they take the type of the first values a later file brings
    (schema evolution). Costs a copy of the files, only when such a column is in them. The files as they are now,
    and those columns."""
    import duckdb

    from landfall.engines.duckdb.sql import lit, q
    from landfall.engines.duckdb.writing import parquet

    empty = [
        n
        for n, arrow in as_read(ctx, df)
        if arrow == "null" and files and all(f.stats.get(n, {}).get("null_count") == str(f.rows) for f in files)
    ]
    if not empty:
        return files, []
    nulls = ", ".join(f"NULL AS {q(n)}" for n in empty)
    con = duckdb.connect()
    out = []
    try:
        for f in files:
            copy = f"{f.path}.null.parquet"
            rows = f"SELECT * REPLACE ({nulls}) FROM read_parquet({lit(f.path)}, hive_partitioning = false)"
            con.execute(f"COPY ({rows}) TO {lit(copy)} ({parquet(files_as)})")
            os.replace(copy, f.path)
            stats = footer_stats(pq.read_metadata(f.path))
            out.append(msgspec.structs.replace(f, bytes=os.path.getsize(f.path), stats=stats))
    finally:
        con.close()
    return out, empty


def footer_stats(meta: Any) -> dict[str, dict[str, str]]:
    """Per top-level column: min, max and null count over the row groups, as text (DuckDB's RETURN_STATS form)."""
    out: dict[str, dict[str, Any]] = {}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for i in range(group.num_columns):
            col = group.column(i)
            if "." in col.path_in_schema:
                continue  # a field of a nested value
            st = col.statistics
            if st is None:
                continue
            acc = out.setdefault(col.path_in_schema, {"null_count": 0})
            if st.has_null_count and acc.get("null_count") is not None:
                acc["null_count"] += st.null_count
            else:
                acc["null_count"] = None
            if st.has_min_max:
                lo, hi = st.min, st.max
                acc["min"] = lo if "min" not in acc else min(acc["min"], lo)
                acc["max"] = hi if "max" not in acc else max(acc["max"], hi)
            else:
                acc["no_min_max"] = True
    result: dict[str, dict[str, str]] = {}
    for name, acc in out.items():
        st: dict[str, str] = {}
        if acc.get("null_count") is not None:
            st["null_count"] = str(acc["null_count"])
        if "min" in acc and not acc.get("no_min_max"):
            st["min"], st["max"] = _text(acc["min"]), _text(acc["max"])
        result[name] = st
    return result


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if hasattr(value, "isoformat"):  # a date, a time
        return value.isoformat()
    return str(value)


def arrow_schema(df: DataFrame, files: list[StagedFile]) -> pa.Schema:
    """The output's Arrow schema, partition columns included: from a written file's footer, and Spark's types
    for the columns that live in folder names."""
    from pyspark.sql.pandas.types import to_arrow_schema

    visible = T.StructType([f for f in df.schema.fields if f.name not in HIDDEN])
    whole = to_arrow_schema(visible, timezone="UTC")
    if not files:
        return whole
    fields = {f.name: f for f in pq.read_schema(files[0].path).remove_metadata()}
    return pa.schema([fields.get(f.name, f) for f in whole])


def file_sources(
    ctx: Ctx, files: list[StagedFile], carried: bool = False
) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
    """Which landed file the rows of each written file came from: `(relpath, source key, rows)` and totals. A
    single file's rows are all its own, unless the files carry rows of others (`carried`: a merge rewrote table
    files with it); a batch's files, and those, are read back (`lineage: false` leaves no `_source_file` to read:
    the rows are counted as the job's)."""
    if not ctx.batch and not (carried and ctx.workflow.lineage):
        key = ctx.inputs[0].source.key
        return [(f.relpath, key, f.rows) for f in files], {key: sum(f.rows for f in files)}
    out, totals = [], Counter()
    counts = source_counts([f.path for f in files])
    for f in files:
        for key, n in counts.get(f.path, {}).items():
            out.append((f.relpath, key, n))
            totals[key] += n
    return out, dict(totals)


def source_counts(paths: list[str]) -> dict[str, dict[str, int]]:
    """For Parquet files: how many rows of each landed file (`_source_file`) each holds (from the one column)."""
    out: dict[str, dict[str, int]] = {}
    for path in paths:
        table = pq.read_table(path, columns=["_source_file"])
        counts = table.column("_source_file").value_counts()
        out[path] = {v["values"].as_py(): int(v["counts"].as_py()) for v in counts}
    return out


def _partition_of(rel_dir: str, *, spark: bool = False) -> dict[str, str | None]:
    """The partition values of a file's folders; `spark`: folders Spark named (its stand-ins taken back)."""
    values = partitions.values_of(rel_dir)
    if spark:
        return {k: _SPARK_FOLDERS.get(v, v) if v is not None else None for k, v in values.items()}
    return values
