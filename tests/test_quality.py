"""Data-quality rules: fail, quarantine, warn; quarantined rows are queryable with file, line, rule and reason."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from landfall.cli import main

from conftest import wf

RULES = [
    {"not_null": ["order_id"], "action": "quarantine"},
    {"range": {"column": "price", "min": 0}, "action": "quarantine"},
    {"regex": {"column": "email", "pattern": "^[^@]+@[^@]+$"}, "action": "quarantine"},
    {"accepted_values": {"column": "category", "values": ["tools", "garden", "paint"]}, "action": "warn"},
    {"expect": "quantity BETWEEN 1 AND 100", "action": "quarantine"},
    {"unique": ["order_id", "product_id"], "action": "fail"},
    {"row_count": {"min": 1}, "action": "fail"},
]
HEADER = "order_id,product_id,price,email,category,quantity\n"


def lake_with(make_lake, rules=RULES):
    return make_lake(
        [
            wf(
                "orders",
                read={"format": "csv", "types": {"order_id": "string"}},
                validate=rules,
                retry={"max_attempts": 1},
            )
        ]
    )


def test_bad_rows_are_quarantined_good_rows_written_and_counted(make_lake):
    lake = lake_with(make_lake)
    lake.land(
        "orders/a.csv",
        HEADER + "o1,p1,10.0,a@x.io,tools,2\n"  # line 2: good
        ",p2,5.0,b@x.io,garden,1\n"  # line 3: null order_id
        "o3,p3,-1.0,c@x.io,paint,1\n"  # line 4: negative price
        "o4,p4,3.0,not-an-email,tools,1\n"  # line 5: bad email
        "o5,p5,3.0,e@x.io,toys,1\n"  # line 6: category not accepted -> warned, still written
        "o6,p6,3.0,f@x.io,tools,500\n",
    )  # line 7: quantity out of bounds
    summary = lake.process()
    assert summary.ok, [r.error for r in lake.pipeline.runs()]
    assert lake.rows("SELECT order_id FROM orders ORDER BY 1") == [("o1",), ("o5",)]
    cols, rows = lake.pipeline.query(
        "SELECT _source_file, _line, _rule, _column, _reason, order_id FROM quarantine.orders ORDER BY _line"
    )
    assert rows == [
        ("orders/a.csv", 3, "not_null(order_id)", "order_id", "missing value (null)", None),
        ("orders/a.csv", 4, "range(price)", "price", "out of range >= 0", "o3"),
        ("orders/a.csv", 5, "regex(email)", "email", "does not match ^[^@]+@[^@]+$", "o4"),
        ("orders/a.csv", 7, "expect(quantity BETWEEN 1 AND 100)", "", "expected quantity BETWEEN 1 AND 100", "o6"),
    ]
    run = lake.pipeline.runs()[0]
    assert (run.rows_in, run.rows_out, run.rows_quarantined) == (6, 2, 4)
    assert run.quality["accepted_values(category)"] == {"action": "warn", "violations": 1}
    assert run.quality["not_null(order_id)"] == {"action": "quarantine", "violations": 1}
    assert run.quality["unique(order_id,product_id)"] == {"action": "fail", "violations": 0}
    doc = json.loads(CliRunner().invoke(main, ["--config", str(lake.config), "runs", "--json"]).output)[0]
    assert doc["rows_quarantined"] == 4 and doc["quality"]["regex(email)"]["violations"] == 1
    out = CliRunner().invoke(
        main, ["--config", str(lake.config), "query", "SELECT count(*) AS n FROM quarantine.orders", "--format", "json"]
    )
    assert json.loads(out.output) == [{"n": 4}]


def test_a_fail_rule_fails_the_file_naming_rule_count_and_line(make_lake):
    lake = lake_with(make_lake)
    lake.land(
        "orders/dup.csv", HEADER + "o1,p1,1.0,a@x.io,tools,1\no2,p1,1.0,a@x.io,tools,1\no1,p1,2.0,a@x.io,tools,1\n"
    )
    lake.land("orders/fine.csv", HEADER + "o9,p9,1.0,z@x.io,tools,1\n")
    lake.process()
    assert lake.rows("SELECT order_id FROM orders") == [("o9",)]  # nothing of the failed file is written
    err = lake.pipeline.runs(key="orders/dup.csv")[0].error
    assert err == "`orders/dup.csv` line 2: rule `unique(order_id,product_id)` failed for 2 of 3 rows (action: fail)"


def test_row_count_and_unknown_rule_columns(make_lake):
    lake = lake_with(make_lake, [{"row_count": {"min": 2}}, {"not_null": "nope", "action": "warn"}])
    lake.land("orders/one.csv", HEADER + "o1,p1,1.0,a@x.io,tools,1\n")
    lake.process()
    err = lake.pipeline.runs()[0].error
    assert "rule `not_null(nope)`: no column `nope`" in err
    lake2 = lake_with(make_lake, [{"row_count": {"min": 2}}])
    lake2.land("orders/one.csv", HEADER + "o1,p1,1.0,a@x.io,tools,1\n")
    lake2.process()
    assert lake2.pipeline.runs()[0].error == "`orders/one.csv`: rule `row_count` failed: 1 rows, expected at least 2"


def test_unique_against_the_table(make_lake):
    lake = make_lake(
        [
            wf(
                "u",
                read={"format": "csv"},
                retry={"max_attempts": 1},
                validate=[{"unique": {"columns": ["id"], "against_table": True}, "action": "quarantine"}],
            )
        ]
    )
    lake.land("u/1.csv", "id,v\n1,a\n2,b\n", mtime=1_700_000_000)
    lake.process()
    lake.land("u/2.csv", "id,v\n2,again\n3,c\n", mtime=1_700_000_001)
    assert lake.process().ok
    assert lake.rows("SELECT id FROM u ORDER BY id") == [(1,), (2,), (3,)]
    assert lake.rows("SELECT id, v, _line FROM quarantine.u") == [(2, "again", 2)]


def test_a_changed_file_replaces_its_quarantined_rows_too(make_lake):
    """A corrected file's old bad rows leave the quarantine with its old rows (a replay would otherwise load a
    version's row its file no longer has); another file's quarantined rows in the same quarantine file stay."""
    rule = {"range": {"column": "amount", "min": 0}, "action": "quarantine"}
    lake = make_lake([wf("q", read={"format": "csv"}, validate=[rule])], workers=1)
    lake.land("q/a.csv", "id,amount\n1,10\n2,-20\n", mtime=1_700_000_000)
    lake.land("q/b.csv", "id,amount\n3,-30\n", mtime=1_700_000_000)
    assert lake.process().ok
    assert lake.rows("SELECT id, _source_file FROM quarantine.q ORDER BY id") == [(2, "q/a.csv"), (3, "q/b.csv")]
    lake.land("q/a.csv", "id,amount\n1,10\n2,20\n", mtime=1_700_000_001)
    assert lake.process().ok
    assert lake.rows("SELECT id, amount FROM q ORDER BY id") == [(1, 10), (2, 20)]
    assert lake.rows("SELECT id, _source_file FROM quarantine.q ORDER BY id") == [(3, "q/b.csv")]
    lake.land("q/b.csv", "id,amount\n", mtime=1_700_000_002)  # now empty: its quarantined row goes too
    assert lake.process().ok
    assert lake.rows("SELECT count(*) FROM quarantine.q") == [(0,)]


def test_quarantine_replay_loads_exactly_the_rows_that_now_pass_once(make_lake):
    lake = make_lake(
        [
            wf(
                "p",
                read={"format": "csv"},
                retry={"max_attempts": 1},
                validate=[
                    {"range": {"column": "price", "min": 0}, "action": "quarantine"},
                    {"not_null": ["id"], "action": "quarantine"},
                ],
            )
        ]
    )
    lake.land("p/a.csv", "id,price\n1,5\n2,-1\n3,-2\n,7\n")
    assert lake.process().ok
    assert lake.rows("SELECT count(*) FROM quarantine.p") == [(3,)]
    # the workflow was wrong about prices: negative ones are refunds
    text = lake.config.read_text().replace("min: 0", "min: -5")
    lake.config.write_text(text)
    lake.close()
    lake._pipeline = None
    out = CliRunner().invoke(main, ["--config", str(lake.config), "quarantine", "replay", "p"])
    assert out.exit_code == 0, out.output
    assert "2 rows loaded from quarantine; 1 still quarantined" in out.output
    assert lake.rows("SELECT id, price, _source_file FROM p ORDER BY id") == [
        (1, 5, "p/a.csv"),
        (2, -1, "p/a.csv"),
        (3, -2, "p/a.csv"),
    ]
    assert lake.rows("SELECT id, price, _rule FROM quarantine.p") == [(None, 7, "not_null(id)")]
    again = CliRunner().invoke(main, ["--config", str(lake.config), "quarantine", "replay", "p"])
    assert "0 rows loaded" in again.output  # once
    assert lake.rows("SELECT count(*) FROM p") == [(3,)]


@pytest.mark.parametrize(
    "engine",
    ["duckdb", pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])],
)
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_quarantine_replay_into_a_merge_table_merges_by_key(make_lake, engine, fmt):
    """A replay appended the rows that now pass, so a merge table held their keys twice (a stale quarantined
    version beside the newer row a later file brought). Now they are merged as loaded when their file was: a
    later file's row for the key stays, a row quarantined from a later file wins, `order_by` decides first."""
    if engine == "spark":
        from spark_helpers import SPARK, java_or_skip

        java_or_skip()
    rules = [{"range": {"column": "amount", "min": 0}, "action": "quarantine"}]

    def run(files, order_by=None):
        write = {"table": "s", "format": fmt, "mode": "merge", "keys": ["id"]}
        flow = wf(
            "s", read={"format": "csv"}, validate=rules, write=write | ({"order_by": order_by} if order_by else {})
        )
        lake = make_lake([flow], engine=engine, workers=1, **({"spark": SPARK} if engine == "spark" else {}))
        for i, (key, body) in enumerate(files):  # one after the other: each file's own load time
            lake.land(key, body, mtime=1_700_000_000 + i)
            assert lake.process().ok
        done = replay_with(lake, engine, "s", "min: 0", "min: -100")
        assert (done.replayed, done.still_quarantined) == (1, 0)
        assert lake.rows("SELECT count(*) FROM quarantine.s") == [(0,)]
        return lake.rows("SELECT id, amount, _source_file FROM s ORDER BY id")

    stale_first = [("s/a.csv", "id,amount,v\n1,-5,2\n2,3,1\n"), ("s/b.csv", "id,amount,v\n1,10,1\n")]
    assert run(stale_first) == [(1, 10, "s/b.csv"), (2, 3, "s/a.csv")]
    assert run(stale_first, order_by="v") == [(1, -5, "s/a.csv"), (2, 3, "s/a.csv")]
    later = [("s/b.csv", "id,amount\n1,10\n"), ("s/a.csv", "id,amount\n1,-5\n2,3\n")]
    assert run(later) == [(1, -5, "s/a.csv"), (2, 3, "s/a.csv")]


# --- rows that cannot be parsed (`read.bad_rows: quarantine`) ---------------------------------------------------


def test_unparseable_csv_rows_go_to_quarantine_with_line_and_reason(make_lake):
    lake = make_lake(
        [wf("s", read={"format": "csv", "bad_rows": "quarantine", "types": {"amount": "int"}})], batch_files=10
    )
    lake.land("s/a.csv", "id,name,amount\n1,a,10\n2,b,notanumber\n3,c,30\n4,d,40,extra\n5,e,50\n")
    lake.land("s/b.csv", "id,name,amount\n6,f,60\n7,g\n")
    lake.land("s/c.csv", "id,name,amount\n8,h,80\n")
    assert lake.process().ok
    assert lake.rows("SELECT id, name FROM s ORDER BY id") == [(1, "a"), (3, "c"), (5, "e"), (6, "f"), (8, "h")]
    assert lake.rows(
        "SELECT _source_file, _line, _rule, _column, _raw, _reason LIKE '%Expected Number of Columns%' "
        "FROM quarantine.s ORDER BY _source_file, _line"
    ) == [
        ("s/a.csv", 3, "parse", "amount", "2,b,notanumber", False),
        ("s/a.csv", 5, "parse", None, "4,d,40,extra", True),
        ("s/b.csv", 3, "parse", "amount", "7,g", True),
    ]
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    assert [(runs[k].rows_in, runs[k].rows_out, runs[k].rows_quarantined) for k in ("s/a.csv", "s/b.csv")] == [
        (5, 3, 2),
        (2, 1, 1),
    ]
    assert runs["s/a.csv"].quality == {"parse": {"action": "quarantine", "violations": 2}}
    assert not runs["s/c.csv"].rows_quarantined
    # a replay cannot load text that does not parse: those rows wait for a fixed file
    out = CliRunner().invoke(main, ["--config", str(lake.config), "quarantine", "replay", "s"])
    assert out.exit_code == 0 and "0 rows loaded" in out.output, out.output
    assert lake.rows("SELECT count(*) FROM quarantine.s") == [(3,)]


def test_without_bad_rows_quarantine_an_unparseable_row_fails_its_file_naming_the_line(make_lake):
    lake = make_lake([wf("s", read={"format": "csv", "types": {"amount": "int"}}, retry={"max_attempts": 1})])
    lake.land("s/a.csv", "id,amount\n1,10\n2,x\n")
    assert not lake.process().ok
    err = lake.pipeline.runs()[0].error
    assert "s/a.csv" in err and "line 3" in err, err


def test_unparseable_json_lines_go_to_quarantine(make_lake):
    lake = make_lake([wf("j", read={"format": "jsonl", "bad_rows": "quarantine"}, transform=[{"explode": "items"}])])
    lake.land("j/a.jsonl", '{"id": 1, "items": [1, 2]}\n{"id": 2, "items": [3]\n\n[1, 2]\n{"id": 3, "items": []}\n')
    lake.land("j/b.jsonl", '{"id": 4, "items": [5]}\n')
    assert lake.process().ok
    assert lake.rows("SELECT id, items FROM j ORDER BY id, items") == [(1, 1), (1, 2), (3, None), (4, 5)]
    assert lake.rows("SELECT _source_file, _line, _raw, _reason FROM quarantine.j ORDER BY _line") == [
        ("j/a.jsonl", 2, '{"id": 2, "items": [3]', "invalid JSON: Expecting ',' delimiter (column 23)"),
        ("j/a.jsonl", 4, "[1, 2]", "an array, not a record (an object)"),
    ]
    run = next(r for r in lake.pipeline.runs() if r.file_key == "j/a.jsonl")
    assert (run.rows_in, run.rows_out, run.rows_quarantined) == (4, 3, 2)


def test_rule_violations_keep_their_file_line_after_rows_set_aside_as_unparseable(make_lake):
    rule = [{"range": {"column": "amount", "min": 0}, "action": "quarantine"}]
    lake = make_lake(
        [
            wf("s", read={"format": "csv", "bad_rows": "quarantine", "types": {"amount": "int"}}, validate=rule),
            wf("j", read={"format": "jsonl", "bad_rows": "quarantine"}, validate=rule),
            wf(
                "f",
                read={"format": "csv", "bad_rows": "quarantine", "types": {"amount": "int"}},
                retry={"max_attempts": 1},
                validate=[{"range": {"column": "amount", "min": 0}, "action": "fail"}],
            ),
        ]
    )
    lake.land("s/a.csv", "id,amount\n1,10\n2,x\n3,-1\n4,40,extra\n5,y\n6,-6\n")
    lake.land(
        "j/a.jsonl", '{"id": 1, "amount": 1}\n\n{"id": 2\n{"id": 3, "amount": -3}\n[]\n\n{"id": 4, "amount": -4}\n'
    )
    lake.land("f/a.csv", "id,amount\n1,10\n2,x\n3,y\n4,-4\n")
    lake.process()
    assert lake.rows("SELECT _line, _rule FROM quarantine.s ORDER BY _line") == [
        (3, "parse"),
        (4, "range(amount)"),
        (5, "parse"),
        (6, "parse"),
        (7, "range(amount)"),
    ]
    assert lake.rows("SELECT _line, _rule FROM quarantine.j ORDER BY _line") == [
        (3, "parse"),
        (4, "range(amount)"),
        (5, "parse"),
        (7, "range(amount)"),
    ]
    err = next(r for r in lake.pipeline.runs() if r.file_key == "f/a.csv").error
    assert "f/a.csv` line 5" in err, err


def test_json_lines_rule_violations_name_their_line(make_lake):
    lake = make_lake([wf("j", read={"format": "jsonl"}, validate=[{"not_null": ["name"], "action": "quarantine"}])])
    lake.land("j/a.jsonl", '{"id": 1, "name": "a"}\n{"id": 2, "name": null}\n{"id": 3, "name": "c"}\n{"id": 4}\n')
    assert lake.process().ok
    assert lake.rows("SELECT id, _line FROM quarantine.j ORDER BY id") == [(2, 2), (4, 4)]


def test_lines_stay_exact_when_quoted_values_span_lines(make_lake):
    lake = make_lake(
        [
            wf(
                "q",
                read={"format": "csv"},
                validate=[{"range": {"column": "amount", "min": 0}, "action": "quarantine"}],
            ),
            wf(
                "f",
                read={"format": "csv"},
                retry={"max_attempts": 1},
                validate=[{"range": {"column": "amount", "min": 0}, "action": "fail"}],
            ),
        ]
    )
    body = 'id,note,amount\n1,"two\nlines",5\n2,plain,-1\n\n3,"three\nlines\nhere",7\n4,"x",-4\n'
    lake.land("q/a.csv", body)
    lake.land("f/a.csv", body)
    lake.process()
    assert lake.rows("SELECT id, _line FROM quarantine.q ORDER BY id") == [(2, 4), (4, 9)]
    err = next(r for r in lake.pipeline.runs() if r.file_key == "f/a.csv").error
    assert "f/a.csv` line 4" in err, err


@pytest.mark.parametrize(
    "engine",
    ["duckdb", pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])],
)
def test_a_quarantine_holds_text_set_aside_from_a_number_column_and_replays_what_fits(make_lake, engine):
    """Rows set aside with a number in `n`, then one with text there: the quarantine's `n` stayed BIGINT in the
    catalog, and every query of `quarantine.q` failed (`Could not convert string 'x' to INT64`); a replay failed
    blaming a file named `(quarantine)`. Now the column is text, and a replay loads the rows that pass the rules
    and fit the table, and keeps the others saying why (`_rule` `schema`)."""
    settings = {}
    if engine == "spark":
        from spark_helpers import SPARK, java_or_skip

        java_or_skip()
        settings = {"spark": SPARK}
    rules = [{"expect": "id > 0", "action": "quarantine"}]
    lake = make_lake([wf("q", read={"format": "csv"}, validate=rules)], engine=engine, workers=1, **settings)
    lake.land("q/1.csv", "id,n\n1,10\n-2,20\n", mtime=1_700_000_000)
    assert lake.process().ok
    lake.land("q/2.csv", "id,n\n3,30\n-1,x\n", mtime=1_700_000_001)
    assert lake.process().ok
    assert lake.rows("SELECT id, n FROM quarantine.q ORDER BY id") == [(-2, "20"), (-1, "x")]
    done = replay_with(lake, engine, "q", "id > 0", "id > -5")
    assert (done.replayed, done.still_quarantined) == (1, 1)
    assert lake.rows("SELECT id, n FROM q ORDER BY id") == [(-2, 20), (1, 10), (3, 30)]
    assert lake.rows("SELECT id, n, _rule, _column, _reason FROM quarantine.q") == [
        (-1, "x", "schema", "n", "does not fit the table's schema: `n` is not BIGINT")
    ]


def replay_with(lake, engine: str, table: str, rule: str, relaxed: str):
    """Relax a rule in the lake's landfall.yaml (`rule` -> `relaxed`), then replay `table`'s quarantine on `engine`
    in a new pipeline."""
    from landfall.engines import open_engine
    from landfall.quarantine import replay

    lake.config.write_text(lake.config.read_text().replace(rule, relaxed))
    lake.close()
    lake._pipeline = None
    p = lake.pipeline
    runner = open_engine(engine, p.settings)
    try:
        return replay(p.settings, p.store, runner, table, zones=p.zones)
    finally:
        runner.close()
