"""PostgreSQL restarts while `landfall process` loads files: the workers wait for it, the batches in flight go back
to the queue, and no file is blamed (no attempt used, nothing dead), nothing lost or loaded twice."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml

from landfall.config import load_settings
from landfall.pipeline import Pipeline

FILES, ROWS = 200, 20


@pytest.mark.slow
@pytest.mark.postgres
def test_a_postgresql_restart_mid_run_loses_nothing_and_blames_no_file(tmp_path, postgres):
    config = tmp_path / "landfall.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "lake": str(tmp_path / "lake"),
                "state_url": postgres.create_database(),
                "lease_seconds": 5.0,
                "batch_files": 5,
                "workflows": [
                    {
                        "name": "t",
                        "match": "t/",
                        "read": {"format": "csv"},
                        "write": {"table": "t"},
                        "retry": {"max_attempts": 1},  # any failure blamed on a file would make it dead
                    }
                ],
            }
        )
    )
    landing = tmp_path / "lake/landing/t"
    landing.mkdir(parents=True)
    for i in range(FILES):
        (landing / f"f{i:04d}.csv").write_text("id,n\n" + "".join(f"{i * ROWS + j},{j}\n" for j in range(ROWS)))
    p = Pipeline(load_settings(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(config), "process", "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while p.counts()["succeeded"] < 20:
            assert time.time() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() else "slow"
            time.sleep(0.05)
        p.close()  # its pooled connections would die with the server anyway
        postgres.stop("fast")  # in-flight transactions are cut off; clients see their connections drop
        time.sleep(3)
        postgres.start()
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "cannot be reached" in out or "closed connection" in out  # the workers did see the server go
    p = Pipeline(load_settings(config))
    try:
        counts = p.counts()
        assert counts["dead"] == 0 and counts["running"] == 0 and counts["queued"] == 0, counts
        succeeded = p.runs(status="succeeded", limit=None)
        assert sorted(r.file_key for r in succeeded) == sorted(f"t/f{i:04d}.csv" for i in range(FILES))
        assert {r.attempt for r in succeeded} == {1}
        assert p.query("SELECT count(*), count(DISTINCT id) FROM t")[1] == [(FILES * ROWS, FILES * ROWS)]
    finally:
        p.close()


@pytest.mark.slow
@pytest.mark.postgres
def test_postgresql_down_at_start_is_waited_for(tmp_path, postgres):
    """`landfall process` started while the state database is away waits for it (past the pool's 30 s connect
    timeout, saying so), then loads every file once; nothing is blamed on a file."""
    config = tmp_path / "landfall.yaml"
    url = postgres.create_database()
    config.write_text(
        yaml.safe_dump(
            {
                "lake": str(tmp_path / "lake"),
                "state_url": url,
                "workflows": [
                    {"name": "t", "match": "t/", "write": {"table": "t"}, "retry": {"max_attempts": 1}},
                ],
            }
        )
    )
    landing = tmp_path / "lake/landing/t"
    landing.mkdir(parents=True)
    for i in range(20):
        (landing / f"f{i:02d}.csv").write_text(f"id\n{i}\n")
    postgres.stop("fast")
    proc = subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(config), "process"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(36)
        assert proc.poll() is None, proc.stdout.read()  # still waiting, not failed
        postgres.start()
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "cannot be reached" in out, out
    p = Pipeline(load_settings(config))
    try:
        assert p.counts()["succeeded"] == 20 and p.counts()["dead"] == 0, p.counts()
        assert p.query("SELECT count(*), count(DISTINCT id) FROM t")[1] == [(20, 20)]
    finally:
        p.close()
