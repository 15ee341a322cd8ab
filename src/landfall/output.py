"""What the `landfall` command prints: rich tables on a terminal, tab-separated rows on a pipe.

On a terminal tables are drawn with rich; when stdout is a pipe or a file (`landfall runs | grep day-1`) every
table is one header line and one line per row, fields separated by tabs, never wrapped or cut (a tab, newline,
carriage return or backslash inside a value is written `\\t`, `\\n`, `\\r`, `\\\\`, as PostgreSQL's text
format does). Dynamic text (file names, errors, install lines such as `pip install "landfall[delta]"`) is never
read as rich markup: messages are built from `Text` parts, never from markup strings.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

# rich is imported when something is drawn for a terminal: on a pipe (a script, a scheduler's log) lines are plain
# text, and `landfall process` does not pay for importing rich
Part: TypeAlias = "str | tuple[str, str] | Text"  # plain text, (text, style), or a Text
T = TypeVar("T")


def _rich(name: str) -> Console:
    """The rich console `console` (stdout) or `err_console` (stderr), made on first use (a module attribute
    from then on)."""
    if name not in globals():
        from rich.console import Console

        globals()[name] = Console(stderr=name == "err_console")
    return globals()[name]


def __getattr__(name: str) -> Any:  # `from landfall.output import console`
    if name in ("console", "err_console"):
        return _rich(name)
    raise AttributeError(name)


def _terminal(stream: TextIO, name: str) -> bool:
    """Whether the console `name` writes to a terminal, as rich decides it (`TTY_COMPATIBLE`, `FORCE_COLOR`, then
    `isatty`); before the console is made, a stream that cannot be one is answered without rich."""
    if name not in globals() and os.environ.get("TTY_COMPATIBLE") != "1" and not os.environ.get("FORCE_COLOR"):
        isatty = getattr(stream, "isatty", None)
        try:
            if isatty is None or not isatty():
                return False
        except ValueError:  # a closed stream
            return False
    return bool(_rich(name).is_terminal)


def _plain(parts: Sequence[Part]) -> str:
    return "".join(p if isinstance(p, str) else p[0] if isinstance(p, tuple) else p.plain for p in parts)


STATUS_STYLES = {
    "succeeded": "green",
    "failed": "yellow",
    "dead": "red",
    "skipped": "cyan",
    "unrouted": "magenta",
    "queued": "white",
    "running": "blue",
}


def on_pipe() -> bool:
    """True when stdout is not a terminal (a pipe, a file, a test runner)."""
    return not _terminal(sys.stdout, "console")


def text(*parts: Part) -> Text:
    """One line from parts; strings are taken literally (`[delta]` stays `[delta]`)."""
    from rich.text import Text

    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(part[0], style=part[1])
        else:
            out.append(part)
    return out


def say(*parts: Part) -> None:
    """Print one message line to stdout: styled on a terminal, plain and unwrapped on a pipe."""
    if on_pipe():
        click.echo(_plain(parts))
    else:
        _rich("console").print(text(*parts), highlight=False)


def warn(*parts: Part) -> None:
    """Print one message line to stderr."""
    if not _terminal(sys.stderr, "err_console"):
        click.echo(_plain(parts), err=True)
    else:
        _rich("err_console").print(text(*parts), highlight=False)


def status(value: str) -> Text:
    from rich.text import Text

    return Text(value, style=STATUS_STYLES.get(value, "white"))


def tsv_field(value: object) -> str:
    """A value as one tab-separated field: tabs, newlines and backslashes escaped."""
    s = "" if value is None else str(getattr(value, "plain", value))  # a rich Text: its text
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    title: str | None = None,
    section: bool = False,
) -> None:
    """A table: rich on a terminal; header + tab-separated rows on a pipe.

    `section`: on a pipe, print `# title` and a blank line around it (commands that print several tables)."""
    if on_pipe():
        if section and title:
            click.echo(f"# {title}")
        click.echo("\t".join(columns))
        for row in rows:
            click.echo("\t".join(tsv_field(v) for v in row))
        if section:
            click.echo("")
        return
    from rich.table import Table as RichTable
    from rich.text import Text

    t = RichTable(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*(v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in row))
    _rich("console").print(t)


def human(n: float) -> str:
    """Bytes for people: `512 B`, `1.5 KB`, `3.2 MB`."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def num(v: int | None) -> str:
    return "" if v is None else f"{v:,}"


def run_progress(total: int, call: Callable[[Callable[[Any], None]], T]) -> T:
    """`call(on_done)` with a progress bar on stderr: runs done of `total`, bytes, files per second."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    done_bytes = [0]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[bytes]}"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=_rich("err_console"),
        transient=False,
    ) as bar:
        task = bar.add_task("processing", total=total or None, bytes="", rate="")

        def on_done(outcome: Any) -> None:
            done_bytes[0] += outcome.run.size or 0
            state = bar.tasks[0]
            if state.total is not None and state.completed + 1 > state.total:
                bar.update(task, total=state.completed + 1)
            elapsed = max(state.elapsed or 1e-9, 1e-9)
            rate = f"{(state.completed + 1) / elapsed:,.1f} files/s"
            bar.update(task, advance=1, bytes=human(done_bytes[0]), rate=rate)

        return call(on_done)


def copy_progress(total_bytes: int, files: int, call: Callable[[Callable[[str, int], None]], T]) -> T:
    """`call(on_file)` with a progress bar on stderr: files and bytes copied, transfer speed."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(
        TextColumn("[bold]ingest"),
        BarColumn(),
        TextColumn("{task.fields[n]}"),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=_rich("err_console"),
    ) as bar:
        task = bar.add_task("ingest", total=total_bytes, n=f"0/{files} files")
        count = [0]

        def on_file(_key: str, size: int) -> None:
            count[0] += 1
            bar.update(task, advance=size, n=f"{count[0]}/{files} files")

        return call(on_file)
