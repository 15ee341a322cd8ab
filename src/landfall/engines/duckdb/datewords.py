"""Words DuckDB's date and timestamp casts take: `epoch` (1970-01-01), `infinity`, `-infinity` and `inf` (infinite
dates), in any case, even in the strict formats landfall reads detected dates in. A column holding one is text,
whether the word is in the detection sample (its scan, `read_csv.dates_in` and `jsondates.pin_dates`, which a look
at the sample's bytes spares when none of them holds one: `may_hold_date_words`) or past it (the written files'
stats show the epoch or an infinite value, and the files are looked at again: `late_date_words`; the steps may
rename, flatten or change the column on its way there: `follow`).

A number beyond a double's range (`1e400`, `-1e999`) is the same kind of value: DuckDB's CSV and JSON readers and
its casts take it for an infinity, without a word. A column the reader parses as doubles is looked at the same way (the
written files' stats show an infinite value: `late_date_words` scans it as text for such a number,
`casts.beyond_range`), and holding one, is read as text: the value is kept as written, as a value of another form
past the type sample keeps its column. An infinity written as a word (`inf`, `-Infinity`) is a double."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from landfall import encoding as enc
from landfall.engines.base import ReadPlan, StagedFile, named_in
from landfall.engines.duckdb.casts import beyond_range
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.sql import q

#: what every word the casts take holds, in any case
_PARTS = (b"inf", b"epoch")
_LOOK_BYTES = 8 << 20  # past this, a sample's lines are not looked through: the sample is scanned
_DATE = re.compile(r"-?\d{4,}-\d\d-\d\d")
_EPOCH_DATE, _EPOCH_TIME = "1970-01-01", "00:00:00"
_INFINITE = ("inf", "-inf")  # a double's stats


def may_hold_date_words(path: str, lines: int) -> bool:
    """Whether the first `lines` lines of a file DuckDB reads (UTF-8, decompressed as the reader does) may hold
    a word a date cast takes: False when none holds `inf` or `epoch` in any case, so that no date column of a
    detection sample in them holds one (a record has at least one line) and the sample need not be scanned."""
    return may_hold(path, lines, _PARTS)


def may_hold(path: str, lines: int, parts: tuple[bytes, ...]) -> bool:
    """Whether the first `lines` lines of a file DuckDB reads (UTF-8, decompressed as the reader does) may hold
    one of `parts` (lower case), in any case: True too past `_LOOK_BYTES`, where the look stops."""
    return _looked(path, lines, lambda text: _holds(text, parts))


def may_hold_long_numbers(path: str, lines: int) -> bool:
    """Whether the first `lines` lines of a file may hold a number of more than 15 digits (`casts.lost_digits`): 16
    digits or points in a row (a number of fewer digits is a double's whole). A translation and a search of the
    bytes: 8 ms on 6 MiB of CSV."""
    return _looked(path, lines, sixteen_digits)


def sixteen_digits(text: bytes) -> bool:
    """Whether `text` holds 16 digits or points in a row: a number of fewer digits is a double's whole."""
    return _SIXTEEN in text.translate(_DIGIT_OR_POINT)


#: every digit and the point as `0`, any other byte as a space
_DIGIT_OR_POINT = bytes(48 if 48 <= b <= 57 or b == 46 else 32 for b in range(256))
_SIXTEEN = b"0" * 16


def _looked(path: str, lines: int, found: Callable[[bytes], bool]) -> bool:
    """Whether `found` is true of the first `lines` lines of a file DuckDB reads (UTF-8, decompressed as the reader
    does), read a chunk at a time (each led by the last 16 bytes of the one before, for what a chunk's end cuts):
    True too past `_LOOK_BYTES`, where the reading stops."""
    seen, tail, size = 0, b"", 0
    with enc._open(path) as fh:
        while seen < lines:
            chunk = fh.read(1 << 20)
            if not chunk:
                return False
            size += len(chunk)
            text = tail + chunk
            if found(text) or size > _LOOK_BYTES:
                return True
            seen += chunk.count(b"\n")
            tail = text[-16:]
    return False


def _holds(text: bytes, parts: tuple[bytes, ...]) -> bool:
    """Whether `text` holds one of `parts` (lower case) in any case. A part's last letter, in either case, is looked
    for first (one `memchr` each): a search for `0x` itself is slow in the digits of a numeric file, and a text
    without an `x` cannot hold it; the text is lowered and searched only for the parts whose letter it holds."""
    maybe = [p for p in parts if p[-1:] in text or p[-1:].upper() in text]
    if not maybe:
        return False
    low = text.lower()
    return any(p in low for p in maybe)


def watch_doubles(cx: JobContext, doubles: set[str]) -> None:
    """Have `late_date_words` look for a number beyond a double's range in these columns of doubles (CSV or
    JSON) when the written files' stats show an infinite value."""
    cx.read_dates |= {n: f"coalesce(bool_or({beyond_range(q(n))}), false)" for n in doubles}
    cx.read_doubles = doubles


def late_date_words(cx: JobContext, files: list[StagedFile]) -> ReadPlan | None:
    """The plan to read the job with again when a column the reader parsed as dates (`cx.read_dates`) holds a
    word past the detection sample, else None. Such a word is written as the epoch or an infinite value: only
    where the written files' stats show one of those are the files scanned, those columns as text (a dataset
    whose dates are finite and do not span 1970-01-01 costs nothing). A CSV column holding a word is read as
    text; JSON is read with its types and dates detected on the whole files, which finds the word as the
    sample's scan does. A column of doubles (`cx.read_doubles`) holding a number beyond a double's range is read
    as text, CSV or JSON; one of doubles inside an object or a list (`cx.nested_doubles`), that leaf, the whole
    files read again."""
    suspect = []
    for n in cx.read_dates:
        written = cx.date_names.get(n, (n, False))
        if written is None:  # a step may have changed the values: dates are looked at, numbers are left (a
            if n not in cx.read_doubles | cx.nested_doubles:  # column filtered or computed on is common; a number
                suspect.append(n)  # beyond rare)
        elif any(_may_hide_a_word(f.stats, *written) for f in files):
            suspect.append(n)
    if not suspect:
        return None
    found = cx.con.execute(f"SELECT {', '.join(cx.read_dates[n] for n in suspect)} FROM ({cx.dates_as_text})")
    late = {n for n, hit in zip(suspect, found.fetchone(), strict=True) if hit}
    if not late:
        return None
    if cx.fmt == "csv" or late <= cx.read_doubles:
        return cx.plan.but(as_text=cx.plan.as_text | late)
    return cx.plan.but(sample_all=True, as_text=cx.plan.as_text | (late & cx.read_doubles))


def follow(cx: JobContext, step: Any, before: list[str], after: list[str]) -> None:
    """Where a transform step (with the data columns `before` and `after` it) puts the values of each column the
    reader parsed as dates (`cx.date_names`), so that the written files' stats are read under the right name. A
    step that may change the values (`cast` or `compute` of the column, `sql` that names it), drops or explodes
    the column, or picks rows by it (`filter`, `dedupe`'s order) leaves the stats nothing to vouch for: the files
    are looked at."""
    for read in cx.read_dates:
        where = cx.date_names.get(read, (read, False))
        if where is not None:
            cx.date_names[read] = _through(step, *where, before, after)


def renamed(cx: JobContext, names: dict[str, str]) -> None:
    """`follow` for columns renamed (`names`: old -> new) on their way to the table."""
    for read in cx.read_dates:
        where = cx.date_names.get(read, (read, False))
        if where is not None and not where[1] and where[0] in names:
            cx.date_names[read] = (names[where[0]], False)


def _through(step: Any, name: str, prefix: bool, before: list[str], after: list[str]) -> tuple[str, bool] | None:
    """Where `step` puts the values of the column `name` (with `prefix`, of the columns flattened out of one)."""
    kind = step.kind
    if kind == "flatten" and step.flatten.keep_json:  # an object kept as JSON text: its stats show no dates
        return None
    if prefix:  # columns flattened out of the date column: followed through further flattening only
        return (name, True) if kind == "flatten" else None
    if kind == "rename":
        return step.rename.get(name, name), False
    if kind == "normalize_names":
        return dict(zip(before, after, strict=True)).get(name, name), False
    if kind == "flatten":
        if name in after:
            return name, False
        leaves = name + step.flatten.separator
        return (leaves, True) if any(c.startswith(leaves) for c in after) else None
    if kind in ("filter", "dedupe"):
        said = step.filter if kind == "filter" else step.dedupe.order_by or ""
        return None if named_in(name, [said]) else (name, False)
    if kind in ("drop", "cast", "compute"):
        return None if name in getattr(step, kind) else (name, False)
    if kind == "explode":
        return None if name == step.explode else (name, False)
    if kind == "child_tables":
        return None if name in step.child_tables.columns else (name, False)
    if kind == "sql":  # a column the query does not name comes through `*` as it was (`SELECT * EXCLUDE (x)`)
        return (name, False) if name in after and not named_in(name, [step.sql]) else None
    return None  # a step this does not know


def _may_hide_a_word(stats: dict[str, dict[str, str]], column: str, prefix: bool = False) -> bool:
    """Whether a written file's stats of `column` (or of a field inside it; with `prefix`, of each column whose
    name starts so) show an infinite value or span the epoch (ISO text sorts as its dates do from year 1000 to
    9999; a year before 1000 sorts first, calling for a look)."""
    name = q(column)
    for key, stat in stats.items():
        if prefix:
            if not key.startswith(name[:-1]):
                continue
        elif key != name and not key.startswith(name + "."):
            continue
        low, high = stat.get("min"), stat.get("max")
        if low is None or high is None:  # no value
            continue
        if "infinity" in low or "infinity" in high or low in _INFINITE or high in _INFINITE:
            return True
        if _DATE.match(low) and _DATE.match(high) and low[:10] <= _EPOCH_DATE <= high[:10]:
            return True
        if low.startswith(_EPOCH_TIME):
            return True
    return False
