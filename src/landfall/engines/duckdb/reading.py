"""Reading landed files: encodings, compression, the choice of reader per format (CSV in `read_csv.py`, JSON in
`read_json.py`, Parquet here), counting records, the line a record came from, and rows that cannot be parsed
(`bad_rows: quarantine`)."""

from __future__ import annotations

import os
import re
import shutil
from typing import Any, NamedTuple

import duckdb

from landfall import compression
from landfall import encoding as enc
from landfall.config import ReadOptions, Workflow
from landfall.engines.base import Replan, Source, names_its_table
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.casts import cast_sql, shown
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.datewords import may_hold_date_words, watch_doubles
from landfall.engines.duckdb.diagnose import explain, records_among_values
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS, case_renamed, is_date, is_word, pin_dates
from landfall.engines.duckdb.jsonkeys import refusing_read
from landfall.engines.duckdb.jsonkinds import converted_back, kind_checked
from landfall.engines.duckdb.jsonnumbers import digits_as_text, document_loses_digits, fitting_64_bits, whole_numbers
from landfall.engines.duckdb.read_csv import (
    WHOLE_TYPES,
    WHOLES_AT_MOST,
    Dates,
    _consistent_delimiter,
    _csv_sql,
    _forced,
    _header_as_one_column,
    _one_line_is_header,
    _records_start,
    _sniff,
    converted_types,
    dates_in,
    lost_in,
    mixed_types,
    sample_buffer,
    wholes_back,
)
from landfall.engines.duckdb.read_json import (
    _check_json_document,
    _good_lines,
    _json_lines_of,
    _json_sql,
    fieldless_records,
    record_counts,
)
from landfall.engines.duckdb.read_parquet import _parquet_sql, exact_copy, nanoseconds
from landfall.engines.duckdb.records import with_lines
from landfall.engines.duckdb.repeated_header import header_note, repeats_header, without_repeated_header
from landfall.engines.duckdb.sql import (
    MATERIALIZE_BYTES,
    PATH,
    REJECTS,
    ROW,
    NeedLines,
    _paths,
    every_row_kept,
    lit,
    q,
    source_format,
)
from landfall.engines.duckdb.stamps import converted
from landfall.engines.duckdb.types import exact_kind, sql_type
from landfall.errors import InvalidInput
from landfall.pools import pool
from landfall.storage.local import fitted


def _blank_lines(path: str) -> list[int]:
    """Numbers of the lines of a file that hold only white space."""
    with enc._open(path) as fh:
        return [n for n, line in enumerate(fh, start=1) if not line.strip()]


def _losing_digits(cx: JobContext, paths: dict[str, Source]) -> bool:
    """Whether the JSON document of a job holds a number of more digits than a double holds
    (`jsonnumbers.document_loses_digits`), which DuckDB's reader would load as the nearest double, even into a
    text column: it is then read through Python's parser (`cx.plan.json_via_python`). A batch holding one fails,
    for the runner to read each file alone (as when they land one by one)."""
    if not any(document_loses_digits(p) for p in paths):
        return False
    if len(paths) > 1:
        raise InvalidInput("a JSON document of the batch holds numbers of more digits than a double holds")
    ((path, src),) = paths.items()
    _check_json_document(cx, path, src)
    cx.plan = cx.plan.but(json_via_python=True)
    return True


def read(cx: JobContext) -> str:
    """The view of the job's rows as read (also `cx.raw`), filling in what reading finds in `cx`."""
    job = cx.job
    fmt = source_format(job.workflow, job.sources[0])
    for src in job.sources[1:]:
        if source_format(job.workflow, src) != fmt:
            raise InvalidInput("files of different formats in one batch")  # the runner splits batches
    opts = job.workflow.read
    paths: dict[str, Source] = {}
    heads: dict[str, bytes] = {}
    for src in job.sources:
        path, head, decoded, note = _readable_path(
            src, fmt, opts, job.scratch_dir, cx.plan.newlines, cx.plan.header_lines
        )
        if decoded is not None:
            cx.encodings[src.key] = decoded.to_json()
        if note:
            cx.notes[src.key] = note
        if fmt == "jsonl":  # numbers of more digits than a double holds: text (DuckDB's text of one is its double's)
            path = digits_as_text(path, os.path.join(job.scratch_dir, "_digits"), f"{src.file_id}.jsonl")
        if fmt == "jsonl" and cx.plan.split_lines:  # (after the copy above, which keeps every line where it is: the
            path = _good_lines(cx, path, src)  # lines set aside are named by the path read)
        paths[path] = src
        heads[path] = head
    cx.with_path = len(paths) > 1
    for table in (REJECTS, REJECTS + "_scan"):  # DuckDB appends to them on every scan
        cx.con.execute(f"DROP TABLE IF EXISTS {table}")
    cx.con.execute(f"CREATE OR REPLACE TEMP TABLE __lf_sources ({q(PATH)} VARCHAR, key VARCHAR, run_id VARCHAR)")
    cx.con.executemany(
        "INSERT INTO __lf_sources VALUES (?, ?, ?)", [(p, src.key, src.run_id) for p, src in paths.items()]
    )
    cx.paths, cx.fmt = paths, fmt
    digits = False  # a JSON document holding numbers of more digits than a double holds (`_losing_digits`)
    json_paths, json_fmt = paths, fmt  # what a JSON read is pinned over
    if fmt == "jsonl" and not every_row_kept(job.workflow):
        # records are the non-blank lines: Python counts them while DuckDB detects the schema (single-threaded)
        cx.line_counts = pool("lines").submit(_line_counts, dict(paths))
    if fmt == "csv":
        # Files whose header lines are the same bytes share one sniff and bind by position; groups with
        # different headers are combined by column name. (DuckDB's union_by_name sniffs every file.) When a file
        # broke the types sniffed on its group's first file, each file is its own group.
        groups: dict[bytes | str, list[str]] = {}
        for path in paths:
            groups.setdefault(path if cx.plan.per_file_types else heads[path].split(b"\n", 1)[0], []).append(path)
        if opts.delimiter is None:  # the delimiter that splits every line alike, when DuckDB might not see it
            for g in groups.values():
                delim = _consistent_delimiter(heads[g[0]], opts.skip_rows)
                cx.dialects.update({p: delim for p in g if delim})

        def group_selects(extra: str = "") -> list[str]:
            return [
                _csv_sql(
                    cx,
                    _paths(g),
                    opts,
                    union=False,
                    extra=extra,
                    # every group sniffed once, and read with what was detected: the dialect, the formats (DuckDB's
                    # own detection reads dates loosely past its sample: `2024-01-02 10:30` as 2024-01-02), and a
                    # single file's columns and types
                    sniffed=_sniff(cx, g[0], opts, pin=len(g) == 1),
                    forced=_forced(cx, g[0]),
                )
                for g in groups.values()
            ]

        def as_read(extra: str = "") -> str:
            selects = group_selects(extra)
            return selects[0] if len(selects) == 1 else " UNION ALL BY NAME ".join(f"({s})" for s in selects)

        def csv_select(extra: str = "") -> str:
            return converted(wholes_back(as_read(extra), cx.wholes), cx.stamp_forms)

        select = csv_select()
    elif fmt == "parquet":
        select = _parquet_sql(cx, _paths(paths))
    elif fmt == "json" and (cx.plan.json_via_python or (digits := _losing_digits(cx, paths))):
        select, records = _json_lines_of(cx, paths, opts, digits=True if digits else None)  # (looked at once)
        if records:  # its records, read as those of a JSON Lines file are
            json_paths, json_fmt = {cx.as_lines: next(iter(paths.values()))}, "jsonl"
    else:
        if fmt == "json":
            for path, src in paths.items():
                _check_json_document(cx, path, src)
        select = _json_sql(cx, _paths(paths), opts, fmt)
    numbered = cx.plan.number_rows and len(paths) == 1
    if numbered:  # rules report a record's line: its position in the file, plus what comes before records
        cx.line_offset = (1 if opts.header is not False else 0) + opts.skip_rows if fmt == "csv" else 0
        if fmt == "jsonl" and not cx.plan.split_lines:  # blank lines hold no record
            cx.gone_lines = _blank_lines(next(iter(paths)))

    def view(select: str) -> str:
        return cx.view(f"SELECT *, row_number() OVER () AS {ROW} FROM ({select})" if numbered else select)

    try:
        try:
            raw = view(select)
            detected = cx.describe(raw)  # binding runs the sniffer: dialect and schema errors surface here
            if fmt == "csv" and opts.delimiter is None and len(paths) == 1 and not cx.dialects:
                delim = _header_as_one_column([n for n, _ in detected if n not in (PATH, ROW)])
                if delim:  # never a header with delimiters read as one column: read it with that delimiter
                    ((path, head),) = ((p, heads[p]) for p in paths)
                    cx.dialects = {path: (delim, _records_start(head, opts.skip_rows)[1])}
                    raw = view(_csv_sql(cx, _paths(paths), opts, union=False, forced=_forced(cx, path)))
                    detected = cx.describe(raw)
            if fmt == "csv" and len(groups) > 1 and not opts.all_strings:
                described = [
                    [(n, t) for n, t, *_ in cx.con.execute(f"DESCRIBE {s}").fetchall()] for s in group_selects()
                ]
                mixed = mixed_types(described) - set(opts.types) - cx.plan.as_text
                if mixed:
                    cx.plan = cx.plan.but(as_text=cx.plan.as_text | mixed)
                    raw = view(csv_select())
                    detected = cx.describe(raw)
            if fmt == "csv" and not opts.all_strings:
                # whole numbers read as text and converted strictly: past its sample DuckDB's reader takes `2.5` for
                # 3 and `007` for 7 (`read_csv.wholes_back`)
                whole = {n for n, t in detected if t in WHOLE_TYPES and n not in [*opts.types, PATH, ROW]}
                if 0 < len(whole) <= WHOLES_AT_MOST:
                    cx.wholes = {n: t if n in whole else "" for n, t in detected if n != ROW}
                    raw = view(csv_select())
                    detected = cx.describe(raw)
                elif whole:  # too many to convert one by one: looked through after the load (`late_wholes`)
                    cx.wholes = {n: t if n in whole else "" for n, t in detected if n != ROW}
                    cx.wholes_as_text = as_read()
                    cx.wholes, cx.late_wholes = {}, {n: t for n, t in detected if n in whole}
                # a date column holding a word a date cast takes: text
                dated = {n for n, t in detected if n not in opts.types and n not in (PATH, ROW) and is_date(t)}
                # a number beyond a double's range, read as infinity: its column is text too (`datewords`)
                doubles = {n for n, t in detected if n not in opts.types and t in ("DOUBLE", "FLOAT")}
                if dated or doubles:
                    plan = cx.plan
                    cx.plan = plan.but(as_text=plan.as_text | dated | doubles)
                    # in the rows type detection sampled (DuckDB's 20,480 per file); a later word shows in the
                    # written files' stats, and is looked for then (`late_date_words`): scanning whole files
                    # here would cost a third more CPU
                    rows = DETECTION_SAMPLE_ROWS * len(paths)
                    sample = f"SELECT * FROM ({csv_select(', ' + sample_buffer(opts))}) LIMIT {rows}"
                    cx.dates_as_text = csv_select()
                    # timestamps are read strictly too, in the format the sample's are in (unless one is declared)
                    stamps = {n for n, t in detected if n in dated and t == "TIMESTAMP" and not opts.timestamp_format}
                    times = {n for n, t in detected if n in dated and t == "TIME"}  # no format: converted
                    # files whose first lines hold no word a date cast takes need not be scanned for one (twice
                    # the sample's lines: the sniffer may skip lines before the records, or comments among them)
                    lines = 2 * DETECTION_SAMPLE_ROWS + opts.skip_rows + 1
                    if dated and (stamps or times or any(may_hold_date_words(p, lines) for p in paths)):
                        found = dates_in(cx.con, sample, dated, stamps, plan.mixed_stamps, times)
                    else:
                        found = Dates(set(), None, {})
                    lost = lost_in(cx.con, sample, doubles, list(paths), lines)  # more digits than a double holds
                    cx.timestamp_format, cx.stamp_forms = found.stamp_format, found.forms
                    cx.read_dates = {n: f"coalesce(bool_or({is_word(q(n))}), false)" for n in dated - found.text}
                    watch_doubles(cx, doubles - lost)
                    cx.plan = plan.but(as_text=plan.as_text | found.text | set(found.forms) | lost)
                    if found.text or found.stamp_format or found.forms or lost:
                        raw = view(csv_select())
                        detected = cx.describe(raw)
            renamed = fmt in ("json", "jsonl") and case_renamed([n for n, _ in detected])
            if renamed and not (opts.all_strings or cx.plan.sample_all):
                # keys that differ only in case (`name` beside `Name`, read as `Name_1`): such a read is not pinned
                # (below), and unpinned, the reader casts a later value of another kind into the type its sample
                # detected (`2.5` into a column of whole numbers as 2): the types are detected on the whole files
                raise Replan(cx.plan.but(sample_all=True), "keys that differ only in case: detect types on whole files")
            pinnable = json_fmt == "jsonl" or not cx.plan.json_via_python  # not a document's `value` rows
            if fmt in ("json", "jsonl") and pinnable and not opts.all_strings and not renamed:
                # pin what was detected, so binding the later steps does not sample the files again (not when
                # DuckDB renamed a key that differs from another only in case, `name` beside `Name`, to `name_1`:
                # the reader finds no key by that name, and the values would be lost)
                # a declared column is read as text, or as JSON converted by each value's kind (`read_json._declared`):
                # the reader's own date detection would take `epoch` for 1970-01-01 before the conversion looked
                declared = {n: "VARCHAR" if sql_type(t) == "VARCHAR" else "JSON" for n, t in opts.types.items()}
                pinned = {n: declared.get(n, t) for n, t in detected if n not in (PATH, ROW)}
                if cx.plan.sample_all:  # a later value broke a type: values of mixed forms are read as text
                    pinned = {n: "VARCHAR" if t == "JSON" else t for n, t in pinned.items()}
                pinned = {n: "VARCHAR" if n in cx.plan.as_text else t for n, t in pinned.items()}
                # in the sample (whole files once a later value broke a type): dates and timestamps read strictly,
                # and strings that are all timestamps converted
                limit = None if cx.plan.sample_all else DETECTION_SAMPLE_ROWS * len(paths)

                def sample(c: dict[str, str]) -> str:
                    return _json_sql(cx, _paths(json_paths), opts, json_fmt, columns=c)

                pinned = whole_numbers(cx.con, pinned, sample, limit)  # beyond 64 bits: DECIMAL(38,0), not DOUBLE
                # a number beyond a double's range, read as infinity: its column is text (`datewords`)
                doubles = {n for n, t in pinned.items() if t in ("DOUBLE", "FLOAT") and n not in opts.types}
                declared_formats = (opts.date_format, opts.timestamp_format)
                found = pin_dates(cx.con, pinned, sample, limit, declared_formats, text=doubles)
                formats = (found.date_format, found.timestamp_format)
                if not cx.plan.sample_all:  # past the sample, a word may hide in them (`late_date_words`)
                    cx.read_dates = dict(found.words)
                watch_doubles(cx, doubles)
                cx.dates_as_text, cx.nested_doubles = found.text_read, found.doubles
                # numbers and booleans read as JSON, converted back from their own kind only (`jsonkinds`); types
                # detected on whole files hold every value
                as_read, back = (found.columns, {}) if cx.plan.sample_all else kind_checked(cx.con, found.columns)
                select = _json_sql(cx, _paths(json_paths), opts, json_fmt, columns=as_read, formats=formats)
                own = None  # a key past the sample refused as the file is read
                if not found.stamps and not cx.with_path and not numbered:
                    own = refusing_read(cx, fmt, found.columns, formats, dict(detected))
                # which casts a value of another kind into its types: their kinds are looked at after the load
                cx.kinds_unchecked = {n: found.columns[n] for n in back} if own else {}
                raw = own or view(converted(converted_back(select, back), found.stamps))
                cx.describe(raw)
            elif fmt in ("json", "jsonl") and not opts.all_strings:  # read as detected, on whole files
                raw = view(fitting_64_bits(cx.con, f"SELECT * FROM {raw}", detected))
        except duckdb.BinderException as exc:
            if not errors.not_records(str(exc)) or len(paths) > 1:
                raise  # a batch is split by the runner
            objects, others = record_counts(cx.con, next(iter(paths)), fmt)
            if objects and not others:  # objects only, which the reader took for no records: one holds the empty
                # key (a MAP to it), read from a copy that names it (a document's, through Python's parser)
                if fmt == "jsonl" and not cx.plan.empty_keys:
                    raise Replan(cx.plan.but(split_lines=True, empty_keys=True), "the empty key: read a copy naming it")
                if fmt == "json" and not cx.plan.json_via_python:
                    raise Replan(cx.plan.but(json_via_python=True), "the empty key: read a copy naming it")
                raw = view(fieldless_records(cx, _paths(paths), opts, fmt, next(iter(paths.values())).key))
            elif opts.records == "true" or records_among_values(objects, others, job.table_schema):
                raise  # records beside other values: those are bad records (named, or set aside), not all values;
                # and `records: true` makes every value that is no record one
            else:
                raw = view(_json_sql(cx, _paths(paths), opts, fmt, records=False))
                cx.records = False
            cx.describe(raw)
        if fmt == "csv" or opts.bad_rows == "quarantine":  # JSON's declared types are converted as read, but
            raw = exactly(cx, raw, opts)  # for the rows set aside in quarantine mode (`read_json._json_sql`)
        raw = _exact_kinds(cx, raw)
        if sum(s.size for s in job.sources) <= MATERIALIZE_BYTES and not read_once(job.workflow):
            # small input read more than once: parse it once into memory, so the steps' binding never sniffs
            # the files again and each pass of the steps and rules reads memory, not the files
            raw = cx.table(f"SELECT * FROM {raw}")
    except duckdb.Error as exc:
        raise explain(cx, exc) from None
    cx.raw = raw
    return raw


def read_once(wf: Workflow) -> bool:
    """Whether a job of `wf` reads its rows once: no steps, no rules, not a merge. The COPY that writes the table
    is then the only pass, and parsing the rows into memory first would only copy them (7% of the instructions
    of a 37 MB, 1M-row CSV's load)."""
    return not wf.transform and not wf.judges_rows and wf.write.mode != "merge"


def _exact_kinds(cx: JobContext, raw: str) -> str:
    """Whole numbers beyond 64 bits, which DuckDB's readers detect as HUGEINT and its Parquet writer stores as
    doubles (12345678901234567890 as 12345678901234567168), as `decimal(38,0)`: exact, at any depth; beyond 38
    digits (BIGNUM, stored as binary), as text (`types.exact_kind`). A Parquet file's nanosecond timestamps as
    microseconds, or as text when a value has digits below them (`read_parquet.nanoseconds`)."""
    described = [(n, k) for n, k in cx.describe(raw) if n not in (PATH, ROW)]
    nanos = nanoseconds(cx.con, raw, described)
    repl = [f"CAST({q(n)} AS {new}) AS {q(n)}" for n, k in described if (new := exact_kind(nanos.get(n, k))) != k]
    return cx.view(f"SELECT * REPLACE ({', '.join(repl)}) FROM {raw}") if repl else raw


class Readable(NamedTuple):
    """A landed file as an engine reads it (`_readable_path`)."""

    path: str
    head: bytes  # its first bytes
    decoded: enc.Detected | None  # the encoding it was read in (declared or detected; None for Parquet)
    note: str | None = None  # for its run: the lines repeating its header line that were passed over


def _readable_path(
    src: Source, fmt: str, opts: ReadOptions, scratch: str, newlines: bool = False, header_lines: bool = False
) -> Readable:
    """A path the engine can read (`_utf8_path`); of a CSV, without the lines that repeat its header line (files put
    together: `repeated_header`), looked for in its first 8 MB, or in all of it with `header_lines`. Both engines
    read landed files through it."""
    path, head, decoded = _utf8_path(src, fmt, opts, scratch, newlines)
    if fmt != "csv" or not (header_lines or repeats_header(path, opts.skip_rows)):
        return Readable(path, head, decoded)
    path, blanked = without_repeated_header(path, opts.skip_rows, os.path.join(scratch, "_header"))
    if not blanked:
        return Readable(path, head, decoded)
    return Readable(path, enc.sample(path).removeprefix(b"\xef\xbb\xbf"), decoded, header_note(blanked))


def _utf8_path(
    src: Source, fmt: str, opts: ReadOptions, scratch: str, newlines: bool = False
) -> tuple[str, bytes, enc.Detected | None]:
    """A path the engine can read as UTF-8 with consistent line endings (decompressed unless the engine
    decompresses it itself), its first bytes, and the encoding it was read in (declared or detected; None for
    Parquet)."""
    kind = compression.detect(src.path, opts.compression, src.key)
    as_is = compression.native(src.path, kind)
    decoded = None
    try:
        if fmt == "parquet":
            return exact_copy(src.path if as_is else _decompressed(src, kind, scratch), scratch), b"", None
        head = enc.sample(src.path, kind, src.key)
        decoded = enc.Detected(opts.encoding, 1.0, "declared") if opts.encoding else enc.detect_encoding(head)
        name = decoded.encoding
        quote = '"' if opts.quote is None else opts.quote or None  # (the sniffer has not run yet)
        newlines = fmt == "csv" and (newlines or enc.mixed_newlines(head, quote))
        if enc.is_utf8(name) and not newlines and as_is:
            return src.path, head.removeprefix(b"\xef\xbb\xbf"), decoded
        path = enc.transcode(
            src.path, name, os.path.join(scratch, "_utf8"), newlines=newlines, quote=quote, compressed=kind
        )
        return path, enc.sample(path), decoded
    except UnicodeDecodeError as exc:
        how = (
            ""
            if decoded is None or decoded.how == "declared"
            else f", {decoded.how} at confidence {decoded.confidence}"
        )
        raise enc.undecodable(src.key, src.path, exc, kind, how) from None
    except Exception as exc:
        if compression.is_corrupt(exc, kind):
            raise compression.corrupt(src.key, kind, exc) from None
        raise


def _decompressed(src: Source, kind: str, scratch: str) -> str:
    """A decompressed copy of a landed file, for formats read only from plain files (Parquet)."""
    out_dir = os.path.join(scratch, "_plain")
    os.makedirs(out_dir, exist_ok=True)
    out = os.path.join(out_dir, f"{src.file_id}-{fitted(compression.strip_suffix(os.path.basename(src.path)), 21)}")
    with compression.open_bytes(src.path, kind, src.key) as fh, open(out, "wb") as dst:
        shutil.copyfileobj(fh, dst, 1 << 20)
    return out


def empty_note(
    con: duckdb.DuckDBPyConnection,
    src: Source,
    workflow: Any,
    scratch: str,
    table_schema: list[tuple[str, str]] | None = None,
) -> str | None:
    """Why a landed file holds no records (then it loads nothing and changes no schema), or None: a CSV
    that is empty, blank or only a header (a line of its table's columns is one, `table_schema`); JSON Lines with
    no lines; a JSON document `[]`; a Parquet file of no rows. Only small files (after decompression) are looked
    at whole; of a larger one, the first 64 KB, for a text format's file that is not text (`_refuse_binary`).
    Both engines call it."""
    fmt = source_format(workflow, src)
    opts = workflow.read
    kind = compression.detect(src.path, opts.compression, src.key)
    try:
        if fmt == "parquet":
            if not compression.native(src.path, kind):
                return None
            import pyarrow.parquet as pq

            try:
                rows = pq.ParquetFile(src.path).metadata.num_rows
            except FileNotFoundError:  # gone meanwhile: the runner's business
                return None
            except Exception as exc:  # said here, for both engines (theirs name a local path, or a Java trace)
                raise InvalidInput(f"`{src.key}`: {_not_parquet(exc)}", file=src.key) from None
            return "a Parquet file with no rows" if rows == 0 else None
        head = enc.sample(src.path, kind, src.key)
    except Exception as exc:
        if compression.is_corrupt(exc, kind):
            raise compression.corrupt(src.key, kind, exc) from None
        raise
    _refuse_binary(src, fmt, head, opts.encoding)
    if len(head) >= enc.SAMPLE:
        return None
    try:
        text = head.decode(opts.encoding or enc.detect(src.path, head), errors="replace").lstrip("\ufeff")
    except LookupError:
        return None
    lines = text.splitlines()[opts.skip_rows :] if fmt == "csv" else text.splitlines()
    filled = [ln for ln in lines if ln.strip()]
    if fmt == "json":  # an empty document is not valid JSON: it fails, naming the file
        return "an empty JSON array" if re.fullmatch(r"[ \t\r\n]*\[[ \t\r\n]*\][ \t\r\n]*", text) else None
    if not text.strip():
        return "an empty file" if not head else "a file of blank lines"
    declared = workflow.declared()

    def names(fields: list[str]) -> bool:  # of the table's columns, or naming a column given a type
        return bool(declared & {f.lower() for f in fields}) or names_its_table(workflow, table_schema, fields)

    if fmt == "csv" and len(filled) == 1 and _one_line_is_header(con, filled[0], opts, scratch, names):
        return "a header and no rows"
    return None


_FORMAT_NAMES = {"csv": "CSV", "json": "JSON", "jsonl": "JSON Lines"}


def _refuse_binary(src: Source, fmt: str, head: bytes, declared: str | None) -> None:
    """A text format's file that is not text fails saying what it is (`encoding.not_text`), where its parse
    would report a ragged line somewhere in it."""
    found = enc.not_text(head, declared)
    if found is None:
        return
    what, offset, controls = found
    text = _FORMAT_NAMES.get(fmt, fmt)
    if what is None:
        line = head[:offset].count(b"\n") + 1
        raise InvalidInput(
            f"`{src.key}` line {line}: binary data, not {text} text: byte {offset:,} is 0x{head[offset]:02x}, and "
            f"{controls:,} of the first {len(head):,} bytes are control characters; landfall reads CSV, JSON, "
            "JSON Lines and Parquet files, plain or compressed",
            file=src.key,
            line=line,
        )
    hint = (
        "name it `.parquet` or set `read: {format: parquet}`"
        if what == "a Parquet file"
        else "landfall reads CSV, JSON, JSON Lines and Parquet files"
    )
    raise InvalidInput(f"`{src.key}`: {what}, not {text} text; {hint}", file=src.key)


def _declared_format(o: ReadOptions, t: str) -> str | None:
    """The declared format a column of DuckDB type `t` is written in, if any."""
    return o.date_format if t == "DATE" else o.timestamp_format if t == "TIMESTAMP" else None


def exactly(cx: JobContext, view: str, o: ReadOptions) -> str:
    """`view` with the columns of `converted_types` it has (read as text; JSON Lines in quarantine mode: as JSON)
    converted, losing nothing (`casts.cast_sql`: a value that does not fit fails the file, naming it; with
    `bad_rows: quarantine` its row is set aside, `set_aside`); a declared column the file does not have is passed
    over, as the reader does. Numbers written `2,5` read with `decimal_separator`."""
    have = dict(cx.describe(view))
    types = {n: t for n, t in converted_types(o).items() if have.get(n) in ("VARCHAR", "JSON")}
    if not types:
        return view

    def read(n: str, t: str) -> str | None:  # a number written with the separator; one written with `.` is none
        if o.decimal_separator != "." and t.split("(")[0] in ("DOUBLE", "FLOAT", "DECIMAL"):
            return f"CASE WHEN NOT contains({q(n)}, '.') THEN replace({q(n)}, {lit(o.decimal_separator)}, '.') END"
        return None

    aside = o.bad_rows == "quarantine"
    cast = {
        n: cast_sql(q(n), have[n], t, try_=aside, name=n, read=read(n, t), fmt=_declared_format(o, t), digits=False)
        for n, t in types.items()
    }
    repl = ", ".join(f"{c} AS {q(n)}" for n, c in cast.items())
    if not aside:
        return cx.view(f"SELECT * REPLACE ({repl}) FROM {view}")
    misfit = {n: f"({q(n)} IS NOT NULL AND {c} IS NULL)" for n, c in cast.items()}
    any_misfit = " OR ".join(misfit.values())
    set_aside(cx, view, {n: (m, shown(q(n), have[n]), types[n]) for n, m in misfit.items()}, any_misfit)
    return cx.view(f"SELECT * REPLACE ({repl}) FROM {view} WHERE NOT ({any_misfit})")


def set_aside(cx: JobContext, view: str, misfits: dict[str, tuple[str, str, str]], any_misfit: str) -> None:
    """The rows of `view` with a value its declared type cannot hold whole (`misfits`: column -> (SQL true for
    such a value, SQL of the value as a message names it, the type); `any_misfit`: SQL true for such a row), in
    the quarantine (`bad_rows: quarantine`), as rows the reader cannot parse are: the line, the
    line's text, the column and the reason (`cx.aside`, a table: there may be millions). Records are numbered to
    name their lines."""
    described = dict(cx.describe(view))
    numbered = ROW in described
    path = q(PATH) if PATH in described else lit(next(iter(cx.paths)))
    which = " ".join(f"WHEN {m} THEN {lit(n)}" for n, (m, _, _) in misfits.items())
    why = " ".join(
        f"WHEN {m} THEN 'value `' || {v} || '` of column `{n}` is not a valid {t}'" for n, (m, v, t) in misfits.items()
    )
    # one more scan of the file, of the declared columns (a third to a quarter of the load's CPU on a 4-column CSV)
    found = cx.table(
        f"SELECT {path} AS {q(PATH)}, {ROW if numbered else 'NULL'} AS p, CASE {which} END AS _column, "
        f"CASE {why} END AS _reason FROM {view} WHERE {any_misfit}"
    )
    if not cx.con.execute(f"SELECT count(*) FROM {found}").fetchone()[0]:
        return
    if not numbered:  # a batch is run file by file (each then numbered): lines are counted within a file
        raise NeedLines() if len(cx.paths) == 1 else InvalidInput("a value does not fit its declared type")
    cx.raw = cx.raw or view  # the records as read, numbered: what `with_lines` counts lines by
    placed = cx.table(f"SELECT * FROM {with_lines(cx, found, 'p')}")
    wanted = cx.con.execute(f"SELECT DISTINCT _line FROM {placed}").fetchnumpy()["_line"]
    texts = enc.line_texts(next(iter(cx.paths)), {int(n) for n in wanted})
    text = cx.table_of({"line": ("int64", list(texts)), "text": ("string", list(texts.values()))})
    cx.aside.append(
        cx.table(
            f"SELECT f.{q(PATH)}, f._line, coalesce(t.text, '') AS _raw, f._reason, f._column FROM {placed} f "
            f"LEFT JOIN {text} t ON t.line = f._line"
        )
    )


def _not_parquet(exc: Exception) -> str:
    """Why pyarrow could not open a file as Parquet, for people."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "size is 0 bytes" in text:
        return "not a readable Parquet file: it is empty (0 bytes)"
    if "magic bytes" in text.lower():
        return "not a readable Parquet file: cut short, or not Parquet (it does not end with a Parquet footer)"
    return f"not a readable Parquet file: {text}"


def _line_counts(paths: dict[str, Source]) -> dict[str, int]:
    out = {}
    for path, src in paths.items():
        with enc._open(path) as fh:
            out[src.key] = sum(1 for line in fh if line.strip())
    return out
