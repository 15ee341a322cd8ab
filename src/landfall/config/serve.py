"""`serve:` (the HTTP API, dashboard and `/metrics`) and `alerts:` (webhooks and what they are told about)."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from landfall.config.common import Model


class QuarantineRateAbove(Model):
    """Alert when a run sets aside more than this share of the rows it read (0.05: 5%)."""

    quarantine_rate_above: float = Field(gt=0, le=1)
    workflow: str | None = None  # only this workflow's runs


class NoFileFor(Model):
    """Alert when no file has landed under `prefix` for this long (`30m`, `2h`, `1d`)."""

    no_file_for: str
    prefix: str = ""

    @field_validator("no_file_for")
    @classmethod
    def _duration(cls, value: str) -> str:
        from landfall.maintenance import parse_duration

        parse_duration(value)
        return value


def _alert_kind(item: Any) -> str:
    if isinstance(item, dict):
        return "freshness" if "no_file_for" in item else "rate"
    if isinstance(item, (QuarantineRateAbove, NoFileFor)):
        return "rate" if isinstance(item, QuarantineRateAbove) else "freshness"
    return "event"


AlertRule = Annotated[
    Annotated[Literal["dead_letter", "schema_change"], Tag("event")]
    | Annotated[QuarantineRateAbove, Tag("rate")]
    | Annotated[NoFileFor, Tag("freshness")],
    Discriminator(_alert_kind),
]


class AlertSettings(Model):
    """One webhook and what it is told about."""

    webhook: str
    format: Literal["json", "slack"] = "json"
    on: list[AlertRule] = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)  # e.g. Authorization for the receiver
    max_attempts: int = Field(6, ge=1)  # tries per alert, with exponential backoff (1 s, 2 s, 4 s, ... 60 s)
    timeout_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true; in an alert it can only mean `on`
        if isinstance(value, dict) and True in value and "on" not in value:
            value = {("on" if k is True else k): v for k, v in value.items()}
        return value

    @field_validator("on", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        expected = (
            "expected `dead_letter`, `schema_change`, `{quarantine_rate_above: 0.05}` or "
            "`{no_file_for: 2h, prefix: sales/}`"
        )
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item not in ("dead_letter", "schema_change"):
                raise ValueError(f"unknown alert event `{item}`; {expected}")
            if isinstance(item, dict) and not ({"quarantine_rate_above", "no_file_for"} & set(item)):
                raise ValueError(f"unknown alert rule `{item}`; {expected}")
        return value

    @field_validator("webhook")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http:// or https:// URL; got `{value}`")
        return value


class ServeSettings(Model):
    """`landfall serve`: the HTTP API, dashboard and `/metrics`."""

    host: str = "127.0.0.1"  # another address makes the token required for every call
    port: int = Field(8080, ge=0, le=65535)  # 0: any free port
    token_env: str = "LANDFALL_TOKEN"  # the environment variable holding the bearer token
    token: str | None = None  # the token itself (prefer `token_env`: a file is easier to leak)
    query_row_limit: int = Field(10_000, ge=1)  # rows the query endpoint and SQL page return at most
    query_timeout_seconds: float = Field(30.0, gt=0)  # a query running longer is stopped

    def bearer_token(self, environ: dict[str, str] | None = None) -> str | None:
        """The token from `token`, else from the environment variable `token_env`."""
        env = os.environ if environ is None else environ
        return self.token or env.get(self.token_env) or None
