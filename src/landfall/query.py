"""SQL over every cataloged table, by name (DuckDB). `quarantine.<table>` names are reserved for later."""

from __future__ import annotations

from typing import Any

import duckdb

from landfall.engines.duckdb import lit, q
from landfall.state.base import StateStore, Table

_DUCK_HIVE_TYPES = {"VARCHAR", "BIGINT", "INTEGER", "DATE", "TIMESTAMP", "DOUBLE", "BOOLEAN", "SMALLINT",
                    "TINYINT", "FLOAT", "HUGEINT"}


def table_select(table: Table, files: list[str]) -> str:
    """A SELECT over a table's current files, with its cataloged column order and types."""
    cols = ", ".join(f"CAST({q(n)} AS {t}) AS {q(n)}" for n, t in table.schema)
    if not files:
        return f"SELECT {cols} FROM (SELECT {', '.join(f'NULL AS {q(n)}' for n, _ in table.schema)}) WHERE false"
    paths = "[" + ", ".join(lit(f"{table.location}/{f}") for f in files) + "]"
    types = dict(table.schema)
    hive = ", ".join(f"{lit(p)}: {lit(types.get(p, 'VARCHAR'))}" for p in table.partition_by
                     if types.get(p, "VARCHAR") in _DUCK_HIVE_TYPES)
    opts = "union_by_name = true"
    if table.partition_by:
        opts += ", hive_partitioning = true" + (f", hive_types = {{{hive}}}" if hive else "")
    else:
        opts += ", hive_partitioning = false"
    return f"SELECT {cols} FROM read_parquet({paths}, {opts})"


def connect(store: StateStore, con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per cataloged table."""
    con = con or duckdb.connect(":memory:")
    for table in store.tables():
        files = [f.path for f in store.table_files(table.name)]
        con.execute(f"CREATE OR REPLACE VIEW {q(table.name)} AS {table_select(table, files)}")
    return con


def run_query(store: StateStore, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    con = connect(store)
    try:
        rel = con.execute(sql)
        columns = [d[0] for d in rel.description] if rel.description else []
        return columns, rel.fetchall()
    finally:
        con.close()
