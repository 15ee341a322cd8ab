from __future__ import annotations

import pytest

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
        ("- filter:", "- filtr:", "unknown step `filtr`; expected one of `rename`"),
        ("quantity: int}", "quantity: integr}", "unknown type `integr`"),
        ("max_attempts: 3", "max_attempts: 0", "`workflows[0] (sales).retry.max_attempts`: Input should be greater"),
        ("match: sales/", "mtch: sales/", "`workflows[0] (sales).mtch`: unknown key"),
        ("table: sales", "table: 9sales", "table name `9sales`"),
        ('"SELECT * EXCLUDE (internal_note) FROM input"', '"SELECT 1"', "must read from `input`"),
        ("partition_by: [order_date]", 'partition_by: ["week(order_date)"]', "`year(column)`"),
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
