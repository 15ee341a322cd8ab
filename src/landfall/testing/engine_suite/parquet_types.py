"""The engine conformance suite: Parquet files of types an engine, or a table format, does not hold as they are
(decimals of more than 38 digits, nanosecond timestamps and times, GeoParquet) load with every value kept."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from landfall.testing.engine_suite.base import EngineFixtures, assert_ok, column_types
from landfall.testing.lake import wf


class ParquetTypesTests(EngineFixtures):
    def test_parquet_decimals_of_more_than_38_digits_are_text(self, make, tmp_path):
        """A Parquet decimal of more than 38 digits (`decimal256`, as pyarrow writes one), which no engine or Delta
        table holds, loads as text with every digit, at the top and inside a struct (before: a double,
        1.2345678901234566e+47)."""
        from decimal import Decimal

        wide = "123456789012345678901234567890123456789012345678.12"
        kind = pa.decimal256(50, 2)
        table = pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "d": pa.array([Decimal(wide), Decimal("-0.50")], kind),
                "s": pa.array([{"x": Decimal(wide)}, None], pa.struct([pa.field("x", kind)])),
            }
        )
        pq.write_table(table, tmp_path / "w.parquet")
        lake = make(wf("t"))
        lake.land("t/w.parquet", (tmp_path / "w.parquet").read_bytes())
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT d, s.x FROM t ORDER BY id") == [(wide, wide), ("-0.50", None)]
        assert column_types(lake, "t")["d"] == "string"

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_parquet_nanoseconds_times_and_geometry_load(self, make, tmp_path, fmt):
        """Parquet columns of DuckDB 2's newer types and of types Spark cannot read: nanosecond timestamps (what
        pandas writes) load as microseconds when every value is a whole number of them, else as text with every
        digit; times keep every digit; a GeoParquet column is its WKB bytes. Before: `no Arrow type for DuckDB
        type TIME_NS` (and TIMESTAMPTZ_NS, GEOMETRY) on DuckDB, a Delta table of nanoseconds deltalake's reader
        refused (`timestampNanos`), and on Spark `The data type TIME is not supported` and `Illegal Parquet type:
        INT64 (TIMESTAMP(NANOS,false))`: each file dead."""
        import datetime as dt
        import json
        import struct

        at = 1_704_067_200_123_456_000  # 2024-01-01 00:00:00.123456, in nanoseconds
        wkb = struct.pack("<bIdd", 1, 1, 1.0, 2.0)  # POINT (1 2)
        geo = {"version": "1.0.0", "primary_column": "g", "columns": {"g": {"encoding": "WKB", "geometry_types": []}}}
        table = pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "naive": pa.array([at, None], pa.timestamp("ns")),
                "zoned": pa.array([at, at + 1_000], pa.timestamp("ns", tz="UTC")),
                "fine": pa.array([at + 789, None], pa.timestamp("ns")),
                "s": pa.array([{"at": at}, None], pa.struct([("at", pa.timestamp("ns"))])),
                # a field named like the type (DuckDB writes such a name unquoted in the column's type)
                "odd": pa.array([{"TIMESTAMP_NS": at}, None], pa.struct([("TIMESTAMP_NS", pa.timestamp("ns"))])),
                "t_us": pa.array([dt.time(10, 30), dt.time(23, 59, 59, 500_000)], pa.time64("us")),
                "t_ns": pa.array([37_800_123_456_789, None], pa.time64("ns")),  # 10:30:00.123456789
                "g": pa.array([wkb, None], pa.binary()),
            }
        ).replace_schema_metadata({"geo": json.dumps(geo)})
        pq.write_table(table, tmp_path / "n.parquet")
        lake = make(wf("t", write={"table": "t", "format": fmt}))
        lake.land("t/n.parquet", (tmp_path / "n.parquet").read_bytes())
        assert_ok(lake, lake.process())
        got = lake.rows(
            "SELECT naive, zoned, fine, s.at, CAST(t_us AS VARCHAR), CAST(t_ns AS VARCHAR), CAST(g AS BLOB) "
            "FROM t ORDER BY id"
        )
        utc = dt.UTC
        assert got == [
            (
                dt.datetime(2024, 1, 1, 0, 0, 0, 123456),
                dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=utc),
                "2024-01-01 00:00:00.123456789",
                dt.datetime(2024, 1, 1, 0, 0, 0, 123456),
                "10:30:00",
                "10:30:00.123456789",
                wkb,
            ),
            (None, dt.datetime(2024, 1, 1, 0, 0, 0, 123457, tzinfo=utc), None, None, "23:59:59.5", None, None),
        ]
        assert lake.rows('SELECT odd."TIMESTAMP_NS" FROM t ORDER BY id') == [
            (dt.datetime(2024, 1, 1, 0, 0, 0, 123456),),
            (None,),
        ]
        types = column_types(lake, "t")
        assert (types["naive"], types["zoned"], types["fine"], types["g"]) == (
            "timestamp[us]",
            "timestamp[us, tz=UTC]",
            "string",
            "binary",
        )
        if fmt == "delta":  # the table reads back through deltalake itself
            import deltalake

            rows = deltalake.DeltaTable(lake.pipeline.table("t").location).to_pyarrow_table().to_pylist()
            assert sorted(r["fine"] or "" for r in rows) == ["", "2024-01-01 00:00:00.123456789"]

    @pytest.mark.parametrize("fmt", ["parquet", "delta"])
    def test_parquet_intervals_load(self, make, tmp_path, fmt):
        """A Parquet interval (as DuckDB writes one) keeps its value, as its text (`1 day 02:00:00`) in every table
        (before: on Spark `Parquet type not yet supported: FIXED_LEN_BYTE_ARRAY (INTERVAL)`, the file dead)."""
        import duckdb

        path = (tmp_path / "i.parquet").as_posix()
        duckdb.connect().execute(
            "COPY (SELECT 1 AS id, INTERVAL '1 day 2 hours' AS iv, {'every': INTERVAL '90 minutes'} AS s) "
            f"TO '{path}' (FORMAT parquet)"
        )
        lake = make(wf("t", write={"table": "t", "format": fmt}))
        lake.land("t/i.parquet", (tmp_path / "i.parquet").read_bytes())
        assert_ok(lake, lake.process())
        assert lake.rows("SELECT CAST(iv AS VARCHAR), CAST(s.every AS VARCHAR) FROM t") == [
            ("1 day 02:00:00", "01:30:00")
        ]

    def test_parquet_int96_timestamps_keep_their_nanoseconds(self, make, tmp_path):
        """A legacy `INT96` timestamp (Impala, Hive) with a digit below the microsecond loads as text with every
        digit, as a nanosecond timestamp does (before: DuckDB's reader dropped them, `...00.123456789` loaded as
        `...00.123456`)."""
        at = 1_704_067_200_123_456_000  # 2024-01-01 00:00:00.123456, in nanoseconds
        table = pa.table({"id": [1, 2], "ts": pa.array([at + 789, at], pa.timestamp("ns"))})
        pq.write_table(table, tmp_path / "i.parquet", use_deprecated_int96_timestamps=True)
        lake = make(wf("t"))
        lake.land("t/i.parquet", (tmp_path / "i.parquet").read_bytes())
        assert_ok(lake, lake.process())
        got = lake.rows("SELECT ts FROM t ORDER BY id")
        assert got == [("2024-01-01 00:00:00.123456789",), ("2024-01-01 00:00:00.123456",)]
