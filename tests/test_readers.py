"""Files a commit replaces stay while a reader that began before the commit holds its lease; recovery's sweep
deletes them once no reader of the table is left."""

from __future__ import annotations

import duckdb

from landfall.tables.readers import readers_of, reading

from conftest import wf


def test_a_replaced_file_stays_for_a_reader_and_goes_after_it(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"})])
    lake.land("t/a.csv", "id\n1\n2\n")
    assert lake.process().ok
    store = lake.pipeline.store
    old = [f"{lake.root}/lake/tables/t/{f.path}" for f in store.table_files("t")]
    with reading(store, ["t"]) as lease:
        assert readers_of(store, "t") == 1 and readers_of(store, "t", mine=lease) == 0
        lake.land("t/a.csv", "id\n3\n")  # a new version: its commit replaces the file the reader listed
        assert lake.process().ok
        assert duckdb.sql(f"SELECT count(*) FROM read_parquet({old})").fetchall() == [(2,)]  # still readable
        assert lake.rows("SELECT id FROM t") == [(3,)]  # new readers see the new list
    assert readers_of(store, "t") == 0
    lake.process()  # recovery: nobody reads `t` now
    on_disk = sorted(p.name for p in (lake.root / "lake/tables/t").rglob("*.parquet"))
    assert on_disk == sorted(f.path for f in store.table_files("t"))


def test_two_readers_that_begin_in_the_same_millisecond_hold_two_leases(make_lake, monkeypatch):
    """Two readers of one process beginning in the same millisecond (a query and a compaction's own read): the
    one that ends first no longer ends the other's lease. Before, both had one name, and the first to end
    deleted it, leaving the other's files to a vacuum (a one-in-ten failure of the vacuum test below)."""
    lake = make_lake([wf("t", read={"format": "csv"})])
    store = lake.pipeline.store
    monkeypatch.setattr(store, "now", lambda: 1_800_000_000.0)  # one millisecond for both
    with reading(store, ["t"]) as outer:
        with reading(store, ["t"]) as inner:
            assert inner != outer and readers_of(store, "t") == 2
        assert readers_of(store, "t") == 1 and outer in store.holders()
    assert readers_of(store, "t") == 0


def test_a_replaced_file_goes_at_once_when_nobody_reads(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"})])
    lake.land("t/a.csv", "id\n1\n")
    assert lake.process().ok
    with reading(lake.pipeline.store, ["other"]):  # a reader of another table does not hold `t`'s files
        lake.land("t/a.csv", "id\n2\n")
        assert lake.process().ok
        on_disk = sorted(p.name for p in (lake.root / "lake/tables/t").rglob("*.parquet"))
        assert on_disk == sorted(f.path for f in lake.pipeline.store.table_files("t"))


def test_a_reader_killed_mid_read_holds_nothing(make_lake):
    import os
    import signal
    import subprocess
    import sys

    lake = make_lake([wf("t", read={"format": "csv"})])
    lake.land("t/a.csv", "id\n1\n")
    assert lake.process().ok
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from landfall import Pipeline\n"
            "from landfall.tables.readers import reading\n"
            f"p = Pipeline({str(lake.config)!r})\n"
            "with reading(p.store, ['t']):\n"
            "    print('reading', flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert reader.stdout.readline().strip() == "reading"
        assert readers_of(lake.pipeline.store, "t") == 1
    finally:
        reader.send_signal(signal.SIGKILL)
        reader.wait()
    assert readers_of(lake.pipeline.store, "t") == 0  # its lease has not expired, but its process is gone
    lake.land("t/a.csv", "id\n2\n")
    assert lake.process().ok
    on_disk = sorted(p.name for p in (lake.root / "lake/tables/t").rglob("*.parquet"))
    assert on_disk == sorted(f.path for f in lake.pipeline.store.table_files("t"))
