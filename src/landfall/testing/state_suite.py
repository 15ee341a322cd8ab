"""Conformance tests every `StateStore` backend must pass. A backend's test module subclasses
`StateStoreTests` and supplies only the `store` fixture (a fresh, empty store whose `url` other processes can
open with `open_state`). The tests use the `StateStore` methods alone: no SQL, so any backend can pass them.
Waiting for work and leases that are not runs are in `lease_suite.py`, the helpers in `state_fixtures.py`."""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time

import pytest
from msgspec.structs import replace

from landfall.errors import ConcurrentChange, LeaseLost, NoSuchRun, NoSuchTable
from landfall.processes import worker_id
from landfall.state import open_state
from landfall.state.base import (
    MAX_INTERRUPTIONS,
    DataFile,
    RunResult,
    SourceRows,
    StateStore,
)
from landfall.state.migrations import LATEST
from landfall.testing.faults import exited_worker_id
from landfall.testing.lease_suite import WaitAndLeaseTests
from landfall.testing.state_fixtures import BIG, _lease_everything, _wf, ev, route_by_prefix, table_commit

__all__ = ["BIG", "StateStoreTests", "_wf", "ev", "route_by_prefix", "table_commit"]


class StateStoreTests(WaitAndLeaseTests):
    @pytest.fixture
    def store(self) -> StateStore:  # pragma: no cover - supplied by each backend
        raise NotImplementedError

    # --- discovery -------------------------------------------------------------------------------------------

    def test_discover_records_versions_once(self, store):
        created = store.discover([ev("a/1"), ev("a/2"), ev("zzz/3")], route_by_prefix())
        assert [r.status for r in created] == ["queued", "queued", "unrouted"]
        assert store.discover([ev("a/1")], route_by_prefix()) == []
        again = store.discover([ev("a/1", mtime=2.0)], route_by_prefix())  # a new version of the same key
        assert len(again) == 1 and again[0].file_id != created[0].file_id
        assert store.unknown([ev("a/1"), ev("a/1", mtime=3.0), ev("a/9")]) == [ev("a/1", mtime=3.0), ev("a/9")]
        assert store.counts()["queued"] == 3 and store.counts()["unrouted"] == 1
        assert "no workflow matches `zzz/3`" in store.runs(status="unrouted")[0].error

    def test_unrouted_files_are_queued_once_a_workflow_matches_them(self, store):
        def route_z(key: str):  # the config once a workflow for `zzz/` was added
            return _wf("z", 5) if key.startswith("zzz/") else route_by_prefix()(key)

        store.discover([ev("zzz/1"), ev("zzz/2"), ev("q/3")], route_by_prefix())
        store.discover([ev("zzz/2", mtime=2.0)], route_by_prefix())  # a newer version, unrouted too
        assert store.reroute(route_by_prefix()) == []
        moved = store.reroute(route_z)
        assert sorted((r.file_key, r.status, r.workflow, r.table_name) for r in moved) == [
            ("zzz/1", "queued", "z", "t_z"),
            ("zzz/2", "queued", "z", "t_z"),
        ]
        assert [r.mtime for r in moved if r.file_key == "zzz/2"] == [2.0]  # the newest version only
        assert store.reroute(route_z) == []  # once
        got = store.lease("w", limit=10, max_bytes=BIG, lease_seconds=30)
        assert sorted(r.file_key for r in got) == ["zzz/1", "zzz/2"] and {r.workflow for r in got} == {"z"}
        # the older version of zzz/2 stays as it was (its newer version replaces it)
        assert sorted((r.file_key, r.mtime) for r in store.runs(status="unrouted")) == [("q/3", 1.0), ("zzz/2", 1.0)]

    def test_runs_queued_for_a_workflow_gone_from_the_config_go_where_their_files_route_now(self, store):
        store.discover([ev("a/1"), ev("a/2"), ev("b/3"), ev("zzz/4")], route_by_prefix())
        held = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30, limits={"a": 1})[0]
        assert store.reroute(route_by_prefix(), [_wf("a"), _wf("b")]) == []  # every workflow is still there

        def renamed(key: str):  # `a` renamed `a2`; `b` removed (nothing matches `b/` now)
            return _wf("a2", 5) if key.startswith("a/") else None

        moved = store.reroute(renamed, [_wf("a2", 5)])
        want = [("a/1", "queued", "a2", "t_a2"), ("b/3", "unrouted", "b", "t_b")]
        want.insert(1 if held.file_key == "a/2" else 0, ("a/2", "queued", "a2", "t_a2"))
        assert sorted((r.file_key, r.status, r.workflow, r.table_name) for r in moved) == [
            w for w in want if w[0] != held.file_key
        ]
        assert store.run(held.run_id).status == "running" and store.run(held.run_id).workflow == "a"  # its worker's
        lost = store.run(next(r.run_id for r in moved if r.status == "unrouted"))
        assert "no workflow matches `b/3` now (it was queued for workflow `b`)" in lost.error
        assert store.reroute(renamed, [_wf("a2", 5)]) == []  # once
        store.release("w", [held.run_id])  # back in the queue: moved the next time
        assert [(r.file_key, r.workflow) for r in store.reroute(renamed, [_wf("a2", 5)])] == [(held.file_key, "a2")]
        got = store.lease("w", limit=10, max_bytes=BIG, lease_seconds=30)
        assert sorted(r.file_key for r in got) == ["a/1", "a/2"] and {r.workflow for r in got} == {"a2"}
        assert store.lease("w", limit=10, max_bytes=BIG, lease_seconds=30) == []

    def test_runs_queued_for_a_workflow_whose_match_no_longer_takes_them_go_where_they_route_now(self, store):
        store.discover([ev("a/1"), ev("a/eu/2"), ev("b/3")], route_by_prefix())

        def split(key: str):  # a workflow for `a/eu/` added; `b` matches `b/x/` only now
            return _wf("eu") if key.startswith("a/eu/") else None if key.startswith("b/") else route_by_prefix()(key)

        moved = store.reroute(split, [_wf("a"), _wf("b"), _wf("eu")])
        assert sorted((r.file_key, r.status, r.workflow) for r in moved) == [
            ("a/eu/2", "queued", "eu"),
            ("b/3", "unrouted", "b"),
        ]
        assert store.reroute(split, [_wf("a"), _wf("b"), _wf("eu")]) == []

    def test_queued_runs_take_the_table_and_attempts_their_workflow_has_now(self, store):
        store.discover([ev("a/1"), ev("b/2")], route_by_prefix())
        moved = _wf("a", 7)
        moved.write.table = "t_a2"  # `write.table` renamed and `retry.max_attempts` raised since they were queued
        assert store.reroute(route_by_prefix(), [moved, _wf("b")]) == []
        got = store.lease("w", limit=10, max_bytes=BIG, lease_seconds=30, limits={"a": 1, "b": 1})
        got += store.lease("w", limit=10, max_bytes=BIG, lease_seconds=30, limits={"a": 1, "b": 1})
        assert sorted((r.file_key, r.table_name) for r in got) == [("a/1", "t_a2"), ("b/2", "t_b")]
        store.fail(got[0].run_id if got[0].file_key == "a/1" else got[1].run_id, "bad", retry_in=0.0, worker="w")
        assert [r.attempt for r in store.runs(key="a/1")] == [2, 1]  # 7 attempts: queued again

    def test_discover_twenty_thousand_files_in_one_call(self, store):
        events = [ev(f"a/{i:05d}.csv") for i in range(20_000)]
        created = store.discover(events, route_by_prefix())
        assert len(created) == 20_000 and len({r.run_id for r in created}) == 20_000
        assert store.unknown(events) == []
        assert store.unknown(e for e in [*events, ev("a/new.csv")]) == [ev("a/new.csv")]  # a stream, read in chunks
        assert store.counts()["queued"] == 20_000

    def test_concurrent_discovery_records_each_version_once(self, store):
        events = [ev(f"a/{i}") for i in range(600)]
        found: list = []

        def discover() -> None:
            found.extend(store.discover(events, route_by_prefix()))

        threads = [threading.Thread(target=discover) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(found) == 600 and store.counts()["queued"] == 600

    # --- leasing ---------------------------------------------------------------------------------------------

    def test_lease_takes_one_workflow_within_limits(self, store):
        store.discover([ev("a/1", 5), ev("b/1", 5), ev("a/2", 5), ev("a/3", 5)], route_by_prefix())
        got = store.lease("w1", limit=2, max_bytes=1000, lease_seconds=30)
        assert [r.file_key for r in got] == ["a/1", "a/2"] and {r.status for r in got} == {"running"}
        assert len({r.batch_id for r in got}) == 1 and {r.worker for r in got} == {"w1"}
        got2 = store.lease("w2", limit=10, max_bytes=6, lease_seconds=30)
        assert len(got2) == 1  # over the byte budget after one, but always at least one
        assert store.counts()["running"] == 3

    def test_two_versions_of_one_file_never_run_together(self, store):
        store.discover([ev("a/x", mtime=1.0), ev("a/x", mtime=2.0), ev("a/y")], route_by_prefix())
        first = store.lease("w1", limit=1, max_bytes=BIG, lease_seconds=30)
        assert [(r.file_key, r.mtime) for r in first] == [("a/x", 1.0)]
        second = store.lease("w2", limit=10, max_bytes=BIG, lease_seconds=30)
        assert [r.file_key for r in second] == ["a/y"]  # the newer a/x waits for the older one
        assert store.lease("w3", limit=10, max_bytes=BIG, lease_seconds=30) == []
        store.commit(None, [RunResult(first[0].run_id, "succeeded", worker="w1")])
        assert [(r.file_key, r.mtime) for r in store.lease("w3", limit=10, max_bytes=BIG, lease_seconds=30)] == [
            ("a/x", 2.0)
        ]

    def test_a_table_in_order_runs_one_batch_at_a_time_in_the_order_its_files_landed(self, store):
        """An `overwrite` or `merge` table (`Workflow.in_order`): two workers each committing a file left the one
        that committed last, an older file over a newer one."""
        store.discover([ev("a/3", mtime=3.0), ev("a/1", mtime=1.0), ev("a/2", mtime=2.0)], route_by_prefix())
        store.discover([ev("a/4", mtime=4.0), ev("b/1")], route_by_prefix())  # landed later

        def lease(worker: str, limit: int = 1) -> list[str]:
            got = store.lease(worker, limit=limit, max_bytes=BIG, lease_seconds=30, in_order=["t_a"])
            return [r.file_key for r in got]

        first = store.runs(status="queued", limit=None)
        assert sorted(r.file_key for r in first) == ["a/1", "a/2", "a/3", "a/4", "b/1"]
        assert lease("w1") == ["a/1"]
        assert lease("w2", 10) == ["b/1"]  # nothing of t_a while a/1 runs; other tables go on
        assert lease("w2", 10) == []
        a1 = store.runs(status="running", limit=None)
        (a1,) = [r for r in a1 if r.file_key == "a/1"]
        retry = store.fail(a1.run_id, "boom", retry_in=0.3, worker="w1")
        assert retry is not None
        assert lease("w2", 10) == []  # a/2 and a/3 wait for a/1's retry
        time.sleep(0.35)
        assert lease("w2", 2) == ["a/1", "a/2"]  # one batch, in the order they landed
        assert lease("w3", 10) == []
        for r in store.runs(status="running", limit=None):
            store.commit(None, [RunResult(r.run_id, "succeeded", worker=r.worker)])
        assert lease("w3", 10) == ["a/3", "a/4"]
        # without `in_order`, runs of a table run at once
        store.discover([ev("a/5", mtime=5.0), ev("a/6", mtime=6.0)], route_by_prefix())
        assert [r.file_key for r in store.lease("w4", limit=1, max_bytes=BIG, lease_seconds=30)] == ["a/5"]

    def test_a_table_in_order_written_by_two_workflows_takes_their_files_in_turn(self, store):
        def route(key: str):  # `a/` and `b/` files both into table `t`
            wf = _wf(key.split("/", 1)[0])
            wf.write.table = "t"
            return wf

        store.discover([ev("a/1", mtime=1.0), ev("b/1", mtime=2.0), ev("a/2", mtime=3.0)], route)

        def lease_all() -> list[str]:
            got = store.lease("w", limit=10, max_bytes=BIG, lease_seconds=30, in_order=["t"])
            for r in got:
                store.commit(None, [RunResult(r.run_id, "succeeded", worker="w")])
            return [r.file_key for r in got]

        assert [lease_all(), lease_all(), lease_all(), lease_all()] == [["a/1"], ["b/1"], ["a/2"], []]

    def test_a_workflow_in_order_runs_one_run_at_a_time_in_the_order_its_files_landed(self, store):
        """A hop (a workflow that writes files, not a table) feeding a table in order: its files queue for the
        next workflow as they commit, so two workers let a later file's hop commit, and its file load, first."""

        def route(key: str):  # `h/` files go to a hop, which writes no table
            wf = _wf(key.split("/", 1)[0])
            wf.write.table = None if wf.name == "h" else wf.write.table
            return wf

        store.discover([ev("h/2", mtime=2.0), ev("h/1", mtime=1.0), ev("a/1", mtime=3.0)], route)

        def lease(worker: str) -> list[str]:
            got = store.lease(
                worker, limit=10, max_bytes=BIG, lease_seconds=30, limits={"h": 1}, in_order_workflows=["h"]
            )
            return [r.file_key for r in got]

        assert lease("w1") == ["h/1"]
        assert lease("w2") == ["a/1"]  # other workflows go on
        assert lease("w2") == []  # h/2 waits for h/1
        (h1,) = [r for r in store.runs(status="running", limit=None) if r.file_key == "h/1"]
        store.commit(None, [RunResult(h1.run_id, "succeeded", worker="w1")])
        assert lease("w2") == ["h/2"]

    def test_concurrent_leases_never_share_a_run(self, store):
        store.discover([ev(f"a/{i % 50}", mtime=float(i)) for i in range(300)], route_by_prefix())
        taken: list = []
        lock = threading.Lock()
        running: dict[str, str] = {}
        clashes: list[str] = []

        def grab(name: str) -> None:
            while True:
                got = store.lease(name, limit=7, max_bytes=BIG, lease_seconds=30)
                if not got:
                    if not store.pending():
                        return
                    time.sleep(0.005)
                    continue
                with lock:
                    for r in got:
                        if r.file_key in running:
                            clashes.append(r.file_key)
                        running[r.file_key] = r.run_id
                    taken.extend(got)
                time.sleep(0.002)
                with lock:
                    for r in got:
                        running.pop(r.file_key, None)
                store.commit(None, [RunResult(r.run_id, "succeeded", worker=name) for r in got])

        threads = [threading.Thread(target=grab, args=(f"w{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(taken) == 300 and len({r.run_id for r in taken}) == 300
        assert clashes == []  # two versions of one file never ran at once
        order = {}
        for r in taken:  # each file's versions ran oldest first
            assert r.mtime > order.get(r.file_key, -1.0)
            order[r.file_key] = r.mtime

    def test_leases_from_several_processes_never_share_a_run(self, store):
        store.discover([ev(f"a/{i}") for i in range(300)], route_by_prefix())
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_lease_everything, args=(store.url, f"p{i}", out)) for i in range(3)]
        for p in procs:
            p.start()
        taken = [rid for _ in procs for rid in out.get(timeout=120)]
        for p in procs:
            p.join(60)
        assert len(taken) == 300 and len(set(taken)) == 300

    def test_a_run_whose_worker_died_is_leased_alone(self, store):
        store.discover([ev(f"a/{i}") for i in range(4)], route_by_prefix())
        runs = store.lease("w1", limit=10, max_bytes=BIG, lease_seconds=0.05)
        time.sleep(0.1)
        assert len(store.reap()) == 4
        got = store.lease("w2", limit=10, max_bytes=BIG, lease_seconds=30)
        assert len(got) == 1 and got[0].interruptions == 1 and got[0].file_key == runs[0].file_key

    # --- results, failures and the dead-letter list ----------------------------------------------------------

    def test_fail_retries_with_backoff_then_dead(self, store):
        store.discover([ev("a/1")], route_by_prefix(attempts=2))
        run = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)[0]
        nxt = store.fail(run.run_id, "boom", retry_in=0.3, worker="w")
        assert nxt is not None and nxt.attempt == 2 and nxt.status == "queued"
        assert store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30) == []  # not before its backoff
        assert store.run(run.run_id).status == "failed" and store.run(run.run_id).error == "boom"
        time.sleep(0.35)
        run2 = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)[0]
        assert run2.run_id == nxt.run_id
        assert store.fail(run2.run_id, "boom again", retry_in=0, worker="w") is None
        assert store.run(run2.run_id).status == "dead"
        assert [r.run_id for r in store.dead_runs()] == [run2.run_id] and store.dead_letter_count() == 1

    def test_dead_letter_retry_and_purge(self, store):
        store.discover([ev("a/1"), ev("a/2")], route_by_prefix(attempts=1))
        for run in store.lease("w", limit=2, max_bytes=BIG, lease_seconds=30):
            store.fail(run.run_id, "bad", retry_in=0)
        dead = store.dead_runs()
        assert len(dead) == 2 and store.dead_letter_count() == 2
        with pytest.raises(NoSuchRun):
            store.retry_dead(["nope"])
        again = store.retry_dead([dead[0].run_id])
        assert again[0].attempt == 2 and again[0].status == "queued"
        assert len(store.dead_runs()) == 1 and store.dead_letter_count() == 1
        assert store.purge_dead(None) == 1 and store.dead_runs() == [] and store.dead_letter_count() == 0
        assert store.counts()["dead"] == 2  # records stay

    def test_a_newer_version_of_a_dead_file_takes_it_off_the_dead_letter_list(self, store):
        """A dead run of a file version a newer one has replaced is not on the list: retrying it would read the
        new bytes, and the new version has its own run (which, dead too, is listed)."""
        store.discover([ev("a/1"), ev("a/2")], route_by_prefix(attempts=1))
        for run in store.lease("w", limit=2, max_bytes=BIG, lease_seconds=30):
            store.fail(run.run_id, "bad", retry_in=0)
        old = {r.file_key: r for r in store.dead_runs()}
        assert sorted(old) == ["a/1", "a/2"] and store.dead_letter_count() == 2
        (new,) = store.discover([ev("a/1", size=11, mtime=2.0)], route_by_prefix(attempts=1))
        assert [r.file_key for r in store.dead_runs()] == ["a/2"] and store.dead_letter_count() == 1
        with pytest.raises(NoSuchRun):
            store.retry_dead([old["a/1"].run_id])
        assert store.run(old["a/1"].run_id).status == "dead"  # its record stays
        (leased,) = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)
        store.fail(leased.run_id, "bad again", retry_in=0)
        assert {r.run_id for r in store.dead_runs()} == {new.run_id, old["a/2"].run_id}
        again = store.retry_dead(None)  # the newest version's run, not the replaced one's
        assert sorted(r.file_id for r in again) == sorted([new.file_id, old["a/2"].file_id])

    def test_the_check_before_a_format_commit_renews_the_lease(self, store):
        """A format's own commit (Delta's log) cannot be taken back: the check before it renews the runs' lease,
        so a worker that stalled past its lease (its runs not yet taken back) gets a whole lease for that commit
        instead of having its published files removed by recovery in between."""
        store.discover([ev("a/1")], route_by_prefix())
        (run,) = store.lease("w1", limit=1, max_bytes=BIG, lease_seconds=0.05)
        time.sleep(0.1)  # expired, not taken back yet
        store.check_content([RunResult(run.run_id, "succeeded", worker="w1")], lease_seconds=30)
        assert store.reap() == [] and store.run(run.run_id).status == "running"
        assert [r.run_id for r in store.reap(time.time() + 31)] == [run.run_id]
        with pytest.raises(LeaseLost):  # taken back: no renewal
            store.check_content([RunResult(run.run_id, "succeeded", worker="w1")], lease_seconds=30)

    def test_results_are_recorded_only_by_the_lease_holder(self, store):
        store.discover([ev("a/1")], route_by_prefix())
        (old,) = store.lease("w1", limit=1, max_bytes=BIG, lease_seconds=0.05)
        time.sleep(0.1)
        assert [r.run_id for r in store.reap()] == [old.run_id]  # w1 stalled; its run is taken back
        (new,) = store.lease("w2", limit=1, max_bytes=BIG, lease_seconds=30)
        assert new.file_id == old.file_id and new.attempt == old.attempt  # not counted as an attempt
        assert store.heartbeat("w1", [old.run_id], 30) == [old.run_id]
        assert store.heartbeat("w1", [new.run_id], 30) == [new.run_id]  # not w1's
        assert store.heartbeat("w2", [new.run_id], 30) == []
        late = RunResult(old.run_id, "succeeded", rows_out=5, worker="w1")
        with pytest.raises(LeaseLost):
            store.check_content([late], lease_seconds=30)
        with pytest.raises(LeaseLost):
            store.commit(table_commit("t_a", "c-late", ["late.parquet"]), [late])
        with pytest.raises(LeaseLost):
            store.commit(None, [RunResult(new.run_id, "succeeded", worker="w1")])  # w1 never held it
        with pytest.raises(LeaseLost):
            store.fail(new.run_id, "late failure", retry_in=1, worker="w1")
        assert store.tables() == [] and store.run(new.run_id).status == "running"  # nothing was recorded
        store.defer([new.run_id], 0, worker="w1")  # not w1's: nothing happens
        assert store.run(new.run_id).status == "running"
        store.commit(table_commit("t_a", "c-new", ["new.parquet"]), [RunResult(new.run_id, "succeeded", worker="w2")])
        assert store.run(new.run_id).status == "succeeded" and store.table("t_a").file_count == 1

    def test_sync_after_a_commit_keeps_it(self, store):
        store.commit(table_commit("t_s", "c1", ["part-c1-0.parquet"]), [])
        store.sync()  # every commit so far on disk (before files it stopped naming are deleted)
        store.sync()
        assert [f.path for f in store.table_files("t_s")] == ["part-c1-0.parquet"]

    def test_commit_is_atomic_with_run_results_and_versions_schemas(self, store):
        store.discover([ev("a/1"), ev("a/2", mtime=3.0)], route_by_prefix())
        r1, r2 = store.lease("w", limit=2, max_bytes=BIG, lease_seconds=30)
        commit = table_commit(
            "t_a",
            "c1",
            ["part-c1-0.parquet"],
            sources=[
                SourceRows("part-c1-0.parquet", "a/1", r1.file_id, r1.run_id, 2),
                SourceRows("part-c1-0.parquet", "a/2", r2.file_id, r2.run_id, 1),
            ],
        )
        store.commit(
            commit,
            [
                RunResult(r1.run_id, "succeeded", rows_in=2, rows_out=2, content_hash="h1", worker="w"),
                RunResult(r2.run_id, "succeeded", rows_in=1, rows_out=1, content_hash="h2", worker="w"),
            ],
        )
        t = store.table("t_a")
        assert (t.row_count, t.file_count, t.schema_version) == (1, 1, 1)
        assert store.run(r1.run_id).status == "succeeded" and store.run(r1.run_id).rows_out == 2
        assert store.find_duplicate("a", "h1", file_id=-1).run_id == r1.run_id
        assert store.find_duplicate("a", "h1", file_id=r1.file_id) is None
        assert store.files_holding("t_a", ["a/1"], [999]) == ["part-c1-0.parquet"]
        assert store.files_holding("t_a", ["a/1"], []) == ["part-c1-0.parquet"]
        assert store.files_holding("t_a", ["a/1"], [r1.file_id]) == []
        # a new column: version 2, recorded with the run that brought it
        store.discover([ev("a/3")], route_by_prefix())
        (r3,) = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)
        commit2 = table_commit(
            "t_a",
            "c2",
            ["part-c2-0.parquet"],
            schema=[("id", "int64"), ("v", "string")],
            remove=["part-c1-0.parquet"],
            sources=[SourceRows("part-c2-0.parquet", "a/3", r3.file_id, r3.run_id, 1)],
        )
        store.commit(commit2, [RunResult(r3.run_id, "succeeded")])
        versions = store.schema_versions("t_a")
        assert [v["version"] for v in versions] == [1, 2] and versions[1]["run_id"] == r3.run_id
        assert [f.path for f in store.table_files("t_a")] == ["part-c2-0.parquet"]
        assert [f.path for f in store.table_files("t_a", paths=["part-c2-0.parquet", "nope"])] == ["part-c2-0.parquet"]
        with pytest.raises(NoSuchTable):
            store.table("nope")

    def test_a_file_version_replaced_since_is_no_duplicate_under_supersede(self, store):
        """`on_change: replace`: `a/f` held X, then Y (its rows replaced X's), then X again. The run of X's version
        was taken for a duplicate, so the table kept Y's rows while the file held X; with `supersede` it is not one,
        in the check before a load and in the one at commit, and the new version's run then is."""
        store.discover([ev("a/f", mtime=1.0)], route_by_prefix())
        store.discover([ev("a/f", mtime=2.0)], route_by_prefix())
        store.discover([ev("a/f", mtime=3.0)], route_by_prefix())
        store.discover([ev("a/g", mtime=4.0)], route_by_prefix())
        runs = {r.mtime: r for r in store.runs(limit=None)}

        def load(mtime: float, content: str, supersede: bool = True) -> None:
            (run,) = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)
            assert run.mtime == mtime
            store.commit(
                None, [RunResult(run.run_id, "succeeded", content_hash=content, worker="w", supersedes=supersede)]
            )

        load(1.0, "X")
        load(2.0, "Y")
        assert store.find_duplicate("a", "X", file_id=runs[3.0].file_id).run_id == runs[1.0].run_id
        assert store.find_duplicate("a", "X", file_id=runs[3.0].file_id, supersede=True) is None
        load(3.0, "X")  # the commit's own check passes over the replaced version too (no ContentRace)
        assert store.find_duplicate("a", "X", file_id=runs[4.0].file_id, supersede=True).run_id == runs[3.0].run_id

    def test_commit_refuses_to_remove_a_file_another_commit_removed(self, store):
        store.commit(table_commit("t_a", "c1", ["p1"]), [])
        store.commit(table_commit("t_a", "c2", ["p2"], remove=["p1"]), [])
        with pytest.raises(ConcurrentChange):
            store.commit(table_commit("t_a", "c3", ["p3"], remove=["p1"]), [])
        assert [f.path for f in store.table_files("t_a")] == ["p2"]

    def test_a_whole_file_list_read_before_another_commit_is_refused(self, store):
        store.commit(table_commit("t_a", "c1", ["p1"]), [])
        read_at = store.table("t_a").updated_at  # a rebuild reads the table's files here ...
        time.sleep(0.01)
        store.commit(table_commit("t_a", "c2", ["p2"]), [])  # ... another commit lands ...
        stale = replace(table_commit("t_a", "r1", ["p1"]), exact=True, as_of=read_at)
        with pytest.raises(ConcurrentChange):  # ... and the list read before it would drop p2
            store.commit(None, [], also=[stale])
        assert sorted(f.path for f in store.table_files("t_a")) == ["p1", "p2"]
        fresh = replace(stale, add=[DataFile("p2", 1, 10)], as_of=store.table("t_a").updated_at)
        store.commit(None, [], also=[fresh])
        assert [f.path for f in store.table_files("t_a")] == ["p2"]
        new = replace(table_commit("t_b", "r2", ["q1"]), exact=True, as_of=0)  # read when not cataloged
        store.commit(table_commit("t_b", "c3", ["q2"]), [])
        with pytest.raises(ConcurrentChange):
            store.commit(None, [], also=[new])

    def test_dropped_tables_leave_the_catalog_and_their_files_load_again(self, store):
        store.discover([ev(k) for k in ("a/1", "a/2", "a/3", "b/1", "b/2")], route_by_prefix(attempts=1))
        runs = {r.file_key: r for _ in range(2) for r in store.lease("w", limit=5, max_bytes=BIG, lease_seconds=30)}
        a1, a2, a3, b1, b2 = (runs[k] for k in ("a/1", "a/2", "a/3", "b/1", "b/2"))
        store.fail(a3.run_id, "a layout the table does not have", retry_in=None, worker="w")
        store.commit(
            table_commit("t_a", "c1", ["p1"], sources=[SourceRows("p1", "a/1", a1.file_id, a1.run_id, 1)]),
            [RunResult(a1.run_id, "succeeded", worker="w"), RunResult(a2.run_id, "succeeded", worker="w")],
            also=[  # b/2's rows in t_a's quarantine were cataloged from the folder: by their key alone (id 0)
                table_commit("quarantine.t_a", "c1q", ["q1"], sources=[SourceRows("q1", "b/2", 0, b2.run_id, 1)]),
                table_commit("t_b", "c2", ["p2"], sources=[SourceRows("p2", "b/1", b1.file_id, b1.run_id, 1)]),
            ],
        )
        store.commit(None, [RunResult(b1.run_id, "succeeded"), RunResult(b2.run_id, "succeeded")])
        assert store.drop_tables(["t_c"], "nothing") == []  # not cataloged: nothing to drop
        queued = store.drop_tables(["t_a", "quarantine.t_a"], "t_a was dropped to be loaded again")
        # a/1 holds rows; a/2 loaded into t_a but holds none now (its rows lost to others' in a merge, say); a/3
        # died loading t_a (tried again, and off the dead-letter list); b/2 by its key; b/1 loaded another table
        assert sorted(r.file_key for r in queued) == ["a/1", "a/2", "a/3", "b/2"]
        assert store.dead_runs() == []
        assert all(r.status == "queued" and r.note == "t_a was dropped to be loaded again" for r in queued)
        assert [t.name for t in store.tables()] == ["t_b"]
        assert store.table_files("t_a") == [] and store.schema_versions("t_a") == []
        assert store.run(b1.run_id).status == "succeeded"
        assert store.drop_tables(["t_a"], "again") == []  # nothing left to drop or load
        again = [r for _ in range(2) for r in store.lease("w", limit=5, max_bytes=BIG, lease_seconds=30)]
        assert sorted(r.file_key for r in again) == ["a/1", "a/2", "a/3", "b/2"]

    def test_failed_commit_changes_nothing(self, store):
        store.discover([ev("a/1")], route_by_prefix())
        (r1,) = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)
        bad = table_commit("t_a", "c1", ["p", "p"])  # one path twice: the primary key refuses it
        with pytest.raises(Exception, match="(?i)unique|duplicate|constraint"):
            store.commit(bad, [RunResult(r1.run_id, "succeeded")])
        assert store.run(r1.run_id).status == "running"
        assert store.tables() == []

    def test_racing_catalog_commits_give_consecutive_schema_versions(self, store):
        errors: list[BaseException] = []

        def commit(i: int) -> None:
            try:
                schema = [("id", "int64"), (f"c{i}", "string")]
                store.commit(table_commit("t_a", f"c{i}", [f"p{i}"], schema=schema), [])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=commit, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert [v["version"] for v in store.schema_versions("t_a")] == list(range(1, 9))
        assert store.table("t_a").schema_version == 8 and store.table("t_a").file_count == 8

    # --- workers that die ------------------------------------------------------------------------------------

    def test_expired_leases_are_queued_again_without_using_an_attempt(self, store):
        store.discover([ev("a/1"), ev("a/2")], route_by_prefix(attempts=1))
        runs = store.lease("otherhost:1:x", limit=2, max_bytes=BIG, lease_seconds=0.2)
        assert store.heartbeat("otherhost:1:x", [runs[0].run_id], lease_seconds=60) == []
        time.sleep(0.3)
        lost = store.reap()
        assert [r.run_id for r in lost] == [runs[1].run_id]
        assert store.run(runs[1].run_id).status == "failed"
        assert "not counted as an attempt" in store.run(runs[1].run_id).error
        (again,) = store.runs(status="queued")
        assert again.attempt == 1 and again.interruptions == 1  # one attempt allowed, and it is still there
        store.release("otherhost:1:x", [runs[0].run_id])
        assert store.run(runs[0].run_id).status == "queued"

    def test_a_file_that_kills_its_worker_every_time_ends_dead(self, store):
        store.discover([ev("a/poison")], route_by_prefix(attempts=5))
        for i in range(MAX_INTERRUPTIONS):
            (run,) = store.lease(f"w{i}", limit=1, max_bytes=BIG, lease_seconds=0.01)
            time.sleep(0.03)
            assert [r.run_id for r in store.reap()] == [run.run_id]
        assert store.runs(status="queued") == [] and store.pending() is False
        (dead,) = store.dead_runs()
        assert f"the worker died {MAX_INTERRUPTIONS} times while loading this file" in dead.error
        assert dead.attempt == 1

    def test_reap_takes_back_leases_of_exited_local_processes_at_once(self, store):
        gone = exited_worker_id()
        store.discover([ev("a/1"), ev("a/2"), ev("a/3"), ev("a/4")], route_by_prefix())
        (dead,) = store.lease(f"{gone}:0", limit=1, max_bytes=BIG, lease_seconds=600)
        (alive,) = store.lease(f"{worker_id()}:0", limit=1, max_bytes=BIG, lease_seconds=600)
        # the same host name and a PID that no longer exists: another container, maybe; only its lease counts
        (elsewhere,) = store.lease(
            f"{socket.gethostname()}:{2**22 + 12345}:x:0", limit=1, max_bytes=BIG, lease_seconds=600
        )
        host, pid, ident = gone.split(":")
        boot, ns, start = ident.split("-")
        other_boot = "0" * 12 if boot != "0" * 12 else "1" * 12  # the host rebooted, or another host of that name
        (rebooted,) = store.lease(
            f"{host}:{pid}:{other_boot}-{ns}-{start}:0", limit=1, max_bytes=BIG, lease_seconds=600
        )
        assert [r.run_id for r in store.reap()] == [dead.run_id]
        assert {store.run(r.run_id).status for r in (alive, elsewhere, rebooted)} == {"running"}

    # --- reading back ----------------------------------------------------------------------------------------

    def test_runs_page_newest_first(self, store):
        store.discover([ev(f"a/{i:03d}") for i in range(120)], route_by_prefix())
        store.discover([ev(f"b/{i:03d}") for i in range(30)], route_by_prefix())
        everything = store.runs()
        assert len(everything) == 150 and everything[0].file_key == "b/029" and everything[-1].file_key == "a/000"
        pages, before = [], None
        while True:
            page = store.runs(limit=40, before=before)
            pages.append(page)
            if len(page) < 40:
                break
            before = page[-1].run_id
        assert [len(p) for p in pages] == [40, 40, 40, 30]
        assert [r.run_id for p in pages for r in p] == [r.run_id for r in everything]
        assert [r.run_id for r in store.iter_runs(page=7, workflow="b")] == [r.run_id for r in everything[:30]]
        assert [r.file_key for r in store.runs(workflow="a", limit=2, before=everything[40].run_id)] == [
            "a/108",
            "a/107",
        ]
        with pytest.raises(NoSuchRun):
            store.runs(before="no-such-run")

    def test_pending_is_true_while_anything_is_queued_or_running(self, store):
        assert store.pending() is False
        store.discover([ev("a/1"), ev("zzz/unrouted")], route_by_prefix())
        assert store.pending() is True
        (run,) = store.lease("w", limit=1, max_bytes=BIG, lease_seconds=30)
        assert store.pending() is True
        store.commit(None, [RunResult(run.run_id, "succeeded", worker="w")])
        assert store.pending() is False

    # --- the store's own schema ------------------------------------------------------------------------------

    def test_schema_is_at_the_latest_migration_and_reopening_changes_nothing(self, store):
        store.discover([ev("a/1")], route_by_prefix())
        assert store.schema_version() == LATEST
        again = open_state(store.url)
        try:
            assert again.schema_version() == LATEST and len(again.runs()) == 1
        finally:
            again.close()
