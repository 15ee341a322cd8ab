"""A `landfall serve` app on a free loopback port, in this process, for tests: real HTTP over a real socket
(uvicorn in a thread), with an httpx client."""

from __future__ import annotations

import time
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
