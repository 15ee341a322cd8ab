"""Local scratch folders of a process that died (kill -9, the out-of-memory killer) do not pile up: the next
`landfall process` on the same host removes them, and leaves those of a running process or another host."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from landfall.storage import scratch

from conftest import wf


def landfall(lake, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_killed_process_scratch_folders_are_removed_by_the_next_start(make_lake, tmp_path):
    root = tmp_path / "scratch"
    lake = make_lake([wf("t", read={"format": "csv"})], scratch_dir=str(root))
    lake.land("t/a.csv", "id\n" + "".join(f"{i}\n" for i in range(100)))
    killed = landfall(lake, "process", env={"LANDFALL_CRASH_AT": "after_write"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = [p.name for p in root.iterdir()]
    assert any(n.startswith("landfall-") and f"@{socket.gethostname()}-job-" in n for n in left), left

    host = socket.gethostname()
    running = root / f"landfall-{os.getpid()}@{host}-job-keep"  # this test's process: still running
    elsewhere = root / "landfall-1@another-host-job-keep"  # a shared scratch folder: not this host's to judge
    for keep in (running, elsewhere):
        keep.mkdir()
        (keep / "x").write_text("x")

    again = landfall(lake, "process")
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(p.name for p in root.glob("landfall-*")) == sorted([running.name, elsewhere.name])
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM t") == [(100, 100)]


def test_sweep_reads_the_process_from_the_name_even_when_the_host_has_dashes(tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "node-7-job-a")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process has exited
    gone = tmp_path / f"landfall-{pid}@node-7-job-a-batch-x1"
    mine = tmp_path / f"{scratch.prefix('staging')}c1-t"
    other = tmp_path / f"landfall-{pid}@node-7-batch-x2"  # host `node-7`: another host
    unrelated = tmp_path / "landfall-staging-c2-t"
    for p in (gone, mine, other, unrelated):
        p.mkdir()
    assert scratch.sweep(str(tmp_path)) == [str(gone)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name, unrelated.name])
    assert scratch.sweep(str(tmp_path / "missing")) == []
