"""Telling a store that cannot be reached from a file that is bad: `unreachable(exc)` reads an error's chain;
`Guard` (`Storage.guard`) turns such errors into `StorageUnavailable` naming the zone (retried, the file not
blamed), and a refused login or a missing bucket into `ZoneRefused` (a configuration error)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from landfall.errors import ConfigError, StorageUnavailable, Terminal
from landfall.redaction import redact

if TYPE_CHECKING:
    from landfall.storage.zone import Storage


class Guard:
    def __init__(self, storage: Storage, key: str) -> None:
        self.storage = storage
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        if exc is None or isinstance(exc, (StorageUnavailable, ConfigError)):
            return False
        label = self.storage.label
        if isinstance(exc, PermissionError) and not self.storage.is_local:  # the store said no to these credentials
            raise ZoneRefused(
                f"{label}: access denied ({first_line(exc)}); check the credentials in `storage:` or the AWS_* "
                "environment"
            ) from None
        if isinstance(exc, FileNotFoundError) and _no_bucket(exc):
            bucket = self.storage.root.split("/", 1)[0]
            raise ZoneRefused(f"{label}: bucket `{bucket}` does not exist; create it or fix the zone's URL") from None
        if not unreachable(exc):
            return False
        where = f"`{self.key}` in " if self.key else ""
        raise StorageUnavailable(f"{where}{label}: cannot reach the store: {first_line(exc)}") from exc


class ZoneRefused(ConfigError):
    """A zone's store refused the credentials, or its bucket does not exist: trying again will not help."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """An error, then the one it was raised from (or during), and so on; each once."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _no_bucket(exc: BaseException) -> bool:
    return any("NoSuchBucket" in str(e) or "specified bucket does not exist" in str(e) for e in _chain(exc))


_UNREACHABLE_TEXT = (
    "connection refused",
    "connect call failed",
    "cannot connect to host",
    "could not connect to the endpoint",
    "connection reset",
    "connection aborted",
    "server disconnected",
    "error sending request",
    "connect timeout",
    "read timeout",
    "timed out",
    "temporary failure in name resolution",
    "service unavailable",
    "slowdown",
    "slow down",
    "internalerror",
    "broken pipe",
    "end of file before message length reached",
    "no space left on device",  # a full disk (or quota) is the store's state too: it waits until there is room
    "disk quota exceeded",
    "too many open files",  # this process's (or the host's) descriptors are used up: the host's state, not the file's
)


# a Java exception of an input/output library, as a Spark error (Py4J's) prints it: `Caused by: java.io.IOException:
# No space left on device`, `org.apache.hadoop.fs.FSError: java.io.IOException: ...`, `java.net.ConnectException: ...`
_JAVA_IO = re.compile(
    r"^(?:(?:Caused by|Suppressed): )*((?:java\.io|java\.net|java\.nio|org\.apache\.hadoop\.fs|software\.amazon\.awssdk"
    r"|com\.amazonaws)\.[\w.$]+): (.*)$"
)
_JAVA_MISSING = ("FileNotFoundException", "NoSuchFileException", "AccessDeniedException")  # the file's, or the config's


def java_fault(exc: BaseException) -> str | None:
    """The line of a Java input/output exception in a Spark error (or one it was raised from) that says the store
    could not be reached or is full: `java.io.IOException: No space left on device`. Only such lines are read:
    a value Spark could not cast (`[CAST_INVALID_INPUT] The value 'connection refused' ...`) never counts."""
    return next((line for e in _chain(exc) if (line := _java_io_line(e))), None)


def _java_io_line(e: BaseException) -> str | None:
    if (type(e).__module__ or "").split(".")[0] not in ("py4j", "pyspark"):
        return None
    for line in str(e).splitlines():
        m = _JAVA_IO.match(line.strip())
        if m and not m.group(1).endswith(_JAVA_MISSING) and any(t in m.group(2).lower() for t in _UNREACHABLE_TEXT):
            return line.strip().removeprefix("Caused by: ")
    return None


def unreachable(exc: BaseException) -> bool:
    """Whether an error (or one it was raised from) says the store could not be reached, as opposed to a file
    that is missing, unreadable or bad. Only errors of input/output libraries are read for their text: an
    engine's complaint about a value (`"timed out" is not an INT64`) never counts. A Spark error's Java cause
    decides even when an engine took it for the file's (`java_fault`)."""
    if java_fault(exc):
        return True
    for e in _chain(exc):
        if isinstance(e, StorageUnavailable):
            return True
        engine_error = str(getattr(e, "engine_error", "") or "")
        if engine_error.startswith("IO Error") and any(t in engine_error.lower() for t in _UNREACHABLE_TEXT):
            return True  # the engine could not read a table file from the store (not the landed file's fault)
        if isinstance(e, Terminal) or isinstance(e, (FileNotFoundError, PermissionError)):
            return False
        if isinstance(e, (ConnectionError, TimeoutError)):
            return True
        if type(e).__name__ in _UNREACHABLE_TYPES:
            return True
        if _io_error(e) and any(t in str(e).lower() for t in _UNREACHABLE_TEXT):
            return True
    return False


_UNREACHABLE_TYPES = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientOSError",
    "ConnectionClosedError",
    "ServerTimeoutError",
}


def _io_error(e: BaseException) -> bool:
    """An error from a filesystem, an HTTP client, DuckDB's file layer or delta-rs' object store."""
    module = (type(e).__module__ or "").split(".")[0]
    names = {c.__name__ for c in type(e).__mro__}
    return (
        isinstance(e, OSError)
        or bool(names & {"IOException", "HTTPException", "DeltaError"})
        or module in ("botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "deltalake", "urllib3")
    )


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return redact(text.splitlines()[0])
