"""Parquet tables: Hive-partitioned folders of `part-<commit>-<n>.parquet` files.

A run's files are written into a local staging folder (`_staging/<commit>/` inside the table's folder on a local
zone, ignored by Hive readers; the local scratch folder for an object store), then put in place: renamed on a
local zone, uploaded under their final names on an object store. The catalog commit that follows, in the same
transaction as the run records, is what makes them part of the table. Files of a commit that never reached the
catalog are found by name and removed on recovery.

The types of a partitioned table's partition columns, which no data file holds (their values are the folder
names), are kept in `_landfall/partitions.json` (ignored by Hive readers): a catalog rebuilt from the folder types
them from it, not by what the folder names look like (`true` would be text, `0.5` text).
"""

from __future__ import annotations

import json
import os
import shutil

from landfall.engines.base import StagedFile
from landfall.state.base import DataFile
from landfall.tables.base import TableChange, TableWriter
from landfall.types import type_name

PARTITION_TYPES = "_landfall/partitions.json"


class ParquetTable(TableWriter):
    format = "parquet"
    _kept_types: dict[str, str] | None = None  # the partition types this writer last kept (or found kept)

    def publish(self, staged: list[StagedFile]) -> list[DataFile]:
        out = []
        for f in staged:
            self.storage.put(f.path, f.relpath, move=True)
            out.append(DataFile(path=f.relpath, rows=f.rows, bytes=f.bytes, partition=f.partition, stats=f.stats))
        self.storage.sync([f.path for f in out])  # on disk before any commit names them
        return out

    def commit(self, change: TableChange) -> int | None:
        """Keep the partition columns' types beside the files when they change (the first commit, a widening);
        the catalog commit that follows makes the files part of the table."""
        columns = dict(change.metadata.get("schema") or [])  # the run's table schema (Arrow type strings)
        if change.schema is not None:
            columns = {f.name: type_name(f.type) for f in change.schema}
        if change.partition_by and columns:
            types = {n: columns[n] for n in change.partition_by if n in columns}
            if types != self._kept_types and types != self.partition_types():
                kept = {"partition_by": change.partition_by, "types": types}
                self.storage.write_bytes(PARTITION_TYPES, json.dumps(kept).encode(), sync=True)
            self._kept_types = types
        return None

    def partition_types(self) -> dict[str, str]:
        """The partition columns' types as the table's commits kept them (none for a table made before)."""
        try:
            return dict(json.loads(self.storage.read_bytes(PARTITION_TYPES))["types"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return {}

    def delete(self, paths: list[str]) -> None:
        self.storage.delete(paths)

    def files(self, before: float | None = None) -> list[str]:
        return [key for key, info in self.storage.list() if _data(key) and (before is None or info["mtime"] < before)]

    def discard(self, commit_id: str, keep: set[str]) -> list[str]:
        prefix = f"part-{commit_id}-"
        gone = [rel for rel in self.files() if os.path.basename(rel).startswith(prefix) and rel not in keep]
        self.delete(gone)
        self._drop_staging(commit_id)
        return gone

    def _drop_staging(self, commit_id: str) -> None:
        shutil.rmtree(self.staging_dir(commit_id), ignore_errors=True)

    def staging_dirs(self) -> list[str]:
        if not self.storage.is_local:  # staging is local scratch: nothing in the store to sweep
            return []
        return self.storage.folders("_staging")


def _data(key: str) -> bool:
    return key.endswith(".parquet") and not any(part.startswith(("_", ".")) for part in key.split("/"))
