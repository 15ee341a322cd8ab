from __future__ import annotations

import re

import pytest
import yaml

from landfall.config import load_settings
from landfall.errors import ConfigError

ISSUE_SHAPE = """
lake: ./lake
workflows:
  - name: sales
    match: sales/
    read: {format: csv}
    transform:
      - rename: {"Order ID": order_id, "Unit Price": price}
      - cast: {order_date: date, quantity: int}
      - compute: {total: "price * quantity"}
      - filter: "quantity > 0"
      - sql: "SELECT * EXCLUDE (internal_note) FROM input"
    write: {table: sales, format: parquet, partition_by: [order_date]}
    retry: {max_attempts: 3, backoff_seconds: 1}
"""


def write(tmp_path, text):
    path = tmp_path / "landfall.yaml"
    path.write_text(text)
    return path


def test_the_documented_shape_loads(tmp_path):
    s = load_settings(write(tmp_path, ISSUE_SHAPE), environ={})
    wf = s.workflows[0]
    assert [step.kind for step in wf.transform] == ["rename", "cast", "compute", "filter", "sql"]
    assert wf.write.partition_by[0].name == "order_date" and wf.retry.max_attempts == 3
    assert s.landing_url == str((tmp_path / "lake" / "landing").resolve())
    assert s.state.startswith("sqlite:///") and s.state.endswith("/lake/_landfall/state.db")
    assert not wf.batchable  # a free-form sql step may look across rows: files run one by one


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("format: parquet", "format: parqet", "`workflows[0] (sales).write.format`: got `parqet`; expected `parquet`"),
        ("- filter:", "- filtr:", "unknown step `filtr`; did you mean `filter`?"),
        ("- filter:", "- where:", "unknown step `where`; expected one of `rename`"),
        ("quantity: int}", "quantity: integr}", "unknown type `integr`"),
        ("max_attempts: 3", "max_attempts: 0", "`workflows[0] (sales).retry.max_attempts`: got `0`; expected an"),
        ("match: sales/", "mtch: sales/", "`workflows[0] (sales).mtch`: unknown key"),
        ("table: sales", "table: 9sales", "table name `9sales`"),
        ('"SELECT * EXCLUDE (internal_note) FROM input"', '"SELECT 1"', "must read from `input`"),
        ("partition_by: [order_date]", 'partition_by: ["week(order_date)"]', "`year(column)`"),
        # its folders would be `Order%20Date=...`, which DuckDB's reader names so: every query of the table failed
        (
            "partition_by: [order_date]",
            'partition_by: ["Order Date"]',
            "partition column `Order Date`: a partition column's name goes into folder names, where readers take "
            "it differently once escaped (`Order%20Date=`); use a name of letters, digits and `_`: rename the column "
            "in a step (`rename: {Order Date: order_date}`",
        ),
    ],
)
def test_invalid_config_names_file_key_and_allowed(tmp_path, old, new, expected):
    assert old in ISSUE_SHAPE
    path = write(tmp_path, ISSUE_SHAPE.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_cross_field_checks_fail_at_load(tmp_path):
    text = ISSUE_SHAPE + "  - {name: sales, match: sales/, write: {table: t}}\n"
    with pytest.raises(ConfigError, match="workflow names must be unique; repeated: `sales`"):
        load_settings(write(tmp_path, text), environ={})


def test_yaml_syntax_error_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"line 4, column 1: not valid YAML: .* starts at line 3\)"):
        load_settings(write(tmp_path, "lake: x\nworkflows:\n  - name: [unclosed\n"), environ={})


def test_a_key_twice_in_one_mapping_is_refused_naming_both_lines(tmp_path):
    """A key pasted twice (`write:` in one workflow) was taken silently, its last value kept (YAML's loaders do
    so): the workflow wrote to `second`. It is refused, naming both lines; a merge (`<<:`) still overrides."""
    text = "lake: x\nworkflows:\n  - name: t\n    match: t/\n    write: {table: first}\n    write: {table: second}\n"
    with pytest.raises(
        ConfigError, match=r"line 6, column 5: not valid YAML: `write` appears twice \(first on line 5\)"
    ):
        load_settings(write(tmp_path, text), environ={})
    merged = (
        "lake: x\nworkflows:\n  - &b {name: t, match: t/, write: {table: a}}\n  - <<: *b\n    name: u\n    match: u/\n"
    )
    second = load_settings(write(tmp_path, merged), environ={}).workflows[1]
    assert (second.name, second.match, second.write.table) == ("u", "u/", "a")


def test_precedence_overrides_then_env_then_file(tmp_path):
    path = write(tmp_path, ISSUE_SHAPE)
    s = load_settings(path, environ={"LANDFALL__WORKERS": "5", "LANDFALL__LAKE": "/env/lake"})
    assert s.workers == 5 and s.lake == "/env/lake"
    s = load_settings(path, environ={"LANDFALL__LAKE": "/env/lake"}, overrides={"lake": "/flag/lake"})
    assert s.lake == "/flag/lake"


def test_zones_can_live_elsewhere(tmp_path):
    s = load_settings(write(tmp_path, "lake: ./l\nzones: {landing: s3://bucket/in, tables: ./wh}\n"), environ={})
    assert s.landing_url == "s3://bucket/in"
    assert s.tables_url == str((tmp_path / "wh").resolve())
    assert s.quarantine_url.endswith("/l/quarantine")


def test_no_config_file_means_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(environ={})
    assert s.workflows == [] and s.source == "<defaults>"


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ({"compute": {"n": "initcap(name)"}}, "unknown SQL function `initcap`"),
        ({"compute": {"n": "uper(name)"}}, "did you mean `upper`"),
        ({"filter": "qty >"}, "not valid SQL: syntax error"),
        ({"sql": "SELECT * FROM input; SELECT 1"}, "expected one statement; found 2"),
        ({"sql": "COPY input TO 'x.csv'"}, "is one query"),
        ({"sql": "SELECT strftme(d, '%Y') AS y FROM input"}, "unknown SQL function `strftme`"),
        ({"dedupe": {"keys": ["id"], "order_by": "coalsce(a, b)"}}, "unknown SQL function `coalsce`"),
    ],
)
def test_workflow_sql_is_checked_when_the_config_loads(tmp_path, step, expected):
    doc = {"workflows": [{"name": "s", "match": "s/", "transform": [step], "write": {"table": "s"}}]}
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "landfall.yaml")
    assert "`workflows[0] (s).transform[0]" in str(err.value) and expected in str(err.value), str(err.value)


def test_known_sql_passes_and_expect_rules_are_checked(tmp_path):
    good = {
        "name": "s",
        "match": "s/",
        "transform": [
            {"compute": {"y": "strftime(d, '%Y')", "n": "row_number() OVER (ORDER BY id)", "j": "data->>'$.a'"}},
            {"filter": "coalesce(qty, 0) > 0 AND name ILIKE 'a%' AND list_contains(tags, 'x')"},
            {"sql": "SELECT *, count(*) OVER () AS total FROM input QUALIFY row_number() OVER () = 1"},
        ],
        "validate": [{"expect": "regexp_matches(email, '@')"}],
        "write": {"table": "s"},
    }
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump({"workflows": [good]}))
    load_settings(tmp_path / "landfall.yaml")
    good["validate"] = [{"expect": "is_emial(email)"}]
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump({"workflows": [good]}))
    with pytest.raises(ConfigError, match=r"validate\[0\].expect`: unknown SQL function `is_emial`"):
        load_settings(tmp_path / "landfall.yaml")


def test_a_missing_library_fails_the_config_when_it_loads(tmp_path, monkeypatch):
    """A table format whose library is not installed is refused at load with the install line (before: every file
    was tried three times and dead-lettered). Delta is in the base install; here its library is made missing."""
    from landfall import registry

    doc = {"workflows": [{"name": "s", "match": "s/", "write": {"table": "s", "format": "delta"}}]}
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump(doc))
    assert load_settings(tmp_path / "landfall.yaml").workflows[0].write.format == "delta"
    tables = {**registry._REGISTRY["table"]}
    tables["delta"] = registry.Entry("landfall.tables.delta:DeltaTable", "delta", ("no_such_pkg_xyz",))
    monkeypatch.setitem(registry._REGISTRY, "table", tables)
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "landfall.yaml")
    assert 'workflow `s`: table format `delta` needs no_such_pkg_xyz: pip install "landfall[delta]"' in str(err.value)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"zones": {"tables": "lake/landing/out"}}, "`zones.tables` (/"),
        ({"zones": {"landing": "lake"}}, "lies inside `zones.landing`"),
        ({"zones": {"landing": "lake/tables/in"}}, "`zones.landing` (/"),
        ({"zones": {"quarantine": "lake/landing/q"}}, "`zones.quarantine`"),
        ({"zones": {"state": "lake/landing/_landfall"}}, "`zones.state`"),
        ({"zones": {"quarantine": "lake/tables"}}, "is `zones.tables`"),
        ({"state_url": "sqlite:///lake/landing/state.db"}, "`state_url`"),
        (
            {
                "lake": "s3://bucket/lake",
                "state_url": "sqlite:///x.db",
                "zones": {"tables": "s3://bucket/lake/landing/t"},
            },
            "`zones.tables` (s3://bucket/lake/landing/t) lies inside `zones.landing`",
        ),
    ],
)
def test_overlapping_zones_are_refused_at_load(tmp_path, monkeypatch, settings, expected):
    """A tables zone inside the landing zone made landfall find its own Parquet output as landed files."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump({"lake": "lake", **settings}))
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "landfall.yaml")
    assert expected in str(err.value) and "must not overlap" in str(err.value), str(err.value)


def test_zones_side_by_side_are_fine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = {"lake": "lake", "zones": {"landing": "incoming", "tables": "/tmp/lf-tables", "quarantine": "lake/q"}}
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump(doc))
    load_settings(tmp_path / "landfall.yaml")
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump({"lake": "lake", "zones": {"landing": "lake/landing2"}}))
    load_settings(tmp_path / "landfall.yaml")  # `landing2` is beside `landing`, not inside it


def _load(tmp_path, doc, environ=None):
    (tmp_path / "landfall.yaml").write_text(yaml.safe_dump(doc))
    return load_settings(tmp_path / "landfall.yaml", environ=environ or {})


WF = {"name": "s", "match": "s/", "write": {"table": "s"}}


def test_a_misspelt_key_says_what_was_meant_and_nothing_else(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"workflows": [{**WF, "write": {"tabel": "s"}}]})
    assert str(err.value).count("\n") == 0, str(err.value)  # one line: not also `write.table: Field required`
    assert "`workflows[0] (s).write.tabel`: unknown key; did you mean `table`?" in str(err.value)
    # a word of other tools for a key landfall names otherwise: a workflow's `prefix` is its `match` (before: ``unknown
    # key here; `prefix` is a key of `streams[]` ``), a stream's `match` its `prefix`
    wf = {k: v for k, v in WF.items() if k != "match"}
    with pytest.raises(ConfigError, match=r"\(s\)\.prefix`: unknown key; did you mean `match`\?"):
        _load(tmp_path, {"workflows": [{**wf, "prefix": "s/"}]})
    with pytest.raises(ConfigError, match=r"\(c\)\.match`: unknown key; did you mean `prefix`\?"):
        _load(tmp_path, {"streams": [{"name": "c", "match": "c/"}], "workflows": [WF]})
    with pytest.raises(ConfigError, match=r"`worker`: unknown key; did you mean `workers`\?"):
        _load(tmp_path, {"workers": 2, "workflows": [WF], "worker": 3})
    # among the keys of the step written there (`key` is a key of `child_tables`, not of `dedupe`)
    with pytest.raises(ConfigError, match=r"transform\[0\]\.dedupe\.key`: unknown key; did you mean `keys`\?"):
        _load(tmp_path, {"workflows": [{**WF, "transform": [{"dedupe": {"key": ["id"]}}]}]})


def test_a_key_that_belongs_elsewhere_says_where_and_an_unknown_one_lists_the_keys_allowed(tmp_path):
    """No close spelling: a key of another section says where it belongs (`expect` is a rule's, written on the
    workflow); one of no section lists the keys the place takes (a rule's kinds, for `rule:`)."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"workflows": [{**WF, "expect": "amount > 0"}]})
    assert str(err.value).endswith(
        "landfall.yaml: `workflows[0] (s).expect`: unknown key here; `expect` is a key of `workflows[].validate[]`"
    ), str(err.value)
    # a key of sections below the workflow, and of others: the workflow's own first (before: `format` was said to be
    # a key of `streams[]`, `table` of `workflows[].source` alone)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"workflows": [{**WF, "format": "csv"}]})
    assert str(err.value).endswith("`format` is a key of `workflows[].read` or `workflows[].write`"), str(err.value)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"workflows": [{**WF, "table": "t"}]})
    assert "`table` is a key of `workflows[].source` or `workflows[].write`" in str(err.value)
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"workflows": [{**WF, "validate": [{"name": "positive", "rule": "amount > 0"}]}]})
    assert str(err.value).endswith(
        "landfall.yaml: `workflows[0] (s).validate[0] (positive).rule`: unknown key; the keys here are `action`, "
        "`name`, `not_null`, `unique`, `range`, `accepted_values`, `regex`, `expect`, `row_count`"
    ), str(err.value)


def test_a_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"workflows": [WF]}, environ={"LANDFALL__WORKERS": "lots"})
    assert str(err.value).startswith("environment `LANDFALL__WORKERS`: `workers`:"), str(err.value)
    assert "landfall.yaml" not in str(err.value)


def test_a_bad_size_from_the_environment_names_the_variable_and_the_key(tmp_path):
    """A size is checked with the key it belongs to: before, `batch_bytes` and `spark_above` were checked with the
    settings as a whole, and a bad value from the environment was blamed on landfall.yaml's top level."""
    for name, key in (("LANDFALL__BATCH_BYTES", "batch_bytes"), ("LANDFALL__SPARK_ABOVE", "spark_above")):
        with pytest.raises(ConfigError) as err:
            _load(tmp_path, {"workflows": [WF]}, environ={name: "lots"})
        assert str(err.value).startswith(f"environment `{name}`: `{key}`: size `lots`"), str(err.value)


def test_a_rule_of_the_whole_file_is_said_without_a_key(tmp_path):
    """A problem of the settings as a whole was placed at a key called `(top level)`."""
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, {"lake": "s3://bucket/lake", "workflows": [WF]})
    text = str(err.value)
    assert ": the state store's default place is under the lake" in text and "top level" not in text, text


def test_records_true_as_the_readme_writes_it(tmp_path):
    settings = _load(tmp_path, {"workflows": [{**WF, "read": {"records": True}}]})
    assert settings.workflows[0].read.records == "true"
    assert _load(tmp_path, {"workflows": [{**WF, "read": {"records": False}}]}).workflows[0].read.records == "auto"


def test_a_decimal_separator_is_a_dot_or_a_comma(tmp_path):
    read = {"decimal_separator": ","}
    assert _load(tmp_path, {"workflows": [{**WF, "read": read}]}).workflows[0].read.decimal_separator == ","
    with pytest.raises(ConfigError, match=r"decimal_separator`: got `;`; expected `\.` or `,`"):
        _load(tmp_path, {"workflows": [{**WF, "read": {"decimal_separator": ";"}}]})


def test_the_longest_line_is_a_positive_number_of_bytes(tmp_path):
    read = {"max_line_size": 8_000_000}
    assert _load(tmp_path, {"workflows": [{**WF, "read": read}]}).workflows[0].read.max_line_size == 8_000_000
    with pytest.raises(ConfigError, match=r"max_line_size`: expected a number of bytes, 1 or more; got `0`"):
        _load(tmp_path, {"workflows": [{**WF, "read": {"max_line_size": 0}}]})


def test_drop_long_form(tmp_path):
    wf = _load(tmp_path, {"workflows": [{**WF, "transform": [{"drop": {"columns": ["a"], "missing_ok": True}}]}]})
    assert (wf.workflows[0].transform[0].drop, wf.workflows[0].transform[0].missing_ok) == (["a"], True)
    with pytest.raises(ConfigError, match="unknown key `missing`"):
        _load(tmp_path, {"workflows": [{**WF, "transform": [{"drop": {"columns": ["a"], "missing": True}}]}]})


def test_an_unchanged_file_is_not_parsed_again_and_an_edit_is(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("LANDFALL_CACHE_DIR", str(tmp_path / "cache"))
    cfg = tmp_path / "landfall.yaml"
    cfg.write_text("lake: ./lake\nworkers: 3\n")
    assert load_settings(cfg).workers == 3
    assert len(list((tmp_path / "cache" / "config").iterdir())) == 1
    # a command on the unchanged file: the same settings, and the YAML parser is never imported
    probe = (
        "import sys; from landfall.config import load_settings; "
        f"s = load_settings({str(cfg)!r}); print(s.workers, 'yaml' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["3", "False"]
    cfg.write_text("lake: ./lake\nworkers: 5\n")  # an edit: parsed again (even one of the same length)
    assert load_settings(cfg).workers == 5
    cfg.write_text("lake: ./lake\nworkers: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(cfg)


def test_a_command_on_an_unchanged_config_does_not_check_its_sql_again(tmp_path, monkeypatch):
    """Checking a workflow's SQL imports sqlglot and DuckDB (about 0.2 s of a command's start-up); what passed is
    kept in the cache folder, so a command on the same config imports neither. What was refused is not kept."""
    import subprocess
    import sys

    monkeypatch.setenv("LANDFALL_CACHE_DIR", str(tmp_path / "cache"))
    steps = [{"compute": {"total": "price * quantity"}}, {"filter": "quantity > 0"}, {"sql": "SELECT * FROM input"}]
    cfg = tmp_path / "landfall.yaml"
    cfg.write_text(yaml.safe_dump({"lake": "./lake", "workflows": [{**WF, "transform": steps}]}))
    assert len(load_settings(cfg).workflows[0].transform) == 3
    probe = (
        "import sys; from landfall.config import load_settings; "
        f"s = load_settings({str(cfg)!r}); "
        "print(len(s.workflows[0].transform), 'sqlglot' in sys.modules, 'duckdb' in sys.modules)"
    )
    run = [sys.executable, "-c", probe]
    assert subprocess.run(run, capture_output=True, text=True, check=True).stdout.split() == ["3", "False", "False"]
    # an edit that breaks the SQL is checked (and refused) in every command, though the rest was kept
    steps[1] = {"filter": "initcap(name) = 'A'"}
    cfg.write_text(yaml.safe_dump({"lake": "./lake", "workflows": [{**WF, "transform": steps}]}))
    for _ in range(2):
        with pytest.raises(ConfigError, match="unknown SQL function `initcap`"):
            load_settings(cfg)
        failed = subprocess.run(run, capture_output=True, text=True)
        assert failed.returncode != 0 and "initcap" in failed.stderr
    # answers kept for another version of the checks are not used
    from landfall import sqlcheck
    from landfall.config import config_cache

    kept = config_cache.answers("sqlcheck", sqlcheck._stamp())
    assert any("price * quantity" in key for key in kept) and not any("initcap" in key for key in kept)
    assert config_cache.answers("sqlcheck", sqlcheck._stamp() + " another") == {}


def test_values_the_cache_cannot_give_back_exactly_are_parsed_each_time(tmp_path, monkeypatch):
    from landfall.config import config_cache

    monkeypatch.setenv("LANDFALL_CACHE_DIR", str(tmp_path / "cache"))
    cfg = tmp_path / "landfall.yaml"
    text = "lake: ./lake\nnote: 2024-01-02\n"  # a YAML date: MessagePack would give back a string
    config_cache.store(cfg, text, yaml.safe_load(text))
    assert config_cache.load(cfg, text) is config_cache.MISSING
    (tmp_path / "blocked").write_text("")  # a cache folder that cannot be made: loading goes on without it
    monkeypatch.setenv("LANDFALL_CACHE_DIR", str(tmp_path / "blocked"))
    cfg.write_text("lake: ./lake\n")
    assert load_settings(cfg).workers >= 1


def test_workflows_sharing_a_table_write_it_the_same_way(tmp_path):
    """Two workflows writing one table with another format or partitioning made one folder a Parquet and a Delta
    table at once, the catalog following whichever committed last (a partition column then read NULL); now the
    load says so. The same format and partitioning (and the quarantine) may be shared."""
    eu = {"name": "eu", "match": "eu/", "write": {"table": "sales", "partition_by": ["region"]}}
    us = {"name": "us", "match": "us/", "write": {"table": "sales", "partition_by": ["region"]}}
    _load(tmp_path, {"workflows": [eu, us]})
    cases = [
        ({"format": "delta"}, r"`write.format` parquet and delta; workflows sharing a table write it the same way"),
        ({"partition_by": []}, r"`write.partition_by` \[region\] and \[\]"),
        ({"partition_by": [{"r": "region"}]}, r"`write.partition_by` \[region\] and \[\{r: region\}\]"),
        ({"mode": "merge", "keys": ["id"]}, r"`write.mode` append and merge"),
    ]
    for change, message in cases:
        other = {**us, "write": {**us["write"], **change}}
        with pytest.raises(ConfigError, match="workflows `eu` and `us` both write table `sales`, with " + message):
            _load(tmp_path, {"workflows": [eu, other]})
    kids = {**us, "write": {"table": "orders"}, "transform": [{"child_tables": {"columns": {"items": "sales"}}}]}
    with pytest.raises(ConfigError, match="workflows `eu` and `us` both write table `sales` \\(one of them as a child"):
        _load(tmp_path, {"workflows": [eu, kids]})


def test_what_feeds_a_table_in_order_runs_in_order_too(tmp_path):
    """A hop's files and a table's runs reach the next workflow in the order they commit: whatever feeds a table
    in order (`merge`, `overwrite`), however many hops before, takes its files in the order they landed."""
    s = load_settings(
        write(
            tmp_path,
            """
workflows:
  - {name: raw, match: raw/, write: {landing: staging/, format: parquet}}
  - {name: bronze, match: staging/, write: {table: bronze}}
  - {name: silver, source: {table: bronze}, write: {table: silver, mode: merge, keys: [id]}}
  - {name: other_hop, match: other/, write: {landing: next/, format: jsonl}}
  - {name: logs, match: next/, write: {table: logs}}
  - {name: dims, match: dims/, write: {table: dims, mode: overwrite}}
""",
        ),
        environ={},
    )
    assert s.in_order() == (["bronze", "dims", "silver"], ["raw"])


@pytest.mark.parametrize(
    ("parts", "said"),
    [
        (["day(ts)"], "a file of 2026-02-01 would replace the rows of every month's 1st (`day=1`)"),
        (["year(ts)", "day(ts)"], "partition by [year(ts), month(ts), day(ts)]"),
        (["month(ts)"], "a file of November 2026 would replace every November's rows (`month=11`)"),
        (["region", {"h": "hour(ts)"}], "a file of 10:00 would replace every day's 10:00 rows (`h=10`)"),
        (["year(ts)", "month(ts)", "day(other)"], "partition by [year(other), month(other), day(other)]"),
    ],
)
def test_overwrite_by_partitions_takes_only_partitions_that_are_one_period(tmp_path, parts, said):
    """`day(ts)` is the day of the month: with `overwrite: partitions` (the README's own example), the file of
    2026-02-01 replaced the rows of 2026-01-01 (both `day=1`), without a word."""
    write = {"table": "t", "mode": "overwrite", "overwrite": "partitions", "partition_by": parts}
    with pytest.raises(ConfigError, match=re.escape(said)):
        _load(tmp_path, {"workflows": [{**WF, "write": write}]})
    for fine in (["year(ts)", "month(ts)", "day(ts)", "hour(ts)"], ["year(ts)"], ["region", "day"]):
        _load(tmp_path, {"workflows": [{**WF, "write": {**write, "partition_by": fine}}]})
    _load(tmp_path, {"workflows": [{**WF, "write": {"table": "t", "partition_by": parts}}]})  # append: no loss


@pytest.mark.parametrize("match", ["/sales/", "./sales/"])
def test_a_match_no_landed_key_can_start_with_is_refused(tmp_path, match):
    """Keys are relative to the landing zone: such a workflow took no file (each `unrouted`, `nothing to do`)."""
    with pytest.raises(ConfigError, match=re.escape(f"`{match}` would take no file") + ".*write `sales/`"):
        _load(tmp_path, {"workflows": [{**WF, "match": match}]})
