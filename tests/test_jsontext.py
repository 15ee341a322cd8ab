"""`landfall.jsontext`: the quick look never takes a line the careful one would judge otherwise; a record written
again keeps every token; half a surrogate pair is found wherever Python's parser would keep one."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from landfall.jsontext import (
    fast_record,
    last_of_each_key,
    loadable,
    lone_surrogate,
    not_a_record,
    repeats_a_key,
    surely_once_each,
)

KEYS = st.sampled_from(["a", "b", "A", "id", 'q"', "é", "", "x y", "\\u0061"])
NUMBERS = st.sampled_from(["0", "-0", "1", "-12", "1.5", "2.50E+3", "1e400", "1234567890.123456789", "NaN", "-0.0"])
STRINGS = st.sampled_from(['"x"', '"caf\\u00e9"', '"\\ud83d\\ude00"', '"\\\\ud800"', '"a\\"b"', '"{\\":"', '""'])
SPACES = st.sampled_from(["", " ", "  ", "\t", "\n  "])


def _text(draw: st.DrawFn, depth: int) -> str:
    kind = draw(st.integers(0, 4 if depth < 3 else 2))
    if kind == 0:
        return draw(NUMBERS)
    if kind == 1:
        return draw(STRINGS)
    if kind == 2:
        return draw(st.sampled_from(["true", "false", "null"]))
    if kind == 3:
        items = [_text(draw, depth + 1) for _ in range(draw(st.integers(0, 3)))]
        return "[" + ",".join(draw(SPACES) + i for i in items) + "]"
    pairs = []
    for _ in range(draw(st.integers(0, 4))):
        key = json.dumps(draw(KEYS))
        pairs.append(f"{key}{draw(SPACES)}:{draw(SPACES)}{_text(draw, depth + 1)}")
    return "{" + ("," + draw(SPACES)).join(pairs) + draw(SPACES) + "}"


@st.composite
def record_texts(draw: st.DrawFn) -> str:
    """JSON text of an object: numbers of every form, escapes, keys repeated, spaces before and after colons."""
    pairs = [f'"id"{draw(SPACES)}:{draw(SPACES)}1'] + [
        f"{json.dumps(draw(KEYS))}: {_text(draw, 1)}" for _ in range(draw(st.integers(0, 3)))
    ]
    return "{" + ", ".join(pairs) + "}"


def _numbers(text: str) -> list[str]:
    """The number tokens of JSON text, in order (strings skipped)."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif ch in "-0123456789N":
            j = i
            while j < n and text[j] not in ",]} \t\n":
                j += 1
            out.append(text[i:j])
            i = j
        else:
            i += 1
    return out


@settings(max_examples=400, deadline=None)
@given(record_texts())
def test_the_quick_look_takes_only_what_the_careful_one_takes(text):
    value, why = loadable(text)
    fast = fast_record(text.encode("utf-8"))
    if fast is not None:
        assert why is None
        assert json.dumps(fast, sort_keys=True) == json.dumps(value, sort_keys=True)
        if surely_once_each(text.encode("utf-8"), fast):
            assert not repeats_a_key(text)


@settings(max_examples=400, deadline=None)
@given(record_texts())
def test_a_record_written_again_keeps_the_last_value_of_each_key_and_every_number_as_written(text):
    value, why = loadable(text)
    if why is not None:
        return
    again = last_of_each_key(text)
    assert "\n" not in again and not repeats_a_key(again)
    assert json.dumps(loadable(again)[0], sort_keys=True) == json.dumps(value, sort_keys=True)
    if not repeats_a_key(text):
        assert _numbers(again) == _numbers(text)  # (a repeated key's earlier values are gone, and their numbers)
    else:
        assert set(_numbers(again)) <= set(_numbers(text))


def test_a_repeated_key_is_found_at_any_depth_and_written_with_its_last_value():
    text = '{"a": 1, "x": [{"b": 1e400, "b": 2.50E+3}], "a": NaN}'
    assert repeats_a_key(text) and not surely_once_each(text.encode(), {"a": 1, "x": [{"b": 2500.0}]})
    assert last_of_each_key(text) == '{"a":NaN,"x":[{"b":2.50E+3}]}'
    assert not repeats_a_key('{"a": {"a": 1}, "b": [{"a": 1}, {"a": 2}]}')
    escaped = '{"a": 1, "\\u0061": 2}'  # the same key, escaped
    assert repeats_a_key(escaped) and not surely_once_each(escaped.encode(), fast_record(escaped.encode()))
    assert last_of_each_key(escaped) == '{"a":2}'


def test_half_a_surrogate_pair_is_refused_with_its_column():
    cases = {
        '{"s": "\\ud800"}': 8,
        '{"s": "\\udc00"}': 8,
        '{"s": "x\\ude00\\ud83d"}': 9,  # a low one first: both halves alone
        '{"s": "\\\\\\ud800"}': 10,  # an escaped backslash, then the half
        '{"\\ud800": 1}': 3,  # in a key
        '{\n "s": "\\uDBFF"}': 8,  # upper case, the column on its own line
    }
    for text, column in cases.items():
        value, why = loadable(text)
        assert value is None and f"(column {column}) is half of a UTF-16 surrogate pair" in why, (text, why)
    for text in ('{"s": "\\ud83d\\ude00"}', '{"s": "\\\\ud800"}', '{"s": "\\\\\\\\ud800"}', '{"s": "\\u00e9"}'):
        assert loadable(text)[1] is None and lone_surrogate(text) is None, text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["\\ud800", "\\udc00", "\\ud83d", "\\ude00", "\\\\", "a", "\\u00e9"]), max_size=6))
def test_half_a_surrogate_pair_is_found_exactly_where_python_keeps_one(parts):
    text = '{"s": "' + "".join(parts) + '"}'
    value = json.loads(text)
    try:
        value["s"].encode("utf-8")
        lone = False
    except UnicodeEncodeError:
        lone = True
    assert (lone_surrogate(text) is not None) == lone, text


def test_what_is_no_record_says_why():
    assert not_a_record("[1, 2]") == "an array, not a record (an object)"
    assert not_a_record('{"a": ').startswith("invalid JSON: Expecting value")
    assert "nested deeper than" in not_a_record("[" * 5000 + "]" * 5000)
    # as deep as DuckDB's reader reads (the record one level, each list or object in it one more), and one deeper
    at_most, deeper = ('{"a": ' + "[" * n + "1" + "]" * n + "}" for n in (126, 127))
    assert not_a_record(at_most) is None and fast_record(at_most.encode()) == json.loads(at_most)
    assert not_a_record(deeper) == "invalid JSON: nested deeper than 127 levels, the most the JSON reader reads"
    assert fast_record(deeper.encode()) is None  # (`not_a_record` judges)
    assert not_a_record('{"a": 1, "a": 2}') is None
