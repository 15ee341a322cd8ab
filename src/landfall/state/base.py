"""The state store: load history, the durable queue, run records and the catalog, in one transactional store.

The queue *is* the runs table: a run with status `queued` is a queue entry; leasing it sets `running`, the
worker and a lease deadline that heartbeats push forward; acking it sets a final status. A run and its queue
entry can therefore never disagree, and a crash at any point leaves every file in exactly one visible state.

`SqlStateStore` (`sql.py`, `commits.py`, `reads.py`, `plumbing.py`) holds all SQL that the backends share; a backend
supplies the connection and dialect only.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec

from landfall.errors import NoSuchTable
from landfall.events import ObjectCreated
from landfall.processes import process_gone, worker_id
from landfall.types import column_json

RunStatus = Literal["queued", "running", "succeeded", "failed", "dead", "skipped", "unrouted"]
RUN_STATUSES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "dead", "skipped", "unrouted")
log = logging.getLogger("landfall.state")

FINAL_STATUSES = ("succeeded", "failed", "dead", "skipped", "unrouted")


MAX_INTERRUPTIONS = 3  # a file whose worker dies this many times while loading it goes to the dead-letter list

_id_lock = threading.Lock()
_id_last = [0, 0]  # the millisecond and the counter of the last id this process made


def new_id(prefix: str = "") -> str:
    """A UUIDv7 (RFC 9562): 48 bits of milliseconds, a 12-bit counter, 62 random bits. Ids sort by time, ids
    made by one process sort in the order they were made, and ids never collide (no uniqueness check needed)."""
    ms = time.time_ns() // 1_000_000
    with _id_lock:
        last_ms, counter = _id_last
        if ms <= last_ms:  # same millisecond (or the clock stepped back): count on from the last id
            ms, counter = (last_ms, counter + 1) if counter < 0xFFF else (last_ms + 1, 0)
        else:
            counter = 0
        _id_last[:] = [ms, counter]
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | secrets.randbits(62)
    return f"{prefix}{uuid.UUID(int=value)}"


class Run(msgspec.Struct):
    """One attempt at loading one file version through one workflow (a row of the runs table)."""

    run_id: str
    file_id: int
    file_key: str
    workflow: str | None
    status: str
    attempt: int
    size: int = 0
    mtime: float = 0.0
    etag: str = ""
    content_hash: str | None = None
    table_name: str | None = None
    queued_at: float | None = None
    available_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None
    batch_id: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    bytes: int | None = None
    output_files: list[str] = []
    error: str | None = None
    note: str | None = None
    steps: list[dict[str, Any]] = []
    rows_quarantined: int | None = None
    quality: dict[str, Any] = {}
    interruptions: int = 0  # times a worker died while running this file version (not counted as attempts)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return round(self.finished_at - self.started_at, 6)

    def to_json(self) -> dict[str, Any]:
        """The stable shape of `landfall runs --json` (documented in the README)."""
        iso = iso_time
        return {
            "run_id": self.run_id,
            "file_id": self.file_key,
            "file_version": self.file_id,
            "workflow": self.workflow,
            "table": self.table_name,
            "status": self.status,
            "attempt": self.attempt,
            "queued_at": iso(self.queued_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_seconds": self.duration,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "bytes": self.bytes if self.bytes is not None else self.size,
            "content_hash": self.content_hash,
            "output_files": self.output_files,
            "error": self.error,
            "note": self.note,
            "rows_quarantined": self.rows_quarantined,
            "quality": self.quality,
            "interruptions": self.interruptions,
            # the text encoding the file was read in, declared or detected, and how sure (from its read step)
            "encoding": next(
                (s["encoding"] for s in self.steps or [] if isinstance(s, dict) and "encoding" in s), None
            ),
        }


def iso_time(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DataFile(msgspec.Struct):
    """A Parquet file that is part of a table (relative to the table's location)."""

    path: str
    rows: int
    bytes: int
    partition: dict[str, str] = {}
    commit_id: str | None = None
    stats: dict[str, Any] = {}


class SourceRows(msgspec.Struct):
    """How many rows of a landed file version a table file holds."""

    path: str
    source_key: str
    file_id: int
    run_id: str
    rows: int


class TableCommit(msgspec.Struct):
    """Everything one commit changes in the catalog, applied in the same transaction as the run results."""

    table: str
    location: str
    format: str
    workflow: str
    schema: list[tuple[str, str]]
    partition_by: list[str]
    commit_id: str
    add: list[DataFile] = []
    remove: list[str] = []
    sources: list[SourceRows] = []
    exact: bool = False  # `add` is the table's whole file list (a resync from the table format's log)
    #: the table's `updated_at` when the files in `add` were read (0: not in the catalog then). A commit to the
    #: table since then refuses this one (`ConcurrentChange`): a whole file list read earlier would drop it
    as_of: float | None = None
    #: the table's files as the job read them when what it writes depends on them (see `TableChange.read`): a
    #: file the catalog lists beyond these refuses the commit (for a table with a log of its own, its format
    #: checks instead, before its commit: see `TableTransaction.commit`)
    read: list[str] | None = None
    #: the table's schema version the job held its batch to (0: no table yet), for `freeze`, `rescue` and
    #: `discard_row`, and for a batch made for a new table under any policy (its types are its own files'): a
    #: schema changed since (another worker made or changed the table) refuses the commit (for a table with a log
    #: of its own, `TableChange.read_columns` instead)
    schema_of: int | None = None
    #: a quarantine's: a column whose types no type holds both of becomes text (`landfall.schema.merged`)
    to_text: bool = False


class RunResult(msgspec.Struct):
    run_id: str
    status: str  # succeeded | skipped
    rows_in: int | None = None
    rows_out: int | None = None
    bytes: int | None = None
    output_files: list[str] = []
    note: str | None = None
    steps: list[dict[str, Any]] = []
    content_hash: str | None = None
    rows_quarantined: int | None = None
    quality: dict[str, Any] = {}
    worker: str | None = None  # the lease holder: the result is recorded only while it still holds the run
    #: its rows replace its file's earlier versions' (`on_change: replace`): the content check at commit passes
    #: over runs of versions replaced since (`StateStore.find_duplicates(supersede=True)`)
    supersedes: bool = False


class Table(msgspec.Struct):
    name: str
    location: str
    format: str
    workflow: str | None
    schema: list[tuple[str, str]]
    schema_version: int
    partition_by: list[str]
    created_at: float
    updated_at: float
    row_count: int = 0
    file_count: int = 0
    bytes: int = 0

    def to_json(self) -> dict[str, Any]:
        """The stable shape of `landfall tables --json` (documented in the README)."""
        return {
            "name": self.name,
            "location": self.location,
            "format": self.format,
            "workflow": self.workflow,
            "schema": [column_json(n, t) for n, t in self.schema],
            "schema_version": self.schema_version,
            "partition_by": self.partition_by,
            "rows": self.row_count,
            "files": self.file_count,
            "bytes": self.bytes,
            "created_at": iso_time(self.created_at),
            "updated_at": iso_time(self.updated_at),
        }


class StateStore(ABC):
    """Load history, queue, runs and catalog. Every method is safe to call from several threads/processes."""

    url: str

    # --- load history and queue ------------------------------------------------------------------------------

    @abstractmethod
    def unknown(self, events: Iterable[ObjectCreated]) -> list[ObjectCreated]:
        """The events whose file version (`key`, `size`, `mtime`, `etag`) was never discovered, in their order.

        Reads `events` (a list or a stream, e.g. a listing as it goes) and looks their keys up in chunks: memory
        holds the new versions only, however many files are listed and versions the store knows.
        """

    @abstractmethod
    def discover(self, events: Sequence[ObjectCreated], route: Any) -> list[Run]:
        """Record new file versions; enqueue a run for each routed one, an `unrouted` run for the rest.

        `route(key)` returns a workflow (with `.name`, `.write.table`, `.retry.max_attempts`) or None.
        Versions already known (to this call, or to another process discovering at the same time) are ignored.
        The versions of one call are queued in the order they landed (by modification time, then key), after those
        of earlier calls. Returns the runs created.
        """

    def version_status(self, events: Sequence[ObjectCreated]) -> dict[ObjectCreated, str]:
        """The status of each file version's latest run (`queued`, `running`, `succeeded`, `dead`, ...), by its
        event; versions never discovered are left out. Event sources that hold a message until its file's run
        ends (`sqs`) ask this."""
        raise NotImplementedError(f"{type(self).__name__} cannot report file versions")

    @abstractmethod
    def lease(
        self,
        worker: str,
        *,
        limit: int,
        max_bytes: int,
        lease_seconds: float,
        limits: dict[str, int] | None = None,
        in_order: Sequence[str] = (),
        in_order_workflows: Sequence[str] = (),
    ) -> list[Run]:
        """Take up to `limit` available queued runs of one workflow (and at most `max_bytes`, but at least one).

        `limits` caps some workflows lower (1 for workflows whose files must run one at a time). A run whose
        worker died before is leased alone. No run is ever leased to two workers, and two versions of one file
        never run at the same time. Runs of the tables `in_order` run one batch at a time, in the order their files
        landed: none while another of the table runs, nor while one that landed before waits for a retry (or
        belongs to another workflow); a batch is the earliest that may run, none passed over. Runs of the
        workflows `in_order_workflows` (hops, which write no table) the same, by workflow.
        """

    @abstractmethod
    def heartbeat(self, worker: str, run_ids: Sequence[str], lease_seconds: float) -> list[str]:
        """Push the lease deadline of runs this worker holds; returns the ids it no longer holds (taken back)."""

    @abstractmethod
    def release(self, worker: str, run_ids: Sequence[str]) -> None:
        """Give leased runs back to the queue untouched (clean shutdown)."""

    @abstractmethod
    def defer(self, run_ids: Sequence[str], seconds: float, *, worker: str | None = None) -> None:
        """Put leased runs back in the queue, available again after `seconds` (not an attempt). With `worker`,
        only runs that worker still holds."""

    @abstractmethod
    def fail(
        self,
        run_id: str,
        error: str,
        *,
        retry_in: float | None,
        steps: list[dict[str, Any]] | None = None,
        content_hash: str | None = None,
        worker: str | None = None,
    ) -> Run | None:
        """Record a failed attempt. With `retry_in`, queue the next attempt then; without, the run is `dead`.

        With `worker`, raises `LeaseLost` (and records nothing) unless that worker still holds the run.
        Returns the next attempt's run, if any.
        """

    @abstractmethod
    def pending(self) -> bool:
        """True while any run is queued or running (a cheap check: no counting)."""

    @abstractmethod
    def wait_for_work(self, timeout: float) -> bool:
        """Block until a queued run may be available (one was queued or requeued, or a backoff ran out), runs
        ended (the queue may be empty now: see `pending`), or `timeout` seconds pass. True: look for work now (a
        wake-up may be spurious). False: timed out."""

    @abstractmethod
    def check_content(self, results: Sequence[RunResult], *, lease_seconds: float) -> None:
        """Raise `LeaseLost` if a result's worker no longer holds its run, `ContentRace` if another file with the
        same bytes as a result's was loaded meanwhile. Called before a table format's own commit, which cannot be
        taken back: the runs' leases are renewed for `lease_seconds` too, so that commit has a whole lease before
        recovery could take the runs back and remove the files it lists (a worker that stalled past its lease,
        its runs not yet taken back, would otherwise pass the check a moment before they were)."""

    @abstractmethod
    def commit(self, table: TableCommit | None, results: Sequence[RunResult], also: Sequence[TableCommit] = ()) -> None:
        """In one transaction: apply a table commit (and `also`, e.g. its quarantine) to the catalog and record
        each run's final result.

        Commits to one table are serialized (its schema version goes up by one per change, never skips or
        repeats). Raises `LeaseLost` (and changes nothing) if a result's `worker` no longer holds its run.
        """

    def sync(self) -> None:
        """Every commit made so far on disk. Called before deleting files a commit stopped naming: a store that
        can lose its latest commits in a power cut would otherwise come back naming files no longer there.
        Nothing to do where a commit is on disk when it returns (PostgreSQL)."""

    def now(self) -> float:
        """Seconds since the epoch on the state store's clock. Lease ends, queue times and readers' start times are
        written and compared on it, so that hosts sharing a store agree on them whatever their own clocks say (a
        host whose clock is a minute ahead would otherwise see every other host's leases as run out)."""
        return time.time()

    @abstractmethod
    def reap(self, now: float | None = None, *, max_interruptions: int = MAX_INTERRUPTIONS) -> list[Run]:
        """Take back runs whose worker is gone: the lease expired, or the worker is a process of this machine
        that has provably exited (same boot, PID namespace, PID and start time). Each such run is queued again
        without using an attempt (the file is not at fault); after `max_interruptions` the file is `dead`, with
        a message saying its worker died that many times on it. Returns the runs taken back."""

    def find_duplicate(self, workflow: str, content_hash: str, file_id: int, *, supersede: bool = False) -> Run | None:
        """A succeeded run of the same workflow whose file had the same content, other than `file_id`. With
        `supersede` (`on_change: replace`: a file's new version replaces its earlier versions' rows), not a run of
        a file version a later version of its file has replaced since: its rows are no longer the table's (a file
        changed back to what it held before is loaded again)."""
        return self.find_duplicates(workflow, {content_hash: file_id}, supersede=supersede).get(content_hash)

    @abstractmethod
    def find_duplicates(self, workflow: str, hashes: dict[str, int], *, supersede: bool = False) -> dict[str, Run]:
        """`find_duplicate` for many `{content hash: file id}` at once; only hashes with a duplicate."""

    # --- runs ------------------------------------------------------------------------------------------------

    @abstractmethod
    def runs(
        self,
        *,
        status: str | None = None,
        workflow: str | None = None,
        key: str | None = None,
        limit: int | None = None,
        before: str | None = None,
    ) -> list[Run]:
        """Runs, newest first (by queue time, then run id), at most `limit` (None: all).

        Keyset paging: `before` is the `run_id` of the last run of the previous page; the page holds the runs
        after it in this order. Raises `NoSuchRun` for an unknown `before`. `iter_runs` walks every page.
        """

    def iter_runs(self, *, page: int = 500, before: str | None = None, **filters: Any) -> Iterator[Run]:
        """Every run matching `filters` (as `runs`; after the run `before`, if given), newest first, read `page`
        runs at a time: memory stays flat however many runs there are."""
        while True:
            found = self.runs(limit=page, before=before, **filters)
            yield from found
            if len(found) < page:
                return
            before = found[-1].run_id

    @abstractmethod
    def run(self, run_id: str) -> Run:
        """One run; raises `NoSuchRun`."""

    def status_rows(self, name: str) -> list[tuple[Any, ...]]:
        """Every row of `runs` or `files` for the read-only `landfall.runs` / `landfall.files` query tables.

        runs: (run_id, file key, file version, workflow, table, status, attempt, queued_at, started_at,
        finished_at, rows_in, rows_out, bytes, rows_quarantined, content_hash, error, note, worker, batch_id);
        files: (file version, key, size, mtime, etag, content_hash, discovered_at, workflow, latest status,
        runs)."""
        raise NotImplementedError(f"{type(self).__name__} has no status tables")

    # Cheap aggregates for the overview, /metrics and alerts (index on finished_at), newest data only.

    def finished_since(self, since: float, limit: int = 200_000) -> list[tuple[Any, ...]]:
        """Runs that ended at or after `since` (the newest `limit`), oldest first: (workflow, status, finished_at,
        started_at, discovered_at of the file, rows_out, bytes, rows_quarantined)."""
        raise NotImplementedError

    def ended_since(self, since: float, limit: int = 1000) -> list[Run]:
        """Runs that ended after `since`, oldest first (at most `limit`)."""
        raise NotImplementedError

    def last_landed(self, prefix: str) -> float | None:
        """When landfall last saw a new file version under `prefix` (None: never)."""
        raise NotImplementedError

    def backlog(self) -> list[tuple[Any, ...]]:
        """(workflow, status, count, oldest queued_at) for `queued` and `running` runs."""
        raise NotImplementedError

    def totals(self, after: float | None, until: float, buckets: Sequence[float]) -> list[tuple[Any, ...]]:
        """Runs that ended in `(after, until]`, per (workflow, status): count, sum of rows_in, rows_out, bytes,
        rows_quarantined, duration, then one count per bucket of runs that took at most that many seconds."""
        raise NotImplementedError

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """How many runs are in each status."""

    @abstractmethod
    def retry_dead(self, run_ids: Sequence[str] | None) -> list[Run]:
        """Queue a new attempt for dead runs (all of them when `run_ids` is None)."""

    @abstractmethod
    def reload(self, file_ids: Sequence[int], note: str) -> list[Run]:
        """Queue a new attempt for file versions whose rows a table no longer holds (a lost commit), with
        `note` saying why; versions already queued or running are left alone. Returns the runs queued."""

    @abstractmethod
    def drop_tables(self, names: Sequence[str], note: str) -> list[Run]:
        """Take tables out of the catalog (their files, sources and schema versions) and, in the same
        transaction, queue a new attempt (as `reload`, with `note` saying why) for every landed file version whose
        rows they held, and for the newest version of each file whose run for them succeeded (its rows may all
        have lost to other files' in a merge) or is dead (taken off the dead-letter list). Returns the runs
        queued."""

    @abstractmethod
    def reroute(self, route: Any, workflows: Collection[Any] | None = None) -> list[Run]:
        """Queue the unrouted runs whose file `route(key)` (the workflow for a key, or None) now gives a workflow
        (one added since the file landed): each file's newest version only, for that workflow. With `workflows`
        (the config's), the queued runs of a workflow that no longer takes their file (renamed, removed, its
        `match` changed) go to the workflow `route` gives their file now, or are recorded unrouted; and each
        workflow's queued runs take the table and the attempts it has now. Returns the runs queued or moved."""

    @abstractmethod
    def purge_dead(self, run_ids: Sequence[str] | None) -> int:
        """Take dead runs off the dead-letter list (their records stay)."""

    # --- catalog ---------------------------------------------------------------------------------------------

    @abstractmethod
    def tables(self) -> list[Table]:
        """Every cataloged table."""

    @abstractmethod
    def table(self, name: str) -> Table:
        """One table; raises `NoSuchTable`."""

    def find_table(self, name: str) -> Table | None:
        """One table, or None when the catalog has none of that name."""
        try:
            return self.table(name)
        except NoSuchTable:
            return None

    @abstractmethod
    def table_files(self, name: str, paths: Sequence[str] | None = None) -> list[DataFile]:
        """The files of a table's current version (only those in `paths`, when given)."""

    @abstractmethod
    def schema_versions(self, name: str) -> list[dict[str, Any]]:
        """Every schema version of a table: version, schema, run that introduced it, time."""

    @abstractmethod
    def files_holding(self, table: str, source_keys: Sequence[str], exclude_file_ids: Sequence[int]) -> list[str]:
        """Table files that hold rows of other versions of these landed keys."""

    @abstractmethod
    def file_sources(self, table: str, path: str) -> list[SourceRows]:
        """Which landed file versions a table file holds rows of."""

    @abstractmethod
    def dead_runs(self, limit: int | None = None) -> list[Run]:
        """The dead-letter list: dead runs not yet retried or purged, newest first (at most `limit`); a run of a
        file version that a newer one has since replaced leaves it (the newer version has a run of its own)."""

    @abstractmethod
    def dead_letter_count(self) -> int:
        """How many runs are on the dead-letter list."""

    # --- leases on work that is not a run (compaction, quarantine replay) ------------------------------------

    @abstractmethod
    def hold(self, name: str, holder: str, seconds: float) -> bool:
        """Take (or renew) the lease `name` for `holder` until `seconds` from now; False while another holder's
        lease on it is live."""

    @abstractmethod
    def renew(self, name: str, holder: str, seconds: float) -> bool:
        """Extend `holder`'s live lease on `name` until `seconds` from now; False, extending nothing, when it ran
        out (or another holder has it): what was done under a lease that ran out may have been undone meanwhile
        (recovery removes the files of a commit whose lease is gone), so such a lease is lost, not taken again."""

    @abstractmethod
    def let_go(self, name: str, holder: str) -> None:
        """End `holder`'s lease on `name`."""

    @abstractmethod
    def holders(self) -> set[str]:
        """Holders of live leases: commits in flight that recovery must not take for leftovers of a crash."""

    @abstractmethod
    def schema_version(self) -> int:
        """The version of the state store's own schema (its migrations applied)."""

    def close(self) -> None:
        """Release connections and stop background threads."""


def backoff(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Exponential backoff with jitter: base * 2^(attempt-1), capped, +- jitter share."""
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return max(0.0, delay * (1 + random.uniform(-jitter, jitter)))


@contextmanager
def holding(
    store: StateStore, name: str, holder: str, seconds: float = 60.0, *, fenced: bool = False
) -> Iterator[bool]:
    """Hold the lease `name` while the block runs, renewed in the background; yields False (and holds nothing)
    when another holder has it. `fenced`: once it ran out (the process stalled past it) it is not taken again,
    and the block checks `store.renew` before it acts on it (a commit's lease: see `StateStore.renew`)."""
    if not store.hold(name, holder, seconds):
        yield False
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(seconds / 3):
            try:
                if not fenced:
                    store.hold(name, holder, seconds)
                elif not store.renew(name, holder, seconds):
                    log.warning("lease %s ran out before it was renewed (the process stalled); it is lost", name)
                    return
            except Exception as exc:  # a missed renewal only shortens the lease
                log.warning("renewing lease %s failed: %s", name, exc)

    beat = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    beat.start()
    try:
        yield True
    finally:
        stop.set()
        beat.join()
        store.let_go(name, holder)


SERVICE_LEASE = "service:"  # held by each `landfall up`, `worker` and `process` while it runs (`running`)
IDLE_LEASE = "idle:"  # held by `tables reload` and `tables rebuild` while they run (`idle`)


@contextmanager
def running(store: StateStore, seconds: float) -> Iterator[None]:
    """Hold a service lease for this process while the block runs (`landfall up`, `worker`, a `process` call):
    commands that need the lake idle (`tables reload`, `tables rebuild`) are refused meanwhile, and one that
    runs already is waited for first. Each side takes its lease and then looks for the other's, so one of two
    that start together always sees the other."""
    me = f"{SERVICE_LEASE}{worker_id()}:{new_id('s')}"
    with holding(store, me, me, seconds):
        said = False
        while _live_holders(store, IDLE_LEASE):
            if not said:
                log.warning("`landfall tables reload` or `rebuild` is running on this lake; waiting for its end")
                said = True
            time.sleep(0.2)
        yield


@contextmanager
def idle(store: StateStore, seconds: float) -> Iterator[list[str]]:
    """Hold the lake for a command that needs it idle (`tables reload`, `tables rebuild`) while the block runs;
    yields the services running on it (the block refuses to go on if there are any): a service that starts
    meanwhile waits for the block's end (see `running`)."""
    me = f"{IDLE_LEASE}{worker_id()}:{new_id('i')}"
    with holding(store, me, me, seconds):
        yield running_services(store)


def running_services(store: StateStore) -> list[str]:
    """What runs on this lake (`host:pid:...`), by the service leases; one of this machine that exited without
    letting go is not counted."""
    return _live_holders(store, SERVICE_LEASE)


def _live_holders(store: StateStore, prefix: str) -> list[str]:
    """The holders of live leases named `prefix...` (`host:pid:...`, the prefix taken off), but those of processes
    of this machine that exited without letting go."""
    found = (h.removeprefix(prefix) for h in store.holders() if h.startswith(prefix))
    return sorted(w for w in found if not process_gone(w))
