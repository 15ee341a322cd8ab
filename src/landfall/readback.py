"""Reading the pipeline back: the shapes the CLI's `--json`, the HTTP API and the dashboard all print.

Each shape is computed here once, from the state store and the table formats, and `Pipeline` hands it out
(`Pipeline.table_detail`, `Pipeline.history`, ...). Adapters format what they are given; they never reach into
the state store themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from landfall.state.base import DataFile, StateStore, Table


def schema_change(before: list[dict[str, str]] | None, after: list[dict[str, str]]) -> dict[str, Any]:
    """What changed from one schema version to the next: columns added, removed and retyped."""
    if before is None:
        return {"added": list(after), "removed": [], "retyped": []}
    old = {c["name"]: c["type"] for c in before}
    new = {c["name"]: c["type"] for c in after}
    return {
        "added": [c for c in after if c["name"] not in old],
        "removed": [n for n in old if n not in new],
        "retyped": [{"name": n, "from": old[n], "to": new[n]} for n in new if n in old and old[n] != new[n]],
    }


def describe_change(change: dict[str, Any]) -> str:
    """`+region VARCHAR, -note, qty BIGINT -> DOUBLE` for people."""
    parts = [f"+{c['name']} {c['type']}" for c in change["added"]]
    parts += [f"-{n}" for n in change["removed"]]
    parts += [f"{c['name']} {c['from']} -> {c['to']}" for c in change["retyped"]]
    return ", ".join(parts) or "(no change)"


def partition_label(f: DataFile) -> str:
    return "/".join(f"{k}={v}" for k, v in f.partition.items()) or "(none)"


@dataclass
class TableDetail:
    """One table in full: the catalog entry, every schema version (with what changed), partitions and files."""

    table: Table
    schema_versions: list[dict[str, Any]]
    partitions: list[dict[str, Any]]
    data_files: list[DataFile] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The stable shape of `landfall tables show NAME --json` (README "Stable JSON shapes")."""
        return self.table.to_json() | {
            "schema_versions": self.schema_versions,
            "partitions": self.partitions,
            "data_files": [
                {"path": f.path, "rows": f.rows, "bytes": f.bytes, "partition": f.partition} for f in self.data_files
            ],
        }


def table_detail(store: StateStore, name: str) -> TableDetail:
    table = store.table(name)
    files = store.table_files(name)
    versions = store.schema_versions(name)
    prev: list[dict[str, str]] | None = None
    for v in versions:
        v["changes"] = schema_change(prev, v["schema"])
        prev = v["schema"]
    groups: dict[str, dict[str, Any]] = {}
    for f in files:
        label = partition_label(f)
        agg = groups.setdefault(label, {"partition": label, "files": 0, "rows": 0, "bytes": 0})
        agg["files"] += 1
        agg["rows"] += f.rows
        agg["bytes"] += f.bytes
    return TableDetail(table, versions, [groups[k] for k in sorted(groups)], files)


def version_json(v: Any) -> dict[str, Any]:
    """One entry of a table's history (`landfall tables history --json`)."""
    return {
        "version": v.version,
        "timestamp": v.timestamp.isoformat(),
        "operation": v.operation,
        "run_ids": v.run_ids,
        "rows_added": v.rows_added,
        "rows_removed": v.rows_removed,
        "files_added": v.files_added,
        "files_removed": v.files_removed,
    }


def run_json(run: Any) -> dict[str, Any]:
    """One run with its steps (`landfall runs show --json`)."""
    return run.to_json() | {"steps": run.steps}
