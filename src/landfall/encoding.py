"""Text encodings of landed files: detect, and transcode to UTF-8 when the engine cannot read them as they are.

Nothing is ever written as binary or mojibake: a file is read as UTF-8 only when it is UTF-8 (checked on a
sample, and by the engine on the whole file); otherwise the declared or detected encoding is decoded here.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from landfall import compression

SAMPLE = 1 << 16
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def _open(path: str, kind: str | None = None):
    """The decompressed bytes of a landed file (see `landfall.compression`)."""
    return compression.open_bytes(path, kind)


def sample(path: str, kind: str | None = None) -> bytes:
    """The first 64 KB of a (possibly compressed) file, decompressed."""
    with _open(path, kind) as fh:
        return fh.read(SAMPLE)


def detect(path: str, head: bytes | None = None) -> str:
    """The encoding of a text file: a BOM wins; then UTF-16 without BOM (NUL pattern); then UTF-8 if the
    sample decodes; else cp1252 (Windows Western, a superset of printable Latin-1) or Latin-1."""
    data = head if head is not None else sample(path)
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    if len(data) >= 4:
        even_nuls = data[0::2].count(0)
        odd_nuls = data[1::2].count(0)
        half = len(data) // 2
        if odd_nuls > half * 0.3 and even_nuls < half * 0.05:
            return "utf-16-le"
        if even_nuls > half * 0.3 and odd_nuls < half * 0.05:
            return "utf-16-be"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if len(data) == SAMPLE and exc.reason == "unexpected end of data":  # a character cut by the sample's end
            return "utf-8"
    try:
        data.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def is_utf8(name: str) -> bool:
    return codecs.lookup(name).name in ("utf-8", "utf-8-sig", "ascii")


def mixed_newlines(sample: bytes) -> bool:
    """Whether a sample mixes line endings (LF, CRLF, lone CR), which CSV readers trip on."""
    crlf = sample.count(b"\r\n")
    lone_cr = sample.count(b"\r") - crlf
    lone_lf = sample.count(b"\n") - crlf
    return sum(1 for n in (crlf, lone_cr, lone_lf) if n) > 1


def transcode(path: str, encoding: str, dest_dir: str, *, newlines: bool = False, compressed: str | None = None) -> str:
    """Write a UTF-8 copy of `path` (decompressed as `compressed`, or as detected; decoded as `encoding`) into
    `dest_dir`; returns the copy's path. With `newlines`, every line ending (CRLF, lone CR) becomes LF.

    Raises `UnicodeDecodeError` (with the byte offset) when the bytes are not valid in that encoding.
    """
    Path(dest_dir).mkdir(parents=True, exist_ok=True)
    name = compression.strip_suffix(os.path.basename(path))
    dest = os.path.join(dest_dir, f"utf8-{os.getpid()}-{abs(hash(path)) % 10**8}-{name}")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    carry = ""
    with _open(path, compressed) as src, open(dest, "w", encoding="utf-8", newline="") as out:
        while True:
            chunk = src.read(1 << 20)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise UnicodeDecodeError(
                    exc.encoding, exc.object, offset + exc.start, offset + exc.end, exc.reason
                ) from None
            if newlines:
                text = carry + text
                carry = ""
                if chunk and text.endswith("\r"):  # a CRLF may straddle two chunks
                    text, carry = text[:-1], "\r"
                text = text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n")
            out.write(text.lstrip("\ufeff") if offset == 0 else text)
            offset += len(chunk)
            if not chunk:
                break
    return dest


def line_of_offset(path: str, offset: int, kind: str | None = None) -> int:
    """1-based line number of a byte offset in a (possibly compressed) file's decompressed bytes."""
    with _open(path, kind) as fh:
        data = fh.read(offset)
    return data.count(b"\n") + 1


def read_text(path: str) -> str:
    """A (possibly compressed) UTF-8 file's text, a BOM dropped."""
    with _open(path) as fh:
        return fh.read().decode("utf-8", errors="strict").removeprefix("\ufeff")
