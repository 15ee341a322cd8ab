"""Pieces every part of the settings shares: file and table formats, sizes, type names and landing prefixes."""

import re
from typing import Any, Literal

FileFormat = Literal["csv", "jsonl", "json", "parquet"]
TableFormat = Literal["parquet", "delta"]


def known_types(value: dict[str, str]) -> dict[str, str]:
    """Every value is a type name landfall knows (see `landfall.types.user_type`)."""
    from landfall.types import user_type

    for type_name in value.values():
        user_type(type_name)
    return value


def one_or_many(value: Any) -> Any:
    """`a` -> `[a]` (a list written as its one item); anything else as it is."""
    return [value] if isinstance(value, str) else value


def size_text(value: str | None) -> str | None:
    """A size as written (`"256MB"`), checked with `parse_size`; unset stays unset."""
    if value is not None:
        parse_size(value)
    return value


def parse_size(text: str | int) -> int:
    """`"256MB"` -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"size `{text}`: expected a number with a unit such as `128MB` or `1GB`")
    unit = (m.group(2) or "B").upper().replace("I", "").rstrip("B") or "B"
    scale = {"B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[unit]
    return int(float(m.group(1)) * scale)


def landing_prefix(value: str, what: str) -> str:
    """A prefix under the landing zone, `raw/clicks/`: relative, inside the zone, not hidden."""
    from landfall.events import safe_key

    try:
        key = safe_key(value.rstrip("/"))
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None
    hidden = [part for part in key.split("/") if part.startswith((".", "_"))]
    if hidden:
        raise ValueError(
            f"{what} `{value}`: `{hidden[0]}` starts with `.` or `_`, and such names are never loaded; rename it"
        )
    return key + "/"
