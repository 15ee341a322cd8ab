"""A stream intake server for tests and benchmarks: the streams' routes in a minimal app, served by uvicorn.

    python -m landfall.testing.streams --config landfall.yaml --port 8123 [--up] [--token-env LANDFALL_TOKEN]

`--up` also runs the pipeline's workers in the same process (as `landfall up --serve` does). SIGTERM stops
it cleanly (the streams land what they hold); tests kill it with SIGKILL to check that nothing is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from starlette.applications import Starlette


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_app(config: str, *, token: str | None = None, up: bool = False) -> Starlette:
    from landfall.config import load_settings
    from landfall.pipeline import Pipeline
    from landfall.streams.http import routes

    pipeline = Pipeline(load_settings(config))
    streams = pipeline.open_streams()
    stop = threading.Event()
    worker = threading.Thread(target=pipeline.up, args=(stop,), daemon=True) if up else None

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if worker:
            worker.start()
        try:
            yield
        finally:
            streams.close()
            stop.set()
            if worker:
                worker.join()
            pipeline.close()

    return Starlette(routes=routes(streams, token=token), lifespan=lifespan)


@contextlib.contextmanager
def serving(
    config: str | Path, *, up: bool = False, token: str | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Start the server in a subprocess on a free loopback port; yield (process, base URL); stop it after."""
    port = free_port()
    cmd = [sys.executable, "-m", "landfall.testing.streams", "--config", str(config), "--port", str(port)]
    if up:
        cmd.append("--up")
    full_env = {**os.environ, **(env or {})}
    if token:
        full_env["LANDFALL_TEST_TOKEN"] = token
        cmd += ["--token-env", "LANDFALL_TEST_TOKEN"]
    proc = subprocess.Popen(cmd, env=full_env)
    try:
        wait_for_port(port, proc)
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def serving_in_thread(config: str | Path, *, token: str | None = None) -> Iterator[str]:
    """The same server in a thread of this process (faster to start); yield its base URL."""
    import uvicorn

    port = free_port()
    app = make_app(str(config), token=token)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="landfall-test-server", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it listened on port {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout:.0f}s")


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--up", action="store_true", help="also run the pipeline's workers")
    ap.add_argument("--token-env", default=None, help="environment variable holding the token")
    args = ap.parse_args(argv)
    token = os.environ.get(args.token_env) if args.token_env else None
    app = make_app(args.config, token=token, up=args.up)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
