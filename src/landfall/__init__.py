"""landfall: files land, workflows run, typed tables appear, SQL queries them.

The names below are imported when first used (PEP 562), so that importing a part of landfall (`landfall.cli`,
which sets the process up before anything heavy is imported) does not import all of it."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from landfall.config import Settings, Workflow, load_settings
    from landfall.errors import ConfigError, InvalidInput, LandfallError
    from landfall.pipeline import Pipeline, Summary

_WHERE = {
    "ConfigError": "landfall.errors",
    "InvalidInput": "landfall.errors",
    "LandfallError": "landfall.errors",
    "Pipeline": "landfall.pipeline",
    "Settings": "landfall.config",
    "Summary": "landfall.pipeline",
    "Workflow": "landfall.config",
    "load_settings": "landfall.config",
}
__all__ = [
    "ConfigError",
    "InvalidInput",
    "LandfallError",
    "Pipeline",
    "Settings",
    "Summary",
    "Workflow",
    "load_settings",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'landfall' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
