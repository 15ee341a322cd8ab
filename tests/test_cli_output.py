"""What `landfall` prints: tab-separated rows on a pipe, rich tables on a terminal, and dynamic text never taken
as markup (`[delta]` in an install line, `[region]` in a partition list)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from rich.console import Console

import landfall.output
from landfall.cli import main

from conftest import REPO

LONG = "day-1-" + "a-rather-long-file-name-that-a-box-table-would-wrap-" * 2 + "end.csv"


def _project(tmp_path):
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, transform: [{cast: {x: int}}],"
        " write: {table: s}, retry: {max_attempts: 1}}\n"
    )
    landing = tmp_path / "lake/landing/s"
    landing.mkdir(parents=True)
    (landing / LONG).write_text("x\n1\n2\n")
    (landing / "day-2.csv").write_text("x\n3\n")
    (landing / "bad.csv").write_text('x\n1\n"[delta] is not\tan int"\n')


def _landfall(tmp_path, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(tmp_path / "landfall.yaml"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )


def test_tables_on_a_pipe_are_tab_separated_rows_that_grep_finds(tmp_path):
    _project(tmp_path)
    done = _landfall(tmp_path, "process")
    assert done.returncode == 1, done.stderr  # bad.csv is dead
    out = _landfall(tmp_path, "runs").stdout
    lines = out.splitlines()
    header = lines[0].split("\t")
    assert header[:4] == ["run", "file", "workflow", "status"]
    assert all(len(line.split("\t")) == len(header) for line in lines), out
    hit = [line for line in lines if "day-1" in line]  # `landfall runs | grep day-1`
    assert len(hit) == 1 and hit[0].split("\t")[1] == f"s/{LONG}"
    assert not any(c in out for c in "┃│┏━")  # never a box
    dead = _landfall(tmp_path, "dlq", "list").stdout.splitlines()
    error = dead[1].split("\t")[-1]
    assert "s/bad.csv" in error and "[delta] is not\\tan int" in error  # whole, a tab escaped, brackets kept
    assert len(error) > 60


def test_dynamic_text_is_never_markup_on_a_pipe_or_a_terminal(tmp_path, monkeypatch):
    _project(tmp_path)
    runner = CliRunner()
    cfg = ["--config", str(tmp_path / "landfall.yaml")]
    piped = runner.invoke(main, [*cfg, "process"])
    assert piped.exit_code == 1
    assert "[delta] is not" in piped.output

    buf = io.StringIO()
    monkeypatch.setattr(landfall.output, "console", Console(file=buf, force_terminal=True, width=250))
    assert not landfall.output.on_pipe()
    assert runner.invoke(main, [*cfg, "dlq", "list"]).exit_code == 0
    assert runner.invoke(main, [*cfg, "dlq", "retry", "--all"]).exit_code == 0
    assert runner.invoke(main, [*cfg, "process"]).exit_code == 1
    shown = _strip_ansi(buf.getvalue())
    assert "┃" in shown  # a drawn table on a terminal
    assert shown.count("[delta] is not") >= 2  # in the dead-letter table and in process's summary
    landfall.output.say("install it with: ", ("pip install", "bold"), ' "landfall[delta]"')
    assert 'pip install "landfall[delta]"' in _strip_ansi(buf.getvalue())


def test_crawl_prints_partition_names_in_brackets(tmp_path):
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    data = tmp_path / "existing" / "sales"
    for region in ("eu", "us"):
        (data / f"region={region}").mkdir(parents=True)
        pq.write_table(pa.table({"id": [1, 2]}), data / f"region={region}" / "part-0.parquet")
    out = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "crawl", str(tmp_path / "existing")])
    assert out.exit_code == 0, out.output
    assert "partitions [region]" in out.output


def test_runs_page_newest_first_with_before(tmp_path):
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    landing = tmp_path / "lake/landing/s"
    landing.mkdir(parents=True)
    for i in range(7):
        (landing / f"f{i}.csv").write_text(f"x\n{i}\n")
    cfg = ["--config", str(tmp_path / "landfall.yaml")]
    runner = CliRunner()
    assert runner.invoke(main, [*cfg, "process"]).exit_code == 0
    every = [r["run_id"] for r in json.loads(runner.invoke(main, [*cfg, "runs", "--json"]).output)]
    pages, before = [], None
    while True:
        args = [*cfg, "runs", "--json", "-n", "3"] + (["--before", before] if before else [])
        page = [r["run_id"] for r in json.loads(runner.invoke(main, args).output)]
        if not page:
            break
        pages.append(page)
        before = page[-1]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r for p in pages for r in p] == every


@pytest.fixture(autouse=True)
def _fresh_console(monkeypatch):
    monkeypatch.setattr(landfall.output, "console", Console())


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
