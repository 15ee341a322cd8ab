"""Record numbers and lines on Spark, exactly.

Spark has no row numbers of its own, and `monotonically_increasing_id` is not one: it is the task's partition
index in the high bits and the row's position within that task in the low bits. What holds, and what this
module uses: a file split (`_metadata.file_block_start`) is read whole by one task, in file order, so the ids of
one split's rows are consecutive. A record's number in its file is then the rows of the file's earlier splits
plus its position in its own split, `MID - min(MID of the split)`. One small aggregation over the reader's rows
gives each split's row count and first id; a broadcast join adds `ROW` to the rows asked about.

The reader is the same plan each time, so each evaluation gives each row the same split and id. Only rows that
are reported (a rule broken, a record that could not be parsed) need it: clean files never pay for it. Parquet
has `_metadata.row_index`, which is the record number already.

From record numbers to lines: `lines.record_lines`, one pass over the local file.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall.engines.spark.context import BLOCK, MID, ROW, SRC, Ctx, c
from landfall.engines.spark.lines import record_lines


def with_rows(ctx: Ctx, df: DataFrame) -> DataFrame:
    """`df` (rows from the job's reader, carrying BLOCK and MID) with ROW: each row's record number in its file."""
    if ROW in df.columns:
        return df
    parts = []
    for raw in ctx.raws:
        keys = [c(SRC)] if SRC in raw.columns else [F.lit(0).alias(SRC)]
        parts.append(raw.select(*keys, c(BLOCK), c(MID)))
    raw = parts[0]
    for p in parts[1:]:
        raw = raw.unionByName(p)
    stats = raw.groupBy(SRC, BLOCK).agg(F.count(F.lit(1)).alias("n"), F.min(MID).alias("first")).collect()
    bases = []
    for src in sorted({r[SRC] for r in stats}):
        before = 0
        for r in sorted((r for r in stats if r[SRC] == src), key=lambda r: r[BLOCK]):
            bases.append((src, r[BLOCK], before - r["first"] + 1))
            before += r["n"]
    schema = T.StructType(
        [
            T.StructField(SRC, T.IntegerType()),
            T.StructField(BLOCK, T.LongType()),
            T.StructField("__lf_base", T.LongType()),
        ]
    )
    table = ctx.spark.createDataFrame(bases, schema)
    if SRC not in df.columns:
        table = table.drop(SRC)
    on = [SRC, BLOCK] if SRC in df.columns else [BLOCK]
    return df.join(F.broadcast(table), on=on, how="left").withColumn(ROW, c(MID) + c("__lf_base")).drop("__lf_base")


def line_table(ctx: Ctx, df: DataFrame) -> DataFrame:
    """`(SRC, ROW, _line)` for the rows of `df` (which carry ROW): their records' lines, from the local files."""
    src_col = c(SRC) if SRC in df.columns else F.lit(0)
    wanted: dict[int, list[int]] = {}
    for r in df.select(src_col.alias("s"), c(ROW).alias("r")).distinct().collect():
        if r["r"] is not None:
            wanted.setdefault(int(r["s"]), []).append(int(r["r"]))
    rows = []
    for src, records in wanted.items():
        inp = ctx.inputs[src]
        found = record_lines(inp.lines_path, ctx.fmt, records, dialect=inp.dialect, whole=inp.whole)
        rows.extend((src, r, found.get(r)) for r in records)
    schema = T.StructType(
        [T.StructField(SRC, T.IntegerType()), T.StructField(ROW, T.LongType()), T.StructField("_line", T.LongType())]
    )
    return ctx.spark.createDataFrame(rows, schema)


def with_lines(ctx: Ctx, df: DataFrame) -> DataFrame:
    """`df` with `_line`: the line each row's record starts on (rows of a reader with BLOCK and MID)."""
    numbered = with_rows(ctx, df)
    lines = line_table(ctx, numbered)
    if SRC not in numbered.columns:
        lines = lines.drop(SRC)
    on = [SRC, ROW] if SRC in numbered.columns else [ROW]
    return numbered.join(F.broadcast(lines), on=on, how="left")


def first_line(ctx: Ctx, df: DataFrame) -> tuple[int | None, int | None]:
    """(input index, line) of the first record among the rows of `df`, or (None, None) when it has none."""
    numbered = with_rows(ctx, df)
    src_col = c(SRC) if SRC in numbered.columns else F.lit(0)
    first = numbered.select(src_col.alias("s"), c(ROW).alias("r")).orderBy("s", "r").first()
    if first is None:
        return None, None
    inp = ctx.inputs[int(first["s"])]
    found = record_lines(inp.lines_path, ctx.fmt, [int(first["r"])], dialect=inp.dialect, whole=inp.whole)
    return int(first["s"]), found.get(int(first["r"]))
