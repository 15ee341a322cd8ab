"""Which process is which: an id for this process that pins it down (`worker_id`), and whether a process named
by such an id is provably gone (`process_gone`). Leases (`landfall.state`), readers of table files
(`landfall.tables.readers`) and scratch folders (`landfall.storage.scratch`) use them to give up at once on a
process of this machine that has exited, and never on one elsewhere (another host, another PID namespace: a
container sharing this kernel), which only its lease or its age gives up on."""

from __future__ import annotations

import os
import secrets
import socket


def worker_id() -> str:
    """`host:pid:identity`: identity pins the process down (boot id, PID namespace, start time) where the
    system tells them, so that `reap` can see at once that a worker on this machine is gone; random otherwise."""
    return f"{socket.gethostname()}:{os.getpid()}:{_process_identity(os.getpid()) or secrets.token_hex(4)}"


def _process_identity(pid: int) -> str | None:
    """`<boot id>-<pid namespace>-<start time>` of a process of this PID namespace, or None (not Linux, gone)."""
    stat = _stat(pid)
    machine = _machine()
    return f"{machine}-{stat[1]}" if stat is not None and machine else None


def _machine() -> str | None:
    """This boot of this kernel and this PID namespace: where a PID means the same process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip().replace("-", "")[:12]
        ns = os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return None
    return f"{boot}-{ns}" if boot and ns.isdigit() else None


def _stat(pid: int) -> tuple[str, int] | None:
    """The process's state (`R`, `S`, `Z`...) and when it started, in clock ticks since boot; None when the system
    does not say: no such process, not Linux, or a `/proc` that hides other users' processes (`hidepid`)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return None
    return (fields[0], int(fields[19])) if len(fields) > 19 else None


def process_gone(worker: str) -> bool:
    """True only when `worker` (an id from `worker_id`, maybe with a `:thread` suffix) is provably a process of
    this boot and PID namespace that has exited; a worker elsewhere is only ever given up on by its lease.

    Provably: no process has its PID (`kill(pid, 0)` says so), or the one that has it is a zombie or started at
    another time (the PID was used again). A process whose `/proc` entry cannot be read though it exists (another
    user's, on a `/proc` mounted with `hidepid`) is not gone: its lease says when it is."""
    parts = worker.split(":")
    if len(parts) < 3 or not parts[1].isdigit():
        return False
    boot, _, rest = parts[2].partition("-")
    ns, _, start = rest.partition("-")
    machine = _machine()
    if not start.isdigit() or machine != f"{boot}-{ns}":
        return False
    pid = int(parts[1])
    try:
        os.kill(pid, 0)  # signal 0 sends nothing: it asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # it exists and is another user's (EPERM)
        pass
    stat = _stat(pid)
    if stat is None:  # it exists, and `/proc` does not show it to this user: not provably gone
        return False
    state, started = stat
    return state in ("Z", "X") or started != int(start)
