"""Workflows fed by a table (`source: {table: orders}`): bronze -> silver -> gold without files in between.

Each run that writes rows into the table is an event, `_tables/<table>/<run id>` (size: its rows), for every
workflow the table feeds; so is a run that wrote none but replaced an earlier version's rows (`feeds`). A
changed file's rows replace its earlier rows downstream too: the fed run takes out the rows of the events of
the upstream runs its upstream run replaced (`superseded`). The runner reports them as it commits (`feed`);
`TableSource.poll` finds any a crash kept it from reporting, as listing does for landed files. The load history
knows each event once, so each upstream run is read once per workflow.

A run of the fed workflow reads the rows the upstream run wrote (`_run_id`), as the table holds them when the run
starts (under a reader lease): in an `append` table exactly what it added; in a `merge` table the rows it wrote
that no later run has replaced since (those come with the later run). They arrive as Parquet with the
upstream lineage as `_upstream_source_file` and `_upstream_run_id`; the run's own `_source_file` is the event's
key, which names the upstream run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

from landfall.config import TABLE_EVENTS, Settings, Workflow
from landfall.errors import ConcurrentChange, ConfigError, ContentRace, NoSuchRun
from landfall.events import ObjectCreated
from landfall.hops import copy, upstream_select
from landfall.routing import Router
from landfall.sources.base import EventSource
from landfall.state.base import Run, RunResult, StateStore
from landfall.tables.readers import reading

if TYPE_CHECKING:
    from landfall.runner import Outcome, Runner

PAGE = 200


def event(table: str, run: Run | RunResult) -> ObjectCreated:
    """The event of one upstream run that wrote rows into `table`: the same whoever reports it (`feed` as the
    runner commits, `TableSource.poll` later), so the load history knows it once."""
    return ObjectCreated(key=f"{TABLE_EVENTS}{table}/{run.run_id}", size=run.rows_out or 0, mtime=0.0)


def feed(settings: Settings, store: StateStore, table: str, results: Sequence[RunResult]) -> None:
    """After a commit to `table`: queue its runs (those that are events, `feeds`) for the workflows it feeds."""
    if not settings.fed_by(table):
        return
    events = [event(table, r) for r in results if r.status == "succeeded" and feeds(settings, store, table, r)]
    if events:
        store.discover(events, Router(settings.workflows).route)


class TableSource(EventSource):
    """Finds upstream runs no event was queued for (a crash between a commit and `feed`)."""

    def __init__(self, settings: Settings, store: StateStore) -> None:
        self.settings = settings
        self.store = store

    def poll(self) -> list[ObjectCreated]:
        found: list[ObjectCreated] = []
        tables = {w.source.table for w in self.settings.workflows if w.source is not None}
        for wf in (w for w in self.settings.workflows if w.write.table in tables):
            before = None
            while True:  # newest first, until a page holds nothing new
                page = self.store.runs(status="succeeded", workflow=wf.name, limit=PAGE, before=before)
                events = [event(wf.write.table, r) for r in page if feeds(self.settings, self.store, wf.write.table, r)]
                new = self.store.unknown(events) if events else []
                found += new
                if len(page) < PAGE or (events and not new):
                    break
                before = page[-1].run_id
        return found


def run_from_table(runner: Runner, wf: Workflow, runs: list[Run]) -> list[Outcome]:
    """Run `wf` over the rows each upstream run (named by its event's key) wrote into the source table."""
    from landfall.engines.base import Source
    from landfall.job import run_job
    from landfall.outcomes import message

    engine = runner.engine_for(wf, runs)
    table = wf.source.table if wf.source else ""
    for run in runs:
        upstream = run.file_key.rsplit("/", 1)[-1]
        scratch = runner.zones.landing.scratch("table")
        try:
            path = os.path.join(scratch, f"{upstream}.parquet")
            with reading(runner.store, [table]):
                _rows_of(runner, table, upstream, path)
            digest = hashlib.sha256(run.file_key.encode()).hexdigest()  # one upstream run: one content
            src = Source(key=run.file_key, path=path, run_id=run.run_id, file_id=run.file_id, size=run.size)
            replaces = superseded(runner.settings, runner.store, run.file_key)
            run_job(runner, wf, [(run, src, digest)], run.batch_id or run.run_id, engine, replaces)
        except (ContentRace, ConcurrentChange):
            runner.store.defer([run.run_id], seconds=0.05)
        except Exception as exc:
            runner.fail(run, wf, message(exc, run.file_key), None, exc)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return runner.outcomes


def feeds(settings: Settings, store: StateStore, table: str, run: Run | RunResult) -> bool:
    """Whether an upstream run is an event for the workflows `table` feeds: it wrote rows, or it wrote none but
    took out rows an earlier version of its file had brought (a changed file now empty), which go downstream
    too."""
    if run.rows_out:
        return True
    if isinstance(run, Run):  # listed by `TableSource.poll`: no need to look it up again
        return bool(_earlier_runs(settings, store, table, run, 0))
    return bool(superseded(settings, store, event(table, run).key))


def superseded(settings: Settings, store: StateStore, key: str, depth: int = 0) -> list[str]:
    """The events whose rows the run of event `key` (`_tables/<table>/<run id>`) replaces downstream: those of
    the upstream runs that loaded earlier versions of the same landed file into the table (whose rows the
    upstream run replaced there, under its workflow's `on_change: replace`), through fed tables of fed tables
    too. Runs that committed after it are not among them (a later version replaces this one, not the other way
    round)."""
    if not key.startswith(TABLE_EVENTS) or depth > 16:
        return []
    table, run_id = key[len(TABLE_EVENTS) :].rsplit("/", 1)
    try:
        upstream = store.run(run_id)
    except NoSuchRun:
        return []
    return _earlier_runs(settings, store, table, upstream, depth)


def _earlier_runs(settings: Settings, store: StateStore, table: str, upstream: Run, depth: int) -> list[str]:
    """`superseded` for the upstream run itself."""
    try:
        workflow = settings.workflow(upstream.workflow or "")
    except ConfigError:
        return []
    if workflow.on_change != "replace" or upstream.finished_at is None:
        return []
    earlier: list[str] = []
    for file_key in [upstream.file_key, *superseded(settings, store, upstream.file_key, depth + 1)]:
        earlier += [
            event(table, r).key
            for r in store.runs(key=file_key, status="succeeded", workflow=upstream.workflow)
            if r.run_id != upstream.run_id
            and r.rows_out
            and r.finished_at is not None
            and r.finished_at < upstream.finished_at
        ]
    return earlier


def _rows_of(runner: Runner, table: str, run_id: str, dest: str) -> None:
    """The rows of `table` that run `run_id` wrote, as the catalog lists its files now, into a local Parquet:
    read from the files the catalog says hold rows of the run's landed file (not every file of the table, which
    made each run's read grow with the table)."""
    import duckdb

    from landfall.engines.duckdb.sql import lit
    from landfall.query import table_select
    from landfall.tables.readers import check_listed

    entry = runner.store.table(table)
    try:
        files = runner.store.files_holding(table, [runner.store.run(run_id).file_key], [])
    except NoSuchRun:
        files = [f.path for f in runner.store.table_files(table)]
    storage = runner.zones.at(entry.location)
    con = duckdb.connect(":memory:")
    try:
        storage.register_with(con)
        rows = f"({table_select(entry, files)})"
        copy(con, upstream_select(con, rows, f"CAST(_run_id AS VARCHAR) = {lit(run_id)}"), dest)
    except Exception as exc:
        check_listed(runner.store, table, files, exc, storage)  # a file replaced meanwhile, or gone
        raise
    finally:
        con.close()
