"""The next way to read a job after DuckDB refused it: from DuckDB's error text (see `errors`), the `ReadPlan`
that reads the input as it is (a bigger object buffer, lines one by one, types detected per file or on whole
files, a column as a type that holds a late value, a copy whose line endings are all LF), or none when reading
again would not help."""

from __future__ import annotations

import re

from landfall import compression
from landfall import encoding as enc
from landfall.engines.base import Job, ReadPlan
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.casts import loses_digits
from landfall.engines.duckdb.sql import source_format
from landfall.engines.duckdb.stamps import NAIVE_TIMESTAMP


def replan(plan: ReadPlan, job: Job, text: str) -> ReadPlan | None:
    """The plan for reading a job again after DuckDB refused it with `text`, or None when reading again would not
    help (the error then names the file, line and reason). A batch is split by the runner: each file then gets
    these chances alone."""
    fmt = source_format(job.workflow, job.sources[0])
    alone = len(job.sources) == 1
    # a value past the sample that does not fit its type: the types are detected on the whole file next (read
    # through Python's parser, a document would be read with types detected on a sample again)
    sampled_miss = errors.type_detection_miss(text) and not plan.sample_all
    if errors.object_too_large(text) and not plan.max_object:
        # a record above DuckDB's default buffer; a bigger one slows every read, so only now
        return plan.but(max_object=min(max(64 << 20, 8 * max(s.size for s in job.sources)), 1 << 31))
    if alone and not plan.repeated_keys and fmt == "jsonl" and errors.repeated_key(text):
        return plan.but(split_lines=True, repeated_keys=True)  # a copy with the last value of each key
    if (
        text
        and alone
        and not plan.split_lines
        and job.workflow.read.bad_rows == "quarantine"
        and fmt == "jsonl"
        # a value that missed its sampled type is no line to set aside (its file is first read again with types
        # detected on all of it), unless a line that is no object stopped that detection
        and (not errors.type_detection_miss(text) or plan.sample_all)
    ):
        return plan.but(split_lines=True)  # a line DuckDB refused: read the lines that parse, keep the rest
    if not alone and not plan.per_file_types and errors.type_detection_miss(text):
        return plan.but(per_file_types=True)  # a file of the batch breaks the first file's types: detect per file
    if alone and not plan.empty_keys and fmt == "jsonl" and errors.empty_key(text):
        return plan.but(split_lines=True, empty_keys=True)  # a record holding the empty key past the sample
    if alone and not plan.sample_all and errors.unknown_key(text):
        return plan.but(sample_all=True)  # a key past the sample (`jsonkeys.refusing_read`): detect on the whole file
    if text and alone and not plan.json_via_python and fmt == "json" and not sampled_miss:
        return plan.but(json_via_python=True)  # strictly valid, but DuckDB's reader refused it
    if fmt == "csv" and alone and not plan.newlines and errors.lost_in_line_endings(text) and _has_cr(job):
        return plan.but(newlines=True)  # a line ending unlike the first ones: read a copy whose endings are all LF
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
    if fmt == "csv" and column and value and value[0].strip() == column and not plan.header_lines:
        return plan.but(header_lines=True)  # a column's own name past the header: the header line again
    if fmt == "csv" and column and value and column not in job.workflow.read.types:
        # the type was detected on a sample and a later value does not fit it: read that column as a type that
        # holds the value
        return widened(plan, column, *value)
    if plan.sample_all:
        return None
    return plan.but(sample_all=True)  # the types were detected on a sample: detect them on the whole file


def widened(plan: ReadPlan, column: str, value: str, sampled: str) -> ReadPlan | None:
    """`plan` reading a CSV `column` as a type that holds `value`, which does not fit the type DuckDB detected on
    a sample (`sampled`), or None when it is read as text already. (No second detection over the whole file:
    that would hold the file in memory.)"""
    if column in plan.as_text:
        return None
    if sampled == "TIMESTAMP" and column not in plan.mixed_stamps and _NAIVE.fullmatch(value.strip()):
        # a timestamp of another form than the sample's (no fraction where they had one): still a timestamp
        return plan.but(mixed_stamps=plan.mixed_stamps | {column})
    wider = wider_type(value, sampled)
    if wider == "string" or column in dict(plan.column_types):
        return plan.but(as_text=plan.as_text | {column})  # values of mixed forms: keep the column as text
    return plan.typed(column, wider)


def _has_cr(job: Job) -> bool:
    """Whether the first 64 KB of the job's file hold a carriage return (a CRLF or CR file)."""
    src = job.sources[0]
    try:
        return b"\r" in enc.sample(src.path, compression.detect(src.path, job.workflow.read.compression, src.key))
    except Exception:  # unreadable here: the read's error says why
        return False


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")
_LEADING_ZERO = re.compile(r"\s*[+-]?0\d")
_NAIVE = re.compile(NAIVE_TIMESTAMP)
_TIMESTAMP = re.compile(r"\s*\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*")


def wider_type(value: str, sampled: str) -> str:
    """The Arrow type a column takes when `value` does not fit the type DuckDB sampled (`BIGINT`, `DATE`, ...):
    a whole number beyond 64 bits in an integer column makes it `decimal128(38, 0)` (exact, up to 38 digits),
    another number `double` (`string` when a double does not hold all its digits), a timestamp in a date column
    `timestamp[us]`; anything else (values of mixed forms) `string`."""
    if sampled.upper() in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "INT64", "INT32") and (
        _NUMBER.fullmatch(value) and not _LEADING_ZERO.match(value)  # `007` is a code, not the number 7
    ):
        digits = value.strip().lstrip("+-")
        beyond_64 = digits.isdigit() and not -(2**63) <= int(value) < 2**63
        if beyond_64 and len(digits) <= 38:
            return "decimal128(38, 0)"
        return "string" if loses_digits(value) else "double"  # `1234567890.123456789`: a double would round it
    if sampled.upper() == "DATE" and _TIMESTAMP.fullmatch(value):
        return "timestamp[us]"
    return "string"
