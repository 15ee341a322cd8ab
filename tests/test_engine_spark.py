"""The Spark engine passes the engine conformance suite (landfall.testing.engine_suite) on Spark `local[2]`.

One Spark session serves the whole module (the JVM takes about 8 s to start); it stops at the end."""

from __future__ import annotations

import pytest
from spark_helpers import SPARK, java_or_skip

from landfall.testing.engine_suite import EngineTests

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def _session():
    java_or_skip()
    yield
    from landfall.engines.spark.session import stop

    stop()


class TestSparkEngine(EngineTests):
    """Every test of the suite, no gap declared."""

    @pytest.fixture
    def engine_config(self):
        return {"engine": "spark", "spark": SPARK}
