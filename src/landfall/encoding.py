"""Text encodings of landed files: detect, and transcode to UTF-8 when the engine cannot read them as they are.

Nothing is ever written as binary or mojibake: a file is read as UTF-8 only when it is UTF-8 (checked on a
sample, and by the engine on the whole file); otherwise the declared or detected encoding is decoded here.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
from pathlib import Path

import msgspec

from landfall import compression
from landfall.storage.local import fitted

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
    sample decodes), `detected` (chardet, or landfall among Latin code pages: see `_detected`) or `fallback`
    (nothing better: cp1252, or Latin-1 for bytes cp1252 leaves undefined)."""

    encoding: str
    confidence: float
    how: str

    def to_json(self) -> dict[str, object]:
        return {"encoding": self.encoding, "confidence": self.confidence, "how": self.how}


def detect(path: str, head: bytes | None = None) -> str:
    """The encoding of a text file (see `detect_encoding`)."""
    return detect_encoding(head if head is not None else sample(path)).encoding


# Latin-script single-byte code pages, among which landfall chooses by itself when the detector has no answer, or a
# multi-byte answer that only a Latin reading explains (see `_detected`): the one whose decoded sample has the
# fewest characters that are neither letters nor common punctuation, cp1252 on a tie (Polish in cp1252 shows `³`
# and `¹`: cp1250 wins; French reads alike in both: cp1252 wins).
_LATIN_CANDIDATES = ("cp1252", "cp1250", "cp1257", "iso8859_16")
_TYPOGRAPHY = set("€‘’“”„‚–—…•°«»·×")
# what the detector chooses among: the code pages of today's files (Windows', KOI8, the CJK encodings) and those of
# older exports still met (DOS Latin and Cyrillic, ISO Central European, Cyrillic and Greek); the rest (Mac, EBCDIC,
# DOS Greek or Hebrew) only ever won on samples they did not write (a short Japanese sample read as DOS Hebrew)
_OLDER = ("cp437", "cp850", "cp866", "iso8859-2", "iso8859-5", "iso8859-7")
# JIS X 0213's Shift-JIS, which chardet ranks level with cp932 (Windows' Shift-JIS, what Japanese files are
# written in) but which reads 2,266 of cp932's characters otherwise (`ⅰ` as `鄯`, `髙` as `郄`)
_RARER = ("shift_jis_2004",)


def detect_encoding(data: bytes) -> Detected:
    """The encoding of a text sample: a BOM wins; then UTF-16 without BOM (NUL pattern); then UTF-8 if the
    sample decodes (or mostly does, see `_mostly_utf8`); else chardet's answer (Shift-JIS, GB18030, cp1251,
    cp1254, ...; see `_detected`); else cp1252 or Latin-1."""
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
    found = _detected(data)
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


def _detected(data: bytes) -> Detected | None:
    """chardet's answer for a sample that is not UTF-8 (its models of each language's byte pairs tell Greek from
    Hebrew from Cyrillic in a line or two, and Turkish cp1254 from cp1252), checked: cp1252 for signs alone
    (`_signs_only`); its next answer while the first reads as text seldom holds (`_unlikely`); a Latin code page of
    landfall's choice (`_latin`) where chardet has none, or where its answer is what Latin bytes make of it (`São`
    as Big5's `S緌`, a lone `©` as Shift-JIS's half-width `ｩ`, Italian's `Città` and `Perché` as cp1251's `Cittа`
    and `Perchй`); cp1252 where it ranks close behind a Latin rival (`_western`). None when nothing reads the
    sample. `confidence` is chardet's: how closely the sample matches its model of the language, low for a short
    sample even when right."""
    import chardet

    if len(data) == SAMPLE:  # a multi-byte character may be cut at the end of the sample
        data = data[: data.rfind(b"\n") + 1] or data
    if (signs := _signs_only(data)) is not None:
        return signs
    ranked = chardet.detect_all(data, include_encodings=_candidates(), compat_names=False)
    while len(ranked) > 1 and _unlikely(ranked[0]["encoding"], data):
        ranked = ranked[1:]
    found = ranked[0] if ranked else {"encoding": None, "confidence": 0.0}
    name = codecs.lookup(found["encoding"] or "cp1252").name
    try:
        text = data.decode(name)
    except UnicodeDecodeError:  # no candidate reads every byte: chardet names cp1252 all the same
        return _latin(data)
    if _latin_pairs(text, name) or _mixed_scripts(text) or (name in _SHIFT_JIS and _mostly_halfwidth_kana(text)):
        return _latin(data) or Detected(name, round(found["confidence"], 3), "detected")
    if name in _WESTERN_RIVALS and _western(data, found["confidence"], ranked):
        return Detected("cp1252", round(found["confidence"], 3), "detected")
    return Detected(name, round(found["confidence"], 3), "detected")


# Latin code pages whose models chardet prefers to cp1252's on a short Western sample (a Spanish `Muñoz` as
# cp1250's `Muńoz`, a French `Hélène` as `Hélčne`): where cp1252 reads the sample cleanly and chardet ranks it
# close behind, cp1252 is taken (see `_western`)
_WESTERN_RIVALS = ("cp1250", "iso8859-2", "cp1257", "cp437", "cp850")
_WESTERN_BEHIND = 1.4
# letters cp1252 gives bytes that Western text seldom holds: Icelandic's (Turkish `ş`, `ğ`, `ı` in cp1252) and `ý`
# (Czech, Slovak)
_UNWESTERN = set("þÞðÐýÝ")
# the letters of Turkish beyond ASCII
_TURKISH = set("çğıİöşüÇĞÖŞÜâîûÂÎÛ")


def _unlikely(name: str | None, data: bytes) -> bool:
    """Whether chardet's first answer reads `data` as text seldom holds: C1 control characters (ISO 8859-2 reads
    cp1252's `˜`, 0x98, so), or Turkish whose letters beyond ASCII are mostly not Turkish's."""
    if not name:
        return False
    text = data.decode(name, errors="replace")
    return bool(_C1.search(text)) or (name == "cp1254" and not _turkish(text))


_C1 = re.compile("[\x80-\x9f]")


def _turkish(text: str) -> bool:
    """Whether most letters beyond ASCII of a cp1254 reading are Turkish's: chardet ranks cp1254 first for some
    short Central European samples (Czech `Dvořák`, `Černý` read `Dvoøák`, `Èernı`)."""
    odd = [c for c in text if ord(c) > 127 and c.isalpha()]
    return 2 * sum(c in _TURKISH for c in odd) > len(odd)


def _western(data: bytes, top: float, ranked: list) -> bool:
    """Whether cp1252 reads `data` as cleanly as a Latin rival chardet ranked first at confidence `top` and is
    ranked within `_WESTERN_BEHIND` of it. Measured on short samples (a line to a hundred): Czech, Hungarian and
    Polish ones ranked their code page mostly 1.5 to 5 times as likely as cp1252, Spanish, French and Dutch ones
    misread mostly at most 1.4 times; the two overlap on samples of a line or three (Latvian from 1.16, Dutch to
    1.6), where `read.encoding` is the sure way."""
    behind = next((r["confidence"] for r in ranked if r["encoding"] == "cp1252"), 0.0)
    if not behind or top > _WESTERN_BEHIND * behind:
        return False
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    return not _implausible(text) and not _UNWESTERN.intersection(text)


@functools.cache
def _candidates() -> tuple[str, ...]:
    from chardet import EncodingEra
    from chardet.registry import REGISTRY

    today = (name for name, info in REGISTRY.items() if info.era & EncodingEra.MODERN_WEB and name not in _RARER)
    return (*today, *_OLDER)


_SHIFT_JIS = ("cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213")


def _latin_pairs(text: str, encoding: str) -> bool:
    """Whether each character a multi-byte encoding read from two bytes or more ends in an ASCII letter's byte: a
    Latin byte before a letter (`São`, `°C`), which Big5, GBK, Shift-JIS and UHC take for one character (`S緌`,
    `蚓`). A third of real Big5 characters end so, nearly none in real text all of them."""
    pairs = [c.encode(encoding, errors="ignore") for c in text if ord(c) > 127]
    pairs = [b for b in pairs if len(b) > 1]
    return bool(pairs) and all(b[-1:].isalpha() for b in pairs)


# signs Western text holds beyond ASCII, besides letters
_SIGNS = _TYPOGRAPHY | set("©®™±²³¹µ¼½¾£¥¢§¶¡¿÷ºª\xa0")


def _signs_only(data: bytes) -> Detected | None:
    """cp1252 for a sample whose bytes beyond ASCII are all signs in it (`©`, `½`, `€`, `“`): with no letter to
    go on, chardet took `½ price ¼` for cp1251's `Ѕ price ј` and `© 2024 ®` for cp866's `й 2024 о`; else None."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    odd = {c for c in text if ord(c) > 127}
    return Detected("cp1252", 1.0, "detected") if odd and odd <= _SIGNS else None


def _mixed_scripts(text: str) -> bool:
    """Whether most words holding a letter beyond ASCII also hold an ASCII one and one of another script than
    Latin: Latin text's accented letters read in a Cyrillic, Greek or Hebrew code page (`Cittа`), where words of
    those scripts are of their letters alone."""
    import unicodedata

    words = [w for w in _WORDS.findall(text) if not w.isascii()]
    mixed = sum(
        any(c.isascii() for c in w) and any(not unicodedata.name(c, "LATIN").startswith("LATIN") for c in w)
        for w in words
    )
    return 2 * mixed > len(words) > 0


_WORDS = re.compile(r"[^\W\d_]+")


def _mostly_halfwidth_kana(text: str) -> bool:
    odd = [c for c in text if ord(c) > 127]
    return bool(odd) and 2 * sum("\uff61" <= c <= "\uff9f" for c in odd) > len(odd)


def _latin(data: bytes) -> Detected | None:
    """The Latin code page that decodes `data` most plausibly (see `_LATIN_CANDIDATES`), or None."""
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
    name = fitted(compression.strip_suffix(os.path.basename(path)), 24)
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
