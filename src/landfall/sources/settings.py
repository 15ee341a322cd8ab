"""`sources:` in landfall.yaml: which event sources `landfall up` runs, each by name with its options.

    sources:
      - listing                                   # a name alone: its defaults
      - {listing: {interval_seconds: 300}}        # a name with options
      - sqs: {queue_url: "https://sqs.eu-west-1.amazonaws.com/123456789012/landing", wait_seconds: 20}

Unset, `up` runs `listing` and `watch` on a local landing zone and `listing` on an object store.
"""

import re
from typing import Annotated, Any, ClassVar

from msgspec import Meta

from landfall.config.model import Context, Invalid, Model, Problems, parse


class _Options(Model, kw_only=True):
    """A source's options."""


class ListingOptions(_Options, kw_only=True):
    """The periodic listing of the landing zone (the backfill that finds what events missed)."""

    interval_seconds: Annotated[float, Meta(gt=0)] | None = None  # how often; default `reconcile_seconds` (5 s)


class WatchOptions(_Options, kw_only=True):
    """The file watcher of a local landing zone (inotify); no options."""


class SqsOptions(_Options, kw_only=True):
    """S3 event notifications read from an SQS queue (S3 -> SQS, S3 -> SNS -> SQS or S3 -> EventBridge -> SQS)."""

    queue_url: str  # https://sqs.<region>.amazonaws.com/<account>/<queue>
    wait_seconds: Annotated[int, Meta(ge=0, le=20)] = 20  # long polling: how long a receive waits for messages
    # a message stays hidden this long, extended while worked
    visibility_seconds: Annotated[int, Meta(ge=10, le=43200)] = 120
    region: str | None = None  # default: from the queue URL, else `storage.region`, else AWS_REGION
    endpoint_url: str | None = None  # an SQS-compatible server; default: AWS's endpoint for the region
    profile: str | None = None  # a profile of ~/.aws/credentials; default: `storage:`'s credentials, else AWS_*

    def _check(self, context: Context) -> None:
        for key in ("queue_url", "endpoint_url"):
            value = getattr(self, key)
            if value is not None and not re.match(r"^https?://[^/\s]+", value):
                raise Invalid(f"expected an http:// or https:// URL; got `{value}`", key)

    def region_name(self, fallback: str | None = None) -> str:
        """The queue's region: `region`, else the one in an AWS queue URL, else `fallback`, else `us-east-1`."""
        found = re.match(r"^https?://sqs[.-]([a-z0-9-]+)\.amazonaws\.com", self.queue_url)
        return self.region or (found.group(1) if found else None) or fallback or "us-east-1"


#: the options of the sources landfall knows; a source of one's own (`"package.module:Class"`) takes a mapping
OPTIONS: dict[str, type[_Options]] = {"listing": ListingOptions, "watch": WatchOptions, "sqs": SqsOptions}


class SourceConfig(Model, kw_only=True):
    """One entry of `sources:`: a name (`listing`) or a name with its options (`{sqs: {queue_url: ...}}`)."""

    named_options: ClassVar[dict[str, type[_Options]]] = OPTIONS  # the names a source is written by, their options

    name: str
    options: Any = None

    @classmethod
    def _shape(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value, "options": {}}
        if isinstance(value, dict) and len(value) == 1 and "name" not in value:
            ((name, options),) = value.items()
            return {"name": name, "options": {} if options is None else options}
        raise ValueError(
            "expected a source name (`listing`) or one name with its options (`{sqs: {queue_url: ...}}`); "
            f"got `{value}`"
        )

    def _check(self, context: Context) -> None:
        from landfall.registry import check_available, names

        known = [n for n in names("source") if n in self.named_options]
        model = self.named_options.get(self.name)
        if model is None and ":" not in self.name:
            raise ValueError(
                f"unknown source `{self.name}`; expected one of {', '.join(f'`{n}`' for n in known)} "
                '(or a source of your own as `"package.module:Class"`)'
            )
        if model is None:
            if not isinstance(self.options, dict):
                raise ValueError(f"source `{self.name}`: options must be a mapping")
            return
        if not isinstance(self.options, dict | model):
            raise ValueError(f"source `{self.name}`: options must be a mapping of its settings")
        if isinstance(self.options, dict):
            try:
                self.options = parse(model, self.options, context)
            except Problems as exc:
                problems = "; ".join(
                    f"`{'.'.join(str(p) for p in e.loc)}`: {_plain(e.message, e.kind)}"
                    if e.loc
                    else _plain(e.message, e.kind)
                    for e in exc.problems
                )
                raise ValueError(f"source `{self.name}`: {problems}") from None
        try:
            check_available("source", self.name)  # `sqs` without boto3: the install line, now
        except ImportError as exc:
            raise ValueError(str(exc)) from None


def _plain(message: str, kind: str) -> str:
    if kind == "unknown_key":
        return "unknown option; check the spelling (see the README's `sources:`)"
    return message
