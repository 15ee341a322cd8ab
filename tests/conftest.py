from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("landfall.testing")  # the conformance suites' asserts explain their failures

from landfall import load_settings  # noqa: E402
from landfall.testing.lake import Lake, wf  # noqa: E402
from landfall.testing.postgres import postgres  # noqa: E402, F401  (a fixture: a PostgreSQL server the tests start)
from landfall.testing.s3 import s3_bucket, s3_server  # noqa: E402, F401  (SeaweedFS fixtures, marker `s3`)
from landfall.testing.spark import spark_cluster  # noqa: E402, F401  (a Spark standalone cluster, marker `spark`)

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture
def make_lake(tmp_path: Path):
    made: list[Lake] = []

    def make(workflows: list[dict[str, Any]], **settings: Any) -> Lake:
        lake = Lake(tmp_path / f"p{len(made)}", workflows, **settings)
        made.append(lake)
        return lake

    yield make
    for lake in made:
        lake.close()


__all__ = ["CORPUS", "REPO", "Lake", "load_settings", "mount_tmpfs", "wf"]


def mount_tmpfs(where: Path, size: str, command: list[str]) -> list[str]:
    """`command` run with a tmpfs of `size` mounted on `where` in a mount namespace of its own (a small disk that
    fills up); skips the test unless this is root with `unshare` and the mount works."""
    import os
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a small tmpfs")
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {where}"])
    if probe.returncode:
        pytest.skip("unshare could not mount a tmpfs here")
    mount = f'mount -t tmpfs -o size={size} tmpfs {where} && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", mount, "sh", *command]


def pytest_configure(config) -> None:
    """Property tests try 60 examples each in a full run (CI) and 10 in the fast run (`-m "not slow"`): each
    example builds a lake. `--hypothesis-profile` chooses otherwise. The parsed-config cache is a folder of the
    run's own (the tests' commands inherit it), not the user's."""
    import os
    import tempfile

    from hypothesis import settings

    if "LANDFALL_CACHE_DIR" not in os.environ:  # xdist's workers inherit the controller's
        os.environ["LANDFALL_CACHE_DIR"] = config._landfall_cache = tempfile.mkdtemp(prefix="landfall-test-cache-")

    settings.register_profile("full", max_examples=60)
    settings.register_profile("fast", max_examples=10)
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("fast" if "not slow" in (config.option.markexpr or "") else "full")


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items) -> None:
    """A Spark case is slow (its JVM starts in 20-30 s): `-m "not slow"` leaves it out, marked `slow` or not (an
    engine parametrized `pytest.param("spark", marks=pytest.mark.spark)` is enough)."""
    for item in items:
        if item.get_closest_marker("spark") and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


def pytest_unconfigure(config) -> None:
    """The run's own parsed-config cache goes with the run (by the process that made it)."""
    import shutil

    made = getattr(config, "_landfall_cache", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)


# --- test worker processes -------------------------------------------------------------------------------------
# The suite runs on up to four processes (pytest-xdist, `--numprocesses=auto --maxprocesses=4 --dist=load` in
# pyproject.toml; `-n 0` runs it in this one). These modules make costly module-wide fixtures (the corpus sweeps,
# a Spark session or cluster, a stand-in SQS server): one worker runs each of them whole, so that each is made once.
WHOLE_MODULES = {
    "tests/test_corpus.py",
    "tests/test_jsontestsuite.py",
    "tests/test_engine_spark.py",
    "tests/test_spark_engine.py",
    "tests/test_spark_cluster.py",
    "tests/test_sqs.py",
}


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist
def pytest_xdist_make_scheduler(config, log):
    """`--dist=load` (any test to any free worker), but a module of `WHOLE_MODULES` goes to one worker whole."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LoadKeepingModulesWhole(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in WHOLE_MODULES else nodeid

    return LoadKeepingModulesWhole(config, log)


# --- notes for the end of the run -----------------------------------------------------------------------------
# The corpus sweeps' counts and the dashboard tests' screenshot folder are printed after the tests. A test worker
# process (pytest-xdist) prints nothing of its own: a note rides on the report of the test it was made for, which
# every worker sends to the process that prints.

_PENDING: list[tuple[str, str]] = []  # made in this process, not yet on a report
_NOTES: dict[str, list[str]] = {}  # section -> lines, as the printing process receives them
_NOTE = "landfall-note"


def end_of_run_note(section: str, text: str) -> None:
    """Print `text` at the end of the run under `section` (`""`: no heading)."""
    _PENDING.append((section, text))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    report.user_properties.extend((_NOTE, note) for note in _PENDING)
    _PENDING.clear()


def pytest_runtest_logreport(report) -> None:
    for key, value in report.user_properties:
        if key == _NOTE:
            section, text = value
            _NOTES.setdefault(section, []).extend(text.splitlines())


def pytest_terminal_summary(terminalreporter) -> None:
    for section, lines in _NOTES.items():
        if section:
            terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)


# Parquet's newer encodings, which `write.parquet_version: v2` uses and v1 never does
NEWER_ENCODINGS = {"DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY", "BYTE_STREAM_SPLIT"}


def encodings(path) -> set[str]:
    """Every encoding a Parquet file's column chunks use."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return {
        e
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
        for e in meta.row_group(g).column(c).encodings
    }


def look(root, seen: dict[str, set[str]]) -> None:
    """Note the encodings of each Parquet file of the lake's tables and quarantine not seen before."""
    for path in [*(root / "tables").rglob("*.parquet"), *(root / "quarantine").rglob("*.parquet")]:
        seen.setdefault(str(path), encodings(path))
