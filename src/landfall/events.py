"""What an event source reports: an object appeared (or changed) in the landing zone; and the one check every key
that comes from outside (a command line, an HTTP request, a queue message, a stream) goes through."""

from __future__ import annotations

import re

import msgspec

from landfall.errors import MalformedEvent, UnsafeKey


class ObjectCreated(msgspec.Struct, frozen=True):
    """A file version in the landing zone. `key` is relative to the landing root (`sales/2024-01.csv`)."""

    key: str
    size: int
    mtime: float
    etag: str = ""

    @property
    def prefix(self) -> str:
        return self.key.rsplit("/", 1)[0] + "/" if "/" in self.key else ""


def is_hidden(key: str) -> bool:
    """Whether landfall never loads `key` (`never_loaded`)."""
    return never_loaded(key) is not None


def never_loaded(key: str) -> str | None:
    """Why landfall never loads `key`, or None: a name (of the file or a folder) starting with `.` or `_`
    (temporary uploads, markers, `.DS_Store`), or a file's temporary name: an upload or download in progress
    (`x.csv.filepart` as WinSCP uploads, `x.part`, `x.crdownload`), an editor's backup (`x.csv~`) or an Office
    owner file (`~$x.xlsx`). Such a file, loaded, failed as a format no name tells, or with `read.format` set
    loaded a half-written upload."""
    if _HIDDEN.search(key):
        return "names starting with `.` or `_` are never loaded"
    if _TEMPORARY.search(key):
        return f"temporary names ({TEMPORARY_NAMES}) are never loaded"
    return None


_HIDDEN = re.compile(r"(?:^|/)[._]")
_TEMPORARY = re.compile(
    r"(?:\.(?:part|partial|filepart|crdownload|download|tmp|temp)|~)$|(?:^|/)~\$[^/]*$", re.IGNORECASE
)
TEMPORARY_NAMES = "`x.part`, `x.partial`, `x.filepart`, `x.crdownload`, `x.download`, `x.tmp`, `x.temp`, `x~`, `~$x`"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


def is_utf8(name: str) -> bool:
    """Whether a name can be written as UTF-8: not a local file name of other bytes (which Python decodes into
    lone surrogates), which no state store, URL or JSON holds."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def safe_key(key: str) -> str:
    """A key relative to its zone, checked: the normalized key (`./` segments dropped), or `UnsafeKey`.

    Refused: `..` segments, absolute paths (`/x`, `C:...`), backslashes, NUL and other control characters,
    names that are not UTF-8 (a local file name of other bytes), and empty segments (`a//b`, a trailing `/`). A
    key that passes names a place inside its zone, whatever the storage behind it.
    """
    if not isinstance(key, str) or not key:
        raise UnsafeKey("empty key: name a file inside the zone, like `sales/2024-01.csv`")
    shown = key.encode("unicode_escape").decode("ascii")
    if _CONTROL.search(key):
        raise UnsafeKey(f"key `{shown}` holds a control character (NUL, newline, ...); use printable names only")
    if not is_utf8(key):
        raise UnsafeKey(f"key `{shown}` is not UTF-8 (a file name of other bytes); rename the file")
    if "\\" in key:
        raise UnsafeKey(f"key `{shown}` holds a backslash; separate folders with `/`")
    if key.startswith("/") or _DRIVE.match(key):
        raise UnsafeKey(f"key `{shown}` is an absolute path; keys are relative to their zone, like `sales/a.csv`")
    parts = [p for p in key.split("/") if p != "."]
    if ".." in parts:
        raise UnsafeKey(f"key `{shown}` has a `..` segment, which would leave its zone; name a place inside it")
    if not parts or "" in parts:
        raise UnsafeKey(f"key `{shown}` has an empty segment (`//` or a trailing `/`); name a file, like `a/b.csv`")
    return "/".join(parts)


# --- S3 event notifications (what an `sqs` source receives) ---------------------------------------------------


class Notification(msgspec.Struct, frozen=True):
    """One object event of an S3 event notification: the bucket, the object's key (decoded), what happened.

    `created` is True for an object created (any `ObjectCreated:*`, EventBridge `Object Created`); other events
    (removed, restored, tagged, ...) are reported with `created` False so that their message can be let go."""

    bucket: str
    key: str
    event: str
    created: bool
    size: int | None = None
    etag: str = ""
    sequencer: str = ""


def s3_notifications(body: str | bytes) -> list[Notification]:
    """The object events in an SQS message body, in any of the shapes S3 notifications reach a queue:

    - S3 -> SQS: `{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket":
      {"name": ...}, "object": {"key": ..., "size": ..., "eTag": ...}}}]}`; keys are URL-encoded there, spaces
      as `+` (`red+flower.jpg` is `red flower.jpg`, a plus sign is `%2B`);
    - S3 -> SNS -> SQS: an SNS envelope (`"Type": "Notification"`) whose `Message` is one of these shapes as a
      string (with raw message delivery, the shape itself);
    - S3 -> EventBridge -> SQS: `{"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket":
      {"name": ...}, "object": {"key": ..., "size": ..., "etag": ...}}}`; keys are not encoded there.

    S3's test message (`"Event": "s3:TestEvent"`, sent when notifications are set up) holds no events: `[]`.
    Anything else raises `MalformedEvent` saying what was found."""
    doc = _json(body, "the message body")
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and "Message" in doc:  # SNS envelope
        inner = doc["Message"]
        if not isinstance(inner, str):
            raise MalformedEvent("an SNS notification whose `Message` is not a string")
        doc = _json(inner, "the SNS notification's `Message`")
    if not isinstance(doc, dict):
        raise MalformedEvent(f"expected a JSON object; got {type(doc).__name__}")
    if doc.get("Event") == "s3:TestEvent":
        return []
    if "Records" in doc:
        records = doc["Records"]
        if not isinstance(records, list):
            raise MalformedEvent("`Records` is not a list")
        return [_record(r, i) for i, r in enumerate(records)]
    if doc.get("source") == "aws.s3" and "detail" in doc:
        return [_eventbridge(doc)]
    keys = ", ".join(f"`{k}`" for k in list(doc)[:6]) or "none"
    raise MalformedEvent(
        f"not an S3 event notification (keys: {keys}); expected `Records` (S3 -> SQS), an SNS `Notification` "
        "or an EventBridge event from `aws.s3`"
    )


def _json(text: str | bytes, what: str) -> object:
    import json

    try:
        return json.loads(text)
    except (ValueError, TypeError) as exc:
        raise MalformedEvent(f"{what} is not JSON: {exc}") from None


def _record(record: object, i: int) -> Notification:
    from urllib.parse import unquote_plus

    where = f"`Records[{i}]`"
    if not isinstance(record, dict):
        raise MalformedEvent(f"{where} is not an object")
    name = str(record.get("eventName") or "")
    if record.get("eventSource") != "aws:s3" or not name:
        raise MalformedEvent(f"{where}: expected `eventSource` `aws:s3` and an `eventName`")
    s3 = record.get("s3")
    bucket = _field(s3, "bucket", where + ".s3")
    obj = _field(s3, "object", where + ".s3")
    return Notification(
        bucket=_text(bucket, "name", where + ".s3.bucket"),
        key=unquote_plus(_text(obj, "key", where + ".s3.object")),
        event=name,
        created=name.startswith("ObjectCreated:"),
        size=_size(obj.get("size")),
        etag=str(obj.get("eTag") or obj.get("etag") or "").strip('"'),
        sequencer=str(obj.get("sequencer") or ""),
    )


def _eventbridge(doc: dict) -> Notification:
    name = str(doc.get("detail-type") or "")
    detail = doc["detail"]
    bucket = _field(detail, "bucket", "`detail`")
    obj = _field(detail, "object", "`detail`")
    return Notification(
        bucket=_text(bucket, "name", "`detail.bucket`"),
        key=_text(obj, "key", "`detail.object`"),
        event=name,
        created=name == "Object Created",
        size=_size(obj.get("size")),
        etag=str(obj.get("etag") or obj.get("eTag") or "").strip('"'),
        sequencer=str(obj.get("sequencer") or ""),
    )


def _field(node: object, name: str, where: str) -> dict:
    value = node.get(name) if isinstance(node, dict) else None
    if not isinstance(value, dict):
        raise MalformedEvent(f"{where}: `{name}` missing or not an object")
    return value


def _text(node: dict, name: str, where: str) -> str:
    value = node.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{where}: `{name}` missing or not a string")
    return value


def _size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
