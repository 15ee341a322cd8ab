"""`landfall serve` and `landfall up --serve` as users start them: real processes on free loopback ports."""

from __future__ import annotations

import os
import re
import signal
import sys
import time

import httpx
import pytest
from click.testing import CliRunner

from landfall.cli import main
from landfall.testing.web import LandfallProcess


def test_a_missing_extra_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    out = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "serve"])
    assert out.exit_code == 1
    assert out.output.strip().splitlines() == ['Error: `landfall serve` needs uvicorn: pip install "landfall[serve]"']


@pytest.mark.parametrize("command", [["serve"], ["up", "--serve", "--no-watch"]])
def test_a_port_in_use_or_an_address_not_this_hosts_is_one_line(tmp_path, command):
    """`OSError: [Errno 98] Address already in use` and `[Errno 99] Cannot assign requested address` ended
    `landfall serve` and `up --serve` in a traceback."""
    import socket

    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = str(taken.getsockname()[1])
    try:
        cases = {
            ("--port", port): f"Error: cannot listen on 127.0.0.1:{port}: the port is in use (another `landfall",
            ("--host", "192.0.2.1", "--port", port): "no network interface of this host has that address",
            ("--host", "nohost.invalid"): "Error: cannot listen on `nohost.invalid`: not an address or a name",
        }
        for args, said in cases.items():
            out = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), *command, *args])
            assert out.exit_code == 1 and said in out.output, out.output
            assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1, out.output
    finally:
        taken.close()


@pytest.mark.slow
def test_up_serve_loads_a_file_and_shows_it(tmp_path):
    config = tmp_path / "landfall.yaml"
    config.write_text(
        "lake: ./lake\nreconcile_seconds: 0.5\nsettle_seconds: 0\n"
        "workflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    server = LandfallProcess(config, "up", "--serve", "--port", "0", env={"LANDFALL_TOKEN": "tok"})
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            put = http.put("/landing/s/day-1.csv", content=b"id\n1\n2\n", headers={"Authorization": "Bearer tok"})
            assert put.status_code == 200, put.text
            deadline = time.time() + 60
            while time.time() < deadline:
                runs = http.get("/api/runs").json()
                if runs and runs[0]["status"] == "succeeded":
                    break
                time.sleep(0.2)
            assert runs[0]["file_id"] == "s/day-1.csv" and runs[0]["status"] == "succeeded", runs
            assert http.post("/api/query", json={"sql": "SELECT count(*) FROM s"}).json()["rows"] == [[2]]
            assert "landfall_files_total" in http.get("/metrics").text
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.output()


@pytest.mark.slow
def test_serve_alone_prints_a_token_when_none_is_set(tmp_path, monkeypatch):
    config = tmp_path / "landfall.yaml"
    config.write_text("lake: ./lake\n")
    monkeypatch.delenv("LANDFALL_TOKEN", raising=False)
    server = LandfallProcess(config, "serve", "--port", "0")
    try:
        deadline = time.time() + 10
        while "#token=" not in server.output() and time.time() < deadline:
            time.sleep(0.05)
        token = re.search(r"#token=(\S+)", server.output()).group(1)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.post("/api/dead-letters/purge", json={"all": True}).status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            assert http.post("/api/dead-letters/purge", json={"all": True}, headers=auth).json() == {"purged": 0}
    finally:
        server.stop(signal.SIGINT)
    assert "LANDFALL_TOKEN" not in os.environ
