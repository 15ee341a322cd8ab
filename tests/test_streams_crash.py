"""kill -9 the stream server under load: every acknowledged record is in the table exactly once, and no
record (acknowledged or not) is there twice."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter

import boto3
import httpx
import pytest
from botocore.config import Config

from landfall.testing.ports import free_port
from landfall.testing.streams import TOKEN, start, stop

from conftest import wf

pytestmark = pytest.mark.slow


def lake_for(make_lake, fmt: str = "parquet"):
    return make_lake(
        [
            wf(
                "clicks",
                match="raw/clicks/",
                write={"table": "clicks", "format": fmt},
                retry={"max_attempts": 20, "backoff_seconds": 0.01},
            )
        ],
        streams=[
            {
                "name": "clicks",
                "prefix": "raw/clicks/",
                "partition_by": ["kind"],
                "buffer": {"size_mb": 0.05, "interval_seconds": 0.3},
            }
        ],
        reconcile_seconds=0.5,
        settle_seconds=0.2,
    )


def counts(lake) -> Counter:
    lake.pipeline.process()
    return Counter(row[0] for row in lake.rows("SELECT id FROM clicks"))


def test_kill_9_under_load_loses_and_duplicates_nothing(make_lake):
    lake = lake_for(make_lake)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    acked: set[str] = set()
    sent: set[str] = set()
    lock = threading.Lock()
    done = threading.Event()

    def native(n: int) -> None:
        i = 0
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                ids = [f"n{n}-{i + j}" for j in range(50)]
                i += 50
                body = b"".join(json.dumps({"id": x, "kind": f"k{hash(x) % 3}"}).encode() + b"\n" for x in ids)
                with lock:
                    sent.update(ids)
                try:
                    r = client.post(f"{url}/streams/clicks", content=body, headers={"authorization": f"Bearer {TOKEN}"})
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                if r.status_code == 200 and r.json()["accepted"] == 50:
                    with lock:
                        acked.update(ids)

    def firehose() -> None:
        fh = boto3.client(
            "firehose",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="landfall",
            aws_secret_access_key=TOKEN,
            # no retries: a retried call sends its records again, which would be two deliveries
            config=Config(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=5),
        )
        i = 0
        while not done.is_set():
            ids = [f"f-{i + j}" for j in range(100)]
            i += 100
            with lock:
                sent.update(ids)
            try:
                r = fh.put_record_batch(
                    DeliveryStreamName="clicks",
                    Records=[{"Data": json.dumps({"id": x, "kind": "fh"}).encode() + b"\n"} for x in ids],
                )
            except Exception:
                time.sleep(0.05)
                continue
            with lock:
                acked.update(x for x, res in zip(ids, r["RequestResponses"], strict=True) if "RecordId" in res)

    proc = start(lake.config, port)
    producers = [threading.Thread(target=native, args=(n,)) for n in range(2)] + [threading.Thread(target=firehose)]
    for t in producers:
        t.start()
    seed = int(os.environ.get("LANDFALL_TEST_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    print(f"seed {seed} (LANDFALL_TEST_SEED={seed} repeats this run's kill times)")
    kills = 0

    def acked_past(n: int, seconds: float = 300) -> None:
        """Wait until more than `n` records are acknowledged: a loaded machine starts the server slowly, and a
        kill before it took any load would test nothing (the bound only catches a server that never answers)."""
        deadline = time.monotonic() + seconds
        while len(acked) <= n:
            assert time.monotonic() < deadline and proc.poll() is None, f"{len(acked)} acknowledged, not past {n}"
            time.sleep(0.05)

    def interrupted_runs_ended(seconds: float = 300) -> None:
        """Wait until the runs the last kill cut off have ended: a file that three kills in a row catch while it
        loads goes to the dead-letter list by design (it looks like a file that kills workers; the state suite
        tests that), which is not what this test is about."""
        deadline = time.monotonic() + seconds
        while any(r.interruptions and r.status in ("queued", "running") for r in lake.pipeline.runs(limit=None)):
            assert time.monotonic() < deadline and proc.poll() is None, "runs cut off by the last kill did not end"
            time.sleep(0.1)

    try:
        for _ in range(5):
            acked_past(len(acked))
            interrupted_runs_ended()
            time.sleep(rng.uniform(0.4, 1.5))
            proc.kill()  # SIGKILL: no flush, no cleanup, runs cut off wherever they were
            proc.wait()
            kills += 1
            proc = start(lake.config, port)
        acked_past(1000)
        time.sleep(1.0)
    finally:
        done.set()
        for t in producers:
            t.join()
        stop(proc)
    assert kills == 5 and len(acked) > 1000, f"only {len(acked)} records acknowledged"
    found = counts(lake)
    assert lake.pipeline.runs(status="dead") == []
    twice = {k: v for k, v in found.items() if v > 1}
    assert not twice, f"{len(twice)} records loaded more than once, e.g. {list(twice.items())[:5]}"
    missing = acked - set(found)
    assert not missing, (
        f"{len(missing)} of {len(acked)} acknowledged records are not in the table: {sorted(missing)[:5]}"
    )
    assert set(found) <= sent


@pytest.mark.parametrize("point", ["stream_after_pending", "stream_after_land", "stream_after_submit"])
def test_a_crash_at_each_step_of_a_flush(make_lake, point):
    lake = lake_for(make_lake, fmt="delta")
    port = free_port()
    proc = start(lake.config, port, env={"LANDFALL_CRASH_AT": point})
    body = b"".join(json.dumps({"id": f"r{i}", "kind": f"k{i % 4}"}).encode() + b"\n" for i in range(200))
    auth = {"authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"http://127.0.0.1:{port}/streams/clicks", content=body, headers=auth, timeout=120)
    assert r.status_code == 200 and r.json()["accepted"] == 200
    assert proc.wait(300) == -signal.SIGKILL  # the first flush killed it at `point`
    proc = start(lake.config, port)
    r = httpx.post(
        f"http://127.0.0.1:{port}/streams/clicks", content=b'{"id": "after", "kind": "k0"}', headers=auth, timeout=120
    )
    assert r.status_code == 200
    stop(proc)
    found = counts(lake)
    assert found == Counter({f"r{i}": 1 for i in range(200)} | {"after": 1})


def test_sigterm_to_landfall_serve_lands_what_the_streams_hold(make_lake):
    """uvicorn raises SIGTERM again once it has shut down: the streams land their records before that."""
    lake = make_lake(
        [wf("clicks", match="raw/clicks/")],
        streams=[{"name": "clicks", "prefix": "raw/clicks/", "buffer": {"size_mb": 64, "interval_seconds": 3600}}],
    )
    port = free_port()
    proc = start(lake.config, port, up=False)
    body = b"".join(json.dumps({"id": f"r{i}"}).encode() + b"\n" for i in range(500))
    auth = {"authorization": f"Bearer {TOKEN}"}
    for _ in range(4):
        r = httpx.post(f"http://127.0.0.1:{port}/streams/clicks", content=body, headers=auth, timeout=120)
        assert r.status_code == 200
    stop(proc)
    landed = [p for p in (lake.landing / "raw").rglob("*.jsonl")]
    assert sum(len(p.read_bytes().splitlines()) for p in landed) == 2000


@pytest.mark.s3
def test_a_stream_lands_on_an_s3_landing_zone(make_lake, s3_server, s3_bucket):
    """The same landfall.yaml with the landing zone in a bucket: the segment log stays on local disk (fsync), the
    flushed files are objects, the pipeline loads them from there."""
    lake = make_lake(
        [wf("clicks", match="raw/clicks/")],
        streams=[{"name": "clicks", "prefix": "raw/clicks/", "partition_by": ["kind"], "compression": "gzip"}],
        zones={"landing": f"s3://{s3_bucket}/landing"},
        storage=s3_server.storage_settings(),
    )
    port = free_port()
    proc = start(lake.config, port, up=False)
    body = b"".join(json.dumps({"id": i, "kind": f"k{i % 2}"}).encode() + b"\n" for i in range(100))
    auth = {"authorization": f"Bearer {TOKEN}"}
    r = httpx.post(f"http://127.0.0.1:{port}/streams/clicks", content=body, headers=auth, timeout=120)
    assert r.json()["accepted"] == 100
    stop(proc)
    pages = s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=s3_bucket, Prefix="landing/")
    keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    assert len(keys) == 2 and all(k.startswith("landing/raw/clicks/kind=k") and k.endswith(".jsonl.gz") for k in keys)
    assert lake.process().ok
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM clicks") == [(100, 100)]
