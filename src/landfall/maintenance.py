"""Table upkeep: compaction of small files, vacuum, history. Compaction commits like any run (remove the small
files, add the large ones, lineage kept), so a concurrent commit is never lost: if another commit changed the
files it read, it discards its work and tries again later."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from landfall import partitions
from landfall.config import ParquetFiles, Settings, parse_size
from landfall.engines.base import Engine
from landfall.errors import ConcurrentChange, ConfigError, LandfallError
from landfall.state.base import DataFile, SourceRows, StateStore, TableCommit, new_id
from landfall.storage import Zones
from landfall.tables import open_table
from landfall.tables.base import TableChange, TableWriter
from landfall.tables.readers import check_listed, reading
from landfall.tables.transaction import TableTransaction, finish_pending

log = logging.getLogger("landfall.maintenance")


@dataclass
class OptimizeResult:
    table: str
    partitions: int = 0
    files_removed: int = 0
    files_added: int = 0
    skipped: list[str] = field(default_factory=list)  # partitions left for later (a concurrent change)


def plan(files: list[DataFile], min_files: int, target: int, types: dict[str, str]) -> dict[str, list[DataFile]]:
    """Partitions worth compacting: at least `min_files` files smaller than half the target size. A partition is
    its values (`partitions.by_value`, the table's column `types`): a widened column's `n=5` and `n=5.0` are one."""
    small = [f for f in files if f.bytes < target // 2]
    return {k: v for k, v in partitions.by_value(small, types).items() if len(v) >= min_files}


def optimize(
    store: StateStore,
    engine: Engine,
    name: str,
    *,
    min_files: int = 2,
    target_file_size: int | str = "128MB",
    zones: Zones | None = None,
    lease_seconds: float = 60.0,
    files_as: ParquetFiles = ParquetFiles(),
) -> OptimizeResult:
    """Rewrite each partition's small files into files of about `target_file_size`, written as `files_as` says
    (the table's `write.compression` and `write.parquet_version`)."""
    table = store.table(name)
    target = parse_size(target_file_size)
    writer = _writer(table.format, table.location, zones)
    engine.use_storage(writer.storage)
    finish_pending(store, writer, name)  # a compaction or replay that stopped between its two commits
    result = OptimizeResult(table=name)
    with reading(store, [name]) as lease:  # the small files stay while they are read, whoever replaces them
        for label, group in plan(store.table_files(name), min_files, target, dict(table.schema)).items():
            try:
                added = _compact(
                    store,
                    engine,
                    writer,
                    table.name,
                    table.schema,
                    table.partition_by,
                    group,
                    target,
                    lease,
                    lease_seconds,
                    files_as,
                )
            except ConcurrentChange as exc:
                log.info("table %s partition %s: %s", name, label or "(none)", exc)
                result.skipped.append(label)
                continue
            result.partitions += 1
            result.files_removed += len(group)
            result.files_added += added
    return result


def _compact(
    store: StateStore,
    engine: Engine,
    writer: TableWriter,
    name: str,
    schema: list[tuple[str, str]],
    partition_by: list[str],
    group: list[DataFile],
    target: int,
    reader: str | None = None,
    lease_seconds: float = 60.0,
    files_as: ParquetFiles = ParquetFiles(),
) -> int:
    """One partition's small files into few large ones, committed like any run (see `TableTransaction`)."""
    hold = f"maintain:{name}"
    with TableTransaction(store, new_id("o"), hold=hold, hold_seconds=lease_seconds, reader=reader, journal=True) as tx:
        area = tx.stage(writer)
        try:
            files = [(f"{writer.location}/{f.path}", f.path) for f in group]
            staged = engine.compact(files, area, tx.commit_id, target, files_as)
        except Exception as exc:
            check_listed(store, name, [f.path for f in group], exc, writer.storage)
            raise
        for s in staged:
            s.partition = dict(group[0].partition)
        tx.point("after_write")
        counts = engine.source_counts([s.path for s in staged])  # read where they were written, before publishing
        rows_of = {s.relpath: counts.get(s.path, {}) for s in staged}
        published = tx.publish(writer, staged)
        old_sources = [src for f in group for src in store.file_sources(name, f.path)]
        lineage = {s.source_key: (s.file_id, s.run_id) for s in old_sources}
        sources = [
            SourceRows(path=p.path, source_key=key, file_id=lineage[key][0], run_id=lineage[key][1], rows=n)
            for p in published
            for key, n in rows_of.get(p.path, {}).items()
            if key in lineage
        ]
        change = TableChange(
            commit_id=tx.commit_id,
            operation="OPTIMIZE",
            add=published,
            remove=group,
            schema=None,
            partition_by=partition_by,
            data_change=False,
            metadata={"files_added": len(published), "files_removed": len(group)},
        )
        tx.commit(
            TableCommit(
                table=name,
                location=writer.location,
                format=writer.format,
                workflow=None,
                schema=schema,
                partition_by=partition_by,
                commit_id=tx.commit_id,
                add=published,
                remove=[f.path for f in group],
                sources=sources,
            ),
            log=(writer, change),
        )
        tx.retire(writer, name, [f.path for f in group])
    return len(published)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> float:
    """`7d` -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"duration `{text}`: expected a number and a unit: `s`, `m`, `h`, `d` or `w` (e.g. `7d`)")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def vacuum(store: StateStore, name: str, retain: str = "7d", *, zones: Zones | None = None) -> list[str]:
    """Delete files no current version needs that are older than `retain` (Delta: that left its log longer
    ago), never those of a commit in flight, whatever their age."""
    from landfall.recovery import sweep_table
    from landfall.tables.readers import CLOCK_MARGIN, oldest_reader

    table = store.table(name)
    writer = _writer(table.format, table.location, zones)
    seconds = parse_duration(retain)
    if writer.has_log and (began := oldest_reader(store, name)) is not None:
        # files a live reader began with stay (Parquet: `sweep_table`), even if this clock was set back meanwhile
        seconds = max(seconds, store.now() - began, CLOCK_MARGIN)
    return writer.vacuum(seconds) + sweep_table(store, name, writer, before=time.time() - seconds)


def auto_compact_loop(
    settings: Settings,
    store: StateStore,
    stop: threading.Event,
    every: float = 10.0,
    on_done: Callable[[OptimizeResult], None] | None = None,
) -> None:
    """`landfall up`'s background compaction: tables whose workflow sets `compaction`, past `min_files`.
    `on_done` is told of each compaction that committed."""
    from landfall.engines import open_engine

    engine = open_engine("duckdb", settings)
    zones = Zones(settings)
    try:
        while not stop.wait(every):
            for wf in settings.workflows:
                c = wf.write.compaction
                if c is None or not c.enabled:
                    continue
                try:
                    table = store.find_table(wf.write.table)
                    files = store.table_files(wf.write.table) if table else []
                    if not files or not plan(files, c.min_files, parse_size(c.target_file_size), dict(table.schema)):
                        continue
                    res = optimize(
                        store,
                        engine,
                        wf.write.table,
                        min_files=c.min_files,
                        target_file_size=c.target_file_size,
                        zones=zones,
                        lease_seconds=settings.lease_seconds,
                        files_as=wf.write.files,
                    )
                    log.info("compacted %s: %d files into %d", wf.write.table, res.files_removed, res.files_added)
                    if on_done and res.partitions:
                        on_done(res)
                except LandfallError as exc:
                    log.debug("compaction of %s skipped: %s", wf.write.table, exc)
                except Exception:
                    log.exception("compaction of %s failed; ingestion goes on", wf.write.table)
    finally:
        engine.close()


def history(store: StateStore, name: str, *, zones: Zones | None = None, limit: int | None = None) -> list[Any]:
    table = store.table(name)
    return _writer(table.format, table.location, zones).history(limit)


def _writer(fmt: str, location: str, zones: Zones | None) -> TableWriter:
    return open_table(fmt, zones.at(location) if zones else location)
