"""One Spark session per process, started on first use and shared by every Spark engine (worker) in it.

The JVM takes seconds to start, so it is started once; a different master or conf stops the running session and
starts another. The settings landfall needs for the same results as DuckDB are set here: UTC session time zone,
zone-less `TIMESTAMP` (DuckDB's `TIMESTAMP` is Spark's `TIMESTAMP_NTZ`), Parquet timestamps as INT64 micros,
zstd. User `conf` (landfall.yaml `spark.conf`) wins over everything but those.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import tempfile
import threading
import warnings
from typing import Any

log = logging.getLogger("landfall.spark")
# pyspark warns about pandas versions it has not been tried with; landfall does not use pandas with Spark
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")

# Settings the engine relies on for DuckDB's results: not overridable.
REQUIRED = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.ansi.enabled": "true",
    "spark.sql.caseSensitive": "false",
    "spark.sql.timeType.enabled": "true",  # DuckDB's TIME (Spark 4.1 and later; an unknown setting before)
}
# Defaults a user may change in `spark.conf`.
DEFAULTS = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.parquet.compression.codec": "zstd",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.files.ignoreMissingFiles": "false",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.jsonGenerator.ignoreNullFields": "false",
}
_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = off
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = off
logger.writer.name = org.apache.spark.sql.execution.datasources.FileFormatWriter
logger.writer.level = off
logger.abort.name = org.apache.spark.util.Utils
logger.abort.level = off
logger.native.name = org.apache.hadoop.util.NativeCodeLoader
logger.native.level = off
logger.spark.name = org.apache.spark
logger.spark.level = error
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = error
logger.parquet.name = org.apache.parquet
logger.parquet.level = error
"""

_lock = threading.Lock()
_current: tuple[Any, tuple[Any, ...]] | None = None  # (session, the settings it was started with)


def session(master: str, conf: dict[str, str] | None = None, app_name: str = "landfall") -> Any:
    """The process's Spark session for `master` and `conf`, started now if needed (the JVM takes ~8 s)."""
    global _current
    key = (master, tuple(sorted((conf or {}).items())), app_name)
    with _lock:
        if _current is not None and _current[1] == key:
            return _current[0]
        if _current is not None:
            log.info("stopping the Spark session for %s: another master or conf was asked for", _current[1][0])
            _current[0].stop()
            _current = None
        spark = _start(master, dict(conf or {}), app_name)
        _current = (spark, key)
        return spark


def stop() -> None:
    """Stop the process's Spark session (and its JVM's connection to the cluster), if one runs."""
    global _current
    with _lock:
        if _current is not None:
            try:
                _current[0].stop()
            finally:
                _current = None


def _start(master: str, conf: dict[str, str], app_name: str) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyspark warns about pandas versions it has not been tried with
        from pyspark.sql import SparkSession

    settings = {**DEFAULTS, **conf, **REQUIRED}
    settings.setdefault("spark.pyspark.python", sys.executable)
    settings.setdefault("spark.pyspark.driver.python", sys.executable)
    if _on_loopback(master):
        settings.setdefault("spark.driver.host", "127.0.0.1")
        settings.setdefault("spark.driver.bindAddress", "127.0.0.1")
    java_opts = settings.get("spark.driver.extraJavaOptions", "")
    if "log4j2.configurationFile" not in java_opts:
        settings["spark.driver.extraJavaOptions"] = f"{java_opts} -Dlog4j2.configurationFile={_log4j()}".strip()
    builder = SparkSession.builder.master(master).appName(app_name)
    for k, v in settings.items():
        builder = builder.config(k, v)
    log.info("starting Spark (%s)", master)
    spark = builder.getOrCreate()
    _quiet_query_errors()
    atexit.register(stop)
    return spark


def _quiet_query_errors() -> None:
    """pyspark logs every error of a query it hands back (a JSON line with the Java stack on stderr); landfall
    reports the error itself, once, in its own words. Its loggers are made as pyspark makes them (a logger of
    another class would fail its calls) and switched off."""
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).disabled = True


def _on_loopback(master: str) -> bool:
    return master.startswith("local") or "127.0.0.1" in master or "localhost" in master


def _log4j() -> str:
    """A log4j2 configuration that keeps Spark's task failures (landfall reports them itself) off stderr."""
    path = os.path.join(tempfile.gettempdir(), f"landfall-log4j2-{os.getuid()}.properties")
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != _LOG4J:
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(_LOG4J)
        os.replace(tmp, path)
    return path


def error_text(exc: BaseException) -> str:
    """The useful part of a Spark error: the innermost `[ERROR_CLASS] message` lines, no JVM stack."""
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("at ")]
    causes = [ln.removeprefix("Caused by: ") for ln in lines if ln.startswith("Caused by:")]
    picked = causes[-1] if causes else (lines[0] if lines else type(exc).__name__)
    for prefix in ("org.apache.spark.", "java.lang."):
        if picked.startswith(prefix):
            picked = picked.split(": ", 1)[-1]
    return picked
