"""Local scratch folders (a job's transcoded copies, a hop's staged files, an object-store table's staged
commit): each is named for the process that made it, `landfall-<pid>@<host>-<kind>-...`, so that the folders of a
process that died without removing them (kill -9, the kernel's out-of-memory killer) are found and removed by
the next recovery on the same host (`landfall process` and `up` when they start, and `up` every
`lease_seconds`). A folder of another host (a scratch folder on a shared mount) or of a process still running is
left alone.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import tempfile

log = logging.getLogger("landfall.storage")


def prefix(kind: str) -> str:
    """The name a folder of `kind` (a word: `job`, `batch`, `staging`...) made by this process starts with."""
    return f"landfall-{os.getpid()}@{socket.gethostname()}-{kind or 'fetch'}-"


def make(root: str, kind: str) -> str:
    """A fresh folder of `kind` under `root` (made if missing), named for this process."""
    os.makedirs(root, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix(kind), dir=root)


def sweep(root: str) -> list[str]:
    """Remove the folders under `root` made by processes of this host that are no longer running."""
    named_here = re.compile(rf"^landfall-(\d+)@{re.escape(socket.gethostname())}-[a-z]+-")
    removed = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        named = named_here.match(entry.name)
        if named is None or _running(int(named[1])):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    if removed:
        log.info("removed %d scratch folders of processes that ended without removing them", len(removed))
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
