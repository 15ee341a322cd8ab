"""`landfall.Pipeline`: the library that the CLI (and later the HTTP API and dashboard) are thin adapters over."""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from landfall import pools
from landfall.config import ParquetFiles, Settings, load_settings
from landfall.errors import LandfallError, StateUnavailable, StorageUnavailable, UnsafeKey
from landfall.events import ObjectCreated, is_hidden, never_loaded, safe_key
from landfall.hashing import lake_algorithm
from landfall.outcomes import Summary
from landfall.recovery import recover
from landfall.routing import Router, misplaced, reroute_note
from landfall.runner import Outcome
from landfall.sources.listing import ListingSource
from landfall.state import Run, StateStore, Table, open_state, worker_id
from landfall.state.base import idle, running, running_services
from landfall.storage import Zones
from landfall.worker import Worker, heartbeat_loop

if TYPE_CHECKING:
    from landfall.query import QueryResult
    from landfall.readback import Activity, TableDetail, Totals

log = logging.getLogger("landfall")


def check_key(key: str) -> str:
    """A landing key from outside (HTTP): `safe_key` (it stays inside the zone), and not a name landfall never
    loads (`events.never_loaded`); raises `UnsafeKey`. Returns the normalized key."""
    key = safe_key(key)
    if (why := never_loaded(key)) is not None:
        raise UnsafeKey(f"landing key `{key}`: {why}; rename the file")
    return key


def ingest_plan(paths: Iterable[str | os.PathLike[str]], prefix: str = "") -> tuple[list[tuple[Path, str]], list[str]]:
    """What `ingest` copies: each file with its landing key; and the keys of the files it passes over in the
    folders it walks, those with a name (or a folder under the one given) landfall never loads
    (`events.never_loaded`: `.DS_Store`, `_tmp/`, `x.csv.part`). A file named on its own with such a name, or a
    prefix with one, is refused (`UnsafeKey`), as is a key that would leave the zone."""
    prefix = prefix.rstrip("/")
    todo: list[tuple[Path, str]] = []
    skipped: list[str] = []
    for p in paths:
        src = Path(p)
        files = sorted(f for f in src.rglob("*") if f.is_file()) if src.is_dir() else [src]
        for f in files:
            rel = f.relative_to(src).as_posix() if src.is_dir() else f.name
            key = f"{prefix}/{rel}" if prefix else rel
            if src.is_dir() and is_hidden(rel):
                skipped.append(safe_key(key))
                continue
            todo.append((f, check_key(key)))
    return todo, skipped


class Pipeline:
    """Files land, workflows run, tables appear.

    >>> p = Pipeline("landfall.yaml")
    >>> p.process()          # discover everything not yet loaded, drain the queue
    >>> p.query("SELECT count(*) FROM sales")
    """

    def __init__(self, settings: Settings | str | os.PathLike[str] | None = None) -> None:
        self.settings = settings if isinstance(settings, Settings) else load_settings(settings)
        self.store: StateStore = self._open_state()
        self.router = Router(self.settings.workflows)
        self.zones = Zones(self.settings)
        self.listing = ListingSource(self.zones.landing)
        self.work_available = threading.Event()
        self._discover_lock = threading.Lock()
        self._rerouted = False  # unrouted files are looked at again once per pipeline (its config may be new)
        self._totals: Totals | None = None
        self._totals_lock = threading.Lock()
        #: compactions this process committed, per table (`/metrics`: `landfall_compactions_total`)
        self.compactions: dict[str, int] = {}
        self._broken: dict[str, str] = {}
        self._content_hash: str | None = None  # the lake's: see `_hashing`
        self._closed = False
        pools.hold()
        self._rebuild_pending = False
        from landfall.catalog import rebuild_if_new

        try:
            rebuild_if_new(self.settings, self.store, self.zones)  # a new state store: the tables say what they hold
        except StorageUnavailable as exc:  # the store is away: `process` and `up` wait for it and rebuild then
            log.warning("%s; the catalog is checked against the tables once it can be reached", exc)
            self._rebuild_pending = True

    def _open_state(self) -> StateStore:
        """The state store, waited for while its server cannot be reached (down at start, restarting); Ctrl-C
        stops the wait."""
        return self.patiently(lambda: open_state(self.settings.state), away=(StateUnavailable,))

    # --- landing ---------------------------------------------------------------------------------------------

    def submit(self, events: Sequence[ObjectCreated]) -> list[Run]:
        """Record landed file versions (ignoring known ones) and queue their runs."""
        with self._discover_lock:
            runs = self.store.discover(events, self.router.route)
        if any(r.status == "queued" for r in runs):
            self.work_available.set()
        for r in runs:
            if r.status == "unrouted":
                hint = misplaced(self.router, r.file_key, self.zones.landing.root)
                log.warning(
                    "unrouted: %s%s",
                    r.file_key,
                    f" ({hint})" if hint else "",
                    extra={"file": r.file_key, "status": "unrouted"},
                )
        return runs

    def discover(
        self, *, settle_seconds: float = 0.0, stop: threading.Event | None = None, changed_only: bool = False
    ) -> list[Run]:
        """List the landing zone and queue every file version not seen before (waiting while the store cannot be
        reached). `changed_only`: only folders that changed since the last call (while a watcher reports files
        rewritten in place; see `ListingSource`)."""
        self.listing.settle_seconds = settle_seconds
        rerouted: list[Run] = []
        if not self._rerouted:  # files no workflow matched when they landed, or queued for one gone since
            flows = self.settings.workflows
            rerouted = self.patiently(lambda: self.store.reroute(self.router.route, flows), stop) or []
            self._rerouted = True
            if rerouted:
                self.work_available.set()
                log.warning("%s", reroute_note(rerouted))
        new = self.patiently(lambda: self.store.unknown(self.listing.scan(changed_only=changed_only)), stop)
        if new is None:  # stopped while waiting
            return rerouted
        new.sort(key=lambda e: (e.mtime, e.key))  # oldest first
        if any(w.source is not None for w in self.settings.workflows):  # runs of source tables not yet queued
            from landfall.sources.tables import TableSource

            new += TableSource(self.settings, self.store).poll()
        return rerouted + (self.submit(new) if new else [])

    def ingest(
        self,
        paths: Iterable[str | os.PathLike[str]],
        prefix: str = "",
        on_file: Callable[[str, int], None] | None = None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> list[Run]:
        """Copy local files into `landing/<prefix>/` (whole or not at all: a hidden temp name renamed into place on
        a local zone, one upload on an object store) and queue them.

        Every key is checked with `safe_key` before anything is copied: a prefix with `..`, an absolute path or
        a backslash is refused (`UnsafeKey`). A key the zone cannot hold (under a file, naming a folder, too long
        for a name) is found as it is placed: the other files are placed and queued all the same, and each one
        refused is told to `on_refused(key, why)`; without it, `UnsafeKey` names them all once the rest are
        queued."""
        from landfall.sources.listing import to_event

        todo, skipped = ingest_plan(paths, prefix)
        if skipped:
            log.info("ingest: %d files passed over (names landfall never loads)", len(skipped))
        events = []
        refused: list[str] = []
        try:
            for f, key in todo:
                try:
                    self.zones.landing.put(str(f), key)
                except UnsafeKey as exc:
                    refused.append(str(exc))
                    if on_refused:
                        on_refused(key, str(exc))
                    continue
                info = self.zones.landing.info(key)
                events.append(to_event(key, info))
                if on_file:
                    on_file(key, int(info.get("size") or 0))
        finally:  # the files placed before a fault are queued all the same
            self.zones.landing.sync([e.key for e in events])  # on disk before `ingest` says so (and queues them)
            runs = self.submit(events)
        if refused and not on_refused:
            said = "; ".join(refused)
            raise UnsafeKey(f"{len(refused)} of {len(todo)} files not placed (the others are queued): {said}")
        return runs

    def open_streams(self) -> Any:
        """The streams of `landfall.yaml`, taking records: their logs opened (and a flush a crash cut short
        finished), flushed into the landing zone in the background and queued here. Close it when done."""
        from landfall.streams import Streams

        streams = Streams(self.settings, self.zones.landing)
        streams.start(self.submit)
        return streams

    def land(self, key: str, data: bytes | BinaryIO) -> list[Run]:
        """Land `data` (bytes or a binary stream) as `landing/<key>`, whole or not at all (spooled to a local
        scratch file, then placed like `ingest` places files), and queue it. `key` comes from outside (HTTP): one
        that would leave the landing zone or that landfall would never load raises `UnsafeKey`. Returns the runs
        queued (none for a version already known)."""
        from landfall.sources.listing import to_event

        key = check_key(key)
        landing = self.zones.landing
        scratch = landing.scratch("land")
        try:
            local = os.path.join(scratch, "upload")
            with open(local, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, 1 << 20)
            landing.put(local, key, move=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self.submit([to_event(key, landing.info(key))])

    # --- running ---------------------------------------------------------------------------------------------

    def _workers(self, n: int, on_done: Callable[[Outcome], None] | None) -> list[Worker]:
        from landfall.tracing import traced

        base = worker_id()  # engines share one DuckDB database and its thread pool (see engines/duckdb/sql.py)
        on_done = traced(on_done)  # OpenTelemetry spans of runs and steps, when it is installed
        return [
            Worker(
                self.settings,
                self.store,
                f"{base}:{i}",
                self.zones,
                on_done=on_done,
                broken=self._broken,
                hashing=self._hashing(),
            )
            for i in range(n)
        ]

    def _hashing(self) -> str:
        """The lake's content hash, read (or decided) once: a lake keeps it for life (`landfall.hashing`)."""
        if self._content_hash is None:
            self._content_hash = lake_algorithm(self.store, self.zones)
        return self._content_hash

    def _recover(self) -> None:
        """Take back what crashed workers left, and check each Delta table's log against the catalog: a table
        whose log is broken or lost a commit takes no new commits (its runs fail with what to do)."""
        if self._rebuild_pending:
            from landfall.catalog import rebuild_if_new

            rebuild_if_new(self.settings, self.store, self.zones)
            self._rebuild_pending = False
        recover(self.settings, self.store, self.zones)
        self._hashing()  # read (or decided) at start, where a zone that is away is waited for
        from landfall.catalog import check_logs

        self._broken = check_logs(self.store, self.zones)
        for message in self._broken.values():
            log.error("%s", message)

    def process(
        self, *, workers: int | None = None, on_done: Callable[[Outcome], None] | None = None, discover: bool = True
    ) -> Summary:
        """Discover everything not yet loaded, run the queue until it is empty (retries included), return."""
        summary = Summary()

        def done(o: Outcome) -> None:
            summary.outcomes.append(o)
            if on_done:
                on_done(o)

        self.patiently(self.zones.check)  # wrong credentials or a missing bucket: one clear line, now
        with running(self.store, self.settings.lease_seconds):  # `tables reload` and `rebuild` refused meanwhile
            self.patiently(self._recover)
            return self._drain(summary, workers, done, discover)

    def _drain(self, summary: Summary, workers: int | None, done: Callable[[Outcome], None], discover: bool) -> Summary:
        if discover:
            summary.discovered = len(self.discover())
        pool = self._workers(workers or self.settings.workers, done)
        stop = threading.Event()
        beat = threading.Thread(target=heartbeat_loop, args=(pool, stop, self.settings.lease_seconds / 3), daemon=True)
        beat.start()
        errors: list[BaseException] = []

        reaped = [time.monotonic()]

        def loop(w: Worker) -> None:
            delay = 0.5
            try:
                while not stop.is_set():
                    try:
                        if w.step():
                            delay = 0.5
                            continue
                        if not self.store.pending():
                            return
                        if time.monotonic() - reaped[0] > self.settings.lease_seconds / 3:
                            reaped[0] = time.monotonic()  # runs of a worker that died elsewhere come back when
                            # their lease expires, instead of being waited for forever
                            self.store.reap(max_interruptions=self.settings.max_interruptions)
                        self.store.wait_for_work(0.25)
                    except StateUnavailable as exc:  # the state store is away: wait for it, blame no file
                        log.warning("%s", exc)
                        stop.wait(delay)
                        delay = min(delay * 2, 30.0)
            except BaseException as exc:  # surface a worker crash instead of hanging
                errors.append(exc)
                stop.set()

        threads = [threading.Thread(target=loop, args=(w,), name=f"landfall-worker-{i}") for i, w in enumerate(pool)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            stop.set()
            for t in threads:
                t.join()
            raise
        finally:
            stop.set()
            beat.join()
            for w in pool:
                w.close()
        if errors:
            raise errors[0]
        summary.dead_letter = self.store.dead_letter_count()
        return summary

    def start_alerts(self, stop: threading.Event) -> threading.Thread | None:
        """Run the `alerts:` of landfall.yaml in the background until `stop` (one process at a time sends; see
        `landfall.alerts`). None when there are none."""
        if not self.settings.alerts:
            return None
        from landfall.alerts import alert_loop

        t = threading.Thread(
            target=alert_loop, args=(self.settings, self.store, stop, worker_id()), name="landfall-alerts", daemon=True
        )
        t.start()
        return t

    def patiently(
        self,
        call: Callable[[], Any],
        stop: threading.Event | None = None,
        *,
        away: tuple[type[Exception], ...] = (StorageUnavailable,),
    ) -> Any:
        """`call()`, tried again while what it needs cannot be reached (`away`: a zone's store, by default; or
        the state store), waiting 1, 2, 4 ... 30 s and saying so; `None` if `stop` is set while waiting. Any other
        error goes up at once."""
        delay = 1.0
        while True:
            try:
                return call()
            except away as exc:
                log.warning("%s; trying again in %.0f s", exc, delay)
                if stop is not None:
                    if stop.wait(delay):
                        return None
                else:
                    time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def up(
        self,
        stop: threading.Event,
        *,
        workers: int | None = None,
        watch: bool = True,
        on_done: Callable[[Outcome], None] | None = None,
        config: Any = None,
    ) -> bool:
        """Run the event sources of `sources:` (the listing, the watcher, SQS) and `workers` worker threads (the
        config's `workers` when None; 0: none, when worker processes do the work) until `stop` is set; in-flight
        batches finish. `watch=False` leaves the watcher out. With `config` (a `service.ConfigWatch`), a changed
        landfall.yaml that loads stops it too, and it returns True. See `landfall.service`."""
        from landfall.service import run_service

        n = self.settings.workers if workers is None else workers
        return run_service(self, stop, workers=n, intake=True, watch=watch, on_done=on_done, config=config)

    def work(
        self, stop: threading.Event, *, workers: int | None = None, on_done: Callable[[Outcome], None] | None = None
    ) -> None:
        """Run worker threads only (no event source: `landfall worker`) until `stop` is set: they take queued runs
        from the state store that `up` processes (here or on other hosts) fill."""
        from landfall.service import run_service

        run_service(self, stop, workers=workers or self.settings.workers, intake=False, on_done=on_done)

    # --- reading back ----------------------------------------------------------------------------------------

    def runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        key: str | None = None,
        limit: int | None = None,
        before: str | None = None,
    ) -> list[Run]:
        """Runs, newest first; `before` (a run id) pages on to the runs older than that one."""
        return self.store.runs(status=status, workflow=workflow, key=key, limit=limit, before=before)

    def iter_runs(self, **filters: Any) -> Iterator[Run]:
        """Every run matching `filters`, newest first, read a page at a time (memory stays flat)."""
        return self.store.iter_runs(**filters)

    def run(self, run_id: str) -> Run:
        """One run with its steps; raises `NoSuchRun`."""
        return self.store.run(run_id)

    def counts(self) -> dict[str, int]:
        """How many runs are in each status."""
        return self.store.counts()

    def dead_letters(self) -> list[Run]:
        """The dead-letter list: dead runs not yet retried or purged, newest first."""
        return self.store.dead_runs()

    def retry_dead(self, run_ids: Sequence[str] | None = None) -> list[Run]:
        """Queue dead runs again (all of them when `run_ids` is None); returns the new attempts."""
        again = self.store.retry_dead(None if run_ids is None else list(run_ids))
        if again:
            self.work_available.set()
        return again

    def purge_dead(self, run_ids: Sequence[str] | None = None) -> int:
        """Take dead runs off the dead-letter list (their records and landed files stay)."""
        return self.store.purge_dead(None if run_ids is None else list(run_ids))

    def tables(self) -> list[Table]:
        return self.store.tables()

    def table(self, name: str) -> Table:
        return self.store.table(name)

    def table_detail(self, name: str) -> TableDetail:
        """One table in full: schema versions and what each changed, partitions, files."""
        from landfall.readback import table_detail

        return table_detail(self.store, name)

    def crawl(self, url: str) -> Any:
        """Find existing datasets under `url` (Hive-partitioned Parquet folders, Delta tables) and catalog them."""
        from landfall.crawler import crawl

        written = {w.write.table for w in self.settings.workflows if w.write.table}
        return crawl(self.store, url, self.settings.storage_options, {t: self.zones.table(t).url for t in written})

    def query(
        self,
        sql: str,
        *,
        as_of: int | str | None = None,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> QueryResult:
        """Run one read-only SQL statement over every cataloged table and landfall's own records
        (`landfall.runs`, `landfall.files`, `landfall.tables`, `landfall.schema_versions`), sandboxed to the
        catalog's files. `as_of` (a version or ISO timestamp) reads Delta tables back then; at most `limit` rows
        (`.truncated` says if there were more); stopped with `QueryTimeout` after `timeout` seconds.
        Unpacks as `columns, rows`."""
        from landfall.query import parse_as_of, run_query
        from landfall.tables.readers import reading

        when = parse_as_of(str(as_of)) if as_of is not None else None
        with reading(self.store):  # the files of the catalog's list stay until the query is done
            return run_query(self.store, sql, as_of=when, limit=limit, timeout=timeout, zones=self.zones)

    def sample(self, table: str, limit: int = 20) -> QueryResult:
        """The first `limit` rows of a table (for a look at the data)."""
        from landfall.query import table_ref

        self.table(table)  # NoSuchTable before any SQL
        return self.query(f"SELECT * FROM {table_ref(table)} LIMIT {int(limit)}")

    def quarantined(self, table: str, *, run_id: str | None = None, limit: int = 100) -> QueryResult:
        """Rows set aside from `table` (of one run, or all), with file, line, rule and reason; oldest lines first."""
        from landfall.engines.duckdb import lit
        from landfall.query import table_ref

        name = f"quarantine.{table}"
        self.table(name)
        where = f" WHERE _run_id = {lit(run_id)}" if run_id else ""
        return self.query(
            f"SELECT * FROM {table_ref(name)}{where} ORDER BY _source_file, _line", limit=max(1, int(limit))
        )

    def overview(self, minutes: int = 60) -> dict[str, Any]:
        """The last `minutes` of activity per minute and per workflow, the backlog and the dead-letter list's
        length (the dashboard's overview; see `readback.overview`)."""
        from landfall.readback import overview

        return overview(self.store, minutes=minutes)

    def activity(self) -> Activity:
        """Everything `/metrics` exposes, cheaply: totals of every run that ended (kept up to date incrementally),
        the backlog, the dead-letter list's length and this process's compactions."""
        from landfall.readback import Activity, Totals

        with self._totals_lock:
            if self._totals is None:
                self._totals = Totals(self.store)
        return Activity(
            totals=self._totals.read(),
            backlog=self.store.backlog(),
            dead_letters=self.store.dead_letter_count(),
            compactions=dict(self.compactions),
        )

    def readiness(self) -> dict[str, str]:
        """Whether the state store and the landing zone answer: `{"state": "ok", "landing": "ok"}` or the error."""
        checks: dict[str, str] = {}
        for name, probe in (("state", self.store.holders), ("landing", self.zones.landing.check)):
            try:
                probe()
                checks[name] = "ok"
            except Exception as exc:  # any failure means not ready; say which and why
                checks[name] = f"{type(exc).__name__}: {exc}"
        return checks

    # --- upkeep ----------------------------------------------------------------------------------------------

    def optimize(self, table: str, *, min_files: int = 2, target_file_size: str | None = None) -> Any:
        """Compact small files of every partition of `table`."""
        from landfall.engines import open_engine
        from landfall.maintenance import optimize

        wf = next((w for w in self.settings.workflows if w.write.table == table), None)
        target = target_file_size or (wf.write.compaction.target_file_size if wf and wf.write.compaction else "128MB")
        engine = open_engine("duckdb", self.settings)
        try:
            result = optimize(
                self.store,
                engine,
                table,
                min_files=min_files,
                target_file_size=target,
                zones=self.zones,
                lease_seconds=self.settings.lease_seconds,
                files_as=wf.write.files if wf else ParquetFiles(),
            )
        finally:
            engine.close()
        self._compacted(result)
        return result

    def _compacted(self, result: Any) -> None:
        """Count a compaction's commits (one per partition) for `/metrics`."""
        self.compactions[result.table] = self.compactions.get(result.table, 0) + result.partitions

    def replay_quarantine(self, table: str, run_id: str | None = None) -> Any:
        """Load the quarantined rows of `table` (of one run, or all) that pass the workflow's rules now."""
        from landfall.engines import open_engine
        from landfall.quarantine import replay

        engine = open_engine("duckdb", self.settings)
        try:
            return replay(self.settings, self.store, engine, table, run_id, zones=self.zones)
        finally:
            engine.close()

    def rebuild_catalog(self, tables: list[str] | None = None) -> list[Any]:
        """Catalog `tables` (default: every table in the tables and quarantine zones) as their folders and Delta
        logs hold them now. Refused while runs are running: a batch in flight has files no commit holds yet."""
        from landfall.catalog import rebuild

        with self._idle("rebuild", hold=False):  # a commit made meanwhile is read again (`catalog.read_again`)
            return rebuild(self.settings, self.store, self.zones, tables)

    def reload_table(self, table: str) -> Any:
        """Load `table` again from its landed files under the workflow as it is now (`landfall.catalog.reload`):
        its folder is kept aside and its files are queued; the next `process` makes it anew."""
        from landfall.catalog import reload

        with self._idle("reload"):
            return reload(self.settings, self.store, self.zones, table)

    @contextmanager
    def _idle(self, what: str, *, hold: bool = True) -> Iterator[None]:
        """`what` on an idle lake: refused while a service runs on it; with `hold`, one that starts meanwhile waits
        for the block's end."""
        held = idle(self.store, self.settings.lease_seconds) if hold else nullcontext(running_services(self.store))
        with held as services:
            if services:
                raise LandfallError(
                    f"`landfall up`, `worker` or `process` is running on this lake ({', '.join(services)}); stop it "
                    f"(or let it end), then {what} (one stopped without letting go is forgotten within "
                    f"{self.settings.lease_seconds:.0f} s)"
                )
            recover(self.settings, self.store, self.zones)
            running = self.store.counts()["running"]
            if running:
                raise LandfallError(
                    f"{running} runs are running; stop `landfall up` and `process` (or wait for them), then {what}"
                )
            yield

    def vacuum(self, table: str, retain: str = "7d") -> list[str]:
        from landfall.maintenance import vacuum

        return vacuum(self.store, table, retain, zones=self.zones)

    def history(self, table: str, limit: int | None = None) -> list[Any]:
        """A Delta table's versions, newest first (the latest `limit`)."""
        from landfall.maintenance import history

        return history(self.store, table, zones=self.zones, limit=limit)

    def close(self) -> None:
        """Release what this pipeline holds: the state store's connections and, when it is the last open pipeline
        of the process, the shared thread pools (their threads are joined). `process` and `up` join their own
        threads before they return. Closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        pools.let_go()
        self.store.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
