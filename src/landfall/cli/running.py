"""Commands that run until stopped: `up`, `worker` (with `--processes`, supervised worker processes) and
`serve`."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

import click

from landfall.cli.app import Ctx, main
from landfall.config import load_settings
from landfall.output import warn
from landfall.pipeline import Pipeline

WORKERS_HELP = "Worker threads per process (default: from config, 2)."
PORT = click.IntRange(0, 65535)  # (-1 was a traceback; 99999 served on a port of its own choosing)
PROCESSES_HELP = "Worker processes on this host, each with --workers threads (default: from config, 1: threads here)."


@main.command()
@click.option("--workers", type=click.IntRange(1, 64), default=None, help=WORKERS_HELP)
@click.option("--processes", type=click.IntRange(1, 64), default=None, help=PROCESSES_HELP)
@click.option("--no-watch", is_flag=True, help="Only list the landing zone periodically; no file watcher.")
@click.option("--serve", "with_server", is_flag=True, help="Also serve the API, the dashboard and /metrics.")
@click.option("--host", default=None, help="With --serve: the address to bind (default: serve.host, 127.0.0.1).")
@click.option("--port", type=PORT, default=None, help="With --serve: the port (default: serve.port, 8080; 0: any).")
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
    config = None
    if p.settings.source != "<defaults>":  # a changed landfall.yaml: start again on it (a bad edit is said, once)
        from landfall.service import ConfigWatch

        config = ConfigWatch(p.settings.source, lambda: load_settings(obj.config, overrides={"lake": obj.lake}))
    try:
        again = p.up(stop, workers=0 if children else workers, watch=not no_watch, config=config)
    finally:
        if children:
            children.stop()
        if served and thread:
            served.stop()
            thread.join(10)
    if again:  # the same command, as a new process on the new config (its workflows, zones, workers)
        obj.close()
        logging.shutdown()
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


@main.command()
@click.option("--workers", type=click.IntRange(1, 64), default=None, help=WORKERS_HELP)
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
@click.option("--port", type=PORT, default=None, help="The port (default: serve.port, 8080; 0: any free port).")
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
