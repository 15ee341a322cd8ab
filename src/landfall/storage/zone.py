"""One zone over fsspec: a `Storage` object per zone (landing, tables, quarantine) or table folder.

It is the only place that turns zone keys into filesystem calls. A zone is a local folder (or `file://` URL),
an `s3://` URL (any S3-compatible server, through s3fs) or `memory://` (fsspec's in-process store, for tests);
a local folder is read with `os` directly (`landfall.storage.local`), the others through fsspec.
Keys are relative to the zone's root (`sales/2024-01.csv`, `year=2024/part-x.parquet`).

Engines read local paths: `local_path` is the file itself on a local zone and a copy in the job's local scratch
folder on a remote one. Scratch space is never derived from a zone URL: it lives under `scratch_dir` (the
system's temporary folder unless configured).

Publishing on a local zone is a rename within the zone's filesystem (atomic); object stores have no rename, so a
file is uploaded under its final name and stays invisible to landfall's readers until the catalog commit lists it.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from landfall.errors import ConfigError, StorageUnavailable, UnsafeKey
from landfall.events import is_utf8
from landfall.hashing import hasher, of_bytes
from landfall.redaction import redact
from landfall.storage import scratch
from landfall.storage.faults import Guard, ZoneRefused, first_line
from landfall.storage.local import NAME_MAX, fitted, flush
from landfall.storage.options import (
    DEFAULT_OPTIONS,
    FS_LOCK,
    StorageOptions,
    filesystem,
    protocol_of,
    register_filesystem,
)

log = logging.getLogger(__name__)

_LOCAL = ("file", "local")
_CHUNK = 1 << 20
_SMALL_FILE = 8 << 20  # read whole, concurrently with the others of a batch (on an object store)
_CONCURRENCY = 16  # requests at once for a batch's small files


class Storage:
    """One zone (or a folder inside one, such as a table): keys relative to its root, a filesystem underneath.

    >>> landing = Storage("s3://acme-raw/landing", options, zone="landing")
    >>> for key, info in landing.list(): ...
    >>> path = landing.local_path("sales/2024-01.csv", scratch)   # a local file an engine can read
    """

    def __init__(
        self, url: str, options: StorageOptions | None = None, *, zone: str = "", scratch_dir: str | None = None
    ) -> None:
        self.options = options or DEFAULT_OPTIONS
        self.zone = zone
        self.scratch_dir = scratch_dir
        url = url.rstrip("/")
        if url.startswith("file://"):
            url = url.removeprefix("file://") or "/"
        self.url = url
        self.protocol = protocol_of(url)
        self.fs, root = filesystem(url, self.options)
        self.root = root.rstrip("/") if root != "/" else root
        self.is_local = self.protocol in _LOCAL
        if self.is_local:
            self.url = self.root  # absolute
        self._unlisted: set[str] = set()  # folders a local listing could not read, names it passed over: said once

    def __repr__(self) -> str:
        return f"Storage({redact(self.url)!r})"

    @property
    def label(self) -> str:
        """How messages name this zone: zone `landing` (s3://bucket/in), passwords masked."""
        return f"zone `{self.zone}` ({redact(self.url)})" if self.zone else f"`{redact(self.url)}`"

    # --- names ---------------------------------------------------------------------------------------------

    def child(self, key: str, zone: str | None = None) -> Storage:
        """The storage of a folder inside this one (a table's folder inside the tables zone)."""
        return Storage(
            self.url_of(key), self.options, zone=self.zone if zone is None else zone, scratch_dir=self.scratch_dir
        )

    def path(self, key: str = "") -> str:
        """The filesystem path of a key (what fsspec calls it)."""
        key = key.strip("/")
        if not key:
            return self.root
        return f"{self.root}/{key}" if self.root != "/" else f"/{key}"

    def url_of(self, key: str = "") -> str:
        """A key as a URL other libraries open (DuckDB with this storage registered, delta-rs); a local path on a
        local zone."""
        key = key.strip("/")
        return f"{self.url}/{key}" if key else self.url

    def key_of(self, path: str) -> str:
        """The key of a filesystem path under this storage's root."""
        path = self.fs._strip_protocol(path) if "://" in path else path
        prefix = self.root.rstrip("/") + "/"
        return path[len(prefix) :] if path.startswith(prefix) else path

    # --- reading -------------------------------------------------------------------------------------------

    def open(self, key: str, mode: str = "rb", **kw: Any) -> Any:
        if self.is_local and "r" in mode:
            self.inside(key)
        with self.guard(key):
            return self.fs.open(self.path(key), mode, **kw)

    def inside(self, key: str) -> str:
        """The path of a key of a local zone, once it is sure the file (or a folder on the way) is no symbolic
        link out of the zone; `UnsafeKey` otherwise. landfall never follows a link out of a zone."""
        path = self.path(key)
        real = os.path.realpath(path)
        if not _inside(real, self.root):
            raise UnsafeKey(
                f"`{key}` in {self.label} is a link to `{real}`, outside the zone; landfall never follows a link "
                "out of a zone: land the file itself"
            )
        return path

    def read_bytes(self, key: str) -> bytes:
        with self.guard(key):
            return self.fs.cat_file(self.path(key))

    def info(self, key: str) -> dict[str, Any]:
        with self.guard(key):
            return self.fs.info(self.path(key))

    def exists(self, key: str = "") -> bool:
        with self.guard(key):
            return self.fs.exists(self.path(key))

    def missing(self, keys: Sequence[str]) -> list[str]:
        """Those of `keys` this zone does not hold: one listing, and each key it lacks looked up on its own."""
        present = {key for key, _ in self.list()}
        return [k for k in keys if k not in present and not self.exists(k)]

    def list(self, prefix: str = "", *, maxdepth: int | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every file under `prefix` (recursively; `maxdepth=1`: directly under it) as `(key, info)`; info has
        `size`, `mtime`, `etag` where the store gives them. Symbolic links are not followed out of the zone."""
        base = self.path(prefix)
        with self.guard(prefix):
            if not self.fs.exists(base):
                return
            if self.is_local:  # a folder at a time: memory stays flat however many files there are
                walk = self.fs.walk(base, maxdepth=maxdepth, detail=True, on_error=self._unreadable)
                found: Iterator[tuple[str, dict[str, Any]]] = (item for _, _, files in walk for item in files.items())
            else:  # one paged listing of the whole prefix (a walk would be a request per folder)
                found = iter(self.fs.find(base, maxdepth=maxdepth, detail=True).items())
        for name, info in found:
            if (item := self._file(name, info)) is not None:
                yield item

    def here(self, prefix: str = "") -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
        """What is directly under `prefix` of a local zone, from one read of its folder: its files, as `list` gives
        them, and the names of its folders. A folder that cannot be read is said (as by `list`) and holds none."""
        with self.guard(prefix):
            for _, folders, files in self.fs.walk(
                self.path(prefix), maxdepth=1, detail=True, on_error=self._unreadable
            ):
                return [f for name, info in files.items() if (f := self._file(name, info)) is not None], list(folders)
        return [], []

    def _file(self, name: str, info: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """A listing's entry as `(key, info)` with `size`, `mtime` and `etag`; None for what is not a file (or a
        link out of a local zone)."""
        path = info.get("name") or name
        if info.get("type") != "file" or path.endswith("/"):  # `sales/`: a folder marker (S3 console, s3a), no file
            return None
        if self.is_local and info.get("islink") and not _inside(os.path.realpath(path), self.root):
            return None
        key = self.key_of(path)
        if not self.recordable(key):
            return None
        return (
            key,
            {
                **info,
                "size": int(info.get("size") or 0),
                "mtime": mtime_of(info),
                "etag": str(info.get("ETag") or info.get("etag") or "").strip('"'),
            },
        )

    def _unreadable(self, exc: OSError) -> None:
        """A folder a local listing could not read. The zone's own folder: the zone is away (`StorageUnavailable`).
        A folder in it is said once, and its files are listed once it can be read; the rest of the listing goes on
        (an error escaping the walk stopped every file's discovery)."""
        folder = str(exc.filename or self.root)
        if os.path.normpath(folder) == os.path.normpath(self.root):
            raise StorageUnavailable(f"{self.label}: cannot list it: {first_line(exc)}")
        key = self.key_of(folder)
        if key not in self._unlisted:
            self._unlisted.add(key)
            log.warning(
                "%s: cannot list `%s` (%s): its files are seen once it can be", self.label, key, first_line(exc)
            )

    def recordable(self, key: str) -> bool:
        """Whether a file's key can be recorded: not a name of bytes that are not UTF-8 (a local file system takes
        any), which is passed over and said once; the rest of the listing goes on (every listing, and the
        watcher, failed on it)."""
        if is_utf8(key):
            return True
        shown = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        if key not in self._unlisted:
            self._unlisted.add(key)
            log.warning(
                "%s: `%s` is passed over: its name is not UTF-8, which landfall needs to record it; rename it (e.g. "
                "`convmv -f latin1 -t utf8`)",
                self.label,
                shown,
            )
        return False

    def entries(self, prefix: str = "") -> dict[str, str]:
        """What is directly under `prefix`: name -> `file` or `directory`."""
        base = self.path(prefix)
        with self.guard(prefix):
            if not self.fs.exists(base):
                return {}
            found = self.fs.ls(base, detail=True)
        return {e["name"].rstrip("/").rsplit("/", 1)[-1]: e.get("type", "file") for e in found}

    def folders(self, prefix: str = "") -> list[str]:
        """Names of the folders directly under `prefix`."""
        return [name for name, kind in self.entries(prefix).items() if kind == "directory"]

    def hash(self, key: str, algorithm: str) -> str:
        """The content hash of a file's bytes (`landfall.hashing`), streamed."""
        h = hasher(algorithm)
        with self.open(key) as fh, self.guard(key):
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()

    def local_path(self, key: str, scratch: str | None = None) -> str:
        """A local file with the key's bytes: the file itself on a local zone, else a copy in `scratch`."""
        if self.is_local:
            return self.inside(key)
        return self.fetch(key, scratch or self.scratch(), None)[0]

    def fetch(self, key: str, scratch: str, algorithm: str | None) -> tuple[str, str]:
        """A local copy of a key in `scratch` and the content hash of its bytes (`algorithm`; none: `""`), in one
        pass (remote zones); a local zone's file is hashed where it is."""
        if self.is_local:
            return self.inside(key), self.hash(key, algorithm) if algorithm else ""
        os.makedirs(scratch, exist_ok=True)
        dest = os.path.join(scratch, f"{uuid.uuid4().hex[:8]}-{fitted(os.path.basename(key), 9)}")
        h = hasher(algorithm) if algorithm else None
        with self.open(key) as src, open(dest, "wb") as out, self.guard(key):
            while chunk := src.read(_CHUNK):
                if h:
                    h.update(chunk)
                out.write(chunk)
        return dest, h.hexdigest() if h else ""

    def fetch_many(
        self, keys: Sequence[tuple[str, int]], scratch: str, algorithm: str
    ) -> list[tuple[str, str] | Exception]:
        """`fetch` for `(key, size)` pairs, in order; a key that cannot be read gives its error in its place (one
        that says the store cannot be reached is raised as `StorageUnavailable`). On an object store the small
        files are read concurrently, one GET each: a batch of small files is not one round trip per file."""
        small = {k for k, size in keys if not self.is_local and size <= _SMALL_FILE}
        found: dict[str, Any] = {}
        if small:
            keys_small = sorted(small)
            with self.guard():
                found = dict(zip(keys_small, self._cat_all([self.path(k) for k in keys_small]), strict=True))
        out: list[tuple[str, str] | Exception] = []
        for key, _ in keys:
            try:
                if key not in small:
                    out.append(self.fetch(key, scratch, algorithm))
                    continue
                data = found.get(key, FileNotFoundError(key))
                if isinstance(data, BaseException):
                    with self.guard(key):
                        raise data
                os.makedirs(scratch, exist_ok=True)
                dest = os.path.join(scratch, f"{uuid.uuid4().hex[:8]}-{fitted(os.path.basename(key), 9)}")
                with open(dest, "wb") as fh:
                    fh.write(data)
                out.append((dest, of_bytes(data, algorithm)))
            except StorageUnavailable:
                raise
            except Exception as exc:
                out.append(exc)
        return out

    def read_all(self, keys: Sequence[str]) -> list[bytes | Exception]:
        """The bytes of each key, or the error reading it (`FileNotFoundError`: none), in order: concurrently on
        an object store. A store that cannot be reached raises `StorageUnavailable`."""
        with self.guard():
            got = self._cat_all([self.path(k) for k in keys])
        for key, item in zip(keys, got, strict=True):
            if isinstance(item, Exception) and not isinstance(item, FileNotFoundError):
                with self.guard(key):
                    raise item
        return got

    def _cat_all(self, paths: list[str]) -> list[Any]:
        """The bytes of each path (or its error), read concurrently where the filesystem is asynchronous (s3fs):
        one GET per file, at most `_CONCURRENCY` at a time."""
        if not getattr(self.fs, "async_impl", False):
            out: list[Any] = []
            for p in paths:
                try:
                    out.append(self.fs.cat_file(p))
                except Exception as exc:
                    out.append(exc)
            return out
        import asyncio

        from fsspec.asyn import sync

        async def gather() -> list[Any]:
            limit = asyncio.Semaphore(_CONCURRENCY)

            async def one(p: str) -> Any:
                async with limit:
                    return await self.fs._cat_file(p)

            return await asyncio.gather(*(one(p) for p in paths), return_exceptions=True)

        return sync(self.fs.loop, gather)

    # --- writing -------------------------------------------------------------------------------------------

    def put(self, local: str, key: str, *, move: bool = False, sync: bool = False) -> None:
        """Place a local file under `key`, whole or not at all: on a local zone a copy (or, with `move`, the file
        itself) renamed into place, fsynced first with `sync`; on an object store one upload under the final
        name."""
        dest = self.path(key)
        with self.guard(key):
            try:
                if self.is_local:
                    if move:
                        os.makedirs(os.path.dirname(dest), exist_ok=True)
                        if sync:
                            flush(local)
                        os.replace(local, dest)
                        if sync:
                            flush(os.path.dirname(dest))
                        return
                    self._replace(dest, lambda tmp: shutil.copyfile(local, tmp), sync)
                else:
                    self.fs.put_file(local, dest)
                    if move:
                        os.unlink(local)
            except (IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
                raise self._clash(key) from exc
            except OSError as exc:
                if exc.errno != errno.ENAMETOOLONG:
                    raise
                longest = max(key.split("/"), key=lambda part: len(part.encode()))
                raise UnsafeKey(
                    f"key `{key}`: a name of {len(longest.encode())} bytes (`{longest[:40]}…`) is longer than a file "
                    f"name can be in {self.label} ({NAME_MAX} bytes); shorten it"
                ) from exc

    def _clash(self, key: str) -> UnsafeKey:
        """Why `key` cannot name a file here: it names a folder, or a folder on its way is a file."""

        def kind(k: str) -> str | None:
            try:
                return self.fs.info(self.path(k))["type"]
            except OSError:
                return None

        if kind(key) == "directory":
            return UnsafeKey(f"key `{key}` names a folder in {self.label}; name a file inside it, like `{key}/a.csv`")
        parts = key.split("/")
        for n in range(1, len(parts)):
            folder = "/".join(parts[:n])
            if kind(folder) == "file":
                return UnsafeKey(f"key `{key}`: `{folder}` is a file in {self.label}, not a folder; choose another key")
        return UnsafeKey(f"key `{key}` cannot name a file in {self.label}")

    def sync(self, keys: Sequence[str], *, missing_ok: bool = False) -> None:
        """Flush local files to disk, with the folders that name them up to the zone's own entry, so that a power
        cut keeps what a commit is about to name (the kernel writes a file's pages back up to half a minute after
        a rename; a commit in the state store or a format's log outliving them would name an empty file). An
        object store holds an upload once it returns: nothing to do."""
        if not self.is_local or not keys:
            return
        folders: set[str] = set()
        for key in keys:
            try:
                flush(self.path(key))
            except FileNotFoundError:
                if not missing_ok:
                    raise
                continue
            parts = key.split("/")[:-1]
            folders.update("/".join(parts[:i]) for i in range(len(parts) + 1))
        for folder in sorted(folders, key=len, reverse=True):  # a new folder's entry is in the one above it
            flush(self.path(folder))
        if folders:
            flush(os.path.dirname(self.path()))

    def write_bytes(self, key: str, data: bytes, *, sync: bool = False) -> None:
        """Write a file whole or not at all: on a local zone under a temporary name renamed into place (with
        `sync`, the file and its folder are fsynced first, so it outlives a power cut); on an object store one PUT."""
        dest = self.path(key)
        with self.guard(key):
            if not self.is_local:
                self.fs.pipe_file(dest, data)
                return

            def write(tmp: str) -> None:
                with open(tmp, "wb") as fh:
                    fh.write(data)

            self._replace(dest, write, sync)

    @staticmethod
    def _replace(dest: str, write: Callable[[str], None], sync: bool) -> None:
        """Make a local file by `write(temporary path)` beside `dest`, then rename it into place."""
        folder = os.path.dirname(dest)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{fitted(os.path.basename(dest), 14)}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            write(tmp)
            if sync:
                flush(tmp)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if sync:
            flush(folder)

    def delete(self, keys: list[str]) -> None:
        """Remove files; keys already gone are fine."""
        if not keys:
            return
        with self.guard(keys[0]):
            if self.is_local:
                for key in keys:
                    try:
                        os.unlink(self.path(key))
                    except FileNotFoundError:
                        pass
                return
            paths = [self.path(k) for k in keys]
            try:
                self.fs.rm(paths)
            except FileNotFoundError:
                for p in paths:
                    try:
                        self.fs.rm_file(p)
                    except FileNotFoundError:
                        pass

    def delete_tree(self, prefix: str) -> None:
        """Remove a folder and everything in it (gone already is fine)."""
        with self.guard(prefix):
            if self.is_local:
                shutil.rmtree(self.path(prefix), ignore_errors=True)
                return
            try:
                self.fs.rm(self.path(prefix), recursive=True)
            except FileNotFoundError:
                pass

    def move_tree(self, prefix: str, dest: str) -> bool:
        """Move a folder and everything in it to `dest` (which must not exist) within this storage: one rename on
        a local zone; on an object store a copy of each object, then the originals removed (run it again if it is
        interrupted: what is left moves on). False when there is nothing at `prefix`."""
        src, to = self.path(prefix), self.path(dest)
        with self.guard(prefix):
            if self.is_local:
                self.inside(prefix)
                if not os.path.isdir(src):
                    return False
                os.makedirs(os.path.dirname(to), exist_ok=True)
                os.rename(src, to)
                return True
            keys = [key for key, _ in self.list(prefix)]
            for key in keys:
                self.fs.cp_file(self.path(key), f"{to}/{key[len(prefix) :].lstrip('/')}")
            self.delete(keys)
            return bool(keys)

    def makedirs(self, key: str = "") -> None:
        with self.guard(key):
            self.fs.makedirs(self.path(key), exist_ok=True)

    # --- local scratch -------------------------------------------------------------------------------------

    def scratch(self, name: str = "") -> str:
        """A fresh local folder for one job's temporary files (under `scratch_dir`, never inside a URL), named
        for this process (`landfall.storage.scratch`: recovery removes it if the process dies first)."""
        return scratch.make(self.scratch_dir or tempfile.gettempdir(), name)

    # --- errors --------------------------------------------------------------------------------------------

    def guard(self, key: str = "") -> Guard:
        """A context that turns "cannot reach the store" errors into `StorageUnavailable` naming the zone."""
        return Guard(self, key)

    def check(self) -> None:
        """Reach the zone once: a wrong key, a missing bucket or a refused login fail here, with one line
        naming the zone and the reason; a store that cannot be reached raises `StorageUnavailable`."""
        if self.is_local:
            return
        try:
            with self.guard():
                if self.protocol in ("s3", "s3a"):
                    bucket = self.root.split("/", 1)[0]
                    self.fs.ls(bucket, refresh=True)
                else:
                    self.fs.exists(self.root)
        except (StorageUnavailable, ConfigError):
            raise
        except FileNotFoundError:
            bucket = self.root.split("/", 1)[0]
            raise ZoneRefused(f"{self.label}: bucket `{bucket}` does not exist; create it or fix the zone's URL")
        except OSError as exc:
            raise ConfigError(f"{self.label}: {first_line(exc)}")

    def conditional_writes(self) -> bool:
        """Whether the store refuses to create an object that exists (`If-None-Match: *`), which is what keeps
        two hosts from writing one Delta version. Local folders and AWS S3 do; some S3-compatible servers ignore
        the header. Probed once per bucket and process with a scratch object."""
        if self.is_local or self.protocol not in ("s3", "s3a"):
            return True
        bucket = self.root.split("/", 1)[0]
        cache_key = (self.options.endpoint_url, bucket)
        with FS_LOCK:
            known = _CONDITIONAL.get(cache_key)
        if known is not None:
            return known
        probe = f"{bucket}/_landfall-probe-{uuid.uuid4().hex}"
        with self.guard():
            self.fs.pipe_file(probe, b"1", mode="create")
            try:
                self.fs.pipe_file(probe, b"2", mode="create")
                refused = False
            except OSError as exc:
                text = f"{exc} {exc.__cause__ or ''}"
                if not isinstance(exc, FileExistsError) and "PreconditionFailed" not in text and "412" not in text:
                    raise
                refused = True
            finally:
                self.fs.rm_file(probe)
        with FS_LOCK:
            _CONDITIONAL[cache_key] = refused
        return refused

    def register_with(self, con: Any) -> None:
        """Let a DuckDB connection read this storage's URLs through fsspec (no DuckDB extension download)."""
        if not self.is_local:
            register_filesystem(con, self.fs)


def _inside(path: str, root: str) -> bool:
    root = os.path.realpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def mtime_of(info: dict[str, Any]) -> float:
    m = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created") or 0.0
    return m.timestamp() if hasattr(m, "timestamp") else float(m)


_CONDITIONAL: dict[tuple[str | None, str], bool] = {}  # (endpoint, bucket) -> the server refuses a second create
