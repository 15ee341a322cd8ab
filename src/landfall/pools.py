"""Thread pools shared by the whole process, made on first use (hashing files, counting lines).

Each open `Pipeline` holds the pools (`hold`); when the last one closes (`let_go`) the pools are shut down and
their threads joined, and the next use makes them again."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()
_HOLDERS = 0


def pool(name: str, workers: int = 2) -> ThreadPoolExecutor:
    """The process's pool called `name` (its threads are named `landfall-<name>`)."""
    with _LOCK:
        if name not in _POOLS:
            _POOLS[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"landfall-{name}")
        return _POOLS[name]


def hold() -> None:
    """One more user of the pools (a `Pipeline` being opened)."""
    global _HOLDERS
    with _LOCK:
        _HOLDERS += 1


def let_go() -> None:
    """One user fewer; the last one shuts the pools down and waits for their threads."""
    global _HOLDERS
    with _LOCK:
        _HOLDERS = max(0, _HOLDERS - 1)
        if _HOLDERS:
            return
        pools = list(_POOLS.values())
        _POOLS.clear()
    for p in pools:
        p.shutdown(wait=True, cancel_futures=True)
