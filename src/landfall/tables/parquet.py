"""Parquet tables: Hive-partitioned folders of `part-<commit>-<n>.parquet` files.

A run's files are written into `_staging/<commit>/` (ignored by Hive readers), then renamed into place; the
catalog commit that follows, in the same transaction as the run records, is what makes them part of the
table. Files of a commit that never reached the catalog are found by name and removed on recovery.
"""

from __future__ import annotations

import os
import shutil

import fsspec

from landfall.engines.base import StagedFile
from landfall.state.base import DataFile
from landfall.tables.base import TableWriter


class ParquetTable(TableWriter):
    format = "parquet"

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.fs, self.root = fsspec.core.url_to_fs(self.location)

    def publish(self, staged: list[StagedFile]) -> list[DataFile]:
        out = []
        for f in staged:
            dest = f"{self.root}/{f.relpath}"
            self.fs.makedirs(os.path.dirname(dest), exist_ok=True)
            if "file" in self.fs.protocol:  # a str or a tuple of names, by fsspec version
                os.replace(f.path, dest)
            else:
                self.fs.put_file(f.path, dest)
            out.append(DataFile(path=f.relpath, rows=f.rows, bytes=f.bytes, partition=f.partition, stats=f.stats))
        return out

    def delete(self, paths: list[str]) -> None:
        for rel in paths:
            try:
                self.fs.rm_file(f"{self.root}/{rel}")
            except FileNotFoundError:
                pass

    def files(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        found = self.fs.find(self.root)
        rels = [
            os.path.relpath(p, self.root) if not p.startswith(self.root + "/") else p[len(self.root) + 1 :]
            for p in found
        ]
        return [
            r for r in rels if r.endswith(".parquet") and not any(part.startswith(("_", ".")) for part in r.split("/"))
        ]

    def discard(self, commit_id: str, keep: set[str]) -> list[str]:
        prefix = f"part-{commit_id}-"
        gone = [rel for rel in self.files() if os.path.basename(rel).startswith(prefix) and rel not in keep]
        self.delete(gone)
        shutil.rmtree(self.staging_dir(commit_id), ignore_errors=True)
        return gone

    def staging_dir(self, commit_id: str) -> str:
        return f"{self.root}/_staging/{commit_id}"

    def vacuum(self, retain_seconds: float, listed: set[str]) -> list[str]:
        """Delete files no commit lists that are older than `retain_seconds`, and stale staging folders."""
        import time

        cutoff = time.time() - retain_seconds
        old = [rel for rel in self.files() if rel not in listed and self._mtime(rel) < cutoff]
        self.delete(old)
        for commit in self.staging_dirs():
            if self._mtime(f"_staging/{commit}") < cutoff:
                shutil.rmtree(self.staging_dir(commit), ignore_errors=True)
        return old

    def _mtime(self, rel: str) -> float:
        try:
            info = self.fs.info(f"{self.root}/{rel}")
        except FileNotFoundError:
            return 0.0
        m = info.get("mtime") or info.get("LastModified") or 0.0
        return m.timestamp() if hasattr(m, "timestamp") else float(m)

    def staging_dirs(self) -> list[str]:
        base = f"{self.root}/_staging"
        if not self.fs.exists(base):
            return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(base, detail=False)]
