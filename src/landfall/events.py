"""What an event source reports: an object appeared (or changed) in the landing zone."""

from __future__ import annotations

from dataclasses import dataclass


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
