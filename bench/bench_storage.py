#!/usr/bin/env python
"""Zones on an object store vs on local disk: the same files, loaded end to end by landfall both ways.

Cases (the generator of bench_core.py, 14 mixed columns):
  (a) `single`: one CSV of `--rows` rows (1,000,000);
  (b) `many`:   `--files` CSV files of 50 rows each (2,000).

Variants, each a fresh child process timing `Pipeline(settings).process()` (table committed and cataloged):
  local   landing, tables and quarantine are folders on local disk (the files hard-linked into landing/);
  s3      all three zones on SeaweedFS (`weed server -s3`, started here on loopback; the files uploaded
          before the timing starts). The state store is SQLite on local disk in both.

The ratio s3 / local is what this reports (one run each by default, same files, same machine). SeaweedFS runs
on the same 2 cores as landfall, so the ratio includes the server's own work, as a store on the same host would.

    PYTHONPATH=src python bench/bench_storage.py
    PYTHONPATH=src python bench/bench_storage.py --rows 200000 --files 500 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import yaml

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(HERE))

from bench_core import GEN_SQL  # noqa: E402

from landfall.testing.s3 import SeaweedFS  # noqa: E402

MARK = "BENCH_RESULT "
SMALL_ROWS = 50

CHILD = """
import json, sys, time
from landfall import Pipeline, load_settings
t0 = time.perf_counter()
p = Pipeline(load_settings(sys.argv[1]))
summary = p.process()
seconds = time.perf_counter() - t0
rows = p.query("SELECT count(*) FROM t")[1][0][0]
print("BENCH_RESULT " + json.dumps({"seconds": seconds, "ok": summary.ok, "runs": len(summary.outcomes),
                                      "rows": rows}), flush=True)
import os
os._exit(0)
"""


def generate(work: Path, rows: int, files: int) -> tuple[Path, Path]:
    single = work / "gen" / "single.csv"
    many = work / "gen" / "many"
    many.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"COPY ({GEN_SQL.format(n=rows)}) TO '{single}' (FORMAT csv, HEADER)")
    con.execute(f"CREATE TABLE small AS {GEN_SQL.format(n=files * SMALL_ROWS)}")
    for i in range(files):
        lo = i * SMALL_ROWS
        con.execute(
            f"COPY (SELECT * FROM small WHERE id >= {lo} AND id < {lo + SMALL_ROWS} ORDER BY id) "
            f"TO '{many / f'f{i:05d}.csv'}' (FORMAT csv, HEADER)"
        )
    con.close()
    return single, many


def project(root: Path, zones: dict | None, storage: dict | None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    doc = {
        "lake": str(root / "lake"),
        "workers": 2,
        "workflows": [{"name": "t", "match": "t/", "read": {"format": "csv"}, "write": {"table": "t"}}],
    }
    if zones:
        doc["zones"] = zones
    if storage:
        doc["storage"] = storage
    config = root / "landfall.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return config


def run_child(config: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(config)], env=env, capture_output=True, text=True, timeout=3600
    )
    for line in out.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise RuntimeError(f"child failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")


def land_local(config: Path, files: list[Path]) -> None:
    landing = config.parent / "lake" / "landing" / "t"
    landing.mkdir(parents=True, exist_ok=True)
    for f in files:
        os.link(f, landing / f.name)


def land_s3(server: SeaweedFS, bucket: str, files: list[Path]) -> None:
    client = server.client()

    def put(f: Path) -> None:
        client.upload_file(str(f), bucket, f"landing/t/{f.name}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, files))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each variant; the best is reported")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="landfall-bench-storage-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        single, many = generate(work, args.rows, args.files)
        cases = {"single": [single], "many": sorted(many.glob("*.csv"))}
        mib = single.stat().st_size / (1 << 20)
        print(
            f"generated in {time.perf_counter() - t0:.1f} s: one CSV of {args.rows:,} rows ({mib:.0f} MiB), "
            f"{args.files:,} CSVs of {SMALL_ROWS} rows"
        )
        server = SeaweedFS(work / "seaweedfs").start()
        try:
            results: dict[str, dict[str, float]] = {}
            for case, files in cases.items():
                for variant in ("local", "s3"):
                    best = None
                    for i in range(args.repeat):
                        root = work / f"{case}-{variant}-{i}"
                        if variant == "local":
                            config = project(root, None, None)
                            land_local(config, files)
                        else:
                            bucket = server.make_bucket(f"b-{case}-{i}")
                            zones = {z: f"s3://{bucket}/{z}" for z in ("landing", "tables", "quarantine")}
                            config = project(root, zones, server.storage_settings())
                            land_s3(server, bucket, files)
                        res = run_child(config)
                        want = args.rows if case == "single" else args.files * SMALL_ROWS
                        assert res["ok"] and res["rows"] == want, res
                        best = res["seconds"] if best is None else min(best, res["seconds"])
                    results.setdefault(case, {})[variant] = best
                    print(f"  {case:6s} {variant:5s} {best:7.2f} s", flush=True)
        finally:
            server.stop()
    print()
    print("| case | local disk | SeaweedFS (s3://) | s3 / local | files/s local | files/s s3 |")
    print("|---|---:|---:|---:|---:|---:|")
    for case, r in results.items():
        n = 1 if case == "single" else args.files
        label = f"one CSV, {args.rows:,} rows" if case == "single" else f"{args.files:,} CSVs x {SMALL_ROWS} rows"
        print(
            f"| {label} | {r['local']:.2f} s | {r['s3']:.2f} s | {r['s3'] / r['local']:.2f}x | "
            f"{n / r['local']:,.0f} | {n / r['s3']:,.0f} |"
        )


if __name__ == "__main__":
    main()
