"""The catalog and SQL: `tables` (`show`, `optimize`, `rebuild`, `vacuum`, `history`), `quarantine replay`,
`crawl`, `query`."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

import click

from landfall.cli.app import Ctx, main
from landfall.output import human, num, on_pipe, say, table
from landfall.readback import csv_text, describe_change, json_text, jsonable, version_json
from landfall.types import sql_name


class TablesGroup(click.Group):
    """`landfall tables`: a table's name where a command belongs (`landfall tables sales`) is answered with the
    command that shows it."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            commands = ", ".join(self.list_commands(ctx))
            raise click.UsageError(
                f"no command `{name}` ({commands}); to see the table `{name}`: landfall tables show {name}", ctx
            )
        return super().resolve_command(ctx, args)


@main.group(cls=TablesGroup, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON array of table objects (stable shape; see README).")
@click.pass_context
def tables(ctx: click.Context, as_json: bool) -> None:
    """List cataloged tables: format, rows, files, schema version, last update."""
    if ctx.invoked_subcommand is not None:
        return
    found = ctx.obj.pipeline().tables()
    if as_json:
        click.echo(json.dumps([t.to_json() for t in found], indent=2))
    else:
        tables_table(found)


def tables_table(found: list[Any], section: bool = False) -> None:
    table(
        ("table", "format", "rows", "files", "size", "schema v", "partitions", "updated", "location"),
        [
            (
                tb.name,
                tb.format,
                f"{tb.row_count:,}",
                str(tb.file_count),
                human(tb.bytes),
                str(tb.schema_version),
                ", ".join(tb.partition_by),
                (tb.to_json()["updated_at"] or "")[:19],
                tb.location,
            )
            for tb in found
        ],
        title="tables",
        section=section,
    )


@tables.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The table, its schema versions, partitions and files.")
@click.pass_obj
def tables_show(obj: Ctx, name: str, as_json: bool) -> None:
    """One table: schema, schema versions (what each changed), partitions, files."""
    detail = obj.pipeline().table_detail(name)
    if as_json:
        click.echo(json.dumps(detail.to_json(), indent=2))
        return
    tb = detail.table
    say((tb.name, "bold"), f" ({tb.format}) at {tb.location}")
    say(
        f"{tb.row_count:,} rows in {tb.file_count} files ({human(tb.bytes)}); "
        f"schema version {tb.schema_version}; updated {tb.to_json()['updated_at']}"
    )
    table(
        ("column", "type"),
        [(n, sql_name(typ) + (" (partition)" if n in tb.partition_by else "")) for n, typ in tb.schema],
        title="schema",
        section=True,
    )
    table(
        ("version", "created", "run", "changes"),
        [
            (
                str(v["version"]),
                (v["created_at"] or "")[:19],
                v["run_id"] or "",
                f"{len(v['schema'])} columns" if v["version"] == 1 else describe_change(v["changes"]),
            )
            for v in detail.schema_versions
        ],
        title="schema versions",
        section=True,
    )
    table(
        ("partition", "files", "rows", "size"),
        [(p["partition"], str(p["files"]), f"{p['rows']:,}", human(p["bytes"])) for p in detail.partitions],
        title="partitions",
        section=True,
    )


@tables.command("optimize")
@click.argument("name")
@click.option(
    "--min-files",
    type=click.IntRange(min=2),
    default=2,
    show_default=True,
    help="Compact a partition once it has this many small files.",
)
@click.option(
    "--target-file-size",
    default=None,
    help="Size of the files to write (default: the workflow's compaction setting, else 128MB).",
)
@click.pass_obj
def tables_optimize(obj: Ctx, name: str, min_files: int, target_file_size: str | None) -> None:
    """Compact small files into large ones, partition by partition (Delta and Parquet)."""
    res = obj.pipeline().optimize(name, min_files=min_files, target_file_size=target_file_size)
    say(
        f"{name}: {res.files_removed} files in {res.partitions} partitions rewritten as "
        f"{res.files_added} files"
        + (f"; {len(res.skipped)} partitions left for later (a concurrent change)" if res.skipped else "")
    )


@tables.command("rebuild")
@click.argument("names", nargs=-1)
@click.pass_obj
def tables_rebuild(obj: Ctx, names: tuple[str, ...]) -> None:
    """Catalog tables as their folders and Delta logs hold them now (all, or NAMES); stop workers first."""
    for r in obj.pipeline().rebuild_catalog(list(names) or None):
        say(f"{r.table}: {r.format}, {r.files} files, {r.rows} rows from {r.sources} landed files")


@tables.command("reload")
@click.argument("name")
@click.pass_obj
def tables_reload(obj: Ctx, name: str) -> None:
    """Load a table again from its landed files under its workflow as it is now (a new `partition_by` or
    `format`); its folder is kept under `_dropped/`; stop workers first."""
    done = obj.pipeline().reload_table(name)
    say(
        f"{', '.join(done.tables)}: out of the catalog; {done.queued} landed files queued to load again "
        f"(`landfall process`)" + (f"; the old folders are kept: {', '.join(done.kept)}" if done.kept else "")
    )


@tables.command("vacuum")
@click.argument("name")
@click.option(
    "--retain",
    default="7d",
    show_default=True,
    help="Keep files a version needed within this long (s, m, h, d, w), for time travel and readers.",
)
@click.pass_obj
def tables_vacuum(obj: Ctx, name: str, retain: str) -> None:
    """Delete data files no current version uses, older than --retain."""
    gone = obj.pipeline().vacuum(name, retain)
    say(f"{name}: removed {len(gone)} files")
    for g in gone[:50]:
        say(f"  {g}")


@tables.command("history")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="JSON array of versions.")
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="Only the latest N versions.")
@click.pass_obj
def tables_history(obj: Ctx, name: str, as_json: bool, limit: int | None) -> None:
    """Versions of a Delta table, newest first: time, operation, runs, rows added and removed."""
    from landfall.tables.base import NotSupported

    try:
        versions = obj.pipeline().history(name, limit)
    except NotSupported as exc:
        raise click.ClickException(f"table `{name}`: {exc}") from None
    if as_json:
        click.echo(json.dumps([version_json(v) for v in versions], indent=2))
        return
    table(
        ("version", "time", "operation", "runs", "rows +", "rows -", "files +/-"),
        [
            (
                str(v.version),
                v.timestamp.isoformat(timespec="seconds"),
                v.operation,
                ", ".join(v.run_ids[:3]) + (f" +{len(v.run_ids) - 3}" if len(v.run_ids) > 3 else ""),
                num(v.rows_added),
                num(v.rows_removed),
                f"{num(v.files_added)}/{num(v.files_removed)}",
            )
            for v in versions
        ],
        title=f"{name} history",
    )


@main.group()
def quarantine() -> None:
    """Rows that data-quality rules set aside (query them as quarantine.<table>)."""


@quarantine.command("replay")
@click.argument("table_name", metavar="TABLE")
@click.option("--run", "run_id", default=None, help="Only the rows quarantined by this run.")
@click.pass_obj
def quarantine_replay(obj: Ctx, table_name: str, run_id: str | None) -> None:
    """Load the quarantined rows that pass the workflow's rules now (after fixing it), once."""
    res = obj.pipeline().replay_quarantine(table_name, run_id)
    say(f"{table_name}: {res.replayed} rows loaded from quarantine; {res.still_quarantined} still quarantined")


@main.command()
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="What was found and skipped, as JSON.")
@click.pass_obj
def crawl(obj: Ctx, url: str, as_json: bool) -> None:
    """Find existing datasets under URL (Hive-partitioned Parquet folders, Delta tables) and catalog them."""
    report = obj.pipeline().crawl(url)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "found": [f.__dict__ for f in report.found],
                    "skipped": [{"path": p, "why": w} for p, w in report.skipped],
                },
                indent=2,
                default=str,
            )
        )
        return
    for f in report.found:
        cols = ", ".join(f"{n} {sql_name(t)}" for n, t in f.schema)
        say(
            (f.action, "green"),
            " table ",
            (f.name, "bold"),
            f" ({f.format}) at {f.location}: {f.files} files, {f.rows:,} rows, "
            f"partitions [{', '.join(f.partitions)}], schema v{f.schema_version}: {cols}",
        )
    for path, why in report.skipped:
        say(("skipped", "yellow"), f" {path}: {why}")
    if not report.found:
        say("no datasets found")


@main.command()
@click.argument("sql")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table for people (tab-separated on a pipe); csv; json = an array of row objects.",
)
@click.option("--as-of", default=None, help="Read Delta tables as of a version (e.g. 3) or an ISO timestamp.")
@click.pass_obj
def query(obj: Ctx, sql: str, fmt: str, as_of: str | None) -> None:
    """Run SQL (DuckDB dialect) over every cataloged table, by name."""
    import duckdb

    try:
        result = obj.pipeline().query(sql, as_of=as_of)
    except duckdb.Error as exc:
        raise click.ClickException(f"query failed: {exc}") from None
    print_rows(result.columns, result.shown_rows(), fmt)


def _shown(v: Any) -> str:
    """A value in a table for people: as DuckDB shows it (`true`, a struct or list as JSON, a decimal without an
    exponent), else its text."""
    if isinstance(v, bool | list | dict | Decimal):
        return csv_text(v)
    return str(v)


def distinct(names: list[str]) -> list[str]:
    """`names` as keys of a JSON object: a repeated name numbered past every name of the list (`a`, `a`, `a_1` as
    `a`, `a_2`, `a_1`), where the object would keep the last value of each."""
    taken, seen, out = set(names), set(), []
    for name in names:
        new, k = name, 0
        while new in seen or (new != name and new in taken):
            k += 1
            new = f"{name}_{k}"
        seen.add(new)
        out.append(new)
    return out


def print_rows(cols: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    if fmt == "json":
        keys = distinct(cols)
        doc = [{c: jsonable(v) for c, v in zip(keys, row, strict=True)} for row in rows]
        click.echo(json_text(doc, indent=2).decode())
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cols)
        for row in rows:
            w.writerow([csv_text(v) for v in row])
        click.echo(buf.getvalue(), nl=False)
    elif on_pipe():
        table(cols, [["" if v is None else _shown(v) for v in row] for row in rows])
    else:
        table(cols, [["NULL" if v is None else _shown(v) for v in row] for row in rows])
        say(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
