#!/usr/bin/env python
"""Spark benchmark: landfall on Spark vs the same conversion written by hand as a PySpark job, and landfall on
DuckDB vs landfall on Spark `local[2]` (where the crossover is).

Data is generated on the fly in a temp folder: a CSV of `--csv-mb` (2 GiB by default: bench_core's 14 mixed
columns) and `--jsonl-mb` of nested orders as JSON Lines (160 MiB: bench_nested's orders, 1-5 products each).

(A) On one Spark session (the same master for both; `--master local[2]`, or `--master standalone` to start a
    standalone master and worker here), after the JVM has started (reported on its own):
    - landfall: the file landed in a fresh lake, `Pipeline.process()` until the table is committed and cataloged
      (CSV: as landed, types detected; JSON Lines: flatten + explode + rename, seed 002's shape);
    - by hand: the PySpark job a person would write for the same output (the same columns and types, lineage
      columns included, zstd Parquet): `declared` gives Spark the schema, `inferred` lets Spark infer it
      (`inferSchema` for CSV, schema inference for JSON) as a first job usually does.
(B) landfall on DuckDB (in a child process) vs landfall on Spark `local[2]` on CSV files of `--crossover` sizes
    and on the JSON Lines file.

Every measurement has wall seconds and CPU seconds (user + system of this process and every process under it:
the driver, the JVM, Python workers; the DuckDB child's own; for Spark runs also the part spent in Spark's tasks
and the part in this Python process), and the load average around it: on a shared
machine CPU seconds are the steadier number. Before measuring, each variant runs once on a small file (not
reported) so the JVM's compiler has warmed up for all alike. Best of `--repeat` runs (by wall), variants
interleaved, the order turned round each repeat. Targets are printed, never asserted.

    PYTHONPATH=src python bench/bench_spark.py                      # 2 GiB CSV, 160 MiB JSON Lines
    PYTHONPATH=src python bench/bench_spark.py --csv-mb 256 --jsonl-mb 40 --crossover 16,64 --repeat 1
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import GEN_SQL  # noqa: E402  (the 14 mixed columns)
from bench_nested import FLATTEN  # noqa: E402  (seed 002's flatten + explode + rename)

TARGET = 1.2  # landfall on Spark at most 1.2x the hand-written job
CSV_ROW_BYTES = 139  # about, for bench_core's columns
CONF = {"spark.sql.shuffle.partitions": "8"}


# --- data --------------------------------------------------------------------------------------------------------


def generate_csv(path: Path, mb: int) -> int:
    import duckdb

    rows = int(mb * 2**20 / CSV_ROW_BYTES)
    duckdb.execute(f"COPY ({GEN_SQL.format(n=rows)}) TO '{path}' (FORMAT csv, HEADER)")
    return rows


def generate_jsonl(path: Path, mb: int) -> int:
    import duckdb

    orders = int(mb * 2**20 / 440)
    duckdb.execute(f"""COPY (SELECT 'o' || i AS order_id, (DATE '2024-01-01' + (i % 365)::INT)::VARCHAR AS order_date,
        round((hash(i, 1) % 50000) / 100.0, 2) AS total_amount,
        {{'customer_id': 'c' || (i % 50000), 'name': 'Customer ' || (i % 50000),
          'email': 'c' || (i % 50000) || '@example.com', 'address': (i % 999) || ' Main St'}} AS customer,
        list_transform(range(1 + (i % 5)), lambda j: {{'product_id': 'p' || ((i * 7 + j) % 10000),
          'name': 'Product ' || j, 'category': ['tools', 'garden', 'paint'][1 + (j % 3)],
          'price': round(1 + (hash(i, j) % 9900) / 100.0, 2), 'quantity': 1 + ((i + j) % 9)}}) AS products
        FROM range({orders}) t(i)) TO '{path}' (FORMAT json)""")
    return orders


def workflow(kind: str) -> dict:
    if kind == "csv":
        return {"name": "t", "match": "in/", "read": {"format": "csv"}, "write": {"table": "t"}}
    return {"name": "t", "match": "in/", "read": {"format": "jsonl"}, "transform": FLATTEN, "write": {"table": "t"}}


# --- measuring ---------------------------------------------------------------------------------------------------


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process and every process under it, living or reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[list[str]]] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append([pid, *fields])
    with open("/proc/self/stat") as fh:
        me = fh.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in me[11:15])
    todo = [os.getpid()]
    while todo:
        for kid in children.get(todo.pop(), []):
            total += sum(int(x) for x in kid[12:16])  # utime, stime, cutime, cstime
            todo.append(int(kid[0]))
    return total / tick


def own_cpu() -> float:
    """CPU seconds of this process alone (the Python driver's threads; the JVM is a process under it)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def task_cpu() -> float:
    """CPU seconds Spark's tasks have spent so far (its status store's stage metrics; 0 with no session)."""
    from landfall.engines.spark import session as spark_session

    if spark_session._current is None:
        return 0.0
    sc = spark_session._current[0].sparkContext
    no_quantiles = sc._gateway.new_array(sc._gateway.jvm.double, 0)
    stages = sc._jsc.sc().statusStore().stageList(None, False, False, no_quantiles, None).iterator()
    total = 0
    while stages.hasNext():
        total += stages.next().executorCpuTime()
    return total / 1e9


def measured(fn, *args) -> dict:
    """`fn(*args)` (a dict) with `seconds`, `cpu` (and of it: `tasks`, Spark's tasks; `driver`, this Python
    process) and the 1-minute load average before and after."""
    load, cpu, tasks, driver = os.getloadavg()[0], tree_cpu(), task_cpu(), own_cpu()
    out = fn(*args)
    out["cpu"] = tree_cpu() - cpu
    out["tasks"], out["driver"] = task_cpu() - tasks, own_cpu() - driver
    out["load"] = (round(load, 1), round(os.getloadavg()[0], 1))
    return out


# --- landfall ----------------------------------------------------------------------------------------------------


def run_landfall(root: str, name: str, src: str, kind: str, engine: dict) -> dict:
    import yaml

    from landfall import Pipeline, load_settings

    work = Path(root) / f"lf-{name}"
    shutil.rmtree(work, ignore_errors=True)
    landing = work / "lake/landing/in"
    landing.mkdir(parents=True)
    os.link(src, landing / Path(src).name)  # landed without copying
    doc = {"lake": str(work / "lake"), "workers": 1, "workflows": [workflow(kind)], **engine}
    (work / "landfall.yaml").write_text(yaml.safe_dump(doc))
    p = Pipeline(load_settings(work / "landfall.yaml"))
    t = time.perf_counter()
    summary = p.process()
    seconds = time.perf_counter() - t
    rows = p.query("SELECT count(*) FROM t")[1][0][0]
    types = {k: str(v) for k, v in dict(p.table("t").schema).items()}
    p.close()
    shutil.rmtree(work, ignore_errors=True)
    return {"seconds": seconds, "rows": rows, "ok": summary.ok, "types": types}


def _duckdb_child(root: str, name: str, src: str, kind: str, queue) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    out = run_landfall(root, name, src, kind, {"engine": "duckdb"})
    after = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu"] = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    queue.put(out)


def landfall_duckdb(root: str, name: str, src: str, kind: str) -> dict:
    """landfall on DuckDB in a child process (its own threads and memory, away from the JVM)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_duckdb_child, args=(root, name, src, kind, queue))
    load = os.getloadavg()[0]
    proc.start()
    out = queue.get()
    proc.join()
    out["load"] = (round(load, 1), round(os.getloadavg()[0], 1))
    return out


# --- by hand -----------------------------------------------------------------------------------------------------


def by_hand(spark, src: str, out: str, kind: str, how: str) -> dict:
    """The PySpark job a person would write for landfall's output: the same columns and types, lineage columns,
    zstd Parquet."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    lineage = [
        F.lit(f"in/{Path(src).name}").alias("_source_file"),
        F.current_timestamp().alias("_ingested_at"),
        F.lit("by-hand").alias("_run_id"),
    ]
    if kind == "csv":
        reader = spark.read.options(header="true", escape='"', timestampNTZFormat="yyyy-MM-dd HH:mm:ss")
        if how == "declared":
            schema = T.StructType(
                [
                    T.StructField("id", T.LongType()),
                    T.StructField("quantity", T.LongType()),
                    T.StructField("customer_id", T.LongType()),
                    T.StructField("price", T.DoubleType()),
                    T.StructField("score", T.DoubleType()),
                    T.StructField("name", T.StringType()),
                    T.StructField("category", T.StringType()),
                    T.StructField("comment", T.StringType()),
                    T.StructField("order_date", T.DateType()),
                    T.StructField("ship_date", T.DateType()),
                    T.StructField("created_at", T.TimestampNTZType()),
                    T.StructField("updated_at", T.TimestampNTZType()),
                    T.StructField("is_active", T.BooleanType()),
                    T.StructField("is_priority", T.BooleanType()),
                ]
            )
            df = reader.schema(schema).csv(src)
        else:
            df = reader.option("inferSchema", "true").csv(src)
        df = df.select("*", *lineage)
    else:
        reader = spark.read
        if how == "declared":
            product = "struct<product_id: string, name: string, category: string, price: double, quantity: bigint>"
            reader = reader.schema(
                "order_id string, order_date date, total_amount double, "
                "customer struct<customer_id: string, name: string, email: string, address: string>, "
                f"products array<{product}>"
            )
        df = reader.json(src)
        df = (
            df.select(
                "order_id",
                "order_date",
                "total_amount",
                F.col("customer.customer_id").alias("customer_id"),
                F.col("customer.name").alias("customer_name"),
                F.col("customer.email").alias("email"),
                F.col("customer.address").alias("address"),
                F.explode_outer("products").alias("p"),
            )
            .select(
                "*",
                F.col("p.product_id").alias("product_id"),
                F.col("p.name").alias("product_name"),
                F.col("p.category").alias("category"),
                F.col("p.price").alias("price"),
                F.col("p.quantity").alias("quantity"),
                *lineage,
            )
            .drop("p")
        )
    df.write.option("compression", "zstd").parquet(out)
    seconds = time.perf_counter() - t
    rows = spark.read.parquet(out).count()
    import pyarrow.parquet as pq

    first = next(p for p in sorted(Path(out).glob("*.parquet")))
    types = {f.name: str(f.type) for f in pq.read_schema(first)}
    shutil.rmtree(out, ignore_errors=True)
    return {"seconds": seconds, "rows": rows, "ok": True, "types": types}


# --- main --------------------------------------------------------------------------------------------------------


def best(runs: list[dict]) -> dict:
    top = dict(min(runs, key=lambda r: r["seconds"]))
    top["all"] = [round(r["seconds"], 1) for r in runs]
    top["all_cpu"] = [round(r.get("cpu", 0), 1) for r in runs]
    top["loads"] = [r.get("load") for r in runs]
    return top


def same_output(landfall: dict, hand: dict) -> str:
    """How the hand-written job's columns and types differ from landfall's ('' when they are the same)."""
    diffs = [f"{n}: {landfall.get(n)} vs {hand.get(n)}" for n in {**landfall, **hand} if landfall.get(n) != hand.get(n)]
    return "; ".join(sorted(diffs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--csv-mb", type=int, default=2048)
    ap.add_argument("--jsonl-mb", type=int, default=160)
    ap.add_argument("--crossover", default="64,512", help="more CSV sizes (MiB) for landfall DuckDB vs Spark")
    ap.add_argument("--master", default="local[2]", help="local[N] or `standalone` (a master + worker started here)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--by-hand", default="declared,inferred", help="hand-written variants to run (`` for none)")
    args = ap.parse_args()

    from landfall.engines.spark.session import session, stop
    from landfall.testing.spark import StandaloneCluster

    tmp = Path(tempfile.mkdtemp(prefix="landfall-bench-spark-"))
    cluster = None
    try:
        t = time.perf_counter()
        files = {"csv": tmp / "data.csv", "jsonl": tmp / "orders.jsonl"}
        sizes = {"csv": generate_csv(files["csv"], args.csv_mb), "jsonl": generate_jsonl(files["jsonl"], args.jsonl_mb)}
        small = {}
        for mb in [int(x) for x in args.crossover.split(",") if x]:
            small[mb] = tmp / f"data-{mb}.csv"
            generate_csv(small[mb], mb)
        print(
            f"generated in {time.perf_counter() - t:.0f} s: "
            + ", ".join(f"{p.name} {p.stat().st_size / 2**20:.0f} MiB" for p in [*files.values(), *small.values()])
        )
        master = args.master
        if master == "standalone":
            cluster = StandaloneCluster(tmp / "cluster", cores=os.cpu_count() or 2, memory="6g").start()
            master = cluster.master_url
        t = time.perf_counter()
        spark = session(master, CONF)
        spark.range(1).count()
        jvm = time.perf_counter() - t
        print(f"Spark session on {master}: JVM and executors started in {jvm:.1f} s (not in the times below)")
        engine = {"engine": "spark", "spark": {"master": master, "conf": CONF}}
        hands = [h for h in args.by_hand.split(",") if h]
        warm = {"csv": tmp / "warm.csv", "jsonl": tmp / "warm.jsonl"}
        generate_csv(warm["csv"], 8)
        generate_jsonl(warm["jsonl"], 2)
        t = time.perf_counter()
        for kind in ("csv", "jsonl"):  # the JVM's compiler warmed up on every variant's code alike
            run_landfall(str(tmp), f"warm-{kind}", str(warm[kind]), kind, engine)
            for how in hands:
                by_hand(spark, str(warm[kind]), str(tmp / "warm-out"), kind, how)
        print(f"warm-up runs on small files: {time.perf_counter() - t:.0f} s (not reported)")
        results: dict[str, dict[str, list[dict]]] = {"csv": {}, "jsonl": {}}
        for kind in ("csv", "jsonl"):
            src = str(files[kind])
            for i in range(args.repeat):
                variants = ["landfall", *hands]
                for v in variants if i % 2 == 0 else variants[::-1]:
                    if v == "landfall":
                        r = measured(run_landfall, str(tmp), f"{kind}{i}", src, kind, engine)
                        name = "landfall"
                    else:
                        r = measured(by_hand, spark, src, str(tmp / f"hand-{kind}-{v}"), kind, v)
                        name = f"by hand ({v})"
                    results[kind].setdefault(name, []).append(r)
                    print(
                        f"  {kind} {name}: {r['seconds']:.1f} s, cpu {r['cpu']:.1f} s (Spark tasks {r['tasks']:.1f} s, "
                        f"Python driver {r['driver']:.1f} s), load {r['load']}",
                        flush=True,
                    )
        stop()
        if master.startswith("local[2]"):
            local2 = engine
        else:
            local2 = {"engine": "spark", "spark": {"master": "local[2]", "conf": CONF}}
            session("local[2]", CONF).range(1).count()
            run_landfall(str(tmp), "warm-local", str(warm["csv"]), "csv", local2)
        crossover: dict[str, dict[str, list[dict]]] = {}
        cases = {f"CSV {mb} MiB": (str(p), "csv") for mb, p in small.items()}
        cases[f"CSV {args.csv_mb} MiB"] = (str(files["csv"]), "csv")
        cases[f"JSON Lines {args.jsonl_mb} MiB (nested)"] = (str(files["jsonl"]), "jsonl")
        for label, (src, kind) in cases.items():
            for i in range(args.repeat):
                name = f"x{abs(hash(label))}-{i}"
                d = landfall_duckdb(str(tmp), name + "d", src, kind)
                crossover.setdefault(label, {}).setdefault("duckdb", []).append(d)
                print(f"  {label} duckdb: {d['seconds']:.1f} s, cpu {d['cpu']:.1f} s, load {d['load']}", flush=True)
                if label.startswith(f"CSV {args.csv_mb} ") and master.startswith("local[2]"):
                    crossover[label].setdefault("spark", []).append(results["csv"]["landfall"][i])
                elif label.startswith("JSON") and master.startswith("local[2]"):
                    crossover[label].setdefault("spark", []).append(results["jsonl"]["landfall"][i])
                else:
                    r = measured(run_landfall, str(tmp), name + "s", src, kind, local2)
                    crossover[label].setdefault("spark", []).append(r)
                    print(f"  {label} spark: {r['seconds']:.1f} s, cpu {r['cpu']:.1f} s, load {r['load']}", flush=True)
        stop()
    finally:
        stop()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"\n(A) landfall on Spark vs the same job by hand, on {master}; best of {args.repeat}; JVM start {jvm:.1f} s\n"
    )
    print(
        "| input | variant | wall s | CPU s | all runs wall / CPU | load (1 min) | rows | landfall / this wall | CPU |"
    )
    print("|---|---|---:|---:|---|---|---:|---:|---:|")
    verdicts = []
    for kind, label in (
        ("csv", f"CSV {args.csv_mb} MiB, {sizes['csv']:,} rows"),
        ("jsonl", f"JSON Lines {args.jsonl_mb} MiB, {sizes['jsonl']:,} orders"),
    ):
        top = {k: best(v) for k, v in results[kind].items()}
        lf, lf_cpu = top["landfall"]["seconds"], min(r["cpu"] for r in results[kind]["landfall"])
        for name, r in top.items():
            runs = " ".join(f"{w}/{c}" for w, c in zip(r["all"], r["all_cpu"], strict=True))
            cpu = min(x["cpu"] for x in results[kind][name])
            loads = " ".join(f"{a}-{b}" for a, b in r["loads"])
            print(
                f"| {label} | {name} | {r['seconds']:.1f} | {cpu:.1f} | {runs} | {loads} | {r['rows']:,} "
                f"| {lf / r['seconds']:.2f}x | {lf_cpu / cpu:.2f}x |"
            )
        for name in ("by hand (declared)", "by hand (inferred)"):
            if name in top:
                cpu = min(x["cpu"] for x in results[kind][name])
                verdicts.append(
                    f"{kind}: landfall / {name} = {lf / top[name]['seconds']:.2f}x wall, {lf_cpu / cpu:.2f}x CPU"
                )
                diff = same_output(top["landfall"]["types"], top[name]["types"])
                if diff:
                    print(f"  note: {kind} {name} output differs from landfall's: {diff}")
    for v in verdicts:
        print(f"target: at most {TARGET}x -> {v}")
    print(f"\n(B) landfall on DuckDB vs landfall on Spark local[2]; best of {args.repeat}\n")
    print("| input | DuckDB wall s | DuckDB CPU s | Spark local[2] wall s | Spark CPU s | Spark / DuckDB wall | CPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, runs in crossover.items():
        d, s = best(runs["duckdb"]), best(runs["spark"])
        dc, sc = min(r["cpu"] for r in runs["duckdb"]), min(r["cpu"] for r in runs["spark"])
        print(
            f"| {label} | {d['seconds']:.1f} | {dc:.1f} | {s['seconds']:.1f} | {sc:.1f} "
            f"| {s['seconds'] / d['seconds']:.2f}x | {sc / dc:.2f}x |"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "spark.json").write_text(
        json.dumps(
            {"args": vars(args), "jvm_seconds": jvm, "sizes": sizes, "A": results, "B": crossover},
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
