"""JSONTestSuite (Seriot) through a JSON workflow: every `y_` document loads, every `n_` document fails alone with
a clear error (100,000 nested brackets included), and `i_` documents behave as the README documents."""

from __future__ import annotations

import shutil

import pytest

from conftest import CORPUS, wf

pytestmark = [pytest.mark.corpus, pytest.mark.slow]  # a sweep of 318 documents

SUITE = CORPUS / "jsontestsuite" / "test_parsing"

# What landfall does with the implementation-defined `i_` files (README, "JSON documents").
I_ACCEPTED = {
    # numbers beyond double/int64 range are read (as DOUBLE, or inf/0 where they overflow or underflow)
    "i_number_double_huge_neg_exp.json",
    "i_number_huge_exp.json",
    "i_number_neg_int_huge_exp.json",
    "i_number_pos_double_huge_exp.json",
    "i_number_real_neg_overflow.json",
    "i_number_real_pos_overflow.json",
    "i_number_real_underflow.json",
    "i_number_too_big_neg_int.json",
    "i_number_too_big_pos_int.json",
    "i_number_very_big_negative_int.json",
    # 500 nested arrays are within the depth limit
    "i_structure_500_nested_arrays.json",
    # a UTF-8 BOM is dropped; UTF-16 with a BOM is decoded; bytes that are not UTF-8 are decoded as cp1252/Latin-1
    "i_structure_UTF-8_BOM_empty_object.json",
    "i_string_UTF-16LE_with_BOM.json",
    "i_string_iso_latin_1.json",
    "i_string_UTF8_surrogate_U+D800.json",
    "i_string_invalid_utf-8.json",
    "i_string_lone_utf8_continuation_byte.json",
    "i_string_not_in_unicode_range.json",
    "i_string_overlong_sequence_2_bytes.json",
    "i_string_overlong_sequence_6_bytes.json",
    "i_string_overlong_sequence_6_bytes_null.json",
    "i_string_truncated-utf-8.json",
    "i_string_utf16BE_no_BOM.json",
    "i_string_utf16LE_no_BOM.json",
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    if not SUITE.is_dir():
        pytest.skip(f"JSONTestSuite not found at {SUITE} (shared/corpus beside the repository)")
    from conftest import Lake

    root = tmp_path_factory.mktemp("jts")
    # One table for every document: documents give one key values of different kinds (`{"a": []}`, `{"a": "b"}`),
    # which no one column type holds in every order batches form; `rescue` keeps such values in `_rescued_data`.
    # (Without it, a text `a` after a list `a` is a clear schema conflict: tests/test_evolution.py.)
    json_wf = wf("j", match="j/", read={"format": "json"}, retry={"max_attempts": 1}, schema={"evolution": "rescue"})
    lake = Lake(root, [json_wf], batch_files=64)
    for f in sorted(SUITE.glob("*.json")):
        dest = lake.landing / "j" / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
    lake.process()
    runs = {r.file_key.removeprefix("j/"): r for r in lake.pipeline.runs(limit=None)}
    lake.close()
    return runs


def test_every_y_document_loads(outcomes):
    bad = {k: r.error for k, r in outcomes.items() if k.startswith("y_") and r.status not in ("succeeded", "skipped")}
    assert not bad
    assert sum(1 for k in outcomes if k.startswith("y_")) == 95


def test_every_n_document_fails_alone_with_a_clear_error(outcomes):
    n = {k: r for k, r in outcomes.items() if k.startswith("n_")}
    assert len(n) == 188
    loaded = sorted(k for k, r in n.items() if r.status != "dead")
    assert loaded == []
    unclear = sorted(k for k, r in n.items() if f"`j/{k}`" not in (r.error or ""))
    assert unclear == []


def test_i_documents_behave_as_documented(outcomes):
    i = {k: r.status for k, r in outcomes.items() if k.startswith("i_")}
    assert len(i) == 35
    # UTF-8 (`日ш`) with a byte that is not: refused naming its line, not read whole in a code page as `æ—¥Ñˆú`
    mostly = outcomes["i_string_UTF-8_invalid_sequence.json"].error or ""
    assert mostly.startswith("`j/i_string_UTF-8_invalid_sequence.json` line 1: ") and "not valid utf-8" in mostly
    accepted = {k for k, s in i.items() if s in ("succeeded", "skipped")}
    assert accepted == I_ACCEPTED, (sorted(accepted - I_ACCEPTED), sorted(I_ACCEPTED - accepted))
    assert {s for k, s in i.items() if k not in I_ACCEPTED} == {"dead"}
