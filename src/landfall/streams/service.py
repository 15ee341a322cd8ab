"""`Streams`: every stream of `landfall.yaml`, and the thread that flushes them into the landing zone.

It is an event source like the watcher: started with the pipeline's `submit` as its sink, it lands files and
reports them at once. Opening it takes each stream's segment log (one process per log) and finishes any flush
a crash cut short, so records accepted before a crash land before new ones.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from landfall.config import Settings
from landfall.errors import LandfallError
from landfall.events import ObjectCreated
from landfall.sources.base import EventSource, Sink
from landfall.storage import Storage, Zones
from landfall.streams.log import SegmentLog, unlanded_bytes
from landfall.streams.stream import Stream

log = logging.getLogger("landfall.streams")


def warn_left_behind(settings: Settings) -> list[str]:
    """Say, once at start, which segment logs in `stream_log_dir` hold records accepted but not landed for a
    stream landfall.yaml no longer has (removed or renamed since): nothing lands them until it is put back.
    Returns the lines logged."""
    root = settings.stream_log_path
    try:
        names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    except OSError:
        return []
    known = {cfg.name for cfg in settings.streams}
    said = []
    for name in names:
        if name not in known and (size := unlanded_bytes(os.path.join(root, name))):
            said.append(
                f"stream `{name}` is not in landfall.yaml, but its segment log ({os.path.join(root, name)}) holds "
                f"{size:,} bytes of records accepted and not landed: put the stream back in `streams:` (as it was) "
                "and start `landfall serve` to land them; delete the folder only to drop them"
            )
    for line in said:
        log.warning("%s", line)
    return said


class NoSuchStream(KeyError, LandfallError):
    """`landfall.yaml` has no stream of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such stream"


class Streams(EventSource):
    """The configured streams by name; `start(sink)` flushes them in the background, `close()` stops."""

    tick_seconds = 0.05  # how often the flusher looks at buffer ages
    max_backoff_seconds = 30.0

    def __init__(self, settings: Settings, landing: Storage | None = None) -> None:
        self.settings = settings
        landing = landing or Zones(settings).landing
        self._streams: dict[str, Stream] = {}
        try:
            for cfg in settings.streams:
                folder = os.path.join(settings.stream_log_path, cfg.name)
                self._streams[cfg.name] = Stream(cfg, SegmentLog(folder), landing)
        except BaseException:
            for st in self._streams.values():
                st.close()
            raise
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    def __iter__(self):
        return iter(self._streams.values())

    def status(self) -> list[dict[str, Any]]:
        """Each stream's `Stream.status()`, by name."""
        return [self._streams[n].status() for n in sorted(self._streams)]

    def readiness(self) -> dict[str, str]:
        """`{"stream:<name>": "ok"}` for each stream whose log takes records, else why it refuses them."""
        return {f"stream:{st.name}": st.log.trouble or "ok" for st in self._streams.values()}

    def get(self, name: str) -> Stream:
        try:
            return self._streams[name]
        except KeyError:
            known = ", ".join(f"`{n}`" for n in self._streams) or "none (add `streams:` to landfall.yaml)"
            raise NoSuchStream(f"no stream named `{name}`; known: {known}") from None

    def poll(self) -> list[ObjectCreated]:
        """Flush every stream that is due; the landed files are also given to the sink when started."""
        return self._flush(force=False)

    def flush(self) -> list[ObjectCreated]:
        """Land everything on disk now, whatever the buffer hints say."""
        return self._flush(force=True)

    def _flush(self, *, force: bool) -> list[ObjectCreated]:
        now = time.time()
        landed: list[ObjectCreated] = []
        for st in self._streams.values():
            if not force and (self._retry_at.get(st.name, 0) > now or not st.due(now)):
                continue
            try:
                while (force and st.log.durable > st.log.flushed) or (not self._stop.is_set() and st.due(now)):
                    landed += st.flush()
                self._failures.pop(st.name, None)
                self._retry_at.pop(st.name, None)
            except Exception as exc:
                if force:
                    raise
                n = self._failures[st.name] = self._failures.get(st.name, 0) + 1
                wait = min(self.max_backoff_seconds, 0.5 * 2 ** (n - 1))
                self._retry_at[st.name] = now + wait
                log.warning("stream %s: flush failed (%s); retrying in %.1fs", st.name, exc, wait)
        return landed

    def start(self, sink: Sink) -> None:
        for st in self._streams.values():
            st.submit = sink
        self._thread = threading.Thread(target=self._loop, name="landfall-streams", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._flush(force=False)
            self._wake.wait(self.tick_seconds)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def close(self, *, flush: bool = True) -> None:
        """Stop flushing; land what is on disk (unless `flush=False`; it lands on the next start); close the logs."""
        self.stop()
        try:
            if flush:
                try:
                    self._flush(force=True)
                except Exception as exc:  # stays in the log, lands on the next start
                    log.warning("streams: final flush failed (%s); the records stay in the log", exc)
        finally:
            for st in self._streams.values():
                st.close()
