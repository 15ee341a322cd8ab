"""Every error landfall raises derives from `LandfallError`.

Retry decisions are made by type: the runner retries a `Transient` error (a lost lease, a storage hiccup)
and sends a `Terminal` one (a file that can never parse) straight to its last attempt's verdict, failed
or dead, without burning the backoff schedule.
"""

from __future__ import annotations


class LandfallError(Exception):
    """Root of every error landfall raises on purpose."""


class Transient:
    """Mixin: trying again later may succeed."""


class Terminal:
    """Mixin: trying again with the same input and config will fail the same way."""


class ConfigError(ValueError, LandfallError, Terminal):
    """`landfall.yaml` (or an override) is not valid; the message names the file, the key and what is allowed."""


class InvalidInput(ValueError, LandfallError, Terminal):
    """A landed file cannot be read or does not fit its workflow; the message names file, line and reason."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.line = line


class UnsafeKey(InvalidInput):
    """A key from outside would leave its zone (`..`, an absolute path, a link out) or cannot name a file."""


class SchemaConflict(InvalidInput):
    """A file's columns cannot be made to fit the table's schema."""


class EngineFault(LandfallError, Transient):
    """The engine failed for a reason that is not the input's (out of memory, a file it could not open); the run
    is retried."""


class ContentRace(LandfallError, Transient):
    """Another file with the same bytes committed while this batch ran; the batch is looked at again."""


class ConcurrentChange(LandfallError, Transient):
    """Another commit changed the files this commit replaces; it is retried on the new state."""


class TableNotReady(LandfallError, Transient):
    """A table a workflow's `sql` step joins has no rows yet; the run is tried again later."""


class BrokenTable(LandfallError):
    """A table's own log (Delta's `_delta_log`) cannot be read or disagrees with the catalog; the message names
    the file and what to do."""


class StateError(LandfallError):
    """The state store failed; never the file's fault, so never counted against a file's attempts."""


class LeaseLost(StateError, Transient):
    """The worker no longer holds the run (its lease expired and another worker took it); the work is dropped."""


class StateUnavailable(StateError, Transient):
    """The state store cannot be reached or is busy (server down, database locked, disk full); retried."""


class StateLost(StateError, Terminal):
    """The state database was deleted, replaced or is corrupt; landfall stops rather than guess."""


class MalformedEvent(ValueError, LandfallError, Terminal):
    """A queue message is not an object event landfall understands (not JSON, a shape it does not know, a field
    missing); the message says what was found."""


class UnroutedFile(LandfallError):
    """No workflow's `match` covers the landed file."""


class NoSuchTable(KeyError, LandfallError):
    """The catalog has no table of that name."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "no such table"


class NoSuchRun(KeyError, LandfallError):
    """The state store has no run with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "no such run"


class StorageUnavailable(OSError, LandfallError, Transient):
    """The landing zone or the table store could not be reached; the run is retried."""


class MissingDependency(ImportError, LandfallError, Terminal):
    """An optional dependency is needed; the message gives the exact install line."""


def require(module: str, extra: str, what: str | None = None):
    """Import an optional dependency, or fail with the one-line `pip install` that brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:  # pragma: no cover - depends on the environment
        from landfall.registry import missing_dependency

        raise missing_dependency(what or "this feature", module, extra) from None


class QueryRefused(ValueError, LandfallError):
    """A query that is not one read-only statement over the catalog (a DROP, a COPY, two statements)."""


class QueryTimeout(TimeoutError, LandfallError):
    """A query ran longer than its time limit and was stopped."""


def denied(exc: PermissionError) -> str:
    """What a `PermissionError` on a zone's file means to landfall's user (a file landed by another user under an
    SFTP umask of 077, a zone folder made by another user): who may not do what, and the way on."""
    import getpass

    if not exc.filename:
        return f"permission denied to user `{getpass.getuser()}` ({exc})"
    return (
        f"permission denied to user `{getpass.getuser()}` on `{exc.filename}`: let landfall's user read the landing "
        "zone's files and write its other zones (`chmod`, a shared group)"
    )


def in_the_way(exc: NotADirectoryError | FileExistsError | IsADirectoryError) -> str:
    """What a file or folder in the way of a zone's path means (`--lake` naming a file, a folder where landfall
    writes a file): the path in the way, and the path landfall needed."""
    import os

    wanted = os.fsdecode(exc.filename or "")
    if isinstance(exc, NotADirectoryError):
        up = wanted
        while up and not os.path.isfile(up) and os.path.dirname(up) != up:
            up = os.path.dirname(up)
        if os.path.isfile(up):
            return f"`{up}` is a file where landfall needs a folder (for `{wanted}`)"
    return f"{exc.strerror or exc}: `{wanted}`"
