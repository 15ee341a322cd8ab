"""Running a leased batch of runs through their workflow: hash -> dedupe -> read/transform/write -> commit.

Many small files share one engine query; each keeps its own run record. If the shared query fails, every
file runs alone, so a bad file fails by itself with its own error and the others load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from landfall.config import Settings, Workflow
from landfall.engines.base import Engine, Job, Source, Staged, StagedFile
from landfall.errors import (
    BrokenTable,
    ConcurrentChange,
    ContentRace,
    InvalidInput,
    LandfallError,
    LeaseLost,
    StateError,
    StorageUnavailable,
    TableNotReady,
    Terminal,
)
from landfall.pools import pool
from landfall.redaction import redact
from landfall.schema import merged
from landfall.state.base import (
    Run,
    RunResult,
    SourceRows,
    StateStore,
    Table,
    TableCommit,
    backoff,
)
from landfall.storage import Zones, unreachable
from landfall.tables import open_table
from landfall.tables.base import TableChange, TableWriter
from landfall.tables.readers import check_listed
from landfall.tables.transaction import TableTransaction, finish_pending
from landfall.types import neutral

log = logging.getLogger("landfall.runner")


def content_hash(path: str) -> str:
    """SHA-256 of a local file's bytes (the load history's content key; CPUs hash it in hardware)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Outcome:
    """How a run ended, as recorded: `result` is what was committed for a succeeded or skipped run (rows, bytes,
    steps), `error` a failed or dead run's error; `ended_at` when it was recorded."""

    run: Run
    status: str
    error: str | None = None
    rows_out: int | None = None
    result: RunResult | None = None
    ended_at: float = field(default_factory=time.time)


@dataclass
class Runner:
    settings: Settings
    store: StateStore
    engines: Callable[[str], Engine]  # an engine by name, ready for the zones: see `Settings.engine_for`
    zones: Zones
    on_done: Callable[[Outcome], None] | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    broken: dict[str, str] = field(default_factory=dict)  # tables whose log disagrees with the catalog: why
    storage_failures: int = 0  # in a row: the next retry waits longer while the store is away

    def run_batch(self, runs: list[Run]) -> list[Outcome]:
        """Run a leased batch. A store that cannot be reached puts the runs back in the queue, later, without
        using up an attempt: the files are not at fault. A batch whose lease was taken back is dropped: nothing
        is recorded."""
        scratch = self.zones.landing.scratch("batch") if not self.zones.landing.is_local else None
        try:
            outcomes = self._run_batch(runs, scratch)
        except StorageUnavailable as exc:
            self._storage_away(runs, exc)
            return self.outcomes
        except LeaseLost as exc:  # this worker stalled past its lease; another has the runs now: drop quietly
            log.warning("%s; dropping the rest of batch %s", exc, runs[0].batch_id)
            return self.outcomes
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        self.storage_failures = 0
        return outcomes

    def _storage_away(self, runs: list[Run], exc: BaseException) -> None:
        self.storage_failures += 1
        delay = min(30.0, 0.5 * 2 ** min(self.storage_failures, 6))
        done = {o.run.run_id for o in self.outcomes}
        waiting = [r.run_id for r in runs if r.run_id not in done]
        log.warning(
            "storage unavailable (%s); %d runs retried in %.0f s without using an attempt",
            redact(str(exc)),
            len(waiting),
            delay,
        )
        self.store.defer(waiting, seconds=delay, worker=runs[0].worker)

    def _run_batch(self, runs: list[Run], scratch: str | None) -> list[Outcome]:
        wf = self.settings.workflow(runs[0].workflow or "")
        self.outcomes = []
        if wf.source is not None:  # fed by a table: each run reads the rows an upstream run wrote there
            from landfall.sources.tables import run_from_table

            return run_from_table(self, wf, runs)
        todo: list[tuple[Run, Source, str]] = []
        seen: dict[str, Run] = {}
        skipped: list[RunResult] = []
        later: list[str] = []
        if len(runs) == 1 and runs[0].size > HASH_ALONGSIDE_BYTES and self.zones.landing.is_local:
            return self._run_big(wf, runs[0], self._engine(wf, runs))
        hashed: list[tuple[Run, str, str]] = []
        fetched = self.zones.landing.fetch_many([(r.file_key, r.size) for r in runs], scratch or "")
        for run, got in zip(runs, fetched, strict=True):
            if isinstance(got, (OSError, InvalidInput)):  # gone, unreadable, or a link out of the zone
                if (gone := self._unreadable(run, wf, got)) is not None:
                    skipped.append(gone)
            elif isinstance(got, Exception):
                raise got
            else:
                path, digest = got
                hashed.append((run, path, self._content_key(run.file_key, digest)))
        known = self.store.find_duplicates(wf.name, {digest: run.file_id for run, _, digest in hashed})
        for run, path, digest in hashed:
            if digest in seen:  # same bytes as another file of this batch: decide once that one has committed
                later.append(run.run_id)
                continue
            dup = known.get(digest)
            if dup is not None and dup.file_id != run.file_id:
                skipped.append(
                    RunResult(
                        run_id=run.run_id,
                        status="skipped",
                        worker=run.worker,
                        content_hash=digest,
                        rows_in=0,
                        rows_out=0,
                        bytes=run.size,
                        note=f"same content as `{dup.file_key}` (run {dup.run_id})",
                    )
                )
                continue
            seen[digest] = run
            todo.append(
                (
                    run,
                    Source(key=run.file_key, path=path, run_id=run.run_id, file_id=run.file_id, size=run.size),
                    digest,
                )
            )
        worker = runs[0].worker
        if later:
            self.store.defer(later, seconds=0.2, worker=worker)
        if skipped:
            self.store.commit(None, skipped)
            for res in skipped:
                self._done(Outcome(next(r for r in runs if r.run_id == res.run_id), "skipped", result=res))
        if not todo:
            return self.outcomes
        batch_id = runs[0].batch_id or runs[0].run_id
        try:
            self._job(wf, todo, batch_id, self._engine(wf, runs))
        except (ContentRace, ConcurrentChange) as exc:  # look at the batch again on the new state
            log.info("batch deferred: %s", exc)
            self.store.defer([run.run_id for run, _, _ in todo], seconds=0.05, worker=worker)
        except StateError:
            raise  # the state store failed, not the files
        except Exception as exc:
            if unreachable(exc):
                raise _unavailable(exc) from exc
            if len(todo) == 1:
                self._fail(todo[0][0], wf, _message(exc, todo[0][0].file_key), todo[0][2], exc)
            else:
                log.info("batch of %d files failed (%s); running each file alone", len(todo), _short(exc))
                for i, item in enumerate(todo):
                    try:
                        self._job(wf, [item], f"{batch_id}-{i}", self._engine(wf, [item[0]]))
                    except (ContentRace, ConcurrentChange):
                        self.store.defer([item[0].run_id], seconds=0.05, worker=worker)
                    except StateError:
                        raise
                    except Exception as exc2:
                        if unreachable(exc2):
                            raise _unavailable(exc2) from exc2
                        self._fail(item[0], wf, _message(exc2, item[0].file_key), item[2], exc2)
        return self.outcomes

    def _unreadable(self, run: Run, wf: Workflow, exc: BaseException) -> RunResult | None:
        """A landed file that cannot be read. One that is gone because a rename replaced it (a writer that saves
        `x.csv.tmp` and renames it to `x.csv`) is skipped: the result to record. Anything else fails the run."""
        moved = self._renamed(run) if isinstance(exc, FileNotFoundError) else None
        if moved is None:
            gone = isinstance(exc, FileNotFoundError)
            why = f"`{run.file_key}`: gone from {self.zones.landing.label} before it was loaded" if gone else None
            self._fail(run, wf, why or _message(exc, run.file_key), None)
            return None
        return RunResult(
            run_id=run.run_id,
            status="skipped",
            worker=run.worker,
            rows_in=0,
            rows_out=0,
            bytes=run.size,
            note=f"renamed to `{moved}` before it was loaded (a writer's temporary name); that name is loaded",
        )

    def _renamed(self, run: Run) -> str | None:
        """The key a vanished landed file was renamed to: a file beside it with its size and modification time
        (a rename keeps both), or one whose name it extends (`x.csv` for `x.csv.tmp`, `x.csv.part`) written
        since (a listing may have seen the temporary file before it was whole)."""
        folder = _parent(run.file_key)
        for key, info in self.zones.landing.list(folder):
            if key == run.file_key or _parent(key) != folder:
                continue
            if (info["size"], info["mtime"]) == (run.size, run.mtime):
                return key
            if run.file_key.startswith(key + ".") and info["mtime"] >= run.mtime:
                return key
        return None

    def joined(self, wf: Workflow) -> dict[str, tuple[Table, list[str]]]:
        """The tables `wf`'s `sql` steps join, with their files as the catalog lists them now (the version the
        run reads). Call under a reader lease on them."""
        out = {}
        for name in wf.joins:
            table = self.store.find_table(name)
            if table is None:
                raise TableNotReady(
                    f"workflow `{wf.name}` joins table `{name}`, which has no rows yet; the run is tried again "
                    "(load the table's files first)"
                )
            out[name] = (table, [f.path for f in self.store.table_files(name)])
        return out

    def _content_key(self, key: str, digest: str) -> str:
        """The load history's content key: the bytes' SHA-256. Files landfall lands itself (a stream's, a
        workflow's `write.landing`) are named for what they hold, so the same bytes in two of them (a heartbeat
        record each interval) are two deliveries, not one file landed twice: their key covers the name too."""
        if not self.settings.landed_by_landfall(key):
            return digest
        return hashlib.sha256(f"{key}\0{digest}".encode()).hexdigest()

    def _engine(self, wf: Workflow, runs: list[Run]) -> Engine:
        """The engine for these runs: the workflow's (or the file's), `auto` choosing by their size."""
        return self.engines(self.settings.engine_for(wf, sum(r.size for r in runs)))

    def _run_big(self, wf: Workflow, run: Run, engine: Engine) -> list[Outcome]:
        """A large file on a local zone: hash it while the engine reads it (the commit refuses bytes already
        loaded)."""
        try:
            path = self.zones.landing.local_path(run.file_key)
            self.zones.landing.info(run.file_key)
        except (OSError, InvalidInput) as exc:
            if (gone := self._unreadable(run, wf, exc)) is not None:
                self.store.commit(None, [gone])
                self._done(Outcome(run, "skipped", result=gone))
            return self.outcomes
        digest: Future[str] = pool("hash").submit(lambda: self._content_key(run.file_key, content_hash(path)))
        src = Source(key=run.file_key, path=path, run_id=run.run_id, file_id=run.file_id, size=run.size)
        try:
            self._job(wf, [(run, src, digest)], run.batch_id or run.run_id, engine)
        except ContentRace as exc:
            same = RunResult(
                run_id=run.run_id,
                status="skipped",
                worker=run.worker,
                content_hash=digest.result(),
                rows_in=0,
                rows_out=0,
                bytes=run.size,
                note=f"same content: {exc}",
            )
            self.store.commit(None, [same])
            self._done(Outcome(run, "skipped", result=same))
        except ConcurrentChange as exc:  # another commit changed the table meanwhile: again on the new state
            log.info("run %s deferred: %s", run.run_id, exc)
            self.store.defer([run.run_id], seconds=0.05, worker=run.worker)
        except StateError:
            raise
        except Exception as exc:
            if unreachable(exc):
                raise _unavailable(exc) from exc
            self._fail(run, wf, _message(exc, run.file_key), _resolved(digest), exc)
        return self.outcomes

    # --- one engine job and its commit -----------------------------------------------------------------------

    def _job(self, wf: Workflow, items: list[tuple[Run, Source, str]], commit_id: str, engine: Engine) -> None:
        """Read, transform, write and commit `items`. A digest may still be a `Future` (a big file hashed while
        the engine reads it): its commit marker is checked once the hash is known, before anything is published."""
        if wf.write.landing is not None:  # a hop: files for the next workflow (one file per job)
            from landfall.hops import run_hop

            ((run, src, digest),) = items
            return run_hop(self, wf, run, src, _resolved(digest) or "", engine)
        for name in (wf.write.table, *wf.child_tables.values()):
            if name in self.broken:
                raise BrokenTable(self.broken[name])
        writer = open_table(wf.write.format, self.zones.table(wf.write.table))
        items = self._replay_committed(wf, writer, items)
        if not items:
            return
        child_writers = {t: open_table(wf.write.format, self.zones.table(t)) for t in wf.child_tables.values()}
        # a reader lease, taken before the file lists are read, keeps those files (and the joined tables') meanwhile
        own = [wf.write.table, *child_writers] if _reads_table_files(wf, writer) else []
        reads = own + wf.joins if own or wf.joins else None
        with (
            _scratch(self.zones.landing.scratch("job")) as scratch,
            TableTransaction(self.store, commit_id, reads=reads) as tx,
        ):
            area = tx.stage(writer)
            child_areas = {t: tx.stage(w) for t, w in child_writers.items()}
            table = self.store.find_table(wf.write.table)
            against = any(r.unique is not None and r.unique.against_table for r in wf.validate_)
            needs_files = table is not None and (wf.write.mode != "append" or against)
            current = {f.path: f for f in self.store.table_files(wf.write.table)} if needs_files else {}
            parts = [p.name for p in wf.write.partition_by]
            child_schemas = {t: c.schema for t in child_writers if (c := self.store.find_table(t)) is not None}
            job = Job(
                workflow=wf,
                sources=[s for _, s, _ in items],
                staging=area,
                commit_id=commit_id,
                ingested_at=datetime.now(UTC),
                scratch=scratch,
                table_schema=table.schema if table else None,
                table_files=[(f"{writer.location}/{p}", p) for p in current]
                if wf.write.mode == "merge" or against
                else [],
                partition_names=parts,
                child_staging=child_areas,
                child_schemas=child_schemas,
                tables=self.joined(wf),
                stored_as=dict(writer.stored_as),
            )
            try:
                staged = engine.run(job)
            except Exception as exc:
                check_listed(self.store, wf.write.table, list(current) if job.table_files else [], exc)
                raise
            if any(isinstance(d, Future) for _, _, d in items):
                items = self._replay_committed(wf, writer, [(r, s, d.result()) for r, s, d in items])
                if not items:  # committed by an earlier attempt: recorded, and the staged files go with staging
                    return
            staged.outputs_of = {}
            for rel, key, _ in staged.file_sources:
                staged.outputs_of.setdefault(key, set()).add(rel)
            if table is None and not (staged.files or staged.children or staged.quarantine_files):
                # nothing to write (empty files) and no table yet: the runs succeed, no table is made
                empty = [self._result(run, src, _resolved(digest), staged) for run, src, digest in items]
                tx.commit(None, empty)
                for (run, _, _), res in zip(items, empty, strict=True):
                    self._done(Outcome(run, "succeeded", rows_out=0, result=res))
                return
            tx.point("after_write")
            keys = [s.key for _, s, _ in items]
            replaced: list[str] = list(staged.replaced)
            if wf.write.mode == "overwrite" and table is not None:
                touched = {tuple(sorted(f.partition.items())) for f in staged.files}
                replaced = [
                    p
                    for p, f in current.items()
                    if wf.write.overwrite == "table" or tuple(sorted(f.partition.items())) in touched
                ]
            elif wf.on_change == "replace" and wf.write.mode == "append" and table is not None:
                replaced = self.store.files_holding(wf.write.table, keys, [s.file_id for _, s, _ in items])
            rewrites = []
            if replaced and wf.write.mode == "append":  # keep other files' rows of a file that held a replaced one
                rewrites = self._rewrite(engine, writer, replaced, keys, area, commit_id, wf.write.compression)
            if replaced and not current:
                current = {f.path: f for f in self.store.table_files(wf.write.table, paths=replaced)}
            published = tx.publish(writer, staged.files + rewrites)
            sources, lineage = self._lineage(wf.write.table, items, staged.file_sources, replaced, rewrites)
            if table is not None and not staged.files:  # a run that writes no rows changes no schema
                staged.schema, staged.arrow_schema = table.schema, None
            schema = merged(table.schema, staged.schema) if table else staged.schema
            results = [self._result(run, src, _resolved(digest), staged) for run, src, digest in items]
            if writer.has_log:  # the format's own commit cannot be taken back: refuse duplicate bytes first
                self.store.check_content(results)
            children = [
                self._child_commit(tx, wf, t, child_writers[t], child_areas[t], c, items, engine)
                for t, c in staged.children.items()
            ]  # committed before the parent: see `_child_commit`
            change = TableChange(
                commit_id=commit_id,
                operation={"append": "WRITE"}.get(wf.write.mode, wf.write.mode.upper()),
                add=published,
                remove=[current[p] for p in replaced if p in current],
                schema=staged.pyarrow_schema() if writer.has_log else None,
                partition_by=parts,
                app_ids=[app_id(s.key, digest) for _, s, digest in items],
                metadata={
                    "workflow": wf.name,
                    "schema": schema,
                    "sources": [s.__dict__ for s in sources],
                    "runs": [
                        {
                            "run_id": r.run_id,
                            "app_id": app_id(s.key, r.content_hash or ""),
                            "file_id": s.file_id,
                            "key": s.key,
                            "rows_in": r.rows_in,
                            "rows_out": r.rows_out,
                            "outputs": r.output_files,
                        }
                        for r, (_, s, _) in zip(results, items, strict=True)
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
            )
            quarantined = self._quarantine(tx, wf, staged, items, lineage, engine)
            also = [c for c, _ in children] + quarantined
            tx.commit(commit, results, also=also, log=(writer, change), journal=quarantined)
            if self.settings.fed_by(wf.write.table):  # the workflows this table feeds get its runs now (a crash
                from landfall.sources.tables import feed  # before this: `TableSource` finds them)

                feed(self.settings, self.store, wf.write.table, results)
            tx.retire(writer, wf.write.table, replaced)
            for c, gone in children:
                tx.retire(child_writers[c.table], c.table, gone)
        for (run, src, _), res in zip(items, results, strict=True):
            self._done(Outcome(run, "succeeded", rows_out=staged.rows_out.get(src.key, 0), result=res))

    def _rewrite(
        self,
        engine: Engine,
        writer: TableWriter,
        replaced: list[str],
        keys: list[str],
        staging_dir: str,
        commit_id: str,
        compression: str = "zstd",
    ) -> list[StagedFile]:
        try:
            rewritten = engine.rewrite(
                [(f"{writer.location}/{p}", p) for p in replaced], keys, staging_dir, commit_id, compression
            )
        except Exception as exc:
            check_listed(self.store, writer.storage.url.rsplit("/", 1)[-1], replaced, exc)
            raise
        return [f for f in rewritten if f.rows > 0]

    def _lineage(
        self,
        table: str,
        items: list,
        file_sources: list[tuple[str, str, int]],
        replaced: list[str],
        rewrites: list[StagedFile],
    ) -> tuple[list[SourceRows], dict[str, tuple[int, str]]]:
        """Which landed file versions each new table file holds rows of; a rewritten file keeps the lineage of
        the rows it carries over. Also returns `source key -> (file id, run id)`."""
        keys = {s.key for _, s, _ in items}
        lineage = {s.key: (s.file_id, s.run_id) for _, s, _ in items}
        carried: dict[str, list[SourceRows]] = {p: self.store.file_sources(table, p) for p in replaced}
        for rows in carried.values():
            for src in rows:
                lineage.setdefault(src.source_key, (src.file_id, src.run_id))
        sources = [
            SourceRows(path=rel, source_key=key, file_id=lineage[key][0], run_id=lineage[key][1], rows=n)
            for rel, key, n in file_sources
            if key in lineage
        ]
        for rw in rewrites:
            for src in carried.get(_rewritten_from(rw.relpath, replaced) or "", []):
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
        return sources, lineage

    def _child_commit(
        self,
        tx: TableTransaction,
        wf: Workflow,
        name: str,
        writer: TableWriter,
        staging_dir: str,
        staged: Staged,
        items: list,
        engine: Engine,
    ) -> tuple[TableCommit, list[str]]:
        """Publish one child table's rows; a format with a log commits them now, before the parent. A child
        commit that an earlier attempt made without its parent (a crash in between) is taken out again in
        this one, so the children of a file are in the table once."""
        keys = [s.key for _, s, _ in items]
        existing = self.store.find_table(name)
        replaced = (
            self.store.files_holding(name, keys, [s.file_id for _, s, _ in items])
            if existing is not None and wf.on_change == "replace"
            else []
        )
        commit_id = tx.commit_id
        rewrites = (
            self._rewrite(engine, writer, replaced, keys, staging_dir, commit_id, wf.write.compression)
            if replaced
            else []
        )
        published = tx.publish(writer, staged.files + rewrites)
        sources, _ = self._lineage(name, items, staged.file_sources, replaced, rewrites)
        schema = merged(existing.schema, staged.schema) if existing else staged.schema
        if writer.has_log:
            apps = [app_id(s.key, _resolved(digest) or "") for _, s, digest in items]
            live = {f.path: f for f in writer.current_files() or []}
            earlier = [live[p] for meta in writer.committed(apps).values() for p in meta.get("added", []) if p in live]
            held = {f.path: f for f in self.store.table_files(name, paths=replaced)} if replaced else {}
            tx.commit_format(
                writer,
                TableChange(
                    commit_id=commit_id,
                    operation="WRITE",
                    add=published,
                    remove=[held[p] for p in replaced if p in held] + earlier,
                    schema=staged.pyarrow_schema(),
                    partition_by=[],
                    app_ids=apps,
                    metadata={
                        "workflow": wf.name,
                        "parent": wf.write.table,
                        "schema": schema,
                        "added": [f.path for f in published],
                        "sources": [s.__dict__ for s in sources],
                    },
                ),
                point="after_child_commit",
            )
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
        ), replaced

    def _quarantine(
        self,
        tx: TableTransaction,
        wf: Workflow,
        staged: Staged,
        items: list,
        lineage: dict[str, tuple[int, str]],
        engine: Engine,
    ) -> list[TableCommit]:
        """Publish the rows rules set aside into `quarantine/<table>/`, cataloged as `quarantine.<table>`."""
        if not staged.quarantine_files:
            return []
        commit_id = tx.commit_id
        name = f"quarantine.{wf.write.table}"
        writer = open_table("parquet", self.zones.quarantined(wf.write.table))
        published = tx.publish(writer, staged.quarantine_files)
        counts = engine.source_counts([f"{writer.location}/{f.path}" for f in published])
        sources = [
            SourceRows(path=f.path, source_key=k, file_id=lineage[k][0], run_id=lineage[k][1], rows=n)
            for f in published
            for k, n in counts.get(f"{writer.location}/{f.path}", {}).items()
            if k in lineage
        ]
        table = self.store.find_table(name)
        schema = merged(table.schema, staged.quarantine_schema) if table else staged.quarantine_schema
        return [
            TableCommit(
                table=name,
                location=writer.location,
                format="parquet",
                workflow=wf.name,
                schema=schema,
                partition_by=[],
                commit_id=commit_id,
                add=published,
                sources=sources,
            )
        ]

    def _replay_committed(
        self, wf: Workflow, writer, items: list[tuple[Run, Source, str]]
    ) -> list[tuple[Run, Source, str]]:
        """Files whose commit reached the table's own log (before a crash, or before the state store was lost or
        replaced): record them, don't write again. The marker is the file version's own (key and content hash),
        so it means the same thing to every state store. Items whose hash is not known yet are checked later."""
        if not writer.has_log:
            return items
        markers = {run.run_id: app_id(src.key, digest) for run, src, digest in items if isinstance(digest, str)}
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
                note=f"committed by an earlier attempt in table version {meta.get('version')}; "
                "recorded, not written again",
            )
            replays.setdefault(meta["commit_id"], (meta, []))[1].append(res)
        for meta, results in replays.values():
            files = writer.current_files() or []
            srcs = [SourceRows(**s) for s in meta.get("sources", [])]
            table = self.store.find_table(wf.write.table)
            schema = merged(table.schema, _pairs(meta["schema"])) if table else _pairs(meta["schema"])
            commit = TableCommit(
                table=wf.write.table,
                location=writer.location,
                format=writer.format,
                workflow=wf.name,
                schema=schema,
                commit_id=meta["commit_id"],
                partition_by=[p.name for p in wf.write.partition_by],
                add=files,
                sources=srcs,
                exact=True,
            )
            recorded = {r.run_id for r in results}
            self.store.commit(
                commit, results, also=self._children_committed(wf, [m for r, m in markers.items() if r in recorded])
            )
            finish_pending(self.store, writer, wf.write.table)  # its quarantined rows, journaled beside the table
            for res in results:
                run = next(r for r, _, _ in items if r.run_id == res.run_id)
                self._done(Outcome(run, "succeeded", rows_out=res.rows_out, result=res))
        return rest

    def _children_committed(self, wf: Workflow, markers: list[str]) -> list[TableCommit]:
        """The child tables' side of a commit found in the parent's log: their catalog entries, from their logs
        (children are committed before their parent)."""
        out = []
        for name in wf.child_tables.values():
            writer = open_table(wf.write.format, self.zones.table(name))
            found = writer.committed(markers) if writer.has_log else {}
            metas = list({m["commit_id"]: m for m in found.values()}.values())
            if not metas:
                continue
            table = self.store.find_table(name)
            schema = _pairs(metas[0]["schema"])
            out.append(
                TableCommit(
                    table=name,
                    location=writer.location,
                    format=writer.format,
                    workflow=wf.name,
                    schema=merged(table.schema, schema) if table else schema,
                    partition_by=[],
                    commit_id=metas[0].get("commit_id", ""),
                    add=writer.current_files() or [],
                    sources=[SourceRows(**s) for m in metas for s in m.get("sources", [])],
                    exact=True,
                )
            )
        return out

    def _result(self, run: Run, src: Source, digest: str, staged: Staged) -> RunResult:
        outputs = sorted(staged.outputs_of.get(src.key, ()))
        quality = {k: v for k, v in staged.quality.items() if not k.startswith("_")}
        quarantined = staged.quality.get("_quarantined", 0) if staged.quality else None  # by rules
        parsed = staged.quality.get("_parse_by_source")
        if parsed is not None:  # rows that could not be parsed, counted per file (rules run file by file)
            quality["parse"] = {"action": "quarantine", "violations": parsed.get(src.key, 0)}
            quarantined = (quarantined or 0) + parsed.get(src.key, 0)
        return RunResult(
            run_id=run.run_id,
            status="succeeded",
            worker=run.worker,
            rows_in=staged.rows_in.get(src.key, 0),
            rows_out=staged.rows_out.get(src.key, 0),
            bytes=src.size,
            output_files=outputs,
            steps=_with_encoding(staged.steps, staged.encodings.get(src.key)),
            content_hash=digest,
            quality=quality,
            rows_quarantined=quarantined,
            note=staged.notes.get(src.key),
        )

    # --- failure ---------------------------------------------------------------------------------------------

    def _fail(self, run: Run, wf: Workflow, message: str, digest: str | None, exc: BaseException | None = None) -> None:
        message = redact(message)
        # a `Terminal` error (a file that cannot parse, a step that cannot bind) fails the same way every time:
        # the run is dead at once, without the backoff schedule; anything else may pass on a later attempt
        terminal = isinstance(exc, Terminal)
        retry_in = (
            None
            if terminal
            else backoff(run.attempt, wf.retry.backoff_seconds, wf.retry.max_backoff_seconds, wf.retry.jitter)
        )
        if exc is not None and not isinstance(exc, LandfallError):
            log.debug("run %s failed:\n%s", run.run_id, "".join(traceback.format_exception(exc)))
        nxt = self.store.fail(run.run_id, message, retry_in=retry_in, content_hash=digest, worker=run.worker)
        status = "failed" if nxt is not None else "dead"
        log.warning(
            "run %s %s: %s",
            run.run_id,
            status,
            message,
            extra={"run_id": run.run_id, "file": run.file_key, "workflow": wf.name, "status": status},
        )
        self._done(Outcome(run, status, error=message))

    def _done(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status in ("succeeded", "skipped"):
            log.info(
                "run %s %s: %s",
                outcome.run.run_id,
                outcome.status,
                outcome.run.file_key,
                extra={
                    "run_id": outcome.run.run_id,
                    "file": outcome.run.file_key,
                    "workflow": outcome.run.workflow,
                    "status": outcome.status,
                    "rows": outcome.rows_out,
                },
            )
        if self.on_done:
            self.on_done(outcome)


HASH_ALONGSIDE_BYTES = 16 << 20


@contextmanager
def _scratch(path: str) -> Iterator[str]:
    """A job's local scratch folder, removed when the job ends."""
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _resolved(digest: str | Future[str] | None) -> str | None:
    if isinstance(digest, Future):
        try:
            return digest.result()
        except OSError:
            return None
    return digest


def _parent(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


def _reads_table_files(wf: Workflow, writer: TableWriter) -> bool:
    """Whether a job reads the table's current files (merge, `unique` against the table, rewriting the files
    that hold an earlier version's rows) where commits delete the files they replace (Parquet)."""
    if not writer.removes_files_at_commit():
        return False
    against = any(r.unique is not None and r.unique.against_table for r in wf.validate_)
    return wf.write.mode == "merge" or against or (wf.write.mode == "append" and wf.on_change == "replace")


def app_id(key: str, content_hash: str) -> str:
    """The application transaction id of a landed file version in a table format's log: its key and content, so
    it names the same version for any state store (a local row id would start again with a new one)."""
    return "landfall:" + hashlib.sha256(f"{key}\0{content_hash}".encode()).hexdigest()


def _pairs(schema: list) -> list[tuple[str, str]]:
    """A schema from a table format's commit metadata (types written before they were neutral are DuckDB's)."""
    return [(str(n), neutral(str(t))) for n, t in schema]


def _rewritten_from(relpath: str, replaced: list[str]) -> str | None:
    """Rewrites are named `part-<commit>-r<i>`: `i` indexes the replaced file they come from."""
    name = os.path.basename(relpath)
    marker = name.rsplit("-r", 1)
    if len(marker) == 2 and marker[1].removesuffix(".parquet").isdigit():
        i = int(marker[1].removesuffix(".parquet"))
        return replaced[i] if i < len(replaced) else None
    return None


def _unavailable(exc: BaseException) -> StorageUnavailable:
    return exc if isinstance(exc, StorageUnavailable) else StorageUnavailable(redact(_short(exc)))


def _with_encoding(steps: list[dict], encoding: dict | None) -> list[dict]:
    """A run's steps, its `read` step naming the text encoding its file was read in (runs of a batch share
    the batch's steps; the encoding is each file's own)."""
    if encoding is None:
        return steps
    return [{**s, "encoding": encoding} if s.get("step") == "read" else s for s in steps]


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _message(exc: BaseException, key: str) -> str:
    """An error message that always names the file."""
    text = str(exc).strip() or type(exc).__name__
    if f"`{key}`" in text:
        return text
    if isinstance(exc, InvalidInput):
        return f"`{key}`: {text}"
    return f"`{key}`: {type(exc).__name__}: {text}"
