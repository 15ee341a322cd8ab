"""How landfall reaches a zone's store: `StorageOptions` (the `storage:` section of landfall.yaml, as fsspec and
delta-rs want it), what a URL names (`is_local`, `protocol_of`), the fsspec filesystem of a URL, and DuckDB
connections reading through fsspec."""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from landfall.errors import ConfigError
from landfall.redaction import redact, remember


@dataclass(frozen=True)
class StorageOptions:
    """How to reach object stores: the `storage:` section of landfall.yaml, resolved. Anything unset comes from
    the usual `AWS_*` environment variables and profiles."""

    endpoint_url: str | None = None
    region: str | None = None
    key: str | None = None
    secret: str | None = None
    token: str | None = None
    profile: str | None = None
    anon: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # passed to the fsspec filesystem as they are
    delta_options: dict[str, str] = field(default_factory=dict)  # passed to delta-rs as they are
    commit_lock: str = "auto"  # Delta commits through the state store: auto (when needed) | always | never

    def __post_init__(self) -> None:
        for secret in (self.secret, self.token):
            remember(secret)

    def __hash__(self) -> int:  # options are dicts: hash what identifies a connection
        return hash((self.endpoint_url, self.region, self.key, self.profile, self.anon))

    def fsspec_kwargs(self, protocol: str) -> dict[str, Any]:
        """Keyword arguments for the fsspec filesystem of `protocol`."""
        if protocol not in ("s3", "s3a"):
            return dict(self.options)
        kw: dict[str, Any] = {}
        if self.endpoint_url:
            kw["endpoint_url"] = self.endpoint_url
        if self.key:
            kw["key"] = self.key
        if self.secret:
            kw["secret"] = self.secret
        if self.token:
            kw["token"] = self.token
        if self.profile:
            kw["profile"] = self.profile
        if self.anon:
            kw["anon"] = True
        client = dict(self.options.get("client_kwargs") or {})
        if self.region:
            client.setdefault("region_name", self.region)
        if client:
            kw["client_kwargs"] = client
        config = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}
        config.update(self.options.get("config_kwargs") or {})
        kw["config_kwargs"] = config
        kw["use_listings_cache"] = False  # other processes and hosts change the zone: always list afresh
        kw.update({k: v for k, v in self.options.items() if k not in ("client_kwargs", "config_kwargs")})
        return kw

    def delta(self, protocol: str) -> dict[str, str]:
        """delta-rs storage options for a table of `protocol` (credentials, endpoint, region)."""
        if protocol not in ("s3", "s3a"):
            return dict(self.delta_options)
        out: dict[str, str] = {}
        if self.endpoint_url:
            out["AWS_ENDPOINT_URL"] = self.endpoint_url
            if self.endpoint_url.startswith("http://"):
                out["AWS_ALLOW_HTTP"] = "true"
        region = self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region or self.endpoint_url:
            out["AWS_REGION"] = region or "us-east-1"
        for name, value in (
            ("AWS_ACCESS_KEY_ID", self.key),
            ("AWS_SECRET_ACCESS_KEY", self.secret),
            ("AWS_SESSION_TOKEN", self.token),
            ("AWS_PROFILE", self.profile),
        ):
            if value:
                out[name] = value
        if self.anon:
            out["AWS_SKIP_SIGNATURE"] = "true"
        out.update(self.delta_options)
        return out


DEFAULT_OPTIONS = StorageOptions()


def is_local(url: str) -> bool:
    """A plain path or a `file://` URL."""
    return "://" not in url or url.startswith(("file://", "local://"))


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "file"


FS_LOCK = threading.Lock()  # held while making filesystems, registering them with DuckDB, and by the probe cache


def filesystem(url: str, options: StorageOptions) -> tuple[Any, str]:
    """The filesystem of a zone's URL and the zone's root in it: a local folder's own (`landfall.storage.local`),
    else fsspec's for the protocol."""
    protocol = protocol_of(url)
    if protocol in ("file", "local"):
        from landfall.storage.local import LocalFiles

        return LocalFiles(), LocalFiles._strip_protocol(url)
    try:
        import fsspec

        with FS_LOCK:
            return fsspec.core.url_to_fs(url, **options.fsspec_kwargs(protocol))
    except ImportError as exc:
        from landfall.registry import missing_dependency

        module = (getattr(exc, "name", None) or "").split(".")[0] or {"s3": "s3fs", "s3a": "s3fs"}.get(protocol, "")
        if protocol in ("s3", "s3a") or module == "s3fs":
            raise missing_dependency(f"{protocol}://", "s3fs", "s3") from None
        raise missing_dependency(f"{protocol}://", module or protocol, None) from None
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise ConfigError(
                f"`{redact(url)}`: unknown storage protocol `{protocol}://`; use a folder, "
                "`file://`, `s3://` or `memory://`"
            ) from None
        raise


def register_filesystem(con: Any, fs: Any) -> None:
    """Register an fsspec filesystem with a DuckDB database, through the connection given (registration is
    database-wide: pass the same connection object for one database). Another instance of the same protocol
    (another endpoint or credentials) registered through it before is replaced."""
    name = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    with FS_LOCK:
        mine = _REGISTERED.setdefault(con, {})
        if mine.get(name) is fs:
            return
        if name in con.list_filesystems():
            con.unregister_filesystem(name)
        con.register_filesystem(fs)
        mine[name] = fs


# per connection: the filesystem registered through it under each protocol name
_REGISTERED: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
