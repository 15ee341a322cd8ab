"""Looking at runs: `runs`, `runs show`, and the dead-letter list (`dlq list`, `dlq retry`, `dlq purge`)."""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import click

from landfall.cli.app import Ctx, main
from landfall.output import num, on_pipe, say, table
from landfall.output import status as status_text
from landfall.readback import run_json
from landfall.state.base import RUN_STATUSES, Run


@main.group(invoke_without_command=True)
@click.option("--status", type=click.Choice(RUN_STATUSES), default=None, help="Only runs in this status.")
@click.option("--workflow", "-w", default=None, help="Only runs of this workflow.")
@click.option("--file", "file_key", default=None, help="Only runs of this landed file (prefix + name).")
@click.option(
    "--limit", "-n", type=click.IntRange(min=0), default=50, show_default=True, help="At most this many (0: all)."
)
@click.option("--before", default=None, help="Only runs older than this run id (the next page).")
@click.option("--json", "as_json", is_flag=True, help="JSON array of run objects (stable shape; see README).")
@click.pass_context
def runs(
    ctx: click.Context,
    status: str | None,
    workflow: str | None,
    file_key: str | None,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first: file, workflow, status, attempt, timings, rows, error."""
    if ctx.invoked_subcommand is not None:
        return
    page = min(limit, PAGE) if limit else PAGE
    found = ctx.obj.pipeline().iter_runs(status=status, workflow=workflow, key=file_key, before=before, page=page)
    if limit:
        found = itertools.islice(found, limit)
    if as_json:
        _json_array(r.to_json() for r in found)
    elif on_pipe():
        runs_table(found)  # streamed: one line per run as it is read
    else:  # a terminal: one table per page, so the first rows show at once however many there are
        for i, chunk in enumerate(_chunked(found, PAGE)):
            runs_table(chunk, title=None if i == 0 else f"runs {i * PAGE + 1}-{i * PAGE + len(chunk)}")


PAGE = 500  # runs read (and drawn on a terminal) at a time


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def _json_array(docs: Iterable[dict[str, Any]]) -> None:
    """`json.dumps(list(docs), indent=2)`, written one object at a time."""
    first = True
    for doc in docs:
        click.echo(("[\n" if first else ",\n") + textwrap.indent(json.dumps(doc, indent=2), "  "), nl=False)
        first = False
    click.echo("[]" if first else "\n]")


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="The run as a JSON object, with its steps.")
@click.pass_obj
def runs_show(obj: Ctx, run_id: str, as_json: bool) -> None:
    """One run in full: per-step timings and the whole error."""
    run = obj.pipeline().run(run_id)
    doc = run_json(run)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    rows: list[tuple[str, str]] = [
        (k, "" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else str(v))
        for k, v in doc.items()
        if k not in ("steps", "error", "output_files")
    ]
    rows += [("output_file", f) for f in run.output_files]
    rows += [("step", f"{step['step']:<10} {step['seconds'] * 1000:9.1f} ms") for step in run.steps]
    if on_pipe():
        table(("field", "value"), [*rows, ("error", run.error or "")])
        return
    for key, value in rows:
        say((f"{key:>16}", "bold"), f" {value}")
    if run.error:
        say((f"{'error':>16}", "bold"))
        say(run.error)


def runs_table(found: Iterable[Run], title: str | None = None, section: bool = False) -> None:
    full = on_pipe()  # a pipe gets the whole error; a terminal its first line
    table(
        ("run", "file", "workflow", "status", "try", "started", "secs", "rows in", "rows out", "error / note"),
        (
            (
                r.run_id,
                r.file_key,
                r.workflow or "",
                status_text(r.status),
                str(r.attempt),
                (r.to_json()["started_at"] or "")[11:19],
                f"{r.duration:.2f}" if r.duration else "",
                num(r.rows_in),
                num(r.rows_out),
                (r.error or r.note or "") if full else ((r.error or r.note or "").splitlines() or [""])[0][:120],
            )
            for r in found
        ),
        title=title,
        section=section,
    )


@main.group()
def dlq() -> None:
    """The dead-letter list: runs that used up their attempts."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON array of run objects.")
@click.pass_obj
def dlq_list(obj: Ctx, as_json: bool) -> None:
    """Dead runs with their errors."""
    dead = obj.pipeline().dead_letters()
    if as_json:
        click.echo(json.dumps([r.to_json() for r in dead], indent=2))
    elif not dead:
        say("the dead-letter list is empty")
    else:
        runs_table(dead, title="dead-letter list")


@dlq.command("retry")
@click.argument("run_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Retry every dead run.")
@click.pass_obj
def dlq_retry(obj: Ctx, run_ids: tuple[str, ...], all_: bool) -> None:
    """Queue dead runs again (after fixing the workflow or the file); `landfall process` runs them."""
    if not run_ids and not all_:
        raise click.UsageError("name RUN_IDs or use --all")
    again = obj.pipeline().retry_dead(None if all_ else run_ids)
    say(f"queued {len(again)} runs again")


@dlq.command("purge")
@click.argument("run_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Purge every dead run.")
@click.pass_obj
def dlq_purge(obj: Ctx, run_ids: tuple[str, ...], all_: bool) -> None:
    """Take dead runs off the list (their run records and landed files stay)."""
    if not run_ids and not all_:
        raise click.UsageError("name RUN_IDs or use --all")
    n = obj.pipeline().purge_dead(None if all_ else run_ids)
    say(f"purged {n} runs from the dead-letter list")
