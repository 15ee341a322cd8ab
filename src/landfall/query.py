"""SQL over every cataloged table, by name (DuckDB). `quarantine.<table>` names are reserved for later."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb

from landfall.engines.duckdb import lit, q
from landfall.errors import ConfigError
from landfall.state.base import StateStore, Table
from landfall.storage import Storage, Zones

_DUCK_HIVE_TYPES = {
    "VARCHAR",
    "BIGINT",
    "INTEGER",
    "DATE",
    "TIMESTAMP",
    "DOUBLE",
    "BOOLEAN",
    "SMALLINT",
    "TINYINT",
    "FLOAT",
    "HUGEINT",
}


def table_select(table: Table, files: list[str]) -> str:
    """A SELECT over a table's current files, with its cataloged column order and types."""
    cols = ", ".join(f"CAST({q(n)} AS {t}) AS {q(n)}" for n, t in table.schema)
    if not files:
        return f"SELECT {cols} FROM (SELECT {', '.join(f'NULL AS {q(n)}' for n, _ in table.schema)}) WHERE false"
    paths = "[" + ", ".join(lit(f"{table.location}/{f}") for f in files) + "]"
    types = dict(table.schema)
    hive = ", ".join(
        f"{lit(p)}: {lit(types.get(p, 'VARCHAR'))}"
        for p in table.partition_by
        if types.get(p, "VARCHAR") in _DUCK_HIVE_TYPES
    )
    opts = "union_by_name = true"
    if table.partition_by:
        opts += ", hive_partitioning = true" + (f", hive_types = {{{hive}}}" if hive else "")
    else:
        opts += ", hive_partitioning = false"
    return f"SELECT {cols} FROM read_parquet({paths}, {opts})"


def connect(
    store: StateStore,
    con: duckdb.DuckDBPyConnection | None = None,
    *,
    as_of: int | datetime | None = None,
    zones: Zones | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per cataloged table; with `as_of`, Delta tables as of that version.
    Tables on an object store are read through fsspec (registered with the connection), never through a DuckDB
    extension download."""
    con = con or duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    for table in store.tables():
        storage = zones.at(table.location) if zones else Storage(table.location)
        storage.register_with(con)
        if as_of is not None and table.format == "delta":
            from landfall.tables import open_table

            files = [f.path for f in open_table("delta", storage).files_as_of(as_of)]
            table = _schema_as_of(table, files, storage)
        else:
            files = [f.path for f in store.table_files(table.name)]
        con.execute(f"CREATE OR REPLACE VIEW {view_name(con, table.name)} AS {table_select(table, files)}")
    return con


def view_name(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """`sales` -> "sales"; `quarantine.sales` -> quarantine."sales" (the schema made on first use)."""
    if "." not in name:
        return q(name)
    schema, _, table = name.partition(".")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
    return f"{q(schema)}.{q(table)}"


def _schema_as_of(table: Table, files: list[str], storage: Storage) -> Table:
    """An older version may lack columns added since: keep only the columns its files have."""
    if not files:
        return table
    import pyarrow.parquet as pq

    have: set[str] = set(table.partition_by)
    for f in files:
        with storage.open(f) as fh:
            have |= set(pq.read_schema(fh).names)
    from dataclasses import replace

    return replace(table, schema=[(n, t) for n, t in table.schema if n in have])


def parse_as_of(text: str) -> int | datetime:
    """`3` (a version) or an ISO timestamp (`2026-11-22T10:00:00Z`)."""
    if text.strip().isdigit():
        return int(text)
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--as-of `{text}`: expected a table version (e.g. `3`) or an ISO timestamp (e.g. `2026-11-22T10:00:00Z`)"
        ) from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def run_query(
    store: StateStore, sql: str, *, as_of: int | datetime | None = None, zones: Zones | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = connect(store, as_of=as_of, zones=zones)
    try:
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description] if rel.description else []
        return columns, rel.fetchall()
    finally:
        con.close()
