"""The `landfall` command: a thin adapter over `landfall.Pipeline`."""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import signal
import sys
import tempfile
import textwrap
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from landfall import logs
from landfall.config import load_settings
from landfall.errors import LandfallError
from landfall.output import console, copy_progress, human, num, on_pipe, run_progress, say, table, warn
from landfall.output import status as status_text
from landfall.pipeline import Pipeline, Summary
from landfall.readback import describe_change, jsonable, run_json, version_json
from landfall.redaction import redact
from landfall.state.base import RUN_STATUSES, Run
from landfall.types import sql_name


class Ctx:
    def __init__(self, config: str | None, lake: str | None, argv: list[str] | None = None) -> None:
        self.config = config
        self.lake = lake
        self.argv = argv or []  # the global options as given, for child processes (`--processes`)
        self._pipeline: Pipeline | None = None

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            settings = load_settings(self.config, overrides={"lake": self.lake})
            self._pipeline = Pipeline(settings)
        return self._pipeline

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()


class LandfallGroup(click.Group):
    """Turns landfall errors into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LandfallError as exc:
            raise click.ClickException(redact(str(exc))) from None


@click.group(cls=LandfallGroup)
@click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=True),
    default=None,
    envvar="LANDFALL_CONFIG",
    help="Path to landfall.yaml (default: ./landfall.yaml, else built-in defaults).",
)
@click.option("--lake", default=None, help="Override the lake root (a folder or URL).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Less log output (-qq for errors only).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines for people (text) or machines (json, one object per line).",
)
@click.version_option(package_name="landfall")
@click.pass_context
def main(ctx: click.Context, config: str | None, lake: str | None, verbose: int, quiet: int, log_format: str) -> None:
    """landfall: files land, workflows run, typed tables appear, SQL queries them."""
    level = min(max(logging.WARNING + 10 * (quiet - verbose), logging.DEBUG), logging.CRITICAL)
    logs.setup(level, log_format)
    argv = [*(["--config", config] if config else []), *(["--lake", lake] if lake else [])]
    argv += ["-v"] * verbose + ["-q"] * quiet + ["--log-format", log_format]
    ctx.obj = Ctx(config, lake, argv)
    ctx.call_on_close(ctx.obj.close)  # connections closed and threads joined before the interpreter exits


# --- start and run ------------------------------------------------------------------------------------------


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing landfall.yaml.")
def init(directory: str, force: bool) -> None:
    """Write a commented starter landfall.yaml and sample data into DIRECTORY."""
    from landfall.samples import init_project

    try:
        config, samples = init_project(Path(directory), force=force)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    say("wrote ", (str(config), "bold"), f" and {len(samples)} sample files under {Path(directory) / 'lake/landing'}")
    say("next: ", (f"cd {directory} && landfall process && landfall tables", "bold"))


WORKERS_HELP = "Worker threads per process (default: from config, 2)."
PROCESSES_HELP = "Worker processes on this host, each with --workers threads (default: from config, 1: threads here)."


@main.command()
@click.option("--workers", type=int, default=None, help=WORKERS_HELP)
@click.option("--processes", type=click.IntRange(1, 64), default=None, help=PROCESSES_HELP)
@click.option("--no-watch", is_flag=True, help="Only list the landing zone periodically; no file watcher.")
@click.option("--serve", "with_server", is_flag=True, help="Also serve the API, the dashboard and /metrics.")
@click.option("--host", default=None, help="With --serve: the address to bind (default: serve.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="With --serve: the port (default: serve.port, 8080; 0: any).")
@click.pass_obj
def up(
    obj: Ctx,
    workers: int | None,
    processes: int | None,
    no_watch: bool,
    with_server: bool,
    host: str | None,
    port: int | None,
) -> None:
    """Watch the landing zone and process files continuously until SIGINT/SIGTERM (--serve: and serve).

    With --processes N (N > 1) the work is done by N `landfall worker` processes this one starts and keeps
    running; this one runs the event sources only."""
    p = obj.pipeline()
    served = _bind(p, host, port) if with_server else None
    stop = _stop_on_signals()
    if logging.getLogger("landfall").level > logging.INFO:
        logging.getLogger("landfall").setLevel(logging.INFO)
    thread = served.start() if served else None
    children = _worker_processes(obj, p, processes, workers)
    try:
        p.up(stop, workers=0 if children else workers, watch=not no_watch)
    finally:
        if children:
            children.stop()
        if served and thread:
            served.stop()
            thread.join(10)


@main.command()
@click.option("--workers", type=int, default=None, help=WORKERS_HELP)
@click.option("--processes", type=click.IntRange(1, 64), default=None, help=PROCESSES_HELP)
@click.pass_obj
def worker(obj: Ctx, workers: int | None, processes: int | None) -> None:
    """Load queued files until SIGINT/SIGTERM, without looking for files: no listing, no watcher, no SQS.

    Runs beside `landfall up` (on this host or others, sharing its state store and zones) so that event intake
    and workers scale apart."""
    from landfall.supervise import die_with_parent

    die_with_parent()
    p = obj.pipeline()
    stop = _stop_on_signals()
    if logging.getLogger("landfall").level > logging.INFO:
        logging.getLogger("landfall").setLevel(logging.INFO)
    children = _worker_processes(obj, p, processes, workers)
    if children is None:
        p.work(stop, workers=workers)
        return
    try:
        while not stop.wait(0.5):
            pass
    finally:
        children.stop()


def _stop_on_signals() -> threading.Event:
    """An event set by the first SIGINT/SIGTERM (in-flight work finishes); a second one exits at once."""
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():  # a second signal: stop now; leased runs return to the queue when leases expire
            raise SystemExit(130)
        warn((f"{signal.Signals(signum).name}: finishing in-flight work, then stopping", "yellow"))
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    return stop


def _worker_processes(obj: Ctx, p: Pipeline, processes: int | None, workers: int | None) -> Any:
    """For more than one worker process: a started `Supervisor` of that many `landfall worker` children."""
    from landfall.supervise import Supervisor, share_of_host

    n = processes or p.settings.processes
    if n <= 1:
        return None
    per = workers or p.settings.workers
    argv = [sys.executable, "-m", "landfall", *obj.argv, "worker", "--processes", "1", "--workers", str(per)]
    duck = p.settings.duckdb
    children = Supervisor(
        argv, n, env=share_of_host(n, duck.threads, duck.memory_limit), grace=p.settings.lease_seconds * 2
    )
    children.start()
    warn(f"started {n} worker processes with {per} workers each")
    return children


@main.command()
@click.option("--host", default=None, help="The address to bind (default: serve.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="The port (default: serve.port, 8080; 0: any free port).")
@click.pass_obj
def serve(obj: Ctx, host: str | None, port: int | None) -> None:
    """Serve the HTTP API, the web dashboard and /metrics over the lake until SIGINT/SIGTERM."""
    p = obj.pipeline()
    served = _bind(p, host, port)
    stop = threading.Event()
    alerting = p.start_alerts(stop)  # alerts: also from a server alone (one process at a time sends)
    try:
        served.run()
    finally:
        stop.set()
        if alerting:
            alerting.join(10)


def _bind(p: Pipeline, host: str | None, port: int | None) -> Any:
    from landfall.web import require

    require()
    from landfall.web.server import bind

    served = bind(p, host=host, port=port)
    warn(("landfall serve: ", "bold"), served.url, "  (API /api, OpenAPI /openapi.json, metrics /metrics)")
    if served.public:
        warn("bound to a public address: every call needs the bearer token")
    if served.streams is not None:
        names = ", ".join(f"`{st.name}`" for st in served.streams)
        warn(
            f"streams {names}: POST {served.url}streams/<name>; Firehose and Kinesis APIs at {served.url} "
            "(AWS secret access key: the token)"
        )
    if served.token_generated:
        env = p.settings.serve.token_env
        warn(
            f"no token set (environment `{env}` or `serve.token`); this run's token, for calls that change state: ",
            (served.token, "bold"),
        )
        warn(f"dashboard with the token: {served.url}#token={served.token}")
    return served


@main.command()
@click.option("--workers", type=int, default=None, help="Worker threads (default: from config, 2).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_obj
def process(obj: Ctx, workers: int | None, progress: bool | None) -> None:
    """Load everything not yet loaded, drain the queue and exit (non-zero if any file ended dead)."""
    p = obj.pipeline()
    show = sys.stderr.isatty() if progress is None else progress
    found = len(p.discover())  # before the bar starts, so it knows the total
    summary = _with_progress(p, show, lambda on_done: p.process(workers=workers, on_done=on_done, discover=False))
    summary.discovered += found
    _print_summary(summary)
    if not summary.ok:
        sys.exit(1)


def _with_progress(p: Pipeline, show: bool, call: Any) -> Summary:
    if not show:
        return call(None)
    counts = p.counts()
    return run_progress(counts["queued"] + counts["running"], call)


def _print_summary(s: Summary) -> None:
    parts = [f"{s.count(k)} {k}" for k in ("succeeded", "skipped", "failed", "dead") if s.count(k)]
    say("processed: " + (", ".join(parts) if parts else "nothing to do"))
    for o in s.dead:
        say(("dead", "red"), f" {o.run.file_key}: {o.error}")
    earlier = s.dead_letter - len(s.dead)
    if s.dead_letter:
        more = f" ({earlier} from earlier runs)" if earlier > 0 else ""
        say(
            ("dead-letter list", "red"),
            f": {s.dead_letter} file(s){more}; `landfall dlq list` shows them, `landfall dlq retry` queues them again",
        )


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--prefix", "-p", default="", help="Prefix under landing/ (chooses the workflow).")
@click.option("--process/--no-process", "then_process", default=False, help="Also process the queue afterwards.")
@click.pass_obj
def ingest(obj: Ctx, paths: tuple[str, ...], prefix: str, then_process: bool) -> None:
    """Copy local files (or folders) into landing/PREFIX/ and queue them."""
    p = obj.pipeline()
    show = sys.stderr.isatty()
    files = [
        f for path in paths for f in ([Path(path)] if Path(path).is_file() else Path(path).rglob("*")) if f.is_file()
    ]
    total_bytes = sum(f.stat().st_size for f in files)
    if show:
        runs = copy_progress(total_bytes, len(files), lambda on_file: p.ingest(paths, prefix, on_file=on_file))
    else:
        runs = p.ingest(paths, prefix)
    queued = sum(1 for r in runs if r.status == "queued")
    unrouted = [r for r in runs if r.status == "unrouted"]
    say(f"landed {len(files)} files ({human(total_bytes)}); queued {queued} new versions")
    for r in unrouted:
        say(("unrouted", "yellow"), f" {r.file_key}: {r.error}")
    if then_process:
        summary = p.process(discover=False)
        _print_summary(summary)
        if not summary.ok:
            sys.exit(1)


@main.command()
@click.option("--keep", is_flag=True, help="Keep the temporary lake and print where it is.")
@click.option(
    "--stream", "stream", is_flag=True, help="Seed 003: Firehose API (boto3) -> raw files -> staging -> Delta table."
)
def demo(keep: bool, stream: bool) -> None:
    """Run landfall on sample data in a temporary lake: two prefixes, two workflows, tables, a query."""
    from landfall.samples import init_project

    if stream:
        from landfall.streams.demo import run

        if not run(keep, print_rows=_print_rows, print_summary=_print_summary):
            sys.exit(1)
        return
    tmp = Path(tempfile.mkdtemp(prefix="landfall-demo-"))
    config, samples = init_project(tmp)
    if not on_pipe():
        console.rule("landfall demo", style="bold")
    say(f"lake: {tmp / 'lake'}  ({len(samples)} sample files landed under sales/ and events/)")
    p = Pipeline(load_settings(config))
    summary = p.process()
    _print_summary(summary)
    say("")
    _runs_table(p.runs(), title="runs", section=True)
    say("")
    _tables_table(p.tables(), section=True)
    sql = (
        "SELECT order_date, count(*) AS orders, sum(quantity) AS items, round(sum(total), 2) AS revenue "
        "FROM sales GROUP BY order_date ORDER BY order_date"
    )
    sql2 = (
        "SELECT year, month, count(*) AS events, count(DISTINCT event_id) AS ids FROM events GROUP BY ALL ORDER BY ALL"
    )
    sql3 = "SELECT _source_file, _line, _rule, _reason, _raw FROM quarantine.events"
    for text_sql, note in ((sql, ""), (sql2, ""), (sql3, "  (a line that is not JSON: set aside, not lost)")):
        say("")
        say(("landfall query", "bold"), f' "{text_sql}"{note}')
        cols, rows = p.query(text_sql)
        _print_rows(cols, rows, "table")
    p.close()
    if keep:
        say(f"\nkept: cd {tmp} && landfall runs")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if not summary.ok:
        sys.exit(1)


# --- runs and the dead-letter list --------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs in this status.")
@click.option("--workflow", "-w", default=None, help="Only runs of this workflow.")
@click.option("--file", "file_key", default=None, help="Only runs of this landed file (prefix + name).")
@click.option("--limit", "-n", type=int, default=50, show_default=True, help="At most this many (0: all).")
@click.option("--before", default=None, help="Only runs older than this run id (the next page).")
@click.option("--json", "as_json", is_flag=True, help="JSON array of run objects (stable shape; see README).")
@click.pass_context
def runs(
    ctx: click.Context,
    status: str | None,
    workflow: str | None,
    file_key: str | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first: file, workflow, status, attempt, timings, rows, error."""
    if ctx.invoked_subcommand is not None:
        return
    page = min(limit, PAGE) if limit else PAGE
    found = ctx.obj.pipeline().iter_runs(status=status, workflow=workflow, key=file_key, before=before, page=page)
    if limit:
        found = itertools.islice(found, limit)
    if as_json:
        _json_array(r.to_json() for r in found)
    elif on_pipe():
        _runs_table(found)  # streamed: one line per run as it is read
    else:  # a terminal: one table per page, so the first rows show at once however many there are
        for i, chunk in enumerate(_chunked(found, PAGE)):
            _runs_table(chunk, title=None if i == 0 else f"runs {i * PAGE + 1}-{i * PAGE + len(chunk)}")


PAGE = 500  # runs read (and drawn on a terminal) at a time


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _json_array(docs: Iterable[dict[str, Any]]) -> None:
    """`json.dumps(list(docs), indent=2)`, written one object at a time."""
    first = True
    for doc in docs:
        click.echo(("[\n" if first else ",\n") + textwrap.indent(json.dumps(doc, indent=2), "  "), nl=False)
        first = False
    click.echo("[]" if first else "\n]")


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="The run as a JSON object, with its steps.")
@click.pass_obj
def runs_show(obj: Ctx, run_id: str, as_json: bool) -> None:
    """One run in full: per-step timings and the whole error."""
    run = obj.pipeline().run(run_id)
    doc = run_json(run)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    rows: list[tuple[str, str]] = [
        (k, "" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        for k, v in doc.items()
        if k not in ("steps", "error", "output_files")
    ]
    rows += [("output_file", f) for f in run.output_files]
    rows += [("step", f"{step['step']:<10} {step['seconds'] * 1000:9.1f} ms") for step in run.steps]
    if on_pipe():
        table(("field", "value"), [*rows, ("error", run.error or "")])
        return
    for key, value in rows:
        say((f"{key:>16}", "bold"), f" {value}")
    if run.error:
        say((f"{'error':>16}", "bold"))
        say(run.error)


def _runs_table(found: Iterable[Run], title: str | None = None, section: bool = False) -> None:
    full = on_pipe()  # a pipe gets the whole error; a terminal its first line
    table(
        ("run", "file", "workflow", "status", "try", "started", "secs", "rows in", "rows out", "error / note"),
        (
            (
                r.run_id,
                r.file_key,
                r.workflow or "",
                status_text(r.status),
                str(r.attempt),
                (r.to_json()["started_at"] or "")[11:19],
                f"{r.duration:.2f}" if r.duration else "",
                num(r.rows_in),
                num(r.rows_out),
                (r.error or r.note or "") if full else ((r.error or r.note or "").splitlines() or [""])[0][:120],
            )
            for r in found
        ),
        title=title,
        section=section,
    )


@main.group()
def dlq() -> None:
    """The dead-letter list: runs that used up their attempts."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON array of run objects.")
@click.pass_obj
def dlq_list(obj: Ctx, as_json: bool) -> None:
    """Dead runs with their errors."""
    dead = obj.pipeline().dead_letters()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in dead], indent=2))
    elif not dead:
        say("the dead-letter list is empty")
    else:
        _runs_table(dead, title="dead-letter list")


@dlq.command("retry")
@click.argument("run_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Retry every dead run.")
@click.pass_obj
def dlq_retry(obj: Ctx, run_ids: tuple[str, ...], all_: bool) -> None:
    """Queue dead runs again (after fixing the workflow or the file); `landfall process` runs them."""
    if not run_ids and not all_:
        raise click.UsageError("name RUN_IDs or use --all")
    again = obj.pipeline().retry_dead(None if all_ else run_ids)
    say(f"queued {len(again)} runs again")


@dlq.command("purge")
@click.argument("run_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Purge every dead run.")
@click.pass_obj
def dlq_purge(obj: Ctx, run_ids: tuple[str, ...], all_: bool) -> None:
    """Take dead runs off the list (their run records and landed files stay)."""
    if not run_ids and not all_:
        raise click.UsageError("name RUN_IDs or use --all")
    n = obj.pipeline().purge_dead(None if all_ else run_ids)
    say(f"purged {n} runs from the dead-letter list")


# --- catalog and query --------------------------------------------------------------------------------------


@main.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON array of table objects (stable shape; see README).")
@click.pass_context
def tables(ctx: click.Context, as_json: bool) -> None:
    """List cataloged tables: format, rows, files, schema version, last update."""
    if ctx.invoked_subcommand is not None:
        return
    found = ctx.obj.pipeline().tables()
    if as_json:
        click.echo(json.dumps([t.to_json() for t in found], indent=2))
    else:
        _tables_table(found)


def _tables_table(found: list[Any], section: bool = False) -> None:
    table(
        ("table", "format", "rows", "files", "size", "schema v", "partitions", "updated", "location"),
        [
            (
                tb.name,
                tb.format,
                f"{tb.row_count:,}",
                str(tb.file_count),
                human(tb.bytes),
                str(tb.schema_version),
                ", ".join(tb.partition_by),
                (tb.to_json()["updated_at"] or "")[:19],
                tb.location,
            )
            for tb in found
        ],
        title="tables",
        section=section,
    )


@tables.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The table, its schema versions, partitions and files.")
@click.pass_obj
def tables_show(obj: Ctx, name: str, as_json: bool) -> None:
    """One table: schema, schema versions (what each changed), partitions, files."""
    detail = obj.pipeline().table_detail(name)
    if as_json:
        click.echo(json.dumps(detail.to_json(), indent=2))
        return
    tb = detail.table
    say((tb.name, "bold"), f" ({tb.format}) at {tb.location}")
    say(
        f"{tb.row_count:,} rows in {tb.file_count} files ({human(tb.bytes)}); "
        f"schema version {tb.schema_version}; updated {tb.to_json()['updated_at']}"
    )
    table(
        ("column", "type"),
        [(n, sql_name(typ) + (" (partition)" if n in tb.partition_by else "")) for n, typ in tb.schema],
        title="schema",
        section=True,
    )
    table(
        ("version", "created", "run", "changes"),
        [
            (
                str(v["version"]),
                (v["created_at"] or "")[:19],
                v["run_id"] or "",
                f"{len(v['schema'])} columns" if v["version"] == 1 else describe_change(v["changes"]),
            )
            for v in detail.schema_versions
        ],
        title="schema versions",
        section=True,
    )
    table(
        ("partition", "files", "rows", "size"),
        [(p["partition"], str(p["files"]), f"{p['rows']:,}", human(p["bytes"])) for p in detail.partitions],
        title="partitions",
        section=True,
    )


@tables.command("optimize")
@click.argument("name")
@click.option(
    "--min-files", type=int, default=2, show_default=True, help="Compact a partition once it has this many small files."
)
@click.option(
    "--target-file-size",
    default=None,
    help="Size of the files to write (default: the workflow's compaction setting, else 128MB).",
)
@click.pass_obj
def tables_optimize(obj: Ctx, name: str, min_files: int, target_file_size: str | None) -> None:
    """Compact small files into large ones, partition by partition (Delta and Parquet)."""
    res = obj.pipeline().optimize(name, min_files=min_files, target_file_size=target_file_size)
    say(
        f"{name}: {res.files_removed} files in {res.partitions} partitions rewritten as "
        f"{res.files_added} files"
        + (f"; {len(res.skipped)} partitions left for later (a concurrent change)" if res.skipped else "")
    )


@tables.command("rebuild")
@click.argument("names", nargs=-1)
@click.pass_obj
def tables_rebuild(obj: Ctx, names: tuple[str, ...]) -> None:
    """Catalog tables as their folders and Delta logs hold them now (all, or NAMES); stop workers first."""
    for r in obj.pipeline().rebuild_catalog(list(names) or None):
        say(f"{r.table}: {r.format}, {r.files} files, {r.rows} rows from {r.sources} landed files")


@tables.command("vacuum")
@click.argument("name")
@click.option(
    "--retain",
    default="7d",
    show_default=True,
    help="Keep files a version needed within this long (s, m, h, d, w), for time travel and readers.",
)
@click.pass_obj
def tables_vacuum(obj: Ctx, name: str, retain: str) -> None:
    """Delete data files no current version uses, older than --retain."""
    gone = obj.pipeline().vacuum(name, retain)
    say(f"{name}: removed {len(gone)} files")
    for g in gone[:50]:
        say(f"  {g}")


@tables.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON array of versions.")
@click.pass_obj
def tables_history(obj: Ctx, name: str, as_json: bool) -> None:
    """Versions of a Delta table: time, operation, runs, rows added and removed."""
    from landfall.tables.base import NotSupported

    try:
        versions = obj.pipeline().history(name)
    except NotSupported as exc:
        raise click.ClickException(f"table `{name}`: {exc}") from None
    if as_json:
        click.echo(json.dumps([version_json(v) for v in versions], indent=2))
        return
    table(
        ("version", "time", "operation", "runs", "rows +", "rows -", "files +/-"),
        [
            (
                str(v.version),
                v.timestamp.isoformat(timespec="seconds"),
                v.operation,
                ", ".join(v.run_ids[:3]) + (f" +{len(v.run_ids) - 3}" if len(v.run_ids) > 3 else ""),
                num(v.rows_added),
                num(v.rows_removed),
                f"{num(v.files_added)}/{num(v.files_removed)}",
            )
            for v in versions
        ],
        title=f"{name} history",
    )


@main.group()
def quarantine() -> None:
    """Rows that data-quality rules set aside (query them as quarantine.<table>)."""


@quarantine.command("replay")
@click.argument("table_name", metavar="TABLE")
@click.option("--run", "run_id", default=None, help="Only the rows quarantined by this run.")
@click.pass_obj
def quarantine_replay(obj: Ctx, table_name: str, run_id: str | None) -> None:
    """Load the quarantined rows that pass the workflow's rules now (after fixing it), once."""
    res = obj.pipeline().replay_quarantine(table_name, run_id)
    say(f"{table_name}: {res.replayed} rows loaded from quarantine; {res.still_quarantined} still quarantined")


@main.command()
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="What was found and skipped, as JSON.")
@click.pass_obj
def crawl(obj: Ctx, url: str, as_json: bool) -> None:
    """Find existing datasets under URL (Hive-partitioned Parquet folders, Delta tables) and catalog them."""
    report = obj.pipeline().crawl(url)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "found": [f.__dict__ for f in report.found],
                    "skipped": [{"path": p, "why": w} for p, w in report.skipped],
                },
                indent=2,
                default=str,
            )
        )
        return
    for f in report.found:
        cols = ", ".join(f"{n} {sql_name(t)}" for n, t in f.schema)
        say(
            (f.action, "green"),
            " table ",
            (f.name, "bold"),
            f" ({f.format}) at {f.location}: {f.files} files, {f.rows:,} rows, "
            f"partitions [{', '.join(f.partitions)}], schema v{f.schema_version}: {cols}",
        )
    for path, why in report.skipped:
        say(("skipped", "yellow"), f" {path}: {why}")
    if not report.found:
        say("no datasets found")


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table for people (tab-separated on a pipe); csv; json = an array of row objects.",
)
@click.option("--as-of", default=None, help="Read Delta tables as of a version (e.g. 3) or an ISO timestamp.")
@click.pass_obj
def query(obj: Ctx, sql: str, fmt: str, as_of: str | None) -> None:
    """Run SQL (DuckDB dialect) over every cataloged table, by name."""
    import duckdb

    try:
        cols, rows = obj.pipeline().query(sql, as_of=as_of)
    except duckdb.Error as exc:
        raise click.ClickException(f"query failed: {exc}") from None
    _print_rows(cols, rows, fmt)


def _print_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps([{c: jsonable(v) for c, v in zip(cols, row, strict=True)} for row in rows], indent=2))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for row in rows:
            w.writerow(["" if v is None else jsonable(v) for v in row])
        click.echo(buf.getvalue(), nl=False)
    elif on_pipe():
        table(cols, [["" if v is None else v for v in row] for row in rows])
    else:
        table(cols, [["NULL" if v is None else str(v) for v in row] for row in rows])
        say(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")


if __name__ == "__main__":  # pragma: no cover
    main()


def entry() -> None:
    """The `landfall` command. An unexpected error (a bug, not a user's mistake) prints its traceback with secrets
    masked, like every other line landfall prints."""
    try:
        main()
    except Exception as exc:
        import traceback

        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        sys.exit(1)
