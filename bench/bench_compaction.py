"""Small files: 1,000 appends of 100 rows each, with and without landfall's background compaction.

Reports, for each table format: files in the table, ingest time and throughput while `landfall up` runs
(compaction competes for the same 2 cores), and the time of a `SELECT count(*), sum(x) ... GROUP BY` over the
result, against the same rows in one single Parquet file read by DuckDB.

Targets (issue "Lakehouse tables"): query time with compaction within 2x of the single-file table; ingest
throughput drops by at most 20%. Nothing here asserts; it prints the figures and whether the targets hold.

    python bench/bench_compaction.py                 # 1,000 batches x 100 rows, parquet and delta
    python bench/bench_compaction.py --batches 200   # quicker
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import yaml

from landfall import Pipeline, load_settings

QUERY = "SELECT k, count(*), sum(x) FROM {t} GROUP BY k ORDER BY k"


def make_files(landing: Path, batches: int, rows: int) -> None:
    con = duckdb.connect()
    landing.mkdir(parents=True, exist_ok=True)
    for b in range(batches):
        con.execute(
            f"COPY (SELECT {b} * {rows} + range AS id, (range % 10)::INT AS k, random() AS x "
            f"FROM range({rows})) TO '{landing}/b{b:05}.csv' (HEADER)"
        )


def run(root: Path, fmt: str, compaction: bool, batches: int, rows: int) -> dict:
    wf = {
        "name": "t",
        "match": "t/",
        "read": {"format": "csv"},
        "batch": False,
        "write": {"table": "t", "format": fmt, **({"compaction": {"min_files": 16}} if compaction else {})},
    }
    (root / "landfall.yaml").write_text(
        yaml.safe_dump(
            {
                "lake": str(root / "lake"),
                "workflows": [wf],
                "batch_files": 1,
                "workers": 2,
                "reconcile_seconds": 0.5,
                "settle_seconds": 0,
                "compaction_seconds": 1.0,
            }
        )
    )
    make_files(root / "lake/landing/t", batches, rows)
    p = Pipeline(load_settings(root / "landfall.yaml"))
    stop = threading.Event()
    t0 = time.perf_counter()
    th = threading.Thread(target=p.up, args=(stop,), kwargs={"watch": False})
    th.start()
    while p.store.counts()["succeeded"] < batches:
        time.sleep(0.05)
    ingest = time.perf_counter() - t0
    if compaction:  # let the background compactor finish what the last appends left
        settle = time.perf_counter()
        while time.perf_counter() - settle < 30:
            before = p.table("t").file_count
            time.sleep(2.5)
            if p.table("t").file_count == before:
                break
    stop.set()
    th.join()
    table = p.table("t")
    files = [f"{table.location}/{f.path}" for f in p.store.table_files("t")]
    query = best_of(lambda: p.query(QUERY.format(t="t")), 7)
    raw = best_of(lambda: duckdb.execute(QUERY.format(t="read_parquet($f)"), {"f": files}).fetchall(), 7)
    result = {
        "format": fmt,
        "compaction": compaction,
        "batches": batches,
        "rows": table.row_count,
        "files": table.file_count,
        "ingest_seconds": round(ingest, 3),
        "batches_per_second": round(batches / ingest, 1),
        "query_seconds": round(query, 4),
        "duckdb_over_files_seconds": round(raw, 4),
    }
    p.close()
    return result


def best_of(fn, n: int) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def single_file_query(root: Path, batches: int, rows: int) -> tuple[float, float]:
    """The same rows in one Parquet file, cataloged (crawled) and queried through landfall; and by DuckDB."""
    folder = root / "single" / "one"
    folder.mkdir(parents=True)
    path = folder / "data.parquet"
    duckdb.execute(
        f"COPY (SELECT range AS id, (range % 10)::INT AS k, random() AS x FROM range({batches * rows})) "
        f"TO '{path}' (FORMAT parquet, COMPRESSION zstd)"
    )
    (root / "single" / "landfall.yaml").write_text(yaml.safe_dump({"lake": str(root / "single" / "lake")}))
    p = Pipeline(load_settings(root / "single" / "landfall.yaml"))
    from landfall.crawler import crawl

    crawl(p.store, str(root / "single" / "one").rsplit("/", 1)[0])
    via_landfall = best_of(lambda: p.query(QUERY.format(t="one")), 7)
    raw = best_of(lambda: duckdb.execute(QUERY.format(t=f"read_parquet('{path}')")).fetchall(), 7)
    p.close()
    return via_landfall, raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=1000)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--formats", default="parquet,delta")
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="landfall-bench-") as tmp:
        base, base_raw = single_file_query(Path(tmp), args.batches, args.rows)
        for fmt in args.formats.split(","):
            for compaction in (False, True):
                d = Path(tmp) / f"{fmt}-{compaction}"
                d.mkdir()
                results.append(run(d, fmt, compaction, args.batches, args.rows))
    print(
        f"\nsmall files: {args.batches} appends x {args.rows} rows; the same rows in one file: "
        f"{base * 1000:.1f} ms through `landfall query`, {base_raw * 1000:.1f} ms in DuckDB alone\n"
    )
    print(
        "| format | compaction | files | ingest s | batches/s | query ms | query / single-file table | "
        "DuckDB over the files ms | DuckDB / single file |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['format']} | {'on' if r['compaction'] else 'off'} | {r['files']} | {r['ingest_seconds']} | "
            f"{r['batches_per_second']} | {r['query_seconds'] * 1000:.1f} | {r['query_seconds'] / base:.2f}x | "
            f"{r['duckdb_over_files_seconds'] * 1000:.1f} | {r['duckdb_over_files_seconds'] / base_raw:.2f}x |"
        )
    print()
    for fmt in args.formats.split(","):
        off = next(r for r in results if r["format"] == fmt and not r["compaction"])
        on = next(r for r in results if r["format"] == fmt and r["compaction"])
        drop = 1 - on["batches_per_second"] / off["batches_per_second"]
        ratio = on["query_seconds"] / base
        print(
            f"{fmt}: query with compaction {ratio:.2f}x single file (target <= 2x: "
            f"{'met' if ratio <= 2 else 'NOT met'}); ingest throughput change {-drop:+.0%} "
            f"(target: drop <= 20%: {'met' if drop <= 0.2 else 'NOT met'})"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "compaction.json").write_text(
        json.dumps(
            {"single_file_query_seconds": base, "single_file_duckdb_seconds": base_raw, "runs": results}, indent=2
        )
    )


if __name__ == "__main__":
    main()
