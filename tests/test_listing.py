"""The reconciliation listing: everything, or only the folders that changed (what keeps an idle `landfall up`
cheap over many landed files)."""

from __future__ import annotations

import os
import time

from landfall.sources.listing import ListingSource
from landfall.storage import Storage


def age(path, seconds: float = 60.0) -> None:
    """Make a file or folder look untouched for a while (folder times count only once they settle)."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def keys(events) -> list[str]:
    return sorted(e.key for e in events)


def test_changed_only_lists_the_folders_that_changed(tmp_path):
    landing = tmp_path / "landing"
    for folder in ("a", "b", "b/deep"):
        (landing / folder).mkdir(parents=True)
        for i in range(3):
            (landing / folder / f"{i}.csv").write_text("x\n1\n")
            age(landing / folder / f"{i}.csv")
    for folder in ("", "a", "b", "b/deep"):
        age(landing / folder)
    storage = Storage(str(landing), zone="landing")
    listed: list[str] = []
    real = storage.here  # one read of each folder listed: its files and its folders

    def counting(prefix: str = ""):
        listed.append(prefix)
        return real(prefix)

    storage.here = counting  # type: ignore[method-assign]
    source = ListingSource(storage)
    assert len(source.poll(changed_only=True)) == 9  # the first pass lists every folder
    listed.clear()
    assert source.poll(changed_only=True) == [] and listed == []  # nothing changed: one stat per folder

    (landing / "b/deep/new.csv").write_text("x\n2\n")  # a new file changes its folder's time
    age(landing / "b/deep", 30)
    assert keys(source.poll(changed_only=True)) == [*(f"b/deep/{i}.csv" for i in range(3)), "b/deep/new.csv"]
    assert listed == ["b/deep"]

    before = os.stat(landing / "a")
    (landing / "a/0.csv").write_text("x\n3\n")  # rewritten in place: the folder's time stays (the watcher's job)
    os.utime(landing / "a", ns=(before.st_atime_ns, before.st_mtime_ns))
    listed.clear()
    assert source.poll(changed_only=True) == [] and listed == []
    assert "a/0.csv" in keys(source.poll())  # a full listing sees it

    (landing / "c/sub").mkdir(parents=True)  # a new folder under the root is found and walked
    (landing / "c/sub/x.csv").write_text("x\n4\n")
    for folder in ("", "c", "c/sub"):
        age(landing / folder, 30)
    assert "c/sub/x.csv" in keys(source.poll(changed_only=True))
    listed.clear()
    assert source.poll(changed_only=True) == [] and listed == []


def test_a_file_left_to_settle_is_found_on_a_later_pass(tmp_path):
    landing = tmp_path / "landing"
    (landing / "s").mkdir(parents=True)
    age(landing)
    source = ListingSource(Storage(str(landing), zone="landing"), settle_seconds=30.0)
    assert source.poll(changed_only=True) == []
    (landing / "s/late.csv").write_text("x\n1\n")  # still being written, as far as the listing can tell
    age(landing / "s")
    assert source.poll(changed_only=True) == []
    age(landing / "s/late.csv", 45)  # settled now, though its folder did not change again
    assert keys(source.poll(changed_only=True)) == ["s/late.csv"]


def test_a_deleted_folder_is_forgotten(tmp_path):
    landing = tmp_path / "landing"
    (landing / "gone/inner").mkdir(parents=True)
    (landing / "gone/inner/f.csv").write_text("x\n1\n")
    source = ListingSource(Storage(str(landing), zone="landing"))
    assert keys(source.poll(changed_only=True)) == ["gone/inner/f.csv"]
    (landing / "gone/inner/f.csv").unlink()
    (landing / "gone/inner").rmdir()
    (landing / "gone").rmdir()
    assert source.poll(changed_only=True) == []
    assert source.poll() == []


def test_a_file_whose_name_is_not_utf8_is_passed_over_and_said_once(make_lake, caplog):
    """Its key could not be recorded: every listing failed on it (`UnicodeEncodeError` from the state store), so
    no file of the landing zone loaded, and `landfall process` ended in a traceback."""
    lake = make_lake([{"name": "s", "match": "s/", "write": {"table": "s"}}])
    lake.land("s/ok.csv", "id\n1\n")
    bad = os.path.join(os.fsencode(lake.landing), b"s", b"caf\xe9.csv")  # Latin-1 bytes, as some tools name files
    with open(bad, "wb") as fh:
        fh.write(b"id\n2\n")
    for changed_only in (False, True, False):
        assert keys(lake.pipeline.listing.poll(changed_only=changed_only)) == ["s/ok.csv"]
    said = [r.getMessage() for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert len(said) == 1 and "`s/caf\\xe9.csv` is passed over: its name is not UTF-8" in said[0], said
    assert lake.process().count("succeeded") == 1
    assert lake.rows("SELECT id, _source_file FROM s") == [(1, "s/ok.csv")]


def test_an_upload_in_progress_under_its_temporary_name_is_not_loaded(make_lake):
    """WinSCP uploads `x.csv` as `x.csv.filepart` and renames it when done; a browser downloads `x.part`; Excel
    keeps `~$x.csv` beside a workbook it has open. Listed, such a file was dead-lettered (no format in its name)
    or, with `read.format: csv`, loaded half-written, its rows left beside the whole file's. Now they are passed
    over; the file loads once, under its own name."""
    lake = make_lake([{"name": "s", "match": "s/", "read": {"format": "csv"}, "write": {"table": "s"}}])
    part = lake.land("s/x.csv.filepart", "id\n1\n2\n")  # half of it
    lake.land("s/~$x.csv", b"\x0bowner\x00")
    lake.land("s/y.csv~", "id\n9\n")
    lake.land("s/z.CSV.TMP", "id\n9\n")
    assert keys(lake.pipeline.listing.poll()) == []
    assert lake.process().outcomes == []
    part.write_text("id\n1\n2\n3\n")
    os.rename(part, lake.landing / "s/x.csv")
    assert lake.process().count("succeeded") == 1
    assert lake.rows("SELECT id, _source_file FROM s ORDER BY id") == [(1, "s/x.csv"), (2, "s/x.csv"), (3, "s/x.csv")]


def test_a_file_modified_ahead_of_this_hosts_clock_loads_once_found_unchanged(tmp_path, caplog):
    """A writer whose clock is ahead (a network share keeps the writer's time; a Windows client in another time
    zone) gives a file a time in the future: it never looked settled, and waited unloaded without a word until
    the clock caught up. It is settled once a pass finds it unchanged `settle_seconds` after the first, and said
    once."""
    landing = tmp_path / "landing"
    (landing / "s").mkdir(parents=True)
    ahead = landing / "s/a.csv"
    ahead.write_text("id\n1\n")
    t = time.time() + 2 * 3600
    os.utime(ahead, (t, t))
    listing = ListingSource(Storage(str(landing), zone="landing"), settle_seconds=0.3)
    assert keys(listing.poll()) == []
    time.sleep(0.35)
    assert keys(listing.poll()) == ["s/a.csv"]
    assert keys(listing.poll()) == ["s/a.csv"]
    ahead.write_text("id\n1\n2\n")  # written again: settled again before it loads
    os.utime(ahead, (t + 60, t + 60))
    assert keys(listing.poll()) == []
    time.sleep(0.35)
    assert keys(listing.poll()) == ["s/a.csv"]
    said = [r.getMessage() for r in caplog.records if "ahead of this host's clock" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("zone `landing`: `s/a.csv` was modified 72") and "s ahead" in said[0]
