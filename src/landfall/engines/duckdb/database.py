"""The process's DuckDB databases: one per lake (per `Setup`), shared by every engine of that lake, so that
workers draw on one pool of threads (a lone big file gets every core) and one memory limit; temp views and
tables stay per connection (each engine has its own cursor).

An engine set up from `landfall.yaml` gets a sandboxed database: it reaches only the lake's folders (landing,
tables, quarantine, and the local scratch folder it spills to), installs and loads no extension, and its
configuration is locked. Workflow SQL is checked when the config loads (`landfall.sqlcheck`); this is the
other side of that check, for whatever a check could miss.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import duckdb
import msgspec

from landfall.engines.duckdb.sql import lit


def spellings(location: str) -> list[str]:
    """A table folder as DuckDB may spell it when it checks access: a folder, or a URL with and without the
    extra `/` an fsspec filesystem puts after `proto://` (`memory:///lake/...`)."""
    if "://" not in location:
        return [location.rstrip("/") + "/"]
    proto, _, rest = location.partition("://")
    rest = rest.strip("/")
    return [f"{proto}://{rest}/", f"{proto}:///{rest}/"]


class Setup(msgspec.Struct, frozen=True):
    """How a database is made. Engines with equal setups share one database."""

    threads: int | None = None
    memory_limit: str | None = None  # DuckDB's `memory_limit` (`"1GB"`); None: DuckDB's default (80% of RAM)
    temp_directory: str | None = None  # where DuckDB spills what does not fit in memory
    allowed: tuple[str, ...] | None = None  # the only folders it may read or write; None: no sandbox

    @classmethod
    def for_lake(cls, settings: Any) -> Setup:
        """The sandboxed setup of a lake: its zones and scratch folder, with the `duckdb:` settings."""
        scratch = settings.scratch_root
        places = [settings.landing_url, settings.tables_url, settings.quarantine_url, scratch]
        options = settings.duckdb
        return cls(
            threads=options.threads,
            memory_limit=options.memory_limit,
            temp_directory=os.path.join(scratch, "duckdb"),
            allowed=tuple(dict.fromkeys(p for place in places for p in spellings(place))),
        )


_LOCK = threading.Lock()
_OPEN: weakref.WeakValueDictionary[Setup, duckdb.DuckDBPyConnection] = weakref.WeakValueDictionary()


def database(setup: Setup) -> duckdb.DuckDBPyConnection:
    """The database for `setup`, made on first use; it lives while an engine holds it."""
    with _LOCK:
        db = _OPEN.get(setup)
        if db is None:
            db = duckdb.connect(":memory:")
            for statement in _statements(setup):
                db.execute(statement)
            _OPEN[setup] = db
        return db


def _statements(setup: Setup) -> list[str]:
    out = [
        "SET preserve_insertion_order = false",
        "SET GLOBAL TimeZone = 'UTC'",
    ]
    if setup.threads:
        out.append(f"SET threads = {int(setup.threads)}")
    if setup.memory_limit:
        out.append(f"SET memory_limit = {lit(setup.memory_limit)}")
    if setup.temp_directory:
        os.makedirs(setup.temp_directory, exist_ok=True)
        out.append(f"SET temp_directory = {lit(setup.temp_directory)}")
    if setup.allowed is not None:
        out += [
            "SET allowed_directories = [" + ", ".join(lit(d) for d in setup.allowed) + "]",
            "SET enable_external_access = false",
            "SET autoinstall_known_extensions = false",
            "SET autoload_known_extensions = false",
            "SET lock_configuration = true",
        ]
    return out
