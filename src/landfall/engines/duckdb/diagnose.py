"""Finding the line and the reason when DuckDB's error does not give them, and strict JSON checks."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import duckdb

from landfall import compression
from landfall import encoding as enc
from landfall.engines.base import csv_quoting, where_in
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.casts import loses_digits
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS
from landfall.engines.duckdb.jsonnumbers import document_loses_digits, losing_fields
from landfall.engines.duckdb.replanning import replan
from landfall.engines.duckdb.sql import source_format
from landfall.engines.duckdb.stamps import DAY_MONTH
from landfall.errors import EngineFault, InvalidInput, SchemaConflict
from landfall.jsontext import (
    Number,
    as_written,
    json_reason,
    kind,
    loadable,
    lone_surrogate,
    named_empty_key,
    too_deep,
    too_deep_record,
    written,
)
from landfall.storage.local import fitted

if TYPE_CHECKING:
    from landfall.engines.duckdb.context import JobContext

STRICT_JSON_BYTES = 512 << 20  # JSON documents up to this size are validated strictly before reading
_LENIENT_JSON = re.compile(r",\s*[\]}]|NaN|Infinity")  # what DuckDB's json_valid lets through


def records_among_values(objects: int, others: int, table_schema: list[tuple[str, str]] | None) -> bool:
    """Whether a JSON file whose top-level values are `objects` objects and `others` values of other kinds (in
    its detection sample) is a file of records with bad records among them (named, or set aside in quarantine
    mode), rather than a file of values (one `value` column of JSON text): when most of them are objects, or when
    its table holds records (columns, no `value` column). Read as values, its records would load as JSON text
    beside the table's columns, NULL in every one of them."""
    records_table = bool(table_schema) and "value" not in {n for n, _ in table_schema or []}
    return objects > 0 and others > 0 and (objects > others or records_table)


def _named_empty_keys(records: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """A document's records, the empty key of each named `jsontext.EMPTY_KEY` (DuckDB's reader takes an object
    holding it for no record, Spark's drops it)."""
    out = []
    for i, record in enumerate(records, start=1):
        try:
            out.append(named_empty_key(record))
        except ValueError as exc:
            raise InvalidInput(f"`{key}` record {i}: {exc}", file=key) from None
    return out


def _json_document_as_lines(
    path: str,
    scratch: str,
    key: str,
    *,
    records_required: bool,
    table_schema: list[tuple[str, str]] | None = None,
    digits: bool | None = None,
) -> tuple[str, bool, int]:
    """Rewrite a JSON document as JSON Lines: its records, or `{"value": <JSON text>}` per element when it is
    not made of objects (unless it is records among values: `records_among_values`). Returns the new
    path and whether it holds values. A document holding a number of more digits than a double holds
    (`jsonnumbers.document_loses_digits`) is written with every number as written, and each field holding one
    in the type sample a string (its column text, as in JSON Lines); `digits`: whether it does, when the caller
    looked already."""
    text = enc.read_text(path)
    digits = document_loses_digits(path) if digits is None else digits
    try:
        doc = as_written(text, _no_constants) if digits else json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise InvalidInput(f"`{key}` line 1: {too_deep()}", file=key, line=1) from None
    _refuse_lone_surrogate(key, text)
    items = doc if isinstance(doc, list) else [doc]
    as_values = not all(isinstance(i, dict) for i in items)
    if not as_values:
        items = _named_empty_keys(items, key)
    objects = sum(isinstance(i, dict) for i in items)
    if as_values and (records_required or records_among_values(objects, len(items) - objects, table_schema)):
        line, reason = _diagnose_json(path, "json") or (1, "expected records (JSON objects)")
        raise InvalidInput(f"`{key}` line {line}: {reason}", file=key, line=line)
    os.makedirs(scratch, exist_ok=True)
    out = os.path.join(scratch, fitted(os.path.basename(path), 6) + ".jsonl")
    if (deep := too_deep_record(text, doc)) is not None:
        line = _element_line(text, deep) if isinstance(doc, list) else 1
        raise InvalidInput(f"`{key}` line {line}: {too_deep()}", file=key, line=line)
    if not digits:
        with open(out, "w", encoding="utf-8") as fh:
            for item in items:
                # values as DuckDB's `to_json` writes them (no spaces), whichever path read the document
                value = {"value": _as_json(item)} if as_values else item
                line = json.dumps(value, ensure_ascii=False)
                if "Infinity" in line:  # a number beyond a double's range (or the word in a string)
                    break
                fh.write(line + "\n")
            else:
                return out, as_values, len(items)
        # Python's parser made that number an infinity: every record again with its numbers as written, so
        # that `1e400` stays `1e400` (its column text) as in a document DuckDB reads itself (2.8 times the
        # time: only here)
        again = as_written(text, _no_constants)
        items = again if isinstance(again, list) else [again]
        if not as_values:
            items = _named_empty_keys(items, key)
    fields = frozenset() if as_values else losing_fields(items, DETECTION_SAMPLE_ROWS + 1)
    with open(out, "w", encoding="utf-8") as fh:
        for item in items:
            # a value row holds the value's JSON text (a number's, as written: `str` of a `Number`)
            fh.write(written({"value": str(written(item))} if as_values else item, fields) + "\n")
    return out, as_values, len(items)


def _refuse_lone_surrogate(key: str, text: str) -> None:
    """`InvalidInput` naming the line where a string of the JSON document `text` holds half a surrogate pair."""
    if (half := lone_surrogate(text)) is not None:
        line = text.count("\n", 0, half[0]) + 1
        raise InvalidInput(f"`{key}` line {line}: {half[1]}", file=key, line=line)


def _no_constants(name: str) -> float:
    raise ValueError(f"`{name}` is not a JSON value (JSON has no NaN or Infinity)")


def explain(cx: JobContext, exc: Exception, child: tuple[str, str] | None = None) -> InvalidInput | EngineFault:
    """Turn an engine error into one that names the file, the line and the reason (`SchemaConflict` for a value
    that does not fit a column's type); or, when it is not the input's fault (out of memory, a file the engine
    could not open), an `EngineFault`, which the runner retries. DuckDB's own text is kept as `engine_error` for
    `replan` (an error `replan` reads again past is not scanned for its line). `child`: the error is a child
    table's, `(its table, the file's list column its rows come from)`, in which the value's line is looked for."""
    text = str(exc)
    sources = cx.job.sources
    fmt = cx.fmt or source_format(cx.job.workflow, sources[0])
    read = {path: src for path, src in cx.paths.items() if path in text}
    src = next(iter(read.values()), None) or next((s for s in sources if s.path in text), None)
    if src is None and len(sources) == 1:
        src = sources[0]
    key = src.key if src else ", ".join(s.key for s in sources[:3]) + (" ..." if len(sources) > 3 else "")
    line: int | None = None
    why = errors.reason(text)
    if isinstance(exc, (duckdb.OutOfMemoryException, duckdb.IOException)) and not errors.gzip_corrupt(text):
        fault = EngineFault(f"`{key}`: {why} (not the file's fault)")  # retried, or dead after its attempts
        fault.engine_error = text  # type: ignore[attr-defined]
        return fault
    if errors.gzip_corrupt(text) and src is not None:  # DuckDB decompresses `.gz` files itself
        err = compression.corrupt(key, "gzip", why.split(": /")[0])
        err.engine_error = text  # type: ignore[attr-defined]
        return err
    # the scan for the line (Python's parsers, up to the bad line) only when the error is final: when the job is
    # read again another way (`replan`: a late value makes its column a wider type), nothing needs the line
    if src is not None and replan(cx.plan, cx.job, text) is None:
        path = src.path if fmt == "parquet" else next((p for p, s in cx.paths.items() if s is src), src.path)
        found = diagnose(path, fmt, text, cx.csv_delimiter(path), cast_types(cx.job.workflow))
        if found:
            line, why = found
    if line is None:
        line = errors.error_line(text)
    if line is None and (bad := errors.not_converted(text)) and (column := errors.cast_column(text)):
        why = not_valid(bad[0], column, bad[1])
        if child and src and (line := line_holding(cx, src.key, child[1], bad[0])):
            why += f" (child table `{child[0]}`, from `{child[1]}`)"
        else:
            why += made_by_steps(cx.job.workflow)
    where = where_in(key, line, fmt)
    cls = SchemaConflict if errors.conversion(text) else InvalidInput
    err = cls(f"{where}: {why}", file=key, line=line)
    err.engine_error = text  # type: ignore[attr-defined]
    return err


def cast_types(workflow: Any) -> dict[str, str]:
    """Column -> the type the workflow's `cast` steps give it (the last), as messages name types (`TIMESTAMPTZ`)."""
    return {c: t.upper() for step in workflow.transform if step.kind == "cast" for c, t in step.cast.items()}


def _cast_value(engine_error: str, column: str | None, types: dict[str, str]) -> tuple[str, str] | None:
    """`(value, type)` of the text a cast could not convert: the type as the cast step names it where DuckDB's
    words do not (`timestamp field value out of range` for a TIMESTAMPTZ too)."""
    if found := errors.not_converted(engine_error):
        return found
    if found := errors.temporal_value(engine_error):
        return found[0], types.get(column or "", found[1])
    return None


def diagnose(
    path: str, fmt: str, engine_error: str, delimiter: str | None = None, types: dict[str, str] | None = None
) -> tuple[int | None, str] | None:
    """Scan a failing file with Python's own parsers to name the first bad line and why (a CSV with
    `delimiter`, when it is known; `types`: the types cast steps give columns, to name them)."""
    types = types or {}
    try:
        if fmt == "csv":
            return _diagnose_csv(path, engine_error, delimiter, types)
        if fmt in ("json", "jsonl"):
            return (
                _diagnose_json(path, fmt)
                or _json_value_line(path, fmt, engine_error, types)
                or _json_key_line(path, fmt, engine_error)
            )
        if fmt == "parquet":
            return _parquet_value_line(path, engine_error)
    except Exception:  # diagnosis is best effort; the engine's own message stays
        return None
    return None


def _text_lines(path: str) -> io.TextIOBase:
    return io.TextIOWrapper(enc._open(path), encoding="utf-8", errors="strict", newline="")


def long_line(path: str, limit: int) -> tuple[int, str] | None:
    """The first line of a CSV longer than `limit` bytes (the reader's `max_line_size`), and the reason. DuckDB
    names the line its sniffer was on, or a line in its buffer."""
    with enc._open(path) as raw:
        for n, line in enumerate(raw, 1):
            size = len(line.rstrip(b"\r\n"))
            if size > limit:
                return n, (
                    f"the line is {size:,} bytes long, longer than the {limit:,} a CSV line may have; "
                    "set `read.max_line_size` (bytes) above it"
                )
    return None


def _diagnose_csv(
    path: str, engine_error: str, delimiter: str | None = None, types: dict[str, str] | None = None
) -> tuple[int | None, str] | None:
    limit = errors.line_too_long(engine_error)
    if limit:
        return long_line(path, limit)
    column = errors.cast_column(engine_error)
    value = _cast_value(engine_error, column, types or {})
    if value and column is not None:  # the first record whose column holds the value (a file's own column)
        n = csv_record_line(path, column, value[0], delimiter or ",")
        if n is not None:
            return n, not_valid(value[0], column, value[1])
    with _text_lines(path) as fh:
        if value:  # a column a step made, or none named: the first line holding the value
            needle, type_name = value
            for n, line in enumerate(fh, 1):
                if needle in line:
                    return n, not_valid(needle, column, type_name)
            return None
        delim = delimiter
        if delim is None:
            sample = fh.read(1 << 16)
            fh.seek(0)
            try:
                delim = csv.Sniffer().sniff(sample.split("\n", 1)[0] or sample, delimiters=",;|\t").delimiter
            except csv.Error:
                delim = ","
        reader = csv.reader(fh, delimiter=delim, strict=True)
        expected = None
        start = 1  # the line the record being read starts on
        try:
            for row in reader:
                if row and expected is None:
                    expected = len(row)
                elif row and len(row) != expected:
                    return start, f"expected {expected} fields (as in the header), found {len(row)}"
                start = reader.line_num + 1
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return start, "a quoted value starts on this line and never ends (unterminated quote)"
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
            return exc.lineno, json_reason(exc)
        except RecursionError:
            return 1, too_deep()
        if (deep := too_deep_record(text, doc)) is not None:
            return _element_line(text, deep) if isinstance(doc, list) else 1, too_deep()
        items = doc if isinstance(doc, list) else [doc]
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                what = "the top level" if not isinstance(doc, list) else f"element {i + 1} of the array"
                return _element_line(text, i) if isinstance(doc, list) else 1, (
                    f"expected records (JSON objects), but {what} is {kind(item)}; "
                    "a table needs an array of objects, one object, or JSON Lines"
                )
        return None
    return _diagnose_json_lines(text)


def _element_line(text: str, index: int) -> int:
    """The line on which element `index` (from 0) of a valid JSON document's top-level array starts."""
    decoder, pos = json.JSONDecoder(), text.index("[") + 1
    for i in range(index + 1):
        while text[pos] in " \t\r\n,":
            pos += 1
        if i < index:
            pos = decoder.raw_decode(text, pos)[1]
    return text.count("\n", 0, pos) + 1


def _json_value_line(path: str, fmt: str, engine_error: str, types: dict[str, str]) -> tuple[int | None, str] | None:
    """The line of the first JSON record whose column holds the value a cast could not convert (a type declared
    in `read.types` is applied after reading, where DuckDB knows no line). DuckDB names the value as text
    (`Could not convert string 'x'`) from a text column, as JSON (`"x"`, `{"a":1}`) from a JSON one."""
    column = errors.cast_column(engine_error)
    as_text, as_json = _cast_value(engine_error, column, types), errors.cast_json_value(engine_error)
    if fmt not in ("json", "jsonl") or column is None or (as_text is None and as_json is None):
        return None

    if as_json is not None:
        n = json_record_line(path, column, lambda value: within(value, lambda v: _as_json(v) == as_json), fmt)
    else:
        n = json_text_line(path, column, as_text[0], fmt)
    if n is None:
        return None
    if as_text is not None:
        return n, not_valid(as_text[0], column, as_text[1])
    if kind := errors.cast_json_type(engine_error):
        return n, not_valid(as_json, column, types.get(column, kind))
    return n, errors.reason(engine_error)


def _json_key_line(path: str, fmt: str, engine_error: str) -> tuple[int | None, str] | None:
    """The line of the first JSON record whose column holds an object with a key the table's struct has no field
    for (`casts.conformed`'s words: `a value of column `c` holds key `z`, ...`), and that reason."""
    found = errors.unknown_struct_key(engine_error)
    if found is None:
        return None
    column, key = found

    n = json_record_line(path, column, lambda value: within(value, lambda v: isinstance(v, dict) and key in v), fmt)
    return None if n is None else (n, errors.reason(engine_error))


def _parquet_value_line(path: str, engine_error: str) -> tuple[int | None, str] | None:
    """The row of the first value of a Parquet file's column that a cast could not convert (the file held to its
    table's types), and why."""
    value, column = errors.not_converted(engine_error), errors.cast_column(engine_error)
    if value is None or column is None:
        return None
    n = parquet_value_row(path, column, value[0])
    return None if n is None else (n, not_valid(value[0], column, value[1]))


def line_holding(cx: JobContext, key: str, column: str, value: str) -> int | None:
    """The line (a Parquet file's row) of the landed file `key`'s first record whose `column` holds the text
    `value`; None when the file has no such column (one a step made), or no record holds it as written."""
    path = next((p for p, s in cx.paths.items() if s.key == key), None)
    if path is None:
        return None
    try:
        if cx.fmt in ("json", "jsonl"):
            return json_text_line(path, column, value, cx.fmt)
        if cx.fmt == "parquet":
            return parquet_value_row(path, column, value)
        if not cx.dialects.get(path, (None, 0))[1]:  # the header on the first line
            return csv_record_line(path, column, value, cx.csv_delimiter(path) or ",")
    except (OSError, UnicodeDecodeError, csv.Error):  # naming the line is best effort: the error stands
        return None
    return None


def parquet_value_row(path: str, column: str, value: str) -> int | None:
    """The row (its position in the file, from 1) of a Parquet file's first record whose text column `column`
    holds `value`, read a row group at a time; None when there is none, or the column is not text."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as pf:
        kind = pf.schema_arrow.field(column).type if column in pf.schema_arrow.names else None
        if isinstance(kind, pa.DictionaryType):
            kind = kind.value_type
        if kind is None or not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return None
        seen = 0
        for batch in pf.iter_batches(columns=[column]):
            values = batch.column(0)
            if isinstance(values, pa.DictionaryArray):
                values = values.dictionary_decode()
            at = pc.index(values, value).as_py()
            if at >= 0:
                return seen + at + 1
            seen += batch.num_rows
    return None


def json_text_line(path: str, column: str, text: str, fmt: str) -> int | None:
    """The line of the first JSON record whose `column` holds `text` as an engine writes it (`holds_text`), or a
    number written so (one of more digits than a double holds, which an engine read as text)."""
    return json_record_line(path, column, lambda v: holds_text(v, text), fmt) or json_record_line(
        path, column, lambda v: within(v, lambda x: x == text), fmt, as_written=True
    )


def json_record_line(
    path: str, column: str, holds: Callable[[Any], bool], fmt: str = "jsonl", *, as_written: bool = False
) -> int | None:
    """The line of the first record whose `column` holds a value `holds` is true of (not null): in JSON Lines
    (`jsonl`) the record's line; in a JSON document (`json`: an array of records, one record, or records one
    after another) the line of the record's `column` key. `as_written`: numbers are given to `holds` as their
    text (`jsontext.Number`)."""
    decoder = _AS_WRITTEN if as_written else _DECODER
    if fmt == "json":
        return _document_record_line(path, column, holds, decoder)
    with _text_lines(path) as fh:
        for n, line in enumerate(fh, 1):
            try:
                record = decoder.decode(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get(column) is not None and holds(record[column]):
                return n
    return None


_DECODER = json.JSONDecoder()
_AS_WRITTEN = json.JSONDecoder(parse_float=Number, parse_int=Number)


def _document_record_line(
    path: str, column: str, holds: Callable[[Any], bool], decoder: json.JSONDecoder = _DECODER
) -> int | None:
    with _text_lines(path) as fh:
        text = fh.read()
    key = re.compile(re.escape(json.dumps(column)) + r"\s*:")
    for start, end, record in _document_values(text, decoder):
        if isinstance(record, dict) and record.get(column) is not None and holds(record[column]):
            found = key.search(text, start, end)
            return text.count("\n", 0, found.start() if found else start) + 1
    return None


def document_starts(path: str) -> list[int]:
    """The line each record (each value) of a JSON document starts on: the elements of an array, one value, or
    values one after another. Empty when it does not parse."""
    with _text_lines(path) as fh:
        text = fh.read()
    out: list[int] = []
    line, seen = 1, 0
    for start, _, _ in _document_values(text):
        line += text.count("\n", seen, start)
        seen = start
        out.append(line)
    return out


def _document_values(text: str, decoder: json.JSONDecoder = _DECODER) -> Iterator[tuple[int, int, Any]]:
    """`(start, end, value)` of each record of a JSON document's text, in order; stops where it does not parse."""
    at = len(text) - len(text.lstrip("\ufeff \t\r\n"))
    if text[at : at + 1] == "[":
        at += 1
    while True:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        if at >= len(text) or text[at] == "]":
            return
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            return
        yield at, end, value
        at = end


def made_by_steps(workflow: Any) -> str:
    """What the error of a value that does not fit adds when no line of the file holds it as written: the
    workflow's steps made it (`compute: {n: "'big'"}`)."""
    return "; no line of the file holds it as written: a `transform` step made it" if workflow.transform else ""


#: the names DuckDB's conversion errors give types -> the SQL names its types have (`landfall query`, Spark's errors)
_SQL_NAMES = {"BOOL": "BOOLEAN", "INT8": "TINYINT", "INT16": "SMALLINT", "INT32": "INTEGER", "INT64": "BIGINT"}


def not_valid(value: str, column: str | None, type_name: str) -> str:
    """Why a value does not fit its column: `value `x` of column `c` is not a valid T`; for a date written day and
    month first, how to name their order (a column whose sample never told them apart is read as text); for a number
    of more digits than a double holds, the double, and what keeps every digit."""
    of = f" of column `{column}`" if column else ""
    type_name = _SQL_NAMES.get(type_name, type_name)  # DuckDB's errors say BOOL and INT32, its types BOOLEAN...
    why = f"value `{value}`{of} is not a valid {type_name}"
    if type_name == "DOUBLE" and loses_digits(value):
        why += f": a double holds {float(value)!r}; declare the column a decimal or text to keep every digit"
    if type_name.startswith(("DATE", "TIMESTAMP")) and re.match(DAY_MONTH, value):
        kind = "date" if type_name == "DATE" else "timestamp"
        why += (
            f"; its day and month cannot be told apart: name their order in `read.{kind}_format` "
            f"(`%d/%m/%Y` or `%m/%d/%Y`{' and the time' if kind == 'timestamp' else ''})"
        )
    return why


def holds_text(value: Any, text: str) -> bool:
    """Whether a JSON value is `text` as an engine writes it (`written_as`; an object or array as its JSON,
    `{"a":1}`), or holds such a value inside it (a struct's field, a list's item)."""
    return within(value, lambda v: written_as(v, text) or (isinstance(v, dict | list) and _as_json(v) == text))


def within(value: Any, test: Callable[[Any], bool]) -> bool:
    """Whether `test` is true of a JSON value or of one inside it, at any depth."""
    if test(value):
        return True
    inside = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return any(within(v, test) for v in inside)


def _as_json(value: Any) -> str:
    """A JSON value as DuckDB writes JSON: no spaces (`{"a":1}`, `[1,2]`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def written_as(value: Any, text: str) -> bool:
    """Whether a JSON value (not an object or array) is `text` as an engine writes it as text: a string as it
    is, anything else as JSON (`2`, `true`)."""
    if isinstance(value, dict | list):
        return False
    return (value if isinstance(value, str) else json.dumps(value)) == text


def csv_record_line(
    path: str, column: str, text: str, delimiter: str, quote: str = '"', escape: str = '"'
) -> int | None:
    """The line of the first CSV record (after the header, on the first line) whose `column` is `text`; None
    when the header does not name `column` or no record holds it."""
    with _text_lines(path) as fh:
        reader = csv.reader(fh, delimiter=delimiter, **csv_quoting(quote, escape))
        header = next(reader, [])
        if column not in header:
            return None
        at = header.index(column)
        start = reader.line_num + 1
        for row in reader:
            if len(row) > at and row[at] == text:
                return start
            start = reader.line_num + 1
    return None


def _diagnose_json_lines(text: str) -> tuple[int | None, str] | None:
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        value, why = loadable(line)
        if why is not None:
            return n, why
        if not isinstance(value, dict):
            return n, f"expected a JSON object per line, found {kind(value)}"
    return None
