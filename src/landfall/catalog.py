"""The catalog from the tables themselves: what a table folder holds (files, schema, partitions, and which landed
files its rows came from), and rebuilding the catalog from the tables and quarantine zones when the state store
is new (lost, deleted or replaced) while the zones still hold tables.

A rebuilt catalog lists every data file a table holds now: for Delta, the files of the log's latest version; for
Parquet, every data file in the folder. Each file's rows are traced to their landed file by the `_source_file`
lineage column, as a version this state store has never seen, so a file landed again replaces its own rows
(`on_change: replace`) instead of adding them twice, and a Delta commit marker found in the log is recorded,
not written again.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import duckdb
import msgspec

from landfall import partitions
from landfall.config import Settings
from landfall.engines.duckdb import lit
from landfall.engines.duckdb.types import arrow_type
from landfall.errors import ConcurrentChange, LandfallError
from landfall.redaction import redact
from landfall.state.base import SERVICE_LEASE, DataFile, Run, SourceRows, StateStore, TableCommit, holding, new_id
from landfall.storage import Storage, Zones
from landfall.tables.parquet import ParquetTable
from landfall.types import type_name

if TYPE_CHECKING:
    from landfall.config import Workflow
    from landfall.tables.base import TableWriter

log = logging.getLogger("landfall.catalog")

REBUILD_LEASE = "catalog:rebuild"
_T = TypeVar("_T")
SCANS = 5  # reads of a table, when commits keep landing while it is cataloged from what it holds


class TableScan(msgspec.Struct):
    """What a table folder holds, read from the folder (Parquet) or its log (Delta)."""

    location: str
    format: str
    files: list[DataFile]
    schema: list[tuple[str, str]]
    partition_by: list[str]
    sources: list[SourceRows] = []

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def table_format(storage: Storage) -> str | None:
    """`delta` for a folder with `_delta_log/`, `parquet` for one holding Parquet files, None otherwise."""
    if storage.entries().get("_delta_log") == "directory":
        return "delta"
    return "parquet" if parquet_files(storage) else None


def parquet_files(storage: Storage) -> list[DataFile]:
    """Data files of a Parquet folder (Hive `key=value/` folders give each file's partition values, decoded
    as the engine wrote them); names starting with `_` or `.` (staging, logs) are not data."""
    out = []
    for rel, info in sorted(storage.list()):
        parts = rel.split("/")
        if any(x.startswith(("_", ".")) for x in parts) or not rel.endswith((".parquet", ".pq")):
            continue
        if not all(partitions.FOLDER.match(x) for x in parts[:-1]):
            continue
        partition = partitions.values_of("/".join(parts[:-1]))
        out.append(DataFile(path=rel, rows=0, bytes=int(info.get("size") or 0), partition=partition))
    return out


def scan(
    storage: Storage, fmt: str | None = None, *, lineage: bool = False, skip: set[str] = frozenset()
) -> TableScan | None:
    """Read a table folder: its files with row counts, schema and partition columns (and, with `lineage`, the
    landed files each data file holds rows of), but the files of `skip` (a Delta log's files that are gone).
    None when it holds no data files."""
    fmt = fmt or table_format(storage)
    if fmt is None:
        return None
    con = duckdb.connect()
    storage.register_with(con)
    try:
        if fmt == "delta":
            from landfall.tables import open_table

            writer = open_table("delta", storage)
            if (unread := writer.unread_features()) is not None:
                raise LandfallError(f"{unread}: it is not cataloged")
            files = [f for f in writer.current_files() if f.path not in skip]
            if not files:
                return None
            arrow_schema, partition_by = writer.schema_and_partitions()
            schema = [(f.name, type_name(f.type)) for f in arrow_schema]
        else:
            files = parquet_files(storage)
            if not files:
                return None
            partition_by = sorted(
                {k for f in files for k in f.partition},
                key=lambda k: min((list(f.partition).index(k) for f in files if k in f.partition), default=0),
            )
            hive = "true" if partition_by else "false"
            rel = f"read_parquet({_paths(storage, files)}, union_by_name = true, hive_partitioning = {hive})"
            schema = [(r[0], arrow_type(r[1])) for r in con.execute(f"DESCRIBE SELECT * FROM {rel}").fetchall()]
            if partition_by:  # typed as the table's commits kept them, not by what the folder names look like
                kept = ParquetTable(storage).partition_types()
                schema = [(n, kept.get(n, t)) for n, t in schema]
            counts = dict(
                con.execute(
                    f"SELECT file_name, sum(row_group_num_rows) FROM (SELECT DISTINCT file_name, row_group_id, "
                    f"row_group_num_rows FROM parquet_metadata({_paths(storage, files)})) GROUP BY file_name"
                ).fetchall()
            )
            for f in files:
                f.rows = int(counts.get(storage.url_of(f.path), 0))
        found = TableScan(location=storage.url, format=fmt, files=files, schema=schema, partition_by=partition_by)
        if lineage and any(n == "_source_file" for n, _ in schema):
            found.sources = _sources(con, storage, files, run_ids=any(n == "_run_id" for n, _ in schema))
        return found
    finally:
        con.close()


def _paths(storage: Storage, files: list[DataFile]) -> str:
    return "[" + ", ".join(lit(storage.url_of(f.path)) for f in files) + "]"


def _sources(
    con: duckdb.DuckDBPyConnection, storage: Storage, files: list[DataFile], run_ids: bool
) -> list[SourceRows]:
    """Which landed files each data file holds rows of, from the `_source_file` lineage column."""
    run = "any_value(_run_id)" if run_ids else "''"
    rows = con.execute(
        f"SELECT filename, _source_file, {run}, count(*) FROM read_parquet({_paths(storage, files)}, "
        "filename = true, union_by_name = true, hive_partitioning = false) "
        "WHERE _source_file IS NOT NULL GROUP BY filename, _source_file"
    ).fetchall()
    return [
        SourceRows(path=storage.key_of(path), source_key=key, file_id=0, run_id=run_id or "", rows=int(n))
        for path, key, run_id, n in rows
    ]


class Rebuilt(msgspec.Struct):
    table: str
    format: str
    files: int
    rows: int
    sources: int


def rebuild(settings: Settings, store: StateStore, zones: Zones, names: list[str] | None = None) -> list[Rebuilt]:
    """Catalog every table in the tables zone (and `quarantine.<t>` in the quarantine zone) as it is now, in one
    state-store transaction; `names` limits it to those tables. A table already cataloged is brought in line
    with what the table holds: files it no longer holds are dropped, files it holds are added. A table that
    another commit changed while it was read is read again (its file list would drop that commit's files)."""
    return read_again(lambda: _rebuild(settings, store, zones, names))


def read_again(attempt: Callable[[], _T]) -> _T:
    """`attempt()` (read tables and commit what they hold, `as_of` when read), again while another commit
    changed a table meanwhile (`ConcurrentChange`), up to `SCANS` times."""
    tries = 1
    while True:
        try:
            return attempt()
        except ConcurrentChange:
            if tries == SCANS:
                raise
            tries += 1
            log.info("a table changed while it was read to be cataloged; reading it again")


def _rebuild(settings: Settings, store: StateStore, zones: Zones, names: list[str] | None) -> list[Rebuilt]:
    from landfall.tables import open_table

    commits: list[TableCommit] = []
    done: list[Rebuilt] = []
    reload: list[int] = []
    for name, storage in _table_folders(zones):
        if names is not None and name not in names:
            continue
        have = store.find_table(name)  # before the read: a commit after it makes this rebuild read again
        fmt = table_format(storage) or (have.format if have is not None else None)
        writer = open_table(fmt, storage) if fmt is not None else None
        gone = writer.missing_files() if writer is not None else []
        found = scan(storage, fmt, lineage=True, skip={f.path for f in gone})
        if found is None and have is not None and fmt is not None:  # a cataloged table that lost every file
            found = TableScan(storage.url, fmt, files=[], schema=have.schema, partition_by=have.partition_by)
        if found is None:
            continue
        dropped = _dropped_versions(store, name, found) if have is not None else []
        reload += [d.file_id for d in dropped]
        if writer is not None and gone:  # the log follows the folder
            _repair(settings, store, zones, name, writer, gone, dropped)
        commits.append(
            TableCommit(
                table=name,
                location=found.location,
                format=found.format,
                workflow=wf.name if (wf := _workflow_of(settings, name)) else None,  # type: ignore[arg-type]
                schema=have.schema if have is not None and have.schema == found.schema else found.schema,
                partition_by=found.partition_by,
                commit_id=new_id("rebuild-"),
                add=found.files,
                sources=found.sources,
                exact=True,
                as_of=have.updated_at if have is not None else 0,
            )
        )
        keys = {s.source_key for s in found.sources}
        done.append(Rebuilt(name, found.format, len(found.files), found.rows, len(keys)))
    missing = sorted(set(names or []) - {r.table for r in done})
    if missing:
        from landfall.errors import NoSuchTable

        raise NoSuchTable(
            f"no table folder for {', '.join(f'`{m}`' for m in missing)} in {zones.tables.label} "
            "(or `quarantine.<table>` under the quarantine zone) holds data files"
        )
    if commits:
        store.commit(None, [], also=commits)
    if reload:
        again = store.reload(
            reload, "its rows were in table files or a commit that are gone (`landfall tables rebuild`)"
        )
        log.warning("loading %d files again whose rows the tables no longer hold", len(again))
    return done


def _repair(
    settings: Settings,
    store: StateStore,
    zones: Zones,
    name: str,
    writer: TableWriter,
    gone: list[DataFile],
    dropped: list[SourceRows],
) -> None:
    """The log of table `name` follows its folder: the files `gone` leave it (a `REPAIR` commit), and the file
    versions `dropped`, which `rebuild` loads again, are marked not committed there and in the logs of the other
    tables their workflow writes (its child tables, or their parent): a run that finds its marker in any of them
    records, and writes nothing. A workflow with `on_change: append` that writes several tables keeps them
    marked (loading a version again would add its rows to the others twice): those rows stay lost."""
    from landfall.replay import app_id
    from landfall.tables import open_table

    log.warning(
        "table `%s`: its log named %d files its folder no longer holds (%s): taken out of it",
        name,
        len(gone),
        ", ".join(f.path for f in gone[:3]) + (", ..." if len(gone) > 3 else ""),
    )
    wf = _workflow_of(settings, name)
    written = {wf.write.table, *wf.child_tables.values()} if wf is not None else {name}
    if wf is not None and wf.on_change == "append" and len(written) > 1:
        log.warning("table `%s`: rows of %d landed files are lost (`tables reload` loads them)", name, len(dropped))
        dropped = []
    forget = [app_id(run, run.content_hash) for d in dropped if (run := _run_of(store, d.run_id)) and run.content_hash]
    writer.repair(gone, forget=forget)
    for other in sorted(written - {name}) if forget else []:
        open_table(writer.format, zones.table(other)).repair([], forget=forget)


def _dropped_versions(store: StateStore, name: str, found: TableScan) -> list[SourceRows]:
    """File versions whose rows were only in cataloged files the table no longer holds (and in no file it
    holds, by the rows' `_source_file` and `_run_id`)."""
    present = {f.path for f in found.files}
    held = {(s.source_key, s.run_id) for s in found.sources}
    return [
        src
        for f in store.table_files(name)
        if f.path not in present
        for src in store.file_sources(name, f.path)
        if src.file_id and (src.source_key, src.run_id) not in held
    ]


def _run_of(store: StateStore, run_id: str) -> Run | None:
    """Run `run_id` (the file version it loaded, with its content hash), or None."""
    from landfall.errors import NoSuchRun

    try:
        return store.run(run_id)
    except NoSuchRun:
        return None


def rebuild_if_new(settings: Settings, store: StateStore, zones: Zones, *, wait: float = 120.0) -> list[Rebuilt]:
    """When the state store is new (no tables, no runs) and the zones hold tables, rebuild the catalog from them
    before anything is loaded. Several processes starting at once rebuild it once (a lease); the others wait."""
    if store.tables() or not any(True for _ in _table_folders(zones)):
        return []
    holder = new_id("rebuild-")
    deadline = time.monotonic() + wait
    while True:
        with holding(store, REBUILD_LEASE, holder) as held:
            if held:
                if store.tables() or any(store.counts().values()):
                    return []  # rebuilt meanwhile, or this store already has history of its own
                done = rebuild(settings, store, zones)
                if done:
                    log.warning(
                        "the state store is new but the tables zone is not: rebuilt the catalog from %s",
                        ", ".join(f"`{r.table}` ({r.files} files, {r.rows} rows)" for r in done),
                    )
                return done
        if time.monotonic() > deadline:
            raise TimeoutError(f"another process has been rebuilding the catalog for {wait:.0f} s")
        time.sleep(0.2)


class Reloaded(msgspec.Struct):
    tables: list[str]  # taken out of the catalog: the table, its child tables and their quarantine tables
    kept: list[str]  # where their folders are now
    queued: int  # landed files queued to load again


DROPPED = "_dropped"  # in the tables and quarantine zones: folders of reloaded tables, kept until removed by hand


def reload(settings: Settings, store: StateStore, zones: Zones, name: str) -> Reloaded:
    """Load a table again from its landed files under the workflow as it is now (a new `partition_by` or
    `format`, new steps): its folder (and those of its child tables and quarantine) moves aside to
    `_dropped/<table>-<time>/` in its zone, kept, and the catalog drops them and queues every landed file whose
    rows they held, in one transaction. The next `process` makes the table anew. Run it again if it is
    interrupted. Refused for a table whose rows come from, or go on to, another table's runs."""
    base = name.removeprefix("quarantine.")
    if base != name:
        raise LandfallError(f"`{name}` holds the rows `{base}` set aside: reload `{base}`, which refills both")
    for wf in settings.workflows:
        if name in wf.child_tables.values():
            raise LandfallError(
                f"`{name}` is a child table of `{wf.write.table}` (workflow `{wf.name}`): reload `{wf.write.table}`, "
                "which loads its child tables again too"
            )
    writers = [wf for wf in settings.workflows if wf.write.table == name]
    readers = [wf.name for wf in settings.workflows if wf.source is not None and wf.source.table == name]
    if readers or any(wf.source is not None for wf in writers):
        why = (
            f"workflow `{readers[0]}` takes the rows of `{name}` as they land (`source: {{table: {name}}}`) and "
            "would take every row again"
            if readers
            else f"its rows come from the runs of `{writers[0].source.table}`, not from landed files"  # type: ignore[union-attr]
        )
        raise LandfallError(f"`{name}` cannot be reloaded: {why}")
    store.table(name)  # NoSuchTable, with the tables there are
    if not writers:
        raise LandfallError(f"no workflow writes `{name}` now: its landed files would have nowhere to load")
    children = sorted({t for wf in writers for t in wf.child_tables.values()})
    found = {
        t: info for table in (name, *children) for t in (table, f"quarantine.{table}") if (info := store.find_table(t))
    }
    names = list(found)
    stamp = time.strftime(_STAMP, time.gmtime())
    kept = []
    for table in names:
        folder = table.removeprefix("quarantine.")
        zone = zones.tables if folder == table else zones.quarantine
        if (dest := _move_aside(zone, folder, table, found[table].created_at, stamp)) is not None:
            kept.append(zone.url_of(dest))
    queued = store.drop_tables(names, f"`{name}` was dropped to be loaded again (`landfall tables reload {name}`)")
    log.warning(
        "`%s` dropped (%s); %d landed files queued to load again",
        name,
        f"folders kept: {', '.join(kept)}" if kept else "no folder left to keep: moved by an earlier try",
        len(queued),
    )
    return Reloaded(names, kept, len(queued))


_STAMP = "%Y%m%dT%H%M%SZ"
MOVING = ".landfall-moving.json"  # in a `_dropped/` folder while a reload moves a table there on an object store


def kept_from(zone: Storage, folder: str, at: float) -> tuple[float, str] | None:
    """When a reload first moved the table of `folder` aside after time `at` (a Unix time), and where that table is
    kept (the URL of its `_dropped/<folder>-<time>/` folder); None when it was not reloaded since."""
    moved = []
    for name in zone.folders(DROPPED):
        head, _, stamp = name.rpartition("-")
        try:
            when = calendar.timegm(time.strptime(stamp, _STAMP))
        except ValueError:
            continue
        if head == folder and when >= int(at):
            moved.append((when, name))
    if not moved:
        return None
    when, name = min(moved)
    return when, zone.url_of(f"{DROPPED}/{name}")


def _move_aside(zone: Storage, folder: str, table: str, created_at: float, stamp: str) -> str | None:
    """Move a table's `folder` to `_dropped/<folder>-<stamp>/`; the folder it is in now, or None when nothing
    was there. On an object store a move is a copy of each object and then a delete: the destination holds a
    note naming the table until the move is done, and a reload run again after an interruption moves the rest
    into the folder that note names (not into a second one)."""
    if zone.is_local:  # one rename
        dest = f"{DROPPED}/{folder}-{stamp}"
        return dest if zone.move_tree(folder, dest) else None
    mine = msgspec.json.encode({"table": table, "created_at": created_at})
    earlier = [
        f"{DROPPED}/{name}"
        for name in sorted(zone.folders(DROPPED))
        if name.startswith(f"{folder}-") and _note(zone, f"{DROPPED}/{name}/{MOVING}") == mine
    ]
    dest = earlier[-1] if earlier else f"{DROPPED}/{folder}-{stamp}"
    if not earlier:
        zone.write_bytes(f"{dest}/{MOVING}", mine)
    moved = zone.move_tree(folder, dest)
    zone.delete([f"{dest}/{MOVING}"])
    return dest if moved or earlier else None


def _note(zone: Storage, key: str) -> bytes | None:
    try:
        return zone.read_bytes(key)
    except FileNotFoundError:
        return None


def _table_folders(zones: Zones):
    """`(name, storage)` of each folder in the tables zone, and `quarantine.<name>` in the quarantine zone."""
    for zone, prefix in ((zones.tables, ""), (zones.quarantine, "quarantine.")):
        for folder in sorted(zone.folders()):
            if not folder.startswith(("_", ".")):
                yield f"{prefix}{folder}", zone.child(folder)


def _workflow_of(settings: Settings, table: str) -> Workflow | None:
    """The workflow that writes `table` (or whose table or child table `quarantine.<table>` is the quarantine of)."""
    name = table.removeprefix("quarantine.")
    return next((w for w in settings.workflows if w.write.table == name or name in w.child_tables.values()), None)


def check_logs(store: StateStore, zones: Zones) -> dict[str, str]:
    """Delta tables whose log cannot be read, or that no longer lists files the catalog holds (a commit file
    was removed or lost): `{table: message}`, each message naming the file and what to do.

    A commit changes the Delta log first and the catalog after, while its run is running (or its compaction or
    replay holds a lease). So the log's version is read first, then what is in flight, then the log's files and
    the catalog's: a table with work in flight, or whose log moved meanwhile, is left for the next check; for
    the others a file the catalog holds and the log does not list was lost from the log."""
    from landfall.errors import BrokenTable
    from landfall.tables import open_table

    broken: dict[str, str] = {}
    for table in store.tables():
        if table.format != "delta":
            continue
        storage = zones.at(table.location)
        writer = open_table("delta", storage)
        try:
            before = writer.version()
            if _in_flight(store):
                continue
            live = writer.current_paths()
            listed = store.table_files(table.name)
            if writer.version() != before:
                continue
        except BrokenTable as exc:
            broken[table.name] = str(exc)
            continue
        lost = [f for f in listed if f.path not in live]
        if lost and {f.path for f in lost} <= writer.removed_by_newest(_awaiting(store)):
            continue  # the log is ahead with commits of runs killed before their catalog commits: retries record them
        from landfall.tables.delta_log import broken_log_message, diagnose_log  # (deltalake: only with Delta tables)

        if lost and diagnose_log(storage):  # a damaged commit file that delta-rs read past
            broken[table.name] = broken_log_message(storage)
        elif lost:
            log = f"{redact(storage.url)}/_delta_log/{before + 1:020d}.json"
            broken[table.name] = (
                f"table `{table.name}`: the catalog holds {len(lost)} files the Delta log does not list "
                f"(`{lost[0].path}`, commit `{lost[0].commit_id}`); the log ends at version {before}, so a later "
                f"commit file such as `{log}` was removed or lost. Restore it from a backup, or run "
                f"`landfall tables rebuild {table.name}`: the catalog then follows the log, and the files whose "
                "rows were in the lost commit are loaded again"
            )
    return broken


def _awaiting(store: StateStore) -> set[str]:
    """The runs that failed (a worker killed while running them, say) and whose file versions are queued again: a
    commit of theirs in a table's log that the catalog lacks is one their next attempt records."""
    queued = {r.file_id for r in store.runs(status="queued", limit=None)}
    return {r.run_id for r in store.runs(status="failed", limit=None) if r.file_id in queued}


def _in_flight(store: StateStore) -> bool:
    """A run is running (its commit may touch this table or a child of it), or a compaction or replay holds a
    lease (readers and running services do not count: they commit nothing under their own lease)."""
    from landfall.tables.readers import PREFIX

    if store.runs(status="running", limit=1):
        return True
    return any(not h.startswith((PREFIX, SERVICE_LEASE)) for h in store.holders())
