"""`landfall up` as a process: files appear as tables while it runs, signals stop it cleanly, and kill -9 at
any point loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from landfall.errors import LandfallError, NoSuchTable
from landfall.state.base import running_services
from landfall.testing.faults import POINTS
from landfall.testing.spark import crash_cases, engine_settings

from conftest import wf

pytestmark = pytest.mark.slow


def start_up(lake, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "up", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )


def wait_for(pred, timeout: float = 60.0, every: float = 0.1, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"landfall up exited early ({proc.returncode}):\n{proc.stdout.read()}")
        time.sleep(every)
    raise AssertionError("timed out waiting")


def table_rows(lake, table: str) -> int | None:
    from landfall import Pipeline, load_settings

    p = Pipeline(load_settings(lake.config))
    try:
        return p.query(f"SELECT count(*) FROM {table}")[1][0][0]
    except (duckdb.Error, NoSuchTable):  # not there yet
        return None
    finally:
        p.close()


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> str:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=timeout)
    return out


def test_up_watches_and_stops_cleanly_on_sigterm(make_lake):
    lake = make_lake([wf("s", read={"format": "csv"})], reconcile_seconds=30.0, settle_seconds=0.0)
    lake.land("s/before.csv", "id\n1\n")  # landed while landfall was stopped: found by the start listing
    proc = start_up(lake)
    try:
        wait_for(lambda: table_rows(lake, "s") == 1, proc=proc)
        lake.land("s/live.csv", "id\n2\n3\n")  # reported by the watcher (no listing for 30 s)
        wait_for(lambda: table_rows(lake, "s") == 3, timeout=15, proc=proc)
        # a running service may hold the table's log in memory: a reload (or rebuild) waits for its end
        with pytest.raises(
            LandfallError, match=rf"`landfall up`, `worker` or `process` is running on this lake \(.*:{proc.pid}:"
        ):
            lake.pipeline.reload_table("s")
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert "finishing in-flight work" in out and "landfall stopped" in out
    assert {r.status for r in lake.pipeline.runs()} == {"succeeded"}
    assert running_services(lake.pipeline.store) == []  # let go on the way out


def test_the_watcher_passes_over_a_file_whose_name_is_not_utf8_and_goes_on(make_lake):
    """The watcher's thread died on such a file (`UnicodeEncodeError` recording it): files landed after it
    waited for the next listing."""
    lake = make_lake([wf("s", read={"format": "csv"})], reconcile_seconds=60.0, settle_seconds=0.0)
    lake.land("s/before.csv", "id\n1\n")
    proc = start_up(lake)
    try:
        wait_for(lambda: table_rows(lake, "s") == 1, proc=proc)
        with open(os.path.join(os.fsencode(lake.landing), b"s", b"caf\xe9.csv"), "wb") as fh:
            fh.write(b"id\n2\n")
        lake.land("s/after.csv", "id\n3\n")  # reported by the watcher (no listing for 60 s)
        wait_for(lambda: table_rows(lake, "s") == 2, timeout=15, proc=proc)
    finally:
        out = stop(proc)
    assert out.count("`s/caf\\xe9.csv` is passed over: its name is not UTF-8") == 1, out
    assert "Traceback" not in out


def test_sigint_also_stops(make_lake):
    lake = make_lake([wf("s", read={"format": "csv"})], settle_seconds=0.0)
    lake.land("s/a.csv", "id\n1\n")
    proc = start_up(lake)
    wait_for(lambda: table_rows(lake, "s") == 1, proc=proc)  # up and running: its signal handlers are set
    out = stop(proc, signal.SIGINT)
    assert proc.returncode == 0, out


def big_csv(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    duckdb.sql(
        f"COPY (SELECT range AS id, range % 97 AS k, 'name-' || range AS s, range * 0.5 AS x, "
        f"DATE '2024-01-01' + (range % 365)::INT AS d FROM range({rows})) TO '{path}' (HEADER)"
    )


def assert_exactly_once(lake, table: str, rows: int) -> None:
    got = lake.rows(f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {table}")
    assert got == [(rows, rows, 0, rows - 1)]
    statuses = [r.status for r in lake.pipeline.runs(limit=None)]
    assert "running" not in statuses and "queued" not in statuses
    on_disk = sorted(p.name for p in (lake.root / "lake/tables" / table).rglob("*.parquet"))
    listed = sorted(Path(f.path).name for f in lake.pipeline.store.table_files(table))
    assert on_disk == listed  # no stray or half-written file for other readers either


def test_kill_9_while_writing_a_large_file_then_restart(make_lake):
    rows = 3_000_000
    lake = make_lake(
        [wf("big", read={"format": "csv"}, write={"table": "big", "target_file_size": "16MB"})], lease_seconds=5.0
    )
    big_csv(lake.landing / "big/data.csv", rows)
    proc = start_up(lake, "--workers", "1")
    staging = lake.root / "lake/tables/big/_staging"
    try:
        # wait until the engine is writing Parquet into staging, then pull the plug
        wait_for(lambda: staging.exists() and any(staging.rglob("*.parquet")), timeout=90, every=0.02, proc=proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert lake.pipeline.runs()[0].status == "running"  # the lease is still held by the dead process
    assert running_services(lake.pipeline.store) == []  # but the service is known gone at once (this machine)
    proc = start_up(lake, "--workers", "1")
    try:
        wait_for(lambda: table_rows(lake, "big") == rows, timeout=180, every=0.5, proc=proc)
    finally:
        stop(proc)
    assert_exactly_once(lake, "big", rows)
    runs = lake.pipeline.runs(limit=None)
    assert [r.status for r in runs] == ["succeeded", "failed"]
    assert "exited while running" in runs[1].error  # taken back at once: a process of this machine, gone
    assert "not counted as an attempt" in runs[1].error and runs[0].attempt == 1 and runs[0].interruptions == 1


@pytest.mark.parametrize(
    ("point", "engine"),
    crash_cases([p for p in POINTS if p != "after_child_commit"]),  # children: test_delta.py
)
def test_kill_9_at_every_commit_step_loses_and_duplicates_nothing(make_lake, point, engine):
    lake = make_lake([wf("t", read={"format": "csv"})], **engine_settings(engine))
    lake.land("t/a.csv", "id\n" + "".join(f"{i}\n" for i in range(100)))
    env = {**os.environ, "LANDFALL_CRASH_AT": point}
    first = subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "process"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert_exactly_once(lake, "t", 100)
    if engine == "spark":  # what follows is the engine-independent commit sequence and sweep, two more JVMs
        return
    # a changed version killed after its commit: the old version's file is swept, not left for other readers
    lake.land("t/a.csv", "id\n" + "".join(f"{i}\n" for i in range(50)))
    subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "process"],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    assert_exactly_once(lake, "t", 50)


def test_up_starts_again_on_a_changed_config_and_keeps_running_on_a_bad_edit(make_lake):
    """A file no workflow matched stayed `unrouted` after a workflow for it was added (`process` said `nothing to
    do`, `dlq retry` refused it), and `up` kept the config it started with. Now `up` starts again on a changed
    landfall.yaml, which queues such files; an edit that does not load is said once and the running config
    stays."""
    import yaml

    lake = make_lake([wf("s", read={"format": "csv"})])
    lake.land("x/a.csv", "id\n1\n")
    proc = start_up(lake)
    try:
        wait_for(lambda: lake.pipeline.runs(status="unrouted"), proc=proc)
        good = lake.config.read_text()
        lake.config.write_text(good + "  - {name: x, match: x/, write: {table: x}, read: {format: csv}}\n  - [\n")
        time.sleep(3)  # a bad edit: said, and `up` carries on
        assert proc.poll() is None
        doc = yaml.safe_load(good)
        doc["workflows"].append(wf("x", read={"format": "csv"}))
        lake.config.write_text(yaml.safe_dump(doc))
        assert wait_for(lambda: table_rows(lake, "x"), proc=proc) == 1
        lake.land("s/b.csv", "id\n2\n")  # the new process goes on loading
        assert wait_for(lambda: table_rows(lake, "s"), proc=proc) == 1
    finally:
        out = stop(proc)
    assert "changed but cannot be used; the running config stays" in out
    assert "changed: finishing the work in flight, then starting again on it" in out
    assert "1 files queued under the workflow that matches them now (`x`)" in out
