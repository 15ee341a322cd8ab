"""Every type `cast:` and the readers' detection can produce, through every table format, read back by DuckDB
(`landfall query` and `read_parquet` of the table's files), pyarrow and deltalake: the same values come out.

A table format that cannot hold a type stores another (`TableWriter.stored_as`): a UUID is text everywhere (Delta
kept it as binary that deltalake could not read back: `Invalid storage type for UuidType: binary`), so is an
interval (Parquet's holds milliseconds and no negative value), and Delta, which has no time or unsigned types,
stores times as text and unsigned integers as the next signed type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from landfall.tables.delta import DeltaTable
from landfall.tables.parquet import ParquetTable
from landfall.types import USER_TYPES

from conftest import wf

UUID = "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
UTC = dt.UTC
# what `cast:` makes of one text value, by type name (every name `cast:` accepts is covered below)
CAST = {
    "string": ("x", "x"),
    "int": ("7", 7),
    "int32": ("7", 7),
    "int16": ("7", 7),
    "int8": ("7", 7),
    "float": ("1.5", 1.5),
    "float32": ("1.5", 1.5),
    "bool": ("true", True),
    "date": ("2024-02-29", dt.date(2024, 2, 29)),
    "timestamp": ("2024-02-29 10:11:12", dt.datetime(2024, 2, 29, 10, 11, 12)),
    "timestamptz": ("2024-02-29 10:11:12+02", dt.datetime(2024, 2, 29, 8, 11, 12, tzinfo=UTC)),
    "time": ("10:11:12", dt.time(10, 11, 12)),
    "json": ('{"a": [1, 2]}', '{"a": [1, 2]}'),
    "uuid": (UUID, UUID),
    "blob": ("abc", b"abc"),
    "decimal(10,2)": ("12.34", decimal.Decimal("12.34")),
}
# what the CSV reader detects from text, with no `cast:`
SNIFFED = {
    "s_bool": ("true", True),
    "s_int": ("42", 42),
    "s_double": ("2.5", 2.5),
    "s_date": ("2024-02-29", dt.date(2024, 2, 29)),
    "s_time": ("10:11:12", dt.time(10, 11, 12)),
    "s_ts": ("2024-02-29 10:11:12", dt.datetime(2024, 2, 29, 10, 11, 12)),
    "s_tstz": ("2024-02-29 10:11:12+00", dt.datetime(2024, 2, 29, 10, 11, 12, tzinfo=UTC)),
    "s_uuid": (UUID, UUID),
    "s_text": ("hello", "hello"),
}


def test_every_cast_type_is_covered():
    names = {k for k in USER_TYPES if USER_TYPES[k] in {USER_TYPES[c] for c in CAST if c in USER_TYPES}}
    assert names == set(USER_TYPES), set(USER_TYPES) - names


def _col(name: str) -> str:
    return "c_" + name.replace("(", "_").replace(",", "_").replace(")", "")


def _as_stored(value, fmt: str):
    """What a value reads back as, given what the format stores instead."""
    if fmt == "delta" and isinstance(value, dt.time):
        return value.isoformat()
    return value


def _norm(value):
    """One comparable form for what each reader gives (DuckDB's UUID object, pyarrow's JSON text, times zones)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, str) and value.startswith("{"):
        return json.loads(value)
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def _readers(lake, fmt: str) -> dict[str, dict]:
    """The table's first row (without lineage) through every reader."""
    cols, rows = lake.pipeline.query("SELECT * EXCLUDE (_source_file, _ingested_at, _run_id) FROM t")
    out = {"landfall query": dict(zip(cols, rows[0], strict=True))}
    table = lake.pipeline.table("t")
    if fmt == "delta":
        import deltalake

        arrow = deltalake.DeltaTable(table.location).to_pyarrow_table()
        files = deltalake.DeltaTable(table.location).file_uris()  # what Spark or Trino would read
        out["deltalake"] = arrow.to_pylist()[0]
    else:
        arrow = ds.dataset(table.location, format="parquet", partitioning="hive").to_table()
        files = [str(p) for p in ds.dataset(table.location, format="parquet").files]
    out["pyarrow"] = arrow.to_pylist()[0]
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    rel = con.sql("SELECT * FROM read_parquet(?)", params=[[f.removeprefix("file://") for f in files]])
    out["duckdb read_parquet"] = dict(zip(rel.columns, rel.fetchall()[0], strict=True))
    return out


def _check(lake, fmt: str, expected: dict) -> None:
    for reader, row in _readers(lake, fmt).items():
        for col, want in expected.items():
            got = row[col]
            assert _norm(got) == _norm(_as_stored(want, fmt)), (reader, col, got, want)


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_cast_types_round_trip_through_every_reader(make_lake, fmt):
    cast = {_col(k): k for k in CAST}
    lake = make_lake(
        [
            wf(
                "t",
                read={"format": "csv", "all_strings": True},
                transform=[{"cast": cast}],
                write={"table": "t", "format": fmt},
                retry={"max_attempts": 1},
            )
        ]
    )
    header = ",".join(cast)
    values = ",".join('"' + v.replace('"', '""') + '"' for v, _ in CAST.values())
    lake.land("t/a.csv", header + "\n" + values + "\n")
    summary = lake.process()
    assert summary.ok, [o.error for o in summary.outcomes]
    _check(lake, fmt, {_col(k): want for k, (_, want) in CAST.items()})


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_detected_types_round_trip_through_every_reader(make_lake, fmt):
    lake = make_lake(
        [
            wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt}, retry={"max_attempts": 1}),
        ]
    )
    rows = "\n".join(",".join(v for v, _ in SNIFFED.values()) for _ in range(3))
    lake.land("t/a.csv", ",".join(SNIFFED) + "\n" + rows + "\n")
    summary = lake.process()
    assert summary.ok, [o.error for o in summary.outcomes]
    _check(lake, fmt, {k: want for k, (_, want) in SNIFFED.items()})


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_nested_and_parquet_types_round_trip_through_every_reader(make_lake, fmt):
    """Nested JSON (a UUID and a time inside a struct and a list), and a Parquet file of types the readers never
    detect (unsigned integers, a time inside a struct) keep their values in every format."""
    lake = make_lake([wf("t", write={"table": "t", "format": fmt}, retry={"max_attempts": 1})])
    t = pa.table(
        {
            "u8": pa.array([200], pa.uint8()),
            "u32": pa.array([4_000_000_000], pa.uint32()),
            "u64": pa.array([18_000_000_000_000_000_000], pa.uint64()),
            "when": pa.array([{"at": dt.time(1, 2, 3), "id": UUID}]),
            "tags": pa.array([[dt.time(4, 5, 6)]], pa.list_(pa.time64("us"))),
        }
    )
    (lake.landing / "t").mkdir(parents=True)
    pq.write_table(t, lake.landing / "t" / "a.parquet")
    summary = lake.process()
    assert summary.ok, [o.error for o in summary.outcomes]
    time = dt.time(1, 2, 3).isoformat() if fmt == "delta" else dt.time(1, 2, 3)
    tag = dt.time(4, 5, 6).isoformat() if fmt == "delta" else dt.time(4, 5, 6)
    expected = {
        "u8": 200,
        "u32": 4_000_000_000,
        "u64": 18_000_000_000_000_000_000,
        "when": {"at": time, "id": UUID},
        "tags": [tag],
    }
    for reader, row in _readers(lake, fmt).items():
        for col, want in expected.items():
            got = row[col]
            assert _norm(got) == _norm(want) or _norm(got) == decimal.Decimal(want), (reader, col, got, want)


def test_what_each_format_stores_instead():
    assert ParquetTable.stored_as == {"extension<arrow.uuid>": "string", "month_day_nano_interval": "string"}
    assert DeltaTable.stored_as["month_day_nano_interval"] == "string"
    assert DeltaTable.stored_as["time64[us]"] == "string" and DeltaTable.stored_as["uint64"] == "decimal128(20, 0)"
