"""Table upkeep on Spark: a changed file's neighbours rewritten without its rows, a partition's small files
compacted, quarantined rows checked again (replay). Each reads table files (copied from an object store to local
scratch first, `local`) and writes them as the table's `write.compression` and `write.parquet_version` say."""

from __future__ import annotations

import os
from collections.abc import Callable
from math import ceil
from typing import Any

from msgspec.structs import replace
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall.config import ParquetFiles
from landfall.engines.base import Job, Replayed, StagedFile
from landfall.engines.spark import quality, writing
from landfall.engines.spark.casts import strict_cast
from landfall.engines.spark.context import LINEAGE, Ctx, c
from landfall.engines.spark.types import spark_type
from landfall.schema import merged, schema_diff


def rewrite(
    spark: Any,
    local: Callable[[str, str], str],
    files: list[tuple[str, str]],
    exclude_keys: list[str],
    staging: str,
    commit_id: str,
    files_as: ParquetFiles = ParquetFiles(),
) -> list[StagedFile]:
    out = []
    for i, (src, rel) in enumerate(files):
        copy = local(src, os.path.join(staging, "_remote"))
        df = spark.read.parquet(_link(staging, f"_rewrite/{i}.parquet", copy))
        df = df.where(~c("_source_file").isin(*exclude_keys)).coalesce(1)
        made = writing.write(
            spark, df, os.path.join(staging, "rewrite", str(i)), commit_id, [], files_as, suffix=f"-r{i}"
        )
        for f in made:
            dest = os.path.join(staging, "rewrite", f"part-{commit_id}-r{i}.parquet")
            os.replace(f.path, dest)
            rel_dir = os.path.dirname(rel)
            out.append(
                StagedFile(
                    path=dest,
                    relpath=os.path.join(rel_dir, os.path.basename(dest)),
                    rows=f.rows,
                    bytes=f.bytes,
                    partition=writing._partition_of(rel_dir),
                    stats=f.stats,
                )
            )
    return out


def compact(
    spark: Any,
    local: Callable[[str, str], str],
    files: list[tuple[str, str]],
    staging: str,
    commit_id: str,
    target_file_size: int,
    files_as: ParquetFiles = ParquetFiles(),
) -> list[StagedFile]:
    rel_dir = os.path.dirname(files[0][1])
    remote = os.path.join(staging, "_remote")
    copies = [local(a, remote) for a, _ in files]
    links = [_link(staging, f"_compact/{i}.parquet", a) for i, a in enumerate(copies)]
    df = spark.read.option("mergeSchema", "true").parquet(*links)
    size = sum(os.path.getsize(a) for a in copies)
    df = df.coalesce(max(1, ceil(size / max(1, target_file_size))))
    made = writing.write(spark, df, os.path.join(staging, "data", rel_dir), commit_id, [], files_as)
    for f in made:
        f.relpath = os.path.join(rel_dir, f.relpath)
        f.partition = writing._partition_of(rel_dir)
    return made


def replay(spark: Any, local: Callable[[str, str], str], job: Job, files: list[str], run_id: str | None) -> Replayed:
    ctx = Ctx(spark=spark, job=job, fmt="parquet", local=local)
    try:
        remote = os.path.join(job.scratch_dir, "_remote")
        links = [_link(job.staging, f"_replay/{i}.parquet", local(p, remote)) for i, p in enumerate(files)]
        src = _read_quarantine(spark, links)
        src = src.withColumn("__lf_qid", F.monotonically_increasing_id()).localCheckpoint(eager=True)
        picked = c("_run_id") == run_id if run_id else F.lit(True)
        if "_raw" in src.columns:  # rows that could not be parsed stay: re-land a fixed file
            picked = picked & ~F.coalesce(c("_rule") == "parse", F.lit(False))
        meta = ["_line", "_rule", "_column", "_reason", "_quarantined_at", "_ingested_at", "_run_id", "_raw"]
        merging = job.workflow.write.mode == "merge"
        data = src.where(picked)
        if merging:  # merged as loaded when the row's file was
            data = data.withColumn("__lf_loaded", c("_ingested_at"))
        data = data.drop(*[m for m in meta if m in src.columns])
        rules = [r for r in job.workflow.validate_ if r.kind != "row_count"]
        for i, rule in enumerate(rules):
            data = quality.violation(ctx, rule, data, f"__lf_bad{i}")
        bad = F.lit(False)
        for i in range(len(rules)):
            bad = bad | F.coalesce(c(f"__lf_bad{i}"), F.lit(False))
        # a row that passes the rules now but holds a value its table column cannot stays, its rule `schema`
        misfit, why = _misfit(ctx, data)
        flagged = data.withColumns({"__lf_bad": bad | misfit, "__lf_misfit": ~bad & misfit})
        flagged = flagged.drop(*[f"__lf_bad{i}" for i in range(len(rules))])
        flagged = flagged.localCheckpoint(eager=True)
        counts = flagged.agg(F.count_if(~c("__lf_bad")).alias("p"), F.count_if(c("__lf_bad")).alias("k")).first()
        passed, kept = int(counts["p"]), int(counts["k"])
        if not passed:
            return Replayed([], [], [], 0, kept)
        good = (
            flagged.where(~c("__lf_bad"))
            .drop("__lf_bad", "__lf_misfit", "__lf_qid")
            .select(
                "*",
                F.lit(job.ingested_at).cast(T.TimestampType()).alias("_ingested_at"),
                F.lit(job.sources[0].run_id).alias("_run_id"),
            )
        )
        good = writing.shape_for_table(ctx, good)
        replaced: list[str] = []
        if merging:
            good, replaced = writing.merge(ctx, good, loaded="__lf_loaded")
        parts = [p.name for p in job.workflow.write.partition_by]
        table_files = writing.write(
            ctx, good, os.path.join(job.staging, "data"), job.commit_id, parts, job.workflow.write.files
        )
        gone = flagged.where(~c("__lf_bad")).select("__lf_qid")
        rest = src.join(gone, on="__lf_qid", how="left_anti")
        if why is not None:  # the rows that stay for the table's schema now say so
            stays = flagged.where(c("__lf_misfit")).select("__lf_qid", F.lit(True).alias("__lf_now"))
            rest = rest.join(stays, on="__lf_qid", how="left")
            now = F.coalesce(c("__lf_now"), F.lit(False))
            said = {"_rule": "schema", "_column": why[0], "_reason": why[1]}
            rest = rest.withColumns({k: F.when(now, F.lit(v)).otherwise(c(k)) for k, v in said.items()})
            rest = rest.drop("__lf_now")
        rest = rest.drop("__lf_qid")
        q_files = writing.write(
            ctx, rest, os.path.join(job.staging, "quarantine"), job.commit_id, [], job.workflow.write.files
        )
        return Replayed(table_files, q_files, replaced, passed, kept)
    finally:
        ctx.drop_views()


def _read_quarantine(spark: Any, paths: list[str]) -> Any:
    """A quarantine's files as one frame: files of other types in a column (text set aside from a number column
    beside numbers), which Spark's `mergeSchema` refuses, read apart and each cast to a type that holds both
    (`landfall.schema.merged`, text where none does), as the catalog holds the quarantine."""
    import pyarrow.parquet as pq

    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for path in paths:
        groups.setdefault(tuple((f.name, str(f.type)) for f in pq.read_schema(path)), []).append(path)
    if len(groups) == 1:
        return spark.read.parquet(*paths)
    kinds = list(groups)
    held = list(kinds[0])
    for kind in kinds[1:]:
        held = merged(held, list(kind), to_text=True)
    types = dict(held)
    frames = []
    for kind, part in groups.items():
        have = dict(kind)
        df = spark.read.parquet(*part)
        frames.append(df.withColumns({n: c(n).cast(spark_type(types[n])) for n in df.columns if have[n] != types[n]}))
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df, allowMissingColumns=True)
    return out


def _misfit(ctx: Ctx, data: Any) -> tuple[Any, tuple[str, str] | None]:
    """True for a row of quarantined `data` holding a value its table column's type cannot (a text column set
    aside from a number one), with the columns and the reason (None when every column fits); see the DuckDB
    engine's `quality._misfit`."""
    job = ctx.job
    if not job.table_schema:
        return F.lit(False), None
    read = [(n, t) for n, t in writing.as_read(ctx, data) if n not in ("__lf_qid", "__lf_loaded")]
    diff = schema_diff(dict(read), job.table_schema, LINEAGE, [])
    if not diff.changed:
        return F.lit(False), None
    types = {f.name: f.dataType for f in data.schema.fields}
    fits = [
        c(n).isNotNull() & strict_cast(c(n), types[n], spark_type(diff.table[n]), try_=True).isNull()
        for n in diff.changed
    ]
    return F.coalesce(quality._any(fits), F.lit(False)), (",".join(diff.changed), replace(diff, new=[]).misfit_reason())


def _link(staging: str, name: str, target: str) -> str:
    link = os.path.join(staging, name)
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.abspath(target), link)
    return link
