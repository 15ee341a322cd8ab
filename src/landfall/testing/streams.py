"""Serving a lake's streams for tests and benchmarks, the way users do: `landfall serve` (or `up --serve`).

`serving_in_thread` binds the server in this process on a free loopback port (quick to start);
`serving` starts `landfall up --serve` (or `serve`) as a process, which tests can kill -9. Both yield the base
URL and the token every call must carry (`Authorization: Bearer <token>`, or the AWS secret key for SigV4).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from landfall.testing.ports import free_port

TOKEN = "landfall-test-token"


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it listened on port {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f}s")


@contextlib.contextmanager
def serving_in_thread(config: str | Path, *, token: str = TOKEN) -> Iterator[str]:
    """`landfall serve` for `config` in a thread of this process; yield its base URL (no trailing `/`)."""
    from landfall.config import load_settings
    from landfall.pipeline import Pipeline
    from landfall.testing.web import AppServer

    settings = load_settings(config)
    settings.serve.token = token
    pipeline = Pipeline(settings)
    try:
        with AppServer(pipeline) as srv:
            yield srv.url
    finally:
        pipeline.close()


def start(config: str | Path, port: int, *, up: bool = True, token: str = TOKEN, env: dict[str, str] | None = None):
    """Start `landfall up --serve` (or `landfall serve`) on `port` as a process; return it once it listens."""
    command = ["up", "--serve"] if up else ["serve"]
    src = str(Path(__file__).resolve().parents[2])
    proc = subprocess.Popen(
        [sys.executable, "-m", "landfall", "-q", "--config", str(config), *command, "--port", str(port)],
        env={**os.environ, "PYTHONPATH": src, "LANDFALL_TOKEN": token, **(env or {})},
        stdout=subprocess.DEVNULL,
    )
    wait_for_port(port, proc)
    return proc


def stop(proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """SIGTERM (the streams land what they hold), then wait; SIGKILL if it does not end."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def serving(config: str | Path, *, up: bool = True, token: str = TOKEN) -> Iterator[tuple[subprocess.Popen, str]]:
    """`landfall up --serve` (or `serve`) as a process on a free port; yield (process, base URL); stop it after."""
    port = free_port()
    proc = start(config, port, up=up, token=token)
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
