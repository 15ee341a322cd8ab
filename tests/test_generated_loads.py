"""Generated loads checked against a model: random files (CSV or JSON Lines) of random columns and types, landed one
version at a time under a few names, into a Parquet or Delta table written in `append`, `merge` or `overwrite` mode,
partitioned or not, by one worker or two. After each load the table must hold exactly the rows of each name's latest
version that loaded (a version that failed leaves the earlier one's rows), or, for an overwrite, those of the last
file that loaded: no row lost, none twice, and the table readable whatever its columns went through (it found a
table no query could read once the files holding a column were replaced by ones without it)."""

from __future__ import annotations

import json
import random

import pytest

from conftest import wf

KINDS = ["int", "float", "str", "date", "ts", "bool"]
COLUMNS = ["a", "b", "c", "p"]


def value(kind: str, r: random.Random) -> str:
    return {
        "int": lambda: str(r.randint(-5, 10 ** r.choice([1, 3, 12]))),
        "float": lambda: f"{r.uniform(-100, 100):.{r.randint(0, 4)}f}",
        "str": lambda: r.choice(["a", "b c", "x,y", "", "null", "NaN", "true", "2026-01-01", "é", "1e5"]),
        "date": lambda: f"2026-0{r.randint(1, 9)}-1{r.randint(0, 9)}",
        "ts": lambda: f"2026-0{r.randint(1, 9)}-1{r.randint(0, 9)} 1{r.randint(0, 9)}:0{r.randint(0, 9)}:00",
        "bool": lambda: r.choice(["true", "false"]),
        "null": lambda: "",
    }[kind]()


def as_json(kind: str, text: str) -> object:
    if text == "":
        return None
    return {"int": int, "float": float, "bool": lambda s: s == "true"}.get(kind, str)(text)


def as_csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text


def check(make_lake, seed: int) -> None:
    r = random.Random(seed * 7919)
    fmt, mode = r.choice(["parquet", "delta"]), r.choice(["append", "merge", "overwrite"])
    ext, part, batch = r.choice(["csv", "jsonl"]), r.choice([None, None, "p"]), r.choice([1, 1, 3])
    workers = r.choice([1, 1, 2])
    write: dict = {"table": "s", "format": fmt, "mode": mode, **({"keys": ["rid"]} if mode == "merge" else {})}
    if part:
        write["partition_by"] = [part]
    lake = make_lake([wf("s", retry={"max_attempts": 1}, write=write)])
    kinds = {c: r.choice(KINDS) for c in COLUMNS}
    expected: dict[str, set[int]] = {}
    rid = 0
    for step in range(6):
        landed: dict[str, set[int]] = {}  # this step's files (up to `batch`, one batch of runs), by name
        for key in r.sample([f"s/f{i}.{ext}" for i in range(4)], r.randint(1, batch)):
            cols = ["rid", *r.sample(COLUMNS, r.randint(0, 4))]
            if r.random() < 0.3:
                kinds[r.choice(COLUMNS)] = r.choice([*KINDS, "null"])
            rows = []
            for _ in range(r.randint(0, 4)):
                rid += 1
                rows.append({"rid": str(rid), **{c: value(kinds[c], r) for c in cols[1:]}})
            if ext == "csv":
                text = ",".join(cols) + "\n" + "".join(",".join(as_csv(row[c]) for c in cols) + "\n" for row in rows)
            else:
                text = "".join(
                    json.dumps({c: int(row[c]) if c == "rid" else as_json(kinds[c], row[c]) for c in cols}) + "\n"
                    for row in rows
                )
            lake.land(key, text, mtime=1_700_000_000 + 10 * step + len(landed))
            landed[key] = {int(row["rid"]) for row in rows}
        summary = lake.process(workers=workers)
        ended = {o.run.file_key: o for o in summary.final()}
        for key in landed:  # in landing order: an overwrite's last file that loaded is the table
            if ended[key].status == "succeeded":
                expected = {key: landed[key]} if mode == "overwrite" else {**expected, key: landed[key]}
            else:  # skipped (the bytes of another file), or failed: the earlier version's rows stay
                assert "Traceback" not in (ended[key].error or ""), ended[key].error
        table: dict[str, set[int]] = {}
        if "s" in {t.name for t in lake.pipeline.tables()}:
            for got_rid, source in lake.rows("SELECT rid, _source_file FROM s"):
                table.setdefault(source, set()).add(int(got_rid))
        want = {k: v for k, v in expected.items() if v}
        errors = [o.error for o in summary.dead]
        assert table == want, (seed, fmt, mode, part, ext, batch, workers, step, list(landed), errors)


@pytest.mark.parametrize("seed", range(8))
def test_generated_loads_match_the_model(make_lake, seed):
    check(make_lake, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8, 200))
def test_more_generated_loads_match_the_model(make_lake, seed):
    check(make_lake, seed)
