"""Writing: lineage columns, the table's types and partitions, merge (copy-on-write upsert), Parquet files
with their stats, rewrites and compaction."""

from __future__ import annotations

import os
import shutil
from typing import Any

import duckdb

from landfall import partitions
from landfall.config import ParquetFiles, Workflow, parse_size
from landfall.engines.base import StagedFile, not_a_time, not_in_output, refuse_lineage_names, untyped_times
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.casts import cast_sql, conformed, is_nested
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.diagnose import explain, line_holding
from landfall.engines.duckdb.sql import (
    LINEAGE,
    PATH,
    PID,
    ROW,
    lit,
    q,
)
from landfall.engines.duckdb.types import arrow_type, duck_type, exact_kind
from landfall.errors import InvalidInput
from landfall.schema import align
from landfall.types import stored_type


def parquet(files_as: ParquetFiles) -> str:
    """COPY options writing Parquet as `files_as` says (DuckDB names `write.compression: none` `uncompressed`)."""
    codec = "uncompressed" if files_as.compression == "none" else files_as.compression
    return f"FORMAT parquet, COMPRESSION {codec}" + (", PARQUET_VERSION V2" if files_as.version == "v2" else "")


def written_as(workflow: Workflow) -> dict[str, object]:
    """`write_to` options from a workflow's `write`: how its Parquet files are written and their target size (for
    every file a job writes: the table's, its child tables', its quarantine's)."""
    return {"files_as": workflow.write.files, "file_size": parse_size(workflow.write.target_file_size)}


def rewrite(
    con: duckdb.DuckDBPyConnection,
    files: list[tuple[str, str]],
    exclude_keys: list[str],
    staging: str,
    commit_id: str,
    files_as: ParquetFiles = ParquetFiles(),
) -> list[StagedFile]:
    out = []
    keys = ", ".join(lit(k) for k in exclude_keys)
    dest_dir = os.path.join(staging, "rewrite")
    os.makedirs(dest_dir, exist_ok=True)
    for i, (src, rel) in enumerate(files):
        dest = os.path.join(dest_dir, f"part-{commit_id}-r{i}.parquet")
        n = con.execute(
            f"COPY (SELECT * FROM read_parquet({lit(src)}, hive_partitioning = false) "
            f"WHERE _source_file NOT IN ({keys})) TO {lit(dest)} ({parquet(files_as)})"
        ).fetchone()[0]
        relpath = os.path.join(os.path.dirname(rel), os.path.basename(dest))
        out.append(StagedFile(path=dest, relpath=relpath, rows=int(n), bytes=os.path.getsize(dest)))
    return out


def compact(
    con: duckdb.DuckDBPyConnection,
    files: list[tuple[str, str]],
    staging: str,
    commit_id: str,
    target_file_size: int,
    files_as: ParquetFiles = ParquetFiles(),
) -> list[StagedFile]:
    rel_dir = os.path.dirname(files[0][1])
    out_dir = os.path.join(staging, "data", rel_dir)
    os.makedirs(out_dir, exist_ok=True)
    paths = "[" + ", ".join(lit(a) for a, _ in files) + "]"
    rows = con.execute(
        f"COPY (SELECT * FROM read_parquet({paths}, hive_partitioning = false, union_by_name = true)) TO "
        f"{lit(out_dir)} ({parquet(files_as)}, FILE_SIZE_BYTES {int(target_file_size)}, "
        f"FILENAME_PATTERN {lit('part-' + commit_id + '-{i}')}, RETURN_STATS)"
    ).fetchall()
    return [
        StagedFile(
            path=f, relpath=os.path.join(rel_dir, os.path.basename(f)), rows=int(n), bytes=int(b), stats=st or {}
        )
        for f, n, b, _footer, st, _pk, _x in rows
        if n
    ]


def with_lineage(cx: JobContext, view: str) -> str:
    """`_source_file`, `_ingested_at`, `_run_id` on every row (replacing columns of those names); the internal
    path and row-number columns go."""
    job = cx.job
    described = dict(cx.describe(view))
    ingested = f"{lit(job.ingested_at.isoformat())}::TIMESTAMPTZ AS _ingested_at"
    drop = [c for c in (PATH, ROW, PID, *LINEAGE) if c in described]
    star = f"v.* EXCLUDE ({', '.join(q(c) for c in drop)})" if drop else "v.*"
    if PATH in described:
        return (
            f"SELECT {star}, s.key AS _source_file, {ingested}, s.run_id AS _run_id FROM {view} v "
            f"JOIN __lf_sources s USING ({q(PATH)})"
        )
    # one file: constants, typed as one-value ENUMs so that the Parquet writer takes them from a dictionary
    # instead of hashing the same string on every row (a quarter of a plain load's CPU; stored as plain strings)
    src = job.sources[0]
    key, run = lit(src.key), lit(src.run_id)
    return (
        f"SELECT {star}, CAST({key} AS ENUM({key})) AS _source_file, {ingested}, "
        f"CAST({run} AS ENUM({run})) AS _run_id FROM {view} v"
    )


def finish(cx: JobContext, view: str) -> str:
    """Partition columns, lineage, and the table's types."""
    job = cx.job
    wf = job.workflow
    described = dict(cx.describe(view))
    has_path = PATH in described
    if not has_path and len(job.sources) > 1:
        raise InvalidInput(
            f"workflow `{wf.name}`: a `sql` step dropped the file column; select `*` from `input` or set `batch: false`"
        )
    refuse_lineage_names(described)
    view = cx.view(with_lineage(cx, view))
    return shape_for_table(cx, view)


def shape_for_table(cx: JobContext, view: str) -> str:
    """Partition expression columns, and the table's types where they fit without loss."""
    job = cx.job
    wf = job.workflow
    cols = dict(cx.describe(view))
    for p in wf.write.partition_by:
        if p.column not in cols:
            raise not_in_output(wf, "partition column", [p.column], list(cols))
    view = stored_types(cx, view)
    if job.table_schema:
        view = cast_to(cx, view, job.table_schema)
    return _partition_columns(cx, view) if wf.write.partition_by else view


def _partition_columns(cx: JobContext, view: str) -> str:
    """The partition expression columns (`year(ts)`, of the column as the table holds it), and the partition
    columns that hold no value here typed: one of no type yet (JSON nulls alone) as text, as a folder's value reads
    and as Spark writes it (a Delta table partitioned by an untyped column is one delta-rs cannot read); the column
    a time partition takes, as a timestamp (`untyped_times`)."""
    wf = cx.job.workflow
    cols = dict(cx.describe(view))
    table = dict(cx.job.table_schema or [])
    replace = {
        p.column: "NULL::VARCHAR" for p in wf.write.partition_by if not p.function and cols[p.column] == '"NULL"'
    }
    functions = [p for p in wf.write.partition_by if p.function]
    nulls = set()  # columns of other types holding only nulls (JSON nulls, empty CSV fields): as timestamps
    for p in functions:
        if not cols[p.column].startswith(("DATE", "TIMESTAMP")):
            one = cx.con.execute(f"SELECT {q(p.column)} FROM {view} WHERE {q(p.column)} IS NOT NULL LIMIT 1")
            if (held := one.fetchone()) is not None:
                kind = cols[p.column].strip('"')
                raise not_a_time(wf, p.function, p.column, kind, held[0], table.get(p.column, "null") != "null")
            nulls.add(p.column)
    typed = untyped_times(wf, {n for n in nulls if cols[n] != '"NULL"'}, table)
    replace |= {n: f"{q(n)}::TIMESTAMP" for n in typed}
    if replace:
        view = cx.view(f"SELECT * REPLACE ({', '.join(f'{sql} AS {q(n)}' for n, sql in replace.items())}) FROM {view}")

    def of(p: Any) -> str:
        return f"CAST({q(p.column)} AS TIMESTAMP)" if p.column in nulls and p.column not in typed else q(p.column)

    if functions:
        view = cx.view(f"SELECT *, {', '.join(f'{p.function}({of(p)}) AS {q(p.name)}' for p in functions)} FROM {view}")
    return view


def stored_types(cx: JobContext, view: str) -> str:
    """Columns of types the table format cannot hold (`Job.stored_as`: a UUID, an interval, Delta's missing time
    type), cast to what it stores instead, and whole numbers beyond 64 bits a step made (`sum()` of integers is
    HUGEINT, which DuckDB's Parquet writer stores as doubles: 3.0, and digits lost past 2^53) as `decimal(38,0)`,
    exact, as the readers read them (`types.exact_kind`); at any depth. A column the table already holds as DuckDB
    wrote it before (a double, an interval) is written so still."""
    repl = []
    held = dict(cx.job.table_schema or [])
    for name, duck in cx.describe(view):
        exact = exact_kind(duck)
        arrow = arrow_type(exact)
        stored = stored_type(arrow, cx.job.stored_as)
        if held.get(name) == arrow_type(duck) != stored:
            continue
        if stored != arrow or exact != duck:
            repl.append(f"CAST({q(name)} AS {duck_type(stored) if stored != arrow else exact}) AS {q(name)}")
    return cx.view(f"SELECT * REPLACE ({', '.join(repl)}) FROM {view}") if repl else view


def cast_to(cx: JobContext, view: str, table_schema: list[tuple[str, str]]) -> str:
    """The table's types (Arrow type strings) where the view's columns fit them without loss."""
    have = cx.describe(view)
    casts = align([(n, arrow_type(t)) for n, t in have], table_schema)
    if not casts:
        return view
    types = dict(have)

    def fit(c: str, t: str) -> str:
        if duck_type(t) == "JSON" and types.get(c) != "JSON":  # a value of another kind in a JSON column: the
            return f"to_json({q(c)})"  # value as JSON (text `b` is the JSON string "b"), not text parsed as JSON
        src = types.get(c, "")
        if "JSON" in src or is_nested(src):  # field by field, under the table's names (see `conformed`)
            return conformed(q(c), arrow_type(src), t, c)
        return cast_sql(q(c), types.get(c), duck_type(t), name=c)

    repl = ", ".join(f"{fit(c, t)} AS {q(c)}" for c, t in casts.items())
    return cx.view(f"SELECT * REPLACE ({repl}) FROM {view}")


def merge(cx: JobContext, view: str, loaded: str | None = None) -> tuple[str, list[str]]:
    """Copy-on-write upsert: the table files holding any of the batch's keys are rewritten together with
    the batch, keeping one row per key: the greatest `order_by`, then the later file, then the batch. Rows
    of earlier versions of the batch's files (`Job.replaced_rows`) are left out of the files it rewrites (the job
    rewrites the other files that hold some). With `loaded` (a column of the batch: when its rows were first
    loaded, for a quarantine replay) the later load wins instead of the later file, the batch's rows on a tie."""
    job = cx.job
    w = job.workflow.write
    cols = dict(cx.describe(view))
    missing = [k for k in w.keys + ([w.order_by] if w.order_by else []) if k not in cols]
    if missing:
        raise not_in_output(job.workflow, "merge column", missing, list(cols))
    keys = ", ".join(q(k) for k in w.keys)
    rank = (
        "CASE "
        + " ".join(f"WHEN _source_file = {lit(s.key)} THEN {i + 1}" for i, s in enumerate(job.sources))
        + " ELSE 0 END"
    )
    old_rank = "0"
    if loaded is not None:
        rank, old_rank = f"epoch_us({q(loaded)}) * 2 + 1", "epoch_us(_ingested_at) * 2"
    batch = cx.view(f"SELECT *, {rank} AS __lf_rank FROM {view}")
    replaced: list[str] = []
    old = None
    if job.table_files:
        by_abs = dict(job.table_files)
        paths = "[" + ", ".join(lit(a) for a in by_abs) + "]"
        types = dict(job.table_schema or [])
        hive = "true" if job.partition_names else "false"
        if job.partition_names:
            hive += (
                ", hive_types = {"
                + ", ".join(f"{lit(p)}: {lit(duck_type(types.get(p, 'string')))}" for p in job.partition_names)
                + "}"
            )
        table = cx.view(
            f"SELECT * FROM read_parquet({paths}, filename = {lit(PATH)}, union_by_name = true, "
            f"hive_partitioning = {hive})"
        )
        try:  # the batch's rows are read here first: a value that does not fit the table fails as in `write`
            hits = cx.con.execute(
                f"SELECT DISTINCT {q(PATH)} FROM {table} WHERE ({keys}) IN (SELECT ({keys}) FROM {batch})"
            ).fetchall()
        except duckdb.Error as exc:
            raise explain(cx, exc) from None
        replaced = [by_abs[h[0]] for h in hits]
        if hits:
            hit_list = "[" + ", ".join(lit(h[0]) for h in hits) + "]"
            old = cx.view(
                f"SELECT *, {old_rank} AS __lf_rank FROM read_parquet({hit_list}, "
                f"union_by_name = true, hive_partitioning = {hive})"
            )
            if earlier := job.replaced_rows():
                old = cx.view(f"SELECT * FROM {old} WHERE {not_from(earlier)}")
    union = f"SELECT * FROM {batch}" + (f" UNION ALL BY NAME SELECT * FROM {old}" if old else "")
    order = (f"{q(w.order_by)} DESC NULLS LAST, " if w.order_by else "") + "__lf_rank DESC"
    drop = "__lf_rank" + (f", {q(loaded)}" if loaded is not None else "")
    # a row with a NULL key matches no row, as in SQL's MERGE: it is added, never updated nor deduplicated
    unkeyed = " OR ".join(f"{q(k)} IS NULL" for k in w.keys)
    merged = cx.view(
        f"SELECT * EXCLUDE ({drop}) FROM ({union}) "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1 OR {unkeyed}"
    )
    return merged, replaced


def not_from(keys: list[str]) -> str:
    """An SQL condition: the row is not of these landed files (`_source_file`)."""
    return f"(_source_file IS NULL OR _source_file NOT IN ({', '.join(lit(k) for k in keys)}))"


def write_to(
    con: duckdb.DuckDBPyConnection,
    view: str,
    out_dir: str,
    commit_id: str,
    *,
    files_as: ParquetFiles = ParquetFiles(),
    file_size: int = 256 << 20,
    partition_by: list[str] | None = None,
) -> list[StagedFile]:
    """Rows of `view` as Parquet files `part-<commit_id>-<n>.parquet` in `out_dir` (Hive folders with
    `partition_by`), with their stats; files that came out empty are removed."""
    options = [
        parquet(files_as),
        f"FILENAME_PATTERN {lit('part-' + commit_id + '-{i}')}",
        f"FILE_SIZE_BYTES {int(file_size)}",  # a size bound makes COPY write a folder
        "RETURN_STATS",
    ]
    if partition_by:
        options.append("PARTITION_BY (" + ", ".join(q(p) for p in partition_by) + ")")
    rows = con.execute(f"COPY (SELECT * FROM {view}) TO {lit(out_dir)} ({', '.join(options)})").fetchall()
    files = []
    for filename, count, size, _footer, col_stats, _keys, _extra in rows:
        if not count:
            try:
                os.remove(filename)
            except OSError:
                pass
            continue
        files.append(
            StagedFile(
                path=filename,
                relpath=os.path.relpath(filename, out_dir),
                rows=int(count),
                bytes=int(size),
                partition=partitions.values_of(os.path.dirname(os.path.relpath(filename, out_dir))),
                stats=col_stats or {},
            )
        )
    return files


def write(cx: JobContext, view: str) -> list[StagedFile]:
    """The table's rows as Parquet files in the job's staging folder, with their stats."""
    wf = cx.job.workflow
    try:
        return write_to(
            cx.con,
            view,
            os.path.join(cx.job.staging, "data"),
            cx.job.commit_id,
            partition_by=[p.name for p in wf.write.partition_by],
            **written_as(wf),
        )
    except duckdb.Error as exc:
        raise (too_long_to_name(cx, view, exc) or explain(cx, exc)) from None


def too_long_to_name(cx: JobContext, view: str, exc: duckdb.Error) -> InvalidInput | None:
    """When a partition folder could not be made because its name is too long: the file's fault, naming the
    line of a record whose value makes it so (`partitions.too_long`); None for any other error. The bound is the
    file system's (`NAME_MAX`: 255 bytes on most), and a value takes up to 3 bytes a byte escaped."""
    parts = cx.job.workflow.write.partition_by
    if not parts or not errors.name_too_long(str(exc)):
        return None
    limit = partitions.name_max(os.path.join(cx.job.staging, "data"))
    source = "_source_file" if "_source_file" in dict(cx.describe(view)) else lit(cx.only_key)
    for p in parts:
        found = cx.con.execute(  # a byte takes at most 3 escaped: only longer values may be too long
            f"SELECT DISTINCT CAST({q(p.name)} AS VARCHAR), CAST({source} AS VARCHAR) FROM {view} "
            f"WHERE strlen(CAST({q(p.name)} AS VARCHAR)) * 3 > {partitions.room(p.name, limit)} LIMIT 1000"
        ).fetchall()
        line_of = None if p.function else (lambda k, v, c=p.column: line_holding(cx, k, c, v))
        if err := partitions.too_long(p.name, found, limit, cx.fmt, line_of):
            return err
    return None


def discard(cx: JobContext) -> None:
    """Remove what an attempt wrote (the table's files, its quarantine's, its child tables'): the next attempt
    writes them again."""
    job = cx.job
    for folder in [os.path.join(job.staging, "data"), os.path.join(job.staging, "quarantine")] + [
        os.path.join(f, "data") for f in job.child_staging.values()
    ]:
        shutil.rmtree(folder, ignore_errors=True)


def file_sources(
    cx: JobContext, files: list[StagedFile], carried: bool = False
) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
    """Which landed file the rows of each written file came from: `(relpath, source key, rows)`, and the rows
    written per source. A single file's rows are all its own, unless the files carry rows of others (`carried`: a
    merge rewrote table files with it); a batch's files, and those, are read back (`lineage: false` leaves no
    `_source_file` to read: the rows are counted as the job's)."""
    if not cx.with_path and not (carried and cx.job.workflow.lineage):
        key = cx.only_key
        return [(f.relpath, key, f.rows) for f in files], {key: sum(f.rows for f in files)}
    by_path = {f.path: f for f in files}
    out, totals = [], {}
    for path, counts in source_counts(cx.con, list(by_path)).items():
        for key, n in counts.items():
            out.append((by_path[path].relpath, key, n))
            totals[key] = totals.get(key, 0) + n
    return out, totals


def source_counts(con: duckdb.DuckDBPyConnection, paths: list[str]) -> dict[str, dict[str, int]]:
    if not paths:
        return {}
    rows = con.execute(
        "SELECT filename, _source_file, count(*) FROM read_parquet(["
        + ", ".join(lit(p) for p in paths)
        + "], filename = true, hive_partitioning = false) GROUP BY ALL"
    ).fetchall()
    out: dict[str, dict[str, int]] = {}
    for path, key, n in rows:
        out.setdefault(path, {})[key] = int(n)
    return out
