"""From a record's position in its file to the line it starts on.

Spark has no line numbers: the engine numbers records exactly (see `numbering.py`), and this module maps record
numbers to lines with one pass over the local file, stopping at the last record asked for. What Spark counts as
a record decides the mapping:

- CSV read line by line (no value spans lines): a record is a line that is not blank (Spark skips blank lines
  and, with `comment`, lines starting with it), after the skipped rows and the header.
- CSV read whole (`multiLine`): records are what Python's csv reader finds with the same dialect; a record
  starts on the line after the previous one ended (blank lines between records are skipped).
- JSON Lines are read a line at a time (`from_json` on each line, blank lines skipped after numbering): the
  record number is the line.
- JSON documents (rewritten as JSON Lines, one record per line, for Spark): the line each record starts on in
  the document, as Python's parser finds the records (`diagnose.document_starts`, shared with DuckDB).
- Parquet: the record number is reported.

Also here: the pass over a CSV file's bytes that runs beside Spark's read (`scan`: an unclosed quote, the lines
that hold records) and what it tells of the rows Spark kept (`dropped`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from landfall import encoding as enc
from landfall.engines.base import csv_quoting


@dataclass(frozen=True)
class Dialect:
    """How a CSV file is laid out, as detected (DuckDB's sniffer) or declared."""

    delimiter: str = ","
    quote: str = '"'  # "" when values are never quoted
    escape: str = '"'
    header: bool = True
    skip: int = 0
    comment: str = ""
    newline: str = "\n"


def record_lines(
    path: str, fmt: str, records: Iterable[int], *, dialect: Dialect | None = None, whole: bool = False
) -> dict[int, int]:
    """`{record number: line}` for the records asked for (1-based both)."""
    wanted = sorted(set(records))
    if not wanted:
        return {}
    if fmt == "json":  # `path`: the document (Spark read its records rewritten as JSON Lines)
        from landfall.engines.duckdb.diagnose import document_starts

        starts = document_starts(path)
        return {r: starts[r - 1] if r <= len(starts) else r for r in wanted}
    if fmt in ("jsonl", "parquet"):
        return {r: r for r in wanted}  # JSON Lines are read a line at a time: the record number is the line
    if fmt == "csv" and whole:
        return _csv_records(path, dialect or Dialect(), wanted)
    skip = 0
    comment = ""
    if fmt == "csv":
        d = dialect or Dialect()
        skip = d.skip + (1 if d.header else 0)
        comment = d.comment
    return _plain_lines(path, wanted, skip, comment)


def _plain_lines(path: str, wanted: list[int], skip: int, comment: str) -> dict[int, int]:
    out: dict[int, int] = {}
    todo = iter(wanted)
    target = next(todo)
    record = 0
    with enc._open(path) as fh:
        for n, raw in enumerate(fh, start=1):
            if n <= skip:
                continue
            text = raw.strip()
            if not text or (comment and raw.lstrip().startswith(comment.encode())):
                continue
            record += 1
            if record == target:
                out[target] = n
                target = next(todo, None)
                if target is None:
                    break
    return out


def unclosed_line(path: str, d: Dialect) -> int | None:
    """The line a quoted value that is never closed starts on (Python's csv reader, strict), or None."""
    with enc._open(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        for _ in range(d.skip):
            text.readline()
        reader = csv.reader(text, delimiter=d.delimiter, strict=True, **csv_quoting(d.quote, d.escape))
        end = d.skip
        try:
            for _ in reader:
                end = d.skip + reader.line_num
        except csv.Error:
            return end + 1
    return None


def _csv_records(path: str, d: Dialect, wanted: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    todo = iter(wanted)
    target = next(todo)
    quoting = csv_quoting(d.quote, d.escape)
    record = 0
    with enc._open(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        for _ in range(d.skip):
            text.readline()
        reader = csv.reader(text, delimiter=d.delimiter, **quoting)
        if d.header:
            next(reader, None)
        end = d.skip + reader.line_num
        for rec in reader:
            start = end + 1
            end = d.skip + reader.line_num
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue
            if d.comment and rec[0].startswith(d.comment):
                continue
            record += 1
            if record == target:
                out[target] = start
                target = next(todo, None)
                if target is None:
                    break
    return out


@dataclass(frozen=True)
class Scan:
    """What one pass over a CSV file's bytes found (at memory speed, while Spark reads the file)."""

    unclosed: int | None  # the line where a quoted value that is never closed starts
    lines: int | None  # (with `count`) the lines after the skipped ones and the header
    mixed: bool = False  # lines end in more than one way (CRLF and a lone LF, say): read a copy whose endings are LF


def scan(path: str, d: Dialect, *, count: bool = False) -> Scan:
    """Quote characters (an odd count, escaped ones aside, is the cheap test for an unclosed quote; only then
    does Python's csv reader find its line) and, with `count`, the lines holding records."""
    quote, escape = d.quote.encode(), d.escape.encode()
    sep = d.newline.encode()
    quotes = lines = 0
    last = b""
    ended = True
    endings: set[str] = set()
    with enc._open(path) as fh:
        chunk = _head(fh, d)
        rest = False  # past the skipped lines and the header
        while True:
            crlf = chunk.count(b"\r\n")  # (a chunk ends where a line does: no CRLF is cut in two)
            endings |= {
                k
                for k, n in (("crlf", crlf), ("lf", chunk.count(b"\n") - crlf), ("cr", chunk.count(b"\r") - crlf))
                if n
            }
            if quote:
                quotes += chunk.count(quote)
                if escape and escape != quote:  # `\"` is a quote inside a value
                    quotes -= chunk.count(escape + quote) + (last == escape and chunk[:1] == quote)
            if count and rest:
                lines += chunk.count(sep)
                ended = chunk.endswith(sep)
            last = chunk[-1:] or last
            chunk = fh.read(16 << 20)
            if not chunk:
                break
            chunk += fh.readline()  # chunks end where a line does: no separator is cut in two
            rest = True
    if not ended:
        lines += 1  # the last line has no line break
    unclosed = None
    if quotes % 2:
        unclosed = unclosed_line(path, d)
    return Scan(unclosed=unclosed, lines=lines if count else None, mixed=len(endings) > 1)


def dropped(inp: Any, kept: int) -> bool:
    """Whether Spark's reader dropped records of a file it read line by line (`Input.checked`): it kept fewer
    rows than the file has lines holding records, blank lines aside. Blank lines are looked for only then, and
    only empty lines are: a line of spaces (or a blank line before the header) counts as a record, so the count
    is never too low (too high, the file is read again as text)."""
    lines = inp.scan.result().lines
    if lines == kept:
        return False
    sep = inp.dialect.newline.encode()
    blanks = 0
    ended = True  # records start on a line of their own
    with enc._open(inp.path) as fh:
        _head(fh, inp.dialect)
        while chunk := fh.read(16 << 20):
            chunk += fh.readline()
            blanks += ended and chunk.startswith(sep)
            at = chunk.find(sep + sep)
            while at >= 0:  # each line break right after another ends a blank line
                blanks += 1
                at = chunk.find(sep + sep, at + len(sep))
            ended = chunk.endswith(sep)
    return lines - blanks != kept


def _head(fh: Any, d: Dialect) -> bytes:
    """The skipped lines and the header, read off `fh` (lines as `_drop_lines` drops them)."""
    return b"".join(fh.readline() for _ in range(d.skip + (1 if d.header else 0)))
