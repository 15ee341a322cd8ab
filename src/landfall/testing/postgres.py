"""A real PostgreSQL server for tests, started on loopback in a temporary folder and stopped afterwards.

    with postgres_server() as pg:
        url = pg.create_database()          # postgresql://landfall@127.0.0.1:PORT/t1
        store = open_state(url)

The server binaries come from `pg_config --bindir` (Debian keeps `initdb` and `pg_ctl` off PATH). As root (CI),
`initdb` and the server run as the `postgres` user via `runuser`, which is what `initdb` insists on. The cluster
uses `-A trust` on 127.0.0.1 and a Unix socket in the temporary folder, with durability off (a test server).

The `postgres` pytest fixture (one server per test session; `create_database()` per test) is imported by the
tests' conftest. Where the binaries are missing it skips with what to install; with `LANDFALL_REQUIRE_SERVERS=1`
(CI) it fails instead, so a CI run never skips these tests silently.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from landfall.testing.ports import free_port

SUPERUSER = "landfall"


class PostgresNotFound(RuntimeError):
    """The PostgreSQL server binaries (`initdb`, `pg_ctl`) are not installed."""


def bindir() -> Path:
    """The folder holding `initdb` and `pg_ctl`; raises `PostgresNotFound` with what to install."""
    try:
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        if (Path(out) / "initdb").exists():
            return Path(out)
    except (OSError, subprocess.CalledProcessError):
        pass
    found = shutil.which("initdb")
    if found and (Path(found).resolve().parent / "pg_ctl").exists():
        return Path(found).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(candidate).parent
    raise PostgresNotFound(
        "PostgreSQL server binaries (`initdb`, `pg_ctl`) not found; install them "
        "(Debian: `apt-get install -y postgresql`)"
    )


class PostgresServer:
    """A running test cluster: `url(db)`, `create_database()`, `stop()`/`start()` (for restart tests)."""

    def __init__(self, root: Path, port: int, as_user: list[str]) -> None:
        self.root, self.port, self._as_user = root, port, as_user
        self.data = root / "data"
        self.socket_dir = root / "sock"
        self._bin = bindir()
        self._names = itertools.count(1)

    @property
    def pid(self) -> int:
        """The server's main process (its backends are that process's children)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self._as_user, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr or proc.stdout}\n{tail}")
        return proc

    def init(self) -> None:
        self._run(
            str(self._bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            SUPERUSER,
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB"
        )
        self._run(
            str(self._bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self._bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; returns its URL."""
        name = name or f"t{next(self._names)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with `psql` (tests that need the server's own view); returns its output."""
        args = [str(self._bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        args += ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql]
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL cluster on a free loopback port; stop it and remove its folder afterwards."""
    bindir()  # fail early, with what to install
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="landfall-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    server = PostgresServer(root, free_port(), as_user)
    (server.socket_dir).mkdir()
    if as_user:
        shutil.chown(server.socket_dir, "postgres", "postgres")
    try:
        server.init()
        server.start()
        yield server
    finally:
        try:
            server.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the test session (see `postgres_server`)."""
    try:
        bindir()
    except PostgresNotFound as exc:
        if os.environ.get("LANDFALL_REQUIRE_SERVERS"):
            raise
        pytest.skip(str(exc))
    with postgres_server() as server:
        yield server
