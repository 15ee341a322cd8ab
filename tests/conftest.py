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


__all__ = ["CORPUS", "REPO", "Lake", "load_settings", "wf"]


def pytest_configure(config) -> None:
    """Property tests try 60 examples each in a full run (CI) and 10 in the fast run (`-m "not slow"`): each
    example builds a lake. `--hypothesis-profile` chooses otherwise. The parsed-config cache is a folder of the
    run's own (the tests' commands inherit it), not the user's."""
    import os
    import tempfile

    from hypothesis import settings

    os.environ.setdefault("LANDFALL_CACHE_DIR", tempfile.mkdtemp(prefix="landfall-test-cache-"))

    settings.register_profile("full", max_examples=60)
    settings.register_profile("fast", max_examples=10)
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("fast" if "not slow" in (config.option.markexpr or "") else "full")


#: folders of test artifacts (the dashboard tests' screenshots), named at the end of the run
ARTIFACTS: list[str] = []


def pytest_terminal_summary(terminalreporter) -> None:
    for folder in ARTIFACTS:
        terminalreporter.write_line(f"test artifacts: {folder}")
