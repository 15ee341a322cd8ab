#!/usr/bin/env python
"""What each of landfall's guarantees costs inside the load itself: the statement DuckDB runs for a CSV, built up
one guarantee at a time, in one process on the same cached file, the variants interleaved (a slow moment of a
shared host then touches every variant alike), each one's median and lowest CPU time over `--repeat` rounds.

Variants (each a `COPY (...) TO ... (FORMAT parquet, COMPRESSION zstd, RETURN_STATS)`):
  plain      DuckDB's own `read_csv` (its sniff inside the COPY: what the issue's baseline runs)
  pinned     the dialect and the columns' types given (landfall's read after its own sniff: no sniff inside)
  +dates     and dates read in the format detected on the sample (`dateformat`: strict, where DuckDB's own
             read takes `2024-01-02 10:30` past the sample for the date alone)
  +names     and `_source_file`, `_run_id` as the one-value ENUMs landfall writes them as
  +lineage   and `_ingested_at`, a constant TIMESTAMPTZ: all of landfall's lineage
  +wholes    and the integer column read as text, taken only where a value is the text of its integer
             (`wholes_back`: DuckDB's reader takes `007` as 7 and `2.5` as 3 past its sample): landfall's load

and, outside the COPY, the file's content hash (BLAKE3, as a new lake's: landfall's dedupe by content), streamed
as `Storage.hash` reads it. The whole-process comparison, imports and state and catalog included, is
`bench_process.py`; this one says where the load statement's own share of it goes.

    PYTHONPATH=src python bench/bench_copy_parts.py                      # the narrow case, 3,000,000 rows
    PYTHONPATH=src python bench/bench_copy_parts.py --rows 10000000 --repeat 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_process import NARROW_SQL, generate  # noqa: E402  (the narrow case's 4 columns, generated alike)

COLUMNS = "{'id': 'BIGINT', 'name': 'VARCHAR', 'amount': 'DOUBLE', 'day': 'DATE'}"
# the check landfall's `read_csv.wholes_back` makes (its refusal of a value, and its trimmed retry, aside: the
# values here are all the text of their integers)
WHOLE = (
    "CASE WHEN CAST(TRY_CAST(id AS BIGINT) AS VARCHAR) = id THEN TRY_CAST(id AS BIGINT) "
    "ELSE error('not the text of an integer: ' || id)::BIGINT END AS id"
)
SOURCE = "CAST('t/narrow.csv' AS ENUM('t/narrow.csv')) AS _source_file"
RUN = "CAST('01a248a8-b38f-7000-9657-953219be7425' AS ENUM('01a248a8-b38f-7000-9657-953219be7425')) AS _run_id"
INGESTED = "'2026-12-06T00:02:25.334946+00:00'::TIMESTAMPTZ AS _ingested_at"


def variants(csv: str) -> dict[str, str]:
    pinned = (
        f"SELECT * FROM read_csv('{csv}', auto_detect = false, delim = ',', quote = '\"', escape = '\"', "
        f"header = true, skip = 0, columns = {COLUMNS}"
    )
    dates = pinned + ", dateformat = '%Y-%m-%d')"
    as_text = dates.replace("'id': 'BIGINT'", "'id': 'VARCHAR'")
    return {
        "plain": f"SELECT * FROM read_csv('{csv}')",
        "pinned": pinned + ")",
        "+dates": dates,
        "+names": f"SELECT v.*, {SOURCE}, {RUN} FROM ({dates}) v",
        "+lineage": f"SELECT v.*, {SOURCE}, {INGESTED}, {RUN} FROM ({dates}) v",
        "+wholes": f"SELECT {WHOLE}, name, amount, day, {SOURCE}, {INGESTED}, {RUN} FROM ({as_text}) v",
    }


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def hashed(path: Path) -> None:
    from blake3 import blake3

    h = blake3()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="landfall-bench-") as tmp:
        data = Path(tmp) / "narrow.csv"
        size = generate(NARROW_SQL, args.rows, data)
        con = duckdb.connect()
        con.execute("SET preserve_insertion_order = false")  # as landfall's databases run
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        statements = variants(str(data))
        out = Path(tmp) / "out.parquet"
        times: dict[str, list[float]] = {name: [] for name in [*statements, "hash"]}
        for _ in range(args.repeat):
            for name, select in statements.items():
                start = cpu()
                con.execute(f"COPY ({select}) TO '{out}' (FORMAT parquet, COMPRESSION zstd, RETURN_STATS)").fetchall()
                times[name].append(cpu() - start)
            start = cpu()
            hashed(data)
            times["hash"].append(cpu() - start)
    print(f"{args.rows:,} rows x 4 columns, {size / 2**20:.0f} MiB; CPU seconds over {args.repeat} rounds")
    before = None
    for name, seen in times.items():
        median = statistics.median(seen)
        step = "" if before is None or name == "hash" else f"  {median - before:+.3f} s on the line above"
        print(f"  {name:9s} median {median:.3f} s  lowest {min(seen):.3f} s{step}")
        before = median
    base = statistics.median(times["plain"])
    guarantees = statistics.median(times["+wholes"]) - statistics.median(times["pinned"])
    guarantees += statistics.median(times["hash"])
    print(
        f"  strict dates + lineage + strict integers + content hash: {guarantees:.3f} s, {guarantees / base:.1%} of "
        "the plain COPY "
        "statement (a whole process of it also imports DuckDB, connects and exits: `bench_process.py`)"
    )


if __name__ == "__main__":
    main()
