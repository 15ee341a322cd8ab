"""Keys past the type sample. DuckDB's JSON reader detects the columns on a sample of each file's records (landfall
then pins them: `jsondates.pin_dates`); given the columns, or reading files by name (`union_by_name`), it skips a
key it was not given without a word, and so does Spark's. A key that first appears past the sample, at the top of
a record or inside an object, would be lost.

So once a job's files are read, every file with more records than the sample is looked through for a key its
columns do not hold (`late_keys`, `late_key`), and when one holds one, the job is read again with its types
detected on the whole files (`ReadPlan.sample_all`), which finds every key. The look is DuckDB's own reader with
its own detection, which refuses a record with a key it did not detect, at any level: a read of the file, in
parallel. Where that read stops at something else (a later value that does not fit a type it detected; lines
that are not JSON, which a lenient read skips but also stops it refusing keys), the records' key lists are
compared with the columns' instead (`unknown_key`: each record parsed once for its objects outside lists and once
for each list of objects)."""

from __future__ import annotations

import re
from typing import Any

import duckdb

from landfall.engines.base import ReadPlan
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS
from landfall.engines.duckdb.sql import PATH, ROW, every_row_kept, lit


def late_keys(cx: JobContext, rows_out: dict[str, int]) -> ReadPlan | None:
    """The plan to read the job with again when a record of its JSON files holds a key past the type sample that
    the columns read do not, else None. Files whose every record the sample held (no more rows written than it
    takes, from steps that keep every row) are not looked at."""
    wf = cx.job.workflow
    if cx.fmt not in ("json", "jsonl") or cx.plan.sample_all or not cx.records:
        return None
    every_row = every_row_kept(wf) and wf.read.bad_rows != "quarantine"
    paths = [p for p, src in cx.paths.items() if not every_row or rows_out.get(src.key, 0) > DETECTION_SAMPLE_ROWS]
    if not paths:
        return None
    columns = {n: t for n, t in cx.describe(cx.raw) if n not in (PATH, ROW)}
    form = "newline_delimited" if cx.fmt == "jsonl" else "auto"
    if cx.plan.json_via_python:  # the document was read from its records written as JSON Lines
        paths, form = [cx.as_lines], "newline_delimited"
    found = late_key(cx.con, paths, form, columns, max_object=cx.plan.max_object)
    return cx.plan.but(sample_all=True) if found else None


def late_key(
    con: duckdb.DuckDBPyConnection,
    paths: list[str],
    form: str,
    columns: dict[str, str],
    *,
    max_object: int | None = None,
    lenient: bool = False,
) -> bool:
    """Whether a record of the JSON files `paths` (`form`: `newline_delimited` or `auto`) holds a key `columns`
    (name -> DuckDB type) do not. `lenient`: the files may hold lines that are not JSON (skipped)."""
    size = f", maximum_object_size = {max_object}" if max_object else ""
    for path in paths:
        if not lenient:
            try:  # every column read (`COLUMNS(*)`): DuckDB refuses an unknown key only then
                con.execute(
                    f"SELECT count(COLUMNS(*)) FROM read_json({lit(path)}, format = {lit(form)}, records = true{size})"
                )
                continue
            except duckdb.Error as exc:
                if "has unknown key" in str(exc):
                    return True
        skip = ", ignore_errors = true" if lenient else ""
        if unknown_key(con, columns, f"read_json_objects({lit(path)}, format = {lit(form)}{size}{skip})"):
            return True
    return False


def unknown_key(con: duckdb.DuckDBPyConnection, columns: dict[str, str], records: str) -> bool:
    """Whether a record of `records` (rows of one JSON column `json`) holds a key `columns` (name -> DuckDB type)
    do not: at its top, or in an object read as a STRUCT (in a list too). Objects read as MAP or JSON, or as text,
    hold any key. The records' distinct key lists are few; they are compared here."""
    objects: list[tuple[str, set[str]]] = [("$", set(columns))]  # (JSON path, the keys read there)
    in_lists: list[tuple[str, set[str]]] = []
    for name, kind in columns.items():
        _objects(con.sqltype(kind), _step("$", name), objects, in_lists)
    keys = [f"json_keys(json, [{', '.join(lit(p) for p, _ in objects)}])"]
    keys += [f"json_keys(json, {lit(p)})" for p, _ in in_lists]  # a path with a wildcard is asked alone
    for row in con.execute(f"SELECT DISTINCT {', '.join(keys)} FROM {records}").fetchall():
        found: list[Any] = [*(row[0] or [None] * len(objects)), *(_flat(r) for r in row[1:])]  # NULL: no record
        for (_, known), at in zip([*objects, *in_lists], found, strict=True):
            if at and not known.issuperset(at):
                return True
    return False


def _flat(lists: list[list[str]] | None) -> list[str]:
    return [k for keys in lists or [] for k in keys or []]


def _objects(
    t: duckdb.typing.DuckDBPyType,
    path: str | None,
    objects: list[tuple[str, set[str]]],
    in_lists: list[tuple[str, set[str]]],
) -> None:
    """The objects (STRUCT) of a column of type `t` at `path`: their paths and keys, in `objects`, or in `in_lists`
    when inside a list (a path with a wildcard)."""
    if path is None:  # a key no JSON path names (the empty key): its column is checked by its parent's keys only
        return
    if t.id == "struct":
        (in_lists if "[*]" in path else objects).append((path, {n for n, _ in t.children}))
        for name, child in t.children:
            _objects(child, _step(path, name), objects, in_lists)
    elif t.id == "list":
        ((_, child),) = t.children
        _objects(child, path + "[*]", objects, in_lists)


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _step(path: str, key: str) -> str | None:
    """`path` then the key `key` (quoted unless a plain name), or None for the empty key."""
    if not key:
        return None
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return path + '."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
