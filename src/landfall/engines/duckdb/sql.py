"""Shared pieces of the DuckDB engine: identifier and literal quoting, internal column names, casts, reader arguments
CSV and JSON share, the process-wide database, and small helpers for errors and step timing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import duckdb

from landfall import compression
from landfall.config import Workflow
from landfall.engines.base import LINEAGE as LINEAGE  # the engine's modules take it from here
from landfall.errors import InvalidInput

if TYPE_CHECKING:
    from landfall.config import ReadOptions
    from landfall.engines.base import ReadPlan, Source
    from landfall.engines.duckdb.context import JobContext

PATH = "__lf_path"
ROW = "__lf_row"  # a record's position in its file (when a workflow has rules)
REJECTS = "__lf_rejects"  # DuckDB's table of CSV rows it could not parse (`bad_rows: quarantine`)
PID = "__lf_pid"  # a parent row's number in the job, linking it to its child rows (`child_tables`)
MATERIALIZE_BYTES = 64 << 20  # batches up to this size are parsed once into memory
ROW_PRESERVING = {"rename", "cast", "compute", "drop", "normalize_names", "flatten", "child_tables"}
# encodings DuckDB decodes itself; everything else is transcoded to UTF-8 first
_NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf-8-sig": "utf-8"}


def q(name: str) -> str:
    """Quote an identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote a string literal."""
    return "'" + value.replace("'", "''") + "'"


def file_format(workflow: Workflow, key: str) -> str:
    fmt = workflow.read.format
    if fmt:
        return fmt
    name = compression.strip_suffix(key.lower())
    for ext, f in (
        (".csv", "csv"),
        (".tsv", "csv"),
        (".txt", "csv"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".parquet", "parquet"),
        (".pq", "parquet"),
    ):
        if name.endswith(ext):
            return f
    raise InvalidInput(
        f"`{key}`: cannot tell the format from the file name; set `read.format` "
        "(one of `csv`, `jsonl`, `json`, `parquet`) in workflow "
        f"`{workflow.name}`",
        file=key,
    )


def source_format(workflow: Workflow, src: Source) -> str:
    """A landed file's format: what its content told (`Source.format`), else the workflow's or its name's."""
    return src.format or file_format(workflow, src.key)


def _paths(paths: Any) -> str:
    return "[" + ", ".join(lit(p) for p in paths) + "]"


def common_args(plan: ReadPlan, o: ReadOptions) -> list[str]:
    """Reader arguments CSV and JSON share: date and timestamp formats, sample size. (Compression is not one:
    the engine reads `.gz` and `.zst` files itself and decompressed copies of the rest.)"""
    args = []
    if o.date_format:
        args.append(f"dateformat = {lit(o.date_format)}")
    if o.timestamp_format:
        args.append(f"timestampformat = {lit(o.timestamp_format)}")
    if plan.sample_all:
        args.append("sample_size = -1")
    return args


def _filename_arg(cx: JobContext) -> list[str]:
    """Batches tag each row with its file; a single file's lineage is constants (no per-row column)."""
    return [f"filename = {lit(PATH)}"] if cx.with_path else []


def _first_line(exc: Exception) -> str:
    """The reason in an engine error, for a message (see `errors.reason`)."""
    from landfall.engines.duckdb.errors import reason

    return reason(str(exc))


class _StepError(duckdb.Error):
    pass


class NeedLines(Exception):  # noqa: N818 - a signal to the engine's retry loop, not an error
    """Rows break a rule and their lines are wanted: read the file again with record numbers (clean files,
    the usual case, are read without them: numbering costs a pass over the rows)."""


def _step_error(message: str) -> Exception:
    return _StepError(message)


def _require(columns: list[str], wanted: Any, what: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise _step_error(
            f"no column {', '.join(f'`{m}`' for m in missing)} {what}; columns are "
            + ", ".join(f"`{c}`" for c in columns)
        )


@contextmanager
def _timed(steps: list[dict[str, Any]], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        steps.append({"step": name, "seconds": round(time.perf_counter() - start, 6)})


def every_row_kept(wf: Workflow) -> bool:
    """Whether each record read becomes a row written: no rules (`validate`, `schema.evolution: discard_row`), and
    steps that keep every row."""
    return not wf.judges_rows and all(s.kind in ROW_PRESERVING for s in wf.transform)
