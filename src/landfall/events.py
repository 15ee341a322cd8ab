"""What an event source reports: an object appeared (or changed) in the landing zone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


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


def parse_s3_notification(body: str | dict[str, Any], *, strip_prefix: str = "") -> Iterator[ObjectCreated]:
    """Yield the `ObjectCreated:*` records of an S3 event notification (as SQS or a webhook delivers it)."""
    doc = json.loads(body) if isinstance(body, str) else body
    if "Message" in doc and isinstance(doc["Message"], str):  # wrapped by SNS
        doc = json.loads(doc["Message"])
    for record in doc.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        obj = record.get("s3", {}).get("object", {})
        key = unquote_plus(obj.get("key", ""))
        if strip_prefix and key.startswith(strip_prefix):
            key = key[len(strip_prefix):]
        yield ObjectCreated(key=key, size=int(obj.get("size", 0)), mtime=0.0, etag=str(obj.get("eTag", "")))
