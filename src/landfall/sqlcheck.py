"""Workflow SQL is checked when the config loads: a `sql` step may read its input (and the tables a caller allows)
only, and an expression (`compute`, `filter`, `expect`, `dedupe.order_by`) reads the row it is given only.

SQL is parsed with sqlglot in DuckDB's dialect (the dialect workflows are written in). Refused, naming the step
and what was found: more than one statement; a statement that is not a query (`COPY`, `ATTACH`, `INSTALL`,
`LOAD`, `PRAGMA`, `SET`, `CREATE`, ...); any table but `input`, the query's own `WITH` names and the allowed
tables; table functions other than `unnest`, `range` and `generate_series`; and functions that reach outside
the row (files, the database, the environment): `read_*`, `*_scan`, `glob`, `query`, `getenv`, ...

The engine enforces the same from the other side (see `landfall.engines.duckdb.sql.sandboxed_database`):
its database reaches only the lake's folders, with extensions and configuration changes off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TABLE_FUNCTIONS = {"unnest", "range", "generate_series"}  # make rows from values, read nothing
_OUTSIDE = re.compile(
    r"^(read_\w+|\w+_scan|glob|sniff_csv|parquet_\w+|duckdb_\w+|pragma_\w+|query|query_table|getenv|"
    r"current_setting|which_secret|load_\w+|install_\w+|iceberg_\w+|delta_\w+|postgres_\w+|sqlite_\w+|"
    r"mysql_\w+|json_execute_serialized_sql|export_\w+|import_\w+|checkpoint|force_checkpoint|enable_\w+|"
    r"disable_\w+|set_\w+|reset_\w+|test_\w+|summary|sql_auto_complete|repeat_row|icu_\w+)$",
    re.IGNORECASE,
)


def check_query(sql: str, tables: Iterable[str] = ()) -> None:
    """A `sql` step's query: one query that reads `input` and `tables` only. Raises `ValueError`."""
    statement = _one(sql)
    from sqlglot import exp

    if not isinstance(statement, exp.Query):
        raise ValueError(f"a `sql` step is one query (`SELECT ...`); found `{_kind(statement)}`")
    allowed = {"input", *(t.lower() for t in tables)}
    allowed |= {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    _walk(statement, allowed, "`input`" + "".join(f", `{t}`" for t in tables))


def check_expression(text: str) -> None:
    """An expression over one row (`compute`, `filter`, `expect`, `order_by`): no tables, nothing outside the
    row. Raises `ValueError`."""
    node = _one(text)
    from sqlglot import exp

    if isinstance(node, exp.Subquery):
        raise ValueError("expected an expression over the row's columns; found a subquery (it would read a table)")
    if isinstance(node, (exp.Query, exp.Command, exp.DDL, exp.DML)) or type(node).__name__ in _STATEMENTS:
        raise ValueError(f"expected an expression over the row's columns; found `{_kind(node)}`")
    _walk(node, set(), "")


_STATEMENTS = {"Copy", "Attach", "Detach", "Install", "Pragma", "Set", "Use", "Describe", "Transaction", "Commit"}


def _one(sql: str):  # -> sqlglot.exp.Expression
    import logging

    import sqlglot
    from sqlglot.errors import ParseError

    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # statements it only knows as commands are refused below, not logged
    try:
        parsed = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        raise ValueError(f"cannot check this SQL: {str(exc).splitlines()[0]}") from None
    finally:
        quiet.setLevel(level)
    if len(parsed) != 1:
        raise ValueError(f"expected one statement; found {len(parsed)} (separated by `;`)")
    return parsed[0]


def _kind(node) -> str:  # noqa: ANN001 - a sqlglot expression
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return type(node).__name__.upper()


def _walk(node, tables: set[str], allowed: str) -> None:  # noqa: ANN001 - a sqlglot expression
    from sqlglot import exp

    for sub in node.walk():
        if isinstance(sub, (exp.Command, exp.DDL, exp.DML)) or type(sub).__name__ in _STATEMENTS:
            raise ValueError(f"found `{_kind(sub)}`; workflow SQL only reads rows")
        if isinstance(sub, exp.Table):
            fn = sub.this if isinstance(sub.this, exp.Func) else None
            if fn is not None:
                name = _function_name(fn)
                if name not in TABLE_FUNCTIONS:
                    raise ValueError(
                        f"table function `{name}` is not allowed; workflow SQL reads "
                        + (f"{allowed} only" if allowed else "the row's columns only")
                    )
            elif sub.name.lower() not in tables or sub.db or sub.catalog:
                what = "`" + ".".join(p for p in (sub.catalog, sub.db, sub.name) if p) + "`"
                raise ValueError(
                    f"table {what} is not allowed; "
                    + (f"a `sql` step reads {allowed} only" if allowed else "an expression reads no tables")
                )
        elif isinstance(sub, exp.Func):
            name = _function_name(sub)
            if _OUTSIDE.match(name):
                raise ValueError(f"function `{name}` reads outside the rows and is not allowed in workflow SQL")


def _function_name(fn) -> str:  # noqa: ANN001 - a sqlglot function expression
    from sqlglot import exp

    if isinstance(fn, exp.Anonymous):
        return str(fn.name).lower()
    return fn.sql_name().lower()
