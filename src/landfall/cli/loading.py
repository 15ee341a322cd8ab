"""Commands that load files once and exit: `init`, `ingest`, `process`."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from landfall.cli.app import Ctx, main
from landfall.outcomes import Summary
from landfall.output import copy_progress, human, run_progress, say
from landfall.pipeline import Pipeline


@main.command()
@click.argument("directory", type=click.Path(file_okay=False), default=".")
@click.option("--force", is_flag=True, help="Overwrite an existing landfall.yaml.")
def init(directory: str, force: bool) -> None:
    """Write a commented starter landfall.yaml and sample data into DIRECTORY."""
    from landfall.samples import init_project

    try:
        config, samples = init_project(Path(directory), force=force)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    say("wrote ", (str(config), "bold"), f" and {len(samples)} sample files under {Path(directory) / 'lake/landing'}")
    go = "" if Path(directory).resolve() == Path.cwd().resolve() else f"cd {shlex.quote(directory)} && "
    say("next: ", (f"{go}landfall process && landfall tables", "bold"))


@main.command()
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="Worker threads (default: from config, 2).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a terminal).")
@click.pass_obj
def process(obj: Ctx, workers: int | None, progress: bool | None) -> None:
    """Load everything not yet loaded, drain the queue and exit (non-zero if any file ended dead)."""
    p = obj.pipeline()
    show = sys.stderr.isatty() if progress is None else progress
    found = len(p.discover())  # before the bar starts, so it knows the total
    summary = _with_progress(p, show, lambda on_done: p.process(workers=workers, on_done=on_done, discover=False))
    summary.discovered += found
    print_summary(summary)
    if not summary.ok:
        sys.exit(1)


def _with_progress(p: Pipeline, show: bool, call: Any) -> Summary:
    if not show:
        return call(None)
    counts = p.counts()
    return run_progress(counts["queued"] + counts["running"], call)


def print_summary(s: Summary) -> None:
    parts = [f"{s.count(k)} {k}" for k in ("succeeded", "skipped", "failed", "dead") if s.count(k)]
    say("processed: " + (", ".join(parts) if parts else "nothing to do"))
    for o in s.dead:
        said = o.error or ""
        if said.startswith(f"`{o.run.file_key}`"):  # the line names the file once
            said = said[len(o.run.file_key) + 2 :].lstrip(": ")
        say(("dead", "red"), f" {o.run.file_key}: {said}")
    earlier = s.dead_letter - len(s.dead)
    if s.dead_letter:
        more = f" ({earlier} from earlier runs)" if earlier > 0 else ""
        say(
            ("dead-letter list", "red"),
            f": {s.dead_letter} file(s){more}; `landfall dlq list` shows them, `landfall dlq retry` queues them again",
        )


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--prefix", "-p", default="", help="Prefix under landing/ (chooses the workflow).")
@click.option("--process/--no-process", "then_process", default=False, help="Also process the queue afterwards.")
@click.pass_obj
def ingest(obj: Ctx, paths: tuple[str, ...], prefix: str, then_process: bool) -> None:
    """Copy local files (or folders) into landing/PREFIX/ and queue them."""
    from landfall.pipeline import ingest_plan

    p = obj.pipeline()
    show = sys.stderr.isatty()
    todo, skipped = ingest_plan(paths, prefix)  # refuses a bad key before anything is copied
    sizes = {key: f.stat().st_size for f, key in todo}
    refused: dict[str, str] = {}

    def copy(on_file: Any = None) -> list[Any]:
        return p.ingest(paths, prefix, on_file=on_file, on_refused=refused.__setitem__)

    runs = copy_progress(sum(sizes.values()), len(todo), copy) if show else copy()
    queued = sum(1 for r in runs if r.status == "queued")
    unrouted = [r for r in runs if r.status == "unrouted"]
    landed = sum(size for key, size in sizes.items() if key not in refused)
    say(f"landed {len(todo) - len(refused)} files ({human(landed)}); queued {queued} new versions")
    for why in refused.values():
        say(("not landed", "red"), f" {why}")
    if skipped:
        shown = ", ".join(f"`{k}`" for k in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        never = "(`.x`, `_x`, `x.part`, `x.tmp`, ...)"
        say(f"passed over {len(skipped)} files whose names landfall never loads {never}: {shown}")
    for r in unrouted:
        say(("unrouted", "yellow"), f" {r.file_key}: {r.error}")
    if then_process:
        summary = p.process(discover=False)
        print_summary(summary)
        if not summary.ok:
            sys.exit(1)
    if refused:
        sys.exit(1)
