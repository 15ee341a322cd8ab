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


@pytest.mark.parametrize("upstream", ["hop", "table"])
def test_a_table_in_order_fed_through_a_hop_or_a_table_takes_rows_in_the_order_files_landed(make_lake, upstream):
    """raw -> hop files (or an `append` table) -> a `merge` table: the hop's files (the upstream table's runs)
    queue for the merge as they commit, so with two workers a later file that loaded faster reached the merge
    first, and an older row won (the oldest file, 10 of 10 tries, when it was the biggest)."""
    merge = {"format": "parquet", "mode": "merge", "keys": ["id"]}
    if upstream == "hop":
        first = wf("raw", write={"landing": "staging/", "format": "parquet"})
        then = wf("s", match="staging/", write={"table": "s", **merge})
    else:
        first = wf("raw", table="bronze")
        then = wf("s", write={"table": "s", **merge}, source={"table": "bronze"})
        del then["match"]
    lake = make_lake([first, then], batch_files=1, workers=2)
    files = 6
    for i in range(files):  # each even file, landed before the next, takes longer to load
        rows = "".join(f"{k},{i}\n" for k in range(20_000 if i % 2 == 0 else 1))
        lake.land(f"raw/{i}.csv", "id,v\n" + rows, mtime=LANDED + i)
    assert lake.process().ok
    assert lake.rows("SELECT v FROM s WHERE id = 0") == [(files - 1,)]
    assert lake.rows("SELECT count(*) FROM s") == [(20_000,)]
    raw = sorted((r for r in lake.pipeline.runs(workflow="raw", limit=None)), key=lambda r: r.started_at or 0)
    assert [r.file_key for r in raw] == [f"raw/{i}.csv" for i in range(files)]
    for before, after in zip(raw, raw[1:], strict=False):  # one job at a time
        assert before.finished_at <= after.started_at, (before.file_key, after.file_key)


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("mode", ["overwrite", "partitions", "merge"])
def test_a_snapshot_holding_what_an_older_one_held_is_the_newest(make_lake, fmt, mode):
    """An `overwrite` or `merge` table: day 3's file has day 1's bytes (a setting switched back). It was skipped as
    "same content as day1.csv", and the table kept day 2's rows. Each file of such a table is the table (its
    partitions, its keys' rows) as of when it landed, so a file under another name loads; the same file landed
    again (touched) is still the one file loaded once."""
    write = {"table": "s", "format": fmt, "mode": "overwrite"}
    if mode == "partitions":
        write |= {"overwrite": "partitions", "partition_by": ["region"]}
    elif mode == "merge":
        write |= {"mode": "merge", "keys": ["region"]}
    lake = make_lake([wf("s", read={"format": "csv"}, write=write)], workers=1)
    for i, body in enumerate(["id,region\n1,eu\n", "id,region\n2,eu\n", "id,region\n1,eu\n"]):
        lake.land(f"s/day{i + 1}.csv", body, mtime=LANDED + i)
        assert lake.process().ok
    assert lake.rows("SELECT id, _source_file FROM s") == [(1, "s/day3.csv")]
    lake.land("s/day3.csv", "id,region\n1,eu\n", mtime=LANDED + 10)
    assert lake.process().ok
    assert [r.status for r in lake.pipeline.runs(key="s/day3.csv")] == ["skipped", "succeeded"]
    assert lake.rows("SELECT id, _source_file FROM s") == [(1, "s/day3.csv")]
