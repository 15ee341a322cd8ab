"""Conformance tests every `TableWriter` (table format) must pass. A format's test module subclasses
`TableWriterTests` and supplies only the `writer` fixture (a writer for an empty table location)."""

from __future__ import annotations

import os
import time

import duckdb
import pyarrow as pa
import pytest

from landfall.engines.base import StagedFile
from landfall.errors import ConcurrentChange
from landfall.state.base import DataFile
from landfall.tables.base import TableChange, TableWriter, staging

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string()), ("day", pa.string())])


def stage(writer: TableWriter, commit_id: str, ids: range, day: str = "mon") -> list[StagedFile]:
    """Parquet files for rows `ids` in partition `day=<day>`, written into the commit's staging folder."""
    out_dir = os.path.join(writer.staging_dir(commit_id), "data")
    os.makedirs(out_dir, exist_ok=True)
    rows = duckdb.execute(
        f"COPY (SELECT range AS id, 'n' || range AS name, '{day}' AS day FROM range({ids.start}, {ids.stop})) "
        f"TO '{out_dir}' (FORMAT parquet, PARTITION_BY (day), FILENAME_PATTERN 'part-{commit_id}-{{i}}', "
        "RETURN_STATS, OVERWRITE_OR_IGNORE)"
    ).fetchall()
    return [
        StagedFile(path=f, relpath=os.path.relpath(f, out_dir), rows=int(n), bytes=int(b), partition=dict(pk), stats=st)
        for f, n, b, _foot, st, pk, _x in rows
    ]


def change(
    commit_id: str, add: list[DataFile], remove: list[DataFile] | None = None, app_ids: list[str] | None = None
) -> TableChange:
    return TableChange(
        commit_id=commit_id,
        operation="WRITE",
        add=add,
        remove=remove or [],
        schema=SCHEMA,
        partition_by=["day"],
        app_ids=app_ids or [],
        metadata={"note": commit_id},
    )


def commit_rows(
    writer: TableWriter,
    commit_id: str,
    ids: range,
    *,
    remove: list[DataFile] | None = None,
    app_ids: list[str] | None = None,
    day: str = "mon",
) -> list[DataFile]:
    """Stage, publish and commit rows `ids` (in partition `day`) as one commit; returns the files it added."""
    with staging(writer, commit_id) as area:
        published = writer.publish(stage(writer, commit_id, ids, day=day))
        writer.commit(change(commit_id, published, remove=remove, app_ids=app_ids))
        area.committed = True
    return published


def read_ids(writer: TableWriter, files: list[DataFile]) -> list[int]:
    if not files:
        return []
    paths = [f"{writer.location}/{f.path}" for f in files]
    con = duckdb.connect()
    writer.storage.register_with(con)  # a table on an object store is read through fsspec
    try:
        rows = con.execute("SELECT id FROM read_parquet($p, hive_partitioning = true)", {"p": paths}).fetchall()
    finally:
        con.close()
    return sorted(r[0] for r in rows)


class TableWriterTests:
    @pytest.fixture
    def writer(self, tmp_path) -> TableWriter:  # pragma: no cover - supplied by each format
        raise NotImplementedError

    def listed(self, writer: TableWriter, committed: list[DataFile]) -> list[DataFile]:
        """The table's files: the format's own log where it has one, else what the commits added."""
        return writer.current_files() if writer.has_log else committed

    def test_publish_then_commit_makes_rows_part_of_the_table(self, writer):
        published = commit_rows(writer, "c1", range(0, 5), app_ids=["landfall:1"])
        assert [f.path for f in published] == ["day=mon/part-c1-0.parquet"]
        assert published[0].partition == {"day": "mon"} and published[0].rows == 5
        assert read_ids(writer, self.listed(writer, published)) == [0, 1, 2, 3, 4]
        assert writer.files() == ["day=mon/part-c1-0.parquet"]
        assert writer.staging_dirs() == []  # the scratch folder is gone

    def test_a_failed_commit_leaves_nothing_behind(self, writer):
        kept = commit_rows(writer, "c1", range(0, 3))
        with pytest.raises(RuntimeError), staging(writer, "c2"):
            writer.publish(stage(writer, "c2", range(3, 6), day="tue"))
            raise RuntimeError("crash before the commit")
        assert writer.files() == ["day=mon/part-c1-0.parquet"]
        assert read_ids(writer, self.listed(writer, kept)) == [0, 1, 2]

    def test_replacing_files_in_one_commit(self, writer):
        old = commit_rows(writer, "c1", range(0, 3))
        new = commit_rows(writer, "c2", range(10, 12), remove=old)
        if writer.removes_files_at_commit():
            writer.delete([f.path for f in old])
        assert read_ids(writer, self.listed(writer, new)) == [10, 11]
        if not writer.has_log:
            assert writer.files() == ["day=mon/part-c2-0.parquet"]  # readers of the folder see no stale copy

    def test_vacuum_removes_what_the_log_no_longer_lists_after_the_retention(self, writer):
        old = commit_rows(writer, "c1", range(0, 3))
        commit_rows(writer, "c2", range(3, 4), remove=old)
        published = time.time()
        time.sleep(0.01)
        if not writer.has_log:  # no history: files no commit lists are the catalog's (`recovery.sweep_table`)
            assert writer.vacuum(0) == []
            assert writer.files() == ["day=mon/part-c1-0.parquet", "day=mon/part-c2-0.parquet"]
            assert writer.files(before=published) == ["day=mon/part-c1-0.parquet", "day=mon/part-c2-0.parquet"]
            assert writer.files(before=published - 3600) == []
            return
        assert writer.vacuum(3600) == []
        gone = writer.vacuum(0)
        assert sorted(gone) == ["day=mon/part-c1-0.parquet"]
        assert writer.files() == ["day=mon/part-c2-0.parquet"]

    def test_discard_removes_only_that_commit(self, writer):
        commit_rows(writer, "c1", range(0, 2))
        writer.publish(stage(writer, "c2", range(2, 4)))  # published, never committed (a crash)
        assert writer.staging_dirs() == (["c2"] if writer.storage.is_local else [])  # remote: staging is local
        gone = writer.discard("c2", keep=set())
        assert gone == ["day=mon/part-c2-0.parquet"] and writer.files() == ["day=mon/part-c1-0.parquet"]
        assert writer.staging_dirs() == []

    def test_a_retry_finds_its_commit(self, writer):
        commit_rows(writer, "c1", range(0, 2), app_ids=["landfall:7"])
        found = writer.committed(["landfall:7", "landfall:8"])
        if writer.has_log:
            assert set(found) == {"landfall:7"} and found["landfall:7"]["commit_id"] == "c1"
        else:
            assert found == {}  # the state store's catalog is the authority for formats without a log

    def test_a_retry_finds_its_commit_however_far_back(self, writer):
        """The log is read back a page at a time (the latest commits first): a commit past the first page is
        found, and so is one of the latest."""
        if not writer.has_log:
            pytest.skip("formats without a log keep no commits to find again: the catalog is the record")
        for i in range(20):
            commit_rows(writer, f"c{i}", range(i, i + 1), app_ids=[f"landfall:{i}"])
        found = writer.committed(["landfall:0", "landfall:18", "landfall:99"])
        assert {app: meta["version"] for app, meta in found.items()} == {"landfall:0": 0, "landfall:18": 18}
        assert found["landfall:0"]["commit_id"] == "c0"

    def test_a_commit_found_again_says_what_it_changed(self, writer):
        if not writer.has_log:
            pytest.skip("formats without a log keep no commits to find again: the catalog is the record")
        old = commit_rows(writer, "c1", range(0, 2), app_ids=["landfall:1"])
        new = commit_rows(writer, "c2", range(2, 4), remove=old, app_ids=["landfall:2"])
        later = commit_rows(writer, "c3", range(4, 5), app_ids=["landfall:3"])  # made after c2: not c2's
        version = writer.committed(["landfall:2"])["landfall:2"]["version"]
        added, removed = writer.changes(version)
        assert [f.path for f in added] == [f.path for f in new] and added[0].rows == 2
        assert removed == [f.path for f in old]
        replaced = commit_rows(writer, "c4", range(5, 6), remove=later)
        assert writer.changes(writer.committed(["landfall:3"])["landfall:3"]["version"]) == ([], [])  # gone since
        assert {f.path for f in writer.current_files()} == {f.path for f in new + replaced}

    def test_a_repair_takes_gone_files_out_and_their_file_versions_back(self, writer):
        """`tables rebuild` of a table whose folder lost a file its log names: the file leaves the log, and the
        file versions whose rows were only there are no longer found committed, so they load again."""
        if not writer.has_log:
            assert writer.missing_files() == [] and writer.repair([], forget=["landfall:1"]) is None
            return  # the folder is the table: `tables rebuild` reads it
        lost = commit_rows(writer, "c1", range(0, 2), app_ids=["landfall:1"])
        commit_rows(writer, "c2", range(2, 3), app_ids=["landfall:2"])
        assert writer.missing_files() == []
        writer.delete([f.path for f in lost])
        assert [f.path for f in writer.missing_files()] == [f.path for f in lost]
        writer.repair(writer.missing_files(), forget=["landfall:1"])
        assert writer.missing_files() == [] and read_ids(writer, writer.current_files()) == [2]
        assert set(writer.committed(["landfall:1", "landfall:2"])) == {"landfall:2"}
        commit_rows(writer, "c3", range(0, 2), app_ids=["landfall:1"])  # loaded again
        assert set(writer.committed(["landfall:1", "landfall:2"])) == {"landfall:1", "landfall:2"}
        assert read_ids(writer, writer.current_files()) == [0, 1, 2]

    def test_a_partition_value_that_needs_escaping_keeps_its_files_path(self, writer):
        day = "50% off a/b"  # the engine escapes it in the folder name; a log escapes that name again
        old = commit_rows(writer, "c1", range(0, 2), day=day, app_ids=["landfall:1"])
        assert [f.path for f in self.listed(writer, old)] == [f.path for f in old]  # the file's own name
        assert read_ids(writer, self.listed(writer, old)) == [0, 1]
        new = commit_rows(writer, "c2", range(2, 3), day=day, remove=old)  # what the catalog lists can be replaced
        if writer.removes_files_at_commit():
            writer.delete([f.path for f in old])
        assert read_ids(writer, self.listed(writer, new)) == [2]
        if writer.has_log:
            assert writer.current_paths() == {f.path for f in writer.current_files()} == {f.path for f in new}
            assert writer.changes(writer.committed(["landfall:1"])["landfall:1"]["version"]) == ([], [])
            assert writer.discard("c2", keep=set()) == []  # in the log: kept, though no catalog lists it

    def test_replacing_a_file_someone_else_replaced_is_refused(self, writer):
        if not writer.has_log:
            pytest.skip(
                "for formats without a log the state store's catalog commit refuses it: "
                "state_suite.py test_commit_refuses_to_remove_a_file_another_commit_removed"
            )
        old = commit_rows(writer, "c1", range(0, 2))
        commit_rows(writer, "c2", range(2, 3), remove=old)
        with pytest.raises(ConcurrentChange), staging(writer, "c3"):
            writer.commit(change("c3", writer.publish(stage(writer, "c3", range(3, 4))), remove=old))
        assert read_ids(writer, writer.current_files()) == [2]
