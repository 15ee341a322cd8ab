"""JSON text as landfall's loaders read it: which records they load, and why one is refused, in one place for
the streams (a record posted is refused when its landed file would fail for it) and the JSON readers (a line of
JSON Lines that is no record is named, or set aside for the quarantine).

Python's parser reads more than DuckDB's JSON reader loads. DuckDB refuses a string holding half of a UTF-16
surrogate pair (`"\\ud800"`: `no low surrogate in string`), failing the whole file, where Python's parser keeps
the half as a lone surrogate (and Spark's reads it as `?`): `loadable` refuses it, with nesting deeper than
DuckDB's reader reads (`MAX_DEPTH`), and says why in the words a file's error uses (`invalid JSON: ...`). DuckDB
also refuses a key twice in one object (`has duplicate key`), where landfall keeps the last value, as Python's
parser, Spark's and most readers do: `last_of_each_key` writes such a record again for DuckDB, every other token
as written. `fast_record` answers for most lines at a seventh of the cost (msgspec), and `surely_once_each`
screens them for repeated keys, sending any doubtful line to the others.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from landfall.errors import InvalidInput

#: the deepest a record may be nested, the record itself one level and each object or array in it one more:
#: DuckDB's JSON reader refuses a deeper one (`JSON exceeds maximum recursion depth of 128`, naming no line)
MAX_DEPTH = 127


def too_deep() -> str:
    """The reason a JSON value nested deeper than `MAX_DEPTH` levels is refused."""
    return f"invalid JSON: nested deeper than {MAX_DEPTH} levels, the most the JSON reader reads"


def nested_too_deep(text: str | bytes, value: Any) -> bool:
    """Whether `value`, the JSON value of `text`, is nested deeper than `MAX_DEPTH` levels."""
    return _many_brackets(text) and _deeper(value)


def too_deep_record(text: str, document: Any) -> int | None:
    """Which record (from 0) of the JSON `document` (of text `text`) is nested deeper than `MAX_DEPTH` levels, of
    its top-level array (0 when it is one record); None when none is. (A value that is no record loads as its JSON
    text, however deep.)"""
    if not _many_brackets(text):
        return None
    items = document if isinstance(document, list) else [document]
    return next((i for i, item in enumerate(items) if isinstance(item, dict) and _deeper(item)), None)


def _many_brackets(text: str | bytes) -> bool:
    """Whether `text` holds more than `MAX_DEPTH` opening brackets, as a value nested deeper does."""
    if isinstance(text, str):
        return text.count("{") + text.count("[") > MAX_DEPTH
    return text.count(b"{") + text.count(b"[") > MAX_DEPTH


def _deeper(value: Any) -> bool:
    level, todo = 0, [(value, 1)]
    while todo and level <= MAX_DEPTH:
        value, at = todo.pop()
        if isinstance(value, dict | list):
            level = max(level, at)
            todo.extend((v, at + 1) for v in (value.values() if isinstance(value, dict) else value))
    return level > MAX_DEPTH


def json_reason(exc: json.JSONDecodeError) -> str:
    """Why JSON text does not parse, for a message that names its line; text of one value per line (JSON Lines
    named `.json`) is told how to read it."""
    lines = ""
    if exc.msg == "Extra data" and exc.lineno > 1 and exc.colno == 1:
        lines = "; the file holds one JSON value per line (JSON Lines): name it `.jsonl` or set `read: {format: jsonl}`"
    return f"invalid JSON: {exc.msg} (column {exc.colno}){lines}"


def invalid_json(key: str, exc: json.JSONDecodeError) -> InvalidInput:
    """A JSON document that does not parse, naming its line and reason (`json_reason`)."""
    return InvalidInput(f"`{key}` line {exc.lineno}: {json_reason(exc)}", file=key, line=exc.lineno)


class _TwiceInOneObject(ValueError):
    pass


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _TwiceInOneObject
    return obj


class Number(str):
    """A number's (or `NaN`'s, `Infinity`'s) text as written (`as_written`)."""


_decode = json.JSONDecoder().raw_decode
_once = json.JSONDecoder(object_pairs_hook=_once_each).raw_decode
_as_written = json.JSONDecoder(parse_float=Number, parse_int=Number, parse_constant=Number).raw_decode


def as_written(text: str, constant: Any = Number) -> Any:
    """The JSON value of `text` with each number (and `NaN`, `Infinity`, or as `constant` says) kept as its text,
    for `written` to write again as it is (`JSONDecodeError` where `text` is not one JSON value)."""
    decode = _as_written
    if constant is not Number:
        decode = json.JSONDecoder(parse_float=Number, parse_int=Number, parse_constant=constant).raw_decode
    value, end = decode(text, len(text) - len(text.lstrip()))
    if text[end:].strip():
        raise json.JSONDecodeError("Extra data", text, end)
    return value


_fast = msgspec.json.Decoder()
_HIGH, _LOW = r"\\u[dD][89abAB][0-9a-fA-F]{2}", r"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
#: half of a UTF-16 surrogate pair escaped in a JSON string: a high one without a low one after it, or a low one
#: without a high one before it, after an even number of backslashes (`\\\\ud800` is a backslash and `ud800`);
#: the escape ends the match. In Python's `re` and Java's (Spark's `rlike`) alike.
LONE_SURROGATE = rf"(?:^|[^\\])(?:\\\\)*(?:{_HIGH}(?!{_LOW})|(?<!{_HIGH}){_LOW})"
_LONE = re.compile(LONE_SURROGATE)


def loadable(text: str) -> tuple[Any, str | None]:
    """(the value of the JSON text `text`, None), or (None, why the loaders refuse it: `invalid JSON: ...`).
    Whitespace around the value is allowed; of a key repeated in one object, the value is the last one's."""
    start = len(text) - len(text.lstrip())
    try:
        value, end = _decode(text, start)
        if text[end:].strip():
            raise json.JSONDecodeError("Extra data", text, end)
    except json.JSONDecodeError as exc:
        return None, json_reason(exc)
    except RecursionError:
        return None, too_deep()
    except ValueError as exc:  # a number of more digits than Python converts
        return None, f"invalid JSON: {exc}"
    if (half := lone_surrogate(text)) is not None:
        return None, half[1]
    if nested_too_deep(text, value):
        return None, too_deep()
    return value, None


def lone_surrogate(text: str) -> tuple[int, str] | None:
    """(where in `text`, the reason: `invalid JSON: ...`) when a string of the JSON text `text` holds half of a
    UTF-16 surrogate pair (`"\\ud800"`, which DuckDB's reader refuses); else None."""
    if "\\u" not in text or (m := _LONE.search(text)) is None:
        return None
    at = m.end() - 6
    column = at - text.rfind("\n", 0, at)
    half = f"`{text[at : m.end()]}` (column {column}) is half of a UTF-16 surrogate pair, without its other half"
    return at, f"invalid JSON: {half}: no character"


def not_a_record(text: str) -> str | None:
    """Why a line of JSON Lines is no record the loaders load (`loadable`, or a value that is no object); None
    when it is one."""
    value, why = loadable(text)
    if why is None and not isinstance(value, dict):
        why = f"{kind(value)}, not a record (an object)"
    return why


def repeats_a_key(text: str) -> bool:
    """Whether an object of the JSON text `text` (which `loadable` took) holds a key twice."""
    try:
        _once(text, len(text) - len(text.lstrip()))
    except _TwiceInOneObject:
        return True
    return False


#: the column a record's empty key (`""`) loads as: DuckDB's JSON reader takes an object holding it for no record
#: (a MAP), Spark's drops it
EMPTY_KEY = "empty_key"


def named_empty_key(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with its empty key (if any) named `EMPTY_KEY`, in its place. Raises ValueError when the record holds
    that name too."""
    if "" not in record:
        return record
    if EMPTY_KEY in record:
        raise ValueError(f"the record holds both the empty key and `{EMPTY_KEY}`, the column the empty key loads as")
    return {EMPTY_KEY if k == "" else k: v for k, v in record.items()}


def as_loaded(text: str) -> str:
    """The JSON text of a record (which `loadable` took) on one line as the loaders read it: the last value of each
    key, the empty key named `EMPTY_KEY`, every number and constant as written. Raises ValueError when the record
    holds that name too."""
    return written(named_empty_key(as_written(text)))


def last_of_each_key(text: str) -> str:
    """The JSON text `text` (which `loadable` took) with each key repeated in one object down to its last value,
    on one line; every number and constant as written (`1e400`, `1234567890.123456789`, `NaN`), every string the
    same characters."""
    return written(as_written(text))


#: a list's items, in a field's path (`written`'s `as_text`)
ITEM = "[]"


def written(value: Any, as_text: frozenset[tuple[str, ...]] = frozenset()) -> str:
    """JSON text of a value read by `as_written` (or Python's parser), on one line without spaces, every number
    and constant `as_written` read as written; a number of one of the fields `as_text` (paths of keys, `ITEM` for
    a list's items) as a string. Without recursion: a value (no record) as deep as Python's parser reads."""
    out: list[str] = []
    todo: list[tuple[Any, tuple[str, ...]] | str] = [(value, ())]  # what is left to write, the last first
    while todo:
        item = todo.pop()
        if isinstance(item, str):  # punctuation, a key
            out.append(item)
            continue
        value, field = item
        if isinstance(value, Number):
            out.append(f'"{value}"' if field in as_text else value)  # a number's text needs no escape
        elif isinstance(value, dict):
            todo.append("}")
            for i, (k, v) in enumerate(reversed(value.items())):
                todo.append((v, (*field, k)))
                todo.append(("," if i < len(value) - 1 else "") + _dumps(k) + ":")
            out.append("{")
        elif isinstance(value, list):
            todo.append("]")
            items = (*field, ITEM)
            for i, v in enumerate(reversed(value)):
                todo.append((v, items))
                if i < len(value) - 1:
                    todo.append(",")
            out.append("[")
        else:
            out.append(_dumps(value))  # a string, true, false, null
    return "".join(out)


_dumps = json.JSONEncoder(ensure_ascii=False).encode


def fast_record(raw: bytes) -> dict[str, Any] | None:
    """The record (JSON object) the line `raw` holds, when a quick look can tell the loaders read it; None when it
    cannot tell (`loadable` then judges: msgspec refuses half a surrogate pair, as they do, but also NaN and
    numbers beyond a double, which they read). Of a key repeated in one object, the value is the last one's."""
    try:
        value = _fast.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) and not nested_too_deep(raw, value) else None


def surely_once_each(raw: bytes, record: dict[str, Any]) -> bool:
    """Whether a quick look at the line `raw` and its `record` (`fast_record`) tells that no object in it holds a
    key twice (else `repeats_a_key` judges): when every key in it is followed by a colon at once, and the keys of
    `record` are as many as those colons (a repeated key is one key of the decoded record; a `":` in a string
    only adds to the colons)."""
    if b'"\t' in raw or b'" ' in raw or b'"\r' in raw or b'"\n' in raw:
        return False  # a key may stand apart from its colon
    keys = len(record) if raw.count(b"{") == 1 else _keys(record)
    return keys == raw.count(b'":')


def _keys(value: Any) -> int:
    if isinstance(value, dict):
        return len(value) + sum(_keys(v) for v in value.values() if isinstance(v, (dict, list)))
    if isinstance(value, list):
        return sum(_keys(v) for v in value if isinstance(v, (dict, list)))
    return 0


def kind(value: Any) -> str:
    """`an object`, `a number`, ...: what a JSON value is, with its article."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
