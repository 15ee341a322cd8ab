"""`landfall serve`: the HTTP API, the web dashboard and `/metrics`, one ASGI app over one `Pipeline`.

Needs the `serve` extra (`pip install "landfall[serve]"`: starlette, uvicorn, prometheus-client,
python-multipart); `require()` says so in one line when it is missing. `create_app` (in `app.py`) builds the app,
`serve` (in `server.py`) runs it with uvicorn, alone or beside `Pipeline.up`.
"""

from __future__ import annotations

import importlib

from landfall.registry import missing_dependency

#: the modules the `serve` extra brings
NEEDS = {
    "starlette": "the app",
    "uvicorn": "the server",
    "prometheus_client": "/metrics",
    "python_multipart": "uploads",
}


def require() -> None:
    """Fail with the one-line install command when a library of the `serve` extra is missing."""
    for module in NEEDS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            raise missing_dependency("`landfall serve`", module, "serve") from None
