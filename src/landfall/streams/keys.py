"""A record's partition values become folder names: escaped as Hive escapes them, so any value makes one folder
name and never a path (prefixes from the config go through `landfall.events.safe_key`)."""

from __future__ import annotations

# Characters Hive escapes in partition folder names (FileUtils.escapePathName), `%` and `/` among them.
_HIVE_ESCAPE = set("\"#%'*/:=?\\{[]^") | {chr(c) for c in range(0x20)} | {"\x7f"}


def partition_value(value: str) -> str:
    """A record's partition value as one folder name: `view`, `a%2Fb` for `a/b` (Hive's escaping). The folder is
    `<field>=<value>`, so even `..` stays a name."""
    if not any(ch in _HIVE_ESCAPE for ch in value):
        return value
    return "".join(f"%{ord(ch):02X}" if ch in _HIVE_ESCAPE else ch for ch in value)
