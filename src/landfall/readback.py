"""Reading the pipeline back: the shapes the CLI's `--json`, the HTTP API and the dashboard all print.

Each shape is computed here once, from the state store and the table formats, and `Pipeline` hands it out
(`Pipeline.table_detail`, `Pipeline.history`, ...). Adapters format what they are given; they never reach into
the state store themselves.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from typing import Any

import msgspec

from landfall import partitions
from landfall.state.base import DataFile, StateStore, Table, iso_time


def schema_change(before: list[dict[str, str]] | None, after: list[dict[str, str]]) -> dict[str, Any]:
    """What changed from one schema version to the next: columns added, removed and retyped."""
    if before is None:
        return {"added": list(after), "removed": [], "retyped": []}
    old = {c["name"]: c["type"] for c in before}
    new = {c["name"]: c["type"] for c in after}
    return {
        "added": [c for c in after if c["name"] not in old],
        "removed": [n for n in old if n not in new],
        "retyped": [{"name": n, "from": old[n], "to": new[n]} for n in new if n in old and old[n] != new[n]],
    }


def describe_change(change: dict[str, Any]) -> str:
    """`+region VARCHAR, -note, qty BIGINT -> DOUBLE` for people."""
    parts = [f"+{c['name']} {c['type']}" for c in change["added"]]
    parts += [f"-{n}" for n in change["removed"]]
    parts += [f"{c['name']} {c['from']} -> {c['to']}" for c in change["retyped"]]
    return ", ".join(parts) or "(no change)"


@dataclass
class TableDetail:
    """One table in full: the catalog entry, every schema version (with what changed), partitions and files."""

    table: Table
    schema_versions: list[dict[str, Any]]
    partitions: list[dict[str, Any]]
    data_files: list[DataFile] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The stable shape of `landfall tables show NAME --json` (README "Stable JSON shapes")."""
        return self.table.to_json() | {
            "schema_versions": self.schema_versions,
            "partitions": self.partitions,
            "data_files": [
                {"path": f.path, "rows": f.rows, "bytes": f.bytes, "partition": f.partition} for f in self.data_files
            ],
        }


def table_detail(store: StateStore, name: str) -> TableDetail:
    table = store.table(name)
    files = store.table_files(name)
    versions = store.schema_versions(name)
    prev: list[dict[str, str]] | None = None
    for v in versions:
        v["changes"] = schema_change(prev, v["schema"])
        prev = v["schema"]
    groups = [
        {
            "partition": label or "(none)",
            "files": len(group),
            "rows": sum(f.rows for f in group),
            "bytes": sum(f.bytes for f in group),
        }
        for label, group in partitions.by_value(files, dict(table.schema)).items()
    ]
    return TableDetail(table, versions, sorted(groups, key=lambda g: g["partition"]), files)


def version_json(v: Any) -> dict[str, Any]:
    """One entry of a table's history (`landfall tables history --json`)."""
    return {
        "version": v.version,
        "timestamp": v.timestamp.isoformat(),
        "operation": v.operation,
        "run_ids": v.run_ids,
        "rows_added": v.rows_added,
        "rows_removed": v.rows_removed,
        "files_added": v.files_added,
        "files_removed": v.files_removed,
    }


def run_json(run: Any) -> dict[str, Any]:
    """One run with its steps (`landfall runs show --json`)."""
    return run.to_json() | {"steps": run.steps}


def jsonable(v: Any) -> Any:
    """A query value as JSON (`json_text` writes it): dates and times as ISO text, decimals as they are (numbers of
    every digit), bytes as hex, NaN and infinities as the strings `NaN`, `Infinity`, `-Infinity` (JSON has no
    such numbers)."""
    if isinstance(v, (datetime, date, clock_time)):
        return v.isoformat()
    if isinstance(v, timedelta):
        return v.total_seconds()
    if isinstance(v, Decimal):
        return v
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)  # UUID and the like


_JSON = msgspec.json.Encoder(decimal_format="number")


def json_text(doc: Any, indent: int = 0) -> bytes:
    """JSON of `jsonable` values, in UTF-8: a decimal as a number of every digit it has (`12345678901234567890123`,
    `1.10`), where a double holds 17 (`1.2345678901234568e+22`)."""
    data = _JSON.encode(doc)
    return msgspec.json.format(data, indent=indent) if indent else data


def csv_text(v: Any) -> str:
    """A query value in a CSV cell: text as it is, a number with every digit (a decimal without an exponent),
    `true` / `false`, dates and times as ISO text, a list or struct as its JSON, NULL as nothing."""
    v = jsonable(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, (list, dict)):
        return json_text(v).decode()
    return str(v)


# --- activity: the overview, /metrics and alerts -----------------------------------------------------------------

#: run duration histogram buckets (seconds)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
#: a run's record is written with its finish time at the start of its commit transaction; a commit may become
#: visible this long after that time (a wait for the write lock), so newer runs are counted afresh each time
SETTLE_SECONDS = 120.0


@dataclass
class Total:
    """Runs that ended in one (workflow, status): counts and sums, and a duration histogram."""

    runs: int = 0
    rows_in: int = 0
    rows_out: int = 0
    bytes: int = 0
    rows_quarantined: int = 0
    seconds: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))

    def add(self, row: tuple[Any, ...]) -> None:
        n, rin, rout, nbytes, quarantined, secs, *hist = row
        self.runs += int(n or 0)
        self.rows_in += int(rin or 0)
        self.rows_out += int(rout or 0)
        self.bytes += int(nbytes or 0)
        self.rows_quarantined += int(quarantined or 0)
        self.seconds += float(secs or 0.0)
        self.buckets = [a + int(b or 0) for a, b in zip(self.buckets, hist, strict=True)]


class Totals:
    """Totals of every run that ended, per (workflow, status), kept up to date cheaply: runs that ended more than
    `settle_seconds` ago are added once, as the boundary moves on; the newest are counted afresh each time. The
    first call reads every run once; later ones only what ended since."""

    def __init__(self, store: StateStore, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.store = store
        self.settle_seconds = settle_seconds
        self._settled: dict[tuple[str, str], Total] = {}
        self._boundary: float | None = None
        self._lock = threading.Lock()

    def read(self, now: float | None = None) -> dict[tuple[str, str], Total]:
        now = time.time() if now is None else now
        boundary = now - self.settle_seconds
        with self._lock:
            if self._boundary is None or boundary > self._boundary:
                for row in self.store.totals(self._boundary, boundary, DURATION_BUCKETS):
                    self._settled.setdefault((row[0] or "", row[1]), Total()).add(row[2:])
                self._boundary = boundary
            out = {k: _copy(v) for k, v in self._settled.items()}
            recent = self.store.totals(self._boundary, now + 1.0, DURATION_BUCKETS)
        for row in recent:
            out.setdefault((row[0] or "", row[1]), Total()).add(row[2:])
        return out


@dataclass
class Activity:
    """What `/metrics` exposes (see `Pipeline.activity`)."""

    totals: dict[tuple[str, str], Total]
    backlog: list[tuple[Any, ...]]  # (workflow, status, count, oldest queued_at) for queued and running runs
    dead_letters: int
    compactions: dict[str, int]


def _copy(t: Total) -> Total:
    return Total(t.runs, t.rows_in, t.rows_out, t.bytes, t.rows_quarantined, t.seconds, list(t.buckets))


def percentile(values: list[float], p: float) -> float | None:
    """The `p`-th percentile (0-100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return round(ordered[k], 6)


def overview(store: StateStore, *, minutes: int = 60, now: float | None = None) -> dict[str, Any]:
    """What the dashboard's overview shows: the last `minutes` of runs per minute and per workflow (files, rows,
    succeeded / failed / dead, durations, land-to-committed latency p50/p95), the backlog with the age of the
    oldest queued file, and the dead-letter list's length. Latency runs from when landfall first saw the file
    to when its run committed."""
    now = time.time() if now is None else now
    since = now - minutes * 60
    start_minute = int(since // 60)
    series = {
        m: {"files": 0, "rows": 0, "bytes": 0, "failed": 0, "durations": []}
        for m in range(start_minute, int(now // 60) + 1)
    }
    flows: dict[str, dict[str, Any]] = {}
    statuses = ("succeeded", "failed", "dead", "skipped", "unrouted")

    def flow(name: str) -> dict[str, Any]:
        found = flows.get(name)
        if found is None:
            found = flows[name] = {"workflow": name, **dict.fromkeys(statuses, 0), "rows": 0, "bytes": 0,
                                   "queued": 0, "running": 0, "oldest_queued_at": None, "latencies": [],
                                   "durations": []}  # fmt: skip
        return found

    all_latency: list[float] = []
    all_duration: list[float] = []
    for wf, status_, finished, started, discovered, rows_out, nbytes, _quarantined in store.finished_since(since):
        f = flow(wf or "")
        f[status_] = f.get(status_, 0) + 1
        bucket = series.get(int(finished // 60))
        duration = finished - started if started is not None else None
        if status_ == "succeeded":
            f["rows"] += rows_out or 0
            f["bytes"] += nbytes or 0
            latency = finished - discovered if discovered is not None else None
            if latency is not None:
                f["latencies"].append(latency)
                all_latency.append(latency)
        if duration is not None and status_ in ("succeeded", "failed", "dead"):
            f["durations"].append(duration)
            all_duration.append(duration)
        if bucket is not None:
            if status_ == "succeeded":
                bucket["files"] += 1
                bucket["rows"] += rows_out or 0
                bucket["bytes"] += nbytes or 0
            elif status_ in ("failed", "dead"):
                bucket["failed"] += 1
            if duration is not None and status_ in ("succeeded", "failed", "dead"):
                bucket["durations"].append(duration)
    for wf, status_, n, oldest in store.backlog():
        f = flow(wf or "")
        f[status_] += int(n)
        if status_ == "queued" and oldest is not None:
            f["oldest_queued_at"] = oldest if f["oldest_queued_at"] is None else min(f["oldest_queued_at"], oldest)
    workflows = []
    for name in sorted(flows):
        f = flows[name]
        lat, dur, oldest = f.pop("latencies"), f.pop("durations"), f.pop("oldest_queued_at")
        workflows.append(
            f
            | {
                "files_per_minute": round(f["succeeded"] / minutes, 3),
                "rows_per_minute": round(f["rows"] / minutes, 3),
                "oldest_queued_age_seconds": round(now - oldest, 3) if oldest is not None else None,
                "latency_seconds": {"p50": percentile(lat, 50), "p95": percentile(lat, 95)},
                "duration_seconds": {"p50": percentile(dur, 50), "p95": percentile(dur, 95)},
            }
        )
    ages = [w["oldest_queued_age_seconds"] for w in workflows if w["oldest_queued_age_seconds"] is not None]
    return {
        "generated_at": iso_time(now),
        "window_minutes": minutes,
        "counts": {s: sum(w[s] for w in workflows) for s in statuses},
        "dead_letters": store.dead_letter_count(),
        "backlog": {
            "queued": sum(w["queued"] for w in workflows),
            "running": sum(w["running"] for w in workflows),
            "oldest_queued_age_seconds": max(ages) if ages else None,
        },
        "files_per_minute": round(sum(w["succeeded"] for w in workflows) / minutes, 3),
        "rows_per_minute": round(sum(w["rows"] for w in workflows) / minutes, 3),
        "latency_seconds": {"p50": percentile(all_latency, 50), "p95": percentile(all_latency, 95)},
        "duration_seconds": {"p50": percentile(all_duration, 50), "p95": percentile(all_duration, 95)},
        "workflows": workflows,
        "minutes": [
            {
                "minute": iso_time(m * 60.0),
                "files": b["files"],
                "rows": b["rows"],
                "bytes": b["bytes"],
                "failed": b["failed"],
                "duration_p50": percentile(b["durations"], 50),
                "duration_p95": percentile(b["durations"], 95),
            }
            for m, b in sorted(series.items())
        ],
    }
