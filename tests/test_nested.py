"""Nested JSON: flatten objects into columns, explode arrays into rows; seed 002's output from its input."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq

from conftest import wf

ORDERS = [
    {"order_id": "o1", "order_date": "2024-01-15", "total_amount": 59.97,
     "customer": {"customer_id": "c1", "name": "Ann Lee", "email": "ann@x.io", "address": "1 Main St"},
     "metadata": {"channel": "web", "tags": ["new", "promo"]},
     "products": [{"product_id": "p1", "name": "Hammer", "category": "tools", "price": 19.99, "quantity": 2},
                  {"product_id": "p2", "name": "Rake", "category": "garden", "price": 20, "quantity": 1}]},
    {"order_id": "o2", "order_date": "2024-01-16", "total_amount": 12,
     "customer": {"customer_id": "c2", "name": "Bo Chan", "email": "bo@x.io", "address": "2 Side Rd"},
     "metadata": {"channel": "app", "tags": []},
     "products": [{"product_id": "p3", "name": "Paint", "category": "paint", "price": 12.0, "quantity": 1}]},
    {"order_id": "o3", "order_date": "2024-01-17", "total_amount": 0.0,
     "customer": {"customer_id": "c3", "name": "Cy", "email": "cy@x.io", "address": "3 Loop"},
     "metadata": None, "products": []},
]

SEED_002 = [  # the seed's output schema: column, Parquet/Arrow type
    ("order_id", "string"), ("order_date", "string"), ("total_amount", "double"), ("customer_id", "string"),
    ("customer_name", "string"), ("email", "string"), ("address", "string"), ("product_id", "string"),
    ("product_name", "string"), ("category", "string"), ("price", "double"), ("quantity", "int64"),
]

ORDERS_WF = wf("orders", read={"format": "jsonl", "types": {"order_date": "string"}}, transform=[
    {"flatten": {"separator": "_", "max_depth": 4, "keep_json": ["metadata"]}},
    {"explode": "products"},
    {"rename": {"customer_customer_id": "customer_id", "customer_email": "email", "customer_address": "address",
                "products_product_id": "product_id", "products_name": "product_name",
                "products_category": "category", "products_price": "price", "products_quantity": "quantity"}},
    {"drop": ["metadata"]},
], write={"table": "order_items"})


def test_seed_002_output_comes_out_of_its_input(make_lake):
    lake = make_lake([ORDERS_WF])
    lake.land("orders/day1.jsonl", "".join(json.dumps(o) + "\n" for o in ORDERS))
    assert lake.process().ok, lake.pipeline.runs()[0].error
    cols, rows = lake.pipeline.query("SELECT * EXCLUDE (_source_file, _ingested_at, _run_id) FROM order_items "
                                     "ORDER BY order_id, product_id")
    assert cols == [c for c, _ in SEED_002]
    assert rows == [
        ("o1", "2024-01-15", 59.97, "c1", "Ann Lee", "ann@x.io", "1 Main St", "p1", "Hammer", "tools", 19.99, 2),
        ("o1", "2024-01-15", 59.97, "c1", "Ann Lee", "ann@x.io", "1 Main St", "p2", "Rake", "garden", 20.0, 1),
        ("o2", "2024-01-16", 12.0, "c2", "Bo Chan", "bo@x.io", "2 Side Rd", "p3", "Paint", "paint", 12.0, 1),
        ("o3", "2024-01-17", 0.0, "c3", "Cy", "cy@x.io", "3 Loop", None, None, None, None, None),  # no products
    ]
    files = list((lake.root / "lake/tables/order_items").rglob("*.parquet"))
    schema = pq.read_schema(files[0])
    assert [(f.name, str(f.type)) for f in schema if not f.name.startswith("_")] == SEED_002
    run = lake.pipeline.runs()[0]
    assert (run.rows_in, run.rows_out) == (3, 4)


def test_keep_json_and_depth_limit(make_lake):
    lake = make_lake([wf("n", read={"format": "json"},
                         transform=[{"flatten": {"separator": "__", "max_depth": 1, "keep_json": ["meta"]}}])])
    doc = [{"id": 1, "a": {"b": {"c": 5}, "x": 1}, "meta": {"k": [1, 2]}}]
    lake.land("n/a.json.gz", gzip.compress(json.dumps(doc).encode()))
    assert lake.process().ok, lake.pipeline.runs()[0].error
    cols, rows = lake.pipeline.query("SELECT id, a__b, a__x, meta FROM n")
    assert rows == [(1, '{"c":5}', 1, '{"k":[1,2]}')]
    assert dict(lake.pipeline.table("n").schema)["a__b"] == "VARCHAR"


def test_explode_a_column_that_is_not_a_list_fails_clearly(make_lake):
    lake = make_lake([wf("e", read={"format": "jsonl"}, transform=[{"explode": "id"}],
                         retry={"max_attempts": 1})])
    lake.land("e/a.jsonl", '{"id": 1}\n')
    lake.process()
    err = lake.pipeline.runs()[0].error
    assert "`e/a.jsonl`" in err and "step 1 (`explode`)" in err and "`id` is BIGINT, not a list" in err
