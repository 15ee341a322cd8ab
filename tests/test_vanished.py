"""A landed file that is gone by the time it is leased: skipped with a note when a rename replaced it (a writer
that saves `x.csv.tmp` and renames it to `x.csv`), failed with a clear reason when it is simply gone."""

from __future__ import annotations

import os
import threading
import time

from landfall.events import ObjectCreated

from conftest import wf


def test_a_temporary_name_renamed_before_it_was_leased_is_skipped_not_dead(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})])
    tmp = lake.land("t/x.csv.tmp", "id\n1\n2\n")
    st = os.stat(tmp)
    lake.pipeline.submit([ObjectCreated("t/x.csv.tmp", size=st.st_size, mtime=st.st_mtime)])  # the watcher saw it
    os.rename(tmp, lake.landing / "t/x.csv")
    summary = lake.process()
    assert summary.ok and summary.count("skipped") == 1 and summary.count("succeeded") == 1
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    assert runs["t/x.csv.tmp"].status == "skipped"
    assert "renamed to `t/x.csv` before it was loaded" in runs["t/x.csv.tmp"].note
    assert lake.rows("SELECT count(*) FROM t") == [(2,)]


def test_a_file_deleted_before_it_was_leased_fails_with_a_clear_reason(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})])
    gone = lake.land("t/gone.csv", "id\n1\n")
    st = os.stat(gone)
    lake.pipeline.submit([ObjectCreated("t/gone.csv", size=st.st_size, mtime=st.st_mtime)])
    gone.unlink()
    (dead,) = lake.process().dead
    assert dead.error.startswith("`t/gone.csv`: gone from zone `landing` (") and dead.error.endswith(
        "/lake/landing) before it was loaded"
    )


def test_up_with_a_writer_that_renames_temporary_files_loses_and_kills_nothing(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})], settle_seconds=0.0)
    stop = threading.Event()
    t = threading.Thread(target=lake.pipeline.up, args=(stop,), kwargs={"workers": 2})
    t.start()
    try:
        for i in range(100):
            tmp = lake.land(f"t/f{i}.csv.tmp", f"id\n{i}\n")
            os.rename(tmp, lake.landing / f"t/f{i}.csv")
        deadline = time.time() + 60
        while time.time() < deadline:
            counts = lake.pipeline.store.counts()
            if counts["queued"] == counts["running"] == 0 and lake.status().get("t/f99.csv") == "succeeded":
                break
            time.sleep(0.2)
    finally:
        stop.set()
        t.join()
    statuses = lake.status()
    bad = [(r.file_key, r.status, r.error) for r in lake.pipeline.runs() if r.status in ("dead", "failed")]
    assert not bad, bad
    assert all(statuses[f"t/f{i}.csv"] == "succeeded" for i in range(100))
    assert all(s == "skipped" for k, s in statuses.items() if k.endswith(".tmp"))
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM t") == [(100, 100)]


def test_a_temporary_name_renamed_while_it_is_read_is_skipped_not_dead(make_lake, monkeypatch):
    # the rename comes after the file was leased and hashed, before the engine reads it (a local zone is read in
    # place): it used to go dead with "FileNotFoundError: ... x.csv.tmp"
    import landfall.runner

    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})])
    tmp = lake.land("t/x.csv.tmp", "id\n1\n2\n")
    st = os.stat(tmp)
    lake.pipeline.submit([ObjectCreated("t/x.csv.tmp", size=st.st_size, mtime=st.st_mtime)])  # the watcher saw it
    real = landfall.runner.run_job

    def renamed_meanwhile(*args, **kwargs):
        if tmp.exists():
            os.rename(tmp, lake.landing / "t/x.csv")
        return real(*args, **kwargs)

    monkeypatch.setattr(landfall.runner, "run_job", renamed_meanwhile)
    assert lake.process().ok
    run = lake.pipeline.runs(key="t/x.csv.tmp")[0]
    assert run.status == "skipped" and "renamed to `t/x.csv` before it was loaded" in run.note, run.error
    assert lake.process().ok and lake.rows("SELECT count(*) FROM t") == [(2,)]
