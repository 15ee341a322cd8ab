"""The HTTP API over real HTTP: uvicorn on a free loopback port, httpx as the client. Shapes are the CLI's
`--json` shapes; every call that changes state needs the bearer token."""

from __future__ import annotations

import json
import socket
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from landfall import Pipeline, load_settings
from landfall.cli import main
from landfall.testing.web import AppServer

from conftest import wf

TOKEN = "t0k-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def serve():
    started: list[AppServer] = []

    def start(pipeline: Pipeline, **kw) -> AppServer:
        s = AppServer(pipeline, **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


def _cli_json(lake, *args):
    out = CliRunner().invoke(main, ["--config", str(lake.config), *args])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


def test_runs_paging_and_one_run_in_the_cli_shapes(make_lake, serve):
    lake = make_lake([wf("s")], serve={"token": TOKEN})
    for i in range(5):
        lake.land(f"s/f{i}.csv", f"id\n{i}\n")
    assert lake.process().ok
    srv = serve(lake.pipeline)
    every = _cli_json(lake, "runs", "--json")
    got, url = [], "/api/runs?limit=2&workflow=s"
    while url:
        resp = srv.http.get(url)
        assert resp.status_code == 200
        got += resp.json()
        url = resp.links.get("next", {}).get("url")
    assert got == every  # the same objects, newest first, across three pages
    assert srv.http.get("/api/runs?status=dead").json() == []
    one = srv.http.get(f"/api/runs/{every[0]['run_id']}").json()
    assert one == _cli_json(lake, "runs", "show", every[0]["run_id"], "--json")
    assert [s["step"] for s in one["steps"]][:1] == ["read"] and all("seconds" in s for s in one["steps"])
    missing = srv.http.get("/api/runs/nope")
    assert missing.status_code == 404 and "no run `nope`" in missing.json()["error"]
    assert srv.http.get("/api/runs?limit=x").status_code == 400
    bogus = srv.http.get("/api/runs?status=done")  # (found nothing, 200, as the CLI refuses it)
    assert bogus.status_code == 400 and "expected one of queued, running, succeeded" in bogus.json()["error"]
    assert srv.http.get("/api/counts").json()["succeeded"] == 5


def test_tables_detail_history_and_sample(make_lake, serve):
    lake = make_lake([wf("d", write={"table": "d", "format": "delta"})], serve={"token": TOKEN})
    lake.land("d/a.csv", "id,name\n1,a\n2,b\n")
    lake.process()
    lake.land("d/b.csv", "id,name,extra\n3,c,x\n")
    lake.process()
    srv = serve(lake.pipeline)
    assert srv.http.get("/api/tables").json() == _cli_json(lake, "tables", "--json")
    detail = srv.http.get("/api/tables/d").json()
    assert detail == _cli_json(lake, "tables", "show", "d", "--json")
    assert [v["version"] for v in detail["schema_versions"]] == [1, 2]
    assert detail["schema_versions"][1]["changes"]["added"] == [
        {"name": "extra", "type": "VARCHAR", "arrow_type": "string"}
    ]
    history = srv.http.get("/api/tables/d/history").json()
    assert history == _cli_json(lake, "tables", "history", "d", "--json")
    assert [h["operation"] for h in history][:1] and history[0]["version"] > history[-1]["version"]  # newest first
    assert sum(h["rows_added"] or 0 for h in history) == 3
    assert srv.http.get("/api/tables/d/history?limit=1").json() == history[:1]
    assert srv.http.get("/api/tables/d/history?limit=1").json() == _cli_json(
        lake, "tables", "history", "d", "--json", "-n", "1"
    )
    sample = srv.http.get("/api/tables/d/sample?limit=2").json()
    assert len(sample["rows"]) == 2 and "id" in sample["columns"]
    assert srv.http.get("/api/tables/nope").status_code == 404


def test_dead_letters_retry_after_a_fix_and_purge(make_lake, serve, tmp_path):
    broken = [wf("n", retry={"max_attempts": 1}, transform=[{"cast": {"x": "date"}}])]
    lake = make_lake(broken, serve={"token": TOKEN})
    lake.land("n/a.csv", "x\n5\n")
    lake.land("n/b.csv", "x\n6\n")
    assert not lake.process().ok
    srv = serve(lake.pipeline)
    dead = srv.http.get("/api/dead-letters").json()
    assert dead == _cli_json(lake, "dlq", "list", "--json") and len(dead) == 2
    ids = [d["run_id"] for d in dead if d["file_id"] == "n/a.csv"]
    assert srv.http.post("/api/dead-letters/retry", json={"run_ids": ids}).status_code == 401  # no token
    wrong = {"Authorization": "Bearer nope"}
    assert srv.http.post("/api/dead-letters/retry", json={"run_ids": ids}, headers=wrong).status_code == 401
    assert srv.http.post("/api/dead-letters/retry", json={}, headers=AUTH).status_code == 400
    assert srv.http.post("/api/dead-letters/retry", json={"run_ids": ["x"]}, headers=AUTH).status_code == 404
    resp = srv.http.post("/api/dead-letters/retry", json={"run_ids": ids}, headers=AUTH)
    assert resp.status_code == 200 and [r["status"] for r in resp.json()["queued"]] == ["queued"]
    # the workflow is fixed and a worker with the new config runs the queue
    fixed = load_settings(lake.config)
    fixed.workflows[0].transform = []
    worker = Pipeline(fixed)
    try:
        assert worker.process(discover=False).count("succeeded") == 1
    finally:
        worker.close()
    latest = srv.http.get("/api/runs?file=n/a.csv&limit=1").json()[0]
    assert latest["status"] == "succeeded" and latest["attempt"] == 2
    assert srv.http.post("/api/dead-letters/purge", json={"all": True}, headers=AUTH).json() == {"purged": 1}
    assert srv.http.get("/api/dead-letters").json() == []


def test_quarantine_browse_and_replay(make_lake, serve):
    strict = wf("q", validate=[{"range": {"column": "qty", "min": 0}, "action": "quarantine"}])
    lake = make_lake([strict], serve={"token": TOKEN})
    lake.land("q/a.csv", "id,qty\n1,5\n2,-1\n3,-2\n")
    assert lake.process().ok
    srv = serve(lake.pipeline)
    assert srv.http.get("/api/quarantine").json()[0] | {"updated_at": None} == {
        "table": "q",
        "quarantine": "quarantine.q",
        "rows": 2,
        "files": 1,
        "updated_at": None,
    }
    rows = srv.http.get("/api/quarantine/q").json()
    col = {c: i for i, c in enumerate(rows["columns"])}
    assert [(r[col["_line"]], r[col["_rule"]]) for r in rows["rows"]] == [(3, "range(qty)"), (4, "range(qty)")]
    assert all(r[col["_reason"]] and r[col["_source_file"]] == "q/a.csv" for r in rows["rows"]), rows
    assert srv.http.get("/api/quarantine/nope").status_code == 404
    # the rule is relaxed: a server over the fixed workflow replays
    relaxed = load_settings(lake.config)
    relaxed.workflows[0].validate_[0].range.min = -1
    fixed = Pipeline(relaxed)
    try:
        srv2 = serve(fixed)
        assert srv2.http.post("/api/quarantine/q/replay", json={}).status_code == 401
        res = srv2.http.post("/api/quarantine/q/replay", json={}, headers=AUTH).json()
        assert res["replayed"] == 1 and res["still_quarantined"] == 1
    finally:
        fixed.close()
    assert sorted(lake.rows("SELECT id FROM q")) == [(1,), (2,)]


def test_ingest_multipart_and_put_and_traversal(make_lake, serve):
    lake = make_lake([wf("s")], serve={"token": TOKEN})
    srv = serve(lake.pipeline)
    files = [("file", ("a.csv", b"id\n1\n2\n")), ("file", ("b.csv", b"id\n3\n"))]
    assert srv.http.post("/api/ingest?prefix=s", files=files).status_code == 401
    resp = srv.http.post("/api/ingest?prefix=s", files=files, headers=AUTH)
    assert resp.status_code == 200, resp.text
    landed = resp.json()["landed"]
    assert [x["key"] for x in landed] == ["s/a.csv", "s/b.csv"]
    assert all(x["runs"][0]["status"] == "queued" for x in landed)
    put = srv.http.put("/landing/s/c.csv", content=b"id\n4\n", headers=AUTH)
    assert put.status_code == 200 and put.json()["runs"][0]["workflow"] == "s"
    again = srv.http.put("/landing/s/c.csv", content=b"id\n4\n5\n", headers=AUTH)
    assert again.status_code == 200 and again.json()["runs"][0]["file_version"] != put.json()["runs"][0]["file_version"]
    before = sorted(str(p) for p in Path(lake.root).rglob("*"))
    for bad in ("%2e%2e/%2e%2e/evil.csv", "s/%2e%2e/%2e%2e/%2e%2e/evil.csv", "s/.hidden.csv", "s/a%5Cb.csv"):
        r = srv.http.put(f"/landing/{bad}", content=b"id\n9\n", headers=AUTH)
        assert r.status_code == 400, (bad, r.text)
    clash = {"s": "key `s` names a folder", "s/c.csv/d.csv": "`s/c.csv` is a file"}  # HTTP 500 before
    for key, why in clash.items():
        r = srv.http.put(f"/landing/{key}", content=b"id\n9\n", headers=AUTH)
        assert r.status_code == 400 and why in r.json()["error"], (key, r.text)
    evil = [("file", ("../../evil.csv", b"id\n9\n"))]
    r = srv.http.post("/api/ingest", params={"prefix": "../.."}, files=evil, headers=AUTH)
    assert r.status_code == 400 and "`..`" in r.json()["error"]
    assert sorted(str(p) for p in Path(lake.root).rglob("*")) == before
    assert not list(Path(lake.root).parent.rglob("evil.csv"))
    hidden = [("file", ("d.csv", b"id\n6\n")), ("file", (".e.csv", b"id\n7\n"))]  # d.csv landed, then 400
    r = srv.http.post("/api/ingest?prefix=s", files=hidden, headers=AUTH)
    assert r.status_code == 400 and "never loaded" in r.json()["error"], r.text
    assert not (Path(lake.landing) / "s/d.csv").exists()
    (Path(lake.landing) / "s/sub").mkdir()
    some = [("file", ("d.csv", b"id\n6\n")), ("file", ("sub", b"id\n7\n")), ("file", ("f.csv", b"id\n8\n"))]
    r = srv.http.post("/api/ingest?prefix=s", files=some, headers=AUTH)  # 400 before: d.csv landed, f.csv not
    assert r.status_code == 200, r.text
    assert [x["key"] for x in r.json()["landed"]] == ["s/d.csv", "s/f.csv"]
    assert [(x["key"], "names a folder" in x["error"]) for x in r.json()["refused"]] == [("s/sub", True)]
    summary = lake.process(discover=False)
    assert (summary.count("succeeded"), summary.count("skipped")) == (5, 1)  # c.csv's first version was replaced
    assert sorted(lake.rows("SELECT id FROM s")) == [(1,), (2,), (3,), (4,), (5,), (6,), (8,)]


def test_query_endpoint(make_lake, serve):
    lake = make_lake([wf("s")], serve={"token": TOKEN, "query_row_limit": 5, "query_timeout_seconds": 0.5})
    lake.land("s/a.csv", "id\n1\n2\n")
    lake.process()
    srv = serve(lake.pipeline)
    res = srv.http.post("/api/query", json={"sql": "SELECT count(*) AS n FROM s"}).json()  # no token: it reads
    assert res["columns"] == ["n"] and res["rows"] == [[2]] and res["truncated"] is False
    res = srv.http.post("/api/query", json={"sql": "SELECT count(*) FROM s", "as_of": 0}).json()  # no notes before
    assert res["rows"] == [[2]] and res["notes"] == [
        "--as-of applies to Delta tables; `s` is a parquet table and is read as it is now"
    ]
    for bad in ({"limit": "x"}, {"limit": True}, {"as_of": [1]}):  # passed over before
        r = srv.http.post("/api/query", json={"sql": "SELECT 1", **bad})
        assert r.status_code == 400 and f"`{next(iter(bad))}`: got" in r.json()["error"], r.text
    res = srv.http.post("/api/query", json={"sql": "SELECT * FROM range(100)", "limit": 1000}).json()
    assert len(res["rows"]) == 5 and res["truncated"] is True  # capped at serve.query_row_limit
    res = srv.http.post("/api/query", json={"sql": "SELECT status, count(*) FROM landfall.runs GROUP BY 1"})
    assert res.json()["rows"] == [["succeeded", 1]]
    for sql in ("SELECT * FROM read_text('/etc/shadow')", "DROP VIEW s", "COPY (SELECT 1) TO '/tmp/x.csv'"):
        r = srv.http.post("/api/query", json={"sql": sql}, headers=AUTH)
        assert r.status_code == 400 and r.json()["error"], sql
    slow = srv.http.post("/api/query", json={"sql": "SELECT count(*) FROM range(100000000000)"})
    assert slow.status_code == 504 and "time limit" in slow.json()["error"]
    values = srv.http.post(
        "/api/query",
        json={"sql": "SELECT DATE '2026-01-02' d, 1.5::DECIMAL(4,2) x, 'nan'::DOUBLE n, NULL z, 0.1::FLOAT f"},
    ).json()
    assert values["rows"] == [["2026-01-02", 1.5, "NaN", None, 0.1]]  # a float as itself, not 0.10000000149011612
    # a decimal is a number of every digit it has (before: a double's 17, 1.2345678901234568e+22)
    exact = srv.http.post(
        "/api/query", json={"sql": "SELECT 12345678901234567890123::DECIMAL(38,0) n, {'d': 0.10::DECIMAL(18,17)} s"}
    )
    assert b'[[12345678901234567890123,{"d":0.10000000000000000}]]' in exact.content
    assert json.loads(exact.content, parse_float=Decimal)["rows"] == [
        [12345678901234567890123, {"d": Decimal("0.10000000000000000")}]
    ]
    assert srv.http.post("/api/query", content=b"not json").status_code == 400


def test_security_loopback_public_and_cross_site(make_lake, serve, monkeypatch):
    monkeypatch.setenv("LANDFALL_TEST_TOKEN", TOKEN)
    lake = make_lake([wf("s")], serve={"token_env": "LANDFALL_TEST_TOKEN"})
    srv = serve(lake.pipeline)
    assert srv.http.get("/api/runs").status_code == 200  # loopback: reads are open
    assert srv.http.get("/api/runs", headers={"Host": "evil.example:80"}).status_code == 400  # DNS rebinding
    assert srv.http.get("/api/runs", headers={"Host": "localhost"}).status_code == 200
    retry = {"json": {"all": True}}
    assert srv.http.post("/api/dead-letters/retry", **retry).status_code == 401
    assert srv.http.post("/api/dead-letters/retry", **retry, headers=AUTH).status_code == 200
    cross = AUTH | {"Origin": "https://evil.example"}
    assert srv.http.post("/api/dead-letters/retry", **retry, headers=cross).status_code == 403
    assert (
        srv.http.post("/api/dead-letters/retry", **retry, headers=AUTH | {"Sec-Fetch-Site": "cross-site"}).status_code
        == 403
    )
    same = AUTH | {"Origin": srv.url}
    assert srv.http.post("/api/dead-letters/retry", **retry, headers=same).status_code == 200
    # a form posted from another site carries no Authorization header: refused even without an Origin
    form = srv.http.post("/api/dead-letters/purge", data={"all": "true"})
    assert form.status_code == 401

    public = serve(lake.pipeline, host="0.0.0.0")  # bound to every address: the token guards every call
    assert public.served.public
    for path in ("/api/runs", "/api/tables", "/metrics", "/readyz", "/openapi.json"):
        assert public.http.get(path).status_code == 401, path
        assert public.http.get(path, headers=AUTH).status_code == 200, path
    assert public.http.post("/api/query", json={"sql": "SELECT 1"}).status_code == 401
    assert public.http.get("/healthz").status_code == 200
    assert public.http.get("/api/runs", headers={"Host": "landfall.example.com"} | AUTH).status_code == 200


def test_health_readiness_and_openapi(make_lake, serve):
    lake = make_lake([wf("s")], serve={"token": TOKEN})
    srv = serve(lake.pipeline)
    assert srv.http.get("/healthz").json() == {"status": "ok"}
    # answers are not held back by Nagle's algorithm (40 ms per keep-alive request otherwise)
    assert srv.served.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    ready = srv.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"state": "ok", "landing": "ok"}
    assert srv.http.get("/api/streams").json() == {"streams": []}  # it takes records for none
    doc = srv.http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    expected = {
        "/api/runs": "get",
        "/api/runs/{run_id}": "get",
        "/api/dead-letters": "get",
        "/api/dead-letters/retry": "post",
        "/api/dead-letters/purge": "post",
        "/api/tables": "get",
        "/api/tables/{name}": "get",
        "/api/tables/{name}/history": "get",
        "/api/tables/{name}/sample": "get",
        "/api/quarantine": "get",
        "/api/quarantine/{table}": "get",
        "/api/quarantine/{table}/replay": "post",
        "/api/ingest": "post",
        "/landing/{key}": "put",
        "/api/query": "post",
        "/api/streams": "get",
        "/healthz": "get",
        "/readyz": "get",
        "/metrics": "get",
    }
    for path, method in expected.items():
        assert method in doc["paths"].get(path, {}), path
        assert doc["paths"][path][method]["responses"], path


def test_extra_routes_that_check_the_token_themselves(make_lake):
    """The stream intake, mounted by `bind` when the lake has streams: its routes take a bearer token (or SigV4)
    themselves, behind the app's Host and cross-site checks."""
    lake = make_lake(
        [wf("clicks", match="raw/clicks/")],
        serve={"token": TOKEN},
        streams=[{"name": "clicks", "prefix": "raw/clicks/", "buffer": {"size_mb": 1, "interval_seconds": 0.2}}],
    )
    with AppServer(lake.pipeline) as srv:
        body = b'{"event_type": "view", "id": 1}\n{"event_type": "buy", "id": 2}\n'
        ok = srv.http.post("/streams/clicks", content=body, headers=AUTH)
        assert ok.status_code == 200 and ok.json()["accepted"] == 2, ok.text
        wrong = srv.http.post("/streams/clicks", content=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "not the server's token" in wrong.json()["error"]
        cross = srv.http.post("/streams/clicks", content=body, headers=AUTH | {"Origin": "https://evil.example"})
        assert cross.status_code == 403
        assert srv.http.post("/streams/clicks", content=body, headers={"Host": "evil.example"}).status_code == 400
        assert srv.http.post("/api/dead-letters/purge", json={"all": True}).status_code == 401  # still guarded
