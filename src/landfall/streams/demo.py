"""`landfall demo --stream`: seed 003 on a laptop. A hardware store's sales go to a Firehose delivery stream
(boto3, pointed at `landfall serve`); the stream lands them as JSON Lines under `raw/sales/`; a workflow
flattens each file into `staging/sales/` (a hop); the staging files load into the `sales_staging` table; each
run of that table feeds a workflow that upserts by `transaction_id` into the Delta table `sales`, whose history
shows each round."""

from __future__ import annotations

import json
import random
import secrets
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from landfall.config import load_settings
from landfall.output import console, num, on_pipe, say, table
from landfall.pipeline import Pipeline

STREAM_YAML = """\
# landfall.yaml for `landfall demo --stream` (seed 003): records in over the Firehose API, three hops out.
lake: ./lake

streams:
  - name: sales                         # the Firehose delivery stream (and Kinesis stream) name
    prefix: raw/sales/                  # JSON Lines files land under landing/raw/sales/
    buffer: {size_mb: 1, interval_seconds: 1}
    partition_by: [product.category]    # raw/sales/product.category=Garden/2026/11/03/10/<file>

workflows:
  - name: transform                     # the transformer: flatten each raw micro-batch into staging/
    match: raw/sales/
    transform:
      - flatten: {separator: "_"}       # customer.address.city -> customer_address_city
    write: {landing: staging/sales/, format: parquet}

  - name: staging                       # the staging table: every version of every sale, as it arrived
    match: staging/sales/
    transform:
      - cast: {transaction_date: timestamp, updated_at: timestamp}
      - compute: {total: "round(product_price * quantity, 2)"}
    write: {table: sales_staging}

  - name: sales                         # the final Delta table: one row per sale, its latest version
    source: {table: sales_staging}      # fed by each run that writes the staging table
    write: {table: sales, format: delta, mode: merge, keys: [transaction_id], order_by: updated_at}
"""

CATEGORIES = {
    "Tools": [("Claw Hammer 16oz", 14.99), ("Cordless Drill 18V", 89.0), ("Socket Set 40pc", 39.5)],
    "Garden": [("Garden Hose 25m", 24.99), ("Pruning Shears", 17.25)],
    "Plumbing": [("PVC Pipe 2m", 6.4), ("Adjustable Wrench", 12.75)],
    "Electrical": [("LED Bulb 4-pack", 9.99), ("Extension Cord 10m", 15.0)],
    "Paint": [("Interior Paint 5L", 42.0), ("Roller Kit", 11.5)],
}
NAMES = ["Ada Moreno", "Bilal Okafor", "Chen Wei", "Dana Kowalski", "Emil Sørensen", "Fatima Haddad", "Goran Ilić"]
CITIES = [("Leeds", "UK"), ("Lyon", "FR"), ("Porto", "PT"), ("Graz", "AT"), ("Utrecht", "NL")]


def init_stream_project(directory: Path) -> Path:
    """Write the demo's `landfall.yaml` into `directory`; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "landfall.yaml"
    config.write_text(STREAM_YAML, encoding="utf-8")
    return config


def rounds(seed: int = 3) -> list[list[dict[str, Any]]]:
    """Three rounds of records: new sales; some shipped (same `transaction_id`, later `updated_at`) and more new
    ones; then deliveries and a cancellation."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    sales: list[dict[str, Any]] = []

    def new(n: int, at: datetime) -> list[dict[str, Any]]:
        out = []
        for _ in range(n):
            category = rng.choice(sorted(CATEGORIES))
            name, price = rng.choice(CATEGORIES[category])
            city, country = rng.choice(CITIES)
            when = at + timedelta(minutes=rng.randint(0, 59))
            sale = {
                "transaction_id": f"T-{1001 + len(sales)}",
                "transaction_date": when.isoformat().replace("+00:00", "Z"),
                "updated_at": when.isoformat().replace("+00:00", "Z"),
                "status": "placed",
                "customer": {
                    "id": rng.randint(5000, 5999),
                    "name": rng.choice(NAMES),
                    "address": {"city": city, "country": country},
                },
                "product": {"name": name, "category": category, "price": price},
                "quantity": rng.choice([1, 1, 2, 3, 5]),
            }
            sales.append(sale)
            out.append(sale)
        return out

    def change(picked: list[dict[str, Any]], status: str, at: datetime) -> list[dict[str, Any]]:
        stamp = at.isoformat().replace("+00:00", "Z")
        return [{**sale, "status": status, "updated_at": stamp} for sale in picked]

    first = new(24, start)
    second = change(rng.sample(first, 8), "shipped", start + timedelta(hours=2)) + new(8, start + timedelta(hours=2))
    shipped = [s for s in second if s["status"] == "shipped"]
    third = change(shipped[:5], "delivered", start + timedelta(days=1)) + change(
        [s for s in first if s not in shipped][:1], "cancelled", start + timedelta(days=1)
    )
    return [first, second, third]


def firehose(url: str, token: str) -> Any:
    """A boto3 Firehose client pointed at landfall (the token is the secret access key)."""
    from landfall.errors import require

    boto3 = require("boto3", "demo", "`landfall demo --stream`")
    return boto3.client(
        "firehose",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="landfall",
        aws_secret_access_key=token,
    )


def put(client: Any, records: list[dict[str, Any]]) -> dict[str, Any]:
    """One `PutRecordBatch` call, a JSON object and a newline per record, as Firehose producers send them."""
    return client.put_record_batch(
        DeliveryStreamName="sales",
        Records=[{"Data": json.dumps(r).encode("utf-8") + b"\n"} for r in records],
    )


def run(keep: bool, *, print_rows: Callable[..., None], print_summary: Callable[[Any], None]) -> bool:
    """The demo, printed as the CLI prints (`print_rows(cols, rows, fmt)`, `print_summary(summary)`); true when
    every file loaded."""
    from landfall.web import require
    from landfall.web.server import bind

    require()
    tmp = Path(tempfile.mkdtemp(prefix="landfall-demo-stream-"))
    settings = load_settings(init_stream_project(tmp))
    settings.serve.token = secrets.token_urlsafe(16)
    p = Pipeline(settings)
    served = bind(p, host="127.0.0.1", port=0)
    thread = served.start()
    if not on_pipe():
        console.rule("landfall demo --stream", style="bold")
    say(f"lake: {tmp / 'lake'}; landfall serve at {served.url} (stream `sales`: Firehose API, token as the AWS secret)")
    ok = True
    try:
        while not served.server.started:
            thread.join(0.01)
        client = firehose(served.url, served.token)
        for n, batch in enumerate(rounds(), 1):
            resp = put(client, batch)
            say("")
            say(
                (f"round {n}", "bold"),
                f": PutRecordBatch of {len(batch)} records, FailedPutCount {resp['FailedPutCount']}",
            )
            served.streams.flush()  # what the 1 s buffer interval would do a moment later
            summary = p.process()
            ok = ok and summary.ok
            print_summary(summary)
        say("")
        say(("raw files", "bold"), " (what the stream landed: JSON Lines by category and arrival hour; each one")
        say(
            "flattened into a Parquet file under staging/sales/, loaded into `sales_staging`, then merged into `sales`)"
        )
        raw = sorted(p.zones.landing.list("raw/sales"))
        lines = {k: p.zones.landing.read_bytes(k).splitlines() for k, _ in raw}
        table(("file", "records", "bytes"), [(k, num(len(lines[k])), num(i["size"])) for k, i in raw])
        first = lines[raw[0][0]][0].decode()
        say(("a raw record: ", "dim"), first[:160] + ("..." if len(first) > 160 else ""))
        for sql, note in (
            (
                "SELECT transaction_id, status, customer_name, customer_address_city AS city, product_category, "
                "quantity, total, updated_at FROM sales ORDER BY transaction_id LIMIT 10",
                "  (flattened; one row per transaction_id)",
            ),
            ("SELECT status, count(*) AS sales, round(sum(total), 2) AS revenue FROM sales GROUP BY 1 ORDER BY 1", ""),
            (
                "SELECT transaction_id, status, updated_at, _upstream_source_file FROM sales_staging "
                "WHERE transaction_id = 'T-1002' ORDER BY updated_at",
                "  (the staging table keeps every version)",
            ),
        ):
            say("")
            say(("landfall query", "bold"), f' "{sql}"{note}')
            cols, rows = p.query(sql)
            print_rows(cols, rows, "table")
        say("")
        say(("landfall tables history sales", "bold"), "  (each round upserted by key: a Delta version)")
        table(
            ("version", "operation", "rows +", "rows -"),
            [(str(v.version), v.operation, num(v.rows_added), num(v.rows_removed)) for v in p.history("sales")],
        )
    finally:
        served.stop()
        thread.join(30)
        p.close()
    if keep:
        say(f"\nkept: cd {tmp} && landfall tables show sales")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return ok
