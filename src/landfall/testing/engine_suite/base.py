"""The engine conformance suite's helpers and fixtures (see `landfall.testing.engine_suite`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pyarrow.parquet as pq
import pytest

from landfall.testing.lake import Lake

NESTED = [
    {
        "id": 1,
        "customer": {"name": "Ann", "address": {"city": "Oslo", "zip": "0150"}},
        "items": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}],
        "tags": ["new", "promo"],
    },
    {"id": 2, "customer": {"name": "Bo", "address": {"city": "Rome", "zip": "00100"}}, "items": [], "tags": []},
    {"id": 3, "customer": None, "items": [{"sku": "c", "qty": 5}], "tags": None},
]


SAMPLED_ROWS = 30_000  # past a reader's sample of the first rows


def sampled_head() -> str:
    """A CSV `id,n,d` of `SAMPLED_ROWS` rows (integers and dates), for a late value to follow."""
    return "id,n,d\n" + "".join(f"{i},{i},2024-01-01\n" for i in range(SAMPLED_ROWS))


def jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def _json_or_text(value: str) -> Any:
    """A value of a column of mixed JSON kinds, which an engine may keep as JSON (`"b"`) or as text (`b`)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def column_types(lake: Lake, table: str) -> dict[str, str]:
    """The Arrow types of a table's columns as its Parquet files store them (partition columns left out)."""
    t = lake.pipeline.table(table)
    files = lake.pipeline.store.table_files(table)
    assert files, f"table `{table}` has no files"
    return {f.name: str(f.type) for f in pq.read_schema(f"{t.location}/{files[0].path}")}


def only_run(lake: Lake, key: str):
    runs = lake.pipeline.runs(key=key)
    assert runs, f"no run for `{key}`"
    return runs[0]


def error_of(lake: Lake, key: str) -> str:
    run = only_run(lake, key)
    assert run.status in ("failed", "dead"), f"`{key}` {run.status}, expected to fail"
    return run.error or ""


def assert_ok(lake: Lake, summary: Any) -> None:
    assert summary.ok, [(r.file_key, r.error) for r in lake.pipeline.runs() if r.error]


class EngineFixtures:
    """What every part of the suite stands on: the `make` fixture (a lake on the engine under test) and the
    declared gaps."""

    gaps: ClassVar[dict[str, str]] = {}  # test name -> why this engine cannot pass it yet (documented)

    @pytest.fixture
    def engine_config(self) -> dict[str, Any]:  # pragma: no cover - supplied by each engine
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _declared_gap(self, request: pytest.FixtureRequest) -> None:
        reason = self.gaps.get(request.node.originalname)
        if reason:
            request.node.add_marker(pytest.mark.xfail(reason=f"capability gap: {reason}", strict=True))

    @pytest.fixture
    def make(self, tmp_path: Path, engine_config: dict[str, Any]):
        made: list[Lake] = []

        def make(*workflows: dict[str, Any], **settings: Any) -> Lake:
            lake = Lake(tmp_path / f"p{len(made)}", list(workflows), **{**engine_config, **settings})
            made.append(lake)
            return lake

        yield make
        for lake in made:
            lake.close()
