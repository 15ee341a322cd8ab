"""Reconciliation by listing: every file under the landing root that the load history does not know yet.

This is what guarantees nothing is missed: files that landed while landfall was stopped, events a watcher
dropped, buckets without notifications. Files modified in the last `settle_seconds` are left for the next
pass, so a file still being written is not read half-way.
"""

from __future__ import annotations

import time

from landfall.events import ObjectCreated, is_hidden
from landfall.sources.base import EventSource
from landfall.storage import Storage


class ListingSource(EventSource):
    def __init__(self, landing: Storage | str, *, settle_seconds: float = 0.0) -> None:
        self.storage = landing if isinstance(landing, Storage) else Storage(landing, zone="landing")
        self.settle_seconds = settle_seconds

    def poll(self) -> list[ObjectCreated]:
        now = time.time()
        out = []
        for key, info in self.storage.list():
            if is_hidden(key):
                continue
            event = to_event(key, info)
            if self.settle_seconds and now - event.mtime < self.settle_seconds:
                continue
            out.append(event)
        out.sort(key=lambda e: (e.mtime, e.key))
        return out


def to_event(key: str, info: dict) -> ObjectCreated:
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0.0
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    return ObjectCreated(key=key, size=int(info.get("size") or 0), mtime=float(mtime), etag=etag)
