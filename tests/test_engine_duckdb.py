"""The DuckDB engine passes the engine conformance suite (landfall.testing.engine_suite)."""

from __future__ import annotations

import pytest

from landfall.testing.engine_suite import EngineTests


class TestDuckDBEngine(EngineTests):
    gaps = {
        "test_a_late_value_is_never_rounded_or_cut_to_fit_a_sampled_type": (
            "DuckDB's CSV reader converts values past its type-detection sample non-strictly (2.5 -> 3 in a BIGINT "
            "column), though its sniffer refuses them: duckdb/duckdb#25824 (dates and timestamps are read with the "
            "detected format, which is strict: test_a_late_time_of_day_in_a_date_column_is_kept)"
        ),
    }

    @pytest.fixture
    def engine_config(self):
        return {"engine": "duckdb"}


class TestDuckDBEngineStreaming(TestDuckDBEngine):
    """The same suite with every file read the way large files are (not parsed into memory first; a CSV's
    dialect and columns fixed by one sniff)."""

    @pytest.fixture(autouse=True)
    def _as_if_large(self, monkeypatch):
        from landfall.engines.duckdb import reading

        monkeypatch.setattr(reading, "MATERIALIZE_BYTES", 0)


@pytest.mark.parametrize(
    ("steps", "parsed_first"),
    [
        ({}, False),
        ({"transform": [{"filter": "n > 1"}]}, True),
        ({"validate": [{"not_null": ["n"], "action": "quarantine"}]}, True),
    ],
)
def test_a_small_file_is_parsed_into_memory_only_when_read_more_than_once(make_lake, monkeypatch, steps, parsed_first):
    """A workflow without steps, rules or merge reads a file once, in the COPY that writes the table: parsing it
    into memory first would only copy the rows. Steps and rules read it several times: a small file is parsed
    once, into memory."""
    from landfall.engines.duckdb.context import JobContext

    tables: list[str] = []
    real = JobContext.table
    monkeypatch.setattr(JobContext, "table", lambda self, select: tables.append(select) or real(self, select))
    lake = make_lake([{"name": "t", "match": "t/", "read": {"format": "csv"}, "write": {"table": "t"}, **steps}])
    lake.land("t/a.csv", "n,day\n1,2024-01-01\n2,2024-01-02\n3,2024-01-03\n")
    assert lake.process().ok
    assert any(s.startswith("SELECT * FROM __lf_v") for s in tables) == parsed_first
    assert lake.pipeline.query("SELECT count(*), max(day)::VARCHAR FROM t")[1][0][1] == "2024-01-03"
