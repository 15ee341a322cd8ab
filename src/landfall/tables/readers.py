"""Readers and the files commits replace: a reader (a query, a merge, a rewrite) reads a table's file list from
the catalog at one moment and then reads those files; a commit that replaces some of them must not delete them
while such a reader may still read them.

A reader holds a lease in the state store (`read:<start>:<tables>:<id>:<worker id>`, the id its own: two readers
of one process that begin in the same millisecond hold two leases) from before it reads the file list until it is
done (a reader whose process is gone no longer counts). A commit deletes the files it replaced
only when no reader that began before the commit still holds its lease; otherwise they stay, listed by no
commit, and recovery's sweep deletes them once no reader of that table is left. Delta never deletes at commit
(its log keeps old versions until `vacuum`, which keeps what the log dropped since the oldest live reader of the
table began, whatever the retention). A reader that starts after the
commit reads the new list and never needs the old files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from landfall.errors import BrokenTable, ConcurrentChange
from landfall.processes import process_gone, worker_id
from landfall.state.base import StateStore, holding, new_id
from landfall.storage import Storage
from landfall.tables.base import TableWriter

log = logging.getLogger("landfall.tables")

PREFIX = "read:"
ALL = "*"
CLOCK_MARGIN = 2.0  # seconds: how far a host's reading of the state store's clock may be off (`StateStore.now`)


@contextmanager
def reading(store: StateStore, tables: Sequence[str] | None = None, *, seconds: float = 60.0) -> Iterator[str]:
    """Hold a reader lease on `tables` (None: every table) while the block runs; yields its name."""
    scope = ",".join(sorted(set(tables))) if tables else ALL
    name = f"{PREFIX}{store.now():.3f}:{scope}:{new_id()}:{worker_id()}"  # the store's clock: `StateStore.now`
    with holding(store, name, name, seconds):
        yield name


def readers_of(store: StateStore, table: str, *, began_before: float | None = None, mine: str | None = None) -> int:
    """How many live reader leases cover `table` (and began before `began_before`, give or take the clock
    margin), not counting `mine`."""
    return sum(began_before is None or began < began_before + CLOCK_MARGIN for began in _readers(store, table, mine))


def oldest_reader(store: StateStore, table: str) -> float | None:
    """When the oldest live reader of `table` began (less the clock margin), or None."""
    began = min(_readers(store, table), default=None)
    return None if began is None else began - CLOCK_MARGIN


def _readers(store: StateStore, table: str, mine: str | None = None) -> Iterator[float]:
    """When each live reader lease covering `table` began, `mine` left out."""
    for holder in store.holders():
        if not holder.startswith(PREFIX) or holder == mine:
            continue
        try:
            start, scope, _, worker = holder[len(PREFIX) :].split(":", 3)
            began = float(start)
        except ValueError:
            continue
        if scope != ALL and table not in scope.split(","):
            continue
        if process_gone(worker):  # killed mid-read: it reads nothing any more
            continue
        yield began


def retire(
    store: StateStore, writer: TableWriter, table: str, paths: Sequence[str], *, mine: str | None = None
) -> list[str]:
    """Call after the catalog commit that removed `paths` from `table`: delete them now if no reader that began
    before the commit still reads the table (returns them), else leave them for recovery's sweep."""
    if not paths or not writer.removes_files_at_commit():
        return []
    committed_at = store.now()
    waiting = readers_of(store, table, began_before=committed_at, mine=mine)
    if waiting:
        log.debug("table %s: %d replaced files kept for %d readers", table, len(paths), waiting)
        return []
    store.sync()  # the commit that replaced them outlives a power cut first
    writer.delete(list(paths))
    return list(paths)


def check_listed(
    store: StateStore, table: str, paths: Sequence[str], exc: BaseException, storage: Storage | None = None
) -> None:
    """Reading table files failed: if the catalog no longer lists some of them, another commit replaced them
    meanwhile, and the work is tried again on the new state (`ConcurrentChange`); if it lists them all but one is
    gone from `storage` (the table's), the table lost it (`BrokenTable`, naming it). Neither is the file's fault."""
    if not paths:
        return
    listed = {f.path for f in store.table_files(table, paths=list(paths))}
    gone = [p for p in paths if p not in listed]
    if gone:
        raise ConcurrentChange(
            f"table `{table}`: `{gone[0]}` was replaced by another commit while this one read it; retrying"
        ) from exc
    try:
        lost = storage.missing(list(paths)) if storage is not None else []
    except OSError:  # the store is away: the error says so
        return
    if lost:
        raise lost_file(table, lost[0], storage) from exc  # type: ignore[arg-type]


def lost_file(table: str, path: str, storage: Storage) -> BrokenTable:
    """The error of reading `table`, which the catalog says holds the file `path`, gone from `storage`."""
    return BrokenTable(
        f"table `{table}` cannot be read: its file `{path}` is gone from {storage.label} (removed outside "
        f"landfall?); `landfall tables rebuild {table}` catalogs the table as its folder holds it now and loads "
        f"again the files whose rows it lost (`landfall tables reload {table}`: the whole table again)"
    )
