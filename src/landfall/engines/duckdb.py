"""The embedded engine: DuckDB in-process. Reads CSV / JSON / JSON Lines / Parquet (gzip too), applies the
workflow's steps as SQL views, and writes zstd Parquet (Hive-partitioned) with per-file stats.

Many small files share one query (each keeps its own run): the `__lf_path` column says which file a row came
from, so per-file counts and lineage survive batching.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from landfall import encoding as enc
from landfall.config import ReadOptions, Workflow, parse_size, sql_type
from landfall.engines.base import Engine, Job, Source, Staged, StagedFile
from landfall.errors import InvalidInput, SchemaConflict
from landfall.pools import pool
from landfall.schema import align, merged, widens_to

PATH = "__lf_path"
ROW = "__lf_row"  # a record's position in its file (when a workflow has rules)
REJECTS = "__lf_rejects"  # DuckDB's table of CSV rows it could not parse (`bad_rows: quarantine`)
PID = "__lf_pid"  # a parent row's number in the job, linking it to its child rows (`child_tables`)
MATERIALIZE_BYTES = 64 << 20  # batches up to this size are parsed once into memory
LINEAGE = ("_source_file", "_ingested_at", "_run_id")
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
    name = key.lower().removesuffix(".gz").removesuffix(".zst")
    for ext, f in ((".csv", "csv"), (".tsv", "csv"), (".txt", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
                   (".json", "json"), (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(ext):
            return f
    raise InvalidInput(f"`{key}`: cannot tell the format from the file name; set `read.format` "
                       "(one of `csv`, `jsonl`, `json`, `parquet`) in workflow "
                       f"`{workflow.name}`", file=key)


def snake_case(name: str) -> str:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    s = re.sub(r"[^0-9A-Za-z]+", "_", s).strip("_").lower()
    if not s:
        s = "column"
    if s[0].isdigit():
        s = "_" + s
    return s


class DuckDBEngine(Engine):
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
        self._with_path = True  # rows carry their file's path (batches); a single file's lineage is constants
        self._only_key = ""

    def close(self) -> None:
        self.con.close()

    # --- public ----------------------------------------------------------------------------------------------

    def run(self, job: Job) -> Staged:
        """Read, transform and write; if a later row breaks the types detected on a sample, detect on the
        whole file and run once more (the error, if it stays, names the file and line)."""
        declared = set(job.workflow.read.types)
        try:
            for _ in range(20):
                try:
                    return self._run(job)
                except InvalidInput as exc:
                    text = getattr(exc, "engine_error", "")
                    if "maximum_object_size" in text and not self._max_object:
                        # a record above DuckDB's default buffer; a bigger one slows every read, so only now
                        self._max_object = min(max(64 << 20, 8 * max(s.size for s in job.sources)), 1 << 31)
                        continue
                    if (text and not self._split_lines and len(job.sources) == 1
                            and job.workflow.read.bad_rows == "quarantine"
                            and file_format(job.workflow, job.sources[0].key) == "jsonl"):
                        self._split_lines = True  # a line DuckDB refused: read the lines that parse, keep the rest
                        continue
                    if len(job.sources) > 1 and not self._auto_only and _type_detection_miss(text):
                        self._auto_only = True  # a file of the batch breaks the first file's types: detect per file
                        continue
                    if (text and len(job.sources) == 1 and not self._json_via_python
                            and file_format(job.workflow, job.sources[0].key) == "json"):
                        self._json_via_python = True  # strictly valid, but DuckDB's reader refused it
                        continue
                    if len(job.sources) > 1 or not _type_detection_miss(text) or file_format(
                            job.workflow, job.sources[0].key) != "csv" and self._sample_all:
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
                        quarantine = self._write_to(q_view, os.path.join(job.staging, "quarantine"),
                                                    job.commit_id, [])
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
                            q_view, os.path.join(job.staging, "quarantine"), f"{job.commit_id}-parse", [])
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
        return Staged(files=files, schema=schema, rows_in=rows_in, rows_out=rows_out, file_sources=file_sources,
                      steps=steps, replaced=replaced, arrow_schema=arrow_schema, quality=quality,
                      quarantine_files=quarantine, quarantine_schema=q_schema, children=children)

    def rewrite(self, files: list[tuple[str, str]], exclude_keys: list[str], staging: str,
                commit_id: str) -> list[StagedFile]:
        out = []
        keys = ", ".join(lit(k) for k in exclude_keys)
        dest_dir = os.path.join(staging, "rewrite")
        os.makedirs(dest_dir, exist_ok=True)
        for i, (src, rel) in enumerate(files):
            dest = os.path.join(dest_dir, f"part-{commit_id}-r{i}.parquet")
            n = self.con.execute(
                f"COPY (SELECT * FROM read_parquet({lit(src)}, hive_partitioning = false) "
                f"WHERE _source_file NOT IN ({keys})) TO {lit(dest)} (FORMAT parquet, COMPRESSION zstd)"
            ).fetchone()[0]
            relpath = os.path.join(os.path.dirname(rel), os.path.basename(dest))
            out.append(StagedFile(path=dest, relpath=relpath, rows=int(n), bytes=os.path.getsize(dest)))
        return out

    def compact(self, files: list[tuple[str, str]], staging: str, commit_id: str,
                target_file_size: int) -> list[StagedFile]:
        rel_dir = os.path.dirname(files[0][1])
        out_dir = os.path.join(staging, "data", rel_dir)
        os.makedirs(out_dir, exist_ok=True)
        paths = "[" + ", ".join(lit(a) for a, _ in files) + "]"
        rows = self.con.execute(
            f"COPY (SELECT * FROM read_parquet({paths}, hive_partitioning = false, union_by_name = true)) TO "
            f"{lit(out_dir)} (FORMAT parquet, COMPRESSION zstd, FILE_SIZE_BYTES {int(target_file_size)}, "
            f"FILENAME_PATTERN {lit('part-' + commit_id + '-{i}')}, RETURN_STATS)").fetchall()
        return [StagedFile(path=f, relpath=os.path.join(rel_dir, os.path.basename(f)), rows=int(n), bytes=int(b),
                           stats=st or {}) for f, n, b, _footer, st, _pk, _x in rows if n]

    # --- read ------------------------------------------------------------------------------------------------

    def _view(self, select: str) -> str:
        self._n += 1
        name = f"__lf_v{self._n}"
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {select}")
        self._views.append(name)
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

    def _read(self, job: Job) -> str:
        fmt = file_format(job.workflow, job.sources[0].key)
        for src in job.sources[1:]:
            if file_format(job.workflow, src.key) != fmt:
                raise InvalidInput("files of different formats in one batch")  # the runner splits batches
        opts = job.workflow.read
        paths: dict[str, Source] = {}
        heads: dict[str, bytes] = {}
        for src in job.sources:
            path, head = self._readable_path(src, fmt, opts, job.staging)
            if fmt == "jsonl" and self._split_lines:
                path = self._good_lines(path, src, job.staging)
            paths[path] = src
            heads[path] = head
        self._with_path = len(paths) > 1
        self._only_key = job.sources[0].key
        for table in (REJECTS, REJECTS + "_scan"):  # DuckDB appends to them on every scan
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE __lf_sources ({q(PATH)} VARCHAR, key VARCHAR, run_id VARCHAR)")
        self.con.executemany("INSERT INTO __lf_sources VALUES (?, ?, ?)",
                             [(p, src.key, src.run_id) for p, src in paths.items()])
        self._paths = paths
        self._lines = None
        if fmt == "jsonl" and (job.workflow.validate_ or not all(
                s.kind in ROW_PRESERVING for s in job.workflow.transform)):
            # records are the non-blank lines: Python counts them while DuckDB detects the schema (single-threaded)
            self._lines = pool("lines").submit(self._line_counts, dict(paths))
        if fmt == "csv":
            # Files whose header lines are the same bytes share one sniff and bind by position; groups with
            # different headers are combined by column name. (DuckDB's union_by_name sniffs every file.)
            groups: dict[bytes, list[str]] = {}
            for path in paths:
                groups.setdefault(heads[path].split(b"\n", 1)[0], []).append(path)
            big = sum(s.size for s in job.sources) > MATERIALIZE_BYTES  # not parsed up front: sniff once instead
            selects = [self._csv_sql(_paths(g), opts, union=False, sniffed=self._sniff(g[0], opts)
                                     if (len(g) > 1 or big) and not self._auto_only else None)
                       for g in groups.values()]
            select = selects[0] if len(selects) == 1 else " UNION ALL BY NAME ".join(f"({s})" for s in selects)
        elif fmt == "parquet":
            select = self._parquet_sql(_paths(paths))
        elif fmt == "json" and self._json_via_python:
            select = self._json_lines_of(paths, opts, job.staging)
        else:
            if fmt == "json":
                for path, src in paths.items():
                    self._check_json_document(path, src)
            select = self._json_sql(_paths(paths), opts, fmt)
        if (job.workflow.validate_ or job.workflow.schema_.evolution == "discard_row") and len(paths) == 1:
            select = f"SELECT *, row_number() OVER () AS {ROW} FROM ({select})"
            self._line_offset = (1 if opts.header is not False else 0) + opts.skip_rows if fmt == "csv" else 0
        try:
            try:
                raw = self._view(select)
                detected = self._describe(raw)  # binding runs the sniffer: dialect and schema errors surface here
                if fmt in ("json", "jsonl") and not opts.all_strings and not opts.types and not self._json_via_python:
                    # pin what was detected, so binding the later steps does not sample the files again
                    pinned = {n: t for n, t in detected if n != PATH}
                    raw = self._view(self._json_sql(_paths(paths), opts, fmt, columns=pinned))
                    self._describe(raw)
            except duckdb.BinderException as exc:
                if "expected records" not in str(exc) or opts.records == "true" or len(paths) > 1:
                    raise  # a batch is split by the runner: a file of records never becomes `value` rows
                raw = self._view(self._json_sql(_paths(paths), opts, fmt, records=False))
                self._describe(raw)
            if sum(s.size for s in job.sources) <= MATERIALIZE_BYTES:
                # small input: parse once into memory, so the steps' binding never sniffs the files again
                raw = self._n_table(f"SELECT * FROM {raw}")
        except duckdb.Error as exc:
            raise self._explain(exc, job.sources, fmt) from None
        self._raw_view = raw
        return raw

    def _readable_path(self, src: Source, fmt: str, opts: ReadOptions, scratch: str) -> tuple[str, bytes]:
        """A path the engine can read as UTF-8 with consistent line endings, and its first bytes."""
        if fmt == "parquet":
            return src.path, b""
        head = enc.sample(src.path)
        name = opts.encoding or enc.detect(src.path, head)
        newlines = fmt == "csv" and enc.mixed_newlines(head)
        if enc.is_utf8(name) and not newlines:
            return src.path, head.removeprefix(b"\xef\xbb\xbf")
        try:
            path = enc.transcode(src.path, name, os.path.join(scratch, "_utf8"), newlines=newlines)
            return path, enc.sample(path)
        except UnicodeDecodeError as exc:
            line = enc.line_of_offset(src.path, exc.start)
            raise InvalidInput(f"`{src.key}` line {line}: byte {exc.start} is not valid {name} ({exc.reason}); "
                               "set `read.encoding` to the file's encoding", file=src.key, line=line) from None

    def _good_lines(self, path: str, src: Source, scratch: str) -> str:
        """A copy of a JSON Lines file without the lines that are not JSON objects; those are kept in
        `self._bad_lines` (line number, text, reason) for the quarantine."""
        out_dir = os.path.join(scratch, "_lines")
        os.makedirs(out_dir, exist_ok=True)
        out = os.path.join(out_dir, f"{src.file_id}.jsonl")
        self._bad_lines = [b for b in self._bad_lines if b[0] != out]
        with enc._open(path) as fh, open(out, "wb") as dst:
            for n, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                try:
                    value = json.loads(text)
                    reason = None if isinstance(value, dict) else f"{_json_kind(value)}, not a record (an object)"
                except ValueError as exc:
                    reason = f"invalid JSON: {exc}"
                if reason is None:
                    dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
                else:
                    self._bad_lines.append((out, n, text[:10_000], reason))
        return out

    def _sniff(self, path: str, o: ReadOptions) -> list[str] | None:
        """read_csv arguments that fix the dialect and columns DuckDB detects on `path`, so that a group of
        files with the same header is read without sniffing each one. None when detection fails here (the
        normal read then reports the error)."""
        user = [a for a in self._csv_args(o) if not a.startswith(("types", "all_varchar", "allow_quoted",
                                                                  "store_rejects"))]
        try:
            row = self.con.execute(
                "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns, "
                f"DateFormat, TimestampFormat FROM sniff_csv({lit(path)}{''.join(', ' + a for a in user)})"
            ).fetchone()
        except duckdb.Error:
            return None
        delim, quote, escape, _nl, comment, skip, header, columns, datefmt, tsfmt = row
        if not columns or quote not in ("(empty)", '"', "'") or (escape == "(empty)") != (quote == "(empty)"):
            return None
        if quote == "(empty)":  # no quotes in this file's sample: others may have some; RFC 4180 quoting is safe
            quote, escape = '"', '"'
        # The dialect is fixed; column types are still detected by DuckDB across the files (fixing the first
        # file's types would let a later file's `2.5` be cast into a BIGINT column as 3).
        types = {k: sql_type(v) for k, v in o.types.items()} | {c: "VARCHAR" for c in self._as_text}
        args = [f"delim = {lit(delim)}", f"quote = {lit(quote)}", f"escape = {lit(escape)}",
                f"header = {str(bool(header)).lower()}", f"skip = {int(skip)}"]
        if types:
            args.append("types = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in types.items()) + "}")
        if o.all_strings:
            args.append("all_varchar = true")
        if comment not in (None, "(empty)"):
            args.append(f"comment = {lit(comment)}")
        if datefmt and not o.date_format:
            args.append(f"dateformat = {lit(datefmt)}")
        if tsfmt and not o.timestamp_format:
            args.append(f"timestampformat = {lit(tsfmt)}")
        if o.all_strings:
            args.append("allow_quoted_nulls = false")
        return args

    def _csv_sql(self, paths: str, o: ReadOptions, *, union: bool, sniffed: list[str] | None = None) -> str:
        args = [f"union_by_name = {str(union).lower()}"] + self._filename_arg()
        if sniffed is not None:
            keep = [a for a in self._csv_args(o) if a.startswith(("nullstr", "dateformat", "timestampformat",
                                                                   "compression", "sample_size", "ignore_errors",
                                                                   "store_rejects"))]
            return f"SELECT * FROM read_csv({paths}, {', '.join(args + ['auto_detect = true'] + sniffed + keep)})"
        args.append("auto_detect = true")
        args.extend(self._csv_args(o))
        return f"SELECT * FROM read_csv({paths}, {', '.join(args)})"

    def _csv_args(self, o: ReadOptions) -> list[str]:
        """The read_csv arguments a workflow's read options set."""
        args: list[str] = []
        if o.delimiter is not None:
            args.append(f"delim = {lit(o.delimiter)}")
        if o.quote is not None:
            args.append(f"quote = {lit(o.quote)}")
        if o.escape is not None:
            args.append(f"escape = {lit(o.escape)}")
        if o.header is not None:
            args.append(f"header = {str(o.header).lower()}")
        if o.null_values is not None:
            args.append("nullstr = [" + ", ".join(lit(v) for v in o.null_values) + "]")
        types = {k: sql_type(v) for k, v in o.types.items()} | {c: "VARCHAR" for c in self._as_text}
        if types:
            args.append("types = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in types.items()) + "}")
        if o.date_format:
            args.append(f"dateformat = {lit(o.date_format)}")
        if o.timestamp_format:
            args.append(f"timestampformat = {lit(o.timestamp_format)}")
        if o.all_strings:
            args.append("all_varchar = true")
            args.append("allow_quoted_nulls = false")  # `""` is an empty string, not a missing value
        if o.skip_rows:
            args.append(f"skip = {int(o.skip_rows)}")
        if o.compression != "auto":
            args.append(f"compression = {lit(o.compression)}")
        if self._sample_all:
            args.append("sample_size = -1")
        if o.bad_rows == "quarantine":  # (ignore_errors also lets the sniffer see past ragged rows)
            args.append("ignore_errors = true")
            args.append(f"store_rejects = true, rejects_scan = {lit(REJECTS + '_scan')}, "
                        f"rejects_table = {lit(REJECTS)}")
        return args

    def _json_lines_of(self, paths: dict[str, Source], opts: ReadOptions, scratch: str) -> str:
        """A valid document DuckDB's reader refuses (duplicate keys, deep nesting, empty keys): Python's parser
        reads it (the last of duplicate keys wins) into JSON Lines for DuckDB."""
        (path, src), = paths.items()
        lines, as_values, n = _json_document_as_lines(path, os.path.join(scratch, "_json"), src.key,
                                                      records_required=opts.records == "true")
        if n == 0:
            return "SELECT NULL::VARCHAR AS value WHERE false"
        if as_values:
            return (f"SELECT value FROM read_json({lit(lines)}, format = 'newline_delimited', records = true, "
                    "columns = {'value': 'VARCHAR'})")
        return self._json_sql(_paths([lines]), opts, "jsonl")

    def _check_json_document(self, path: str, src: Source) -> None:
        """A JSON document must be strictly valid (RFC 8259): DuckDB's reader tolerates trailing commas, NaN and
        Infinity, and reads an empty file as no rows."""
        size = os.path.getsize(path)
        if size > STRICT_JSON_BYTES:
            return
        text = enc.read_text(path)
        if not text.strip():
            raise InvalidInput(f"`{src.key}` line 1: the file is empty; a JSON document needs a value "
                               "(use `read: {format: jsonl}` for files of zero or more records)", file=src.key, line=1)
        valid = self.con.execute("SELECT json_valid(?)", [text]).fetchone()[0]
        if valid and not _LENIENT_JSON.search(text):
            return
        try:
            json.loads(text, parse_constant=_no_constants)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"`{src.key}` line {exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})",
                               file=src.key, line=exc.lineno) from None
        except ValueError as exc:
            raise InvalidInput(f"`{src.key}`: invalid JSON: {exc}", file=src.key) from None
        except RecursionError:
            raise InvalidInput(f"`{src.key}` line 1: invalid JSON: nested too deeply", file=src.key, line=1) from None
        if not valid:
            raise InvalidInput(f"`{src.key}`: invalid JSON", file=src.key)

    def _json_sql(self, paths: str, o: ReadOptions, fmt: str, records: bool = True,
                  columns: dict[str, str] | None = None) -> str:
        form = "newline_delimited" if fmt == "jsonl" else "auto"
        if not records:
            return (f"SELECT CAST(to_json(json) AS VARCHAR) AS value{', ' + q(PATH) if self._with_path else ''} "
                    f"FROM read_json({paths}, {', '.join(self._filename_arg() + [f'format = {lit(form)}'])}, "
                    f"records = false{self._max_object_arg()})")
        args = self._filename_arg() + ["union_by_name = true", f"format = {lit(form)}", "records = true"]
        if self._max_object:
            args.append(f"maximum_object_size = {self._max_object}")
        if o.date_format:
            args.append(f"dateformat = {lit(o.date_format)}")
        if o.timestamp_format:
            args.append(f"timestampformat = {lit(o.timestamp_format)}")
        if o.compression != "auto":
            args.append(f"compression = {lit(o.compression)}")
        if self._sample_all:
            args.append("sample_size = -1")
        if columns:
            args.append("columns = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in columns.items()) + "}")
        select = f"SELECT * FROM read_json({paths}, {', '.join(args)})"
        if o.types:  # hints for some columns; the rest are detected
            repl = ", ".join(f"CAST({q(k)} AS {sql_type(v)}) AS {q(k)}" for k, v in o.types.items())
            select = f"SELECT * REPLACE ({repl}) FROM ({select})"
        if o.all_strings:
            if not self._with_path:
                return f"SELECT COLUMNS(*)::VARCHAR FROM ({select})"
            return f"SELECT COLUMNS(c -> c <> {lit(PATH)})::VARCHAR, {q(PATH)} FROM ({select})"
        return select

    def _max_object_arg(self) -> str:
        return f", maximum_object_size = {self._max_object}" if self._max_object else ""

    def _parquet_sql(self, paths: str) -> str:
        return f"SELECT * FROM read_parquet({paths}, {', '.join(self._filename_arg() + ['union_by_name = true'])})"

    def _filename_arg(self) -> list[str]:
        """Batches tag each row with its file; a single file's lineage is constants (no per-row column)."""
        return [f"filename = {lit(PATH)}"] if self._with_path else []

    # --- transform -------------------------------------------------------------------------------------------

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

    def _transform(self, job: Job, view: str) -> str:
        wf = job.workflow
        steps = list(wf.transform)
        if wf.normalize_names:
            from landfall.config import NormalizeNames

            steps.insert(0, NormalizeNames(normalize_names=True))
        for i, step in enumerate(steps):
            try:
                view = self._step(view, step)
                self._describe(view)  # bind now, so a bad expression names its step
            except duckdb.Error as exc:
                raise InvalidInput(f"workflow `{wf.name}` step {i + 1} (`{step.kind}`): {_first_line(exc)}"
                                   ) from None
        return view

    def _step(self, view: str, step: Any) -> str:
        kind = step.kind
        cols = self._columns(view)
        if kind == "rename":
            _require(cols, step.rename, "to rename")
            renames = ", ".join(f"{q(a)} AS {q(b)}" for a, b in step.rename.items())
            return self._view(f"SELECT * RENAME ({renames}) FROM {view}")
        if kind == "cast":
            _require(cols, step.cast, "to cast")
            types = dict(self._describe(view))
            repl = ", ".join(f"{cast_sql(q(c), types.get(c), sql_type(t))} AS {q(c)}" for c, t in step.cast.items())
            return self._view(f"SELECT * REPLACE ({repl}) FROM {view}")
        if kind == "compute":
            existing = [c for c in step.compute if c in cols]
            new = [c for c in step.compute if c not in cols]
            repl = ", ".join(f"({step.compute[c]}) AS {q(c)}" for c in existing)
            add = ", ".join(f"({step.compute[c]}) AS {q(c)}" for c in new)
            star = f"* REPLACE ({repl})" if repl else "*"
            return self._view(f"SELECT {star}{', ' + add if add else ''} FROM {view}")
        if kind == "filter":
            return self._view(f"SELECT * FROM {view} WHERE {step.filter}")
        if kind == "drop":
            present = [c for c in step.drop if c in cols]
            if not present:
                return view
            return self._view(f"SELECT * EXCLUDE ({', '.join(q(c) for c in present)}) FROM {view}")
        if kind == "normalize_names":
            seen: dict[str, int] = {}
            parts = []
            for c in cols:
                new = snake_case(c)
                if new in seen:
                    seen[new] += 1
                    new = f"{new}_{seen[new]}"
                else:
                    seen[new] = 1
                parts.append(f"{q(c)} AS {q(new)}")
            keep = "".join(f", {q(c)}" for c, _ in self._describe(view) if c in (PATH, ROW))
            return self._view(f"SELECT {', '.join(parts)}{keep} FROM {view}")
        if kind == "dedupe":
            keys = ", ".join(([q(PATH)] if self._with_path else []) + [q(k) for k in step.dedupe.keys])
            order = f" ORDER BY {step.dedupe.order_by} DESC" if step.dedupe.order_by else ""
            return self._view(f"SELECT * FROM {view} QUALIFY row_number() OVER (PARTITION BY {keys}{order}) = 1")
        if kind == "flatten":
            return self._flatten(view, step.flatten)
        if kind == "explode":
            return self._explode(view, step.explode)
        if kind == "child_tables":
            return self._child_tables(view, step.child_tables)
        if kind == "sql":
            body = re.sub(r"\binput\b", view, step.sql, flags=re.IGNORECASE)
            return self._view(body)
        raise _step_error(f"unknown step `{kind}`")  # pragma: no cover - config validation prevents it

    def _flatten(self, view: str, spec: Any, only: str | None = None) -> str:
        """Nested objects become columns: `customer.name` -> `customer_name`, up to `max_depth` levels; paths in
        `keep_json` (and anything deeper) become JSON strings. Lists stay lists (see `explode`)."""
        keep = set(spec.keep_json)
        parts: list[str] = []

        def walk(expr: str, path: list[str], typ: Any, depth: int) -> None:
            name = spec.separator.join(path)
            dotted = ".".join(path)
            if typ.id == "struct" and dotted not in keep and depth < spec.max_depth:
                for child, child_type in typ.children:
                    walk(f"{expr}.{q(child)}", [*path, child], child_type, depth + 1)
            elif typ.id == "struct" or dotted in keep:
                parts.append(f"CAST(to_json({expr}) AS VARCHAR) AS {q(name)}")
            else:
                parts.append(f"{expr} AS {q(name)}")

        for name, typ in self._types(view):
            if only is not None and name != only:
                parts.append(q(name))
                continue
            walk(q(name), [name], typ, 0)
        return self._view(f"SELECT {', '.join(parts)} FROM {view}")

    def _types(self, view: str) -> list[tuple[str, Any]]:
        """Columns and their DuckDB types (struct fields and list elements inside), from binding alone."""
        rel = self.con.sql(f"SELECT * FROM {view}")
        return list(zip(rel.columns, rel.types, strict=True))

    def _explode(self, view: str, column: str) -> str:
        """One row per element of a list column, parent fields repeated (a parent with an empty or missing list
        keeps one row with nulls); object elements become `<column>_<field>` columns."""
        types = dict(self._describe(view))
        if column not in types:
            raise _step_error(f"no column `{column}` to explode; columns are "
                              + ", ".join(f"`{c}`" for c in types if c != PATH))
        if not types[column].endswith("[]"):
            raise _step_error(f"`{column}` is {types[column]}, not a list; nothing to explode")
        c = q(column)
        out = self._view(f"SELECT * EXCLUDE ({c}), unnest(CASE WHEN {c} IS NULL OR len({c}) = 0 THEN "
                         f"CAST([NULL] AS {types[column]}) ELSE {c} END) AS {c} FROM {view}")
        if types[column].startswith("STRUCT"):
            from landfall.config import FlattenSpec

            out = self._flatten(out, FlattenSpec(max_depth=1), only=column)
        return out

    def _child_tables(self, view: str, spec: Any) -> str:
        """List columns leave the parent rows for child views (`self._children`), one row per element: the
        parent's key (or `_parent_row_id`), `_pos`, and the element's fields (or `value`)."""
        types = dict(self._describe(view))
        for col in spec.columns:
            if col not in types:
                raise _step_error(f"no list column `{col}` for a child table; columns are "
                                  + ", ".join(f"`{c}`" for c in types if c not in (PATH, ROW)))
            if not types[col].endswith("[]"):
                raise _step_error(f"`{col}` is {types[col]}, not a list; it cannot become a child table")
        _require(list(types), spec.key, "as the child tables' key")
        numbered = f"SELECT *, row_number() OVER () AS {PID} FROM {view}"
        row_id = "" if spec.key else f", md5({lit(self._commit_id)} || '#' || {PID}) AS _row_id"
        base = self._n_table(f"SELECT *{row_id} FROM ({numbered})")  # stored: ids are the same for both sides
        link = [q(k) for k in spec.key] or ["_row_id AS _parent_row_id"]
        link_names = set(spec.key) or {"_parent_row_id"}
        path = [q(PATH)] if PATH in types else []
        for col, table in self._child_names.items():
            c = q(col)
            child = self._view(f"SELECT {', '.join([*link, *path, PID])}, generate_subscripts({c}, 1) - 1 AS _pos, "
                               f"unnest({c}) AS __lf_value FROM {base} WHERE {c} IS NOT NULL")
            element = dict(self._types(child))["__lf_value"]
            if element.id == "struct":
                fields = [f for f, _ in element.children]
                cols = ", ".join(f"__lf_value.{q(f)} AS {q(f if f not in link_names | {'_pos'} else f'{col}_{f}')}"
                                 for f in fields)
            else:
                cols = "__lf_value AS value"
            self._children[table] = self._view(f"SELECT * EXCLUDE (__lf_value), {cols} FROM {child}")
        return self._view(f"SELECT * EXCLUDE ({', '.join(q(c) for c in spec.columns)}) FROM {base}")

    def _parse_rejects(self, job: Job, quality: dict[str, Any]) -> tuple[str, dict[str, int]] | None:
        """Rows DuckDB could not parse (it lists them as it scans; a scan run twice lists them twice), as
        quarantine rows: `_raw` text, `_line`, `_column`, `_rule` `parse`, `_reason`. Counts them in `quality`."""
        parts = []
        exists = self.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [REJECTS]).fetchone()
        if exists[0]:
            parts.append(
                f"SELECT s.file_path AS {q(PATH)}, e.line AS _line, string_agg(DISTINCT e.column_name, ',') AS "
                "_column, any_value(e.csv_line) AS _raw, string_agg(DISTINCT e.error_type || ': ' || "
                f"e.error_message, '; ') AS _reason FROM {REJECTS} e JOIN {REJECTS}_scan s USING (scan_id, file_id) "
                "GROUP BY ALL")
        bad = [b for b in self._bad_lines if b[0] in self._paths]
        if bad:
            table = self._n_table(f"SELECT NULL::VARCHAR AS {q(PATH)}, NULL::BIGINT AS _line, NULL::VARCHAR AS _raw, "
                                  "NULL::VARCHAR AS _reason LIMIT 0")
            self.con.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", bad)
            parts.append(f"SELECT {q(PATH)}, _line, NULL::VARCHAR AS _column, _raw, _reason FROM {table}")
        if not parts:
            return None
        rows = self._n_table(" UNION ALL ".join(parts))
        n = self.con.execute(f"SELECT count(*) FROM {rows}").fetchone()[0]
        if not n:
            return None
        counts = {self._paths[p].key: int(c) for p, c in self.con.execute(
            f"SELECT {q(PATH)}, count(*) FROM {rows} GROUP BY ALL").fetchall() if p in self._paths}
        view = self._view(f"SELECT _raw, CAST(_line AS BIGINT) AS _line, 'parse' AS _rule, _column, _reason, "
                          f"now()::TIMESTAMPTZ AS _quarantined_at, {q(PATH)} FROM {rows}")
        if not self._with_path:
            view = self._view(f"SELECT * EXCLUDE ({q(PATH)}) FROM {view}")
        view = self._view(self._with_lineage(job, view, dict(self._describe(view))))
        quality["parse"] = {"action": "quarantine", "violations": int(n)}
        quality["_parse_by_source"] = counts
        quality["_quarantined"] = quality.get("_quarantined", 0) + int(n)
        return view, counts

    def _write_children(self, job: Job, parents: str) -> dict[str, Staged]:
        """Each child view, without the children of parent rows that a later step or a rule took out."""
        out: dict[str, Staged] = {}
        keep_all = PID not in dict(self._describe(parents))  # a `sql` step dropped the link: keep every child
        for table, child in self._children.items():
            if not keep_all:
                child = self._view(f"SELECT * FROM {child} WHERE {PID} IN (SELECT {PID} FROM {parents})")
            child = self._view(self._with_lineage(job, child, dict(self._describe(child))))
            if job.child_schemas.get(table):
                have = self._describe(child)
                casts = align(have, job.child_schemas[table])
                if casts:
                    types = dict(have)
                    repl = ", ".join(f"{cast_sql(q(c), types.get(c), t)} AS {q(c)}" for c, t in casts.items())
                    child = self._view(f"SELECT * REPLACE ({repl}) FROM {child}")
            files = self._write_to(child, os.path.join(job.child_staging[table], "data"), job.commit_id, [])
            file_sources, rows_out = self._file_sources(files)
            arrow_schema = self._arrow_schema(child, files)
            out[table] = Staged(files=files, schema=self._describe(child), rows_in={}, rows_out=rows_out,
                                file_sources=file_sources, arrow_schema=arrow_schema)
        return out

    def _fit_schema(self, job: Job, view: str) -> tuple[str, list[Any]]:
        """Declared types (`schema.hints`), then the workflow's evolution policy against the table's schema:
        `evolve` adds columns and widens types (in `_finish`); `freeze` fails a file that differs, listing every
        difference; `rescue` keeps values that don't fit in a `_rescued_data` JSON column; `discard_row`
        quarantines rows that don't fit. Returns the view and extra quarantine rules (for `discard_row`)."""
        policy = job.workflow.schema_
        cols = dict(self._describe(view))
        if policy.hints:
            missing = [c for c in policy.hints if c not in cols]
            if missing:
                raise InvalidInput(f"workflow `{job.workflow.name}` schema hints: no column "
                                   + ", ".join(f"`{m}`" for m in missing))
            repl = ", ".join(f"{cast_sql(q(c), cols.get(c), sql_type(t))} AS {q(c)}" for c, t in policy.hints.items())
            view = self._view(f"SELECT * REPLACE ({repl}) FROM {view}")
            cols = dict(self._describe(view))
        if policy.evolution == "evolve" or not job.table_schema:
            return view, []
        table = {n: t for n, t in job.table_schema if n not in LINEAGE and n not in ("_rescued_data",)}
        table_parts = {p.name for p in job.workflow.write.partition_by if p.function}
        data = {n: t for n, t in cols.items() if n not in (PATH, ROW)}
        new = [n for n in data if n not in table]
        changed = [n for n in data if n in table and data[n] != table[n] and not widens_to(data[n], table[n])]
        gone = [n for n in table if n not in data and n not in table_parts]
        key = job.sources[0].key if len(job.sources) == 1 else "the batch"
        if policy.evolution == "freeze":
            diffs = ([f"new column `{n}` ({data[n]})" for n in new]
                     + [f"column `{n}` is {data[n]}, the table has {table[n]}" for n in changed]
                     + [f"column `{n}` ({table[n]}) is missing" for n in gone])
            if diffs:
                raise SchemaConflict(f"`{key}`: the schema differs from table `{job.workflow.write.table}` "
                                     f"(schema evolution: freeze): " + "; ".join(diffs), file=key)
            return view, []
        fits = {n: cast_sql(q(n), data[n], table[n], try_=True) for n in changed}
        misfit = [f"({q(n)} IS NOT NULL AND {fits[n]} IS NULL)" for n in changed] + [
            f"{q(n)} IS NOT NULL" for n in new]
        if policy.evolution == "rescue":
            if not new and not changed:
                return view, []
            rescued = ", ".join(f"{lit(n)}, CASE WHEN {q(n)} IS NOT NULL AND {fits[n]} IS NULL THEN {q(n)} END"
                                for n in changed)
            rescued = ", ".join(x for x in (rescued, ", ".join(f"{lit(n)}, {q(n)}" for n in new)) if x)
            keep = [f"{fits[n]} AS {q(n)}" if n in fits else q(n) for n in cols if n not in new]
            src = (lit(job.sources[0].key) if PATH not in cols
                   else f"(SELECT key FROM __lf_sources s WHERE s.{q(PATH)} = v.{q(PATH)})")
            view = self._view(f"SELECT {', '.join(keep)}, CASE WHEN {' OR '.join(misfit)} THEN "
                              f"CAST(json_object({rescued}, '_file', {src}) AS VARCHAR) END AS _rescued_data "
                              f"FROM {view} v")
            return view, []
        # discard_row: rows that carry a value the table cannot hold are quarantined
        if not misfit:
            return view, []
        reason = "does not fit the table's schema: " + ", ".join(
            [f"`{n}` is not {table[n]}" for n in changed] + [f"`{n}` is not a table column" for n in new])
        rule = _SchemaRule(expr=" OR ".join(misfit), reason=reason, columns=changed + new)
        return view, [rule]

    def _validate(self, job: Job, view: str, extra: list[Any] | None = None) -> tuple[str, str | None, dict[str, Any]]:
        """Check every rule: `fail` rules fail the file (naming the rule, the count and the first line),
        `quarantine` rows are set aside with their line, rule, column and reason, `warn` rules are counted.
        Returns the rows to write, the rows to quarantine (or None) and the counts per rule."""
        rules = list(job.workflow.validate_) + list(extra or [])
        cols = dict(self._describe(view))
        names = [c for c in cols if c not in (PATH, ROW)]
        for rule in rules:
            wanted = _rule_columns(rule)
            missing = [c for c in wanted if c not in names]
            if missing:
                raise InvalidInput(f"workflow `{job.workflow.name}` rule `{rule.label}`: no column "
                                   + ", ".join(f"`{m}`" for m in missing) + "; columns are "
                                   + ", ".join(f"`{c}`" for c in names))
        flags = [self._violation(job, rule, view) for rule in rules]
        select = f"SELECT *, {', '.join(f'{e} AS __lf_bad{i}' for i, e in enumerate(flags))} FROM {view}"
        sums = ", ".join(f"count(*) FILTER (WHERE __lf_bad{i})" for i in range(len(rules)))
        try:  # count first, without copying the rows: clean files (the usual case) need no flagged copy
            total, *counts = self.con.execute(f"SELECT count(*), {sums} FROM ({select})").fetchone()
            set_aside = any(n and r.action in ("quarantine", "fail") for r, n in zip(rules, counts, strict=True))
            flagged = self._n_table(select) if set_aside else self._view(select)
        except duckdb.Error as exc:
            raise InvalidInput(f"workflow `{job.workflow.name}` rules: {_first_line(exc)}") from None
        key = job.sources[0].key if len(job.sources) == 1 else ", ".join(s.key for s in job.sources)
        has_row = ROW in cols
        quality: dict[str, Any] = {}
        for i, (rule, n) in enumerate(zip(rules, counts, strict=True)):
            if rule.kind == "row_count":
                rc = rule.row_count
                n = int((rc.min is not None and total < rc.min) or (rc.max is not None and total > rc.max))
                if n and rule.action == "fail":
                    bound = " and ".join(x for x in (f"at least {rc.min}" if rc.min is not None else "",
                                                      f"at most {rc.max}" if rc.max is not None else "") if x)
                    raise InvalidInput(f"`{key}`: rule `{rule.label}` failed: {total} rows, expected {bound}",
                                       file=key)
            quality[rule.label] = {"action": rule.action, "violations": int(n)}
            if n and rule.action == "fail":
                line = None
                if has_row:
                    first = self.con.execute(f"SELECT min({ROW}) FROM {flagged} WHERE __lf_bad{i}").fetchone()[0]
                    line = int(first) + self._line_offset if first is not None else None
                where = f"`{key}`" + (f" line {line}" if line else "")
                raise InvalidInput(f"{where}: rule `{rule.label}` failed for {n} of {total} rows (action: fail)",
                                   file=key, line=line)
        quarantined = [i for i, r in enumerate(rules) if r.action == "quarantine" and quality[r.label]["violations"]]
        keep_cols = ", ".join(q(c) for c in cols)
        if not quarantined:  # every row is written: from the rows themselves, not the flagged copy
            return view, None, quality
        bad = " OR ".join(f"__lf_bad{i}" for i in quarantined)
        rule_of = "CASE " + " ".join(f"WHEN __lf_bad{i} THEN {lit(rules[i].label)}" for i in quarantined) + " END"
        named = [",".join(getattr(r, "columns", None) or _rule_columns(r)) for r in rules]
        column_of = "CASE " + " ".join(f"WHEN __lf_bad{i} THEN {lit(named[i])}"
                                       for i in quarantined) + " END"
        reason_of = "CASE " + " ".join(f"WHEN __lf_bad{i} THEN {lit(_reason_for(rules[i]))}"
                                       for i in quarantined) + " END"
        line = f"{ROW} + {self._line_offset}" if has_row else "NULL"
        good = self._view(f"SELECT {keep_cols} FROM {flagged} WHERE NOT ({bad})")
        q_view = self._view(f"SELECT {', '.join(q(c) for c in cols if c != ROW)}, CAST({line} AS BIGINT) AS _line, "
                            f"{rule_of} AS _rule, {column_of} AS _column, {reason_of} AS _reason, "
                            f"now()::TIMESTAMPTZ AS _quarantined_at FROM {flagged} WHERE {bad}")
        quality["_quarantined"] = self.con.execute(f"SELECT count(*) FROM {flagged} WHERE {bad}").fetchone()[0]
        return good, q_view, quality

    def _n_table(self, select: str) -> str:
        self._n += 1
        name = f"__lf_t{self._n}"
        self.con.execute(f"CREATE TEMP TABLE {name} AS {select}")
        self._tables.append(name)
        return name

    def _violation(self, job: Job, rule: Any, view: str) -> str:
        """A SQL expression that is true for a row that breaks the rule (a NULL passes, except `not_null`)."""
        k = rule.kind
        if k == "schema":
            return f"({rule.expr})"
        if k == "not_null":
            return "(" + " OR ".join(f"{q(c)} IS NULL" for c in rule.not_null) + ")"
        if k == "range":
            r = rule.range
            parts = ([f"{q(r.column)} < {r.min!r}"] if r.min is not None else []) + (
                [f"{q(r.column)} > {r.max!r}"] if r.max is not None else [])
            return "coalesce(" + " OR ".join(parts or ["false"]) + ", false)"
        if k == "accepted_values":
            vals = ", ".join(lit(str(v)) for v in rule.accepted_values.values)
            return f"coalesce(CAST({q(rule.accepted_values.column)} AS VARCHAR) NOT IN ({vals}), false)"
        if k == "regex":
            return (f"coalesce(NOT regexp_matches(CAST({q(rule.regex.column)} AS VARCHAR), "
                    f"{lit(rule.regex.pattern)}), false)")
        if k == "expect":
            return f"NOT coalesce(({rule.expect}), false)"
        if k == "unique":
            keys = ", ".join(q(c) for c in rule.unique.columns)
            within = f"count(*) OVER (PARTITION BY {keys}) > 1"
            if rule.unique.against_table and job.table_files:
                paths = "[" + ", ".join(lit(a) for a, _ in job.table_files) + "]"
                hive = "true" if job.partition_names else "false"
                return (f"({within} OR ({keys}) IN (SELECT ({keys}) FROM read_parquet({paths}, "
                        f"union_by_name = true, hive_partitioning = {hive})))")
            return f"({within})"
        return "false"  # row_count: judged on the whole file

    def _with_lineage(self, job: Job, view: str, described: dict[str, str]) -> str:
        """`_source_file`, `_ingested_at`, `_run_id` on every row (replacing columns of those names); the internal
        path and row-number columns go."""
        ingested = f"{lit(job.ingested_at.isoformat())}::TIMESTAMPTZ AS _ingested_at"
        drop = [c for c in (PATH, ROW, PID, *LINEAGE) if c in described]
        star = f"v.* EXCLUDE ({', '.join(q(c) for c in drop)})" if drop else "v.*"
        if PATH in described:
            return (f"SELECT {star}, s.key AS _source_file, {ingested}, s.run_id AS _run_id FROM {view} v "
                    f"JOIN __lf_sources s USING ({q(PATH)})")
        src = job.sources[0]
        return (f"SELECT {star}, {lit(src.key)} AS _source_file, {ingested}, {lit(src.run_id)} AS _run_id "
                f"FROM {view} v")

    def _finish(self, job: Job, view: str) -> str:
        """Partition columns, lineage, and the table's types."""
        wf = job.workflow
        described = dict(self._describe(view))
        has_path = PATH in described
        if not has_path and len(job.sources) > 1:
            raise InvalidInput(f"workflow `{wf.name}`: a `sql` step dropped the file column; select `*` from "
                               "`input` or set `batch: false`")
        view = self._view(self._with_lineage(job, view, described))
        return self._shape_for_table(job, view)

    def _shape_for_table(self, job: Job, view: str) -> str:
        """Partition expression columns, and the table's types where they fit without loss."""
        wf = job.workflow
        parts = []
        cols = dict(self._describe(view))
        for p in wf.write.partition_by:
            if p.column not in cols:
                raise InvalidInput(f"workflow `{wf.name}`: partition column `{p.column}` is not in the output; "
                                   "columns are " + ", ".join(f"`{c}`" for c in cols))
            if p.function:
                parts.append(f"{p.function}({q(p.column)}) AS {q(p.name)}")
        if parts:
            view = self._view(f"SELECT *, {', '.join(parts)} FROM {view}")
        if job.table_schema:
            have = self._describe(view)
            casts = align(have, job.table_schema)
            if casts:
                types = dict(have)
                repl = ", ".join(f"{cast_sql(q(c), types.get(c), t)} AS {q(c)}" for c, t in casts.items())
                view = self._view(f"SELECT * REPLACE ({repl}) FROM {view}")
        return view

    def replay(self, job: Job, files: list[str], run_id: str | None) -> tuple[list[StagedFile], list[StagedFile],
                                                                              int, int]:
        """Quarantined rows (of one run, or all) checked again with the workflow's current rules: the rows that
        pass are written for the table (keeping their `_source_file`), the rest are written back for the
        quarantine. Returns (table files, quarantine files, rows replayed, rows still quarantined)."""
        self._views, self._tables, self._described = [], [], {}
        self._with_path = False
        try:
            src = self._n_table(f"SELECT *, row_number() OVER () AS __lf_qid FROM read_parquet({_paths(files)}, "
                                "union_by_name = true)")
            picked = f"_run_id = {lit(run_id)}" if run_id else "true"
            meta = ["_line", "_rule", "_column", "_reason", "_quarantined_at", "_ingested_at", "_run_id", "_raw"]
            if "_raw" in dict(self._describe(src)):  # rows that could not be parsed stay: re-land a fixed file
                picked += " AND _rule IS DISTINCT FROM 'parse'"
            cols = [c for c, _ in self._describe(src)]
            data = self._view(f"SELECT * EXCLUDE ({', '.join(q(c) for c in meta if c in cols)}) FROM {src} "
                              f"WHERE {picked}")
            rules = [r for r in job.workflow.validate_ if r.kind != "row_count"]
            flags = [self._violation(job, r, data) for r in rules] or ["false"]
            flagged = self._n_table(f"SELECT *, ({' OR '.join(flags)}) AS __lf_bad FROM {data}")
            ingested = f"{lit(job.ingested_at.isoformat())}::TIMESTAMPTZ AS _ingested_at"
            good = self._view(f"SELECT * EXCLUDE (__lf_bad, __lf_qid), {ingested}, {lit(job.sources[0].run_id)} "
                              f"AS _run_id FROM {flagged} WHERE NOT __lf_bad")
            good = self._shape_for_table(job, good)
            passed, kept = self.con.execute(f"SELECT count(*) FILTER (WHERE NOT __lf_bad), "
                                            f"count(*) FILTER (WHERE __lf_bad) FROM {flagged}").fetchone()
            if not passed:
                return [], [], 0, int(kept)
            table_files = self._write(job, good)
            rest = self._view(f"SELECT * EXCLUDE (__lf_qid) FROM {src} WHERE __lf_qid NOT IN "
                              f"(SELECT __lf_qid FROM {flagged} WHERE NOT __lf_bad)")
            quarantine = self._write_to(rest, os.path.join(job.staging, "quarantine"), job.commit_id, [])
            return table_files, quarantine, int(passed), int(kept)
        finally:
            self._drop_views()

    def _merge(self, job: Job, view: str) -> tuple[str, list[str]]:
        """Copy-on-write upsert: the table files holding any of the batch's keys are rewritten together with
        the batch, keeping one row per key: the greatest `order_by`, then the later file, then the batch."""
        w = job.workflow.write
        cols = dict(self._describe(view))
        missing = [k for k in w.keys + ([w.order_by] if w.order_by else []) if k not in cols]
        if missing:
            raise InvalidInput(f"workflow `{job.workflow.name}`: merge column {', '.join(f'`{m}`' for m in missing)} "
                               "is not in the output; columns are " + ", ".join(f"`{c}`" for c in cols))
        keys = ", ".join(q(k) for k in w.keys)
        rank = "CASE " + " ".join(f"WHEN _source_file = {lit(s.key)} THEN {i + 1}" for i, s in
                                  enumerate(job.sources)) + " ELSE 0 END"
        batch = self._view(f"SELECT *, {rank} AS __lf_rank FROM {view}")
        replaced: list[str] = []
        old = None
        if job.table_files:
            by_abs = dict(job.table_files)
            paths = "[" + ", ".join(lit(a) for a in by_abs) + "]"
            types = dict(job.table_schema or [])
            hive = "true" if job.partition_names else "false"
            if job.partition_names:
                hive += ", hive_types = {" + ", ".join(f"{lit(p)}: {lit(types.get(p, 'VARCHAR'))}"
                                                      for p in job.partition_names) + "}"
            table = self._view(f"SELECT * FROM read_parquet({paths}, filename = {lit(PATH)}, union_by_name = true, "
                               f"hive_partitioning = {hive})")
            hits = self.con.execute(f"SELECT DISTINCT {q(PATH)} FROM {table} WHERE ({keys}) IN "
                                    f"(SELECT ({keys}) FROM {batch})").fetchall()
            replaced = [by_abs[h[0]] for h in hits]
            if hits:
                hit_list = "[" + ", ".join(lit(h[0]) for h in hits) + "]"
                old = self._view(f"SELECT *, 0 AS __lf_rank FROM read_parquet({hit_list}, "
                                 f"union_by_name = true, hive_partitioning = {hive})")
        union = f"SELECT * FROM {batch}" + (f" UNION ALL BY NAME SELECT * FROM {old}" if old else "")
        order = (f"{q(w.order_by)} DESC NULLS LAST, " if w.order_by else "") + "__lf_rank DESC"
        merged = self._view(f"SELECT * EXCLUDE (__lf_rank) FROM ({union}) "
                            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {order}) = 1")
        return merged, replaced

    # --- write -----------------------------------------------------------------------------------------------

    def _arrow_schema(self, view: str, files: list[StagedFile]) -> Any:
        """The output's Arrow schema, partition columns included: read from a written file's footer (running the
        view again just for its schema would read the input again)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not files:
            return self.con.sql(f"SELECT * FROM {view} LIMIT 0").to_arrow_table().schema
        fields = {f.name: f for f in pq.read_schema(files[0].path)}
        described = self._describe(view)
        missing = [(n, t) for n, t in described if n not in fields]  # Hive partition columns live in folder names
        if missing:
            fields.update({f.name: f for f in self.con.sql(
                "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {q(n)}" for n, t in missing)).to_arrow_table().schema})
        return pa.schema([fields[n] for n, _ in described])

    def _write_to(self, view: str, out_dir: str, commit_id: str, partition_by: list[str]) -> list[StagedFile]:
        options = ["FORMAT parquet", "COMPRESSION zstd", f"FILENAME_PATTERN {lit('part-' + commit_id + '-{i}')}",
                   f"FILE_SIZE_BYTES {256 << 20}", "RETURN_STATS"]  # a size bound makes COPY write a folder
        if partition_by:
            options.append("PARTITION_BY (" + ", ".join(q(p) for p in partition_by) + ")")
        rows = self.con.execute(f"COPY (SELECT * FROM {view}) TO {lit(out_dir)} ({', '.join(options)})").fetchall()
        return [StagedFile(path=f, relpath=os.path.relpath(f, out_dir), rows=int(n), bytes=int(b),
                           partition=dict(pk or {}), stats=st or {}) for f, n, b, _foot, st, pk, _x in rows if n]

    def _write(self, job: Job, view: str) -> list[StagedFile]:
        wf = job.workflow
        out_dir = os.path.join(job.staging, "data")
        options = [
            "FORMAT parquet", f"COMPRESSION {wf.write.compression}",
            f"FILENAME_PATTERN {lit('part-' + job.commit_id + '-{i}')}",
            f"FILE_SIZE_BYTES {parse_size(wf.write.target_file_size)}", "RETURN_STATS",
        ]
        if wf.write.partition_by:
            options.append("PARTITION_BY (" + ", ".join(q(p.name) for p in wf.write.partition_by) + ")")
        try:
            rows = self.con.execute(f"COPY (SELECT * FROM {view}) TO {lit(out_dir)} ({', '.join(options)})"
                                    ).fetchall()
        except duckdb.Error as exc:
            raise self._explain(exc, job.sources, file_format(wf, job.sources[0].key)) from None
        files = []
        for filename, count, size, _footer, col_stats, part_keys, _extra in rows:
            if not count:
                try:
                    os.remove(filename)
                except OSError:
                    pass
                continue
            files.append(StagedFile(path=filename, relpath=os.path.relpath(filename, out_dir), rows=int(count),
                                    bytes=int(size), partition=dict(part_keys or {}), stats=col_stats or {}))
        return files

    def _file_sources(self, files: list[StagedFile]) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
        by_path = {f.path: f for f in files}
        out, totals = [], {}
        for path, counts in self.source_counts(list(by_path)).items():
            for key, n in counts.items():
                out.append((by_path[path].relpath, key, n))
                totals[key] = totals.get(key, 0) + n
        return out, totals

    def source_counts(self, paths: list[str]) -> dict[str, dict[str, int]]:
        if not paths:
            return {}
        rows = self.con.execute(
            "SELECT filename, _source_file, count(*) FROM read_parquet([" + ", ".join(lit(p) for p in paths)
            + "], filename = true, hive_partitioning = false) GROUP BY ALL").fetchall()
        out: dict[str, dict[str, int]] = {}
        for path, key, n in rows:
            out.setdefault(path, {})[key] = int(n)
        return out

    @staticmethod
    def _line_counts(paths: dict[str, Source]) -> dict[str, int]:
        out = {}
        for path, src in paths.items():
            with enc._open(path) as fh:
                out[src.key] = sum(1 for line in fh if line.strip())
        return out

    def _counts(self, view: str) -> dict[str, int]:
        if not self._with_path:
            (n,) = self.con.execute(f"SELECT count(*) FROM {view}").fetchone()
            return {self._only_key: int(n)}
        rows = self.con.execute(
            f"SELECT s.key, count(*) FROM {view} v JOIN __lf_sources s USING ({q(PATH)}) GROUP BY 1").fetchall()
        return {k: int(n) for k, n in rows}

    # --- errors ----------------------------------------------------------------------------------------------

    def _explain(self, exc: Exception, sources: list[Source], fmt: str) -> InvalidInput:
        """Turn an engine error into one that names the file, the line and the reason."""
        text = str(exc)
        src = _source_in(text, sources, getattr(self, "_paths", {}))
        if src is None and len(sources) == 1:
            src = sources[0]
        key = src.key if src else ", ".join(s.key for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
        line: int | None = None
        reason = _reason(text)
        if src is not None:
            found = diagnose(src.path if fmt == "parquet" else self._readable(src), fmt, text)
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


_DATABASE: duckdb.DuckDBPyConnection | None = None
_DATABASE_LOCK = __import__("threading").Lock()


def _shared_database(threads: int | None, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    global _DATABASE
    with _DATABASE_LOCK:
        if _DATABASE is None:
            _DATABASE = duckdb.connect(":memory:")
            _DATABASE.execute("SET preserve_insertion_order = false")
        if threads:
            _DATABASE.execute(f"SET threads = {int(threads)}")
        if memory_limit:
            _DATABASE.execute(f"SET memory_limit = {lit(memory_limit)}")
        return _DATABASE


@dataclass
class _SchemaRule:
    """The `discard_row` policy as a quarantine rule: rows whose values the table's schema cannot hold."""

    expr: str
    reason: str
    columns: list[str]
    kind: str = "schema"
    action: str = "quarantine"
    label: str = "schema"


_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
              "UBIGINT"}
_Q3 = "'" * 3  # a quote inside a SQL string literal, then the literal's own quote


def cast_sql(expr: str, source: str | None, target: str, *, try_: bool = False) -> str:
    """CAST, but text becomes an integer only when it is a whole number (DuckDB rounds `'2.5'` to 3).
    With `try_`, a value that does not fit gives NULL instead of an error."""
    if source == "VARCHAR" and target in _INT_TYPES:
        whole = f"regexp_full_match(trim({expr}), '[+-]?[0-9]+')"
        if try_:
            return f"CASE WHEN {whole} THEN TRY_CAST(trim({expr}) AS {target}) END"
        return (f"CASE WHEN {expr} IS NULL OR {whole} THEN CAST(trim({expr}) AS {target}) ELSE "
                f"error('Could not convert string {_Q3} || {expr} || {_Q3} to {target}') END")
    return f"{'TRY_CAST' if try_ else 'CAST'}({expr} AS {target})"


def _rule_columns(rule: Any) -> list[str]:
    k = rule.kind
    if k == "schema":
        return []  # the columns are named in the reason; a missing-column check must not apply
    if k == "not_null":
        return list(rule.not_null)
    if k == "unique":
        return list(rule.unique.columns)
    if k in ("range", "accepted_values", "regex"):
        return [getattr(rule, k).column]
    return []


def _reason_for(rule: Any) -> str:
    k = rule.kind
    if k == "schema":
        return rule.reason
    if k == "not_null":
        return "missing value (null)"
    if k == "range":
        r = rule.range
        return "out of range " + " and ".join(x for x in (f">= {r.min:g}" if r.min is not None else "",
                                                            f"<= {r.max:g}" if r.max is not None else "") if x)
    if k == "accepted_values":
        return "not one of " + ", ".join(map(str, rule.accepted_values.values))
    if k == "regex":
        return f"does not match {rule.regex.pattern}"
    if k == "unique":
        return "duplicate key" + (" (or already in the table)" if rule.unique.against_table else "")
    if k == "expect":
        return f"expected {rule.expect}"
    return rule.kind


def _paths(paths: Any) -> str:
    return "[" + ", ".join(lit(p) for p in paths) + "]"


STRICT_JSON_BYTES = 512 << 20  # JSON documents up to this size are validated strictly before reading
_LENIENT_JSON = re.compile(r",\s*[\]}]|NaN|Infinity")  # what DuckDB's json_valid lets through


def _json_document_as_lines(path: str, scratch: str, key: str, *,
                            records_required: bool) -> tuple[str, bool, int]:
    """Rewrite a JSON document as JSON Lines: its records, or `{"value": <JSON text>}` per element when it is
    not made of objects. Returns the new path and whether it holds values."""
    import sys

    doc = json.loads(enc.read_text(path), parse_constant=_no_constants)
    items = doc if isinstance(doc, list) else [doc]
    as_values = not all(isinstance(i, dict) and i and "" not in i for i in items)
    if as_values and records_required:
        line, reason = _diagnose_json(path, "json") or (1, "expected records (JSON objects)")
        raise InvalidInput(f"`{key}` line {line}: {reason}", file=key, line=line)
    os.makedirs(scratch, exist_ok=True)
    out = os.path.join(scratch, os.path.basename(path) + ".jsonl")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        with open(out, "w", encoding="utf-8") as fh:
            for item in items:
                value = {"value": json.dumps(item, ensure_ascii=False)} if as_values else item
                fh.write(json.dumps(value, ensure_ascii=False) + "\n")
    finally:
        sys.setrecursionlimit(limit)
    return out, as_values, len(items)


def _no_constants(name: str) -> float:
    raise ValueError(f"`{name}` is not a JSON value (JSON has no NaN or Infinity)")


def _type_detection_miss(text: str) -> bool:
    return ("Error when converting column" in text or "Could not convert" in text) and "CSV Error" in text or (
        "Could not convert" in text and "JSON" in text)


def _source_in(text: str, sources: list[Source], paths: dict[str, Source]) -> Source | None:
    for path, src in paths.items():
        if path in text:
            return src
    for src in sources:
        if src.path in text:
            return src
    return None


def _reason(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "unreadable input"
    head = re.sub(r"^[A-Za-z ]*Error: ", "", lines[0])
    if head.startswith("CSV Error on Line"):
        rest = [ln for ln in lines[1:] if not ln.startswith(("Original Line", "Possible Solution", "file ="))]
        head = rest[0] if rest else "malformed CSV"
        if "Invalid unicode" in head:
            head = ("the file is not valid UTF-8 here; set `read.encoding` to its encoding "
                    "(e.g. `latin-1`, `cp1252`, `utf-16`)")
    elif head.startswith("Error when sniffing file"):
        head = "could not detect the CSV dialect (delimiter, quote, columns)"
    return head


def _first_line(exc: Exception) -> str:
    return _reason(str(exc))


class _StepError(duckdb.Error):
    pass


def _step_error(message: str) -> Exception:
    return _StepError(message)


def _require(columns: list[str], wanted: Any, what: str) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise _step_error(f"no column {', '.join(f'`{m}`' for m in missing)} {what}; columns are "
                          + ", ".join(f"`{c}`" for c in columns))


@contextmanager
def _timed(steps: list[dict[str, Any]], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        steps.append({"step": name, "seconds": round(time.perf_counter() - start, 6)})


# --- diagnosis: find the line and reason when the engine's error does not give them ------------------------


def diagnose(path: str, fmt: str, engine_error: str) -> tuple[int | None, str] | None:
    """Scan a failing file with Python's own parsers to name the first bad line and why."""
    try:
        if fmt == "csv":
            return _diagnose_csv(path, engine_error)
        if fmt in ("json", "jsonl"):
            return _diagnose_json(path, fmt)
    except Exception:  # diagnosis is best effort; the engine's own message stays
        return None
    return None


def _text_lines(path: str) -> io.TextIOBase:
    import gzip

    raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def _diagnose_csv(path: str, engine_error: str) -> tuple[int | None, str] | None:
    value = re.search(r"Could not convert string ['\"](.*?)['\"] to '?([A-Z0-9_]+)", engine_error)
    with _text_lines(path) as fh:
        if value:
            needle = value.group(1)
            for n, line in enumerate(fh, 1):
                if needle in line:
                    return n, f"value `{needle}` is not a valid {value.group(2)}"
            return None
        sample = fh.read(1 << 16)
        fh.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample.split("\n", 1)[0] or sample, delimiters=",;|\t")
            delim = dialect.delimiter
        except csv.Error:
            delim = ","
        reader = csv.reader(fh, delimiter=delim, strict=True)
        expected = None
        try:
            for row in reader:
                if not row:
                    continue
                if expected is None:
                    expected = len(row)
                elif len(row) != expected:
                    return reader.line_num, f"expected {expected} fields (as in the header), found {len(row)}"
        except csv.Error as exc:
            return reader.line_num, f"malformed CSV: {exc}"
    return None


def _diagnose_json(path: str, fmt: str) -> tuple[int | None, str] | None:
    with _text_lines(path) as fh:
        text = fh.read()
    if fmt == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            if text.lstrip()[:1] == "{" and "Extra data" in exc.msg:
                return _diagnose_json_lines(text)  # objects one after another: read as JSON Lines
            return exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})"
        except RecursionError:
            return 1, "invalid JSON: nested too deeply"
        items = doc if isinstance(doc, list) else [doc]
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                what = "the top level" if not isinstance(doc, list) else f"element {i} of the array"
                return 1, (f"expected records (JSON objects), but {what} is {_json_kind(item)}; "
                           "a table needs an array of objects, one object, or JSON Lines")
        return None
    return _diagnose_json_lines(text)


def _json_kind(value: Any) -> str:
    """`an object`, `a number`, ...: what a JSON value is, with its article."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _diagnose_json_lines(text: str) -> tuple[int | None, str] | None:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            return n, f"invalid JSON: {exc.msg} (column {exc.colno})"
        except RecursionError:
            return n, "invalid JSON: nested too deeply"
        if not isinstance(value, dict):
            return n, f"expected a JSON object per line, found {_json_kind(value)}"
    return None
