"""Thread pools shared by the whole process, made on first use (hashing files, counting lines)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_POOLS: dict[str, ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def pool(name: str, workers: int = 2) -> ThreadPoolExecutor:
    """The process's pool called `name` (its threads are named `landfall-<name>`)."""
    with _LOCK:
        if name not in _POOLS:
            _POOLS[name] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"landfall-{name}")
        return _POOLS[name]
