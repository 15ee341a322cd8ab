"""A local folder as `Storage` sees a filesystem: the few fsspec calls it makes on a local zone, answered with
`os` directly.

Object stores (and `memory://`) go through fsspec; a local zone does not need it, and importing fsspec (which
imports asyncio, ssl and `importlib.metadata` to scan every installed package's entry points) cost every
`landfall` command about 30 ms of CPU at start. The answers match fsspec's `LocalFileSystem` where `Storage`
reads them: `info` has `name`, `size`, `type` (`file`, `directory` or `other`), `mtime`, `created` and
`islink` (a link is followed by `info`, not in a listing, where it is `other`); `walk` follows fsspec's
`(folder, {name: info} of folders, {name: info} of other entries)` with `maxdepth`.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from typing import IO, Any

NAME_MAX = 255  # bytes in one file name, on most local file systems


def fitted(name: str, extra: int = 0) -> str:
    """`name` short enough that a file name of it and `extra` more bytes fits `NAME_MAX`: a longer one keeps its
    start and its end (the extensions readers go by, `.csv.gz`) around a hash of the whole, so two long names stay
    apart and the same name is always fitted the same way."""
    raw = name.encode("utf-8", "surrogateescape")
    room = NAME_MAX - extra
    if len(raw) <= room:
        return name
    tail = raw[-24:].decode("utf-8", "ignore")
    head = raw[: room - 13 - len(tail.encode())].decode("utf-8", "ignore")
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:12]}{tail}"


class LocalFiles:
    """The filesystem calls `Storage` makes on a local zone (paths are absolute)."""

    protocol = "file"
    async_impl = False

    @staticmethod
    def _strip_protocol(path: str) -> str:
        return os.path.abspath(path.removeprefix("file://").removeprefix("local://") or "/")

    def open(self, path: str, mode: str = "rb", **kw: Any) -> IO[Any]:
        return open(path, mode, **kw)  # noqa: SIM115  (the caller closes it)

    def cat_file(self, path: str) -> bytes:
        with open(path, "rb") as fh:
            return fh.read()

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        os.makedirs(path, exist_ok=exist_ok)

    def info(self, path: str) -> dict[str, Any]:
        link = os.lstat(path)
        found = os.stat(path) if stat.S_ISLNK(link.st_mode) else link
        return _info(path, found, stat.S_ISLNK(link.st_mode))

    def ls(self, path: str, detail: bool = True) -> list[Any]:
        """What a folder holds (a file: itself); an entry gone between the listing and its `stat` (a writer's
        temporary file renamed) is left out."""
        top = self.info(path)
        if top["type"] != "directory":
            return [top] if detail else [top["name"]]
        found = []
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    found.append(_entry(path, entry))
                except FileNotFoundError:
                    continue
        return found if detail else [f["name"] for f in found]

    def walk(
        self,
        path: str,
        maxdepth: int | None = None,
        detail: bool = True,
        on_error: Callable[[OSError], None] | None = None,
    ) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """Folder by folder, top-down, as fsspec's `walk(detail=True)`; `maxdepth=1`: the top folder only. A
        folder that cannot be read (but for one gone) is given to `on_error` and skipped (without one, the error is
        raised), in every folder walked (fsspec's own walk hands only the top one to it)."""
        if maxdepth is not None and maxdepth < 1:
            raise ValueError("maxdepth must be at least 1")
        try:
            listing = self.ls(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            if on_error is None:
                raise
            on_error(exc)
            return
        folders = {os.path.basename(i["name"]): i for i in listing if i["type"] == "directory"}
        files = {os.path.basename(i["name"]): i for i in listing if i["type"] != "directory"}
        yield path, folders, files
        if maxdepth is not None and maxdepth <= 1:
            return
        for name in folders:
            yield from self.walk(
                f"{path.rstrip('/')}/{name}", None if maxdepth is None else maxdepth - 1, True, on_error
            )


def _entry(folder: str, entry: os.DirEntry[str]) -> dict[str, Any]:
    """An entry of a listing, as fsspec's: a link is `other` (never followed in a listing), sized as its target."""
    path = f"{folder.rstrip('/')}/{entry.name}"
    own = entry.stat(follow_symlinks=False)
    is_link = entry.is_symlink()
    info = _info(path, own, is_link)
    if is_link:
        info["type"] = "other"
        try:
            info["size"] = entry.stat(follow_symlinks=True).st_size
        except OSError:
            info["size"] = 0
    return info


def _info(path: str, found: os.stat_result, is_link: bool) -> dict[str, Any]:
    kind = "directory" if stat.S_ISDIR(found.st_mode) else "file" if stat.S_ISREG(found.st_mode) else "other"
    return {
        "name": path,
        "size": found.st_size,
        "type": kind,
        "mtime": found.st_mtime,
        "created": found.st_ctime,
        "islink": is_link,
        "mode": found.st_mode,
    }


def flush(path: str) -> None:
    """Flush a local file's (or folder's) data to disk. Some filesystems cannot flush a folder (several FUSE
    mounts say `EINVAL`): as PostgreSQL does, that is no error for a folder; for a file it is."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_FOLDER_FSYNC or not os.path.isdir(path):
            raise
    finally:
        os.close(fd)


_NO_FOLDER_FSYNC = {errno.EBADF, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}
