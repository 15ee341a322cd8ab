"""One commit sequence for every writer of tables: a batch of landed files, a compaction, a quarantine replay, and
the child tables of a batch all go through `TableTransaction`.

    with TableTransaction(store, commit_id, hold="maintain:sales") as tx:
        staging = tx.stage(writer)                        # local scratch the engine writes into
        ... engine writes files into `staging` ...
        tx.point("after_write")
        added = tx.publish(writer, staged_files)          # into the table's folder, not yet part of the table
        tx.commit_format(writer, change)                  # the format's own log (Delta); nothing for Parquet
        tx.commit(catalog_commit, run_results)            # the state store: catalog and runs, one transaction
        tx.retire(writer, "sales", replaced)              # after the commit: files no version needs any more

The order is the contract: files are published before any commit that names them; the format's log (which
cannot be taken back) commits before the catalog; files a commit replaced are deleted only after the catalog
commit, and only when no reader still reads them. If the block fails before the catalog commit, every file it
published is removed again (a Delta commit that reached the log keeps its files: the retry finds it there); the
staging folders go either way. A process killed anywhere leaves what recovery repairs: published files no commit
lists (removed by name), or a format commit the catalog lacks (found by its application ids and recorded).

A format commit cannot be taken back, so a transaction that is not a run (a compaction, a quarantine replay:
`journal=True`) first writes what its catalog commit will be into the table's folder
(`_landfall/pending/<commit id>.json`), and marks its format commit with the application id
`commit:<commit id>`. If the process dies between the two commits, `finish_pending` (run by recovery before it
sweeps, and by the next transaction that holds the table) finds the intent: when the log has the commit, the
catalog follows it; otherwise the intent goes and the published files are swept. A run's table and child tables
need no journal (each landed file version's application id in the log leads the retry to its commit, see
`landfall.replay`); the rows its rules set aside (the quarantine, a Parquet table) are journaled.

Crash points (`landfall.testing.faults`, for kill -9 tests) sit at each step: `after_write`, `after_publish`,
`after_child_commit` / `after_table_commit`, `after_commit`. Compaction and replay pass the same points as runs.

On an object store whose server ignores conditional writes (`If-None-Match`), two hosts committing the same
Delta version would overwrite each other's commit; such commits are serialized per table through a lease in the
state store (`commit:<table location>`) instead (see `DeltaTable.commit_lock`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import Any

from msgspec.structs import replace

from landfall.engines.base import StagedFile
from landfall.errors import ConcurrentChange
from landfall.redaction import redact
from landfall.state.base import DataFile, RunResult, StateStore, TableCommit, holding
from landfall.tables.base import Staging, TableChange, TableWriter, staging
from landfall.testing.faults import crash_point

log = logging.getLogger("landfall.tables")

COMMIT_LOCK_WAIT = 60.0  # seconds a format commit waits for another host's commit to the same table


class TableTransaction:
    """The commit sequence of one commit id across one or more tables (a table, its children, its quarantine).

    `hold` names a lease taken for the whole transaction (compactions and replays of a table exclude each other;
    crash recovery leaves a held commit alone); `reads` takes a reader lease on those tables first, so the files
    the transaction reads stay until it is done (see `landfall.tables.readers`)."""

    def __init__(
        self,
        store: StateStore,
        commit_id: str,
        *,
        hold: str | None = None,
        hold_seconds: float = 60.0,
        reads: Sequence[str] | None = None,
        reader: str | None = None,
        journal: bool = False,
    ) -> None:
        self.store = store
        self.commit_id = commit_id
        self._hold = hold
        self._hold_seconds = hold_seconds
        self._journal = journal
        self._reads = list(reads) if reads else None
        self.reader = reader  # the reader lease this transaction runs under (its own, or its caller's)
        self._stack = ExitStack()
        self._areas: list[Staging] = []
        self._staged: list[TableWriter] = []  # writers with a staging area (which discards on failure)
        self._published: list[TableWriter] = []
        self._retire: list[tuple[TableWriter, str, list[str]]] = []
        self.committed = False

    def __enter__(self) -> TableTransaction:
        self._stack.__enter__()
        self._stack.callback(self._finish)  # runs last, after the staging areas and leases below are let go
        try:
            if self._hold is not None:
                held = self._stack.enter_context(
                    holding(self.store, self._hold, self.commit_id, self._hold_seconds, fenced=True)
                )
                if not held:
                    table = self._hold.partition(":")[2] or self._hold
                    raise ConcurrentChange(
                        f"table `{table}`: another compaction or replay of it is in progress; try again"
                    )
            if self._reads:
                from landfall.tables.readers import reading

                self.reader = self._stack.enter_context(reading(self.store, self._reads))
        except BaseException:
            self._stack.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        # staging areas discard what they published unless committed, and go; leases are let go
        return bool(self._stack.__exit__(kind, exc, tb))

    def _finish(self) -> None:
        if self.committed:  # files the commit replaced, once no reader needs them
            from landfall.tables.readers import retire

            for writer, table, paths in self._retire:
                retire(self.store, writer, table, paths, mine=self.reader)
            return
        for writer in self._published:  # published into a table with no staging area of this transaction
            if not any(writer is w for w in self._staged):
                writer.discard(self.commit_id, keep=set())

    # --- the steps -----------------------------------------------------------------------------------------

    def stage(self, writer: TableWriter) -> str:
        """A local folder for this commit's files of `writer`'s table (see `TableWriter.staging_dir`)."""
        area = self._stack.enter_context(staging(writer, self.commit_id))
        self._areas.append(area)
        self._staged.append(writer)
        return area.path

    def point(self, name: str) -> None:
        """A crash point between steps (a no-op unless a kill -9 test asks for it)."""
        crash_point(name)

    def publish(self, writer: TableWriter, files: list[StagedFile]) -> list[DataFile]:
        """Put staged files in place in the table's folder (renamed locally, uploaded under their final names on
        an object store); they are not part of the table until a commit lists them."""
        if not any(writer is w for w in self._published):
            self._published.append(writer)
        try:
            published = writer.publish(files)
        except FileNotFoundError:
            # a file moved into place is gone: recovery removes a stalled transaction's files once its lease ran out
            self._hold_kept("while its files were published")
            raise
        crash_point("after_publish")
        return published

    def _hold_kept(self, when: str) -> None:
        """Renew the transaction's lease (`hold`), or raise `ConcurrentChange` when it ran out `when`: the process
        stalled past it, and recovery may have removed the published files meanwhile; nothing is committed."""
        if self._hold is not None and not self.store.renew(self._hold, self.commit_id, self._hold_seconds):
            raise ConcurrentChange(
                f"`{self._hold}`: the lease ran out {when} (the process stalled past it); nothing was committed"
            )

    def commit_format(self, writer: TableWriter, change: TableChange, *, point: str = "after_table_commit") -> Any:
        """Commit to the table format's own log (Delta), before the catalog; a no-op for Parquet. Serialized per
        table through the state store where the object store cannot refuse a second writer of one version."""
        if writer.has_log and getattr(writer, "commit_lock", False):
            with self._commit_lock(writer):
                version = writer.commit(change)
        else:
            version = writer.commit(change)
        crash_point(point)  # Parquet (no log: its commit does nothing) passes it too, just before the catalog
        return version

    def commit(
        self,
        catalog: TableCommit | None,
        results: Sequence[RunResult] = (),
        *,
        also: Sequence[TableCommit] = (),
        log: tuple[TableWriter, TableChange] | None = None,
        journal: Sequence[TableCommit] | None = None,
    ) -> None:
        """The format commit `log` (if any), then the catalog commit: the tables' new file lists and the runs'
        results, in one state-store transaction. From here on the published files are the table's and are never
        discarded.

        With a format log, the catalog commits a crash between the two commits would lose are journaled first:
        all of them for a `journal=True` transaction, or those given as `journal` (a run's quarantine: its table
        and children are found again through the log's application ids)."""
        self._hold_kept("before the commit")
        intent = None
        if log is not None and log[0].has_log and catalog is not None:
            # what the job read is checked where the commit can still be refused: by the format before its log
            # commit (`TableChange.read`, `read_columns`), not by the catalog after it
            catalog = replace(catalog, read=None, schema_of=None)
        if log is not None:
            writer, change = log
            kept = [c for c in (catalog, *also) if c is not None] if self._journal else list(journal or [])
            if kept and writer.has_log:
                intent = _intent_key(self.commit_id)
                change.app_ids = [*change.app_ids, commit_marker(self.commit_id)]
                writer.storage.write_bytes(intent, _dump(kept), sync=True)  # on disk before the log commit it names
            self.commit_format(writer, change)
        self.store.commit(catalog, list(results), also=list(also))
        for area in self._areas:
            area.committed = True
        self.committed = True
        crash_point("after_commit")
        if intent is not None and log is not None:
            self.store.sync()  # the catalog commit outlives a power cut before its intent goes
            log[0].storage.delete([intent])

    def retire(self, writer: TableWriter, table: str, paths: Sequence[str]) -> None:
        """After the catalog commit (when the transaction ends): delete files the commit removed from `table`,
        unless a reader that began before the commit still reads them (recovery's sweep removes them later)."""
        if paths:
            self._retire.append((writer, table, list(paths)))

    def hold_to_the_end(self, name: str, what: str) -> None:
        """Take the lease `name` (waiting while another holder has it) and keep it until the transaction ends;
        `ConcurrentChange` (the batch runs again later) when `what` held it for `COMMIT_LOCK_WAIT`. Its holder is
        not the commit id, which tells recovery a transaction is still in flight (`finish_pending`): one killed
        while holding it leaves its journaled commit to be settled, and the lease to the next taker at once when
        its process is provably gone (`processes.process_gone`), else when it runs out."""
        from landfall.processes import worker_id

        self._stack.enter_context(self._waiting_for(name, what, f"{name}|{self.commit_id}|{worker_id()}"))

    @contextmanager
    def _waiting_for(self, name: str, what: str, holder: str | None = None) -> Iterator[None]:
        from landfall.processes import process_gone

        deadline = time.monotonic() + COMMIT_LOCK_WAIT
        while True:
            with holding(self.store, name, holder or self.commit_id, seconds=30.0) as held:
                if held:
                    yield
                    return
            gone = [h for h in self.store.holders() if h.startswith(f"{name}|") and process_gone(h.rpartition("|")[2])]
            for dead in gone:  # a process of this machine killed while it held the lease
                self.store.let_go(name, dead)
            if gone:
                continue
            if time.monotonic() > deadline:
                raise ConcurrentChange(f"{what} has held it for {COMMIT_LOCK_WAIT:.0f} s; retrying later")
            time.sleep(0.05)

    def _commit_lock(self, writer: TableWriter) -> AbstractContextManager[None]:
        return self._waiting_for(
            f"commit:{writer.location}", f"`{redact(writer.location)}`: another commit to this table"
        )


# --- the journal of commits that are not runs -------------------------------------------------------------------

PENDING = "_landfall/pending"


def commit_marker(commit_id: str) -> str:
    """The application id that marks a journaled transaction's commit in a format's log."""
    return f"commit:{commit_id}"


def _intent_key(commit_id: str) -> str:
    return f"{PENDING}/{commit_id}.json"


def _dump(commits: list[TableCommit]) -> bytes:
    import msgspec

    return msgspec.json.encode(commits, enc_hook=str)


def _load(data: bytes) -> list[TableCommit]:
    import json

    from landfall.state.base import SourceRows

    out = []
    for doc in json.loads(data):
        doc["schema"] = [tuple(col) for col in doc["schema"]]
        doc["add"] = [DataFile(**f) for f in doc["add"]]
        doc["sources"] = [SourceRows(**r) for r in doc["sources"]]
        out.append(TableCommit(**doc))
    return out


def finish_pending(store: StateStore, writer: TableWriter, table: str) -> list[str]:
    """Settle the journaled transactions of `table` that a process left between its format commit and its catalog
    commit (their holder's lease is gone): the catalog follows the log where the log has the commit; the intent
    goes either way. Returns the commit ids whose catalog side was applied now."""
    if not writer.has_log:
        return []
    intents = [key for key, _ in writer.storage.list(PENDING) if key.endswith(".json")]
    if not intents:
        return []
    live = store.holders()
    running = {r.batch_id for r in store.runs(status="running") if r.batch_id}
    applied = []
    for key in intents:
        commit_id = key.rsplit("/", 1)[-1].removesuffix(".json")
        if commit_id in live or any(commit_id == b or commit_id.startswith(f"{b}-") for b in running):
            continue  # still in flight: a compaction or replay holding its lease, a batch still running
        try:
            commits = _load(writer.storage.read_bytes(key))
        except FileNotFoundError:  # its holder ended meanwhile, and took it away
            continue
        if writer.committed([commit_marker(commit_id)]) and not _in_catalog(store, commits[0]):
            store.commit(commits[0], [], also=commits[1:])
            applied.append(commit_id)
            log.warning(
                "table %s: commit %s reached the table's log but not the catalog (the process stopped between "
                "them); the catalog now follows the log",
                table,
                commit_id,
            )
        store.sync()
        writer.storage.delete([key])
    return applied


def _in_catalog(store: StateStore, commit: TableCommit) -> bool:
    files = store.table_files(commit.table) if store.find_table(commit.table) else []
    if commit.add:
        return any(f.commit_id == commit.commit_id for f in files)
    listed = {f.path for f in files}
    return not any(p in listed for p in commit.remove)
