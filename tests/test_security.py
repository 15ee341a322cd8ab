"""Keys and links from outside never reach past their zone: `safe_key` for every key that comes from outside,
and no symlink is followed out of the landing zone by any source."""

from __future__ import annotations

import os
import posixpath

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from landfall.cli import main
from landfall.errors import UnsafeKey
from landfall.events import ObjectCreated, safe_key

from conftest import wf


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("sales/2024.csv", "sales/2024.csv"),
        ("./sales/./a.csv", "sales/a.csv"),
        ("a", "a"),
        ("a..b/c...csv", "a..b/c...csv"),
        ("ünï cödé/ファイル.csv", "ünï cödé/ファイル.csv"),
    ],
)
def test_safe_key_keeps_keys_inside_their_zone(key, normal):
    assert safe_key(key) == normal


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("../escape.csv", "`..` segment"),
        ("t/../../x.csv", "`..` segment"),
        ("t/..", "`..` segment"),
        ("/etc/passwd", "absolute path"),
        ("C:/Windows/x.csv", "absolute path"),
        ("t\\..\\x.csv", "backslash"),
        ("a\x00b.csv", "control character"),
        ("a\nb.csv", "control character"),
        ("a/caf\udce9.csv", "not UTF-8"),  # a local file name of Latin-1 bytes, as Python decodes it
        ("a//b.csv", "empty segment"),
        ("a/", "empty segment"),
        ("", "empty key"),
        (".", "empty segment"),
    ],
)
def test_safe_key_refuses_keys_that_leave_or_cannot_name_a_file(key, reason):
    with pytest.raises(UnsafeKey, match=reason):
        safe_key(key)


@given(st.lists(st.sampled_from(["a", "b", ".", "..", "/", "\\", "\x00", ":", "C", " "]), max_size=12).map("".join))
def test_a_key_safe_key_accepts_never_resolves_outside_its_root(key):
    try:
        normal = safe_key(key)
    except UnsafeKey:
        return
    joined = posixpath.normpath(posixpath.join("/zone", normal))
    assert joined.startswith("/zone/") and joined != "/zone/"


def _project(tmp_path):
    (tmp_path / "landfall.yaml").write_text(
        "lake: ./lake\nworkflows:\n  - {name: any, match: '**', read: {format: csv}, write: {table: t}}\n"
    )
    src = tmp_path / "src" / "f.csv"
    src.parent.mkdir()
    src.write_text("id\n1\n")
    return src


@pytest.mark.parametrize("prefix", ["../../../escape", "t/../../..", "/tmp/abs", "t\\..\\..", "t//u"])
def test_ingest_refuses_a_prefix_that_leaves_the_landing_zone(tmp_path, prefix):
    src = _project(tmp_path)
    before = sorted(p for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "landfall.yaml"), "ingest", str(src), "--prefix", prefix, "--process"]
    )
    assert result.exit_code == 1, result.output
    assert "key `" in result.output and "Traceback" not in result.output
    assert src.read_text() == "id\n1\n"  # the source file's folder is not written over
    after = sorted(p for p in tmp_path.rglob("*") if "_landfall" not in p.parts)
    assert [p for p in after if p not in before and not (tmp_path / "lake").samefile(p)] == [], after
    assert not list((tmp_path / "lake").rglob("*.csv"))


def test_ingest_with_a_plain_prefix_still_lands_under_it(tmp_path):
    src = _project(tmp_path)
    result = CliRunner().invoke(
        main, ["--config", str(tmp_path / "landfall.yaml"), "ingest", str(src), "--prefix", "t/sub/", "--process"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "lake/landing/t/sub/f.csv").read_text() == "id\n1\n"


def _lake_with_links(make_lake, tmp_path):
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})], settle_seconds=0.0)
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("user,password\nroot,hunter2\n")
    (lake.landing / "t").mkdir(parents=True, exist_ok=True)
    return lake, secret


def test_a_link_out_of_the_landing_zone_is_never_read(make_lake, tmp_path):
    lake, secret = _lake_with_links(make_lake, tmp_path)
    (lake.landing / "t/link.csv").symlink_to(secret)
    (lake.landing / "t/dir").symlink_to(secret.parent, target_is_directory=True)
    lake.land("t/ok.csv", "user,password\nalice,-\n")
    assert lake.process().count("succeeded") == 1  # the listing reports neither link
    # an event source that reports them anyway (a notification, or a file swapped for a link after it was
    # reported): the run fails naming the link, and nothing of the secret is read
    lake.pipeline.submit(
        [ObjectCreated("t/link.csv", size=29, mtime=1.0), ObjectCreated("t/dir/secret.csv", size=29, mtime=1.0)]
    )
    summary = lake.process()
    assert sorted(o.run.file_key for o in summary.dead) == ["t/dir/secret.csv", "t/link.csv"]
    for o in summary.dead:
        assert f"is a link to `{secret}`, outside the zone" in o.error, o.error
    assert lake.rows("SELECT user FROM t") == [("alice",)]


@pytest.mark.slow
def test_up_never_loads_a_link_renamed_into_the_landing_zone(make_lake, tmp_path):
    import subprocess
    import sys
    import time

    lake, secret = _lake_with_links(make_lake, tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "landfall", "--config", str(lake.config), "up", "--workers", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lake.land("t/first.csv", "user,password\nalice,-\n")
        deadline = time.time() + 60
        while time.time() < deadline and lake.status().get("t/first.csv") != "succeeded":
            time.sleep(0.2)
        (lake.landing / "t/.incoming").symlink_to(secret)
        os.rename(lake.landing / "t/.incoming", lake.landing / "t/passwd.csv")  # a link renamed into place
        lake.land("t/after.csv", "user,password\nbob,-\n")
        while time.time() < deadline and lake.status().get("t/after.csv") != "succeeded":
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "`t/passwd.csv` is a link to" in out, out
    assert "t/passwd.csv" not in lake.status()
    assert sorted(lake.rows("SELECT user FROM t")) == [("alice",), ("bob",)]
