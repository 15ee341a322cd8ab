"""Nested JSON: flatten objects into columns, explode arrays into rows; seed 002's output from its input."""

from __future__ import annotations

import gzip
import json

import pyarrow.parquet as pq
import pytest

from conftest import wf

ORDERS = [
    {
        "order_id": "o1",
        "order_date": "2024-01-15",
        "total_amount": 59.97,
        "customer": {"customer_id": "c1", "name": "Ann Lee", "email": "ann@x.io", "address": "1 Main St"},
        "metadata": {"channel": "web", "tags": ["new", "promo"]},
        "products": [
            {"product_id": "p1", "name": "Hammer", "category": "tools", "price": 19.99, "quantity": 2},
            {"product_id": "p2", "name": "Rake", "category": "garden", "price": 20, "quantity": 1},
        ],
    },
    {
        "order_id": "o2",
        "order_date": "2024-01-16",
        "total_amount": 12,
        "customer": {"customer_id": "c2", "name": "Bo Chan", "email": "bo@x.io", "address": "2 Side Rd"},
        "metadata": {"channel": "app", "tags": []},
        "products": [{"product_id": "p3", "name": "Paint", "category": "paint", "price": 12.0, "quantity": 1}],
    },
    {
        "order_id": "o3",
        "order_date": "2024-01-17",
        "total_amount": 0.0,
        "customer": {"customer_id": "c3", "name": "Cy", "email": "cy@x.io", "address": "3 Loop"},
        "metadata": None,
        "products": [],
    },
]

SEED_002 = [  # the seed's output schema: column, Parquet/Arrow type
    ("order_id", "string"),
    ("order_date", "string"),
    ("total_amount", "double"),
    ("customer_id", "string"),
    ("customer_name", "string"),
    ("email", "string"),
    ("address", "string"),
    ("product_id", "string"),
    ("product_name", "string"),
    ("category", "string"),
    ("price", "double"),
    ("quantity", "int64"),
]

ORDERS_WF = wf(
    "orders",
    read={"format": "jsonl", "types": {"order_date": "string"}},
    transform=[
        {"flatten": {"separator": "_", "max_depth": 4, "keep_json": ["metadata"]}},
        {"explode": "products"},
        {
            "rename": {
                "customer_customer_id": "customer_id",
                "customer_email": "email",
                "customer_address": "address",
                "products_product_id": "product_id",
                "products_name": "product_name",
                "products_category": "category",
                "products_price": "price",
                "products_quantity": "quantity",
            }
        },
        {"drop": ["metadata"]},
    ],
    write={"table": "order_items"},
)


def test_seed_002_output_comes_out_of_its_input(make_lake):
    lake = make_lake([ORDERS_WF])
    lake.land("orders/day1.jsonl", "".join(json.dumps(o) + "\n" for o in ORDERS))
    assert lake.process().ok, lake.pipeline.runs()[0].error
    cols, rows = lake.pipeline.query(
        "SELECT * EXCLUDE (_source_file, _ingested_at, _run_id) FROM order_items ORDER BY order_id, product_id"
    )
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
    lake = make_lake(
        [
            wf(
                "n",
                read={"format": "json"},
                transform=[{"flatten": {"separator": "__", "max_depth": 1, "keep_json": ["meta"]}}],
            )
        ]
    )
    doc = [{"id": 1, "a": {"b": {"c": 5}, "x": 1}, "meta": {"k": [1, 2]}}]
    lake.land("n/a.json.gz", gzip.compress(json.dumps(doc).encode()))
    assert lake.process().ok, lake.pipeline.runs()[0].error
    cols, rows = lake.pipeline.query("SELECT id, a__b, a__x, meta FROM n")
    assert rows == [(1, '{"c":5}', 1, '{"k":[1,2]}')]
    assert dict(lake.pipeline.table("n").schema)["a__b"] == "string"


def test_explode_a_column_that_is_not_a_list_fails_clearly(make_lake):
    lake = make_lake([wf("e", read={"format": "jsonl"}, transform=[{"explode": "id"}], retry={"max_attempts": 1})])
    lake.land("e/a.jsonl", '{"id": 1}\n')
    lake.process()
    err = lake.pipeline.runs()[0].error
    assert "`e/a.jsonl`" in err and "step 1 (`explode`)" in err and "`id` is BIGINT, not a list" in err


# --- child tables ---------------------------------------------------------------------------------------------

CHILD_WF = wf(
    "orders",
    read={"format": "jsonl"},
    transform=[
        {"flatten": {"max_depth": 2}},
        {"child_tables": {"columns": ["products", "metadata_tags"], "key": "order_id"}},
    ],
    write={"table": "orders"},
)


def test_child_tables_link_rows_by_key_and_position(make_lake):
    lake = make_lake([CHILD_WF])
    lake.land("orders/day1.jsonl", "".join(json.dumps(o) + "\n" for o in ORDERS))
    assert lake.process().ok, lake.pipeline.runs()[0].error
    cols, rows = lake.pipeline.query("SELECT order_id, customer_name FROM orders ORDER BY order_id")
    assert rows == [("o1", "Ann Lee"), ("o2", "Bo Chan"), ("o3", "Cy")]  # one row per order
    assert "products" not in lake.pipeline.query("SELECT * FROM orders")[0]
    cols, rows = lake.pipeline.query(
        "SELECT * EXCLUDE (_ingested_at, _run_id) FROM orders__products ORDER BY order_id, _pos"
    )
    assert cols == ["order_id", "_pos", "product_id", "name", "category", "price", "quantity", "_source_file"]
    assert rows == [
        ("o1", 0, "p1", "Hammer", "tools", 19.99, 2, "orders/day1.jsonl"),
        ("o1", 1, "p2", "Rake", "garden", 20.0, 1, "orders/day1.jsonl"),
        ("o2", 0, "p3", "Paint", "paint", 12.0, 1, "orders/day1.jsonl"),
    ]
    assert lake.rows("SELECT order_id, _pos, value FROM orders__metadata_tags ORDER BY 1, 2") == [
        ("o1", 0, "new"),
        ("o1", 1, "promo"),
    ]
    # the join a user writes gives back seed 002's exploded rows
    assert lake.rows(
        "SELECT count(*), sum(p.price * p.quantity) FROM orders o JOIN orders__products p USING (order_id)"
    ) == [(3, 19.99 * 2 + 20 + 12)]
    tables = {t.name: t for t in lake.pipeline.tables()}
    assert tables["orders__products"].row_count == 3 and tables["orders__products"].workflow == "orders"
    run = lake.pipeline.runs()[0]
    assert (run.rows_in, run.rows_out) == (3, 3)


def test_child_tables_without_a_key_get_generated_row_ids(make_lake, monkeypatch):
    from landfall.tables.delta import DeltaTable

    listed = []  # a child commit read its table's whole file list each time (it grows with the table)
    real = DeltaTable.current_files
    monkeypatch.setattr(DeltaTable, "current_files", lambda self: listed.append(self.location) or real(self))
    lake = make_lake(
        [
            wf(
                "orders",
                read={"format": "jsonl"},
                transform=[{"child_tables": ["products"]}],
                write={"table": "orders", "format": "delta"},
            )
        ]
    )
    lake.land("orders/day1.jsonl", "".join(json.dumps(o) + "\n" for o in ORDERS))
    lake.land("orders/day2.jsonl", json.dumps({**ORDERS[0], "order_id": "o9"}) + "\n")
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    assert lake.rows("SELECT count(DISTINCT _row_id), count(*) FROM orders") == [(4, 4)]
    assert lake.rows(
        "SELECT o.order_id, p._pos, p.product_id, p._source_file FROM orders o "
        "JOIN orders__products p ON p._parent_row_id = o._row_id ORDER BY 1, 2"
    ) == [
        ("o1", 0, "p1", "orders/day1.jsonl"),
        ("o1", 1, "p2", "orders/day1.jsonl"),
        ("o2", 0, "p3", "orders/day1.jsonl"),
        ("o9", 0, "p1", "orders/day2.jsonl"),
        ("o9", 1, "p2", "orders/day2.jsonl"),
    ]
    assert not [loc for loc in listed if loc.endswith("orders__products")]


def test_children_of_rows_filtered_or_quarantined_are_not_written(make_lake):
    orders = [*ORDERS, {**ORDERS[1], "order_id": None}]
    lake = make_lake(
        [
            wf(
                "orders",
                read={"format": "jsonl"},
                transform=[
                    {"child_tables": {"columns": ["products"], "key": ["order_id"]}},
                    {"filter": "order_id IS NULL OR order_id <> 'o2'"},
                ],
                validate=[{"not_null": ["order_id"], "action": "quarantine"}],
                write={"table": "orders"},
            )
        ]
    )
    lake.land("orders/day1.jsonl", "".join(json.dumps(o) + "\n" for o in orders))
    assert lake.process().ok, lake.pipeline.runs()[0].error
    assert lake.rows("SELECT order_id FROM orders ORDER BY 1") == [("o1",), ("o3",)]
    assert lake.rows("SELECT order_id, product_id FROM orders__products ORDER BY 1, 2") == [("o1", "p1"), ("o1", "p2")]
    assert lake.rows("SELECT count(*) FROM quarantine.orders") == [(1,)]


def test_a_changed_file_replaces_its_child_rows(make_lake):
    lake = make_lake([CHILD_WF], batch_files=10)
    lake.land("orders/a.jsonl", json.dumps(ORDERS[0]) + "\n", mtime=1_700_000_000)
    lake.land("orders/b.jsonl", json.dumps(ORDERS[1]) + "\n", mtime=1_700_000_000)
    assert lake.process().ok
    assert lake.rows("SELECT _source_file, count(*) FROM orders__products GROUP BY 1 ORDER BY 1") == [
        ("orders/a.jsonl", 2),
        ("orders/b.jsonl", 1),
    ]
    changed = {**ORDERS[0], "products": ORDERS[0]["products"][:1]}
    lake.land("orders/a.jsonl", json.dumps(changed) + "\n", mtime=1_700_000_100)
    assert lake.process().ok
    assert lake.rows("SELECT _source_file, product_id FROM orders__products ORDER BY 1, 2") == [
        ("orders/a.jsonl", "p1"),
        ("orders/b.jsonl", "p3"),
    ]
    assert lake.rows("SELECT count(*) FROM orders") == [(2,)]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("elements", [None, []], ids=["empty", "no-elements"])
def test_a_changed_file_that_brings_no_child_rows_takes_its_earlier_ones_out(make_lake, fmt, elements):
    """A changed file whose new version is empty, or has no list elements, wrote nothing to the child table, so
    its earlier child rows stayed there (orphans of parent rows gone, still named as that file's). Found by
    tests/test_generated_modes.py."""
    lake = make_lake([{**CHILD_WF, "write": {**CHILD_WF["write"], "format": fmt}}])
    lake.land("orders/a.jsonl", json.dumps(ORDERS[0]) + "\n", mtime=1_700_000_000)
    lake.land("orders/b.jsonl", json.dumps(ORDERS[1]) + "\n", mtime=1_700_000_000)
    assert lake.process().ok
    changed = {**ORDERS[0], "products": elements, "metadata": {"channel": "web", "tags": elements}}
    lake.land("orders/a.jsonl", "" if elements is None else json.dumps(changed) + "\n", mtime=1_700_000_100)
    assert lake.process().ok
    assert lake.rows("SELECT _source_file, product_id FROM orders__products") == [("orders/b.jsonl", "p3")]
    assert lake.rows("SELECT count(*) FROM orders__metadata_tags") == [(0,)]  # b's order has no tags
    held = lake.rows("SELECT count(*) FROM orders WHERE _source_file = 'orders/a.jsonl'")
    assert held == [(0 if elements is None else 1,)]


@pytest.mark.parametrize(
    "columns, write, message",
    [
        ("[items]", "{table: o, mode: merge, keys: [id]}", "child_tables.*append"),
        ("[products.tags]", "{table: o}", "list `products` as a child table too"),
    ],
)
def test_child_tables_config_errors(tmp_path, columns, write, message):
    from landfall.config import load_settings
    from landfall.errors import ConfigError

    cfg = tmp_path / "landfall.yaml"
    cfg.write_text(
        f"workflows:\n  - name: o\n    match: o/\n    transform:\n      - child_tables: {columns}\n    write: {write}\n"
    )
    with pytest.raises(ConfigError, match=message):
        load_settings(str(cfg))


@pytest.mark.slow  # two 40 MiB records
def test_records_larger_than_duckdbs_default_buffer_load(make_lake):
    """DuckDB reads records up to ~32 MiB by default (a bigger buffer slows every read): a file with a bigger
    record is read again with a buffer to fit."""
    lake = make_lake([wf("j", read={"format": "jsonl"}), wf("d", read={"format": "json"})])
    big = {"id": 1, "nums": [12345678] * (4 << 20), "nested": {"a": [1, 2, 3]}}  # one 40 MiB record
    lake.land("j/big.jsonl", json.dumps(big) + "\n" + json.dumps({"id": 2, "nums": [1]}) + "\n")
    lake.land("d/big.json", json.dumps([big, {"id": 2, "nums": [1]}]))
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    assert lake.rows("SELECT id, len(nums) FROM j ORDER BY id") == [(1, 4 << 20), (2, 1)]
    assert lake.rows("SELECT id, len(nums) FROM d ORDER BY id") == [(1, 4 << 20), (2, 1)]


def test_child_tables_of_child_tables(make_lake):
    orders = [
        {"order_id": "o1", "products": [{"sku": "p1", "tags": ["new", "sale"]}, {"sku": "p2", "tags": []}]},
        {"order_id": "o2", "products": [{"sku": "p1", "tags": ["sale"]}]},
        {"order_id": "o3", "products": None},
    ]
    lines = "".join(json.dumps(o) + "\n" for o in orders)
    keyed = make_lake(
        [
            wf(
                "o",
                read={"format": "jsonl"},
                write={"table": "o"},
                transform=[{"child_tables": {"columns": ["products", "products.tags"], "key": "order_id"}}],
            )
        ]
    )
    keyed.land("o/a.jsonl", lines)
    assert keyed.process().ok, keyed.pipeline.runs()[0].error
    assert "tags" not in keyed.pipeline.query("SELECT * FROM o__products")[0]
    assert keyed.rows(
        "SELECT p.order_id, p.sku, t._pos, t.value FROM o__products p JOIN o__products__tags t "
        "ON t._parent_row_id = p._row_id ORDER BY 1, 2, 3"
    ) == [("o1", "p1", 0, "new"), ("o1", "p1", 1, "sale"), ("o2", "p1", 0, "sale")]
    assert keyed.rows("SELECT order_id, count(*) FROM o__products__tags GROUP BY 1 ORDER BY 1") == [
        ("o1", 2),
        ("o2", 1),
    ]  # the top row's key on every level

    generated = make_lake(
        [
            wf(
                "o",
                read={"format": "jsonl"},
                write={"table": "o"},
                transform=[{"child_tables": ["products", "products.tags"]}],
            )
        ]
    )
    generated.land("o/a.jsonl", lines)
    assert generated.process().ok, generated.pipeline.runs()[0].error
    assert generated.rows(
        "SELECT o.order_id, p.sku, t.value FROM o JOIN o__products p ON p._parent_row_id = o._row_id "
        "JOIN o__products__tags t ON t._parent_row_id = p._row_id AND t._root_row_id = o._row_id "
        "ORDER BY 1, 2, 3"
    ) == [("o1", "p1", "new"), ("o1", "p1", "sale"), ("o2", "p1", "sale")]
    assert "_root_row_id" not in generated.pipeline.query("SELECT * FROM o__products")[0]
