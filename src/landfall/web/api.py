"""The JSON API: each route is one `Pipeline` call, and answers in the CLI's `--json` shapes (README: Stable JSON
shapes). Errors are `{"error": "..."}` with 400 (bad input), 401/403 (see `app.Guard`), 404 (no such run or
table), 409 (a concurrent change), 504 (a query over its time limit). The YAML after `---` in each docstring is
that route's entry in `/openapi.json`."""

from __future__ import annotations

import tempfile
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from landfall.errors import QueryRefused
from landfall.pipeline import Pipeline
from landfall.readback import json_text, jsonable, run_json, version_json
from landfall.state.base import RUN_STATUSES

MAX_PAGE = 1000


def _p(request: Request) -> Pipeline:
    return request.app.state.pipeline


def _int(request: Request, name: str, default: int, low: int = 0, high: int = 1 << 31) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise QueryRefused(f"query parameter `{name}`: got `{raw}`; expected a whole number") from None
    return max(low, min(high, value))


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    import json

    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise QueryRefused(f"request body: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise QueryRefused("request body: expected a JSON object")
    return doc


class ResultResponse(JSONResponse):
    """A query's result: `{"columns": [...], "rows": [[...], ...], "truncated": false, "seconds": 0.01, "notes":
    [...]}`, each decimal a number of every digit (`readback.json_text`); `notes`: what the caller should know (an
    `as_of` a Parquet table passes over)."""

    def __init__(self, result: Any) -> None:
        super().__init__(
            {
                "columns": result.columns,
                "rows": [[jsonable(v) for v in row] for row in result.shown_rows()],
                "truncated": result.truncated,
                "seconds": round(result.seconds, 6),
                "notes": result.notes,
            }
        )

    def render(self, content: Any) -> bytes:
        return json_text(content)


# --- runs -------------------------------------------------------------------------------------------------------


def list_runs(request: Request) -> Response:
    """Runs, newest first.
    ---
    summary: List runs, newest first (keyset paging)
    parameters:
      - name: status
        in: query
        schema: {type: string, enum: [queued, running, succeeded, failed, dead, skipped, unrouted]}
      - {name: workflow, in: query, schema: {type: string}}
      - {name: file, in: query, description: landed file key (prefix + name), schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 50, maximum: 1000}}
      - name: before
        in: query
        description: a run id; the runs after it (older). The `Link` header names the next page.
        schema: {type: string}
    responses:
      200: {description: 'An array of run objects (the shape of `landfall runs --json`)'}
    """
    qp = request.query_params
    limit = _int(request, "limit", 50, 1, MAX_PAGE)
    status = qp.get("status") or None
    if status is not None and status not in RUN_STATUSES:  # (an unknown one found nothing, without a word)
        raise QueryRefused(f"query parameter `status`: got `{status}`; expected one of {', '.join(RUN_STATUSES)}")
    found = _p(request).runs(
        status=status,
        workflow=qp.get("workflow") or None,
        key=qp.get("file") or None,
        limit=limit,
        before=qp.get("before") or None,
    )
    headers = {}
    if len(found) == limit:
        nxt = {k: v for k, v in qp.items() if k != "before"} | {"before": found[-1].run_id}
        headers["Link"] = f'<{request.url.path}?{urlencode(nxt)}>; rel="next"'
    return JSONResponse([r.to_json() for r in found], headers=headers)


def get_run(request: Request) -> Response:
    """One run.
    ---
    summary: One run with its steps (timings), outputs and whole error
    parameters:
      - {name: run_id, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: 'A run object with `steps` (the shape of `landfall runs show --json`)'}
      404: {description: No such run}
    """
    return JSONResponse(run_json(_p(request).run(request.path_params["run_id"])))


def counts(request: Request) -> Response:
    """Runs per status.
    ---
    summary: How many runs are in each status
    responses:
      200: {description: '{"queued": 0, "running": 0, "succeeded": 5, ...}'}
    """
    return JSONResponse(_p(request).counts())


def get_overview(request: Request) -> Response:
    """The overview.
    ---
    summary: The last minutes of activity per minute and per workflow, the backlog and the dead-letter count
    parameters:
      - {name: minutes, in: query, schema: {type: integer, default: 60, maximum: 1440}}
    responses:
      200:
        description: >-
          {"window_minutes", "counts": {status: n}, "dead_letters", "backlog": {"queued", "running",
          "oldest_queued_age_seconds"}, "files_per_minute", "rows_per_minute", "latency_seconds": {"p50", "p95"},
          "duration_seconds": {"p50", "p95"}, "workflows": [...], "minutes": [{"minute", "files", "rows", "bytes",
          "failed", "duration_p50", "duration_p95"}]}
    """
    return JSONResponse(_p(request).overview(_int(request, "minutes", 60, 1, 1440)))


# --- dead letters -----------------------------------------------------------------------------------------------


def list_dead(request: Request) -> Response:
    """The dead-letter list.
    ---
    summary: Dead runs not yet retried or purged, newest first
    responses:
      200: {description: 'An array of run objects (the shape of `landfall dlq list --json`)'}
    """
    return JSONResponse([r.to_json() for r in _p(request).dead_letters()])


def _chosen(doc: dict[str, Any]) -> list[str] | None:
    if doc.get("all") is True:
        return None
    ids = doc.get("run_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise QueryRefused('request body: expected {"run_ids": ["<run id>", ...]} or {"all": true}')
    return ids


async def retry_dead(request: Request) -> Response:
    """Retry dead runs.
    ---
    summary: Queue dead runs again (after fixing the workflow or the file)
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, properties: {run_ids: {type: array, items: {type: string}}, all: {type: boolean}}}
    responses:
      200: {description: '{"queued": [run objects of the new attempts]}'}
      404: {description: A run id that is not on the dead-letter list}
    """
    ids = _chosen(await _json_body(request))
    again = await run_in_threadpool(_p(request).retry_dead, ids)
    return JSONResponse({"queued": [r.to_json() for r in again]})


async def purge_dead(request: Request) -> Response:
    """Purge dead runs.
    ---
    summary: Take dead runs off the dead-letter list (their records and landed files stay)
    requestBody:
      required: true
      content:
        application/json:
          schema: {type: object, properties: {run_ids: {type: array, items: {type: string}}, all: {type: boolean}}}
    responses:
      200: {description: '{"purged": 2}'}
    """
    ids = _chosen(await _json_body(request))
    return JSONResponse({"purged": await run_in_threadpool(_p(request).purge_dead, ids)})


# --- tables -----------------------------------------------------------------------------------------------------


def list_tables(request: Request) -> Response:
    """Cataloged tables.
    ---
    summary: Every cataloged table
    responses:
      200: {description: 'An array of table objects (the shape of `landfall tables --json`)'}
    """
    return JSONResponse([t.to_json() for t in _p(request).tables()])


def get_table(request: Request) -> Response:
    """One table.
    ---
    summary: One table with its schema versions (and what each changed), partitions and files
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
    responses:
      200: {description: 'The shape of `landfall tables show NAME --json`'}
      404: {description: No such table}
    """
    return JSONResponse(_p(request).table_detail(request.path_params["name"]).to_json())


def table_history(request: Request) -> Response:
    """A table's versions.
    ---
    summary: Versions of a Delta table (time, operation, runs, rows and files added and removed)
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, minimum: 1}, description: only the latest N versions}
    responses:
      200:
        description: An array (`landfall tables history --json`), newest first; empty for Parquet (no log)
    """
    from landfall.tables.base import NotSupported

    limit = _int(request, "limit", 0, low=0) or None
    try:
        versions = _p(request).history(request.path_params["name"], limit)
    except NotSupported:
        return JSONResponse([])
    return JSONResponse([version_json(v) for v in versions])


def table_sample(request: Request) -> Response:
    """A few rows of a table.
    ---
    summary: The first rows of a table
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 20, maximum: 1000}}
    responses:
      200: {description: 'A query result (as POST /api/query answers)'}
    """
    p = _p(request)
    return ResultResponse(p.sample(request.path_params["name"], _int(request, "limit", 20, 1, MAX_PAGE)))


# --- quarantine -------------------------------------------------------------------------------------------------


def list_quarantine(request: Request) -> Response:
    """Tables with quarantined rows.
    ---
    summary: Every table that has a quarantine, with its row count
    responses:
      200:
        description: '[{"table": "events", "quarantine": "quarantine.events", "rows": 3, "files": 1, "updated_at": ""}]'
    """
    out = [
        {
            "table": t.name.removeprefix("quarantine."),
            "quarantine": t.name,
            "rows": t.row_count,
            "files": t.file_count,
            "updated_at": t.to_json()["updated_at"],
        }
        for t in _p(request).tables()
        if t.name.startswith("quarantine.")
    ]
    return JSONResponse(out)


def browse_quarantine(request: Request) -> Response:
    """Quarantined rows of a table.
    ---
    summary: Rows set aside from a table, with _source_file, _line, _rule, _column, _reason
    parameters:
      - {name: table, in: path, required: true, schema: {type: string}}
      - {name: run, in: query, description: only the rows of this run, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, default: 100, maximum: 1000}}
    responses:
      200: {description: A query result}
      404: {description: The table has no quarantine}
    """
    p = _p(request)
    res = p.quarantined(
        request.path_params["table"],
        run_id=request.query_params.get("run") or None,
        limit=_int(request, "limit", 100, 1, MAX_PAGE),
    )
    return ResultResponse(res)


async def replay_quarantine(request: Request) -> Response:
    """Replay quarantined rows.
    ---
    summary: Load the quarantined rows that pass the workflow's rules now, once
    parameters:
      - {name: table, in: path, required: true, schema: {type: string}}
    requestBody:
      content:
        application/json:
          schema: {type: object, properties: {run_id: {type: string, description: only this run's rows}}}
    responses:
      200: {description: '{"table": "sales", "replayed": 3, "still_quarantined": 1, "replay_id": "..."}'}
    """
    doc = await _json_body(request)
    res = await run_in_threadpool(_p(request).replay_quarantine, request.path_params["table"], doc.get("run_id"))
    return JSONResponse(res.__dict__)


# --- ingest -----------------------------------------------------------------------------------------------------


def _landed(key: str, runs: list[Any]) -> dict[str, Any]:
    return {"key": key, "runs": [r.to_json() for r in runs]}


async def ingest(request: Request) -> Response:
    """Upload files.
    ---
    summary: Land uploaded files under a prefix and queue them (multipart/form-data, field `file`, repeatable)
    parameters:
      - {name: prefix, in: query, description: prefix under landing/ (chooses the workflow), schema: {type: string}}
    requestBody:
      required: true
      content:
        multipart/form-data:
          schema:
            type: object
            properties:
              file: {type: array, items: {type: string, format: binary}}
              prefix: {type: string}
    responses:
      200: {description: '{"landed": [{"key": "sales/a.csv", "runs": [run objects queued]}], "refused": [{"key":
        "sales/b", "error": "..."}]}: `refused` lists the files the zone could not hold (a key under a file, a name
        too long), the others landed'}
      400: {description: A key that would leave the landing zone or that landfall never loads (nothing lands), or
        no file the zone could hold}
    """
    from landfall.errors import UnsafeKey
    from landfall.pipeline import check_key

    form = await request.form(max_files=10_000)
    try:
        prefix = (request.query_params.get("prefix") or str(form.get("prefix") or "")).strip("/")
        uploads = [f for f in form.getlist("file") if hasattr(f, "filename")]
        if not uploads:
            raise QueryRefused("multipart upload: no file in the `file` field")
        names = [(up.filename or "").replace("\\", "/").rsplit("/", 1)[-1] for up in uploads]
        keys = [check_key(f"{prefix}/{name}" if prefix else name) for name in names]  # all, before any lands
        landed, refused = [], []
        for key, up in zip(keys, uploads, strict=True):
            try:
                landed.append(_landed(key, await run_in_threadpool(_p(request).land, key, up.file)))
            except UnsafeKey as exc:  # the zone cannot hold this one: the others land all the same
                refused.append({"key": key, "error": str(exc)})
    finally:
        await form.close()
    if not landed:
        raise UnsafeKey("; ".join(r["error"] for r in refused))
    return JSONResponse({"landed": landed, "refused": refused})


async def put_landing(request: Request) -> Response:
    """Upload one file to a key.
    ---
    summary: Land the request body as landing/<key> and queue it
    parameters:
      - name: key
        in: path
        required: true
        description: 'prefix + name, e.g. sales/2026-11-22.csv'
        schema: {type: string}
    requestBody:
      required: true
      content:
        application/octet-stream:
          schema: {type: string, format: binary}
    responses:
      200: {description: '{"key": "sales/a.csv", "runs": [run objects queued]}'}
      400: {description: A key that would leave the landing zone}
    """
    key = request.path_params["key"]
    from landfall.pipeline import check_key

    check_key(key)  # refuse before reading the body
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        runs = await run_in_threadpool(_p(request).land, key, spool)
    return JSONResponse(_landed(key, runs))


# --- streams ----------------------------------------------------------------------------------------------------


def list_streams(request: Request) -> Response:
    """Streams.
    ---
    summary: What each stream this server takes records for did since it started, and what it holds now
    responses:
      200: {description: '{"streams": [{"name": "clicks", "prefix": "raw/clicks/", "error_prefix": null, "records":
        {"accepted": 9, "errored": 0, "refused": 1}, "bytes": 912, "calls_refused": {"throttled": 0, "disk": 0},
        "files_landed": 2, "log": "ok", "log_failures": 0, "unflushed_bytes": 0, "oldest_unflushed_age_seconds":
        0.0}]} (empty when it takes none)'}
    """
    streams = request.app.state.streams
    return JSONResponse({"streams": streams.status() if streams is not None else []})


# --- query ------------------------------------------------------------------------------------------------------


async def query(request: Request) -> Response:
    """Run SQL.
    ---
    summary: One read-only SQL statement (DuckDB) over the cataloged tables and landfall.runs, .files, .tables,
      .schema_versions
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [sql]
            properties:
              sql: {type: string}
              limit: {type: integer, description: 'rows at most (default and cap: serve.query_row_limit)'}
              as_of: {type: string, description: a Delta table version or an ISO timestamp}
    responses:
      200: {description: 'A query result: {"columns": [...], "rows": [[...]], "truncated": false, "seconds": 0.01,
        "notes": [what the caller should know, e.g. that as_of passed over a Parquet table]}'}
      400: {description: Not one read-only statement, or the query failed}
      504: {description: Stopped at serve.query_timeout_seconds}
    """
    doc = await _json_body(request)
    sql = doc.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise QueryRefused('request body: expected {"sql": "SELECT ..."}')
    p = _p(request)
    cap = p.settings.serve.query_row_limit
    limit = doc.get("limit", cap)
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise QueryRefused(f"request body: `limit`: got `{limit}`; expected a whole number")
    as_of = doc.get("as_of")
    if as_of is not None and not isinstance(as_of, str | int):
        raise QueryRefused(f"request body: `as_of`: got `{as_of}`; expected a table version or an ISO timestamp")
    res = await run_in_threadpool(
        lambda: p.query(
            sql,
            as_of=None if as_of is None else str(as_of),
            limit=max(1, min(cap, limit)),
            timeout=p.settings.serve.query_timeout_seconds,
        )
    )
    return ResultResponse(res)


# --- health -----------------------------------------------------------------------------------------------------


def healthz(request: Request) -> Response:
    """Liveness.
    ---
    summary: The process answers (no token needed, even when public)
    security: []
    responses:
      200: {description: '{"status": "ok"}'}
    """
    return JSONResponse({"status": "ok"})


def readyz(request: Request) -> Response:
    """Readiness.
    ---
    summary: The state store and the landing zone answer, and each stream's log takes records
    responses:
      200: {description: '{"status": "ready", "checks": {"state": "ok", "landing": "ok", "stream:clicks": "ok"}}'}
      503: {description: 'Not ready: the failing check says why'}
    """
    checks = _p(request).readiness()
    if (streams := request.app.state.streams) is not None:
        checks |= streams.readiness()
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


def routes() -> list[Route]:
    return [
        Route("/api/runs", list_runs, methods=["GET"]),
        Route("/api/runs/{run_id}", get_run, methods=["GET"]),
        Route("/api/counts", counts, methods=["GET"]),
        Route("/api/overview", get_overview, methods=["GET"]),
        Route("/api/dead-letters", list_dead, methods=["GET"]),
        Route("/api/dead-letters/retry", retry_dead, methods=["POST"]),
        Route("/api/dead-letters/purge", purge_dead, methods=["POST"]),
        Route("/api/tables", list_tables, methods=["GET"]),
        Route("/api/tables/{name}", get_table, methods=["GET"]),
        Route("/api/tables/{name}/history", table_history, methods=["GET"]),
        Route("/api/tables/{name}/sample", table_sample, methods=["GET"]),
        Route("/api/quarantine", list_quarantine, methods=["GET"]),
        Route("/api/quarantine/{table}", browse_quarantine, methods=["GET"]),
        Route("/api/quarantine/{table}/replay", replay_quarantine, methods=["POST"]),
        Route("/api/ingest", ingest, methods=["POST"]),
        Route("/landing/{key:path}", put_landing, methods=["PUT"]),
        Route("/api/streams", list_streams, methods=["GET"]),
        Route("/api/query", query, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
