"""Conformance tests every `StateStore` backend must pass. A backend's test module subclasses
`StateStoreTests` and supplies only the `store` fixture (a fresh, empty store)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from landfall.errors import NoSuchRun, NoSuchTable
from landfall.events import ObjectCreated
from landfall.state.base import DataFile, RunResult, SourceRows, StateStore, TableCommit, holding


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


class StateStoreTests:
    @pytest.fixture
    def store(self) -> StateStore:  # pragma: no cover - supplied by each backend
        raise NotImplementedError

    def test_discover_records_versions_once(self, store):
        created = store.discover([ev("a/1"), ev("a/2"), ev("zzz/3")], route_by_prefix())
        assert [r.status for r in created] == ["queued", "queued", "unrouted"]
        assert store.discover([ev("a/1")], route_by_prefix()) == []
        again = store.discover([ev("a/1", mtime=2.0)], route_by_prefix())  # a new version of the same key
        assert len(again) == 1 and again[0].file_id != created[0].file_id
        assert ("a/1", 10, 1.0, "") in store.known_versions()
        assert store.counts()["queued"] == 3 and store.counts()["unrouted"] == 1
        assert "no workflow matches `zzz/3`" in store.runs(status="unrouted")[0].error

    def test_lease_takes_one_workflow_within_limits(self, store):
        store.discover([ev("a/1", 5), ev("b/1", 5), ev("a/2", 5), ev("a/3", 5)], route_by_prefix())
        got = store.lease("w1", limit=2, max_bytes=1000, lease_seconds=30)
        assert [r.file_key for r in got] == ["a/1", "a/2"] and {r.status for r in got} == {"running"}
        assert len({r.batch_id for r in got}) == 1
        got2 = store.lease("w2", limit=10, max_bytes=6, lease_seconds=30)
        assert len(got2) == 1  # over the byte budget after one, but always at least one
        assert store.counts()["running"] == 3

    def test_two_versions_of_one_file_never_run_together(self, store):
        store.discover([ev("a/x", mtime=1.0), ev("a/x", mtime=2.0)], route_by_prefix())
        first = store.lease("w1", limit=10, max_bytes=1 << 30, lease_seconds=30)
        assert len(first) == 1 and first[0].mtime == 1.0
        assert store.lease("w2", limit=10, max_bytes=1 << 30, lease_seconds=30) == []

    def test_concurrent_leases_never_share_a_run(self, store):
        store.discover([ev(f"a/{i}") for i in range(200)], route_by_prefix())
        taken: list[str] = []
        lock = threading.Lock()

        def grab(name: str) -> None:
            while True:
                got = store.lease(name, limit=7, max_bytes=1 << 30, lease_seconds=30)
                if not got:
                    return
                with lock:
                    taken.extend(r.run_id for r in got)

        threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(taken) == 200 and len(set(taken)) == 200

    def test_fail_retries_with_backoff_then_dead(self, store):
        store.discover([ev("a/1")], route_by_prefix(attempts=2))
        run = store.lease("w", limit=1, max_bytes=1 << 30, lease_seconds=30)[0]
        nxt = store.fail(run.run_id, "boom", retry_in=60)
        assert nxt is not None and nxt.attempt == 2 and nxt.status == "queued"
        assert store.lease("w", limit=1, max_bytes=1 << 30, lease_seconds=30) == []  # not before its backoff
        assert store.run(run.run_id).status == "failed" and store.run(run.run_id).error == "boom"
        store.defer([], 0)
        self._make_available(store, nxt.run_id)
        run2 = store.lease("w", limit=1, max_bytes=1 << 30, lease_seconds=30)[0]
        assert run2.run_id == nxt.run_id
        assert store.fail(run2.run_id, "boom again", retry_in=0) is None
        assert store.run(run2.run_id).status == "dead"
        assert [r.run_id for r in store.dead_runs()] == [run2.run_id]

    def _make_available(self, store, run_id):
        with store.transaction() as cur:
            cur.execute("UPDATE runs SET available_at = 0 WHERE run_id = ?", (run_id,))

    def test_dead_letter_retry_and_purge(self, store):
        store.discover([ev("a/1"), ev("a/2")], route_by_prefix(attempts=1))
        for run in store.lease("w", limit=2, max_bytes=1 << 30, lease_seconds=30):
            store.fail(run.run_id, "bad", retry_in=0)
        dead = store.dead_runs()
        assert len(dead) == 2
        with pytest.raises(NoSuchRun):
            store.retry_dead(["nope"])
        again = store.retry_dead([dead[0].run_id])
        assert again[0].attempt == 2 and again[0].status == "queued"
        assert len(store.dead_runs()) == 1
        assert store.purge_dead(None) == 1 and store.dead_runs() == []
        assert store.counts()["dead"] == 2  # records stay

    def test_leases_exclude_other_holders_until_let_go_or_expired(self, store):
        assert store.hold("maintain:t", "o1", 60) and store.hold("maintain:t", "o1", 60)  # renewing is fine
        assert not store.hold("maintain:t", "o2", 60)
        assert store.holders() == {"o1"}
        store.let_go("maintain:t", "o2")  # not the holder: nothing happens
        assert store.holders() == {"o1"}
        store.let_go("maintain:t", "o1")
        assert store.holders() == set() and store.hold("maintain:t", "o2", 0.05)
        time.sleep(0.1)  # expired: no longer a holder, and another may take it
        assert store.holders() == set() and store.hold("maintain:t", "o3", 60)
        with holding(store, "maintain:u", "o4", seconds=0.3) as held:
            assert held
            time.sleep(0.5)  # renewed in the background
            assert "o4" in store.holders()
        assert "o4" not in store.holders()
        with holding(store, "maintain:t", "o5") as held:
            assert not held

    def test_heartbeat_release_and_reap(self, store):
        store.discover([ev("a/1"), ev("a/2")], route_by_prefix())
        runs = store.lease("otherhost:1:x", limit=2, max_bytes=1 << 30, lease_seconds=0.2)
        store.heartbeat("otherhost:1:x", [runs[0].run_id], lease_seconds=60)
        time.sleep(0.3)
        lost = store.reap()
        assert [r.run_id for r in lost] == [runs[1].run_id]
        assert store.run(runs[1].run_id).status == "failed"
        store.release("otherhost:1:x", [runs[0].run_id])
        assert store.run(runs[0].run_id).status == "queued"

    def test_reap_takes_back_leases_of_dead_local_processes_at_once(self, store):
        import socket

        store.discover([ev("a/1")], route_by_prefix())
        dead_pid = 2**22 + 12345
        run = store.lease(f"{socket.gethostname()}:{dead_pid}:x", limit=1, max_bytes=1 << 30, lease_seconds=600)[0]
        assert [r.run_id for r in store.reap()] == [run.run_id]

    def test_commit_is_atomic_with_run_results_and_versions_schemas(self, store):
        store.discover([ev("a/1"), ev("a/2", mtime=3.0)], route_by_prefix())
        r1, r2 = store.lease("w", limit=2, max_bytes=1 << 30, lease_seconds=30)
        commit = TableCommit(
            table="t_a",
            location="/x/t_a",
            format="parquet",
            workflow="a",
            schema=[("id", "BIGINT")],
            partition_by=[],
            commit_id="c1",
            add=[DataFile(path="part-c1-0.parquet", rows=3, bytes=100)],
            sources=[
                SourceRows("part-c1-0.parquet", "a/1", r1.file_id, r1.run_id, 2),
                SourceRows("part-c1-0.parquet", "a/2", r2.file_id, r2.run_id, 1),
            ],
        )
        store.commit(
            commit,
            [
                RunResult(r1.run_id, "succeeded", rows_in=2, rows_out=2, content_hash="h1"),
                RunResult(r2.run_id, "succeeded", rows_in=1, rows_out=1, content_hash="h2"),
            ],
        )
        t = store.table("t_a")
        assert (t.row_count, t.file_count, t.schema_version) == (3, 1, 1)
        assert store.run(r1.run_id).status == "succeeded" and store.run(r1.run_id).rows_out == 2
        assert store.find_duplicate("a", "h1", file_id=-1).run_id == r1.run_id
        assert store.find_duplicate("a", "h1", file_id=r1.file_id) is None
        assert store.files_holding("t_a", ["a/1"], [999]) == ["part-c1-0.parquet"]
        assert store.files_holding("t_a", ["a/1"], [r1.file_id]) == []
        # a new column: version 2, recorded with the run that brought it
        store.discover([ev("a/3")], route_by_prefix())
        (r3,) = store.lease("w", limit=1, max_bytes=1 << 30, lease_seconds=30)
        commit2 = TableCommit(
            table="t_a",
            location="/x/t_a",
            format="parquet",
            workflow="a",
            schema=[("id", "BIGINT"), ("v", "VARCHAR")],
            partition_by=[],
            commit_id="c2",
            add=[DataFile(path="part-c2-0.parquet", rows=1, bytes=50)],
            remove=["part-c1-0.parquet"],
            sources=[SourceRows("part-c2-0.parquet", "a/3", r3.file_id, r3.run_id, 1)],
        )
        store.commit(commit2, [RunResult(r3.run_id, "succeeded")])
        versions = store.schema_versions("t_a")
        assert [v["version"] for v in versions] == [1, 2] and versions[1]["run_id"] == r3.run_id
        assert [f.path for f in store.table_files("t_a")] == ["part-c2-0.parquet"]
        with pytest.raises(NoSuchTable):
            store.table("nope")

    def test_failed_commit_changes_nothing(self, store):
        store.discover([ev("a/1")], route_by_prefix())
        (r1,) = store.lease("w", limit=1, max_bytes=1 << 30, lease_seconds=30)
        bad = TableCommit(
            table="t_a",
            location="/x",
            format="parquet",
            workflow="a",
            schema=[("id", "BIGINT")],
            partition_by=[],
            commit_id="c1",
            add=[DataFile(path="p", rows=1, bytes=1)] * 2,
        )
        with pytest.raises(Exception, match="(?i)unique|duplicate|constraint"):  # one path twice: primary key
            store.commit(bad, [RunResult(r1.run_id, "succeeded")])
        assert store.run(r1.run_id).status == "running"
        assert store.tables() == []
