"""The storage seam: every zone backend passes one suite; zones on `memory://` run end to end; secrets and URLs
never leak into paths, logs or errors."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
import yaml
from click.testing import CliRunner

from landfall import Pipeline, load_settings
from landfall.cli import main
from landfall.errors import ConfigError, UnsafeKey
from landfall.events import ObjectCreated
from landfall.logs import setup
from landfall.redaction import redact
from landfall.storage import Storage
from landfall.testing.storage_suite import StorageTests

from conftest import REPO, wf


class TestLocalStorage(StorageTests):
    @pytest.fixture
    def storage(self, tmp_path):
        return Storage(str(tmp_path / "zone"), zone="landing")


class TestMemoryStorage(StorageTests):
    @pytest.fixture
    def storage(self):
        s = Storage(f"memory://{uuid.uuid4().hex[:10]}/zone", zone="landing")
        yield s
        s.delete_tree("")


@pytest.mark.parametrize("url", ["local", "memory"])
def test_a_key_under_a_file_or_naming_a_folder_is_refused_naming_it(tmp_path, url):
    """A traceback (`NotADirectoryError`, `IsADirectoryError`) from `landfall ingest` and HTTP 500 from `PUT
    /landing/<key>` before."""
    root = str(tmp_path / "zone") if url == "local" else f"memory://{uuid.uuid4().hex[:10]}/zone"
    storage = Storage(root, zone="landing")
    src = tmp_path / "f.csv"
    src.write_text("id\n1\n")
    storage.put(str(src), "s/a.csv")
    with pytest.raises(UnsafeKey, match="`s/a.csv/b.csv`: `s/a.csv` is a file in zone `landing`"):
        storage.put(str(src), "s/a.csv/b.csv")
    if url == "local":  # an object store may hold `s` beside `s/a.csv`, and longer names
        with pytest.raises(UnsafeKey, match="key `s` names a folder in zone `landing`"):
            storage.put(str(src), "s", move=True)
        with pytest.raises(UnsafeKey, match=r"a name of 304 bytes \(`x{40}…`\) is longer than a file name can be"):
            storage.put(str(src), "s/" + "x" * 300 + ".csv")  # an OSError before (HTTP 500, a traceback)
        assert src.exists()
    assert [k for k, _ in storage.list()] == ["s/a.csv"]


def test_a_long_name_is_fitted_keeping_its_extensions_and_staying_apart():
    from landfall.storage.local import NAME_MAX, fitted

    long = "a" * 300 + ".csv.gz"
    assert fitted(long) == fitted(long) != fitted("b" + long[1:])  # the same name always, two names apart
    assert len(fitted(long, 9).encode()) == NAME_MAX - 9 and fitted(long).endswith(".csv.gz")
    assert fitted("short.csv", 9) == "short.csv"
    assert len(fitted("é" * 200 + ".json", 14).encode()) <= NAME_MAX - 14  # cut between characters, not in one


def test_a_local_zone_lists_as_fsspec_would(tmp_path):
    """A local zone is read with `os` directly (`landfall.storage.local`: importing fsspec cost every command
    about 30 ms); what `Storage` reads of it is what fsspec's `LocalFileSystem` answers: files, folders, links
    inside and outside the zone, a link to nothing, `maxdepth`."""
    from fsspec.implementations.local import LocalFileSystem

    from landfall.storage.local import LocalFiles

    zone, outside = tmp_path / "zone", tmp_path / "outside"
    (zone / "sub" / "deep").mkdir(parents=True)
    outside.mkdir()
    (zone / "a.csv").write_text("a\n1\n")
    (zone / "sub" / "b.csv").write_text("b\n")
    (zone / "sub" / "deep" / "c.csv").write_text("")
    (outside / "secret.csv").write_text("s\n")
    (zone / "link_in.csv").symlink_to(zone / "a.csv")
    (zone / "link_out.csv").symlink_to(outside / "secret.csv")
    (zone / "dangling.csv").symlink_to(zone / "nothing.csv")
    (zone / "sub_link").symlink_to(zone / "sub")

    def seen(fs, **kw):
        return sorted(
            (folder, sorted(dirs), sorted((n, i["type"], i["size"], i["name"]) for n, i in files.items()))
            for folder, dirs, files in fs.walk(str(zone), detail=True, **kw)
        )

    ours, theirs = LocalFiles(), LocalFileSystem()
    assert seen(ours) == seen(theirs)
    assert seen(ours, maxdepth=1) == seen(theirs, maxdepth=1)
    for key in ("a.csv", "sub", "link_out.csv"):
        mine, fss = ours.info(str(zone / key)), theirs.info(str(zone / key))
        keys = ("name", "size", "type", "islink", "mtime", "mode")
        assert {k: mine[k] for k in keys} == {k: fss[k] for k in keys}
    assert sorted(i["name"] for i in ours.ls(str(zone))) == sorted(i["name"] for i in theirs.ls(str(zone), True))
    listed = dict(Storage(str(zone)).list())
    assert sorted(listed) == ["a.csv", "sub/b.csv", "sub/deep/c.csv"]  # links are never listed
    assert listed["a.csv"]["size"] == 4 and listed["a.csv"]["mtime"] == os.stat(zone / "a.csv").st_mtime


def test_a_folder_that_cannot_be_read_is_said_once_and_the_rest_loads(make_lake, monkeypatch, caplog):
    """A folder of the landing zone landfall may not read (permissions, a failing disk) stopped the listing with
    the raw OSError, so no file anywhere in the zone was found. Now that folder is said once (a warning naming it
    and why) and every other file loads; the zone's own folder unread is the zone away (`StorageUnavailable`),
    which the caller retries. (Tests run as root, whom permissions never stop: `os.scandir` refuses here.)"""
    import errno

    from landfall.errors import StorageUnavailable

    lake = make_lake([wf("t")])
    lake.land("t/a.csv", "id\n1\n")
    lake.land("t/locked/b.csv", "id\n2\n")
    lake.land("t/open/c.csv", "id\n3\n")
    real = os.scandir

    def scandir(path):
        if os.path.basename(str(path)) == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with caplog.at_level(logging.WARNING, logger="landfall"):
        assert lake.process().ok
        assert lake.process().ok  # the next pass says nothing again
    assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (3,)]
    said = [r.getMessage() for r in caplog.records if "cannot list" in r.getMessage()]
    assert len(said) == 1 and "`t/locked`" in said[0] and "Permission denied" in said[0], said
    monkeypatch.setattr(os, "scandir", real)
    assert lake.process().ok  # readable again: its file loads
    assert lake.rows("SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]

    from landfall.sources.listing import ListingSource

    monkeypatch.setattr(os, "scandir", scandir)  # a pass of `landfall up` over the folders that changed: the same
    changed = ListingSource(Storage(str(lake.landing), zone="landing")).poll(changed_only=True)
    assert sorted(e.key for e in changed) == ["t/a.csv", "t/open/c.csv"]

    def down(path):
        raise OSError(errno.EIO, "Input/output error", str(path))

    monkeypatch.setattr(os, "scandir", down)
    with pytest.raises(StorageUnavailable, match="cannot list it: .*Input/output error"):
        list(Storage(str(lake.landing), zone="landing").list())


def _memory_lake(tmp_path, workflows, bucket: str | None = None, **settings):
    bucket = bucket or f"wh{uuid.uuid4().hex[:8]}"
    doc = {
        "lake": str(tmp_path / "lake"),
        "zones": {
            "landing": f"memory://{bucket}/landing",
            "tables": f"memory://{bucket}/tables",
            "quarantine": f"memory://{bucket}/quarantine",
        },
        "workflows": workflows,
        **settings,
    }
    path = tmp_path / "landfall.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return Pipeline(load_settings(path)), bucket


def _table_keys(p) -> list[str]:
    """The tables zone's data files: not the lake's own record (`_landfall/lake.json`, see landfall.hashing), nor a
    table's (`<table>/_landfall/partitions.json`, see landfall.tables.parquet)."""
    return [k for k, _ in p.zones.tables.list() if "_landfall/" not in k]


def test_memory_zones_end_to_end(tmp_path):
    """Landing, tables and quarantine all on `memory://`: files listed, loaded, rules applied, queried; no local
    folder is ever made from the zone URLs (a `memory://wh` tables zone once made `/wh/s/_staging`)."""
    rule = {"not_null": ["id"], "action": "quarantine"}
    p, bucket = _memory_lake(tmp_path, [wf("s", write={"table": "s", "partition_by": ["day"]}, validate=[rule])])
    try:
        p.zones.landing.write_bytes("s/a.csv", b"id,day\n1,mon\n2,tue\n,mon\n")
        p.zones.landing.write_bytes("s/b.csv", b"id,day\n3,mon\n")
        summary = p.process()
        assert summary.ok and summary.count("succeeded") == 2
        assert p.query("SELECT id, day FROM s ORDER BY id")[1] == [(1, "mon"), (2, "tue"), (3, "mon")]
        assert p.query("SELECT _line, _rule FROM quarantine.s")[1] == [(4, "not_null(id)")]
        assert p.zones.tables.exists("s/_landfall/partitions.json")  # the partition column's type, beside its files
        keys = sorted(_table_keys(p))
        assert len(keys) == 3 and all(k.startswith(("s/day=mon/part-", "s/day=tue/part-")) for k in keys)
        assert not os.path.exists(f"/{bucket}")
        assert not [d for d in os.listdir(tmp_path / "lake") if d != "_landfall"]
        # a changed file replaces its own rows, on a store without rename as well
        p.zones.landing.write_bytes("s/b.csv", b"id,day\n4,wed\n")
        assert p.process().ok
        assert p.query("SELECT id FROM s ORDER BY id")[1] == [(1,), (2,), (4,)]
        assert sorted(_table_keys(p)) != keys
        assert {f.path for f in p.store.table_files("s")} == {k.removeprefix("s/") for k in _table_keys(p)}
    finally:
        p.close()
        p.zones.landing.delete_tree("")


@pytest.mark.parametrize("cut", ["copying", "deleting"])
def test_a_reload_interrupted_on_an_object_store_moves_the_rest_into_the_same_folder(tmp_path, monkeypatch, cut):
    """On an object store a reload moves a table aside by copying each object and deleting it after: one cut
    short (while copying, or while deleting) and run again moves the rest into the folder it began, not into a
    second one; the table then loads again whole."""
    flow = wf("s", write={"table": "s", "partition_by": ["day"]})  # (a move is the same for each format)
    p, _ = _memory_lake(tmp_path, [flow])
    try:
        for i, day in enumerate(["mon", "tue", "wed", "mon"]):
            p.zones.landing.write_bytes(f"s/{i}.csv", f"id,day\n{i},{day}\n".encode())
        assert p.process().ok
        tables = p.zones.tables
        before = sorted(k for k, _ in tables.list("s"))
        calls = {"n": 0}
        if cut == "copying":
            real_cp = tables.fs.cp_file

            def cp_file(src, dst, **kw):
                calls["n"] += 1
                if calls["n"] == 3:
                    raise OSError("connection reset")
                return real_cp(src, dst, **kw)

            monkeypatch.setattr(tables.fs, "cp_file", cp_file)
        else:
            real_delete = tables.delete

            def delete(keys):
                if len(keys) > 1:
                    real_delete(keys[:2])
                    raise OSError("connection reset")
                return real_delete(keys)

            monkeypatch.setattr(tables, "delete", delete)
        with pytest.raises(Exception, match="connection reset"):
            p.reload_table("s")
        monkeypatch.undo()
        time.sleep(1.1)  # the folder's name has the time to the second: run again in a later one
        done = p.reload_table("s")
        folders = tables.folders("_dropped")
        assert len(folders) == 1 and done.kept == [tables.url_of(f"_dropped/{folders[0]}")], (folders, done.kept)
        kept = sorted(k.split("/", 2)[2] for k, _ in tables.list("_dropped"))
        assert kept == [k.removeprefix("s/") for k in before]  # every object once, and no note left behind
        assert not list(tables.list("s"))
        assert p.process().ok
        assert p.query("SELECT id, day FROM s ORDER BY id")[1] == [(0, "mon"), (1, "tue"), (2, "wed"), (3, "mon")]
    finally:
        p.close()
        p.zones.landing.delete_tree("")


def test_compaction_and_replay_on_memory_zones(tmp_path):
    rule = {"range": {"column": "id", "min": 0}, "action": "quarantine"}
    p, _ = _memory_lake(tmp_path, [wf("s", validate=[rule])])
    try:
        for i in range(4):
            p.zones.landing.write_bytes(f"s/{i}.csv", f"id\n{i}\n-{i + 1}\n".encode())
        assert p.process().ok
        res = p.optimize("s", min_files=2)
        assert res.files_removed == 4 and res.files_added == 1
        assert p.query("SELECT count(*) FROM s")[1] == [(4,)]
        p.settings.workflows[0].validate_.clear()  # the rule was wrong: every id is fine
        out = p.replay_quarantine("s")
        assert out.replayed == 4 and out.still_quarantined == 0
        assert p.query("SELECT count(*) FROM s")[1] == [(8,)]
        assert p.query("SELECT count(*) FROM quarantine.s")[1] == [(0,)]
        listed = {f.path for f in p.store.table_files("s")}
        assert listed == {k.removeprefix("s/") for k in _table_keys(p)}
    finally:
        p.close()


def test_delta_on_memory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="`delta` tables need a local folder or an object store"):
        _memory_lake(tmp_path, [wf("d", write={"table": "d", "format": "delta"})])


def test_a_url_lake_needs_a_state_url_and_the_error_hides_the_password(tmp_path):
    (tmp_path / "landfall.yaml").write_text("lake: memory://user:S3cretPassw0rd@bucket/lake\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "landfall.yaml")
    assert "state_url" in str(err.value) and "S3cretPassw0rd" not in str(err.value)
    out = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "runs"])
    assert out.exit_code != 0 and "state_url" in out.output and "S3cretPassw0rd" not in out.output
    assert not (tmp_path / "memory:").exists() and not os.path.exists("memory:")
    # with a state URL it runs, and no local folder is named after the lake URL
    (tmp_path / "landfall.yaml").write_text(
        f"lake: memory://user:S3cretPassw0rd@bucket/lake\nstate_url: sqlite:///{tmp_path}/state.db\n",
        encoding="utf-8",
    )
    out = CliRunner().invoke(main, ["--config", str(tmp_path / "landfall.yaml"), "process"])
    assert out.exit_code == 0, out.output
    assert set(os.listdir(tmp_path)) - {"state.db-shm", "state.db-wal"} == {"landfall.yaml", "state.db"}


@pytest.mark.parametrize(
    "text, hidden",
    [
        ("landfall up: watching memory://user:S3cretPassw0rd@bucket/landing", "S3cretPassw0rd"),
        ("connection to postgresql://admin:S3cretPassw0rd@db.internal:5432/landfall failed", "S3cretPassw0rd"),
        ("postgresql://:onlypw@db/x", "onlypw"),
        ("host=db password=S3cretPassw0rd dbname=x", "S3cretPassw0rd"),
        ("https://b.s3.amazonaws.com/k?X-Amz-Signature=abcdef0123&X-Amz-Credential=AKIA", "abcdef0123"),
        ("{'AWS_SECRET_ACCESS_KEY': 'wJalrXUtnFEMI'}", "wJalrXUtnFEMI"),
    ],
)
def test_redact_masks_secrets(text, hidden):
    out = redact(text)
    assert hidden not in out and "***" in out
    assert redact("s3://bucket/landing/sales/a.csv") == "s3://bucket/landing/sales/a.csv"  # nothing to hide


def test_secrets_never_reach_logs_errors_or_run_records(tmp_path):
    """A landing zone URL with a password: the `up` log line, a failed run's error and the CLI's error line
    show `***`, and the storage secret from `storage:` is masked wherever it appears."""
    bucket = f"user:S3cretPassw0rd@b{uuid.uuid4().hex[:6]}"
    p, _ = _memory_lake(
        tmp_path,
        [wf("s")],
        bucket=bucket,
        storage={"secret": "Very5ecretKey", "key": "AKIA1"},
        settle_seconds=0,
        reconcile_seconds=0.2,
    )
    try:
        p.zones.landing.write_bytes("s/bad.json", b'{"a": 1')  # fails: names the file, never the password
        p.submit([ObjectCreated("s/gone.csv", size=3, mtime=1.0)])  # its error quotes the zone's path
        stop = threading.Event()
        setup(logging.INFO, "json")  # what the CLI installs: one handler, secrets masked by its filter
        captured = io.StringIO()
        logging.getLogger("landfall").handlers[0].setStream(captured)
        t = threading.Thread(target=p.up, args=(stop,), kwargs={"workers": 1, "watch": False})
        t.start()
        try:
            deadline = time.monotonic() + 300  # a loaded machine is slow; the bound only catches a hang
            while sum(r.status == "dead" for r in p.runs()) < 2:  # both files, whichever ends first
                assert time.monotonic() < deadline, [(r.file_key, r.status) for r in p.runs()]
                time.sleep(0.05)
        finally:
            stop.set()
            t.join()
        logging.getLogger("landfall").warning("storage secret in a message: Very5ecretKey")
        text = captured.getvalue()
        assert "landfall up: watching memory://user:***@" in text
        assert "S3cretPassw0rd" not in text and "Very5ecretKey" not in text
        errors = [r.error or "" for r in p.runs() if r.status == "dead"]
        assert len(errors) == 2 and not any("S3cretPassw0rd" in e for e in errors)
        assert any("user:***@" in e for e in errors), errors
        assert "S3cretPassw0rd" not in CliRunner().invoke(main, ["--config", p.settings.source, "runs"]).output
    finally:
        logging.getLogger("landfall").handlers[:] = []
        p.close()


def test_s3_without_s3fs_is_one_line(tmp_path):
    """Without s3fs installed, an `s3://` zone is one line with the install command, not a traceback."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "s3fs.py").write_text("raise ImportError('No module named s3fs (blocked for this test)')\n")
    (tmp_path / "landfall.yaml").write_text(
        f"lake: {tmp_path / 'lake'}\nzones: {{landing: 's3://acme-raw/landing'}}\n", encoding="utf-8"
    )
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{REPO / 'src'}"}
    out = subprocess.run(
        [sys.executable, "-m", "landfall", "--config", str(tmp_path / "landfall.yaml"), "process"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode != 0
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == ['Error: s3:// needs s3fs: pip install "landfall[s3]"'], out.stderr


def test_an_unexpected_error_prints_its_traceback_without_secrets(tmp_path, monkeypatch, capsys):
    """A bug (not a landfall error) still never prints a password that its message quotes."""
    import landfall.cli as cli

    def broken(self):
        raise RuntimeError("lost postgresql://admin:S3cretPassw0rd@db.internal/landfall mid-way")

    monkeypatch.setattr(cli.Ctx, "pipeline", broken)
    monkeypatch.setattr(sys, "argv", ["landfall", "--config", str(tmp_path / "none.yaml"), "runs"])
    with pytest.raises(SystemExit) as end:
        cli.entry()
    err = capsys.readouterr().err
    assert end.value.code == 1 and "RuntimeError" in err and "Traceback" in err
    assert "postgresql://admin:***@db.internal/landfall" in err and "S3cretPassw0rd" not in err


def test_an_unknown_zone_protocol_fails_at_load(tmp_path):
    (tmp_path / "landfall.yaml").write_text("zones: {tables: 's4://bucket/tables'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"`zones.tables`: `s4://bucket/tables`: unknown storage protocol `s4://`"):
        load_settings(tmp_path / "landfall.yaml")
