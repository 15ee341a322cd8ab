"""Third-party corpus sweeps: every tricky CSV either loads or fails cleanly, never crashes or hangs;
csv-spectrum loads to its expected values; non-UTF-8 files come out as correct UTF-8 strings.

The corpus is `shared/corpus` beside the repository (see its MANIFEST.md); the tests skip without it.
`pytest -rA` (or `-s`) shows the per-sweep counts; they are also printed in the terminal summary section
"landfall corpus summary".
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from corpus_helpers import (
    CORPUS,
    LINEAGE,
    corpus_dir,
    spectrum_files,
    sweep,
    tricky_csv_files,
)

from conftest import end_of_run_note

pytestmark = [pytest.mark.corpus, pytest.mark.slow]


def _wf(name: str, match: str, table: str, **read) -> dict:
    return {
        "name": name,
        "match": match,
        "read": {"format": "csv", **read},
        "write": {"table": table},
        "retry": {"max_attempts": 1},
    }


@pytest.fixture(scope="module")
def sweep_files() -> list[tuple[str, Path]]:
    """tricky-csv (every data file, fuzz inputs included) and csv-spectrum/csvs, as (corpus path, path)."""
    return tricky_csv_files() + spectrum_files()


# --- 0. the harness itself: it must see a hang and a crash, and pin each on its file ----------------------


@pytest.mark.timeout(300)
def test_harness_pins_hangs_and_crashes_on_their_files(tmp_path):
    """Faults injected into the child (corpus_helpers._install_faults): a hang in the engine, a hard abort of
    the process, an unexpected exception inside a run, and one escaping the worker loop. All files land in
    one batch first, so each fault must be found again by running the files alone."""
    files = []
    for name, body in [
        ("ok1", "a,b\n1,2\n"),
        ("ok2", "a,b\n3,4\n"),
        ("ok3", "x;y\nu;v\n"),
        ("hang", "a,b\n5,6\n"),
        ("abort", "a,b\n7,8\n"),
        ("raise", "a,b\n9,10\n"),
        ("escape", "a,b\n11,12\n"),
        ("bad", 'a,b\n"unterminated,1\n'),
    ]:
        path = tmp_path / "src" / f"{name}.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_text(body)
        files.append((f"c/{name}.csv", name, path))
    res = sweep(
        "harness",
        files,
        tmp_path / "lakes",
        lambda keys: [_wf("c", "c/", "c")],
        lease_timeout=3,
        file_timeout=3,
        faults={"hang": "hang", "abort": "abort", "raise": "raise", "escape": "escape"},
    )
    print(res.summary())
    got = {r.source: r.category for r in res.results.values()}
    assert got == {
        "ok1": "loaded",
        "ok2": "loaded",
        "ok3": "loaded",
        "hang": "hung",
        "abort": "crashed",
        "raise": "crashed",
        "escape": "crashed",
        "bad": "failed_cleanly",
    }, res.summary()
    assert "SIGABRT" in res.results["c/abort.csv"].detail
    assert "RuntimeError: injected fault" in res.results["c/raise.csv"].traceback
    assert not res.anomalies, res.anomalies


# --- 1. the sweep: load or fail cleanly, never crash or hang --------------------------------------------------


@pytest.fixture(scope="module")
def batched_sweep(sweep_files, tmp_path_factory):
    """All files under one prefix, one workflow, one table: landfall batches them (one engine query for many
    files, split per file on failure), and later files meet the table schema of earlier ones."""
    files = [(f"c/{rel}", rel, p) for rel, p in sweep_files]
    res = sweep(
        "batched (one workflow, one table)",
        files,
        tmp_path_factory.mktemp("corpus-batched"),
        lambda keys: [_wf("sweep", "c/", "sweep")],
    )
    end_of_run_note("landfall corpus summary", res.summary())
    return res


@pytest.fixture(scope="module")
def isolated_sweep(batched_sweep, tmp_path_factory):
    """Every file that did not load in the batched sweep, again through its own workflow and table, so that
    its verdict depends on that file alone (in the shared table a file can fail on the column types of
    earlier files, and then never reaches the Parquet writer)."""
    todo = sorted(r.source for r in batched_sweep.results.values() if r.category not in ("loaded", "skipped"))
    files = [(f"i/{n:04d}/{rel}", rel, CORPUS / rel) for n, rel in enumerate(todo)]

    def workflows(keys):
        return [_wf(f"f{k[2:6]}", k[:7], f"t{k[2:6]}") for k in keys]

    res = sweep(
        f"isolated (the {len(files)} files that did not load batched, each with its own workflow and table)",
        files,
        tmp_path_factory.mktemp("corpus-isolated"),
        workflows,
    )
    end_of_run_note("landfall corpus summary", res.summary())
    return res


@pytest.fixture(scope="module")
def tolerant_sweep(isolated_sweep, tmp_path_factory):
    """The files that failed alone, once more with `bad_rows: quarantine`: rows that cannot be parsed are set
    aside and the rest load; a file still fails when nothing in it can be read as rows."""
    todo = sorted(r.source for r in isolated_sweep.results.values() if r.category not in ("loaded", "skipped"))
    files = [(f"q/{n:04d}/{rel}", rel, CORPUS / rel) for n, rel in enumerate(todo)]

    def workflows(keys):
        return [_wf(f"q{k[2:6]}", k[:7], f"q{k[2:6]}", bad_rows="quarantine") for k in keys]

    res = sweep(
        f"tolerant (the {len(files)} files that failed alone, with `bad_rows: quarantine`)",
        files,
        tmp_path_factory.mktemp("corpus-tolerant"),
        workflows,
    )
    end_of_run_note("landfall corpus summary", res.summary())
    return res


def _check_sweep(res, n_files: int) -> None:
    print()
    print(res.summary())
    assert len(res.results) == n_files, "every landed file must end with a verdict"
    bad = sorted(res.bad(), key=lambda r: r.key)
    lines = [f"{r.category}: {r.source}: {r.detail[:400]}" for r in bad]
    assert not bad, f"{len(bad)} file(s) crashed, hung or failed without a clean error:\n" + "\n".join(lines)
    assert not res.anomalies, "\n".join(res.anomalies)


@pytest.mark.timeout(900)  # the sweep itself cuts off hangs (see corpus_helpers); this only backs it up
def test_sweep_batched_loads_or_fails_cleanly(batched_sweep, sweep_files):
    _check_sweep(batched_sweep, len(sweep_files))


@pytest.mark.timeout(900)
def test_sweep_isolated_loads_or_fails_cleanly(isolated_sweep, batched_sweep):
    _check_sweep(
        isolated_sweep, sum(1 for r in batched_sweep.results.values() if r.category not in ("loaded", "skipped"))
    )


@pytest.mark.timeout(900)
def test_sweep_tolerant_loads_or_fails_cleanly(tolerant_sweep, isolated_sweep):
    _check_sweep(
        tolerant_sweep, sum(1 for r in isolated_sweep.results.values() if r.category not in ("loaded", "skipped"))
    )


@pytest.mark.timeout(900)
def test_sweep_gives_every_file_its_own_run(batched_sweep, sweep_files):
    """Batching must not merge run records: one run per landed file, each with its own id."""
    run_ids = [r.run_id for r in batched_sweep.results.values() if r.run_id]
    assert len(run_ids) == len(set(run_ids))
    loaded = [r for r in batched_sweep.results.values() if r.category == "loaded"]
    assert loaded, "nothing loaded at all"
    assert all(r.rows_out is not None for r in loaded)


# --- 2. csv-spectrum values and 3. encodings ----------------------------------------------------------------

SPECTRUM_NAMES = sorted(p.stem for p in (CORPUS / "csv-spectrum" / "csvs").glob("*.csv")) or [
    "comma_in_quotes",
    "empty",
    "empty_crlf",
    "escaped_quotes",
    "json",
    "location_coordinates",
    "newlines",
    "newlines_crlf",
    "quotes_and_newlines",
    "simple",
    "simple_crlf",
    "utf8",
]

# (corpus path, Python codec that decodes it correctly, a value that must appear)
ENCODED = [
    ("tricky-csv/duckdb/encodings/latin1.csv", "latin-1", "José Álvarez"),
    ("tricky-csv/duckdb/encodings/utf16.csv", "utf-16", "José Álvarez"),
    ("tricky-csv/frictionless/latin1.csv", "latin-1", "©"),
    ("tricky-csv/messytables/utf-16le_encoded.csv", "utf-16", "Organisation_name"),
]


@pytest.fixture(scope="module")
def values_sweep(tmp_path_factory):
    """csv-spectrum read as strings (one workflow, batched), plus each encoding file in its own table."""
    corpus_dir("csv-spectrum")
    files = [(f"s/{Path(rel).name}", rel, p) for rel, p in spectrum_files()]
    for n, (rel, _codec, _v) in enumerate(ENCODED):
        files.append((f"e/{n}/{Path(rel).name}", rel, CORPUS / rel))

    def workflows(keys):
        wfs = [_wf("spectrum", "s/", "spectrum", all_strings=True)]
        wfs += [_wf(f"enc{n}", f"e/{n}/", f"enc{n}") for n in range(len(ENCODED))]
        return wfs

    res = sweep("csv-spectrum (all_strings) + encodings", files, tmp_path_factory.mktemp("corpus-values"), workflows)
    end_of_run_note("landfall corpus summary", res.summary())
    return res


def _pipeline(lake: Path):
    import landfall

    return landfall.Pipeline(landfall.load_settings(lake / "landfall.yaml"))


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _rows_of(res, key: str, table: str) -> tuple[list[str], list[tuple]]:
    r = res.results[key]
    assert r.category == "loaded", f"{r.source} did not load: {r.category}: {r.detail}"
    p = _pipeline(r.lake)
    try:
        return p.query(f"SELECT * FROM {table} WHERE _source_file = {_lit(key)}")
    finally:
        p.close()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", [n for n in SPECTRUM_NAMES if n != "location_coordinates"])
def test_spectrum_values(values_sweep, name):
    expected = json.loads((corpus_dir("csv-spectrum") / "json" / f"{name}.json").read_text(encoding="utf-8"))
    if isinstance(expected, dict):
        expected = [expected]
    want_cols = list(expected[0])
    cols, rows = _rows_of(values_sweep, f"s/{name}.csv", "spectrum")
    missing = [c for c in want_cols if c not in cols]
    assert not missing, f"{name}: columns {missing} missing; table columns are {cols}"
    idx = [cols.index(c) for c in want_cols]
    others = [i for i, c in enumerate(cols) if c not in want_cols and c not in LINEAGE]
    got = [tuple(row[i] for i in idx) for row in rows]
    want = [tuple(obj[c] for c in want_cols) for obj in expected]
    assert sorted(got, key=repr) == sorted(want, key=repr), (
        f"{name}: values differ (columns {want_cols}):\n got  {got!r}\n want {want!r}"
    )
    # columns of other files in the same (batched) table must be NULL for this file's rows
    stray = {cols[i]: row[i] for row in rows for i in others if row[i] is not None}
    assert not stray, f"{name}: values in columns the file does not have: {stray}"


def test_spectrum_location_coordinates_loads(values_sweep):
    cols, rows = _rows_of(values_sweep, "s/location_coordinates.csv", "spectrum")
    assert len(rows) == 1
    row = dict(zip(cols, rows[0], strict=True))
    assert row["Contact Phone Number"] == "2095257564"
    assert row["Cities"] == "Modesto" and row["Counties"] == "Stanislaus"
    assert '37.8"N' in row["Location Coordinates"]  # the bare quote inside an unquoted field is kept


def _expected_table(path: Path, codec: str) -> tuple[list[str], list[list[str]]]:
    """The file decoded with the right codec and parsed by Python's csv module: the oracle."""
    text = path.read_bytes().decode(codec).lstrip("\ufeff")
    rows = [r for r in csv.reader(io.StringIO(text, newline="")) if r]
    return rows[0], rows[1:]


@pytest.mark.parametrize(
    "n", range(len(ENCODED)), ids=[Path(r).parent.name + "/" + Path(r).name for r, _, _ in ENCODED]
)
def test_encoding_comes_out_as_utf8_strings(values_sweep, n):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rel, codec, must_have = ENCODED[n]
    header, body = _expected_table(CORPUS / rel, codec)
    key, table = f"e/{n}/{Path(rel).name}", f"enc{n}"
    cols, rows = _rows_of(values_sweep, key, table)
    user = [c for c in cols if c not in LINEAGE]
    assert user == header, f"{rel}: columns {user!r}, expected {header!r}"
    assert len(rows) == len(body), f"{rel}: {len(rows)} rows, expected {len(body)}"

    p = _pipeline(values_sweep.results[key].lake)
    try:
        tbl = p.table(table)
        files = [f.path for f in p.store.table_files(table)]
    finally:
        p.close()
    types = dict(tbl.schema)
    text_cols = [c for c in user if types[c] == "string"]
    assert text_cols, f"{rel}: no text column at all; catalog types {types}"
    # the Parquet files hold these columns as strings, never binary
    for f in files:
        schema = pq.read_schema(f"{tbl.location}/{f}")
        for c in text_cols:
            t = schema.field(c).type
            assert pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t), (
                f"{rel}: column `{c}` is {t} in {f}, expected a string type"
            )
    # every text value equals the correctly decoded one: no mojibake, no NULs, no replacement characters
    for c in text_cols:
        i, j = cols.index(c), header.index(c)
        got = sorted(str(row[i]) for row in rows if row[i] is not None)
        want = sorted(r[j] for r in body if j < len(r) and r[j] != "")
        assert got == want, f"{rel}: column `{c}` differs from the {codec} decoding"
        for v in got:
            assert "\x00" not in v and "\ufffd" not in v and "Ã" not in v and "Â" not in v, f"{rel}: {v!r}"
    values = set(header) | {str(v) for row in rows for v in row}
    assert must_have in values, f"{rel}: `{must_have}` not found"
