"""A temporary project for tests: landfall.yaml + lake/, with helpers to land files, run and read tables.
The conformance suites and the repository's own tests share it."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import yaml

from landfall.config import load_settings
from landfall.pipeline import Pipeline


class Lake:
    """A temporary project: landfall.yaml + lake/, with helpers to land files and read tables."""

    def __init__(self, root: Path, workflows: list[dict[str, Any]], **settings: Any) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "landfall.yaml"
        doc = {"lake": str(root / "lake"), "workflows": workflows, **settings}
        self.config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        self.landing = root / "lake" / "landing"
        self.landing.mkdir(parents=True, exist_ok=True)
        self._pipeline: Pipeline | None = None

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline(load_settings(self.config))
        return self._pipeline

    def land(self, key: str, content: str | bytes, *, mtime: float | None = None) -> Path:
        if isinstance(content, str):
            content = textwrap.dedent(content).lstrip("\n").encode("utf-8")
        settings = load_settings(self.config)
        if "://" in settings.landing_url:  # a landing zone on an object store (or `memory://`): put the object there
            from landfall.storage import Zones

            Zones(settings).landing.write_bytes(key, content)
            return Path(key)
        path = self.landing / key
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.landing")  # whole or absent: a running `up` never sees it half-written
        part.write_bytes(content)
        if mtime is not None:
            os.utime(part, (mtime, mtime))
        os.replace(part, path)
        return path

    def process(self, **kw: Any):
        return self.pipeline.process(**kw)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.pipeline.query(sql)[1]

    def status(self) -> dict[str, str]:
        """Latest run status by file key."""
        out: dict[str, str] = {}
        for run in reversed(self.pipeline.runs(limit=None)):
            out[run.file_key] = run.status
        return out

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()


def wf(name: str, match: str | None = None, table: str | None = None, **kw: Any) -> dict[str, Any]:
    """A workflow dict with fast retries."""
    doc: dict[str, Any] = {"name": name, "match": match or f"{name}/", "write": {"table": table or name}}
    doc["retry"] = kw.pop("retry", {"max_attempts": 2, "backoff_seconds": 0.01})
    doc.update(kw)
    return doc
