"""The starter project that `landfall init` writes and `landfall demo` runs: a commented `landfall.yaml` and
sample files under two prefixes (sales CSV, JSON Lines events)."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path

STARTER_YAML = """\
# landfall.yaml: files that land under a prefix become typed, partitioned, cataloged tables.
# Precedence: CLI flags > environment LANDFALL__SECTION__KEY > this file > defaults.

lake: ./lake            # root of landing/, tables/, quarantine/ and _landfall/ (state)
# zones:                # each zone can live elsewhere, e.g. a separate bucket
#   landing: ./incoming
#   tables: ./warehouse

workflows:
  - name: sales
    match: sales/                 # a prefix under landing/; a glob such as "sales/*.csv" also works
    read: {format: csv}           # csv | jsonl | json | parquet; detected from the extension when omitted
    transform:                    # applied in order
      - rename: {"Order ID": order_id, "Unit Price": price}
      - cast: {order_date: date, quantity: int}
      - compute: {total: "price * quantity"}
      - filter: "quantity > 0"
      - sql: "SELECT * EXCLUDE (internal_note) FROM input"
    write: {table: sales, format: parquet, partition_by: [order_date]}
    retry: {max_attempts: 3, backoff_seconds: 1}

  - name: events
    match: "events/*.jsonl"
    read: {bad_rows: quarantine}  # lines that are not JSON objects go to quarantine.events; the rest loads
    normalize_names: true         # "User Agent" -> user_agent
    transform:
      - dedupe: {keys: [event_id]}
      - cast: {ts: timestamp}
    write:
      table: events
      partition_by: ["year(ts)", "month(ts)"]   # Hive folders year=2026/month=11/
"""


def write_samples(landing: Path, *, seed: int = 7, days: int = 3) -> list[Path]:
    """Sample files: `sales/day-N.csv` and `events/batch-N.jsonl`."""
    rng = random.Random(seed)
    written: list[Path] = []
    (landing / "sales").mkdir(parents=True, exist_ok=True)
    (landing / "events").mkdir(parents=True, exist_ok=True)
    start = date(2026, 11, 1)
    order = 1000
    for d in range(days):
        day = start + timedelta(days=d)
        lines = ["Order ID,order_date,customer,Unit Price,quantity,internal_note"]
        for _ in range(rng.randint(20, 40)):
            order += 1
            qty = rng.choice([0, 1, 1, 2, 3, 5])
            lines.append(
                f"{order},{day.isoformat()},{rng.choice(['acme', 'globex', 'initech', 'umbrella'])},"
                f'{rng.choice([2.5, 9.99, 14.0, 120.0])},{qty},"note, {rng.randint(1, 99)}"'
            )
        path = landing / "sales" / f"day-{d + 1}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    base = datetime(2026, 10, 30, 8, 0, 0)
    for b in range(2):
        rows = []
        for i in range(25):
            eid = f"e{b * 20 + i}"  # batches overlap: duplicates within a file are removed by `dedupe`
            ts = base + timedelta(hours=rng.randint(0, 96))
            rows.append(
                {
                    "Event ID": eid,
                    "ts": ts.isoformat(sep=" "),
                    "User Agent": rng.choice(["cli", "web"]),
                    "Duration MS": rng.randint(5, 900),
                }
            )
        rows.append(dict(rows[0]))
        lines = [json.dumps(r) + "\n" for r in rows]
        if b == 1:  # a producer cut off mid-record: the line goes to quarantine.events, the rest loads
            lines.insert(10, '{"Event ID": "e99", "ts": "2026-11-01 09:00:00", "User Agent": "web", "Dur\n')
        path = landing / "events" / f"batch-{b + 1}.jsonl"
        path.write_text("".join(lines), encoding="utf-8")
        written.append(path)
    return written


def init_project(directory: Path, *, force: bool = False) -> tuple[Path, list[Path]]:
    """Write `landfall.yaml` and sample data into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "landfall.yaml"
    if config.exists() and not force:
        raise FileExistsError(f"{config} exists; use --force to overwrite it")
    config.write_text(STARTER_YAML, encoding="utf-8")
    samples = write_samples(directory / "lake" / "landing")
    return config, samples
