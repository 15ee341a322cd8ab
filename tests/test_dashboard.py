"""The dashboard in a real browser (Debian's chromium through Playwright) against `landfall up --serve`, as a
user works with it: a file lands and appears in the runs list, its run page shows the steps, a dead letter is
retried after the workflow is fixed and succeeds, the table page and the SQL page show the data. A screenshot of
each page is kept (the folder is named at the end of the run; set LANDFALL_ARTIFACTS to choose it)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest
import yaml

from landfall.testing.browser import browser_page, chromium_missing
from landfall.testing.web import LandfallProcess

from conftest import end_of_run_note

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TOKEN = "dashboard-test-token"


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("LANDFALL_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    end_of_run_note("", f"test artifacts: {folder}")
    return folder


def _config(root: Path, *, fixed: bool) -> Path:
    fragile = {"name": "f", "match": "f/", "read": {"format": "csv"}, "write": {"table": "f"}}
    fragile["retry"] = {"max_attempts": 1}
    if not fixed:  # the mistake: `code` holds letters too
        fragile["transform"] = [{"cast": {"code": "int"}}]
    doc = {
        "lake": "./lake",
        "reconcile_seconds": 0.3,
        "settle_seconds": 0,
        "streams": [{"name": "clicks", "prefix": "raw/clicks/", "buffer": {"size_mb": 1, "interval_seconds": 0.5}}],
        "workflows": [
            {"name": "clicks", "match": "raw/clicks/", "write": {"table": "clicks"}},
            {
                "name": "sales",
                "match": "sales/",
                "read": {"format": "csv"},
                "validate": [{"range": {"column": "qty", "min": 0}, "action": "quarantine"}],
                "write": {"table": "sales", "partition_by": ["region"]},
            },
            fragile,
        ],
    }
    config = root / "landfall.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    return config


def _land(root: Path, key: str, text: str) -> None:
    path = root / "lake" / "landing" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)


def test_dashboard_end_to_end(tmp_path, shots):
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path
    (root / "lake" / "landing").mkdir(parents=True)
    env = {"LANDFALL_TOKEN": TOKEN}
    server = LandfallProcess(_config(root, fixed=False), "up", "--serve", "--port", "0", env=env)
    try:
        with browser_page() as page:
            page.goto(f"{server.url}/#token={TOKEN}")
            page.wait_for_selector(".cards .card")
            assert page.locator("#token .state.set").count() == 1  # the link's token was kept, and left the URL
            assert "#token" not in page.url

            # a file lands and appears in the runs list, live
            page.goto(f"{server.url}/runs")
            page.wait_for_selector("table.data")
            _land(root, "sales/day-1.csv", "id,region,qty\n1,eu,5\n2,us,3\n3,eu,-1\n")
            row = page.locator("tr", has_text="sales/day-1.csv")
            row.locator(".badge.succeeded").wait_for(timeout=60_000)
            page.screenshot(path=str(shots / "runs.png"), full_page=True)

            # its run page: the steps as a flow and a timeline, with rows
            row.get_by_role("link", name="sales/day-1.csv").click()
            page.wait_for_selector("#flow")
            flow = page.locator("#flow").inner_text()
            assert "landed" in flow and "read" in flow and "write" in flow and "committed" in flow
            assert page.locator("svg.timeline rect").count() >= 3
            assert "3 rows" in page.locator("svg.timeline").inner_html()  # rows read
            page.screenshot(path=str(shots / "run.png"), full_page=True)

            # a file the workflow cannot load goes to the dead-letter list
            _land(root, "f/bad.csv", "id,code\n1,17\n2,A4\n")
            page.goto(f"{server.url}/dead-letters")
            page.locator("tr", has_text="f/bad.csv").wait_for(timeout=60_000)
            assert "A4" in page.locator("pre.error").first.inner_text()
            page.screenshot(path=str(shots / "dead-letters.png"), full_page=True)

            # records posted to a stream: the overview's Streams panel counts them, and they land
            posted = httpx.post(
                f"{server.url}/streams/clicks",
                content=b'{"id": 1}\n{"id": 2}\nnot json\n',
                headers={"authorization": f"Bearer {TOKEN}"},
            )
            assert posted.json()["accepted"] == 2, posted.text
            page.goto(f"{server.url}/")
            page.locator(".cards", has_text="1 on the dead-letter list").wait_for()  # (the CSP allows no eval)
            assert page.locator("svg.chart rect").count() >= 1
            stream = page.locator("tr.stream", has_text="clicks")
            cells = stream.locator("td").all_inner_texts()
            assert cells[:5] == ["clicks", "raw/clicks/", "2", "0", "1"], cells  # accepted, errored, refused
            assert stream.locator(".badge.succeeded", has_text="ok").count() == 1
            page.screenshot(path=str(shots / "overview.png"), full_page=True)

        # the workflow is fixed: landfall restarts with it, and the dead letter is retried from the browser
        assert server.stop() == 0, server.output()
        server = LandfallProcess(_config(root, fixed=True), "up", "--serve", "--port", "0", env=env)
        with browser_page() as page:
            page.goto(f"{server.url}/dead-letters#token={TOKEN}")
            dead = page.locator("tr", has_text="f/bad.csv")
            dead.get_by_role("button", name="retry").click()
            page.locator("#notice", has_text="queued f/bad.csv again").wait_for()
            page.locator("td.empty", has_text="the dead-letter list is empty").wait_for()
            page.goto(f"{server.url}/runs?file=f/bad.csv")
            latest = page.locator("tbody tr").first
            latest.locator(".badge.succeeded").wait_for(timeout=60_000)
            assert re.search(r"\b2\b", latest.locator("td").nth(3).inner_text())  # attempt 2
            page.screenshot(path=str(shots / "retried.png"), full_page=True)

            # the table page: schema, partitions, sample rows; then a query from the SQL page
            page.goto(f"{server.url}/tables/sales")
            page.wait_for_selector("#sample table")
            text = page.locator("main").inner_text()
            assert "region=eu" in text and "region=us" in text and "qty" in text
            assert page.locator("#sample tbody tr").count() == 2  # the third row is quarantined
            page.screenshot(path=str(shots / "table.png"), full_page=True)
            page.locator("#open-sql").click()
            page.locator("#result table").wait_for()
            assert page.locator("#result tbody tr").count() == 2
            page.fill("#sql", "SELECT region, sum(qty) AS qty FROM sales GROUP BY 1 ORDER BY 1")
            page.click("#run-sql")
            page.locator("#result-info", has_text="2 rows").wait_for()
            assert page.locator("#result tbody tr").first.inner_text().split() == ["eu", "5"]
            # every digit the API sends, not the double the browser's JSON parser makes of it
            page.fill(
                "#sql", "SELECT 1234567890.123456789::DECIMAL(38,18) AS d, 18446744073709551615::UBIGINT AS u, 2.5 AS x"
            )
            page.click("#run-sql")
            page.locator("#result-info", has_text="1 row").wait_for()
            shown = page.locator("#result tbody tr").first.inner_text().split()
            assert shown == ["1234567890.123456789000000000", "18446744073709551615", "2.5"], shown
            page.fill("#sql", "SELECT * FROM read_text('/etc/passwd')")
            page.click("#run-sql")
            page.locator("#result pre.error", has_text="disabled by configuration").wait_for()
            page.fill("#sql", "SELECT file_id, status FROM landfall.runs WHERE workflow <> 'clicks' ORDER BY 1, 2")
            page.click("#run-sql")
            page.locator("#result-info", has_text="3 rows").wait_for()
            page.screenshot(path=str(shots / "sql.png"), full_page=True)

            page.goto(f"{server.url}/quarantine")
            page.locator("#q-rows td", has_text="range(qty)").wait_for()
            page.screenshot(path=str(shots / "quarantine.png"), full_page=True)
            assert page.errors == []  # type: ignore[attr-defined]
    finally:
        server.stop()
    for name in ("runs", "run", "dead-letters", "overview", "retried", "table", "sql", "quarantine"):
        assert (shots / f"{name}.png").stat().st_size > 10_000, name
    time.sleep(0)


def test_a_table_that_lost_a_file_still_shows_its_page(tmp_path):
    """A table whose data file is gone: its page was only the sample's error; it shows the table (schema, files)
    with the error in the sample panel."""
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    config = tmp_path / "landfall.yaml"
    config.write_text("lake: ./lake\nworkflows:\n  - {name: p, match: p/, write: {table: p}}\n")
    _land(tmp_path, "p/a.csv", "id,v\n1,a\n")
    from landfall.pipeline import Pipeline

    with Pipeline(config) as p:
        assert p.process().ok
        (gone,) = [f.path for f in p.store.table_files("p")]
    (tmp_path / "lake/tables/p" / gone).unlink()
    server = LandfallProcess(config, "serve", "--port", "0", env={"LANDFALL_TOKEN": TOKEN})
    try:
        with browser_page() as page:
            page.goto(f"{server.url}/tables/p#token={TOKEN}")
            page.wait_for_selector("#sample pre.error")
            assert f"its file `{gone}` is gone" in page.locator("#sample pre.error").inner_text()
            assert page.locator("h1", has_text="p").count() == 1
            assert "_source_file" in page.locator("main").inner_text()  # the schema panel
    finally:
        server.stop()
