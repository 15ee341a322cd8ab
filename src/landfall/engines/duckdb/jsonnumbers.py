"""Whole numbers beyond 64 bits in JSON. DuckDB's JSON reader detects a number too large for a 64-bit integer
(`123456789012345678901234567890`, an id or an amount in the smallest unit) as DOUBLE, which rounds it
(to 1.2345678901234568e+29), at the top of a record or inside an object, a list or a map's values. A column (or
field) whose every value is a whole number written without a fraction or an exponent, of at most 38 digits, is read as
`DECIMAL(38,0)` instead, which DuckDB's reader fills exactly (as landfall reads such numbers from CSV). Checked on
the type sample; a later one in a column of 64-bit integers breaks that type, and the file is read again with its
types detected on the whole file (`ReadPlan.sample_all`), checked whole. A column that also holds fractions stays
DOUBLE (as in CSV); one of whole numbers some of which have more digits than DECIMAL(38,0) holds is text, every
digit as written (as in CSV).

The other way round: DuckDB's detection takes a column of whole numbers of both signs (`1`, then `-1`) for
HUGEINT, the type that holds both UBIGINT (which it detects for the positive ones) and BIGINT, and a HUGEINT
would be stored as DECIMAL(38,0). A column (or field) whose values all fit 64 bits is read as BIGINT, as Spark
and pandas read it; past the sample, one that does not breaks that type, as above.

Numbers with a fraction or an exponent of more digits than a double holds (`1234567890.123456789`, an amount
exported from a `NUMERIC(38,18)` column): DuckDB's reader gives no text back for a number it reads as a double,
not even into a text column (`1234567890.1234567`). A JSON Lines file whose type sample holds one
(`digits_as_text`) is read from a copy where every number of that field (or list's items) is a string as written:
its column is text, every value as written, as a CSV column is (`read_csv.lost_in`). A JSON document holding one
(`document_loses_digits`) is read through Python's parser, written as such JSON Lines (`losing_fields`). Spark,
whose parser gives a number's text back as its double's, reads the same copies; and, as it takes a number beyond
a double's range (`1e400`) for an infinity, JSON Lines holding one are read from a copy where its field is text
(`digits_as_text(beyond_whole=True)`; a document's copy does that at once)."""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Callable
from typing import Any

import duckdb

from landfall import encoding as enc
from landfall.engines.duckdb.casts import loses_digits
from landfall.engines.duckdb.datewords import may_hold_long_numbers, sixteen_digits
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS, Leaf, _walk
from landfall.engines.duckdb.sql import q
from landfall.engines.duckdb.types import retyped
from landfall.jsontext import ITEM, Number, as_written, written

EXACT = "DECIMAL(38,0)"
_DOUBLE = frozenset({"double"})
_HUGEINT = frozenset({"hugeint"})
_WHOLE = "'-?[0-9]+'"  # a whole number's JSON text: no fraction, no exponent
_LONG = "'-?[0-9]{39,}'"  # one DECIMAL(38,0) does not hold


def whole_numbers(
    con: duckdb.DuckDBPyConnection, detected: dict[str, str], read: Callable[[dict[str, str]], str], limit: int | None
) -> dict[str, str]:
    """`detected` (column -> DuckDB type) with each DOUBLE leaf whose values in the first `limit` records of
    `read(columns)` (None: every record) are all whole numbers as DECIMAL(38,0), or as text where one of them has
    more digits than that holds; and each HUGEINT leaf whose values there all fit 64 bits as BIGINT: DuckDB's
    detection takes a column of whole numbers of both signs for HUGEINT (UBIGINT for the positive ones, BIGINT for
    the negative ones), which would be stored as DECIMAL(38,0). A later value beyond 64 bits breaks that type,
    and the file is read again with its types detected on the whole file, checked whole."""
    leaves: list[Leaf] = []
    as_json = {
        n: _walk(con.sqltype(t), q(n), n, leaves, lambda _p: True, _DOUBLE, "JSON")
        for n, t in detected.items()
        if "DOUBLE" in t
    }
    read_as = {**detected, **as_json}
    wide: list[Leaf] = []  # HUGEINT leaves, read as they are
    for n, t in read_as.items():
        if "HUGEINT" in t:
            _walk(con.sqltype(t), q(n), n, wide, lambda _p: False, _HUGEINT)
    if not leaves and not wide:
        return detected
    sample = f"SELECT * FROM ({read(read_as)})" + (f" LIMIT {limit}" if limit is not None else "")

    def not_of(form: str) -> Callable[[str], str]:
        return lambda e: f"({e} IS NOT NULL AND NOT regexp_full_match(CAST({e} AS VARCHAR), {form}))"

    def of(form: str) -> Callable[[str], str]:
        return lambda e: f"regexp_full_match(CAST({e} AS VARCHAR), {form})"

    def beyond_64_bits(e: str) -> str:
        return f"{e} NOT BETWEEN {-(2**63)} AND {2**63 - 1}"

    checks = [f"coalesce(bool_or({leaf.some(test)}), false)" for test in (not_of(_WHOLE), of(_LONG)) for leaf in leaves]
    checks += [f"coalesce(bool_or({leaf.some(lambda e: f'{e} IS NOT NULL')}), false)" for leaf in leaves]
    checks += [f"coalesce(bool_or({leaf.some(beyond_64_bits)}), false)" for leaf in wide]
    row = con.execute(f"SELECT {', '.join(checks)} FROM ({sample})").fetchone()
    n = len(leaves)
    # every value whole: DECIMAL(38,0), or text where one has more digits than it holds
    whole = [
        (leaf.path, lng)
        for leaf, frac, lng, some in zip(leaves, row[:n], row[n : 2 * n], row[2 * n : 3 * n], strict=True)
        if some and not frac
    ]
    exact = {path for path, lng in whole if not lng}
    text = {path for path, lng in whole if lng}
    narrow = {leaf.path for leaf, beyond in zip(wide, row[3 * n :], strict=True) if not beyond}
    if not exact and not text and not narrow:
        return detected
    out = dict(detected)
    for name in as_json:
        kind = _walk(con.sqltype(detected[name]), q(name), name, [], lambda p: p in exact, _DOUBLE, EXACT)
        out[name] = _walk(con.sqltype(kind), q(name), name, [], lambda p: p in text, _DOUBLE, "VARCHAR")
    for name, t in out.items():
        if "HUGEINT" in t:
            out[name] = _walk(con.sqltype(t), q(name), name, [], lambda p: p in narrow, _HUGEINT, "BIGINT")
    return out


def fitting_64_bits(con: duckdb.DuckDBPyConnection, select: str, columns: list[tuple[str, str]]) -> str:
    """`select` (a JSON read of `columns`, name -> DuckDB type, as DuckDB detected them on every record: not
    pinned) with each column whose HUGEINT leaves all hold values that fit 64 bits read with BIGINT leaves
    instead: DuckDB's detection takes whole numbers of both signs for HUGEINT (see `whole_numbers`, which does
    this leaf by leaf for a pinned read). One scan of the read, for the columns that hold such a leaf."""
    wide = {n: t for n, t in columns if "HUGEINT" in t}
    if not wide:
        return select
    narrow = {n: retyped(t, {"HUGEINT": "BIGINT"}) for n, t in wide.items()}
    checks = [f"coalesce(bool_and(TRY_CAST({q(n)} AS {narrow[n]}) IS NOT DISTINCT FROM {q(n)}), true)" for n in wide]
    found = con.execute(f"SELECT {', '.join(checks)} FROM ({select})").fetchone()
    fits = [n for n, ok in zip(wide, found, strict=True) if ok]
    if not fits:
        return select
    return f"SELECT * REPLACE ({', '.join(f'CAST({q(n)} AS {narrow[n]}) AS {q(n)}' for n in fits)}) FROM ({select})"


# a number of 16 digits or more (points counted) where JSON puts a value: after `:`, `[` or `,`, before `,`, `]`, `}`
_LONG_NUMBER = re.compile(rb"[:\[,]\s*(-?[0-9][0-9.]{15,}(?:[eE][-+]?[0-9]+)?)\s*(?=[,\]}])")


def digits_as_text(path: str, scratch: str, name: str, *, beyond_whole: bool = False) -> str:
    """`path` (a JSON Lines file as DuckDB reads it), or a copy of it named `name` in `scratch` where each field
    (a path of keys, `[]` for a list's items) holding a number of more digits than a double holds in the type
    sample holds every number as a string, as written (see the module's doc); with `beyond_whole`, also each field
    holding a number beyond a double's range anywhere in the file (Spark's parser takes it for an infinity and
    never gives its text back). The copy keeps every line where it is; a line that does not parse is kept as it
    is, for the reader to name. A file without 16 digits in a row in its sample's lines costs a look at its bytes;
    one with only numbers a double holds, a search of those lines."""
    lines = DETECTION_SAMPLE_ROWS + 1
    found: set[tuple[str, ...]] = set()
    if may_hold_long_numbers(path, lines):
        with enc._open(path) as fh:
            sample = list(itertools.islice(fh, lines))
        losing = _losing_numbers(b"".join(sample))
        for raw in sample if losing else ():
            if any(t in raw for t in losing):
                _fields_of(raw, _as_text, found)
    if beyond_whole:
        with enc._open(path) as fh:
            for raw in fh:
                if _MAYBE_BEYOND.search(raw):
                    _fields_of(raw, _beyond, found)
    if not found:
        return path
    fields = frozenset(found)
    os.makedirs(scratch, exist_ok=True)
    out = os.path.join(scratch, name)
    with enc._open(path) as fh, open(out, "wb") as dst:
        for raw in fh:
            try:
                record = as_written(raw.decode("utf-8"))
                line = written(record, fields).encode("utf-8") + b"\n" if isinstance(record, dict) else None
            except (ValueError, RecursionError):  # (half a surrogate pair: no UTF-8)
                line = None
            # blank, no JSON, no record: as it is, for the reader to name
            dst.write(line or (raw if raw.endswith(b"\n") else raw + b"\n"))
    return out


def document_loses_digits(path: str) -> bool:
    """Whether the first 8 MiB of a JSON document (its type sample, or as much of it as they hold) hold a number
    of more digits than a double holds, as `digits_as_text` looks at a JSON Lines file's sample: the document is
    then read through Python's parser (`ReadPlan.json_via_python`), every number as written and each field
    holding such a number in the sample as text (`losing_fields`). A look at the bytes when none has 16 digits."""
    with enc._open(path) as fh:
        head = fh.read(DOCUMENT_LOOK_BYTES)
    return bool(_losing_numbers(head))


DOCUMENT_LOOK_BYTES = 8 << 20


def losing_fields(records: list[Any], sampled: int) -> frozenset[tuple[str, ...]]:
    """The fields (paths of keys, `ITEM` for a list's items) of `records` (read by `as_written`) holding a number
    of more digits than a double holds in the first `sampled`, or one beyond a double's range in any (which
    Python's parser and Spark's take for an infinity)."""
    found: set[tuple[str, ...]] = set()
    for i, record in enumerate(records):
        _fields_holding(record, (), _as_text if i < sampled else _beyond, found)
    return frozenset(found)


# where a number beyond a double's range may be: an exponent of three digits or more, 309 digits in a row
_MAYBE_BEYOND = re.compile(rb"[eE]\+?[0-9]{3}|[0-9]{309}")


def _beyond(number: str) -> bool:
    """Whether `number` is beyond a double's range (a double takes it for an infinity; an infinity written as a
    word is a double's)."""
    return number.lstrip("-")[:1].isdigit() and math.isinf(float(number))


def _as_text(number: str) -> bool:
    """Whether a number in the type sample makes its field text: it loses digits, or is beyond a double's range."""
    return _loses(number) or _beyond(number)


def _fields_of(raw: bytes, test: Callable[[str], bool], into: set[tuple[str, ...]]) -> None:
    """Add to `into` the fields of the JSON line `raw` holding a number `test` is true of."""
    try:
        _fields_holding(as_written(raw.decode("utf-8")), (), test, into)
    except (ValueError, RecursionError):
        pass  # no record: the reader names it


def _losing_numbers(text: bytes) -> set[bytes]:
    """The numbers JSON `text` holds, where JSON puts a value, that lose digits as a double."""
    if not sixteen_digits(text):
        return set()
    return {t for t in set(_LONG_NUMBER.findall(text)) if _loses(t.decode("ascii"))}


def _loses(number: str) -> bool:
    """Whether `number` loses digits as a double (`casts.loses_digits`); a whole number never: it is read exactly
    (`whole_numbers`)."""
    return ("." in number or "e" in number or "E" in number) and loses_digits(number)


def _fields_holding(
    value: Any, field: tuple[str, ...], test: Callable[[str], bool], into: set[tuple[str, ...]]
) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _fields_holding(v, (*field, k), test, into)
    elif isinstance(value, list):
        for v in value:
            _fields_holding(v, (*field, ITEM), test, into)
    elif isinstance(value, Number) and test(value):
        into.add(field)
