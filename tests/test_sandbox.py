"""Workflow SQL reads its input only: refused when the config loads (naming the step and what was found), and
kept in by the engine's database for whatever a check could miss."""

from __future__ import annotations

import pytest

from landfall.config import load_settings
from landfall.errors import ConfigError

from conftest import wf

ATTACKS = [
    ({"sql": "SELECT * FROM read_text('/etc/passwd')"}, "table function `read_text` is not allowed"),
    ({"sql": "SELECT * FROM input, read_csv('/etc/passwd')"}, "table function `read_csv` is not allowed"),
    ({"sql": "SELECT * FROM '/etc/passwd' WHERE 0 = (SELECT count(*) FROM input)"}, "table `/etc/passwd`"),
    ({"sql": "SELECT * FROM glob('/etc/*'), input"}, "table function `glob`"),
    ({"sql": "SELECT * FROM input, query('SELECT 1')"}, "table function `query`"),
    ({"sql": "SELECT getenv('HOME') AS h FROM input"}, "function `getenv`"),
    ({"sql": "SELECT * FROM input; COPY (SELECT 1) TO '/tmp/landfall-pwned.csv'"}, "found 2"),
    ({"sql": "COPY (SELECT * FROM input) TO '/tmp/landfall-pwned.csv'"}, "found `COPY`"),
    ({"sql": "ATTACH '/tmp/landfall-pwned.db' AS x; SELECT * FROM input"}, "found 2"),
    ({"sql": "INSTALL httpfs; SELECT * FROM input"}, "found 2"),
    ({"sql": "SELECT * FROM input JOIN sales USING (id)"}, "table `sales` is not allowed"),
    ({"sql": "SELECT * FROM main.input"}, "table `main.input`"),
    ({"compute": {"pw": "(SELECT content FROM read_text('/etc/passwd'))"}}, "`pw`: expected an expression"),
    ({"compute": {"pw": "read_text('/etc/passwd')"}}, "`pw`: function `read_text`"),
    ({"filter": "1 = 1; COPY (SELECT 1) TO '/tmp/landfall-pwned.csv'"}, "found 2"),
    ({"filter": "x IN (SELECT * FROM read_csv('/etc/passwd'))"}, "table function `read_csv`"),
    ({"dedupe": {"keys": ["id"], "order_by": "id) = 1; PRAGMA version; SELECT (1"}}, ""),
]


@pytest.mark.parametrize(("step", "message"), ATTACKS, ids=[str(i) for i in range(len(ATTACKS))])
def test_workflow_sql_that_reaches_outside_is_refused_at_load(make_lake, step, message):
    lake = make_lake([wf("t", transform=[{"filter": "true"}, step])])
    with pytest.raises(ConfigError) as caught:
        load_settings(lake.config)
    text = str(caught.value)
    assert "`workflows[0] (t).transform[1]" in text and f"`{next(iter(step))}`" in text and message in text, text


def test_a_rule_that_reads_a_file_is_refused_at_load(make_lake):
    lake = make_lake([wf("t", validate=[{"expect": "x < (SELECT count(*) FROM read_text('/etc/passwd'))"}])])
    with pytest.raises(ConfigError, match=r"`workflows\[0\] \(t\)\.validate\[0\]\.expect`: table function `read_text`"):
        load_settings(lake.config)


def test_ordinary_workflow_sql_loads(make_lake):
    steps = [
        {"compute": {"total": "price * qty", "tag": "coalesce(lower(note), 'none') || '-' || strftime(day, '%Y')"}},
        {"filter": "qty > 0 AND regexp_matches(note, '^[a-z]')"},
        {"dedupe": {"keys": ["id"], "order_by": "day"}},
        {
            "sql": "WITH x AS (SELECT * EXCLUDE (note) FROM input) SELECT *, list_transform([1, 2], lambda v: v + 1) "
            "AS l FROM x, unnest([1]) AS u(one) QUALIFY row_number() OVER (PARTITION BY id ORDER BY day) = 1"
        },
    ]
    lake = make_lake([wf("t", transform=steps)])
    lake.land("t/a.csv", "id,price,qty,note,day\n1,2.5,2,abc,2024-01-01\n1,1,1,xyz,2024-01-02\n2,1,0,q,2024-01-01\n")
    assert lake.process().ok
    assert lake.rows("SELECT id, total, tag, l FROM t") == [(1, 1.0, "xyz-2024", [2, 3])]  # the latest row of id 1


@pytest.fixture
def unchecked(monkeypatch):
    """Load configs without the load-time check, to see what the engine does on its own."""
    import landfall.config.steps

    monkeypatch.setattr(landfall.config.steps, "check_query", lambda sql, tables=(): None)
    monkeypatch.setattr(landfall.config.steps, "check_expression", lambda text: None)


def test_the_engine_reads_no_file_outside_the_lake(make_lake, unchecked, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    lake = make_lake(
        [
            wf(
                "t",
                transform=[{"sql": f"SELECT *, (SELECT content FROM read_text('{secret}')) AS s FROM input"}],
                retry={"max_attempts": 1},
            )
        ]
    )
    lake.land("t/a.csv", "id\n1\n")
    lake.process()
    run = lake.pipeline.runs()[0]
    assert run.status == "dead" and "file system operations are disabled" in (run.error or ""), run.error
    assert "s3cret" not in (run.error or "")


@pytest.mark.parametrize(
    "step",
    [
        {"filter": "1 = 1; COPY (SELECT 42) TO '{out}'"},
        {"sql": "SELECT * FROM input; COPY (SELECT 42) TO '{out}'"},
        {
            "sql": "SELECT * FROM input WHERE 1 = (SELECT 1 FROM (SELECT 1) t) UNION ALL BY NAME SELECT * FROM input "
            "LIMIT 0; ATTACH '{out}' AS x"
        },
    ],
)
def test_the_engine_runs_one_statement_per_step(make_lake, unchecked, tmp_path, step):
    out = tmp_path / "pwned.csv"
    text = {k: v.format(out=out) if isinstance(v, str) else v for k, v in step.items()}
    lake = make_lake([wf("t", transform=[text], retry={"max_attempts": 1})])
    lake.land("t/a.csv", "id\n1\n")
    lake.process()
    run = lake.pipeline.runs()[0]
    assert run.status == "dead" and "expected one SQL statement" in (run.error or ""), run.error
    assert not out.exists()


def test_the_engine_writes_no_file_outside_the_lake(make_lake, unchecked, tmp_path):
    """Even a COPY that got past both checks could not write outside the lake: the database refuses."""
    from landfall.engines.duckdb.database import Setup, database

    lake = make_lake([wf("t")])
    con = database(Setup.for_lake(load_settings(lake.config))).cursor()
    for sql in (
        f"COPY (SELECT 42) TO '{tmp_path / 'pwned.csv'}'",
        f"ATTACH '{tmp_path / 'pwned.db'}' AS x",
        "SELECT * FROM read_text('/etc/passwd')",
        "INSTALL httpfs",
        "SET enable_external_access = true",
        "SET memory_limit = '1TB'",
    ):
        with pytest.raises(Exception, match="Permission Error|configuration has been locked|Cannot"):
            con.execute(sql).fetchall()
    assert not (tmp_path / "pwned.csv").exists() and not (tmp_path / "pwned.db").exists()
