"""Keys that come from outside (a stream's prefix, a record's partition values) stay inside the landing zone.

`safe_key` is the one validator for keys from outside; it moves to `landfall.events` with the other sources.
Partition values are escaped as Hive escapes them, so any value makes one folder name and never a path.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_key(key: str, *, what: str = "key") -> str:
    """`key` if it names something inside its zone: relative, no `..` or `.` parts, no backslash or control
    characters, no empty parts. Raises `ValueError` naming what was found and what is allowed."""
    if not key:
        raise ValueError(f"{what} is empty; expected a relative path such as `raw/clicks`")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise ValueError(f"{what} `{key}` is absolute; expected a path relative to its zone, such as `raw/clicks`")
    bad = _UNSAFE.search(key)
    if bad:
        raise ValueError(f"{what} `{key}` contains {bad.group()!r}; use `/` between folders and printable names")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{what} `{key}` has an empty, `.` or `..` part; it must stay inside its zone")
    return key


# Characters Hive escapes in partition folder names (FileUtils.escapePathName), plus space and `%` itself.
_HIVE_ESCAPE = set("\"#%'*/:=?\\{[]^") | {chr(c) for c in range(0x20)} | {"\x7f"}


def partition_value(value: str) -> str:
    """A record's partition value as one folder name: `view`, `a%2Fb` for `a/b` (Hive's escaping)."""
    if not any(ch in _HIVE_ESCAPE for ch in value) and value not in (".", ".."):
        return value
    out = "".join(f"%{ord(ch):02X}" if ch in _HIVE_ESCAPE else ch for ch in value)
    return out.replace(".", "%2E") if out in (".", "..") else out
