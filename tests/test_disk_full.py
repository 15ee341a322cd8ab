"""A full disk is the store's state, not the file's fault: `landfall process` waits for room (as for a store that
cannot be reached) without using the file's attempts, and loads it once there is room.

For real: the tables zone is a 300 KiB tmpfs mounted in a mount namespace of the command's own (`unshare`, as
root), too small for the table's Parquet file. Before, each attempt failed with DuckDB's background-write error
as JSON, said "not the file's fault; retrying", and the file was dead after three (a dead file's error now
says only "not the file's fault": an engine fault that is not a full disk, running out of memory, still uses
the file's attempts).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from conftest import REPO, mount_tmpfs

pytestmark = pytest.mark.slow


def test_a_full_disk_waits_for_room_without_blaming_the_file(tmp_path):
    lake = tmp_path / "lake"
    tables = lake / "tables"
    (lake / "landing" / "t").mkdir(parents=True)
    tables.mkdir()
    rows = 100_000
    with open(lake / "landing" / "t" / "a.csv", "w") as fh:  # about 1 MiB of Parquet: more than the disk holds
        fh.write("id,x,v\n")
        fh.writelines(f"{i},{(i * 7919) % 1000003 / 3.0},{(i * 104729) % 999983}\n" for i in range(rows))
    config = tmp_path / "landfall.yaml"
    config.write_text(f"lake: {lake}\nworkflows:\n  - name: t\n    match: t/\n    write: {{table: t}}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "landfall", "--config", str(config)]
    full = subprocess.Popen(
        mount_tmpfs(tables, "300k", [*cmd, "process"]),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum("without using an attempt" in s for s in said) < 3:
            line = full.stderr.readline()
            if not line:
                break
            said.append(line)
    finally:
        full.kill()
        full.wait()
    text = "".join(said)
    assert sum("without using an attempt" in s for s in said) >= 3, text  # waited, again and again
    assert "No space left on device" in text and '"exception_type"' not in text, text  # DuckDB's words, plainly
    assert " dead" not in text, text

    def landfall(*args: str) -> str:
        out = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "dead" not in landfall("runs") and "failed" not in landfall("runs")
    assert "processed: 1 succeeded" in landfall("process")  # room again (the tmpfs went with its namespace)
    assert landfall("query", "SELECT count(*) FROM t").split() == ["count_star()", str(rows)]
