"""A Delta table's `_delta_log/` read by file name, not through delta-rs: its commit files and their versions,
and, when delta-rs cannot read the log, which file is broken and what to do about it."""

from __future__ import annotations

import json
import re

from landfall.redaction import redact
from landfall.storage import Storage

_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(\.\d+\.\d+)?\.parquet$")


def broken_log_message(storage: Storage, exc: BaseException | None = None) -> str:
    """What is wrong with a table's `_delta_log`, naming the file, and what to do about it."""
    found = diagnose_log(storage)
    location = redact(storage.url)
    name = storage.url.rsplit("/", 1)[-1]
    reason = redact(str(exc).strip().splitlines()[0]) if exc is not None and str(exc).strip() else ""
    if found is None:
        return f"Delta table `{location}` cannot be read: {reason or 'unknown error'}"
    return (
        f"Delta table `{location}`: {found}. Restore it from a backup; if it cannot be restored, move it (and any "
        f"later commit files) out of `_delta_log/` and run `landfall tables rebuild {name}`: the catalog then "
        "follows the log, and files whose rows were only in the removed commits are loaded again"
        + (f" (delta-rs: {reason})" if reason else "")
    )


def log_files(storage: Storage) -> list[str]:
    """The names of the files in a table's `_delta_log/`, sorted."""
    return sorted(n for n, kind in storage.entries("_delta_log").items() if kind == "file")


def commit_versions(names: list[str]) -> list[int]:
    """The versions of the commit files among `names`, oldest first."""
    return sorted(int(m.group(1)) for n in names if (m := _COMMIT.match(n)))


def diagnose_log(storage: Storage) -> str | None:
    """The first broken file of a Delta log: a missing commit (a gap in the versions), a commit or
    `_last_checkpoint` that is not valid JSON, or an unreadable checkpoint. None when every file reads."""
    log = "_delta_log"
    where = f"{redact(storage.url)}/{log}"
    names = log_files(storage)
    if not names:
        return f"`{where}` is missing or empty"
    commits = commit_versions(names)
    checkpoints = sorted({int(m.group(1)) for n in names if (m := _CHECKPOINT.match(n))})
    if "_last_checkpoint" in names:
        problem = _json_problem(storage.read_bytes(f"{log}/_last_checkpoint"))
        if problem:
            return f"`{where}/_last_checkpoint` {problem}"
    start = checkpoints[-1] if checkpoints else 0
    for v in checkpoints[-1:]:
        for n in (n for n in names if n.startswith(f"{v:020d}.checkpoint")):
            try:
                import pyarrow.parquet as pq

                with storage.open(f"{log}/{n}") as fh:
                    pq.read_metadata(fh)
            except Exception as exc:
                return f"checkpoint `{where}/{n}` is not a readable Parquet file ({str(exc).splitlines()[0]})"
    wanted = range(start + 1 if checkpoints else 0, (commits[-1] if commits else start) + 1)
    missing = [v for v in wanted if v not in set(commits)]
    if missing:
        return f"commit `{where}/{missing[0]:020d}.json` is missing (the log has versions up to {commits[-1]})"
    for v in wanted:
        problem = _json_problem(storage.read_bytes(f"{log}/{v:020d}.json"), lines=True)
        if problem:
            return f"commit `{where}/{v:020d}.json` {problem}"
    return None


def _json_problem(data: bytes, *, lines: bool = False) -> str | None:
    """Why JSON text (or JSON lines, each an object) does not parse; None when it does."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"is not UTF-8 text (byte {exc.start})"
    rows = text.splitlines() if lines else [text]
    if not any(r.strip() for r in rows):
        return "is empty"
    for i, row in enumerate(rows, 1):
        if not row.strip():
            continue
        try:
            value = json.loads(row)
        except ValueError as exc:
            where = f"line {i}: " if lines else ""
            return f"is not valid JSON ({where}{exc.msg}, column {exc.colno}): truncated or damaged"
        if not isinstance(value, dict):
            return f"line {i} is not a JSON object"
    return None
