"""A table whose rows depend on the table's (`overwrite`, `merge`, `unique` against the table) takes its files in
the order they landed, one job at a time, whatever the workers: with two workers the job that committed last
won, so an older snapshot replaced a newer one (half the time, two files landed together), an older file's row
won a merge's tie, and a later file's row kept the key `unique` gives the first."""

from __future__ import annotations

import pytest

from conftest import wf

LANDED = 1_700_000_000.0


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("mode", ["overwrite", "partitions", "merge", "unique"])
def test_files_commit_in_the_order_they_landed_with_two_workers(make_lake, fmt, mode):
    write: dict = {"table": "s", "format": fmt}
    validate = []
    if mode == "overwrite":
        write |= {"mode": "overwrite"}
    elif mode == "partitions":
        write |= {"mode": "overwrite", "overwrite": "partitions", "partition_by": ["day"]}
    elif mode == "merge":
        write |= {"mode": "merge", "keys": ["id"]}  # no `order_by`: the later file wins a tie
    else:
        validate = [{"unique": {"columns": ["id"], "against_table": True}, "action": "quarantine"}]
    lake = make_lake([wf("s", read={"format": "csv"}, write=write, validate=validate)], batch_files=1, workers=2)
    files = 6
    for i in range(files):  # names in the reverse order of landing: the order is when they landed
        lake.land(f"s/{files - 1 - i}.csv", f"id,v,day\n1,{i},1\n", mtime=LANDED + i)
    assert lake.process().ok
    newest, oldest = files - 1, 0
    want = oldest if mode == "unique" else newest
    assert lake.rows("SELECT id, v FROM s") == [(1, want)]
    if mode == "unique":
        assert sorted(lake.rows("SELECT v FROM quarantine.s")) == [(i,) for i in range(1, files)]
    runs = sorted(
        (r for r in lake.pipeline.runs(limit=None) if r.status == "succeeded"), key=lambda r: r.started_at or 0
    )
    assert [r.file_key for r in runs] == [f"s/{files - 1 - i}.csv" for i in range(files)]
    for before, after in zip(runs, runs[1:], strict=False):  # one job at a time
        assert before.finished_at <= after.started_at, (before.file_key, after.file_key)
