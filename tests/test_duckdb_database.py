"""The DuckDB engine's database: one per lake, its memory bound and the scratch folder it spills to."""

from __future__ import annotations

import duckdb
import pytest

from landfall.config import load_settings
from landfall.engines.duckdb.database import Setup, database

from conftest import wf


def test_a_lake_gets_one_bounded_database_spilling_under_its_scratch_folder(make_lake, tmp_path):
    scratch = tmp_path / "scratch"
    lake = make_lake([wf("t")], scratch_dir=str(scratch), duckdb={"memory_limit": "200MB", "threads": 1})
    setup = Setup.for_lake(load_settings(lake.config))
    db = database(setup)
    assert database(Setup.for_lake(load_settings(lake.config))) is db  # the lake's engines share it
    con = db.cursor()
    setting = dict(con.execute("SELECT name, value FROM duckdb_settings()").fetchall())
    assert setting["temp_directory"] == str(scratch / "duckdb")
    assert setting["threads"] == "1" and setting["memory_limit"] in ("190.7 MiB", "200.0 MB")
    assert str(scratch) + "/" in setup.allowed and str(lake.root / "lake" / "landing") + "/" in setup.allowed


@pytest.mark.slow
def test_work_larger_than_the_memory_limit_spills_and_loads(make_lake, tmp_path):
    """A dedupe (a window over every row) of more rows than fit in the memory limit: DuckDB spills to the
    scratch folder."""
    rows = 1_200_000
    steps = [{"dedupe": {"keys": ["k"], "order_by": "v"}}]
    lake = make_lake(
        [wf("t", transform=steps)], scratch_dir=str(tmp_path / "scratch"), duckdb={"memory_limit": "200MB"}
    )
    (lake.landing / "t").mkdir()
    duckdb.sql(
        f"COPY (SELECT i AS k, i % 7 AS v, repeat('x', 120) || i AS pad FROM range({rows}) t(i)) "
        f"TO '{lake.landing / 't' / 'a.csv'}' (HEADER)"
    )
    assert lake.process().ok, [r.error for r in lake.pipeline.runs()]
    assert lake.rows("SELECT count(*), count(DISTINCT k) FROM t") == [(rows, rows)]
