"""Running a leased batch of runs through their workflow: hash -> dedupe -> read/transform/write -> commit.

Many small files share one engine query; each keeps its own run record. If the shared query fails, every
file runs alone, so a bad file fails by itself with its own error and the others load.

Here: the batch's life (fetch and hash, duplicates, the shared job and its fallback, files gone or renamed, a
store that cannot be reached, a lease taken back) and recording how each run ends. The engine job and its
commit are `job.py`; commits found in a table's own log, `replay.py`; run results and messages, `outcomes.py`.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import traceback
from collections.abc import Callable
from concurrent.futures import Future

import msgspec

from landfall import compression
from landfall.config import Settings, Workflow
from landfall.engines.base import Engine, Source, detected_format
from landfall.errors import (
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
from landfall.job import resolved, run_job
from landfall.outcomes import Outcome, message
from landfall.pools import pool
from landfall.redaction import redact
from landfall.state.base import Run, RunResult, StateStore, Table, backoff
from landfall.storage import Zones, unreachable
from landfall.storage.faults import java_fault

__all__ = ["HASH_ALONGSIDE_BYTES", "Outcome", "Runner"]

log = logging.getLogger("landfall.runner")

WIDE_HEADER_BYTES = 32 * 1024  # about 3,000 columns or more: see `wide_header`


class Runner(msgspec.Struct):
    settings: Settings
    store: StateStore
    engines: Callable[[str], Engine]  # an engine by name, ready for the zones: see `Settings.engine_for`
    zones: Zones
    hashing: str  # the lake's content hash (`landfall.hashing.lake_algorithm`)
    on_done: Callable[[Outcome], None] | None = None
    outcomes: list[Outcome] = []
    broken: dict[str, str] = {}  # tables whose log disagrees with the catalog: why
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
        except StateError:
            raise  # the state store failed, not the files: the worker hands them back
        except Exception as exc:
            if unreachable(exc):
                self._storage_away(runs, _unavailable(exc))
                return self.outcomes
            self._broke(runs, exc)
            return self.outcomes
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
        self.storage_failures = 0
        return outcomes

    def _broke(self, runs: list[Run], exc: Exception) -> None:
        """landfall failed outside any file's job (a fault of its own, not of the files): each run of the batch it
        still holds fails with that error, retried on the workflow's schedule and then dead naming it. Before,
        `process` ended with a traceback, and under `up` the runs stayed held until their lease ran out, to be
        dead-lettered at last as interrupted by a worker that died."""
        log.error("batch %s: landfall failed outside the files' load", runs[0].batch_id, exc_info=exc)
        wf = self.settings.workflow(runs[0].workflow or "")
        done = {o.run.run_id for o in self.outcomes}
        said = f"landfall failed outside the file's load ({type(exc).__name__}: {_short(exc)}); not the file's fault"
        for run in runs:
            if run.run_id not in done:
                try:
                    self.fail(run, wf, said, None)
                except LeaseLost:  # deferred, or taken back: not this batch's to record
                    continue

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
            return self._run_big(wf, runs[0])
        hashed: list[tuple[Run, str, str]] = []
        fetched = self.zones.landing.fetch_many([(r.file_key, r.size) for r in runs], scratch or "", self.hashing)
        for run, got in zip(runs, fetched, strict=True):
            if isinstance(got, (OSError, InvalidInput)):  # gone, unreadable, or a link out of the zone
                if (gone := self._unreadable(run, wf, got)) is not None:
                    skipped.append(gone)
            elif isinstance(got, Exception):
                raise got
            else:
                path, digest = got
                hashed.append((run, path, self._content_key(wf, run.file_key, digest)))
        known = self.store.find_duplicates(
            wf.name, {digest: run.file_id for run, _, digest in hashed}, supersede=wf.replaces_versions
        )
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
                    Source(
                        key=run.file_key,
                        path=path,
                        run_id=run.run_id,
                        file_id=run.file_id,
                        size=run.size,
                        format=detected_format(wf, run.file_key, path),
                    ),
                    digest,
                )
            )
        worker = runs[0].worker
        if later:
            self.store.defer(later, seconds=0.2, worker=worker)
        if skipped:
            self.store.commit(None, skipped)
            for res in skipped:
                self.done(Outcome(next(r for r in runs if r.run_id == res.run_id), "skipped", result=res))
        if not todo:
            return self.outcomes
        batch_id = runs[0].batch_id or runs[0].run_id
        wide = [t for t in todo if len(todo) > 1 and wide_header(wf, t[1])]
        rest = [t for t in todo if t not in wide]
        jobs = [(rest, batch_id), *(([t], f"{batch_id}-w{i}") for i, t in enumerate(wide, 1))]
        if len(rest) > 1 and self.store.find_table(wf.write.table) is None:
            # a table not made yet takes its columns and types from one file, as when the files land one by one,
            # and the others are held to it under every `schema.evolution`: one batch would merge all their
            # columns (`freeze`), and read a column as text where one file holds text and another numbers, which
            # `evolve` refuses when they land one by one.
            # (Every job's id starts with the batch's, which recovery's sweep keeps while the batch runs; the rest
            # gets one of its own: a failed commit's files are cleaned up by its id as a prefix.)
            jobs[0:1] = [(rest[:1], batch_id), (rest[1:], f"{batch_id}-rest")]
        for items, job_id in jobs:  # slow wide files after the rest has committed
            if items:
                self._run_job(wf, items, job_id, worker)
        return self.outcomes

    def _run_job(self, wf: Workflow, items: list[tuple[Run, Source, str]], batch_id: str, worker: str | None) -> None:
        """One engine job for `items` and its commit; if it fails, each file alone (a bad file fails by itself)."""
        try:
            run_job(self, wf, items, batch_id, self.engine_for(wf, [run for run, _, _ in items]))
        except (ContentRace, ConcurrentChange) as exc:  # look at the batch again on the new state
            log.info("batch deferred: %s", exc)
            self.store.defer([run.run_id for run, _, _ in items], seconds=0.05, worker=worker)
        except StateError:
            raise  # the state store failed, not the files
        except Exception as exc:
            if unreachable(exc):
                raise _unavailable(exc) from exc
            if len(items) == 1:
                self._failed(items[0][0], wf, exc, items[0][2])
            else:
                log.info("batch of %d files failed (%s); running each file alone", len(items), _short(exc))
                for i, item in enumerate(items):
                    try:
                        run_job(self, wf, [item], f"{batch_id}-{i}", self.engine_for(wf, [item[0]]))
                    except (ContentRace, ConcurrentChange):
                        self.store.defer([item[0].run_id], seconds=0.05, worker=worker)
                    except StateError:
                        raise
                    except Exception as exc2:
                        if unreachable(exc2):
                            raise _unavailable(exc2) from exc2
                        self._failed(item[0], wf, exc2, item[2])

    def _failed(self, run: Run, wf: Workflow, exc: BaseException, digest: str | None) -> None:
        """A run's job failed: when the landed file itself is gone meanwhile (read in place, then renamed by its
        writer), as `_unreadable` decides (skipped when renamed, else failed saying so); otherwise it fails."""
        try:
            vanished = not self.zones.landing.exists(run.file_key)  # whichever engine's error said so
        except OSError:
            vanished = False
        if not vanished:
            self.fail(run, wf, message(exc, run.file_key), digest, exc)
        elif (gone := self._unreadable(run, wf, FileNotFoundError(run.file_key))) is not None:
            self.store.commit(None, [gone])
            self.done(Outcome(run, "skipped"))

    def _unreadable(self, run: Run, wf: Workflow, exc: BaseException) -> RunResult | None:
        """A landed file that cannot be read. One that is gone because a rename replaced it (a writer that saves
        `x.csv.tmp` and renames it to `x.csv`) is skipped: the result to record. Anything else fails the run."""
        moved = self._renamed(run) if isinstance(exc, FileNotFoundError) else None
        if moved is None:
            gone = isinstance(exc, FileNotFoundError)
            why = f"`{run.file_key}`: gone from {self.zones.landing.label} before it was loaded" if gone else None
            self.fail(run, wf, why or message(exc, run.file_key), None)
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

    def _content_key(self, wf: Workflow, key: str, digest: str) -> str:
        """The load history's content key: the bytes' hash. Files landfall lands itself (a stream's, a
        workflow's `write.landing`) are named for what they hold, so the same bytes in two of them (a heartbeat
        record each interval) are two deliveries, not one file landed twice: their key covers the name too. So
        does the key of a file of an `overwrite` or `merge` table: each is the table (its partitions, its keys'
        rows) as of when it landed, so a file holding what an older one held (a setting switched back) is the
        newest, not a duplicate; loading it again duplicates no row (but one of no key in a merge)."""
        if not self.settings.landed_by_landfall(key) and wf.write.mode not in ("overwrite", "merge"):
            return digest
        return hashlib.sha256(f"{key}\0{digest}".encode()).hexdigest()

    def engine_for(self, wf: Workflow, runs: list[Run]) -> Engine:
        """The engine for these runs: the workflow's (or the file's), `auto` choosing by their size."""
        return self.engines(self.settings.engine_for(wf, sum(r.size for r in runs)))

    def _run_big(self, wf: Workflow, run: Run) -> list[Outcome]:
        """A large file on a local zone: hash it while the engine reads it (the commit refuses bytes already
        loaded). The hash starts before the engine is opened: opening it and reading the file's detection sample
        keep one core busy, so the hash takes the other instead of sharing both with the load."""
        try:
            path = self.zones.landing.local_path(run.file_key)
            self.zones.landing.info(run.file_key)
        except (OSError, InvalidInput) as exc:
            if (gone := self._unreadable(run, wf, exc)) is not None:
                self.store.commit(None, [gone])
                self.done(Outcome(run, "skipped", result=gone))
            return self.outcomes
        digest: Future[str] = pool("hash").submit(
            lambda: self._content_key(wf, run.file_key, self.zones.landing.hash(run.file_key, self.hashing))
        )
        engine = self.engine_for(wf, [run])
        fmt = detected_format(wf, run.file_key, path)
        src = Source(key=run.file_key, path=path, run_id=run.run_id, file_id=run.file_id, size=run.size, format=fmt)
        try:
            run_job(self, wf, [(run, src, digest)], run.batch_id or run.run_id, engine)
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
            self.done(Outcome(run, "skipped", result=same))
        except ConcurrentChange as exc:  # another commit changed the table meanwhile: again on the new state
            log.info("run %s deferred: %s", run.run_id, exc)
            self.store.defer([run.run_id], seconds=0.05, worker=run.worker)
        except StateError:
            raise
        except Exception as exc:
            if unreachable(exc):
                raise _unavailable(exc) from exc
            self.fail(run, wf, message(exc, run.file_key), resolved(digest), exc)
        return self.outcomes

    # --- failure ---------------------------------------------------------------------------------------------

    def fail(self, run: Run, wf: Workflow, message: str, digest: str | None, exc: BaseException | None = None) -> None:
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
        self.done(Outcome(run, status, error=message))

    def done(self, outcome: Outcome) -> None:
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


def wide_header(wf: Workflow, src: Source) -> bool:
    """A CSV file whose header line is longer than `WIDE_HEADER_BYTES` (thousands of columns): reading it can take
    seconds where its batch's other files take milliseconds, so it runs after they have committed. (The engine
    reads `src.path` locally: a file of a local zone in place, else the batch's scratch copy.)"""
    from landfall.engines.duckdb.sql import source_format  # (duckdb: imported when a batch runs, not at start)

    if src.size <= WIDE_HEADER_BYTES or source_format(wf, src) != "csv":
        return False  # (a small file is never read here: batches of many small files pay nothing)
    if compression.strip_suffix(src.key.lower()) != src.key.lower():
        return False
    with open(src.path, "rb") as f:
        head = f.read(WIDE_HEADER_BYTES)
    return len(head) == WIDE_HEADER_BYTES and b"\n" not in head


def _parent(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


def _unavailable(exc: BaseException) -> StorageUnavailable:
    if isinstance(exc, StorageUnavailable):
        return exc
    return StorageUnavailable(redact(java_fault(exc) or _short(exc)))  # a Spark error's first line says nothing


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
