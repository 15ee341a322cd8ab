"""Crash recovery: runs whose worker died come back to the queue, and files that no commit lists (left by a crash
between publishing and committing, or replaced by a commit while a reader held them) are removed once nothing
can need them; local scratch folders of processes that died are removed. `landfall process` and `up` run it when
they start, and `up` every `lease_seconds`."""

from __future__ import annotations

import logging

from landfall.config import Settings
from landfall.errors import LandfallError
from landfall.state.base import Run, StateStore
from landfall.storage import Zones, scratch
from landfall.tables import open_table
from landfall.tables.base import TableWriter
from landfall.tables.readers import readers_of
from landfall.tables.transaction import finish_pending

log = logging.getLogger("landfall.recovery")


def recover(settings: Settings, store: StateStore, zones: Zones | None = None) -> list[Run]:
    """Expired leases become failed attempts (and are retried); files their commit left behind are removed,
    and so are table files no commit lists any more (a crash between a commit and its cleanup)."""
    zones = zones or Zones(settings)
    lost = store.reap(max_interruptions=settings.max_interruptions)
    for table in store.tables():  # compactions and replays that stopped between their format and catalog commits
        writer = open_table(table.format, zones.at(table.location))
        if writer.has_log:
            finish_pending(store, writer, table.name)
    sweep(settings, store, zones)
    scratch.sweep(settings.scratch_root)
    for run in lost:
        if not run.table_name or not run.batch_id or not run.workflow:
            continue
        try:
            wf = settings.workflow(run.workflow)
        except LandfallError:
            continue
        writer = open_table(wf.write.format, zones.table(run.table_name))
        keep = {f.path for f in store.table_files(run.table_name)} if store.find_table(run.table_name) else set()
        gone = writer.discard(run.batch_id, keep)
        if gone:
            log.info("removed %d uncommitted files of lost run %s", len(gone), run.run_id)
    return lost


def sweep(settings: Settings, store: StateStore, zones: Zones | None = None) -> list[str]:
    """Delete files under each table's folder that the catalog does not list and no running batch (or leased
    commit: a compaction, a quarantine replay) is writing.

    Order matters: list the folder and its staging folders first, then the running batches and leases, then the
    catalog. A writer takes its run or lease before it makes a staging folder or publishes a file (under a commit
    id that starts with its batch's id, or is its lease's holder), so whatever was listed is either still in
    flight (kept), committed by now (in the catalog or the format's log: kept), or abandoned (removed). Files a
    commit replaced stay while a reader of the table holds its lease (see `landfall.tables.readers`).
    """
    zones = zones or Zones(settings)
    removed: list[str] = []
    for table in store.tables():
        removed += sweep_table(store, table.name, open_table(table.format, zones.at(table.location)))
    return removed


def sweep_table(store: StateStore, name: str, writer: TableWriter, *, before: float | None = None) -> list[str]:
    """`sweep` of one table (and `tables vacuum` of a Parquet table, with `before`: only files last changed
    before that time): its abandoned staging folders, and on a format without a log its files no commit lists.
    Returns the files removed."""
    staging_dirs = writer.staging_dirs()
    on_disk = writer.files(before)
    busy = {r.batch_id for r in store.runs(status="running") if r.batch_id} | store.holders()
    listed = {f.path for f in store.table_files(name)}
    for commit in staging_dirs:
        if not any(commit == b or commit.startswith(f"{b}-") for b in busy):
            writer.discard(commit, keep=listed)
    if writer.has_log:  # the format's log may still list older files (time travel); its `vacuum` removes them
        return []
    stray = [
        rel
        for rel in on_disk
        if rel not in listed and not any(rel.rsplit("/", 1)[-1].startswith(f"part-{b}-") for b in busy)
    ]
    if stray and readers_of(store, name):  # checked after the catalog: a reader that began later reads a list
        return []  # without these files; one that began earlier may still read them
    if stray:
        store.sync()  # the commits that stopped listing them outlive a power cut first
        writer.delete(stray)
        log.info("table %s: removed %d files no commit lists", name, len(stray))
    return stray
