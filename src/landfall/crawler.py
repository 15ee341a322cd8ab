"""The crawler: find existing datasets under a URL and catalog them, like a Glue crawler.

A folder with `_delta_log/` is a Delta table; a folder holding Parquet files, directly or under Hive
`key=value/` folders, is a Parquet table. Each dataset folder becomes one table named after the folder;
crawling again updates its files and schema (a changed schema is a new version), never a second table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from landfall import partitions
from landfall.catalog import SCANS, TableScan, read_again, scan
from landfall.errors import ConcurrentChange
from landfall.redaction import redact
from landfall.state.base import StateStore, Table, TableCommit, new_id
from landfall.storage import Storage, StorageOptions


@dataclass
class Found:
    name: str
    format: str
    location: str
    files: int
    rows: int
    partitions: list[str]
    schema: list[tuple[str, str]]
    schema_version: int = 1
    action: str = "created"  # created | updated | unchanged


@dataclass
class Report:
    found: list[Found] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def crawl(
    store: StateStore, url: str, options: StorageOptions | None = None, reserved: dict[str, str] | None = None
) -> Report:
    """Catalog every Parquet dataset and Delta table under `url` (a folder or an object-store URL). `reserved`:
    the tables the lake's workflows write, by name, where they write them: a dataset elsewhere takes another
    name (`sales` in `/data/sales` beside a workflow writing `sales`: `data_sales`)."""
    storage = Storage(url, options)
    report = Report()
    if not storage.exists():
        report.skipped.append((redact(url), "no such folder"))
        return report
    if storage.info("").get("type") != "directory":  # (its listing is the file itself: `x.parquet/x.parquet`)
        said = "a file, not a folder: a dataset is a folder (of Parquet files, Hive partitions, or a Delta table)"
        report.skipped.append((redact(url), f"{said}; crawl the folder it is in"))
        return report
    # by name as SQL tells names apart: `Sales` takes `sales`
    taken = {n.lower(): loc for n, loc in {**(reserved or {}), **{t.name: t.location for t in store.tables()}}.items()}
    _visit(storage, "", store, report, taken)
    return report


def _visit(storage: Storage, rel: str, store: StateStore, report: Report, taken: dict[str, str]) -> None:
    here = storage.child(rel) if rel else storage
    entries = here.entries()
    where = redact(here.url)
    if entries.get("_delta_log") == "directory":
        _register(store, report, taken, here, "delta")
        return
    dirs = [n for n, t in entries.items() if t == "directory" and not n.startswith(("_", "."))]
    data = [n for n, t in entries.items() if t == "file" and n.endswith((".parquet", ".pq"))]
    others = [n for n, t in entries.items() if t == "file" and not n.startswith(("_", ".")) and n not in data]
    hive = [d for d in dirs if partitions.FOLDER.match(d)]
    if data or hive:
        for d in dirs:
            if d not in hive:
                report.skipped.append((f"{where}/{d}", f"a plain folder inside the dataset `{where}`"))
        for o in others:
            report.skipped.append((f"{where}/{o}", "not a Parquet file"))
        _register(store, report, taken, here, "parquet")
        return
    for o in others:
        report.skipped.append((f"{where}/{o}", "not a Parquet file or a Delta table"))
    if not dirs and not others:
        report.skipped.append((where, "empty folder"))
    for d in sorted(dirs):
        _visit(storage, f"{rel}/{d}" if rel else d, store, report, taken)


def _name_for(path: str, location: str, taken: dict[str, str]) -> str:
    parts = [re.sub(r"[^0-9A-Za-z_]+", "_", p).strip("_").lower() or "t" for p in path.split("/") if p]
    name = parts[-1]
    if name[0].isdigit():
        name = "t_" + name
    i = 2
    while name in taken and taken[name] != location:
        name = "_".join(parts[-i:]) if i <= len(parts) else f"{parts[-1]}_{i}"
        i += 1
    return name


def _register(store: StateStore, report: Report, taken: dict[str, str], storage: Storage, fmt: str) -> None:
    location = storage.url
    name = _name_for(storage.root, location, taken)

    def once() -> tuple[Table | None, TableScan | str]:
        before = store.find_table(name)  # before the read: a commit to the table after it makes the crawl read again
        try:
            found = scan(storage, fmt)
        except Exception as exc:  # one unreadable dataset is reported and skipped; the crawl goes on
            return before, f"unreadable: {redact(str(exc).splitlines()[0])}"
        if found is None:
            return before, "no data files"
        store.commit(
            TableCommit(
                table=name,
                location=location,
                format=fmt,
                workflow=None,
                schema=found.schema,
                partition_by=found.partition_by,
                commit_id=new_id("crawl-"),
                add=found.files,
                exact=True,
                as_of=before.updated_at if before is not None else 0,
            ),
            [],
        )
        return before, found

    try:
        before, found = read_again(once)
    except ConcurrentChange:
        found = f"changed by {SCANS} commits while it was read; crawl again"
    if isinstance(found, str):
        report.skipped.append((redact(location), found))
        return
    files, schema, partitions, rows = found.files, found.schema, found.partition_by, [f.rows for f in found.files]
    taken[name] = location
    if before is None:
        action = "created"
    else:
        action = "unchanged" if before.schema == schema and before.file_count == len(files) else "updated"
    t = store.table(name)
    report.found.append(
        Found(
            name=name,
            format=fmt,
            location=location,
            files=len(files),
            rows=sum(rows),
            partitions=partitions,
            schema=schema,
            schema_version=t.schema_version,
            action=action,
        )
    )
