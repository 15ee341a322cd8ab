"""State stores, chosen by URL: `sqlite:///path/state.db` (default) or `postgresql://...`."""

from __future__ import annotations

from landfall.processes import worker_id
from landfall.state.base import (
    DataFile,
    Run,
    RunResult,
    RunStatus,
    SourceRows,
    StateStore,
    Table,
    TableCommit,
    new_id,
)

__all__ = [
    "DataFile",
    "Run",
    "RunResult",
    "RunStatus",
    "SourceRows",
    "StateStore",
    "Table",
    "TableCommit",
    "new_id",
    "open_state",
    "worker_id",
]


def open_state(url: str) -> StateStore:
    """The state store for a URL: `sqlite:///path/state.db` (the default), `postgresql://...`."""
    from landfall.registry import backend

    scheme = url.split("://", 1)[0] if "://" in url else "sqlite"
    return backend("state", scheme)(url)
