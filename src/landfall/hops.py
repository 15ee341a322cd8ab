"""Hops: a workflow that writes files into another prefix (`write: {landing: staging/sales/, format: parquet}`)
instead of a table, for the next workflow to load: raw -> staging -> final, each hop a recorded run.

A landed file's rows, read and transformed by the workflow's steps, become one file under the `landing` prefix,
at the same path below the workflow's `match` prefix (`raw/sales/a/b.jsonl` -> `staging/sales/a/b.parquet`):

- **exactly once.** The file is written whole (temporary name, fsync, rename) and queued for the next workflow,
  and only then is the run recorded as succeeded. A retry after a crash writes the same name again: the same
  bytes are skipped by the next workflow's load history, other bytes replace that file's rows (`on_change:
  replace`, which a workflow reading a hop's files must keep). A new version of the landed file writes the same
  name too, so its rows replace the old version's downstream.
- **lineage.** The file's rows carry `_upstream_source_file` (the landed file) and `_upstream_run_id` (the run
  that wrote them), so the next table names both hops; the run's `output_files` names the file it wrote, and
  the next workflow's run is the run of that file (`landfall runs --file staging/sales/...`).
"""

from __future__ import annotations

import os
import shutil
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from landfall import compression
from landfall.config import ParquetFiles, Workflow
from landfall.engines.base import Engine, Job, Source
from landfall.outcomes import Outcome, run_result
from landfall.routing import Router
from landfall.sources.listing import to_event
from landfall.state.base import Run
from landfall.storage.local import fitted
from landfall.tables.readers import reading
from landfall.testing.faults import crash_point

if TYPE_CHECKING:
    from landfall.runner import Runner

UPSTREAM = ("_upstream_source_file", "_upstream_run_id")
_LINEAGE = ("_source_file", "_run_id", "_ingested_at")  # the engine's lineage columns: the first two renamed
_EXTENSIONS = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".txt", ".parquet", ".pq")


def output_key(wf: Workflow, key: str, *, local: bool = True) -> str:
    """Where the file a hop makes of landed file `key` goes: the same path below the `landing` prefix (`local`: a
    name a local folder can hold; an object store holds any, as it always has)."""
    literal = wf.match.split("*")[0]
    literal = literal[: literal.rfind("/") + 1]  # a glob's folder part: `events/` of `events/*.jsonl`
    rel = key[len(literal) :] if key.startswith(literal) else key
    stem = compression.strip_suffix(rel)
    for ext in _EXTENSIONS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
            break
    folder, _, name = f"{stem}.{wf.write.format}".rpartition("/")
    return f"{wf.write.landing}{folder + '/' if folder else ''}{fitted(name) if local else name}"


def run_hop(runner: Runner, wf: Workflow, run: Run, src: Source, digest: str, engine: Engine) -> None:
    """Read, transform and land one file's rows for the next workflow; queue that file; record the run."""
    key = output_key(wf, src.key, local=runner.zones.landing.is_local)
    scratch = runner.zones.landing.scratch("hop")
    os.makedirs(os.path.join(scratch, "staged"), exist_ok=True)
    try:
        with reading(runner.store, wf.joins) if wf.joins else nullcontext():  # the tables a `sql` step joins
            staged = engine.run(
                Job(
                    workflow=wf,
                    sources=[src],
                    staging=os.path.join(scratch, "staged"),
                    commit_id=run.run_id,
                    ingested_at=datetime.now(UTC),
                    tables=runner.joined(wf),
                )
            )
        crash_point("after_write")
        landing = runner.zones.landing
        if staged.files or landing.exists(key):  # an empty result still replaces an earlier version's rows
            local = os.path.join(scratch, fitted(os.path.basename(key)))  # (an object store takes longer names)
            _convert([f.path for f in staged.files], local, wf.write.format, wf.write.files)
            landing.put(local, key, sync=True)
            crash_point("after_publish")
            runner.store.discover([to_event(key, landing.info(key))], Router(runner.settings.workflows).route)
            outputs = [key]
        else:
            outputs = []
        result = run_result(run, src, digest, staged, wf)
        result.output_files = outputs
        runner.store.commit(None, [result])
        crash_point("after_commit")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    runner.done(Outcome(run, "succeeded", rows_out=result.rows_out, result=result))


def _convert(parts: list[str], dest: str, fmt: str, files_as: ParquetFiles) -> None:
    """The engine's Parquet parts as one file: upstream lineage renamed, JSON Lines or Parquet. No parts: a file
    of no rows (it loads nothing, and replaces what the file's earlier version loaded)."""
    import duckdb

    from landfall.engines.duckdb.sql import lit, q

    con = duckdb.connect(":memory:")
    try:
        if not parts:
            select = f"SELECT NULL::VARCHAR AS {q(UPSTREAM[0])} WHERE false"
        else:
            select = upstream_select(con, f"read_parquet([{', '.join(lit(p) for p in parts)}], union_by_name = true)")
        copy(con, select, dest, fmt, files_as)
    finally:
        con.close()


def upstream_select(con: Any, source: str, where: str = "") -> str:
    """SELECT the rows of `source` (a DuckDB table expression) for the next workflow: its lineage columns become
    `_upstream_source_file` and `_upstream_run_id` (older upstream columns and `_ingested_at` dropped)."""
    from landfall.engines.duckdb.sql import q

    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
    keep = [q(c) for c in cols if c not in (*UPSTREAM, *_LINEAGE)]
    renamed = [f"{q(old)} AS {q(new)}" for old, new in zip(_LINEAGE, UPSTREAM, strict=False) if old in cols]
    return f"SELECT {', '.join(keep + renamed)} FROM {source}" + (f" WHERE {where}" if where else "")


def copy(con: Any, select: str, dest: str, fmt: str = "parquet", files_as: ParquetFiles = ParquetFiles()) -> None:
    """Write the rows of `select` to the local file `dest` as Parquet (as `files_as` says) or JSON Lines."""
    from landfall.engines.duckdb.sql import lit
    from landfall.engines.duckdb.writing import parquet

    options = "FORMAT json" if fmt == "jsonl" else parquet(files_as)
    con.execute(f"COPY ({select}) TO {lit(dest)} ({options})")
