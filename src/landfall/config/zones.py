"""Where the zones live (`lake:`, `zones:`: folders or URLs) and how object storage is reached (`storage:`)."""

import re
from typing import Any, Literal

from landfall.config.model import Context, Invalid, Model, at


class Zones(Model, kw_only=True):
    """Where each zone lives: a folder, or a URL (`s3://bucket/prefix`, `file://`, `memory://`)."""

    landing: str | None = None
    tables: str | None = None
    quarantine: str | None = None
    state: str | None = None

    def _check(self, context: Context) -> None:
        for key in ("landing", "tables", "quarantine", "state"):
            with at(key):
                zone_url(getattr(self, key))


def zone_url(value: str | None) -> str | None:
    """A folder, or a URL of a storage protocol fsspec knows (its library may still be missing: that is one line
    with the install command when the zone is opened)."""
    if value is None or "://" not in value:
        return value
    protocol = value.split("://", 1)[0]
    from fsspec.registry import known_implementations, registry

    if protocol not in known_implementations and protocol not in registry:
        from landfall.redaction import redact

        raise ValueError(
            f"`{redact(value)}`: unknown storage protocol `{protocol}://`; use a folder or a URL such as "
            "`s3://bucket/prefix`, `file:///data/lake`, `memory://tests`"
        )
    return value


class StorageSettings(Model, kw_only=True):
    """How to reach zones on object storage (`s3://`). Unset values come from the usual `AWS_*` environment
    variables and profiles (`~/.aws/credentials`)."""

    endpoint_url: str | None = None  # an S3-compatible server, e.g. `http://127.0.0.1:8333`
    region: str | None = None
    key: str | None = None  # access key id
    secret: str | None = None  # secret access key
    token: str | None = None  # session token (temporary credentials)
    profile: str | None = None  # a profile of ~/.aws/credentials
    anon: bool = False  # public buckets: no signing
    options: dict[str, Any] = {}  # more fsspec/s3fs arguments, passed as they are
    delta_options: dict[str, str] = {}  # more delta-rs storage options, as they are
    # Delta commits through the state store's lock: `auto` when the server ignores conditional writes (probed)
    commit_lock: Literal["auto", "always", "never"] = "auto"

    def _check(self, context: Context) -> None:
        value = self.endpoint_url
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise Invalid(
                f"expected an http:// or https:// URL such as `http://127.0.0.1:8333`; got `{value}`", "endpoint_url"
            )
        self.endpoint_url = value.rstrip("/") if value else value
        if bool(self.key) != bool(self.secret):
            raise ValueError("`key` and `secret` go together: set both, or neither (then AWS_* or a profile)")
        if self.anon and (self.key or self.profile):
            raise ValueError("`anon: true` reads public buckets without credentials; remove `key`/`profile`")

    def resolved(self) -> Any:
        from landfall.storage import StorageOptions

        return StorageOptions(
            endpoint_url=self.endpoint_url,
            region=self.region,
            key=self.key,
            secret=self.secret,
            token=self.token,
            profile=self.profile,
            anon=self.anon,
            options=dict(self.options),
            delta_options=dict(self.delta_options),
            commit_lock=self.commit_lock,
        )
