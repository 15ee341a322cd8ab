"""The table-format seam: a table writer makes staged Parquet files part of a table.

The engine writes files; the table format commits them. `publish` moves staged files into the table's folder
(not yet part of the table), `commit` makes them part of it in the format's own log where it has one (Delta),
and the state store's catalog commit, in the same transaction as the run records, is what `landfall query`
reads. A crash between the two commits is repaired from the format's log (`committed`)."""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar

import msgspec

from landfall.config import ParquetFiles
from landfall.engines.base import StagedFile
from landfall.state.base import DataFile
from landfall.storage import Storage, scratch


class TableChange(msgspec.Struct):
    """One commit to a table: files added and removed, and what landfall needs to replay it."""

    commit_id: str
    operation: str  # WRITE | MERGE | OVERWRITE | OPTIMIZE | REPAIR
    add: list[DataFile]
    remove: list[DataFile]
    schema: Any  # pyarrow.Schema, partition columns included
    partition_by: list[str]
    app_ids: list[str] = []  # one per landed file version: a retry finds its commit
    metadata: dict[str, Any] = {}  # runs, rows, sources: replays the state commit
    data_change: bool = True
    # the commit widens a column's type: `remove` lists every file of the table and `add` has them rewritten with
    # the new type (a format with one type per column in its log, Delta, changes its schema with them)
    retyped: bool = False
    # the table's files as the job read them, when what it writes depends on them (a merge, an overwrite, rows
    # checked unique against the table): a file added since refuses the commit, and the job runs again on it
    read: set[str] | None = None
    # the table's columns as the job read them (empty: no table yet), when it held the batch to them (`freeze`,
    # `rescue`, `discard_row`, or a batch made for a new table): a log with other columns now refuses the commit,
    # and the job runs again on them
    read_columns: set[str] | None = None
    # file versions' application ids whose commits no longer hold their rows (a repair took the lost files out):
    # marked not committed, so that loading the file versions again writes them
    forget: list[str] = []


class Version(msgspec.Struct):
    version: int
    timestamp: datetime
    operation: str
    run_ids: list[str]
    rows_added: int | None
    rows_removed: int | None
    files_added: int | None = None
    files_removed: int | None = None


class NotSupported(Exception):
    """The table format cannot do this (e.g. time travel on plain Parquet)."""


class TableWriter(ABC):
    """One table's files, in its folder's `Storage` (a local folder or an object store). `location` is the
    folder's URL (a local path on a local zone), as the catalog records it."""

    format: str
    #: the format keeps its own log of commits (time travel, app transactions)
    has_log: bool = False
    #: Arrow types the format (or the readers it promises) cannot hold -> the type written instead. A UUID is
    #: text everywhere: Parquet keeps it as 16 bytes that pyarrow and Spark show as bytes, Delta as binary that
    #: `deltalake` cannot read back (`Invalid storage type for UuidType`). An interval is its text (`1 day
    #: 10:30:00`): Parquet's interval holds milliseconds and no negative value (DuckDB's writer refuses the file),
    #: Spark reads none and writes none, and Delta has no interval type.
    stored_as: ClassVar[dict[str, str]] = {"extension<arrow.uuid>": "string", "month_day_nano_interval": "string"}

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.location = storage.url

    @abstractmethod
    def publish(self, staged: list[StagedFile]) -> list[DataFile]:
        """Move staged files to their place in the table; returns them with paths relative to the table."""

    def commit(self, change: TableChange) -> int | None:
        """Make published files part of the table in the format's log; returns the new version, if any."""
        return None

    def retype(
        self,
        files: list[DataFile],
        types: dict[str, str],
        staging: str,
        commit_id: str,
        files_as: ParquetFiles,
        first: int,
    ) -> list[StagedFile]:
        """The table's `files` rewritten into `staging` with columns of new types (`types`: column -> Arrow type
        string): rows, order, lineage, partition and statistics as they were; named as the job's rewrites are,
        `part-<commit>-r<i>` from `i = first` (a rewrite's index in the files its commit replaces). Written by pyarrow,
        as the engines write the table's other files: `files_as.version` v2 gives them Parquet's version 2 data
        pages and its newer encodings (`v2_encodings`)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from landfall.types import parse_type

        out = []
        os.makedirs(os.path.join(staging, "rewrite"), exist_ok=True)
        for i, f in enumerate(files, first):
            with self.storage.open(f.path) as fh:
                table = pq.read_table(fh)
            fields = [c.with_type(parse_type(types[c.name])) if c.name in types else c for c in table.schema]
            table = table.cast(pa.schema(fields))
            dest = os.path.join(staging, "rewrite", f"part-{commit_id}-r{i}.parquet")
            v2 = files_as.version == "v2"
            dictionary, encodings = v2_encodings(table.schema) if v2 else (True, None)
            pq.write_table(
                table,
                dest,
                compression=files_as.compression,
                data_page_version="2.0" if v2 else "1.0",
                use_dictionary=dictionary,
                column_encoding=encodings,
            )
            relpath = os.path.join(os.path.dirname(f.path), os.path.basename(dest))
            size = os.path.getsize(dest)
            out.append(StagedFile(dest, relpath, table.num_rows, size, partition=f.partition, stats=f.stats))
        return out

    def committed(self, app_ids: list[str]) -> dict[str, dict[str, Any]]:
        """For app ids already committed in the format's log: the metadata of the commit that carried them."""
        return {}

    def attempted(self, app_ids: list[str]) -> tuple[set[str], set[str]]:
        """The files the commits carrying `app_ids` in the format's log added (their own) and removed, over all of
        them: the attempts of a job its catalog commit never followed (nothing when none is there)."""
        return set(), set()

    def current_files(self) -> list[DataFile] | None:
        """The table's files per the format's log (None: the catalog is the authority)."""
        return None

    def current_paths(self) -> set[str] | None:
        """The paths of `current_files` (a format may read them more cheaply than the files)."""
        files = self.current_files()
        return None if files is None else {f.path for f in files}

    def missing_files(self) -> list[DataFile]:
        """The files the format's log names that the table's folder no longer holds (removed by hand, or lost).
        A format without a log has none: its folder is the table."""
        return []

    def repair(self, gone: list[DataFile], forget: list[str]) -> int | None:
        """Take the files `gone` (of `missing_files`) out of the table's log, and mark the file versions of
        `forget` (application ids) not committed, so that loading them again writes their rows (Delta's `FSCK
        REPAIR TABLE`); `tables rebuild` calls it. A format without a log has nothing to repair."""
        return None

    def changes(self, version: int) -> tuple[list[DataFile], list[str]]:
        """What commit `version` of the format's log did: the files it added that the table still holds, and
        the paths it removed. A commit found in the log is recorded with exactly this, never with the whole
        file list as read (a commit made since the read would drop out of the catalog)."""
        raise NotSupported(f"`{self.format}` tables keep no log of commits")

    def history(self, limit: int | None = None) -> list[Version]:
        """The table's versions, newest first (the latest `limit` of them)."""
        raise NotSupported(f"`{self.format}` tables keep no history; use `format: delta` for time travel")

    def span(self) -> tuple[int, datetime, int]:
        """The oldest version the table can be read at, the time of its commit, and the latest version."""
        raise NotSupported(f"`{self.format}` tables keep no history; use `format: delta` for time travel")

    def files_as_of(self, version: int | datetime) -> list[DataFile]:
        raise NotSupported(f"`{self.format}` tables keep no history; use `format: delta` for time travel")

    @abstractmethod
    def delete(self, paths: list[str]) -> None:
        """Remove files the table no longer lists (after the commit that dropped them)."""

    @abstractmethod
    def discard(self, commit_id: str, keep: set[str]) -> list[str]:
        """Remove files of an uncommitted commit (a crashed run), except those in `keep`; returns them."""

    @abstractmethod
    def files(self, before: float | None = None) -> list[str]:
        """Every data file under the table's location (relative paths), listed or not; with `before`, those last
        changed before that time (epoch seconds)."""

    def vacuum(self, retain_seconds: float) -> list[str]:
        """Delete the files the format's own log no longer lists (time travel) that left it longer than
        `retain_seconds` ago; returns them. A format without a log keeps nothing for time travel: files no commit
        lists are the catalog's to remove (`landfall.recovery.sweep_table`), never those of a commit in flight."""
        return []

    @abstractmethod
    def staging_dirs(self) -> list[str]:
        """Commit ids that have a staging folder (left behind by a crash, or in progress)."""

    def staging_dir(self, commit_id: str) -> str:
        """A local folder the engine may write into for this commit: inside the table's folder on a local zone
        (publishing is then a rename), in the local scratch folder for an object store."""
        if self.storage.is_local:
            return self.storage.path(f"_staging/{commit_id}")
        import hashlib

        table = hashlib.sha1(self.location.encode()).hexdigest()[:10]
        return os.path.join(self.storage.scratch_dir or _tmp(), f"{scratch.prefix('staging')}{commit_id}-{table}")

    def removes_files_at_commit(self) -> bool:
        """Whether files a commit removes are deleted right away (no time travel) or kept until vacuum."""
        return not self.has_log


class Staging(msgspec.Struct):
    """A commit's scratch folder; set `committed` once the state store has recorded the commit."""

    path: str
    committed: bool = False


@contextmanager
def staging(writer: TableWriter, commit_id: str) -> Iterator[Staging]:
    """Scratch space for one commit. If the block fails before `committed` is set, every file the commit
    published is removed again; the folder goes either way."""
    area = Staging(writer.staging_dir(commit_id))
    os.makedirs(area.path, exist_ok=True)  # a local folder (see `staging_dir`), never a zone URL
    try:
        yield area
    except BaseException:
        if not area.committed:
            writer.discard(commit_id, keep=set())
        raise
    finally:
        shutil.rmtree(area.path, ignore_errors=True)


def _tmp() -> str:
    import tempfile

    return tempfile.gettempdir()


def v2_encodings(schema: Any) -> tuple[list[str], dict[str, str]]:
    """pyarrow's `use_dictionary` and `column_encoding` for Parquet version 2 files of Arrow `schema`: the newer
    encodings DuckDB's and Spark's v2 writers use, whole numbers, dates and times delta-encoded
    (`DELTA_BINARY_PACKED`), floating point split by byte (`BYTE_STREAM_SPLIT`); every other leaf (text, booleans,
    decimals) from a dictionary, as in v1. Keyed by leaf path (`m.w.list.element`), read off an empty file of the
    schema."""
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(schema.empty_table(), buf)
    buf.seek(0)
    parquet = pq.ParquetFile(buf).schema
    leaves = [(parquet.column(i).path, parquet.column(i).physical_type) for i in range(len(parquet))]
    by_kind = {"INT32": "DELTA_BINARY_PACKED", "INT64": "DELTA_BINARY_PACKED"}
    by_kind |= {"FLOAT": "BYTE_STREAM_SPLIT", "DOUBLE": "BYTE_STREAM_SPLIT"}
    encodings = {path: by_kind[kind] for path, kind in leaves if kind in by_kind}
    return [path for path, _ in leaves if path not in encodings], encodings
