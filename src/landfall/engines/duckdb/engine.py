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
import re
from typing import Any

from landfall.config import Settings
from landfall.engines.base import Engine, Job, ReadPlan, Replan, Source, Staged, StagedFile
from landfall.engines.duckdb import errors, quality, reading, steps, writing
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.database import Setup, database
from landfall.engines.duckdb.sql import LINEAGE, ROW_PRESERVING, NeedLines, _timed, source_format
from landfall.engines.duckdb.stamps import NAIVE_TIMESTAMP
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
        return reading.empty_note(self.con, src, job.workflow, job.scratch_dir)

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
        compression: str = "zstd",
    ) -> list[StagedFile]:
        return writing.rewrite(self.con, files, exclude_keys, staging, commit_id, compression)

    def compact(
        self,
        files: list[tuple[str, str]],
        staging: str,
        commit_id: str,
        target_file_size: int,
        compression: str = "zstd",
    ) -> list[StagedFile]:
        return writing.compact(self.con, files, staging, commit_id, target_file_size, compression)

    def replay(
        self, job: Job, files: list[str], run_id: str | None
    ) -> tuple[list[StagedFile], list[StagedFile], int, int]:
        cx = JobContext(self.con, job, ReadPlan(), fmt="parquet", with_path=False)
        try:
            return quality.replay(cx, files, run_id)
        finally:
            cx.drop()

    def source_counts(self, paths: list[str]) -> dict[str, dict[str, int]]:
        return writing.source_counts(self.con, paths)


def replan(plan: ReadPlan, job: Job, text: str) -> ReadPlan | None:
    """The plan for reading a job again after DuckDB refused it with `text`, or None when reading again would not
    help (the error then names the file, line and reason). A batch is split by the runner: each file then gets
    these chances alone."""
    fmt = source_format(job.workflow, job.sources[0])
    alone = len(job.sources) == 1
    if errors.object_too_large(text) and not plan.max_object:
        # a record above DuckDB's default buffer; a bigger one slows every read, so only now
        return plan.but(max_object=min(max(64 << 20, 8 * max(s.size for s in job.sources)), 1 << 31))
    if text and alone and not plan.split_lines and job.workflow.read.bad_rows == "quarantine" and fmt == "jsonl":
        return plan.but(split_lines=True)  # a line DuckDB refused: read the lines that parse, keep the rest
    if not alone and not plan.per_file_types and errors.type_detection_miss(text):
        return plan.but(per_file_types=True)  # a file of the batch breaks the first file's types: detect per file
    if text and alone and not plan.json_via_python and fmt == "json":
        return plan.but(json_via_python=True)  # strictly valid, but DuckDB's reader refused it
    if (
        fmt == "csv"
        and alone
        and not plan.quoted
        and job.workflow.read.quote is None
        and errors.wrong_field_count(text)
    ):
        return plan.but(quoted=True)  # a quoted value past the sniffer's sample (which had no quotes) spans lines
    if not alone or not errors.type_detection_miss(text):
        return None
    column, value = errors.converting_column(text), errors.not_converted(text)
    if fmt == "csv" and column and value and column not in job.workflow.read.types:
        # the type was detected on a sample and a later value does not fit it: read that column as a type that
        # holds the value (no second detection over the whole file: that would hold the file in memory)
        if column in plan.as_text:
            return None
        if value[1] == "TIMESTAMP" and column not in plan.mixed_stamps and _NAIVE.fullmatch(value[0].strip()):
            # a timestamp of another form than the sample's (no fraction where they had one): still a timestamp
            return plan.but(mixed_stamps=plan.mixed_stamps | {column})
        wider = wider_type(value[0], value[1])
        if wider == "string" or column in dict(plan.column_types):
            return plan.but(as_text=plan.as_text | {column})  # values of mixed forms: keep the column as text
        return plan.typed(column, wider)
    if plan.sample_all:
        return None
    return plan.but(sample_all=True)  # the types were detected on a sample: detect them on the whole file


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_NAIVE = re.compile(NAIVE_TIMESTAMP)
_TIMESTAMP = re.compile(r"\s*\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*")


def wider_type(value: str, sampled: str) -> str:
    """The Arrow type a column takes when `value` does not fit the type DuckDB sampled (`BIGINT`, `DATE`, ...):
    a whole number beyond 64 bits in an integer column makes it `decimal128(38, 0)` (exact, up to 38 digits),
    another number `double`, a timestamp in a date column `timestamp[us]`; anything else (values of mixed
    forms) `string`."""
    if sampled.upper() in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "INT64", "INT32") and (
        _NUMBER.fullmatch(value)
    ):
        digits = value.strip().lstrip("+-")
        beyond_64 = digits.isdigit() and not -(2**63) <= int(value) < 2**63
        return "decimal128(38, 0)" if beyond_64 and len(digits) <= 38 else "double"
    if sampled.upper() == "DATE" and _TIMESTAMP.fullmatch(value):
        return "timestamp[us]"
    return "string"


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
    if wf.validate_ or not all(s.kind in ROW_PRESERVING for s in wf.transform):
        with _timed(timings, "count"):
            rows_in = cx.line_counts.result() if cx.line_counts else reading.counts(cx, cx.raw)
    with _timed(timings, "write"):
        files = writing.write(cx, view)
    with _timed(timings, "stats"):
        file_sources, rows_out = writing.file_sources(cx, files)
    if wf.read.bad_rows == "quarantine":
        with _timed(timings, "quarantine"):
            rejected = reading.parse_rejects(cx, checks)
            if rejected:
                q_view, counts = rejected
                quarantine = quarantine + writing.write_to(
                    cx.con,
                    q_view,
                    os.path.join(job.staging, "quarantine-parse"),
                    f"{job.commit_id}-parse",
                    **writing.written_as(wf),
                )
                q_schema = merged(q_schema, cx.schema(q_view)) if q_schema else cx.schema(q_view)
                if rows_in is not None:
                    for key, n in counts.items():
                        rows_in[key] = rows_in.get(key, 0) + n
                else:
                    rows_in = {k: rows_out.get(k, 0) + counts.get(k, 0) for k in {*rows_out, *counts}}
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
    )
