"""`streams:`: records posted over HTTP (or the Firehose / Kinesis API), their buffering and where their files
land."""

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from landfall.config.common import landing_prefix, parse_size
from landfall.config.model import Context, Invalid, Model, at


class StreamBuffer(Model, kw_only=True):
    """When a stream's records are flushed into a landed file (whichever comes first, as Firehose's buffering
    hints), and how much unflushed data it holds before producers are told to slow down."""

    size_mb: Annotated[float, Meta(gt=0, le=1024)] = 5.0
    interval_seconds: Annotated[float, Meta(gt=0, le=86400)] = 60.0
    limit_mb: Annotated[float, Meta(gt=0)] | None = None  # default: the larger of 64 and 4 x size_mb

    @property
    def size_bytes(self) -> int:
        return int(self.size_mb * (1 << 20))

    @property
    def limit_bytes(self) -> int:
        return int((self.limit_mb if self.limit_mb is not None else max(64.0, 4 * self.size_mb)) * (1 << 20))

    def _check(self, context: Context) -> None:
        if self.limit_mb is not None and self.limit_mb < self.size_mb:
            raise ValueError(
                f"`limit_mb` ({self.limit_mb:g}) is below `size_mb` ({self.size_mb:g}): a buffer could never fill; "
                "raise `limit_mb` or leave it out"
            )


_STREAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIELD_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")


def _partition_fields(value: Any) -> Any:
    value = [value] if isinstance(value, str) else (value or [])
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str) or not _FIELD_PATH.fullmatch(item):
                raise ValueError(
                    f"partition field `{item}`: expected a record field name (letters, digits, `_`, `-`, not "
                    "starting with `_`), or a dotted path into nested objects such as `customer.country`"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"partition fields repeat: {value}")
    return value


class StreamConfig(Model, kw_only=True):
    """A stream: records posted over HTTP (or the Firehose / Kinesis API) become JSON Lines files under `prefix`."""

    name: str
    prefix: str | None = None  # default `<name>/`
    buffer: StreamBuffer = msgspec.field(default_factory=StreamBuffer)
    partition_by: list[str] = []  # record fields: `event_type=view/` folders
    format: Literal["jsonl"] = "jsonl"
    compression: Literal["none", "gzip"] = "none"
    max_record_size: str = "1000KiB"  # larger records are refused (or go to `error_prefix`)
    error_prefix: str | None = None  # records that cannot be delivered land here instead of being refused

    _short_forms = {"partition_by": _partition_fields}

    def _check(self, context: Context) -> None:
        if not _STREAM_NAME.fullmatch(self.name):
            raise Invalid(f"stream name `{self.name}`: use 1 to 64 letters, digits, `_`, `.` or `-`", "name")
        with at("max_record_size"):
            if parse_size(self.max_record_size) < 1:
                raise ValueError("`max_record_size` must be at least 1 byte")
        self.prefix = landing_prefix(self.prefix or f"{self.name}/", "stream prefix")
        if self.error_prefix is not None:
            self.error_prefix = landing_prefix(self.error_prefix, "`error_prefix`")
            if self.error_prefix.startswith(self.prefix) or self.prefix.startswith(self.error_prefix):
                raise ValueError(
                    f"`error_prefix` `{self.error_prefix}` and `prefix` `{self.prefix}` overlap: the workflow "
                    "of the stream's files would load its error records too; use separate folders such as "
                    f"`errors/{self.name}/`"
                )

    @property
    def record_limit(self) -> int:
        return parse_size(self.max_record_size)
