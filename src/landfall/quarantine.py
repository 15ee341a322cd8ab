"""Replaying quarantined rows after a workflow is fixed: the rows that now pass its rules are loaded, once, in
the same commit that takes them out of the quarantine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from landfall.catalog import read_again
from landfall.config import Settings, Workflow
from landfall.engines.base import Engine, Job, Source
from landfall.errors import ConfigError, NoSuchTable
from landfall.state.base import SourceRows, StateStore, TableCommit, new_id
from landfall.storage import Zones
from landfall.tables import open_table
from landfall.tables.base import TableChange
from landfall.tables.transaction import TableTransaction, finish_pending


@dataclass
class ReplayResult:
    table: str
    replayed: int
    still_quarantined: int
    replay_id: str


def replay(
    settings: Settings,
    store: StateStore,
    engine: Engine,
    table: str,
    run_id: str | None = None,
    *,
    zones: Zones | None = None,
) -> ReplayResult:
    qname = f"quarantine.{table}"
    if store.find_table(qname) is None:
        raise NoSuchTable(f"table `{table}` has no quarantine (`{qname}`)")
    wf = next((w for w in settings.workflows if w.write.table == table), None)
    if wf is None:
        raise ConfigError(f"no workflow writes table `{table}`; the replay checks rows with that workflow's rules")
    tables = zones or Zones(settings)

    def attempt() -> ReplayResult:
        # compactions of the table wait; crash recovery keeps off; the files it reads stay until it is done
        with TableTransaction(
            store,
            new_id("q"),
            hold=f"maintain:{table}",
            hold_seconds=settings.lease_seconds,
            reads=[table, qname],
            journal=True,
        ) as tx:
            return _replay(tx, store, engine, tables, wf, table, run_id)

    return read_again(attempt)  # a load committed to the table meanwhile: read it again


def _replay(
    tx: TableTransaction, store: StateStore, engine: Engine, zones: Zones, wf: Workflow, table: str, run_id: str | None
) -> ReplayResult:
    qname = f"quarantine.{table}"
    replay_id = tx.commit_id
    target = store.table(table)
    writer = open_table(target.format, zones.at(target.location))
    finish_pending(store, writer, table)  # a replay that stopped between its two commits: before reading
    qfiles = store.table_files(qname)
    if not qfiles:  # nothing is quarantined (or an earlier replay took it all)
        return ReplayResult(table, 0, 0, replay_id)
    qwriter = open_table("parquet", zones.quarantined(table))
    for w in (writer, qwriter):
        engine.use_storage(w.storage)
    area = tx.stage(writer)
    tx.stage(qwriter)
    current = {f.path: f for f in store.table_files(table)}
    job = Job(
        workflow=wf,
        sources=[Source(key="(quarantine)", path="", run_id=replay_id, file_id=0)],
        staging=area,
        commit_id=replay_id,
        ingested_at=datetime.now(UTC),
        table_schema=target.schema,
        partition_names=[p.name for p in wf.write.partition_by],
        table_files=[(f"{target.location}/{f.path}", f.path) for f in current.values()],
    )
    out = engine.replay(job, [f"{qwriter.location}/{f.path}" for f in qfiles], run_id)
    if not out.passed:
        return ReplayResult(table, 0, out.kept, replay_id)
    tx.point("after_write")
    added = tx.publish(writer, out.files)
    kept_files = tx.publish(qwriter, out.quarantine)
    lineage = {s.source_key: (s.file_id, s.run_id) for f in qfiles for s in store.file_sources(qname, f.path)}
    counts = engine.source_counts([f"{writer.location}/{f.path}" for f in added])
    sources = [
        SourceRows(path=f.path, source_key=k, file_id=lineage.get(k, (0, ""))[0], run_id=replay_id, rows=n)
        for f in added
        for k, n in counts.get(f"{writer.location}/{f.path}", {}).items()
    ]
    qcounts = engine.source_counts([f"{qwriter.location}/{f.path}" for f in kept_files])
    qsources = [
        SourceRows(
            path=f.path, source_key=k, file_id=lineage.get(k, (0, ""))[0], run_id=lineage.get(k, (0, ""))[1], rows=n
        )
        for f in kept_files
        for k, n in qcounts.get(f"{qwriter.location}/{f.path}", {}).items()
    ]
    # the rows it writes were checked (unique against the table) or merged against the files it read
    change = TableChange(
        commit_id=replay_id,
        operation="REPLAY",
        add=added,
        remove=[current[p] for p in out.replaced],
        schema=None,
        partition_by=target.partition_by,
        metadata={"replayed": out.passed},
        read=set(current),
    )
    tx.commit(
        TableCommit(
            table=table,
            location=target.location,
            format=target.format,
            workflow=wf.name,
            schema=target.schema,
            partition_by=target.partition_by,
            commit_id=replay_id,
            add=added,
            remove=out.replaced,
            sources=sources,
            read=sorted(current),
        ),
        also=[
            TableCommit(
                table=qname,
                location=qwriter.location,
                format="parquet",
                workflow=wf.name,
                schema=store.table(qname).schema,
                partition_by=[],
                commit_id=replay_id,
                add=kept_files,
                remove=[f.path for f in qfiles],
                sources=qsources,
            )
        ],
        log=(writer, change),
    )
    tx.retire(qwriter, qname, [f.path for f in qfiles])
    tx.retire(writer, table, out.replaced)
    return ReplayResult(table, out.passed, out.kept, replay_id)
