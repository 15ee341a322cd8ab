"""Table formats, by name: `parquet` (Hive-partitioned Parquet folders), `delta` (Delta Lake)."""

from __future__ import annotations

from landfall.errors import ConfigError
from landfall.tables.base import TableWriter

__all__ = ["TableWriter", "open_table"]


def open_table(fmt: str, location: str) -> TableWriter:
    if fmt == "parquet":
        from landfall.tables.parquet import ParquetTable

        return ParquetTable(location)
    if fmt == "delta":
        from landfall.tables.delta import DeltaTable

        return DeltaTable(location)
    raise ConfigError(f"unknown table format `{fmt}`; expected one of `parquet`, `delta`")
