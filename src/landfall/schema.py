"""Fitting a batch's columns to its table's schema: safe widening, never silent loss. Types are Arrow type
strings (`landfall.types`), whichever engine wrote the batch."""

from __future__ import annotations

from landfall.errors import SchemaConflict
from landfall.types import sql_name

_INTS = ["int8", "int16", "int32", "int64"]
_UINTS = ["uint8", "uint16", "uint32", "uint64"]
_FLOATS = ["float", "double"]
_NULLISH = {"null", "extension<arrow.json>"}  # a column with no values yet (JSON nulls) fits any type
_NESTED = ("list<", "large_list<", "fixed_size_list<", "struct<", "map<")  # text never parses into these


def widens_to(narrow: str, wide: str) -> bool:
    """True when every value of type `narrow` is exactly representable in `wide`."""
    if narrow == wide:
        return True
    if narrow in _INTS and wide in _INTS:
        return _INTS.index(narrow) <= _INTS.index(wide)
    if narrow in _UINTS and wide in _INTS:
        return _UINTS.index(narrow) < _INTS.index(wide)
    if narrow in _INTS + _UINTS[:3] and wide == "double":
        return True  # int64 beyond 2^53 rounds, as every engine's int-to-double does
    if narrow in ("int8", "int16", "uint8", "uint16") and wide == "float":
        return True
    if narrow == "float" and wide == "double":
        return True
    if narrow == "date32[day]" and wide.startswith("timestamp["):
        return True
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
        elif target in ("string", "extension<arrow.json>"):  # any value can be written as text or as JSON
            casts[name] = target
        elif (
            widens_to(target, have)
            or (target in _INTS and have in _FLOATS)
            or (target in _INTS and have.startswith("decimal"))
        ):
            continue  # the table widens to the batch's type in a new schema version
        elif have == "string" and not target.startswith(_NESTED):  # text to a scalar type: a strict cast
            casts[name] = target
        else:
            raise SchemaConflict(
                f"column `{name}` is {sql_name(have)} in this file but {sql_name(target)} in the table; "
                "cast it in a `cast:` step or change the table"
            )
    return casts


def merged(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The table's schema after a batch: old columns first (widened where the batch widened them), then new."""
    new_types = dict(new)
    out = []
    for name, typ in old:
        if name in new_types and new_types[name] != typ and widens_to(typ, new_types[name]):
            typ = new_types[name]
        elif name in new_types and typ in _INTS and new_types[name] in _FLOATS:
            typ = new_types[name]
        out.append((name, typ))
    seen = {n for n, _ in old}
    out.extend((n, t) for n, t in new if n not in seen)
    return out
