"""Reading JSON Lines and JSON documents on Spark (see `reading`): columns and types as DuckDB's JSON reader
detects them (the same as the DuckDB engine's), each line parsed on its own by Spark (`from_json`) into them, so
that a record is a line and its number its line."""

from __future__ import annotations

import json
import os

import duckdb
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from landfall import encoding as enc
from landfall.engines.base import Replan
from landfall.engines.duckdb.errors import not_records
from landfall.engines.duckdb.errors import reason as duckdb_reason
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS, columns_arg, pin_dates, renamed_keys
from landfall.engines.duckdb.jsonnumbers import whole_numbers
from landfall.engines.duckdb.read_json import fieldless_column
from landfall.engines.duckdb.sql import lit
from landfall.engines.duckdb.stamps import TIME_FORMS
from landfall.engines.duckdb.types import sql_type as duckdb_type
from landfall.engines.spark import translate
from landfall.engines.spark.casts import holds_doubles, strict_cast, text_as
from landfall.engines.spark.context import CORRUPT, Ctx, Input, c, internal, tagged
from landfall.engines.spark.types import TIME, of_duckdb, spark_type
from landfall.errors import InvalidInput
from landfall.jsontext import LONE_SURROGATE, as_loaded, fast_record, invalid_json, not_a_record, too_deep
from landfall.types import user_type

SAMPLE_RECORDS = 20480  # DuckDB's sample for detection


def read_json(ctx: Ctx, sniffer: duckdb.DuckDBPyConnection) -> DataFrame:
    o = ctx.workflow.read
    paths = "[" + ", ".join(lit(i.path) for i in ctx.inputs) + "]"
    args = ["format = 'newline_delimited'", "records = true", "union_by_name = true"]
    if ctx.plan.sample_all:
        args.append("sample_size = -1")
    if o.bad_rows == "quarantine":
        args.append("ignore_errors = true")
    if o.date_format:
        args.append(f"dateformat = {lit(o.date_format)}")
    if o.timestamp_format:
        args.append(f"timestampformat = {lit(o.timestamp_format)}")
    try:
        rel = sniffer.sql(f"SELECT * FROM read_json({paths}, {', '.join(args)})")
        detected = list(zip(rel.columns, rel.types, strict=True))
    except duckdb.Error as exc:
        # a line that is not a JSON object in the sample: detect on the lines that are (Spark's reader then
        # finds the others, with their lines)
        sample = [_records_only(i, ctx) for i in ctx.inputs]
        paths = "[" + ", ".join(lit(p) for p in sample) + "]"
        try:
            rel = sniffer.sql(f"SELECT * FROM read_json({paths}, {', '.join(args)})")
            detected = list(zip(rel.columns, rel.types, strict=True))
        except duckdb.Error:
            key = ctx.inputs[0].source.key if not ctx.batch else "the batch"
            if not not_records(str(exc)):
                raise InvalidInput(f"`{key}`: {duckdb_reason(str(exc))}", file=ctx.inputs[0].source.key) from None
            if not ctx.plan.empty_keys:  # objects DuckDB takes for no records: the empty key
                raise Replan(ctx.plan.but(empty_keys=True), "the empty key: read a copy naming it") from None
            detected = [fieldless_column(ctx.job.table_schema, key)]  # then objects holding no field
    # `name_1` -> `name` beside `Name`: Spark reads each by its key
    looked = None if ctx.plan.sample_all else SAMPLE_RECORDS * len(ctx.inputs)
    keys = renamed_keys(sniffer, [n for n, _ in detected], paths, looked)
    stamps: dict[str, tuple[str, ...]] = {}
    if not o.all_strings:  # a word a date cast takes (`infinity`, `epoch`) keeps its column text, as on DuckDB
        read = ", ".join(args)
        typed = {n: str(t) for n, t in detected if n not in o.types}
        limit = None if ctx.plan.sample_all else DETECTION_SAMPLE_ROWS * len(ctx.inputs)

        def sample(cols: dict[str, str]) -> str:
            return f"SELECT * FROM read_json({paths}, {read}, {columns_arg(cols)})"

        typed = whole_numbers(sniffer, typed, sample, limit)  # beyond 64 bits: DECIMAL(38,0), as on DuckDB
        # and strings that are all timestamps in the sample (whole files once a later value missed its type)
        # doubles stay doubles, at any depth: Spark's parser never gives `1e400`'s text back (`infinite_in`)
        formats = (o.date_format, o.timestamp_format)
        pinned = pin_dates(sniffer, typed, sample, limit, formats, for_duckdb=False, read_times=bool(TIME))
        detected = [(n, pinned.columns.get(n, t)) for n, t in detected]
        stamps = pinned.stamps
    fields = []
    for name, duck in detected:
        dt = T.StringType() if o.all_strings or name in o.types else of_duckdb(str(duck))
        fields.append(T.StructField(name, dt, True))
        if holds_doubles(dt):  # Spark's parser takes `1e400` for an infinity
            ctx.parsed_doubles.add(name)
        ctx.json_columns[name] = "VARCHAR" if isinstance(dt, T.StringType) else str(duck)
        ctx.json_detected[name] = str(duck)
    fields.append(T.StructField(CORRUPT, T.StringType(), True))
    # Spark's parser finds a field by its key, case and all; its SQL names ignore case, so the record is then cast
    # (by position) to DuckDB's names, `Name` and `name_1`
    by_key = T.StructType([f if f.name not in keys else T.StructField(keys[f.name], f.dataType, True) for f in fields])
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    if o.date_format:
        options["dateFormat"] = translate.time_format(o.date_format)
    if o.timestamp_format:
        options["timestampNTZFormat"] = translate.time_format(o.timestamp_format)
    # Each line is parsed on its own (`from_json`), so a record is a line: its number is its line, blank lines
    # included; a line that is not one JSON object (an array, a scalar, broken JSON, a value that does not fit
    # its type) is a record Spark could not parse, as DuckDB's reader sees it.
    # So is a line holding half of a UTF-16 surrogate pair (`"\\ud800"`), which Spark's parser reads as `?` and
    # DuckDB's refuses.
    raw = tagged(ctx, ctx.spark.read.text([i.spark_path for i in ctx.inputs]))
    line = c("value")
    lone = F.when(line.contains("\\u") & line.rlike(LONE_SURROGATE), line)
    parsed = raw.where(F.trim(line) != "").select(
        F.from_json(line, by_key, options).alias("__lf_json"), lone.alias("__lf_lone"), *internal(raw)
    )
    record = F.col("__lf_json").cast(T.StructType(fields)) if keys else F.col("__lf_json")
    raw = parsed.select(
        *[record.getField(f.name).alias(f.name) for f in fields if f.name != CORRUPT],
        F.coalesce(c("__lf_lone"), record.getField(CORRUPT)).alias(CORRUPT),
        *internal(raw),
    )
    for inp in ctx.inputs:
        inp.whole = False
    cols, texts = [], []
    for name, _ in detected:
        col = c(name)
        if name in o.types and o.bad_rows == "quarantine":  # a value that does not fit: its row is set aside
            keep = f"__lf_text{len(ctx.misses)}"
            texts.append(col.alias(keep))
            col = strict_cast(col, T.StringType(), spark_type(user_type(o.types[name])), try_=True, digits=False)
            ctx.misses[f"miss{len(ctx.misses)}"] = (name, duckdb_type(o.types[name]), keep)
        elif name in o.types:
            col = strict_cast(col, T.StringType(), spark_type(user_type(o.types[name])), name=name, digits=False)
        elif name in stamps:  # a value of no form is a miss: the types are detected on whole files again
            keep = f"__lf_text{len(ctx.misses)}"
            texts.append(col.alias(keep))
            kind = "TIME" if stamps[name] == TIME_FORMS else "TIMESTAMP"
            col = text_as(col, kind, (None, None))
            ctx.misses[f"miss{len(ctx.misses)}"] = (name, kind, keep)
        cols.append(col.alias(name))
    return raw.select(*cols, *texts, *internal(raw))


def empty_keys_named(path: str, scratch: str, name: str, key: str) -> str:
    """A copy of a JSON Lines file whose records holding the empty key have it named `jsontext.EMPTY_KEY` (DuckDB's
    reader, which detects the columns, takes such an object for no record; Spark's drops the key), as the DuckDB
    engine reads them (`read_json._good_lines`); `key` names the file in errors."""
    os.makedirs(scratch, exist_ok=True)
    out = os.path.join(scratch, name)
    with enc._open(path) as src, open(out, "wb") as dst:
        for n, raw in enumerate(src, start=1):
            record = fast_record(raw)
            if b'""' in raw and (record is None or "" in record):
                text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not_a_record(text) is None:  # (another line is left to the reader, which names it)
                    try:
                        raw = as_loaded(text).encode("utf-8")
                    except RecursionError:
                        raise InvalidInput(f"`{key}` line {n}: {too_deep()}", file=key, line=n) from None
                    except ValueError as exc:
                        raise InvalidInput(f"`{key}` line {n}: {exc}", file=key, line=n) from None
            dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
    return out


def _records_only(inp: Input, ctx: Ctx) -> str:
    """A copy of a JSON Lines file's first records (all with whole-file detection) that are JSON objects the
    loaders read (`jsontext.not_a_record`)."""
    out = os.path.join(ctx.job.scratch_dir, "_spark", "_records", f"{inp.index}.jsonl")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    limit = None if ctx.plan.sample_all else SAMPLE_RECORDS
    kept = 0
    with enc._open(inp.path) as src, open(out, "wb") as dst:
        for raw in src:
            if fast_record(raw) is None and not_a_record(raw.decode("utf-8", errors="replace")) is not None:
                continue
            dst.write(raw if raw.endswith(b"\n") else raw + b"\n")
            kept += 1
            if limit is not None and kept >= limit:
                break
    return out


def json_as_lines(path: str, scratch: str, key: str, records_required: bool) -> str:
    """A JSON document, validated strictly (RFC 8259), as JSON Lines (its records, or `{"value": ...}` rows)."""
    from landfall.engines.duckdb.diagnose import _json_document_as_lines

    text_ok = True
    try:
        if not enc.read_text(path).strip():
            text_ok = False
    except UnicodeDecodeError:
        pass
    if not text_ok:
        raise InvalidInput(
            f"`{key}` line 1: the file is empty; a JSON document needs a value "
            "(use `read: {format: jsonl}` for files of zero or more records)",
            file=key,
            line=1,
        )
    try:
        out, _, _ = _json_document_as_lines(path, scratch, key, records_required=records_required)
    except InvalidInput:
        raise
    except json.JSONDecodeError as exc:
        raise invalid_json(key, exc) from None
    except RecursionError:
        raise InvalidInput(f"`{key}` line 1: {too_deep()}", file=key, line=1) from None
    except UnicodeError as exc:
        raise InvalidInput(f"`{key}`: invalid JSON: {exc.reason} (a lone UTF-16 surrogate)", file=key) from None
    except ValueError as exc:
        raise InvalidInput(f"`{key}`: invalid JSON: {exc}", file=key) from None
    return out
