"""CSV files put together (`cat jan.csv feb.csv > all.csv`): each part's header line is a line of the whole. Read
as a row, it made every column text (`id` is no number) or, past the type sample, failed the file's types one
column at a time. Such lines are made blank in a copy of the file, which both engines' readers pass over (every
other line keeps its number), and the run says which lines they were."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

from landfall import compression
from landfall import encoding as enc
from landfall.storage.local import fitted

#: how much of a CSV file is looked through for its header line again before it is read: more than the type
#: sample's rows (DuckDB's sniffer would take a column holding its own name for text); a header line past it is
#: found when its values do not fit their columns (`replanning`: `ReadPlan.header_lines`)
HEADER_LOOK = 8 << 20


def repeats_header(path: str, skip: int) -> bool:
    """Whether the first `HEADER_LOOK` bytes of a CSV file (as the engine reads it) hold its header line (the first
    line after `skip` lines, blank lines aside) again, as a line of its own."""
    try:
        with enc._open(path) as fh:
            head = fh.read(HEADER_LOOK)
    except Exception:  # unreadable here (a damaged compressed file): the read's own error says why
        return False
    lines = head[: 1 << 16].split(b"\n", skip + 64)
    header = next((ln.rstrip(b"\r") for ln in lines[skip:-1] if ln.strip()), None)
    if not header or not any(d in header for d in (b",", b";", b"\t", b"|")):
        return False  # (of one column, a value may well be its name)
    needle = b"\n" + header
    at = head.find(header) + len(header)
    while (at := head.find(needle, at)) >= 0:
        at += len(needle)
        if head[at : at + 1] == b"\n" or head[at : at + 2] == b"\r\n":
            return True
    return False


def _lines(fh: Any, skip: int) -> Iterator[tuple[int, bytes, bool]]:
    """Each line of a CSV file (number, bytes) and whether it repeats the header line (the first line after
    `skip` lines, blank lines aside)."""
    header = None
    for n, line in enumerate(fh, start=1):
        bare = line.rstrip(b"\r\n")
        if n > skip and header is None and bare.strip():
            header = bare
            yield n, line, False
        else:
            yield n, line, header is not None and bare == header


def holds_header_again(path: str, skip: int) -> bool:
    """Whether any line of a CSV file (as the engine reads it) repeats its header line: the whole file, line by
    line (read when a value past the type sample did not fit its column)."""
    with enc._open(path) as src:
        return any(again for _, _, again in _lines(src, skip))


def without_repeated_header(path: str, skip: int, scratch: str) -> tuple[str, list[int]]:
    """A copy of a CSV file (as the engine reads it: UTF-8, maybe compressed) whose lines that repeat its header
    line are blank, and those lines' numbers; the file itself when none does. A file of files put together (`cat
    a.csv b.csv`) holds one header line each."""
    blanked: list[int] = []
    os.makedirs(scratch, exist_ok=True)
    name = fitted(compression.strip_suffix(os.path.basename(path)), 16)
    fd, out = tempfile.mkstemp(prefix="header-", suffix=f"-{name}", dir=scratch)  # (files of a batch share names)
    with enc._open(path) as src, os.fdopen(fd, "wb") as dst:
        for n, line, again in _lines(src, skip):
            if again:
                blanked.append(n)
                line = line[len(line.rstrip(b"\r\n")) :]  # its line ending only
            dst.write(line)
    if not blanked:
        os.remove(out)
        return path, blanked
    return out, blanked


def header_note(lines: list[int]) -> str:
    """The run's note for header lines passed over."""
    shown = ", ".join(str(n) for n in lines[:5]) + (f" and {len(lines) - 5} more" if len(lines) > 5 else "")
    return f"{len(lines)} line{'s' if len(lines) > 1 else ''} repeating the header passed over (line {shown})"
