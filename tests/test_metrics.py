"""`/metrics` and the overview: numbers that match what happened to the files, read from the state store."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from landfall.readback import DURATION_BUCKETS, Totals
from landfall.testing.web import AppServer

from conftest import wf


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_match_what_happened(make_lake):
    lake = make_lake(
        [
            wf("s", retry={"max_attempts": 1}, transform=[{"cast": {"x": "int"}}]),
            wf("q", validate=[{"range": {"column": "x", "min": 0}, "action": "quarantine"}], write={"table": "q"}),
        ],
        serve={"token": "t"},
    )
    lake.land("s/a.csv", "x\n1\n2\n3\n")
    lake.land("s/b.csv", "x\n4\n")
    lake.land("s/bad.csv", "x\nnope\n")
    lake.land("q/a.csv", "x\n1\n-1\n-2\n")
    lake.process()
    lake.land("s/later.csv", "x\n5\n")
    lake.pipeline.discover()  # queued, not run
    lake.pipeline.optimize("s", min_files=2)
    srv = AppServer(lake.pipeline)
    try:
        m = _samples(srv.http.get("/metrics").text)
    finally:
        srv.close()

    def get(name, **labels):
        return m.get((name, tuple(sorted(labels.items()))))

    assert get("landfall_files_total", workflow="s", status="succeeded") == 2
    assert get("landfall_files_total", workflow="s", status="dead") == 1
    assert get("landfall_files_total", workflow="q", status="succeeded") == 1
    assert get("landfall_rows_written_total", workflow="s", status="succeeded") == 4
    assert get("landfall_rows_read_total", workflow="q", status="succeeded") == 3
    assert get("landfall_rows_quarantined_total", workflow="q") == 2
    assert get("landfall_bytes_total", workflow="s", status="succeeded") == len("x\n1\n2\n3\n") + len("x\n4\n")
    assert get("landfall_run_duration_seconds_count", workflow="s") == 3  # two succeeded, one dead
    assert get("landfall_run_duration_seconds_bucket", workflow="s", le="+Inf") == 3
    assert get("landfall_queue_depth", workflow="s") == 1
    assert 0 <= get("landfall_oldest_queued_age_seconds", workflow="s") < 60
    assert get("landfall_queue_depth", workflow="q") == 0
    assert get("landfall_dead_letters") == 1
    assert get("landfall_compactions_total", table="s") == 1
    assert all(name.startswith("landfall_") for name, _ in m)


def test_totals_count_every_run_once_as_the_boundary_moves(make_lake):
    lake = make_lake([wf("s")])
    for i in range(6):
        lake.land(f"s/f{i}.csv", f"x\n{i}\n")
    assert lake.process().ok
    totals = Totals(lake.pipeline.store, settle_seconds=1.0)
    first = totals.read()  # every run is recent: counted afresh
    assert first[("s", "succeeded")].runs == 6
    time.sleep(1.2)
    later = totals.read()  # every run has settled: added once
    assert later[("s", "succeeded")].runs == 6 and totals._settled[("s", "succeeded")].runs == 6
    lake.land("s/f9.csv", "x\n9\n")
    assert lake.process().ok
    again = totals.read()  # the new run is recent; the old ones stay counted once
    assert again[("s", "succeeded")].runs == 7
    time.sleep(1.2)
    settled = totals.read()
    assert settled[("s", "succeeded")].runs == 7 and totals._settled[("s", "succeeded")].runs == 7
    assert settled[("s", "succeeded")].rows_out == 7
    assert settled[("s", "succeeded")].buckets[-1] == 7  # every run took less than the last bucket
    assert len(settled[("s", "succeeded")].buckets) == len(DURATION_BUCKETS)


def test_overview(make_lake):
    lake = make_lake([wf("s", retry={"max_attempts": 1}, transform=[{"cast": {"x": "int"}}])], serve={"token": "t"})
    lake.land("s/a.csv", "x\n1\n2\n")
    lake.land("s/bad.csv", "x\nnope\n")
    lake.process()
    lake.land("s/b.csv", "x\n3\n")
    lake.pipeline.discover()
    srv = AppServer(lake.pipeline)
    try:
        ov = srv.http.get("/api/overview?minutes=5").json()
    finally:
        srv.close()
    assert ov["window_minutes"] == 5 and len(ov["minutes"]) in (5, 6)
    assert ov["counts"]["succeeded"] == 1 and ov["counts"]["dead"] == 1
    assert ov["dead_letters"] == 1
    assert ov["backlog"]["queued"] == 1 and ov["backlog"]["oldest_queued_age_seconds"] < 60
    assert sum(b["files"] for b in ov["minutes"]) == 1 and sum(b["rows"] for b in ov["minutes"]) == 2
    (s,) = ov["workflows"]
    assert s["workflow"] == "s" and s["succeeded"] == 1 and s["queued"] == 1
    assert 0 < s["latency_seconds"]["p50"] <= s["latency_seconds"]["p95"] < 60
    assert ov["files_per_minute"] == 0.2


def test_metrics_need_the_token_when_public(make_lake):
    lake = make_lake([wf("s")], serve={"token": "t"})
    srv = AppServer(lake.pipeline, host="0.0.0.0")
    try:
        assert srv.http.get("/metrics").status_code == 401
        ok = srv.http.get("/metrics", headers={"Authorization": "Bearer t"})
        assert ok.status_code == 200 and "landfall_dead_letters 0.0" in ok.text
    finally:
        srv.close()
    assert isinstance(ok, httpx.Response)
