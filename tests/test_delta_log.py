"""A Delta log that is damaged, or has lost its last commit: one clear error that names the file and what to do,
never a Rust backtrace, never a catalog that silently disagrees with the log; `tables rebuild` puts it right."""

from __future__ import annotations

import deltalake
import pytest
from click.testing import CliRunner

from landfall.cli import main
from landfall.state.base import SERVICE_LEASE

from conftest import wf


def cli(lake, *args):
    return CliRunner().invoke(main, ["--config", str(lake.config), *args], env={"RUST_BACKTRACE": "1"})


@pytest.fixture
def three_commits(make_lake):
    lake = make_lake(
        [wf("d", read={"format": "csv"}, write={"table": "d", "format": "delta"}, retry={"max_attempts": 1})]
    )
    for i in (1, 2, 3):
        lake.land(f"d/{i}.csv", f"id\n{i}\n")
        assert cli(lake, "process").exit_code == 0
    return lake


def log_file(lake, version: int):
    return lake.root / f"lake/tables/d/_delta_log/{version:020d}.json"


def delta_ids(lake):
    return sorted(
        r["id"] for r in deltalake.DeltaTable(str(lake.root / "lake/tables/d")).to_pyarrow_table().to_pylist()
    )


@pytest.mark.parametrize(
    ("damage", "found"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "is not valid JSON (line 1"),
        (lambda p: p.write_bytes(p.read_bytes() + b"garbage{\n"), "is not valid JSON (line"),
        (lambda p: p.write_bytes(b""), "is empty"),
    ],
    ids=["truncated", "garbage", "empty"],
)
def test_a_damaged_commit_file_is_named_in_one_line(three_commits, damage, found):
    lake = three_commits
    damage(log_file(lake, 2))
    lake.land("d/4.csv", "id\n4\n")
    result = cli(lake, "process")
    assert result.exit_code == 1
    assert f"{log_file(lake, 2).name}` {found}" in result.output, result.output
    assert "landfall tables rebuild d" in result.output
    assert "<unknown>" not in result.output and "Traceback" not in result.output  # no Rust or Python backtrace
    dead = lake.pipeline.dead_runs() if hasattr(lake.pipeline, "dead_runs") else lake.pipeline.store.dead_runs()
    assert [r.file_key for r in dead] == ["d/4.csv"] and "00000000000000000002.json" in dead[0].error


def test_a_missing_commit_in_the_middle_is_named(three_commits):
    lake = three_commits
    log_file(lake, 1).unlink()
    lake.land("d/4.csv", "id\n4\n")
    result = cli(lake, "process")
    assert result.exit_code == 1
    assert f"commit `{log_file(lake, 1)}` is missing" in result.output, result.output


def test_a_lost_last_commit_stops_commits_and_rebuild_loads_its_files_again(three_commits):
    lake = three_commits
    log_file(lake, 2).unlink()  # the commit that added 3.csv's rows is gone; its data file is still there
    lake.land("d/4.csv", "id\n4\n")
    # a `landfall up` elsewhere holds its service lease all along: the check still runs (it did not, for a while)
    assert lake.pipeline.store.hold(f"{SERVICE_LEASE}otherhost:1:x", f"{SERVICE_LEASE}otherhost:1:x", 60)
    lake.close()
    result = cli(lake, "process")
    assert result.exit_code == 1
    assert "table `d`: the catalog holds 1 files the Delta log does not list" in result.output, result.output
    assert f"`{log_file(lake, 2)}` was removed or lost" in result.output
    assert delta_ids(lake) == [1, 2]  # nothing committed on top of the broken log
    result = cli(lake, "tables", "rebuild", "d")  # not while a service runs on the lake
    assert result.exit_code == 1
    assert "`landfall up`, `worker` or `process` is running on this lake (otherhost:1:x)" in result.output
    lake.pipeline.store.let_go(f"{SERVICE_LEASE}otherhost:1:x", f"{SERVICE_LEASE}otherhost:1:x")
    lake.close()
    result = cli(lake, "tables", "rebuild", "d")
    assert result.exit_code == 0, result.output
    assert "d: delta, 2 files, 2 rows" in result.output
    assert lake.rows("SELECT id FROM d ORDER BY id") == [(1,), (2,)]  # the catalog follows the log
    assert cli(lake, "dlq", "retry", "--all").exit_code == 0
    result = cli(lake, "process")
    assert result.exit_code == 0, result.output
    assert lake.rows("SELECT id FROM d ORDER BY id") == [(1,), (2,), (3,), (4,)]  # 3.csv loaded again
    assert delta_ids(lake) == [1, 2, 3, 4]
