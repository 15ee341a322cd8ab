"""Generated loads of bad input checked against a model: random CSV or JSON Lines files whose rows may hold a value
their declared type cannot (`x`, `2.5` for an `int`), break a rule (`range`, `not_null`) or bring a new column,
landed a few at a time under a few names, into a Parquet or Delta table in `append` (`on_change: replace` or
`append`), `merge` or `overwrite` mode, under every schema policy, with `bad_rows: fail` or `quarantine`, by one
worker or two. After each load every row of each version that loaded is in the table or in the quarantine, as the
model says, never both, never lost; a file that fails names its line (it found two loads of the same bytes at once
leaving a Delta log the catalog disagreed with, a column that held only nulls refused under `freeze`, and a CSV
header alone read as a row)."""

from __future__ import annotations

import json
import random

import pytest

from conftest import wf

QS = ["", "5", "7", "99", "-3", "x", "2.5", "40"]  # `x` and `2.5` are no `int`; 99 and -3 break the range


def _json_q(text: str) -> object:
    return None if text == "" else "x" if text == "x" else float(text) if "." in text else int(text)


def _file(r: random.Random, ext: str, first_rid: int) -> tuple[str, list[tuple], bool]:
    """A file's text, its rows `(rid, q, t, p, e)` as written, and whether it has the new column `e`."""
    extra = r.random() < 0.25
    rows = [
        (first_rid + i, r.choice(QS), r.choice(["a", "a", ""]), r.choice(["1", "2"]), r.choice(["", "z"]) * extra)
        for i in range(r.randint(0, 4))
    ]
    if ext == "csv":
        head = "rid,q,t,p" + ",e" * extra + "\n"
        return head + "".join(",".join(map(str, row[: 4 + extra])) + "\n" for row in rows), rows, extra
    lines = [
        {"rid": rid, "q": _json_q(q), "t": t or None, "p": int(p), **({"e": e or None} if extra else {})}
        for rid, q, t, p, e in rows
    ]
    return "".join(json.dumps(line) + "\n" for line in lines), rows, extra


def _by_source(lake, table: str, ext: str) -> dict[str, set[int]]:
    """The rids a table holds, by source file; a quarantined row that could not be parsed by its `_raw`."""
    if table not in {t.name for t in lake.pipeline.tables()}:
        return {}
    cols, rows = lake.pipeline.query(f"SELECT * FROM {table}")
    out: dict[str, set[int]] = {}
    for row in rows:
        d = dict(zip(cols, row, strict=True))
        if d.get("rid") is None:
            raw = d["_raw"]
            d["rid"] = json.loads(raw)["rid"] if ext == "jsonl" else int(raw.split(",")[0])
        out.setdefault(d["_source_file"], set()).add(int(d["rid"]))
    return out


def check(make_lake, seed: int) -> None:
    r = random.Random(seed * 104729)
    fmt, mode = r.choice(["parquet", "delta"]), r.choice(["append", "merge", "overwrite"])
    ext, part = r.choice(["csv", "jsonl"]), r.choice([None, None, "p"])
    on_change = r.choice(["replace", "append"]) if mode == "append" else "replace"
    bad_rows, ranged, not_null = r.choice(["fail", "quarantine"]), r.random() < 0.5, r.random() < 0.5
    evolution = r.choice(["evolve", "evolve", "rescue", "freeze", "discard_row"])
    workers = r.choice([1, 1, 2])
    write: dict = {"table": "s", "format": fmt, "mode": mode, **({"keys": ["rid"]} if mode == "merge" else {})}
    if part:
        write["partition_by"] = [part]
    rules = [{"range": {"column": "q", "min": 0, "max": 50}, "action": "quarantine"}] * ranged
    rules += [{"not_null": ["t"], "action": "quarantine"}] * not_null
    read = {"types": {"q": "int", "rid": "int"}, "bad_rows": bad_rows}
    flow = wf("s", retry={"max_attempts": 1}, write=write, read=read, on_change=on_change)
    lake = make_lake([{**flow, "schema": {"evolution": evolution}, **({"validate": rules} if rules else {})}])
    cfg = (seed, fmt, mode, ext, part, on_change, bad_rows, ranged, not_null, evolution, workers)
    columns: set[str] | None = None  # the table's, as the model has them
    untyped = False  # whether the table's `e` has held only JSON nulls (no type yet)
    table: dict[str, set[int]] = {}  # the rids of each source file in the table, and in the quarantine
    quarantine: dict[str, set[int]] = {}
    rid = 0
    for step in range(6):
        landed = {}
        for i, key in enumerate(r.sample([f"s/f{i}.{ext}" for i in range(3)], r.randint(1, 2))):
            text, rows, extra = _file(r, ext, rid + 1)
            rid += len(rows)
            lake.land(key, text, mtime=1_700_000_000 + 10 * step + i)
            landed[key] = (rows, extra)
            print("STEP", step, key, repr(text))
        ended = {o.run.file_key: o for o in lake.process(workers=workers).final()}
        print({k: (o.status, o.error) for k, o in ended.items()})
        if columns is None and workers > 1:  # two workers starting the table: the first commit makes it, and the
            finished: dict[str, float] = {}  # other job runs again held to it (README, "Schema evolution")
            for run in lake.pipeline.runs(limit=None):  # (newest first)
                finished.setdefault(run.file_key, run.finished_at or 0.0)
            landed = dict(sorted(landed.items(), key=lambda kv: finished[kv[0]]))
        for key, (rows, extra) in landed.items():  # oldest first (committed first): the order the model takes
            o, where = ended[key], (cfg, step, key)
            assert "Traceback" not in (o.error or ""), (where, o.error)
            bad = {row[0] for row in rows if row[1] in ("x", "2.5")}
            typed = columns is not None and "e" in columns and not untyped
            if evolution == "freeze" and columns is not None and extra != typed and not (untyped and extra) and rows:
                assert o.status in ("failed", "dead"), (where, o.status)  # (or for a bad value, found first)
                assert "schema evolution: freeze" in o.error or (bad and " line " in o.error), (where, o.error)
                continue
            if bad and bad_rows == "fail":
                assert o.status in ("failed", "dead") and " line " in o.error, (where, o.status, o.error)
                continue
            if o.status == "skipped":  # the bytes of a file loaded before
                continue
            assert o.status == "succeeded", (where, o.status, o.error)
            ruled = {
                row[0]
                for row in rows
                if row[0] not in bad
                and ((ranged and row[1] != "" and not 0 <= int(row[1]) <= 50) or (not_null and row[2] == ""))
            }
            if evolution == "discard_row" and extra and columns is not None and "e" not in columns:
                ruled |= {row[0] for row in rows if row[0] not in bad and row[4]}  # a value in a new column
            loaded = {row[0] for row in rows} - bad - ruled
            if columns is None and rows:  # a file of no rows makes no table
                columns = {"rid", "q", "t", "p"} | ({"e"} if extra else set())
                untyped = extra and ext == "jsonl" and not any(row[4] for row in rows)  # JSON nulls: no type yet
            elif untyped and extra and loaded and any(row[4] for row in rows):
                untyped = False  # typed by the first file of values there that writes rows, under every policy
            elif columns is not None and extra and (evolution == "evolve" or (evolution == "discard_row" and loaded)):
                columns.add("e")  # (`discard_row` adds a new column its written rows hold only NULLs in)
            if mode == "overwrite":
                table = {key: loaded}
                quarantine[key] = bad | ruled
            elif on_change == "append":
                table[key] = table.get(key, set()) | loaded
                quarantine[key] = quarantine.get(key, set()) | bad | ruled
            else:
                table[key], quarantine[key] = loaded, bad | ruled
        assert _by_source(lake, "s", ext) == {k: v for k, v in table.items() if v}, (cfg, step, "table")
        got = _by_source(lake, "quarantine.s", ext)
        assert got == {k: v for k, v in quarantine.items() if v}, (cfg, step, "quarantine")


@pytest.mark.parametrize("seed", range(6))
def test_generated_bad_input_matches_the_model(make_lake, seed):
    check(make_lake, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 150))
def test_more_generated_bad_input_matches_the_model(make_lake, seed):
    check(make_lake, seed)
