"""Several worker processes share one PostgreSQL state store; one is killed with SIGKILL mid-batch (its files
published, not committed). Every file loads exactly once and no run stays `running`. With `isolated`, each
worker runs in its own PID namespace (as containers do: the same host name, PIDs that mean nothing to the
others), so its runs come back only when its lease expires; otherwise the others see at once that a process of
this machine exited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from landfall.config import load_settings
from landfall.pipeline import Pipeline

FILES, ROWS = 300, 20


def can_unshare() -> bool:
    try:
        return subprocess.run(["unshare", "--pid", "--fork", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("isolated", [False, True], ids=["one-host", "pid-namespaces"])
def test_three_workers_share_one_queue_and_a_killed_one_loses_nothing(tmp_path, postgres, isolated):
    if isolated and not can_unshare():
        pytest.skip("`unshare --pid` is not permitted here (needs CAP_SYS_ADMIN)")
    config = tmp_path / "landfall.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "lake": str(tmp_path / "lake"),
                "state_url": postgres.create_database(),
                "lease_seconds": 3.0,
                "batch_files": 10,
                "workflows": [{"name": "t", "match": "t/", "read": {"format": "csv"}, "write": {"table": "t"}}],
            }
        )
    )
    landing = tmp_path / "lake/landing/t"
    landing.mkdir(parents=True)
    for i in range(FILES):
        rows = "".join(f"{i * ROWS + j},{j}\n" for j in range(ROWS))
        (landing / f"f{i:04d}.csv").write_text("id,n\n" + rows)
    # in its own PID namespace the worker must not be the namespace's first process (PID 1 ignores a SIGKILL it
    # sends itself), so a shell comes first
    prefix = ["unshare", "--pid", "--fork", "--kill-child", "sh", "-c", '"$@"; exit $?', "sh"] if isolated else []
    cmd = [*prefix, sys.executable, "-m", "landfall", "--config", str(config), "-q", "process", "--workers", "1"]

    def start(env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    # the first worker kills itself (SIGKILL) once it has published a batch's files, before it commits them
    procs = [start({"LANDFALL_CRASH_AT": "after_publish"})]
    p = Pipeline(load_settings(config))
    try:
        victim = procs[0]
        deadline = time.time() + 120
        while not p.runs(status="running", limit=1):  # it holds a lease: the others start now
            assert time.time() < deadline and victim.poll() is None, victim.stdout.read() if victim.poll() else ""
            time.sleep(0.01)
        held = {r.worker for r in p.runs(status="running", limit=None)}
        procs += [start(), start()]
        victim.wait(60)
        assert victim.returncode in (-signal.SIGKILL, 128 + signal.SIGKILL), victim.stdout.read()
        for proc in procs[1:]:
            out, _ = proc.communicate(timeout=180)
            assert proc.returncode == 0, out
        counts = p.counts()
        assert counts["running"] == 0 and counts["queued"] == 0 and counts["dead"] == 0
        succeeded = p.runs(status="succeeded", limit=None)
        assert sorted(r.file_key for r in succeeded) == sorted(f"t/f{i:04d}.csv" for i in range(FILES))
        taken_back = p.runs(status="failed", limit=None)
        assert taken_back and {r.worker for r in taken_back} == held
        assert all("not counted as an attempt" in r.error for r in taken_back)
        why = "stopped (lease expired)" if isolated else "exited"
        assert all(why in r.error for r in taken_back), [r.error for r in taken_back]
        assert {r.attempt for r in succeeded} == {1}
        assert p.query("SELECT count(*), count(DISTINCT id) FROM t")[1] == [(FILES * ROWS, FILES * ROWS)]
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        p.close()
