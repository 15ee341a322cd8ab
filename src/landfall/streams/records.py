"""What a stream accepts: one JSON object per record, within the size limit, with its partition fields, that the
JSON reader of its workflow loads.

`RecordCheck` turns a record's bytes into the line that lands and its partition folder, or raises `BadRecord` with
a code and a reason. The line is the record as sent, every number and escape as written (a record pretty-printed
over several lines is put on one by taking out its line breaks, which valid JSON holds only between tokens): a
record decoded and encoded again would land `1234567890.123456789` as `1234567890.1234567`, `1e400` as `Infinity`.
A record the loader would refuse, failing the whole landed file for it, is refused (`jsontext.loadable`: half
a UTF-16 surrogate pair, nesting deeper than the loader follows); one with a key twice in one object lands as
written, and its last value loads. `split_body` cuts a `POST /streams/<name>` body (JSON Lines or a JSON array)
into records, each array element as written.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from typing import Any

from landfall.config import StreamConfig
from landfall.errors import InvalidInput
from landfall.jsontext import fast_record, kind, loadable, too_deep
from landfall.partitions import NAME_MAX
from landfall.streams.keys import partition_value


class BadRecord(ValueError):
    """A record the stream cannot deliver: `code` names the kind (as AWS error codes do), the message the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BadBody(InvalidInput):
    """A request body that cannot be cut into records at all (a JSON array that does not parse)."""


_ABSENT = object()
_scan = json.JSONDecoder().raw_decode  # an array's elements: where each ends
_SPACE = re.compile(r"[ \t\n\r]*")
_LINE_BREAKS = re.compile(rb"[\r\n][ \t\r\n]*")


@dataclass
class RecordCheck:
    config: StreamConfig

    def __post_init__(self) -> None:
        self.limit = self.config.record_limit
        self.fields = [(name, name.split(".")) for name in self.config.partition_by]

    def __call__(self, data: bytes) -> tuple[bytes, bytes]:
        """(the line to land, the partition folder such as `b"event_type=view/"`) for one record."""
        if len(data) > self.limit:
            raise BadRecord(
                "RecordTooLarge",
                f"record of {len(data):,} bytes is over `max_record_size` ({self.config.max_record_size} = "
                f"{self.limit:,} bytes)",
            )
        line = data.strip()
        if line.startswith(b"\xef\xbb\xbf"):
            line = line[3:].lstrip()
        if not line:
            raise BadRecord("EmptyRecord", "empty record; expected one JSON object")
        obj = fast_record(line)
        if obj is None:
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadRecord("NotUtf8", f"not UTF-8 (byte {exc.start + 1} is {line[exc.start]:#04x})") from None
            obj, why = loadable(text)
            if why is not None:
                raise BadRecord("InvalidJson", why)
            if not isinstance(obj, dict):
                raise BadRecord("NotAnObject", f"{kind(obj)}, not an object; each record must be one JSON object")
        if b"\n" in line or b"\r" in line:
            line = _LINE_BREAKS.sub(b"", line)  # outside strings, where JSON allows them: no value changes
        if not self.fields:
            return line, b""
        return line, self._partition(obj)

    def _partition(self, obj: dict[str, Any]) -> bytes:
        parts = []
        for name, path in self.fields:
            value: Any = obj
            for step in path:
                value = value.get(step, _ABSENT) if isinstance(value, dict) else _ABSENT
            if value is _ABSENT or value is None:
                raise BadRecord(
                    "PartitionFieldMissing",
                    f"partition field `{name}` is missing or null; every record of stream `{self.config.name}` "
                    "needs it (`partition_by`)",
                )
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, (str, int, float)):
                text = str(value)
            else:
                raise BadRecord(
                    "PartitionFieldInvalid",
                    f"partition field `{name}` is {kind(value)}; expected a string, number or boolean",
                )
            if not text:
                raise BadRecord("PartitionFieldInvalid", f"partition field `{name}` is empty")
            folder = f"{name}={partition_value(text)}"
            if (size := len(folder.encode("utf-8"))) > NAME_MAX:  # a file that could never land: it holds up the log
                raise BadRecord(
                    "PartitionFieldInvalid",
                    f"partition field `{name}` is too long to name a folder: `{name}=` and its value of "
                    f"{len(text):,} characters, escaped, take {size:,} bytes; a folder name "
                    f"has at most {NAME_MAX}",
                )
            parts.append(f"{folder}/")
        return "".join(parts).encode("utf-8")


def split_body(body: bytes, content_type: str = "") -> tuple[list[tuple[bytes, int]], str]:
    """The records of a request body, each as written with its position, and what a position is called in answers:
    `line` (JSON Lines: one record per line, blank lines skipped, numbered from 1) or `index` (a JSON array of records,
    a body starting with `[`; with `Content-Type: application/json`, any other body is one JSON document)."""
    body = body.removeprefix(codecs.BOM_UTF8)  # as Windows tools write UTF-8 (each record drops it too)
    head = body.lstrip()[:1]
    if head == b"[":
        try:
            elements = _elements(body.decode(json.detect_encoding(body)))
            return [(e.encode("utf-8"), i) for i, e in enumerate(elements)], "index"
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            if isinstance(exc, json.JSONDecodeError):
                reason = f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}"
            else:  # an element nested too deep for its end to be found is refused with the body
                reason = too_deep() if isinstance(exc, RecursionError) else f"not valid JSON: {exc}"
            raise BadBody(f"request body: {reason}; send a JSON array of records or JSON Lines") from None
    if head and "json" in content_type and "ndjson" not in content_type and "jsonl" not in content_type:
        return [(body, 0)], "index"
    return [(line, n) for n, line in enumerate(body.split(b"\n"), 1) if line.strip()], "line"


def _elements(text: str) -> list[str]:
    """The text of each element of the JSON array `text`, as written (`JSONDecodeError` where it is not one)."""
    i = _SPACE.match(text).end()  # type: ignore[union-attr]
    if text[i : i + 1] != "[":
        raise json.JSONDecodeError("Expecting '['", text, i)
    i = _SPACE.match(text, i + 1).end()  # type: ignore[union-attr]
    out: list[str] = []
    if text[i : i + 1] == "]":
        i += 1
    else:
        while True:
            _, end = _scan(text, i)
            out.append(text[i:end])
            i = _SPACE.match(text, end).end()  # type: ignore[union-attr]
            if text[i : i + 1] == "]":
                i += 1
                break
            if text[i : i + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
            i = _SPACE.match(text, i + 1).end()  # type: ignore[union-attr]
    if _SPACE.match(text, i).end() != len(text):  # type: ignore[union-attr]
        raise json.JSONDecodeError("Extra data", text, i)
    return out
