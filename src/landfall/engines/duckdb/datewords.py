"""Words DuckDB's date and timestamp casts take: `epoch` (1970-01-01), `infinity`, `-infinity` and `inf` (infinite
dates), in any case, even in the strict formats landfall reads detected dates in. A column holding one is text,
whether the word is in the detection sample (its scan, `read_csv.dates_in` and `jsondates.pin_dates`, which a look
at the sample's bytes spares when none of them holds one: `may_hold_date_words`) or past it (the written files'
stats show the epoch or an infinite value, and the files are looked at again: `late_date_words`)."""

from __future__ import annotations

import re

from landfall import encoding as enc
from landfall.engines.base import ReadPlan, StagedFile
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.sql import q

#: what every word the casts take holds, in any case
_PARTS = (b"inf", b"epoch")
_LOOK_BYTES = 8 << 20  # past this, a sample's lines are not looked through: the sample is scanned
_DATE = re.compile(r"-?\d{4,}-\d\d-\d\d")
_EPOCH_DATE, _EPOCH_TIME = "1970-01-01", "00:00:00"


def may_hold_date_words(path: str, lines: int) -> bool:
    """Whether the first `lines` lines of a file DuckDB reads (UTF-8, decompressed as the reader does) may hold
    a word a date cast takes: False when none holds `inf` or `epoch` in any case, so that no date column of a
    detection sample in them holds one (a record has at least one line) and the sample need not be scanned."""
    seen, tail, size = 0, b"", 0
    with enc._open(path) as fh:
        while seen < lines:
            chunk = fh.read(1 << 20)
            if not chunk:
                return False
            size += len(chunk)
            text = tail + chunk.lower()
            if any(part in text for part in _PARTS) or size > _LOOK_BYTES:
                return True
            seen += chunk.count(b"\n")
            tail = text[-4:]  # a word cut by the chunk's end
    return False


def late_date_words(cx: JobContext, files: list[StagedFile]) -> ReadPlan | None:
    """The plan to read the job with again when a column the reader parsed as dates (`cx.read_dates`) holds a
    word past the detection sample, else None. Such a word is written as the epoch or an infinite value: only
    where the written files' stats show one of those are the files scanned, those columns as text (a dataset
    whose dates are finite and do not span 1970-01-01 costs nothing). A CSV column holding a word is read as
    text; JSON is read with its types and dates detected on the whole files, which finds the word as the
    sample's scan does."""
    suspect = [n for n in cx.read_dates if any(_may_hide_a_word(f.stats, n) for f in files)]
    if not suspect:
        return None
    found = cx.con.execute(f"SELECT {', '.join(cx.read_dates[n] for n in suspect)} FROM ({cx.dates_as_text})")
    late = {n for n, hit in zip(suspect, found.fetchone(), strict=True) if hit}
    if not late:
        return None
    return cx.plan.but(as_text=cx.plan.as_text | late) if cx.fmt == "csv" else cx.plan.but(sample_all=True)


def _may_hide_a_word(stats: dict[str, dict[str, str]], column: str) -> bool:
    """Whether a written file's stats of `column` (or of a field inside it) show an infinite value or span the
    epoch (ISO text sorts as its dates do from year 1000 to 9999; a year before 1000 sorts first, calling for a
    look)."""
    name = q(column)
    for key, stat in stats.items():
        if key != name and not key.startswith(name + "."):
            continue
        low, high = stat.get("min"), stat.get("max")
        if low is None or high is None:  # no value
            continue
        if "infinity" in low or "infinity" in high:
            return True
        if _DATE.match(low) and _DATE.match(high) and low[:10] <= _EPOCH_DATE <= high[:10]:
            return True
        if low.startswith(_EPOCH_TIME):
            return True
    return False
