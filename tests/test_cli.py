"""The CLI as users type it: commands, exit codes, and the stable JSON shapes other tools script against."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from landfall.cli import main

from conftest import REPO


def run(args, cwd, ok=True):
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(cwd / "landfall.yaml"), *args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def test_init_process_tables_query_runs(tmp_path):
    result = CliRunner().invoke(main, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "landfall.yaml").read_text().startswith("# landfall.yaml")
    out = run(["process"], tmp_path).output
    assert "5 succeeded" in out

    runs = json.loads(run(["runs", "--json"], tmp_path).output)
    assert len(runs) == 5
    assert set(runs[0]) == {
        "run_id",
        "file_id",
        "file_version",
        "workflow",
        "table",
        "status",
        "attempt",
        "queued_at",
        "started_at",
        "finished_at",
        "duration_seconds",
        "rows_in",
        "rows_out",
        "bytes",
        "content_hash",
        "output_files",
        "error",
        "note",
        "rows_quarantined",
        "quality",
        "interruptions",
        "encoding",
    }
    assert {r["status"] for r in runs} == {"succeeded"}
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", runs[0]["finished_at"])

    tables = json.loads(run(["tables", "--json"], tmp_path).output)
    assert [t["name"] for t in tables] == ["events", "quarantine.events", "sales"]
    bad = json.loads(
        run(["query", "SELECT _source_file, _line, _rule FROM quarantine.events", "--format", "json"], tmp_path).output
    )
    assert bad == [{"_source_file": "events/batch-2.jsonl", "_line": 11, "_rule": "parse"}]
    assert set(tables[0]) == {
        "name",
        "location",
        "format",
        "workflow",
        "schema",
        "schema_version",
        "partition_by",
        "rows",
        "files",
        "bytes",
        "created_at",
        "updated_at",
    }
    sales = next(t for t in tables if t["name"] == "sales")
    # a table's name where a command belongs says which command shows it
    wrong = run(["tables", "sales"], tmp_path, ok=False)
    assert wrong.exit_code == 2 and "to see the table `sales`: landfall tables show sales" in wrong.output, wrong.output
    assert {"name": "order_date", "type": "DATE", "arrow_type": "date32[day]"} in sales["schema"]

    rows = json.loads(
        run(["query", "SELECT count(*) AS n, sum(quantity) AS q FROM sales", "--format", "json"], tmp_path).output
    )
    assert rows[0]["n"] == sales["rows"] and rows[0]["q"] > 0
    csv_out = run(
        ["query", "SELECT order_id, order_date FROM sales ORDER BY 1 LIMIT 2", "--format", "csv"], tmp_path
    ).output
    assert csv_out.splitlines()[0] == "order_id,order_date"
    # every digit of a decimal, JSON for a struct or list, true/false (before: a double's digits and Python's
    # reprs: 1.2345678901234568e+22, {'a': 'x'}, True, 1e-09)
    sql = "SELECT 12345678901234567890123::DECIMAL(38,0) n, {'a': 'x', 'd': 1.10::DECIMAL(5,2)} s, [true] l, true b"
    sql += ", 0.000000001::DECIMAL(18,9) tiny, 'é' e"
    csv_out = run(["query", sql, "--format", "csv"], tmp_path).output
    assert csv_out.splitlines()[1] == '12345678901234567890123,"{""a"":""x"",""d"":1.10}",[true],true,0.000000001,é'
    shown = run(["query", sql], tmp_path).output.splitlines()  # for people: as DuckDB shows them
    assert shown[1].split("\t") == [
        "12345678901234567890123",
        '{"a":"x","d":1.10}',
        "[true]",
        "true",
        "0.000000001",
        "é",
    ]
    doc = json.loads(run(["query", sql, "--format", "json"], tmp_path).output, parse_float=Decimal)
    assert doc == [
        {
            "n": 12345678901234567890123,
            "s": {"a": "x", "d": Decimal("1.10")},
            "l": [True],
            "b": True,
            "tiny": Decimal("1E-9"),
            "e": "é",
        }
    ]

    run_id = runs[0]["run_id"]
    shown = run(["runs", "show", run_id], tmp_path).output
    assert run_id in shown and "read" in shown and "write" in shown and " ms" in shown
    doc = json.loads(run(["runs", "show", run_id, "--json"], tmp_path).output)
    assert [s["step"] for s in doc["steps"]][:2] == ["read", "transform"]
    shown = run(["tables", "show", "sales"], tmp_path).output
    assert "schema versions" in shown and "order_date=2026-11-01" in shown
    doc = json.loads(run(["tables", "show", "events", "--json"], tmp_path).output)
    assert doc["schema_versions"][0]["version"] == 1 and doc["partitions"]


@pytest.mark.parametrize(
    "args, refused",
    [
        (["runs", "-n", "-5"], "-5 is not in the range x>=0"),  # a traceback (islice)
        (["tables", "optimize", "t", "--min-files", "1"], "1 is not in the range x>=2"),  # rewrote 1 file as 1
        (["process", "--workers", "0"], "0 is not in the range 1<=x<=64"),  # as `workers:` in landfall.yaml
        (["serve", "--port", "-1"], "-1 is not in the range 0<=x<=65535"),  # a traceback (getaddrinfo)
        (["up", "--port", "99999", "--serve"], "99999 is not in the range 0<=x<=65535"),  # served on another port
    ],
)
def test_numbers_out_of_range_are_refused_in_one_line(tmp_path, args, refused):
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), *args])
    assert result.exit_code == 2 and refused in result.output and "Traceback" not in result.output, result.output


def test_init_says_the_commands_to_run_next(tmp_path, monkeypatch):
    """`landfall init` in the current folder said `cd . && ...`; a folder with a space is quoted."""
    monkeypatch.chdir(tmp_path)
    here = CliRunner().invoke(main, ["init"])
    assert "next: landfall process && landfall tables" in here.output, here.output
    there = CliRunner().invoke(main, ["init", "my proj"])
    assert "next: cd 'my proj' && landfall process && landfall tables" in there.output, there.output


def test_process_exits_nonzero_when_a_file_is_dead_and_dlq_commands(tmp_path):
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: n, match: n/, read: {format: csv}, transform: [{cast: {x: int}}],"
        " write: {table: n}, retry: {max_attempts: 1}}\n"
    )
    (tmp_path / "lake/landing/n").mkdir(parents=True)
    (tmp_path / "lake/landing/n/bad.csv").write_text("x\n1\nnope\n")
    result = run(["process"], tmp_path, ok=False)
    assert result.exit_code == 1
    assert "dead" in result.output and "n/bad.csv" in result.output
    (line,) = [x for x in result.output.splitlines() if x.startswith("dead n/")]
    assert line.startswith("dead n/bad.csv: line 3") and line.count("n/bad.csv") == 1, line  # the file named once
    dead = json.loads(run(["dlq", "list", "--json"], tmp_path).output)
    assert [d["file_id"] for d in dead] == ["n/bad.csv"]
    assert "queued 1 runs again" in run(["dlq", "retry", dead[0]["run_id"]], tmp_path).output
    assert run(["process"], tmp_path, ok=False).exit_code == 1
    again = run(["process"], tmp_path, ok=False)  # nothing new to do, but a file could not be loaded: not 0
    assert again.exit_code == 1
    assert "nothing to do" in again.output and "dead-letter list: 1 file(s) (1 from earlier runs)" in again.output
    assert "purged 1" in run(["dlq", "purge", "--all"], tmp_path).output
    assert "empty" in run(["dlq", "list"], tmp_path).output
    assert "nothing to do" in run(["process"], tmp_path).output  # exit 0 once the list is empty
    assert json.loads(run(["runs", "--status", "dead", "--json"], tmp_path).output)  # records stay


def test_errors_are_one_clear_line_not_a_traceback(tmp_path):
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\nworkers: -1\n")
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "tables"])
    assert result.exit_code == 1
    assert "Error:" in result.output and "workers" in result.output and "Traceback" not in result.output
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "tables", "show", "nope"])
    assert result.exit_code == 1 and "no table `nope`" in result.output
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "query", "SELEC 1"])
    assert result.exit_code == 1 and "query failed" in result.output


def test_ingest_command(tmp_path):
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    src = tmp_path / "a.csv"
    src.write_text("id\n1\n")
    out = run(["ingest", str(src), "--prefix", "s", "--process"], tmp_path).output
    assert "queued 1 new versions" in out and "1 succeeded" in out


def test_ingest_of_a_folder_passes_over_names_landfall_never_loads(tmp_path):
    """A folder copied in with `.DS_Store`, an editor's `.swp`, a hidden folder and `_tmp/`: they landed and were
    loaded (`.DS_Store` dead-lettered: no format), though a listing never loads such names. They are passed
    over and said; a hidden file named on its own is refused, copying nothing."""
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    src = tmp_path / "export"
    for rel, text in {
        "a.csv": "id\n1\n",
        "sub/b.csv": "id\n2\n",
        ".DS_Store": "\x00\x01",
        ".a.csv.swp": "junk",
        ".hidden/c.csv": "id\n3\n",
        "_tmp/d.csv": "id\n4\n",
        "e.csv.part": "id\n5\n",
        "~$f.csv": "owner",
        "g.csv~": "id\n7\n",
    }.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    out = run(["ingest", str(src), "--prefix", "s", "--process"], tmp_path).output
    assert "landed 2 files" in out and "2 succeeded" in out and "dead" not in out, out
    said = "passed over 7 files whose names landfall never loads (`.x`, `_x`, `x.part`, `x.tmp`, ...): `s/.DS_Store`"
    assert said in out, out
    landed = sorted(
        p.relative_to(tmp_path / "lake/landing").as_posix() for p in (tmp_path / "lake/landing").rglob("*.*")
    )
    assert landed == ["s/a.csv", "s/sub/b.csv"]
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "landfall.yaml"), "ingest", str(src / ".a.csv.swp"), "--prefix", "s"]
    )
    assert result.exit_code == 1 and "names starting with `.` or `_` are never loaded" in result.output
    assert not (tmp_path / "lake/landing/s/.a.csv.swp").exists()
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "landfall.yaml"), "ingest", str(src / "e.csv.part"), "--prefix", "s"]
    )
    assert result.exit_code == 1 and "temporary names (`x.part`, `x.partial`" in result.output, result.output


def test_ingest_places_every_file_it_can_and_names_each_one_the_zone_cannot_hold(tmp_path):
    """`s/c/d.csv` cannot land while `s/c` is a file: ingest stopped there, `a.csv` queued, `z.csv` not copied
    and not named. Every other file lands and loads; the one refused is named with its reason; exit 1."""
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    (tmp_path / "lake/landing/s").mkdir(parents=True)
    (tmp_path / "lake/landing/s/c").write_text("not a folder")
    src = tmp_path / "export"
    for rel, text in {"a.csv": "id\n1\n", "c/d.csv": "id\n2\n", "z.csv": "id\n3\n"}.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "landfall.yaml"), "ingest", str(src), "--prefix", "s", "--process"]
    )
    assert result.exit_code == 1, result.output
    assert "landed 2 files" in result.output and "2 succeeded" in result.output, result.output
    assert "not landed key `s/c/d.csv`: `s/c` is a file" in result.output, result.output
    out = run(["query", "SELECT string_agg(id::VARCHAR, ',' ORDER BY id) AS ids FROM s"], tmp_path).output
    assert out.split() == ["ids", "1,3"], out


def test_json_logs(tmp_path):
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    (tmp_path / "lake/landing/s").mkdir(parents=True)
    (tmp_path / "lake/landing/s/a.csv").write_text("id\n1\n")
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "landfall.yaml"), "-v", "--log-format", "json", "process"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(ln) for ln in result.output.splitlines() if ln.startswith("{")]
    done = [ln for ln in lines if ln.get("status") == "succeeded"]
    assert done and done[0]["file"] == "s/a.csv" and done[0]["workflow"] == "s" and done[0]["level"] == "info"


def test_the_global_options_work_after_the_command_too(tmp_path):
    """`landfall process --config x.yaml -q`, as users type it, was refused: `No such option '--config'`."""
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, write: {table: s}}\n"
    )
    (tmp_path / "lake/landing/s").mkdir(parents=True)
    (tmp_path / "lake/landing/s/a.csv").write_text("id\n1\n")
    cfg = str(tmp_path / "landfall.yaml")
    result = CliRunner().invoke(main, ["process", "--config", cfg, "-v", "--log-format=json"])
    assert result.exit_code == 0, result.output
    assert any(json.loads(ln).get("status") == "succeeded" for ln in result.output.splitlines() if ln[:1] == "{")
    result = CliRunner().invoke(main, ["query", "SELECT count(*) AS n FROM s", "--format", "json", "-c", cfg, "-qq"])
    assert result.exit_code == 0 and json.loads(result.output) == [{"n": 1}], result.output
    # a command's own arguments stay its own, after `--` too
    result = CliRunner().invoke(main, ["tables", "history", "s", "-n", "1", "--lake", str(tmp_path / "lake")])
    assert "keep no history" in result.output, result.output
    result = CliRunner().invoke(main, ["-c", cfg, "query", "--", "-q"])
    assert result.exit_code != 0 and "No such option" not in result.output, result.output


def test_query_json_keeps_each_of_two_columns_of_one_name(tmp_path):
    """`--format json` kept the last value of columns of one name (`SELECT 1 AS a, 2 AS a` gave `{"a": 2}`)."""
    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    result = run(["query", "SELECT 1 AS a, 2 AS a, 3 AS a_1", "--format", "json"], tmp_path)
    assert json.loads(result.output) == [{"a": 1, "a_2": 2, "a_1": 3}], result.output


def _commands(group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        path = (*prefix, name)
        yield path, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)


def test_every_command_is_found_by_name_before_its_module_is_imported():
    """`landfall process` imports only the module of `process`: the map from command to module names every
    command, and each module's commands are all in it."""
    import importlib
    import subprocess
    import sys

    from landfall.cli.app import COMMANDS

    for module in set(COMMANDS.values()):
        importlib.import_module(f"landfall.cli.{module}")
    assert {name: cmd.callback.__module__ for name, cmd in main.commands.items()} == {
        name: f"landfall.cli.{module}" for name, module in COMMANDS.items()
    }
    code = (
        "import sys; from landfall.cli import main; import click; main.get_command(click.Context(main), 'process');"
        "print(sorted(m for m in sys.modules if m.startswith(('landfall.cli.', 'rich', 'landfall.readback'))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "landfall.cli.loading" in loaded and "landfall.cli.catalog" not in loaded and "rich" not in loaded, loaded


def test_a_query_of_tables_imports_neither_pyarrow_nor_sqlglot(tmp_path):
    """`landfall query` over Parquet and Delta tables took 0.34 s, a third of it importing sqlglot (to find the
    tables the statement names) and pyarrow with numpy (to read the tables' type strings, and for landfall's own
    records, which it did not read); now 0.2 s. Reading `landfall.runs` still imports pyarrow."""
    import subprocess
    import sys

    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, write: {table: s}}\n"
        "  - {name: d, match: d/, write: {table: d, format: delta}}\n"
    )
    for prefix in ("s", "d"):
        (tmp_path / "lake/landing" / prefix).mkdir(parents=True)
        (tmp_path / "lake/landing" / prefix / "a.csv").write_text("id,x,t\n1,2.5,2024-01-01 10:00:00\n")
    run(["process"], tmp_path)
    code = (
        "import json, sys; from landfall.cli.app import main\n"
        "sys.argv = ['landfall', '--config', sys.argv[1], 'query', sys.argv[2]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps([m for m in ('numpy', 'pyarrow', 'sqlglot') if m in sys.modules]))"
    )
    cfg = str(tmp_path / "landfall.yaml")
    for sql, heavy in (
        ("SELECT s.id, d.x FROM s JOIN d USING (id)", []),
        ("SELECT count(*) FROM landfall.runs", ["numpy", "pyarrow"]),
    ):
        out = subprocess.run([sys.executable, "-c", code, cfg, sql], capture_output=True, text=True, check=True).stdout
        assert json.loads(out.splitlines()[-1]) == heavy, out


def test_the_command_sets_the_collector_up_before_it_imports_anything_heavy():
    """`landfall` raises the collector's first threshold before the imports that make its long-lived objects
    (at Python's default the collector walked them again and again while they were made): importing the
    package and `landfall.cli` imports none of them, and the command's entry sets the threshold first."""
    import subprocess
    import sys

    from landfall.cli import GC_THRESHOLD

    code = (
        "import gc, sys, landfall, landfall.cli\n"
        "heavy = [m for m in ('landfall.pipeline', 'landfall.config', 'duckdb', 'yaml', 'msgspec', 'click')"
        " if m in sys.modules]\n"
        "sys.argv = ['landfall', '--version']\n"
        "try:\n    landfall.cli.entry()\nexcept SystemExit:\n    pass\n"
        "print(heavy, gc.get_threshold()[0], 'Pipeline' in dir(landfall), landfall.Pipeline.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == f"[] {GC_THRESHOLD} True landfall.pipeline", out


def test_every_command_has_help_and_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for path, cmd in _commands(main):
        assert cmd.help or cmd.short_help, f"`landfall {' '.join(path)}` has no help"
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0
        assert f"landfall {' '.join(path)}" in readme, f"README does not mention `landfall {' '.join(path)}`"


def test_runs_are_read_a_page_at_a_time_and_streamed(tmp_path, monkeypatch):
    from landfall import Pipeline
    from landfall.events import ObjectCreated
    from landfall.state.base import StateStore

    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: a, match: a/, read: {format: csv}, write: {table: a}}\n"
    )
    p = Pipeline(str(tmp_path / "landfall.yaml"))
    p.store.discover([ObjectCreated(key=f"a/{i:04d}.csv", size=1, mtime=1.0) for i in range(1_234)], p.router.route)
    every = [r.run_id for r in p.store.runs()]
    p.close()
    pages: list[int] = []
    real = StateStore.iter_runs

    def counting(self, **kw):
        yield from real(self, **kw)
        pages.append(kw["page"])

    monkeypatch.setattr(StateStore, "iter_runs", counting)
    docs = json.loads(run(["runs", "-n", "0", "--json"], tmp_path).output)
    assert [d["run_id"] for d in docs] == every and pages == [500]  # read 500 at a time, written as read
    assert [d["run_id"] for d in json.loads(run(["runs", "-n", "700", "--json"], tmp_path).output)] == every[:700]
    lines = run(["runs", "-n", "0", "--before", every[9]], tmp_path).output.splitlines()  # a pipe: one line a run
    assert len(lines) == 1 + 1_234 - 10 and lines[1].startswith(every[10])
    assert json.loads(run(["runs", "--status", "dead", "--json"], tmp_path).output) == []


def test_query_messages_name_landfall_tables_and_as_of_on_parquet(tmp_path):
    """A missing table suggests a landfall table (DuckDB suggested `sqlite_master`, `pg_views`); `--as-of` on a
    Parquet table says it reads the table as it is now (it was ignored without a word)."""
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: sales, match: sales/, read: {format: csv}, write: {table: sales}}\n"
    )
    (tmp_path / "lake/landing/sales").mkdir(parents=True)
    (tmp_path / "lake/landing/sales/a.csv").write_text("id\n1\n")
    assert run(["process"], tmp_path).exit_code == 0
    result = run(["query", "SELECT * FROM sale"], tmp_path, ok=False)
    assert result.exit_code != 0
    assert "no table `sale`; did you mean `sales`?" in result.output, result.output
    assert "sqlite_master" not in result.output and "pg_" not in result.output
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: sales, match: sales/, read: {format: csv}, write: {table: sales}}\n"
        "  - {name: semi, match: semi/, read: {format: csv}, write: {table: semi}}\n"
    )
    (tmp_path / "lake/landing/semi").mkdir(parents=True)
    (tmp_path / "lake/landing/semi/a.csv").write_text("id\n2\n")
    assert run(["process"], tmp_path).exit_code == 0
    result = run(["query", "SELECT * FROM semi"], tmp_path, ok=False)  # a table named like an SQL keyword
    assert result.exit_code != 0
    assert '`semi` is also an SQL keyword: write the table\'s name in double quotes ("semi")' in result.output
    assert run(["query", 'SELECT id FROM "semi"'], tmp_path).output.splitlines()[1:] == ["2"]
    result = run(["query", "--as-of", "1", "SELECT count(*) FROM sales"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "--as-of applies to Delta tables; `sales` is a parquet table and is read as it is now" in result.output


def test_query_shows_a_float_as_the_number_it_holds(tmp_path):
    """A FLOAT (a Parquet file's float32 column, `cast: float`) shows as the shortest number that reads back as
    it, as DuckDB, Spark and pandas show it (before: the double Python widens it to, `0.1` as
    0.10000000149011612), in every format, inside lists and structs too; the library's rows keep the double."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from landfall.pipeline import Pipeline

    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: m, match: m/, read: {format: parquet}, write: {table: m}}\n"
    )
    (tmp_path / "lake/landing/m").mkdir(parents=True)
    floats = pa.array([0.1, 3.4e38], pa.float32())
    items = pa.array([[0.1, 1.1], None], pa.list_(pa.float32()))
    pq.write_table(pa.table({"id": [1, 2], "v": floats, "l": items}), tmp_path / "lake/landing/m/a.parquet")
    assert run(["process"], tmp_path).exit_code == 0
    sql = "SELECT v, l, {'x': v} s FROM m ORDER BY id"
    doc = json.loads(run(["query", sql, "--format", "json"], tmp_path).output)
    assert doc == [{"v": 0.1, "l": [0.1, 1.1], "s": {"x": 0.1}}, {"v": 3.4e38, "l": None, "s": {"x": 3.4e38}}]
    csv_out = run(["query", sql, "--format", "csv"], tmp_path).output.splitlines()
    assert csv_out[1:] == ['0.1,"[0.1,1.1]","{""x"":0.1}"', '3.4e+38,,"{""x"":3.4e38}"'], csv_out
    assert run(["query", sql], tmp_path).output.splitlines()[1].split("\t") == ["0.1", "[0.1,1.1]", '{"x":0.1}']
    with Pipeline(tmp_path / "landfall.yaml") as p:
        assert p.query("SELECT v FROM m ORDER BY id").rows[0] == (0.10000000149011612,)


def _as_plain_user(command: list[str]) -> list[str]:
    """`command` as a user file permissions hold: as root, without the capabilities that override them."""
    import os
    import shutil

    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without `setpriv` (util-linux) to drop the permission override")
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", *command]


def test_a_landed_file_landfall_may_not_read_names_the_user_and_the_way_out(tmp_path):
    """A file landed by another user with no read permission for landfall's (an SFTP server's umask of 077) ended
    dead with `PermissionError: [Errno 13] Permission denied: '...'`. Now the run says who may not read what,
    and how to go on."""
    import getpass
    import os
    import subprocess
    import sys

    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: s, match: s/, read: {format: csv}, retry: {max_attempts: 1}, "
        "write: {table: s}}\n"
    )
    (tmp_path / "lake/landing/s").mkdir(parents=True)
    (tmp_path / "lake/landing/s/a.csv").write_text("id\n1\n")
    (tmp_path / "lake/landing/s/b.csv").write_text("id\n2\n")
    (tmp_path / "lake/landing/s/a.csv").chmod(0)
    base = [sys.executable, "-m", "landfall", "--config", str(tmp_path / "landfall.yaml")]
    command = _as_plain_user([*base, "process"])
    import landfall

    here = str(Path(landfall.__file__).parents[1])  # the landfall under test, as imported here
    env = os.environ | {"NO_COLOR": "1", "PYTHONPATH": os.pathsep.join([here, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 1 and "1 succeeded, 1 dead" in out.stdout, out.stdout + out.stderr
    said = f"dead s/a.csv: permission denied to user `{getpass.getuser()}` on `"
    assert said in out.stdout and "lake/landing/s/a.csv`: let landfall's user read" in out.stdout, out.stdout
    # a lake folder landfall's user may not write: one line, not a traceback
    (tmp_path / "lake/landing/s/a.csv").chmod(0o644)
    (tmp_path / "elsewhere").mkdir(mode=0o555)
    other = _as_plain_user([*base, "--lake", str(tmp_path / "elsewhere"), "process"])
    out = subprocess.run(other, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"Error: permission denied to user `{getpass.getuser()}` on `"), out.stderr
    # the state database's folder: waited on, as for a database away, saying what to fix
    (tmp_path / "lake/_landfall").chmod(0o555)
    try:
        with pytest.raises(subprocess.TimeoutExpired) as waited:
            subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=4)
    finally:
        (tmp_path / "lake/_landfall").chmod(0o755)
    logged = (waited.value.stderr or b"").decode()
    assert "state.db` cannot be read or written: permission denied to user" in logged, logged


def test_a_file_where_a_folder_is_needed_is_one_line(tmp_path):
    """`--lake` naming a file ended in a traceback (`NotADirectoryError: ... afile/_landfall`); `crawl` of a
    Parquet file said it was skipped as `one.parquet/one.parquet`, no data files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "landfall.yaml").write_text("lake: ./lake\n")
    (tmp_path / "afile").write_text("x")
    out = CliRunner().invoke(
        main, ["--config", str(tmp_path / "landfall.yaml"), "--lake", str(tmp_path / "afile"), "tables"]
    )
    assert out.exit_code == 1 and "Traceback" not in out.output, out.output
    afile, wanted = tmp_path / "afile", tmp_path / "afile/_landfall"
    assert out.output.strip() == f"Error: `{afile}` is a file where landfall needs a folder (for `{wanted}`)"
    pq.write_table(pa.table({"a": [1]}), tmp_path / "one.parquet")
    out = run(["crawl", str(tmp_path / "one.parquet")], tmp_path).output
    assert "one.parquet: a file, not a folder: a dataset is a folder" in out and "one.parquet/one.parquet" not in out
