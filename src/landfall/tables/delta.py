"""Delta Lake tables through `deltalake` (delta-rs): the engine's Parquet files are committed with
`create_write_transaction` as add/remove actions with their stats, one commit per batch.

Every landed file version in a commit is recorded as an application transaction (`landfall:<file version>`),
and the commit's `landfall` metadata carries the run results and lineage, so a run that crashed after the Delta
commit but before the state commit finds its commit on retry, writes nothing again, and replays the record.
"""

from __future__ import annotations

import functools
import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from landfall import partitions
from landfall.errors import BrokenTable, ConcurrentChange, ConfigError, require
from landfall.redaction import redact
from landfall.state.base import DataFile
from landfall.storage import Storage
from landfall.storage.zone import mtime_of
from landfall.tables.base import TableChange, Version
from landfall.tables.delta_log import broken_log_message, commit_versions, log_files
from landfall.tables.parquet import ParquetTable

deltalake = require("deltalake", "delta", "table format `delta`")

META_KEY = "landfall"
# the application transaction version of a file version's marker: committed, or taken back by a repair that
# took the files holding its rows out of the table (the latest action of an application id is the one that counts)
COMMITTED, FORGOTTEN = 1, 0
_LATEST = threading.local()
CACHED_TABLES = 16  # latest states each thread keeps (least recently used go first)
_F = TypeVar("_F", bound=Callable[..., Any])


# reader features a read of the files the log lists (as Parquet) honours: the log's own forms are read by delta-rs
READ_BY_FILE = {"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"}
WHY_UNREAD = {
    "deletionVectors": "the rows it deleted would be read back",
    "columnMapping": "its files name columns by id, not by name",
    "typeWidening": "its older files hold older types",
}


def commit_key(version: int) -> str:
    """The log's commit file of `version`, relative to the table's folder."""
    return f"_delta_log/{version:020d}.json"


def _log_errors(method: _F) -> _F:
    """delta-rs errors reading a table's log become one `BrokenTable` line that names the broken log file
    (never a Rust backtrace); a commit conflict stays what the method makes of it."""

    @functools.wraps(method)
    def wrapper(self: DeltaTable, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (BrokenTable, ConcurrentChange):
            raise
        except BaseException as exc:
            if not _is_delta_error(exc):
                raise
            _LATEST.__dict__.get("tables", {}).pop(self.location, None)
            raise BrokenTable(broken_log_message(self.storage, exc)) from None

    return wrapper  # type: ignore[return-value]


def _check_not_widened(dt: Any, batch: Any) -> None:
    """A batch's columns carry the table's types as its job read them (or wider: a `retyped` commit). A column
    the table's log now has wider (another worker's commit widened it meanwhile, rewriting the files it saw) would
    put a file of the narrower type into the table: `ConcurrentChange`, and the job runs again on the new schema."""
    import pyarrow as pa

    from landfall.schema import widens_to

    logged = {f.name: str(f.type) for f in pa.schema(dt.schema().to_arrow())}
    for field in batch:
        have, now = str(field.type), logged.get(field.name)
        if now is not None and now != have and widens_to(have, now):
            raise ConcurrentChange(
                f"column `{field.name}` became {now} in the table while this batch was written as {have}; "
                "running it again on the new schema"
            )


def _is_delta_error(exc: BaseException) -> bool:
    from deltalake.exceptions import CommitFailedError, DeltaError

    if isinstance(exc, CommitFailedError):
        return False
    return isinstance(exc, DeltaError) or type(exc).__name__ == "PanicException"


class DeltaTable(ParquetTable):
    format = "delta"
    has_log = True
    # Delta has no time, half-float or unsigned types: text, or the next signed type that holds them
    stored_as = {
        **ParquetTable.stored_as,
        "time64[us]": "string",
        "time64[ns]": "string",
        "halffloat": "float",
        "uint8": "int16",
        "uint16": "int32",
        "uint32": "int64",
        "uint64": "decimal128(20, 0)",
    }

    def __init__(self, storage: Storage) -> None:
        if storage.protocol == "memory":
            raise ConfigError(
                f"{storage.label}: `delta` tables need a local folder or an object store (`s3://`); `memory://` "
                "lives inside one process, where delta-rs cannot see it"
            )
        super().__init__(storage)
        self.options = storage.options.delta(storage.protocol)  # credentials, endpoint, region for delta-rs

    @property
    def commit_lock(self) -> bool:
        """Whether commits to this table go through the state store's lock (`storage.commit_lock`): delta-rs
        creates each log entry with a conditional write; on a server that ignores it, two hosts could write the
        same version and one commit would be lost."""
        mode = self.storage.options.commit_lock
        if mode == "always":
            return True
        if mode == "never":
            return False
        return not self.storage.conditional_writes()

    def _table(self, version: int | datetime | None = None) -> Any:
        """The table at its latest version (or at `version`). The latest is kept per thread and brought up to
        date by reading only the commits made since: loading the whole log costs ~30 ms per call."""
        if version is not None:
            dt = deltalake.DeltaTable(self.location, storage_options=self.options)
            dt.load_as_version(version)
            return dt
        cache: OrderedDict[str, tuple[Any, Any]] = _LATEST.__dict__.setdefault("tables", OrderedDict())
        if (cached := cache.get(self.location)) is not None:
            dt, stamp = cached
            try:
                # the same table still: its commit file of the version held is the one seen then (a folder
                # replaced by another table, by `landfall tables reload` or a restore, has another or none)
                if self._stamp(dt.version()) == stamp:
                    held = dt.version()
                    dt.update_incremental()
                    if dt.version() != held:
                        cache[self.location] = (dt, self._stamp(dt.version()))
                    cache.move_to_end(self.location)
                    return dt
            except Exception:  # the table was replaced underneath: load it afresh
                pass
            cache.pop(self.location, None)
        dt = deltalake.DeltaTable(self.location, storage_options=self.options)
        cache[self.location] = (dt, self._stamp(dt.version()))
        while len(cache) > CACHED_TABLES:
            cache.popitem(last=False)
        return dt

    def _stamp(self, version: int) -> tuple[Any, ...] | None:
        """What tells one commit file from another written under the same name: size, time and (object stores)
        ETag; None when it is gone."""
        try:
            info = self.storage.info(commit_key(version))
        except FileNotFoundError:
            return None
        return (info.get("size"), mtime_of(info), info.get("ETag") or info.get("etag"))

    def exists(self) -> bool:
        return deltalake.DeltaTable.is_deltatable(self.location, storage_options=self.options)

    @_log_errors
    def commit(self, change: TableChange) -> int | None:
        from deltalake.transaction import (
            AddAction,
            CommitProperties,
            RemoveAction,
            Transaction,
            create_table_with_add_actions,
        )

        dt = self._table() if self.exists() else None
        before = dt.version() if dt is not None else -1
        if change.read_columns is not None and change.read_columns != (
            {f.name for f in dt.schema().fields} if dt is not None else set()
        ):
            raise ConcurrentChange(
                "the table's columns changed while this batch was held to them; again on the new ones"
            )
        if dt is not None and change.schema is not None and not change.retyped:
            _check_not_widened(dt, change.schema)
        if dt is not None and change.schema is not None:
            current = {f.name for f in dt.schema().fields}
            wanted = deltalake.Schema.from_arrow(change.schema)
            if {f.name for f in wanted.fields} - current:  # new columns: evolve the schema first
                from deltalake.schema import Field

                dt.alter.add_columns(
                    [Field(f.name, f.type, nullable=True) for f in wanted.fields if f.name not in current]
                )
                dt = self._table()
        if dt is not None and (change.remove or change.read is not None):
            live = {f.path for f in self._files(dt)}
            gone = [f.path for f in change.remove if f.path not in live]
            if gone:  # what this commit replaces must still be current
                raise ConcurrentChange(f"`{gone[0]}` was removed by another commit; retrying on the new state")
            if change.read is not None and (added := sorted(live - change.read)):  # and nothing added it did not read
                raise ConcurrentChange(f"`{added[0]}` was added by another commit; reading the table again")
        import pyarrow as pa

        arrow_schema = change.schema if change.schema is not None else pa.schema(dt.schema().to_arrow())
        widened = None
        if change.retyped and dt is not None:
            # a Delta log has one type per column: a commit that widens one (int64 to double) replaces every file
            # of the table (the job rewrote the others with the new type) and the schema at once
            live = {f.path for f in self._files(dt)}
            if live != {f.path for f in change.remove}:
                raise ConcurrentChange("the table's files changed while a column's type widened; retrying")
            arrow_schema = widened = self._widened(dt, change.schema)
            if self._needs_timestamp_ntz(dt, widened):
                from deltalake import TableFeatures

                # delta-rs does not raise the protocol for a type a write's schema brings (as `add_columns` and a
                # table's creation do): a DATE column widened to a TIMESTAMP made a log no reader could open
                dt.alter.add_feature(TableFeatures.TimestampWithoutTimezone, allow_protocol_versions_increase=True)
                dt = self._table()
        now_ms = int(time.time() * 1000)
        stamps = [f for f in arrow_schema if pa.types.is_timestamp(f.type)]
        zoned = {f.name for f in stamps if f.type.tz is not None}
        naive = {f.name for f in stamps if f.type.tz is None}
        adds = [
            AddAction(
                path=f.path,
                size=f.bytes,
                partition_values=partitions.delta_values(f.partition, zoned, naive),
                modification_time=now_ms,
                data_change=change.data_change,
                stats=json.dumps(delta_stats(f, arrow_schema)),
            )
            for f in change.add
        ]
        removes = [
            RemoveAction(
                path=f.path,
                data_change=change.data_change,
                deletion_timestamp=now_ms,
                size=f.bytes,
                partition_values=partitions.delta_values(f.partition, zoned, naive),
            )
            for f in change.remove
        ]
        meta = {
            "commit_id": change.commit_id,
            "operation": change.operation,
            "app_ids": change.app_ids,
            **change.metadata,
            "files_added": len(change.add),
            "files_removed": len(change.remove),
            "rows_added": sum(f.rows for f in change.add),
            "rows_removed": sum(f.rows for f in change.remove),
        }
        props = CommitProperties(
            custom_metadata={META_KEY: json.dumps(meta, default=str)},
            app_transactions=[Transaction(a, COMMITTED) for a in change.app_ids]
            + [Transaction(a, FORGOTTEN) for a in change.forget],
            # a commit that read the table is not moved past another one made after that read (delta-rs would
            # append it on top without looking at what that one added); nor is a table's creation: delta-rs would
            # commit a second creator as the next version, its schema replacing the first one's
            max_commit_retries=0 if change.read is not None or dt is None else None,
        )
        if dt is None:
            try:
                create_table_with_add_actions(
                    self.location,
                    deltalake.Schema.from_arrow(arrow_schema),
                    adds,
                    mode="error",
                    partition_by=change.partition_by or None,
                    storage_options=self.options,
                    commit_properties=props,
                )
            except Exception as exc:
                if self.exists():  # another worker created the table first: commit again on top of it
                    raise ConcurrentChange(f"table created concurrently ({exc}); retrying") from None
                raise
        else:
            # delta-rs checks for conflicting commits made since `dt` was loaded (e.g. the same files removed)
            from deltalake.exceptions import CommitFailedError

            try:
                dt.create_write_transaction(
                    adds if widened is not None else adds + removes,  # an overwrite removes every file itself
                    mode="overwrite" if widened is not None else "append",
                    schema=deltalake.Schema.from_arrow(widened) if widened is not None else dt.schema(),
                    partition_by=change.partition_by or None,
                    commit_properties=props,
                )
            except CommitFailedError as exc:  # nothing was committed: the caller tries again on the new state
                raise ConcurrentChange(f"a concurrent commit conflicts with this one ({exc}); retrying") from None
        version = self._table().version()
        self._sync_log(before, version)
        return version

    def missing_files(self) -> list[DataFile]:
        files = self.current_files()
        gone = set(self.storage.missing([f.path for f in files]))
        return [f for f in files if f.path in gone]

    def repair(self, gone: list[DataFile], forget: list[str]) -> int | None:
        """One commit: a `remove` of each file `gone` and a `txn` of each application id of `forget` at version
        `FORGOTTEN` (the latest `txn` of an id is the one a reader goes by). Nothing for a table not made yet."""
        from landfall.state.base import new_id

        if not self.exists() or not (gone or forget):
            return None
        _, partition_by = self.schema_and_partitions()
        change = TableChange(
            commit_id=new_id("repair-"),
            operation="REPAIR",
            add=[],
            remove=gone,
            schema=None,
            partition_by=partition_by,
            forget=forget,
        )
        return self.commit(change)

    def _sync_log(self, before: int, version: int) -> None:
        """The log's entries after `before` up to `version` (a schema change's, this commit's) on disk before the
        catalog commit: delta-rs does not flush them, and a power cut could leave a version the catalog names
        empty or missing. A checkpoint written meanwhile, and its pointer, too."""
        versions = range(before + 1, version + 1)
        self.storage.sync([commit_key(v) for v in versions])
        checkpoints = [f"_delta_log/{v:020d}.checkpoint.parquet" for v in versions]
        self.storage.sync([*checkpoints, "_delta_log/_last_checkpoint"], missing_ok=True)

    @staticmethod
    def _needs_timestamp_ntz(dt: Any, schema: Any) -> bool:
        """Whether `schema` has a timestamp without a time zone (Delta's `timestamp_ntz`) at any depth (a struct's
        field, a list's items), which a table's protocol must name (the `timestampNtz` feature) before its log may
        hold one, and the table's does not."""
        if not any(_naive_timestamp_in(f.type) for f in schema):
            return False
        return "timestampNtz" not in (dt.protocol().reader_features or [])

    @staticmethod
    def _widened(dt: Any, schema: Any) -> Any:
        """The table's Arrow schema with the types of the columns `schema` (the batch's) gives another type."""
        import pyarrow as pa

        current = pa.schema(dt.schema().to_arrow())
        delta_types = {f.name: str(f.type) for f in dt.schema().fields}
        wanted = {f.name: str(f.type) for f in deltalake.Schema.from_arrow(schema).fields}
        changed = {n for n in current.names if n in wanted and wanted[n] != delta_types[n]}
        return pa.schema([schema.field(f.name) if f.name in changed else f for f in current])

    @_log_errors
    def committed(self, app_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        top, done = self._known(app_ids)
        # the commits carrying them, newest first; they are nearly always among the latest (a retry finds the
        # commit its crashed attempt made)
        for version, meta in self._landfall_commits(top) if done else ():
            meta["version"] = version
            for app in meta.get("app_ids", []):
                if app in done and app not in found:
                    found[app] = meta
            if len(found) == len(done):
                break
        return found

    @_log_errors
    def attempted(self, app_ids: list[str]) -> tuple[set[str], set[str]]:
        """What the commits carrying `app_ids` added (their own files, as they name them) and removed, over all of
        them: read back from the newest commit while one of the last 16 carried one. The log is read only when
        the table's snapshot knows one of them (nearly every commit has none)."""
        added: set[str] = set()
        removed: set[str] = set()
        top, apps = self._known(app_ids)
        last = None
        for n, (version, meta) in enumerate(self._landfall_commits(top) if apps else ()):
            if apps & set(meta.get("app_ids", [])):
                added.update(meta.get("added", []))
                removed.update(self._actions(version)[1])
                last = n
            elif last is not None and n - last > 16:
                break
        return added, removed

    def _known(self, app_ids: list[str]) -> tuple[int, set[str]]:
        """The table's latest version, and those of `app_ids` its snapshot holds as committed (a lookup, no log
        read; none when there is no table)."""
        if not app_ids or not self.exists():
            return -1, set()
        dt = self._table()
        return dt.version(), {a for a in app_ids if dt.transaction_version(a) == COMMITTED}

    def _landfall_commits(self, top: int) -> Iterator[tuple[int, dict[str, Any]]]:
        """Each commit's landfall metadata (empty for another writer's), from version `top` back, read a page at
        a time; up to the first cleaned up (before a checkpoint: the older ones are gone too)."""
        page = 16
        while top >= 0:
            for version, info in self._commit_infos(range(top, max(top - page, -1), -1)):
                if info is None:
                    return
                yield version, json.loads(info[META_KEY]) if info.get(META_KEY) else {}
            top, page = top - page, page * 4

    @_log_errors
    def removed_by_newest(self, run_ids: set[str], limit: int = 16) -> set[str]:
        """The files the newest commits of the log removed, read back while each is a landfall commit of runs
        `run_ids` name (a run's commit its catalog commit has not followed yet: the process was killed between
        them, and the run's retry records it); stops at the first other commit, or after `limit`."""
        removed: set[str] = set()
        for n, (version, meta) in enumerate(self._landfall_commits(self.version())):
            runs = {r.get("run_id") for r in meta.get("runs", [])}
            if n >= limit or not runs or not runs <= run_ids:
                break
            removed.update(self._actions(version)[1])
        return removed

    def _commit_infos(self, versions: Sequence[int]) -> list[tuple[int, dict[str, Any] | None]]:
        """The `commitInfo` of each version (None when its commit file is gone), read from the file of that name
        (concurrently on an object store). Never counted: delta-rs's history numbers the commits it lists back
        from the version its table object holds, and lists the ones another writer made since too, so a commit
        made meanwhile shifted every number by one."""
        keys = [commit_key(v) for v in versions]
        out: list[tuple[int, dict[str, Any] | None]] = []
        for version, got in zip(versions, self.storage.read_all(keys), strict=True):
            if isinstance(got, Exception):
                out.append((version, None))
                continue
            info: dict[str, Any] = {}
            for line in got.decode("utf-8").splitlines():
                action = json.loads(line) if line.strip() else {}
                if "commitInfo" in action:
                    info = action["commitInfo"] or {}
                    break
            out.append((version, info))
        return out

    @_log_errors
    def changes(self, version: int) -> tuple[list[DataFile], list[str]]:
        added, removed = self._actions(version)
        return [f for f in self.current_files() if f.path in added], removed

    def _actions(self, version: int) -> tuple[set[str], list[str]]:
        """The paths a commit file adds and removes (URI-encoded in the log, as in `_files`)."""
        from urllib.parse import unquote

        added: set[str] = set()
        removed: list[str] = []
        for line in self.storage.read_bytes(commit_key(version)).decode("utf-8").splitlines():
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                added.add(unquote(action["add"]["path"]))
            elif "remove" in action:
                removed.append(unquote(action["remove"]["path"]))
        return added, removed

    @_log_errors
    def version(self) -> int:
        """The table's latest version."""
        return self._table().version()

    @_log_errors
    def unread_features(self) -> str | None:
        """What of the table's protocol landfall does not apply when it reads the table's files (it reads the files
        its log lists, as Parquet): a table another writer made with deletion vectors (Databricks' default) would
        give back the rows deleted, with column mapping columns named by id; None when there is nothing."""
        dt = self._table()
        features = set(dt.protocol().reader_features or []) - READ_BY_FILE
        mapping = dt.metadata().configuration.get("delta.columnMapping.mode") or "none"
        if mapping != "none":
            features.add("columnMapping")
        if not features:
            return None
        said = [f"`{f}`{f' ({WHY_UNREAD[f]})' if f in WHY_UNREAD else ''}" for f in sorted(features)]
        return f"the Delta table at `{redact(self.location)}` uses {', '.join(said)}, which landfall does not read"

    def schema_and_partitions(self) -> tuple[Any, list[str]]:
        """The table's Arrow schema (its columns in order, partition columns included) and partition columns."""
        import pyarrow as pa

        dt = self._table()
        return pa.schema(dt.schema().to_arrow()), list(dt.metadata().partition_columns)

    @_log_errors
    def current_files(self) -> list[DataFile]:
        return self._files(self._table()) if self.exists() else []

    @_log_errors
    def current_paths(self) -> set[str]:
        """The paths of the table's files, decoded as `current_files` decodes them, without making a `DataFile`
        of each (10,000 files: 2 ms, where `current_files` takes 50 ms): for checks that need only the names."""
        if not self.exists():
            return set()
        from urllib.parse import unquote

        import pyarrow as pa

        return {unquote(p) for p in pa.table(self._table().get_add_actions()).column("path").to_pylist()}

    @_log_errors
    def files_as_of(self, version: int | datetime) -> list[DataFile]:
        return self._files(self._table(version))

    @staticmethod
    def _files(dt: Any) -> list[DataFile]:
        """The add actions of `dt`, with each path decoded: the log keeps paths URI-encoded (a file in
        `day=50%25%20off/`, as the engine names it on disk, is `day=50%2525%2520off/` there), the catalog and
        the zone use the file's own name."""
        from urllib.parse import unquote

        import pyarrow as pa

        actions = pa.table(dt.get_add_actions(flatten=True))
        out = []
        cols = actions.column_names
        parts = [c for c in cols if c.startswith("partition.")]
        for row in actions.to_pylist():
            # the values as the folders hold them, as landfall writes them and compares them (the log's are typed:
            # `True` for the folder's `true`); a value no folder names (a table written otherwise), from the log
            path = unquote(row["path"])
            named = partitions.values_of(os.path.dirname(path))
            partition = {
                n: named[n] if n in named else (None if row[c] is None else str(row[c]))
                for c in parts
                if (n := c.removeprefix("partition."))
            }
            out.append(
                DataFile(
                    path=path,
                    rows=int(row.get("num_records") or 0),
                    bytes=int(row.get("size_bytes") or 0),
                    partition=partition,
                )
            )
        return out

    @_log_errors
    def history(self, limit: int | None = None) -> list[Version]:
        out = []
        for entry in self._history(limit):
            version = int(entry["version"])
            meta = json.loads(entry[META_KEY]) if entry.get(META_KEY) else {}
            metrics = entry.get("operationMetrics") or {}
            out.append(
                Version(
                    version=version,
                    timestamp=datetime.fromtimestamp(entry.get("timestamp", 0) / 1000, UTC),
                    operation=meta.get("operation") or entry.get("operation", ""),
                    run_ids=[r["run_id"] for r in meta.get("runs", [])],
                    rows_added=meta.get("rows_added", metrics.get("num_added_rows")),
                    rows_removed=meta.get("rows_removed", metrics.get("num_deleted_rows")),
                    files_added=meta.get("files_added", metrics.get("num_added_files")),
                    files_removed=meta.get("files_removed", metrics.get("num_removed_files")),
                )
            )
        return out

    def _history(self, limit: int | None) -> list[dict[str, Any]]:
        """delta-rs's history (newest first, read concurrently), numbered right. It numbers the commits back from
        the version its table object holds, yet lists any another writer made since too; so it is taken only
        when no commit past that version exists once it has been read (none then means none before: commit
        files are only ever added at the end)."""
        for _ in range(10):
            dt = self._table()
            entries = dt.history(limit)
            if not self.storage.exists(commit_key(dt.version() + 1)):
                return entries
        raise ConcurrentChange(f"{self.storage.label}: the table kept changing while its history was read")

    def _versions(self) -> list[int]:
        """The versions whose commit files the log holds, oldest first (one listing of `_delta_log/`)."""
        commits = commit_versions(log_files(self.storage))
        if not commits:
            raise BrokenTable(broken_log_message(self.storage))
        return commits

    @_log_errors
    def span(self) -> tuple[int, datetime, int]:
        """The oldest version the log still holds, the time of its commit, and the latest version: from one
        listing of `_delta_log/` and one commit file, where a whole history reads every commit (a table a
        stream commits to every few seconds has tens of thousands)."""
        versions = self._versions()
        ((first, info),) = self._commit_infos([versions[0]])
        return first, self._commit_time(first, info), versions[-1]

    def _commit_time(self, version: int, info: dict[str, Any] | None) -> datetime:
        """When `version` was committed: its `commitInfo`'s time, else its file's."""
        if info and info.get("timestamp") is not None:
            return datetime.fromtimestamp(info["timestamp"] / 1000, UTC)
        return datetime.fromtimestamp(mtime_of(self.storage.info(commit_key(version))), UTC)

    @_log_errors
    def vacuum(self, retain_seconds: float) -> list[str]:
        if not self.exists():
            return []
        dt = self._table()
        hours = max(0, math.ceil(retain_seconds / 3600))
        gone = dt.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False)
        return [self.storage.key_of(g) for g in gone]

    def files(self, before: float | None = None) -> list[str]:
        return [f for f in super().files(before) if not f.startswith("_delta_log")]

    def discard(self, commit_id: str, keep: set[str]) -> list[str]:
        """Files of a commit that reached the Delta log stay (the log is the authority); the rest go."""
        in_log = self.current_paths()
        return super().discard(commit_id, keep | in_log)


def delta_stats(f: DataFile, schema: Any) -> dict[str, Any]:
    """Delta `stats` JSON from the engine's per-file column statistics (numRecords, min/max, nullCount)."""
    import pyarrow as pa

    out: dict[str, Any] = {"numRecords": f.rows}
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, Any] = {}
    types = {fld.name: fld.type for fld in schema}
    for raw_name, st in (f.stats or {}).items():
        name = raw_name[1:-1].replace('""', '"') if raw_name.startswith('"') else raw_name
        typ = types.get(name)
        if typ is None:
            continue
        if "null_count" in st:
            nulls[name] = int(st["null_count"])
        for src, dest in (("min", mins), ("max", maxs)):
            if src not in st or st.get(f"{src}_is_exact") == "false":
                continue
            value = _stat_value(st[src], typ, pa, upper=src == "max")
            if value is not None:
                dest[name] = value
    if mins:
        out["minValues"] = mins
    if maxs:
        out["maxValues"] = maxs
    if nulls:
        out["nullCount"] = nulls
    return out


def _stat_value(text: str, typ: Any, pa: Any, upper: bool = False) -> Any:
    try:
        if pa.types.is_integer(typ):
            return int(text)
        if pa.types.is_floating(typ):
            v = float(text)
            return v if math.isfinite(v) else None
        if pa.types.is_date(typ):
            return text
        if pa.types.is_timestamp(typ):
            ts = datetime.fromisoformat(
                text.replace(" ", "T").replace("+00", "+00:00") if text.endswith("+00") else text.replace(" ", "T")
            )
            if upper and ts.microsecond % 1000:  # stats keep milliseconds: round a maximum up, never down
                from datetime import timedelta

                ts = ts + timedelta(microseconds=1000 - ts.microsecond % 1000)
            if typ.tz:
                ts = ts.astimezone(UTC)
                return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"
            return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}"
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            return text if len(text) <= 32 else None
    except ValueError:
        return None
    return None


def _naive_timestamp_in(t: Any) -> bool:
    """Whether an Arrow type is, or holds at any depth, a timestamp without a time zone."""
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        return t.tz is None
    if pa.types.is_struct(t):
        return any(_naive_timestamp_in(t.field(i).type) for i in range(t.num_fields))
    if pa.types.is_map(t):
        return _naive_timestamp_in(t.key_type) or _naive_timestamp_in(t.item_type)
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _naive_timestamp_in(t.value_type)
    return False
