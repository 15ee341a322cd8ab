"""The dashboard: pages served by the same process, assets inside the package (`static/`, `templates/`; nothing
is built or downloaded at install time).

Each page is one HTML shell (`templates/page.html`, no data in it) whose script (`static/app.js`, charts in
`static/chart.js`, inline SVG) reads the JSON API and draws the page; so the shells and `/static/` load without a
token even when the server is public (`is_open`), and every data call carries the token the user gave (kept in
the browser's local storage; a `#token=...` link sets it). Every page is sent with a strict Content-Security-Policy
(scripts, styles and connections from this server only, no framing).
"""

from __future__ import annotations

import html
import re
from importlib import resources

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

#: path -> (page name for app.js, title)
PAGES: dict[str, tuple[str, str]] = {
    "/": ("overview", "Overview"),
    "/runs": ("runs", "Runs"),
    "/runs/{run_id}": ("run", "Run"),
    "/tables": ("tables", "Tables"),
    "/tables/{name}": ("table", "Table"),
    "/dead-letters": ("dead", "Dead letters"),
    "/quarantine": ("quarantine", "Quarantine"),
    "/sql": ("sql", "SQL"),
}
_PAGE_PATTERNS = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in PAGES]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def is_open(path: str) -> bool:
    """Paths that need no token even on a public address: liveness, static assets and page shells."""
    return (
        path in ("/healthz", "/favicon.ico")
        or path.startswith("/static/")
        or any(p.match(path) for p in _PAGE_PATTERNS)
    )


def _folder(name: str) -> str:
    return str(resources.files("landfall.web") / name)


def _shell() -> str:
    return (resources.files("landfall.web") / "templates" / "page.html").read_text(encoding="utf-8")


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = []
    shell = _shell()
    for path, (name, title) in PAGES.items():
        body = shell.replace("{{page}}", html.escape(name)).replace("{{title}}", html.escape(title))

        def render(request: Request, body: str = body) -> Response:
            return HTMLResponse(body, headers=SECURITY_HEADERS)

        out.append(Route(path, render, methods=["GET"], include_in_schema=False))
    out.append(Mount("/static", app=StaticFiles(directory=_folder("static")), name="static"))
    out.append(Route("/favicon.ico", _favicon, methods=["GET"], include_in_schema=False))
    return out


def _favicon(request: Request) -> Response:
    svg = (resources.files("landfall.web") / "static" / "favicon.svg").read_bytes()
    return Response(svg, media_type="image/svg+xml")
