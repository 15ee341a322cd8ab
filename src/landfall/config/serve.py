"""`serve:` (the HTTP API, dashboard and `/metrics`) and `alerts:` (webhooks and what they are told about)."""

import os
import re
from typing import Annotated, Any, Literal

from msgspec import Meta

from landfall.config.model import Context, Invalid, Model, at

_RULE = "_rule"  # the tag `AlertSettings._shape` gives a rule's mapping: which of the two it is


class QuarantineRateAbove(Model, tag="rate", tag_field=_RULE, kw_only=True):
    """Alert when a run sets aside more than this share of the rows it read (0.05: 5%)."""

    quarantine_rate_above: Annotated[float, Meta(gt=0, le=1)]
    workflow: str | None = None  # only this workflow's runs


class NoFileFor(Model, tag="freshness", tag_field=_RULE, kw_only=True):
    """Alert when no file has landed under `prefix` for this long (`30m`, `2h`, `1d`)."""

    no_file_for: str
    prefix: str = ""

    def _check(self, context: Context) -> None:
        from landfall.maintenance import parse_duration

        with at("no_file_for"):
            parse_duration(self.no_file_for)


AlertRule = Literal["dead_letter", "schema_change"] | QuarantineRateAbove | NoFileFor


def _rules(value: Any) -> Any:
    """Each rule of `on:` checked, and a mapping tagged with the rule it is."""
    expected = (
        "expected `dead_letter`, `schema_change`, `{quarantine_rate_above: 0.05}` or "
        "`{no_file_for: 2h, prefix: sales/}`"
    )
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str) and item not in ("dead_letter", "schema_change"):
            raise ValueError(f"unknown alert event `{item}`; {expected}")
        if isinstance(item, dict) and not ({"quarantine_rate_above", "no_file_for"} & set(item)):
            raise ValueError(f"unknown alert rule `{item}`; {expected}")
    if not isinstance(value, list):
        return value
    return [
        {**item, _RULE: "freshness" if "no_file_for" in item else "rate"} if isinstance(item, dict) else item
        for item in items
    ]


class AlertSettings(Model, kw_only=True):
    """One webhook and what it is told about."""

    webhook: str
    format: Literal["json", "slack"] = "json"
    on: Annotated[list[AlertRule], Meta(min_length=1)]
    headers: dict[str, str] = {}  # e.g. Authorization for the receiver
    max_attempts: Annotated[int, Meta(ge=1)] = 6  # tries per alert, with exponential backoff (1 s, 2 s, ... 60 s)
    timeout_seconds: Annotated[float, Meta(gt=0)] = 10.0

    _short_forms = {"on": _rules}

    @classmethod
    def _shape(cls, value: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true; in an alert it can only mean `on`
        if isinstance(value, dict) and True in value and "on" not in value:
            value = {("on" if k is True else k): v for k, v in value.items()}
        return value

    def _check(self, context: Context) -> None:
        if not re.match(r"^https?://[^/\s]+", self.webhook):
            raise Invalid(f"expected an http:// or https:// URL; got `{self.webhook}`", "webhook")


class ServeSettings(Model, kw_only=True):
    """`landfall serve`: the HTTP API, dashboard and `/metrics`."""

    host: str = "127.0.0.1"  # another address makes the token required for every call
    port: Annotated[int, Meta(ge=0, le=65535)] = 8080  # 0: any free port
    token_env: str = "LANDFALL_TOKEN"  # the environment variable holding the bearer token
    token: str | None = None  # the token itself (prefer `token_env`: a file is easier to leak)
    query_row_limit: Annotated[int, Meta(ge=1)] = 10_000  # rows the query endpoint and SQL page return at most
    query_timeout_seconds: Annotated[float, Meta(gt=0)] = 30.0  # a query running longer is stopped

    def bearer_token(self, environ: dict[str, str] | None = None) -> str | None:
        """The token from `token`, else from the environment variable `token_env`."""
        env = os.environ if environ is None else environ
        return self.token or env.get(self.token_env) or None
