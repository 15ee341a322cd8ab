"""What a run ends with: the `Outcome` the runner reports for each run, the `RunResult` a staged engine job gives
each of its files, error messages that always name the file, and the `Summary` of a `process` call."""

from __future__ import annotations

import time

import msgspec

from landfall.config import Workflow
from landfall.engines.base import Source, Staged
from landfall.errors import ConfigError, InvalidInput, denied
from landfall.state.base import Run, RunResult


class Outcome(msgspec.Struct):
    """How a run ended, as recorded: `result` is what was committed for a succeeded or skipped run (rows, bytes,
    steps), `error` a failed or dead run's error; `ended_at` when it was recorded."""

    run: Run
    status: str
    error: str | None = None
    rows_out: int | None = None
    result: RunResult | None = None
    ended_at: float = msgspec.field(default_factory=time.time)


def run_result(run: Run, src: Source, digest: str, staged: Staged, wf: Workflow) -> RunResult:
    outputs = sorted(staged.outputs_of.get(src.key, ()))
    quality = {k: v for k, v in staged.quality.items() if not k.startswith("_")}
    quarantined = staged.quality.get("_quarantined", 0) if staged.quality else None  # by rules
    parsed = staged.quality.get("_parse_by_source")
    if parsed is not None:  # rows that could not be parsed, counted per file (rules run file by file)
        quality["parse"] = {"action": "quarantine", "violations": parsed.get(src.key, 0)}
        quarantined = (quarantined or 0) + parsed.get(src.key, 0)
    return RunResult(
        run_id=run.run_id,
        status="succeeded",
        worker=run.worker,
        rows_in=staged.rows_in.get(src.key, 0),
        rows_out=staged.rows_out.get(src.key, 0),
        bytes=src.size,
        output_files=outputs,
        steps=with_encoding(staged.steps, staged.encodings.get(src.key)),
        content_hash=digest,
        quality=quality,
        rows_quarantined=quarantined,
        note=staged.notes.get(src.key),
        supersedes=wf.replaces_versions,
    )


def with_encoding(steps: list[dict], encoding: dict | None) -> list[dict]:
    """A run's steps, its `read` step naming the text encoding its file was read in (runs of a batch share
    the batch's steps; the encoding is each file's own)."""
    if encoding is None:
        return steps
    return [{**s, "encoding": encoding} if s.get("step") == "read" else s for s in steps]


def message(exc: BaseException, key: str) -> str:
    """An error message that always names the file."""
    text = str(exc).strip() or type(exc).__name__
    if f"`{key}`" in text:
        return text
    if isinstance(exc, InvalidInput | ConfigError):  # landfall's own words: no class name needed
        return f"`{key}`: {text}"
    if isinstance(exc, PermissionError) and exc.filename:  # a file landed by another user (an SFTP umask of 077)
        return f"`{key}`: {denied(exc)}, then `landfall dlq retry`"
    return f"`{key}`: {type(exc).__name__}: {text}"


class Summary(msgspec.Struct):
    """What one `process` call did."""

    discovered: int = 0
    outcomes: list[Outcome] = []  # every attempt, in the order they ended
    dead_letter: int = 0  # runs on the dead-letter list when the call ended (this call's and earlier ones)

    def final(self) -> list[Outcome]:
        """Each file version's last outcome (a file failed twice, then dead, is one dead file)."""
        last: dict[int, Outcome] = {}
        for o in self.outcomes:
            last[o.run.file_id] = o
        return list(last.values())

    def count(self, status: str) -> int:
        """How many files ended with `status` (files, not attempts)."""
        return sum(1 for o in self.final() if o.status == status)

    @property
    def dead(self) -> list[Outcome]:
        return [o for o in self.final() if o.status == "dead"]

    @property
    def ok(self) -> bool:
        """Nothing this call ran ended dead, and nothing is left on the dead-letter list."""
        return not self.dead and not self.dead_letter
