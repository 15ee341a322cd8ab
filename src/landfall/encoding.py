"""Text encodings of landed files: detect, and transcode to UTF-8 when the engine cannot read them as they are.

Nothing is ever written as binary or mojibake: a file is read as UTF-8 only when it is UTF-8 (checked on a
sample, and by the engine on the whole file); otherwise the declared or detected encoding is decoded here.
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path

import msgspec

from landfall import compression

SAMPLE = 1 << 16
_BOMS = [
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def _open(path: str, kind: str | None = None, key: str | None = None):
    """The decompressed bytes of a landed file (see `landfall.compression`); `key` names it in errors."""
    return compression.open_bytes(path, kind, key)


def sample(path: str, kind: str | None = None, key: str | None = None) -> bytes:
    """The first 64 KB of a (possibly compressed) file, decompressed; `key` names it in errors."""
    with _open(path, kind, key) as fh:
        return fh.read(SAMPLE)


class Detected(msgspec.Struct, frozen=True):
    """An encoding and how sure landfall is of it: `how` is `bom`, `utf-16` (the NUL pattern), `utf-8` (the
    sample decodes), `detected` (charset-normalizer; `confidence` is 1 minus its measure of mess in the decoded
    sample) or `fallback` (nothing better: cp1252, or Latin-1 for bytes cp1252 leaves undefined)."""

    encoding: str
    confidence: float
    how: str

    def to_json(self) -> dict[str, object]:
        return {"encoding": self.encoding, "confidence": self.confidence, "how": self.how}


def detect(path: str, head: bytes | None = None) -> str:
    """The encoding of a text file (see `detect_encoding`)."""
    return detect_encoding(head if head is not None else sample(path)).encoding


# Latin-script single-byte code pages. charset-normalizer, given a short sample of Western text, often ranks a
# Central European, Baltic or Mac one first (French `Noël` in cp775 reads `Noļl`). Among these, landfall takes the
# one whose decoded sample has the fewest characters that are neither letters nor common punctuation, cp1252 on a
# tie: Polish in cp1252 shows `³` and `¹` (cp1250 wins), French reads alike in both (cp1252 wins).
_LATIN = re.compile(
    r"^(cp125[0278]|cp775|cp85\d|cp437|cp858|latin_1|iso8859_(1|2|3|4|9|10|13|14|15|16)|mac_\w+|hp_roman8)$"
)
_LATIN_CANDIDATES = ("cp1252", "cp1250", "cp1257", "iso8859_16")
_TYPOGRAPHY = set("€‘’“”„‚–—…•°«»·×")


def detect_encoding(data: bytes) -> Detected:
    """The encoding of a text sample: a BOM wins; then UTF-16 without BOM (NUL pattern); then UTF-8 if the
    sample decodes; else charset-normalizer's best guess (Shift-JIS, GB18030, cp1251, ...), with cp1252
    preferred among Latin single-byte encodings that read the sample equally cleanly; else cp1252 or Latin-1."""
    wide = _marked(data)
    if wide is not None:
        return wide
    try:
        data.decode("utf-8")
        return Detected("utf-8", 1.0, "utf-8")
    except UnicodeDecodeError as exc:
        if len(data) == SAMPLE and exc.reason == "unexpected end of data":  # a character cut by the sample's end
            return Detected("utf-8", 1.0, "utf-8")
    mostly = _mostly_utf8(data)
    if mostly is not None:
        return mostly
    found = _normalizer(data)
    if found is not None:
        return found
    try:
        data.decode("cp1252")
        return Detected("cp1252", 0.0, "fallback")
    except UnicodeDecodeError:
        return Detected("latin-1", 0.0, "fallback")


def _mostly_utf8(data: bytes) -> Detected | None:
    """UTF-8, when most of a sample's characters beyond ASCII are UTF-8's and a few bytes are not (a line appended
    from a Latin-1 file): read so, the file fails naming the line of the first such byte, where a code page that
    reads every byte would turn each of its UTF-8 characters into two (`Zoë` as `ZoĂ«`) without a word. A Latin
    code page seldom puts a byte of 0xC2-0xF4 before one of 0x80-0xBF, as UTF-8 does."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    good = len(text) - len(text.encode("ascii", errors="ignore")) - bad
    if good < 2 * bad:
        return None
    return Detected("utf-8", round(good / (good + bad), 3), "utf-8")


def _marked(data: bytes) -> Detected | None:
    """The encoding a BOM names, or UTF-16 told by its NULs (every other byte); None otherwise."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return Detected(name, 1.0, "bom")
    if len(data) >= 4:
        even_nuls = data[0::2].count(0)
        odd_nuls = data[1::2].count(0)
        half = len(data) // 2
        if odd_nuls > half * 0.3 and even_nuls < half * 0.05:
            return Detected("utf-16-le", 1.0, "utf-16")
        if even_nuls > half * 0.3 and odd_nuls < half * 0.05:
            return Detected("utf-16-be", 1.0, "utf-16")
    return None


def _normalizer(data: bytes) -> Detected | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a core dependency
        return None
    if len(data) == SAMPLE:  # a multi-byte character may be cut at the end of the sample
        data = data[: data.rfind(b"\n") + 1] or data
    matches = list(from_bytes(data))
    best = matches[0] if matches else None
    # a few bytes beyond ASCII read as cleanly in many code pages, which come in the order of their names: a Latin
    # one among those tied with the first (a lone `é`, 0xE9, was Urdu's `ﻠ` in cp1006)
    tied = [m for m in matches if best is not None and (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    if best is None or any(_LATIN.match(m.encoding) for m in tied):
        latin = _latin(data)
        if latin is not None:
            return latin
    if best is None:
        return None
    name = codecs.lookup(best.encoding).name
    if _latin_pairs(str(best), name) or (name in _SHIFT_JIS and _mostly_halfwidth_kana(str(best))):
        # Latin bytes 0xA1-0xDF read as Shift-JIS are half-width katakana, which Japanese text rarely uses: a
        # lone `©` (0xA9) came out as `ｩ`
        latin = _latin(data)
        if latin is not None:
            return latin
    return Detected(name, round(1 - best.chaos, 3), "detected")


_SHIFT_JIS = ("cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213")


def _latin_pairs(text: str, encoding: str) -> bool:
    """Whether each character a multi-byte encoding read from two bytes or more ends in an ASCII letter's byte: a
    Latin byte before a letter (`São`, `°C`), which Big5, GBK, Shift-JIS and UHC take for one character (`S緌`,
    `蚓`). A third of real Big5 characters end so, nearly none in real text all of them."""
    pairs = [c.encode(encoding, errors="ignore") for c in text if ord(c) > 127]
    pairs = [b for b in pairs if len(b) > 1]
    return bool(pairs) and all(b[-1:].isalpha() for b in pairs)


def _mostly_halfwidth_kana(text: str) -> bool:
    odd = [c for c in text if ord(c) > 127]
    return bool(odd) and 2 * sum("\uff61" <= c <= "\uff9f" for c in odd) > len(odd)


def _latin(data: bytes) -> Detected | None:
    """The Latin code page that decodes `data` most plausibly (see `_LATIN`), or None."""
    scored = []
    for rank, name in enumerate(_LATIN_CANDIDATES):
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        odd = [c for c in text if ord(c) > 127]
        if not odd:
            continue
        scored.append((_implausible(text) / len(odd), rank, name))
    if not scored:
        return None
    share, _, name = min(scored)
    return Detected(codecs.lookup(name).name, round(1 - share, 3), "detected")


def _implausible(text: str) -> int:
    """How many characters beyond ASCII are neither letters nor common punctuation (`¿` and `¡` only where a
    word starts, `£` and `¥` only beside no letter)."""
    import unicodedata

    bad = 0
    for i, c in enumerate(text):
        if ord(c) < 128 or c in _TYPOGRAPHY or unicodedata.category(c).startswith("L"):
            continue
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        if c in "¿¡" and not before.isalpha():
            continue
        if c in "£¥" and not (before.isalpha() or after.isalpha()):  # (`£5`, `£ 5`, `,£`; `Ł` stands in words)
            continue
        bad += 1
    return bad


# Files that are not text, told by their first bytes when the sample also holds control bytes: a `.csv` or
# `.json` that is one of these fails saying what it is, where a parser would report a ragged line somewhere in it.
_NOT_TEXT: list[tuple[bytes, str]] = [
    (b"PAR1", "a Parquet file"),
    (b"%PDF-", "a PDF document"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Office 97-2003 document (an Excel `.xls` workbook, say)"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"Obj\x01", "an Avro file"),
    (b"ARROW1", "an Arrow file"),
    (b"\x7fELF", "a program"),
]
# bytes that text does not hold: C0 controls but tab, line feed, vertical tab, form feed, carriage return and the
# DOS end-of-file mark, and DEL
_CONTROL = re.compile(b"[\x00-\x08\x0e-\x19\x1b-\x1f\x7f]")
_TEXTISH = bytes(b for b in range(256) if not _CONTROL.match(bytes([b])))


def not_text(head: bytes, declared: str | None = None) -> tuple[str | None, int, int] | None:
    """Whether a file whose first bytes are `head` is not text: None for text; else what it is (a known
    format's name, or None), the offset of its first control byte and how many the sample holds. Binary is a
    known format's first bytes followed by a control byte, or at least eight control bytes making more than
    one in twenty of the sample (a stray NUL in a text file is left to the reader); text in UTF-16 or UTF-32
    (told by its BOM or its NULs, or `declared`) is text."""
    controls = len(head.translate(None, _TEXTISH))
    if not controls:
        return None
    first = _CONTROL.search(head).start()  # type: ignore[union-attr]
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            return what, first, controls
    if controls < 8 or 20 * controls <= len(head):
        return None
    wide = declared or (marked.encoding if (marked := _marked(head)) else "utf-8")
    if codecs.lookup(wide).name.startswith(("utf-16", "utf-32")):
        return None
    return None, first, controls


def is_utf8(name: str) -> bool:
    return codecs.lookup(name).name in ("utf-8", "utf-8-sig", "ascii")


def mixed_newlines(sample: bytes, quote: str | None = '"') -> bool:
    """Whether a sample mixes line endings (LF, CRLF, lone CR), which CSV readers trip on; line breaks inside
    values quoted with `quote` (None: no quoting) are no line endings."""
    if quote:
        sample = b"".join(sample.split(quote.encode())[0::2])  # (from the first byte on, outside quotes)
    crlf = sample.count(b"\r\n")
    lone_cr = sample.count(b"\r") - crlf
    lone_lf = sample.count(b"\n") - crlf
    return sum(1 for n in (crlf, lone_cr, lone_lf) if n) > 1


def transcode(
    path: str,
    encoding: str,
    dest_dir: str,
    *,
    newlines: bool = False,
    quote: str | None = '"',
    compressed: str | None = None,
) -> str:
    """Write a UTF-8 copy of `path` (decompressed as `compressed`, or as detected; decoded as `encoding`) into
    `dest_dir`; returns the copy's path. With `newlines`, every line ending (CRLF, lone CR) becomes LF: outside
    values quoted with `quote` (None: no quoting), whose line breaks are their own, as written.

    Raises `UnicodeDecodeError` (with the byte offset) when the bytes are not valid in that encoding.
    """
    Path(dest_dir).mkdir(parents=True, exist_ok=True)
    name = compression.strip_suffix(os.path.basename(path))
    dest = os.path.join(dest_dir, f"utf8-{os.getpid()}-{abs(hash(path)) % 10**8}-{name}")
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    carry = ""
    inside = False  # within a quoted value
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
                text, inside = _as_lf(text, quote, inside)
            out.write(text.lstrip("\ufeff") if offset == 0 else text)
            offset += len(chunk)
            if not chunk:
                break
    return dest


def _as_lf(text: str, quote: str | None, inside: bool) -> tuple[str, bool]:
    """`text` with its line endings outside quoted values LF (`inside`: it starts within one), and whether it
    ends within one. A doubled quote (RFC 4180's escape) leaves a value and enters it again."""
    if not quote or (quote not in text and not inside):
        return _lf(text), False
    if "\r" not in text:  # nothing to change: where it ends
        return text, inside != (text.count(quote) % 2 == 1)
    parts = text.split(quote)
    start = 1 if inside else 0
    parts[start::2] = [_lf(p) for p in parts[start::2]]
    return quote.join(parts), inside != (len(parts) % 2 == 0)


def _lf(text: str) -> str:
    return text.replace("\r\r\n", "\n").replace("\r\n", "\n").replace("\r", "\n")


def undecodable(key: str, path: str, exc: UnicodeDecodeError, kind: str | None = None, how: str = "") -> Exception:
    """The error of a file (`key`, read from `path`, decompressed as `kind`) whose byte `exc.start` its encoding
    cannot decode: the line, the byte, why (and `how` the encoding was chosen), and what to set."""
    from landfall.errors import InvalidInput

    line = line_of_offset(path, exc.start, kind)
    return InvalidInput(
        f"`{key}` line {line}: byte {exc.start} is not valid {exc.encoding} ({exc.reason}{how}); "
        "set `read.encoding` to the file's encoding",
        file=key,
        line=line,
    )


def line_of_offset(path: str, offset: int, kind: str | None = None) -> int:
    """1-based line number of a byte offset in a (possibly compressed) file's decompressed bytes."""
    with _open(path, kind) as fh:
        data = fh.read(offset)
    return data.count(b"\n") + 1


def read_text(path: str) -> str:
    """A (possibly compressed) UTF-8 file's text, a BOM dropped."""
    with _open(path) as fh:
        return fh.read().decode("utf-8", errors="strict").removeprefix("\ufeff")


def line_texts(path: str, wanted: set[int]) -> dict[int, str]:
    """The text of lines `wanted` (1-based) of a file as the engines read it (UTF-8, decompressed), for the
    quarantine's `_raw` of rows set aside after parsing (a value its declared type cannot hold whole)."""
    found: dict[int, str] = {}
    if not wanted:
        return found
    with _open(path) as fh:
        for n, line in enumerate(fh, start=1):
            if n in wanted:
                found[n] = line.rstrip(b"\r\n").decode("utf-8", "replace")
                if len(found) == len(wanted):
                    break
    return found
