"""Running one workflow on DuckDB and on Spark and comparing what users see: tables (rows and types), the
quarantine, and each file's run (status, rows in and out, rule counts, the line an error names)."""

from __future__ import annotations

import re
import shutil
from typing import Any

SPARK = {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "4"}}
LINEAGE_VARIES = ("_ingested_at", "_run_id", "_quarantined_at", "_row_id", "_parent_row_id", "_root_row_id")


def java_or_skip() -> None:
    import os

    import pytest

    if shutil.which("java") is None:
        if os.environ.get("LANDFALL_REQUIRE_SERVERS"):
            pytest.fail("java is not installed: apt-get install openjdk-17-jre-headless (Spark needs Java 17)")
        pytest.skip("java is not installed (Spark needs Java 17)")
    pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "landfall[spark]"')


def run_on(make_lake, engine: str, workflows: list[dict], files: dict[str, bytes | str], **settings: Any):
    lake = make_lake(workflows, engine=engine, **{"spark": SPARK, **settings})
    for i, (key, body) in enumerate(files.items()):
        lake.land(key, body, mtime=1_700_000_000 + i)
    lake.process()
    return lake


def tables_of(lake) -> dict[str, dict[str, Any]]:
    out = {}
    for t in lake.pipeline.tables():
        cols = [n for n, _ in t.schema if n not in LINEAGE_VARIES]
        select = ", ".join(f'"{c}"' for c in cols)
        ref = ".".join(f'"{part}"' for part in t.name.split("."))
        rows = lake.pipeline.query(f"SELECT {select} FROM {ref} ORDER BY ALL") if cols else (None, [])
        out[t.name] = {"schema": [(n, typ) for n, typ in t.schema], "rows": rows[1], "format": t.format}
    return out


def runs_of(lake) -> dict[str, tuple]:
    out = {}
    for r in reversed(lake.pipeline.runs(limit=None)):
        line = re.search(r" line (\d+)", r.error or "")
        out[r.file_key] = (
            r.status,
            r.rows_in,
            r.rows_out,
            r.rows_quarantined,
            r.quality,
            int(line.group(1)) if line else None,
        )
    return out


def compare(make_lake, workflows: list[dict], files: dict[str, bytes | str], **settings: Any):
    """Both engines on the same files; asserts they agree, returns (duckdb lake, spark lake)."""
    duck = run_on(make_lake, "duckdb", workflows, files, **settings)
    spark = run_on(make_lake, "spark", workflows, files, **settings)
    d_runs, s_runs = runs_of(duck), runs_of(spark)
    errors = {r.file_key: r.error for r in spark.pipeline.runs(limit=None) if r.error}
    d_errors = {r.file_key: r.error for r in duck.pipeline.runs(limit=None) if r.error}
    assert s_runs == d_runs, f"runs differ\nduckdb: {d_runs}\nspark:  {s_runs}\nerrors: {errors}\nduckdb: {d_errors}"
    d_tables, s_tables = tables_of(duck), tables_of(spark)
    assert sorted(s_tables) == sorted(d_tables)
    for name in d_tables:
        d, s = d_tables[name], s_tables[name]
        assert s["schema"] == d["schema"], f"{name} schema\nduckdb: {d['schema']}\nspark:  {s['schema']}"
        assert s["rows"] == d["rows"], f"{name} rows\nduckdb: {d['rows']}\nspark:  {s['rows']}"
    return duck, spark
