"""The embedded engine: DuckDB in-process. Reads CSV / JSON / JSON Lines / Parquet (gzip too), applies the
workflow's steps as SQL views, and writes zstd Parquet (Hive-partitioned) with per-file stats.

Many small files share one query (each keeps its own run): the `__lf_path` column says which file a row came
from, so per-file counts and lineage survive batching.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

import duckdb

from landfall import compression
from landfall.engines.base import Engine, Job, Source, Staged, StagedFile
from landfall.engines.duckdb.diagnose import (
    _source_in,
    _type_detection_miss,
    diagnose,
)
from landfall.engines.duckdb.quality import (
    Quality,
)
from landfall.engines.duckdb.reading import Reading
from landfall.engines.duckdb.sql import (
    PATH,
    ROW,
    ROW_PRESERVING,
    NeedLines,
    _reason,
    _shared_database,
    _timed,
    file_format,
)
from landfall.engines.duckdb.steps import Steps
from landfall.engines.duckdb.writing import Writing
from landfall.errors import InvalidInput, SchemaConflict
from landfall.schema import merged


class DuckDBEngine(Reading, Steps, Quality, Writing, Engine):
    name = "duckdb"

    def __init__(self, threads: int | None = None, memory_limit: str | None = None) -> None:
        # Every engine of a process is a connection to one shared in-memory database: workers draw on one pool
        # of threads (a lone big file gets every core), and temp views and tables stay per connection.
        self.con = _shared_database(threads, memory_limit).cursor()
        self.con.execute("SET enable_progress_bar = false")
        self.con.execute("SET TimeZone = 'UTC'")
        self._n = 0
        self._sample_all = False  # detect types on whole files (after a sample missed)
        self._as_text: set[str] = set()  # columns read as text (their values have mixed forms)
        self._auto_only = False  # let DuckDB detect each batch file's types instead of fixing the first file's
        self._line_offset = 0  # add to a record's position to get its line (the header, skipped rows)
        self._json_via_python = False  # read a JSON document through Python's parser (see _json_lines_of)
        self._max_object = 0  # bytes of the largest JSON record DuckDB must buffer (0: its default, 16 MiB)
        self._split_lines = False  # JSON Lines with `bad_rows: quarantine`: set lines that don't parse aside
        self._bad_lines: list[tuple[str, int, str, str]] = []  # (path read, line, raw text, reason)
        self._gone_lines: list[int] = []  # lines of the one file read that are not records (see _line_of)
        self._number_rows = False  # number records as read (to name the lines of rows that break rules)
        self._with_path = True  # rows carry their file's path (batches); a single file's lineage is constants
        self._only_key = ""
        self._dialects: dict[str, tuple[str, int]] = {}  # path -> (delimiter, lines before the records) checked

    def close(self) -> None:
        self.con.close()

    def use_storage(self, storage: Any) -> None:
        # through the process's one database (registration is database-wide): DuckDB reads the storage's URLs
        # through fsspec, and no extension is downloaded
        storage.register_with(_shared_database(None, None))

    def run(self, job: Job) -> Staged:
        """Read, transform and write. Files with no records (empty, blank, a header alone) are left out: they
        load nothing and change no schema."""
        empty = {s.key: f"nothing to load: {note}" for s in job.sources if (note := self._empty_note(s, job.workflow))}
        if not empty:
            return self._run_all(job)
        rest = [s for s in job.sources if s.key not in empty]
        if rest:
            staged = self._run_all(replace(job, sources=rest))
        else:
            staged = Staged(files=[], schema=[], rows_in={}, rows_out={}, file_sources=[])
        for key in empty:
            staged.rows_in[key] = staged.rows_out[key] = 0
        staged.notes.update(empty)
        return staged

    def _run_all(self, job: Job) -> Staged:
        """If a later row breaks the types detected on a sample, detect on the whole file and run once more
        (the error, if it stays, names the file and line)."""
        declared = set(job.workflow.read.types)
        try:
            for _ in range(20):
                try:
                    return self._run(job)
                except NeedLines:
                    self._number_rows = True  # rows break rules: read again, numbering records for their lines
                    continue
                except InvalidInput as exc:
                    text = getattr(exc, "engine_error", "")
                    if "maximum_object_size" in text and not self._max_object:
                        # a record above DuckDB's default buffer; a bigger one slows every read, so only now
                        self._max_object = min(max(64 << 20, 8 * max(s.size for s in job.sources)), 1 << 31)
                        continue
                    if (
                        text
                        and not self._split_lines
                        and len(job.sources) == 1
                        and job.workflow.read.bad_rows == "quarantine"
                        and file_format(job.workflow, job.sources[0].key) == "jsonl"
                    ):
                        self._split_lines = True  # a line DuckDB refused: read the lines that parse, keep the rest
                        continue
                    if len(job.sources) > 1 and not self._auto_only and _type_detection_miss(text):
                        self._auto_only = True  # a file of the batch breaks the first file's types: detect per file
                        continue
                    if (
                        text
                        and len(job.sources) == 1
                        and not self._json_via_python
                        and file_format(job.workflow, job.sources[0].key) == "json"
                    ):
                        self._json_via_python = True  # strictly valid, but DuckDB's reader refused it
                        continue
                    if (
                        len(job.sources) > 1
                        or not _type_detection_miss(text)
                        or file_format(job.workflow, job.sources[0].key) != "csv"
                        and self._sample_all
                    ):
                        raise  # a batch is split by the runner: each file then gets these retries alone
                    if not self._sample_all:
                        self._sample_all = True
                        continue
                    m = re.search(r'Error when converting column "(.+?)"', text)
                    if not m or m.group(1) in declared or m.group(1) in self._as_text:
                        raise
                    self._as_text.add(m.group(1))  # values of mixed forms: keep the column as text
            return self._run(job)
        finally:
            self._sample_all = False
            self._auto_only = False
            self._json_via_python = False
            self._max_object = 0
            self._split_lines = False
            self._bad_lines = []
            self._gone_lines = []
            self._number_rows = False
            self._as_text = set()

    def _run(self, job: Job) -> Staged:
        steps: list[dict[str, Any]] = []
        self._views: list[str] = []
        self._tables: list[str] = []
        self._described: dict[str, list[tuple[str, str]]] = {}
        self._children: dict[str, str] = {}
        self._child_names = job.workflow.child_tables
        self._commit_id = job.commit_id
        try:
            with _timed(steps, "read"):
                view = self._read(job)
            with _timed(steps, "transform"):
                view = self._transform(job, view)
            quality: dict[str, Any] = {}
            quarantine: list[StagedFile] = []
            q_schema: list[tuple[str, str]] = []
            view, extra = self._fit_schema(job, view)
            if job.workflow.validate_ or extra:
                with _timed(steps, "validate"):
                    view, q_view, quality = self._validate(job, view, extra)
                    if q_view is not None:
                        q_view = self._view(self._with_lineage(job, q_view, dict(self._describe(q_view))))
                        q_schema = self._describe(q_view)
                        quarantine = self._write_to(q_view, os.path.join(job.staging, "quarantine"), job.commit_id, [])
            children: dict[str, Staged] = {}
            if self._children:
                with _timed(steps, "child tables"):
                    children = self._write_children(job, view)
            with _timed(steps, "transform"):
                view = self._finish(job, view)
                replaced: list[str] = []
                if job.workflow.write.mode == "merge":
                    view, replaced = self._merge(job, view)
                schema = self._describe(view)
            rows_in = None
            if job.workflow.validate_ or not all(s.kind in ROW_PRESERVING for s in job.workflow.transform):
                with _timed(steps, "count"):
                    rows_in = self._lines.result() if self._lines else self._counts(self._raw_view)
            with _timed(steps, "write"):
                files = self._write(job, view)
                arrow_schema = self._arrow_schema(view, files)
            with _timed(steps, "stats"):
                file_sources, rows_out = self._file_sources(files)
            if job.workflow.read.bad_rows == "quarantine":
                with _timed(steps, "quarantine"):
                    rejected = self._parse_rejects(job, quality)
                    if rejected:
                        q_view, counts = rejected
                        quarantine = quarantine + self._write_to(
                            q_view, os.path.join(job.staging, "quarantine-parse"), f"{job.commit_id}-parse", []
                        )
                        q_schema = merged(q_schema, self._describe(q_view)) if q_schema else self._describe(q_view)
                        if rows_in is not None:
                            for key, n in counts.items():
                                rows_in[key] = rows_in.get(key, 0) + n
                        else:
                            rows_in = {k: rows_out.get(k, 0) + counts.get(k, 0) for k in {*rows_out, *counts}}
        finally:
            self._drop_views()
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
            steps=steps,
            replaced=replaced,
            arrow_schema=arrow_schema,
            quality=quality,
            quarantine_files=quarantine,
            quarantine_schema=q_schema,
            children=children,
        )

    def _view(self, select: str) -> str:
        """A temp view of `select` (dropped after the job)."""
        return self._temp("VIEW", select, self._views)

    def _n_table(self, select: str) -> str:
        """A temp table holding the rows of `select` (dropped after the job)."""
        return self._temp("TABLE", select, self._tables)

    def _temp(self, kind: str, select: str, made: list[str]) -> str:
        self._n += 1
        name = f"__lf_{kind[0].lower()}{self._n}"
        self.con.execute(f"CREATE OR REPLACE TEMP {kind} {name} AS {select}")
        made.append(name)
        return name

    def _drop_views(self) -> None:
        for name in reversed(getattr(self, "_views", [])):
            try:
                self.con.execute(f"DROP VIEW IF EXISTS {name}")
            except duckdb.Error:
                pass
        for name in getattr(self, "_tables", []):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        self._views = []
        self._tables = []
        self._described = {}
        self.con.execute("DROP TABLE IF EXISTS __lf_sources")

    def _describe(self, view: str) -> list[tuple[str, str]]:
        """Columns and types of a view (binding it); remembered, as a view never changes once made."""
        cache = getattr(self, "_described", None)
        if cache is not None and view in cache:
            return cache[view]
        out = [(r[0], r[1]) for r in self.con.execute(f"DESCRIBE {view}").fetchall()]
        if cache is not None:
            cache[view] = out
        return out

    def _columns(self, view: str) -> list[str]:
        return [c for c, _ in self._describe(view) if c not in (PATH, ROW)]

    def _explain(self, exc: Exception, sources: list[Source], fmt: str) -> InvalidInput:
        """Turn an engine error into one that names the file, the line and the reason."""
        text = str(exc)
        src = _source_in(text, sources, getattr(self, "_paths", {}))
        if src is None and len(sources) == 1:
            src = sources[0]
        key = src.key if src else ", ".join(s.key for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
        line: int | None = None
        reason = _reason(text)
        if re.search(r"\bGZIP\b", text) and src is not None:  # DuckDB decompresses `.gz` files itself
            err = compression.corrupt(key, "gzip", reason.split(": /")[0])
            err.engine_error = text  # type: ignore[attr-defined]
            return err
        if src is not None:
            path = src.path if fmt == "parquet" else self._readable(src)
            found = diagnose(path, fmt, text, self.csv_delimiter(path))
            if found:
                line, reason = found
        m = re.search(r"CSV Error on Line: (\d+)", text)
        if line is None and m:
            line = int(m.group(1))
        where = f"`{key}`" + (f" line {line}" if line else "")
        cls = SchemaConflict if "Conversion Error" in text or "Could not convert" in text else InvalidInput
        err = cls(f"{where}: {reason}", file=key, line=line)
        err.engine_error = text  # type: ignore[attr-defined]
        return err

    def _readable(self, src: Source) -> str:
        for path, s in getattr(self, "_paths", {}).items():
            if s is src:
                return path
        return src.path
