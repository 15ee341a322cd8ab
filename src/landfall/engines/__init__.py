"""Engines, by name: `duckdb` (in-process, the default)."""

from __future__ import annotations

from landfall.engines.base import Engine, Job, Source, Staged, StagedFile

__all__ = ["Engine", "Job", "Source", "Staged", "StagedFile", "open_engine"]


def open_engine(name: str = "duckdb", **options: object) -> Engine:
    """An engine by name (see `landfall.registry`): `duckdb` (in-process, the default)."""
    from landfall.registry import backend

    return backend("engine", name)(**options)
