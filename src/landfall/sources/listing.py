"""Reconciliation by listing: every file under the landing root that the load history does not know yet.

This is what guarantees nothing is missed: files that landed while landfall was stopped, events a watcher
dropped, buckets without notifications. Files modified in the last `settle_seconds` are left for the next
pass, so a file still being written is not read half-way.
"""

from __future__ import annotations

import time

import fsspec

from landfall.events import ObjectCreated, is_hidden
from landfall.sources.base import EventSource


class ListingSource(EventSource):
    def __init__(self, url: str, *, settle_seconds: float = 0.0) -> None:
        self.url = url.rstrip("/")
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.root = self.root.rstrip("/")
        self.settle_seconds = settle_seconds

    def key_of(self, path: str) -> str:
        return path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path

    def poll(self) -> list[ObjectCreated]:
        if not self.fs.exists(self.root):
            return []
        now = time.time()
        out = []
        for path, info in self.fs.find(self.root, detail=True).items():
            if info.get("type") != "file":
                continue
            key = self.key_of(path)
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
