"""What the state store conformance suites share: a file version, a router, a table commit."""

from __future__ import annotations

from types import SimpleNamespace

from landfall.events import ObjectCreated
from landfall.state import open_state
from landfall.state.base import DataFile, TableCommit

BIG = 1 << 30


def _wf(name: str, attempts: int = 3) -> SimpleNamespace:
    return SimpleNamespace(
        name=name, write=SimpleNamespace(table=f"t_{name}"), retry=SimpleNamespace(max_attempts=attempts)
    )


def route_by_prefix(attempts: int = 3):
    def route(key: str):
        prefix = key.split("/", 1)[0]
        return _wf(prefix, attempts) if prefix in ("a", "b") else None

    return route


def ev(key: str, size: int = 10, mtime: float = 1.0) -> ObjectCreated:
    return ObjectCreated(key=key, size=size, mtime=mtime)


def table_commit(table: str, commit_id: str, add: list[str], *, schema=None, remove=(), sources=()) -> TableCommit:
    return TableCommit(
        table=table,
        location=f"/x/{table}",
        format="parquet",
        workflow="a",
        schema=schema or [("id", "int64")],
        partition_by=[],
        commit_id=commit_id,
        add=[DataFile(path=p, rows=1, bytes=10) for p in add],
        remove=list(remove),
        sources=list(sources),
    )


def _lease_everything(url: str, name: str, out) -> None:
    """In another process: lease until the queue is empty; report the run ids taken."""
    store = open_state(url)
    taken = []
    try:
        while True:
            got = store.lease(name, limit=5, max_bytes=BIG, lease_seconds=60)
            if not got:
                break
            taken.extend(r.run_id for r in got)
    finally:
        store.close()
    out.put(taken)
