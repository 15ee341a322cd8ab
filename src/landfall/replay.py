"""Replaying commits that reached a table's own log: files whose commit a table format (Delta) recorded before a
crash, or before the state store was lost or replaced, are recorded from that log and not written again. A file
version's marker in the log (`app_id`) is its key, time, ETag and content hash, so it means the same to every state
store."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from landfall.config import Workflow
from landfall.engines.base import Source
from landfall.outcomes import Outcome
from landfall.schema import grown
from landfall.state.base import DataFile, Run, RunResult, SourceRows, StateStore, TableCommit
from landfall.storage import Zones
from landfall.tables import open_table
from landfall.tables.base import TableWriter
from landfall.tables.transaction import finish_pending
from landfall.types import neutral

if TYPE_CHECKING:
    from landfall.runner import Runner


def replay_committed(
    runner: Runner, wf: Workflow, writer: TableWriter, items: list[tuple[Run, Source, str]]
) -> list[tuple[Run, Source, str]]:
    """Files whose commit reached the table's own log (before a crash, or before the state store was lost or
    replaced): record them, don't write again. The marker is the file version's own (`app_id`), so it means
    the same thing to every state store. Items whose hash is not known yet are checked later."""
    if not writer.has_log:
        return items
    markers = {run.run_id: app_id(run, digest) for run, _, digest in items if isinstance(digest, str)}
    done = writer.committed(list(markers.values()))
    if not done:
        return items
    rest = []
    replays: dict[str, tuple[dict, list[RunResult]]] = {}
    for run, src, digest in items:
        marker = markers.get(run.run_id)
        meta = done.get(marker) if marker else None
        if meta is None:
            rest.append((run, src, digest))
            continue
        prior = next((r for r in meta.get("runs", []) if r.get("app_id") == marker), {})
        res = RunResult(
            run_id=run.run_id,
            status="succeeded",
            worker=run.worker,
            rows_in=prior.get("rows_in"),
            rows_out=prior.get("rows_out"),
            bytes=src.size,
            output_files=prior.get("outputs", []),
            content_hash=digest,
            note=f"committed by an earlier attempt in table version {meta.get('version')}; recorded, not written again",
            supersedes=wf.replaces_versions,  # held to the same load history as the commit it replays
        )
        replays.setdefault(meta["commit_id"], (meta, []))[1].append(res)
    for meta, results in replays.values():
        table = runner.store.find_table(wf.write.table)
        added, removed = recorded_changes(runner.store, writer, wf.write.table, [meta])
        commit = TableCommit(
            table=wf.write.table,
            location=writer.location,
            format=writer.format,
            workflow=wf.name,
            schema=grown(table, pairs(meta["schema"])),
            commit_id=meta["commit_id"],
            partition_by=[p.name for p in wf.write.partition_by],
            add=added,
            remove=removed,
            sources=sources_of(meta, added),
        )
        recorded = {r.run_id for r in results}
        runner.store.commit(
            commit,
            results,
            also=children_committed(runner.store, runner.zones, wf, [m for r, m in markers.items() if r in recorded]),
        )
        finish_pending(runner.store, writer, wf.write.table)  # its quarantined rows, journaled beside the table
        for res in results:
            run = next(r for r, _, _ in items if r.run_id == res.run_id)
            runner.done(Outcome(run, "succeeded", rows_out=res.rows_out, result=res))
    return rest


def children_committed(store: StateStore, zones: Zones, wf: Workflow, markers: list[str]) -> list[TableCommit]:
    """The child tables' side of a commit found in the parent's log: their catalog entries, from their logs
    (children are committed before their parent)."""
    out = []
    for name in wf.child_tables.values():
        writer = open_table(wf.write.format, zones.table(name))
        found = writer.committed(markers) if writer.has_log else {}
        metas = list({m["commit_id"]: m for m in found.values()}.values())
        if not metas:
            continue
        table = store.find_table(name)
        added, removed = recorded_changes(store, writer, name, metas)
        # and what an earlier attempt's child commit took out (its parent's commit refused) and this one kept out
        taken = writer.attempted(markers)[1] - set(removed)
        if taken and (listed := {f.path for f in store.table_files(name, paths=sorted(taken))}):
            removed = sorted({*removed, *(listed - (writer.current_paths() or set()))})
        out.append(
            TableCommit(
                table=name,
                location=writer.location,
                format=writer.format,
                workflow=wf.name,
                schema=grown(table, pairs(metas[0]["schema"])),
                partition_by=[],
                commit_id=metas[0].get("commit_id", ""),
                add=added,
                remove=removed,
                sources=[s for m in metas for s in sources_of(m, added)],
            )
        )
    return out


def recorded_changes(
    store: StateStore, writer: TableWriter, table: str, metas: list[dict]
) -> tuple[list[DataFile], list[str]]:
    """What recording the commits `metas` (found in the table's log) changes in the catalog: the files they added
    that the table still holds and the catalog lacks, and the files they removed that it still lists. Nothing
    else: another process may have committed since the log was read, and its files stay."""
    added: dict[str, DataFile] = {}
    removed: set[str] = set()
    for meta in metas:
        adds, removes = writer.changes(int(meta["version"]))
        added.update((f.path, f) for f in adds)
        removed.update(removes)
    listed = {f.path for f in store.table_files(table, paths=[*added, *removed])}  # only this commit's files
    return [f for p, f in added.items() if p not in listed], sorted(removed & listed)


def sources_of(meta: dict, added: list[DataFile]) -> list[SourceRows]:
    """The lineage a commit's metadata records for the files `added` (the rest are in the catalog already)."""
    paths = {f.path for f in added}
    return [SourceRows(**s) for s in meta.get("sources", []) if s.get("path") in paths]


def app_id(run: Run, content_hash: str) -> str:
    """The application transaction id of a landed file version in a table format's log: its key, modification
    time, ETag and content, so it names the same version for any state store (a local row id would start again
    with a new one). Not its key and content alone: a file changed back to what it held before (`A`, `B`, then
    `A` again) is a new version, whose rows replace `B`'s; taken for `A`'s first version, already committed, it
    was recorded and not written, `B`'s rows stayed, and the run was put back in the queue again and again."""
    version = f"{run.file_key}\0{run.mtime!r}\0{run.etag}\0{content_hash}"
    return "landfall:" + hashlib.sha256(version.encode()).hexdigest()


def pairs(schema: list) -> list[tuple[str, str]]:
    """A schema from a table format's commit metadata (types written before they were neutral are DuckDB's)."""
    return [(str(n), neutral(str(t))) for n, t in schema]
