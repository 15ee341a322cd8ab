"""Engines, by name: `duckdb` (in-process, the default)."""

from __future__ import annotations

from landfall.engines.base import Engine, Job, Source, Staged, StagedFile
from landfall.errors import ConfigError

__all__ = ["Engine", "Job", "Source", "Staged", "StagedFile", "open_engine"]


def open_engine(name: str = "duckdb", **options: object) -> Engine:
    if name == "duckdb":
        from landfall.engines.duckdb import DuckDBEngine

        return DuckDBEngine(**options)  # type: ignore[arg-type]
    raise ConfigError(f"unknown engine `{name}`; expected one of `duckdb`")
