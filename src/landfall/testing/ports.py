"""Loopback ports for the servers tests start, safe to stop a server on and start it again.

A port the kernel hands out for `bind(("127.0.0.1", 0))` comes from the ephemeral range, the same range every
outgoing connection takes its source port from. A test that kills a server and starts it again on the same port
(the store or database taken away mid-run) can then find the port taken in between: by another test's client
connection or server on another worker process. So these ports come from below the ephemeral range, which the
kernel never hands out by itself, and each pytest-xdist worker draws from its own slice of it: no two workers, and
no connection, can take a port one of them handed out.

    port = free_port()
    master, volume = free_ports(2, twin=True)   # each port's gRPC twin (port + 10000) free too
"""

from __future__ import annotations

import os
import random
import socket

BASE = range(10000, 20000)  # ports handed out; a twin (port + 10000) falls in 20000-29999, where none is drawn
TWIN = 10000
SLICES = 16  # one slice of BASE per worker; workers past the 16th share one (the bind check still guards)
_handed: set[int] = set()


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux's `ip_local_port_range`; 32768 elsewhere)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:  # noqa: PTH123 - not a zone path
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker() -> int:
    name = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under pytest-xdist
    return int(name[2:]) if name[2:].isdigit() else 0


def free_ports(n: int, *, twin: bool = False) -> list[int]:
    """`n` distinct free loopback ports (with `twin`, each port's gRPC twin `port + 10000` free too, SeaweedFS's
    rule), none this process handed out lately."""
    width = len(BASE) // SLICES
    low = BASE.start + (_worker() % SLICES) * width
    below = ephemeral_low() > BASE.stop + TWIN  # else the kernel's own ports, checked
    if len(_handed) > width // 2:
        _handed.clear()
    out: list[int] = []
    for _ in range(100_000):
        if len(out) == n:
            return out
        port = random.randrange(low, low + width) if below else _kernel_port()  # noqa: S311 - not a secret
        if (twin and port + TWIN > 65535) or port in _handed or port in out:
            continue
        if _bindable(port) and (not twin or _bindable(port + TWIN)):
            out.append(port)
            _handed.add(port)
    raise RuntimeError(f"no {n} free loopback ports found")


def free_port() -> int:
    """One free loopback port (see `free_ports`)."""
    return free_ports(1)[0]
