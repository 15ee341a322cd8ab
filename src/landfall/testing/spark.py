"""A Spark standalone cluster for tests: a master and a worker started from the pyspark package's own launcher
(`$SPARK_HOME/bin/spark-class`) on loopback, with their own folders and free ports. Tests that use it are
marked `spark` (and `slow`: each JVM takes seconds to start).

    cluster = StandaloneCluster(tmp_path / "spark").start()   # waits until the worker has registered
    settings = {"engine": "spark", "spark": {"master": cluster.master_url}}
    cluster.stop()                                           # both processes, by their PIDs

Everything listens on 127.0.0.1 (`SPARK_LOCAL_IP`); the web UIs take random ports (`--webui-port 0`) and the
master's REST submission server (fixed port 6066 by default) is turned off (`spark.master.rest.enabled`), so two
clusters (two test sessions) can run on one machine at once.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from landfall.testing.ports import free_port


def spark_home() -> str:
    """The pyspark package's folder: it carries `bin/spark-class` and Spark's jars."""
    import pyspark

    return os.path.dirname(pyspark.__file__)


def java_available() -> bool:
    return shutil.which("java") is not None


class StandaloneCluster:
    """One Spark standalone master and one worker (`cores` cores, `memory` for executors) on loopback."""

    def __init__(self, workdir: str | os.PathLike[str], *, cores: int = 1, memory: str = "1g") -> None:
        self.workdir = Path(workdir)
        self.cores = cores
        self.memory = memory
        self.port = 0
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        home = spark_home()
        return {
            **os.environ,
            "SPARK_HOME": home,
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.workdir / "logs"),
            "SPARK_WORKER_DIR": str(self.workdir / "work"),
            "SPARK_CONF_DIR": str(self.workdir / "conf"),
        }

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        for sub in ("logs", "work", "conf"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        props = self.workdir / "conf" / "spark-defaults.conf"
        props.write_text(
            "spark.master.rest.enabled false\n"  # no REST submission server on the fixed port 6066
            "spark.ui.showConsoleProgress false\n"
            "spark.worker.cleanup.enabled false\n",
            encoding="utf-8",
        )
        self.port = free_port()
        launcher = os.path.join(spark_home(), "bin", "spark-class")
        master = [
            launcher,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--webui-port",
            "0",
            "--properties-file",
            str(props),
        ]
        worker = [
            launcher,
            "org.apache.spark.deploy.worker.Worker",
            self.master_url,
            "--host",
            "127.0.0.1",
            "--cores",
            str(self.cores),
            "--memory",
            self.memory,
            "--webui-port",
            "0",
            "--work-dir",
            str(self.workdir / "work"),
            "--properties-file",
            str(props),
        ]
        try:
            self.procs["master"] = self._launch("master", master)
            self._wait_for("master", r"I have been elected leader|Starting Spark master at", timeout)
            self.procs["worker"] = self._launch("worker", worker)
            self._wait_for("worker", r"Successfully registered with master", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.workdir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - kept for the process's life
        try:
            return subprocess.Popen(cmd, env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()  # the child has its own copy of the descriptor

    def _wait_for(self, name: str, pattern: str, timeout: float) -> None:
        log = self.workdir / "logs" / f"{name}.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.procs[name]
            text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
            if re.search(pattern, text):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"Spark {name} exited with {proc.returncode}; see {log}:\n{text[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"Spark {name} not ready after {timeout:.0f} s; see {log}")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def stop(self) -> None:
        """Stop the worker, then the master (SIGTERM, then SIGKILL), by their process groups' PIDs."""
        for name in ("worker", "master"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
            except ProcessLookupError:
                pass

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- pytest fixtures (import them into a conftest.py) ----------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the fixtures are for test runs only
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="module")
    def spark_cluster(tmp_path_factory: pytest.TempPathFactory):
        """A standalone master and worker for a test module; the module's Spark session stops first."""
        if not java_available():
            if os.environ.get("LANDFALL_REQUIRE_SERVERS"):
                pytest.fail("java is not installed: apt-get install openjdk-17-jre-headless (Spark needs Java 17)")
            pytest.skip("java is not installed (Spark needs Java 17)")
        pytest.importorskip("pyspark", reason='pyspark is not installed: pip install "landfall[spark]"')
        cluster = StandaloneCluster(tmp_path_factory.mktemp("spark-cluster")).start()
        try:
            yield cluster
        finally:
            from landfall.engines.spark.session import stop

            stop()
            cluster.stop()


# --- engines as a test parameter ---------------------------------------------------------------------------------


def engine_settings(engine: str) -> dict:
    """The `landfall.yaml` keys that run workflows on `engine` in a test (`local[1]` for Spark: its own JVM)."""
    if engine == "spark":
        return {"engine": "spark", "spark": {"master": "local[1]", "conf": {"spark.sql.shuffle.partitions": "2"}}}
    return {"engine": engine}


def survivors(marker: str) -> list[int]:
    """PIDs of processes whose environment holds `LANDFALL_TEST_RUN=<marker>`: what a killed process (and the
    JVM it started) left running."""
    needle = f"LANDFALL_TEST_RUN={marker}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def wait_gone(marker: str, timeout: float = 30.0) -> list[int]:
    """Wait until no process of `marker` runs; returns those still running at the timeout."""
    deadline = time.monotonic() + timeout
    left = survivors(marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = survivors(marker)
    return left


if pytest is not None:
    ENGINES = [
        pytest.param("duckdb", id="duckdb"),
        pytest.param("spark", id="spark", marks=[pytest.mark.spark, pytest.mark.slow]),  # a JVM per process
    ]

    # the crash points where what is on disk is the engine's own output (written, then published); from there on
    # a run is the same commit sequence whichever engine wrote its files
    ENGINE_POINTS = ("after_write", "after_publish")

    def crash_cases(points: tuple[str, ...] | list[str], slow: tuple[str, ...] = ()) -> list[Any]:
        """`(point, engine)` cases of a kill -9 test: every point on DuckDB (those in `slow` marked slow), and on
        Spark the points in `ENGINE_POINTS` (each Spark process is a JVM start: 25-50 s per case in CI)."""
        cases = [
            pytest.param(p, "duckdb", id=f"{p}-duckdb", marks=[pytest.mark.slow] if p in slow else []) for p in points
        ]
        spark = [pytest.mark.spark, pytest.mark.slow]
        return cases + [pytest.param(p, "spark", id=f"{p}-spark", marks=spark) for p in points if p in ENGINE_POINTS]
