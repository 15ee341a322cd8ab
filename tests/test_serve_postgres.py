"""`landfall serve` over a PostgreSQL state store: the overview, /metrics, alerts' queries and the status tables
use SQL both backends share; readiness says when the state store stops answering."""

from __future__ import annotations

import pytest

from landfall.alerts import Watcher
from landfall.testing.postgres import postgres_server
from landfall.testing.web import AppServer

from conftest import wf

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_serve_on_postgres_and_readiness_when_it_stops(make_lake):
    with postgres_server() as pg:
        lake = make_lake(
            [wf("s", retry={"max_attempts": 1}, transform=[{"cast": {"x": "int"}}])],
            state_url=pg.create_database(),
            serve={"token": "t"},
            alerts=[{"webhook": "http://127.0.0.1:9/x", "on": ["dead_letter", {"no_file_for": "1h", "prefix": "s/"}]}],
        )
        watcher = Watcher(lake.pipeline.settings, lake.pipeline.store)
        lake.land("s/a.csv", "x\n1\n2\n")
        lake.land("s/b_c.csv", "x\nnope\n")
        lake.process()
        with AppServer(lake.pipeline) as srv:
            ov = srv.http.get("/api/overview").json()
            assert ov["counts"]["succeeded"] == 1 and ov["counts"]["dead"] == 1 and ov["dead_letters"] == 1
            metrics = srv.http.get("/metrics").text
            assert 'landfall_files_total{status="succeeded",workflow="s"} 1.0' in metrics
            assert "landfall_dead_letters 1.0" in metrics
            q = srv.http.post("/api/query", json={"sql": "SELECT file_id, status FROM landfall.runs ORDER BY 1"})
            assert q.json()["rows"] == [["s/a.csv", "succeeded"], ["s/b_c.csv", "dead"]]
            files = srv.http.post("/api/query", json={"sql": "SELECT file_id, status, runs FROM landfall.files"})
            assert sorted(files.json()["rows"]) == [["s/a.csv", "succeeded", 1], ["s/b_c.csv", "dead", 1]]
            runs = srv.http.get("/api/runs?limit=1").json()
            assert len(srv.http.get(f"/api/runs?limit=5&before={runs[0]['run_id']}").json()) == 1
            assert lake.pipeline.store.last_landed("s/") is not None
            assert lake.pipeline.store.last_landed("s/b_") is not None  # `_` is not a wildcard
            assert lake.pipeline.store.last_landed("s/b%") is None
            found = [a.event for _, a in watcher.check()]
            assert found == ["dead_letter"]
            assert srv.http.get("/readyz").status_code == 200
            pg.stop()
            down = srv.http.get("/readyz")
            assert down.status_code == 503 and down.json()["checks"]["state"] != "ok", down.text
            assert down.json()["checks"]["landing"] == "ok"
