"""Reading JSON documents and JSON Lines with DuckDB's `read_json`: its arguments, the strict check of a document
(RFC 8259: DuckDB tolerates trailing commas, NaN, an empty file), documents only Python's parser reads, and the
lines of a JSON Lines file that are not records, set aside for the quarantine."""

from __future__ import annotations

import json
import os

import duckdb
import msgspec

from landfall import encoding as enc
from landfall.config import ReadOptions
from landfall.engines.base import JOINED_HIDDEN, Source
from landfall.engines.duckdb.casts import cast_sql
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.diagnose import (
    _LENIENT_JSON,
    STRICT_JSON_BYTES,
    _json_document_as_lines,
    _no_constants,
    _refuse_lone_surrogate,
)
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS, REFUSING_SAMPLE_ROWS, columns_arg
from landfall.engines.duckdb.sql import PATH, _filename_arg, _paths, common_args, lit, q
from landfall.engines.duckdb.types import duck_type, sql_type
from landfall.errors import InvalidInput
from landfall.jsontext import (
    as_loaded,
    fast_record,
    invalid_json,
    not_a_record,
    repeats_a_key,
    surely_once_each,
    too_deep,
)


def _good_lines(cx: JobContext, path: str, src: Source) -> str:
    """A copy of a JSON Lines file that DuckDB's reader reads: once it refused a key twice in one object
    (`plan.repeated_keys`), such a record written with the last value of each (`jsontext.last_of_each_key`); once
    it took records holding the empty key for no records (`plan.empty_keys`), that key named `EMPTY_KEY`; and
    without the lines that are no records, which are kept in `cx.bad_lines` (line number, text, reason) for the
    quarantine (without `bad_rows: quarantine`, the first of them fails the file, naming its line)."""
    out_dir = os.path.join(cx.job.scratch_dir, "_lines")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{src.file_id}.jsonl")
    cx.bad_lines = [b for b in cx.bad_lines if b[0] != out]
    cx.gone_lines = []
    aside = cx.job.workflow.read.bad_rows == "quarantine"
    with enc._open(path) as fh, open(out, "wb") as dst:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                cx.gone_lines.append(n)
                continue
            # a quick look first (msgspec: seven times Python's parser); what it cannot tell, Python's parser judges
            record = fast_record(raw)
            empty = cx.plan.empty_keys and (b'""' in raw if record is None else "" in record)
            if record is not None and not empty and (not cx.plan.repeated_keys or surely_once_each(raw, record)):
                dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
                continue
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            reason = not_a_record(text)
            if reason is None and (empty or (cx.plan.repeated_keys and repeats_a_key(text))):
                try:
                    raw = as_loaded(text).encode("utf-8")
                except RecursionError:
                    reason = too_deep()
                except ValueError as exc:
                    reason = str(exc)
            if reason is None:
                dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
            elif not aside:
                raise InvalidInput(f"`{src.key}` line {n}: {reason}", file=src.key, line=n)
            else:
                cx.bad_lines.append((out, n, text, reason, None))
                cx.gone_lines.append(n)
    return out


def record_counts(con: duckdb.DuckDBPyConnection, path: str, fmt: str) -> tuple[int, int]:
    """How many of a JSON file's first 20,480 top-level values (lines, or a document's elements; a document that is
    no array, one value) are objects, and how many are not."""
    forms = ["newline_delimited"] if fmt == "jsonl" else ["array", "unstructured"]
    for form in forms:
        sample = f"SELECT json FROM read_json_objects({lit(path)}, format = {lit(form)}, ignore_errors = true)"
        try:
            found = con.execute(
                f"SELECT count(*) FILTER (json_type(json) = 'OBJECT'), count(*) FILTER (json_type(json) <> 'OBJECT') "
                f"FROM ({sample} LIMIT {DETECTION_SAMPLE_ROWS})"
            ).fetchone()
        except duckdb.Error:  # not an array of values: one document
            continue
        return (int(found[0]), int(found[1])) if found else (0, 0)
    return 0, 0


def fieldless_column(table_schema: list[tuple[str, str]] | None, key: str) -> tuple[str, str]:
    """JSON records that hold no field (`{}` each), which DuckDB's reader takes for no records, are rows NULL in
    every column, as a record lacking a column is NULL in it: they are read as holding the table's first column
    (NULL), the others added as for any record. Its name and DuckDB type; a new table has no column to give
    them (`InvalidInput`)."""
    columns = [(n, t) for n, t in table_schema or [] if n not in JOINED_HIDDEN]
    if not columns:
        raise InvalidInput(
            f"`{key}` line 1: every record is `{{}}`, holding no field: a new table gets its columns from its "
            "first file's records, and these have none",
            file=key,
            line=1,
        )
    name, kind = columns[0]
    return name, duck_type(kind)


def fieldless_records(cx: JobContext, paths: str, opts: ReadOptions, fmt: str, key: str) -> str:
    """A JSON file whose records hold no field (`fieldless_column`): before, read as `value` rows of `{}`, a column
    the table gained."""
    name, kind = fieldless_column(cx.job.table_schema, key)
    values = _json_sql(cx, paths, opts, fmt, records=False)
    return f"SELECT NULL::{kind} AS {q(name)}, * EXCLUDE (value) FROM ({values})"


def _json_lines_of(
    cx: JobContext, paths: dict[str, Source], opts: ReadOptions, digits: bool | None = None
) -> tuple[str, bool]:
    """A valid document DuckDB's reader refuses (duplicate keys, deep nesting, empty keys): Python's parser
    reads it (the last of duplicate keys wins) into JSON Lines for DuckDB (`cx.as_lines`). The read, and whether
    those lines are records (read as the records of a JSON Lines file are), not `value` rows."""
    ((path, src),) = paths.items()
    lines, as_values, n = _json_document_as_lines(
        path,
        os.path.join(cx.job.scratch_dir, "_json"),
        src.key,
        records_required=opts.records == "true",
        table_schema=cx.job.table_schema,
        digits=digits,
    )
    cx.as_lines = lines
    if n == 0:
        return "SELECT NULL::VARCHAR AS value WHERE false", False
    if as_values:
        return (
            f"SELECT value FROM read_json({lit(lines)}, format = 'newline_delimited', records = true, "
            "columns = {'value': 'VARCHAR'})"
        ), False
    return _json_sql(cx, _paths([lines]), opts, "jsonl"), True


def _check_json_document(cx: JobContext, path: str, src: Source) -> None:
    """A JSON document must be strictly valid (RFC 8259): DuckDB's reader tolerates trailing commas, NaN and
    Infinity, and reads an empty file as no rows."""
    size = os.path.getsize(path)
    if size > STRICT_JSON_BYTES:
        return
    try:
        text = enc.read_text(path)
    except UnicodeDecodeError as exc:  # (read as UTF-8, declared or detected on the sample)
        raise enc.undecodable(src.key, path, exc) from None
    if not text.strip():
        raise InvalidInput(
            f"`{src.key}` line 1: the file is empty; a JSON document needs a value "
            "(use `read: {format: jsonl}` for files of zero or more records)",
            file=src.key,
            line=1,
        )
    try:
        msgspec.json.Decoder(msgspec.Raw).decode(text)  # strict, and only checked: nothing is built
        return
    except (msgspec.DecodeError, RecursionError):
        pass  # what is wrong, and where: Python's parser says
    valid = cx.con.execute("SELECT json_valid(?)", [text]).fetchone()[0]
    if valid and not _LENIENT_JSON.search(text):
        return
    try:
        json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise invalid_json(src.key, exc) from None
    except ValueError as exc:
        raise InvalidInput(f"`{src.key}`: invalid JSON: {exc}", file=src.key) from None
    except RecursionError:
        raise InvalidInput(f"`{src.key}` line 1: {too_deep()}", file=src.key, line=1) from None
    _refuse_lone_surrogate(src.key, text)
    if not valid:
        raise InvalidInput(f"`{src.key}`: invalid JSON", file=src.key)


def _json_sql(
    cx: JobContext,
    paths: str,
    o: ReadOptions,
    fmt: str,
    records: bool = True,
    columns: dict[str, str] | None = None,
    formats: tuple[str | None, str | None] = (None, None),
    detect: bool = False,
) -> str:
    """The SELECT of JSON records (or of `value` rows: `records=False`), with `columns` (name -> DuckDB type) and
    the `formats` their dates and timestamps are read in (`jsondates.pin_dates`) when they are pinned. `detect`:
    a lone file's columns detected by the reader itself (not `union_by_name`), which then refuses a key past its
    sample (`jsonkeys.refusing_read`)."""
    form = json_form(fmt)
    if not records:
        return (
            f"SELECT CAST(to_json(json) AS VARCHAR) AS value{', ' + q(PATH) if cx.with_path else ''} "
            f"FROM read_json({paths}, {', '.join(_filename_arg(cx) + [f'format = {lit(form)}'])}, "
            f"records = false{_max_object_arg(cx)})"
        )
    args = _filename_arg(cx) + [f"union_by_name = {str(not detect).lower()}", f"format = {lit(form)}", "records = true"]
    if cx.plan.max_object:
        args.append(f"maximum_object_size = {cx.plan.max_object}")
    args.extend(common_args(cx.plan, o))
    if columns and not detect:
        args.append(columns_arg(columns))
    if detect:
        args.append(f"sample_size = {REFUSING_SAMPLE_ROWS}")
    date_format, stamp_format = formats
    if date_format and not o.date_format:
        args.append(f"dateformat = {lit(date_format)}")
    if stamp_format and not o.timestamp_format:
        args.append(f"timestampformat = {lit(stamp_format)}")
    select = f"SELECT * FROM read_json({paths}, {', '.join(args)})"
    # hints for some columns; the rest are detected. In quarantine mode a column pinned as JSON is converted
    # after the read, its rows that do not fit set aside (`reading.exactly`)
    aside = {k for k, t in (columns or {}).items() if t == "JSON"} if o.bad_rows == "quarantine" else set()
    if declared := {k: v for k, v in o.types.items() if k not in aside}:
        # a declared column the file does not have is passed over, as the CSV reader does (`reading.exactly`)
        have = set(columns) if columns else {r[0] for r in cx.con.execute(f"DESCRIBE {select}").fetchall()}
        have = {h.lower() for h in have}
        declared = {k: v for k, v in declared.items() if k.lower() in have}
    if declared:
        repl = ", ".join(f"{_declared(k, sql_type(v))} AS {q(k)}" for k, v in declared.items())
        select = f"SELECT * REPLACE ({repl}) FROM ({select})"
    if o.all_strings:
        if not cx.with_path:
            return f"SELECT COLUMNS(*)::VARCHAR FROM ({select})"
        return f"SELECT COLUMNS(c -> c <> {lit(PATH)})::VARCHAR, {q(PATH)} FROM ({select})"
    return select


def json_form(fmt: str) -> str:
    """DuckDB's `format` for a JSON read of landfall's format `fmt` (`jsonl` or `json`)."""
    return "newline_delimited" if fmt == "jsonl" else "auto"


def _declared(name: str, target: str) -> str:
    """A detected column as its declared type, losing nothing: as JSON, whatever type was detected, each value is
    converted by its kind (`casts.cast_sql`: a string as its text, `2.5` never into an integer). As text, or as
    JSON, the value as DuckDB casts it."""
    if target in ("VARCHAR", "JSON"):
        return f"CAST({q(name)} AS {target})"
    return cast_sql(f"to_json({q(name)})", "JSON", target, name=name, digits=False)


def _max_object_arg(cx: JobContext) -> str:
    return f", maximum_object_size = {cx.plan.max_object}" if cx.plan.max_object else ""
