"""The segment log: durable appends with group commit, recovery after a torn write, one owner, segments."""

from __future__ import annotations

import os
import threading
import time

import pytest

from landfall.streams.log import RECORD, LogBusy, SegmentLog, frame

from conftest import REPO, mount_tmpfs


def test_appended_records_read_back_after_reopening(tmp_path):
    log = SegmentLog(str(tmp_path / "log"))
    a = log.append(frame(1.0, RECORD, b"k=v/", b'{"a":1}'))
    b = log.append(frame(2.0, RECORD, b"", b'{"a":2}'))
    log.wait(b[1], timeout=5)
    assert log.durable >= b[1]
    log.close()
    again = SegmentLog(str(tmp_path / "log"))
    frames = list(again.read(0, again.written))
    assert [(f.offset, f.arrival, f.meta, f.data) for f in frames] == [
        (a[0], 1.0, b"k=v/", b'{"a":1}'),
        (b[0], 2.0, b"", b'{"a":2}'),
    ]
    assert again.written == b[1]
    again.close()


def test_a_torn_tail_is_cut_off_on_open(tmp_path):
    log = SegmentLog(str(tmp_path / "log"))
    _, end = log.append(frame(1.0, RECORD, b"", b'{"whole":true}'))
    log.wait(end, timeout=5)
    log.close()
    seg = tmp_path / "log" / f"{0:020d}.seg"
    torn = frame(2.0, RECORD, b"", b'{"cut":"short"}')
    with open(seg, "ab") as fh:  # a crash in the middle of a write
        fh.write(torn[: len(torn) // 2])
    again = SegmentLog(str(tmp_path / "log"))
    assert again.written == end
    assert os.path.getsize(seg) == end
    assert [f.data for f in again.read(0, again.written)] == [b'{"whole":true}']
    _, end2 = again.append(frame(3.0, RECORD, b"", b'{"after":1}'))
    again.wait(end2, timeout=5)
    assert [f.data for f in again.read(0, again.written)] == [b'{"whole":true}', b'{"after":1}']
    again.close()


def test_one_process_owns_a_log(tmp_path):
    log = SegmentLog(str(tmp_path / "log"))
    with pytest.raises(LogBusy, match="held by another landfall process"):
        SegmentLog(str(tmp_path / "log"))
    log.close()
    SegmentLog(str(tmp_path / "log")).close()


def test_concurrent_appends_share_fsyncs(tmp_path, monkeypatch):
    """Group commit: 8 threads x 200 appends, each waiting for its bytes, need far fewer than 1,600 fsyncs."""
    syncs = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        syncs.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    log = SegmentLog(str(tmp_path / "log"))

    def producer(n: int) -> None:
        for i in range(200):
            _, end = log.append(frame(float(i), RECORD, b"", b'{"p":%d,"i":%d}' % (n, i)))
            log.wait(end, timeout=10)

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(list(log.read(0, log.written))) == 1600
    assert 0 < len(syncs) < 1600 * 0.75, f"{len(syncs)} fsyncs for 1,600 appends"
    log.close()


def test_segments_roll_and_flushed_ones_are_deleted(tmp_path):
    log = SegmentLog(str(tmp_path / "log"), segment_bytes=1000)
    ends = []
    for i in range(40):
        ends.append(log.append(frame(0.0, RECORD, b"", b'{"i":%03d,"pad":"%s"}' % (i, b"x" * 60)))[1])
    log.wait(ends[-1], timeout=5)
    assert len(log.segments()) > 3
    assert [int(f.data[5:8]) for f in log.read(0, log.written)] == list(range(40))
    log.begin_flush(0, ends[29])
    log.end_flush(ends[29])
    kept = log.segments()
    assert kept[0] <= ends[29] and len(kept) < 4
    assert [int(f.data[5:8]) for f in log.read(ends[29], log.written)] == list(range(30, 40))
    log.close()
    again = SegmentLog(str(tmp_path / "log"), segment_bytes=1000)
    assert again.flushed == ends[29] and again.written == ends[-1]
    again.close()


def test_a_closed_log_refuses_appends(tmp_path):
    log = SegmentLog(str(tmp_path / "log"))
    log.close()
    with pytest.raises(Exception, match="closed"):
        log.append(frame(0.0, RECORD, b"", b"{}"))


def test_a_failed_sync_refuses_what_it_did_not_cover_and_the_log_goes_on(tmp_path, monkeypatch):
    """`fdatasync` failing (an I/O error: no disk here can be made to fail a sync, so the error is injected): the
    records it was to cover are refused (`LogFull`: HTTP 503, retry), none of them is acknowledged then or later,
    and once the log is cut back to what was on disk it takes records again; while the disk refuses the cut too,
    appends are refused and it is tried again. Only acknowledged records read back, also after reopening. Before,
    the log closed for good on the first failed sync: every call was refused until the server restarted."""
    import errno

    from landfall.streams import log as segment_log
    from landfall.streams.log import LogFull

    monkeypatch.setattr(segment_log, "HEAL_SECONDS", 0.02)
    folder = str(tmp_path / "log")
    log = SegmentLog(folder, segment_bytes=200)
    _, a = log.append(frame(1.0, RECORD, b"", b'{"a":1}'))
    log.wait(a, timeout=5)
    fail = {"sync": True, "cut": True}
    real_sync, real_truncate = os.fdatasync, os.ftruncate

    def fdatasync(fd: int) -> None:
        if fail["sync"]:
            fail["sync"] = False
            raise OSError(errno.EIO, "Input/output error")
        real_sync(fd)

    def ftruncate(fd: int, length: int) -> None:
        if fail["cut"]:
            raise OSError(errno.EIO, "Input/output error")
        real_truncate(fd, length)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    _, b = log.append(frame(2.0, RECORD, b"", b'{"b":2}' * 40))  # past the segment size: the next append rolls
    with pytest.raises(LogFull, match="could not be synced"):
        log.wait(b, timeout=5)
    with pytest.raises(LogFull, match="could not be synced"):  # the disk refuses the cut too: nothing is taken
        log.append(frame(3.0, RECORD, b"", b'{"c":3}'))
    fail["cut"] = False
    deadline = time.monotonic() + 5
    while True:
        try:
            _, d = log.append(frame(4.0, RECORD, b"", b'{"d":4}'))
            break
        except LogFull:
            assert time.monotonic() < deadline, "the log never took records again"
            time.sleep(0.01)
    log.wait(d, timeout=5)
    assert d > b  # no offset is given twice: a late wait for `b` still says it is gone
    with pytest.raises(LogFull):
        log.wait(b, timeout=5)
    assert [f.data for f in log.read(0, log.durable)] == [b'{"a":1}', b'{"d":4}']
    log.close()
    again = SegmentLog(folder, segment_bytes=200)
    assert [f.data for f in again.read(0, again.written)] == [b'{"a":1}', b'{"d":4}']
    _, e = again.append(frame(5.0, RECORD, b"", b'{"e":5}'))
    again.wait(e, timeout=5)
    assert [f.data for f in again.read(d, again.written)] == [b'{"e":5}']
    again.close()


def test_a_write_that_cannot_be_cut_back_is_cut_back_as_after_a_failed_sync(tmp_path, monkeypatch):
    """A write the disk refuses part way whose part cannot be cut off at once either (injected, as above): the
    call is refused, appends are refused until the syncer has cut the log back, and then go on; before, the log
    closed for good."""
    import errno

    from landfall.streams import log as segment_log
    from landfall.streams.log import LogFull

    monkeypatch.setattr(segment_log, "HEAL_SECONDS", 0.02)
    log = SegmentLog(str(tmp_path / "log"))
    _, a = log.append(frame(1.0, RECORD, b"", b'{"a":1}'))
    log.wait(a, timeout=5)
    fail = {"write": True, "cut": True}
    real_write, real_truncate = os.write, os.ftruncate

    def write(fd: int, data) -> int:
        if fail["write"]:
            fail["write"] = False
            real_write(fd, bytes(data[:5]))  # a part of the frame reaches the file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def ftruncate(fd: int, length: int) -> None:
        if fail["cut"]:
            fail["cut"] = False
            raise OSError(errno.EIO, "Input/output error")
        real_truncate(fd, length)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    with pytest.raises(LogFull, match="No space left on device"):
        log.append(frame(2.0, RECORD, b"", b'{"b":2}'))
    deadline = time.monotonic() + 5
    while True:
        try:
            _, c = log.append(frame(3.0, RECORD, b"", b'{"c":3}'))
            break
        except LogFull as exc:
            assert "could not be written (No space left on device)" in str(exc)
            assert time.monotonic() < deadline, "the log never took records again"
            time.sleep(0.01)
    log.wait(c, timeout=5)
    assert [f.data for f in log.read(0, log.durable)] == [b'{"a":1}', b'{"c":3}']
    log.close()
    again = SegmentLog(str(tmp_path / "log"))
    assert [f.data for f in again.read(0, again.written)] == [b'{"a":1}', b'{"c":3}']
    again.close()


def test_a_full_disk_refuses_records_whole_and_the_log_stays_whole(tmp_path):
    """A write the disk refuses part way (full, or a quota) keeps nothing of the append and says `LogFull` (HTTP
    503: retry); once there is room, appends go on and every acknowledged record reads back, also after the log
    is opened again. Before, the part written stayed: every later frame sat past its offset, and opening the log
    again cut them all off as a torn tail. For real: the log on a 256 KiB tmpfs in a mount namespace of its own
    (root and `unshare`)."""
    import subprocess
    import sys

    disk = tmp_path / "disk"
    disk.mkdir()
    script = f"""
import os, sys
sys.path.insert(0, {str(REPO / "src")!r})
from landfall.streams.log import RECORD, LogFull, SegmentLog, frame
folder = {str(disk / "log")!r}
log = SegmentLog(folder)
with open({str(disk / "filler")!r}, "wb") as fh:  # the disk all but full: six blocks left
    fh.write(b"x" * (os.statvfs(folder).f_bavail - 6) * os.statvfs(folder).f_frsize)
acked, refused = [], 0
for i in range(40):
    data = f"record {{i}} ".encode() * 250  # about 3 KiB each
    try:
        _, end = log.append(frame(1.0, RECORD, b"", data))
    except LogFull:
        refused += 1
        if refused == 3:
            os.remove({str(disk / "filler")!r})  # room again
        continue
    log.wait(end, timeout=10)
    acked.append(data)
assert refused >= 3 and len(acked) == 40 - refused, (refused, len(acked))
assert [f.data for f in log.read(0, log.written)] == acked
log.close()
again = SegmentLog(folder)
assert [f.data for f in again.read(0, again.written)] == acked, "acknowledged records lost on reopening"
again.close()
print("ok", len(acked), refused)
"""
    run = subprocess.run(
        mount_tmpfs(disk, "256k", [sys.executable, "-c", script]),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and run.stdout.startswith("ok"), run.stderr[-3000:]
