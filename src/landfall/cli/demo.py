"""`landfall demo`: sample data in a temporary lake, processed and queried (`--stream`: the streams demo)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from landfall.cli.app import main
from landfall.cli.catalog import print_rows, tables_table
from landfall.cli.loading import print_summary
from landfall.cli.runs import runs_table
from landfall.config import load_settings
from landfall.output import console, on_pipe, say
from landfall.pipeline import Pipeline


@main.command()
@click.option("--keep", is_flag=True, help="Keep the temporary lake and print where it is.")
@click.option(
    "--stream", "stream", is_flag=True, help="Seed 003: Firehose API (boto3) -> raw files -> staging -> Delta table."
)
def demo(keep: bool, stream: bool) -> None:
    """Run landfall on sample data in a temporary lake: two prefixes, two workflows, tables, a query."""
    from landfall.samples import init_project

    if stream:
        from landfall.streams.demo import run

        if not run(keep, print_rows=print_rows, print_summary=print_summary):
            sys.exit(1)
        return
    tmp = Path(tempfile.mkdtemp(prefix="landfall-demo-"))
    config, samples = init_project(tmp)
    if not on_pipe():
        console.rule("landfall demo", style="bold")
    say(f"lake: {tmp / 'lake'}  ({len(samples)} sample files landed under sales/ and events/)")
    p = Pipeline(load_settings(config))
    summary = p.process()
    print_summary(summary)
    say("")
    runs_table(p.runs(), title="runs", section=True)
    say("")
    tables_table(p.tables(), section=True)
    sql = (
        "SELECT order_date, count(*) AS orders, sum(quantity) AS items, round(sum(total), 2) AS revenue "
        "FROM sales GROUP BY order_date ORDER BY order_date"
    )
    sql2 = (
        "SELECT year, month, count(*) AS events, count(DISTINCT event_id) AS ids FROM events GROUP BY ALL ORDER BY ALL"
    )
    sql3 = "SELECT _source_file, _line, _rule, _reason, _raw FROM quarantine.events"
    for text_sql, note in ((sql, ""), (sql2, ""), (sql3, "  (a line that is not JSON: set aside, not lost)")):
        say("")
        say(("landfall query", "bold"), f' "{text_sql}"{note}')
        cols, rows = p.query(text_sql)
        print_rows(cols, rows, "table")
    p.close()
    if keep:
        say(f"\nkept: cd {tmp} && landfall runs")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if not summary.ok:
        sys.exit(1)
