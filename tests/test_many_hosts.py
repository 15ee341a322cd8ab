"""Many workers on many hosts: one PostgreSQL state store and one object store (SeaweedFS) shared by `landfall up`
and `landfall worker` processes on separate hosts, all with one landfall.yaml.

Hosts are network namespaces with their own host names and PID namespaces (`landfall.testing.hosts`), reaching
the servers over a bridge, as separate machines would: no host can see another's processes, so a killed
worker's runs come back only when their lease expires. Where namespaces cannot be made (not root, no iproute2)
the hosts are plain processes with their own temporary folders, and the test says so in its output.
"""

from __future__ import annotations

import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from landfall import Pipeline, load_settings
from landfall.testing.hosts import Hosts

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.s3]

ROWS = 5


def make_hosts(tmp_path: Path, count: int, postgres, s3_server) -> Hosts:
    isolate = Hosts.possible()
    print(f"hosts: {'network + PID namespaces' if isolate else 'plain processes (namespaces not possible here)'}")
    return Hosts(tmp_path / "hosts", count, forward=[postgres.port, s3_server.ports["s3"]], isolate=isolate).start()


def write_config(tmp_path: Path, hosts: Hosts, postgres, s3_server, bucket: str, **extra: Any) -> Path:
    """One landfall.yaml for every host: state in PostgreSQL, every zone on the S3 server."""
    db = postgres.create_database().rsplit("/", 1)[1]
    addr = hosts.server_address
    doc = {
        "lake": str(tmp_path / "lake"),
        "state_url": f"postgresql://landfall@{addr}:{postgres.port}/{db}",
        "zones": {
            "landing": f"s3://{bucket}/landing",
            "tables": f"s3://{bucket}/tables",
            "quarantine": f"s3://{bucket}/quarantine",
        },
        "storage": s3_server.storage_settings(endpoint_url=f"http://{addr}:{s3_server.ports['s3']}"),
        "lease_seconds": 4.0,
        "reconcile_seconds": 2.0,
        "settle_seconds": 0,
        "batch_files": 20,
        "workflows": [{"name": "t", "match": "t/", "read": {"format": "csv"}, "write": {"table": "t"}}],
        **extra,
    }
    path = tmp_path / "landfall.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def land(s3_server, bucket: str, keys: list[tuple[str, int]]) -> None:
    """Put `(key, n)` CSV files of ROWS rows with ids n*ROWS..., many at once."""
    client = s3_server.client()

    def put(item: tuple[str, int]) -> None:
        key, n = item
        body = "id,v\n" + "".join(f"{n * ROWS + j},{j}\n" for j in range(ROWS))
        client.put_object(Bucket=bucket, Key=f"landing/{key}", Body=body.encode())

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))


def landfall(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "landfall", "--config", str(config), *args]


def wait_for(pred, timeout: float, what: str, procs=(), hosts: Hosts | None = None) -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None and hosts is not None:
                raise AssertionError(f"a host's landfall exited ({proc.returncode}):\n{hosts.output(proc)[-4000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_hosts_two_thousand_files_one_worker_killed(tmp_path, postgres, s3_server, s3_bucket):
    files = 2000
    hosts = make_hosts(tmp_path, 3, postgres, s3_server)
    try:
        config = write_config(tmp_path, hosts, postgres, s3_server, s3_bucket)
        land(s3_server, s3_bucket, [(f"t/d{i % 10}/f{i:05d}.csv", i) for i in range(files)])
        p = Pipeline(load_settings(config))
        procs = [
            hosts.popen(0, landfall(config, "up", "--workers", "1")),  # intake (listing) and one worker
            hosts.popen(1, landfall(config, "worker", "--workers", "1")),  # the one that gets killed
            hosts.popen(2, landfall(config, "worker", "--processes", "2", "--workers", "1")),  # two processes
        ]

        def victim_holds_a_lease() -> bool:
            return any(r.worker.startswith("host1:") for r in p.runs(status="running"))

        def frozen_holding_a_lease() -> bool:
            """Host 1 stopped (SIGSTOP) while it holds a lease, so that the kill finds it holding one (a kill right
            after a look could find it between two batches, its leases all ended)."""
            if not (p.counts()["succeeded"] >= 300 and victim_holds_a_lease()):
                return False
            hosts.kill(1, signal.SIGSTOP)
            time.sleep(0.5)  # a commit it sent before it stopped lands meanwhile
            if victim_holds_a_lease():
                return True
            hosts.kill(1, signal.SIGCONT)
            return False

        wait_for(frozen_holding_a_lease, 240, "the second host to hold a lease after 300 files", procs, hosts)
        hosts.kill(1)  # kill -9, as a lost machine: its leases can only run out
        killed_at = time.time()
        wait_for(
            lambda: (c := p.counts())["succeeded"] == files and c["queued"] == c["running"] == 0,
            600,
            "every file to load",
            [procs[0], procs[2]],
            hosts,
        )
        for proc in (procs[0], procs[2]):
            hosts.signal(proc, signal.SIGTERM)
        for proc in (procs[0], procs[2]):
            assert proc.wait(120) == 0, hosts.output(proc)[-4000:]

        counts = p.counts()
        assert counts["dead"] == 0 and counts["running"] == 0 and counts["queued"] == 0, counts
        succeeded = p.runs(status="succeeded")
        assert sorted(r.file_key for r in succeeded) == sorted(f"t/d{i % 10}/f{i:05d}.csv" for i in range(files))
        assert {r.attempt for r in succeeded} == {1}  # a dead worker is not the file's fault
        taken_back = p.runs(status="failed")
        assert taken_back, "the killed worker held runs; they should have been taken back"
        assert all(r.worker.startswith("host1:") and "stopped (lease expired)" in r.error for r in taken_back)
        assert all(r.finished_at >= killed_at for r in taken_back)
        assert {r.worker.split(":")[0] for r in succeeded} == {"host0", "host1", "host2"}
        workers_of_host2 = {r.worker.split(":")[1] for r in succeeded if r.worker.startswith("host2:")}
        assert len(workers_of_host2) == 2, workers_of_host2  # `--processes 2`: two worker processes there
        assert p.query("SELECT count(*), count(DISTINCT id) FROM t")[1] == [(files * ROWS, files * ROWS)]
        p.close()
    finally:
        hosts.close()


def test_one_hosts_recovery_keeps_another_hosts_files_in_flight(tmp_path, postgres, s3_server, s3_bucket):
    """Host 0 stops in the middle of a commit (its table file uploaded, the catalog not yet committed) while host 1
    starts and recovers, again and again (every `lease_seconds`): the file is another host's work in flight (its
    run is running, its lease renewed by host 0's heartbeat), so it stays; host 0 then commits it."""
    hosts = make_hosts(tmp_path, 2, postgres, s3_server)
    try:
        # `on_change: append`: no reader lease on the table (a replacing workflow's would protect it too), so
        # only the run recorded in the shared state store stands between host 1's sweep and the file
        workflows = [{"name": "t", "match": "t/", "on_change": "append", "write": {"table": "t"}}]
        config = write_config(tmp_path, hosts, postgres, s3_server, s3_bucket, lease_seconds=3.0, workflows=workflows)
        land(s3_server, s3_bucket, [("t/first.csv", 0)])
        with Pipeline(load_settings(config)) as p:
            assert p.process().count("succeeded") == 1  # the table exists, so recovery sweeps its folder
        land(s3_server, s3_bucket, [("t/second.csv", 1)])
        p = Pipeline(load_settings(config))
        p.discover()
        paused = hosts.popen(
            0,
            landfall(config, "worker", "--workers", "1"),
            env={"LANDFALL_PAUSE_AT": "after_publish", "LANDFALL_PAUSE_SECONDS": "15"},
        )
        tables = p.zones.table("t")
        before = {k for k, _ in tables.list()}
        uploaded = lambda: len({k for k, _ in tables.list()} - before) == 1  # noqa: E731
        wait_for(uploaded, 60, "host 0 to upload its file", [paused], hosts)
        (in_flight,) = {k for k, _ in tables.list()} - before
        assert [r.file_key for r in p.runs(status="running")] == ["t/second.csv"]
        other = hosts.popen(1, landfall(config, "up", "--workers", "1"))
        deadline = time.time() + 10  # host 1 recovers at start and every 3 s meanwhile
        while time.time() < deadline:
            assert in_flight in {k for k, _ in tables.list()}, "another host's recovery deleted a file in flight"
            assert other.poll() is None, hosts.output(other)
            time.sleep(0.3)
        wait_for(lambda: p.counts()["succeeded"] == 2, 60, "host 0 to commit after its pause", [paused], hosts)
        (second,) = p.runs(key="t/second.csv")
        assert second.worker.startswith("host0:") and second.attempt == 1 and second.interruptions == 0
        assert p.query("SELECT count(*), count(DISTINCT id) FROM t")[1] == [(2 * ROWS, 2 * ROWS)]
        assert in_flight in {f.path for f in p.store.table_files("t")}
        for proc in (paused, other):
            hosts.signal(proc, signal.SIGTERM)
            assert proc.wait(60) == 0, hosts.output(proc)[-3000:]
        p.close()
    finally:
        hosts.close()
