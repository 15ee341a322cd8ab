"""Column types in neutral terms: Arrow type strings (`int64`, `string`, `timestamp[us, tz=UTC]`,
`list<item: int64>`, `struct<a: int64, b: string>`), as the catalog stores them and every engine maps them.

- `type_name(t)`: the canonical string of a `pyarrow.DataType` (list items are `item`, large and view variants
  become their plain kind, dictionaries their values, UTC is spelled `UTC`), so that the same column has the
  same name whichever engine or file produced it.
- `parse_type(text)`: the `pyarrow.DataType` for such a string.
- `user_type(name)`: what a type in `cast:`, `read.types` and `schema.hints` means (`int`, `date`,
  `decimal(10,2)`, ... or any Arrow type string).
- `sql_name(t)`: what `landfall query` (DuckDB SQL) calls the type, for people (`BIGINT`, `VARCHAR`).
- `neutral(t)`: an Arrow type string for a type name landfall stored before types were neutral (DuckDB names).

Widening (which type holds every value of another) is in `landfall.schema`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# Type names users write in `cast:`, `read.types` and `schema.hints`, and the Arrow type each means.
USER_TYPES: dict[str, str] = {
    "string": "string",
    "str": "string",
    "text": "string",
    "varchar": "string",
    "int": "int64",
    "integer": "int64",
    "int64": "int64",
    "bigint": "int64",
    "long": "int64",
    "int32": "int32",
    "int16": "int16",
    "int8": "int8",
    "float": "double",
    "double": "double",
    "float64": "double",
    "float32": "float",
    "real": "float",
    "bool": "bool",
    "boolean": "bool",
    "date": "date32[day]",
    "timestamp": "timestamp[us]",
    "datetime": "timestamp[us]",
    "timestamptz": "timestamp[us, tz=UTC]",
    "time": "time64[us]",
    "json": "extension<arrow.json>",
    "uuid": "extension<arrow.uuid>",
    "blob": "binary",
}
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$", re.IGNORECASE)
_UTC = {"UTC", "+00:00", "Etc/UTC", "Z", "utc", "GMT"}


def user_type(name: str) -> str:
    """The Arrow type string for a type name users write (`int`, `date`, `decimal(10,2)`, `timestamp[ms]`)."""
    key = name.strip().lower()
    if key in USER_TYPES:
        return USER_TYPES[key]
    m = _DECIMAL.match(key)
    if m:
        import pyarrow as pa

        return type_name(pa.decimal128(int(m.group(1)), int(m.group(2))))
    try:
        return type_name(parse_type(name.strip()))
    except ValueError:
        allowed = ", ".join(f"`{n}`" for n in sorted(USER_TYPES))
        raise ValueError(f"unknown type `{name}`; expected one of {allowed}, `decimal(p,s)` or an Arrow type") from None


def type_name(t: pa.DataType) -> str:
    """The canonical Arrow type string of `t` (see the module's docstring)."""
    return str(_canonical(t))


def _canonical(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return _canonical(t.value_type)
    if pa.types.is_timestamp(t) and t.tz in _UTC:
        return pa.timestamp(t.unit, tz="UTC")
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_canonical(t.value_type), t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.list_(_canonical(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(_canonical(t.key_type), _canonical(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _canonical(f.type)) for f in t])
    if isinstance(t, pa.BaseExtensionType) and t.extension_name not in ("arrow.uuid", "arrow.json"):
        return _canonical(t.storage_type)
    return t


@lru_cache(maxsize=1024)
def parse_type(text: str) -> pa.DataType:
    """The Arrow type an Arrow type string names (as `str(pyarrow type)` writes it). Raises `ValueError`."""
    t, rest = _parse(text.strip())
    if rest.strip():
        raise ValueError(f"unknown type `{text}`: unexpected `{rest.strip()}`")
    return t


def _parse(s: str) -> tuple[pa.DataType, str]:
    """Parse one type at the start of `s`; returns it and what follows."""
    import pyarrow as pa

    for prefix, make in (("list<", _list), ("fixed_size_list<", _list), ("large_list<", _list)):
        if s.startswith(prefix):
            return make(s[len(prefix) :])
    if s.startswith("struct<"):
        return _struct(s[len("struct<") :])
    if s.startswith("map<"):
        key, rest = _parse(s[4:])
        if not rest.startswith(", "):
            raise ValueError(f"unknown type: expected `, ` in a map at `{rest}`")
        item, rest = _parse(rest[2:])
        rest = re.sub(r"^ \('[^']*'\)", "", rest)  # pyarrow may name the map's entries: `map<k, v ('m')>`
        if not rest.startswith(">"):
            raise ValueError(f"unknown type: expected `>` at `{rest}`")
        return pa.map_(key, item), rest[1:]
    if s.startswith("extension<arrow.uuid>"):
        return pa.uuid(), s[len("extension<arrow.uuid>") :]
    if s.startswith("extension<arrow.json>"):
        return pa.json_(), s[len("extension<arrow.json>") :]
    if s.startswith("dictionary<"):
        m = re.match(r"dictionary<values=(.+?), indices=\w+, ordered=\d>", s)
        if m:
            return _parse(m.group(1) + s[m.end() :])
    m = re.match(r"timestamp\[(s|ms|us|ns)(?:, tz=([^\]]+))?\]", s)
    if m:
        return pa.timestamp(m.group(1), tz=m.group(2)), s[m.end() :]
    m = re.match(r"decimal(128|256)\((\d+), ?(\d+)\)", s)
    if m:
        make = pa.decimal128 if m.group(1) == "128" else pa.decimal256
        return make(int(m.group(2)), int(m.group(3))), s[m.end() :]
    m = re.match(r"fixed_size_binary\[(\d+)\]", s)
    if m:
        return pa.binary(int(m.group(1))), s[m.end() :]
    m = re.match(r"[a-z_0-9]+(\[\w+\])?", s)
    if m:
        try:
            return pa.type_for_alias(m.group(0)), s[m.end() :]
        except (ValueError, KeyError):
            pass
    raise ValueError(f"unknown type `{s}`")


def _list(s: str) -> tuple[pa.DataType, str]:
    import pyarrow as pa

    m = re.match(r"[^:<>,]*: ", s)  # the item field's name (`item`, `element`, `l`, or none)
    if not m:
        raise ValueError(f"unknown type: expected a list item at `{s}`")
    item, rest = _parse(s[m.end() :])
    rest = rest.removeprefix(" not null")
    if not rest.startswith(">"):
        raise ValueError(f"unknown type: expected `>` at `{rest}`")
    size = re.match(r">\[(\d+)\]", rest)
    if size:
        return pa.list_(item, int(size.group(1))), rest[size.end() :]
    return pa.list_(item), rest[1:]


def _struct(s: str) -> tuple[pa.DataType, str]:
    """Fields `name: type` separated by `, ` up to `>`. Names may hold `: ` or `, ` themselves: the first
    split whose remainder parses is taken."""
    import pyarrow as pa

    try:
        return _fields(s)
    except ValueError:
        if s.startswith(">"):  # no fields (a field named `>...` was tried first)
            return pa.struct([]), s[1:]
        raise


def _fields(s: str) -> tuple[pa.DataType, str]:
    import pyarrow as pa

    fields: list[pa.Field] = []
    while True:
        for m in re.finditer(r": ", s):
            name = s[: m.start()]
            try:
                typ, rest = _parse(s[m.end() :])
            except ValueError:
                continue
            rest = rest.removeprefix(" not null")
            if rest.startswith(", ") or rest.startswith(">"):
                break
        else:
            raise ValueError(f"unknown type: expected struct fields at `{s}`")
        fields.append(pa.field(name, typ))
        if rest.startswith(">"):
            return pa.struct(fields), rest[1:]
        s = rest[2:]


def stored_type(arrow: str, stored_as: dict[str, str]) -> str:
    """The type a column of type `arrow` is written as, when a table format cannot hold some types: every type
    `stored_as` names, at any depth (in a list, a struct, a map), replaced by the type it maps to
    (`struct<t: time64[us]>` -> `struct<t: string>` for Delta, which has no time type)."""
    if not stored_as or not any(k in arrow for k in stored_as):
        return arrow
    wanted = {type_name(parse_type(k)): parse_type(v) for k, v in stored_as.items()}
    return type_name(_replaced(parse_type(arrow), wanted))


def _replaced(t: pa.DataType, wanted: dict[str, pa.DataType]) -> pa.DataType:
    import pyarrow as pa

    hit = wanted.get(type_name(t))
    if hit is not None:
        return hit
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(_replaced(t.value_type, wanted))
    if pa.types.is_map(t):
        return pa.map_(_replaced(t.key_type, wanted), _replaced(t.item_type, wanted))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _replaced(f.type, wanted)) for f in t])
    return t


def cast_refused(column: str, have: pa.DataType, want: str) -> str | None:
    """Why a `cast:` step does not make `column`, of Arrow type `have`, a `want` (an Arrow type string), or None. A
    number or a boolean is no date or time, and a date or time no number or boolean, on every engine and whatever
    the rows: DuckDB has no such cast (it failed the file at its first value, and passed a file of no rows), and
    Spark's reads a number as seconds since 1970 for a `timestamptz` (the same workflow loaded other values)."""
    families = {_family(have), _family(parse_type(want))}
    if families not in ({"number", "time"}, {"bool", "time"}):
        return None
    return (
        f"column `{column}` is {sql_name(type_name(have))}, which a `cast` step does not make a "
        f"{sql_name(want)}; compute it in a `compute` step"
    )


def _family(t: pa.DataType) -> str | None:
    import pyarrow as pa

    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_date(t) or pa.types.is_timestamp(t) or pa.types.is_time(t):
        return "time"
    return None


def sql_name(arrow: str) -> str:
    """What `landfall query` calls a column of this type (DuckDB SQL: `BIGINT`, `VARCHAR`, ...): the name people
    see in `tables show`, in messages and in the JSON's `type`."""
    from landfall.engines.duckdb.types import duck_type

    return duck_type(arrow)


def column_json(name: str, arrow: str) -> dict[str, str]:
    """A column in `landfall tables --json`: `type` as `landfall query` sees it (DuckDB SQL, as always) and
    `arrow_type`, the neutral type the catalog holds."""
    return {"name": name, "type": sql_name(arrow), "arrow_type": arrow}


def neutral(name: str) -> str:
    """The Arrow type string for a stored type name: an Arrow type string already, or a DuckDB type name as
    landfall stored them before (catalogs, Delta commit metadata)."""
    try:
        return type_name(parse_type(name))
    except ValueError:
        from landfall.engines.duckdb.types import arrow_type

        return arrow_type(name)
