"""Where a job's records are in their files: the line each record starts on (`with_lines`), the rows DuckDB's CSV
reader could not parse (`parse_rejects`, storing rejects), the records of each file (`counts`), and files such a
read ended early (`cut_short`)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from typing import Any

import duckdb

from landfall import encoding as enc
from landfall.engines.base import csv_quoting
from landfall.engines.duckdb.context import JobContext
from landfall.engines.duckdb.read_csv import _csv_args, _forced, _records_start, sample_buffer
from landfall.engines.duckdb.sql import PATH, REJECTS, lit, q
from landfall.engines.duckdb.writing import with_lineage


def counts(cx: JobContext, view: str) -> dict[str, int]:
    if not cx.with_path:
        # fetched whole: DuckDB refuses `register` while a result is left open
        ((n,),) = cx.con.execute(f"SELECT count(*) FROM {view}").fetchall()
        return {cx.only_key: int(n)}
    rows = cx.con.execute(
        f"SELECT s.key, count(*) FROM {view} v JOIN __lf_sources s USING ({q(PATH)}) GROUP BY 1"
    ).fetchall()
    return {k: int(n) for k, n in rows}


def with_lines(cx: JobContext, view: str, position: str, name: str = "_line") -> str:
    """`view` with column `name`: the line of each row's record in a single file (`position`, SQL of its 1-based
    place among the records). The header and skipped rows come first, and lines set aside as unparseable (or
    blank lines of JSON Lines read in tolerant mode) are not records: with those lines r_1 < r_2 < ..., r_i lies
    before the record's line exactly when r_i - i < position + offset, and as r_i - i never falls, their count
    is the largest such i, which an ASOF join finds (a correlated count took minutes for a million set-aside
    lines). Rows keep no order."""
    at = f"SELECT v.*, ({position}) + {cx.line_offset} AS __lf_at FROM {view} v"
    gaps = _gaps(cx)
    if gaps:
        return cx.view(
            f"SELECT x.* EXCLUDE (__lf_at), x.__lf_at + coalesce(gp.i, 0) AS {q(name)} FROM ({at}) x "
            f"ASOF LEFT JOIN {gaps} gp ON x.__lf_at > gp.g"
        )
    starts = _record_starts(cx)
    if starts:
        return cx.view(
            f"SELECT x.* EXCLUDE (__lf_at), s.line AS {q(name)} FROM ({at}) x "
            f"LEFT JOIN {starts} s ON s.n = x.__lf_at - {cx.line_offset}"
        )
    return cx.view(f"SELECT * EXCLUDE (__lf_at), __lf_at AS {q(name)} FROM ({at})")


def _gaps(cx: JobContext) -> str | None:
    """A table `(g, i)` of the lines that hold no record (r_i, see `with_lines`): g = r_i - i, with the largest
    i of each g; None when there are none."""
    parts = []
    if cx.gone_lines:
        parts.append(f"SELECT r FROM {cx.table_of({'r': ('int64', list(cx.gone_lines))})}")
    if _has_rejects(cx):
        parts.append(f"SELECT line AS r FROM {REJECTS}")
    if not parts:
        return None
    gaps = cx.table(
        "SELECT r - i AS g, max(i) AS i FROM (SELECT r, row_number() OVER (ORDER BY r) AS i FROM "
        f"(SELECT DISTINCT r FROM ({' UNION ALL '.join(parts)}))) GROUP BY g"
    )
    return gaps if cx.con.execute(f"SELECT count(*) FROM {gaps}").fetchone()[0] else None


def _record_starts(cx: JobContext) -> str | None:
    """A temp table `(n, line)` of the line each record starts on, where a record's line is not its position
    plus the header: a CSV file whose quoted values span lines (read by Python's csv module with the dialect
    DuckDB detected), a JSON document (its records as Python's parser finds them). None when every record is
    one line, or when the two readers disagree on how many records there are (the position is then the best
    there is). Only files with rows that break rules ask."""
    if cx.starts is not None or cx.fmt not in ("csv", "json") or len(cx.paths) != 1:
        return cx.starts or None
    cx.starts = ""
    ((path, src),) = cx.paths.items()
    records = counts(cx, cx.raw)[src.key]
    if cx.fmt == "json":
        from landfall.engines.duckdb.diagnose import document_starts

        starts = document_starts(path)
    else:
        starts = _csv_starts(cx, path, records)
    if starts is None or len(starts) != records:
        return None
    cx.starts = cx.table_of({"n": ("int64", list(range(1, len(starts) + 1))), "line": ("int64", starts)})
    return cx.starts


def _csv_starts(cx: JobContext, path: str, records: int) -> list[int] | None:
    """The line each record of a CSV file starts on; None when each is one line after the header."""
    with enc._open(path) as fh:
        physical = sum(1 for line in fh if line.strip())
    if physical == records + cx.line_offset:
        return None
    user = [
        a
        for a in _csv_args(cx, cx.opts, _forced(cx, path))
        if a.startswith(("delim", "quote", "escape", "header", "skip"))
    ]
    try:
        delim, quote, escape, skip, header = cx.con.execute(
            "SELECT Delimiter, Quote, Escape, SkipRows, HasHeader FROM "
            f"sniff_csv({', '.join([lit(path), *user, sample_buffer(cx.opts)])})"
        ).fetchall()[0]
    except duckdb.Error:
        return None
    quoting = csv_quoting(*("" if c == "(empty)" else c for c in (quote, escape)))  # sniff_csv's word for none
    starts: list[int] = []
    with enc._open(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        for _ in range(int(skip)):
            text.readline()
        reader = csv.reader(text, delimiter=delim, **quoting)
        if header:
            next(reader, None)
        end = int(skip) + reader.line_num
        for rec in reader:
            if rec:
                starts.append(end + 1)
            end = int(skip) + reader.line_num
    return starts


#: DuckDB's rejects keep a line's first 10,000 bytes (`csv_line`; fewer when a character would be cut)
REJECTED_TEXT_AT_MOST = 10_000


def _located(cx: JobContext, rows: str) -> None:
    """Each row of `rows` (rows set aside) DuckDB's CSV reader found (`_at`, its record's byte position: one byte
    past the start after a LF line) given the line its record starts on in its file: DuckDB counts a record of
    several lines (a quoted value spanning them) as one line, so the records after one were named too early. And
    one whose `_raw` DuckDB cut at `REJECTED_TEXT_AT_MOST` bytes (or a few less, not to cut a character) given its
    whole record again: the one read from there that begins with the text DuckDB kept. One pass over each file up
    to its last such row."""
    found = cx.con.execute(
        f"SELECT {q(PATH)}, _at, _line, CASE WHEN strlen(_raw) > {REJECTED_TEXT_AT_MOST - 4} THEN _raw END "
        f"FROM {rows} WHERE _at IS NOT NULL ORDER BY 1, 2"
    ).fetchall()
    fixed: list[tuple[str, int, int, str | None]] = []  # (path, _at, _line, whole _raw or None: as it is)
    for path, group in itertools.groupby(found, key=lambda row: row[0]):
        with open(path, "rb") as fh:
            line, seen = 1, 0
            for _, at, said, cut in group:
                fh.seek(seen)
                line += _newlines(fh, at - seen)
                seen = at
                whole = _whole_record(fh, at, cut, _dialect(cx, path)) if cut is not None else None
                if line != said or whole is not None:
                    fixed.append((path, at, line, whole))
    if not fixed:
        return
    paths, ats, lines, raws = (list(c) for c in zip(*fixed, strict=True))
    table = cx.table_of(
        {PATH: ("string", paths), "_at": ("int64", ats), "_line": ("int64", lines), "_raw": ("string", raws)}
    )
    cx.con.execute(
        f"UPDATE {rows} r SET _line = f._line, _raw = coalesce(f._raw, r._raw) FROM {table} f "
        f"WHERE r.{q(PATH)} = f.{q(PATH)} AND r._at = f._at"
    )


def _newlines(fh: Any, size: int) -> int:
    """How many line feeds the next `size` bytes of `fh` hold."""
    n = 0
    while size > 0:
        chunk = fh.read(min(size, 1 << 20))
        if not chunk:
            break
        n += chunk.count(b"\n")
        size -= len(chunk)
    return n


def _dialect(cx: JobContext, path: str) -> tuple[str, str, str]:
    """The delimiter, quote and escape a CSV file was read with (as sniffed, or declared)."""
    o = cx.job.workflow.read
    sniffed = next((row for key, row in cx.sniffed.items() if key[0] == path and row), None)
    delim, quote, escape = sniffed[:3] if sniffed else (",", '"', '"')
    quote, escape = ('"', '"') if quote == "(empty)" else (quote, escape)
    return cx.csv_delimiter(path) or delim, o.quote if o.quote is not None else quote, escape


def _whole_record(fh: Any, at: int, kept: str, dialect: tuple[str, str, str]) -> str | None:
    """The CSV record at byte `at` of `fh` (or one byte before it) that begins with `kept` (its text DuckDB cut,
    but for its last characters) and is longer, read with `dialect`; None when neither is."""
    delimiter, quote, escape = dialect
    head = kept.lstrip("\r\n")[:-4]  # (DuckDB may cut a character at its end and show another)
    for start in (at - 1, at):
        fh.seek(max(start, 0))
        read: list[bytes] = []
        try:
            next(csv.reader(_lines_read(fh, read), delimiter=delimiter, **csv_quoting(quote, escape)), None)
        except csv.Error:
            continue
        record = b"".join(read).decode("utf-8", errors="replace").rstrip("\r\n")
        if len(record) > len(head) and record.startswith(head):
            return record
    return None


def _lines_read(fh: Any, read: list[bytes]) -> Iterator[str]:
    """The lines of `fh` from where it is, as text, each kept in `read` as it is read (at most
    `_RECORD_AT_MOST` bytes)."""
    size = 0
    while size < _RECORD_AT_MOST and (raw := fh.readline()):
        read.append(raw)
        size += len(raw)
        yield raw.decode("utf-8", errors="replace")


_RECORD_AT_MOST = 64 << 20  # bytes of a record read again whole (the reader's own limit on a line is lower)


def parse_rejects(cx: JobContext, quality: dict[str, Any]) -> tuple[str, dict[str, int]] | None:
    """Rows DuckDB could not parse (it lists them as it scans; a scan run twice lists them twice), as
    quarantine rows: `_raw` text, `_line`, `_column`, `_rule` `parse`, `_reason`. Counts them in `quality`."""
    parts = []
    if _has_rejects(cx):
        parts.append(
            f"SELECT s.file_path AS {q(PATH)}, e.line AS _line, string_agg(DISTINCT e.column_name, ',') AS "
            "_column, any_value(e.csv_line) AS _raw, string_agg(DISTINCT e.error_type || ': ' || "
            f"e.error_message, '; ') AS _reason, min(e.line_byte_position) AS _at FROM {REJECTS} e "
            f"JOIN {REJECTS}_scan s USING (scan_id, file_id) GROUP BY ALL"
        )
    parts += [f"SELECT {q(PATH)}, _line, _column, _raw, _reason, NULL AS _at FROM {t}" for t in cx.aside]
    bad = [b for b in cx.bad_lines if b[0] in cx.paths]
    if bad:
        paths, lines, raws, reasons, columns = (list(c) for c in zip(*bad, strict=True))
        table = cx.table_of(
            {
                PATH: ("string", paths),
                "_line": ("int64", lines),
                "_raw": ("string", raws),
                "_reason": ("string", reasons),
                "_column": ("string", columns),
            }
        )
        parts.append(f"SELECT {q(PATH)}, _line, _column, _raw, _reason, NULL AS _at FROM {table}")
    if not parts:
        return None
    rows = cx.table(" UNION ALL ".join(parts))
    _located(cx, rows)
    n = cx.con.execute(f"SELECT count(*) FROM {rows}").fetchone()[0]
    if not n:
        return None
    by_source = {
        cx.paths[p].key: int(c)
        for p, c in cx.con.execute(f"SELECT {q(PATH)}, count(*) FROM {rows} GROUP BY ALL").fetchall()
        if p in cx.paths
    }
    view = cx.view(
        f"SELECT _raw, CAST(_line AS BIGINT) AS _line, 'parse' AS _rule, _column, _reason, "
        f"now()::TIMESTAMPTZ AS _quarantined_at, {q(PATH)} FROM {rows}"
    )
    if not cx.with_path:
        view = cx.view(f"SELECT * EXCLUDE ({q(PATH)}) FROM {view}")
    view = cx.view(with_lineage(cx, view))
    quality["parse"] = {"action": "quarantine", "violations": int(n)}
    quality["_parse_by_source"] = by_source  # per file: a batch's files share one `quality`
    return view, by_source


def _has_rejects(cx: JobContext) -> bool:
    """Whether DuckDB made its table of CSV rows it could not parse (`bad_rows: quarantine`)."""
    return bool(cx.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [REJECTS]).fetchall()[0][0])


def sampled_type_miss(cx: JobContext) -> str | None:
    """A row DuckDB set aside because a value did not fit the type it detected on a sample, as the error text
    `replanning.replan` reads, or None. Storing rejects, DuckDB sets such a row aside as if it could not be
    parsed, where without `bad_rows: quarantine` landfall reads the column as a type that holds the value (a
    late `abc` in a column sampled as integers makes it text): the same here. (A declared type is read as text
    in that mode, and its misfits set aside by `set_aside`.)"""
    if cx.fmt != "csv" or not _has_rejects(cx):
        return None
    found = cx.con.execute(f"SELECT error_message FROM {REJECTS} WHERE error_type = 'CAST' LIMIT 1").fetchone()
    return f"CSV Error: {found[0]}" if found else None


def cut_short(cx: JobContext, rows_in: dict[str, int]) -> list[str]:
    """The CSV files of a read storing rows it could not parse whose lines are not all accounted for by the
    records read (loaded, set aside or rejected), the lines before the header and the header. DuckDB 2.0's
    parallel CSV reader, storing rejects, may stop before a file's end without a word: a million lines with every
    other one ragged were read to line 897,119, the rest lost (a serial read takes them all). Such files are read
    again one reader a file (`ReadPlan.whole_files`); a file whose lines differ for other reasons (blank lines,
    values spanning lines) is read again too, which costs time only."""
    if cx.fmt != "csv" or cx.plan.whole_files or not _has_rejects(cx):
        return []
    short = []
    for path, src in cx.paths.items():
        head = enc.sample(path)
        before = _records_start(head, cx.opts.skip_rows)[1] + (cx.opts.header is not False)
        if _physical_lines(path) != rows_in.get(src.key, 0) + before:
            short.append(src.key)
    return short


def _physical_lines(path: str) -> int:
    lines, last = 0, b""
    with enc._open(path) as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last not in (b"", b"\n"))
