"""Every pattern of DuckDB's error text the engine decides on, in one place (each has a test in
`tests/test_duckdb_errors.py` that makes DuckDB raise it, so a DuckDB release that rewords one fails there).

The engine reads the text of an error to choose its next read plan (`replan` in `engine.py`), to name the line
and the reason of bad input, and to tell a value that does not fit a type from unreadable input.
"""

from __future__ import annotations

import json
import re

_CONVERTING_COLUMN = re.compile(r'Error when converting column "(.+?)"')
_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_JSON_LINE = re.compile(r"JSON \w+ error in file .*?, in line (\d+)")
_NOT_CONVERTED = re.compile(
    r"Could not convert string ['\"](.*?)['\"] to '?((?:STRUCT|MAP)\(.*\)(?:\[\])*(?= when casting)"
    r"|[A-Z0-9_]+(?:\(\d+,\s*\d+\))?(?:\[\])*)"
)
_FAILED_CAST = re.compile(r"Failed to cast value to \w+: (.+?) when casting from source column ")
# a cast from a JSON column to a date, time, timestamp or UUID: the value as JSON (`1704164645`, `true`, `{"a":1}`)
_UNABLE_TO_CAST = re.compile(r"Unable to cast '(.*?)' to ([A-Z][A-Z ]*[A-Z])")
# a string a cast to a date, time or timestamp could not convert (`2024-13-45`, `abc`)
_TEMPORAL = re.compile(r'\b(date|timestamp|time) field (?:value out of range|format): "(.*?)"')
_CAST_FROM = re.compile(r"when casting from source column (.+?)\s*$", re.M)
_UNKNOWN_STRUCT_KEY = re.compile(r"a value of column `(.+?)` holds key `(.+?)`")
_LINE_TOO_LONG = re.compile(r"Maximum line size of (\d+) bytes exceeded")
_CASE_TWINS = re.compile(r'Duplicate name "(.+?)" in struct auto-detected in JSON')
# an error of DuckDB's background write, as JSON (`No space left on device`: tests/test_disk_full.py)
_JSON_ERROR = re.compile(r'\{"exception_type".*\}')


def late_value(column: str, kind: str = "TIMESTAMP") -> tuple[str, str]:
    """The text before and after the value in the error landfall raises for a value that does not fit `kind` in
    a column it converts itself (timestamps of a form, `stamps.converted`, CSV or JSON; whole numbers,
    `read_csv.wholes_back`): DuckDB's CSV reader's own words for a late value that does not fit, so that the
    functions below (and `replan`) read it as they read the reader's."""
    return f'CSV Error: Error when converting column "{column}": Could not convert string "', f"\" to '{kind}'"


def type_detection_miss(text: str) -> bool:
    """A value that does not fit the type DuckDB detected on a sample of the file (CSV or JSON)."""
    csv_miss = ("Error when converting column" in text or "Could not convert" in text) and "CSV Error" in text
    json_miss = "JSON" in text and any(t in text for t in ("Could not convert", "Failed to cast", "transform error"))
    return csv_miss or (json_miss and not not_an_object(text))  # a line that is no object is no value's type


def wrong_operand_type(text: str) -> bool:
    """An expression given a text column where it does not take text (a number belongs: `'2,5' * 3`, `'x' > 10`),
    refused when the step is bound; not another type where text belongs (`lpad(BIGINT, ...)`: no text column is
    to blame)."""
    kinds = ("No function matches", "Cannot compare values of type", "Cannot mix values of type")
    first = text.strip().splitlines()[0] if text.strip() else ""
    given = _ARGUMENT_TYPES.search(first)  # (the candidates DuckDB lists after it take text often)
    return any(t in first for t in kinds) and "VARCHAR" in (given[1] if given else first)


_ARGUMENT_TYPES = re.compile(r"argument types '(.*?)'")


def converting_column(text: str) -> str | None:
    """The CSV column whose value did not fit its detected type."""
    m = _CONVERTING_COLUMN.search(text)
    return m.group(1) if m else None


def object_too_large(text: str) -> bool:
    """A JSON record larger than the reader's buffer (`maximum_object_size`)."""
    return "maximum_object_size" in text


def name_too_long(text: str) -> bool:
    """A file or folder name longer than the file system takes (`ENAMETOOLONG`)."""
    return "File name too long" in text


def error_line(text: str) -> int | None:
    """The line DuckDB's CSV or JSON reader names, if it does."""
    m = _CSV_LINE.search(text) or _JSON_LINE.search(text)
    return int(m.group(1)) if m else None


def conversion(text: str) -> bool:
    """A value that cannot be converted to a column's type (the file's schema conflicts, not its syntax)."""
    return "Conversion Error" in text or "Could not convert" in text


def not_converted(text: str) -> tuple[str, str] | None:
    """`(value, type)` of a string that could not be converted."""
    m = _NOT_CONVERTED.search(text)
    return (m.group(1), m.group(2)) if m else None


def cast_column(text: str) -> str | None:
    """The column whose value a cast in SQL could not convert (a declared type applied to JSON records)."""
    m = _CAST_FROM.search(text)
    return m.group(1) if m else None


def unknown_struct_key(text: str) -> tuple[str, str] | None:
    """`(column, key)` of an object whose key the table's struct has no field for (landfall's own words,
    `casts.conformed`), named by the first of its unknown keys."""
    m = _UNKNOWN_STRUCT_KEY.search(text)
    return (m.group(1), m.group(2)) if m else None


def cast_json_value(text: str) -> str | None:
    """The JSON text of a value a cast from a JSON column could not convert (`"x"`, `{"a":1}`)."""
    m = _FAILED_CAST.search(text) or _UNABLE_TO_CAST.search(text)
    return m.group(1) if m else None


def cast_json_type(text: str) -> str | None:
    """The type a cast from a JSON column could not convert a value to, when DuckDB names it (a date, time,
    timestamp or UUID: `Unable to cast '1.5' to DATE`)."""
    m = _UNABLE_TO_CAST.search(text)
    return m.group(2) if m else None


def temporal_value(text: str) -> tuple[str, str] | None:
    """`(value, type)` of a string a cast to a date, time or timestamp could not convert (`2024-13-45`, `abc`;
    DuckDB says `timestamp` for TIMESTAMPTZ too)."""
    m = _TEMPORAL.search(text)
    return (m.group(2), m.group(1).upper()) if m else None


def line_too_long(text: str) -> int | None:
    """The longest line the CSV reader takes (`max_line_size`), when a line was longer."""
    m = _LINE_TOO_LONG.search(text)
    return int(m.group(1)) if m else None


def wrong_field_count(text: str) -> bool:
    """A CSV record with more or fewer fields than the header (a ragged row, or a quoted value spanning lines read
    without quotes)."""
    return "Expected Number of Columns" in text


def lost_in_line_endings(text: str) -> bool:
    """DuckDB's CSV reader stopped in a state it has no way out of, or its sniffer found no dialect: a line ending
    unlike the file's first ones (a lone LF in a CRLF file) does either, met past or inside the sample."""
    return "state machine reached an invalid state" in text or "Error when sniffing file" in text


def gzip_corrupt(text: str) -> bool:
    """A `.gz` file DuckDB could not decompress."""
    return bool(re.search(r"\bGZIP\b", text))


def not_an_object(text: str) -> bool:
    """A line of JSON Lines read as a record that holds another kind of value (`[1]`, `"text"`, `5`)."""
    return "Expected OBJECT, but got" in text


def unknown_key(text: str) -> bool:
    """A JSON record holding a key the reader's own detection did not find in its sample (`jsonkeys`)."""
    return "has unknown key" in text


def empty_key(text: str) -> bool:
    """A JSON record past the reader's sample holding the empty key (`""`), which no column of the sample names."""
    return 'has unknown key ""' in text


def repeated_key(text: str) -> bool:
    """A JSON record with a key twice in one object, which DuckDB's reader refuses (`jsontext.last_of_each_key`)."""
    return "has duplicate key" in text


def not_records(text: str) -> bool:
    """A JSON file read as records whose top-level values are not objects."""
    return "expected records" in text


def reason(text: str) -> str:
    """The reason in an error, for people: DuckDB's first line without its prefix, the CSV reader's message
    without the lines around it, and a plainer word for the dialect sniffer and undecodable bytes."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return "unreadable input"
    head = re.sub(r"^[A-Za-z ]*Error: ", "", lines[0])
    if (m := _JSON_ERROR.search(head)) is not None:  # `Async write failed for range [...]: {"exception_message": ...}`
        try:
            head = json.loads(m[0]).get("exception_message") or head
        except ValueError:
            pass
    head = re.sub(r'^(JSON \w+ error) in file ".*?", in line \d+:\s*', r"\1: ", head).strip()  # the line apart
    if head == "JSON transform error:":  # DuckDB names nothing when a value does not read in a date format
        head = "JSON transform error: a value does not fit its column's type or date format"
    if head.startswith("CSV Error on Line"):
        rest = [ln for ln in lines[1:] if not ln.startswith(("Original Line", "Possible Solution", "file ="))]
        head = rest[0] if rest else "malformed CSV"
        if "Invalid unicode" in head:
            head = (
                "the file is not valid UTF-8 here; set `read.encoding` to its encoding "
                "(e.g. `latin-1`, `cp1252`, `utf-16`)"
            )
    elif head.startswith("Error when sniffing file"):
        head = "could not detect the CSV dialect (delimiter, quote, columns)"
    elif m := _CASE_TWINS.search(head):
        head = (
            f"an object holds keys that differ only in case (`{m[1]}`): DuckDB's JSON reader, whose names ignore "
            "case, cannot keep both inside one column; rename one where the file is made (two such keys at the "
            "top level load as `name` and `name_1`)"
        )
    return head
