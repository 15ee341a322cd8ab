"""A stream: records in, acknowledged once on disk in the segment log, flushed by size or age into landed files.

`Stream.put` checks each record, appends the good ones (and, with an `error_prefix`, the bad ones) to the log in
one write, and returns their offsets with a future that resolves once they are on disk: only then is the call
acknowledged. `Stream.flush` turns what is on disk into JSON Lines files under the stream's prefix:

1. the range [flushed, durable end) is recorded as pending in the checkpoint (fsync), so a crash redoes exactly
   that range;
2. records are grouped by partition folder and arrival hour; each group becomes one file whose name comes from
   the stream, the log id and the offset of its first record, so redoing a flush makes the same names (a file
   already landed is not written again);
3. the files are written whole (`Storage.write_bytes`: temp name, fsync, rename) and submitted to the pipeline's queue;
4. the checkpoint moves past the range and the segments before it are deleted.

A crash anywhere in there lands each record once: before 1 nothing was written; between 1 and 4 the same files
are made again or found in place; the pipeline's load history ignores a file version it already knows.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from landfall.config import StreamConfig
from landfall.errors import LandfallError, Transient
from landfall.events import ObjectCreated
from landfall.sources.listing import to_event
from landfall.storage import Storage
from landfall.streams.log import ERROR, RECORD, Frame, Frames, LogFull, SegmentLog
from landfall.streams.records import BadRecord, RecordCheck
from landfall.testing.faults import crash_point

log = logging.getLogger("landfall.streams")

Submit = Callable[[Sequence[ObjectCreated]], object]


class Throttled(LandfallError, Transient):
    """The stream holds more unflushed data than its buffer limit; the producer should retry later."""


@dataclass(slots=True)
class Result:
    """One record's fate: `offset` in the log when accepted, else the error `code` and `message`.

    `to_errors` is true for a bad record that was accepted into the stream's `error_prefix` instead."""

    offset: int | None = None
    code: str | None = None
    message: str | None = None
    to_errors: bool = False

    @property
    def ok(self) -> bool:
        return self.offset is not None


@dataclass
class Put:
    """What one call did: a result per record, and where in the log its accepted records end (0: none)."""

    results: list[Result]
    end: int
    log: SegmentLog

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.ok)

    @property
    def durable(self) -> Future[int]:
        """A future resolved once the accepted records are on disk."""
        return self.log.durable_future(self.end)

    def on_disk(self) -> Awaitable[int]:
        """The same, awaitable in the running asyncio loop."""
        return self.log.on_disk(self.end)


@dataclass
class Stream:
    config: StreamConfig
    log: SegmentLog
    landing: Storage
    submit: Submit | None = None
    check: RecordCheck = field(init=False)

    def __post_init__(self) -> None:
        self.check = RecordCheck(self.config)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._oldest: float | None = None
        # what `/metrics` shows (this process's): records by outcome, bytes appended, calls refused whole by reason
        self.records: dict[str, int] = {"accepted": 0, "errored": 0, "refused": 0}
        self.bytes_in = 0
        self.calls_refused: dict[str, int] = {"throttled": 0, "disk": 0}
        self.files_landed = 0
        if self.log.written > self.log.flushed:
            first = self.log.frame_at(self.log.flushed)
            self._oldest = first.arrival if first else time.time()

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def unflushed(self) -> int:
        """Bytes written to the log and not yet flushed into landed files."""
        return self.log.written - self.log.flushed

    def status(self) -> dict[str, Any]:
        """What this stream did since the process started and what it holds now (`GET /api/streams`, `/metrics`)."""
        cfg = self.config
        with self._lock:  # the two as one flush leaves them: no bytes waiting with an age, nor the reverse
            unflushed, age = self.unflushed, self.oldest_age
        return {
            "name": self.name,
            "prefix": cfg.prefix,
            "error_prefix": cfg.error_prefix,
            "records": dict(self.records),
            "bytes": self.bytes_in,
            "calls_refused": dict(self.calls_refused),
            "files_landed": self.files_landed,
            "log": self.log.trouble or "ok",
            "log_failures": self.log.failures,
            "unflushed_bytes": unflushed,
            "oldest_unflushed_age_seconds": round(age, 3),
        }

    @property
    def oldest_age(self) -> float:
        """Seconds the oldest record not yet landed has waited (0: none waits)."""
        oldest = self._oldest
        return max(0.0, time.time() - oldest) if oldest is not None else 0.0

    # --- records in -------------------------------------------------------------------------------------------

    def put(self, records: Sequence[bytes], *, now: float | None = None) -> Put:
        """Check and append records; `Put.durable` resolves once the accepted ones are on disk.

        Raises `Throttled` (and appends nothing) when the stream is over its buffer limit."""
        limit = self.config.buffer.limit_bytes
        if self.unflushed > limit:
            self.calls_refused["throttled"] += 1
            raise Throttled(
                f"stream `{self.name}` holds {self.unflushed / (1 << 20):.1f} MiB not yet flushed, over its limit "
                f"of {limit / (1 << 20):.0f} MiB (`buffer.limit_mb`); slow down and retry"
            )
        frames = Frames(time.time() if now is None else now)
        results: list[Result] = []
        check, add, errors_to = self.check, frames.add, self.config.error_prefix is not None
        for data in records:
            try:
                line, part = check(data)
            except BadRecord as exc:
                if errors_to:
                    meta = json.dumps({"code": exc.code, "message": str(exc)}).encode("utf-8")
                    results.append(Result(add(ERROR, meta, bytes(data)), exc.code, str(exc), True))
                else:
                    results.append(Result(None, exc.code, str(exc)))
                continue
            results.append(Result(add(RECORD, part, line)))
        with self._lock:
            if frames.buf:
                try:
                    start, end = self.log.append(frames.buf)  # `LogFull`: nothing kept
                except LogFull:
                    self.calls_refused["disk"] += 1
                    raise
                if self._oldest is None:
                    self._oldest = frames.arrival
                self.bytes_in += len(frames.buf)
            for r in results:
                self.records["refused" if r.offset is None else "errored" if r.to_errors else "accepted"] += 1
        if not frames.buf:
            return Put(results, 0, self.log)
        for r in results:
            if r.offset is not None:
                r.offset += start
        return Put(results, end, self.log)

    # --- records out ------------------------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        """Whether the buffer is full (`size_mb`) or its oldest record has waited `interval_seconds`."""
        if self.log.durable <= self.log.flushed and not self.log.pending:
            return False
        if self.log.pending or self.log.durable - self.log.flushed >= self.config.buffer.size_bytes:
            return True
        oldest = self._oldest
        return oldest is not None and now - oldest >= self.config.buffer.interval_seconds

    def flush(self) -> list[ObjectCreated]:
        """Land every record on disk and not yet landed (or finish a flush a crash cut short); see the module doc."""
        with self._flush_lock:
            if self.log.pending:
                start, end = self.log.pending
                frames = list(self.log.read(start, end))
            else:
                start, upto = self.log.flushed, self.log.durable
                frames = self._take(start, upto)
                if not frames:  # none; or offsets a failed sync cut back, none of them acknowledged: passed over
                    if upto > start:
                        with self._lock:
                            self.log.end_flush(upto)
                            self._oldest = None if self.log.written <= upto else self._oldest
                    return []
                last = frames[-1]
                end = last.offset + last.size
                self.log.begin_flush(start, end)
            crash_point("stream_after_pending")
            files = self._files(frames)
            events = []
            for key, data in files:
                try:
                    info = self.landing.info(key)  # landed before a crash: whole (written under a temp name)
                except FileNotFoundError:
                    self.landing.write_bytes(key, data, sync=True)
                    info = self.landing.info(key)
                    self.files_landed += 1
                events.append(to_event(key, info))
                crash_point("stream_after_land")
            if self.submit is not None and events:
                self.submit(events)
            crash_point("stream_after_submit")
            with self._lock:
                self.log.end_flush(end)
                nxt = self.log.frame_at(end) if self.log.written > end else None
                self._oldest = None if self.log.written <= end else (nxt.arrival if nxt else time.time())
            log.info("stream %s: landed %d files (log offsets %d-%d)", self.name, len(files), start, end)
            return events

    def _take(self, start: int, end: int) -> list[Frame]:
        """The frames from `start`, up to `end` or about one buffer's size (`size_mb`), whichever comes first."""
        frames, total, size = [], 0, self.config.buffer.size_bytes
        for f in self.log.read(start, end):
            frames.append(f)
            total += f.size
            if total >= size:
                break
        return frames

    def _files(self, frames: list[Frame]) -> list[tuple[str, bytes]]:
        """The landed files for these frames: (key, bytes), one per partition folder and arrival hour."""
        groups: dict[tuple[int, bytes, str], tuple[int, float, list[bytes]]] = {}
        for f in frames:
            hour = time.strftime("%Y/%m/%d/%H/", time.gmtime(f.arrival))
            gkey = (f.kind, f.meta if f.kind == RECORD else b"", hour)
            group = groups.get(gkey)
            if group is None:
                group = groups[gkey] = (f.offset, f.arrival, [])
            group[2].append(f.data if f.kind == RECORD else _error_line(self.name, f.meta, f.data, f.arrival))
        cfg = self.config
        ext = ".jsonl.gz" if cfg.compression == "gzip" else ".jsonl"
        out = []
        for (kind, part, hour), (first, arrival, lines) in groups.items():
            prefix = cfg.prefix if kind == RECORD else cfg.error_prefix
            stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(arrival))
            name = f"{cfg.name}-{stamp}-{self.log.id}-{first:020d}{ext}"
            data = b"\n".join(lines) + b"\n"
            if cfg.compression == "gzip":
                data = gzip.compress(data, compresslevel=6, mtime=0)
            out.append((f"{prefix}{part.decode('utf-8')}{hour}{name}", data))
        return out

    def close(self) -> None:
        self.log.close()


def _error_line(stream: str, meta: bytes, data: bytes, arrival: float) -> bytes:
    """A record that could not be delivered, as Firehose writes them to its error output."""
    err = json.loads(meta)
    return json.dumps(
        {
            "streamName": stream,
            "errorCode": err["code"],
            "errorMessage": err["message"],
            "arrivalTimestamp": int(arrival * 1000),
            "rawData": base64.b64encode(data).decode("ascii"),
        },
        separators=(",", ":"),
    ).encode("utf-8")
