"""A full disk is the store's state, not the file's fault: `landfall process` waits for room (as for a store that
cannot be reached) without using the file's attempts, and loads it once there is room.

For real: the tables zone is a 300 KiB tmpfs mounted in a mount namespace of the command's own (`unshare`, as
root), too small for the table's Parquet file. Before, each attempt failed with DuckDB's background-write error
as JSON, said "not the file's fault; retrying", and the file was dead after three (a dead file's error now
says only "not the file's fault": an engine fault that is not a full disk, running out of memory, still uses
the file's attempts). On Spark each attempt failed with Py4J's whole Java stack as the file's error
(`Py4JJavaError: An error occurred while calling o623.parquet. ...`), and the file was dead after three.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from spark_helpers import java_or_skip

from conftest import REPO, mount_tmpfs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_a_full_disk_waits_for_room_without_blaming_the_file(tmp_path, engine):
    lake = tmp_path / "lake"
    tables = lake / "tables"
    (lake / "landing" / "t").mkdir(parents=True)
    tables.mkdir()
    rows = 100_000
    with open(lake / "landing" / "t" / "a.csv", "w") as fh:  # about 1 MiB of Parquet: more than the disk holds
        fh.write("id,x,v\n")
        fh.writelines(f"{i},{(i * 7919) % 1000003 / 3.0},{(i * 104729) % 999983}\n" for i in range(rows))
    config = tmp_path / "landfall.yaml"
    on = "engine: spark\nspark: {master: 'local[1]'}\n" if engine == "spark" else ""
    if engine == "spark":
        java_or_skip()
    config.write_text(f"lake: {lake}\n{on}workflows:\n  - name: t\n    match: t/\n    write: {{table: t}}\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "landfall", "--config", str(config)]
    full = subprocess.Popen(
        mount_tmpfs(tables, "300k", [*cmd, "process"]),
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum("without using an attempt" in s for s in said) < 3:
            line = full.stderr.readline()
            if not line:
                break
            said.append(line)
    finally:
        full.kill()
        full.wait()
    text = "".join(said)
    assert sum("without using an attempt" in s for s in said) >= 3, text  # waited, again and again
    assert "No space left on device" in text and '"exception_type"' not in text, text  # DuckDB's words, plainly
    assert " dead" not in text, text

    def landfall(*args: str) -> str:
        out = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "dead" not in landfall("runs") and "failed" not in landfall("runs")
    assert "processed: 1 succeeded" in landfall("process")  # room again (the tmpfs went with its namespace)
    assert landfall("query", "SELECT count(*) FROM t").split() == ["count_star()", str(rows)]


def test_only_a_spark_errors_java_input_output_cause_is_the_stores_fault():
    """A Spark error is read for the store's state only in its Java input/output exception lines: a value Spark
    could not cast, or a landed file named after an error, never makes a bad file wait forever."""
    from landfall.errors import InvalidInput
    from landfall.storage import unreachable
    from landfall.storage.faults import java_fault

    py4j = type("Py4JJavaError", (Exception,), {"__module__": "py4j.protocol"})
    full = py4j(
        "An error occurred while calling o623.parquet.\n: org.apache.spark.SparkException: [TASK_WRITE_FAILED] Task "
        "failed while writing rows\n\tat org.apache.spark.sql.errors.QueryExecutionErrors$.taskFailedWhileWritingRows"
        "\nCaused by: org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device\n\t... 29 more"
    )
    refused = py4j("o1.load.\nCaused by: java.net.ConnectException: Connection refused (Connection refused)")
    value = py4j(
        "o9.parquet.\n: org.apache.spark.SparkNumberFormatException: [CAST_INVALID_INPUT] The value 'connection "
        'refused\' of the type "STRING" cannot be cast to "INT"\nCaused by: java.lang.NumberFormatException: '
        "No space left on device"
    )
    named = py4j("o2.csv.\nCaused by: java.io.FileNotFoundException: /lake/landing/t/connection refused.csv")
    assert java_fault(full) == "org.apache.hadoop.fs.FSError: java.io.IOException: No space left on device"
    assert unreachable(full) and unreachable(refused)
    wrapped = InvalidInput("`t/a.csv`: Task failed while writing rows", file="t/a.csv")  # as an engine words it
    wrapped.__cause__ = full
    assert unreachable(wrapped)
    assert java_fault(value) is None and not unreachable(value)
    assert java_fault(named) is None and not unreachable(named)
