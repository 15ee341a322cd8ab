"""JSON values only of the kind their column holds. Given the types (landfall pins what DuckDB detected on a sample of
the records), DuckDB's JSON reader casts a later value of another kind to the type without a word: `2.5` in a
column of whole numbers loads as 2, `7` in a column of booleans as true, `true` in a column of numbers as 1
(duckdb/duckdb#25786). So each number and boolean leaf of the pinned columns (a column, a field of an object, the
items of a list, the values of a map) is read as JSON and converted here, from its own kind only: a whole number
into an integer, a number into a double, `true` or `false` into a boolean (`kind_checked`). A value of another kind
fails the read as a late value that does not fit its type does (`errors.type_detection_miss`), and the file is read
again with its types detected on the whole file (`ReadPlan.sample_all`), where the leaf is of a type that holds
every value (DOUBLE for 2 and 2.5, text for 7 beside true), and nothing is converted here.

A big file read with DuckDB's own detection, which refuses a key past its sample (`jsonkeys.refusing_read`),
casts into the types it detects: its leaves of numbers and booleans are read once more after the load, alone and
as above (`late_kinds`), which costs less than a pinned read looked through for late keys.

A leaf under more than `MAX_LAMBDAS` lists or maps is read as detected: each one more nests one more lambda, and
DuckDB's nested lambdas cost about twice the time and four times the memory with each level (18 levels: 16 s and
3 GB to read one value; a record of 20 nested lists failed with `Allocation failure`)."""

from __future__ import annotations

import duckdb
import msgspec

from landfall.engines.base import ReadPlan
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.read_json import _json_sql
from landfall.engines.duckdb.sql import _paths, lit, q

_INTEGERS = frozenset(
    ("tinyint", "smallint", "integer", "bigint", "hugeint", "utinyint", "usmallint", "uinteger", "ubigint")
    + ("uhugeint", "decimal")  # a DECIMAL pinned for whole numbers beyond 64 bits (`jsonnumbers.whole_numbers`)
)
_FRACTIONS = frozenset(("double", "float"))
CHECKED = _INTEGERS | _FRACTIONS | {"boolean"}
#: the most lists or maps a checked leaf is read under (a lambda each)
MAX_LAMBDAS = 8


def kind_checked(
    con: duckdb.DuckDBPyConnection, columns: dict[str, str], alone: bool = False
) -> tuple[dict[str, str], dict[str, str]]:
    """`columns` (name -> DuckDB type) as read, each number or boolean leaf as JSON, and for each column holding
    one, the SQL of its value converted back from its own kind only (a value of another kind fails the query).
    `alone`: only those columns, and of their objects only the fields that hold such a leaf."""
    read: dict[str, str] = {}
    back: dict[str, str] = {}
    for name, kind in columns.items():
        as_read, expr = _read(con.sqltype(kind), q(name), name, 0, alone)
        if expr is not None:
            back[name] = expr
        if expr is not None or not alone:
            read[name] = as_read
    return read, back


def converted_back(select: str, back: dict[str, str]) -> str:
    """`select` (a read of `kind_checked`'s columns) with each checked column converted back to its type."""
    if not back:
        return select
    return f"SELECT * REPLACE ({', '.join(f'{e} AS {q(n)}' for n, e in back.items())}) FROM ({select})"


def late_kinds(cx: JobContext) -> ReadPlan | None:
    """The plan to read the job with again when its lone JSON file, read with DuckDB's own detection, holds past
    the sample a number or a boolean of another kind than its column's (`cx.kinds_unchecked`); else None. Those
    leaves are read alone. (Read on another connection while the job is written, the look took as long: the
    write keeps both cores busy.)"""
    read, back = kind_checked(cx.con, cx.kinds_unchecked, alone=True)
    if not back:
        return None
    o = msgspec.structs.replace(cx.job.workflow.read, types={})  # declared columns hold no such leaf
    counts = ", ".join(f"count({e})" for e in back.values())
    try:
        cx.con.execute(f"SELECT {counts} FROM ({_json_sql(cx, _paths(cx.paths), o, cx.fmt, columns=read)})")
    except duckdb.Error as exc:
        if errors.type_detection_miss(str(exc)):
            return cx.plan.but(sample_all=True)
        raise
    return None


def _read(
    t: duckdb.typing.DuckDBPyType, expr: str, path: str, depth: int, alone: bool, lambdas: int = 0
) -> tuple[str, str | None]:
    """The type a leaf or a nested column of type `t` is read as, and the SQL of its value (`expr`, so read)
    converted back to `t` (None: read as it is)."""
    if t.id in CHECKED:
        return "JSON", _of_kind(expr, str(t), t.id, path)
    if t.id == "struct":
        fields = []
        for name, child in t.children:
            field = f"struct_extract({expr}, {lit(name)})"
            as_read, value = _read(child, field, f"{path}.{name}", depth + 1, alone, lambdas)
            if value is not None or not alone:
                fields.append((name, as_read, value))
        if all(value is None for *_, value in fields):
            return str(t), None
        typed = ", ".join(f"{q(name)} {as_read}" for name, as_read, _ in fields)
        packed = ", ".join(
            f"{lit(name)}: {value if value is not None else f'struct_extract({expr}, {lit(name)})'}"
            for name, _, value in fields
        )
        return f"STRUCT({typed})", f"CASE WHEN {expr} IS NULL THEN NULL ELSE {{{packed}}} END"
    if t.id in ("list", "map") and lambdas < MAX_LAMBDAS:  # a list's items, a map's values (objects of many keys)
        var, key, items = f"k{depth}", t.children[0][1], f"{path}{'[]' if t.id == 'list' else '{}'}"
        as_read, value = _read(t.children[-1][1], var, items, depth + 1, alone, lambdas + 1)
        if value is None:
            return str(t), None
        if t.id == "list":
            return f"{as_read}[]", f"list_transform({expr}, lambda {var}: {value})"
        values = f"list_transform(map_values({expr}), lambda {var}: {value})"
        return f"MAP({key}, {as_read})", f"CASE WHEN {expr} IS NULL THEN NULL ELSE map(map_keys({expr}), {values}) END"
    return str(t), None  # the rest: as detected


def _of_kind(expr: str, target: str, kind: str, path: str) -> str:
    """SQL of the JSON value `expr` as `target` (of type id `kind`) when it is of the kind `target` holds, failing
    the query otherwise. The reader writes a JSON number's text back with a point or an exponent only for a
    fraction (`1E3` as `1000.0`)."""
    text = f"CAST({expr} AS VARCHAR)"
    if kind == "boolean":
        value = f"(CASE {text} WHEN 'true' THEN true WHEN 'false' THEN false END)"
    elif kind in _FRACTIONS:
        value = f"TRY_CAST({text} AS {target})"  # a string, a boolean, an object or a list: NULL
    else:
        value = f"(CASE WHEN strpos({text}, '.') = 0 AND strpos({text}, 'e') = 0 THEN TRY_CAST({text} AS {target}) END)"
    why = f"' to {target} in JSON column {path}: a value of another kind than the type sample's"
    refusal = f"error({lit('Could not convert JSON value ' + chr(39))} || {text} || {lit(why)})::{target}"
    return f"coalesce({value}, CASE WHEN {expr} IS NULL THEN NULL ELSE {refusal} END)"
