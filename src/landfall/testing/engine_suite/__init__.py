"""Conformance tests every `Engine` must pass: a workflow gives the same rows, types, quarantine lines and error
messages whichever engine runs it.

A backend's test module subclasses `EngineTests` and supplies only the `engine_config` fixture: the top-level
`landfall.yaml` keys that choose and set up the engine (`{"engine": "duckdb"}`). Each test lands files in a
temporary lake, runs `process` and reads the result the way users do (`query`, `runs`, the table's files).

An engine that cannot do something yet declares it in `gaps` (test name -> the documented reason); such a test
is expected to fail (strictly: once the engine passes it, the gap must be removed).
"""

from __future__ import annotations

from landfall.testing.engine_suite.bad_input import BadInputTests
from landfall.testing.engine_suite.dates import DateTests
from landfall.testing.engine_suite.evolution import EvolutionTests
from landfall.testing.engine_suite.exactness import ExactnessTests
from landfall.testing.engine_suite.parquet_types import ParquetTypesTests
from landfall.testing.engine_suite.reading import ReadingTests
from landfall.testing.engine_suite.transforms import TransformTests

__all__ = ["EngineTests"]


class EngineTests(
    ReadingTests, DateTests, BadInputTests, TransformTests, EvolutionTests, ExactnessTests, ParquetTypesTests
):
    """The engine conformance suite (see the package's docstring): reading (`reading.py`) and dates, times and
    timestamps (`dates.py`), rows that cannot be read and bad input (`bad_input.py`), then transform steps and
    quality rules (`transforms.py`), schema evolution (`evolution.py`), then values never rounded or cut to fit a
    type (`exactness.py`) and Parquet types no engine or table format holds as they are (`parquet_types.py`), on
    the fixtures of `base.py`."""
