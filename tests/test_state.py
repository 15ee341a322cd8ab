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


@pytest.mark.postgres
@pytest.mark.slow  # a PostgreSQL server per session; the same suite runs on SQLite in the fast run
class TestPostgresStateStore(StateStoreTests):
    @pytest.fixture
    def store(self, postgres):
        from landfall.state.postgres import PostgresStateStore

        s = PostgresStateStore(postgres.create_database())
        yield s
        s.close()
