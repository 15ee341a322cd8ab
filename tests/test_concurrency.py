"""Two processes on one lake: merges of overlapping keys and queries read a consistent snapshot of the table
(files a commit replaced stay until no reader can need them), and a merge that loses the race retries on the
new state without using an attempt."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import deltalake
import pyarrow.parquet as pq
import pytest

from landfall.config import Workflow
from landfall.engines.base import Engine

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


class held_together:  # noqa: N801 - used as a function
    """Each round's first two engine runs wait for each other after reading the table, so both read it before
    either commits; those reading `second` then wait a little, and commit second. A retry goes on alone."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, second: tuple[str, ...] = ()) -> None:
        self.barrier, self.lock, self.left, self.second = threading.Barrier(2, timeout=30), threading.Lock(), 2, second
        real_run = Engine.run

        def run_then_wait(engine, job):
            staged = real_run(engine, job)
            with self.lock:
                wait, self.left = self.left > 0, self.left - 1
            if wait:
                self.barrier.wait()
                if job.sources[0].key in self.second:
                    time.sleep(0.5)
            return staged

        monkeypatch.setattr(Engine, "run", run_then_wait)

    def again(self) -> None:
        self.left = 2


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_workers_changing_a_tables_schema_at_once_lose_no_column(make_lake, fmt, monkeypatch):
    """Two workers whose files read the table before either commits (held at a barrier after the engine ran):
    the one committing second wrote the schema it had read, so a column the first added (or its first version
    of the table) vanished from the catalog (and from queries), and a column the other widened on Delta held a
    file of the narrower type."""
    lake = make_lake(
        [wf("s", read={"format": "csv"}, batch=False, write={"table": "s", "format": fmt})], batch_files=1, workers=2
    )
    together = held_together(monkeypatch, second=("s/a.csv", "s/c.csv"))
    lake.land("s/a.csv", "id,amount\n1,5\n")
    lake.land("s/b.csv", "id,amount,region\n2,6,eu\n")
    assert lake.process().ok
    cols = ["id", "amount", "region"]
    assert lake.rows("SELECT id, amount, region FROM s ORDER BY id") == [(1, 5, None), (2, 6, "eu")]
    together.again()
    lake.land("s/c.csv", "id,amount,channel\n3,7,web\n")
    lake.land("s/d.csv", "id,amount\n4,8.5\n")  # widens `amount` to DOUBLE
    assert lake.process().ok
    cols += ["channel"]
    want = [(1, 5.0, None, None), (2, 6.0, "eu", None), (3, 7.0, None, "web"), (4, 8.5, None, None)]
    assert lake.rows(f"SELECT {', '.join(cols)} FROM s ORDER BY id") == want
    table = lake.pipeline.table("s")
    assert [n for n, _ in table.schema if not n.startswith("_")] == cols
    assert [v.get("changes") for v in lake.pipeline.store.schema_versions("s")][1:] and all(
        not (v.get("changes") or {}).get("removed") for v in lake.pipeline.store.schema_versions("s")
    )
    if fmt == "delta":  # one type per column in the log: every file holds `amount` as DOUBLE
        dt = deltalake.DeltaTable(str(lake.root / "lake/tables/s"))
        assert {str(pq.read_schema(f).field("amount").type) for f in dt.file_uris()} == {"double"}
        got = sorted(tuple(r[c] for c in cols) for r in dt.to_pyarrow_table().to_pylist())
        assert got == want


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("mode", ["merge", "unique", "partitions"])
def test_workers_writing_what_depends_on_the_table_see_each_others_rows(make_lake, fmt, mode, monkeypatch):
    """Two workers loading the same new key at once, each reading the table before the other commits: a merge
    table held the key twice, `unique: {against_table: true}` let both rows in, and an `overwrite: partitions`
    table held both files' rows of one partition. A commit that depends on the table's rows is refused when a
    file was added since its job read the table, and the job runs again on it. Such a table's jobs now run one at
    a time, in the order their files landed (`test_landing_order.py`); the check stands for jobs that still meet
    (workers of an earlier landfall on the same state store during an upgrade), which the test makes by turning
    the order off."""
    monkeypatch.setattr(Workflow, "in_order", property(lambda self: False))
    write = {"table": "s", "format": fmt}
    validate = []
    if mode == "merge":
        write |= {"mode": "merge", "keys": ["id"]}
    elif mode == "unique":
        validate = [{"unique": {"columns": ["id"], "against_table": True}, "action": "quarantine"}]
    else:
        write |= {"mode": "overwrite", "overwrite": "partitions", "partition_by": ["day"]}
    lake = make_lake(
        [wf("s", read={"format": "csv"}, batch=False, write=write, validate=validate)], batch_files=1, workers=2
    )
    lake.land("s/0.csv", "id,v,day\n0,x,1\n")
    assert lake.process().ok
    held_together(monkeypatch, second=("s/b.csv",))
    lake.land("s/a.csv", "id,v,day\n1,a,2\n")
    lake.land("s/b.csv", "id,v,day\n1,b,2\n")
    assert lake.process().ok
    assert lake.rows("SELECT id, v FROM s ORDER BY id") == [(0, "x"), (1, "b" if mode != "unique" else "a")]
    if mode == "unique":
        assert lake.rows("SELECT id, v FROM quarantine.s") == [(1, "b")]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("evolution", ["freeze", "rescue"])
def test_workers_making_a_table_at_once_hold_the_second_file_to_the_first(make_lake, fmt, evolution, monkeypatch):
    """Under `freeze` (or `rescue`, `discard_row`) files are held to the table's schema; two workers making the
    table at once each read "no table" and both committed, so the table took both files' columns and the file
    that differed passed. A commit whose job read another schema than the table has now runs again on it."""
    flow = wf(
        "s",
        read={"format": "csv"},
        batch=False,
        schema={"evolution": evolution},
        write={"table": "s", "format": fmt},
    )
    lake = make_lake([flow], batch_files=1, workers=2)
    held_together(monkeypatch, second=("s/b.csv",))
    lake.land("s/a.csv", "id,amount\n1,5\n")
    lake.land("s/b.csv", "id,amount,region\n2,6,eu\n")
    lake.process()
    table = lake.pipeline.table("s")
    assert [n for n, _ in table.schema if not n.startswith("_")] == ["id", "amount"]
    (run,) = lake.pipeline.runs(key="s/b.csv")[:1]
    if evolution == "freeze":
        assert run.status == "dead" and "new column `region`" in run.error
    else:
        assert lake.rows("SELECT id, _rescued_data FROM s ORDER BY id") == [
            (1, None),
            (2, '{"region":"eu","_file":"s/b.csv"}'),
        ]
