"""Hive partition folders (`column=value/`) as a table's files are named, whichever engine wrote them (DuckDB
names them; Spark's are renamed so): a value is escaped as DuckDB escapes it (every byte but ASCII letters,
digits and `-_.~` as `%XX`), NULL is `__HIVE_DEFAULT_PARTITION__`, and a value that is that text itself
`%5F_HIVE_DEFAULT_PARTITION__`. The folder names are the truth of a Parquet table's partition values (readers
take them from the path), so they are read back here exactly, never from what an engine reports beside them."""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from landfall.errors import InvalidInput

NULL = "__HIVE_DEFAULT_PARTITION__"
FOLDER = re.compile(r"^[^=/]+=[^/]*$")
NAME_MAX = 255  # the bytes a file name may have on the usual file systems (ext4, xfs, btrfs, APFS, NTFS)


def escaped(value: str | None) -> str:
    """A partition value as its folder name holds it."""
    if value is None:
        return NULL
    text = urllib.parse.quote(value, safe="")
    return "%5F" + text[1:] if text == NULL else text


def folder(column: str, value: str | None) -> str:
    return f"{escaped(column)}={escaped(value)}"


def values_of(rel_dir: str) -> dict[str, str | None]:
    """The partition values a file's folders (`a=1/b=x%2Fy`) name: `{"a": "1", "b": "x/y"}`."""
    values: dict[str, str | None] = {}
    for part in rel_dir.replace(os.sep, "/").split("/"):
        if "=" in part:
            k, _, v = part.partition("=")
            values[urllib.parse.unquote(k)] = None if v == NULL else urllib.parse.unquote(v)
    return values


def delta_values(
    partition: dict[str, str | None], zoned: set[str], naive: set[str] = frozenset()
) -> dict[str, str | None]:
    """A file's partition values as a Delta log writes them: a timestamp with a zone (`zoned`: those columns) in
    UTC as ISO 8601 (`2024-01-01T08:00:00.123456Z`), where its folder holds DuckDB's text
    (`2024-01-01 08:00:00.123456+00`), which Delta readers refuse; a timestamp without one (`naive`) with its
    time, where the folder of a file written while the column held dates (widened since) holds a date alone
    (`2024-01-01`), which Delta readers refuse too; every other value as its folder holds it."""
    out = dict(partition)
    for name in zoned & out.keys():
        if (text := out[name]) is not None:
            at = datetime.fromisoformat(text)  # Spark's folders hold it without its zone, in UTC
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            out[name] = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for name in naive & out.keys():
        if (text := out[name]) is not None and len(text) == len("2024-01-01"):
            out[name] = f"{text} 00:00:00"
    return out


def same_values(partition: dict[str, str | None], types: dict[str, str]) -> tuple[tuple[str, Any], ...]:
    """A partition's values as an overwrite of partitions compares them: by the value of the column's type (Arrow
    type strings, `types`), so that one value written two ways is one partition. A column widened from dates to
    timestamps, or from integers to doubles, keeps the folders its earlier files were written in (`2026-01-01`,
    `5`), where a file now writes `2026-01-01 00:00:00` and `5.0`: compared as text, the partition it brought
    was not replaced, and both rows stayed."""
    return tuple((name, _typed(text, types.get(name, ""))) for name, text in sorted(partition.items()))


def by_value(files: Iterable[Any], types: dict[str, str]) -> dict[str, list[Any]]:
    """Data files (anything with a `partition` dict) grouped by partition as `same_values` compares them: a widened
    column's earlier folder (`n=5`) and its later one (`n=5.0`) are one partition, labelled as the widest type
    writes it (the longest label: `n=5.0`, `d=2026-01-01 00:00:00`), whose files come first. `{label: files}`, the
    label `""` for a table without partitions."""
    groups: dict[tuple[tuple[str, Any], ...], list[Any]] = {}
    for f in files:
        groups.setdefault(same_values(f.partition, types), []).append(f)
    out: dict[str, list[Any]] = {}
    for group in groups.values():
        labels = ["/".join(f"{k}={v}" for k, v in f.partition.items()) for f in group]
        label = max(labels, key=lambda text: (len(text), text))
        out[label] = [f for f, text in zip(group, labels, strict=True) if text == label]
        out[label] += [f for f, text in zip(group, labels, strict=True) if text != label]
    return out


def _typed(text: str | None, kind: str) -> Any:
    if text is None:
        return None
    try:
        if kind.startswith(("timestamp", "date")):
            at = datetime.fromisoformat(text)  # DuckDB's folders hold a zone (`+00`), Spark's are in UTC without
            return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at
        if kind.startswith(("int", "uint", "double", "float", "decimal")) and not (number := Decimal(text)).is_nan():
            return number  # `5` == `5.0`, as their hashes
    except (ValueError, InvalidOperation):
        pass
    return text


def name_max(path: str) -> int:
    """The bytes a file name may have in the local folder `path` (or the nearest folder above it that exists)."""
    while path and not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        return int(os.pathconf(path or ".", "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def room(column: str, limit: int) -> int:
    """The bytes a value of `column` may take escaped in a folder name of at most `limit` bytes."""
    return limit - len(escaped(column)) - 1


def too_long(
    column: str,
    found: Iterable[tuple[str | None, str]],
    limit: int,
    fmt: str,
    line_of: Callable[[str, str], int | None] | None = None,
) -> InvalidInput | None:
    """The error of a file whose `column` holds a value too long to name its folder, among `found` (value,
    landed file) pairs: the earliest line of the first twenty such values (`line_of(file, value)`, when the file's
    records hold the column), and the ways out; None when none is."""
    from landfall.engines.base import where_in  # the engines' seam reads the config, which reads this module

    bad = [(v, k) for v, k in found if v is not None and len(escaped(v)) > room(column, limit)][:20]
    if not bad:
        return None
    located = ((line_of(k, v) if line_of else None, v, k) for v, k in bad)
    line, value, key = min(located, key=lambda x: (x[0] is None, x[0] or 0))
    fits, size = 0, 0  # the characters of the value that fit, each escaped on its own (a value may be megabytes)
    for ch in value:
        size += len(urllib.parse.quote(ch, safe=""))
        if size > room(column, limit):
            break
        fits += 1
    shown = value[:40] + "…" if len(value) > 40 else value
    return InvalidInput(
        f"{where_in(key, line, fmt)}: partition column `{column}` holds a value of {len(value):,} characters "
        f"(`{shown}`), too long to name a folder: `{column}=` and the value, escaped, take "
        f"{len(folder(column, value)):,} bytes, and a file name has at most {limit} here; shorten it in a step "
        f'(`compute: {{{column}: "left({column}, {fits})"}}`), set such rows aside with a rule '
        f'(`{{expect: "length({column}) <= {fits}", action: quarantine}}`), or partition by another column',
        file=key,
        line=line,
    )
