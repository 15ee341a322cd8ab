"""One engine job over files of a batch, and its commit: read, transform and write them, then publish the table's
new files, its child tables' and its quarantine's, and commit them to the table format's log and the catalog in
one `TableTransaction`. Files an earlier attempt committed already are recorded instead (`replay.py`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec

from landfall import partitions
from landfall.config import ParquetFiles, Workflow
from landfall.engines.base import Engine, Job, Source, Staged, StagedFile
from landfall.errors import BrokenTable, ConcurrentChange, ConfigError
from landfall.outcomes import Outcome, run_result
from landfall.redaction import redact
from landfall.replay import app_id, replay_committed
from landfall.schema import grown
from landfall.state.base import DataFile, Run, SourceRows, StateStore, Table, TableCommit
from landfall.tables import open_table
from landfall.tables.base import TableChange, TableWriter
from landfall.tables.readers import check_listed
from landfall.tables.transaction import TableTransaction

if TYPE_CHECKING:
    from landfall.runner import Runner


def run_job(
    runner: Runner,
    wf: Workflow,
    items: list[tuple[Run, Source, str]],
    commit_id: str,
    engine: Engine,
    replaces: Sequence[str] = (),
) -> None:
    """Read, transform, write and commit `items`. A digest may still be a `Future` (a big file hashed while
    the engine reads it): its commit marker is checked once the hash is known, before anything is published.
    With `on_change: replace`, the rows of earlier versions of the items' files are taken out in the same commit,
    and those of `replaces` (the events of earlier upstream runs of the same landed file, for a fed workflow)."""
    if wf.write.landing is not None:  # a hop: files for the next workflow (one file per job)
        from landfall.hops import run_hop

        ((run, src, digest),) = items
        return run_hop(runner, wf, run, src, resolved(digest) or "", engine)
    for name in (wf.write.table, *wf.child_tables.values()):
        if name in runner.broken:
            raise BrokenTable(runner.broken[name])
    writer = open_table(wf.write.format, runner.zones.table(wf.write.table))
    items = replay_committed(runner, wf, writer, items)
    if not items:
        return
    child_writers = {t: open_table(wf.write.format, runner.zones.table(t)) for t in wf.child_tables.values()}
    # a reader lease, taken before the file lists are read, keeps those files (and the joined tables') meanwhile
    own = [wf.write.table, *child_writers] if _reads_table_files(wf, writer) else []
    reads = own + wf.joins if own or wf.joins else None
    with (
        _scratch(runner.zones.landing.scratch("job")) as scratch,
        TableTransaction(runner.store, commit_id, reads=reads) as tx,
    ):
        area = tx.stage(writer)
        child_areas = {t: tx.stage(w) for t, w in child_writers.items()}
        table = runner.store.find_table(wf.write.table)
        new = _new_table(runner.store, table, writer, items)
        _check_layout(wf, writer, table, runner.store)
        against = wf.unique_against_table
        needs_files = table is not None and (wf.write.mode != "append" or against)
        current = {f.path: f for f in runner.store.table_files(wf.write.table)} if needs_files else {}
        # what it writes depends on the table's rows: a file committed since this read makes it run again
        read = set(current) if wf.write.mode != "append" or against else None
        held = wf.schema_.evolution != "evolve"  # the batch is held to the table's schema as read here
        parts = [p.name for p in wf.write.partition_by]
        replacing = [s.key for _, s, _ in items] + list(replaces) if wf.replaces_versions else []
        child_tables = {t: runner.store.find_table(t) for t in child_writers}
        for t, w in child_writers.items():
            in_place(wf, t, w, child_tables[t])
        child_schemas = {t: c.schema for t, c in child_tables.items() if c is not None}
        job = Job(
            workflow=wf,
            sources=[s for _, s, _ in items],
            staging=area,
            commit_id=commit_id,
            ingested_at=datetime.now(UTC),
            scratch=scratch,
            table_schema=table.schema if table else None,
            table_files=[(f"{writer.location}/{p}", p) for p in current] if wf.write.mode == "merge" or against else [],
            partition_names=parts,
            child_staging=child_areas,
            child_schemas=child_schemas,
            tables=runner.joined(wf),
            stored_as=dict(writer.stored_as),
            replacing=replacing,
        )
        try:
            staged = engine.run(job)
        except Exception as exc:
            check_listed(runner.store, wf.write.table, list(current) if job.table_files else [], exc, writer.storage)
            for name, (joined, files) in job.tables.items():
                check_listed(runner.store, name, files, exc, runner.zones.at(joined.location))
            raise
        if any(isinstance(d, Future) for _, _, d in items):
            items = replay_committed(runner, wf, writer, [(r, s, d.result()) for r, s, d in items])
            if not items:  # committed by an earlier attempt: recorded, and the staged files go with staging
                return
        staged.outputs_of = {}
        for rel, key, _ in staged.file_sources:
            staged.outputs_of.setdefault(key, set()).add(rel)
        if table is None and not (staged.files or staged.children or staged.quarantine_files):
            # nothing to write (empty files) and no table yet: the runs succeed, no table is made
            empty = [run_result(run, src, resolved(digest), staged, wf) for run, src, digest in items]
            tx.commit(None, empty)
            for (run, _, _), res in zip(items, empty, strict=True):
                runner.done(Outcome(run, "succeeded", rows_out=0, result=res))
            return
        tx.point("after_write")
        replaced: list[str] = list(staged.replaced)
        if wf.write.mode == "overwrite" and table is not None:
            types = dict(staged.schema)
            touched = {partitions.same_values(f.partition, types) for f in staged.files}
            replaced = [
                p
                for p, f in current.items()
                if wf.write.overwrite == "table" or partitions.same_values(f.partition, types) in touched
            ]
            if wf.write.overwrite == "table" and replaced and not staged.files:  # no rows to write: say so
                gone = sum(current[p].rows for p in replaced)  # (a header alone, or every row filtered or set aside)
                said = f"`mode: overwrite` emptied the table ({gone} row{'s' * (gone != 1)} before)"
                for _, src, _ in items:
                    staged.notes[src.key] = f"{staged.notes[src.key]}; {said}" if staged.notes.get(src.key) else said
        # the files holding a changed file's earlier rows that a merge or the partitions an overwrite brings do not
        # replace already
        earlier, rewrites = _earlier_rows(
            runner.store, engine, writer, wf, table, wf.write.table, replacing, replaced, area, commit_id
        )
        replaced += earlier
        retyped = _retype_rest(runner.store, writer, wf, table, staged, replaced, area, commit_id)
        rewrites += [(f.path, rw) for f, rw in retyped or []]
        replaced += [f.path for f, _ in retyped or []]
        current |= {f.path: f for f, _ in retyped or [] if f.path not in current}
        if missing := [p for p in replaced if p not in current]:  # files a new version of a landed file held
            current |= {f.path: f for f in runner.store.table_files(wf.write.table, paths=missing)}
        published = tx.publish(writer, staged.files + [rw for _, rw in rewrites])
        sources = _lineage(runner.store, wf.write.table, items, staged.file_sources, replaced, rewrites, replacing)
        if table is not None and not staged.files:  # a run that writes no rows changes no schema
            staged.schema, staged.arrow_schema = table.schema, None
        schema = grown(table, staged.schema)
        results = [run_result(run, src, resolved(digest), staged, wf) for run, src, digest in items]
        if writer.has_log:  # the format's own commit cannot be taken back: refuse duplicate bytes first, and
            # let no other load of the workflow commit until this one has (the same bytes under two names, checked
            # at once, both passed: the second's log commit stayed, which the catalog refused)
            tx.hold_to_the_end(f"content:{wf.name}", f"workflow `{wf.name}`: another load's commit")
            runner.store.check_content(results, lease_seconds=runner.settings.lease_seconds)
        # a child table is made by its first rows (made of none, it would hold the type of elements no list had)
        kids = {t: c for t, c in staged.children.items() if c.files or child_tables[t]}
        for t in child_writers:  # one the batch brings no rows to still loses a changed file's earlier rows
            if t not in kids and replacing and child_tables[t] and runner.store.files_holding(t, replacing, []):
                kids[t] = Staged(files=[], schema=child_tables[t].schema, rows_in={}, rows_out={}, file_sources=[])
        children = [
            _child_commit(runner.store, tx, wf, t, child_writers[t], child_areas[t], c, items, engine, replacing)
            for t, c in kids.items()
        ]  # committed before the parent: see `_child_commit`
        change = TableChange(
            commit_id=commit_id,
            operation={"append": "WRITE"}.get(wf.write.mode, wf.write.mode.upper()),
            add=published,
            remove=[current[p] for p in replaced if p in current],
            schema=staged.pyarrow_schema() if writer.has_log else None,
            partition_by=parts,
            retyped=retyped is not None,
            read=read,
            read_columns=({n for n, _ in table.schema} if table else set()) if held or new else None,
            app_ids=[app_id(run, digest) for run, _, digest in items],
            metadata={
                "workflow": wf.name,
                "schema": schema,
                "sources": [msgspec.structs.asdict(s) for s in sources],
                "runs": [
                    {
                        "run_id": r.run_id,
                        "app_id": app_id(run, r.content_hash or ""),
                        "file_id": s.file_id,
                        "key": s.key,
                        "rows_in": r.rows_in,
                        "rows_out": r.rows_out,
                        "outputs": r.output_files,
                    }
                    for r, (run, s, _) in zip(results, items, strict=True)
                ],
            },
        )
        commit = TableCommit(
            table=wf.write.table,
            location=writer.location,
            format=writer.format,
            workflow=wf.name,
            schema=schema,
            partition_by=parts,
            commit_id=commit_id,
            add=published,
            remove=replaced,
            sources=sources,
            read=sorted(read) if read is not None else None,
            schema_of=(table.schema_version if table else 0) if held or new else None,
        )
        quarantined = _quarantine(runner, tx, wf, staged, items, engine, replacing, os.path.join(area, "quarantine"))
        also = [c for c, _ in children] + quarantined
        tx.commit(commit, results, also=also, log=(writer, change), journal=quarantined)
        if runner.settings.fed_by(wf.write.table):  # the workflows this table feeds get its runs now (a crash
            from landfall.sources.tables import feed  # before this: `TableSource` finds them)

            feed(runner.settings, runner.store, wf.write.table, results)
        tx.retire(writer, wf.write.table, replaced)
        for c, gone in children:
            tx.retire(child_writers[c.table], c.table, gone)
    for (run, src, _), res in zip(items, results, strict=True):
        runner.done(Outcome(run, "succeeded", rows_out=staged.rows_out.get(src.key, 0), result=res))


def _check_layout(wf: Workflow, writer: TableWriter, table: Table | None, store: StateStore) -> None:
    """A table keeps the format and partitioning its first commit gave it: a workflow changed since would write
    files the table cannot hold (Parquet files beside a Delta log; Hive folders beside files outside them, after
    which every query of the table failed). A new table's name is not one the catalog has in other letter case
    (`Sales` beside `sales`), which SQL does not tell apart. `ConfigError`, naming both."""
    if table is None:
        name = wf.write.table or ""
        spelled = (t.name for t in store.tables() if t.name.lower() == name.lower() and t.name != name)
        if other := next(spelled, None):
            raise ConfigError(
                f"workflow `{wf.name}` writes table `{name}`, but the catalog has `{other}`: SQL (and a file system "
                f"that ignores case, as macOS's) does not tell the two apart; write `{other}`, or name the table "
                "otherwise"
            )
        return
    in_place(wf, wf.write.table, writer, table)
    parts = [p.name for p in wf.write.partition_by]
    if table.format != writer.format or table.partition_by != parts:
        what, now, was = (
            ("format", writer.format, table.format)
            if table.format != writer.format
            else ("partition_by", f"[{', '.join(parts)}]", f"[{', '.join(table.partition_by)}]")
        )
        raise ConfigError(
            f"workflow `{wf.name}` writes table `{wf.write.table}` with `write.{what}` {now}, but the table has "
            f"{was}: a table keeps the format and partitioning of its first commit; put `{what}: {was}` back, "
            f"load the table again under the new one (`landfall tables reload {wf.write.table}`), or write the rows "
            "to a new table (`write.table`)"
        )


def in_place(wf: Workflow, name: str, writer: TableWriter, table: Table | None) -> None:
    """A cataloged table is where the workflow writes it: files written elsewhere would join a table no query
    reads there (a crawled table of the same name; a lake copied or moved, its catalog still naming the old
    place). `ConfigError`, naming both places and the ways out."""
    if table is None or table.location.rstrip("/") == writer.location.rstrip("/"):
        return
    raise ConfigError(
        f"workflow `{wf.name}` writes table `{name}` into `{redact(writer.location)}`, but the catalog has a table "
        f"`{name}` at `{redact(table.location)}` (crawled there, or cataloged before its lake was copied or moved): "
        f"write the rows to another table (`write.table`), or, if the table is the one in "
        f"`{redact(writer.location)}`, catalog it there: `landfall tables rebuild {name}`"
    )


def _retype_rest(
    store: StateStore,
    writer: TableWriter,
    wf: Workflow,
    table: Table | None,
    staged: Staged,
    replaced: list[str],
    staging: str,
    commit_id: str,
) -> list[tuple[DataFile, StagedFile]] | None:
    """When the batch widens a column of a table whose format's log holds one type per column (Delta: an int64
    column that now holds doubles): the table's files not `replaced` already, each with its rewrite in the new
    types (maybe none; the caller replaces them, and the commit is `TableChange.retyped`). None otherwise."""
    if table is None or not writer.has_log or not staged.files:
        return None
    old = dict(table.schema)
    widened = {n: t for n, t in grown(table, staged.schema) if n in old and old[n] != t}
    if not widened:
        return None
    others = [f for f in store.table_files(table.name) if f.path not in replaced]
    made = writer.retype(others, widened, staging, commit_id, wf.write.files, first=len(replaced))
    return list(zip(others, made, strict=True))


def _rewrite(
    store: StateStore,
    engine: Engine,
    writer: TableWriter,
    replaced: list[str],
    keys: list[str],
    staging_dir: str,
    commit_id: str,
    files_as: ParquetFiles = ParquetFiles(),
) -> list[tuple[str, StagedFile]]:
    """`replaced` written again without the rows of `keys`: each rewrite that holds rows, with the file it was
    written from (rewrites are named `part-<commit>-r<i>`, `i` the index of that file in `replaced`)."""
    try:
        rewritten = engine.rewrite(
            [(f"{writer.location}/{p}", p) for p in replaced], keys, staging_dir, commit_id, files_as
        )
    except Exception as exc:
        check_listed(store, writer.storage.url.rsplit("/", 1)[-1], replaced, exc, writer.storage)
        raise
    return [(_rewritten_from(f.relpath, replaced), f) for f in rewritten if f.rows > 0]


def _lineage(
    store: StateStore,
    table: str,
    items: list,
    file_sources: list[tuple[str, str, int]],
    replaced: list[str],
    rewrites: list[tuple[str, StagedFile]],
    replacing: Sequence[str] = (),
) -> list[SourceRows]:
    """Which landed file versions each new table file holds rows of; a rewritten file (`rewrites`: each with
    the replaced file it was written from) keeps the lineage of the rows it carries over (not those of
    `replacing`, left out of it)."""
    keys = {s.key for _, s, _ in items} | set(replacing)
    lineage = {s.key: (s.file_id, s.run_id) for _, s, _ in items}
    carried: dict[str, list[SourceRows]] = {p: store.file_sources(table, p) for p in replaced}
    for rows in carried.values():
        for src in rows:
            lineage.setdefault(src.source_key, (src.file_id, src.run_id))
    sources = [
        SourceRows(path=rel, source_key=key, file_id=lineage[key][0], run_id=lineage[key][1], rows=n)
        for rel, key, n in file_sources
        if key in lineage
    ]
    for origin, rw in rewrites:
        for src in carried.get(origin, []):
            if src.source_key not in keys:
                sources.append(
                    SourceRows(
                        path=rw.relpath,
                        source_key=src.source_key,
                        file_id=src.file_id,
                        run_id=src.run_id,
                        rows=src.rows,
                    )
                )
    return sources


def _child_commit(
    store: StateStore,
    tx: TableTransaction,
    wf: Workflow,
    name: str,
    writer: TableWriter,
    staging_dir: str,
    staged: Staged,
    items: list,
    engine: Engine,
    replacing: list[str],
) -> tuple[TableCommit, list[str]]:
    """Publish one child table's rows; a format with a log commits them now, before the parent. A child
    commit that an earlier attempt made without its parent (a crash in between) is taken out again in
    this one, so the children of a file are in the table once."""
    existing = store.find_table(name)
    new = _new_table(store, existing, writer, items)
    commit_id = tx.commit_id
    replaced, rewrites = _earlier_rows(store, engine, writer, wf, existing, name, replacing, [], staging_dir, commit_id)
    retyped = _retype_rest(store, writer, wf, existing, staged, replaced, staging_dir, commit_id)
    rewrites += [(f.path, rw) for f, rw in retyped or []]
    replaced += [f.path for f, _ in retyped or []]
    published = tx.publish(writer, staged.files + [rw for _, rw in rewrites])
    sources = _lineage(store, name, items, staged.file_sources, replaced, rewrites, replacing)
    schema = grown(existing, staged.schema)
    if writer.has_log:
        apps = [app_id(run, resolved(digest) or "") for run, _, digest in items]
        # an earlier attempt's commit of these files (a crash before the parent's) is taken out again; the
        # table's file list is read only then: it grows with the table, and nearly every commit has none. Files
        # those attempts took out that the catalog holds are taken out already, or put back when this one keeps
        # them (before: taken for removed by another commit, the job ran again forever)
        added, removed = writer.attempted(apps)
        live = {f.path: f for f in writer.current_files() or []} if added or removed else {}
        earlier, taken = [live[p] for p in sorted(added) if p in live], removed - live.keys()
        wanted = sorted({*replaced, *taken})
        held = {f.path: f for f in store.table_files(name, paths=wanted)} if wanted else {}
        back = [held[p] for p in sorted(taken - set(replaced)) if p in held]
        tx.commit_format(
            writer,
            TableChange(
                commit_id=commit_id,
                operation="WRITE",
                add=published + back,
                remove=[held[p] for p in replaced if p in held and p not in taken] + earlier,
                schema=staged.pyarrow_schema(),
                partition_by=[],
                retyped=retyped is not None,
                app_ids=apps,
                read_columns=set() if new else None,
                metadata={
                    "workflow": wf.name,
                    "parent": wf.write.table,
                    "schema": schema,
                    "added": [f.path for f in published],
                    "sources": [msgspec.structs.asdict(s) for s in sources],
                },
            ),
            point="after_child_commit",
        )
    commit = _side_commit(name, writer, wf, schema, commit_id, published, replaced, sources)
    return msgspec.structs.replace(commit, schema_of=0 if new else None), replaced


def _quarantine(
    runner: Runner,
    tx: TableTransaction,
    wf: Workflow,
    staged: Staged,
    items: list,
    engine: Engine,
    replacing: list[str],
    staging_dir: str,
) -> list[TableCommit]:
    """Publish the rows rules set aside into `quarantine/<table>/`, cataloged as `quarantine.<table>`; a
    changed file's earlier quarantined rows (`replacing`) are taken out in the same commit, as its table rows
    are (a replay would otherwise load a version's rows its file no longer has)."""
    name = f"quarantine.{wf.write.table}"
    writer = open_table("parquet", runner.zones.quarantined(wf.write.table))
    store = runner.store
    table = store.find_table(name)
    in_place(wf, name, writer, table)
    replaced, rewrites = _earlier_rows(store, engine, writer, wf, table, name, replacing, [], staging_dir, tx.commit_id)
    new = staged.quarantine_files
    if not new and not replaced:
        return []
    counts = engine.source_counts([f.path for f in new]) if new else {}  # the staged copies, local
    file_sources = [(f.relpath, k, n) for f in new for k, n in counts.get(f.path, {}).items()]
    sources = _lineage(store, name, items, file_sources, replaced, rewrites, replacing)
    published = tx.publish(writer, new + [rw for _, rw in rewrites])
    schema = grown(table, staged.quarantine_schema, to_text=True) if new else table.schema
    tx.retire(writer, name, replaced)
    commit = _side_commit(name, writer, wf, schema, tx.commit_id, published, replaced, sources)
    return [msgspec.structs.replace(commit, to_text=True)]


def _new_table(store: StateStore, table: Any, writer: TableWriter, items: list) -> bool:
    """Whether a job writes for a table no one has made yet (its types are then its own files'): its commit is
    held to "no table yet" as a `freeze` batch is held to a table (`schema_of` 0, `read_columns` empty), so that a
    table another commit made meanwhile refuses it and the job runs again held to that table. A table the
    format's log has and the catalog lacks is this job's own (an earlier attempt's commit, the process killed
    before the catalog's), a run's still running between its two commits (waited for: `ConcurrentChange`, so
    that the job is then held to the table the catalog has), or one made outside landfall (written to as it is)."""
    if table is not None or not (writer.has_log and writer.exists()):
        return table is None
    if not writer.committed([app_id(run, resolved(digest) or "") for run, _, digest in items]):
        newest = writer.history(1)
        running = {r.run_id for r in store.runs(status="running")}
        if newest and set(newest[0].run_ids) & running:
            raise ConcurrentChange(
                f"table `{redact(writer.location)}` is in its log but not yet in the catalog (another run is "
                "between the two commits); again shortly"
            )
    return False


def _side_commit(
    name: str,
    writer: TableWriter,
    wf: Workflow,
    schema: list[tuple[str, str]],
    commit_id: str,
    published: list[DataFile],
    replaced: list[str],
    sources: list[SourceRows],
) -> TableCommit:
    """The catalog commit of a table a run writes beside its own (a child table, the quarantine)."""
    return TableCommit(
        table=name,
        location=writer.location,
        format=writer.format,
        workflow=wf.name,
        schema=schema,
        partition_by=[],
        commit_id=commit_id,
        add=published,
        remove=replaced,
        sources=sources,
    )


def _earlier_rows(
    store: StateStore,
    engine: Engine,
    writer: TableWriter,
    wf: Workflow,
    table: Table | None,
    name: str,
    replacing: list[str],
    already: list[str],
    staging_dir: str,
    commit_id: str,
) -> tuple[list[str], list[tuple[str, StagedFile]]]:
    """The files of table `name` (`table`, None before it exists) that hold rows of `replacing` (the batch's
    files' earlier versions, under `on_change: replace`; and the very versions loaded again, as after `tables
    rebuild`, whose rows another table of the workflow still held) and that `already` does not replace, and
    their rewrites holding the other files' rows only, written in this commit's staging (each with the file it
    was written from)."""
    if table is None or not replacing:
        return [], []
    holding = store.files_holding(name, replacing, [])
    earlier = [p for p in holding if p not in already]
    if not earlier:
        return [], []
    return earlier, _rewrite(store, engine, writer, earlier, replacing, staging_dir, commit_id, wf.write.files)


@contextmanager
def _scratch(path: str) -> Iterator[str]:
    """A job's local scratch folder, removed when the job ends."""
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def resolved(digest: str | Future[str] | None) -> str | None:
    if isinstance(digest, Future):
        try:
            return digest.result()
        except OSError:
            return None
    return digest


def _reads_table_files(wf: Workflow, writer: TableWriter) -> bool:
    """Whether a job reads the table's current files (merge, `unique` against the table, rewriting the files
    that hold an earlier version's rows) where commits delete the files they replace (Parquet)."""
    if not writer.removes_files_at_commit():
        return False
    return wf.write.mode == "merge" or wf.unique_against_table or wf.on_change == "replace"


def _rewritten_from(relpath: str, replaced: list[str]) -> str:
    """The file of `replaced` the rewrite `part-<commit>-r<i>` was written from: `replaced[i]`."""
    return replaced[int(os.path.basename(relpath).rsplit("-r", 1)[1].removesuffix(".parquet"))]
