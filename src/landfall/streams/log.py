"""The segment log: an append-only file of framed records in a local folder, fsynced with group commit.

A record is acknowledged only once the bytes that hold it are on disk. Appends write at once (into the page
cache) and return the log offset their bytes end at; one syncer thread calls `fdatasync` for everything written
so far and then resolves every waiter whose bytes it covered, so concurrent callers share one fsync and the disk
sees one flush per round, however many requests arrive meanwhile.

Layout of `<folder>/`:

    LOCK                    held (flock) by the one process that owns the log
    log.id                  a random id written once: part of every landed file name, so two logs never collide
    checkpoint.json         {"flushed": offset, "pending": {"start": a, "end": b} | null}
    <base offset>.seg       frames; a segment's name is the log offset of its first byte

Offsets are byte positions in the whole log. A frame is `<payload length u32><crc32 u32><payload>` and its payload
`<arrival f64><kind u8><meta length u16><meta><data>`. On open, the tail after the last whole frame (a write
cut short by a crash, never acknowledged) is cut off.

A sync the disk refuses (an I/O error, a full disk) is a crash in small: what was not yet on disk is not
acknowledged (its callers get `LogFull`: retry), the log is cut back to the end of what is, and appends go on
from there; while the disk refuses even that, appends are refused and the cut is tried again every
`HEAL_SECONDS`. After a failed fsync the kernel may have dropped the pages it could not write and call them
clean, so the bytes after the last good sync are never trusted, nor fsynced again, nor read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import heapq
import json
import logging
import os
import secrets
import struct
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from landfall.errors import LandfallError, Transient
from landfall.storage.local import flush

log = logging.getLogger("landfall.streams")

HEADER = struct.Struct("<II")
META = struct.Struct("<dBH")
SEGMENT_BYTES = 64 << 20
HEAL_SECONDS = 1.0  # between tries to cut the log back after a failed sync, while the disk refuses that too

RECORD = 0  # a record to deliver; meta is its partition folder (`event_type=view/`) or empty
ERROR = 1  # a record that cannot be delivered; meta is JSON {"code", "message"}, data the raw bytes


class LogBusy(LandfallError, Transient):
    """Another process holds the stream's segment log."""


class LogClosed(LandfallError, Transient):
    """The segment log was closed before the record was on disk; it was not acknowledged."""


class LogFull(LandfallError, Transient):
    """The disk refused the records (full, or a quota); nothing of them was kept or acknowledged: retry."""


@dataclass(frozen=True)
class Frame:
    offset: int  # where the frame starts in the log
    arrival: float  # seconds since the epoch, when the record was accepted
    kind: int
    meta: bytes
    data: bytes

    @property
    def size(self) -> int:
        """Bytes the frame takes in the log."""
        return HEADER.size + META.size + len(self.meta) + len(self.data)


def frame(arrival: float, kind: int, meta: bytes, data: bytes) -> bytes:
    """One record as log bytes."""
    frames = Frames(arrival)
    frames.add(kind, meta, data)
    return bytes(frames.buf)


class Frames:
    """Records framed for one append, all with one arrival time (the prefix of each kind and meta made once)."""

    def __init__(self, arrival: float) -> None:
        self.arrival = arrival
        self.buf = bytearray()
        self._prefixes: dict[tuple[int, bytes], tuple[bytes, int]] = {}

    def add(self, kind: int, meta: bytes, data: bytes) -> int:
        """Frame one record; return where its frame starts in `buf`."""
        found = self._prefixes.get((kind, meta))
        if found is None:
            prefix = META.pack(self.arrival, kind, len(meta)) + meta
            found = self._prefixes[(kind, meta)] = (prefix, zlib.crc32(prefix))
        prefix, crc = found
        pos = len(self.buf)
        self.buf += HEADER.pack(len(prefix) + len(data), zlib.crc32(data, crc))
        self.buf += prefix
        self.buf += data
        return pos


def parse_frames(buf: bytes | memoryview, base: int) -> tuple[list[Frame], int]:
    """The whole frames at the start of `buf` (which starts at log offset `base`) and the offset after them."""
    frames = []
    pos, size = 0, len(buf)
    unpack_header, unpack_meta, hsize, msize = HEADER.unpack_from, META.unpack_from, HEADER.size, META.size
    view = memoryview(buf)
    while pos + hsize <= size:
        length, crc = unpack_header(view, pos)
        start = pos + hsize
        if length < msize or start + length > size:
            break
        payload = view[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        arrival, kind, mlen = unpack_meta(payload, 0)
        meta = bytes(payload[msize : msize + mlen])
        frames.append(Frame(base + pos, arrival, kind, meta, bytes(payload[msize + mlen :])))
        pos = start + length
    return frames, base + pos


def _settle(waiters: list[tuple[int, int, Any, Any]], value: int | None, exc: BaseException | None) -> None:
    """Resolve waiters: thread futures here, each loop's asyncio futures in one call into that loop."""
    by_loop: dict[Any, list[Any]] = {}
    for _, _, fut, loop in waiters:
        if loop is None:
            _settle_one(fut, value, exc)
        else:
            by_loop.setdefault(loop, []).append(fut)
    for loop, futs in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle_in_loop, futs, value, exc)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass


def _settle_in_loop(futs: list[Any], value: int | None, exc: BaseException | None) -> None:
    for fut in futs:
        _settle_one(fut, value, exc)


def _settle_one(fut: Any, value: int | None, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def segment_bases(folder: str) -> list[int]:
    """Base offsets of the segment files in `folder`, oldest first."""
    return sorted(int(n[:-4]) for n in os.listdir(folder) if n.endswith(".seg") and n[:-4].isdigit())


def segment_path(folder: str, base: int) -> str:
    return os.path.join(folder, f"{base:020d}.seg")


def read_checkpoint(folder: str) -> dict:
    try:
        with open(os.path.join(folder, "checkpoint.json"), encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {"flushed": 0, "pending": None}


def unlanded_bytes(folder: str) -> int:
    """How many bytes of the log in `folder` are past what was flushed (records accepted, not yet landed), read
    without taking the log: its segments' end less the checkpoint's `flushed` (0 for a folder that holds none)."""
    try:
        bases = segment_bases(folder)
        if not bases:
            return 0
        end = bases[-1] + os.path.getsize(segment_path(folder, bases[-1]))
        return max(0, end - int(read_checkpoint(folder)["flushed"]))
    except (OSError, ValueError):
        return 0


class SegmentLog:
    """Append framed records, wait until they are on disk, read them back, record what was flushed."""

    def __init__(self, folder: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.folder = folder
        self.segment_bytes = segment_bytes
        os.makedirs(folder, exist_ok=True)
        self._lock_fd = os.open(os.path.join(folder, "LOCK"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._lock_fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise LogBusy(
                    f"the segment log `{folder}` is held by another landfall process; run one server per log "
                    "folder (set `stream_log_dir` to a folder of its own for each server)"
                ) from None
            raise
        self.id = self._log_id()
        cp = read_checkpoint(folder)
        self.flushed: int = cp["flushed"]
        self.pending: tuple[int, int] | None = (
            (cp["pending"]["start"], cp["pending"]["end"]) if cp.get("pending") else None
        )
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)
        self._waiters: list[tuple[int, int, Any, Any]] = []  # (end, order, future, its loop or None)
        self._seq = 0
        self._retired: list[int] = []
        self._closed = False
        self._broken: LogFull | None = None  # a sync (or a cut) failed: appends are refused so until it is cut back
        self._cut: list[tuple[int, int, LogFull]] = []  # offset ranges (after, up to) cut back, and why
        self.failures = 0  # syncs (or cuts of a refused write) that failed: each cut the log back
        end = self._recover()
        self.written = self.durable = end
        self._syncer = threading.Thread(target=self._sync_loop, name=f"landfall-log-sync:{folder}", daemon=True)
        self._syncer.start()

    # --- files ------------------------------------------------------------------------------------------------

    @property
    def trouble(self) -> str | None:
        """Why appends are refused now (a failed sync or write not yet cut back, or the log closed), else None."""
        if self._closed:
            return f"the segment log `{self.folder}` is closed"
        broken = self._broken
        return None if broken is None else str(broken)

    def _path(self, base: int) -> str:
        return segment_path(self.folder, base)

    def segments(self) -> list[int]:
        """Base offsets of the segment files, oldest first."""
        return segment_bases(self.folder)

    def _fsync_dir(self) -> None:
        flush(self.folder)

    def _write_atomic(self, name: str, data: bytes) -> None:
        tmp = os.path.join(self.folder, f".{name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(self.folder, name))
        self._fsync_dir()

    @property
    def created(self) -> float:
        """When this log was made (its id was written then, once): a stream's creation time."""
        return os.stat(os.path.join(self.folder, "log.id")).st_mtime

    def _log_id(self) -> str:
        path = os.path.join(self.folder, "log.id")
        try:
            with open(path, encoding="ascii") as fh:
                found = fh.read().strip()
            if found:
                return found
        except FileNotFoundError:
            pass
        new = secrets.token_hex(6)
        self._write_atomic("log.id", new.encode("ascii"))
        return new

    def _write_checkpoint(self) -> None:
        pending = {"start": self.pending[0], "end": self.pending[1]} if self.pending else None
        self._write_atomic("checkpoint.json", json.dumps({"flushed": self.flushed, "pending": pending}).encode())

    def _recover(self) -> int:
        """Find the end of the log (cutting off a torn tail) and open the last segment for appending."""
        bases = self.segments()
        if not bases or bases[-1] + os.path.getsize(self._path(bases[-1])) < self.flushed:
            base = self.flushed  # fresh log, or segments removed by hand: start after what was flushed
            bases.append(base)
            open(self._path(base), "ab").close()
            self._fsync_dir()
        base = bases[-1]
        start = max(base, self.flushed) if self.flushed <= base + os.path.getsize(self._path(base)) else base
        with open(self._path(base), "rb") as fh:
            fh.seek(start - base)
            data = fh.read()
        _, end = parse_frames(data, start)
        size = base + os.path.getsize(self._path(base))
        if end < size:
            log.warning(
                "segment log %s: cut %d bytes after offset %d (a write cut short by a crash, never acknowledged)",
                self.folder,
                size - end,
                end,
            )
            os.truncate(self._path(base), end - base)
        self._base = base
        self._fd = os.open(self._path(base), os.O_WRONLY | os.O_APPEND)
        os.fsync(self._fd)
        return end

    # --- appending and group commit ---------------------------------------------------------------------------

    def append(self, data: bytes | bytearray) -> tuple[int, int]:
        """Write framed records; return their (start, end) offsets. Not yet durable: see `durable_future`."""
        with self._lock:
            if self._closed:
                raise LogClosed(f"the segment log `{self.folder}` is closed")
            if self._broken is not None:
                raise LogFull(str(self._broken))
            if self.written > self._base and self.written - self._base + len(data) > self.segment_bytes:
                self._roll()
            start = self.written
            view = memoryview(data)
            try:
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError as exc:
                self._cut_back(start, exc)
            self.written = start + len(data)
            self._synced.notify_all()
            return start, self.written

    def _cut_back(self, start: int, exc: OSError) -> None:
        """A write the disk refused part way: the segment is cut back to where the append began, so that the next
        append starts where the log's offsets say (with the part written left in place, every later frame would
        sit past its offset, and be cut off as a torn tail when the log is opened again). Called with the lock."""
        try:
            os.ftruncate(self._fd, start - self._base)
        except OSError:  # cannot even cut it back: as after a failed sync, the syncer cuts the log back (`_heal`)
            self.failures += 1
            self._broken = self._refused(exc, "written")
            self._fail_waiters(self._broken)
            self._synced.notify_all()
        raise LogFull(f"the segment log `{self.folder}`: {exc.strerror or exc}; nothing was kept, retry") from exc

    def _roll(self) -> None:
        """Start a new segment at the current end (the syncer syncs and closes the old one)."""
        self._retired.append(self._fd)
        self._base = self.written
        self._fd = os.open(self._path(self._base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._fsync_dir()

    def durable_future(self, end: int) -> Future[int]:
        """A future resolved (with `end`) once every byte before `end` is on disk."""
        fut: Future[int] = Future()
        self._wait_for(end, fut, None)
        return fut

    def on_disk(self, end: int) -> asyncio.Future[int]:
        """The same for asyncio: a future of the running loop. The syncer resolves all of a loop's futures that an
        fsync covered with one call into the loop, so a request costs one future, not a thread hop."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        self._wait_for(end, fut, loop)
        return fut

    def _wait_for(self, end: int, fut: Any, loop: asyncio.AbstractEventLoop | None) -> None:
        with self._lock:
            if cut := next((why for lo, hi, why in self._cut if lo < end <= hi), None):  # appended, then cut back
                fut.set_exception(cut)
            elif self.durable >= end:
                fut.set_result(end)
            elif self._broken is not None:  # not on disk, and the log is being cut back to what is
                fut.set_exception(self._broken)
            elif self._closed:
                fut.set_exception(LogClosed(f"the segment log `{self.folder}` closed before the record was on disk"))
            else:
                self._seq += 1
                heapq.heappush(self._waiters, (end, self._seq, fut, loop))
                self._synced.notify_all()

    def wait(self, end: int, timeout: float | None = None) -> None:
        self.durable_future(end).result(timeout)

    def _sync_loop(self) -> None:
        while True:
            with self._lock:
                while self.durable >= self.written and not self._closed and self._broken is None:
                    self._synced.wait()
                if self._closed and self.durable >= self.written:
                    return
                broken, target, fd, retired = self._broken, self.written, self._fd, self._retired
                self._retired = [] if broken is None else retired
            if broken is not None:  # a write that could not even be cut back (`_cut_back`)
                if not self._heal(broken):
                    return
                continue
            try:
                while retired:
                    os.fsync(retired[0])
                    os.close(retired.pop(0))
                os.fdatasync(fd)
            except OSError as exc:  # the disk refused: what it does not hold yet is not acknowledged
                for old in retired:
                    with contextlib.suppress(OSError):
                        os.close(old)
                log.error(
                    "segment log %s: a sync failed (%s): the records after offset %d are refused, and the log is "
                    "cut back to it",
                    self.folder,
                    exc.strerror or exc,
                    self.durable,
                )
                with self._lock:
                    self.failures += 1
                    self._broken = broken = self._refused(exc, "synced")
                    self._fail_waiters(broken)  # every waiter left waits past `durable`
                if not self._heal(broken):
                    return
                continue
            with self._lock:
                self.durable = max(self.durable, target)
                ready = []
                while self._waiters and self._waiters[0][0] <= self.durable:
                    ready.append(heapq.heappop(self._waiters))
            _settle(ready, target, None)

    def _fail_waiters(self, exc: BaseException) -> None:
        _settle(self._waiters, None, exc)
        self._waiters = []

    def _refused(self, exc: OSError, what: str) -> LogFull:
        why = exc.strerror or exc
        return LogFull(f"the segment log `{self.folder}` could not be {what} ({why}); nothing was kept, retry")

    def _heal(self, why: LogFull) -> bool:
        """After a failed sync (in the syncer thread, the only one that syncs or closes segment files): cut the log
        back to its durable end and take appends again (`why`: what the callers were told); tried again every
        `HEAL_SECONDS` while the disk refuses. False once the log is closed meanwhile."""
        with self._lock:
            while not self._closed:
                try:
                    self._cut_to_durable(why)
                except OSError as exc:
                    log.warning("segment log %s: cannot cut back yet (%s); trying again", self.folder, exc)
                    self._synced.wait(HEAL_SECONDS)
                    continue
                self._broken = None
                log.warning(
                    "segment log %s: offsets %d to %d dropped (never acknowledged); taking records again",
                    self.folder,
                    *self._cut[-1][:2],
                )
                return True
            return False

    def _cut_to_durable(self, why: LogFull) -> None:
        """Drop every byte past `durable` (never acknowledged; after a failed sync, not to be trusted): segments
        that start after it go and the one holding it is cut to it and synced. Appends go on in a new segment at
        the old end, so no offset is ever given twice: a caller that asks after its record's offset only now
        learns it is gone (`why`, `_wait_for`), even once later records have passed it. Called with the lock."""
        stale, self._retired, self._fd = [*self._retired, self._fd], [], -1
        for fd in stale:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        keep = max((b for b in self.segments() if b <= self.durable), default=None)
        for base in self.segments():
            if base > self.durable:
                os.remove(self._path(base))
        if keep is not None:
            fd = os.open(self._path(keep), os.O_WRONLY)
            try:
                os.ftruncate(fd, self.durable - keep)
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(self._path(self.written), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self._fsync_dir()
        except OSError:
            os.close(fd)
            raise
        self._cut.append((self.durable, self.written, why))
        self._fd, self._base, self.durable = fd, self.written, self.written

    # --- reading and flushing ---------------------------------------------------------------------------------

    def read(self, start: int, end: int) -> Iterator[Frame]:
        """The frames from `start` (a frame boundary) up to `end`."""
        bases = self.segments()
        for i, base in enumerate(bases):
            nxt = bases[i + 1] if i + 1 < len(bases) else None
            if (nxt is not None and nxt <= start) or base >= end:
                continue
            lo = max(start, base)
            with open(self._path(base), "rb") as fh:
                fh.seek(lo - base)
                data = fh.read(end - lo if nxt is None else min(end, nxt) - lo)
            frames, stop = parse_frames(data, lo)
            yield from frames
            if stop != lo + len(data):
                raise ValueError(f"segment log `{self.folder}`: damaged frame at offset {stop}")

    def frame_at(self, offset: int) -> Frame | None:
        """The frame starting at `offset`, if a whole one has been written there."""
        base = max((b for b in self.segments() if b <= offset), default=None)
        if base is None:
            return None
        with open(self._path(base), "rb") as fh:
            fh.seek(offset - base)
            head = fh.read(HEADER.size)
            if len(head) < HEADER.size:
                return None
            data = head + fh.read(HEADER.unpack(head)[0])
        frames, _ = parse_frames(data, offset)
        return frames[0] if frames else None

    def begin_flush(self, start: int, end: int) -> None:
        """Record (durably) that the frames in [start, end) are being flushed, so a crash redoes the same range."""
        self.pending = (start, end)
        self._write_checkpoint()

    def end_flush(self, end: int) -> None:
        """Record that everything before `end` is flushed, and delete segments no longer needed."""
        self.flushed, self.pending = end, None
        self._write_checkpoint()
        bases = self.segments()
        for base, nxt in zip(bases, bases[1:], strict=False):
            if nxt <= end and base != self._base:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self._path(base))

    def close(self) -> None:
        """Sync what was written, stop the syncer, release the lock."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._synced.notify_all()
        self._syncer.join()
        with self._lock:
            self._fail_waiters(LogClosed(f"the segment log `{self.folder}` closed before the record was on disk"))
        for fd in [*self._retired, self._fd]:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._retired = []
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)
