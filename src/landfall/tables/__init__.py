"""Table formats, by name: `parquet` (Hive-partitioned Parquet folders), `delta` (Delta Lake)."""

from __future__ import annotations

from landfall.tables.base import TableWriter

__all__ = ["TableWriter", "open_table"]


def open_table(fmt: str, location: str) -> TableWriter:
    """A table's writer by format name (see `landfall.registry`): `parquet` or `delta`."""
    from landfall.registry import backend

    return backend("table", fmt)(location)
