"""What a commit names is on disk before the commit is, and a file goes only once the commit that stopped naming it
is on disk: a power cut then leaves the state store, the Delta log and the tables agreeing.

The kernel writes a file's pages back up to half a minute after it was written (and SQLite, with
`synchronous=NORMAL`, flushes its write-ahead log only at a checkpoint), so without flushes in that order a power
cut can leave a commit naming an empty Parquet file, a Delta version the catalog names missing, or a catalog that
came back older naming files a compaction already deleted. A power cut cannot be made here (it needs a machine or
a block device to pull); these tests record, for real runs on a local lake, every `fsync` landfall asks for and
every commit and deletion, and check their order.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import wf


class Journal:
    """`os.fsync` calls (by the path of the file or folder), state store commits and table file deletions, in
    the order they happened."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store) -> None:
        self.events: list[tuple[str, str]] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            self.events.append(("fsync", os.path.realpath(os.readlink(f"/proc/self/fd/{fd}"))))
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        real_commit, real_delete = store.commit, None

        def commit(*args, **kwargs):
            out = real_commit(*args, **kwargs)
            self.events.append(("commit", ""))
            return out

        monkeypatch.setattr(store, "commit", commit)
        from landfall.tables.parquet import ParquetTable

        real_delete = ParquetTable.delete

        def delete(writer, paths):
            for p in paths:
                self.events.append(("delete", os.path.realpath(writer.storage.path(p))))
            return real_delete(writer, paths)

        monkeypatch.setattr(ParquetTable, "delete", delete)

    def first(self, kind: str, path: str = "") -> int:
        return next(i for i, (k, p) in enumerate(self.events) if k == kind and (not path or p == path))

    def synced_before(self, path: Path, index: int) -> bool:
        return ("fsync", os.path.realpath(path)) in self.events[:index]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_runs_files_and_log_entry_are_on_disk_before_its_commit(make_lake, monkeypatch, fmt):
    lake = make_lake([wf("sales", write={"table": "sales", "format": fmt, "partition_by": ["day"]})])
    lake.land("sales/a.csv", "id,day\n1,mon\n2,tue\n")
    journal = Journal(monkeypatch, lake.pipeline.store)
    lake.process()
    assert lake.status() == {"sales/a.csv": "succeeded"}
    commit = journal.first("commit")
    folder = lake.root / "lake" / "tables" / "sales"
    files = [folder / f.path for f in lake.pipeline.store.table_files("sales")]
    assert len(files) == 2
    for f in files:  # the file, its partition's folder (new), the table's folder (new) and the zone's
        for path in (f, f.parent, folder, folder.parent):
            assert journal.synced_before(path, commit), f"{path} not flushed before the commit"
    if fmt == "delta":  # the log's entry the catalog commit records, and its folder
        assert journal.synced_before(folder / "_delta_log" / f"{0:020d}.json", commit)
        assert journal.synced_before(folder / "_delta_log", commit)
    assert lake.rows("SELECT count(*) FROM sales") == [(2,)]


def test_compacted_files_go_only_after_the_commit_that_replaced_them_is_on_disk(make_lake, monkeypatch):
    lake = make_lake([wf("sales")])
    for i in range(3):  # a commit each
        lake.land(f"sales/{i}.csv", f"id,v\n{i},x\n")
        lake.process()
    old = [lake.root / "lake" / "tables" / "sales" / f.path for f in lake.pipeline.store.table_files("sales")]
    assert len(old) == 3
    journal = Journal(monkeypatch, lake.pipeline.store)
    lake.pipeline.optimize("sales")
    assert len(lake.pipeline.store.table_files("sales")) == 1
    deleted = journal.first("delete")
    assert {p for k, p in journal.events if k == "delete"} == {os.path.realpath(p) for p in old}
    assert all(not p.exists() for p in old)
    # the state store's write-ahead log flushed after the compaction's commit and before the first deletion
    wal = str(Path(lake.pipeline.store.path).resolve()) + "-wal"
    commit = journal.first("commit")
    assert any(e == ("fsync", wal) for e in journal.events[commit:deleted]), journal.events
    assert lake.rows("SELECT count(*) FROM sales") == [(3,)]


def test_a_delta_compactions_intent_is_on_disk_before_its_log_commit(make_lake, monkeypatch):
    """A compaction's catalog commit is written into the table's folder first (`_landfall/pending`), for recovery
    to finish if the process stops between the log and the catalog: it must outlive a power cut too, or the
    catalog would keep naming the files the log replaced."""
    lake = make_lake([wf("sales", write={"table": "sales", "format": "delta"})])
    for i in range(3):
        lake.land(f"sales/{i}.csv", f"id,v\n{i},x\n")
        lake.process()
    journal = Journal(monkeypatch, lake.pipeline.store)
    lake.pipeline.optimize("sales")
    folder = os.path.realpath(lake.root / "lake" / "tables" / "sales")
    pending = journal.first("fsync", f"{folder}/_landfall/pending")
    log_entry = journal.first("fsync", f"{folder}/_delta_log/{3:020d}.json")  # loads 0-2, then the compaction
    assert pending < log_entry < journal.first("commit")
    assert lake.rows("SELECT count(*) FROM sales") == [(3,)]


def test_ingested_files_are_on_disk_before_they_are_queued(make_lake, monkeypatch, tmp_path):
    """`landfall ingest` copies files into the landing zone and queues them: the copies are flushed first, so that
    once it returns (and the user may delete the originals) a power cut cannot leave empty files to load."""
    lake = make_lake([wf("sales")])
    src = tmp_path / "drop"
    (src / "east").mkdir(parents=True)
    (src / "east" / "a.csv").write_text("id\n1\n")
    (src / "b.csv").write_text("id\n2\n")
    journal = Journal(monkeypatch, lake.pipeline.store)
    real_discover = lake.pipeline.store.discover

    def discover(*args, **kwargs):
        journal.events.append(("discover", ""))
        return real_discover(*args, **kwargs)

    monkeypatch.setattr(lake.pipeline.store, "discover", discover)
    lake.pipeline.ingest([src], "sales")
    queued = journal.first("discover")
    landing = lake.root / "lake" / "landing"
    for path in (landing / "sales/east/a.csv", landing / "sales/b.csv", landing / "sales/east", landing / "sales"):
        assert journal.synced_before(path, queued), f"{path} not flushed before it was queued"
    lake.process()
    assert lake.rows("SELECT sum(id) FROM sales") == [(3,)]


def test_a_filesystem_that_cannot_flush_folders_still_loads(make_lake, monkeypatch):
    """Some filesystems (several FUSE mounts) answer `EINVAL` to an fsync of a folder: as PostgreSQL does, that is
    no error for a folder (before the flushes were added nothing was flushed at all, and such a lake loaded). No
    such mount can be made here, so `os.fsync` says it for folders."""
    import errno

    real = os.fsync

    def fsync(fd: int) -> None:
        if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.EINVAL, "Invalid argument")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    lake = make_lake([wf("sales", write={"table": "sales", "partition_by": ["day"]})])
    lake.land("sales/a.csv", "id,day\n1,mon\n2,tue\n")
    lake.process()
    assert lake.status() == {"sales/a.csv": "succeeded"}
    assert lake.rows("SELECT count(*) FROM sales") == [(2,)]
