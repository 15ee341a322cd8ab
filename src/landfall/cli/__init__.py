"""The `landfall` command: a thin adapter over `landfall.Pipeline`.

The group and its global options are in `app`; the commands, by what they do, in `loading` (`init`, `ingest`,
`process`), `running` (`up`, `worker`, `serve`), `runs` (`runs`, `dlq`), `catalog` (`tables`, `quarantine`,
`crawl`, `query`) and `demo`. `main` imports a command's module when the command is asked for (`app.COMMANDS`).
"""

from __future__ import annotations

import gc
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from landfall.cli.app import Ctx, main

__all__ = ["Ctx", "entry", "main"]

# The cyclic collector's first threshold in the `landfall` process (Python's default is 700). Starting a command
# makes some 40,000 objects that live as long as the process (modules, classes, the config models); at the default
# the collector walks them again and again while they are made (65 young and 6 middle collections, 14-17 ms of
# CPU, about 6% of a `landfall process` with nothing to do). A process that runs for long still collects, every
# 100,000 new objects (mypy sets 200,000).
GC_THRESHOLD = 100_000


def entry() -> None:
    """The `landfall` command (console script and `python -m landfall`)."""
    tune_collector()
    from landfall.cli.app import entry as run

    run()


def tune_collector() -> None:
    """The collector's thresholds of a `landfall` process, set before the command imports anything heavy."""
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def __getattr__(name: str) -> Any:
    if name in ("Ctx", "main"):
        return getattr(importlib.import_module("landfall.cli.app"), name)
    raise AttributeError(f"module 'landfall.cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
