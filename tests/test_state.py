from __future__ import annotations

import pytest

from landfall.state.sqlite import SqliteStateStore
from landfall.testing.state_suite import StateStoreTests


class TestSqliteStateStore(StateStoreTests):
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
class TestPostgresStateStore(StateStoreTests):
    @pytest.fixture
    def store(self, postgres):
        from landfall.state.postgres import PostgresStateStore

        s = PostgresStateStore(postgres.create_database())
        yield s
        s.close()
