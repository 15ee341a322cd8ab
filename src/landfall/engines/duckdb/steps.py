"""The transform steps as SQL views: rename, cast, compute, filter, sql, drop, normalize_names, dedupe,
flatten, explode and child_tables."""

from __future__ import annotations

import os
import re
from typing import Any

import duckdb

from landfall.engines.base import JOINED_HIDDEN, Staged, flat_collision, named_in, text_hint
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.casts import cast_sql
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.datewords import follow
from landfall.engines.duckdb.diagnose import explain
from landfall.engines.duckdb.sql import (
    PATH,
    PID,
    ROW,
    _first_line,
    _require,
    _step_error,
    lit,
    q,
)
from landfall.engines.duckdb.types import arrow_type, sql_type
from landfall.engines.duckdb.writing import cast_to, file_sources, stored_types, with_lineage, write_to, written_as
from landfall.errors import InvalidInput
from landfall.naming import normalized
from landfall.sqlcheck import tables_of
from landfall.types import cast_refused, parse_type, user_type


def transform(cx: JobContext, view: str) -> str:
    """The workflow's transform steps over `view`, each a view of its own."""
    for where, step in cx.job.workflow.steps():
        before = view
        try:
            view = _step(cx, view, step)
            cx.describe(view)  # bind now, so a bad expression names its step
            if cx.read_dates:
                follow(cx, step, cx.columns(before), cx.columns(view))
        except duckdb.Error as exc:
            hint = typing_hint(cx, before, step.expressions(), exc)
            raise InvalidInput(f"{where}: {_first_line(exc).rstrip('.') if hint else _first_line(exc)}{hint}") from None
    return view


def typing_hint(
    cx: JobContext, view: str, names: list[str], exc: Exception, cast_in: str = "a step before this one"
) -> str:
    """For a step (or a rule) DuckDB refused over types: the first text column its expressions (`names`) name,
    with one of its values that is not a number (see `text_hint`)."""
    if not errors.wrong_operand_type(str(exc)):
        return ""
    texts = [n for n, t in cx.describe(view) if t == "VARCHAR" and n not in (PATH, ROW) and named_in(n, names)]
    if not texts:
        return ""
    col = q(texts[0])
    row = None
    try:  # a value that is not a number, else any (each query stops at its first row)
        for where in (f"TRY_CAST({col} AS DOUBLE) IS NULL", "true"):
            query = f"SELECT {col} FROM {view} WHERE {col} IS NOT NULL AND {where} LIMIT 1"
            row = row or cx.con.execute(query).fetchone()
    except duckdb.Error:
        pass
    return text_hint(texts[0], row[0] if row else None, cast_in)


def _step(cx: JobContext, view: str, step: Any) -> str:
    kind = step.kind
    cols = cx.columns(view)
    if kind == "rename":
        _require(cols, step.rename, "to rename")
        renames = ", ".join(f"{q(a)} AS {q(b)}" for a, b in step.rename.items())
        return cx.view(f"SELECT * RENAME ({renames}) FROM {view}")
    if kind == "cast":
        _require(cols, step.cast, "to cast")
        types = dict(cx.describe(view))
        for c, t in step.cast.items():
            if why := cast_refused(c, parse_type(arrow_type(types[c])), user_type(t)):
                raise _step_error(why)
        casts = {c: cast_sql(q(c), types.get(c), sql_type(t), exact=False, name=c) for c, t in step.cast.items()}
        repl = ", ".join(f"{cast} AS {q(c)}" for c, cast in casts.items())
        return cx.view(f"SELECT * REPLACE ({repl}) FROM {view}")
    if kind == "compute":
        existing = [c for c in step.compute if c in cols]
        new = [c for c in step.compute if c not in cols]
        repl = ", ".join(f"({step.compute[c]}) AS {q(c)}" for c in existing)
        add = ", ".join(f"({step.compute[c]}) AS {q(c)}" for c in new)
        star = f"* REPLACE ({repl})" if repl else "*"
        return cx.view(f"SELECT {star}{', ' + add if add else ''} FROM {view}")
    if kind == "filter":
        return cx.view(f"SELECT * FROM {view} WHERE {step.filter}")
    if kind == "drop":
        if not step.missing_ok:
            _require(cols, step.drop, "to drop (`drop: {columns: [...], missing_ok: true}` allows that)")
        present = [c for c in step.drop if c in cols]
        if not present:
            return view
        return cx.view(f"SELECT * EXCLUDE ({', '.join(q(c) for c in present)}) FROM {view}")
    if kind == "normalize_names":
        names = normalized(cols, [n for n, _ in cx.job.table_schema or []])
        parts = [f"{q(c)} AS {q(new)}" for c, new in names.items()]
        keep = "".join(f", {q(c)}" for c, _ in cx.describe(view) if c in (PATH, ROW))
        return cx.view(f"SELECT {', '.join(parts)}{keep} FROM {view}")
    if kind == "dedupe":
        keys = ", ".join(([q(PATH)] if cx.with_path else []) + [q(k) for k in step.dedupe.keys])
        order = f" ORDER BY {step.dedupe.order_by} DESC" if step.dedupe.order_by else ""
        return cx.view(f"SELECT * FROM {view} QUALIFY row_number() OVER (PARTITION BY {keys}{order}) = 1")
    if kind == "flatten":
        return _flatten(cx, view, step.flatten)
    if kind == "explode":
        return _explode(cx, view, step.explode)
    if kind == "child_tables":
        return _child_tables(cx, view, step.child_tables)
    if kind == "sql":
        for name, (table, files) in cx.job.tables.items():  # the tables it joins, as of the run's start
            if name in tables_of(step.sql):
                from landfall.query import table_select

                lineage = [q(c) for c, _ in table.schema if c in JOINED_HIDDEN]
                select = table_select(table, files)
                cx.named_view(name, f"SELECT * EXCLUDE ({', '.join(lineage)}) FROM ({select})" if lineage else select)
        body = re.sub(r"\binput\b", view, step.sql, flags=re.IGNORECASE)
        return cx.view(body)
    raise _step_error(f"unknown step `{kind}`")  # pragma: no cover - config validation prevents it


def _flatten(cx: JobContext, view: str, spec: Any, only: str | None = None) -> str:
    """Nested objects become columns: `customer.name` -> `customer_name`, up to `max_depth` levels; paths in
    `keep_json` (and anything deeper) become JSON strings. Lists stay lists (see `explode`)."""
    keep = set(spec.keep_json)
    parts: list[str] = []
    paths: list[list[str]] = []

    def walk(expr: str, path: list[str], typ: Any, depth: int) -> None:
        name = spec.separator.join(path)
        dotted = ".".join(path)
        if typ.id == "struct" and dotted not in keep and depth < spec.max_depth:
            for child, child_type in typ.children:
                walk(f"{expr}.{q(child)}", [*path, child], child_type, depth + 1)
            return
        paths.append(path)
        if typ.id == "struct" or dotted in keep:
            parts.append(f"CAST(to_json({expr}) AS VARCHAR) AS {q(name)}")
        else:
            parts.append(f"{expr} AS {q(name)}")

    for name, typ in _types(cx, view):
        if only is not None and name != only:
            parts.append(q(name))
            paths.append([name])
            continue
        walk(q(name), [name], typ, 0)
    if why := flat_collision(paths, spec.separator, explode=only is not None):
        raise _step_error(why)
    return cx.view(f"SELECT {', '.join(parts)} FROM {view}")


def _types(cx: JobContext, view: str) -> list[tuple[str, Any]]:
    """Columns and their DuckDB types (struct fields and list elements inside), from binding alone."""
    rel = cx.con.sql(f"SELECT * FROM {view}")
    return list(zip(rel.columns, rel.types, strict=True))


def _explode(cx: JobContext, view: str, column: str) -> str:
    """One row per element of a list column, parent fields repeated (a parent with an empty or missing list
    keeps one row with nulls); object elements become `<column>_<field>` columns."""
    types = dict(cx.describe(view))
    if column not in types:
        raise _step_error(
            f"no column `{column}` to explode; columns are " + ", ".join(f"`{c}`" for c in types if c != PATH)
        )
    if not types[column].endswith("[]"):
        raise _step_error(f"`{column}` is {types[column]}, not a list; nothing to explode")
    c = q(column)
    out = cx.view(
        f"SELECT * EXCLUDE ({c}), unnest(CASE WHEN {c} IS NULL OR len({c}) = 0 THEN "
        f"CAST([NULL] AS {types[column]}) ELSE {c} END) AS {c} FROM {view}"
    )
    if types[column].startswith("STRUCT"):
        from landfall.config import FlattenSpec

        out = _flatten(cx, out, FlattenSpec(max_depth=1), only=column)
    return out


def _child_tables(cx: JobContext, view: str, spec: Any) -> str:
    """List columns leave the parent rows for child views (`cx.children`), one row per element: the
    parent's key (or `_parent_row_id`), `_pos`, and the element's fields (or `value`). A dotted path
    (`products.tags`) takes a list out of the elements of another child the same way, one level down."""
    types = dict(cx.describe(view))
    top = [c for c in spec.columns if "." not in c]
    untyped = {c for c in top if types.get(c) == '"NULL"'}  # JSON nulls alone: no elements, no child rows
    for col in top:
        if col not in types:
            raise _step_error(
                f"no list column `{col}` for a child table; columns are "
                + ", ".join(f"`{c}`" for c in types if c not in (PATH, ROW))
            )
        if col not in untyped and not types[col].endswith("[]"):
            raise _step_error(f"`{col}` is {types[col]}, not a list; it cannot become a child table")
    _require(list(types), spec.key, "as the child tables' key")
    numbered = f"SELECT *, row_number() OVER () AS {PID} FROM {view}"
    row_id = "" if spec.key else f", md5({lit(cx.job.commit_id)} || '#' || {PID}) AS _row_id"
    base = cx.table(f"SELECT *{row_id} FROM ({numbered})")  # stored: ids are the same for both sides
    root = [q(k) for k in spec.key]  # what every descendant carries to reach the top row
    path = [q(PATH)] if PATH in types else []
    made: dict[str, str] = {}  # column path -> its child view, element fields as columns
    nested = {c.rpartition(".")[0] for c in spec.columns if "." in c}
    for col in sorted(spec.columns, key=lambda c: c.count(".")):
        if col.split(".")[0] in untyped:
            continue
        parent, _, name = col.rpartition(".")
        source = made[parent] if parent else base
        if parent:
            cols = dict(cx.describe(source))
            if name not in cols or not cols[name].endswith("[]"):
                raise _step_error(
                    f"`{col}`: the elements of `{parent}` have no list `{name}`; they have "
                    + ", ".join(f"`{c}`" for c in cols if not c.startswith("_"))
                )
            link = [*root, "_row_id AS _parent_row_id"] + ([] if spec.key else ["_root_row_id"])
        else:
            link = root or ["_row_id AS _parent_row_id"]
        c = q(name)
        above = "_row_id" if parent else f"CAST({PID} AS VARCHAR)"  # the row the list is in
        own_id = (
            f", md5({lit(cx.job.commit_id)} || '#' || {lit(col)} || '#' || {above} || '#' || "
            f"CAST(generate_subscripts({c}, 1) - 1 AS VARCHAR)) AS _row_id"
            if col in nested
            else ""
        )
        root_id = ", _row_id AS _root_row_id" if not parent and not spec.key and col in nested else ""
        child = cx.view(
            f"SELECT {', '.join([*link, *path, PID])}, generate_subscripts({c}, 1) - 1 AS _pos"
            f"{own_id}{root_id}, unnest({c}) AS __lf_value FROM {source} WHERE {c} IS NOT NULL"
        )
        element = dict(_types(cx, child))["__lf_value"]
        taken = {n for n, _ in cx.describe(child)} - {"__lf_value"}
        if element.id == "struct":
            fields = ", ".join(
                f"__lf_value.{q(f)} AS {q(f if f not in taken else f'{name}_{f}')}" for f, _ in element.children
            )
        else:
            fields = "__lf_value AS value"
        made[col] = cx.view(f"SELECT * EXCLUDE (__lf_value), {fields} FROM {child}")
    for col, table in cx.job.workflow.child_tables.items():
        if col.split(".")[0] in untyped:
            continue
        below = [c.rpartition(".")[2] for c in spec.columns if c.rpartition(".")[0] == col]
        hidden = ["_root_row_id"] if "." not in col and "_root_row_id" in dict(cx.describe(made[col])) else []
        out = made[col]
        if below or hidden:
            out = cx.view(f"SELECT * EXCLUDE ({', '.join(q(c) for c in [*below, *hidden])}) FROM {out}")
        cx.children[table] = out
    return cx.view(f"SELECT * EXCLUDE ({', '.join(q(c) for c in top)}) FROM {base}")


def write_children(cx: JobContext, parents: str) -> dict[str, Staged]:
    """Each child view, without the children of parent rows that a later step or a rule took out."""
    job = cx.job
    out: dict[str, Staged] = {}
    keep_all = PID not in dict(cx.describe(parents))  # a `sql` step dropped the link: keep every child
    for table, child in cx.children.items():
        if not keep_all:
            child = cx.view(f"SELECT * FROM {child} WHERE {PID} IN (SELECT {PID} FROM {parents})")
        child = stored_types(cx, cx.view(with_lineage(cx, child)))
        if job.child_schemas.get(table):
            child = cast_to(cx, child, job.child_schemas[table])
        try:
            files = write_to(
                cx.con, child, os.path.join(job.child_staging[table], "data"), job.commit_id, **written_as(job.workflow)
            )
        except duckdb.Error as exc:  # the first to read the rows: a value that does not fit fails as in `write`
            raise explain(cx, exc, (table, job.workflow.child_sources[table])) from None
        sources, rows_out = file_sources(cx, files)
        out[table] = Staged(
            files=files,
            schema=cx.schema(child),
            rows_in={},
            rows_out=rows_out,
            file_sources=sources,
        )
    return out
