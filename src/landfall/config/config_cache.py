"""The parsed `landfall.yaml`, kept between commands: one small file per config path in landfall's cache folder
(`$LANDFALL_CACHE_DIR`, else `$XDG_CACHE_HOME/landfall`, else `~/.cache/landfall`), holding the file's text and
what it parsed to (MessagePack). It is used only while the text is the same, character for character, so an
edit is always parsed again; a value MessagePack would not give back exactly (a YAML date) is never cached, and
a cache folder that cannot be read or written is passed over without a word. `LANDFALL_CACHE_DIR=off` turns it
off.

The same folder keeps answers that cost more to work out than to look up (`answers` / `keep_answers`): what
checking a workflow's SQL found (see `landfall.sqlcheck`), so that a command on an unchanged config imports
neither the SQL parser nor DuckDB to check it again.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any

import msgspec

MISSING = object()
_VERSION = 2  # bump when what is stored, or what a text parses to (a key twice is refused: 2), changes


def folder() -> Path | None:
    """landfall's cache folder; None when turned off."""
    chosen = os.environ.get("LANDFALL_CACHE_DIR")
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "landfall"


def _entry(config: Path) -> tuple[Path, str] | None:
    """The cache file of `config`, and the absolute path it is kept for (stored in it: two paths may share a file
    name)."""
    kept_in = folder()
    if kept_in is None:
        return None
    where = os.path.abspath(config)
    return kept_in / "config" / f"{zlib.crc32(where.encode()):08x}-{len(where)}.msgpack", where


def load(config: Path, text: str) -> Any:
    """What `text` (the contents of `config`) parsed to last time, or `MISSING`."""
    found = _entry(config)
    if found is None:
        return MISSING
    entry, where = found
    try:
        version, path, kept, value = msgspec.msgpack.decode(entry.read_bytes())
    except (OSError, ValueError, TypeError, msgspec.DecodeError):
        return MISSING
    if version != _VERSION or path != where or kept != text:
        return MISSING
    return value


def store(config: Path, text: str, value: Any) -> None:
    """Keep what `text` parsed to, when MessagePack gives it back exactly."""
    found = _entry(config)
    if found is None:
        return
    entry, where = found
    try:
        blob = msgspec.msgpack.encode([_VERSION, where, text, value])
        if repr(msgspec.msgpack.decode(blob)[3]) != repr(value):
            return
        entry.parent.mkdir(parents=True, exist_ok=True)
        part = entry.with_name(f"{entry.name}.{os.getpid()}.part")
        part.write_bytes(blob)
        os.replace(part, entry)
    except (OSError, TypeError, ValueError, OverflowError):
        pass


def answers(name: str, stamp: str) -> dict[str, Any]:
    """The answers kept under `name` while `stamp` (what they depend on: code and library versions) is the same;
    empty otherwise."""
    kept_in = folder()
    if kept_in is None:
        return {}
    try:
        version, kept_stamp, kept = msgspec.msgpack.decode((kept_in / f"{name}.msgpack").read_bytes())
    except (OSError, ValueError, TypeError, msgspec.DecodeError):
        return {}
    if version != _VERSION or kept_stamp != stamp or not isinstance(kept, dict):
        return {}
    return kept


def keep_answers(name: str, stamp: str, answers: dict[str, Any], *, most: int = 2000) -> None:
    """Keep `answers` under `name` (the newest `most` of them: a dict keeps the order they were added in)."""
    kept_in = folder()
    if kept_in is None:
        return
    newest = dict(list(answers.items())[-most:])
    try:
        kept_in.mkdir(parents=True, exist_ok=True)
        entry = kept_in / f"{name}.msgpack"
        part = entry.with_name(f"{entry.name}.{os.getpid()}.part")
        part.write_bytes(msgspec.msgpack.encode([_VERSION, stamp, newest]))
        os.replace(part, entry)
    except (OSError, TypeError, ValueError, OverflowError):
        pass
