"""The table-format seam: a table writer makes staged Parquet files part of a table, atomically with the run
records (the catalog commit in the state store is the moment they become visible to `landfall query`)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from landfall.engines.base import StagedFile
from landfall.state.base import DataFile


class TableWriter(ABC):
    """One table's storage. `location` is a local path or an fsspec URL."""

    format: str

    def __init__(self, location: str) -> None:
        self.location = location.rstrip("/")

    @abstractmethod
    def publish(self, staged: list[StagedFile]) -> list[DataFile]:
        """Move staged files to their place in the table; returns them with paths relative to the table."""

    @abstractmethod
    def delete(self, paths: list[str]) -> None:
        """Remove files the catalog no longer lists (after the commit that dropped them)."""

    @abstractmethod
    def discard(self, commit_id: str, keep: set[str]) -> list[str]:
        """Remove files of an uncommitted commit (a crashed run), except those in `keep`; returns them."""

    @abstractmethod
    def files(self) -> list[str]:
        """Every data file under the table's location (relative paths), listed or not."""

    @abstractmethod
    def staging_dirs(self) -> list[str]:
        """Commit ids that have a staging folder (left behind by a crash, or in progress)."""

    def staging_dir(self, commit_id: str) -> str:
        """A local folder the engine may write into for this commit."""
        return f"{self.location}/_staging/{commit_id}"
