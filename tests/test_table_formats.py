"""Both table formats pass the same conformance suite (landfall.testing.table_suite)."""

from __future__ import annotations

import pytest

from landfall.tables import open_table
from landfall.testing.table_suite import TableWriterTests


class TestParquetTable(TableWriterTests):
    @pytest.fixture
    def writer(self, tmp_path):
        return open_table("parquet", str(tmp_path / "t"))


class TestDeltaTable(TableWriterTests):
    @pytest.fixture
    def writer(self, tmp_path):
        return open_table("delta", str(tmp_path / "t"))
