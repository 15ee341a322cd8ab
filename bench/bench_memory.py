#!/usr/bin/env python
"""Memory benchmark: peak RSS of `landfall process` loading one large CSV (~2 GB by default), as a whole process,
against DuckDB's own COPY to Parquet and (with `--pandas`) pandas, in processes of their own.

Cases (the file is generated into a temp dir on the fly, never committed):
  clean     `--rows` rows x 14 columns (bench_core's columns; 15M rows is about 2 GB)
  last_bad  the same file with one more line whose `quantity` is not a number: the column's detected type
            changes on the last line, so the engine reads the file again with every value of it as text
            (DuckDB's plain COPY fails there, so only landfall runs)

    PYTHONPATH=src python bench/bench_memory.py                    # 15M rows (~2 GB), both cases
    PYTHONPATH=src python bench/bench_memory.py --rows 2000000 --cases clean
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import GEN_SQL  # noqa: E402
from bench_process import COPY, SRC, generate, lake_for, measured  # noqa: E402

PANDAS = """import pandas, sys
pandas.read_csv(sys.argv[1]).to_parquet(sys.argv[2], compression="zstd")
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=15_000_000)
    ap.add_argument("--cases", default="clean,last_bad")
    ap.add_argument("--pandas", action="store_true", help="also run pandas (needs several GiB)")
    ap.add_argument("--no-duckdb", action="store_true", help="skip the DuckDB COPY baseline")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(":")}
    py = sys.executable
    results = []
    with tempfile.TemporaryDirectory(prefix="landfall-bench-", dir=args.tmpdir) as tmp:
        data = Path(tmp) / "big.csv"
        size = generate(GEN_SQL, args.rows, data)
        for case in args.cases.split(","):
            if case == "last_bad":
                with open(data, "rb+") as fh:  # `quantity` (the 2nd column) gets text on the very last line
                    fh.seek(0, os.SEEK_END)
                    fh.write(b"99999999999,not-a-number,1,1.0,1.0,x,alpha,,2020-01-01,,2020-01-01 00:00:00,,true,\n")
                size = data.stat().st_size
            row = {"case": case, "bytes": size}
            cfg = lake_for(Path(tmp) / "project", data, lineage=True)
            row["landfall"] = measured([py, "-m", "landfall", "--config", str(cfg), "process"], env)
            out = Path(tmp) / "out.parquet"
            if not args.no_duckdb and case == "clean":  # DuckDB's COPY fails on the bad last line
                row["duckdb"] = measured([py, "-c", COPY, str(data), str(out)], env)
            if args.pandas:
                row["pandas"] = measured([py, "-c", PANDAS, str(data), str(out)], env)
            results.append(row)
            print(
                f"{case:9} {size / 2**30:5.2f} GiB  "
                + "  ".join(
                    f"{who} {row[who]['wall']:6.1f} s (cpu {row[who]['cpu']:6.1f} s) {row[who]['rss_mb']:6.0f} MiB"
                    for who in ("landfall", "duckdb", "pandas")
                    if who in row
                ),
                flush=True,
            )
            shutil.rmtree(Path(tmp) / "project", ignore_errors=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
