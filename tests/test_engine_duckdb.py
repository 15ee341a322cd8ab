"""The DuckDB engine passes the engine conformance suite (landfall.testing.engine_suite)."""

from __future__ import annotations

import pytest

from landfall.testing.engine_suite import EngineTests


class TestDuckDBEngine(EngineTests):
    @pytest.fixture
    def engine_config(self):
        return {"engine": "duckdb"}
