"""Servers for tests, on free loopback ports: `AppServer` runs the app in this process (uvicorn in a thread, real
HTTP over a real socket, an httpx client); `LandfallProcess` runs `landfall ... serve` as users start it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from landfall.pipeline import Pipeline
from landfall.web.server import bind


class AppServer:
    """`AppServer(pipeline)` serves until `close()`; `.url`, `.http` (an httpx client on it), `.served`."""

    def __init__(self, pipeline: Pipeline, *, host: str = "127.0.0.1", **bind_args: Any) -> None:
        self.served = bind(pipeline, host=host, port=0, **bind_args)
        self.thread = self.served.start()
        self.url = f"http://127.0.0.1:{self.served.sock.getsockname()[1]}"
        self.http = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.http.get("/healthz")
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.http.close()
        self.served.stop()
        self.thread.join(10)

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LandfallProcess:
    """`landfall --config CONFIG ARGS...` (e.g. `up --serve --port 0`) in a process of its own, with `src` first
    on its path; its stderr goes to a file (never a pipe that could fill). `.url` is the server URL it printed."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> None:
        self.log = config.parent / f"landfall-{time.monotonic_ns()}.log"
        src = Path(__file__).resolve().parents[2]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "landfall", "--config", str(config), *args],
            cwd=config.parent,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
                 **(env or {})},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(r"http://127\.0\.0\.1:(\d+)/", self.output())
            if m:
                self.url = f"http://127.0.0.1:{m.group(1)}"
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"landfall printed no URL: {self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the process and wait for it; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class WebhookReceiver:
    """A webhook receiver on a free loopback port that records every POST (`.received`: parsed JSON bodies, with
    `.headers`). `fail_first`: answer the first N posts with HTTP 500; `hold`: an Event each post waits for before
    answering (a receiver that hangs until the test lets it go)."""

    def __init__(self, *, fail_first: int = 0, hold: threading.Event | None = None) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.hold = hold
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.attempts += 1
                    fail = outer.attempts <= outer.fail_first
                if outer.hold is not None:  # until the test (or `close`) lets it go, however slow the test runs
                    outer.hold.wait()
                if fail:
                    self.send_response(500)
                    self.end_headers()
                    return
                with outer._lock:
                    outer.received.append(json.loads(body))
                    outer.headers.append(dict(self.headers))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate: Any, timeout: float = 180) -> list[Any]:
        """Wait until `predicate(received)` holds; returns what was received."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = list(self.received)
            if predicate(got):
                return got
            time.sleep(0.05)
        raise AssertionError(f"the webhook did not receive what was expected; it got {got}")

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
