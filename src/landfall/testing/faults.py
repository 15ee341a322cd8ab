"""Fault injection for crash tests: `LANDFALL_CRASH_AT=<point>` makes the process kill itself (SIGKILL, as a
power cut or the OOM killer would) when it reaches that point. Unset, each check is one dict lookup.

Points: `after_write` (engine wrote staged files), `after_publish` (files moved into the table, catalog not
yet committed), `after_commit` (catalog and runs committed, cleanup not yet done).
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_write", "after_publish", "after_commit")


def crash_point(name: str) -> None:
    if os.environ.get("LANDFALL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
