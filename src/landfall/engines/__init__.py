"""Engines, by name: `duckdb` (in-process, the default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from landfall.engines.base import Engine, Job, Source, Staged, StagedFile

if TYPE_CHECKING:
    from landfall.config import Settings

__all__ = ["Engine", "Job", "Source", "Staged", "StagedFile", "open_engine"]


def open_engine(name: str = "duckdb", settings: Settings | None = None) -> Engine:
    """An engine by name (see `landfall.registry`): `duckdb` (in-process, the default), set up from the
    settings (`landfall.yaml`) when given."""
    from landfall.registry import backend

    cls = backend("engine", name)
    return cls.from_settings(settings) if settings is not None else cls()
