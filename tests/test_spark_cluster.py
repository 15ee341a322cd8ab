"""Seeds 000 and 003 end to end on a real Spark standalone cluster (a master and a worker the tests start from
pyspark's own launcher, on loopback), with the landed files on an S3 server (SeaweedFS, started by the tests).

The pyspark wheel carries no Hadoop S3 connector (no hadoop-aws jar), so Spark does not read `s3://` itself:
landfall's Storage makes a local copy of each landed file for the job, and the engine reads that. On one machine
the cluster's executors see those copies; a cluster on several hosts needs the job's scratch and staging folders
on storage every host mounts (see the README)."""

from __future__ import annotations

import json
from pathlib import Path

import deltalake
import pytest

from conftest import wf

pytestmark = [pytest.mark.spark, pytest.mark.s3, pytest.mark.slow]


def _on_cluster(cluster) -> dict:
    return {
        "engine": "spark",
        "spark": {"master": cluster.master_url, "conf": {"spark.executor.memory": "768m", "spark.cores.max": "1"}},
    }


def _ran_on(cluster) -> list[str]:
    """The applications the cluster's worker ran executors for (its work folder has one folder each)."""
    work = Path(cluster.workdir) / "work"
    return sorted(p.name for p in work.iterdir() if p.name.startswith("app-")) if work.exists() else []


def test_seed_000_csv_to_cleaned_parquet_with_a_status_table(make_lake, spark_cluster, s3_server, s3_bucket):
    """Seed 000: CSV files uploaded under a prefix; a Spark job renames columns, computes columns and writes
    Parquet; a status table says, per file, when its workflow started and finished and how it ended."""
    flow = wf(
        "orders",
        match="pre-workflow/orders/",
        read={"format": "csv"},
        transform=[
            {"rename": {"Order ID": "order_id", "Unit Price": "unit_price", "Qty": "quantity"}},
            {"compute": {"total": "unit_price * quantity", "order_month": "strftime(order_date, '%Y-%m')"}},
            {"filter": "quantity > 0"},
        ],
        write={"table": "orders", "partition_by": ["order_month"]},
    )
    lake = make_lake(
        [flow],
        zones={"landing": f"s3://{s3_bucket}/landing"},
        storage=s3_server.storage_settings(),
        **_on_cluster(spark_cluster),
    )
    client = s3_server.client()
    body = "Order ID,order_date,Unit Price,Qty,note\n"
    client.put_object(
        Bucket=s3_bucket,
        Key="landing/pre-workflow/orders/2024-01.csv",
        Body=(
            body + '1,2024-01-05,2.50,4,"first, with comma"\n2,2024-01-20,10,0,zero\n3,2024-01-31,1.25,2,\n'
        ).encode(),
    )
    client.put_object(
        Bucket=s3_bucket,
        Key="landing/pre-workflow/orders/2024-02.csv",
        Body=(body + '4,2024-02-02,3,3,"He said ""hi"""\n').encode(),
    )
    before = _ran_on(spark_cluster)
    summary = lake.process()
    assert summary.ok, [(o.run.file_key, o.error) for o in summary.outcomes]
    assert len(_ran_on(spark_cluster)) > len(before)  # executors of a new application ran on the worker
    assert lake.rows("SELECT order_id, order_month, total, note FROM orders ORDER BY order_id") == [
        (1, "2024-01", 10.0, "first, with comma"),
        (3, "2024-01", 2.5, None),
        (4, "2024-02", 9.0, 'He said "hi"'),
    ]
    status = lake.rows(
        "SELECT file_id, status, started_at <= finished_at, rows_in, rows_out FROM landfall.runs ORDER BY file_id"
    )
    assert status == [
        ("pre-workflow/orders/2024-01.csv", "succeeded", True, 3, 2),
        ("pre-workflow/orders/2024-02.csv", "succeeded", True, 1, 1),
    ]
    table = lake.pipeline.table("orders")
    assert dict(table.schema)["total"] == "double" and dict(table.schema)["order_id"] == "int64"


def _sales(round_: int) -> list[dict]:
    base = [
        {"transaction_id": "t1", "updated_at": "2024-05-01T10:00:00", "status": "new"},
        {"transaction_id": "t2", "updated_at": "2024-05-01T11:00:00", "status": "new"},
    ]
    later = {
        1: [{"transaction_id": "t1", "updated_at": "2024-05-02T09:00:00", "status": "shipped"}],
        2: [
            {"transaction_id": "t1", "updated_at": "2024-05-03T09:00:00", "status": "delivered"},
            {"transaction_id": "t2", "updated_at": "2024-05-01T08:00:00", "status": "stale"},  # older: loses
            {"transaction_id": "t3", "updated_at": "2024-05-03T10:00:00", "status": "new"},
        ],
    }
    rows = base if round_ == 0 else later[round_]
    for r in rows:
        n = int(r["transaction_id"][1:])
        r["product"] = {"name": f"tool {n}", "category": "hardware", "price": 10.0 * n}
        r["customer"] = {"id": f"c{n}", "address": {"city": "Oslo"}}
    return rows


def test_seed_003_json_records_flattened_and_merged_into_delta(make_lake, spark_cluster, s3_server, s3_bucket):
    """Seed 003: JSON records land in micro-batches; a Spark job flattens them and merges them into a Delta table
    by key (the latest update wins), on S3. Delta is committed through delta-rs: no delta-spark jars."""
    flow = wf(
        "sales",
        match="staging/sales/",
        read={"format": "jsonl"},
        transform=[{"flatten": {"separator": "_"}}, {"cast": {"updated_at": "timestamp"}}],
        write={
            "table": "sales",
            "format": "delta",
            "mode": "merge",
            "keys": ["transaction_id"],
            "order_by": "updated_at",
        },
    )
    lake = make_lake(
        [flow],
        zones={z: f"s3://{s3_bucket}/{z}" for z in ("landing", "tables", "quarantine")},
        storage=s3_server.storage_settings(),
        workers=1,
        **_on_cluster(spark_cluster),
    )
    client = s3_server.client()
    for round_ in range(3):
        body = "".join(json.dumps(r) + "\n" for r in _sales(round_))
        client.put_object(Bucket=s3_bucket, Key=f"landing/staging/sales/batch-{round_}.jsonl", Body=body.encode())
        summary = lake.process()
        assert summary.ok, [(o.run.file_key, o.error) for o in summary.outcomes]
    assert lake.rows(
        "SELECT transaction_id, status, product_name, product_price, customer_address_city FROM sales ORDER BY 1"
    ) == [
        ("t1", "delivered", "tool 1", 10.0, "Oslo"),
        ("t2", "new", "tool 2", 20.0, "Oslo"),
        ("t3", "new", "tool 3", 30.0, "Oslo"),
    ]
    options = {
        "AWS_ENDPOINT_URL": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3_server.key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret,
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
        "AWS_S3_ALLOW_UNSAFE_RENAME": "true",
    }
    dt = deltalake.DeltaTable(f"s3://{s3_bucket}/tables/sales", storage_options=options)
    assert dt.version() == 2  # one commit per landed batch
    got = sorted((r["transaction_id"], r["status"]) for r in dt.to_pyarrow_table().to_pylist())
    assert got == [("t1", "delivered"), ("t2", "new"), ("t3", "new")]
    assert len(dt.history()) == 3
