"""`engine: spark` settings, engine choice, and SQL written once (DuckDB's dialect, translated for Spark): what
cannot be translated fails when the config loads, naming the workflow, the step and the function. No JVM here."""

from __future__ import annotations

import sys

import pytest
import yaml

from landfall import load_settings
from landfall.engines.spark import translate
from landfall.errors import ConfigError, MissingDependency


def _config(tmp_path, workflows, **top):
    path = tmp_path / "landfall.yaml"
    path.write_text(yaml.safe_dump({"lake": str(tmp_path / "lake"), "workflows": workflows, **top}), encoding="utf-8")
    return path


def _wf(**kw):
    return {"name": "w", "match": "w/", "write": {"table": "w"}, **kw}


def test_spark_settings_and_engine_choice(tmp_path):
    s = load_settings(
        _config(
            tmp_path,
            [
                _wf(),
                _wf(name="big", match="b/", engine="auto", spark_above="1MB"),
                _wf(name="d", match="d/", engine="duckdb"),
            ],
            engine="spark",
            spark={
                "master": "spark://10.0.0.5:7077",
                "conf": {"spark.executor.memory": "4g", "spark.executor.cores": 2},
            },
        )
    )
    assert s.spark.master == "spark://10.0.0.5:7077"
    assert s.spark.conf == {"spark.executor.memory": "4g", "spark.executor.cores": "2"}  # text, as Spark wants
    w, big, d = s.workflows
    assert s.engine_for(w, 10) == "spark"  # the file's default
    assert s.engine_for(d, 10 << 30) == "duckdb"
    assert s.engine_for(big, 1 << 20) == "duckdb" and s.engine_for(big, (1 << 20) + 1) == "spark"
    from landfall.engines.spark.engine import SparkEngine

    engine = SparkEngine.from_settings(s)  # no JVM until the engine runs something
    assert (engine.master, engine.conf["spark.executor.memory"]) == ("spark://10.0.0.5:7077", "4g")


def test_auto_uses_the_files_threshold(tmp_path):
    s = load_settings(_config(tmp_path, [_wf(engine="auto")], spark_above="2GB"))
    assert s.engine_for(s.workflows[0], 2 << 30) == "duckdb"
    assert s.engine_for(s.workflows[0], (2 << 30) + 1) == "spark"


def test_bad_engine_and_size_fail_at_load(tmp_path):
    with pytest.raises(ConfigError, match="engine"):
        load_settings(_config(tmp_path, [_wf(engine="flink")]))
    with pytest.raises(ConfigError, match="size"):
        load_settings(_config(tmp_path, [_wf(engine="auto", spark_above="lots")]))


@pytest.mark.parametrize(
    ("step", "needle"),
    [
        ({"compute": {"days": "age(d)"}}, "step 1 (`compute`) column `days`: function `age` has no Spark equivalent"),
        ({"filter": "regexp_replace(a, 'x', 'y') = 'z'"}, "step 1 (`filter`): `regexp_replace` without the `'g'`"),
        ({"sql": "SELECT * REPLACE (a + 1 AS a) FROM input"}, "step 1 (`sql`): `* REPLACE (...)` has no Spark"),
        ({"compute": {"h": "CAST(a AS HUGEINT)"}}, "type `HUGEINT` has no Spark equivalent"),
        ({"compute": {"h": "hash(a) % 8"}}, "`hash` gives other numbers on Spark (another hash function); use `md5"),
        ({"compute": {"f": "format('{} {}', a, b)"}}, "`format` fills `{}` on DuckDB and printf's `%s` on Spark"),
        ({"compute": {"v": "j->'a'"}}, "`->` and `json_extract` give JSON on DuckDB"),
        ({"compute": {"t": "ts AT TIME ZONE 'Europe/Paris'"}}, "`AT TIME ZONE` converts one way or the other"),
        ({"filter": "typeof(a) = 'BIGINT'"}, "`typeof` names types otherwise on Spark"),
        ({"compute": {"w": "strftime(d, '%U')"}}, "`strftime`'s `%U`; it has no Spark equivalent"),
        ({"filter": "regexp_matches(a, 'x', 's')"}, "`regexp_matches` options other than `'i'`"),
        ({"sql": "SELECT list(a ORDER BY b) AS l FROM input"}, "`ORDER BY` inside an aggregate (`ARRAY_AGG(a ORDER"),
        ({"sql": "SELECT first(a ORDER BY b) AS f FROM input"}, "Spark's aggregates keep no order"),
    ],
)
def test_untranslatable_sql_fails_when_the_config_loads(tmp_path, step, needle):
    with pytest.raises(ConfigError) as err:
        load_settings(_config(tmp_path, [_wf(engine="spark", transform=[step])]))
    assert needle in str(err.value)
    assert "workflow `w`" in str(err.value) and "landfall.yaml" in str(err.value)


def test_untranslatable_expect_rule_names_the_rule(tmp_path):
    with pytest.raises(ConfigError, match=r"rule `positive`: function `age`"):
        load_settings(_config(tmp_path, [_wf(validate=[{"expect": "age(d) > 0", "name": "positive"}])], engine="auto"))


def test_duckdb_workflows_are_not_checked(tmp_path):
    s = load_settings(_config(tmp_path, [_wf(transform=[{"compute": {"days": "age(d)"}}])]))
    assert s.workflows[0].transform[0].compute == {"days": "age(d)"}


@pytest.mark.parametrize(
    ("duckdb", "spark"),
    [
        ("price * quantity", "price * quantity"),
        ("strftime(order_date, '%Y-%m')", "DATE_FORMAT(order_date, 'yyyy-MM')"),
        (
            "list_contains(tags, 'x')",
            "CASE WHEN tags IS NULL OR 'x' IS NULL THEN NULL ELSE COALESCE(ARRAY_CONTAINS(tags, 'x'), FALSE) END",
        ),
        ("x::TIMESTAMP", "CAST(x AS TIMESTAMP_NTZ)"),
        ("x::TIMESTAMPTZ", "CAST(x AS TIMESTAMP_LTZ)"),
        ("string_split(a, ',')[1]", "SPLIT(a, CONCAT('\\\\Q', ',', '\\\\E'))[0]"),
        ("regexp_matches(name, '^a')", "name RLIKE '^a'"),
        ("monthname(d)", "DATE_FORMAT(d, 'MMMM')"),  # `February`, as DuckDB names it (Spark's MONTHNAME: `Feb`)
        ("dayname(d)", "DATE_FORMAT(d, 'EEEE')"),
        ("dayofweek(d)", "(DAYOFWEEK(d) - 1)"),  # Sunday = 0, as DuckDB counts (Spark's DAYOFWEEK: Sunday = 1)
        ("quantile_cont(x, 0.5)", "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY x)"),  # exact, in a form Spark takes
    ],
)
def test_expressions_translate(duckdb, spark):
    assert translate.expression(duckdb) == spark


def test_queries_read_the_input_view():
    out = translate.query("SELECT * EXCLUDE (a), upper(b) AS b FROM input WHERE a > 1", "v7")
    assert out == "SELECT * EXCEPT (a), UPPER(b) AS b FROM v7 WHERE a > 1"


def test_date_formats_translate():
    assert translate.time_format("%d/%m/%Y") == "d/M/yyyy"
    assert translate.time_format("%Y-%m-%d %H:%M:%S") == "yyyy-M-d H:m:s"
    # letters between the fields are quoted: Spark would read `T` as no field and `Z` as a zone offset
    assert translate.time_format("%Y-%m-%dT%H:%M:%S.%fZ") == "yyyy-M-d'T'H:m:s.SSSSSS'Z'"
    assert translate.time_format("%d.%m.%Y %I:%M %p") == "d.M.yyyy h:m a"


def test_missing_pyspark_is_one_line(monkeypatch):
    from landfall.registry import backend

    for name in list(sys.modules):  # as if pyspark had never been installed
        if name.startswith("landfall.engines.spark.") and not name.endswith(".translate"):
            monkeypatch.delitem(sys.modules, name)
        elif name == "pyspark" or name.startswith("pyspark."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pyspark", None)
    with pytest.raises(MissingDependency) as err:
        backend("engine", "spark")
    assert str(err.value) == 'engine `spark` needs pyspark: pip install "landfall[spark]"'
