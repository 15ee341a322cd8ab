"""landfall: files land, workflows run, typed tables appear, SQL queries them.

The names below are imported when first used (PEP 562), so that importing a part of landfall (`landfall.cli`,
which sets the process up before anything heavy is imported) does not import all of it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # re-exported for type checkers (`X as X`); at run time `__getattr__` imports them
    from landfall.config import Settings as Settings
    from landfall.config import Workflow as Workflow
    from landfall.config import load_settings as load_settings
    from landfall.errors import ConfigError as ConfigError
    from landfall.errors import InvalidInput as InvalidInput
    from landfall.errors import LandfallError as LandfallError
    from landfall.outcomes import Summary as Summary
    from landfall.pipeline import Pipeline as Pipeline

_WHERE = {
    "ConfigError": "landfall.errors",
    "InvalidInput": "landfall.errors",
    "LandfallError": "landfall.errors",
    "Pipeline": "landfall.pipeline",
    "Settings": "landfall.config",
    "Summary": "landfall.outcomes",
    "Workflow": "landfall.config",
    "load_settings": "landfall.config",
}
__all__ = sorted(_WHERE)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'landfall' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
