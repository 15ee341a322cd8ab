from __future__ import annotations

import pytest

from landfall.state.base import RunResult, SourceRows
from landfall.state.sqlite import SqliteStateStore
from landfall.testing.state_suite import BIG, StateStoreTests, _wf, ev, route_by_prefix, table_commit


class FewStatements:
    """Commands over many files take a few statements, not some per file: on a state store across a network each
    is a round trip (5,000 files on PostgreSQL on loopback: `tables reload` took 7.7 s, re-routing 3.9 s)."""

    def test_many_files_are_queued_again_in_a_few_statements(self, store, monkeypatch):
        from landfall.state import plumbing

        n = 300
        store.discover([ev(f"z/{i}") for i in range(n)], route_by_prefix())  # no workflow matches `z/`: unrouted
        ran: list[str] = []
        for name in ("execute", "executemany"):
            real = getattr(plumbing._Cursor, name)
            monkeypatch.setattr(
                plumbing._Cursor,
                name,
                lambda self, text, *a, _real=real, **k: ran.append(text) or _real(self, text, *a, **k),
            )

        def statements(call):
            ran.clear()
            out = call()
            return out, len(ran)

        moved, count = statements(lambda: store.reroute(lambda key: _wf("a", 1)))
        assert len(moved) == n and {r.workflow for r in moved} == {"a"} and count < 10
        runs = [r for _ in range(3) for r in store.lease("w", limit=n, max_bytes=BIG, lease_seconds=30)]
        assert len(runs) == n
        for r in runs[: n // 2]:
            store.fail(r.run_id, "bad", retry_in=None, worker="w")
        dead = store.dead_runs()
        retried, count = statements(lambda: store.retry_dead(None))
        assert sorted(r.file_key for r in retried) == sorted(r.file_key for r in dead) and count < 10
        again = [r for _ in range(3) for r in store.lease("w", limit=n, max_bytes=BIG, lease_seconds=30)]
        loaded = runs[n // 2 :] + again
        sources = [SourceRows(f"p{i}", r.file_key, r.file_id, r.run_id, 1) for i, r in enumerate(loaded)]
        store.commit(
            table_commit("t", "c1", [s.path for s in sources], sources=sources),
            [RunResult(r.run_id, "succeeded", worker="w") for r in loaded],
        )
        queued, count = statements(lambda: store.drop_tables(["t"], "reloaded"))
        assert len(queued) == n and {r.note for r in queued} == {"reloaded"} and count < 20
        assert sorted(r.file_key for r in store.lease("w", limit=n, max_bytes=BIG, lease_seconds=30)) == sorted(
            r.file_key for r in queued
        )


class TestSqliteStateStore(StateStoreTests, FewStatements):
    @pytest.fixture
    def store(self, tmp_path):
        s = SqliteStateStore(f"sqlite:///{tmp_path}/state.db")
        yield s
        s.close()

    def test_a_commit_of_this_process_wakes_its_idle_workers_without_a_poll(self, store, monkeypatch):
        monkeypatch.setattr("landfall.state.sqlite.POLL_SECONDS", 60.0)  # other processes' commits: not in 10 s
        self.test_wait_for_work_wakes_when_this_process_finishes_a_run(store)


@pytest.mark.postgres
@pytest.mark.slow  # a PostgreSQL server per session; the same suite runs on SQLite in the fast run
class TestPostgresStateStore(StateStoreTests, FewStatements):
    @pytest.fixture
    def store(self, postgres):
        from landfall.state.postgres import PostgresStateStore

        s = PostgresStateStore(postgres.create_database())
        yield s
        s.close()

    def test_hosts_whose_clocks_differ_agree_on_leases(self, store):
        """Another host's clock an hour ahead: it reads leases, runs and readers on the server's clock. Before, it
        saw every lease of this host as run out an hour ago and took it, and took back runs in flight."""
        import math
        import time

        from landfall.state.postgres import PostgresStateStore
        from landfall.testing.state_suite import BIG, ev, route_by_prefix

        ahead = PostgresStateStore(store.url)
        try:
            ahead._local_clock = lambda: time.time() + 3600
            ahead._clock_checked = -math.inf  # measured again, with its clock
            assert abs(ahead.now() - store.now()) < 1
            assert store.hold("commit:t", "here", 30)
            assert not ahead.hold("commit:t", "there", 30) and "here" in ahead.holders()
            store.discover([ev("a/1")], route_by_prefix())
            (run,) = store.lease("otherhost:1:x:0", limit=1, max_bytes=BIG, lease_seconds=30)
            assert ahead.reap() == [] and ahead.runs(status="running")[0].run_id == run.run_id
            assert ahead.heartbeat("otherhost:1:x:0", [run.run_id], 30) == []
        finally:
            ahead.close()

    def test_a_host_that_could_not_read_the_servers_clock_takes_no_lease(self, store, monkeypatch):
        """The server's clock could not be read when the store opened (the server went away a moment): before,
        the host timed leases by its own clock, an hour ahead, for the next minute, and took a held lease; now it
        says the store is away until it has read the server's clock, then agrees with the other host."""
        import time

        from landfall.errors import StateUnavailable
        from landfall.state.postgres import PostgresStateStore

        real = PostgresStateStore._query

        def clock_away(self, text, params=()):
            if "clock_timestamp" in text:
                raise StateUnavailable("state store cannot be reached: connection refused; retrying")
            return real(self, text, params)

        assert store.hold("commit:t", "here", 30)
        monkeypatch.setattr(PostgresStateStore, "_query", clock_away)
        ahead = PostgresStateStore(store.url)
        try:
            ahead._local_clock = lambda: time.time() + 3600
            with pytest.raises(StateUnavailable, match="clock"):
                ahead.hold("commit:t", "there", 30)
            monkeypatch.setattr(PostgresStateStore, "_query", real)  # the server is back
            assert not ahead.hold("commit:t", "there", 30) and "here" in ahead.holders()
            assert abs(ahead.now() - store.now()) < 1
        finally:
            ahead.close()
