"""What an event source reports: an object appeared (or changed) in the landing zone; and the one check every key
that comes from outside (a command line, an HTTP request, a queue message, a stream) goes through."""

from __future__ import annotations

import re
from dataclasses import dataclass

from landfall.errors import UnsafeKey


@dataclass(frozen=True)
class ObjectCreated:
    """A file version in the landing zone. `key` is relative to the landing root (`sales/2024-01.csv`)."""

    key: str
    size: int
    mtime: float
    etag: str = ""

    @property
    def prefix(self) -> str:
        return self.key.rsplit("/", 1)[0] + "/" if "/" in self.key else ""


def is_hidden(key: str) -> bool:
    """Names starting with `.` or `_` (temporary uploads, markers) are never loaded."""
    return any(part.startswith((".", "_")) for part in key.split("/"))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_key(key: str) -> str:
    """A key relative to its zone, checked: the normalized key (`./` segments dropped), or `UnsafeKey`.

    Refused: `..` segments, absolute paths (`/x`, `C:...`), backslashes, NUL and other control characters,
    and empty segments (`a//b`, a trailing `/`). A key that passes names a place inside its zone, whatever the
    storage behind it.
    """
    if not isinstance(key, str) or not key:
        raise UnsafeKey("empty key: name a file inside the zone, like `sales/2024-01.csv`")
    shown = key.encode("unicode_escape").decode("ascii")
    if _CONTROL.search(key):
        raise UnsafeKey(f"key `{shown}` holds a control character (NUL, newline, ...); use printable names only")
    if "\\" in key:
        raise UnsafeKey(f"key `{shown}` holds a backslash; separate folders with `/`")
    if key.startswith("/") or _DRIVE.match(key):
        raise UnsafeKey(f"key `{shown}` is an absolute path; keys are relative to their zone, like `sales/a.csv`")
    parts = [p for p in key.split("/") if p != "."]
    if ".." in parts:
        raise UnsafeKey(f"key `{shown}` has a `..` segment, which would leave its zone; name a place inside it")
    if not parts or "" in parts:
        raise UnsafeKey(f"key `{shown}` has an empty segment (`//` or a trailing `/`); name a file, like `a/b.csv`")
    return "/".join(parts)
