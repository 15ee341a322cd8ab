"""SQL over every cataloged table, by name (DuckDB), sandboxed: one read-only statement, no file, network or
extension access outside the catalog's tables, a row limit and a time limit where the caller sets them.
landfall's own records are read-only tables too: `landfall.runs`, `landfall.files`, `landfall.tables`,
`landfall.schema_versions`."""

from __future__ import annotations

import json
import logging
import math
import re
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from landfall.engines.duckdb import lit, q
from landfall.engines.duckdb.database import spellings
from landfall.engines.duckdb.types import duck_type
from landfall.errors import BrokenTable, ConfigError, LandfallError, NoSuchTable, QueryRefused, QueryTimeout
from landfall.state.base import StateStore, Table
from landfall.storage import Storage, Zones

log = logging.getLogger("landfall.query")

_HIVE_TYPES = {
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
    """A SELECT over a table's current files, with its cataloged column order and types. A column none of the
    files holds is NULL: the files that held it were replaced by ones without it (a file's new version lacking
    it, an overwrite); read by name alone, it failed every query of the table (`Column "c" referenced that
    exists in the SELECT clause - but this column cannot be referenced before it is defined`). The files are
    read beside an empty row source of every column (`UNION ALL BY NAME`), which DuckDB's optimizer takes out,
    pushing the query's columns and filters into the files' read as before."""
    cols = ", ".join(f"CAST({q(n)} AS {duck_type(t)}) AS {q(n)}" for n, t in table.schema)
    every = f"SELECT {', '.join(f'NULL::{duck_type(t)} AS {q(n)}' for n, t in table.schema)} WHERE false"
    if not files:
        return f"SELECT {cols} FROM ({every})"
    paths = "[" + ", ".join(lit(f"{table.location}/{f}") for f in files) + "]"
    types = {n: duck_type(t) for n, t in table.schema}
    hive = ", ".join(
        f"{lit(p)}: {lit(types.get(p, 'VARCHAR'))}"
        for p in table.partition_by
        if types.get(p, "VARCHAR") in _HIVE_TYPES
    )
    opts = "union_by_name = true"
    if table.partition_by:
        opts += ", hive_partitioning = true" + (f", hive_types = {{{hive}}}" if hive else "")
    else:
        opts += ", hive_partitioning = false"
    return f"SELECT {cols} FROM (SELECT * FROM read_parquet({paths}, {opts}) UNION ALL BY NAME {every})"


def make_views(
    store: StateStore,
    con: duckdb.DuckDBPyConnection,
    *,
    as_of: int | datetime | None = None,
    back: set[str] | None = None,
    zones: Zones | None = None,
    tables: list[Table] | None = None,
) -> dict[str, LandfallError]:
    """A view per cataloged table (of `tables`, a catalog snapshot read by the caller, or the catalog now) in
    `con`; with `as_of`, the Delta tables named in `back` (every one when None) as of that version or time.
    Tables on an object store are read through fsspec (registered with the connection), never through a DuckDB
    extension download.

    A table one of whose files is gone (removed by hand, or by `tables vacuum` for a version read back) gets no
    view: the returned mapping holds, by lower-cased name, the error a query reading it raises, so that the
    other tables still answer."""
    con.execute("SET TimeZone = 'UTC'")
    broken: dict[str, LandfallError] = {}
    for table in store.tables() if tables is None else tables:
        storage = zones.at(table.location) if zones else Storage(table.location)
        storage.register_with(con)
        back_then = as_of is not None and table.format == "delta" and (back is None or table.name.lower() in back)
        files: list[str] = []
        try:
            if back_then:
                files = _files_as_of(table, storage, as_of)
                table = _schema_as_of(table, files, storage)
            else:
                files = [f.path for f in store.table_files(table.name)]
            con.execute(f"CREATE OR REPLACE VIEW {view_name(con, table.name)} AS {table_select(table, files)}")
        except (duckdb.IOException, OSError):
            gone = storage.missing(files)
            if not gone:
                raise
            broken[table.name.lower()] = _unreadable(table, gone[0], storage, as_of if back_then else None)
    return broken


def _unreadable(table: Table, gone: str, storage: Storage, as_of: int | datetime | None) -> LandfallError:
    """The error of a query reading `table`, whose file `gone` is no more (as of `as_of`, when read back)."""
    if as_of is None:
        from landfall.tables.readers import lost_file

        return lost_file(table.name, gone, storage)
    when = f"version {as_of}" if isinstance(as_of, int) else _iso(as_of)
    return QueryRefused(
        f"table `{table.name}` cannot be read as of {when}: its file `{gone}` was removed (`landfall tables "
        f"vacuum` removes the files only versions older than its retention read); read a later version "
        f"(`landfall tables history {table.name}`)"
    )


def view_name(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """`sales` -> "sales"; `quarantine.sales` -> quarantine."sales" (the schema made on first use)."""
    if "." not in name:
        return q(name)
    schema, _, table = name.partition(".")
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
    return f"{q(schema)}.{q(table)}"


def table_ref(name: str) -> str:
    """How a query names a cataloged table: `"sales"`, `quarantine."sales"`."""
    schema, dot, table = name.rpartition(".")
    return f"{q(schema)}.{q(table)}" if dot else q(table)


def _files_as_of(table: Table, storage: Storage, as_of: int | datetime) -> list[str]:
    """The files of Delta table `table` at version `as_of`, or at time `as_of`; `QueryRefused` when it has no such
    version, or did not exist yet then (delta-rs would read an error out of its log, or its first version)."""
    from landfall.tables import open_table

    delta = open_table("delta", storage)
    first, first_time, last = delta.span()  # not `history()`: it reads every commit of the table
    if isinstance(as_of, int) and not first <= as_of <= last:
        raise QueryRefused(
            f"table `{table.name}` has versions {first} to {last}; there is no version {as_of} "
            f"(`landfall tables history {table.name}`)"
        )
    # to the second, as `tables history` shows it: the time it shows for a version reads that version
    if isinstance(as_of, datetime) and as_of < first_time.replace(microsecond=0):
        raise QueryRefused(
            f"table `{table.name}` did not exist yet at {_iso(as_of)}: its first version ({first}) is from "
            f"{_iso(first_time)}{_reloaded_since(table, storage, as_of)}"
        )
    if isinstance(as_of, datetime) and not as_of.microsecond:  # a time to the second takes in that whole second
        as_of += timedelta(microseconds=999_999)
    return [f.path for f in delta.files_as_of(as_of)]


def _reloaded_since(table: Table, storage: Storage, at: datetime) -> str:
    """What a time-travel message adds when `landfall tables reload` made `table` anew after `at`."""
    from landfall.catalog import kept_from

    parent, _, folder = storage.url.rpartition("/")
    zone = Storage(parent, storage.options, zone=storage.zone, scratch_dir=storage.scratch_dir)
    if (kept := kept_from(zone, folder, at.timestamp())) is None:
        return ""
    when, where = kept
    made = _iso(datetime.fromtimestamp(when, UTC))
    return f"; `landfall tables reload` made it anew at {made}: its earlier versions are kept in {where}"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace(".000", "").replace("+00:00", "Z")


def _schema_as_of(table: Table, files: list[str], storage: Storage) -> Table:
    """An older version may lack columns added since: keep only the columns its files have."""
    if not files:
        return table
    import pyarrow.parquet as pq

    have: set[str] = set(table.partition_by)
    for f in files:
        with storage.open(f) as fh:
            have |= set(pq.read_schema(fh).names)
    from msgspec.structs import replace

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


# --- landfall's own records as read-only tables ---------------------------------------------------------------

#: `landfall.<name>`: the state store's records, as tables a query can join with the data
STATUS_TABLES = ("runs", "files", "tables", "schema_versions")
_STATUS_REF = re.compile(r'\blandfall"?\s*\.\s*"?(runs|files|tables|schema_versions)\b', re.IGNORECASE)
_TS = "TIMESTAMP WITH TIME ZONE"
_STATUS_COLUMNS = {
    "runs": [
        ("run_id", "VARCHAR", None),
        ("file_id", "VARCHAR", None),
        ("file_version", "BIGINT", None),
        ("workflow", "VARCHAR", None),
        ("table", "VARCHAR", None),
        ("status", "VARCHAR", None),
        ("attempt", "BIGINT", None),
        ("queued_at", "DOUBLE", _TS),
        ("started_at", "DOUBLE", _TS),
        ("finished_at", "DOUBLE", _TS),
        ("rows_in", "BIGINT", None),
        ("rows_out", "BIGINT", None),
        ("bytes", "BIGINT", None),
        ("rows_quarantined", "BIGINT", None),
        ("content_hash", "VARCHAR", None),
        ("error", "VARCHAR", None),
        ("note", "VARCHAR", None),
        ("worker", "VARCHAR", None),
        ("batch_id", "VARCHAR", None),
    ],
    "files": [
        ("file_version", "BIGINT", None),
        ("file_id", "VARCHAR", None),
        ("size", "BIGINT", None),
        ("mtime", "DOUBLE", _TS),
        ("etag", "VARCHAR", None),
        ("content_hash", "VARCHAR", None),
        ("discovered_at", "DOUBLE", _TS),
        ("workflow", "VARCHAR", None),
        ("status", "VARCHAR", None),
        ("runs", "BIGINT", None),
    ],
    "tables": [
        ("name", "VARCHAR", None),
        ("location", "VARCHAR", None),
        ("format", "VARCHAR", None),
        ("workflow", "VARCHAR", None),
        ("schema_version", "BIGINT", None),
        ("partition_by", "VARCHAR[]", None),
        ("columns", "BIGINT", None),
        ("schema", "VARCHAR", "JSON"),
        ("rows", "BIGINT", None),
        ("files", "BIGINT", None),
        ("bytes", "BIGINT", None),
        ("created_at", "DOUBLE", _TS),
        ("updated_at", "DOUBLE", _TS),
    ],
    "schema_versions": [
        ("table", "VARCHAR", None),
        ("version", "BIGINT", None),
        ("columns", "BIGINT", None),
        ("schema", "VARCHAR", "JSON"),
        ("changes", "VARCHAR", "JSON"),
        ("run_id", "VARCHAR", None),
        ("created_at", "VARCHAR", _TS),
    ],
}


def status_refs(sql: str) -> list[str]:
    """The `landfall.<name>` status tables a query mentions (only those are read from the state store)."""
    return sorted({m.group(1).lower() for m in _STATUS_REF.finditer(sql)})


def status_rows(store: StateStore, name: str) -> list[tuple[Any, ...]]:
    """The rows of the status table `name`, in the column order of `_STATUS_COLUMNS`."""
    if name in ("runs", "files"):
        return store.status_rows(name)
    tables = store.tables()
    if name == "tables":
        return [
            (
                t.name,
                t.location,
                t.format,
                t.workflow,
                t.schema_version,
                t.partition_by,
                len(t.schema),
                json.dumps([{"name": n, "type": ty} for n, ty in t.schema]),
                t.row_count,
                t.file_count,
                t.bytes,
                t.created_at,
                t.updated_at,
            )
            for t in tables
        ]
    from landfall.readback import table_detail

    out = []
    for t in tables:
        for v in table_detail(store, t.name).schema_versions:
            out.append(
                (
                    t.name,
                    v["version"],
                    len(v["schema"]),
                    json.dumps(v["schema"]),
                    json.dumps(v["changes"]),
                    v["run_id"],
                    v["created_at"],
                )
            )
    return out


def add_status_tables(con: duckdb.DuckDBPyConnection, store: StateStore, names: list[str]) -> None:
    """Make `landfall.<name>` a view over a snapshot of the state store's records, for each name."""
    if not names:
        return
    import pyarrow as pa  # (70 ms to import, with numpy: only for a query that reads them)

    arrow = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "VARCHAR[]": pa.list_(pa.string())}
    for name in names:
        cols = _STATUS_COLUMNS[name]
        rows = status_rows(store, name)
        arrays = list(zip(*rows, strict=True)) if rows else [() for _ in cols]
        data = pa.table({c: pa.array(list(a), type=arrow[t]) for (c, t, _), a in zip(cols, arrays, strict=True)})
        con.register(f"__landfall_{name}", data)
        select = ", ".join(
            f"{q(c)}"
            if cast is None
            else f"to_timestamp({q(c)}) AS {q(c)}"
            if t == "DOUBLE"
            else f"CAST({q(c)} AS {cast}) AS {q(c)}"
            for c, t, cast in cols
        )
        if name == "runs":
            select += ", finished_at - started_at AS duration_seconds"
        con.execute(
            f"CREATE OR REPLACE VIEW {view_name(con, 'landfall.' + name)} AS SELECT {select} FROM __landfall_{name}"
        )


# --- the sandbox ----------------------------------------------------------------------------------------------

#: statement types a query may run: reading only
READ_ONLY = ("SELECT", "EXPLAIN")


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str, tables: Iterable[str] = ()) -> str:
    """One SELECT (or EXPLAIN) statement, its kind, or `QueryRefused` naming what was found; a syntax error at the
    name of one of `tables` (a table named like an SQL keyword: `semi`, `order`) says to quote it."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        at = re.search(r'syntax error at or near "([^"]+)"', str(exc))
        hint = ""
        if at and at.group(1).lower() in {t.lower() for t in tables}:
            hint = f'\n`{at[1]}` is also an SQL keyword: write the table\'s name in double quotes ("{at[1]}")'
        raise QueryRefused(f"query failed: {exc}{hint}") from None
    if len(statements) != 1:
        raise QueryRefused(f"a query is one statement; got {len(statements)}")
    kind = statements[0].type.name
    if kind == "MULTI" and re.search(r"\bPIVOT\b", sql, re.IGNORECASE):
        raise QueryRefused(  # DuckDB makes a type of the values it finds first: a statement of its own
            "a PIVOT that finds its columns' values itself is more than one statement; list them: "
            "`PIVOT t ON v IN ('a', 'b') USING count(*)`"
        )
    if kind not in READ_ONLY:
        raise QueryRefused(
            f"queries are read-only: got a `{kind}` statement; expected `SELECT` (or `EXPLAIN`, `DESCRIBE`, "
            "`SHOW`, `SUMMARIZE`)"
        )
    return kind


#: types Python's values cannot hold whole (an interval's months become 30 days; nanoseconds are cut to
#: microseconds): a query's columns of them come back as DuckDB's text (`1 month`, `10:00:00.123456789`)
AS_TEXT = ("INTERVAL", "TIMESTAMP_NS", "TIME_NS")


def shown_whole(sql: str, description: list[tuple[Any, ...]] | None) -> str | None:
    """`sql` (one SELECT) with its columns of the `AS_TEXT` types cast to text, by position (names may repeat),
    given the `description` of its result; None when it has none of them (the common case: nothing runs again)."""
    cols = [(str(d[0]), str(d[1])) for d in description or []]
    if not any(t in AS_TEXT for _, t in cols):
        return None
    shown = ", ".join(
        f"CAST(#{i} AS VARCHAR) AS {q(n)}" if t in AS_TEXT else f"#{i} AS {q(n)}" for i, (n, t) in enumerate(cols, 1)
    )
    return f"SELECT {shown} FROM ({sql.strip().rstrip(';')})"


def lock_down(con: duckdb.DuckDBPyConnection, allowed: list[str]) -> None:
    """No file, network or extension access outside `allowed` folders (the catalog's tables), and no way back:
    `enable_external_access = false` with `allowed_directories`, no extension installs or loads, and the
    configuration locked."""
    dirs = ", ".join(lit(d) for loc in allowed for d in spellings(loc))
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


@dataclass
class QueryResult:
    """What a query returned. Unpacks as `columns, rows`."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False  # more rows than the limit; `rows` holds the first `limit`
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the caller should know (an `as_of` that some tables ignore)
    #: per column, how its values are shown (None: as they are): a FLOAT as the shortest decimal that reads back as
    #: that float (`shown_float`; `rows` keep the double DuckDB gives)
    shown: list[Callable[[Any], Any] | None] = field(default_factory=list)

    def shown_rows(self) -> list[tuple[Any, ...]]:
        """The rows as the CLI, the API and the dashboard show them (`shown`)."""
        if not any(self.shown):
            return self.rows
        return [tuple(f(v) if f else v for f, v in zip(self.shown, row, strict=True)) for row in self.rows]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.columns, self.rows))

    def __getitem__(self, i: int) -> Any:
        return (self.columns, self.rows)[i]


def shown_float(kind: Any) -> Callable[[Any], Any] | None:
    """How a value of DuckDB type `kind` is shown, its FLOATs (at any depth) as the shortest decimal that reads
    back as the same float (`_shortest_float`): DuckDB gives a FLOAT to Python as the double it equals, `0.1` as
    0.10000000149011612, digits no float holds (DuckDB, Spark and pandas show `0.1`). None when `kind` holds no
    FLOAT."""
    name = kind.id
    if name == "float":
        return _shortest_float
    if name in ("list", "array"):
        item = shown_float(kind.children[0][1])
        return None if item is None else lambda v: None if v is None else type(v)(map(item, v))
    if name in ("struct", "map"):
        parts = {n: f for n, t in kind.children if (f := shown_float(t))}
        if not parts:
            return None
        if name == "struct":
            return lambda v: None if v is None else {k: parts[k](x) if k in parts else x for k, x in v.items()}
        key, value = parts.get("key", _same), parts.get("value", _same)
        return lambda v: None if v is None else {key(k): value(x) for k, x in v.items()}
    return None


def _same(v: Any) -> Any:
    return v


def _shortest_float(v: float | None) -> float | None:
    """`v` (a FLOAT as a double) as the double nearest the shortest decimal that reads back as that float: its
    text is that decimal (`0.1`, `3.4e+38`)."""
    if v is None or not math.isfinite(v):
        return v
    for digits in range(1, 10):
        nearest = float(f"{v:.{digits}g}")
        if struct.unpack("f", struct.pack("f", nearest))[0] == v:
            return nearest
    return v


def no_table(name: str, known: list[str]) -> str:
    """`no table `x`; tables are ...`, with a did-you-mean among landfall's tables only (DuckDB's own hint names
    its catalog views, `sqlite_master` or `pg_views`), never `x` itself."""
    import difflib

    name = name.strip('"')
    shown = ", ".join(f"`{n}`" for n in sorted(known)) or "none yet"
    others = [n for n in known + [f"landfall.{t}" for t in STATUS_TABLES] if n.lower() != name.lower()]
    meant = difflib.get_close_matches(name, others, n=1, cutoff=0.6)
    hint = f"; did you mean `{meant[0]}`?" if meant else ""
    return f"no table `{name}`{hint} (tables: {shown}; landfall's records: landfall.runs, landfall.files, ...)"


def named(tables: list[Table], sql: str, exact: bool = False) -> set[str]:
    """The lower-cased names of the tables of `tables` that `sql` names: each name searched for as a word of its
    text, which a column, an alias, a string or a `WITH` name spelled as a table matches too (a view it does not
    read: a look at the table's files). `exact`: by the statement's parse, when it parses (for `--as-of`, which
    refuses a version a table named lacks: not a `WITH` name's); parsing (sqlglot) for every query cost 45 ms a
    `landfall query`, most of it the import."""
    found = None
    if exact:
        from landfall.sqlcheck import tables_named

        found = tables_named(sql)
    if found is None:
        found = {t.name.lower() for t in tables if re.search(rf"(?<![\w.]){re.escape(t.name)}(?!\w)", sql, re.I)}
    return {t.name.lower() for t in tables} & found


def _as_of_notes(tables: list[Table], back: set[str]) -> list[str]:
    """`as_of` reads Delta tables back then; a Parquet table the query names is read as it is now: say so."""
    return [
        f"--as-of applies to Delta tables; `{t.name}` is a {t.format} table and is read as it is now"
        for t in tables
        if t.format != "delta" and t.name.lower() in back
    ]


_CATALOG_REF = re.compile(r"\b(information_schema|pg_catalog|duckdb_\w+|sqlite_\w+|pg_\w+)\b", re.IGNORECASE)


def _lists_tables(sql: str, reads: set[str]) -> bool:
    """Whether `sql` reads the database's own catalog (`information_schema`, `duckdb_tables()`, `SHOW TABLES`,
    a bare `DESCRIBE`), which lists the views it has: it needs one of every table."""
    if _CATALOG_REF.search(sql):
        return True
    return not reads and re.match(r"\s*(SHOW|DESCRIBE)\b", sql, re.IGNORECASE) is not None


def _missing_table(exc: duckdb.CatalogException) -> str | None:
    """The table DuckDB did not find, as its message names it."""
    missing = re.search(r"Table with name (\S+) does not exist", str(exc))
    return missing.group(1) if missing else None


#: how many catalog snapshots a query is tried on when the catalog changed while it ran
SNAPSHOTS = 5


def _snapshot_key(tables: list[Table]) -> list[tuple[str, int, float]]:
    """What changes in the catalog whenever a commit changes a table (its files, schema, or the table itself)."""
    return [(t.name, t.schema_version, t.updated_at) for t in tables]


def run_query(
    store: StateStore,
    sql: str,
    *,
    as_of: int | datetime | None = None,
    limit: int | None = None,
    timeout: float | None = None,
    zones: Zones | None = None,
) -> QueryResult:
    """Run one read-only statement over every cataloged table and the `landfall.*` status tables, sandboxed
    (see `lock_down`); at most `limit` rows, stopped after `timeout` seconds.

    The views are made from one snapshot of the catalog. A commit may change it between reading it and reading
    the files (the first commit of a table, a schema change): when the statement fails and the catalog has
    changed since, it runs again on a fresh snapshot; an error is reported only when the catalog it ran on is
    still the catalog."""
    started = time.perf_counter()
    deadline = started + timeout if timeout else None
    for attempt in range(SNAPSHOTS):
        tables = store.tables()
        reads = named(tables, sql, exact=as_of is not None)
        back = set(reads) if as_of is not None else set()
        if _lists_tables(sql, reads):
            reads = None  # every table a view, for the statement to list
        try:
            columns, rows, shown = _run_on(store, tables, sql, (as_of, back), limit, deadline, zones, reads)
            break
        except duckdb.InterruptException:
            raise QueryTimeout(f"query stopped after {timeout:g} s (its time limit)") from None
        except (duckdb.Error, BrokenTable, QueryRefused) as exc:  # the last two: a file gone (`make_views`)
            now = store.tables()
            if attempt + 1 < SNAPSHOTS and _snapshot_key(now) != _snapshot_key(tables):
                log.debug("query: the catalog changed while it ran (%s); running it on a fresh snapshot", exc)
                continue
            if isinstance(exc, duckdb.CatalogException) and (missing := _missing_table(exc)):
                raise NoSuchTable(no_table(missing, [t.name for t in now])) from None
            raise
    truncated = limit is not None and len(rows) > limit
    notes = _as_of_notes(tables, back)
    for note in notes:
        log.warning(note)
    kept = rows[:limit] if truncated else rows
    return QueryResult(columns, kept, truncated, time.perf_counter() - started, notes, shown)


def _run_on(
    store: StateStore,
    tables: list[Table],
    sql: str,
    as_of: tuple[int | datetime | None, set[str]],
    limit: int | None,
    deadline: float | None,
    zones: Zones | None,
    reads: set[str] | None = None,
) -> tuple[list[str], list[tuple[Any, ...]], list[Callable[[Any], Any] | None]]:
    """The statement's columns, rows (at most `limit` + 1) and how each column is shown (`shown_float`) over the
    catalog snapshot `tables`, the tables of `as_of`'s set read as of its version or time.

    Only the tables of `reads` (those `named` finds the statement reading) get a view: each view reads its
    table's files to know its columns, so a lake of many tables (on an object store, a request or more each)
    would pay for all of them on every query. A statement that names a table `named` missed runs again with
    a view of every table (None)."""
    con = duckdb.connect(":memory:")
    try:
        kind = check_read_only(con, sql, [t.name for t in tables])
        views = tables if reads is None else [t for t in tables if t.name.lower() in reads]
        broken = make_views(store, con, as_of=as_of[0], back=as_of[1], zones=zones, tables=views)
        add_status_tables(con, store, status_refs(sql))
        lock_down(con, [t.location for t in tables])
        left = None if deadline is None else max(deadline - time.perf_counter(), 0.0)
        timer = threading.Timer(left, con.interrupt) if left is not None else None
        if timer:
            timer.start()
        try:
            rel = con.execute(sql)
            if kind == "SELECT" and (whole := shown_whole(sql, rel.description)):
                rel = con.execute(whole)  # its values again, as text
            columns = [d[0] for d in rel.description] if rel.description else []
            shown = [shown_float(d[1]) for d in rel.description or []]
            return columns, rel.fetchall() if limit is None else rel.fetchmany(limit + 1), shown
        except duckdb.CatalogException as exc:
            name = (_missing_table(exc) or "").strip('"').lower()
            if found := broken.get(name) or next((e for n, e in broken.items() if n.endswith(f".{name}")), None):
                raise found from None  # a table whose file is gone
            if reads is not None and len(views) < len(tables):  # maybe one `named` missed: every table
                return _run_on(store, tables, sql, as_of, limit, deadline, zones, None)
            raise
        finally:
            if timer:
                timer.cancel()
    finally:
        con.close()
