"""`process_gone`: a process of this machine that exited is given up on at once (its leases, the files it was
reading, its scratch folder), and one that runs never is, even where `/proc` will not show it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from landfall import processes
from landfall.processes import process_gone, worker_id

pytestmark = pytest.mark.skipif(processes._machine() is None, reason="needs Linux's /proc")


def id_of(pid: int) -> str:
    """The id `worker_id` gives the process `pid` (as it would say it of itself)."""
    stat = processes._stat(pid)
    assert stat is not None
    return f"{socket.gethostname()}:{pid}:{processes._machine()}-{stat[1]}"


def test_this_process_is_not_gone_and_one_that_exited_is():
    assert not process_gone(worker_id()) and not process_gone(f"{worker_id()}:thread-1")
    child = subprocess.Popen(["sleep", "60"])
    who = id_of(child.pid)
    assert not process_gone(who)
    child.kill()
    deadline = time.monotonic() + 10
    while processes._stat(child.pid)[0] != "Z" and time.monotonic() < deadline:  # the signal lands
        time.sleep(0.01)
    assert process_gone(who)  # a zombie until its parent waits for it: exited all the same
    child.wait()
    assert process_gone(who)


def test_a_pid_used_again_by_another_process_is_gone():
    who = worker_id().split(":")
    started = int(who[2].rsplit("-", 1)[1])
    assert process_gone(":".join([who[0], who[1], who[2].rsplit("-", 1)[0] + f"-{started - 1}"]))


def test_a_process_elsewhere_is_never_gone():
    host, pid, identity = worker_id().split(":")
    assert not process_gone(f"{host}:{pid}:{identity[:4]}ffffffff-{identity.split('-', 1)[1]}")  # another boot
    assert not process_gone("otherhost:123:a1b2c3d4")  # a system that does not say: random identity
    assert not process_gone("not-an-id")


def test_a_live_process_proc_does_not_show_is_not_gone(monkeypatch):
    """Another user's process on a `/proc` mounted with `hidepid`: its entry cannot be read, and it runs."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        who = id_of(child.pid)
        shown = processes._stat
        monkeypatch.setattr(processes, "_stat", lambda pid: None if pid == child.pid else shown(pid))
        assert not process_gone(who)
        child.kill()
        child.wait()
        assert process_gone(who)  # no process has the PID any more: gone, whatever `/proc` shows
    finally:
        child.kill()
        child.wait()


def _can_hide_pids() -> bool:
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("setpriv")):
        return False
    probe = "mount -o remount,hidepid=2 /proc"
    run = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "sh", "-c", probe]
    return subprocess.run(run, capture_output=True).returncode == 0


def _python_for_nobody() -> str | None:
    """A Python interpreter the user `nobody` may run (the tests' own may live in root's home)."""
    for candidate in (sys.executable, "/usr/bin/python3"):
        check = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", candidate, "-c", "pass"]
        if os.path.exists(candidate) and subprocess.run(check, capture_output=True).returncode == 0:
            return candidate
    return None


def test_another_users_live_process_on_a_hidepid_proc_is_not_gone():
    """For real: a `/proc` mounted with `hidepid=2` (in a mount and PID namespace of its own), a process of root
    and `nobody` asking about it. Before, `nobody` took it for gone, so a worker running as one user gave up the
    runs, leases and scratch files of a live worker running as another."""
    if not _can_hide_pids():  # probed here, not when the tests are collected
        pytest.skip("needs root, unshare and setpriv to mount a /proc with hidepid")
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python interpreter the user `nobody` may run")
    folder = Path(tempfile.mkdtemp(prefix="landfall-test-hidepid-"))
    try:
        folder.chmod(0o755)
        module = folder / "processes.py"
        shutil.copy(processes.__file__, module)  # the module alone: `nobody` may not read the checkout
        module.chmod(0o644)
        ask = textwrap.dedent(
            f"""
            import importlib.util, sys
            spec = importlib.util.spec_from_file_location("processes", {str(module)!r})
            p = importlib.util.module_from_spec(spec); spec.loader.exec_module(p)
            if sys.argv[1] == "id":
                pid = int(sys.argv[2]); print(f"host:{{pid}}:{{p._machine()}}-{{p._stat(pid)[1]}}")
            else:
                print(p._stat(int(sys.argv[2].split(":")[1])) is None, p.process_gone(sys.argv[2]))
            """
        )
        (folder / "ask.py").write_text(ask)
        (folder / "ask.py").chmod(0o644)
        script = (
            "mount -o remount,hidepid=2 /proc || exit 3; sleep 60 & SLEEPER=$!; "
            f"WHO=$({python} {folder}/ask.py id $SLEEPER); "
            f'setpriv --reuid=nobody --regid=nogroup --clear-groups {python} {folder}/ask.py gone "$WHO"; '
            f"kill $SLEEPER; wait $SLEEPER; "
            f'setpriv --reuid=nobody --regid=nogroup --clear-groups {python} {folder}/ask.py gone "$WHO"'
        )
        out = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        hidden_alive, exited = out.stdout.split("\n")[:2]
        assert hidden_alive == "True False"  # `/proc` hides it from `nobody`, and it is not taken for gone
        assert exited.endswith("True")  # once it exited, it is
    finally:
        shutil.rmtree(folder, ignore_errors=True)
