"""Reading CSV with DuckDB's `read_csv`: the arguments a workflow's read options set, landfall's own check of the
delimiter (a header is never read as one column), DuckDB's sniffer run once and pinned for a group of files with
the same header, and whether a file's only line is its header."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import duckdb

from landfall import encoding as enc
from landfall.config import ReadOptions
from landfall.engines.base import ReadPlan, text_in_table
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.casts import lost_digits
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.datewords import may_hold, may_hold_long_numbers
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS, is_word
from landfall.engines.duckdb.replanning import widened
from landfall.engines.duckdb.sql import REJECTS, _filename_arg, common_args, lit, q
from landfall.engines.duckdb.stamps import (
    DAY_MONTH,
    NAIVE_TIMESTAMP,
    TIME_FORMS,
    TIMESTAMP_FORMATS,
    by_use,
    form_counts,
    led_by,
    more_than_a_time,
)
from landfall.engines.duckdb.types import duck_type, sql_type


def sample_buffer(o: ReadOptions) -> str:
    """The read_csv argument for the reads of a file's detection sample (the sniff, the scan for words in date
    columns): a 2 MiB buffer. DuckDB's default (16 x `max_line_size`: 32 MiB) is filled whole before the first
    row is looked at: on a large file that is half the sniff's CPU (38 ms against 20 ms on 110 MiB). The sample
    is the same rows either way (the reader reads on into the next buffer), and the buffer holds every line the
    reader takes (2,000,000 bytes, or `read.max_line_size`)."""
    return f"buffer_size = {max(2 << 20, o.max_line_size or 0)}"


class Dates(NamedTuple):
    """How a CSV's date and timestamp columns are read (`dates_in`)."""

    text: set[str]  # read as text
    stamp_format: str | None  # the reader's strict format of the timestamp columns it reads itself
    forms: dict[str, tuple[str, ...]]  # read as text and converted in these forms, the first that reads a value


def dates_in(
    con: duckdb.DuckDBPyConnection,
    select: str,
    columns: set[str],
    stamps: set[str],
    mixed: frozenset[str] = frozenset(),
    times: set[str] | frozenset[str] = frozenset(),
) -> Dates:
    """What a CSV sample (`select`, its date `columns` read as text) says of them: the columns to read as text
    (one holding a word somewhere, which read as a date would be wrong, or a `stamps` column, sampled as
    TIMESTAMP, holding a value with more than a timestamp: an offset, a zone, other text); the strict format
    the reader reads the other `stamps` columns in (the one most of them are wholly written in, read to the same
    value as DuckDB's cast); and the columns converted value by value instead, in each of the `FORMS` (values
    of more than one form: with and without a fraction; and the `mixed` columns, where a value past the sample
    was of another form). A value with more than six digits of a fraction (nanoseconds: a timestamp holds
    microseconds) makes its column text, as an offset does. So for the `times` columns (sampled as TIME): one
    holding a value with an offset, a zone or more than six digits of a fraction is text, the others are converted
    in the `TIME_FORMS` (DuckDB's CSV reader takes no format for times, and its cast drops what is after them).

    The sample is the first rows a parallel read returns, not always the same ones: what decides a column's
    reading is taken from one query (a later query's sample may differ; the reader still checks every value,
    and a value that fits no form makes the column text)."""
    names, stamped, timed = sorted(columns), sorted(stamps), sorted(times)
    first = TIMESTAMP_FORMATS[0]
    checks = [f"coalesce(bool_or({is_word(q(n))}), false)" for n in names]
    for n in stamped:  # the regular expression only for values the first format does not read
        strict = f"try_strptime({q(n)}, {lit(first)})"
        checks.append(f"coalesce(bool_and({strict} IS NOT DISTINCT FROM TRY_CAST({q(n)} AS TIMESTAMP)), true)")
        naive = f"regexp_full_match(trim({q(n)}), {lit(NAIVE_TIMESTAMP)})"
        checks.append(f"coalesce(bool_and(CASE WHEN {strict} IS NOT NULL THEN true ELSE {naive} END), true)")
    checks += [f"coalesce(bool_or({more_than_a_time(q(n))}), false)" for n in timed]
    found = con.execute(f"SELECT {', '.join(checks)} FROM ({select})").fetchone()
    text = {n for n, hit in zip(names, found[: len(names)], strict=True) if hit}
    text |= {n for n, hit in zip(timed, found[len(found) - len(timed) :], strict=True) if hit}
    clock = {n: TIME_FORMS for n in timed if n not in text}
    fits = {n: found[len(names) + 2 * i] for i, n in enumerate(stamped)}
    text |= {n for i, n in enumerate(stamped) if not found[len(names) + 2 * i + 1]}
    left = [n for n in stamped if n not in text]
    whole = {n: first for n in left if fits[n] and n not in mixed}
    rest = [n for n in left if n not in whole]
    if not rest:
        return Dates(text, first if whole else None, clock)

    # rare: another form, or values of more than one: how many values each form reads
    counts = form_counts(con, select, rest)
    forms: dict[str, tuple[str, ...]] = dict(clock)
    for n, (total, read) in counts.items():
        ordered = by_use(read)
        if n not in mixed and read[ordered[0]] == total and ordered[0] in TIMESTAMP_FORMATS:
            whole[n] = ordered[0]
        elif n in mixed or sum(read.values()) == total:
            forms[n] = ordered
    # a column wholly of fractions is converted too: the writer may leave out a zero fraction (Python's
    # `isoformat()` does, one value in a million), and a value without one would break the reader's format late
    # in the file, to be read again; converting costs a sixth more per value than the reader's strict parse
    forms |= {n: led_by(f, f.removesuffix(".%f")) for n, f in whole.items() if f.endswith(".%f")}
    whole = {n: f for n, f in whole.items() if n not in forms}
    if not whole:
        return Dates(text, None, forms)
    # the reader takes one format: the one most columns are wholly in; the others are converted
    fmt = max(TIMESTAMP_FORMATS, key=lambda f: sum(g == f for g in whole.values()))
    forms |= {n: led_by(f) for n, f in whole.items() if f != fmt}
    return Dates(text, fmt, forms)


def as_written(con: duckdb.DuckDBPyConnection, path: str, sniffed: tuple[Any, ...], o: ReadOptions) -> set[str]:
    """The columns of a CSV that DuckDB's sniffer typed (`sniffed`: its `sniff_csv` row, dialect, columns and
    formats) but that are read as text, every value as written, from what its sample holds:

    - dates and timestamps in a format that puts day and month first (`%d/%m/%Y`), whose sampled values never
      tell which is which (every value's first two numbers at most 12). The sniffer then reads the day first, so a
      file written month first would load February 1 as January 2 without a word; text lets
      `read.date_format` / `read.timestamp_format` (which this leaves alone) name the order;
    - whole numbers written in hexadecimal or binary (`0x00FF`, `0xDeadBeef`, `0b101`), which DuckDB reads as
      255, 3735928559 and 5, losing the digits' width and case (an address, a code, a color); pandas, Spark and
      Polars keep them as text. Looked for only when the sample's lines hold `0x` or `0b`.

    One scan of the sample, when there is something to look for."""
    delim, quote, escape, _nl, comment, skip, header, columns, datefmt, tsfmt = sniffed
    kinds = {"DATE": None if o.date_format else datefmt, "TIMESTAMP": None if o.timestamp_format else tsfmt}
    checks: dict[str, str] = {}
    for c in columns or []:
        if (kinds.get(c["type"]) or "").startswith(("%d", "%m")):
            n = c["name"]
            first, second = (f"TRY_CAST(regexp_extract({q(n)}, {lit(DAY_MONTH)}, {i}) AS INTEGER)" for i in (1, 2))
            told = f"coalesce(bool_or({first} > 12 OR {second} > 12), false)"
            checks[n] = f"coalesce(bool_or({first} <> {second}), false) AND NOT {told}"
    whole = [c["name"] for c in columns or [] if c["type"] in _WHOLE]
    if whole and may_hold(path, 2 * DETECTION_SAMPLE_ROWS + int(skip) + 1, (b"0x", b"0b")):
        checks.update((n, f"coalesce(bool_or(regexp_matches({q(n)}, {lit(_HEX)})), false)") for n in whole)
    if not checks:
        return set()
    unquoted = {"(empty)": ""}
    quote, escape, comment = unquoted.get(quote, quote), unquoted.get(escape, escape), unquoted.get(comment, comment)
    sample = text_sample([path], delim, quote, escape, header, skip, comment, rows=DETECTION_SAMPLE_ROWS)
    try:
        found = con.execute(f"SELECT {', '.join(checks.values())} FROM ({sample})").fetchone()
    except duckdb.Error:  # the read itself names what is wrong with the file
        return set()
    return {n for n, text in zip(checks, found, strict=True) if text}


def text_sample(
    paths: list[str],
    delim: str,
    quote: str,
    escape: str,
    header: bool,
    skip: int,
    comment: str | None,
    *,
    rows: int | None,
) -> str:
    """The first `rows` records (None: all) of CSV files of one dialect (`quote`, `escape`: "" for none), every
    column as text."""
    args = [
        f"delim = {lit(delim)}",
        f"quote = {lit(quote)}",
        f"escape = {lit(escape)}",
        f"header = {str(bool(header)).lower()}",
        f"skip = {int(skip)}",
    ] + ([f"comment = {lit(comment)}"] if comment else [])
    files = "[" + ", ".join(lit(p) for p in paths) + "]"
    limit = "" if rows is None else f" LIMIT {rows}"
    return f"SELECT * FROM read_csv({files}, {', '.join(args)}, all_varchar = true){limit}"


def lost_in(con: duckdb.DuckDBPyConnection, select: str, doubles: set[str], paths: list[str], lines: int) -> set[str]:
    """The columns of `doubles` (read as text in `select`, a sample of CSV `paths`) holding a number of more digits
    than a double holds (`1234567890.123456789`, an amount exported from a decimal column: as a double,
    1234567890.1234567), which DuckDB's sniffer types DOUBLE: to be read as text, every value as written
    (`casts.lost_digits`; a number a program wrote from a double, at any number of digits, is a double's). Looked
    for only when the first `lines` lines of some file hold 16 digits or points in a row. On the DuckDB engine,
    `select` is the sample of a job's files together, typed across them; on Spark, of the files of a group."""
    if not doubles or not any(may_hold_long_numbers(p, lines) for p in paths):
        return set()
    # column by column, to the first such value (a column of them is seen at its first row)
    return {n for n in doubles if con.execute(f"SELECT 1 FROM ({select}) WHERE {lost_digits(q(n))} LIMIT 1").fetchone()}


#: the types DuckDB's sniffer gives whole numbers, which it also reads from hexadecimal and binary (`0x1F`, `0b101`)
_WHOLE = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UBIGINT", "BIGNUM")
_HEX = r"^\s*[+-]?0[xXbB]"


_NUMBERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_DATES = ("DATE", "TIMESTAMP")


def mixed_types(groups: list[list[tuple[str, str]]]) -> set[str]:
    """The columns that groups of files (each a list of column names and DuckDB types) read as different kinds of
    value. Numbers of different types are one kind (an integer is the same number as a double), and so are dates
    and timestamps (a date is its midnight); any other difference (a boolean and text, a number and text) is
    mixed: such a column is read as text in every group, as combining them would cast the values (`t` read as
    a boolean would be stored as `true`)."""
    kinds: dict[str, set[str]] = {}
    for columns in groups:
        for name, kind in columns:
            kinds.setdefault(name, set()).add(kind)

    def one_kind(types: set[str]) -> bool:
        bases = {t.split("(")[0] for t in types}
        return len(types) == 1 or bases <= set(_NUMBERS) or bases <= set(_DATES)

    return {name for name, types in kinds.items() if not one_kind(types)}


def _one_line_is_header(
    con: duckdb.DuckDBPyConnection,
    line: str,
    opts: ReadOptions,
    scratch: str,
    names_its_table: Callable[[list[str]], bool] | None = None,
) -> bool:
    """Whether a CSV's only line is its header: as declared, else as DuckDB's sniffer sees it (a line of
    names is a header; one with a number, a date, a boolean or an empty field is a row), else when its fields,
    named as a header's are, are columns of the file's table or name a column the workflow gives a type
    (`names_its_table`): a header with an unnamed column, as pandas writes an empty frame with its index (`,a,b`),
    is one when its table has those columns, and so is `id,t,f` (`t` and `f` are booleans to the sniffer) when
    `read.types` declares `id`."""
    if opts.header is not None:
        return opts.header
    import tempfile

    user = dialect_args(opts)
    os.makedirs(scratch, exist_ok=True)  # a local folder the engine's database may read
    with tempfile.NamedTemporaryFile("w", suffix=".csv", encoding="utf-8", delete=False, dir=scratch) as fh:
        fh.write(line + "\n")
    try:
        row = con.execute(
            f"SELECT HasHeader, Delimiter, Quote FROM sniff_csv({lit(fh.name)}{''.join(', ' + a for a in user)})"
        ).fetchone()
    except duckdb.Error:
        return False
    finally:
        os.unlink(fh.name)
    if not row or row[0] or names_its_table is None:
        return bool(row and row[0])
    _, delim, quote = row
    quote = quote if len(quote or "") == 1 else '"'  # `(empty)`: none in the line
    fields = next(csv.reader([line], delimiter=delim if len(delim or "") == 1 else ",", quotechar=quote), [])
    return bool(fields) and names_its_table(header_names(fields))


def header_names(fields: list[str]) -> list[str]:
    """The column names DuckDB gives a header line's fields: an empty one `column<i>`, a repeated one `<name>_<n>`."""
    names: list[str] = []
    for i, field in enumerate(fields):
        name = base = field.strip() or f"column{i}"
        n = 0
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def _sniff(cx: JobContext, path: str, o: ReadOptions, *, pin: bool = False) -> list[str] | None:
    """read_csv arguments that fix the dialect DuckDB detects on `path`, so that a group of files with the same
    header is read without sniffing each one; with `pin` (one file), its columns and their types too, so that
    nothing binding the read later (the steps, DESCRIBE, COPY) runs the sniffer again. None when detection fails
    here (the normal read then reports the error)."""
    user = [
        a
        for a in _csv_args(cx, o, _forced(cx, path))
        if not a.startswith(("types", "all_varchar", "allow_quoted", "store_rejects"))
    ]
    key = (path, *user)
    if key not in cx.sniffed:  # a read is built more than once per attempt (words read as dates): sniff once
        try:
            cx.sniffed[key] = cx.con.execute(
                "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, HasHeader, Columns, "
                f"DateFormat, TimestampFormat FROM sniff_csv({', '.join([lit(path), *user, sample_buffer(o)])})"
            ).fetchone()
        except duckdb.Error:
            cx.sniffed[key] = None
    row = cx.sniffed[key]
    if row is None:
        return None
    delim, quote, escape, _nl, comment, skip, header, columns, datefmt, tsfmt = row
    if not columns or quote not in ("(empty)", '"', "'") or (escape == "(empty)") != (quote == "(empty)"):
        return None
    if quote == "(empty)":  # no quotes in this file's sample: others may have some; RFC 4180 quoting is safe
        quote, escape = '"', '"'
    # The dialect is fixed; a group's column types are still detected by DuckDB across its files (fixing the
    # first file's types would let a later file's `2.5` be cast into a BIGINT column as 3).
    text = text_in_table(cx.job.workflow, cx.job.table_schema, [c["name"] for c in columns])
    if ("as-written", *key) not in cx.sniffed:  # undecidable dates, hexadecimal and binary numbers: text (`as_written`)
        cx.sniffed[("as-written", *key)] = as_written(cx.con, path, row, o)
    text |= cx.sniffed[("as-written", *key)]
    types = _declared_types(cx, o) | dict.fromkeys(text, "VARCHAR")  # `text_in_table`: kept as written
    args = [
        f"auto_detect = {str(not pin).lower()}",
        f"delim = {lit(delim)}",
        f"quote = {lit(quote)}",
        f"escape = {lit(escape)}",
        f"header = {str(bool(header)).lower()}",
        f"skip = {int(skip)}",
    ]
    if pin:
        pinned = {c["name"]: "VARCHAR" if o.all_strings else types.get(c["name"], c["type"]) for c in columns}
        args.append("columns = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in pinned.items()) + "}")
    else:  # every file's types: DuckDB sniffs the first 10 files only and, reading with `filename`, casts a later
        # file's values to their types without a word (a later file's `2.5` into a BIGINT column as 3)
        args.append("files_to_sniff = -1")
        if types:
            args.append("types = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in types.items()) + "}")
    if o.all_strings and not pin:
        args.append("all_varchar = true")
    if comment not in (None, "(empty)"):
        args.append(f"comment = {lit(comment)}")
    if datefmt and not o.date_format:
        args.append(f"dateformat = {lit(datefmt)}")
    tsfmt = tsfmt or cx.timestamp_format  # DuckDB's sniffer names no format for ISO timestamps: landfall's check
    if tsfmt and not o.timestamp_format:
        args.append(f"timestampformat = {lit(tsfmt)}")
    if o.all_strings:
        args.append("allow_quoted_nulls = false")
    return args


def _forced(cx: JobContext, path: str) -> list[str]:
    """read_csv arguments that fix the delimiter landfall checked for `path`, and where the records start
    (DuckDB's sniffer may otherwise skip lines up to a ragged row)."""
    if path not in cx.dialects:
        return []
    delim, skip = cx.dialects[path]
    return [f"delim = {lit(delim)}"] + ([] if cx.opts.skip_rows else [f"skip = {skip}"])


def _csv_sql(
    cx: JobContext,
    paths: str,
    o: ReadOptions,
    *,
    union: bool,
    sniffed: list[str] | None = None,
    forced: list[str] | tuple[str, ...] = (),
    extra: str = "",
) -> str:
    """The SELECT of `read_csv` over `paths`; `extra` is appended to its arguments."""
    args = [f"union_by_name = {str(union).lower()}"] + _filename_arg(cx)
    if sniffed is not None:
        keep = [
            a
            for a in _csv_args(cx, o)
            if a.startswith(
                (
                    "nullstr",
                    "decimal_separator",
                    "max_line_size",
                    "dateformat",
                    "timestampformat",
                    "compression",
                    "sample_size",
                    "ignore_errors",
                    "store_rejects",
                    "parallel",
                )
            )
        ]
        return f"SELECT * FROM read_csv({paths}, {', '.join(args + sniffed + keep)}{extra})"
    args.append("auto_detect = true")
    args.extend(_csv_args(cx, o, forced))
    return f"SELECT * FROM read_csv({paths}, {', '.join(args)}{extra})"


def _declared_types(cx: JobContext, o: ReadOptions) -> dict[str, str]:
    """Column -> DuckDB type for the reader: `read.types` (text where `converted_types` converts them), then the
    plan's retyped columns."""
    exact = converted_types(o)
    types = {k: "VARCHAR" if k in exact else sql_type(v) for k, v in o.types.items()}
    types |= {c: duck_type(t) for c, t in cx.plan.column_types}
    return types | {c: "VARCHAR" for c in [*cx.plan.as_text, *(n for n, k in cx.wholes.items() if k)]}


#: the types DuckDB's CSV sniffer detects for whole numbers
WHOLE_TYPES = frozenset(("BIGINT", "HUGEINT"))
#: columns of whole numbers converted back value by value at most (binding the conversion costs 0.7 ms a column
#: at 200 columns and more beyond, 1.6 ms at 1,000, and a read is bound several times); a wider file's are read as
#: DuckDB converts them and looked through after the load (`late_wholes`), one check bound for all of them
WHOLES_AT_MOST = 200
_CAST_SPACES = " \t\n\r\x0b\x0c"


def _integer_text(x: str, kind: str) -> str:
    """SQL: whether the text `x` is the text of its integer of `kind` (BIGINT or HUGEINT)."""
    return f"CAST(TRY_CAST({x} AS {kind}) AS VARCHAR) = {x}"


def _trimmed(x: str) -> str:
    return f"trim({x}, {lit(_CAST_SPACES)})"  # what DuckDB's cast trims: tabs too


def wholes_back(select: str, wholes: dict[str, str]) -> str:
    """`select` with each column `wholes` names a type of (read as text; every column of `select` in order: name
    -> the type DuckDB's sniffer detected, BIGINT or HUGEINT, or "" for one read as it is) converted back to that
    type, strictly. Past its sample DuckDB's CSV reader converts text to integers loosely, without a word: `2.5`
    as 3, `007` as 7, `+5` as 5, `1_000` as 1000, `0x1F` as 31 (duckdb/duckdb#25824), though its sniffer keeps
    each of those out of a column of whole numbers (text, or DOUBLE). Here a value is taken only when it is the
    text of its integer (spaces and tabs around it aside; `-0` too); another fails the read as a late value that
    does not fit does, and the column is read again as a type that holds it (`replanning.wider_type`: DOUBLE for `2.5`,
    text for `007`). (A select list, not `SELECT * REPLACE`, whose binding grows with the square of the
    columns.)"""
    if not any(wholes.values()):
        return select

    def one(n: str, kind: str) -> str:
        if not kind:
            return q(n)
        x, trimmed = q(n), _trimmed(q(n))
        before, after = errors.late_value(n, kind)
        refusal = f"error({lit(before)} || {x} || {lit(after)})::{kind}"
        # the value as written first: trimming every value tripled the check's cost (3M values: +0.35 s of CPU, not
        # +0.11 s)
        return (
            f"CASE WHEN {_integer_text(x, kind)} THEN TRY_CAST({x} AS {kind}) WHEN {x} IS NULL THEN NULL "
            f"WHEN {_integer_text(trimmed, kind)} OR {trimmed} = '-0' THEN TRY_CAST({trimmed} AS {kind}) "
            f"ELSE {refusal} END AS {x}"
        )

    return f"SELECT {', '.join(one(n, k) for n, k in wholes.items())} FROM ({select})"


def late_wholes(cx: JobContext) -> ReadPlan | None:
    """The plan to read the job with again when a file of more columns of whole numbers than `WHOLES_AT_MOST`,
    which its read converted as DuckDB does (`cx.late_wholes`), holds past the sample a value that is not the text
    of its integer (what `wholes_back` refuses: `2.5`, `007`): every such column is read as a type that holds its
    value, as for the error `wholes_back` raises (`replanning.widened`; in a batch, in every file of it, as the
    table's column would be once that file loads); else None. One check binds for all the columns: their values
    unnested from a list per row."""
    if not cx.late_wholes:
        return None
    names = list(cx.late_wholes)
    kind = "HUGEINT" if "HUGEINT" in cx.late_wholes.values() else "BIGINT"
    trimmed = _trimmed("x")
    # a value that is no integer at all is not looked for: DuckDB's read refused it, and the column was read again
    fits = [_integer_text("x", kind), "x IS NULL", f"TRY_CAST(x AS {kind}) IS NULL"]
    fits += [_integer_text(trimmed, kind), f"{trimmed} = '-0'"]
    # each row's values as rows (a lambda over the list costs a third more)
    values = f"SELECT list_value({', '.join(q(n) for n in names)}) AS xs FROM ({cx.wholes_as_text})"
    each = f"SELECT unnest(xs) AS x, generate_subscripts(xs, 1) AS i FROM ({values})"
    misfits = f"SELECT i, any_value(x) FROM ({each}) WHERE NOT ({' OR '.join(fits)}) GROUP BY i"
    found = cx.con.execute(misfits).fetchall()
    if not found:
        return None
    plan = cx.plan
    for i, value in sorted(found):
        n = names[i - 1]
        plan = widened(plan, n, value, cx.late_wholes[n]) or plan
    return plan if plan != cx.plan else None


def converted_types(o: ReadOptions) -> dict[str, str]:
    """The declared types (`read.types`) the reader reads as text and `exactly` converts: DuckDB's CSV reader
    rounds a value into a declared type (`2.5` into BIGINT as 3, `1.234` into DECIMAL(10,2) as 1.23) and cuts one
    (`2024-01-03 10:30` into DATE as the date) without a word. Text is read as it is, and a date or timestamp in a
    declared format (`read.date_format`, `read.timestamp_format`) is read in it, strictly (the reader's own parse
    in a format takes the words `epoch` and `infinity` as dates). With `bad_rows: quarantine` a row with a value
    that does not fit is set aside instead (`reading.exactly`)."""
    if o.all_strings:
        return {}
    return {name: t for name, declared in o.types.items() if (t := sql_type(declared)) != "VARCHAR"}


def dialect_args(o: ReadOptions) -> list[str]:
    """The read_csv arguments of a declared dialect: delimiter, quote, escape, decimal separator (the sniffer
    detects numbers written `2,5` only when told), the longest line."""
    args: list[str] = []
    if o.delimiter is not None:
        args.append(f"delim = {lit(o.delimiter)}")
    if o.quote is not None:
        args.append(f"quote = {lit(o.quote)}")
    if o.escape is not None:
        args.append(f"escape = {lit(o.escape)}")
    if o.decimal_separator != ".":
        args.append(f"decimal_separator = {lit(o.decimal_separator)}")
    if o.max_line_size:
        args.append(f"max_line_size = {int(o.max_line_size)}")
    return args


def _csv_args(cx: JobContext, o: ReadOptions, forced: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The read_csv arguments a workflow's read options set (and `forced`: a dialect landfall checked)."""
    args: list[str] = [*forced, *dialect_args(o)]
    if cx.plan.quoted and o.quote is None:
        args += ["quote = '\"'", "escape = '\"'"]
    if o.header is not None:
        args.append(f"header = {str(o.header).lower()}")
    if o.null_values is not None:
        args.append("nullstr = [" + ", ".join(lit(v) for v in o.null_values) + "]")
    types = _declared_types(cx, o)
    if types:
        args.append("types = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in types.items()) + "}")
    args.extend(common_args(cx.plan, o))
    if o.all_strings:
        args.append("all_varchar = true")
        args.append("allow_quoted_nulls = false")  # `""` is an empty string, not a missing value
    if o.skip_rows:
        args.append(f"skip = {int(o.skip_rows)}")
    if o.bad_rows == "quarantine":  # (ignore_errors also lets the sniffer see past ragged rows)
        args.append("ignore_errors = true")
        args.append(f"store_rejects = true, rejects_scan = {lit(REJECTS + '_scan')}, rejects_table = {lit(REJECTS)}")
    if cx.plan.whole_files:  # one reader a file: see `records.cut_short`
        args.append("parallel = false")
    return args


_DELIMITERS = (",", "\t", ";", "|")


def _records_start(head: bytes, skip_rows: int) -> tuple[list[str], int]:
    """The sample's lines from the first one after `skip_rows` that is not blank (up to 1,000), and how many lines
    come before it."""
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    if len(head) >= enc.SAMPLE:
        text = text[: text.rfind("\n") + 1]  # the last line may be cut short
    lines = [ln.removesuffix("\r") for ln in text.split("\n")[skip_rows:]]
    blank = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
    return lines[blank : blank + 1000], skip_rows + blank


def _consistent_delimiter(head: bytes, skip_rows: int = 0) -> tuple[str, int] | None:
    """The common delimiter that splits the first line (after `skip_rows` and blank lines) into more than one
    field and splits most of the sample's lines into as many, and the number of lines before that first line;
    or None. DuckDB's sniffer, shown a file whose rows do not all agree, may pick a delimiter that makes the
    header one column (`id,name`), or skip lines up to the odd one: landfall never accepts that when a common
    delimiter splits the lines consistently."""
    lines, start = _records_start(head, skip_rows)
    scores: dict[str, float] = {}
    for delim in _DELIMITERS:
        if not lines or delim not in lines[0]:  # it cannot split the first line: not this file's delimiter
            continue
        try:
            rows = [r for r in csv.reader(lines, delimiter=delim, quotechar='"') if r and any(f.strip() for f in r)]
        except csv.Error:
            continue
        if len(rows) < 2 or len(rows[0]) < 2:
            continue
        share = sum(1 for r in rows[1:] if len(r) == len(rows[0])) / (len(rows) - 1)
        if share >= 0.5:
            scores[delim] = share
    best = sorted(scores.items(), key=lambda kv: -kv[1])
    if not best or (len(best) > 1 and best[1][1] == best[0][1]):
        return None  # none, or two that split the lines equally well: DuckDB's sniffer decides
    return best[0][0], start


def _header_as_one_column(columns: list[str]) -> str | None:
    """The common delimiter that splits a file's only column name into several names, or None."""
    if len(columns) != 1:
        return None
    for delim in _DELIMITERS:
        fields = next(csv.reader([columns[0]], delimiter=delim, quotechar='"'), [])
        if sum(1 for f in fields if f.strip()) > 1:
            return delim
    return None
