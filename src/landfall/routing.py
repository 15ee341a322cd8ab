"""Which workflow takes a landed file: the most specific `match` wins."""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING

import msgspec

from landfall.config import Workflow

if TYPE_CHECKING:
    from landfall.state.base import Run

_GLOB_CHARS = re.compile(r"[*?\[]")


class Route(msgspec.Struct, frozen=True):
    workflow: Workflow
    literal_prefix: str
    is_glob: bool

    def matches(self, key: str) -> bool:
        return matches(self.workflow.match, key)

    @property
    def specificity(self) -> tuple[int, int]:
        # A longer literal prefix is more specific; at equal length, a glob is more specific than a prefix.
        return (len(self.literal_prefix), 1 if self.is_glob else 0)


def matches(pattern: str, key: str) -> bool:
    """Whether `match: pattern` takes `key`: a prefix, or a glob (`*` stays within one folder level, `**`
    crosses levels; `sales/*.csv` matches `sales/a.csv` only)."""
    if not _GLOB_CHARS.search(pattern):
        return key.startswith(pattern)
    return _glob_regex(pattern).fullmatch(key) is not None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if i < len(pattern) and pattern[i] == "/":
                i += 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        else:
            # fnmatch handles `?` and `[...]`; translate one char at a time and drop its anchors
            j = i + 1
            if pattern[i] == "[":
                j = pattern.find("]", i + 1) + 1 or len(pattern)
            out.append(fnmatch.translate(pattern[i:j])[4:-3] if pattern[i] in "?[" else re.escape(pattern[i]))
            i = j
    return re.compile("".join(out))


class Router:
    """Maps a landed key to its workflow."""

    def __init__(self, workflows: list[Workflow]) -> None:
        routes = []
        for wf in workflows:
            m = _GLOB_CHARS.search(wf.match)
            literal = wf.match[: m.start()] if m else wf.match
            routes.append(Route(wf, literal, m is not None))
        self.routes = sorted(routes, key=lambda r: r.specificity, reverse=True)

    def route(self, key: str) -> Workflow | None:
        for route in self.routes:
            if route.matches(key):
                return route.workflow
        return None


def misplaced(router: Router, key: str, root: str) -> str | None:
    """Why no workflow took `key` when one would, but for a `match` that starts with the landing zone's own path
    (`landing/sales/` for a zone `/srv/lake/landing`), or for letter case (`Sales/a.csv`, `match: sales/`): what
    is wrong; None otherwise."""
    folders = [p for p in root.replace("\\", "/").split("/") if p and ":" not in p]
    for route in router.routes:
        written = route.workflow.match
        if matches(written.lower(), key.lower()):
            return f"workflow `{route.workflow.name}` has `match: {written}`, which tells letter case apart"
        for i in range(len(folders)):
            lead = "/".join(folders[i:]) + "/"
            if written.startswith(lead) and matches(written[len(lead) :], key):
                return (
                    f"workflow `{route.workflow.name}` has `match: {written}`, but `match` is relative to the landing "
                    f"zone ({root}): `{written[len(lead) :]}` takes this file"
                )
    return None


def reroute_note(runs: list[Run]) -> str:
    """What `StateStore.reroute` did, for the log."""
    queued = sorted({f"`{r.workflow}`" for r in runs if r.status == "queued"})
    said = f"{sum(r.status == 'queued' for r in runs)} files queued under the workflow that matches them now"
    said += f" ({', '.join(queued)})" if queued else ""
    if lost := [r.file_key for r in runs if r.status == "unrouted"]:
        said += f"; {len(lost)} queued before match no workflow now (recorded unrouted)"
    return said
