"""A lake's content hash: BLAKE3 for a new lake, SHA-256 kept by a lake that loaded files before it recorded
which it uses (its load history and Delta markers are SHA-256), recorded in the tables zone so a lost state store
changes nothing."""

from __future__ import annotations

import hashlib
import json

import blake3
import pytest
from test_state_loss import lose_state

from landfall.errors import ConfigError

from conftest import wf

CSV = "id,name\n1,a\n2,b\n"


def record(lake) -> dict:
    return json.loads((lake.root / "lake/tables/_landfall/lake.json").read_text())


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_a_new_lake_hashes_with_blake3_and_loads_the_same_bytes_once(make_lake, fmt):
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt})])
    lake.land("t/a.csv", CSV)
    assert lake.process().ok
    assert record(lake) == {"content_hash": "blake3"}
    (run,) = lake.pipeline.runs()
    assert run.content_hash == blake3.blake3(CSV.encode()).hexdigest()
    lake.land("t/copy-of-a.csv", CSV)
    assert lake.process().ok
    skipped = next(r for r in lake.pipeline.runs() if r.file_key == "t/copy-of-a.csv")
    assert skipped.status == "skipped" and "same content as `t/a.csv`" in skipped.note
    assert lake.rows("SELECT count(*) FROM t") == [(2,)]


def test_landfall_process_on_a_new_lake_records_blake3(tmp_path):
    """The command discovers (queues) files before it runs them: queued runs are no history."""
    from click.testing import CliRunner

    from landfall.cli import main

    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: t, match: t/, read: {format: csv}, write: {table: t}}\n"
    )
    (tmp_path / "lake/landing/t").mkdir(parents=True)
    (tmp_path / "lake/landing/t/a.csv").write_text(CSV)
    out = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "process"])
    assert out.exit_code == 0, out.output
    assert json.loads((tmp_path / "lake/tables/_landfall/lake.json").read_text()) == {"content_hash": "blake3"}


def test_a_big_file_is_hashed_with_the_lakes_hash_while_it_is_read(make_lake, monkeypatch):
    monkeypatch.setattr("landfall.runner.HASH_ALONGSIDE_BYTES", 10)
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t"})])
    lake.land("t/a.csv", CSV)
    assert lake.process().ok
    assert lake.pipeline.runs()[0].content_hash == blake3.blake3(CSV.encode()).hexdigest()


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_a_lake_that_loaded_files_before_the_record_keeps_sha256(make_lake, fmt):
    """A lake made before landfall recorded its content hash: runs and markers hold SHA-256 hashes. It keeps
    SHA-256, so the same bytes landed again under a new name still load once, and a lost state store still
    finds its Delta markers."""
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt})])
    (lake.root / "lake/tables/_landfall").mkdir(parents=True)
    (lake.root / "lake/tables/_landfall/lake.json").write_text('{"content_hash": "sha256"}')
    lake.land("t/a.csv", CSV)
    assert lake.process().ok
    assert lake.pipeline.runs()[0].content_hash == hashlib.sha256(CSV.encode()).hexdigest()
    lake.close()
    lake._pipeline = None
    (lake.root / "lake/tables/_landfall/lake.json").unlink()  # as a lake made before the record was

    lake.land("t/copy-of-a.csv", CSV)
    assert lake.process().ok
    assert record(lake) == {"content_hash": "sha256"}
    skipped = next(r for r in lake.pipeline.runs() if r.file_key == "t/copy-of-a.csv")
    assert skipped.status == "skipped", skipped
    lose_state(lake)
    (lake.root / "lake/tables/_landfall/lake.json").unlink()
    lake.land("t/b.csv", "id,name\n3,c\n")
    assert lake.process().ok  # the tables say files were loaded: still SHA-256, the markers still match
    assert record(lake) == {"content_hash": "sha256"}
    assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]


def test_the_record_outlives_a_lost_state_store(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": "delta"})])
    lake.land("t/a.csv", CSV)
    assert lake.process().ok
    lose_state(lake)
    lake.land("t/b.csv", "id,name\n3,c\n")
    assert lake.process().ok
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    assert "committed by an earlier attempt" in runs["t/a.csv"].note  # its BLAKE3 marker found in the log
    assert runs["t/b.csv"].content_hash == blake3.blake3(b"id,name\n3,c\n").hexdigest()
    assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]


@pytest.mark.parametrize("text", ["{not json", '{"content_hash": "md5"}'])
def test_a_damaged_record_stops_with_what_to_do(make_lake, text):
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t"})])
    (lake.root / "lake/tables/_landfall").mkdir(parents=True)
    (lake.root / "lake/tables/_landfall/lake.json").write_text(text)
    lake.land("t/a.csv", CSV)
    with pytest.raises(ConfigError, match=r"lake\.json.*content hash"):
        lake.process()


def test_a_process_that_waits_for_another_deciding_takes_its_record(make_lake):
    """Two hosts starting on a new lake: the one that waits for the lease takes whatever record the first wrote
    (here SHA-256, so that a host deciding on its own, which would say BLAKE3 a moment earlier, is caught)."""
    import threading

    from landfall.hashing import LEASE, lake_algorithm

    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t"})])
    p = lake.pipeline
    assert p.store.hold(LEASE, "first-host", 60)
    got: list[str] = []
    waiting = threading.Thread(target=lambda: got.append(lake_algorithm(p.store, p.zones, wait=10)))
    waiting.start()
    lake.land("t/a.csv", CSV)
    p.discover()
    assert p.store.lease("first-host:0", limit=1, max_bytes=1 << 30, lease_seconds=60)  # it runs a file
    # whole or absent, as the first host writes it (a plain write could be read half-made by the waiting thread,
    # whose first look may come late under load)
    p.zones.tables.write_bytes("_landfall/lake.json", b'{"content_hash": "sha256"}')
    p.store.let_go(LEASE, "first-host")
    waiting.join(10)
    assert got == ["sha256"]
