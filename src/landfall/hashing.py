"""Content hashes: how landfall knows two files hold the same bytes. A landed file's hash is its content key in
the load history (the same bytes load once) and part of its commit marker in a Delta log (`replay.app_id`).

A lake hashes with one algorithm for its whole life, recorded in its tables zone (`_landfall/lake.json`, beside
the tables, so it outlives a lost state store as the tables and their markers do): BLAKE3 for a lake made now
(0.05 s of CPU for 368 MiB, where SHA-256 takes 0.19 s even with the CPU's SHA instructions), SHA-256 for a lake
that loaded files before the record existed (its load history and markers are SHA-256, and a file landed again
must still be known).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any, Protocol

from landfall.errors import ConfigError

log = logging.getLogger("landfall.hashing")

ALGORITHMS = ("blake3", "sha256")
NEW_LAKES = "blake3"
RECORD = "_landfall/lake.json"  # in the tables zone; folders starting with `_` are never tables
LEASE = "lake:content-hash"


class Hasher(Protocol):
    def update(self, data: bytes, /) -> Any: ...
    def hexdigest(self) -> str: ...


def hasher(algorithm: str) -> Hasher:
    """A new incremental hash of `algorithm` (`blake3` or `sha256`)."""
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake3":
        from blake3 import blake3

        return blake3()
    raise ConfigError(f"unknown content hash `{algorithm}`; landfall knows {', '.join(ALGORITHMS)}")


def of_bytes(data: bytes, algorithm: str) -> str:
    h = hasher(algorithm)
    h.update(data)
    return h.hexdigest()


def lake_algorithm(store: Any, zones: Any, *, wait: float = 60.0) -> str:
    """The content hash of this lake: the one its tables zone records; without a record, SHA-256 when the lake
    has loaded anything already (a table folder, or runs that ran in the state store), else BLAKE3; recorded
    then, under a lease in the state store, so that hosts starting on a new lake at once record one answer and
    a host that finds a record never decides again."""
    tables = zones.tables
    if (found := _recorded(tables)) is not None:
        return found
    from landfall.state.base import holding, new_id

    holder = new_id("hashing-")
    deadline = time.monotonic() + wait
    while True:
        with holding(store, LEASE, holder) as held:
            if held:
                if (found := _recorded(tables)) is not None:  # another process recorded it meanwhile
                    return found
                counts = store.counts()  # runs only queued (discovered, not hashed yet) are no history
                loaded = any(not f.startswith(("_", ".")) for f in tables.folders()) or any(
                    counts.get(status, 0) for status in ("running", "succeeded", "skipped", "failed", "dead")
                )
                algorithm = "sha256" if loaded else NEW_LAKES
                tables.write_bytes(RECORD, json.dumps({"content_hash": algorithm}).encode(), sync=True)
                if loaded:
                    log.info("this lake loaded files before it recorded its content hash: it keeps SHA-256")
                return algorithm
        if time.monotonic() > deadline:
            raise TimeoutError(f"another process has been recording the lake's content hash for {wait:.0f} s")
        time.sleep(0.05)


def _recorded(tables: Any) -> str | None:
    """The content hash the tables zone records; None without a record."""
    try:
        found = json.loads(tables.read_bytes(RECORD))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ConfigError(
            f"`{tables.path(RECORD)}` is not valid JSON ({exc}); it says which content hash the lake uses: "
            "restore it, or remove it to decide again from what the lake holds"
        ) from None
    if isinstance(found, dict) and found.get("content_hash") in ALGORITHMS:
        return str(found["content_hash"])
    raise ConfigError(
        f"`{tables.path(RECORD)}` names no content hash landfall knows (expected "
        f'`{{"content_hash": "blake3"}}` or `"sha256"`)'
    )
