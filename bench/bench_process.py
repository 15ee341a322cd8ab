#!/usr/bin/env python
"""Whole-process benchmark: `landfall process` as a user runs it (a fresh process, imports, state, catalog and
all) against DuckDB's own `COPY ... TO ... (FORMAT parquet, COMPRESSION zstd)` in a fresh process of its own,
alternating A/B for several repetitions on the same files.

Cases (generated into a temp dir, never committed):
  wide      one CSV of `--wide-rows` rows x 14 columns (quoted text, dates, timestamps, bools, nulls; ~150 MB)
  narrow    one CSV of `--narrow-rows` rows x 4 columns (~485 MB at 10M rows)
  empty     `landfall process` on an empty lake vs `python -c pass`
  import    the command's imports (`landfall.cli.app`, collector set up as the command does) vs `python -c pass`

landfall's modules are compiled to bytecode first, as `pip install` does (with PYTHONDONTWRITEBYTECODE set and a
source checkout, every run would otherwise compile them again: about 50 ms of CPU a user never pays).

Each run is a child process; wall time is the parent's clock around it, CPU time and peak RSS come from the
child's resource usage (`os.wait4`). Reported: median wall and CPU per variant, the median of the paired ratios
(landfall / baseline, each pair run back to back) and each ratio's range, and the ratio of each side's lowest
CPU time over the repetitions (`best`: on a shared host, other tenants only ever add to a run's CPU time, so the
lowest is each side's own cost most nearly). `--lineage false` runs landfall with `lineage: false` (and
`on_change: append`, which a workflow without `_source_file` needs). `--parquet-version v2` runs landfall with
`write.parquet_version: v2`, `--copy-version v2` the COPY with `PARQUET_VERSION V2` (the same files' format on both
sides: the ratio of landfall's own costs; the COPY of the issue's measure is the plain one, v1).

`--instructions` also runs each side once under `valgrind --tool=callgrind` (every instruction of every thread,
in user space: the kernel's copies and page faults are not counted) and reports the instruction ratio and where
the two differ most, by shared library and by function. Unlike seconds on a shared host, the counts come out the
same run after run (within a fraction of a percent), so a change of 1% shows. It takes about 50 times as long as
a run (Debian: `apt-get install valgrind`). Valgrind runs one thread at a time, in long slices: a query with a
LIMIT over a parallel read (landfall's scan of a CSV's detection sample) may read far more of the file there than
it does natively (on the 3M-row narrow file, most of it), so check a surprising count against `--phases`.

`--same-work` adds a third side: DuckDB doing the very statements landfall's engine ran for the load (its read
with the formats it detected, strict dates and all, its lineage columns, its COPY options), captured from one
`landfall process` and replayed in a fresh process. DuckDB's plain COPY reads dates loosely (`2024-01-02 10:30`
past its sample loads as 2024-01-02) and writes no lineage; landfall over the same work is the cost of landfall's
own machinery (imports, state, catalog, content hash, detection).

    PYTHONPATH=src python bench/bench_process.py --cases wide --repeat 5
    PYTHONPATH=src python bench/bench_process.py --cases wide,narrow,empty,import --repeat 5
    PYTHONPATH=src python bench/bench_process.py --cases narrow --narrow-rows 3000000 --phases
    PYTHONPATH=src python bench/bench_process.py --cases narrow --narrow-rows 3000000 --same-work
    PYTHONPATH=src python bench/bench_process.py --cases wide --repeat 1 --instructions
    PYTHONPATH=src python bench/bench_process.py --cases wide,narrow --parquet-version v2 --copy-version v2
"""

from __future__ import annotations

import argparse
import collections
import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(HERE))

from bench_core import GEN_SQL  # noqa: E402  (the same 14 columns as the in-process benchmark)

NARROW_SQL = """
SELECT i AS id, 'name_' || (hash(i, 1) % 100000)::VARCHAR AS name,
       round((hash(i, 2) % 10000000)::DOUBLE / 100.0, 2) AS amount, DATE '2020-01-01' + (i % 1800)::INTEGER AS day
FROM range({n}) t(i)
"""

_COPY_CALL = """duckdb.connect().execute(
    "COPY (SELECT * FROM read_csv('" + sys.argv[1] + "')) TO '" + sys.argv[2] + "' (FORMAT parquet, COMPRESSION zstd"
    + "".join(", PARQUET_VERSION " + v for v in sys.argv[3:]) + ")"
)
"""
COPY = "import duckdb, sys\n" + _COPY_CALL

# the `import` case: the command's imports, with the collector set up as the `landfall` command does first
IMPORT = "import landfall.cli; landfall.cli.tune_collector(); import landfall.cli.app"

# `--phases`: each side's CPU split into its imports and its work, measured inside the child
_CPU = """import json, resource, sys
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
"""
_SPLIT = """sys.stderr.write(json.dumps({"imports": imports, "work": cpu() - imports}) + "\\n")
"""
# `landfall process` on the config named by the child's first argument, as the `landfall` command runs it
_PROCESS = """sys.argv = ["landfall", "--config", sys.argv[1], "process"]
try:
    landfall.cli.app.entry()
except SystemExit as exc:
    assert not exc.code, exc.code
"""
PHASE_LANDFALL = (
    _CPU
    + """import landfall.cli
landfall.cli.tune_collector()  # as the `landfall` command does first
import landfall.cli.app, landfall.cli.loading, landfall.catalog, landfall.engines.duckdb, landfall.state.sqlite
imports = cpu()
"""
    + _PROCESS
    + _SPLIT
)
PHASE_COPY = _CPU + "import duckdb\nimports = cpu()\n" + _COPY_CALL + _SPLIT


# `--same-work`: the statements landfall's engine runs for the load (its views and its COPY), captured from a
# `landfall process`, and replayed by DuckDB alone with the COPY writing to `sys.argv[2]`
CAPTURE = (
    """import json, sys
import duckdb
real_connect = duckdb.connect
ran = []
class Recorded:
    def __init__(self, con):
        self._con = con
    def cursor(self):
        return Recorded(self._con.cursor())
    def execute(self, sql, *args, **kwargs):
        ran.append(str(sql))
        out = self._con.execute(sql, *args, **kwargs)
        return self if out is self._con else out
    def __getattr__(self, name):
        return getattr(self._con, name)
duckdb.connect = lambda *a, **k: Recorded(real_connect(*a, **k))
import landfall.cli.app
"""
    + _PROCESS
    + """load = [s for s in ran if s.startswith(("CREATE OR REPLACE TEMP", "COPY"))]
sys.stderr.write(json.dumps(load) + "\\n")
"""
)
REPLAY = """import json, re, sys
import duckdb
con = duckdb.connect()
for sql in json.loads(open(sys.argv[1]).read()):
    if sql.startswith("COPY"):
        sql = re.sub(r" TO '[^']*' \\(", " TO '" + sys.argv[2] + "' (", sql, count=1)
    con.execute(sql).fetchall()
"""


def captured(cfg: Path, env: dict[str, str], into: Path) -> Path:
    """The statements landfall's engine ran to load the lake of `cfg`, in a JSON file."""
    out = subprocess.run([sys.executable, "-c", CAPTURE, str(cfg)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"capturing landfall's statements failed:\n{out.stderr}")
    into.write_text(out.stderr.strip().splitlines()[-1])
    return into


def phases(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stderr.strip().splitlines()[-1])


def instructions(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run `cmd` once under callgrind: its instruction count, and the count per shared library and function."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd], env=env, capture_output=True, text=True
    )
    if run.returncode:
        raise SystemExit(f"callgrind {' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    total = int(re.search(r"Collected : (\d+)", run.stderr).group(1))
    table = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--auto=no", str(out)], capture_output=True, text=True, check=True
    ).stdout
    libs: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    for line in table.splitlines():
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*?)(?: \[(.*)\])?$", line)
        if m and "PROGRAM TOTALS" not in line:
            n, lib = int(m.group(1).replace(",", "")), (m.group(3) or "?").rsplit("/", 1)[-1]
            libs[lib] += n
            where = m.group(2).split("(")[0].removeprefix("???:").rsplit("/", 1)[-1]  # file.c:function, or a symbol
            functions[f"{lib.split('.')[0]}: {where}"] += n
    out.unlink(missing_ok=True)
    return {"total": total, "libs": dict(libs), "functions": dict(functions)}


def differences(a: dict[str, int], b: dict[str, int], n: int) -> list[tuple[str, int]]:
    """The `n` keys whose counts differ most between `a` and `b`, with `a` minus `b`."""
    gaps = {k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b)}
    return sorted(gaps.items(), key=lambda kv: -abs(kv[1]))[:n]


def generate(sql: str, rows: int, path: Path) -> int:
    """Write the CSV in a child process: this one stays small, so that the peak RSS a child reports is its own
    (Linux counts the parent's peak in a child's `ru_maxrss` when the child starts by vfork)."""
    copy = f"COPY ({sql.format(n=int(rows))}) TO '{path}' (FORMAT csv, HEADER)"
    script = (
        f"import duckdb; con = duckdb.connect(); con.execute('SET enable_progress_bar = false'); con.execute({copy!r})"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    with open(path, "rb") as fh:  # warm the page cache: every run reads the same cached bytes
        while fh.read(1 << 24):
            pass
    return path.stat().st_size


def measured(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run `cmd` to its end: wall seconds, CPU seconds (user + system) and peak RSS (MiB) of the child."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024}


def lake_for(work: Path, data: Path | None, lineage: bool, version: str = "v1") -> Path:
    """A fresh project whose landing folder holds `data` (a hard link: the same cached bytes)."""
    if work.exists():
        shutil.rmtree(work)
    landing = work / "lake" / "landing" / "t"
    landing.mkdir(parents=True)
    if data is not None:
        os.link(data, landing / data.name)
    (work / "landfall.yaml").write_text(
        f"lake: {json.dumps(str(work / 'lake'))}\n"
        "workflows:\n  - name: t\n    match: t/\n    read: {format: csv}\n"
        f"    write: {{table: t, parquet_version: {version}}}\n"
        + ("" if lineage else "    lineage: false\n    on_change: append\n")  # replace needs `_source_file`
    )
    return work / "landfall.yaml"


def run_case(case: str, tmp: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    py = sys.executable
    data: Path | None = None
    size = 0
    if case in ("wide", "narrow"):
        data = tmp / f"{case}.csv"
        rows = args.wide_rows if case == "wide" else args.narrow_rows
        size = generate(GEN_SQL if case == "wide" else NARROW_SQL, rows, data)
    lineage = args.lineage != "false"
    version = args.parquet_version
    copy_version = [args.copy_version] if args.copy_version != "v1" else []  # v1: the plain COPY, as before
    pairs: list[tuple[dict[str, float], dict[str, float]]] = []
    split: list[tuple[dict[str, float], dict[str, float]]] = []
    same: list[dict[str, float]] = []
    statements = None
    if args.same_work and data is not None:
        statements = captured(lake_for(tmp / "project", data, lineage, version), env, tmp / "statements.json")
    for i in range(args.repeat):
        runs: dict[str, dict[str, float]] = {}
        order = ("landfall", "baseline") if i % 2 == 0 else ("baseline", "landfall")
        for who in order:
            if who == "landfall":
                if case == "import":
                    cmd = [py, "-c", IMPORT]
                else:
                    cfg = lake_for(tmp / "project", data, lineage, version)
                    cmd = [py, "-m", "landfall", "--config", str(cfg), "process"]
            elif case in ("empty", "import"):
                cmd = [py, "-c", "pass"]
            else:
                out = tmp / "copy.parquet"
                out.unlink(missing_ok=True)
                cmd = [py, "-c", COPY, str(data), str(out), *copy_version]
            runs[who] = measured(cmd, env)
        pairs.append((runs["landfall"], runs["baseline"]))
        if statements is not None:
            shutil.rmtree(tmp / "same", ignore_errors=True)
            same.append(measured([py, "-c", REPLAY, str(statements), str(tmp / "same")], env))
        if args.phases and data is not None:
            cfg = lake_for(tmp / "project", data, lineage, version)
            split.append(
                (
                    phases([py, "-c", PHASE_LANDFALL, str(cfg)], env),
                    phases([py, "-c", PHASE_COPY, str(data), str(tmp / "copy.parquet"), *copy_version], env),
                )
            )

    counted = None
    if args.instructions:
        cfg = lake_for(tmp / "project", data, lineage, version)
        lf_cmd = [py, "-m", "landfall", "--config", str(cfg), "process"]
        if case == "import":
            lf_cmd = [py, "-c", IMPORT]
        if case in ("empty", "import"):
            base_cmd = [py, "-c", "pass"]
        else:
            (tmp / "copy.parquet").unlink(missing_ok=True)
            base_cmd = [py, "-c", COPY, str(data), str(tmp / "copy.parquet"), *copy_version]
        lf, base = instructions(lf_cmd, env, tmp / "callgrind.lf"), instructions(base_cmd, env, tmp / "callgrind.base")
        counted = {
            "landfall": lf["total"],
            "baseline": base["total"],
            "ratio": round(lf["total"] / base["total"], 4),
            "libs": differences(lf["libs"], base["libs"], 6),
            "functions": differences(lf["functions"], base["functions"], 12),
        }

    def med(who: int, key: str) -> float:
        return statistics.median(p[who][key] for p in pairs)

    def ratios(key: str) -> list[float]:
        return sorted(p[0][key] / p[1][key] for p in pairs)

    return {
        "case": case,
        "bytes": size,
        "repeat": args.repeat,
        "lineage": lineage,
        "landfall": {k: round(med(0, k), 3) for k in ("wall", "cpu", "rss_mb")},
        "baseline": {k: round(med(1, k), 3) for k in ("wall", "cpu", "rss_mb")},
        "wall_ratio": round(statistics.median(ratios("wall")), 3),
        "wall_ratio_range": [round(ratios("wall")[0], 3), round(ratios("wall")[-1], 3)],
        "cpu_ratio": round(statistics.median(ratios("cpu")), 3),
        "cpu_ratio_range": [round(ratios("cpu")[0], 3), round(ratios("cpu")[-1], 3)],
        "cpu_ratio_best": round(min(p[0]["cpu"] for p in pairs) / min(p[1]["cpu"] for p in pairs), 3),
        "same_work": {
            "cpu": round(statistics.median(r["cpu"] for r in same), 3),
            "wall": round(statistics.median(r["wall"] for r in same), 3),
            "cpu_ratio": round(statistics.median(p[0]["cpu"] / r["cpu"] for p, r in zip(pairs, same, strict=True)), 3),
            "cpu_ratio_best": round(min(p[0]["cpu"] for p in pairs) / min(r["cpu"] for r in same), 3),
            "baseline_ratio": round(
                statistics.median(r["cpu"] / p[1]["cpu"] for p, r in zip(pairs, same, strict=True)), 3
            ),
        }
        if same
        else None,
        "instructions": counted,
        "runs": [{"landfall": a, "baseline": b} for a, b in pairs],
        "phases": {
            who: {k: round(statistics.median(p[i][k] for p in split), 3) for k in ("imports", "work")}
            for i, who in enumerate(("landfall", "baseline"))
        }
        if split
        else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="wide,narrow,empty,import")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wide-rows", type=int, default=1_150_000)
    ap.add_argument("--narrow-rows", type=int, default=10_000_000)
    ap.add_argument("--lineage", choices=["true", "false"], default="true")
    ap.add_argument("--parquet-version", choices=["v1", "v2"], default="v1", help="landfall's write.parquet_version")
    ap.add_argument("--copy-version", choices=["v1", "v2"], default="v1", help="the COPY's PARQUET_VERSION")
    ap.add_argument("--phases", action="store_true", help="also split each side's CPU into imports and work")
    ap.add_argument("--same-work", action="store_true", help="also run DuckDB alone on landfall's own statements")
    ap.add_argument("--instructions", action="store_true", help="also count each side's instructions (callgrind)")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(":")}
    compileall.compile_dir(str(SRC / "landfall"), quiet=1)  # as `pip install` leaves it
    results = []
    with tempfile.TemporaryDirectory(prefix="landfall-bench-", dir=args.tmpdir) as tmp:
        for case in args.cases.split(","):
            r = run_case(case.strip(), Path(tmp), args, env)
            results.append(r)
            label = "python -c pass" if case in ("empty", "import") else "DuckDB COPY"
            print(
                f"{case:7} {r['bytes'] / 2**20:7.0f} MiB  landfall wall {r['landfall']['wall']:6.2f} s "
                f"cpu {r['landfall']['cpu']:6.2f} s rss {r['landfall']['rss_mb']:5.0f} MiB | {label} wall "
                f"{r['baseline']['wall']:6.2f} s cpu {r['baseline']['cpu']:6.2f} s rss "
                f"{r['baseline']['rss_mb']:5.0f} MiB | wall {r['wall_ratio']:.2f}x {r['wall_ratio_range']} "
                f"cpu {r['cpu_ratio']:.2f}x {r['cpu_ratio_range']} best {r['cpu_ratio_best']:.2f}x",
                flush=True,
            )
            if r["same_work"]:
                sw = r["same_work"]
                print(
                    f"{'':7} {'':7}      DuckDB doing landfall's load (same work) cpu {sw['cpu']:.2f} s, "
                    f"{sw['baseline_ratio']:.2f}x its plain COPY | landfall over it: cpu {sw['cpu_ratio']:.2f}x "
                    f"best {sw['cpu_ratio_best']:.2f}x",
                    flush=True,
                )
            if r["phases"]:
                lf, base = r["phases"]["landfall"], r["phases"]["baseline"]
                print(
                    f"{'':7} {'':7}      CPU split: landfall imports {lf['imports']:.3f} s + work {lf['work']:.3f} s | "
                    f"DuckDB imports {base['imports']:.3f} s + COPY {base['work']:.3f} s",
                    flush=True,
                )
            if r["instructions"]:
                ins = r["instructions"]
                print(
                    f"{'':7} {'':7}      instructions: landfall {ins['landfall'] / 1e9:.2f} billion, "
                    f"{label} {ins['baseline'] / 1e9:.2f} billion: {ins['ratio']:.3f}x; landfall minus {label}:",
                    flush=True,
                )
                for what, gap in ins["libs"] + ins["functions"]:
                    print(f"{'':21}{gap / 1e6:+9.0f} M  {what[:100]}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
