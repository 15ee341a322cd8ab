"""landfall: files land, workflows run, typed tables appear, SQL queries them."""

from landfall.config import Settings, Workflow, load_settings
from landfall.errors import ConfigError, InvalidInput, LandfallError
from landfall.pipeline import Pipeline, Summary

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
