"""Fault injection for crash tests: `LANDFALL_CRASH_AT=<point>` makes the process kill itself (SIGKILL, as a
power cut or the OOM killer would) when it reaches that point. Unset, each check is a few dict lookups.

Points: `after_write` (engine wrote staged files), `after_publish` (files moved into the table, nothing
committed), `after_child_commit` (a child table's log committed, its parent's not yet), `after_table_commit`
(the table format's own log committed, e.g. Delta; the state store not yet), `after_commit` (catalog and runs
committed, cleanup not yet done).

`LANDFALL_PAUSE_AT=<point>` (with `LANDFALL_PAUSE_SECONDS`, 10 by default) makes the process stop there once for
that long instead, its other threads (heartbeats) running on: a worker caught in the middle of a commit, for
tests of what other processes and hosts do meanwhile.

`LANDFALL_REFUSE_AT=<point>` makes the process's first pass there raise `ConcurrentChange`, as a commit refused
because another one changed the table meanwhile: the job runs again on the new state.
"""

from __future__ import annotations

import os
import signal
import time

POINTS = ("after_write", "after_publish", "after_child_commit", "after_table_commit", "after_commit")


_paused: set[str] = set()
_refused: set[str] = set()


def crash_point(name: str) -> None:
    if os.environ.get("LANDFALL_REFUSE_AT") == name and name not in _refused:
        from landfall.errors import ConcurrentChange

        _refused.add(name)
        raise ConcurrentChange(f"refused at `{name}` (LANDFALL_REFUSE_AT), as if another commit came first")
    if os.environ.get("LANDFALL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("LANDFALL_PAUSE_AT") == name and name not in _paused:
        _paused.add(name)
        time.sleep(float(os.environ.get("LANDFALL_PAUSE_SECONDS", "10")))


def exited_worker_id() -> str:
    """The worker id (`processes.worker_id`) of a process of this machine that has exited: a worker killed while
    it held something."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "from landfall.processes import worker_id; print(worker_id())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
