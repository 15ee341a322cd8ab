"""Tables landfall writes are readable by other engines: PySpark (Parquet with Hive partitioning, and the Parquet
files of a Delta table's current version), pyarrow, deltalake, DuckDB."""

from __future__ import annotations

import os
import shutil

import deltalake
import pytest

from conftest import wf

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None:
        if os.environ.get("CI"):
            pytest.fail("java is not installed; CI must provide Java 17 for the Spark tests")
        pytest.skip("java is not installed (Spark needs Java 17)")
    pyspark = pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "landfall[spark]"')
    session = (
        pyspark.sql.SparkSession.builder.master("local[1]")
        .appName("landfall-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    yield session
    session.stop()


ROWS = "id,country,amount,day\n1,FR,10.5,2024-01-01\n2,DE,20.0,2024-01-02\n3,FR,30.25,2024-01-02\n"


def test_spark_reads_a_parquet_table_with_hive_partitioning(make_lake, spark):
    lake = make_lake([wf("p", read={"format": "csv"}, write={"table": "p", "partition_by": ["country"]})])
    lake.land("p/1.csv", ROWS)
    lake.process()
    df = spark.read.parquet(str(lake.root / "lake/tables/p"))
    got = sorted((r["id"], r["country"], r["amount"], str(r["day"])) for r in df.collect())
    assert got == [(1, "FR", 10.5, "2024-01-01"), (2, "DE", 20.0, "2024-01-02"), (3, "FR", 30.25, "2024-01-02")]
    assert "_source_file" in df.columns


def test_spark_reads_the_current_version_of_a_delta_table(make_lake, spark):
    lake = make_lake(
        [
            wf(
                "d",
                read={"format": "csv"},
                write={"table": "d", "format": "delta", "mode": "merge", "keys": ["id"], "partition_by": ["country"]},
            )
        ],
        workers=1,
    )
    lake.land("d/1.csv", ROWS, mtime=1_700_000_000)
    lake.process()
    lake.land("d/2.csv", "id,country,amount,day\n2,DE,99.0,2024-02-01\n", mtime=1_700_000_001)
    lake.process()
    root = str(lake.root / "lake/tables/d")
    files = deltalake.DeltaTable(root).file_uris()
    df = spark.read.option("basePath", root).parquet(*files)
    got = sorted((r["id"], r["country"], r["amount"]) for r in df.collect())
    assert got == [(1, "FR", 10.5), (2, "DE", 99.0), (3, "FR", 30.25)]
