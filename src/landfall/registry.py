"""Backends by name: one registry for every seam, like fsspec's `known_implementations`.

Each seam (`engine`, `state`, `table`, `source`) maps a name to `"module:Class"` and the pip extra that brings
the libraries it needs. Nothing is imported until a backend is asked for, and a missing library is one line
with the exact install command, never a traceback:

    >>> backend("state", "postgresql")
    MissingDependency: state store `postgresql` needs psycopg: pip install "landfall[postgres]"

Third-party backends register themselves with `register` (or are named directly as `"module:Class"`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from landfall.errors import ConfigError, MissingDependency

SEAMS = {"engine": "engine", "state": "state store", "table": "table format", "source": "event source"}


@dataclass(frozen=True)
class Entry:
    target: str  # "module:Class"
    extra: str | None = None  # the pip extra that brings its libraries (None: in the base install)
    requires: tuple[str, ...] = ()  # top-level modules it imports that may be missing (checked at config load)


_REGISTRY: dict[str, dict[str, Entry]] = {
    "engine": {
        "duckdb": Entry("landfall.engines.duckdb:DuckDBEngine"),
        "spark": Entry("landfall.engines.spark.engine:SparkEngine", "spark"),
    },
    "state": {
        "sqlite": Entry("landfall.state.sqlite:SqliteStateStore"),
        "postgresql": Entry("landfall.state.postgres:PostgresStateStore", "postgres", ("psycopg", "psycopg_pool")),
        "postgres": Entry("landfall.state.postgres:PostgresStateStore", "postgres", ("psycopg", "psycopg_pool")),
    },
    "table": {
        "parquet": Entry("landfall.tables.parquet:ParquetTable"),
        "delta": Entry("landfall.tables.delta:DeltaTable", None, ("deltalake",)),  # in the base install
    },
    "source": {
        "listing": Entry("landfall.sources.listing:ListingSource"),
        "watch": Entry("landfall.sources.watch:WatchSource"),
        "sqs": Entry("landfall.sources.sqs:SqsSource", "sqs", ("boto3",)),
        "streams": Entry("landfall.streams:Streams"),
    },
}


def register(seam: str, name: str, target: str, extra: str | None = None, requires: tuple[str, ...] = ()) -> None:
    """Make `name` a backend of `seam`, implemented by `target` (`"module:Class"`)."""
    _seam(seam)[name] = Entry(target, extra, tuple(requires))


def check_available(seam: str, name: str) -> None:
    """Without importing anything: raise `MissingDependency` (with the install line) when a library the backend
    needs is not installed, so that a config naming it fails when it loads, not on every file."""
    import importlib.util

    entry = _seam(seam).get(name)
    for module in entry.requires if entry else ():
        if importlib.util.find_spec(module) is None:
            raise missing_dependency(f"{SEAMS[seam]} `{name}`", module, entry.extra)


def names(seam: str) -> list[str]:
    """The backend names a seam knows, in registration order."""
    return list(_seam(seam))


def backend(seam: str, name: str) -> Any:
    """The class registered as `name` for `seam`, imported now.

    Raises `ConfigError` for an unknown name (listing the known ones) and `MissingDependency` with the pip line
    when a library the backend needs is not installed.
    """
    entries = _seam(seam)
    entry = entries.get(name)
    if entry is None and ":" in name:  # a backend of one's own: "package.module:Class"
        entry = Entry(name)
    if entry is None:
        known = ", ".join(f"`{n}`" for n in entries)
        raise ConfigError(f"unknown {SEAMS[seam]} `{name}`; expected one of {known}")
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if not missing or missing == "landfall":
            raise
        raise missing_dependency(f"{SEAMS[seam]} `{name}`", missing, entry.extra) from None
    return getattr(module, attr)


def missing_dependency(what: str, module: str, extra: str | None) -> MissingDependency:
    """`what` needs `module`, with the install line: one line, for every seam alike."""
    line = f'pip install "landfall[{extra}]"' if extra else f"pip install {module}"
    return MissingDependency(f"{what} needs {module}: {line}")


def _seam(seam: str) -> dict[str, Entry]:
    try:
        return _REGISTRY[seam]
    except KeyError:
        raise ValueError(f"unknown seam `{seam}`; expected one of {', '.join(SEAMS)}") from None
