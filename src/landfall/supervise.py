"""Worker processes on one host: `landfall up --processes N` and `landfall worker --processes N` start N
`landfall worker` child processes and keep them running.

Each child is a `landfall worker --processes 1` with the parent's config, lake and log options, in a session of
its own (a Ctrl-C at the terminal reaches the parent only, which then stops the children once, cleanly). A child
that exits while the parent runs is started again (after 1 s, doubling to 30 s while it keeps dying young).
A child asks the kernel to send it SIGTERM if the parent dies (Linux), so no worker outlives its parent.
Stopping sends SIGTERM (a child finishes its batches in flight), then SIGKILL after `grace` seconds.

Unless `duckdb:` sets them, each child's DuckDB gets its share of the host: `threads` one N-th of the cores and
`memory_limit` one N-th of 80% of the memory (DuckDB's own default is 80% per process).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger("landfall")

PARENT_ENV = "LANDFALL_PARENT_PID"  # set in a child: the parent's pid, for `die_with_parent`


@dataclass
class _Child:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    due: float = 0.0  # when to start it again after it exited


@dataclass
class Supervisor:
    """Runs `count` copies of `argv` as child processes until `stop`."""

    argv: list[str]
    count: int
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    grace: float = 60.0  # seconds a stopping child may take to finish its batches before SIGKILL
    _children: list[_Child] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._children = [_Child(i) for i in range(self.count)]
        for child in self._children:
            self._spawn(child)
        self._thread = threading.Thread(target=self._watch, name="landfall-supervisor", daemon=True)
        self._thread.start()

    def pids(self) -> list[int]:
        return [c.proc.pid for c in self._children if c.proc is not None and c.proc.poll() is None]

    def stop(self) -> None:
        """SIGTERM every child, wait up to `grace` seconds for them to finish, SIGKILL what is left."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        live = [c.proc for c in self._children if c.proc is not None and c.proc.poll() is None]
        for proc in live:
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker process %d did not stop in %.0f s; killing it", proc.pid, self.grace)
                _signal(proc, signal.SIGKILL)
                proc.wait()

    def _spawn(self, child: _Child) -> None:
        env = {**os.environ, **self.env, PARENT_ENV: str(os.getpid())}
        child.proc = subprocess.Popen(self.argv, env=env, start_new_session=True)
        child.started = time.monotonic()
        log.info("worker process %d started (pid %d)", child.index, child.proc.pid)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for child in self._children:
                proc = child.proc
                if proc is not None and proc.poll() is not None:
                    lived = now - child.started
                    child.failures = 0 if lived > 60 else child.failures + 1
                    delay = min(30.0, 2.0 ** max(0, child.failures - 1))
                    log.warning(
                        "worker process %d (pid %d) exited with %s after %.0f s; starting it again in %.0f s",
                        child.index,
                        proc.pid,
                        proc.returncode,
                        lived,
                        delay,
                    )
                    child.proc, child.due = None, now + delay
                if child.proc is None and now >= child.due and not self._stop.is_set():
                    self._spawn(child)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        proc.send_signal(sig)
    except ProcessLookupError:
        pass


def share_of_host(count: int, threads: int | None, memory_limit: str | None) -> dict[str, str]:
    """Environment overrides giving each of `count` worker processes its share of the cores and of DuckDB's
    default memory bound, for what `duckdb:` leaves unset."""
    env: dict[str, str] = {}
    if threads is None:
        env["LANDFALL__DUCKDB__THREADS"] = str(max(1, (os.cpu_count() or 1) // count))
    if memory_limit is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 0
        if total:
            env["LANDFALL__DUCKDB__MEMORY_LIMIT"] = f"{max(256, int(total * 0.8 / count) >> 20)}MB"
    return env


def die_with_parent() -> None:
    """In a child a `Supervisor` started: have the kernel send SIGTERM when the parent dies (Linux), and stop at
    once if it is already gone."""
    parent = os.environ.get(PARENT_ENV)
    if not parent:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the parent stops its children when it can
        return
    if os.getppid() != int(parent):  # the parent died before the call above
        os.kill(os.getpid(), signal.SIGTERM)
