"""State stores, chosen by URL: `sqlite:///path/state.db` (default) or `postgresql://...`."""

from __future__ import annotations

from landfall.errors import ConfigError
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
    worker_id,
)

__all__ = ["DataFile", "Run", "RunResult", "RunStatus", "SourceRows", "StateStore", "Table", "TableCommit",
           "new_id", "open_state", "worker_id"]


def open_state(url: str) -> StateStore:
    scheme = url.split("://", 1)[0] if "://" in url else "sqlite"
    if scheme == "sqlite":
        from landfall.state.sqlite import SqliteStateStore

        return SqliteStateStore(url)
    raise ConfigError(f"state store `{url}`: unknown scheme `{scheme}`; expected `sqlite:///path`")
