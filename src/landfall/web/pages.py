"""The dashboard: pages served by the same process, assets inside the package (nothing built or downloaded).

Each page is an HTML shell (no data in it) whose script reads the JSON API; so the shells and `/static/` load
without a token even when the server is public (`is_open`), and every data call carries the token."""

from __future__ import annotations

from starlette.routing import BaseRoute

#: the dashboard's page paths (shells without data)
PAGES: tuple[str, ...] = ()


def is_open(path: str) -> bool:
    """Paths that need no token even on a public address: liveness, static assets and page shells."""
    return path == "/healthz" or path.startswith("/static/")


def routes() -> list[BaseRoute]:
    return []
