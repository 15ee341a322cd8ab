"""Input that is empty, ragged, compressed, deeply nested or in an undeclared encoding: it loads correctly or
fails alone with the file, the line and the reason; nothing else breaks."""

from __future__ import annotations

import pytest

from conftest import Lake, wf

GOOD = "id,name\n1,a\n2,b\n"
EMPTIES = {
    "t/zero.csv": b"",
    "t/blank.csv": b"   \n  \n\n",
    "t/header-no-newline.csv": b"id,name",
    "t/header.csv": b"id,name\n",
    "t/header-crlf.csv": b"id,name\r\n\r\n",
}


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_empty_csv_files_load_nothing_and_change_no_schema(make_lake, fmt):
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt}, retry={"max_attempts": 1})])
    lake.land("t/zero-first.csv", b"")  # before the table exists: no table is made
    assert lake.process().ok
    assert lake.pipeline.tables() == []
    lake.land("t/a.csv", GOOD)
    assert lake.process().ok
    schema = lake.pipeline.table("t").schema
    for key, body in EMPTIES.items():  # alone, then all in one batch
        lake.land(key, body + b"\n\n\n" if key == "t/header.csv" else body)
    lake.land("t/b.csv", "id,name\n3,c\n")
    assert lake.process().ok
    assert lake.pipeline.table("t").schema == schema  # no `column0`
    assert lake.rows("SELECT id, name FROM t ORDER BY id") == [(1, "a"), (2, "b"), (3, "c")]
    for run in lake.pipeline.runs(limit=None):
        if run.file_key in EMPTIES or run.file_key == "t/zero-first.csv":
            assert run.status in ("succeeded", "skipped"), run
            if run.status == "succeeded":
                assert run.rows_out == 0 and run.note.startswith("nothing to load"), run
    lake.land("t/c.csv", "id,name\n4,d\n")  # later files and queries keep working
    assert lake.process().ok
    assert lake.rows("SELECT count(*), count(DISTINCT _source_file) FROM t") == [(4, 3)]


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_file_that_becomes_empty_takes_its_rows_away(make_lake, fmt):
    lake = make_lake([wf("t", read={"format": "csv"}, write={"table": "t", "format": fmt}, retry={"max_attempts": 1})])
    lake.land("t/a.csv", GOOD, mtime=1_700_000_000)
    lake.land("t/b.csv", "id,name\n3,c\n", mtime=1_700_000_000)
    lake.process()
    lake.land("t/a.csv", "id,name\n", mtime=1_700_000_100)  # a new version: the header alone
    assert lake.process().ok
    assert lake.rows("SELECT id FROM t ORDER BY id") == [(3,)]


def test_empty_json_lines_json_array_and_parquet_load_nothing(make_lake, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = make_lake(
        [
            wf("j", write={"table": "j"}, retry={"max_attempts": 1}),
            wf("p", write={"table": "p"}, retry={"max_attempts": 1}),
        ]
    )
    lake.land("j/a.jsonl", '{"id": 1}\n')
    lake.land("j/empty.jsonl", b"")
    lake.land("j/blank.jsonl", b"\n \n")
    lake.land("j/none.json", b" [ ] ")
    lake.land("j/bad-empty.json", b"\n")  # an empty JSON document is not valid JSON: it fails, naming the file
    (lake.landing / "p").mkdir()
    pq.write_table(pa.table({"id": pa.array([1], pa.int64())}), lake.landing / "p" / "a.parquet")
    pq.write_table(pa.table({"other": pa.array([], pa.string())}), lake.landing / "p" / "none.parquet")
    lake.process()
    st = lake.status()
    assert st.pop("j/bad-empty.json") == "dead"
    assert set(st.values()) <= {"succeeded", "skipped"}
    assert [n for n, _ in lake.pipeline.table("j").schema if not n.startswith("_")] == ["id"]
    assert [n for n, _ in lake.pipeline.table("p").schema if not n.startswith("_")] == ["id"]
    assert "the file is empty" in lake.pipeline.runs(key="j/bad-empty.json")[0].error


def _ragged(extra: bool) -> str:
    rows = "".join(f"{i},n{i}\n" for i in range(1, 201))
    return "id,name\n" + rows + ("201,x,extra\n" if extra else "201\n") + "202,y\n"


@pytest.mark.parametrize("extra", [True, False], ids=["extra-field", "missing-field"])
def test_ragged_csv_fails_with_line_and_reason_not_garbage(make_lake, extra):
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})])
    lake.land("t/ragged.csv", _ragged(extra))
    lake.land("t/good.csv", "id,name\n1000,z\n")
    lake.process()
    assert lake.status() == {"t/ragged.csv": "dead", "t/good.csv": "succeeded"}
    err = lake.pipeline.runs(key="t/ragged.csv")[0].error
    assert "`t/ragged.csv` line 202" in err and f"found {3 if extra else 1}" in err, err
    assert [n for n, _ in lake.pipeline.table("t").schema if not n.startswith("_")] == ["id", "name"]


@pytest.mark.parametrize("extra", [True, False], ids=["extra-field", "missing-field"])
def test_ragged_csv_row_quarantined_with_bad_rows_quarantine(make_lake, extra):
    lake = make_lake([wf("t", read={"format": "csv", "bad_rows": "quarantine"}, retry={"max_attempts": 1})])
    lake.land("t/ragged.csv", _ragged(extra))
    assert lake.process().ok
    assert lake.rows("SELECT count(*), min(id), max(id) FROM t") == [(201, 1, 202)]
    assert lake.rows("SELECT _line FROM quarantine.t") == [(202,)]
    assert [n for n, _ in lake.pipeline.table("t").schema if not n.startswith("_")] == ["id", "name"]


def test_few_rows_some_ragged(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})])
    lake.land("t/few.csv", b"\n\nid,name\n1,a\n2\n3,c\n")
    lake.process()
    run = lake.pipeline.runs(key="t/few.csv")[0]
    assert run.status == "dead" and "`t/few.csv` line 5" in run.error, run.error


def test_consistent_files_keep_their_detected_dialects(make_lake):
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1})])
    lake.land("t/semi.csv", "a;b\n1,5;2,5\n3,1;4,2\n")  # decimal commas
    lake.land("t/tab.csv", "name, first\tage\nbob\t3\n")
    lake.land("t/quoted.csv", 'id,"name, full"\n1,"a, b"\n2,"c, d"\n')
    lake.land("t/one.csv", "note\nhello, world\nbye\n")
    assert lake.process().ok
    cols = [n for n, _ in lake.pipeline.table("t").schema if not n.startswith("_")]
    assert sorted(cols) == sorted(["a", "b", "name, first", "age", "id", "name, full", "note"])


# --- compressed files -----------------------------------------------------------------------------------------


def _compress(kind: str, data: bytes, member: str = "data.csv") -> bytes:
    import bz2
    import gzip
    import io
    import lzma
    import zipfile

    import zstandard

    if kind == "zip":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(member, data)
        return buf.getvalue()
    return {
        "gzip": gzip.compress,
        "zstd": zstandard.ZstdCompressor().compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
    }[kind](data)


SUFFIX = {"gzip": ".gz", "zstd": ".zst", "bz2": ".bz2", "xz": ".xz", "zip": ".zip"}
CSV_BODY = "id,name,price\n1,ä,2.5\n2,b,3.5\n".encode()


@pytest.mark.parametrize("kind", list(SUFFIX))
def test_compressed_files_load_by_extension_and_by_magic_bytes(make_lake, kind):
    lake = make_lake(
        [
            wf("c", retry={"max_attempts": 1}),  # format from the name: `a.csv.gz` is CSV
            wf("m", read={"format": "csv"}, retry={"max_attempts": 1}),  # misnamed: the bytes tell
            wf("j", retry={"max_attempts": 1}),
        ]
    )
    lake.land(f"c/a.csv{SUFFIX[kind]}", _compress(kind, CSV_BODY))
    lake.land("m/a.csv", _compress(kind, CSV_BODY))
    lake.land(f"j/a.jsonl{SUFFIX[kind]}", _compress(kind, b'{"id": 1, "tags": ["x"]}\n{"id": 2, "tags": []}\n'))
    summary = lake.process()
    assert summary.ok, [o.error for o in summary.outcomes]
    for table in ("c", "m"):
        assert lake.rows(f"SELECT id, name, price FROM {table} ORDER BY id") == [(1, "ä", 2.5), (2, "b", 3.5)]
        assert dict(lake.pipeline.table(table).schema)["price"] == "double"
    assert lake.rows("SELECT id, len(tags) FROM j ORDER BY id") == [(1, 1), (2, 0)]


def test_compressed_parquet_and_utf16_and_ragged(make_lake):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = make_lake([wf("p", retry={"max_attempts": 1}), wf("c", read={"format": "csv"}, retry={"max_attempts": 1})])
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2]}), buf)
    lake.land("p/a.parquet.xz", _compress("xz", buf.getvalue()))
    lake.land("c/utf16.csv.bz2", _compress("bz2", "id,name\n1,ü\n".encode("utf-16")))
    lake.land("c/ragged.csv.gz", _compress("gzip", _ragged(True).encode()))
    lake.process()
    assert lake.rows("SELECT sum(id) FROM p") == [(3,)]
    assert lake.rows("SELECT name FROM c") == [("ü",)]
    err = lake.pipeline.runs(key="c/ragged.csv.gz")[0].error
    assert "`c/ragged.csv.gz` line 202" in err, err


def test_compression_option_and_what_cannot_be_read(make_lake):
    import gzip

    lake = make_lake(
        [
            wf("declared", read={"format": "csv", "compression": "gzip"}, retry={"max_attempts": 1}),
            wf("plain", read={"format": "csv", "compression": "none"}, retry={"max_attempts": 1}),
            wf("bad", read={"format": "csv"}, retry={"max_attempts": 1}),
        ]
    )
    lake.land("declared/a.dat", gzip.compress(b"id\n1\n"))
    lake.land("plain/a.csv.gz", b"id\n2\n")  # named .gz, but plain text: `compression: none` says so
    lake.land("bad/two.zip", _two_member_zip())
    big = b"id,v\n" + b"".join(f"{i},{i * 7919 % 10007}\n".encode() for i in range(50_000))
    for kind in ("gzip", "zstd", "bz2", "xz"):  # cut short: never the rows before the cut
        whole = _compress(kind, big)
        lake.land(f"bad/cut.csv{SUFFIX[kind]}", whole[: len(whole) // 2])
    lake.land("bad/a.csv.lz4", b"\x04\x22\x4d\x18" + b"\x00" * 20)
    lake.land("bad/notgzip.csv.gz", b"id\n1\n")  # named .gz, not gzip: read as it is
    lake.process()
    assert lake.rows("SELECT id FROM declared") == [(1,)]
    assert lake.rows("SELECT id FROM plain") == [(2,)]
    errors = {r.file_key: r.error for r in lake.pipeline.runs(status="dead")}
    assert errors["bad/two.zip"].startswith(
        "`bad/two.zip`: a zip archive must hold exactly one file; found 2"  # named by its key, not a local path
    ), errors["bad/two.zip"]
    for kind in ("gzip", "zstd", "bz2", "xz"):
        assert f"`bad/cut.csv{SUFFIX[kind]}`: not valid {kind} data" in errors[f"bad/cut.csv{SUFFIX[kind]}"]
    assert "compressed with lz4, which landfall does not read" in errors["bad/a.csv.lz4"]
    assert lake.rows("SELECT id FROM bad") == [(1,)]


def _two_member_zip() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.csv", "id\n1\n")
        z.writestr("b.csv", "id\n2\n")
    return buf.getvalue()


# --- encodings ------------------------------------------------------------------------------------------------

JAPANESE = "id,名前,住所\n1,山田太郎,東京都千代田区\n2,佐藤花子,大阪府大阪市\n3,ヤマダ ハナコ,北海道札幌市\n"
FRENCH = "id,nom,ville\n1,Noël,Besançon\n2,Françoise,Orléans\n3,Chloé,Nîmes\n4,Jérôme,Fréjus\n"


def test_undeclared_encodings_are_detected_and_recorded_in_the_run(make_lake):
    """Shift-JIS without a declaration came out as cp1252 mojibake; now the detector tells it, and the run says
    which encoding it read and how sure it was (`runs --json` `encoding`)."""
    lake = make_lake([wf("t", read={"format": "csv"}, retry={"max_attempts": 1}), wf("d", read={"encoding": "cp1252"})])
    lake.land("t/sjis.csv", JAPANESE.encode("shift_jis"))
    lake.land("t/euc.csv", JAPANESE.replace("1,", "11,").encode("euc_jp"))
    lake.land("t/french.csv", FRENCH.encode("cp1252"))
    lake.land("t/utf8.csv", "id,名前\n9,ü\n".encode())
    lake.land("d/a.csv", FRENCH.encode("cp1252"))
    summary = lake.process()
    assert summary.ok, [o.error for o in summary.outcomes]
    names = {r[0] for r in lake.rows("SELECT 名前 FROM t WHERE 名前 IS NOT NULL")}
    assert {"山田太郎", "佐藤花子", "ヤマダ ハナコ", "ü"} <= names
    assert {r[0] for r in lake.rows("SELECT nom FROM t WHERE nom IS NOT NULL")} == {
        "Noël",
        "Françoise",
        "Chloé",
        "Jérôme",
    }
    got = {r.file_key: r.to_json()["encoding"] for r in lake.pipeline.runs(limit=None)}
    assert got["t/sjis.csv"]["encoding"] in ("cp932", "shift_jis") and got["t/sjis.csv"]["how"] == "detected"
    assert got["t/euc.csv"]["encoding"].startswith("euc") and 0 < got["t/euc.csv"]["confidence"] <= 1
    assert got["t/french.csv"]["encoding"] == "cp1252"
    assert got["t/utf8.csv"] == {"encoding": "utf-8", "confidence": 1.0, "how": "utf-8"}
    assert got["d/a.csv"] == {"encoding": "cp1252", "confidence": 1.0, "how": "declared"}


def test_a_lone_latin_byte_is_not_taken_for_shift_jis(make_lake):
    """`©` alone (0xA9) is a half-width katakana in Shift-JIS; a detector guessed cp932 for such a file,
    which then loaded `ｩ` (the corpus's frictionless/latin1.csv)."""
    lake = make_lake([wf("t", read={"format": "csv"})])
    lake.land("t/latin1.csv", b"id,name\n1,english\n2,\xa9\n")
    assert lake.process().ok
    assert lake.rows("SELECT name FROM t ORDER BY id") == [("english",), ("©",)]


def test_a_few_latin_bytes_are_not_taken_for_another_code_page(make_lake):
    """A lone `é` (0xE9) reads as cleanly in dozens of code pages, which a detector listed by name: the
    first was Urdu's cp1006, which loaded `ﻠ`; `Łódź` in cp1250 loaded as `гґdЯ` (cp1125). Among code pages that
    read a sample equally cleanly, a Latin one is taken. A Latin byte before a letter is no Big5 character (`São`
    loaded as `S緌`, `°C` as `蚓`), and `£` beside a space no Polish `Ł`."""
    lake = make_lake([wf("t", read={"format": "csv"}), wf("j")])
    lake.land("t/a.csv", b"id,name\n1,caf\xe9\n")
    lake.land("t/b.csv", "id,name\n2,Łódź\n".encode("cp1250"))
    signs = ("½ price ¼", "© 2024 ® ™")  # signs alone: chardet took them for cp1251's `Ѕ price ј`, cp866's `й 2024 о`
    signs += ("ab˜cd",)  # ISO 8859-2's C1 control character 0x98, to chardet
    for i, text in enumerate(("São Paulo", "25 °C", "£ 5", *signs), start=4):
        lake.land(f"t/c{i}.csv", f"id,name\n{i},{text}\n".encode("cp1252"))
    lake.land("j/a.jsonl", b'{"id": 3, "name": "\xe9"}\n')
    assert lake.process().ok
    got = lake.rows("SELECT id, name FROM t ORDER BY id")
    assert got == [(1, "café"), (2, "Łódź"), (4, "São Paulo"), (5, "25 °C"), (6, "£ 5"), *enumerate(signs, start=7)]
    assert lake.rows("SELECT name FROM j") == [("é",)]


# short files in their languages' code pages, as old systems export them: a handful of rows each
SHORT_FILES = {
    "el": ("cp1253", ["Παπαδόπουλος", "Οικονόμου", "Αθήνα", "Θεσσαλονίκη", "Ηράκλειο"]),
    "he": ("cp1255", ["כהן", "לוי", "מזרחי", "ירושלים", "חיפה"]),
    "ru": ("koi8_r", ["Иванов", "Смирнова", "Москва", "Новосибирск", "Казань"]),
    "tr": ("cp1254", ["Yılmaz", "Şahin", "Öztürk", "Doğan", "Kılıç"]),
    "cs": ("cp1250", ["Dvořák", "Černý", "Procházka", "Růžička", "Němec"]),
    "lt": ("cp1257", ["Klaipėda", "Šiauliai", "Panevėžys", "Marijampolė", "Kėdainiai"]),
    "es": ("cp1252", ["Muñoz", "Núñez", "Peña", "Ibáñez", "Logroño"]),
    "fr": ("cp1252", ["Hélène", "Gérard", "Molière", "Joël", "Françoise"]),
    "it": ("cp1252", ["Città", "Perché", "Niccolò", "Cantù", "Forlì"]),
    "cs-2": ("cp1250", ["Dvořák", "Černý"]),  # (ranked Turkish first: `Dvoøák`, `Èernı`)
}


def test_short_files_in_their_code_pages_read_as_written(make_lake):
    """Five rows of Greek (cp1253), Hebrew (cp1255), Russian (KOI8-R), Turkish (cp1254), Czech (cp1250) or
    Lithuanian (cp1257) loaded as cp1252 mojibake (`Ðáðáäüðïõëïò`, `Yýlmaz`, `Dvoøák`) or as another script
    (Hebrew as Thai, KOI8-R as Shift-JIS), without a word; Spanish, French and Italian stay cp1252 (not cp1250's
    `Muńoz`, not cp1251's `Cittа`)."""
    lake = make_lake([wf("t", read={"format": "csv"})])
    for lang, (codec, names) in SHORT_FILES.items():
        rows = "".join(f"{i},{name}\n" for i, name in enumerate(names))
        lake.land(f"t/{lang}.csv", f"id,name\n{rows}".encode(codec))
    assert lake.process().ok
    got: dict[str, list[str]] = {}
    for key, name in lake.rows("SELECT _source_file, name FROM t ORDER BY _source_file, id"):
        got.setdefault(key.removeprefix("t/").removesuffix(".csv"), []).append(name)
    assert got == {lang: names for lang, (_, names) in SHORT_FILES.items()}
    read = {r.file_key: r.to_json()["encoding"]["encoding"] for r in lake.pipeline.runs(limit=None)}
    assert read["t/tr.csv"] == "cp1254" and read["t/ru.csv"] == "koi8-r" and read["t/es.csv"] == "cp1252"


def test_a_utf8_file_with_a_latin_line_fails_naming_it_not_as_mojibake(make_lake):
    """A UTF-8 file with one line appended from a Latin-1 file (`caf\\xe9`) loaded whole in another code page, every
    UTF-8 character of every row two characters (`Zoë` as `ZoĂ«`), without a word. Most of its characters beyond
    ASCII being UTF-8's, it is read as UTF-8 and fails naming the line of the byte that is not (as a file whose
    such byte lies past the sample always did); declared, it loads."""
    lake = make_lake([wf("t", retry={"max_attempts": 1}), wf("d", read={"encoding": "latin-1"})])
    body = "id,name\n" + "".join(f"{i},Zoë Müller\n" for i in range(1, 21))
    lake.land("t/a.csv", body.encode() + b"21,caf\xe9\n")
    # a JSON document so (before, also past the sample: `UnicodeDecodeError: 'utf-8' codec can't decode ...`)
    lake.land("t/b.json", '[{"name": "Zoë Müller"},\n'.encode() + b'{"name": "caf\xe9"}]')
    lake.land("d/a.csv", "id,name\n1,café\n2,Zoë\n".encode("latin-1"))
    lake.process()
    errors = {r.file_key: r.error or "" for r in lake.pipeline.runs() if r.status == "dead"}
    assert errors["t/a.csv"].startswith("`t/a.csv` line 22: "), errors
    assert "not valid UTF-8" in errors["t/a.csv"] and "read.encoding" in errors["t/a.csv"], errors
    assert errors["t/b.json"].startswith("`t/b.json` line 2: byte 40 is not valid utf-8"), errors
    assert lake.rows("SELECT name FROM d ORDER BY id") == [("café",), ("Zoë",)]


@pytest.mark.slow  # (6 s: a read per column)
def test_late_values_in_many_columns_load(make_lake):
    """Past the type sample, a value that does not fit makes its column a type that holds it, one read per
    column: a file with such values in more than 19 columns went dead (`read 20 times without settling how to
    read it (last plan: ReadPlan(...))`)."""
    lake = make_lake([wf("w", retry={"max_attempts": 1})])
    cols = [f"c{i}" for i in range(24)]
    rows = [",".join(str(r * 10 + i) for i in range(24)) for r in range(24_000)]
    late = rows[:22_000] + [",".join(f"x{i}" for i in range(24))] + rows[22_000:]
    lake.land("w/a.csv", ",".join(cols) + "\n" + "\n".join(late) + "\n")
    summary = lake.process()
    assert summary.ok, [o.error for o in summary.outcomes]
    assert lake.rows("SELECT count(*), count(DISTINCT typeof(c0)), max(c23) FROM w") == [(24_001, 1, "x23")]


def test_a_wide_file_does_not_hold_back_the_small_files_of_its_batch(make_lake):
    """A CSV of 10,000 columns takes seconds to read; the small files batched with it commit first, then it does
    (before: every file of the batch waited for it)."""
    lake = make_lake([wf("w", read={"format": "csv"})], workers=1)
    cols = 10_000
    header = ",".join(f"c{i}" for i in range(cols))
    lake.land("w/wide.csv", header + "\n" + ",".join("1" for _ in range(cols)) + "\n", mtime=1)
    for i in range(6):
        lake.land(f"w/small{i}.csv", f"c0,c1\n{i},2\n", mtime=2 + i)
    assert lake.process().ok
    runs = {r.file_key: r for r in lake.pipeline.runs(limit=None)}
    wide = runs.pop("w/wide.csv")
    assert all(r.status == "succeeded" for r in runs.values())
    assert max(r.finished_at for r in runs.values()) <= wide.started_at + (wide.finished_at - wide.started_at) / 2
    assert lake.rows("SELECT count(*), count(c9999) FROM w") == [(7, 1)]


TOO_DEEP = "invalid JSON: nested deeper than 127 levels, the most the JSON reader reads"


@pytest.mark.parametrize(
    "fmt,body", [("json", "[" * 10_000 + "]" * 10_000), ("jsonl", '{"a": ' + "[" * 10_000 + "]" * 10_000 + "}\n")]
)
def test_json_nested_ten_thousand_deep_says_so(make_lake, fmt, body):
    lake = make_lake([wf("d", read={"format": fmt}, retry={"max_attempts": 1})])
    lake.land(f"d/deep.{fmt}", body)
    assert not lake.process().ok
    (run,) = lake.pipeline.runs(limit=None)
    assert (
        run.error
        == f"`d/deep.{fmt}` line 1: invalid JSON: nested deeper than 127 levels, the most the JSON reader reads"
    )
    assert "Recursion" not in run.error


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_nested_as_deep_as_the_reader_reads_loads_and_deeper_names_its_line(make_lake, monkeypatch, fmt):
    """Records nested 127 levels deep (the most DuckDB's reader reads), holding a number of more digits than a
    double and a key twice in one object (read by Python, written again): they load, and landfall never changes the
    process's recursion limit (it is every thread's: two workers each raising and restoring it left it raised for
    good, and a later file's error named another limit). One level deeper fails naming its line (before: DuckDB's
    `JSON exceeds maximum recursion depth of 128`, naming none)."""

    def refuse(limit):
        raise AssertionError(f"sys.setrecursionlimit({limit})")

    monkeypatch.setattr("sys.setrecursionlimit", refuse)

    def record(levels: int) -> str:
        deep = "[" * (levels - 1) + "1" + "]" * (levels - 1)
        return '{"id": 12345678901234567890123, "a": ' + deep + ', "b": 1, "b": 2}'

    def body(*records: str) -> str:
        return "[" + ",\n".join(records) + "]" if fmt == "json" else "".join(r + "\n" for r in records)

    lake = make_lake([wf("d", read={"format": fmt}, retry={"max_attempts": 1})])
    import os

    L = int(os.environ.get("LV", 127))
    lake.land(f"d/deep.{fmt}", body(record(L), record(L)), mtime=1)
    assert lake.process().ok, [r.error for r in lake.pipeline.runs(limit=None)]
    assert lake.rows("SELECT id::VARCHAR, b FROM d") == [("12345678901234567890123", 2)] * 2
    lake.land(f"d/deeper.{fmt}", body(record(127), record(128)), mtime=2)
    assert not lake.process().ok
    (run,) = [r for r in lake.pipeline.runs(limit=None) if r.file_key == f"d/deeper.{fmt}"]
    assert (
        run.error
        == f"`d/deeper.{fmt}` line 2: invalid JSON: nested deeper than 127 levels, the most the JSON reader reads"
    )


def test_a_quoted_value_spanning_lines_past_the_sniffers_sample_loads(make_lake):
    """No quote in the first 120,000 rows (the sample the dialect comes from), then a quoted value over two lines:
    the file is read again with RFC 4180 quotes (before: `line 120002: Expected Number of Columns: 4 Found: 1`)."""
    lake = make_lake([wf("q", read={"format": "csv"}, retry={"max_attempts": 1})])
    rows = [f"{i},name{i},{i % 7},x" for i in range(140_000)]
    rows[120_000] = '120000,"two\nlines",1,x'
    lake.land("q/a.csv", "id,name,n,t\n" + "\n".join(rows) + "\n")
    assert lake.process().ok, lake.pipeline.runs(limit=None)[0].error
    assert lake.rows("SELECT count(*), sum(id) FROM q") == [(140_000, sum(range(140_000)))]
    assert lake.rows("SELECT name FROM q WHERE id = 120000") == [("two\nlines",)]


def test_a_ragged_row_still_fails_naming_its_line_after_the_quoted_retry(make_lake):
    lake = make_lake([wf("q", read={"format": "csv"}, retry={"max_attempts": 1})])
    rows = [f"{i},name{i},{i % 7},x" for i in range(30_000)]
    rows[25_000] = "25000,short"
    lake.land("q/a.csv", "id,name,n,t\n" + "\n".join(rows) + "\n")
    assert not lake.process().ok
    err = lake.pipeline.runs(limit=None)[0].error
    assert err.startswith("`q/a.csv` line 25002:"), err


def test_a_file_that_is_not_text_fails_saying_what_it_is(make_lake):
    """A Parquet file, a PDF, an Excel workbook or random bytes landed as `.csv` or `.json` failed with a ragged
    line somewhere in it (`line 3: expected 2 fields (as in the header), found 5`); now each fails alone saying
    what it is. Text in UTF-16 and a text file with a stray NUL are still read."""
    import io
    import os
    import random
    import zipfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    lake = make_lake([wf("t", write={"table": "t"}, retry={"max_attempts": 1})])
    parquet = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3], "name": ["x", "y", "z"]}), parquet)
    lake.land("t/parquet.csv", parquet.getvalue())
    lake.land("t/parquet.json", parquet.getvalue())
    lake.land("t/report.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Length 9 >>\nstream\n" + bytes(range(256)))
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    lake.land("t/sheet.csv", workbook.getvalue())
    noise = random.Random(7).randbytes(5000)
    lake.land("t/noise.csv", b"id,name\n1,a\n" + noise)
    lake.land("t/wide.csv", "id,name\n1,ü\n".encode("utf-16-le"))
    lake.land("t/nul.csv", b"id,name\n2,b\x00c\n")
    lake.land("t/good.csv", "id,name\n3,d\n")
    lake.process()
    errors = {r.file_key: r.error for r in lake.pipeline.runs(status="dead")}
    assert errors.pop("t/parquet.csv") == (
        "`t/parquet.csv`: a Parquet file, not CSV text; name it `.parquet` or set `read: {format: parquet}`"
    )
    assert errors.pop("t/parquet.json").startswith("`t/parquet.json`: a Parquet file, not JSON text;")
    assert errors.pop("t/report.csv").startswith("`t/report.csv`: a PDF document, not CSV text;")
    assert errors.pop("t/sheet.csv").startswith("`t/sheet.csv`: an Excel workbook, not an archive of one data file;")
    noisy = errors.pop("t/noise.csv")
    assert noisy.startswith("`t/noise.csv` line 3: binary data, not CSV text: byte ") and "control characters" in noisy
    assert errors == {}
    assert lake.rows("SELECT id, name FROM t ORDER BY id") == [(1, "ü"), (2, "b\x00c"), (3, "d")]
    assert os.path.exists(lake.landing / "t" / "noise.csv")  # nothing lost: the file stays where it landed


def test_a_json_value_of_another_kind_a_cast_cannot_take_names_its_line(make_lake):
    """Values of several kinds in a JSON column, one a number a `cast` to a timestamp cannot take: DuckDB's message
    then leaves the column off the line that names the value (`Unable to cast '5' to TIMESTAMP WITH TIME ZONE`),
    and the value went unrecognized: no line."""
    lake = make_lake([wf("o", transform=[{"cast": {"ts": "timestamptz"}}], retry={"max_attempts": 1})])
    records = ['{"id": 1, "ts": "2024-01-02T03:04:05Z"}', '{"id": 2, "ts": "2024-13-45"}', '{"id": 3, "ts": 5}']
    lake.land("o/a.jsonl", "\n".join(records) + "\n")
    lake.process()
    (run,) = lake.pipeline.runs(key="o/a.jsonl")
    assert run.error == "`o/a.jsonl` line 3: value `5` of column `ts` is not a valid TIMESTAMPTZ", run.error


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_a_partition_value_too_long_for_a_folder_name_fails_its_file_naming_the_line(make_lake, fmt, engine):
    """A partition value whose folder name passes the file system's 255 bytes: the file was retried three times
    as `File name too long (not the file's fault)` and dead-lettered, naming neither the line nor the value. Now
    it fails at once, naming both, and each way out it names works."""
    settings = {}
    if engine == "spark":
        from spark_helpers import SPARK, java_or_skip

        java_or_skip()
        settings = {"engine": "spark", "spark": SPARK}
    write = {"table": "t", "format": fmt, "partition_by": ["region"]}
    body = "id,region\n1,eu\n2,us\n3," + "é" * 50 + "\n4," + "x" * 300 + "\n"
    lake = make_lake([wf("t", read={"format": "csv"}, write=write, retry={"max_attempts": 3})], **settings)
    lake.land("t/a.csv", body)
    assert not lake.process().ok
    (run,) = lake.pipeline.runs(key="t/a.csv")  # once: the file's fault, not retried
    assert run.status == "dead"
    assert run.error.startswith("`t/a.csv` line 4: partition column `region` holds a value of 50 characters"), run.error
    assert "a file name has at most 255 here" in run.error and "left(region, 41)" in run.error
    rule = {"expect": "length(region) <= 41", "action": "quarantine"}
    lake.close()
    for fix in ({"validate": [rule]}, {"transform": [{"compute": {"region": "left(region, 41)"}}]}):
        other = make_lake([wf("t", read={"format": "csv"}, write=write, **fix)], **settings)
        other.land("t/a.csv", body)
        assert other.process().ok
        if "validate" in fix:
            assert other.rows("SELECT id FROM t ORDER BY id") == [(1,), (2,)]
            assert other.rows("SELECT id, _line FROM quarantine.t ORDER BY id") == [(3, 4), (4, 5)]
        else:
            assert other.rows("SELECT id, length(region) FROM t ORDER BY id") == [(1, 2), (2, 2), (3, 41), (4, 41)]
        other.close()


def test_a_time_partition_of_a_column_the_table_holds_as_text_says_to_load_the_table_again(make_lake):
    """A table whose `d` is text (declared so, or made so by a file of empty fields before landfall typed such a
    column as a timestamp): a later file's dates there are text too, which `year(d)` refuses. The message named
    a declaration, which did not help (the table's type wins): it now says the table holds the column so, and
    that `tables reload` loads it again under the new declaration."""
    write = {"table": "p", "partition_by": ["year(d)"]}
    lake = make_lake([wf("p", read={"format": "csv", "types": {"d": "string"}}, write=write)])
    lake.land("p/1.csv", "d,v\n,1\n", mtime=1_700_000_000)
    assert lake.process().ok
    lake.close()
    again = Lake(lake.root, [wf("p", read={"format": "csv", "types": {"d": "timestamp"}}, write=write)])
    try:
        again.land("p/2.csv", "d,v\n2026-02-09,2\n", mtime=1_700_000_010)
        again.process()
        (run,) = [r for r in again.pipeline.runs() if r.file_key == "p/2.csv"]
        assert run.status == "dead", run.status
        assert (
            "partition `year(d)` takes a date or a timestamp, but table `p` holds `d` as VARCHAR (`2026-02-09 "
            "00:00:00`), as its earlier files made it; make it one: `read: {types: {d: timestamp}}`"
        ) in run.error
        assert run.error.endswith(", and load the table again: `landfall tables reload p`"), run.error
    finally:
        again.close()
