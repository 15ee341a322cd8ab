"""Local scratch folders of a process that died (kill -9, the out-of-memory killer) do not pile up: the next
`landfall process` on the same machine removes them, and leaves those of a running process, of another machine or
PID namespace, or of a process whose system does not say."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from landfall.processes import worker_id
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


def named(owner: str, kind: str, rest: str) -> str:
    return f"landfall-{owner.replace(':', '!')}-{kind}-{rest}"


def exited_id() -> str:
    """The id of a process of this machine that has exited."""
    done = subprocess.run(
        [sys.executable, "-c", "from landfall.processes import worker_id; print(worker_id())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_a_killed_process_scratch_folders_are_removed_by_the_next_start(make_lake, tmp_path):
    root = tmp_path / "scratch"
    lake = make_lake([wf("t", read={"format": "csv"})], scratch_dir=str(root))
    lake.land("t/a.csv", "id\n" + "".join(f"{i}\n" for i in range(100)))
    killed = landfall(lake, "process", env={"LANDFALL_CRASH_AT": "after_write"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = [p.name for p in root.glob("landfall-*-job-*")]
    assert left, list(root.iterdir())

    running = root / f"{scratch.prefix('job')}keep"  # this test's process: still running
    host, pid, identity = exited_id().split(":")
    boot, ns, start = identity.split("-")
    elsewhere = root / named(f"{host}:{pid}:{'0' * len(boot)}-{ns}-{start}", "job", "keep")  # another machine
    for keep in (running, elsewhere):
        keep.mkdir()
        (keep / "x").write_text("x")

    again = landfall(lake, "process")
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(p.name for p in root.glob("landfall-*")) == sorted([running.name, elsewhere.name])
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM t") == [(100, 100)]


def test_sweep_removes_only_folders_of_processes_provably_gone(tmp_path):
    gone = exited_id()
    host, pid, identity = gone.split(":")
    boot, ns, start = identity.split("-")
    folders = {
        named(gone, "batch", "a1"): False,  # exited: removed
        f"{scratch.prefix('staging')}c1-t": True,  # this process
        named(worker_id(), "hop", "b2"): True,  # this process, named as another part would
        named(f"{host}:{pid}:{boot}-{int(ns) + 1}-{start}", "job", "c3"): True,  # another PID namespace
        named(f"{host}:{pid}:0badc0ffee", "job", "d4"): True,  # a system that does not say
        f"landfall-{pid}-job-e5": True,  # not named for a process
    }
    for name in folders:
        (tmp_path / name).mkdir()
    assert scratch.sweep(str(tmp_path)) == [str(tmp_path / named(gone, "batch", "a1"))]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(n for n, kept in folders.items() if kept)
    assert scratch.sweep(str(tmp_path / "missing")) == []


def test_a_host_name_with_dashes_is_read_whole(tmp_path):
    gone = exited_id()
    _, pid, identity = gone.split(":")
    folder = tmp_path / named(f"node-7-job-a:{pid}:{identity}", "batch", "x")
    folder.mkdir()
    assert scratch.sweep(str(tmp_path)) == [str(folder)]
