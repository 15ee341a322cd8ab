"""What a batch costs the state store: its statements (round trips, over PostgreSQL) do not grow with its files.

Each file's run is leased, checked and recorded with the others of its batch, a few statements per batch; a
statement per file (a read back of each finished run, say) costs a PostgreSQL worker a round trip per file."""

from __future__ import annotations

import pytest

from landfall.state import plumbing

from conftest import wf


def statements(make_lake, monkeypatch, files: int, **settings) -> int:
    """Statements the store runs to process `files` small CSVs landed at once (one batch)."""
    lake = make_lake([wf("s")], batch_files=100, **{k: v for k, v in settings.items() if v is not None})
    for i in range(files):
        lake.land(f"s/f{i:03d}.csv", f"id,v\n{i},x\n")
    assert len(lake.pipeline.discover()) == files
    ran: list[str] = []
    execute = plumbing._Cursor.execute

    def counted(self, text, params=()):
        ran.append(text)
        return execute(self, text, params)

    with monkeypatch.context() as m:
        m.setattr(plumbing._Cursor, "execute", counted)
        summary = lake.process(discover=False, workers=1)  # one worker: no idle worker polls meanwhile
    assert [o.status for o in summary.final()] == ["succeeded"] * files
    assert lake.rows("SELECT count(*) FROM s") == [(files,)]
    return len(ran)


def _same_for_few_and_many(make_lake, monkeypatch, state_url=lambda: None) -> None:
    few = statements(make_lake, monkeypatch, 3, state_url=state_url())
    many = statements(make_lake, monkeypatch, 60, state_url=state_url())
    assert many == few, f"a batch of 60 files ran {many} statements, one of 3 ran {few}: one per file?"


def test_a_batch_runs_the_same_statements_whatever_its_files_sqlite(make_lake, monkeypatch):
    _same_for_few_and_many(make_lake, monkeypatch)


@pytest.mark.postgres
def test_a_batch_runs_the_same_statements_whatever_its_files_postgres(make_lake, monkeypatch, postgres):
    _same_for_few_and_many(make_lake, monkeypatch, state_url=postgres.create_database)
