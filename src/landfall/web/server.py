"""Running the app with uvicorn: alone (`landfall serve`) or in a thread beside `Pipeline.up` (`landfall up
--serve`)."""

from __future__ import annotations

import errno
import logging
import secrets
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import uvicorn

from landfall.errors import ConfigError
from landfall.pipeline import Pipeline
from landfall.redaction import remember
from landfall.web.app import create_app, is_loopback

log = logging.getLogger("landfall.web")


class _Server(uvicorn.Server):
    """uvicorn's server, closing the stream intake as it shuts down: after a signal uvicorn raises it again once
    serving ends, so nothing after `run()` would get to."""

    def __init__(self, config: uvicorn.Config, streams: Any = None) -> None:
        super().__init__(config)
        self.streams = streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self.streams is not None:
            self.streams.close()  # lands what the streams hold (what it cannot stays in their logs)


@dataclass
class Served:
    """A server bound and ready to run: where it listens and the token it accepts."""

    server: uvicorn.Server
    sock: socket.socket
    url: str
    token: str
    token_generated: bool  # no token was configured: this one was made for this run
    public: bool
    streams: Any = None  # the streams taking records here (`landfall.streams.Streams`), closed as serving ends

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM (in the main thread) or `stop()`; the streams land what they hold."""
        self.server.run(sockets=[self.sock])

    def start(self) -> threading.Thread:
        """Serve in a background thread (signals stay with the caller); `stop()` ends it."""
        t = threading.Thread(target=self.run, name="landfall-serve", daemon=True)
        t.start()
        return t

    def stop(self) -> None:
        self.server.should_exit = True


def listening(host: str, port: int) -> socket.socket:
    """A socket listening on `host`:`port`; `ConfigError` saying why not (a port in use, an address that is not
    this host's), where it was a traceback."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on `{host}`: not an address or a name this host resolves ({exc.strerror})")
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # answers go out at once: with Nagle's algorithm a response written in two parts waits for the client's
        # delayed ACK, 40 ms per request on a keep-alive connection (accepted sockets inherit the option)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = {
            errno.EADDRINUSE: "the port is in use (another `landfall serve` or `up --serve`, or another program); "
            "choose another with `--port` or `serve.port`",
            errno.EADDRNOTAVAIL: "no network interface of this host has that address; `--host` (`serve.host`) "
            "takes one of its own, `0.0.0.0` for every one",
            errno.EACCES: "a port below 1024 needs root or the `CAP_NET_BIND_SERVICE` capability; choose one above",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        raise ConfigError(f"cannot listen on {host}:{port}: {why}") from None
    return sock


def bind(
    pipeline: Pipeline,
    *,
    host: str | None = None,
    port: int | None = None,
    extra_routes: Sequence[Any] = (),
    own_auth: Sequence[str] = (),
) -> Served:
    """Bind the socket (`port` 0: any free port) and build the server for `pipeline` (`extra_routes` and
    `own_auth`: see `create_app`). The token is `serve.token`, else the environment variable `serve.token_env`,
    else a random one for this run."""
    cfg = pipeline.settings.serve
    host = host or cfg.host
    port = cfg.port if port is None else port
    token = cfg.bearer_token()
    generated = token is None
    token = token or secrets.token_urlsafe(24)
    remember(token)  # never in a log line
    public = not is_loopback(host)
    sock = listening(host, port)
    port = sock.getsockname()[1]
    from landfall.streams.service import warn_left_behind

    warn_left_behind(pipeline.settings)
    streams = None
    if pipeline.settings.streams:  # the stream intake: POST /streams/<name>, and the AWS APIs at POST /
        from landfall.streams.http import OWN_AUTH, routes

        streams = pipeline.open_streams()
        extra_routes = [*extra_routes, *routes(streams, token=token)]
        own_auth = (*own_auth, *OWN_AUTH)
    app = create_app(
        pipeline,
        token=token,
        public=public,
        extra_routes=extra_routes,
        own_auth=own_auth,
        streams=streams,
    )
    # /metrics keeps totals of every run that ended; the first reading goes through them all (seconds with
    # millions of runs): take it now, in the background, rather than in the first scrape
    threading.Thread(target=_warm, args=(pipeline,), name="landfall-metrics-warm", daemon=True).start()
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=5, server_header=False
    )
    shown = f"[{host}]" if ":" in host else host
    return Served(_Server(config, streams), sock, f"http://{shown}:{port}/", token, generated, public, streams)


def _warm(pipeline: Pipeline) -> None:
    try:
        pipeline.activity()
    except Exception as exc:  # a scrape will say it again, with the same error
        log.warning("reading the totals for /metrics failed: %s", exc)
