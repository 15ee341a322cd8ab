"""Structured logs: `text` for people, `json` (one object per line) for machines."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from landfall.redaction import RedactingFilter

_EXTRA = ("run_id", "file", "workflow", "status", "rows", "table")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _EXTRA:
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")


def setup(level: int = logging.INFO, fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())  # handler-level: it sees the records of every `landfall.*` logger
    root = logging.getLogger("landfall")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
