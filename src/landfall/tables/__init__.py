"""Table formats, by name: `parquet` (Hive-partitioned Parquet folders), `delta` (Delta Lake)."""

from __future__ import annotations

from landfall.storage import Storage, StorageOptions
from landfall.tables.base import TableWriter

__all__ = ["TableWriter", "open_table"]


def open_table(fmt: str, location: Storage | str, options: StorageOptions | None = None) -> TableWriter:
    """A table's writer by format name (see `landfall.registry`): `parquet` or `delta`, over the table folder's
    storage (or a location, a local path or URL, reached with `options`)."""
    from landfall.registry import backend

    storage = location if isinstance(location, Storage) else Storage(location, options)
    return backend("table", fmt)(storage)
