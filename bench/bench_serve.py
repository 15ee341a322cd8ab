#!/usr/bin/env python
"""`landfall serve` under a big state store: API, dashboard and `/metrics` latency, and what serving costs ingestion.

Setup (outside every timing): a lake whose SQLite state store holds `--runs` runs (1,000,000 by default) of
`--runs` landed file versions, spread over the last 7 days across 5 workflows (97% succeeded, 2% failed, 0.6%
dead, the rest skipped), written straight into the store's tables in one transaction, then
`ANALYZE`. `landfall serve` runs in its own process on loopback (`--port 0`); the client is this process.

Cases:
  latency   sequential requests (keep-alive), `--requests` each after a warm-up of 3: the runs page (its HTML
            shell, and `/api/runs?limit=50` as its script calls it: newest first, filtered by status, by workflow,
            and a page deep in the history with `before=`), `/api/overview` (the last hour: ~6,000 runs), `/metrics`
            (after its first scrape, which reads every run once: reported on its own). p50 / p95 / max in ms.
  ingest    files/s of `landfall process` (whole processes, `--files` small CSVs each time, landed into the same
            big lake) with no server, and with `landfall serve` running (past its start-up read of every run for
            /metrics) and a dashboard open on it (this process
            polls the runs page's API every 2 s and the overview every 10 s, as those pages do, and `/metrics`
            every 15 s, as a Prometheus scrape); alternating, `--repeat` times each. Reports the median ratio.

Targets (issue 10): runs page and overview p95 under 200 ms, `/metrics` under 100 ms, ingestion within 5%.

    PYTHONPATH=src python bench/bench_serve.py                      # 1,000,000 runs: about 3 minutes
    PYTHONPATH=src python bench/bench_serve.py --runs 100000 --repeat 2   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

import httpx  # noqa: E402
import yaml  # noqa: E402

from landfall import load_settings  # noqa: E402
from landfall.state import open_state  # noqa: E402
from landfall.testing.web import LandfallProcess  # noqa: E402

WORKFLOWS = ["sales", "events", "orders", "clicks", "inventory"]
TARGET_PAGE_MS = 200.0
TARGET_METRICS_MS = 100.0
TARGET_INGEST_COST = 0.05


def write_config(root: Path) -> Path:
    doc = {
        "lake": str(root / "lake"),
        "workflows": [
            {"name": w, "match": f"{w}/", "read": {"format": "csv"}, "write": {"table": w}} for w in WORKFLOWS
        ],
    }
    config = root / "landfall.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    (root / "lake" / "landing").mkdir(parents=True, exist_ok=True)
    return config


def fill(config: Path, n: int) -> float:
    """`n` files and runs straight into the state store (the schema made by landfall itself). Returns seconds."""
    settings = load_settings(config)
    store = open_state(settings.state)
    store.close()
    path = settings.state.removeprefix("sqlite:///")
    clock = time.perf_counter()
    rnd = random.Random(7)
    now = time.time()
    span = 7 * 86400.0
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("BEGIN")
    files, runs = [], []
    for i in range(1, n + 1):
        wf = WORKFLOWS[i % len(WORKFLOWS)]
        queued = now - span * (1 - i / n) - rnd.random()  # older ids earlier; the newest in the last seconds
        roll = rnd.random()
        status = "succeeded" if roll < 0.97 else "failed" if roll < 0.99 else "dead" if roll < 0.996 else "skipped"
        started = None if status == "queued" else queued + 0.05
        finished = None if status == "queued" else started + rnd.uniform(0.02, 2.0)
        size = rnd.randint(500, 200_000)
        key = f"{wf}/{time.strftime('%Y-%m-%d', time.gmtime(queued))}/part-{i:07d}.csv"
        rows = size // 40
        files.append((i, key, size, queued - 1, "", f"{i:064x}", queued, wf))
        runs.append(
            (
                f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(queued))}-{i:08x}",
                i,
                key,
                wf,
                wf,
                status,
                2 if status == "failed" else 1,
                3,
                queued,
                queued,
                started,
                finished,
                rows if status == "succeeded" else None,
                rows if status == "succeeded" else None,
                size if status == "succeeded" else None,
                f"`{key}` line 7: value `x` is not a valid BIGINT" if status in ("failed", "dead") else None,
                json.dumps([{"step": "read", "seconds": 0.01}, {"step": "write", "seconds": 0.02}]),
            )
        )
        if len(runs) == 50_000 or i == n:
            con.executemany(
                "INSERT INTO files (id, key, size, mtime, etag, content_hash, discovered_at, workflow) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                files,
            )
            con.executemany(
                "INSERT INTO runs (run_id, file_id, file_key, workflow, table_name, status, attempt, max_attempts, "
                "queued_at, available_at, started_at, finished_at, rows_in, rows_out, bytes, error, steps) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                runs,
            )
            files, runs = [], []
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()
    return time.perf_counter() - clock


def timed(http: httpx.Client, path: str, n: int) -> list[float]:
    for _ in range(3):
        http.get(path).raise_for_status()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = http.get(path)
        out.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
    return out


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, min(len(s) - 1, round(p / 100 * len(s) + 0.5) - 1))]


def latency(config: Path, requests: int) -> dict:
    server = LandfallProcess(config, "serve", "--port", "0", env={"LANDFALL_TOKEN": "bench"})
    results = {}
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            t = time.perf_counter()
            http.get("/metrics").raise_for_status()  # the server started reading every run once when it started
            results["metrics_first_scrape_ms"] = round((time.perf_counter() - t) * 1000, 1)
            deep = http.get("/api/runs?limit=1&before=" + http.get("/api/runs?limit=1").json()[0]["run_id"]).json()
            middle = _middle_run(http)
            cases = {
                "runs page (HTML shell)": "/runs",
                "runs page API: newest 50": "/api/runs?limit=50",
                "runs page API: status=dead": "/api/runs?limit=50&status=dead",
                "runs page API: workflow=sales": "/api/runs?limit=50&workflow=sales",
                "runs page API: a page deep in history": f"/api/runs?limit=50&before={middle}",
                "overview (last hour)": "/api/overview?minutes=60",
                "/metrics": "/metrics",
            }
            assert deep, "paging works"
            for name, path in cases.items():
                ms = timed(http, path, requests)
                results[name] = {"p50": round(pct(ms, 50), 1), "p95": round(pct(ms, 95), 1), "max": round(max(ms), 1)}
    finally:
        server.stop()
    return results


def _middle_run(http: httpx.Client) -> str:
    doc = http.post("/api/query", json={"sql": "SELECT run_id FROM landfall.runs ORDER BY queued_at LIMIT 1 OFFSET "
                                                "(SELECT count(*) / 2 FROM landfall.runs)"}).json()  # fmt: skip
    return doc["rows"][0][0]


class Dashboard:
    """Two dashboard tabs and a Prometheus scrape: the runs page's API every 2 s, the overview every 10 s (as the
    pages poll them), /metrics every 15 s."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=60)
        self.stop = threading.Event()
        self.calls = 0
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        tick = 0
        while not self.stop.wait(1.0):
            tick += 1
            paths = ["/api/runs?limit=50"] if tick % 2 == 0 else []
            if tick % 10 == 0:
                paths.append("/api/overview?minutes=60")
            if tick % 15 == 0:
                paths.append("/metrics")
            for p in paths:
                self.http.get(p)
                self.calls += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.http.close()


def ingest_once(config: Path, root: Path, files: int, tag: str) -> float:
    landing = root / "lake" / "landing" / "sales" / tag
    landing.mkdir(parents=True)
    for i in range(files):
        rows = "".join(f"{i * 10 + j},{tag}-{j},{j}\n" for j in range(10))  # new content each time (no dedupe)
        (landing / f"f{i:04d}.csv").write_text("id,name,qty\n" + rows)
    t = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(config), "process", "--no-progress"],
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if f"{files} succeeded" not in done.stdout:  # (it exits 1 while the made-up dead letters are listed)
        raise SystemExit(f"landfall process failed: {done.stdout}{done.stderr}")
    return files / took, (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ingest(config: Path, root: Path, files: int, repeat: int) -> dict:
    alone, served, calls, serve_cpu, ingest_cpu = [], [], 0, 0.0, 0.0
    for k in range(repeat):
        for mode in ("alone", "served") if k % 2 == 0 else ("served", "alone"):
            if mode == "alone":
                alone.append(ingest_once(config, root, files, f"a{k}")[0])
                continue
            server = LandfallProcess(config, "serve", "--port", "0", env={"LANDFALL_TOKEN": "bench"})
            # a server in its steady state: its one-time read of every run for /metrics (reported by the
            # latency case) is over before the clock starts
            httpx.get(server.url + "/metrics", timeout=600).raise_for_status()
            dash = Dashboard(server.url)
            try:
                time.sleep(1.0)
                before = cpu_seconds(server.proc.pid)
                rate, cpu = ingest_once(config, root, files, f"s{k}")
                serve_cpu += cpu_seconds(server.proc.pid) - before
                ingest_cpu += cpu
                served.append(rate)
            finally:
                calls += dash.calls
                dash.close()
                server.stop()
    cost = 1 - statistics.median(served) / statistics.median(alone)
    return {
        "files_per_s_alone": [round(x, 1) for x in alone],
        "files_per_s_served": [round(x, 1) for x in served],
        "dashboard_calls": calls,
        "throughput_cost": round(cost, 4),
        # the CPU the server used while `landfall process` ran, against the CPU of that process: on a machine
        # whose cores are busy this bounds what serving takes from ingestion, and it does not depend on how
        # busy the machine is (the throughput figures above do)
        "serve_cpu_seconds": round(serve_cpu, 3),
        "ingest_cpu_seconds": round(ingest_cpu, 3),
        "cpu_cost": round(serve_cpu / ingest_cpu, 4) if ingest_cpu else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="latency,ingest")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="landfall-bench-serve-") as tmp:
        root = Path(tmp)
        config = write_config(root)
        secs = fill(config, args.runs)
        report: dict = {"runs": args.runs, "fill_seconds": round(secs, 1)}
        print(f"state store: {args.runs:,} runs written in {secs:.1f} s")
        cases = args.cases.split(",")
        if "latency" in cases:
            lat = latency(config, args.requests)
            report["latency_ms"] = lat
            print(f"\n/metrics first scrape (reads every run once): {lat['metrics_first_scrape_ms']:.0f} ms")
            print(f"\n{'request':42} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target")
            for name, v in lat.items():
                if not isinstance(v, dict):
                    continue
                target = TARGET_METRICS_MS if name == "/metrics" else TARGET_PAGE_MS
                ok = "met" if v["p95"] < target else "MISSED"
                print(f"{name:42} {v['p50']:8.1f} {v['p95']:8.1f} {v['max']:8.1f}  p95 < {target:.0f}: {ok}")
        if "ingest" in cases:
            ing = ingest(config, root, args.files, args.repeat)
            report["ingest"] = ing
            ok = "met" if ing["throughput_cost"] <= TARGET_INGEST_COST else "MISSED"
            print(
                f"\nlandfall process, {args.files} files each: alone {ing['files_per_s_alone']} files/s; "
                f"with a served dashboard {ing['files_per_s_served']} files/s ({ing['dashboard_calls']} calls)"
            )
            print(f"throughput cost of serving (medians): {ing['throughput_cost']:.1%} (target <= 5%: {ok})")
            cpu_ok = "met" if (ing["cpu_cost"] or 0) <= TARGET_INGEST_COST else "MISSED"
            share = f"{ing['cpu_cost']:.1%}"
            load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            print(
                f"server CPU while ingesting: {ing['serve_cpu_seconds']:.2f} s against "
                f"{ing['ingest_cpu_seconds']:.1f} s of `landfall process` CPU: {share} (target <= 5%: {cpu_ok}); {load}"
            )
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
