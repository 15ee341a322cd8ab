"""Workflow SQL is checked when the config loads: a `sql` step may read its input (and the tables a caller allows)
only, and an expression (`compute`, `filter`, `expect`, `dedupe.order_by`) reads the row it is given only.

SQL is parsed with sqlglot in DuckDB's dialect (the dialect workflows are written in). Refused, naming the step
and what was found: more than one statement; a statement that is not a query (`COPY`, `ATTACH`, `INSTALL`,
`LOAD`, `PRAGMA`, `SET`, `CREATE`, ...); any table but `input`, the query's own `WITH` names and the allowed
tables; table functions other than `unnest`, `range` and `generate_series`; and functions that reach outside
the row (files, the database, the environment): `read_*`, `*_scan`, `glob`, `query`, `getenv`, ...

The engine enforces the same from the other side (see `landfall.engines.duckdb.sql.sandboxed_database`):
its database reaches only the lake's folders, with extensions and configuration changes off.

Then DuckDB's own parser (`json_serialize_sql`) reads it: a syntax error, or a function DuckDB does not know
(`initcap`; with a did-you-mean from `duckdb_functions()`), fails the load instead of every file at run time.
Columns are not known until a file is read: a step naming a column the file lacks fails that file's run at
once, as a `Terminal` error (see `landfall.runner`).

What a check found is kept between commands (`keep`, in landfall's cache folder: see
`landfall.config.config_cache`) while this module, sqlglot and DuckDB are the same, so a command on an unchanged
config imports neither to check its SQL again. Only what passed is kept: a refused query is checked again, and
says why again.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

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
    tables = list(tables)
    _remembered(["query", sql, tables], lambda: _check_query(sql, tables))


def _check_query(sql: str, tables: list[str]) -> None:
    statement = _one(sql, sql)
    from sqlglot import exp

    if not isinstance(statement, exp.Query):
        raise ValueError(f"a `sql` step is one query (`SELECT ...`); found `{_kind(statement)}`")
    allowed = {"input", *(t.lower() for t in tables)}
    allowed |= {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    _walk(statement, allowed, "`input`" + "".join(f", `{t}`" for t in tables))
    _duckdb_knows(sql, sql)


def tables_of(sql: str) -> list[str]:
    """The tables a `sql` step's query joins: the names it reads other than `input` and its own `WITH` names
    (the caller decides which may be read: see `check_query`'s `tables`). Empty when the query does not parse."""
    found = _remembered(["tables", sql], lambda: _parse_tables(sql))
    return sorted(t for t in found or () if "." not in t and t.lower() != "input")


def tables_named(sql: str) -> set[str] | None:
    """The tables a query reads, lower-cased and schema-qualified (`sales`, `quarantine.sales`), other than its
    own `WITH` names; None when it does not parse. (A user's query: not kept, unlike a workflow's SQL.)"""
    found = _parse_tables(sql)
    return None if found is None else {t.lower() for t in found}


def _parse_tables(sql: str) -> list[str] | None:
    from sqlglot import exp

    try:
        statement = _one(sql, sql)
    except ValueError:
        return None
    ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
    return sorted(
        {
            ".".join(p for p in (t.catalog, t.db, t.name) if p)
            for t in statement.find_all(exp.Table)
            if not isinstance(t.this, exp.Func) and not (not t.db and t.name.lower() in ctes)
        }
    )


def check_expression(text: str) -> None:
    """An expression over one row (`compute`, `filter`, `expect`, `order_by`): no tables, nothing outside the
    row. Raises `ValueError`."""
    _remembered(["expression", text], lambda: _check_expression(text))


def _check_expression(text: str) -> None:
    wrapped = f"SELECT ({text}) FROM input"
    node = _one(text, wrapped)
    from sqlglot import exp

    if isinstance(node, exp.Subquery):
        raise ValueError("expected an expression over the row's columns; found a subquery (it would read a table)")
    if isinstance(node, (exp.Query, exp.Command, exp.DDL, exp.DML)) or type(node).__name__ in _STATEMENTS:
        raise ValueError(f"expected an expression over the row's columns; found `{_kind(node)}`")
    _walk(node, set(), "")
    _duckdb_knows(wrapped, text)


_STATEMENTS = {"Copy", "Attach", "Detach", "Install", "Pragma", "Set", "Use", "Describe", "Transaction", "Commit"}


def _one(sql: str, as_duckdb: str):  # -> sqlglot.exp.Expression
    """The one statement (or expression) `sql` holds; a syntax error is said in DuckDB's words (`as_duckdb` is
    what DuckDB parses: the statement, or an expression inside a SELECT)."""
    import logging

    import sqlglot
    from sqlglot.errors import ParseError

    quiet = logging.getLogger("sqlglot")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # statements it only knows as commands are refused below, not logged
    try:
        parsed = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        _duckdb_knows(as_duckdb, sql)  # DuckDB's parser names the syntax error plainly
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


_DUCKDB = threading.Lock()


@cache
def _parser() -> Any:
    import duckdb

    return duckdb.connect(":memory:")


@cache
def function_names() -> frozenset[str]:
    """Every function and macro name DuckDB knows (lower case)."""
    with _DUCKDB:
        rows = _parser().execute("SELECT DISTINCT lower(function_name) FROM duckdb_functions()").fetchall()
    return frozenset(r[0] for r in rows)


def _duckdb_knows(sql: str, shown: str) -> None:
    """DuckDB parses `sql`, and every scalar, aggregate and window function it calls exists."""
    with _DUCKDB:
        tree = json.loads(_parser().execute("SELECT json_serialize_sql(?)", [sql]).fetchone()[0])
    if tree.get("error"):
        message = str(tree.get("error_message", "DuckDB cannot parse it"))
        if "Only SELECT statements" in message:
            return  # not a query: the sandbox's check says what was found
        raise ValueError(f"not valid SQL: {message} in `{shown}`")
    known = function_names()
    for name in sorted(_called(tree, set())):
        if name.lower() not in known:
            close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.75)
            hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
            raise ValueError(f"unknown SQL function `{name}` in `{shown}`{hint}")


def _called(node: Any, out: set[str]) -> set[str]:
    """Names of the functions a DuckDB parse tree calls (operators left out)."""
    if isinstance(node, dict):
        name = node.get("function_name")
        if name and node.get("class") in ("FUNCTION", "WINDOW") and not node.get("is_operator"):
            out.add(str(name))
        for value in node.values():
            _called(value, out)
    elif isinstance(node, list):
        for value in node:
            _called(value, out)
    return out


# --- what checks found, kept between commands -------------------------------------------------------------------

_KEPT = "sqlcheck"
_kept: dict[str, Any] = {}
_kept_in: list[Any] = [None]  # the cache folder `_kept` was read from (tests change it)
_added: list[str] = []


def _remembered(question: list[Any], work: Callable[[], Any]) -> Any:
    """The answer to `question` kept from an earlier check, or `work()`'s (kept by `keep` unless it raised)."""
    from landfall.config import config_cache

    where = config_cache.folder()
    if _kept_in[0] != where:
        _kept.clear()
        _kept.update(config_cache.answers(_KEPT, _stamp()))
        _kept_in[0] = where
        _added.clear()
    key = json.dumps(question)
    if key in _kept:
        return _kept[key]
    answer = work()
    _kept[key] = answer
    _added.append(key)
    return answer


def keep() -> None:
    """Keep the answers found since the last call (a config has loaded: its SQL passed)."""
    if not _added:
        return
    from landfall.config import config_cache

    _added.clear()
    config_cache.keep_answers(_KEPT, _stamp(), _kept)


@cache
def _stamp() -> str:
    """What the answers depend on: Python, this module, and the installed sqlglot and DuckDB (their
    distributions' names carry their versions; an editable or unpackaged copy is told by its files' times)."""
    import importlib.util

    parts = [sys.version, _changed(__file__)]
    for name in ("sqlglot", "duckdb"):
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            parts.append(f"{name}: none")
            continue
        package = os.path.dirname(spec.origin)
        where = os.path.dirname(package)
        try:
            dists = sorted(n for n in os.listdir(where) if n.startswith(f"{name}-") and n.endswith(".dist-info"))
        except OSError:
            dists = []
        parts.append(" ".join(dists) + " " + _changed(spec.origin))
    return "; ".join(parts)


def _changed(path: str) -> str:
    try:
        info = os.stat(path)
    except OSError:
        return f"{path}: none"
    return f"{path}: {info.st_mtime_ns} {info.st_size}"
