"""The ASGI app: `create_app(pipeline)` serves the JSON API (`/api/...`, `PUT /landing/<key>`), the dashboard
(`/`, `/static/...`), `/metrics`, `/healthz`, `/readyz` and `/openapi.json` over one `landfall.Pipeline`.

Other parts of landfall add routes through `extra_routes`: a list of Starlette routes (`Route`, `Mount`) mounted
beside the API, behind the same guard (token, host check, cross-site check) and error handling, and listed in
`/openapi.json` when their endpoints have OpenAPI docstrings. Routes that check the token themselves (the stream
intake accepts a bearer token or an AWS Signature Version 4 made with it) name their paths in `own_auth`: the
guard's Host and cross-site checks still apply to them, its token check does not. The stream intake mounts
this way:

    app = create_app(pipeline, token=token, extra_routes=streams.http.routes(streams, token=token),
                     own_auth=("/streams/", "/"))

Security (the `Guard` middleware): a bearer token (`Authorization: Bearer <token>`) is required for every call
that changes state (any method but GET, HEAD, OPTIONS) and, when the app is bound to an address other than
loopback (`public=True`), for every call except `/healthz` and the dashboard's page shell and static files,
which hold no data (the pages ask for the token and send it with each API call). Bound to loopback, only
`localhost`, `127.0.0.1` and `[::1]` are accepted as Host (no DNS rebinding). Nothing authenticates by cookie, so
a cross-site form or script cannot act with the user's credentials; state-changing calls whose `Origin` (or
`Sec-Fetch-Site`) says another site are refused as well.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator
from starlette.types import ASGIApp, Receive, Scope, Send

from landfall.errors import (
    ConcurrentChange,
    ConfigError,
    LandfallError,
    NoSuchRun,
    NoSuchTable,
    QueryRefused,
    QueryTimeout,
    UnsafeKey,
)
from landfall.pipeline import Pipeline

log = logging.getLogger("landfall.web")

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
#: POST routes that change nothing (a read-only query): no token needed on loopback, like a GET
READ_ONLY_POSTS = ("/api/query",)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def host_name(host_header: str) -> str:
    """`127.0.0.1:8080` -> `127.0.0.1`; `[::1]:8080` -> `[::1]`; `localhost` -> `localhost`."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[: h.find("]") + 1]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def is_loopback(host: str) -> bool:
    """Whether a bind address is loopback-only."""
    return host in ("localhost", "::1") or host.startswith("127.")


class Guard:
    """Bearer token, Host check and cross-site check, in front of every route (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str,
        public: bool,
        is_open: Callable[[str], bool],
        own_auth: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.token = token.encode()
        self.public = public
        self.is_open = is_open  # paths that hold no data: liveness and the dashboard's shell
        self.own_auth = tuple(own_auth)  # paths (a trailing `/`: prefixes) whose routes check the token themselves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self.check(scope["method"], scope["path"], headers)
        if problem is not None:
            status, message = problem
            extra = {"WWW-Authenticate": 'Bearer realm="landfall"'} if status == 401 else {}
            await JSONResponse({"error": message}, status_code=status, headers=extra)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, method: str, path: str, headers: Headers) -> tuple[int, str] | None:
        """None when the request may pass; else (status, message)."""
        if not self.public and host_name(headers.get("host") or "") not in LOOPBACK_NAMES:
            return 400, f"Host `{headers.get('host')}` is not this server's; use http://127.0.0.1:<port>/"
        changes = method not in SAFE_METHODS and path not in READ_ONLY_POSTS
        if method not in SAFE_METHODS:
            origin = headers.get("origin")
            if headers.get("sec-fetch-site") == "cross-site" or (origin and not _same_origin(origin, headers)):
                return 403, f"cross-site request refused (Origin `{origin}`)"
        if self._checks_itself(path):
            return None
        if (changes or (self.public and not self.is_open(path))) and not self._authorized(headers):
            what = "this call changes state" if changes else "this server is bound to a public address"
            return 401, f"{what}: send `Authorization: Bearer <token>` (the token from `serve.token_env`)"
        return None

    def _checks_itself(self, path: str) -> bool:
        return any(path == p or (p.endswith("/") and p != "/" and path.startswith(p)) for p in self.own_auth)

    def _authorized(self, headers: Headers) -> bool:
        scheme, _, given = (headers.get("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token)


def _same_origin(origin: str, headers: Headers) -> bool:
    host = headers.get("host") or ""
    return origin.split("://", 1)[-1].rstrip("/").lower() == host.lower()


# --- errors as JSON ---------------------------------------------------------------------------------------------

_STATUS: list[tuple[type[BaseException], int]] = [
    (NoSuchRun, 404),
    (NoSuchTable, 404),
    (UnsafeKey, 400),
    (QueryRefused, 400),
    (ConfigError, 400),
    (QueryTimeout, 504),
    (ConcurrentChange, 409),
    (LandfallError, 422),
]


def status_of(exc: BaseException) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


async def landfall_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=status_of(exc))


async def query_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"query failed: {exc}"}, status_code=400)


# --- the app ----------------------------------------------------------------------------------------------------

OPENAPI_BASE: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "landfall",
        "version": "1",
        "description": "Runs, tables, dead letters, quarantine, ingest and SQL over a landfall lake. Shapes are "
        "those of the CLI's `--json` output (README: Stable JSON shapes).",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"bearer": []}],
}


def create_app(
    pipeline: Pipeline,
    *,
    token: str,
    public: bool = False,
    extra_routes: Sequence[BaseRoute] = (),
    own_auth: Sequence[str] = (),
    metrics: Any = None,
    streams: Any = None,
) -> Starlette:
    """The ASGI app over `pipeline`. `token`: the bearer token; `public`: bound to a non-loopback address (every
    call then needs the token); `extra_routes`: more routes behind the same guard, and `own_auth` the paths of
    those that check the token themselves (see the module docstring); `metrics`: a `landfall.web.metrics.Metrics`
    to serve at `/metrics` (one is made when None); `streams`: the `landfall.streams.Streams` the process serves
    (their counts in `/metrics`, their logs in `/readyz`)."""
    import duckdb

    from landfall.web import api, pages
    from landfall.web.metrics import Metrics

    metrics = metrics or Metrics(pipeline, streams)
    schemas = SchemaGenerator(OPENAPI_BASE)

    def openapi(request: Request) -> Response:
        """The OpenAPI document of this API.
        ---
        summary: This document
        responses:
          200: {description: OpenAPI 3 JSON}
        """
        return JSONResponse(schemas.get_schema(app.routes))

    routes: list[BaseRoute] = [
        *extra_routes,  # first: the stream intake takes many small calls, each found without trying the rest
        *api.routes(),
        *metrics.routes(),
        Route("/openapi.json", openapi, methods=["GET"]),
        *pages.routes(),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={LandfallError: landfall_error, duckdb.Error: query_error},
    )
    app.state.pipeline = pipeline
    app.state.metrics = metrics
    app.state.streams = streams
    app.add_middleware(Guard, token=token, public=public, is_open=pages.is_open, own_auth=own_auth)
    return app
