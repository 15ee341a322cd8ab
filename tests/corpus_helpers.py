"""Helpers for the third-party corpus sweeps (`tests/test_corpus.py`).

The corpus lives beside the repository: `<repo>/../shared/corpus` (see its MANIFEST.md). Every sweep runs
`landfall.Pipeline.process()` in a child process (this file, run as a script) and watches it from the test
process through the state store, so that a hang is cut off and a crash (a signal, or an exception escaping
`process()`) is noticed and pinned on the file that caused it:

* round 1 runs all files as landfall normally would (batched, 2 workers); a lease that runs longer than its
  limit, or a child that dies, leaves its files *unresolved*;
* later rounds run the unresolved files again in a fresh lake, one file per lease and one worker, with a
  per-file time limit: a file still running at the limit is *hung*, a file running when the child died has
  *crashed*.

Every file ends in exactly one category: loaded, skipped (byte-identical to a file that loaded), failed
cleanly (dead with an error that names the file key in backticks and gives a reason), failed uncleanly,
crashed, or hung.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# Time limits (seconds); they only bound a hang. Most corpus files take well under a second, but the slowest,
# frictionless/wide.csv (9,074 columns), takes ~12s alone on a 2-core machine, and a round-1 lease holds up
# to 25 files (one shared query, then each file alone when that fails).
FILE_TIMEOUT = float(os.environ.get("LANDFALL_CORPUS_FILE_TIMEOUT", "60"))
BATCH_TIMEOUT = float(os.environ.get("LANDFALL_CORPUS_BATCH_TIMEOUT", "120"))
ROUND_TIMEOUT = float(os.environ.get("LANDFALL_CORPUS_ROUND_TIMEOUT", "300"))
MAX_RESTARTS = 12

LINEAGE = ("_source_file", "_ingested_at", "_run_id")

# Files of tricky-csv/ that are not CSV/TSV/text data: licence notes, readmes, expected-result indexes and
# JSON metadata / expected outputs.
_NOT_DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".jsonld", ".md")
_NOT_DATA_NAMES = ("EXPECTED_RESULTS_INDEX.tsv",)

CATEGORIES = ("loaded", "skipped", "failed_cleanly", "failed_uncleanly", "crashed", "hung")

# `landfall.outcomes.message` formats an exception that is not one of landfall's own (`InvalidInput`, ...) as
# "`key`: TypeName: text": that is the runner's catch-all, i.e. an unexpected exception (a crash that the
# runner contained), not a clean failure.
_UNEXPECTED = re.compile(r"^`[^`]*`: (?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Interrupt|Exit)(?:: |$)")
_REAPED = re.compile(r"^worker `[^`]*` stopped while running")


def corpus_dir(*parts: str) -> Path:
    """The corpus folder (or a sub-folder); skips the calling test when the corpus is not checked out."""
    import pytest

    path = CORPUS.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(
            f"third-party corpus not found at {path} (expected `shared/corpus` beside the repository; "
            "see shared/corpus/MANIFEST.md)"
        )
    return path


def tricky_csv_files() -> list[tuple[str, Path]]:
    """Every CSV/TSV/text data file of corpus/tricky-csv (all sub-folders, fuzz files included), as
    (path relative to the corpus, absolute path)."""
    root = corpus_dir("tricky-csv")
    out = []
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        name = p.name
        if (
            name.startswith(("LICENSE", "README"))
            or name in _NOT_DATA_NAMES
            or name.lower().endswith(_NOT_DATA_SUFFIXES)
        ):
            continue
        out.append((p.relative_to(CORPUS).as_posix(), p))
    return out


def spectrum_files() -> list[tuple[str, Path]]:
    root = corpus_dir("csv-spectrum", "csvs")
    return [(p.relative_to(CORPUS).as_posix(), p) for p in sorted(root.iterdir()) if p.is_file()]


# --- results ------------------------------------------------------------------------------------------------


@dataclass
class FileResult:
    key: str  # landing key
    source: str  # path relative to the corpus
    category: str  # one of CATEGORIES
    status: str | None = None  # the run record's status, when there is one
    detail: str = ""  # error message / note / what happened
    lake: Path | None = None  # the lake holding the final run record (and the table data)
    run_id: str | None = None
    rows_out: int | None = None
    traceback: str = ""  # from the child's debug log, for unexpected exceptions


@dataclass
class SweepResult:
    name: str
    results: dict[str, FileResult] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    seconds: float = 0.0
    rounds: int = 0

    def by_category(self) -> dict[str, list[FileResult]]:
        out: dict[str, list[FileResult]] = {c: [] for c in CATEGORIES}
        for r in self.results.values():
            out[r.category].append(r)
        return out

    def counts(self) -> dict[str, int]:
        return {c: len(v) for c, v in self.by_category().items()}

    def bad(self) -> list[FileResult]:
        return [r for r in self.results.values() if r.category in ("failed_uncleanly", "crashed", "hung")]

    def summary(self) -> str:
        c = self.counts()
        lines = [
            f"corpus sweep `{self.name}`: {len(self.results)} files in {self.seconds:.1f}s ({self.rounds} round(s))",
            f"  loaded {c['loaded'] + c['skipped']} (of which {c['skipped']} skipped as byte-identical to a "
            f"loaded file) | failed cleanly {c['failed_cleanly']} | failed uncleanly {c['failed_uncleanly']}"
            f" | crashed {c['crashed']} | hung {c['hung']}",
        ]
        for r in sorted(self.bad(), key=lambda r: (r.category, r.key)):
            lines.append(f"  {r.category.upper()}: {r.source} [{r.key}] status={r.status}: {_clip(r.detail)}")
            if r.traceback:
                lines.extend("      " + ln for ln in r.traceback.rstrip().splitlines()[-8:])
        for a in self.anomalies:
            lines.append(f"  ANOMALY: {_clip(a, 600)}")
        return "\n".join(lines)


def _clip(text: str, n: int = 300) -> str:
    text = (text or "").replace("\n", "\\n")
    return text if len(text) <= n else text[:n] + "..."


def classify_dead(key: str, error: str | None) -> str:
    """`failed_cleanly`, `failed_uncleanly` (no file key in backticks, or no reason) or `crashed` (the
    runner's catch-all for an unexpected exception)."""
    text = (error or "").strip()
    if f"`{key}`" not in text:
        return "failed_uncleanly"
    if _UNEXPECTED.match(text):
        return "crashed"
    reason = text.replace(f"`{key}`", "", 1)
    reason = re.sub(r"^\s*line \d+", "", reason).strip(" :;-")
    if len(re.findall(r"[A-Za-z]", reason)) < 3:
        return "failed_uncleanly"
    return "failed_cleanly"


# --- lakes and the child process ----------------------------------------------------------------------------


def write_lake(
    lake: Path, files: Iterable[tuple[str, Path]], workflows: list[dict], *, batch_files: int = 500, workers: int = 2
) -> Path:
    """A fresh lake with `files` (landing key, source path) landed and a landfall.yaml (JSON is YAML)."""
    if lake.exists():
        shutil.rmtree(lake)
    landing = lake / "landing"
    for key, src in files:
        dest = landing / key
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    cfg = {
        "lake": str(lake),
        "workers": workers,
        "batch_files": batch_files,
        "settle_seconds": 0,
        "workflows": workflows,
    }
    (lake / "landfall.yaml").write_text(json.dumps(cfg, indent=1, ensure_ascii=False), encoding="utf-8")
    return lake


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    import landfall

    src = str(Path(landfall.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop(FAULTS_ENV, None)
    env.update(extra or {})
    return env


# Fault injection, for the harness's own test only: {"key substring": "hang" | "abort" | "raise" | "escape"}.
FAULTS_ENV = "LANDFALL_CORPUS_FAULTS"


def _install_faults(spec: dict[str, str]) -> None:
    from landfall.engines.duckdb import DuckDBEngine
    from landfall.runner import Runner

    def fault_for(keys: list[str]) -> str | None:
        for needle, fault in spec.items():
            if any(needle in k for k in keys):
                return fault
        return None

    run = DuckDBEngine.run

    def faulty_run(self, job):  # noqa: ANN001
        fault = fault_for([s.key for s in job.sources])
        if fault == "hang":
            time.sleep(10**6)
        elif fault == "abort":
            os.abort()
        elif fault == "raise":
            raise RuntimeError("injected fault")
        return run(self, job)

    run_batch = Runner.run_batch

    def faulty_run_batch(self, runs):  # noqa: ANN001  (raised past the runner: it escapes the worker loop)
        if fault_for([r.file_key for r in runs]) == "escape":
            raise RuntimeError("injected fault escaping the worker loop")
        return run_batch(self, runs)

    DuckDBEngine.run = faulty_run
    Runner.run_batch = faulty_run_batch


def _child_main(argv: list[str]) -> int:
    """Run in the child: process everything landed in the lake, logging tracebacks to a file."""
    import logging

    import landfall

    lake, workers, log_path = Path(argv[0]), int(argv[1]), argv[2]
    handler = logging.FileHandler(log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("landfall")
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("landfall.runner").setLevel(logging.DEBUG)  # tracebacks of unexpected exceptions
    root.propagate = False
    if os.environ.get(FAULTS_ENV):
        _install_faults(json.loads(os.environ[FAULTS_ENV]))
    pipeline = landfall.Pipeline(landfall.load_settings(lake / "landfall.yaml"))
    try:
        pipeline.process(workers=workers)
    finally:
        pipeline.close()
    return 0


def _db(lake: Path) -> Path:
    return lake / "_landfall" / "state.db"


def _query(lake: Path, sql: str, params: tuple = ()) -> list[tuple]:
    db = _db(lake)
    if not db.exists():
        return []
    for _ in range(50):
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
            try:
                return con.execute(sql, params).fetchall()
            finally:
                con.close()
        except sqlite3.OperationalError:  # the child is creating the database / holds a lock
            time.sleep(0.1)
    return []


def _running(lake: Path, ignore: set[str]) -> dict[str, list[tuple[str, float]]]:
    """batch_id -> [(key, started_at)] of every running run, except those of `ignore` (runs of an earlier,
    killed child that the next child's recovery has not reaped yet)."""
    out: dict[str, list[tuple[str, float]]] = {}
    for k, started, batch in _query(lake, "SELECT file_key, started_at, batch_id FROM runs WHERE status = 'running'"):
        if k not in ignore:
            out.setdefault(batch or k, []).append((k, started or 0.0))
    return out


def _retire(lake: Path, keys: set[str]) -> None:
    """Keys whose fate the harness has decided (hung, crashed, unresolved) must not run again in this lake: landfall
    itself would queue an interrupted run again (a lost lease is not the file's fault, up to a few interruptions),
    so the harness ends their open runs before it restarts the child."""
    if not keys or not _db(lake).exists():
        return
    con = sqlite3.connect(_db(lake), timeout=30)
    try:
        marks = ", ".join("?" for _ in keys)
        con.execute(
            f"UPDATE runs SET status = 'dead', error = 'settled by the corpus harness' "
            f"WHERE status IN ('queued', 'running', 'failed') AND file_key IN ({marks})",
            tuple(keys),
        )
        con.commit()
    finally:
        con.close()


def _latest(lake: Path) -> dict[str, tuple]:
    """The newest run record per landing key: (status, error, note, run_id, rows_out)."""
    rows = _query(
        lake, "SELECT file_key, status, error, note, run_id, rows_out FROM runs ORDER BY attempt, queued_at, run_id"
    )
    return {key: rest for key, *rest in rows}


def _tracebacks(log_path: Path) -> dict[str, str]:
    """run_id -> traceback text from the child's `run ... failed:` debug records."""
    if not log_path.exists():
        return {}
    text = log_path.read_text(encoding="utf-8", errors="replace")
    out = {}
    for m in re.finditer(r"landfall\.runner DEBUG run (\S+) failed:\n(.*?)(?=\n\d{4}-\d\d-\d\d |\Z)", text, re.S):
        out[m.group(1)] = m.group(2)
    return out


def _tail(path: Path, n: int = 2000) -> str:
    if not path.exists():
        return ""
    return path.read_text(encoding="utf-8", errors="replace")[-n:]


@dataclass
class _LakeRun:
    lake: Path
    records: dict[str, tuple] = field(default_factory=dict)
    hung: dict[str, str] = field(default_factory=dict)
    crashed: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, str] = field(default_factory=dict)  # key -> why (to run again, alone)
    # (what happened, keys in flight): a hang or a crash that could not be pinned on one file yet
    events: list[tuple[str, list[str]]] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    tracebacks: dict[str, str] = field(default_factory=dict)


def _drive(
    lake: Path, keys: list[str], *, workers: int, lease_timeout: float, round_timeout: float, env: dict[str, str]
) -> _LakeRun:
    """Run the child on `lake` until every key has a final run record, cutting off hangs and surviving
    crashes. A restarted child's recovery marks the interrupted runs dead; those records are ignored (the
    keys are reported hung/crashed here, or unresolved: to be run again alone)."""
    out = _LakeRun(lake)
    deadline = time.monotonic() + round_timeout
    settled: set[str] = set()  # keys whose fate is decided here, not by their run record
    rc: int | None = 0
    for attempt in range(MAX_RESTARTS + 1):
        log_path = lake / f"child-{attempt}.log"
        err_path = lake / f"child-{attempt}.stderr"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), str(lake), str(workers), str(log_path)],
                stdout=err,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            late: set[str] = set()
            timed_out = False
            while proc.poll() is None:
                time.sleep(0.2)
                now = time.time()
                late = {
                    b for b, runs in _running(lake, settled).items() if any(now - t > lease_timeout for _, t in runs)
                }
                timed_out = time.monotonic() > deadline
                if late or timed_out:
                    _kill(proc)
                    break
            rc = proc.returncode
        out.tracebacks.update(_tracebacks(log_path))
        in_flight = _running(lake, settled)  # a killed or dead child leaves its leases `running`
        if late or timed_out:
            what = (
                f"lease ran longer than {lease_timeout:.0f}s (child killed)"
                if late
                else f"round ran longer than {round_timeout:.0f}s (child killed)"
            )
            event = []
            for b, runs in in_flight.items():
                for k, _t in runs:
                    if b in late and len(runs) == 1:
                        out.hung[k] = f"still running after {lease_timeout:.0f}s (child killed)"
                    else:
                        out.unresolved[k] = (
                            f"in a batch of {len(runs)} files that hung"
                            if b in late
                            else "in flight when the child was killed"
                        )
                        event.append(k)
                    settled.add(k)
            if timed_out:
                for k, rec in _latest(lake).items():
                    if rec[0] == "queued" and k not in settled:
                        out.unresolved[k] = "not run before the round's time limit"
                        settled.add(k)
            if event:
                out.events.append((what, event))
            if timed_out:
                out.anomalies.append(f"{lake.name}: {what}")
                break
        elif rc != 0:
            stderr = _tail(err_path)
            what = f"child process died ({_rc(rc)})"
            if not in_flight:
                out.anomalies.append(f"{lake.name}: {what} with no run in flight:\n{stderr}")
            event = []
            for runs in in_flight.values():
                for k, _t in runs:
                    if len(runs) == 1 and len(in_flight) == 1:
                        out.crashed[k] = f"{what} while running this file alone:\n{stderr}"
                    else:
                        out.unresolved[k] = f"in flight when the {what}"
                        event.append(k)
                    settled.add(k)
            if event:
                out.events.append((f"{what}: {stderr[-600:]}", event))
        else:
            stderr = _tail(err_path)
            if "Traceback (most recent call last)" in stderr:
                out.anomalies.append(f"{lake.name}: child printed a traceback but exited 0:\n{stderr}")
            break
        _retire(lake, settled)
        if not any(rec[0] == "queued" for k, rec in _latest(lake).items() if k not in settled):
            break
    else:
        out.anomalies.append(f"{lake.name}: gave up after {MAX_RESTARTS} restarts")
    latest = _latest(lake)
    for k in keys:
        if k in settled:
            continue
        rec = latest.get(k)
        if rec is None:
            out.crashed[k] = "no run record: the file was never discovered"
        elif rec[0] in ("queued", "running", "failed"):
            out.crashed[k] = f"left in status `{rec[0]}` after process() returned ({_rc(rc)})"
        else:
            out.records[k] = rec
    return out


def _rc(rc: int | None) -> str:
    if rc is None:
        return "no exit code"
    if rc < 0:
        try:
            return f"signal {signal.Signals(-rc).name}"
        except ValueError:
            return f"signal {-rc}"
    return f"exit code {rc}"


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def sweep(
    name: str,
    files: list[tuple[str, str, Path]],
    workdir: Path,
    workflows: Callable[[list[str]], list[dict]],
    *,
    batch_files: int = 25,
    workers: int = 2,
    lease_timeout: float = BATCH_TIMEOUT,
    file_timeout: float = FILE_TIMEOUT,
    round_timeout: float = ROUND_TIMEOUT,
    faults: dict[str, str] | None = None,
) -> SweepResult:
    """Process `files` (landing key, corpus-relative source, path) and put every file in one category.

    `workflows(keys)` gives the workflow list of a lake holding those keys. Round 1 runs everything the
    normal way (batches of `batch_files`, `workers` workers); files caught in a hang or a crash run again in
    a fresh lake, one file per lease, one worker, so that the hang or crash is pinned on a file.
    """
    started = time.monotonic()
    result = SweepResult(name)
    env = _child_env({FAULTS_ENV: json.dumps(faults)} if faults else None)
    source = {k: s for k, s, _ in files}
    paths = {k: p for k, _, p in files}
    todo = [k for k, _, _ in files]
    events: list[tuple[str, list[str]]] = []
    rnd = 0
    while todo:
        rnd += 1
        lake = workdir / f"{name.split()[0]}-round{rnd}"
        first = rnd == 1
        write_lake(
            lake,
            [(k, paths[k]) for k in todo],
            workflows(todo),
            batch_files=batch_files if first else 1,
            workers=workers if first else 1,
        )
        run = _drive(
            lake,
            todo,
            workers=workers if first else 1,
            lease_timeout=lease_timeout if first else file_timeout,
            round_timeout=round_timeout,
            env=env,
        )
        result.anomalies.extend(run.anomalies)
        events.extend(run.events)
        for k, (status, error, note, run_id, rows_out) in run.records.items():
            if status == "succeeded":
                cat, detail = "loaded", ""
            elif status == "skipped":
                cat, detail = "skipped", note or ""
            elif status == "dead":
                cat, detail = classify_dead(k, error), error or ""
                if _REAPED.match(detail):
                    cat = "crashed"
            else:  # unrouted
                cat, detail = "failed_uncleanly", f"status `{status}`: {error or note or ''}"
            tb = run.tracebacks.get(run_id or "", "")
            result.results[k] = FileResult(k, source[k], cat, status, detail, lake, run_id, rows_out, tb)
        for k, why in run.hung.items():
            result.results[k] = FileResult(k, source[k], "hung", "running", why, lake)
        for k, why in run.crashed.items():
            result.results[k] = FileResult(k, source[k], "crashed", None, why, lake)
        progress = bool(run.records or run.hung or run.crashed)
        todo = [k for k in todo if k in run.unresolved]
        if todo and ((not first and not progress) or rnd >= 6):
            for k in todo:
                result.results[k] = FileResult(k, source[k], "hung", None, f"never finished: {run.unresolved[k]}", lake)
            todo = []
    # a hang or crash that none of the files involved reproduces alone: batching itself is the problem
    for what, keys in events:
        if not any(result.results[k].category in ("hung", "crashed") for k in keys):
            alone = ", ".join(f"{source[k]}={result.results[k].category}" for k in keys[:10])
            result.anomalies.append(
                f"{what}; alone, none of these files hangs or crashes: {alone}" + (" ..." if len(keys) > 10 else "")
            )
    result.seconds = time.monotonic() - started
    result.rounds = rnd
    return result


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
