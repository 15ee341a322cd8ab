"""Conformance tests every zone backend must pass through `landfall.storage.Storage`. A backend's test module
subclasses `StorageTests` and supplies only the `storage` fixture (an empty zone) and `scratch` (a local folder).
"""

from __future__ import annotations

import hashlib
import os

import duckdb
import pytest

from landfall.hashing import ALGORITHMS, of_bytes
from landfall.storage import Storage


class StorageTests:
    @pytest.fixture
    def storage(self, tmp_path) -> Storage:  # pragma: no cover - supplied by each backend
        raise NotImplementedError

    @pytest.fixture
    def scratch(self, tmp_path) -> str:
        path = tmp_path / "scratch"
        path.mkdir()
        return str(path)

    def test_write_list_info_read(self, storage: Storage):
        storage.write_bytes("sales/2024/a.csv", b"id\n1\n")
        storage.write_bytes("sales/b.csv", b"id\n2\n3\n")
        listed = dict(storage.list())
        assert sorted(listed) == ["sales/2024/a.csv", "sales/b.csv"]
        assert listed["sales/b.csv"]["size"] == 7 and listed["sales/b.csv"]["mtime"] > 0
        assert sorted(dict(storage.list("sales/2024"))) == ["sales/2024/a.csv"]
        assert storage.read_bytes("sales/2024/a.csv") == b"id\n1\n"
        assert storage.info("sales/b.csv")["size"] == 7
        assert storage.exists("sales/b.csv") and not storage.exists("sales/nope.csv")
        assert storage.folders("sales") == ["2024"]
        assert storage.entries("sales") == {"2024": "directory", "b.csv": "file"}

    def test_sync_flushes_what_a_commit_is_about_to_name(self, storage: Storage):
        storage.write_bytes("t/day=mon/part-0.parquet", b"PAR1")
        storage.sync(["t/day=mon/part-0.parquet"])  # a local file and its folders flushed; an upload already is
        storage.sync(["t/_delta_log/_last_checkpoint"], missing_ok=True)
        assert storage.read_bytes("t/day=mon/part-0.parquet") == b"PAR1"

    def test_listing_an_empty_or_missing_zone(self, storage: Storage):
        assert list(storage.list()) == []
        assert list(storage.list("nothing/here")) == []
        assert storage.folders("nothing") == []

    def test_hash_and_local_copy(self, storage: Storage, scratch: str):
        data = os.urandom(3 << 20)  # several read chunks
        storage.write_bytes("big/x.bin.gz", data)
        for algorithm in ALGORITHMS:  # each lake's content hash, streamed over several chunks
            assert storage.hash("big/x.bin.gz", algorithm) == of_bytes(data, algorithm)
        assert storage.hash("big/x.bin.gz", "sha256") == hashlib.sha256(data).hexdigest()
        path, fetched = storage.fetch("big/x.bin.gz", scratch, "blake3")
        assert fetched == of_bytes(data, "blake3") and open(path, "rb").read() == data
        assert path.endswith("x.bin.gz")  # engines tell compression and format by the name
        local = storage.local_path("big/x.bin.gz", scratch)
        assert os.path.isfile(local) and open(local, "rb").read() == data
        if not storage.is_local:
            assert local.startswith(scratch)  # a copy in the job's local scratch, never a path made from a URL
        else:
            assert local == storage.path("big/x.bin.gz")

    def test_fetch_many_reads_a_batch_in_order_with_errors_in_place(self, storage: Storage, scratch: str, monkeypatch):
        monkeypatch.setattr("landfall.storage.zone._SMALL_FILE", 8)  # "big" files stream, small ones are read whole
        files = {f"b/{i}.csv": f"id\n{i}\n".encode() * (1 + i % 3) for i in range(6)}
        for key, data in files.items():
            storage.write_bytes(key, data)
        keys = [(k, len(v)) for k, v in files.items()]
        got = storage.fetch_many([*keys[:3], ("b/missing.csv", 5), *keys[3:]], scratch, "sha256")
        assert isinstance(got[3], FileNotFoundError)
        for (key, _), item in zip(keys, got[:3] + got[4:], strict=True):
            path, digest = item
            assert open(path, "rb").read() == files[key] and digest == hashlib.sha256(files[key]).hexdigest()

    def test_put_places_a_whole_file_and_delete_removes(self, storage: Storage, scratch: str):
        src = os.path.join(scratch, "part-0.parquet")
        with open(src, "wb") as fh:
            fh.write(b"PAR1" * 100)
        storage.put(src, "t/day=mon/part-0.parquet")
        assert os.path.exists(src)  # a copy
        storage.put(src, "t/day=tue/part-1.parquet", move=True)
        assert not os.path.exists(src)  # moved
        assert sorted(k for k, _ in storage.list("t")) == ["t/day=mon/part-0.parquet", "t/day=tue/part-1.parquet"]
        assert not [k for k, _ in storage.list() if ".tmp" in k]  # no temp names left behind
        storage.delete(["t/day=mon/part-0.parquet", "t/day=mon/already-gone.parquet"])
        assert [k for k, _ in storage.list("t")] == ["t/day=tue/part-1.parquet"]
        storage.delete_tree("t")
        assert list(storage.list("t")) == []

    def test_move_tree_moves_a_folder_whole(self, storage: Storage):
        storage.write_bytes("t/_delta_log/0.json", b"{}")
        storage.write_bytes("t/day=mon/part-0.parquet", b"PAR1")
        storage.write_bytes("tt/keep.parquet", b"x")  # a folder whose name starts alike stays
        assert storage.move_tree("t", "_dropped/t-1")
        assert sorted(k for k, _ in storage.list()) == [
            "_dropped/t-1/_delta_log/0.json",
            "_dropped/t-1/day=mon/part-0.parquet",
            "tt/keep.parquet",
        ]
        assert storage.read_bytes("_dropped/t-1/day=mon/part-0.parquet") == b"PAR1"
        assert not storage.move_tree("t", "_dropped/t-2")  # nothing there (moved already)

    def test_child_storage_shares_the_zone(self, storage: Storage):
        table = storage.child("sales")
        table.write_bytes("part-1.parquet", b"x")
        assert [k for k, _ in storage.list()] == ["sales/part-1.parquet"]
        assert table.url == storage.url_of("sales") and table.zone == storage.zone

    def test_duckdb_reads_a_zone_url_without_extensions(self, storage: Storage, scratch: str):
        out = os.path.join(scratch, "x.parquet")
        duckdb.execute(f"COPY (SELECT range AS id FROM range(5)) TO '{out}' (FORMAT parquet)")
        storage.put(out, "t/x.parquet")
        con = duckdb.connect()
        con.execute("SET autoinstall_known_extensions = false")
        storage.register_with(con)
        url = storage.url_of("t/x.parquet")
        assert con.execute(f"SELECT sum(id) FROM read_parquet('{url}')").fetchone() == (10,)
        con.close()
