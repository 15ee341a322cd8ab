"""The embedded engine: DuckDB in-process. Reads CSV / JSON / JSON Lines / Parquet (gzip too), applies the
workflow's steps as SQL views, and writes zstd Parquet (Hive-partitioned) with per-file stats.

Many small files share one query (each keeps its own run): the `__lf_path` column says which file a row came
from, so per-file counts and lineage survive batching.

Each attempt at a job gets a `JobContext` (the job, its `ReadPlan`, the connection, what reading found) that is
passed explicitly to the parts: `reading`, `steps`, `quality`, `writing`. When the input asks to be read another
way, `replan` (from DuckDB's error, see `errors`) gives the next plan and `Engine.run` tries again.
"""

from __future__ import annotations

import os
from typing import Any

from landfall.config import ParquetFiles, Settings
from landfall.engines.base import Engine, Job, ReadPlan, Replan, Replayed, Source, Staged, StagedFile
from landfall.engines.duckdb import quality, reading, records, steps, writing
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.database import Setup, database
from landfall.engines.duckdb.datewords import late_date_words
from landfall.engines.duckdb.jsonkeys import late_keys
from landfall.engines.duckdb.jsonkinds import late_kinds
from landfall.engines.duckdb.read_csv import late_wholes
from landfall.engines.duckdb.replanning import replan
from landfall.engines.duckdb.sql import LINEAGE, NeedLines, _timed, every_row_kept
from landfall.errors import InvalidInput
from landfall.schema import merged


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, setup: Setup | None = None) -> None:
        # a cursor of the database its setup shares with the process's other engines (see `database.py`)
        self.db = database(setup or Setup())
        self.con = self.db.cursor()

    @classmethod
    def from_settings(cls, settings: Settings) -> DuckDBEngine:
        """The engine of a lake: a sandboxed database reaching only the lake's folders (see `database.py`)."""
        return cls(Setup.for_lake(settings))

    def close(self) -> None:
        self.con.close()

    def use_storage(self, storage: Any) -> None:
        # through the process's one database (registration is database-wide): DuckDB reads the storage's URLs
        # through fsspec, and no extension is downloaded
        storage.register_with(self.db)

    def empty_note(self, src: Source, job: Job) -> str | None:
        return reading.empty_note(self.con, src, job.workflow, job.scratch_dir, job.table_schema)

    def attempt(self, job: Job, plan: ReadPlan) -> Staged:
        cx = JobContext(self.con, job, plan)
        try:
            return _attempt(cx)
        except NeedLines:
            raise Replan(plan.but(number_rows=True), "rows break rules: read again, numbering records") from None
        except InvalidInput as exc:
            again = replan(plan, job, getattr(exc, "engine_error", ""))
            if again is None:
                raise
            raise Replan(again, str(exc)) from None
        finally:
            cx.drop()

    def rewrite(
        self,
        files: list[tuple[str, str]],
        exclude_keys: list[str],
        staging: str,
        commit_id: str,
        files_as: ParquetFiles = ParquetFiles(),
    ) -> list[StagedFile]:
        return writing.rewrite(self.con, files, exclude_keys, staging, commit_id, files_as)

    def compact(
        self,
        files: list[tuple[str, str]],
        staging: str,
        commit_id: str,
        target_file_size: int,
        files_as: ParquetFiles = ParquetFiles(),
    ) -> list[StagedFile]:
        return writing.compact(self.con, files, staging, commit_id, target_file_size, files_as)

    def replay(self, job: Job, files: list[str], run_id: str | None) -> Replayed:
        cx = JobContext(self.con, job, ReadPlan(), fmt="parquet", with_path=False)
        try:
            return quality.replay(cx, files, run_id)
        finally:
            cx.drop()

    def source_counts(self, paths: list[str]) -> dict[str, dict[str, int]]:
        return writing.source_counts(self.con, paths)


def _attempt(cx: JobContext) -> Staged:
    job = cx.job
    wf = job.workflow
    timings: list[dict[str, Any]] = []
    with _timed(timings, "read"):
        view = reading.read(cx)
    with _timed(timings, "transform"):
        view = steps.transform(cx, view)
    checks: dict[str, Any] = {}
    quarantine: list[StagedFile] = []
    q_schema: list[tuple[str, str]] = []
    view, extra = quality.fit_schema(cx, view)
    if wf.validate_ or extra:
        with _timed(timings, "validate"):
            view, q_view, checks = quality.validate(cx, view, extra)
            if q_view is not None:
                q_view = writing.stored_types(cx, cx.view(writing.with_lineage(cx, q_view)))
                q_schema = cx.schema(q_view)
                quarantine = writing.write_to(
                    cx.con, q_view, os.path.join(job.staging, "quarantine"), job.commit_id, **writing.written_as(wf)
                )
    children: dict[str, Staged] = {}
    if cx.children:
        with _timed(timings, "child tables"):
            children = steps.write_children(cx, view)
    with _timed(timings, "transform"):
        view = writing.finish(cx, view)
        replaced: list[str] = []
        if wf.write.mode == "merge":
            view, replaced = writing.merge(cx, view)
        if not wf.lineage:  # `lineage: false`: one file per job (see `Workflow.batchable`)
            view = cx.view(f"SELECT * EXCLUDE ({', '.join(LINEAGE)}) FROM {view}")
        schema = cx.schema(view)
    rows_in = None
    if not every_row_kept(wf):
        with _timed(timings, "count"):
            rows_in = cx.line_counts.result() if cx.line_counts else records.counts(cx, cx.raw)
    with _timed(timings, "write"):
        files = writing.write(cx, view)
    if cx.read_dates and (again := late_date_words(cx, files)) is not None:
        writing.discard(cx)
        raise Replan(again, "a word a date cast takes past the type sample: read again")
    if (again := late_wholes(cx)) is not None:
        writing.discard(cx)
        raise Replan(again, "a whole number written otherwise past the type sample: read its column as what holds it")
    with _timed(timings, "stats"):
        file_sources, rows_out = writing.file_sources(cx, files, carried=bool(replaced))
    if (again := late_keys(cx, rows_out)) is not None:
        writing.discard(cx)
        raise Replan(again, "a key past the type sample: detect the columns on the whole files")
    if (again := late_kinds(cx)) is not None:
        writing.discard(cx)
        raise Replan(again, "a value of another kind past the type sample: detect the types on the whole file")
    if wf.read.bad_rows == "quarantine":
        with _timed(timings, "quarantine"):
            miss = records.sampled_type_miss(cx)
            if miss and (len(cx.paths) > 1 or replan(cx.plan, job, miss)):  # read again as for the error (`attempt`)
                writing.discard(cx)
                err = InvalidInput("a value past the type sample does not fit the type detected on it")
                err.engine_error = miss  # type: ignore[attr-defined]
                raise err
            rejected = records.parse_rejects(cx, checks)
            if rejected:
                q_view, counts = rejected
                if rows_in is not None:
                    for key, n in counts.items():
                        rows_in[key] = rows_in.get(key, 0) + n
                else:
                    rows_in = {k: rows_out.get(k, 0) + counts.get(k, 0) for k in {*rows_out, *counts}}
                if short := records.cut_short(cx, rows_in):
                    writing.discard(cx)
                    raise Replan(cx.plan.but(whole_files=True), f"`{short[0]}`: lines unaccounted for: read it whole")
                quarantine = quarantine + writing.write_to(
                    cx.con,
                    q_view,
                    os.path.join(job.staging, "quarantine-parse"),
                    f"{job.commit_id}-parse",
                    **writing.written_as(wf),
                )
                q_schema = merged(q_schema, cx.schema(q_view)) if q_schema else cx.schema(q_view)
    for src in job.sources:
        rows_out.setdefault(src.key, 0)
    if rows_in is None:
        rows_in = dict(rows_out)
    for src in job.sources:
        rows_in.setdefault(src.key, 0)
    return Staged(
        files=files,
        schema=schema,
        rows_in=rows_in,
        rows_out=rows_out,
        file_sources=file_sources,
        steps=timings,
        replaced=replaced,
        quality=checks,
        quarantine_files=quarantine,
        quarantine_schema=q_schema,
        children=children,
        encodings=dict(cx.encodings),
        notes=dict(cx.notes),
    )
