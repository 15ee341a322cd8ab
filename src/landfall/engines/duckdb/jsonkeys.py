"""Keys past the type sample. DuckDB's JSON reader detects the columns on a sample of each file's records (landfall
then pins them: `jsondates.pin_dates`); given the columns, or reading files by name (`union_by_name`), it skips a
key it was not given without a word, and so does Spark's. A key that first appears past the sample, at the top of
a record or inside an object, would be lost.

A lone big file with more records than the sample, whose columns landfall pins as DuckDB detects them, is read
with DuckDB's own detection instead (`refusing_read`, on a small sample when that finds the same columns): the
reader then refuses a key past its sample as it reads, and the refusal reads the job again with its types
detected on the whole file (`replanning`), at no cost when there is none (a look afterwards is a second read of
the file: it cost 1.36 s of a 5 s load of a 240 MiB JSON document). That detection casts a later value of
another kind into its types: the file's numbers and booleans are then read once more alone (`jsonkinds`).

Every other file with more records than the sample is looked through once the job's files are read, for a key
its columns do not hold (`late_keys`, `late_key`), and when one holds one, the job is read again with its types
detected on the whole files (`ReadPlan.sample_all`), which finds every key. The look is DuckDB's own reader with
its own detection, which refuses a record with a key it did not detect, at any level: a read of the file, in
parallel. Where that read stops at something else (a later value that does not fit a type it detected; lines
that are not JSON, which a lenient read skips but also stops it refusing keys), the records' key lists are
compared with the columns' instead (`unknown_key`: each record parsed once for its objects outside lists and once
for each list of objects)."""

from __future__ import annotations

import os
import re
from typing import Any

import duckdb

from landfall.engines.base import ReadPlan
from landfall.engines.duckdb import errors
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.jsondates import DETECTION_SAMPLE_ROWS, REFUSING_SAMPLE_ROWS
from landfall.engines.duckdb.read_json import _json_sql, json_form
from landfall.engines.duckdb.sql import PATH, ROW, _paths, every_row_kept, lit

#: records whose bytes are sized up to guess whether a file holds more records than the sample (the look is
#: needed only then)
_HEAD_ROWS = 2048
REFUSING_BYTES = 4 << 20  # smaller files are not sized up: their look is cheap, or not needed at all


def refusing_read(
    cx: JobContext,
    fmt: str,
    columns: dict[str, str],
    formats: tuple[str | None, str | None],
    sampled: dict[str, str],
) -> str | None:
    """A view reading the job's lone JSON file with DuckDB's own type detection, when it reads `columns` (name ->
    DuckDB type, as `jsondates.pin_dates` pinned them from `sampled`, what DuckDB detected on the whole sample)
    exactly: a key past the sample is then refused as the file is read (`cx.keys_refused`; the refusal reads the
    job again, `replanning`), where a read of pinned columns skips it without a word. None when the pinned
    columns differ from the reader's own (text for dates holding words, declared types, ...), the file is not
    likely to hold more records than the sample, or the job is not one file of records read as it is."""
    wf = cx.job.workflow
    if len(cx.paths) != 1 or cx.plan.sample_all or cx.plan.json_via_python or wf.read.bad_rows == "quarantine":
        return None

    def spelled(types: dict[str, str]) -> dict[str, str]:  # one spelling of each type (struct keys quoted or not)
        return {n: str(cx.con.sqltype(t)) for n, t in types.items()}

    pinned = spelled(columns)
    if pinned != spelled(sampled):  # pinned otherwise: no detection of the reader's reads them
        return None
    (path,) = cx.paths
    size = os.path.getsize(path)
    if size < REFUSING_BYTES or not more_than_the_sample(cx.con, path, json_form(fmt), cx.plan.max_object, size):
        return None  # nothing to look for: a read refusing keys would cost more than it saves
    select = _json_sql(cx, _paths([path]), wf.read, fmt, columns=columns, formats=formats, detect=True)
    try:
        view = cx.view(select)
    except duckdb.Error:  # the pinned read names what is wrong
        return None
    if spelled(dict(cx.describe(view))) != pinned:  # detected on its small sample otherwise
        return None
    cx.keys_refused = True
    return view


def more_than_the_sample(
    con: duckdb.DuckDBPyConnection, path: str, form: str, max_object: int | None, size: int
) -> bool:
    """Whether a JSON file of `size` bytes likely holds more records than DuckDB's type sample: twice its bytes at
    least, sized up from the bytes of the first `_HEAD_ROWS` records (a file not read so is taken to hold no
    more)."""
    records = f"SELECT json FROM {_records_of(path, form, max_object)} LIMIT {_HEAD_ROWS}"
    try:
        found = con.execute(f"SELECT sum(strlen(CAST(json AS VARCHAR))) FROM ({records})").fetchone()
    except duckdb.Error:
        return False
    head = int(found[0] or 0) if found else 0
    return 2 * head * (DETECTION_SAMPLE_ROWS / _HEAD_ROWS) < size


def _records_of(path: str, form: str, max_object: int | None, extra: str = "") -> str:
    """`read_json_objects` over one JSON file: each record's text."""
    size = f", maximum_object_size = {max_object}" if max_object else ""
    return f"read_json_objects({lit(path)}, format = {lit(form)}{size}{extra})"


def late_keys(cx: JobContext, rows_out: dict[str, int]) -> ReadPlan | None:
    """The plan to read the job with again when a record of its JSON files holds a key past the type sample that
    the columns read do not, else None. Files whose every record the sample held (no more rows written than it
    takes, from steps that keep every row) are not looked at."""
    wf = cx.job.workflow
    if cx.fmt not in ("json", "jsonl") or cx.plan.sample_all or not cx.records or cx.keys_refused:
        return None
    every_row = every_row_kept(wf) and wf.read.bad_rows != "quarantine"
    paths = [p for p, src in cx.paths.items() if not every_row or rows_out.get(src.key, 0) > DETECTION_SAMPLE_ROWS]
    if not paths:
        return None
    columns = {n: t for n, t in cx.describe(cx.raw) if n not in (PATH, ROW)}
    form = json_form(cx.fmt)
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
        read = f"read_json({lit(path)}, format = {lit(form)}, records = true{size}"
        if not lenient and (refused := _refused_key(con, read, columns)) is not None:
            if refused:
                return True
            continue
        skip = ", ignore_errors = true" if lenient else ""
        if unknown_key(con, columns, _records_of(path, form, max_object, skip)):
            return True
    return False


def _refused_key(con: duckdb.DuckDBPyConnection, read: str, columns: dict[str, str]) -> bool | None:
    """Whether DuckDB's reader (`read`, a `read_json(...` call without its closing parenthesis), detecting the
    columns itself, refuses a key of the file; None when it stops at something else. Every column read
    (`COLUMNS(*)`): it refuses an unknown key only then. Detected on a small sample first, when that finds every
    key of `columns` (name -> DuckDB type): the detection on the usual sample is a third of the read's time."""
    quick = f"{read}, sample_size = {REFUSING_SAMPLE_ROWS})"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {quick}").fetchall()
        reads = [quick] if _keys_of(con, {n: t for n, t, *_ in described}) == _keys_of(con, columns) else []
    except duckdb.Error:
        reads = []
    for select in [*reads, read + ")"]:
        try:
            con.execute(f"SELECT count(COLUMNS(*)) FROM {select}")
            return False
        except duckdb.Error as exc:
            if errors.unknown_key(str(exc)):
                return True
    return None


def _keys_of(con: duckdb.DuckDBPyConnection, columns: dict[str, str]) -> dict[str, set[str]]:
    """The objects `columns` (name -> DuckDB type) read as STRUCT, by JSON path, and the keys each holds."""
    objects: list[tuple[str, set[str]]] = [("$", set(columns))]
    for name, kind in columns.items():
        _objects(con.sqltype(kind), _step("$", name), objects, objects)
    return dict(objects)


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
