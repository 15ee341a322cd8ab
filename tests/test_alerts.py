"""Alerts reach webhook receivers the tests start on loopback: dead letters, schema changes, quarantine rates and
quiet prefixes; retried with backoff; one process sends; a hanging receiver never holds up ingestion."""

from __future__ import annotations

import threading
import time

import pytest

from landfall import Pipeline, load_settings
from landfall.alerts import Watcher, alert_loop
from landfall.errors import ConfigError
from landfall.testing.web import WebhookReceiver

from conftest import wf


@pytest.fixture
def receivers():
    made: list[WebhookReceiver] = []

    def make(**kw) -> WebhookReceiver:
        r = WebhookReceiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def _workflows():
    return [
        wf("s", retry={"max_attempts": 1}, transform=[{"cast": {"x": "int"}}]),
        wf("q", validate=[{"range": {"column": "x", "min": 0}, "action": "quarantine"}]),
    ]


def _up(lake):
    stop = threading.Event()
    t = threading.Thread(target=lake.pipeline.up, args=(stop,), kwargs={"workers": 1, "watch": False})
    t.start()
    return stop, t


def _until(condition, what: str, seconds: float = 300) -> None:
    """Wait for `condition` (ingestion on a loaded machine may take long; a hang is what this bound catches)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not reached within {seconds:.0f} s: {what}"
        time.sleep(0.05)


def _events(got, event):
    return [a for a in got if a.get("event") == event]


def test_each_kind_of_alert_reaches_its_webhook_with_retries(make_lake, receivers):
    hook = receivers(fail_first=2)  # the first two posts fail: alerts are retried with backoff
    slack = receivers()
    lake = make_lake(
        _workflows(),
        reconcile_seconds=0.2,
        settle_seconds=0,
        alert_check_seconds=0.2,
        alerts=[
            {
                "webhook": hook.url,
                "headers": {"Authorization": "Bearer hook-secret"},
                "on": [
                    "dead_letter",
                    "schema_change",
                    {"quarantine_rate_above": 0.3},
                    {"no_file_for": "1s", "prefix": "quiet/"},
                ],
            },
            {"webhook": slack.url, "format": "slack", "on": ["dead_letter"]},
        ],
    )
    lake.land("s/a.csv", "x\n1\n2\n")
    lake.land("q/a.csv", "x\n1\n2\n3\n")
    assert lake.process().ok  # before the alerts start: not told
    stop, t = _up(lake)
    try:
        lake.land("s/bad.csv", "x\n1\nnope\n")
        lake.land("s/wider.csv", "x,y\n3,extra\n")
        lake.land("q/b.csv", "x\n1\n-1\n-2\n")
        got = hook.wait_for(
            lambda g: all(_events(g, e) for e in ("dead_letter", "schema_change", "quarantine_rate", "no_file"))
        )
        texts = slack.wait_for(lambda g: len(g) >= 1)
    finally:
        stop.set()
        t.join()
    assert hook.attempts >= len(got) + 2
    assert hook.headers[0]["Authorization"] == "Bearer hook-secret"
    (dead,) = _events(got, "dead_letter")
    assert dead["details"]["file_id"] == "s/bad.csv" and "nope" in dead["details"]["error"]
    assert "landfall dlq retry" in dead["summary"] and dead["source"] == "landfall" and dead["at"].endswith("Z")
    (change,) = _events(got, "schema_change")
    assert change["details"]["table"] == "s" and change["details"]["changes"]["added"] == [
        {"name": "y", "type": "VARCHAR", "arrow_type": "string"}
    ]
    assert "+y VARCHAR" in change["summary"]
    (rate,) = _events(got, "quarantine_rate")
    assert rate["details"]["file_id"] == "q/b.csv" and rate["details"]["quarantine_rate"] == pytest.approx(2 / 3)
    (quiet,) = _events(got, "no_file")  # once per quiet spell
    assert "quiet/" in quiet["summary"]
    assert len(texts) == 1 and set(texts[0]) == {"text"} and "s/bad.csv" in texts[0]["text"]
    assert "nope" in texts[0]["text"]


def test_a_hanging_webhook_never_holds_up_ingestion(make_lake, receivers):
    gate = threading.Event()
    hook = receivers(hold=gate)  # answers nothing until the test lets it go
    lake = make_lake(
        _workflows(),
        reconcile_seconds=0.2,
        settle_seconds=0,
        alert_check_seconds=0.2,
        # the post outlasts the test however loaded the machine is (a post that timed out would be sent again: a
        # receiver may be told twice, and this test counts each alert once)
        alerts=[{"webhook": hook.url, "on": ["dead_letter"], "timeout_seconds": 3600}],
    )
    stop, t = _up(lake)
    try:
        for i in range(4):
            lake.land(f"s/bad{i}.csv", "x\nnope\n")
        _until(lambda: hook.attempts >= 1 and len(lake.pipeline.runs(status="dead")) == 4, "4 dead letters, 1 post")
        for i in range(4):
            lake.land(f"s/good{i}.csv", f"x\n{i}\n")
        _until(lambda: len(lake.pipeline.runs(status="succeeded")) == 4, "4 files loaded")
        # the receiver still holds the first alert, and every file has been loaded meanwhile
        assert hook.attempts >= 1 and hook.received == []
        gate.set()
        got = hook.wait_for(lambda g: len(_events(g, "dead_letter")) == 4)
    finally:
        gate.set()
        stop.set()
        t.join()
    assert sorted(a["details"]["file_id"] for a in got) == [f"s/bad{i}.csv" for i in range(4)]


def test_only_new_events_and_one_sender_per_lake(make_lake, receivers):
    hook = receivers()
    lake = make_lake(_workflows(), alert_check_seconds=0.1, alerts=[{"webhook": hook.url, "on": ["dead_letter"]}])
    lake.land("s/old.csv", "x\nnope\n")
    lake.process()
    assert Watcher(lake.pipeline.settings, lake.pipeline.store).check() == []  # old dead letters are not told
    other = Pipeline(load_settings(lake.config))  # a second process on the same lake
    stop = threading.Event()
    loops = [
        threading.Thread(target=alert_loop, args=(p.settings, p.store, stop, holder))
        for p, holder in ((lake.pipeline, "one"), (other, "two"))
    ]
    try:
        for t in loops:
            t.start()
        # one loop holds the lease: it watches from before the new file (a loaded machine starts threads late)
        _until(lambda: {"one", "two"} & lake.pipeline.store.holders(), "a loop holding the alerts lease")
        lake.land("s/new.csv", "x\nnope\n")
        lake.process()
        got = hook.wait_for(lambda g: len(g) >= 1)
        time.sleep(1.0)  # several more checks by both loops
    finally:
        stop.set()
        for t in loops:
            t.join()
        other.close()
    assert [a["details"]["file_id"] for a in hook.received] == ["s/new.csv"] and len(got) == 1


def test_alert_config_errors_are_one_clear_line(tmp_path):
    cfg = tmp_path / "landfall.yaml"
    cfg.write_text("alerts:\n  - {webhook: 'http://127.0.0.1:9/x', on: [dead_leter]}\n")
    with pytest.raises(ConfigError, match="unknown alert event `dead_leter`; expected `dead_letter`"):
        load_settings(cfg)
    cfg.write_text("alerts:\n  - {webhook: 'ftp://x', on: [dead_letter]}\n")
    with pytest.raises(ConfigError, match="expected an http:// or https:// URL"):
        load_settings(cfg)
    cfg.write_text("alerts:\n  - webhook: 'https://hooks.example.com/x'\n    on: [{no_file_for: 2h, prefix: sales/}]\n")
    assert load_settings(cfg).alerts[0].on[0].no_file_for == "2h"  # a bare YAML `on:` key is read as `on`
