"""Watching a local landing folder (watchdog: inotify on Linux). A closed or moved-in file is reported at
once; the listing pass that runs beside it catches anything a watcher can miss."""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from watchdog.events import FileClosedEvent, FileMovedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from landfall.events import ObjectCreated, is_hidden
from landfall.sources.base import EventSource, Sink

if TYPE_CHECKING:
    from landfall.pipeline import Pipeline
    from landfall.storage import Storage

log = logging.getLogger("landfall.sources")


class WatchSource(EventSource):
    def __init__(self, landing: Storage, nudge: threading.Event | None = None) -> None:
        self.landing = landing
        self.root = os.path.abspath(landing.root)
        self.nudge = nudge
        self._observer = None
        self._sink: Sink | None = None

    @classmethod
    def open(cls, options: Any, pipeline: Pipeline) -> WatchSource:
        return cls(pipeline.zones.landing, nudge=pipeline.work_available)

    def poll(self) -> list[ObjectCreated]:
        return []

    def event_for(self, path: str) -> ObjectCreated | None:
        key = os.path.relpath(path, self.root).replace(os.sep, "/")
        if key.startswith("..") or is_hidden(key) or not self.landing.recordable(key):
            return None
        real = os.path.realpath(path)
        if not real.startswith(os.path.realpath(self.root) + os.sep):
            log.warning("`%s` is a link to `%s`, outside the landing zone: not loaded", key, real)
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return ObjectCreated(key=key, size=st.st_size, mtime=st.st_mtime)

    def start(self, sink: Sink) -> None:
        os.makedirs(self.root, exist_ok=True)
        self._sink = sink
        source = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory:
                    return
                if isinstance(event, FileMovedEvent):
                    path = event.dest_path
                elif isinstance(event, FileClosedEvent):
                    path = event.src_path
                else:
                    if source.nudge is not None and event.event_type == "created":
                        source.nudge.set()
                    return
                ev = source.event_for(os.fsdecode(path))
                if ev is not None and source._sink is not None:
                    source._sink([ev])
                    if source.nudge is not None:
                        source.nudge.set()

        self._observer = Observer()
        self._observer.schedule(Handler(), self.root, recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
