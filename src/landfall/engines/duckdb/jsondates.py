"""JSON strings DuckDB's reader takes for dates that are not dates: its JSON type detection reads a string column
as DATE, TIME or TIMESTAMP when every sampled value casts to one, and DuckDB's casts take words as dates
(`infinity`, `-infinity`, `epoch`: 9999-12-31, 0001-01-01, 1970-01-01). A value with no digit is not a written
date: a column (or a field of a nested column) holding one stays text, as a column of any other non-date string
does."""

from __future__ import annotations

import re
from collections.abc import Callable

import duckdb

from landfall.engines.duckdb.sql import lit, q

#: DuckDB type ids read from strings that a word can be cast to
DATE_IDS = frozenset(
    ("date", "time", "time with time zone", "timestamp", "timestamp with time zone", "timestamp_s", "timestamp_ms")
    + ("timestamp_ns",)
)

DETECTION_SAMPLE_ROWS = 20_480  # rows (records) per file DuckDB's readers detect types on (`sample_size`)

Leaf = tuple[str, str]  # (a path id, an SQL expression over the text-typed column that is true for a word)


def _walk(t: duckdb.typing.DuckDBPyType, expr: str, path: str, leaves: list[Leaf], text: Callable[[str], bool]) -> str:
    """The type `t` with its date leaves as VARCHAR where `text(path)` says so (every one while collecting), and
    each date leaf's check appended to `leaves` (`expr` reads the value at `path` from the VARCHAR-typed column)."""
    kind = t.id
    if kind in DATE_IDS:
        leaves.append((path, is_word(expr)))
        return "VARCHAR" if text(path) else str(t)
    if kind == "struct":
        fields = []
        for name, child in t.children:
            inner = _walk(child, f"struct_extract({expr}, {lit(name)})", f"{path}.{name}", leaves, text)
            fields.append(f"{q(name)} {inner}")
        return f"STRUCT({', '.join(fields)})"
    if kind == "list":
        ((_, child),) = t.children
        var = f"x{path.count('.') + path.count('[')}"
        found: list[Leaf] = []
        inner = _walk(child, var, f"{path}[]", found, text)
        leaves.extend(
            (p, f"coalesce(list_bool_or(list_transform({expr}, lambda {var}: {e})), false)") for p, e in found
        )
        return f"{inner}[]"
    return str(t)  # maps and the rest: as detected (the JSON reader detects no dates inside them)


def words_as_text(
    con: duckdb.DuckDBPyConnection, detected: dict[str, str], read: Callable[[dict[str, str]], str], limit: int
) -> dict[str, str]:
    """`detected` (column -> DuckDB type) with the date leaves that hold a word anywhere in the files made
    VARCHAR. `read(columns)` is the SELECT over the files with those column types. One extra scan of the first
    `limit` records (the reader's type-detection sample), only when some column has a date leaf: a word past
    the sample is a late value, as for any other type."""
    everything = lambda _path: True  # noqa: E731
    as_text: dict[str, str] = {}
    checks: list[tuple[str, Leaf]] = []
    for name, kind in detected.items():
        if not any(d in kind.lower() for d in ("date", "time")):
            continue
        leaves: list[Leaf] = []
        as_text[name] = _walk(con.sqltype(kind), q(name), name, leaves, everything)
        checks.extend((name, leaf) for leaf in leaves)
    if not checks:
        return detected
    columns = {**detected, **as_text}
    select = ", ".join(f"coalesce(bool_or({expr}), false)" for _, (_, expr) in checks)
    found = con.execute(f"SELECT {select} FROM (SELECT * FROM ({read(columns)}) LIMIT {limit})").fetchone()
    words = {path for (_, (path, _)), hit in zip(checks, found, strict=True) if hit}
    if not words:
        return detected
    out = dict(detected)
    for name in {n for n, (p, _) in checks if p in words}:
        out[name] = _walk(con.sqltype(detected[name]), q(name), name, [], lambda p: p in words)
    return out


def columns_arg(columns: dict[str, str]) -> str:
    """The `columns` argument of `read_json`: column -> DuckDB type."""
    return "columns = {" + ", ".join(f"{lit(k)}: {lit(v)}" for k, v in columns.items()) + "}"


def is_word(expr: str) -> str:
    """True for a text value with no digit (a word, not a written date)."""
    return f"({expr} IS NOT NULL AND NOT regexp_matches({expr}, '[0-9]'))"


def is_date(kind: str) -> bool:
    """A DuckDB type a date cast makes (DATE, TIME, TIMESTAMP and its kinds)."""
    return kind.split("(")[0].strip().lower() in DATE_IDS


_RENAMED = re.compile(r"(.+)_(\d+)")


def case_renamed(names: list[str]) -> list[str]:
    """The column names DuckDB's JSON reader made up for keys that differ from another only in case (`Name` and
    `name` become columns `Name` and `name_1`: its names are case-insensitive). Reading with such a name given
    finds no key by it."""
    lowered = {n.lower() for n in names}
    return [n for n in names if (m := _RENAMED.fullmatch(n)) and m[1].lower() in lowered]
