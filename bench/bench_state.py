#!/usr/bin/env python
"""State store benchmark: SQLite vs PostgreSQL, end to end, with 1, 2 and 3 worker processes; and the idle cost of
`landfall up` with many runs in the store.

Throughput: `--files` small CSVs (50 rows x 4 columns) land under `landing/bench/` and are discovered once; then
N processes `landfall process --workers 1` start at the same moment on the same lake and state store and drain
the queue together. Reported per backend and N: wall time from start to the last process's exit (files/s), and
the work window from the first lease to the last commit (from the runs' own times: process start-up excluded),
and CPU per file (the landfall processes' and the PostgreSQL server's CPU time, divided by the files): on a busy
machine wall times mostly measure waiting for a core, CPU time does not, so the ratios are given both ways. Then
the statements one worker sends PostgreSQL per batch (from the server's log), which do not grow with the files.
Every run is checked to have succeeded and the table to hold every row once. PostgreSQL is a server this script
starts on loopback (`landfall.testing.postgres`, durability off as in the tests: fsync off on both sides would
be fairer, so SQLite runs with its default `synchronous=NORMAL` in WAL mode, which does not fsync each commit
either). Backends alternate and the best of `--repeat` is kept.

Idle: a lake with `--idle-runs` succeeded runs (and, unless `--no-idle-files`, their files still in the landing
zone, as a real lake has them); `landfall up` starts, settles for `--settle` seconds, then its CPU time (user +
system, threads and children included) is sampled over `--idle-seconds`; for PostgreSQL the server's processes
too. Target: under 1% of a core.

Admin commands over many files (`--admin-files`, 5,000): re-routing files no workflow matched
(`StateStore.reroute`, as a changed landfall.yaml does), `dlq retry` of half of them, and `tables reload`'s
`drop_tables` of a table holding all of them, each timed on both backends (PostgreSQL analyzed first, as its
autovacuum would have), and on PostgreSQL behind a proxy that delays each packet (`--admin-rtt-ms`, 0.5: a state
store across a network, where every statement is a round trip). Each takes a few statements per 500 files, not
some per file.

    PYTHONPATH=src python bench/bench_state.py                      # 2,000 files, 100,000 idle runs
    PYTHONPATH=src python bench/bench_state.py --quick              # 400 files, 10,000 idle runs, short idle
    PYTHONPATH=src python bench/bench_state.py --skip-idle --repeat 3
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))

import psutil  # noqa: E402

from landfall.config import load_settings  # noqa: E402
from landfall.events import ObjectCreated  # noqa: E402
from landfall.pipeline import Pipeline  # noqa: E402
from landfall.state.base import RunResult  # noqa: E402
from landfall.testing.postgres import postgres_server  # noqa: E402

ROWS = 50
TARGET_PG_VS_SQLITE = 0.8  # PostgreSQL with one worker at least 0.8x SQLite
TARGET_TWO_VS_ONE = 1.6  # two workers at least 1.6x one
TARGET_IDLE_PERCENT = 1.0  # an idle `landfall up`: under 1% of a core


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def write_config(root: Path, state_url: str | None, **extra: Any) -> Path:
    import yaml

    doc: dict[str, Any] = {
        "lake": str(root / "lake"),
        "workflows": [{"name": "bench", "match": "bench/", "read": {"format": "csv"}, "write": {"table": "bench"}}],
        **extra,
    }
    if state_url:
        doc["state_url"] = state_url
    path = root / "landfall.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def land_csvs(landing: Path, files: int) -> None:
    landing.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        lines = ["id,name,qty,price"] + [f"{i * ROWS + j},n{j},{j % 7},{j * 1.25:.2f}" for j in range(ROWS)]
        (landing / f"f{i:05d}.csv").write_text("\n".join(lines) + "\n")


def server_cpu(pg: Any) -> float:
    """CPU seconds the PostgreSQL server has used: its main process, its live backends, and (counted in the
    main process's children times) the backends that have exited."""
    main = psutil.Process(pg.pid)
    t = main.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in main.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except psutil.NoSuchProcess:
            pass
    return total


def per_file(r: dict[str, float], files: int, *, net: bool = True) -> float:
    """CPU milliseconds per file: the landfall processes' and (PostgreSQL) the server's; `net` of what the
    processes cost with nothing to do (start-up), which a longer run spreads over more files."""
    return 1000 * (r["cpu"] + r["server"] - (r["fixed"] if net else 0.0)) / files


def children_cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def throughput(backend: str, workers: int, files: int, batch: int, pg: Any, tmp: Path) -> dict[str, float]:
    root = Path(tempfile.mkdtemp(prefix=f"{backend}-{workers}-", dir=tmp))
    url = pg.create_database() if backend == "postgresql" else None
    config = write_config(root, url, batch_files=batch)
    land_csvs(root / "lake/landing/bench", files)
    p = Pipeline(load_settings(config))
    assert len(p.discover()) == files
    p.close()
    cmd = [sys.executable, "-m", "landfall", "--config", str(config), "-q", "process", "--workers", "1"]
    cpu0, server0 = children_cpu(), server_cpu(pg)
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(workers)]
    outs = [proc.communicate()[0].decode() for proc in procs]
    wall = time.perf_counter() - started
    cpu, server = children_cpu() - cpu0, server_cpu(pg) - server0
    bad = [o for proc, o in zip(procs, outs, strict=True) if proc.returncode != 0]
    if bad:
        raise SystemExit(f"{backend} x{workers}: a worker failed:\n{bad[0]}")
    p = Pipeline(load_settings(config))
    runs = list(p.iter_runs())
    statuses = {r.status for r in runs}
    (count,) = p.query("SELECT count(*), count(DISTINCT id) FROM bench")[1]
    window = max(r.finished_at for r in runs) - min(r.started_at for r in runs)
    p.close()
    if statuses != {"succeeded"} or count != (files * ROWS, files * ROWS):
        raise SystemExit(f"{backend} x{workers}: statuses {statuses}, rows {count}; expected {files * ROWS} once")
    # what one process costs with nothing to do (start-up, recovery, a listing of the known files): the same
    # command again, on the drained queue
    cpu0, server0 = children_cpu(), server_cpu(pg)
    subprocess.run(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    fixed, fixed_server = children_cpu() - cpu0, server_cpu(pg) - server0
    shutil.rmtree(root, ignore_errors=True)
    pg_side = backend == "postgresql"
    return {
        "wall": wall,
        "window": window,
        "cpu": cpu,
        "server": server if pg_side else 0.0,
        "fixed": workers * (fixed + (fixed_server if pg_side else 0.0)),
    }


def statements(files: int, batch: int, pg: Any, tmp: Path) -> dict[str, float]:
    """The statements one `landfall process --workers 1` sends PostgreSQL for `files` files (the server's own
    log, `log_statement = all` on the bench's database), and for the same command on the drained queue."""
    root = Path(tempfile.mkdtemp(prefix="statements-", dir=tmp))
    url = pg.create_database()
    config = write_config(root, url, batch_files=batch)
    land_csvs(root / "lake/landing/bench", files)
    p = Pipeline(load_settings(config))
    p.discover()
    p.close()
    pg.psql(f"ALTER DATABASE \"{url.rsplit('/', 1)[1]}\" SET log_statement = 'all'")
    log = pg.root / "server.log"
    cmd = [sys.executable, "-m", "landfall", "--config", str(config), "-q", "process", "--workers", "1"]
    counts = []
    for _ in range(2):  # the work, then the same command with nothing to do
        start = log.stat().st_size
        subprocess.run(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        text = log.read_bytes()[start:].decode(errors="replace")
        counts.append(len(re.findall(r"LOG:  (?:statement|execute [^:]*): ", text)))
    shutil.rmtree(root, ignore_errors=True)
    batches = -(-files // batch)
    return {"total": counts[0], "idle": counts[1], "per_batch": (counts[0] - counts[1]) / batches, "batches": batches}


def idle(backend: str, runs: int, with_files: bool, seconds: float, settle: float, pg: Any, tmp: Path) -> dict:
    root = Path(tempfile.mkdtemp(prefix=f"idle-{backend}-", dir=tmp))
    url = pg.create_database() if backend == "postgresql" else None
    config = write_config(root, url)
    landing = root / "lake/landing"
    p = Pipeline(load_settings(config))
    if with_files:
        for i in range(runs):
            folder = landing / "bench" / f"d{i // 1000:03d}"
            if i % 1000 == 0:
                folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i:06d}.csv").write_bytes(b"id\n1\n")
        created = p.discover()
    else:
        events = [ObjectCreated(key=f"bench/d/f{i:06d}.csv", size=5, mtime=1.0) for i in range(runs)]
        created = p.store.discover(events, p.router.route)
    assert len(created) == runs
    while leased := p.store.lease("bench", limit=2000, max_bytes=1 << 40, lease_seconds=600):
        p.store.commit(None, [RunResult(r.run_id, "succeeded", worker="bench", rows_out=1) for r in leased])
    assert p.counts()["succeeded"] == runs
    p.close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(config), "-q", "up"],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(settle)
        me = psutil.Process(proc.pid)

        def cpu() -> float:
            t = me.cpu_times()
            return t.user + t.system + t.children_user + t.children_system

        def server() -> float:
            return server_cpu(pg) if backend == "postgresql" else 0.0

        a, s, t0 = cpu(), server(), time.perf_counter()
        time.sleep(seconds)
        b, s2, t1 = cpu(), server(), time.perf_counter()
        rss = me.memory_info().rss
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    shutil.rmtree(root, ignore_errors=True)
    return {
        "up_percent": 100 * (b - a) / (t1 - t0),
        "server_percent": 100 * (s2 - s) / (t1 - t0),
        "rss_mib": rss / 2**20,
    }


def delaying_proxy(target: int, rtt_ms: float) -> int:
    """A TCP proxy on loopback to port `target` that holds each packet for half of `rtt_ms` each way (asyncio's own
    overhead adds about a millisecond a round trip); its port."""
    import asyncio
    import threading

    from landfall.testing.ports import free_port

    port, delay = free_port(), rtt_ms / 2000

    async def pipe(r: Any, w: Any) -> None:
        try:
            while data := await r.read(65536):
                await asyncio.sleep(delay)
                w.write(data)
                await w.drain()
        except OSError:
            pass
        finally:
            w.close()

    async def handle(r: Any, w: Any) -> None:
        tr, tw = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(pipe(r, tw), pipe(tr, w))

    async def serve(ready: threading.Event) -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        async with server:
            await server.serve_forever()

    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(serve(ready)), daemon=True).start()
    ready.wait(10)
    return port


def admin(backend: str, files: int, pg: Any, tmp: Path, rtt_ms: float = 0.0) -> dict[str, float]:
    """Seconds for `reroute`, `retry_dead` (half the files) and `drop_tables` over `files` files (PostgreSQL: with
    `rtt_ms`, behind `delaying_proxy`)."""
    from types import SimpleNamespace

    from landfall.events import ObjectCreated
    from landfall.state import open_state
    from landfall.state.base import RunResult, SourceRows
    from landfall.testing.state_suite import table_commit

    if backend == "postgresql":
        url = pg.create_database()
        if rtt_ms:
            url = url.replace(f":{pg.port}/", f":{delaying_proxy(pg.port, rtt_ms)}/")
    else:
        shutil.rmtree(tmp / "admin", ignore_errors=True)
        (tmp / "admin").mkdir()
        url = f"sqlite:///{tmp / 'admin' / 'state.db'}"
    store = open_state(url)
    flow = SimpleNamespace(
        name="a", write=SimpleNamespace(table="t"), retry=SimpleNamespace(max_attempts=1), lineage=True
    )
    try:
        store.discover([ObjectCreated(key=f"z/{i}", size=10, mtime=1.0) for i in range(files)], lambda key: None)
        out: dict[str, float] = {}
        t = time.perf_counter()
        assert len(store.reroute(lambda key: flow)) == files
        out["reroute"] = time.perf_counter() - t

        def lease_all() -> list[Any]:
            got: list[Any] = []
            while batch := store.lease("w", limit=1000, max_bytes=1 << 40, lease_seconds=600):
                got += batch
            return got

        runs = lease_all()
        for r in runs[: files // 2]:
            store.fail(r.run_id, "bad", retry_in=None, worker="w")
        t = time.perf_counter()
        assert len(store.retry_dead(None)) == files // 2
        out["retry_dead"] = time.perf_counter() - t
        loaded = runs[files // 2 :] + lease_all()
        sources = [SourceRows(f"p{i}", r.file_key, r.file_id, r.run_id, 1) for i, r in enumerate(loaded)]
        store.commit(
            table_commit("t", "c1", [s.path for s in sources], sources=sources),
            [RunResult(r.run_id, "succeeded", worker="w") for r in loaded],
        )
        if backend == "postgresql":
            pg.psql("ANALYZE", database=url.rsplit("/", 1)[-1])
        t = time.perf_counter()
        assert len(store.drop_tables(["t"], "reloaded")) == files
        out["drop_tables"] = time.perf_counter() - t
        return out
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--batch-files", type=int, default=100, help="batch_files: runs leased at a time (default 100)")
    ap.add_argument("--workers", default="1,2,3", help="worker process counts")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--idle-runs", type=int, default=100_000)
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=20.0, help="seconds after `up` starts before sampling")
    ap.add_argument("--no-idle-files", action="store_true", help="idle runs without their files in the landing zone")
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--admin-files", type=int, default=5000, help="files for the admin commands")
    ap.add_argument("--admin-rtt-ms", type=float, default=0.5, help="PostgreSQL behind a proxy with this delay")
    ap.add_argument("--skip-admin", action="store_true")
    ap.add_argument("--quick", action="store_true", help="400 files, 10,000 idle runs, 20 s idle, one repeat")
    args = ap.parse_args()
    if args.quick:
        args.files, args.idle_runs, args.idle_seconds, args.repeat, args.settle = 400, 10_000, 20.0, 1, 10.0
    counts = [int(n) for n in args.workers.split(",")]
    backends = ["sqlite", "postgresql"]
    print(f"cpus: {os.cpu_count()}; files: {args.files} x {ROWS} rows; batch_files: {args.batch_files}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with postgres_server() as pg, tempfile.TemporaryDirectory(prefix="landfall-bench-state-") as tmpdir:
        tmp = Path(tmpdir)
        if not args.skip_throughput:
            best: dict[tuple[str, int], dict[str, float]] = {}
            for rep in range(args.repeat):
                for n in counts:
                    for backend in backends if rep % 2 == 0 else backends[::-1]:  # alternate the order
                        got = throughput(backend, n, args.files, args.batch_files, pg, tmp)
                        key = (backend, n)
                        if key not in best or got["wall"] < best[key]["wall"]:
                            best[key] = got
                        wall, work = got["wall"], got["window"]
                        print(f"  run {rep + 1}: {backend:<10} x{n}: {wall:.2f} s wall, {work:.2f} s work")
            print()
            print(
                "| backend | workers | wall s | files/s | vs 1 worker | work window s | files/s (work) | vs 1 "
                "| CPU s landfall | CPU s server | CPU ms/file | CPU s start-up | CPU ms/file net |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
            for backend in backends:
                one = best[(backend, counts[0])]
                for n in counts:
                    r = best[(backend, n)]
                    print(
                        f"| {backend} | {n} | {r['wall']:.2f} | {args.files / r['wall']:.0f} | "
                        f"{one['wall'] / r['wall']:.2f}x | {r['window']:.2f} | {args.files / r['window']:.0f} | "
                        f"{one['window'] / r['window']:.2f}x | {r['cpu']:.2f} | {r['server']:.2f} | "
                        f"{per_file(r, args.files, net=False):.2f} | {r['fixed']:.2f} | {per_file(r, args.files):.2f} |"
                    )
            if 1 in counts:
                ratio = best[("sqlite", 1)]["wall"] / best[("postgresql", 1)]["wall"]
                work = best[("sqlite", 1)]["window"] / best[("postgresql", 1)]["window"]
                cpu = per_file(best[("sqlite", 1)], args.files) / per_file(best[("postgresql", 1)], args.files)
                print(
                    f"\nPostgreSQL vs SQLite, one worker: {ratio:.2f}x wall, {work:.2f}x work, {cpu:.2f}x by CPU "
                    f"(SQLite's net CPU per file / PostgreSQL's, landfall + server) (target >= {TARGET_PG_VS_SQLITE}x)"
                )
                if 2 in counts:
                    for backend in backends:
                        r1, r2 = best[(backend, 1)], best[(backend, 2)]
                        print(
                            f"{backend}: two workers vs one: {r1['wall'] / r2['wall']:.2f}x wall, "
                            f"{r1['window'] / r2['window']:.2f}x work (target >= {TARGET_TWO_VS_ONE}x); by CPU: "
                            f"{2 * per_file(r1, args.files) / per_file(r2, args.files):.2f}x on two free cores "
                            "(2 x one worker's net CPU per file / two workers')"
                        )
            got = statements(args.files, args.batch_files, pg, tmp)
            print(
                f"\nPostgreSQL statements (server log): {got['total']} for {args.files} files in {got['batches']} "
                f"batches, {got['idle']} for the same command with nothing to do: "
                f"{got['per_batch']:.1f} per batch of {args.batch_files}"
            )
        if not args.skip_admin:
            print(f"\nadmin commands over {args.admin_files:,} files (seconds)")
            print("| backend | reroute | dlq retry (half) | tables reload (drop_tables) |")
            print("|---|---:|---:|---:|")
            sides = [(b, 0.0) for b in backends] + ([("postgresql", args.admin_rtt_ms)] if args.admin_rtt_ms else [])
            for backend, rtt in sides:
                got = admin(backend, args.admin_files, pg, tmp, rtt)
                label = f"{backend} (+{rtt:g} ms a round trip)" if rtt else backend
                print(f"| {label} | {got['reroute']:.2f} | {got['retry_dead']:.2f} | {got['drop_tables']:.2f} |")
        print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        if not args.skip_idle:
            print()
            files = "with their files in the landing zone" if not args.no_idle_files else "without landed files"
            print(f"idle `landfall up`: {args.idle_runs:,} succeeded runs {files}; {args.idle_seconds:.0f} s sampled")
            print("| backend | landfall up, % of a core | PostgreSQL server, % of a core | up RSS MiB |")
            print("|---|---:|---:|---:|")
            for backend in backends:
                got = idle(backend, args.idle_runs, not args.no_idle_files, args.idle_seconds, args.settle, pg, tmp)
                server = f"{got['server_percent']:.2f}" if backend == "postgresql" else "-"
                print(f"| {backend} | {got['up_percent']:.2f} | {server} | {got['rss_mib']:.0f} |")
            print(f"target: under {TARGET_IDLE_PERCENT}% of a core")


if __name__ == "__main__":
    main()
