"""Opening and closing pipelines leaves nothing behind: file descriptors, Python threads and the process's OS
threads return to where they were (state store connections closed, thread pools shut, workers, heartbeats,
watchers and compaction joined)."""

from __future__ import annotations

import gc
import os
import threading
import time

import duckdb
import pytest

from landfall import Pipeline, load_settings

from conftest import wf


def resources() -> tuple[int, int, int]:
    gc.collect()
    return len(os.listdir("/proc/self/fd")), threading.active_count(), len(os.listdir("/proc/self/task"))


def settle(baseline: tuple[int, int, int], seconds: float = 20.0) -> tuple[int, int, int]:
    """Threads that were told to stop may take a moment to exit, and idle threads of a library's pool (delta-rs'
    runtime) a few seconds more; fewer than before is fine."""
    deadline = time.monotonic() + seconds
    now = resources()
    while not back(now, baseline) and time.monotonic() < deadline:
        time.sleep(0.05)
        now = resources()
    return now


def os_threads() -> list[str]:
    out = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/comm") as fh:
            out.append(fh.read().strip())
    return sorted(out)


def back(now: tuple[int, int, int], baseline: tuple[int, int, int]) -> bool:
    return all(n <= b for n, b in zip(now, baseline, strict=True))


@pytest.mark.slow  # about 45 s: a hundred `process` calls
def test_a_hundred_pipelines_opened_and_closed_leave_nothing_behind(make_lake):
    lake = make_lake(
        [
            wf("p", read={"format": "csv"}),
            wf("d", read={"format": "csv"}, write={"table": "d", "format": "delta"}),
            wf("c", read={"format": "csv"}, write={"table": "c", "compaction": {"min_files": 2}}),
        ],
        settle_seconds=0.0,
        reconcile_seconds=0.05,
        compaction_seconds=0.05,
    )
    settings = load_settings(lake.config)

    def one(i: int) -> None:
        with Pipeline(settings) as p:
            if i in (2, 50):  # a big file is hashed in a pool thread while the engine reads it
                duckdb.sql(f"COPY (SELECT range AS id FROM range(3000000)) TO '{lake.landing}/p/big.csv' (HEADER)")
            lake.land(f"{'pdc'[i % 3]}/{i}.csv", f"id\n{i}\n")
            assert p.process().ok
            assert p.query("SELECT count(*) FROM p")[1][0][0] >= 1

    one(0), one(1), one(2)  # imports, first tables, the libraries' own thread pools (Arrow, delta-rs' runtime)
    baseline = resources()
    for i in range(3, 103):
        one(i)
    for _ in range(3):  # `up` too: watcher, heartbeat, compaction
        with Pipeline(settings) as p:
            stop = threading.Event()
            t = threading.Thread(target=p.up, args=(stop,), kwargs={"workers": 2})
            t.start()
            time.sleep(0.3)
            stop.set()
            t.join()
    lake.close()
    now = settle(baseline)
    assert back(now, baseline), (now, baseline, [t.name for t in threading.enumerate()], os_threads())


def test_each_thread_keeps_a_bounded_number_of_delta_tables(make_lake):
    from landfall.tables import delta

    lake = make_lake(
        [wf(f"d{i}", read={"format": "csv"}, write={"table": f"d{i}", "format": "delta"}) for i in range(20)]
    )
    for i in range(20):
        lake.land(f"d{i}/a.csv", f"id\n{i}\n")
    with Pipeline(load_settings(lake.config)) as p:
        assert p.process(workers=1).ok
        for i in range(20):  # every table's latest state read in this thread
            assert p.history(f"d{i}")
    assert len(delta._LATEST.tables) == delta.CACHED_TABLES < 20


def test_ten_process_calls_keep_one_state_connection(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"})])
    with Pipeline(load_settings(lake.config)) as p:
        for i in range(10):
            lake.land(f"t/{i}.csv", f"id\n{i}\n")
            assert p.process().ok
        gc.collect()
        assert len(p.store._all_conns) <= 2  # this thread's, and at most one not yet collected


def test_a_closed_pipeline_holds_no_handle_on_the_state_database(make_lake):
    """The worker threads' SQLite connections close when their threads end, not whenever the cyclic garbage
    collector runs (sqlite3's statement cache makes each connection a cycle). Before, they stayed open past
    `close()`; their last checkpoint wrote old pages into a state database replaced meanwhile."""
    lake = make_lake([wf("t", read={"format": "csv"})])
    db = str(lake.root / "lake" / "_landfall" / "state.db")

    def handles() -> list[str]:
        found = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if target.startswith(db):
                found.append(target)
        return found

    gc.collect()
    gc.disable()
    try:
        with Pipeline(load_settings(lake.config)) as p:
            for i in range(3):
                lake.land(f"t/{i}.csv", f"id\n{i}\n")
                assert p.process().ok
        assert handles() == []
    finally:
        gc.enable()
