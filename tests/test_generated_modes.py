"""Generated merges, partition overwrites and uniqueness checked against a model: random files (CSV or JSON
Lines) landed one version at a time under a few names, into a Parquet or Delta table written in `mode: merge` (one
key or two, with or without `order_by`, partitioned or not: a key's row may move to another partition), `mode:
overwrite` with `overwrite: partitions` (by a text column of awkward values, or by the year and month of a date),
`mode: append` with a `unique` rule, or `mode: append` with a child table of a list column (and maybe a `filter`),
by one worker or two. After each step the table (its quarantine, its child table) must hold exactly the rows the
model says, each once:

- merge: a changed file's earlier rows go first; then, for each key, the file's row with the greatest `order_by`
  (NULL the least) replaces the table's unless the table's is greater (a tie: the later file wins); a row whose
  key is NULL is always added;
- overwrite partitions: a file's rows replace those of every partition it brings, and its own earlier rows;
- append with a `unique: {against_table: true}` rule: a row whose key the table holds (its file's earlier rows
  gone first), or that its file holds twice, is quarantined; a changed file's quarantined rows go too;
- child tables: the elements of the lists of the rows the table holds (those the `filter` keeps), and no others.

A file with a value `read.types` refuses fails and changes nothing."""

from __future__ import annotations

import copy
import datetime
import json
import random

import pytest

from landfall.testing.spark import engine_settings

from conftest import wf

TEXTS = ["a", "b/c", "x=y", "é", "A", "p q", "%41", "__HIVE_DEFAULT_PARTITION__", "a,b", 'say "hi"']


def csv_field(v: object) -> str:
    if v is None:
        return ""
    text = str(v)
    return '"' + text.replace('"', '""') + '"' if any(ch in text for ch in ',"\n') else text


def order_key(o: int | None) -> tuple[int, int]:
    return (0, 0) if o is None else (1, o)


class Model:
    def __init__(self, mode: str, keys: list[str], order_by: str | None, part: str | None, filtered: bool) -> None:
        self.mode, self.keys, self.order_by, self.part, self.filtered = mode, keys, order_by, part, filtered
        self.rows: list[dict] = []
        self.quarantined: list[dict] = []

    def partition(self, row: dict) -> object:
        if self.part == "month":
            d = row["d"]
            return None if d is None else (d.year, d.month)
        return row["p"]

    def load(self, files: list[tuple[str, list[dict]]]) -> None:
        """Files that loaded in one job (a batch: their rows merge together), in landing order."""
        names = {key for key, _ in files}
        kept = [row for row in self.rows if row["_src"] not in names]  # a changed file's earlier rows go first
        rows = [{**row, "_src": key} for key, file in files for row in file]
        if self.mode == "children":  # an append table: the rows the `filter` keeps, and their lists' elements
            self.rows = kept + [row for row in rows if not (self.filtered and row["v"] % 5 == 0)]
            return
        if self.mode == "unique":  # one file a job: rules judge a file alone
            self.quarantined = [row for row in self.quarantined if row["_src"] not in names]
            held = {row["k"] for row in kept}
            twice = {k for k in held | {row["k"] for row in rows} if sum(row["k"] == k for row in rows) > 1}
            self.quarantined += [row for row in rows if row["k"] in held | twice]
            self.rows = kept + [row for row in rows if row["k"] not in held | twice]
            return
        if self.mode == "overwrite":
            brought = {self.partition(row) for row in rows}
            self.rows = [row for row in kept if self.partition(row) not in brought] + rows
            return
        best: dict[tuple, dict] = {}
        added = []
        for row in rows:  # a later file's row wins a tie
            k = tuple(row[c] for c in self.keys)
            if None in k:
                added.append(row)
            elif k not in best or not self.order_by or order_key(row["o"]) >= order_key(best[k]["o"]):
                best[k] = row
        table = {tuple(row[c] for c in self.keys): row for row in kept if None not in (row[c] for c in self.keys)}
        out = [row for row in kept if None in (row[c] for c in self.keys)]
        for k, row in best.items():
            old = table.get(k)
            if old is None or not self.order_by or order_key(row["o"]) >= order_key(old["o"]):
                table[k] = row
        self.rows = out + list(table.values()) + added

    def ids(self) -> dict[int, str]:
        return {row["v"]: row["_src"] for row in self.rows}

    def elements(self) -> list[str]:
        return sorted(t for row in self.rows for t in row["tags"] or [])

    def set_aside(self) -> dict[int, str]:
        return {row["v"]: row["_src"] for row in self.quarantined}


def file_rows(r: random.Random, model: Model, next_id: list[int]) -> list[dict]:
    rows = []
    seen: dict[tuple, set] = {}
    for _ in range(r.randint(0, 5)):
        row: dict = {"k": r.choice([None, 1, 2, 3, 4, 5]) if r.random() < 0.15 else r.randint(1, 5)}
        if model.mode == "unique":
            row["k"] = r.randint(1, 12)
        if "k2" in model.keys:
            row["k2"] = r.choice(["x", "y"])
        if model.order_by:  # rows of one key in one file always told apart: distinct values, one NULL at most
            taken = seen.setdefault(tuple(row[c] for c in model.keys), set())
            o = None if r.random() < 0.2 else r.randint(0, 6)
            if o in taken:
                continue
            taken.add(o)
            row["o"] = o
        elif model.keys and None not in (k := tuple(row[c] for c in model.keys)):
            if k in seen:
                continue
            seen[k] = set()
        if model.part == "month":
            row["d"] = None if r.random() < 0.1 else datetime.date(2026, r.randint(1, 3), r.randint(1, 28))
        elif model.part == "p" or model.mode != "overwrite":
            row["p"] = None if r.random() < 0.1 else r.choice(TEXTS[:4] if model.mode == "merge" else TEXTS)
        next_id[0] += 1
        row["v"] = next_id[0]
        if model.mode == "children":
            row["tags"] = None if r.random() < 0.15 else [f"t{row['v']}.{i}" for i in range(r.randint(0, 3))]
        rows.append(row)
    if rows and r.random() < 0.1:  # a value `read.types` refuses: the file fails, and changes nothing
        rows[-1] = {**rows[-1], "v": "bad"}
    return rows


def as_text(columns: list[str], rows: list[dict], ext: str) -> bytes:
    if ext == "csv":
        lines = [",".join(columns)] + [",".join(csv_field(row.get(c)) for c in columns) for row in rows]
        return ("\n".join(lines) + "\n").encode()
    return "".join(json.dumps({c: row.get(c) for c in columns}, default=str) + "\n" for row in rows).encode()


def check(make_lake, seed: int, engine: str = "duckdb") -> None:
    r = random.Random(seed * 104729)
    mode = r.choice(["merge", "overwrite", "unique", "children"])
    fmt, ext, workers = r.choice(["parquet", "delta"]), r.choice(["csv", "jsonl"]), r.choice([1, 1, 2])
    ext = "jsonl" if mode == "children" else ext  # lists
    keys = r.choice([["k"], ["k", "k2"]]) if mode == "merge" else []
    order_by = r.choice([None, "o"]) if mode == "merge" else None
    part = r.choice(["p", "month"]) if mode == "overwrite" else r.choice([None, "p"])
    write: dict = {"table": "m", "format": fmt, "mode": mode if mode in ("merge", "overwrite") else "append"}
    if mode == "merge":
        write["keys"] = keys
        if order_by:
            write["order_by"] = order_by
    elif mode == "overwrite":
        write["overwrite"] = "partitions"
    if part == "month":
        write["partition_by"] = ["year(d)", "month(d)"]
    elif part:
        write["partition_by"] = [part]
    batch = r.random() < 0.7  # else each file its own job
    extra = {} if batch else {"batch": False}
    read = {"types": {"v": "int"}}
    if mode == "unique":
        extra["validate"] = [{"unique": {"columns": ["k"], "against_table": True}, "action": "quarantine"}]
    filtered = mode == "children" and r.random() < 0.5
    if mode == "children":
        extra["transform"] = [{"child_tables": {"columns": ["tags"], **({"key": ["k"]} if r.random() < 0.5 else {})}}]
        extra["transform"] += [{"filter": "v % 5 <> 0"}] if filtered else []
    lake = make_lake([wf("m", retry={"max_attempts": 1}, read=read, write=write, **extra)], **engine_settings(engine))
    model = Model(mode, keys, order_by, part, filtered)
    columns = [*(keys or (["k"] if mode in ("unique", "children") else [])), *(["o"] if order_by else [])]
    columns += ["d" if part == "month" else "p", "v", *(["tags"] if mode == "children" else [])]
    next_id = [0]
    for step in range(6):
        landed: list[tuple[str, list[dict]]] = []
        for key in r.sample([f"m/f{i}.{ext}" for i in range(3)], r.randint(1, 2)):
            rows = file_rows(r, model, next_id)
            lake.land(key, as_text(columns, rows, ext), mtime=1_700_000_000 + 10 * step + len(landed))
            landed.append((key, rows))
        summary = lake.process(workers=workers)
        ended = {o.run.file_key: o for o in summary.final()}
        for key, rows in landed:
            bad = any(row["v"] == "bad" for row in rows)
            assert ended[key].status in (("failed", "dead") if bad else ("succeeded", "skipped")), (
                seed,
                key,
                ended[key].error,
            )
        loaded = [(key, rows) for key, rows in landed if ended[key].status == "succeeded"]  # in landing order
        one_by_one = copy.deepcopy(model)
        for file in loaded:
            one_by_one.load([file])
        models = [one_by_one]
        if batch and mode == "merge" and len(loaded) > 1:  # or the files shared a job
            models.append(copy.deepcopy(model))
            models[-1].load(loaded)
        table: dict[int, str] = {}
        got = []
        if "m" in {t.name for t in lake.pipeline.tables()}:
            got = lake.rows("SELECT v, _source_file FROM m")
            table = {int(v): src for v, src in got}
        context = (seed, engine, fmt, mode, keys, order_by, part, ext, workers, batch, step, [k for k, _ in landed])
        assert len(got) == len(table), ("a row twice", context)
        assert table in [m.ids() for m in models], (context, table, [m.ids() for m in models])
        model = next(m for m in models if m.ids() == table)
        if mode == "children":
            made = "m__tags" in {t.name for t in lake.pipeline.tables()}
            elements = sorted(v for (v,) in lake.rows("SELECT value FROM m__tags")) if made else []
            assert elements == model.elements(), context
        if mode == "unique":
            made = "quarantine.m" in {t.name for t in lake.pipeline.tables()}
            got = lake.rows("SELECT v, _source_file FROM quarantine.m") if made else []
            assert {int(v): src for v, src in got} == model.set_aside(), context


@pytest.mark.parametrize("seed", range(6))
def test_generated_merges_and_partition_overwrites_match_the_model(make_lake, seed):
    check(make_lake, seed)


# seed 261 (child tables, Delta, two workers, a column `k` null-typed in the first file) ran forever about one time
# in three, until 2026-12-08: a parent commit refused after its child table's commit made the job run again, and
# the retry took what that child commit had taken out for removed by another commit
# (`test_delta.py::test_a_parent_commit_refused_after_its_child_commit_runs_again_to_its_end`)
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 300))
def test_more_generated_merges_and_partition_overwrites_match_the_model(make_lake, seed):
    check(make_lake, seed)


@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.parametrize("seed", range(12))
def test_generated_merges_and_partition_overwrites_on_spark_match_the_model(make_lake, seed):
    check(make_lake, seed, "spark")
