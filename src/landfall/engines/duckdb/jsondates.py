"""JSON dates and timestamps read as they are written. DuckDB's JSON type detection reads a string column as DATE,
TIME or TIMESTAMP when every sampled value reads as one; but its casts take words as dates (`infinity`,
`-infinity`, `epoch`: 9999-12-31, 0001-01-01, 1970-01-01), and, once the types are given (landfall pins what was
detected), it casts later values loosely (`2024-01-04 10:30` as the date 2024-01-04). `pin_dates` pins the types
with the formats their values are read in strictly, and a leaf holding a word as text."""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

import duckdb

from landfall.engines.duckdb.sql import lit, q
from landfall.engines.duckdb.stamps import TIME_FORMS, looks_like_stamps, more_than_a_time, stamp_forms

#: DuckDB type ids read from strings that a word can be cast to
DATE_IDS = frozenset(
    ("date", "time", "time with time zone", "timestamp", "timestamp with time zone", "timestamp_s", "timestamp_ms")
    + ("timestamp_ns",)
)

#: DuckDB type ids of numbers a cast from `1e400` makes an infinity of
DOUBLE_IDS = frozenset(("double", "float"))

DETECTION_SAMPLE_ROWS = 20_480  # rows (records) per file DuckDB's readers detect types on (`sample_size`)
#: the records DuckDB's own detection looks at in a read that refuses late keys (`jsonkeys.refusing_read`): each
#: bind of such a read (its view, each step's view, the COPY) detects again, which on the usual sample cost 140 ms
#: a bind here, on 256 records about 10. The columns it finds must be those pinned from the whole sample.
REFUSING_SAMPLE_ROWS = 256


class Leaf(NamedTuple):
    """A date leaf of a column (a column, a field of a nested column, the items of a list): its path, its DuckDB
    type id, and `some(pred)`, the SQL that is true when some value at the leaf satisfies `pred` (SQL over an
    expression of the leaf's value as text)."""

    path: str
    kind: str
    some: Callable[[Callable[[str], str]], str]


def _walk(
    t: duckdb.typing.DuckDBPyType,
    expr: str,
    path: str,
    leaves: list[Leaf],
    text: Callable[[str], bool],
    kinds: frozenset[str] | set[str] = DATE_IDS,
    into: str = "VARCHAR",
) -> str:
    """The type `t` with its date leaves (or leaves of other `kinds`) as VARCHAR (or `into`) where `text(path)`
    says so (every one while collecting), and each such leaf appended to `leaves` (`expr` reads the value at
    `path` from the column so typed)."""
    kind = t.id
    if kind in kinds:
        leaves.append(Leaf(path, kind, lambda pred: pred(expr)))
        return into if text(path) else str(t)
    if kind == "struct":
        fields = []
        for name, child in t.children:
            inner = _walk(child, f"struct_extract({expr}, {lit(name)})", f"{path}.{name}", leaves, text, kinds, into)
            fields.append(f"{q(name)} {inner}")
        return f"STRUCT({', '.join(fields)})"
    if kind in ("list", "map"):  # a list's items, a map's values (`MAP {'a': 1}`: the JSON reader's many keys)
        child, items = (t.children[0][1], expr) if kind == "list" else (t.children[1][1], f"map_values({expr})")
        var = f"x{path.count('.') + path.count('[')}"
        found: list[Leaf] = []
        inner = _walk(child, var, f"{path}[]", found, text, kinds, into)
        for leaf in found:

            def some(pred: Callable[[str], str], each: Callable = leaf.some) -> str:
                return f"coalesce(list_bool_or(list_transform({items}, lambda {var}: {each(pred)})), false)"

            leaves.append(Leaf(leaf.path, leaf.kind, some))
        return f"{inner}[]" if kind == "list" else f"MAP({t.children[0][1]}, {inner})"
    return str(t)  # the rest: as detected


class Pinned(NamedTuple):
    """The column types a JSON read is pinned to, and the formats its date and timestamp leaves are read in."""

    columns: dict[str, str]
    date_format: str | None = None
    timestamp_format: str | None = None
    stamps: dict[str, tuple[str, ...]] = {}  # text columns of timestamps, converted in these forms (`stamps.converted`)
    # column -> SQL over `text_read` (the files with every date leaf as text), true when a row of the column holds
    # a word where a date is read: where a word past the sample may hide (`datewords.late_date_words`)
    words: dict[str, str] = {}
    text_read: str = ""
    doubles: frozenset[str] = frozenset()  # those of `words` whose leaves are doubles inside objects or lists only


DATE_FORMAT = "%Y-%m-%d"

# what some value of a timestamp leaf looks like (LIKE, whose one-character wildcard is `_`): the parts of its
# ISO form; the date, one character (`T` or a space), the time
_SHAPES: dict[str, Callable[[str], str]] = {
    "T": lambda e: f"{e} LIKE '____-__-__T%'",
    "seconds": lambda e: f"{e} LIKE '____-__-_____:__:__%'",
    "fraction": lambda e: f"{e} LIKE '____-__-_____:__:__.%'",
    "Z": lambda e: f"{e} LIKE '%Z'",
}


def _form(has: dict[str, bool]) -> str:
    """The ISO timestamp format of the parts `_SHAPES` found."""
    time = "%H:%M:%S" + (".%f" if has["fraction"] else "") if has["seconds"] else "%H:%M"
    return "%Y-%m-%d" + ("T" if has["T"] else " ") + time + ("Z" if has["Z"] else "")


@contextlib.contextmanager
def _sample(con: duckdb.DuckDBPyConnection, read: str, columns: list[str], limit: int | None) -> Iterator[str]:
    """The rows `pin_dates` checks: the first `limit` read; whole files (None) read once into a temp table of the
    columns checked, which each check then scans (not the files again: three passes over them otherwise)."""
    if limit is not None:
        yield f"SELECT * FROM ({read}) LIMIT {limit}"
        return
    names = ", ".join(q(n) for n in dict.fromkeys(columns))
    held = f"__lf_date_checks{next(_HELD)}"  # (a connection may be shared: the Spark engine's sniffer)
    con.execute(f"CREATE TEMP TABLE {held} AS SELECT {names} FROM ({read})")
    try:
        yield f"SELECT * FROM {held}"
    finally:
        con.execute(f"DROP TABLE IF EXISTS {held}")


_HELD = itertools.count()


def pin_dates(
    con: duckdb.DuckDBPyConnection,
    detected: dict[str, str],
    read: Callable[[dict[str, str]], str],
    limit: int | None,
    declared: tuple[str | None, str | None] = (None, None),
    text: set[str] | frozenset[str] = frozenset(),
    for_duckdb: bool = True,
    read_times: bool = True,
) -> Pinned:
    """`detected` (column -> DuckDB type) pinned for reading, the formats its DATE and TIMESTAMP leaves are read
    in, and the text columns that are timestamps. Given the types, DuckDB's JSON reader casts a string to a date
    or a timestamp loosely: past the sample, `2024-01-04 10:30` in a date column loads as 2024-01-04 and
    `2024-01-03T10:00:00+05:00` in a timestamp column as 10:00. Read in a format (as its own detection reads),
    such a value breaks the type instead, and the file is read again with types detected on the whole file.

    So: a date leaf holding a word (`infinity`, `epoch`: DuckDB's casts take them) is text; date leaves are read
    as `%Y-%m-%d` and timestamp leaves in the ISO form most of them are written in (`T` or a space, seconds, a
    fraction, `Z`), unless `declared` (the workflow's `date_format`, `timestamp_format`) names them; a leaf the
    format does not read in the sample is text. A top-level text column whose every value is a timestamp of one
    of landfall's forms (`stamps.FORMS`: DuckDB's detection leaves `2024-01-03T10:00:00.123456` as text) is
    converted value by value. `read(columns)` is the SELECT over the files with those column types, `limit` the
    records of the sample (None: whole files, read once into a table). One scan of the sample; one more when some
    column has a date leaf (the formats checked), and when a text column looks like timestamps (their forms).
    `text`: columns read as text in `text_read` too (doubles, where a number beyond a double's range may hide).
    For the DuckDB engine's read (`for_duckdb`; not Spark's, whose JSON parser never gives a number's text back):
    doubles inside objects and lists are leaves too, one holding a number beyond a double's range (DuckDB's
    reader makes it an infinity) is text, and `words` finds one past the sample. With `read_times` (both
    engines', when Spark has a time type), times of day, which DuckDB's reader casts loosely (`10:00:00+02` as
    10:00, `.123456789` cut to microseconds) and takes no format for, are read as text: a top-level column
    converted in its forms (`stamps.TIME_FORMS`, strictly: a value of none breaks the column's type), a field
    inside an object or a list kept as written, and a column with a value of more than a time in the sample kept
    as written too."""
    from landfall.engines.duckdb.casts import beyond_range  # (casts imports this module)

    everything = lambda _path: True  # noqa: E731
    as_text: dict[str, str] = {}
    by_column: dict[str, list[Leaf]] = {}  # each column's date leaves, and its double leaves when nested
    kinds = {n: _leaf_kinds(k, for_duckdb) for n, k in detected.items()}
    for name, kind in detected.items():
        if kinds[name]:
            found = by_column.setdefault(name, [])
            as_text[name] = _walk(con.sqltype(kind), q(name), name, found, everything, kinds[name])
    leaves = [leaf for found in by_column.values() for leaf in found if leaf.kind in DATE_IDS]
    numbers = [leaf for found in by_column.values() for leaf in found if leaf.kind in DOUBLE_IDS]
    # top-level text, or top-level dates that may turn out text: candidates for timestamps read from text
    strings = [n for n, kind in detected.items() if kind == "VARCHAR" or any(leaf.path == n for leaf in leaves)]
    texts = dict.fromkeys(sorted(text), "VARCHAR")
    if not leaves and not numbers and not strings:
        return Pinned(detected, *declared, text_read=read({**detected, **texts}) if texts else "")
    text_read = read({**detected, **as_text, **texts})
    with _sample(con, text_read, [*by_column, *strings], limit) as sample:
        stamps = [leaf for leaf in leaves if leaf.kind == "timestamp"] if declared[1] is None else []
        times = [leaf for leaf in leaves if leaf.kind == "time"] if read_times else []
        # times inside objects and lists are text, as written; top-level ones are converted, unless the sample
        # holds more than a time in them
        nested = {leaf.path for leaf in times if leaf.path not in by_column}
        times = [leaf for leaf in times if leaf.path not in nested]
        checks = [f"coalesce(bool_or({leaf.some(is_word)}), false)" for leaf in leaves]
        checks += [f"coalesce(bool_or({leaf.some(beyond_range)}), false)" for leaf in numbers]
        checks += [f"coalesce(bool_or({leaf.some(more_than_a_time)}), false)" for leaf in times]
        checks += [f"coalesce(bool_or({leaf.some(shape)}), false)" for leaf in stamps for shape in _SHAPES.values()]
        checks += [looks_like_stamps(n) for n in strings]
        row = con.execute(f"SELECT {', '.join(checks)} FROM ({sample})").fetchone()
        flagged = [*leaves, *numbers, *times]
        words, row = row[: len(flagged)], row[len(flagged) :]
        shaped, row = row[: len(stamps) * len(_SHAPES)], row[len(stamps) * len(_SHAPES) :]
        text = {leaf.path for leaf, hit in zip(flagged, words, strict=True) if hit} | nested
        clock = {leaf.path: TIME_FORMS for leaf in times if leaf.path not in text}  # converted from text
        forms = {
            leaf.path: _form(dict(zip(_SHAPES, shaped[i * len(_SHAPES) : (i + 1) * len(_SHAPES)], strict=True)))
            for i, leaf in enumerate(stamps)
            if leaf.path not in text
        }
        looked = [n for n, hit in zip(strings, row, strict=True) if hit]
        kept = list(forms.values())
        formats = {
            "date": declared[0] or DATE_FORMAT,
            "timestamp": declared[1] or (max(kept, key=kept.count) if kept else None),
        }
        # the sample read in the formats: a leaf with a value of another form is text
        to_check = [leaf for leaf in leaves if leaf.path not in text and formats.get(leaf.kind)]
        if to_check:

            def unread(fmt: str) -> Callable[[str], str]:
                return lambda e: f"({e} IS NOT NULL AND try_strptime({e}, {lit(fmt)}) IS NULL)"

            checks = [f"coalesce(bool_or({leaf.some(unread(formats[leaf.kind]))}), false)" for leaf in to_check]
            row = con.execute(f"SELECT {', '.join(checks)} FROM ({sample})").fetchone()
            text |= {leaf.path for leaf, hit in zip(to_check, row, strict=True) if hit}
        out = dict(detected)
        for name in as_text:
            out[name] = _walk(con.sqltype(detected[name]), q(name), name, [], lambda p: p in text, kinds[name])
        kept_kinds = {leaf.kind for leaf in leaves if leaf.path not in text}
        out |= dict.fromkeys(clock, "VARCHAR")
        forms = stamp_forms(con, sample, [n for n in looked if out[n] == "VARCHAR" and n not in clock]) | clock
        read_as_dates = {
            n: [leaf.some(is_word if leaf.kind in DATE_IDS else beyond_range) for leaf in lf if leaf.path not in text]
            for n, lf in by_column.items()
        }
        read_as_dates |= {n: [*read_as_dates.get(n, []), is_word(q(n))] for n in forms}  # converted from text
        return Pinned(
            out,
            formats["date"] if "date" in kept_kinds or declared[0] else None,
            formats["timestamp"] if "timestamp" in kept_kinds or declared[1] else None,
            forms,
            {n: f"coalesce(bool_or({' OR '.join(some)}), false)" for n, some in read_as_dates.items() if some},
            text_read,
            frozenset(n for n, lf in by_column.items() if lf and n not in forms and {x.kind for x in lf} <= DOUBLE_IDS),
        )


def _leaf_kinds(kind: str, nested_doubles: bool) -> frozenset[str]:
    """The kinds of leaf `pin_dates` looks at in a column of DuckDB type `kind`: dates and times, and (with
    `nested_doubles`) doubles inside an object or a list (a top-level double is the caller's: `text`)."""
    low = kind.lower()
    found = DATE_IDS if any(d in low for d in ("date", "time")) else frozenset()
    nested = low.startswith(("struct(", "map(")) or low.endswith("]")
    if nested_doubles and nested and any(d in low for d in DOUBLE_IDS):
        found |= DOUBLE_IDS
    return found


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


def renamed_keys(con: duckdb.DuckDBPyConnection, names: list[str], paths: str, limit: int | None) -> dict[str, str]:
    """`case_renamed`, less the names that are keys of the records themselves (`Amount_1` beside `amount`):
    `paths` the files' list in SQL, `limit` the records looked at (None: every one)."""
    renamed = case_renamed(names)
    if renamed:
        rows = f"SELECT json FROM read_json_objects({paths}, format = 'newline_delimited')"
        rows += f" LIMIT {limit}" if limit is not None else ""
        found = con.execute(f"SELECT DISTINCT unnest(json_keys(json)) FROM ({rows})").fetchall()
        renamed = {n: k for n, k in renamed.items() if (n,) not in found}
    return renamed


def case_renamed(names: list[str]) -> dict[str, str]:
    """The column names DuckDB's JSON reader made up for keys that differ from another only in case (`Name` and
    `name` become columns `Name` and `name_1`: its names are case-insensitive), each -> the key it holds (`name`;
    not `id_2` beside `id`, a key of its own). Reading with such a name given finds no key by it."""
    lowered: dict[str, set[str]] = {}
    for n in names:
        lowered.setdefault(n.lower(), set()).add(n)
    return {
        n: m[1]
        for n in names
        if (m := _RENAMED.fullmatch(n)) and m[1] not in names and lowered.get(m[1].lower(), set()) - {m[1]}
    }
