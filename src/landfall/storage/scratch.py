"""Local scratch folders (a job's transcoded copies, a hop's staged files, an object-store table's staged
commit): each is named for the process that made it, `landfall-<worker id>-<kind>-...` (the id of
`landfall.processes.worker_id`, `:` written as `!`), so that the folders of a process that died without removing
them (kill -9, the kernel's out-of-memory killer) are found and removed by the next recovery on the same machine
(`landfall process` and `up` when they start, and `up` every `lease_seconds`). A folder of a process that may be
running is left alone: one still running, one of another host or PID namespace (a scratch folder shared with
another machine or container), one of a system that does not say (`process_gone`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from functools import cache

from landfall.processes import process_gone, worker_id

log = logging.getLogger("landfall.storage")

_NAMED = re.compile(r"^landfall-(.+![0-9]+![0-9a-f]+-[0-9]+-[0-9]+)-[a-z]+-")


@cache
def _owner(pid: int) -> str:
    """This process's id in a folder name (`:` is no character for a Windows path), worked out once per process
    (`pid` is the cache key: a forked child has its own)."""
    return worker_id().replace(":", "!")


def prefix(kind: str) -> str:
    """The name a folder of `kind` (a word: `job`, `batch`, `staging`...) made by this process starts with."""
    return f"landfall-{_owner(os.getpid())}-{kind or 'fetch'}-"


def make(root: str, kind: str) -> str:
    """A fresh folder of `kind` under `root` (made if missing), named for this process."""
    os.makedirs(root, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix(kind), dir=root)


def sweep(root: str) -> list[str]:
    """Remove the folders under `root` made by processes of this machine that have provably exited."""
    removed = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        named = _NAMED.match(entry.name)
        if named is None or not process_gone(named[1].replace("!", ":")):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    if removed:
        log.info("removed %d scratch folders of processes that ended without removing them", len(removed))
    return removed
