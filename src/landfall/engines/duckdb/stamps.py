"""Timestamps written as text, read strictly: the forms landfall reads a timestamp in (each a format DuckDB's
strict parse takes), how many of a sample's values each form reads, and a column read as text converted value by
value in its forms. CSV columns DuckDB sampled as timestamps use them (`read_csv.dates_in`), and so do JSON
string columns whose every sampled value is a timestamp (`stamp_forms`: DuckDB's JSON reader detects
`2024-01-03T10:00:00` but leaves `2024-01-03T10:00:00.123456`, Python's `isoformat()` and pandas' `to_json`,
as text).
"""

from __future__ import annotations

import duckdb

from landfall.engines.duckdb import errors
from landfall.engines.duckdb.sql import lit, q

# The forms of a timestamp DuckDB's own cast reads, each as a format its strict parse takes. The cast is loose:
# past its sample, `2024-01-03 10:00:00+05:00` in a TIMESTAMP column loads as 10:00 (the offset dropped) and
# `2024-01-03 10:00:00 x` as 10:00; read with the format, such a value breaks the column's type instead, and the
# column is read as text (`engine.replan`). The first is the common one and is checked with the words; the rest
# only when it does not fit.
TIMESTAMP_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
)
# The forms a column of timestamps written in more than one (Python's `isoformat()` leaves out a zero fraction)
# is converted in, value by value: the reader's, a date alone (midnight), and each with a `Z` (UTC). No two read
# the same text.
FORMS = (*TIMESTAMP_FORMATS, "%Y-%m-%d", *(f + "Z" for f in TIMESTAMP_FORMATS))
# a timestamp with nothing a cast would drop (DuckDB's and Spark's drop an offset and cut a fraction to six digits,
# their timestamps' microseconds): no offset but `Z` (UTC), no zone, no other text (a value trimmed of spaces), at
# most six digits of a fraction
DAY_MONTH = r"^\s*([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]"  # a date written day and month first, in some order
NAIVE_TIMESTAMP = r"[+]?\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,6})?)?)?Z?"

# A time of day's forms, and what a time with nothing DuckDB's cast would drop looks like: its cast takes
# `10:00:00+02` and `10:00:00Z` for 10:00 and cuts `10:00:00.123456789` to microseconds
TIME_FORMS = ("%H:%M:%S", "%H:%M:%S.%f", "%H:%M")
NAIVE_TIME = r"\d{1,2}:\d{1,2}(:\d{1,2}(\.\d{1,6})?)?"


def more_than_a_time(expr: str) -> str:
    """SQL true for a text value that is not a time of day alone (an offset, a zone, more than six digits of a
    fraction, other text): one a time column read as text cannot convert without losing it."""
    return f"({expr} IS NOT NULL AND NOT regexp_full_match(trim({expr}), {lit(NAIVE_TIME)}))"


SHAPE = "____-__-__%"  # what every value of one of the `FORMS` looks like (LIKE), checked before the forms

Counts = dict[str, tuple[int, dict[str, int]]]  # column -> (values, how many of them each of `FORMS` reads)


def form_counts(con: duckdb.DuckDBPyConnection, select: str, columns: list[str]) -> Counts:
    """For each of `columns` (text) of `select`: how many values it holds, and how many each form reads (the
    first form that reads a value to what DuckDB's cast reads; a value is counted once). One query; the forms
    are tried in turn, as a failed parse costs more than a read."""

    def form_of(i: int, n: str) -> str:
        cast = f"TRY_CAST({q(n)} AS TIMESTAMP)"
        tries = " ".join(f"WHEN try_strptime({q(n)}, {lit(f)}) = {cast} THEN {k}" for k, f in enumerate(FORMS))
        return f"{q(n)} AS v{i}, CASE {tries} END AS f{i}"

    inner = f"SELECT {', '.join(form_of(i, n) for i, n in enumerate(columns))} FROM ({select})"
    reads = [f"count(v{i})" for i in range(len(columns))] + [
        f"count(*) FILTER (WHERE f{i} = {k})" for i in range(len(columns)) for k in range(len(FORMS))
    ]
    row = con.execute(f"SELECT {', '.join(reads)} FROM ({inner})").fetchone()
    out: Counts = {}
    for i, n in enumerate(columns):
        at = len(columns) + i * len(FORMS)
        out[n] = (row[i], dict(zip(FORMS, row[at : at + len(FORMS)], strict=True)))
    return out


def by_use(read: dict[str, int]) -> tuple[str, ...]:
    """The forms, the one that read the most values first (a sort is stable: ties keep the order of `FORMS`)."""
    return tuple(sorted(FORMS, key=lambda f: -read[f]))


def led_by(*lead: str) -> tuple[str, ...]:
    """Every one of the `FORMS`, `lead` first (a value is tried in each in turn)."""
    return (*lead, *(f for f in FORMS if f not in lead))


def looks_like_stamps(n: str) -> str:
    """SQL over a sample: whether every value of the text column `n` looks like a timestamp (a cheap look before
    `stamp_forms`: a failed strict parse costs DuckDB a microsecond, as it builds an error)."""
    return f"bool_and({q(n)} LIKE {lit(SHAPE)})"


def stamp_forms(con: duckdb.DuckDBPyConnection, select: str, columns: list[str]) -> dict[str, tuple[str, ...]]:
    """The text `columns` of a sample (`select`) whose every value is a timestamp of one of the `FORMS` (at least
    one value not a date alone: a column of dates is detected as dates), each with its forms in the order to try
    them."""
    if not columns:
        return {}
    found = {}
    for n, (total, read) in form_counts(con, select, columns).items():
        if total and sum(read.values()) == total and read["%Y-%m-%d"] < total:
            found[n] = by_use(read)
    return found


def converted(select: str, forms: dict[str, tuple[str, ...]]) -> str:
    """`select` with each of `forms`' columns (read as text) converted to a timestamp (a time of day, for the
    `TIME_FORMS`) in the first of its forms that reads a value. A value none reads fails the read as a late value
    of another type does, so that `engine.replan` reads the column as text."""
    if not forms:
        return select

    def one(n: str, fs: tuple[str, ...]) -> str:
        kind = "TIME" if fs == TIME_FORMS else "TIMESTAMP"
        before, after = errors.late_value(n, kind)
        why = f"{lit(before)} || {q(n)} || {lit(after)}"
        stamp = f"try_strptime({q(n)}, [{', '.join(lit(f) for f in fs)}])" + ("::TIME" if kind == "TIME" else "")
        return f"CASE WHEN {q(n)} IS NULL THEN NULL ELSE coalesce({stamp}, error({why})) END AS {q(n)}"

    return f"SELECT * REPLACE ({', '.join(one(n, fs) for n, fs in forms.items())}) FROM ({select})"
