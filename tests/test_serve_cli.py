"""`landfall serve` and `landfall up --serve` as users start them: real processes on free loopback ports."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from landfall.cli import main

from conftest import REPO


def test_a_missing_extra_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    out = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "serve"])
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == ['Error: `landfall serve` needs uvicorn: pip install "landfall[serve]"']


def _start(tmp_path, *args, env=None):
    """Start `landfall ARGS`; its stderr goes to a file (never a pipe that could fill); returns the process, the
    URL it printed and a function that reads its stderr so far."""
    log = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(tmp_path / "landfall.yaml"), *args],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(REPO / "src"), **(env or {})),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )

    def seen() -> str:
        return log.read_text()

    deadline = time.time() + 60
    while time.time() < deadline:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", seen())
        if m:
            return proc, f"http://127.0.0.1:{m.group(1)}", seen
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no URL in the output: {seen()}")


@pytest.mark.slow
def test_up_serve_loads_a_file_and_shows_it(tmp_path):
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nreconcile_seconds: 0.5\nsettle_seconds: 0\n"
        "workflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    proc, url, seen = _start(tmp_path, "up", "--serve", "--port", "0", env={"LANDFALL_TOKEN": "tok"})
    try:
        with httpx.Client(base_url=url, timeout=10) as http:
            put = http.put("/landing/s/day-1.csv", content=b"id\n1\n2\n", headers={"Authorization": "Bearer tok"})
            assert put.status_code == 200, put.text
            deadline = time.time() + 60
            while time.time() < deadline:
                runs = http.get("/api/runs").json()
                if runs and runs[0]["status"] == "succeeded":
                    break
                time.sleep(0.2)
            assert runs[0]["file_id"] == "s/day-1.csv" and runs[0]["status"] == "succeeded", runs
            q = http.post("/api/query", json={"sql": "SELECT count(*) FROM s"}).json()
            assert q["rows"] == [[2]]
            assert "landfall_files_total" in http.get("/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0, seen()


@pytest.mark.slow
def test_serve_alone_prints_a_token_when_none_is_set(tmp_path):
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    env = {k: v for k, v in os.environ.items() if k != "LANDFALL_TOKEN"}
    proc = None
    try:
        os.environ.pop("LANDFALL_TOKEN", None)
        proc, url, seen = _start(tmp_path, "serve", "--port", "0")
        deadline = time.time() + 10
        while "#token=" not in seen() and time.time() < deadline:
            time.sleep(0.05)
        token = re.search(r"#token=(\S+)", seen()).group(1)
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.post("/api/dead-letters/purge", json={"all": True}).status_code == 401
            ok = http.post("/api/dead-letters/purge", json={"all": True}, headers={"Authorization": f"Bearer {token}"})
            assert ok.json() == {"purged": 0}
    finally:
        os.environ.clear()
        os.environ.update(env)
        if proc:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
