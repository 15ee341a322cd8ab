"""Property tests: random nested records survive flatten + write + query with values and types intact; random
CSV text either loads or fails cleanly (an error that names the file), never crashes."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Lake, wf

NAMES = st.text(alphabet="abcdefghij", min_size=1, max_size=4)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
LEAF = st.sampled_from(["int", "float", "str", "bool"])


def schemas(depth: int = 2):
    """A record shape: field -> leaf type or a nested shape."""
    inner = LEAF if depth == 0 else st.one_of(LEAF, st.deferred(lambda: schemas(depth - 1)))
    return st.dictionaries(NAMES, inner, min_size=1, max_size=4)


def value_for(kind):
    return {
        "int": st.integers(-(2**53), 2**53),
        "float": st.floats(allow_nan=False, allow_infinity=False, width=64),
        "str": TEXT,
        "bool": st.booleans(),
    }[kind]


def records_for(shape):
    def one(sh):
        return st.fixed_dictionaries(
            {k: (one(v) if isinstance(v, dict) else st.one_of(st.none(), value_for(v))) for k, v in sh.items()}
        )

    return st.lists(one(shape), min_size=1, max_size=8)


def flat(record, prefix=""):
    out = {}
    for k, v in record.items():
        name = f"{prefix}_{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flat(v, name))
        else:
            out[name] = v
    return out


def flat_shape(shape, prefix=""):
    out = {}
    for k, v in shape.items():
        name = f"{prefix}_{k}" if prefix else k
        out.update(flat_shape(v, name) if isinstance(v, dict) else {name: v})
    return out


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: conftest's profile
@given(st.data())
def test_nested_records_survive_flatten_write_and_query(data):
    shape = data.draw(schemas())
    columns = flat_shape(shape)
    if len(columns) != len({c for c in columns}) or any(c.startswith("_") for c in columns):
        return
    records = data.draw(records_for(shape))
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(
            Path(tmp),
            [wf("n", read={"format": "jsonl"}, transform=[{"flatten": {"max_depth": 4}}], retry={"max_attempts": 1})],
        )
        try:
            lake.land("n/r.jsonl", "".join(json.dumps(r) + "\n" for r in records))
            summary = lake.process()
            assert summary.ok, [r.error for r in lake.pipeline.runs()]
            names = list(columns)
            cols, rows = lake.pipeline.query("SELECT " + ", ".join(f'"{c}"' for c in names) + " FROM n")
            got = sorted((tuple(r) for r in rows), key=repr)
            want = sorted((tuple(flat(rec).get(c) for c in names) for rec in records), key=repr)
            assert got == want
            types = dict(lake.pipeline.table("n").schema)
            expected = {"int": "int64", "float": "double", "str": "string", "bool": "bool"}
            for c, kind in columns.items():
                seen = [flat(rec).get(c) for rec in records if flat(rec).get(c) is not None]
                if seen and kind in ("str", "bool"):
                    assert types[c] == expected[kind], (c, types[c], seen)
        finally:
            lake.close()


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # examples: conftest's profile
@given(st.text(alphabet=st.sampled_from(list("ab,;\"\n\r 1.5-\t\\'x")), max_size=80))
def test_random_csv_text_loads_or_fails_cleanly(text):
    with tempfile.TemporaryDirectory() as tmp:
        lake = Lake(Path(tmp), [wf("c", read={"format": "csv"}, retry={"max_attempts": 1})])
        try:
            lake.land("c/f.csv", text.encode("utf-8"))
            lake.process()
            (run,) = lake.pipeline.runs()
            assert run.status in ("succeeded", "dead")
            if run.status == "dead":
                assert run.error.startswith("`c/f.csv`"), run.error
                # a landfall error, not an unexpected exception escaping the engine
                assert not re.match(r"^`c/f\.csv`: [A-Za-z]+(Error|Exception): ", run.error), run.error
            elif run.rows_out == 0 and not lake.pipeline.tables():
                pass  # no rows (empty, blank, a header alone) make no table
            else:
                lake.pipeline.query("SELECT count(*) FROM c")
        finally:
            lake.close()


NUMBER_TEXTS = st.one_of(
    st.builds(lambda x, p: f"{x:.{p}e}", st.floats(allow_nan=False, allow_infinity=False), st.integers(14, 24)),
    st.builds(lambda x, p: f"{x:.{p}g}", st.floats(allow_nan=False, allow_infinity=False), st.integers(15, 20)),
    st.builds(
        lambda ds, p: f"{ds[: p % len(ds) + 1]}.{ds[p % len(ds) + 1 :]}",
        st.text("0123456789", min_size=14, max_size=24),
        st.integers(0, 30),
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    # float32 values as doubles: short exact values, whose last digit at 16 or 17 digits may round a tie
    st.builds(
        lambda x, p: f"{x:.{p}g}", st.floats(width=32, allow_nan=False, allow_infinity=False), st.integers(16, 17)
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(NUMBER_TEXTS, min_size=1, max_size=40))
def test_whether_a_double_keeps_a_numbers_digits_is_judged_alike_in_sql_and_python(texts):
    """`casts.lost_digits` (DuckDB SQL, for the sample and the casts) and `casts.loses_digits` (Python, for a
    late value's wider type) say the same of every number."""
    import duckdb

    from landfall.engines.duckdb.casts import loses_digits as in_python
    from landfall.engines.duckdb.casts import lost_digits as in_sql

    con = duckdb.connect()
    got = con.execute(
        f"SELECT list(coalesce({in_sql('x')}, false) ORDER BY i) FROM (SELECT unnest(?) AS x, "
        "generate_subscripts(?, 1) AS i)",
        [texts, texts],
    ).fetchone()[0]
    assert got == [in_python(t) for t in texts]
