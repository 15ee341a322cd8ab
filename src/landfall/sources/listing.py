"""Reconciliation by listing: every file under the landing root that the load history does not know yet.

This is what guarantees nothing is missed: files that landed while landfall was stopped, events a watcher
dropped, buckets without notifications. Files modified in the last `settle_seconds` are left for the next
pass, so a file still being written is not read half-way. A file whose time is ahead of this host's clock (set by
the writer's clock on a network share, or a file server's) would never look settled that way, and waited
unloaded, without a word, until the clock caught up (hours, for a writer in another time zone); such a file is
settled once a later pass finds it unchanged, and said once.

While a watcher reports changes as they happen (`landfall up` on a local landing zone), a pass need not read
every file again: `poll(changed_only=True)` looks at each folder's modification time (one stat per folder) and
lists only the folders that changed since the pass before: a file created, deleted or renamed changes its
folder's time; a file rewritten in place does not, and that is what the watcher reports. Every
`FULL_LISTING_SECONDS` a pass lists everything anyway. An idle `landfall up` over 100,000 landed files then costs
a few hundred stats every `reconcile_seconds` instead of 100,000.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from landfall.events import ObjectCreated, is_hidden
from landfall.sources.base import EventSource
from landfall.storage import Storage, mtime_of

if TYPE_CHECKING:
    from landfall.pipeline import Pipeline

log = logging.getLogger(__name__)

FULL_LISTING_SECONDS = 600.0  # with `changed_only`, still list everything this often
UNSURE_SECONDS = 2.0  # a folder changed this recently is listed again next pass (coarse clocks, racing writes)
AGAIN = -1.0  # a folder time that never matches: list the folder next pass


class ListingSource(EventSource):
    def __init__(self, landing: Storage | str, *, settle_seconds: float = 0.0) -> None:
        self.storage = landing if isinstance(landing, Storage) else Storage(landing, zone="landing")
        self.settle_seconds = settle_seconds
        self._folders: dict[str, float] = {}  # folder key ("" the root) -> its modification time when listed
        self._listed_all_at = 0.0
        self._ahead: dict[str, tuple[int, float, float]] = {}  # key -> size, mtime, when first seen: times ahead

    @classmethod
    def open(cls, options: Any, pipeline: Pipeline) -> ListingSource:
        return cls(pipeline.zones.landing, settle_seconds=pipeline.settings.settle_seconds)

    def poll(self, *, changed_only: bool = False) -> list[ObjectCreated]:
        """Files in the landing zone, oldest first. `changed_only`: only those in folders that changed since the
        last pass (a local zone with a watcher running); otherwise every file."""
        return sorted(self.scan(changed_only=changed_only), key=lambda e: (e.mtime, e.key))

    def scan(self, *, changed_only: bool = False) -> Iterator[ObjectCreated]:
        """`poll` as a stream, in listing order: nothing is held but the folder being read."""
        now = time.time()
        if not changed_only or not self.storage.is_local:
            found: Iterable[tuple[str, dict]] = self.storage.list()
            self._folders.clear()
        else:
            if now - self._listed_all_at >= FULL_LISTING_SECONDS:
                self._folders.clear()
                self._listed_all_at = now
            found = self._changed_folders(now)
        track = changed_only and self.storage.is_local
        if not track:  # a whole listing: forget the files ahead of the clock that are gone, or no longer ahead
            self._ahead = {k: v for k, v in self._ahead.items() if v[1] - now > self.settle_seconds}
        for key, info in found:
            if is_hidden(key):
                continue
            event = to_event(key, info)
            if self.settle_seconds and now - event.mtime < self.settle_seconds and not self._settled_ahead(event, now):
                if track:  # list its folder again next pass: the folder's time may not change again
                    self._folders[key.rpartition("/")[0]] = AGAIN
                continue
            yield event

    def _settled_ahead(self, event: ObjectCreated, now: float) -> bool:
        """Whether `event`, modified later than now by this host's clock, was found unchanged `settle_seconds` ago."""
        if event.mtime - now <= self.settle_seconds:  # modified just now (or the clocks barely differ)
            return False
        seen = self._ahead.get(event.key)
        if seen is None or seen[:2] != (event.size, event.mtime):
            if seen is None:
                log.warning(
                    "zone `landing`: `%s` was modified %.0f s ahead of this host's clock (the writer's, or the file "
                    "server's, differs); it loads once it is found unchanged for settle_seconds (%g s)",
                    event.key,
                    event.mtime - now,
                    self.settle_seconds,
                )
            self._ahead[event.key] = (event.size, event.mtime, now)
            return False
        return now - seen[2] >= self.settle_seconds

    def _changed_folders(self, now: float) -> list[tuple[str, dict]]:
        found: list[tuple[str, dict]] = []
        todo = list(self._folders) or [""]
        seen: set[str] = set()
        while todo:
            folder = todo.pop()
            if folder in seen:
                continue
            seen.add(folder)
            try:
                stamp = mtime_of(self.storage.info(folder))
            except FileNotFoundError:
                for gone in [f for f in self._folders if f == folder or f.startswith(f"{folder}/")]:
                    del self._folders[gone]
                continue
            if self._folders.get(folder) == stamp:
                continue
            files, inner = self.storage.here(folder)  # a folder it cannot read is said, and holds nothing
            found.extend(files)
            todo.extend(f"{folder}/{name}" if folder else name for name in inner)
            self._folders[folder] = stamp if now - stamp >= UNSURE_SECONDS else AGAIN
        return found


def to_event(key: str, info: dict) -> ObjectCreated:
    mtime = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or 0.0
    if hasattr(mtime, "timestamp"):
        mtime = mtime.timestamp()
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    return ObjectCreated(key=key, size=int(info.get("size") or 0), mtime=float(mtime), etag=etag)
