#!/usr/bin/env python
"""Stream intake benchmark: records over HTTP into the segment log (fsync on), and posted -> queryable.

The server is `landfall serve` (uvicorn; `landfall up --serve` for the latency case) in its own process on
loopback; the client is a lean asyncio HTTP/1.1 client with keep-alive connections and requests built before
the clock starts, in this process, so the two share the machine's cores as a producer and landfall would.

Cases:
  batch     Firehose `PutRecordBatch` calls of `--batch` records of ~200 bytes (base64, as boto3 sends them),
            and the same records as JSON Lines to `POST /streams/<name>`: records/s acknowledged (each answer
            comes after its records were fsynced), server CPU seconds per 10,000 records.
  single    one-record calls (`POST /streams/<name>`), sent open-loop at `--rate` calls/s over `--conns`
            connections for `--seconds`: calls/s achieved and acknowledgement latency p50 / p99 from the
            moment each call was due (so a server that falls behind shows it).
  latency   the server also runs the pipeline's workers (`--up`, a 1 s buffer interval): records posted one at a
            time at 20/s; another process polls the table; posted -> queryable p50 / p95.

Baseline, measured in the same run: `floor`, a loop in this process that appends the same bytes to a file and
fdatasyncs once per call, i.e. what the disk allows for the batch and single cases without any HTTP or checking.

    PYTHONPATH=src python bench/bench_streams.py                 # all cases, about a minute
    PYTHONPATH=src python bench/bench_streams.py --cases single --rate 3000
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from landfall.testing.ports import free_port  # noqa: E402
from landfall.testing.streams import TOKEN, start  # noqa: E402

TARGET_BATCH = 50_000  # records/s in calls of 500
TARGET_SINGLE = 2_000  # calls/s
TARGET_P99_MS = 50.0
TARGET_QUERYABLE_P50 = 2.0  # seconds, with a 1 s buffer interval


def record(i: int) -> bytes:
    """About 200 bytes of JSON."""
    return json.dumps(
        {
            "id": i,
            "event_type": ("view", "click", "buy")[i % 3],
            "user": f"user-{i % 9973:05d}",
            "page": f"/products/{i % 541}/details",
            "ts": 1796000000000 + i,
            "agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
            "amount": round((i % 1000) * 1.07, 2),
        },
        separators=(",", ":"),
    ).encode()


def config(root: Path, interval: float, size_mb: float) -> Path:
    cfg = {
        "lake": str(root / "lake"),
        "reconcile_seconds": 0.5,
        "settle_seconds": 0.2,
        "streams": [
            {
                "name": "clicks",
                "prefix": "raw/clicks/",
                "buffer": {"size_mb": size_mb, "interval_seconds": interval, "limit_mb": 512},
            }
        ],
        "workflows": [{"name": "clicks", "match": "raw/clicks/", "write": {"table": "clicks"}}],
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "landfall.yaml"
    path.write_text(json.dumps(cfg))
    return path


class Server:
    """`landfall serve` (or `up --serve`, with the workers) as its own process."""

    def __init__(self, cfg: Path, up: bool = False) -> None:
        self.port = free_port()
        extra = os.environ.get("BENCH_EXTRA_PATH")  # e.g. a folder with httptools and uvloop, to compare
        env = {"PYTHONPATH": os.pathsep.join([str(REPO / "src"), extra])} if extra else None
        self.proc = start(cfg, self.port, up=up, env=env)

    def cpu(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> float:
        """Stop the server (it lands what it holds first); return its CPU seconds, all of them."""
        self.proc.terminate()
        _, status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return usage.ru_utime + usage.ru_stime


def request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
    head += f"Authorization: Bearer {TOKEN}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode() + b"\r\n" + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> tuple[int, bytes]:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await reader.readexactly(length)


async def closed_loop(port: int, requests: list[bytes], conns: int) -> list[tuple[int, bytes]]:
    """Send every request, `conns` at a time (one per connection)."""
    queue = list(enumerate(requests))
    out: list[tuple[int, bytes]] = [(0, b"")] * len(requests)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            i, req = queue.pop()
            out[i] = await exchange(reader, writer, req)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return out


async def open_loop(port: int, requests: list[bytes], rate: float, conns: int) -> tuple[list[float], float]:
    """Send request k when it is due (k / rate s after the start) on a free connection; latency from when due."""
    free: asyncio.Queue = asyncio.Queue()
    for _ in range(conns):
        free.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    lat: list[float] = []
    start = time.perf_counter()

    async def one(k: int, req: bytes) -> None:
        due = start + k / rate
        conn = await free.get()
        status, _ = await exchange(*conn, req)
        lat.append(time.perf_counter() - due)
        free.put_nowait(conn)
        if status != 200:
            raise RuntimeError(f"status {status}")

    tasks = []
    for k, req in enumerate(requests):
        delay = start + k / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(k, req)))
    await asyncio.gather(*tasks)
    return lat, time.perf_counter() - start


def floor(records: list[bytes], per_call: int, tmp: Path) -> float:
    """Records/s for appending the bytes and fdatasyncing once per call, nothing else."""
    fd = os.open(tmp / "floor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    t = time.perf_counter()
    for i in range(0, len(records), per_call):
        os.write(fd, b"\n".join(records[i : i + per_call]))
        os.fdatasync(fd)
    elapsed = time.perf_counter() - t
    os.close(fd)
    return len(records) / elapsed


def case_batch(args: argparse.Namespace, tmp: Path) -> dict:
    records = [record(i) for i in range(args.records)]
    results = {}
    for name in ("firehose_batch", "ndjson_batch"):
        server = Server(config(tmp / name, interval=60, size_mb=5))
        port = server.port
        reqs = []
        for i in range(0, len(records), args.batch):
            chunk = records[i : i + args.batch]
            if name == "firehose_batch":
                doc = {
                    "DeliveryStreamName": "clicks",
                    "Records": [{"Data": base64.b64encode(r).decode()} for r in chunk],
                }
                target = {
                    "X-Amz-Target": "Firehose_20150804.PutRecordBatch",
                    "Content-Type": "application/x-amz-json-1.1",
                }
                reqs.append(request(port, "/", json.dumps(doc).encode(), target))
            else:
                reqs.append(
                    request(port, "/streams/clicks", b"\n".join(chunk), {"Content-Type": "application/x-ndjson"})
                )
        try:
            cpu0, t0 = server.cpu(), time.perf_counter()
            answers = asyncio.run(closed_loop(port, reqs, args.conns_batch))
            elapsed = time.perf_counter() - t0
        finally:
            cpu = server.stop() - cpu0  # the records' landing (flushes, the last one at exit) included
        bad = [a for a in answers if a[0] != 200]
        if bad:
            raise RuntimeError(f"{name}: {len(bad)} calls failed: {bad[0]}")
        if name == "firehose_batch":
            assert sum(json.loads(a[1])["FailedPutCount"] for a in answers) == 0
        landed = sum(sum(1 for _ in open(f, "rb")) for f in (tmp / name / "lake" / "landing").rglob("*.jsonl"))
        assert landed == len(records), (landed, len(records))
        results[name] = {
            "records_per_s": len(records) / elapsed,
            "mib_per_s": sum(len(r) for r in records) / elapsed / (1 << 20),
            "server_cpu_s_per_10k": cpu / len(records) * 10_000,
        }
    results["floor_batch"] = {"records_per_s": floor(records, args.batch, tmp)}
    return results


def case_single(args: argparse.Namespace, tmp: Path) -> dict:
    n = int(args.rate * args.seconds)
    records = [record(i) for i in range(n)]
    server = Server(config(tmp / "single", interval=60, size_mb=64))
    try:
        reqs = [request(server.port, "/streams/clicks", r, {"Content-Type": "application/x-ndjson"}) for r in records]
        asyncio.run(closed_loop(server.port, reqs[:200], args.conns))  # warm up
        cpu0 = server.cpu()
        lat, elapsed = asyncio.run(open_loop(server.port, reqs, args.rate, args.conns))
    finally:
        cpu = server.stop() - cpu0
    lat.sort()
    return {
        "single": {
            "offered_per_s": args.rate,
            "calls_per_s": n / elapsed,
            "p50_ms": lat[len(lat) // 2] * 1000,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
            "max_ms": lat[-1] * 1000,
            "server_cpu_s_per_10k": cpu / n * 10_000,
        },
        "floor_single": {"records_per_s": floor(records, 1, tmp)},
    }


def case_latency(args: argparse.Namespace, tmp: Path) -> dict:
    cfg = config(tmp / "latency", interval=1.0, size_mb=5)
    server = Server(cfg, up=True)
    posted: dict[int, float] = {}
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        from landfall import Pipeline, load_settings
        from landfall.errors import NoSuchTable

        p = Pipeline(load_settings(cfg))
        last = -1
        while not stop.is_set():
            try:
                _, rows = p.query(f"SELECT id FROM clicks WHERE id > {last}")
            except (NoSuchTable, Exception):  # the table appears with the first run
                rows = []
            now = time.time()
            for (i,) in rows:
                seen.setdefault(i, now)
                last = max(last, i)
            time.sleep(0.05)
        p.close()

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for i in range(args.latency_records):
            posted[i] = time.time()
            headers = {"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {TOKEN}"}
            conn.request("POST", "/streams/clicks", record(i), headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
            time.sleep(1 / 20)
        deadline = time.time() + 20
        while len(seen) < len(posted) and time.time() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        poller.join()
        server.stop()
    delays = sorted(seen[i] - posted[i] for i in posted if i in seen)
    return {
        "latency": {
            "records": len(posted),
            "queryable": len(delays),
            "p50_s": statistics.median(delays),
            "p95_s": delays[int(len(delays) * 0.95)],
            "max_s": delays[-1],
        }
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="batch,single,latency")
    ap.add_argument("--records", type=int, default=300_000, help="batch case: records")
    ap.add_argument("--batch", type=int, default=500, help="batch case: records per call")
    ap.add_argument("--conns-batch", type=int, default=4, help="batch case: connections")
    ap.add_argument("--rate", type=float, default=2000, help="single case: calls/s offered")
    ap.add_argument("--seconds", type=float, default=10, help="single case: how long")
    ap.add_argument("--conns", type=int, default=32, help="single case: connections")
    ap.add_argument("--latency-records", type=int, default=200)
    args = ap.parse_args()
    out: dict = {"cores": os.cpu_count(), "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="landfall-bench-streams-") as d:
        tmp = Path(d)
        for case in args.cases.split(","):
            out.update({"batch": case_batch, "single": case_single, "latency": case_latency}[case](args, tmp))
    out["load_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))
    print()
    print(
        f"machine: {out['cores']} cores, load average {out['load_before']:.1f} before and {out['load_after']:.1f} "
        "after (other work on the machine slows every figure but the CPU per record)"
    )
    if "firehose_batch" in out:
        for name in ("firehose_batch", "ndjson_batch"):
            r = out[name]
            print(
                f"{name}: {r['records_per_s']:,.0f} records/s ({r['mib_per_s']:.1f} MiB/s), "
                f"{r['server_cpu_s_per_10k']:.3f} server CPU s per 10,000 records (landing included); "
                f"target {TARGET_BATCH:,}: {'met' if r['records_per_s'] >= TARGET_BATCH else 'NOT met'}; "
                f"{r['records_per_s'] / out['floor_batch']['records_per_s']:.2f}x the fsync floor "
                f"({out['floor_batch']['records_per_s']:,.0f}/s); one core's worth of server CPU: "
                f"{10_000 / r['server_cpu_s_per_10k']:,.0f} records/s"
            )
    if "single" in out:
        r = out["single"]
        ok = r["calls_per_s"] >= TARGET_SINGLE * 0.98 and r["p99_ms"] < TARGET_P99_MS
        print(
            f"single: {r['calls_per_s']:,.0f} calls/s of {r['offered_per_s']:,.0f} offered, p50 {r['p50_ms']:.1f} ms, "
            f"p99 {r['p99_ms']:.1f} ms, {r['server_cpu_s_per_10k']:.2f} server CPU s per 10,000 calls "
            f"({10_000 / r['server_cpu_s_per_10k']:,.0f} calls/s per core); target "
            f"{TARGET_SINGLE:,}/s with p99 < {TARGET_P99_MS:.0f} ms: {'met' if ok else 'NOT met'}"
        )
    if "latency" in out:
        r = out["latency"]
        print(
            f"posted -> queryable (1 s buffer interval): p50 {r['p50_s']:.2f} s, p95 {r['p95_s']:.2f} s "
            f"({r['queryable']}/{r['records']} seen); target p50 < {TARGET_QUERYABLE_P50:.0f} s: "
            f"{'met' if r['p50_s'] < TARGET_QUERYABLE_P50 else 'NOT met'}"
        )


if __name__ == "__main__":
    main()
