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
    start = _start_time(pid)
    machine = _machine()
    return f"{machine}-{start}" if start is not None and machine else None


def _machine() -> str | None:
    """This boot of this kernel and this PID namespace: where a PID means the same process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip().replace("-", "")[:12]
        ns = os.readlink("/proc/self/ns/pid").partition("[")[2].rstrip("]")
    except OSError:
        return None
    return f"{boot}-{ns}" if boot and ns.isdigit() else None


def _start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (None: no such process, a zombie, or not Linux)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rpartition(")")[2].split()
    except OSError:
        return None
    if not fields or fields[0] in ("Z", "X"):  # exited, waiting to be reaped by its parent
        return None
    return int(fields[19])


def process_gone(worker: str) -> bool:
    """True only when `worker` (an id from `worker_id`, maybe with a `:thread` suffix) is provably a process of
    this boot and PID namespace that has exited; a worker elsewhere is only ever given up on by its lease."""
    parts = worker.split(":")
    if len(parts) < 3 or not parts[1].isdigit():
        return False
    boot, _, rest = parts[2].partition("-")
    ns, _, start = rest.partition("-")
    machine = _machine()
    if not start.isdigit() or machine != f"{boot}-{ns}":
        return False
    return _start_time(int(parts[1])) != int(start)
