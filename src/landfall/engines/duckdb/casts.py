"""Casts that lose nothing: a value of one type becomes another only when nothing of it is lost; otherwise the file
fails naming the value (or, for the evolution policies' checks, the value is NULL: rescued or quarantined).

DuckDB's own casts round and cut: `2.5` (a double) to BIGINT is 2, text `2024-01-03 10:30:00` to DATE is the date
alone, text `2024-01-03 10:00:00+05:00` to TIMESTAMP drops the offset (10:00, the instant moved five hours),
`2024-01-03 10:00:00 x` is read as a timestamp, `1.234` to DECIMAL(10,2) is 1.23. Every conversion landfall makes
on its own (a declared `read.types`, `schema.hints`, a table's types applied to a file's columns, the `rescue` and
`discard_row` policies' checks) goes through `cast_sql`, which allows a value only when:

- text to an integer: a whole number (`+7`, ` 7 `), in range;
- text to a decimal: a number with no more digits after the point than the type keeps (zeros aside), in range;
- text to a double: a number in range, of no more digits than the double it reads as gives back (`lost_digits`;
  a declared `double` takes the nearest: `cast_sql`'s `digits`);
- text to a date: a date, or a timestamp at midnight;
- text to a timestamp: a timestamp with no offset or zone other than UTC (`Z`, `+00:00`), nothing after it, and
  no more than six digits of a fraction (a timestamp holds microseconds);
- text to a date, time or timestamp: never a word (DuckDB reads `epoch` as 1970-01-01, `infinity` and `inf` as
  an infinite date);
- a number, date or timestamp to another type: a value that converts back to itself (`3.0` to BIGINT, not `2.5`;
  a timestamp at midnight to DATE);
- JSON (a column of mixed values) by the kind of each value: a string as text, a number as a number;
- anything else (text to FLOAT, BOOLEAN, UUID, ...): what DuckDB converts at all.

Widening (`int32` to `int64`, a date to a timestamp) and anything to text are plain casts. The `cast:` step is
the user's own conversion and keeps SQL's meaning (`cast_sql(..., exact=False)`), but for text or a fraction to
an integer, which is never rounded (DuckDB reads `'2.5'` as 3 and rounds the double 1.5 to 2, where Spark's cast
makes it 1).
"""

from __future__ import annotations

import decimal
import math
import re
from typing import TYPE_CHECKING

from landfall.engines.duckdb.jsondates import is_date
from landfall.engines.duckdb.sql import lit, q
from landfall.engines.duckdb.types import arrow_type, duck_type
from landfall.schema import JSON, field_named, widens_to
from landfall.types import parse_type, type_name

if TYPE_CHECKING:
    import pyarrow as pa

INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_TEXT = "VARCHAR"
_ROUNDED = {_TEXT, "DOUBLE", "FLOAT", "DECIMAL"}  # what an engine's cast rounds into an integer (each its own way)
_Q3 = "'" * 3  # a quote inside a SQL string literal, then the literal's own quote


def _base(duck: str) -> str:
    return duck.split("(")[0].strip()


def _text_shape(x: str, target: str, digits: bool = True) -> str | None:
    """SQL true when the text `x`, if DuckDB's cast reads it as `target` at all, reads whole; None when it always
    does. Cheap looks at the text (DuckDB's casts to numbers and dates take spaces around a value); the full
    checks run only for values whose look says they might lose something. A date or time is written with digits:
    DuckDB's casts also read the words `epoch`, `infinity`, `inf` (and `-infinity`, `-inf`) as ones."""
    shape = _shape(x, target, digits)
    if not is_date(target):
        return shape
    return _digits(x) if shape is None else f"({_digits(x)} AND {shape})"


def beyond_range(x: str, target: str = "DOUBLE") -> str:
    """SQL true for text `x` that is a number beyond the range of `target` (DOUBLE or FLOAT): DuckDB's casts and
    its CSV reader take `1e400` for an infinity without a word. An infinity written as a word (`inf`, `-Infinity`)
    holds no digit."""
    return f"(isinf(TRY_CAST({x} AS {target})) AND {_digits(x)})"


def lost_digits(x: str) -> str:
    """SQL true for text `x` that is a number of more digits than the double it reads as gives back: `x` is not a
    nearest number of as many significant digits to that double's exact value (`1234567890.123456789` reads as
    the double 1234567890.1234567165..., its last digits gone; where two are nearest, a tie, either is). A number
    of at most 15 digits always reads back whole, and so does one a program wrote from a double, at any number of
    digits (`0.30000000000000004`, `%.17g`'s `0.10000000000000001`, numpy's `1.000000000000000056e-01`): what
    this finds is a value more exact than a double (an amount exported from a decimal column, a measurement of
    many digits). The same rule in Python (`loses_digits`) and on Spark (`spark.casts.lost_digits`).

    Cheap looks first, each only for the values the one before left (a CASE: DuckDB evaluates every operand of an
    AND): few characters; the double's shortest text (which `x` is when Python, pandas or DuckDB wrote it); the
    double printed as `x` is, in the exponent form C's `%e` and numpy write (`2.379646270918913675e-01`) or in
    the fixed form of `%f` and `%.17g` (`0.10000000000000001`), each with as many digits as `x` has, ties to even
    (`printf`). Only the rest, the numbers a double does not hold and a tie printed the other way, are looked at
    digit by digit, in the double's next 24 digits (`printf` of all 767 costs 40 us a value): only a run of 24
    nines or zeros there, which no double has been seen to hold, would need more."""
    t = f"trim({x})"
    written = f"ltrim(regexp_replace(regexp_replace({t}, '[eE].*', ''), '[^0-9]', '', 'g'), '0')"
    n = f"length({written})"
    double = f"TRY_CAST({t} AS DOUBLE)"
    exact = f"regexp_replace(regexp_replace(printf('%.*e', {n} + 24, {double}), 'e.*', ''), '[^0-9]', '', 'g')"
    head, following, rest = f"left({exact}, {n})", f"substr({exact}, {n} + 1, 1)", f"substr({exact}, {n} + 2)"
    up = f"CASE WHEN {n} <= 38 THEN CAST(TRY_CAST({head} AS HUGEINT) + 1 AS VARCHAR) ELSE {head} END"
    down_differs, up_differs = (f"rtrim({d}, '0') <> rtrim({written}, '0')" for d in (head, up))
    # the exponent form's digits after the point: the mantissa's characters but its sign, first digit and point
    e_digits = f"strlen(split_part({t}, 'e', 1)) - 2 - CAST(starts_with({t}, '-') AS INTEGER)"
    return (
        f"(CASE WHEN strlen({x}) <= 15 THEN false WHEN CAST(TRY_CAST({x} AS DOUBLE) AS VARCHAR) = {x} THEN false"
        f" WHEN printf('%.*e', greatest({e_digits}, 0), {double}) = {t} THEN false"
        f" WHEN printf('%.*f', strlen(split_part({t}, '.', 2)), {double}) = {t} THEN false"
        f" WHEN {n} <= 15 OR isinf({double}) THEN false"
        f" WHEN {following} < '5' THEN {down_differs}"
        f" WHEN {following} > '5' OR rtrim({rest}, '0') <> '' THEN {up_differs}"
        f" ELSE {down_differs} AND {up_differs} END)"
    )


def loses_digits(value: str) -> bool:
    """Whether the number `value` has more digits than the double it reads as gives back: it is not a nearest
    number of as many significant digits to the double's exact value (a tie: either): `lost_digits` in Python,
    for a value in hand (a late value's wider type, an error's words)."""
    text = value.strip()
    written = re.sub("[^0-9]", "", re.split("[eE]", text)[0]).lstrip("0")
    n = len(written)
    if n <= 15 or not math.isfinite(number := float(text)) or repr(number) == text:
        return False  # (the double's shortest text, which Python, pandas and DuckDB write, keeps its digits)
    exact = "".join(map(str, decimal.Decimal(number).as_tuple().digits)).lstrip("0")
    head, following, rest = exact[:n], exact[n : n + 1] or "0", exact[n + 1 :]
    up = str(int(head) + 1) if n <= 38 else head
    down_differs, up_differs = (d.rstrip("0") != written.rstrip("0") for d in (head, up))
    if following < "5":
        return down_differs
    if following > "5" or rest.rstrip("0"):
        return up_differs
    return down_differs and up_differs


def _digits(x: str) -> str:
    """SQL true when the text `x` holds a digit: led by one, else one further on (cheap first)."""
    return f"({x} < ':' AND ({x} >= '0' OR {x} GLOB '*[0-9]*'))"


def _shape(x: str, target: str, digits: bool = True) -> str | None:
    base = _base(target)
    # DuckDB's casts to numbers also read `1_000` as 1000, and to integers `0x1F` as 31 and `0b101` as 5: written
    # so, a value is no number to landfall (nor to its CSV detection, nor to Spark)
    plain = f"strpos({x}, '_') = 0"
    if base in INT_TYPES:  # no fraction, no exponent (the cast rounds `2.5` to 3)
        return "(" + " AND ".join([*(f"{x} NOT LIKE '%{c}%'" for c in ".eExXbB"), plain]) + ")"
    if m := _DECIMAL.fullmatch(target):  # no more digits after the point than the scale, zeros aside
        scale = int(m.group(2))
        more = "%." + "_" * (scale + 1) + "%"
        digits = f"length(rtrim(rtrim({x}), '0')) - strpos({x}, '.') <= {scale}"
        return f"({x} NOT LIKE '%e%' AND {x} NOT LIKE '%E%' AND {plain} AND ({x} NOT LIKE '{more}' OR {digits}))"
    if base in ("DOUBLE", "FLOAT"):  # and no number beyond the type's range (the cast makes it an infinity), nor
        # one of more digits than a double holds (`1234567890.123456789`)
        lost = f" AND NOT coalesce({lost_digits(x)}, false)" if base == "DOUBLE" and digits else ""
        return f"({plain} AND NOT coalesce({beyond_range(x, base)}, false){lost})"
    if target == "DATE":  # ten characters at most (no time), else a timestamp at midnight
        t = f"trim({x})"
        midnight = f"{_stamp_whole(t)} AND TRY_CAST({t} AS TIMESTAMP) = CAST(TRY_CAST({t} AS DATE) AS TIMESTAMP)"
        return f"(length({x}) <= 10 OR coalesce({midnight}, false))"
    if base in ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS") and target != "TIMESTAMP WITH TIME ZONE":
        if target == "TIMESTAMP":
            return _stamp_whole(x)
        return f"({_stamp_whole(x)} AND CAST(TRY_CAST({x} AS {target}) AS TIMESTAMP) = TRY_CAST({x} AS TIMESTAMP))"
    return None


def _stamp_whole(x: str) -> str:
    """Text that DuckDB's timestamp cast reads whole: after the date nothing but the time (no space, `+` or `-`:
    an offset, a zone or other words, which the cast drops); else, read as an instant (in UTC, the session's
    zone), the same timestamp (an offset of zero)."""
    plain = f"({x} NOT LIKE '%+%' AND {x} NOT LIKE '___________%-%' AND {x} NOT LIKE '___________% %')"
    instant = f"TRY_CAST({x} AS TIMESTAMPTZ) = CAST(TRY_CAST({x} AS TIMESTAMP) AS TIMESTAMPTZ)"
    micro = f"NOT regexp_matches({x}, '[.][0-9]{{7}}')"  # a timestamp holds microseconds: the cast cuts more digits
    return f"(({plain} OR coalesce({instant}, false)) AND {micro})"


def _widens(source: str, target: str) -> bool:
    try:
        return widens_to(arrow_type(source), arrow_type(target))
    except Exception:  # a type with no Arrow name: judged value by value
        return False


def _exact(expr: str, source: str, target: str, digits: bool = True) -> str | None:
    """SQL for `expr` (of `source`) as `target`, NULL where it does not fit whole; None when every value fits (the
    same type, a widening, anything to text: a plain cast). `digits`: see `cast_sql`."""
    if source == target or target == _TEXT or _widens(source, target):
        return None
    cast = f"TRY_CAST({expr} AS {target})"
    if source == _TEXT:
        shape = _text_shape(expr, target, digits)
        return cast if shape is None else f"CASE WHEN {shape} THEN {cast} END"
    if source == "JSON":  # by each value's kind: a string as its text (not `"7"`), a number as a number
        text = f"({expr} ->> '$')"
        shape = _text_shape(text, target, digits)
        as_text = f"TRY_CAST({text} AS {target})"
        kinds = [
            ("NULL", "NULL"),
            ("VARCHAR", as_text if shape is None else f"CASE WHEN {shape} THEN {as_text} END"),
            ("DOUBLE", _back(f"TRY_CAST({expr} AS DOUBLE)", "DOUBLE", target)),
            ("BIGINT", _back(f"TRY_CAST({expr} AS HUGEINT)", "HUGEINT", target)),
            ("UBIGINT", _back(f"TRY_CAST({expr} AS HUGEINT)", "HUGEINT", target)),
            ("BOOLEAN", _back(f"TRY_CAST({expr} AS BOOLEAN)", "BOOLEAN", target)),
        ]
        return f"(CASE json_type({expr}) {' '.join(f'WHEN {k!r} THEN {v}' for k, v in kinds)} ELSE {cast} END)"
    return _back(expr, source, target)


def _back(expr: str, source: str, target: str) -> str:
    """`expr` (of `source`) as `target` where it converts back to itself (a widening: always)."""
    cast = f"TRY_CAST({expr} AS {target})"
    return cast if _widens(source, target) else f"CASE WHEN TRY_CAST({cast} AS {source}) = {expr} THEN {cast} END"


def cast_sql(
    expr: str,
    source: str | None,
    target: str,
    *,
    try_: bool = False,
    exact: bool = True,
    name: str | None = None,
    read: str | None = None,
    fmt: str | None = None,
    digits: bool = True,
) -> str:
    """`expr` (of DuckDB type `source`) as `target`, losing nothing (see the module's docstring): a value that does
    not fit fails the query with DuckDB's words for a value it could not convert (`Could not convert string 'x' to
    BIGINT`, which names the file's line), or with `try_` is NULL. `exact=False` (the `cast:` step) casts as SQL
    does, but for a word to a date (`epoch` is no 1970-01-01) and for text or a fraction to an integer (DuckDB
    rounds 2.5 to 2, Spark truncates 1.5 to 1: the same config would load other numbers on each engine). `name`,
    the column's, is named in the error (`when casting from source column n`, as DuckDB's own cast errors name
    it), for `diagnose` to find a JSON record's line by it.
    `read`: the value as the conversion reads it, when that is not `expr` as written (a decimal comma made a
    point); NULL where it reads nothing, which fails the value as written. `fmt`: text to a date or timestamp is
    read in this format (`read.date_format`, `read.timestamp_format`), strictly, and never from a word.
    `digits=False`: a number of more digits than a double holds is the nearest double all the same (a type the user
    declared, `read.types` or `schema.hints`: a double is what was asked for); else it does not fit a double
    (`lost_digits`), which a table's type applied to a file's column never rounds."""
    if source == "JSON" and target == _TEXT:  # a JSON value as text is its text (`x`; DuckDB's cast keeps `"x"`)
        return f"json_extract_string({expr}, '$')"
    if source == _TEXT and target == "JSON" and not try_:  # text that is no JSON fails naming its value and line
        refused = refusal(expr, source, target, name)  # (DuckDB's own: `Malformed JSON at byte 0`, no line)
        return f"CASE WHEN {expr} IS NULL OR json_valid({expr}) THEN CAST({expr} AS JSON) ELSE {refused} END"
    if target == _TEXT and is_nested(source):  # a struct, map or list as text is its JSON (`{"t":"x"}`), as on
        return f"CAST(to_json({expr}) AS VARCHAR)"  # Spark, not DuckDB's own rendering (`{'t': x}`)
    value = None
    x = read or expr
    if source == _TEXT and is_date(target) and (fmt is not None or not exact):
        # in the declared format, or as SQL casts (the `cast:` step); either way a word is no date (nor is it on Spark)
        as_date = f"CAST(try_strptime({x}, {lit(fmt)}) AS {target})" if fmt else f"TRY_CAST({x} AS {target})"
        value = f"CASE WHEN {_digits(x)} THEN {as_date} END"
    elif source is not None and (exact or (_base(target) in INT_TYPES and _base(source) in _ROUNDED)):
        value = _exact(x, source, target, digits)
    if value is None:
        return f"{'TRY_CAST' if try_ else 'CAST'}({expr} AS {target})"
    if try_:
        return value
    return f"coalesce({value}, CASE WHEN {expr} IS NULL THEN NULL ELSE {refusal(expr, source, target, name)} END)"


def refusal(expr: str, source: str | None, target: str, name: str | None) -> str:
    """SQL that fails the query with DuckDB's words for a value `expr` (of `source`) it could not convert to
    `target`, naming the column `name` as DuckDB's own cast errors do (for `diagnose` to find the line)."""
    column = f" when casting from source column {name.replace(chr(39), chr(39) * 2)}" if name else ""
    return f"error('Could not convert string {_Q3} || {shown(expr, source)} || {_Q3} to {target}{column}')::{target}"


def shown(expr: str, source: str | None) -> str:
    """SQL for the value of `expr` (of DuckDB type `source`) as a message names it: as text; a JSON string as its
    text (`x`, not `"x"`), as the file's line holds it."""
    if source == "JSON":
        return f"(CASE json_type({expr}) WHEN 'VARCHAR' THEN {expr} ->> '$' ELSE CAST({expr} AS VARCHAR) END)"
    return expr if source == _TEXT else f"CAST({expr} AS VARCHAR)"


def is_nested(duck: str | None) -> bool:
    """Whether a DuckDB type is a struct, a map or a list (or array)."""
    return duck is not None and (duck.startswith(("STRUCT(", "MAP(")) or duck.endswith("]"))


def conformed(expr: str, have: str, want: str, name: str | None = None) -> str:
    """SQL of `expr` (Arrow type `have`: nested, or JSON) as `want`, a type `schema.align` found for it, at any
    depth: structs are built again field by field under `want`'s names (matched ignoring case; NULL for a field
    `have` lacks; DuckDB's own cast keeps `have`'s spelling), a map into a struct by key (a key with no field fails,
    naming column `name`), lists item by item, and each value is cast as a column's is (`cast_sql`: a JSON value
    into text is its text, `x`, `5`, `[1]`, where DuckDB's cast keeps a JSON string's quotes, `"x"`)."""
    return _conformed(expr, parse_type(have), parse_type(want), 0, name)


def _unknown_keys(keys: str, want: pa.DataType, name: str | None) -> tuple[str, str]:
    """The struct `want`'s field names as an SQL list, and SQL that fails the query naming the first of `keys` (an
    SQL list of an object's keys) that are none of them, and the column `name`."""
    known = "[" + ", ".join(lit(f.name) for f in want) + "]"
    others = f"list_filter({keys}, lambda __lf_k: NOT list_contains({known}, __lf_k))"
    fields_named = ", ".join(f.name for f in want).replace(chr(39), chr(39) * 2)
    refused = (  # the first keys, as a message should be short
        f"error('a value {_of(name)}holds key `' || array_to_string({others}[:3], '`, `') || '`' || CASE WHEN "
        f"len({others}) > 3 THEN ' (and ' || (len({others}) - 3) || ' more)' ELSE '' END || ', which the "
        f"table''s struct has no field for (fields: {fields_named})')"
    )
    return known, refused


def _from_json(expr: str, want: pa.DataType, depth: int, name: str | None) -> str:
    """A JSON value (a column of values of several kinds) as the struct, map or list `want`, exactly: an object
    as a struct field by field (a key with no field fails, as a map's does) or as a map key by key, an array as a
    list item by item, each value converted as a column's is; JSON null is NULL, and any other value fails naming
    it and the column. (DuckDB's own cast takes `[1,2]` or `"s"` as a struct of NULLs, and drops a key the struct
    has no field for.)"""
    import pyarrow as pa

    json = parse_type(JSON)
    target = duck_type(type_name(want))
    kind = "ARRAY"
    if pa.types.is_struct(want):
        kind = "OBJECT"
        fields = ", ".join(
            f"{q(f.name)} := " + _conformed(f"json_extract({expr}, {lit(_pointer(f.name))})", json, f.type, depth, name)
            for f in want
        )
        known, unknown = _unknown_keys(f"json_keys({expr})", want, name)
        value = f"CASE WHEN list_has_all({known}, json_keys({expr})) THEN struct_pack({fields}) ELSE {unknown} END"
    elif pa.types.is_map(want):
        kind, k = "OBJECT", f"__lf_k{depth}"
        path = f"'/' || replace(replace({k}, '~', '~0'), '/', '~1')"
        item = _conformed(f"json_extract({expr}, {path})", json, want.item_type, depth + 1, name)
        value = f"map_from_entries(list_transform(json_keys({expr}), lambda {k}: {{'key': {k}, 'value': {item}}}))"
    else:
        item = f"__lf_item{depth}"
        each = _conformed(item, json, want.value_type, depth + 1, name)
        value = f"list_transform(CAST({expr} AS JSON[]), lambda {item}: {each})"
    return (
        f"CASE WHEN {expr} IS NULL OR json_type({expr}) = 'NULL' THEN NULL WHEN json_type({expr}) = '{kind}' "
        f"THEN {value} ELSE {refusal(expr, 'JSON', target, name)} END"
    )


def _pointer(key: str) -> str:
    """The JSON Pointer of an object's key (RFC 6901: `~` and `/` escaped)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _of(name: str | None) -> str:
    """`of column `name` ` as an SQL string literal's text, or nothing."""
    return f"of column `{name.replace(chr(39), chr(39) * 2)}` " if name else ""


def _conformed(expr: str, have: pa.DataType, want: pa.DataType, depth: int, name: str | None = None) -> str:
    import pyarrow as pa

    if have == want:
        return expr
    if pa.types.is_struct(have) and pa.types.is_struct(want):
        ours = {f.name: f.type for f in have}
        mine = {f.name: field_named(ours, f.name) for f in want}  # by name, as SQL names are: ignoring case
        fields = ", ".join(
            f"{q(f.name)} := "
            + (
                _conformed(f"struct_extract({expr}, {lit(m)})", ours[m], f.type, depth, name)
                if (m := mine[f.name]) is not None
                else f"NULL::{duck_type(type_name(f.type))}"
            )
            for f in want
        )
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE struct_pack({fields}) END"
    if type_name(have) == JSON and pa.types.is_nested(want):
        return _from_json(expr, want, depth, name)
    if pa.types.is_map(have) and pa.types.is_struct(want):  # by key; a key with no field fails the query
        fields = ", ".join(
            f"{q(f.name)} := "
            + _conformed(f"map_extract_value({expr}, {lit(f.name)})", have.item_type, f.type, depth, name)
            for f in want
        )
        known, refused = _unknown_keys(f"map_keys({expr})", want, name)
        return (
            f"CASE WHEN {expr} IS NULL THEN NULL WHEN list_has_all({known}, map_keys({expr})) "
            f"THEN struct_pack({fields}) ELSE {refused} END"
        )
    if pa.types.is_struct(have) and pa.types.is_map(want):  # field by field as keys; a NULL field is no key
        entries = ", ".join(
            f"{{'key': {lit(f.name)}, 'value': "
            + _conformed(f"struct_extract({expr}, {lit(f.name)})", f.type, want.item_type, depth, name)
            + "}"
            for f in have
        )
        some = f"list_filter([{entries}], lambda __lf_e: __lf_e.value IS NOT NULL)"
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE map_from_entries({some}) END"
    if pa.types.is_map(have) and pa.types.is_map(want):
        e = f"__lf_e{depth}"
        value = _conformed(f"{e}.value", have.item_type, want.item_type, depth + 1, name)
        return (
            f"map_from_entries(list_transform(map_entries({expr}), lambda {e}: {{'key': {e}.key, 'value': {value}}}))"
        )
    if pa.types.is_list(have) and pa.types.is_list(want):
        item = f"__lf_item{depth}"
        each = _conformed(item, have.value_type, want.value_type, depth + 1, name)
        return f"list_transform({expr}, lambda {item}: {each})"
    if type_name(want) == JSON:  # a value as JSON (text `b` is the JSON string "b"), not text parsed as JSON
        return f"to_json({expr})"
    return cast_sql(expr, duck_type(type_name(have)), duck_type(type_name(want)), name=name)
