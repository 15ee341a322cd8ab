"""Fitting a batch's columns to its table's schema: safe widening, never silent loss. Types are Arrow type
strings (`landfall.types`), whichever engine wrote the batch."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import msgspec

from landfall.errors import SchemaConflict
from landfall.types import parse_type, sql_name, type_name

if TYPE_CHECKING:
    import pyarrow as pa


class Cataloged(Protocol):
    """What `grown` needs of a cataloged table (`state.base.Table`): its schema."""

    schema: list[tuple[str, str]]


_INTS = ["int8", "int16", "int32", "int64"]
_UINTS = ["uint8", "uint16", "uint32", "uint64"]
_FLOATS = ["float", "double"]
_SIGNED = {"uint8": "int16", "uint16": "int32", "uint32": "int64", "uint64": "decimal128(20, 0)"}  # holds it
_DIGITS = {"int8": 3, "int16": 5, "int32": 10, "int64": 19, "uint8": 3, "uint16": 5, "uint32": 10, "uint64": 20}
_DECIMAL = re.compile(r"decimal(?:128|256)\((\d+), (\d+)\)")
JSON = "extension<arrow.json>"
_NULLISH = {"null", JSON}  # a column with no values yet (JSON nulls) fits any type
_NESTED = ("list<", "large_list<", "fixed_size_list<", "struct<", "map<")  # text never parses into these
_FITTED = ("list<", "struct<")  # nested types whose fields evolve (`nested_fit`)
_OBJECTS = (*_FITTED, "map<")  # nested types whose values fit one another (`nested_fit`): maps and structs by key


def widens_to(narrow: str, wide: str) -> bool:
    """True when every value of type `narrow` is exactly representable in `wide`."""
    if narrow == wide or narrow == "null":  # no value (a column of nulls only) is a value of any type
        return True
    if narrow in _INTS and wide in _INTS:
        return _INTS.index(narrow) <= _INTS.index(wide)
    if narrow in _UINTS and wide in _INTS:
        return _UINTS.index(narrow) < _INTS.index(wide)
    if narrow in _UINTS and wide in _UINTS:
        return _UINTS.index(narrow) <= _UINTS.index(wide)
    if narrow in _INTS + _UINTS[:3] and wide == "double":
        return True  # int64 beyond 2^53 rounds, as every engine's int-to-double does
    if narrow in ("int8", "int16", "uint8", "uint16") and wide == "float":
        return True
    if narrow == "float" and wide == "double":
        return True
    if wide == "double" and (m := _DECIMAL.fullmatch(narrow)) and int(m[1]) <= 15:
        return True  # up to 15 digits a double holds a decimal's value and gives it back (12.50 as 12.5)
    if narrow == "date32[day]" and wide.startswith("timestamp["):
        return True
    if (a := _places(narrow)) and (b := _places(wide)) and wide.startswith("decimal"):
        return a[0] <= b[0] and a[1] <= b[1]  # an integer or a decimal into a decimal with room on both sides
    return False


def _places(typ: str) -> tuple[int, int] | None:
    """The digits an integer or decimal type holds before and after the point (int64: 19 and 0; decimal(10, 2): 8
    and 2); None for other types."""
    if typ in _DIGITS:
        return _DIGITS[typ], 0
    if m := _DECIMAL.fullmatch(typ):
        return int(m[1]) - int(m[2]), int(m[2])
    return None


def widened(table: str, batch: str) -> str | None:
    """The type a table's column (or struct field) of type `table` widens to, in a new schema version, to hold a
    batch's values of type `batch` as well as its own: the batch's type when it holds every value of the table's
    (int32 to int64; the table's own when it holds the batch's), a signed integer for signed and unsigned ones
    (uint32 and int16: int64), double for integers and floats, a decimal with room for both (int64 and
    decimal(10, 2), or the other way round: decimal(21, 2)). None when no type holds both (text in a number
    column, or over 38 digits)."""
    if widens_to(table, batch):
        return batch
    if widens_to(batch, table):
        return table
    if table in _INTS + _UINTS and batch in _INTS + _UINTS:  # signed and unsigned: a signed type holds both
        ours, theirs = _SIGNED.get(table, table), _SIGNED.get(batch, batch)
        return theirs if widens_to(ours, theirs) else ours
    if table in _INTS and batch in _FLOATS:
        return "double"
    a, b = _places(table), _places(batch)
    if a and b and "decimal" in (table[:7], batch[:7]):
        whole, scale = max(a[0], b[0]), max(a[1], b[1])
        return f"decimal128({whole + scale}, {scale})" if whole + scale <= 38 else None
    return None


def nested_fit(have: str, table: str) -> str | None:
    """The type of a struct or list column that holds a batch's values (`have`) and the table's (`table`) without
    loss, for `evolve`: struct fields matched by name, the table's first (in its order), then the batch's new
    ones; a field one side lacks, or holds only nulls in, is NULL in its rows; a field's values fit as a column's
    do (a wider type, or text where the table's field is text: `7` as `7`). None when a field's values fit
    neither way (text into a number field: a nested field has no strict cast)."""
    found = _fit(parse_type(have), parse_type(table))
    return None if found is None else type_name(found)


def _fit(have: pa.DataType, table: pa.DataType) -> pa.DataType | None:
    import pyarrow as pa

    if have == table or pa.types.is_null(have) or JSON in (type_name(have), type_name(table)):
        return table  # JSON: no values seen to type (`[]`), or values of mixed kinds (any value is JSON)
    if pa.types.is_null(table):
        return have
    if pa.types.is_struct(have) and pa.types.is_struct(table):
        ours = {f.name: f.type for f in have}
        fields = []
        for f in table:
            mine = field_named(ours, f.name)
            typ = _fit(ours.pop(mine), f.type) if mine is not None else f.type
            if typ is None:
                return None
            fields.append(pa.field(f.name, typ))
        return pa.struct(fields + [pa.field(n, t) for n, t in ours.items()])
    if pa.types.is_list(have) and pa.types.is_list(table):
        item = _fit(have.value_type, table.value_type)
        return None if item is None else pa.list_(item)
    if pa.types.is_struct(have) and pa.types.is_map(table) and pa.types.is_string(table.key_type):
        # objects into a column DuckDB typed as a map (its first objects were all empty, `{}`, or had more than
        # 200 keys): field by field as keys, when every field's values fit the map's (any value fits JSON)
        return table if all(_fit(f.type, table.item_type) == table.item_type for f in have) else None
    if pa.types.is_map(have) and pa.types.is_map(table) and have.key_type == table.key_type:
        return table if _fit(have.item_type, table.item_type) == table.item_type else None  # `{}`: JSON items
    if pa.types.is_map(have) and pa.types.is_struct(table) and pa.types.is_string(have.key_type):
        # objects DuckDB typed as a map (every one empty, `{}`: MAP(VARCHAR, JSON)) into a struct: by key, when
        # every field takes the map's values (a key with no field fails the file: `casts.conformed`)
        return table if all(_fit(have.item_type, f.type) == f.type for f in table) else None
    if pa.types.is_string(table):
        return table  # any value can be written as text (a struct or list as its JSON), as a column's can
    if pa.types.is_nested(have) or pa.types.is_nested(table):
        return None
    narrow, wide = type_name(have), type_name(table)
    if widens_to(narrow, wide) or wide == "string":
        return table
    grown = widened(wide, narrow)
    return None if grown is None else parse_type(grown)


def field_named(names: Iterable[str], name: str) -> str | None:
    """The one of `names` that is `name`: itself, else the only one spelled so in other case (SQL names ignore
    case: a struct's field `T` is a table's `t`); None without one."""
    names = list(names)
    if name in names:
        return name
    same = [n for n in names if n.lower() == name.lower()]
    return same[0] if len(same) == 1 else None


def only_nulls(have: str, table: str) -> bool:
    """Whether a batch's column differs from its table's only where it holds no values (it, or fields of its
    structs, all null: JSON `null` has no type): no difference, even to `freeze`."""
    if have in ("null", table):
        return True
    try:
        return _only_nulls(parse_type(have), parse_type(table))
    except ValueError:
        return False


def _only_nulls(have: pa.DataType, table: pa.DataType) -> bool:
    import pyarrow as pa

    if have == table or pa.types.is_null(have):
        return True
    if pa.types.is_struct(have) and pa.types.is_struct(table):
        theirs = {f.name: f.type for f in table}
        return [f.name for f in have] == list(theirs) and all(_only_nulls(f.type, theirs[f.name]) for f in have)
    if pa.types.is_list(have) and pa.types.is_list(table):
        return _only_nulls(have.value_type, table.value_type)
    return False


def align(columns: list[tuple[str, str]], table: list[tuple[str, str]]) -> dict[str, str]:
    """Casts that make a batch's columns match the table's types where that loses nothing.

    Returns `{column: type}` to cast to. A column that only a wider table type can hold (double data for an
    int64 table) is left as it is: the table's schema widens in a new version. A text column whose table
    type is not text is cast strictly: a value that does not fit fails the file with the column and the value
    named. Anything else is a `SchemaConflict`.
    """
    want = dict(table)
    casts: dict[str, str] = {}
    for name, have in columns:
        target = want.get(name)
        if target is None or have == target:
            continue
        if have in _NULLISH or widens_to(have, target):
            casts[name] = target
        elif have.startswith(_OBJECTS) and target.startswith(_OBJECTS) and (fit := nested_fit(have, target)):
            if fit != have:  # the table's fields the batch lacks (NULL), its own in the table's order
                casts[name] = fit
        elif target in ("string", JSON):  # any value can be written as text or as JSON
            casts[name] = target
        elif wide := widened(target, have):  # the table widens in a new schema version, and the batch with it
            if wide != have:  # (int64 and decimal(10, 2): both decimal(21, 2))
                casts[name] = wide
        elif have == "string" and not target.startswith(_NESTED):  # text to a scalar type: a strict cast
            casts[name] = target
        else:
            raise SchemaConflict(
                f"column `{name}` is {sql_name(have)} in this file but {sql_name(target)} in the table; "
                "cast it in a `cast:` step or change the table"
            )
    return casts


def table_spelling(columns: Iterable[str], table: list[tuple[str, str]] | None) -> dict[str, str]:
    """A batch's columns that are a table's column spelled in other case (`ID` for `id`), as `{batch's name:
    table's}`: SQL names ignore case (DuckDB's, Spark's, a Delta log's), so such a column is the table's, and is
    written under the table's name (a table never holds two columns whose names differ only in case). A column the
    table has as it is, or whose name two of the table's (or two of the batch's) columns share, keeps its name."""
    if not table:
        return {}
    cols = list(columns)
    names = [n for n, _ in table]
    shared = Counter(n.lower() for n in cols)
    return {n: t for n in cols if shared[n.lower()] == 1 and (t := field_named(names, n)) not in (None, n)}


def merged(old: list[tuple[str, str]], new: list[tuple[str, str]], *, to_text: bool = False) -> list[tuple[str, str]]:
    """The table's schema after a batch: old columns first (widened where the batch widened them), then new.
    `to_text` (a quarantine, which keeps values that did not fit, and reads back every one it kept): a column
    whose types no type holds both of (text set aside from a number column) is text, which holds every value's."""
    new_types = dict(new)
    out = []
    for name, typ in old:
        batch = new_types.get(name, typ)
        if batch != typ and typ.startswith(_FITTED) and batch.startswith(_FITTED):
            held = nested_fit(batch, typ)
        else:
            held = widened(typ, batch) if batch != typ else typ
        out.append((name, held or ("string" if to_text else typ)))
    seen = {n for n, _ in old}
    out.extend((n, t) for n, t in new if n not in seen)
    return out


def grown(table: Cataloged | None, new: list[tuple[str, str]], *, to_text: bool = False) -> list[tuple[str, str]]:
    """A table's schema once a commit writing `new` lands: `merged` onto the cataloged table's, or `new` itself for a
    table not cataloged yet."""
    return merged(table.schema, new, to_text=to_text) if table is not None else new


class SchemaDiff(msgspec.Struct, frozen=True):
    """How a batch's columns differ from its table's (Arrow types), for `schema.evolution` other than `evolve`."""

    data: dict[str, str]  # the batch's columns
    table: dict[str, str]  # the table's columns (lineage and `_rescued_data` left out)
    new: list[str]  # columns the table lacks
    changed: list[str]  # columns whose values the table's type cannot hold as they are (not a widening)
    gone: list[str]  # table columns the batch lacks (partition columns a function derives left out)

    def refuse_if_frozen(self, key: str, table_name: str) -> None:
        """`freeze`: a file that differs from the table fails, every difference listed."""
        data, table = self.data, self.table
        diffs = (
            [f"new column `{n}` ({sql_name(data[n])})" for n in self.new]
            + [f"column `{n}` is {sql_name(data[n])}, the table has {sql_name(table[n])}" for n in self.changed]
            + [f"column `{n}` ({sql_name(table[n])}) is missing" for n in self.gone]
        )
        if diffs:
            raise SchemaConflict(
                f"`{key}`: the schema differs from table `{table_name}` (schema evolution: freeze): "
                + "; ".join(diffs),
                file=key,
            )

    def misfit_reason(self) -> str:
        """`discard_row`: why a row that carries a value the table cannot hold is quarantined."""
        return "does not fit the table's schema: " + ", ".join(
            [f"`{n}` is not {sql_name(self.table[n])}" for n in self.changed]
            + [f"`{n}` is not a table column" for n in self.new]
        )


def schema_diff(
    data: dict[str, str], table_schema: list[tuple[str, str]], hidden: Iterable[str], derived: Iterable[str]
) -> SchemaDiff:
    """Compare a batch's columns with its table's; `hidden` (lineage) columns are not compared, and `derived`
    partition columns (computed at write) are never missing. A table's column that has held only nulls so far
    (JSON `null`, which has no type) differs from no column: it takes the type of the first values it gets, and a
    batch may lack it, under every policy."""
    skip = {*hidden, "_rescued_data"}
    table = {n: t for n, t in table_schema if n not in skip}
    untyped = {n for n, t in table.items() if t == "null"}
    return SchemaDiff(
        data=data,
        table=table,
        new=[n for n in data if n not in table],
        changed=[
            n
            for n in data
            if n in table
            and n not in untyped
            and not widens_to(data[n], table[n])
            and not only_nulls(data[n], table[n])
        ],
        gone=[n for n in table if n not in data and n not in set(derived) and n not in untyped],
    )
