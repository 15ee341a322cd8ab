"""Compressed landed files: gzip, zstd, bz2, xz and zip archives of one member, told by their first bytes (the
name's extension when the bytes say nothing), or as `read.compression` declares.

`open_bytes` gives the decompressed bytes of any of them; `native` says whether the engine reads a file as it
is (DuckDB decompresses `.gz` names itself), otherwise the engine reads a decompressed copy.
A compression landfall cannot read (lz4, 7z, rar, a zip of several files) fails with what was found and what to
do, naming the file.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zipfile
import zlib
from typing import BinaryIO, Literal

from landfall.errors import InvalidInput

Compression = Literal["none", "gzip", "zstd", "bz2", "xz", "zip"]
KINDS: tuple[str, ...] = ("none", "gzip", "zstd", "bz2", "xz", "zip")

_MAGIC: list[tuple[bytes, str]] = [
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"PK\x03\x04", "zip"),
    (b"PK\x05\x06", "zip"),  # an empty archive
]
_UNSUPPORTED: list[tuple[bytes, str]] = [
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!\x1a\x07", "rar"),
]
SUFFIXES: dict[str, str] = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".bz2": "bz2",
    ".xz": "xz",
    ".zip": "zip",
}
# what DuckDB decompresses by itself, told by the name alone. (Not zstd: DuckDB reads a zstd file cut short as
# the rows before the cut, without an error; landfall decompresses it and checks the frames end.)
_NATIVE = {"gzip": (".gz",)}


def strip_suffix(name: str) -> str:
    """`a.csv.gz` -> `a.csv` (any compression suffix, case-insensitively)."""
    lower = name.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def detect(path: str, declared: str = "auto", key: str | None = None) -> str:
    """The compression of a file: `declared` unless it is `auto`; else its first bytes; else `none`."""
    if declared != "auto":
        return declared
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    for magic, kind in _UNSUPPORTED:
        if head.startswith(magic):
            raise InvalidInput(
                f"`{key or path}`: the file is compressed with {kind}, which landfall does not read; "
                "land it uncompressed or as gzip, zstd, bz2, xz or a zip of one file",
                file=key or path,
            )
    return "none"


def native(path: str, kind: str) -> bool:
    """Whether the engine reads the file as it is: not compressed and not named as if it were, or gzip named
    `.gz` (which DuckDB decompresses itself)."""
    lower = path.lower()
    if kind == "none":
        return not any(lower.endswith(s) for s in SUFFIXES)
    return lower.endswith(_NATIVE.get(kind, ()))


def open_bytes(path: str, kind: str | None = None, key: str | None = None) -> BinaryIO:
    """The decompressed bytes of `path` (compression detected from its first bytes unless `kind` is given)."""
    kind = kind or detect(path, key=key)
    if kind == "none":
        return open(path, "rb")
    if kind == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if kind == "bz2":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if kind == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if kind == "zstd":
        return _zstd(path)
    if kind == "zip":
        return _zip_member(path, key or path)
    raise ValueError(f"unknown compression `{kind}`; expected one of {', '.join(f'`{k}`' for k in KINDS)}")


def _zstd(path: str) -> BinaryIO:
    return io.BufferedReader(_ZstdReader(open(path, "rb")), 1 << 20)  # noqa: SIM115  (the reader closes it)


#: the HTTP `Content-Encoding`s a request body may come in (`decode_content`)
CONTENT_ENCODINGS = ("gzip", "deflate", "zstd")


def decode_content(body: bytes, encoding: str, limit: int) -> bytes:
    """`body` as sent with `Content-Encoding: encoding` (gzip, deflate or zstd; several, comma-separated, in the
    order they were applied), decompressed to at most `limit` bytes: `OverflowError` when it holds more,
    `LookupError` for an encoding landfall does not know, `ValueError` when the body is not what it says."""
    for coding in reversed([c.strip().lower() for c in encoding.split(",") if c.strip()]):
        try:
            if coding == "identity":
                continue
            if coding in ("gzip", "x-gzip"):
                body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(limit + 1)
            elif coding == "deflate":
                body = _inflate(body, limit + 1)
            elif coding == "zstd":
                body = io.BufferedReader(_ZstdReader(io.BytesIO(body))).read(limit + 1)
            else:
                raise LookupError(coding)
        except (OSError, EOFError, zlib.error, _zstd_error()) as exc:
            raise ValueError(f"not valid {coding}: {exc}") from None
        if len(body) > limit:
            raise OverflowError(coding)
    return body


def _inflate(data: bytes, most: int) -> bytes:
    """A deflate stream, zlib-wrapped as HTTP means it (some clients send it raw), to at most `most` bytes."""
    try:
        obj = zlib.decompressobj(zlib.MAX_WBITS)
        out = obj.decompress(data, most)
    except zlib.error:
        obj = zlib.decompressobj(-zlib.MAX_WBITS)
        out = obj.decompress(data, most)
    if not obj.eof and len(out) < most:
        raise EOFError("the deflate stream ended before its end")
    return out


class _ZstdReader(io.RawIOBase):
    """zstd frames one after another, decompressed; a file cut short raises `EOFError` (the `zstandard` stream
    reader, like DuckDB's, would end quietly with the rows so far)."""

    def __init__(self, raw: BinaryIO) -> None:
        try:
            import zstandard
        except ImportError:  # pragma: no cover - a core dependency
            from landfall.registry import missing_dependency

            raise missing_dependency("reading zstd files", "zstandard", None) from None
        self._new = zstandard.ZstdDecompressor().decompressobj
        self._raw = raw
        self._obj = self._new()
        self._left = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._left:
            chunk = self._raw.read(1 << 20)
            if not chunk:
                if self._started and not self._obj.eof:
                    raise EOFError("the zstd stream ended before the end of its frame")
                return 0
            self._left = self._feed(chunk)
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def _feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            if self._obj.eof:  # the next frame
                self._obj = self._new()
            self._started = True
            out.append(self._obj.decompress(chunk))
            chunk = self._obj.unused_data if self._obj.eof else b""
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _zip_member(path: str, key: str) -> BinaryIO:
    archive = zipfile.ZipFile(path)
    members = [m for m in archive.infolist() if not m.is_dir() and not _hidden(m.filename)]
    office = _office_document(archive)
    if office is not None:
        archive.close()
        raise InvalidInput(
            f"`{key}`: {office}, not an archive of one data file; export it as CSV, or land the data as Parquet",
            file=key,
        )
    if len(members) != 1:
        archive.close()
        names = ", ".join(f"`{m.filename}`" for m in members[:5]) + (" ..." if len(members) > 5 else "")
        raise InvalidInput(
            f"`{key}`: a zip archive must hold exactly one file; found {len(members)}"
            + (f" ({names})" if members else "")
            + "; land each file on its own",
            file=key,
        )
    return _ClosingMember(archive.open(members[0]), archive)


def _office_document(archive: zipfile.ZipFile) -> str | None:
    """What an Office Open XML or OpenDocument file is (both are zip archives), or None."""
    names = set(archive.namelist())
    if "[Content_Types].xml" in names:
        for folder, what in (("xl/", "an Excel workbook"), ("word/", "a Word document"), ("ppt/", "a slide deck")):
            if any(n.startswith(folder) for n in names):
                return what
        return "an Office document"
    if "mimetype" in names and "content.xml" in names:
        return "an OpenDocument file (a spreadsheet or document)"
    return None


def _hidden(name: str) -> bool:
    return name.startswith("__MACOSX/") or name.rsplit("/", 1)[-1].startswith(".")


class _ClosingMember(io.BufferedReader):
    """A zip member's stream that closes its archive too."""

    def __init__(self, member: BinaryIO, archive: zipfile.ZipFile) -> None:
        super().__init__(member)  # type: ignore[arg-type]
        self._archive = archive

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._archive.close()


def _zstd_error() -> type[Exception]:
    try:
        import zstandard

        return zstandard.ZstdError
    except ImportError:  # pragma: no cover
        return zlib.error


def is_corrupt(exc: BaseException, kind: str) -> bool:
    """Whether `exc`, raised while reading a file compressed as `kind`, means its bytes do not decompress (not
    that the file could not be opened)."""
    if kind == "none" or isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
        return False
    # bz2 raises a plain OSError for bytes it cannot read; gzip's BadGzipFile is an OSError too
    return isinstance(exc, (OSError, EOFError, lzma.LZMAError, zlib.error, zipfile.BadZipFile, _zstd_error()))


def corrupt(key: str, kind: str, exc: BaseException) -> InvalidInput:
    """The error for a file whose bytes do not decompress."""
    detail = str(exc) or type(exc).__name__
    return InvalidInput(
        f"`{key}`: not valid {kind} data ({detail}); the file is cut short or not {kind}-compressed "
        "(set `read.compression` if its name says otherwise)",
        file=key,
    )
