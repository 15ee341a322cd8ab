"""Two processes on one lake: merges of overlapping keys and queries read a consistent snapshot of the table
(files a commit replaced stay until no reader can need them), and a merge that loses the race retries on the
new state without using an attempt."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import wf

pytestmark = pytest.mark.slow


def run_process(lake, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "process", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
    )


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_two_processes_merging_overlapping_keys_lose_nothing_and_queries_never_fail(make_lake, fmt):
    lake = make_lake(
        [
            wf(
                "m",
                read={"format": "csv"},
                write={"table": "m", "format": fmt, "mode": "merge", "keys": ["k"], "order_by": "v"},
                retry={"max_attempts": 2, "backoff_seconds": 0.01},
            )
        ],
        batch_files=1,
    )
    files = 40
    for i in range(files):  # every file touches keys 0..19, so every merge rewrites what the others wrote
        lake.land(f"m/{i:03d}.csv", "k,v\n" + "".join(f"{k},{i}\n" for k in range(20)) + f"{100 + i},{i}\n")
    procs = [run_process(lake, "--workers", "2") for _ in range(2)]
    failures = []
    queries = 0
    while any(p.poll() is None for p in procs):
        existed = lake.pipeline.store.find_table("m") is not None
        q = subprocess.run(
            [sys.executable, "-m", "landfall", "--config", str(lake.config), "query", "SELECT count(*) FROM m"],
            capture_output=True,
            text=True,
        )
        queries += 1
        not_yet = not existed and "no table `m`" in q.stdout + q.stderr  # queried before the first commit
        if q.returncode != 0 and not not_yet:
            failures.append(q.stdout + q.stderr)
        time.sleep(0.05)
    outs = [p.communicate()[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert failures == [], (queries, failures[:3])
    runs = lake.pipeline.runs(limit=None)
    assert {r.status for r in runs} <= {"succeeded", "queued"} | {"skipped"}, [
        (r.file_key, r.status, r.error) for r in runs if r.status not in ("succeeded", "skipped")
    ]
    assert not [r for r in runs if r.status in ("failed", "dead")]
    assert sum(1 for r in runs if r.status == "succeeded") == files
    assert lake.rows("SELECT count(*), count(DISTINCT k), min(v), max(v) FROM m WHERE k < 20") == [(20, 20, 39, 39)]
    assert lake.rows("SELECT count(*) FROM m WHERE k >= 100") == [(files,)]
    # the files replaced while readers held them go at the next recovery, once no reader is left
    assert (
        subprocess.run(
            [sys.executable, "-m", "landfall", "--config", str(lake.config), "process"], capture_output=True
        ).returncode
        == 0
    )
    if fmt == "parquet":
        on_disk = sorted(p.name for p in (lake.root / "lake/tables/m").rglob("*.parquet"))
        assert on_disk == sorted(f.path for f in lake.pipeline.store.table_files("m"))
