"""One commit sequence (`landfall.tables.transaction`): compaction and quarantine replay killed with kill -9 at each
step of it lose nothing and duplicate nothing, for Parquet and Delta, as runs already do (test_up, test_delta)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from landfall.testing.faults import POINTS

from conftest import REPO, wf

pytestmark = pytest.mark.slow

STEPS = ["after_write", "after_publish", "after_table_commit", "after_commit"]
assert set(STEPS) <= set(POINTS)


def landfall(lake, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("LANDFALL_CRASH_AT", None)
    if crash_at:
        env["LANDFALL_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def consistent(lake, table: str, fmt: str) -> None:
    """The catalog, the table's folder and (Delta) its log agree."""
    p = lake.pipeline
    listed = {f.path for f in p.store.table_files(table)}
    folder = lake.root / "lake" / "tables" / table
    on_disk = {str(f.relative_to(folder)) for f in folder.rglob("*.parquet") if "_staging" not in f.parts}
    assert listed <= on_disk
    if fmt == "parquet":
        assert on_disk == listed  # nothing left over, nothing missing
        return
    import deltalake

    dt = deltalake.DeltaTable(str(folder))
    assert set(dt.file_uris()) == {str(folder / p) for p in listed}
    assert not list((folder / "_landfall" / "pending").glob("*.json")) if (folder / "_landfall").exists() else True
    assert dt.to_pyarrow_table().num_rows == lake.rows(f"SELECT count(*) FROM {table}")[0][0]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("point", STEPS)
def test_kill_9_during_compaction(make_lake, fmt, point):
    lake = make_lake(
        [wf("s", read={"format": "csv"}, batch=False, write={"table": "s", "format": fmt})],
        batch_files=1,
        lease_seconds=2,
    )
    for i in range(6):
        lake.land(f"s/{i}.csv", "id\n" + "".join(f"{i * 10 + j}\n" for j in range(10)))
    assert lake.process().ok
    lake.close()
    out = landfall(lake, "tables", "optimize", "s", "--min-files", "2", crash_at=point)
    assert out.returncode == -signal.SIGKILL, out.stdout + out.stderr
    time.sleep(2.5)  # the killed compaction's lease runs out
    out = landfall(lake, "process")  # recovery: a commit the log has is recorded; leftovers are swept
    assert out.returncode == 0, out.stdout + out.stderr
    out = landfall(lake, "tables", "optimize", "s", "--min-files", "2")
    assert out.returncode == 0, out.stdout + out.stderr
    lake._pipeline = None
    assert lake.rows("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM s") == [(60, 60, 0, 59)]
    assert len(lake.pipeline.store.table_files("s")) == 1
    assert lake.rows("SELECT count(DISTINCT _source_file) FROM s") == [(6,)]
    consistent(lake, "s", fmt)
    sources = {
        s.source_key
        for f in lake.pipeline.store.table_files("s")
        for s in lake.pipeline.store.file_sources("s", f.path)
    }
    assert sources == {f"s/{i}.csv" for i in range(6)}  # lineage survives the crash


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("point", STEPS)
def test_kill_9_during_quarantine_replay(make_lake, fmt, point):
    rule = {"range": {"column": "v", "min": 0}, "action": "quarantine"}
    lake = make_lake(
        [wf("q", read={"format": "csv"}, write={"table": "q", "format": fmt}, validate=[rule])],
        lease_seconds=2,
    )
    for i in range(3):
        lake.land(f"q/{i}.csv", f"id,v\n{i}0,1\n{i}1,-1\n{i}2,-2\n")
    assert lake.process().ok
    assert lake.rows("SELECT count(*) FROM quarantine.q") == [(6,)]
    lake.close()
    doc = yaml.safe_load(lake.config.read_text())
    doc["workflows"][0].pop("validate")  # the rule was wrong: negative values are fine
    lake.config.write_text(yaml.safe_dump(doc))
    out = landfall(lake, "quarantine", "replay", "q", crash_at=point)
    assert out.returncode == -signal.SIGKILL, out.stdout + out.stderr
    time.sleep(2.5)
    out = landfall(lake, "process")
    assert out.returncode == 0, out.stdout + out.stderr
    out = landfall(lake, "quarantine", "replay", "q")  # finishes what is left, never twice
    assert out.returncode == 0, out.stdout + out.stderr
    lake._pipeline = None
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM q") == [(9, 9)]
    assert lake.rows("SELECT count(*) FROM quarantine.q") == [(0,)]
    consistent(lake, "q", fmt)


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
@pytest.mark.parametrize("point", STEPS)
def test_kill_9_during_a_run_keeps_its_quarantined_rows(make_lake, fmt, point):
    """A run's quarantine is committed with its table; killed between a Delta commit and the catalog commit, the
    retry finds the table's commit in the log and the quarantine in the journal (before: the rows were lost)."""
    rule = {"range": {"column": "v", "min": 0}, "action": "quarantine"}
    lake = make_lake([wf("q", read={"format": "csv"}, write={"table": "q", "format": fmt}, validate=[rule])])
    lake.land("q/a.csv", "id,v\n1,1\n2,-1\n3,5\n")
    out = landfall(lake, "process", crash_at=point)
    assert out.returncode == -signal.SIGKILL, out.stdout + out.stderr
    out = landfall(lake, "process")
    assert out.returncode == 0, out.stdout + out.stderr
    lake.land("q/b.csv", "id,v\n4,-4\n")  # a later run: the quarantine table is cataloged, swept, still whole
    out = landfall(lake, "process", crash_at=point)
    out = landfall(lake, "process")
    assert out.returncode == 0, out.stdout + out.stderr
    assert lake.rows("SELECT id FROM q ORDER BY id") == [(1,), (3,)]
    assert lake.rows("SELECT id, _line FROM quarantine.q ORDER BY id") == [(2, 3), (4, 2)]
    consistent(lake, "q", fmt)
    folder = lake.root / "lake" / "quarantine" / "q"
    assert {str(f.relative_to(folder)) for f in folder.rglob("*.parquet")} == {
        f.path for f in lake.pipeline.store.table_files("quarantine.q")
    }
