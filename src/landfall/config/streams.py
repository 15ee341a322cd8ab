"""`streams:`: records posted over HTTP (or the Firehose / Kinesis API), their buffering and where their files
land."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from landfall.config.common import Model, landing_prefix, parse_size


class StreamBuffer(Model):
    """When a stream's records are flushed into a landed file (whichever comes first, as Firehose's buffering
    hints), and how much unflushed data it holds before producers are told to slow down."""

    size_mb: float = Field(5.0, gt=0, le=1024)
    interval_seconds: float = Field(60.0, gt=0, le=86400)
    limit_mb: float | None = Field(None, gt=0)  # default: the larger of 64 and 4 x size_mb

    @property
    def size_bytes(self) -> int:
        return int(self.size_mb * (1 << 20))

    @property
    def limit_bytes(self) -> int:
        return int((self.limit_mb if self.limit_mb is not None else max(64.0, 4 * self.size_mb)) * (1 << 20))

    @model_validator(mode="after")
    def _limit_above_size(self) -> StreamBuffer:
        if self.limit_mb is not None and self.limit_mb < self.size_mb:
            raise ValueError(
                f"`limit_mb` ({self.limit_mb:g}) is below `size_mb` ({self.size_mb:g}): a buffer could never fill; "
                "raise `limit_mb` or leave it out"
            )
        return self


_STREAM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_FIELD_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_][A-Za-z0-9_-]*)*")


class StreamConfig(Model):
    """A stream: records posted over HTTP (or the Firehose / Kinesis API) become JSON Lines files under `prefix`."""

    name: str
    prefix: str | None = None  # default `<name>/`
    buffer: StreamBuffer = Field(default_factory=StreamBuffer)
    partition_by: list[str] = Field(default_factory=list)  # record fields: `event_type=view/` folders
    format: Literal["jsonl"] = "jsonl"
    compression: Literal["none", "gzip"] = "none"
    max_record_size: str = "1000KiB"  # larger records are refused (or go to `error_prefix`)
    error_prefix: str | None = None  # records that cannot be delivered land here instead of being refused

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _STREAM_NAME.fullmatch(value):
            raise ValueError(f"stream name `{value}`: use 1 to 64 letters, digits, `_`, `.` or `-`")
        return value

    @field_validator("partition_by", mode="before")
    @classmethod
    def _fields(cls, value: Any) -> Any:
        value = [value] if isinstance(value, str) else (value or [])
        for item in value:
            if not isinstance(item, str) or not _FIELD_PATH.fullmatch(item):
                raise ValueError(
                    f"partition field `{item}`: expected a record field name (letters, digits, `_`, `-`, not "
                    "starting with `_`), or a dotted path into nested objects such as `customer.country`"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"partition fields repeat: {value}")
        return value

    @field_validator("max_record_size")
    @classmethod
    def _size(cls, value: str) -> str:
        if parse_size(value) < 1:
            raise ValueError("`max_record_size` must be at least 1 byte")
        return value

    @model_validator(mode="after")
    def _prefixes(self) -> StreamConfig:
        self.prefix = landing_prefix(self.prefix or f"{self.name}/", "stream prefix")
        if self.error_prefix is not None:
            self.error_prefix = landing_prefix(self.error_prefix, "`error_prefix`")
            if self.error_prefix.startswith(self.prefix) or self.prefix.startswith(self.error_prefix):
                raise ValueError(
                    f"`error_prefix` `{self.error_prefix}` and `prefix` `{self.prefix}` overlap: the workflow "
                    "of the stream's files would load its error records too; use separate folders such as "
                    f"`errors/{self.name}/`"
                )
        return self

    @property
    def record_limit(self) -> int:
        return parse_size(self.max_record_size)
