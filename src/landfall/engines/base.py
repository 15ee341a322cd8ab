"""The engine seam: an engine reads landed files, applies a workflow's steps and writes Parquet files into a
staging folder, with their stats. It never makes them visible: that is the table writer's job
(`landfall.tables`), which is what lets the same workflow run in-process (DuckDB) or on a cluster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from landfall.config import Settings, Workflow


@dataclass
class Source:
    """One landed file version in a job."""

    key: str  # landing key, e.g. `sales/2024-01.csv`; becomes `_source_file`
    path: str  # what the engine opens (a local path or URL)
    run_id: str
    file_id: int
    size: int = 0


@dataclass
class Job:
    workflow: Workflow
    sources: list[Source]
    staging: str  # folder the engine writes into (local path)
    commit_id: str  # names the output files: `part-<commit_id>-<n>.parquet`
    ingested_at: datetime
    table_schema: list[tuple[str, str]] | None = None  # the table's schema, when it exists
    table_files: list[tuple[str, str]] = field(default_factory=list)  # (absolute path, path in table)
    partition_names: list[str] = field(default_factory=list)  # the table's partition columns
    child_staging: dict[str, str] = field(default_factory=dict)  # child table -> folder its files go into
    child_schemas: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # child tables that exist


@dataclass
class StagedFile:
    path: str  # absolute path in the staging folder
    relpath: str  # path relative to the staging folder (`year=2024/part-...parquet`)
    rows: int
    bytes: int
    partition: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class Staged:
    """What an engine produced for a job."""

    files: list[StagedFile]
    schema: list[tuple[str, str]]
    rows_in: dict[str, int]  # by source key
    rows_out: dict[str, int]
    file_sources: list[tuple[str, str, int]]  # (relpath, source key, rows)
    steps: list[dict[str, Any]] = field(default_factory=list)  # [{"step": ..., "seconds": ...}]
    replaced: list[str] = field(default_factory=list)  # table files (relative) the output supersedes (merge)
    arrow_schema: Any = None  # pyarrow.Schema of the output, partition columns included
    outputs_of: dict[str, set[str]] = field(default_factory=dict)  # source key -> files holding its rows
    quality: dict[str, Any] = field(default_factory=dict)  # rule label -> {action, violations}
    quarantine_files: list[StagedFile] = field(default_factory=list)  # rows set aside, for quarantine/<table>
    quarantine_schema: list[tuple[str, str]] = field(default_factory=list)
    children: dict[str, Staged] = field(default_factory=dict)  # child table -> its rows (`child_tables`)
    notes: dict[str, str] = field(default_factory=dict)  # source key -> a note for its run (e.g. an empty file)


class Engine(ABC):
    """Runs a workflow's read/transform/write on a batch of files."""

    name: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Engine:
        """The engine set up from `landfall.yaml` (its own section, if it has one)."""
        return cls()

    @abstractmethod
    def run(self, job: Job) -> Staged:
        """Read every source, transform, write Parquet into `job.staging`. Raise `InvalidInput` naming the
        file, line and reason when input is bad."""

    @abstractmethod
    def rewrite(
        self, files: list[tuple[str, str]], exclude_keys: list[str], staging: str, commit_id: str
    ) -> list[StagedFile]:
        """Copy table files `(absolute path, path in the table)` into staging without the rows of
        `exclude_keys` (landed files replaced by a new version); each copy keeps its partition folder."""

    @abstractmethod
    def compact(
        self, files: list[tuple[str, str]], staging: str, commit_id: str, target_file_size: int
    ) -> list[StagedFile]:
        """Rewrite files of one partition `(absolute path, path in table)` into few large ones."""

    @abstractmethod
    def replay(
        self, job: Job, files: list[str], run_id: str | None
    ) -> tuple[list[StagedFile], list[StagedFile], int, int]:
        """Check quarantined rows again with the workflow's rules: (table files, quarantine files, rows replayed,
        rows still quarantined)."""

    @abstractmethod
    def source_counts(self, paths: list[str]) -> dict[str, dict[str, int]]:
        """For table files: how many rows of each landed file (`_source_file`) each holds."""

    def use_storage(self, storage: Any) -> None:
        """Let the engine read files of a `landfall.storage.Storage` by URL (table files on an object store);
        landed files always come as local paths."""

    def close(self) -> None:
        """Release resources."""
