"""The transform steps on Spark DataFrames: rename, cast, compute, filter, sql, drop, normalize_names, dedupe,
flatten, explode and child_tables. Expressions and queries are DuckDB SQL, translated by `translate`."""

from __future__ import annotations

from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall.config import FlattenSpec
from landfall.engines.base import JOINED_HIDDEN, flat_collision
from landfall.engines.spark import translate
from landfall.engines.spark.casts import json_text, strict_cast
from landfall.engines.spark.context import HIDDEN, PID, SRC, Ctx, c, columns
from landfall.engines.spark.session import error_text
from landfall.engines.spark.types import arrow_of, spark_type, sql_name
from landfall.errors import InvalidInput
from landfall.naming import normalized
from landfall.schema import JSON
from landfall.sqlcheck import tables_of
from landfall.types import cast_refused, user_type


class StepError(Exception):
    """A step that cannot apply to these columns (named in the message)."""


def transform(ctx: Ctx, df: DataFrame) -> DataFrame:
    for where, step in ctx.workflow.steps():
        try:
            df = _step(ctx, df, step, where)
        except (StepError, PySparkException) as exc:
            text = str(exc) if isinstance(exc, StepError) else error_text(exc)
            raise InvalidInput(f"{where}: {text}") from None
    return df


def _step(ctx: Ctx, df: DataFrame, step: Any, where: str) -> DataFrame:
    kind = step.kind
    cols = columns(df)
    if kind == "rename":
        _require(cols, step.rename, "to rename")
        return df.withColumnsRenamed(dict(step.rename))
    if kind == "cast":
        _require(cols, step.cast, "to cast")
        types = {f.name: f.dataType for f in df.schema.fields}
        for n, t in step.cast.items():
            if why := cast_refused(n, arrow_of(types[n]), user_type(t)):
                raise StepError(why)
        casts = {
            n: json_text(c(n), types[n], n)
            if user_type(t) == JSON
            else strict_cast(c(n), types[n], spark_type(user_type(t)), exact=False, name=n)
            for n, t in step.cast.items()
        }
        return df.withColumns(casts)
    if kind == "compute":
        return df.withColumns(
            {n: F.expr(translate.expression(e, f"{where} column `{n}`")) for n, e in step.compute.items()}
        )
    if kind == "filter":
        return df.where(F.expr(translate.expression(step.filter, where)))
    if kind == "drop":
        if not step.missing_ok:
            _require(cols, step.drop, "to drop (`drop: {columns: [...], missing_ok: true}` allows that)")
        present = [n for n in step.drop if n in cols]
        return df.drop(*present) if present else df
    if kind == "normalize_names":
        renames = normalized(cols, [n for n, _ in ctx.job.table_schema or []])
        return df.select(*[c(n).alias(renames[n]) if n in renames else c(n) for n in df.columns])
    if kind == "dedupe":
        keys = ([c(SRC)] if SRC in df.columns else []) + [c(k) for k in step.dedupe.keys]
        _require(cols, step.dedupe.keys, "to dedupe on")
        order = (
            [F.expr(translate.expression(step.dedupe.order_by, f"{where} `order_by`")).desc_nulls_last()]
            if step.dedupe.order_by
            else [F.lit(1)]
        )
        w = Window.partitionBy(*keys).orderBy(*order)
        return df.withColumn("__lf_rn", F.row_number().over(w)).where(c("__lf_rn") == 1).drop("__lf_rn")
    if kind == "flatten":
        return flatten(df, step.flatten)
    if kind == "explode":
        return explode(df, step.explode)
    if kind == "child_tables":
        return child_tables(ctx, df, step.child_tables)
    if kind == "sql":
        for table_name, (table, files) in ctx.job.tables.items():  # the tables it joins, as of the run's start
            if table_name in tables_of(step.sql):
                ctx.named_view(table_name, _joined(ctx, table, files))
        name = ctx.view(df)
        return ctx.spark.sql(translate.query(step.sql, name, where))
    raise StepError(f"unknown step `{kind}`")  # pragma: no cover - config validation prevents it


def _joined(ctx: Ctx, table: Any, files: list[str]) -> DataFrame:
    """A table a `sql` step joins: its files as listed when the run started, without its lineage columns; a column
    none of them holds any more (`query.table_select`) NULL."""
    if files:
        paths = [f"{table.location}/{f}" for f in files]
        df = ctx.spark.read.option("basePath", table.location).parquet(*paths)
        held = set(df.columns)
        df = df.select("*", *[F.lit(None).cast(spark_type(t)).alias(n) for n, t in table.schema if n not in held])
    else:
        schema = T.StructType([T.StructField(n, spark_type(t)) for n, t in table.schema])
        df = ctx.spark.createDataFrame([], schema)
    return df.drop(*[c for c in df.columns if c in JOINED_HIDDEN])


def flatten(df: DataFrame, spec: Any, only: str | None = None) -> DataFrame:
    """Nested objects become columns: `customer.name` -> `customer_name`, up to `max_depth` levels; paths in
    `keep_json` (and anything deeper) become JSON strings. Lists stay lists (see `explode`)."""
    keep = set(spec.keep_json)
    parts: list[Column] = []
    paths: list[list[str]] = []

    def walk(col: Column, path: list[str], dt: T.DataType, depth: int) -> None:
        name = spec.separator.join(path)
        dotted = ".".join(path)
        if isinstance(dt, T.StructType) and dotted not in keep and depth < spec.max_depth:
            for f in dt.fields:
                walk(col.getField(f.name), [*path, f.name], f.dataType, depth + 1)
            return
        paths.append(path)
        if isinstance(dt, T.StructType) or dotted in keep:
            parts.append(to_json(col).alias(name))
        else:
            parts.append(col.alias(name))

    for f in df.schema.fields:
        if (only is not None and f.name != only) or f.name in HIDDEN:
            parts.append(c(f.name))
            if f.name not in HIDDEN:
                paths.append([f.name])
            continue
        walk(c(f.name), [f.name], f.dataType, 0)
    if why := flat_collision(paths, spec.separator, explode=only is not None):
        raise StepError(why)
    return df.select(*parts)


def to_json(col: Column) -> Column:
    """JSON text of a value, nulls kept (as DuckDB's `to_json`)."""
    return F.to_json(col, {"ignoreNullFields": "false"})


def explode(df: DataFrame, column: str) -> DataFrame:
    """One row per element of a list column, parent fields repeated (a parent with an empty or missing list
    keeps one row with nulls); object elements become `<column>_<field>` columns."""
    types = {f.name: f.dataType for f in df.schema.fields}
    if column not in types:
        raise StepError(f"no column `{column}` to explode; columns are " + ", ".join(f"`{n}`" for n in columns(df)))
    dt = types[column]
    if not isinstance(dt, T.ArrayType):
        raise StepError(f"`{column}` is {sql_name(dt)}, not a list; nothing to explode")
    others = [c(n) for n in df.columns if n != column]
    out = df.select(*others, F.explode_outer(c(column)).alias(column))
    if isinstance(dt.elementType, T.StructType):
        out = flatten(out, FlattenSpec(max_depth=1), only=column)
    return out


def child_tables(ctx: Ctx, df: DataFrame, spec: Any) -> DataFrame:
    """List columns leave the parent rows for child DataFrames (`ctx.children`), one row per element: the
    parent's key (or `_parent_row_id`), `_pos`, and the element's fields (or `value`). A dotted path
    (`products.tags`) takes a list out of the elements of another child the same way, one level down.

    Parents and children are written by separate Spark jobs, so the ids that link them must not be computed
    twice: the numbered rows are checkpointed (computed once, kept by the executors) before anything reads them.
    """
    types = {f.name: f.dataType for f in df.schema.fields}
    top = [col for col in spec.columns if "." not in col]
    # JSON nulls alone (held as text): no elements, no child rows
    untyped = {
        col for col in top if "NULL" in ctx.json_detected.get(col, "") and not isinstance(types.get(col), T.ArrayType)
    }
    for col in top:
        if col not in types:
            raise StepError(
                f"no list column `{col}` for a child table; columns are " + ", ".join(f"`{n}`" for n in columns(df))
            )
        if col not in untyped and not isinstance(types[col], T.ArrayType):
            raise StepError(f"`{col}` is {sql_name(types[col])}, not a list; it cannot become a child table")
    _require(list(types), spec.key, "as the child tables' key")
    commit = ctx.job.commit_id
    base = df.withColumn(PID, F.monotonically_increasing_id())
    if not spec.key:
        base = base.withColumn("_row_id", F.md5(F.concat(F.lit(f"{commit}#"), c(PID).cast("string"))))
    base = base.localCheckpoint(eager=True)
    root = list(spec.key)
    path = [SRC] if SRC in types else []
    made: dict[str, DataFrame] = {}
    nested = {col.rpartition(".")[0] for col in spec.columns if "." in col}
    for col in sorted(spec.columns, key=lambda x: x.count(".")):
        if col.split(".")[0] in untyped:
            continue
        parent, _, name = col.rpartition(".")
        source = made[parent] if parent else base
        if parent:
            have = {f.name: f.dataType for f in source.schema.fields}
            if name not in have or not isinstance(have[name], T.ArrayType):
                raise StepError(
                    f"`{col}`: the elements of `{parent}` have no list `{name}`; they have "
                    + ", ".join(f"`{n}`" for n in have if not n.startswith("_"))
                )
            link = [c(k) for k in root] + [c("_row_id").alias("_parent_row_id")]
            link += [] if spec.key else [c("_root_row_id")]
            above = c("_row_id")
        else:
            link = [c(k) for k in root] or [c("_row_id").alias("_parent_row_id")]
            above = c(PID).cast("string")
        exploded = source.where(c(name).isNotNull()).select(
            *link,
            *[c(p) for p in path],
            c(PID),
            above.alias("__lf_above"),
            *([c("_row_id").alias("_root_row_id")] if not parent and not spec.key and col in nested else []),
            F.posexplode(c(name)).alias("_pos", "__lf_value"),
        )
        if col in nested:
            exploded = exploded.withColumn(
                "_row_id",
                F.md5(F.concat_ws("#", F.lit(commit), F.lit(col), c("__lf_above"), c("_pos").cast("string"))),
            )
        exploded = exploded.drop("__lf_above")
        element = {f.name: f.dataType for f in exploded.schema.fields}["__lf_value"]
        taken = set(exploded.columns) - {"__lf_value"}
        if isinstance(element, T.StructType):
            fields = [
                c("__lf_value").getField(f.name).alias(f.name if f.name not in taken else f"{name}_{f.name}")
                for f in element.fields
            ]
        else:
            fields = [c("__lf_value").alias("value")]
        exploded = exploded.withColumn("_pos", c("_pos").cast("long"))
        order = [n for n in exploded.columns if n not in ("_pos", "__lf_value", "_row_id", "_root_row_id")]
        rest = [n for n in ("_pos", "_row_id", "_root_row_id") if n in exploded.columns]
        made[col] = exploded.select(*[c(n) for n in order + rest], *fields)
    for col, table in ctx.workflow.child_tables.items():
        if col.split(".")[0] in untyped:
            continue
        below = [x.rpartition(".")[2] for x in spec.columns if x.rpartition(".")[0] == col]
        hidden = ["_root_row_id"] if "." not in col and "_root_row_id" in made[col].columns else []
        out = made[col]
        if below or hidden:
            out = out.drop(*below, *hidden)
        ctx.children[table] = out
    return base.drop(*top)


def _require(cols: list[str], wanted: Any, what: str) -> None:
    missing = [m for m in wanted if m not in cols]
    if missing:
        raise StepError(
            f"no column {', '.join(f'`{m}`' for m in missing)} {what}; columns are " + ", ".join(f"`{n}`" for n in cols)
        )


__all__ = ["transform", "flatten", "explode", "child_tables", "to_json"]
