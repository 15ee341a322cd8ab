"""Schema evolution per workflow: evolve, rescue, freeze, discard_row; hints."""

from __future__ import annotations

import json

import pytest

from conftest import wf


def lake_for(make_lake, evolution, hints=None):
    schema = {"evolution": evolution, **({"hints": hints} if hints else {})}
    return make_lake([wf("e", read={"format": "csv"}, schema=schema, retry={"max_attempts": 1})])


def first_then_second(lake):
    lake.land("e/1.csv", "id,amount\n1,10\n2,20\n", mtime=1_700_000_000)
    assert lake.process().ok
    lake.land("e/2.csv", "id,amount,extra\n3,abc,x\n4,40,\n", mtime=1_700_000_001)
    return lake.process()


def test_evolve_adds_columns_and_reads_old_rows_as_null(make_lake):
    lake = make_lake([wf("e", read={"format": "csv"}, retry={"max_attempts": 1})])
    lake.land("e/1.csv", "id,amount\n1,10\n", mtime=1_700_000_000)
    lake.process()
    lake.land("e/2.csv", "id,amount,extra\n2,2.5,x\n", mtime=1_700_000_001)
    assert lake.process().ok
    assert lake.rows("SELECT id, amount, extra FROM e ORDER BY id") == [(1, 10.0, None), (2, 2.5, "x")]
    versions = lake.pipeline.store.schema_versions("e")
    assert len(versions) == 2 and versions[1]["run_id"] == lake.pipeline.runs(key="e/2.csv")[0].run_id


def test_freeze_fails_a_differing_file_listing_every_difference(make_lake):
    lake = lake_for(make_lake, "freeze")
    first_then_second(lake)
    err = lake.pipeline.runs(key="e/2.csv")[0].error
    assert err == (
        "`e/2.csv`: the schema differs from table `e` (schema evolution: freeze): new column `extra` "
        "(VARCHAR); column `amount` is VARCHAR, the table has BIGINT"
    )
    assert lake.rows("SELECT count(*) FROM e") == [(2,)]


def test_rescue_keeps_what_does_not_fit_in_rescued_data(make_lake):
    lake = lake_for(make_lake, "rescue")
    assert first_then_second(lake).ok
    rows = lake.rows("SELECT id, amount, _rescued_data FROM e ORDER BY id")
    assert rows[:2] == [(1, 10, None), (2, 20, None)]
    assert rows[2][:2] == (3, None) and json.loads(rows[2][2]) == {"amount": "abc", "extra": "x", "_file": "e/2.csv"}
    assert rows[3][:2] == (4, 40) and rows[3][2] is None
    assert dict(lake.pipeline.table("e").schema)["amount"] == "int64"  # the table's type held


def test_discard_row_quarantines_rows_that_do_not_fit(make_lake):
    lake = lake_for(make_lake, "discard_row")
    assert first_then_second(lake).ok
    assert lake.rows("SELECT id, amount FROM e ORDER BY id") == [(1, 10), (2, 20), (4, 40)]
    q = lake.rows("SELECT id, _line, _rule, _reason FROM quarantine.e")
    assert q == [
        (3, 2, "schema", "does not fit the table's schema: `amount` is not BIGINT, `extra` is not a table column")
    ]
    assert lake.pipeline.runs(key="e/2.csv")[0].rows_quarantined == 1


@pytest.mark.parametrize("evolution", ["freeze", "rescue", "discard_row"])
def test_matching_files_load_under_every_policy(make_lake, evolution):
    lake = lake_for(make_lake, evolution, hints={"amount": "double"})
    lake.land("e/1.csv", "id,amount\n1,10\n", mtime=1_700_000_000)
    lake.land("e/2.csv", "id,amount\n2,2.5\n", mtime=1_700_000_001)
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    assert lake.rows("SELECT id, amount FROM e ORDER BY id") == [(1, 10.0), (2, 2.5)]
    assert dict(lake.pipeline.table("e").schema)["amount"] == "double"


@pytest.mark.parametrize("evolution", ["evolve", "rescue"])
def test_text_after_a_list_column_is_a_schema_conflict_or_rescued(make_lake, evolution):
    """`{"a": []}` makes `a` a list column; a later `{"a": "b"}` cannot be cast into it (before: DuckDB's
    'Malformed JSON ... when casting' text). Under `evolve` the file fails alone naming the column and both
    types; under `rescue` the value is kept in `_rescued_data`."""
    lake = make_lake([wf("j", read={"format": "json"}, schema={"evolution": evolution}, retry={"max_attempts": 1})])
    lake.land("j/1.json", '{"id": 1, "a": []}', mtime=1)
    assert lake.process().ok
    lake.land("j/2.json", '{"id": 2, "a": "b"}', mtime=2)
    result = lake.process()
    if evolution == "evolve":
        assert not result.ok
        assert lake.pipeline.runs(key="j/2.json")[0].error == (
            "`j/2.json`: column `a` is VARCHAR in this file but JSON[] in the table; "
            "cast it in a `cast:` step or change the table"
        )
        assert lake.rows("SELECT id FROM j") == [(1,)]
    else:
        assert result.ok
        rows = lake.rows("SELECT id, _rescued_data FROM j ORDER BY id")
        assert rows[0] == (1, None) and json.loads(rows[1][1]) == {"a": "b", "_file": "j/2.json"}


def test_rescue_a_file_whose_every_column_is_new(make_lake):
    """Under `rescue`, a file none of whose columns the table has keeps them all in `_rescued_data` (before: the
    engine built `SELECT , CASE ...` and the file failed with a parser error)."""
    lake = make_lake([wf("j", read={"format": "json"}, schema={"evolution": "rescue"}, retry={"max_attempts": 1})])
    lake.land("j/1.json", '{"id": 1}', mtime=1)
    assert lake.process().ok
    lake.land("j/2.json", '{"other": "x"}', mtime=2)
    assert lake.process().ok
    rows = lake.rows("SELECT id, _rescued_data FROM j ORDER BY id NULLS LAST")
    assert rows[0] == (1, None) and rows[1][0] is None
    assert json.loads(rows[1][1]) == {"other": "x", "_file": "j/2.json"}


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_two_files_that_make_one_new_table_at_once_agree_with_it(make_lake, monkeypatch, fmt):
    """Two files start a new table at the same moment, each typing a column its own way past its sample (text in
    one, dates in the other). The first commit makes the table; the second is refused (`ConcurrentChange`) and
    runs again against it, as if it had come later: its bad value is named by its line. Before, both committed,
    the catalog kept one file's types, and a query of the other's column failed (`date field value out of range:
    "2024-02-30"`) for the whole table."""
    import threading

    from landfall.tables.transaction import TableTransaction

    lake = make_lake([wf("t", batch=False, write={"table": "t", "format": fmt}, retry={"max_attempts": 1})])
    rows = [f"{i},2024-01-{i % 28 + 1:02d},{i * 1.5}" for i in range(1, 3000)]
    late_date, late_number = rows.copy(), rows.copy()
    late_date[2500] = "2501,2024-02-30,1.5"  # past the sample: this file's `day` is text
    late_number[2600] = "2601,2024-01-01,1.0.0"  # this file's `amount` is text
    lake.land("t/dates.csv", "id,day,amount\n" + "\n".join(late_date) + "\n")
    lake.land("t/numbers.csv", "id,day,amount\n" + "\n".join(late_number) + "\n")
    both = threading.Barrier(2, timeout=20)  # both jobs have written for a new table before either commits
    first_two = iter(range(2))
    real = TableTransaction.publish

    def publish(self, writer, files):
        if writer.location.endswith("/t") and next(first_two, None) is not None:  # not the retry
            both.wait()
        return real(self, writer, files)

    monkeypatch.setattr(TableTransaction, "publish", publish)
    summary = lake.process(workers=2)
    assert sorted(summary.count(s) for s in ("succeeded", "dead")) == [1, 1], lake.status()
    (dead,) = lake.pipeline.dead_letters()
    assert "line 2502" in dead.error or "line 2602" in dead.error, dead.error
    assert lake.rows("SELECT count(*), count(day), count(amount) FROM t") == [(2999, 2999, 2999)]


def test_a_delta_table_made_outside_landfall_is_written_to_not_waited_on(make_lake):
    """A Delta table at the table's folder that landfall's catalog does not have, and that no running run made
    (another program made it): a job writes to it as before, rather than waiting for a catalog commit that will
    never come (the wait above is only for a run between its log and catalog commits)."""
    import threading

    import deltalake
    import pyarrow as pa

    lake = make_lake([wf(n, write={"table": n, "format": "delta"}, retry={"max_attempts": 1}) for n in ("t", "u")])
    lake.land("u/a.csv", "id\n1\n")  # a lake with history: its catalog is not rebuilt from the folders
    assert lake.process().ok
    deltalake.write_deltalake(str(lake.root / "lake" / "tables" / "t"), pa.table({"id": pa.array([7], pa.int64())}))
    lake.land("t/a.csv", "id\n1\n2\n")
    done: list = []
    worker = threading.Thread(target=lambda: done.append(lake.process()), daemon=True)
    worker.start()
    worker.join(60)
    assert done, "process waited for a catalog commit that never comes"
    assert lake.status()["t/a.csv"] == "succeeded"
