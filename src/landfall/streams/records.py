"""What a stream accepts: one JSON object per record, within the size limit, with its partition fields.

`RecordCheck` turns a record's bytes into the line that lands (the bytes as sent, or re-serialized onto one line
when the producer pretty-printed it) and its partition folder, or raises `BadRecord` with a code and a reason.
`split_body` cuts a `POST /streams/<name>` body (JSON Lines or a JSON array) into records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from landfall.config import StreamConfig
from landfall.errors import InvalidInput
from landfall.streams.keys import partition_value


class BadRecord(ValueError):
    """A record the stream cannot deliver: `code` names the kind (as AWS error codes do), the message the reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class BadBody(InvalidInput):
    """A request body that cannot be cut into records at all (a JSON array that does not parse)."""


UNPARSED: Any = object()  # a record's parsed value before it is parsed
_ABSENT = object()
_decode = json.JSONDecoder().raw_decode  # the record is stripped: no whitespace around it to skip


@dataclass
class RecordCheck:
    config: StreamConfig

    def __post_init__(self) -> None:
        self.limit = self.config.record_limit
        self.fields = [(name, name.split(".")) for name in self.config.partition_by]

    def __call__(self, data: bytes, parsed: Any = UNPARSED) -> tuple[bytes, bytes]:
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
        obj = parsed
        if obj is UNPARSED:
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BadRecord("NotUtf8", f"not UTF-8 (byte {exc.start + 1} is {line[exc.start]:#04x})") from None
            try:
                obj, end = _decode(text)
                if end != len(text):
                    raise json.JSONDecodeError("Extra data", text, end)
            except json.JSONDecodeError as exc:
                raise BadRecord("InvalidJson", f"not JSON: {exc.msg} (column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise BadRecord(
                "NotAnObject", f"a JSON {_json_kind(obj)}, not an object; each record must be one JSON object"
            )
        if b"\n" in line or b"\r" in line:
            line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
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
                    f"partition field `{name}` is a JSON {_json_kind(value)}; expected a string, number or boolean",
                )
            if not text or len(text) > 512:
                raise BadRecord(
                    "PartitionFieldInvalid", f"partition field `{name}` is {'empty' if not text else 'over 512 chars'}"
                )
            parts.append(f"{name}={partition_value(text)}/")
        return "".join(parts).encode("utf-8")


def _json_kind(obj: Any) -> str:
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, bool):
        return "boolean"
    if obj is None:
        return "null"
    if isinstance(obj, dict):
        return "object"
    return "number"


def split_body(body: bytes, content_type: str = "") -> list[tuple[bytes, int, Any]]:
    """Records of a request body: (bytes, line or index, parsed object or `UNPARSED`).

    A body whose first character is `[` is a JSON array of records (the position is the element's index); with
    `Content-Type: application/json` any other body is one JSON document; otherwise it is JSON Lines (one record
    per line, blank lines skipped, the position is the line number).
    """
    head = body.lstrip()[:1]
    if head == b"[" or (
        head and "json" in content_type and "ndjson" not in content_type and "jsonl" not in content_type
    ):
        try:
            doc = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            where = f" line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise BadBody(
                f"request body:{where}: not valid JSON: {reason}; send a JSON array of records or JSON Lines"
            ) from None
        items = doc if isinstance(doc, list) else [doc]
        return [
            (json.dumps(o, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), i, o)
            for i, o in enumerate(items)
        ]
    out = []
    for n, line in enumerate(body.split(b"\n"), 1):
        if line.strip():
            out.append((line, n, UNPARSED))
    return out
