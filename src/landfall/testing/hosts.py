"""Several hosts on one machine, for tests of many workers on many hosts.

Each host is a network namespace (`ip netns`) joined to a bridge in this one by a veth pair, with its own host
name and PID namespace (`unshare --uts --pid --mount-proc`), temporary folder and HOME. A process on one host
cannot see another host's processes (PIDs mean nothing across hosts, as on separate machines) and reaches the
test servers only over the bridge: servers listen on this machine's loopback, and a relay in this namespace
forwards the bridge address (`server_address`) to them, so every host uses one `landfall.yaml`.

This needs root and iproute2 (`ip`). Where the namespaces cannot be made (`Hosts.possible()` is False),
`Hosts(..., isolate=False)` runs each host as plain processes with their own temporary folder and HOME and a
`server_address` of 127.0.0.1: separate processes, not separate machines.

    with Hosts(tmp_path, 3, forward=[pg.port, s3.ports["s3"]]) as hosts:
        proc = hosts.popen(0, [sys.executable, "-m", "landfall", "--config", cfg, "worker"])
        hosts.kill(0)            # SIGKILL everything on host 0
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Relay:
    """Forwards TCP connections from `listen` (host, port) to `target` (host, port), one thread per direction."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.server.settimeout(0.5)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name=f"relay-{listen[1]}", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:  # the server is down (a restart test): the client sees the connection close
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        socks = [a, b]
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(socks, [], [], 0.5)
                for s in readable:
                    data = s.recv(1 << 16)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            for s in socks:
                try:
                    s.close()
                except OSError:
                    pass
            with self._lock:
                self._conns = [c for c in self._conns if c not in socks]

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        self._thread.join(5)
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.close()
            except OSError:
                pass


class Hosts:
    """`count` hosts on this machine (see the module's docstring)."""

    def __init__(self, workdir: str | os.PathLike[str], count: int, *, forward: list[int], isolate: bool = True):
        self.workdir = Path(workdir)
        self.count = count
        self.forward = forward
        self.isolate = isolate
        tag = secrets.token_hex(3)
        self.names = [f"lf{tag}h{i}" for i in range(count)]
        self.bridge = f"lf{tag}br"
        net = 200 + secrets.randbelow(50), secrets.randbelow(250)
        self._subnet = f"10.{net[0]}.{net[1]}"
        self.server_address = f"{self._subnet}.1" if isolate else "127.0.0.1"
        self._relays: list[Relay] = []
        self._procs: dict[int, list[subprocess.Popen[str]]] = {i: [] for i in range(count)}
        self._made: list[str] = []

    @staticmethod
    def possible() -> bool:
        """Whether network and PID namespaces can be made here (root, iproute2, unshare)."""
        if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
            return False
        name = f"lfprobe{secrets.token_hex(3)}"
        try:
            if _ip("netns", "add", name, check=False).returncode != 0:
                return False
            probe = ["ip", "netns", "exec", name, "unshare", "--uts", "--pid", "--fork", "--mount-proc", "true"]
            return subprocess.run(probe, capture_output=True).returncode == 0
        finally:
            _ip("netns", "del", name, check=False)

    def start(self) -> Hosts:
        for i in range(self.count):
            (self.workdir / f"host{i}" / "tmp").mkdir(parents=True, exist_ok=True)
        if not self.isolate:
            return self
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self._made.append(f"link:{self.bridge}")
            _ip("addr", "add", f"{self.server_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, ns in enumerate(self.names):
                _ip("netns", "add", ns)
                self._made.append(f"netns:{ns}")
                outside, inside = f"{ns}a", f"{ns}b"
                _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
                self._made.append(f"link:{outside}")
                _ip("link", "set", inside, "netns", ns)
                _ip("link", "set", outside, "master", self.bridge)
                _ip("link", "set", outside, "up")
                _ip("-n", ns, "addr", "add", f"{self._subnet}.{10 + i}/24", "dev", inside)
                _ip("-n", ns, "link", "set", inside, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
            for port in self.forward:
                self._relays.append(Relay((self.server_address, port), ("127.0.0.1", port)))
        except BaseException:
            self.close()
            raise
        return self

    def popen(self, i: int, argv: list[str], *, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
        """Start `argv` on host `i` (its own session: `kill` takes the whole tree). Output to `host<i>/*.log`."""
        home = self.workdir / f"host{i}"
        full_env = {**os.environ, **(env or {}), "HOME": str(home), "TMPDIR": str(home / "tmp")}
        if self.isolate:
            script = f'hostname host{i}; exec "$@"'
            argv = ["ip", "netns", "exec", self.names[i], "unshare", "--uts", "--pid", "--fork", "--kill-child",
                    "--mount-proc", "sh", "-c", script, "sh", *argv]  # fmt: skip
        log = open(home / f"{len(self._procs[i])}.log", "w")  # noqa: SIM115 - the process's lifetime
        proc = subprocess.Popen(
            argv, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw
        )
        proc.log_path = log.name  # type: ignore[attr-defined]
        log.close()
        self._procs[i].append(proc)
        return proc

    def output(self, proc: subprocess.Popen[str]) -> str:
        return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        """Signal every process started on host `i` (SIGKILL: as if the machine lost power)."""
        for proc in self._procs[i]:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
        if sig == signal.SIGKILL:
            for proc in self._procs[i]:
                proc.wait(30)

    def signal(self, proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> None:
        """Signal the program a `popen` started (not the namespace wrappers around it): SIGTERM stops landfall
        cleanly, finishing its batches in flight."""
        import psutil

        target = proc.pid
        if self.isolate:
            children = psutil.Process(proc.pid).children()
            if not children:
                return
            target = children[0].pid
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass

    def close(self) -> None:
        for i in self._procs:
            self.kill(i)
        for relay in self._relays:
            relay.close()
        self._relays = []
        for made in reversed(self._made):
            kind, _, name = made.partition(":")
            _ip(*(("netns", "del", name) if kind == "netns" else ("link", "del", name)), check=False)
        self._made = []

    def __enter__(self) -> Hosts:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()
