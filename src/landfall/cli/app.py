"""The `landfall` group: global options, the context each command gets (`Ctx`, which opens the pipeline), and
the entry point that turns errors into one clear line."""

from __future__ import annotations

import gc
import importlib
import logging
import re
import sys
from typing import Any

import click

from landfall import logs
from landfall.config import load_settings
from landfall.errors import LandfallError, denied, in_the_way
from landfall.pipeline import Pipeline
from landfall.redaction import redact


class Ctx:
    def __init__(self, config: str | None, lake: str | None, argv: list[str] | None = None) -> None:
        self.config = config
        self.lake = lake
        self.argv = argv or []  # the global options as given, for child processes (`--processes`)
        self._pipeline: Pipeline | None = None

    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            settings = load_settings(self.config, overrides={"lake": self.lake})
            self._pipeline = Pipeline(settings)
        return self._pipeline

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()


# which module of `landfall.cli` defines each command: a command's module is imported when the command is asked
# for, so `landfall process` does not import the code (and libraries) of `serve`, `tables` or `demo`
COMMANDS = {
    "init": "loading",
    "process": "loading",
    "ingest": "loading",
    "up": "running",
    "worker": "running",
    "serve": "running",
    "runs": "runs",
    "dlq": "runs",
    "tables": "catalog",
    "quarantine": "catalog",
    "crawl": "catalog",
    "query": "catalog",
    "demo": "demo",
}


class LandfallGroup(click.Group):
    """Finds each command in its module when it is asked for, and turns landfall errors into one clear line and
    exit code 2, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(f"landfall.cli.{COMMANDS[cmd_name]}")  # registers its commands on `main`
        return super().get_command(ctx, cmd_name)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, globals_first(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LandfallError as exc:
            raise click.ClickException(redact(str(exc))) from None
        except PermissionError as exc:  # a zone's folder or file landfall's user may not write or read
            raise click.ClickException(redact(denied(exc))) from None
        except (NotADirectoryError, IsADirectoryError, FileExistsError) as exc:  # `--lake` naming a file
            raise click.ClickException(redact(in_the_way(exc))) from None


# the group's options, which a command's own never shadow: given after the command (`landfall process -q`,
# `landfall query "..." --config prod.yaml`) they are taken as if given before it
_GLOBAL_VALUED = ("-c", "--config", "--lake", "--log-format")
_GLOBAL_COUNTED = re.compile(r"-v+|-q+|--verbose|--quiet")
_GLOBAL_ASSIGNED = ("--config=", "--lake=", "--log-format=")


def globals_first(args: list[str]) -> list[str]:
    """`args` with the group's options that follow the command moved before it (up to a `--`)."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":  # the options before the command
        i += 2 if args[i] in _GLOBAL_VALUED else 1
    if i >= len(args):
        return args
    head, command, tail = args[:i], args[i], args[i + 1 :]
    moved: list[str] = []
    rest: list[str] = []
    j = 0
    while j < len(tail):
        arg = tail[j]
        if arg == "--":
            rest += tail[j:]
            break
        if arg in _GLOBAL_VALUED and j + 1 < len(tail):
            moved += tail[j : j + 2]
            j += 2
            continue
        (moved if _GLOBAL_COUNTED.fullmatch(arg) or arg.startswith(_GLOBAL_ASSIGNED) else rest).append(arg)
        j += 1
    return [*head, *moved, command, *rest]


@click.group(cls=LandfallGroup)
@click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=True),
    default=None,
    envvar="LANDFALL_CONFIG",
    help="Path to landfall.yaml (default: ./landfall.yaml, else built-in defaults).",
)
@click.option("--lake", default=None, help="Override the lake root (a folder or URL).")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", count=True, help="Less log output (-qq for errors only).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines for people (text) or machines (json, one object per line).",
)
@click.version_option(package_name="landfall")
@click.pass_context
def main(ctx: click.Context, config: str | None, lake: str | None, verbose: int, quiet: int, log_format: str) -> None:
    """landfall: files land, workflows run, typed tables appear, SQL queries them."""
    level = min(max(logging.WARNING + 10 * (quiet - verbose), logging.DEBUG), logging.CRITICAL)
    logs.setup(level, log_format)
    argv = [*(["--config", config] if config else []), *(["--lake", lake] if lake else [])]
    argv += ["-v"] * verbose + ["-q"] * quiet + ["--log-format", log_format]
    ctx.obj = Ctx(config, lake, argv)
    ctx.call_on_close(ctx.obj.close)  # connections closed and threads joined before the interpreter exits


def entry() -> None:
    """The `landfall` command. An unexpected error (a bug, not a user's mistake) prints its traceback with secrets
    masked, like every other line landfall prints."""
    try:
        main()
    except Exception as exc:
        import traceback

        sys.stderr.write(redact("".join(traceback.format_exception(exc))))
        sys.exit(1)
    finally:
        # The command is done (its pipeline closed, threads joined): the interpreter's collections at exit
        # would walk every object the imports made (modules, classes, the config models' validators: some
        # 40,000) for no garbage worth the time (most of the CPU `landfall process` spent after its work)
        gc.freeze()
