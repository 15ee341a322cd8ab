"""OpenTelemetry traces of runs and their steps, when `opentelemetry-api` is installed (`pip install
"landfall[otel]"`) and set up in the process (see `available`); without it, nothing happens and nothing is
imported.

Each run that ends becomes a span `landfall.run <workflow>` from its start to its end, with one child span per
recorded step (`landfall.step read`, `transform`, ..., `write`) laid end to end with the times the run recorded,
and attributes `landfall.file`, `landfall.workflow`, `landfall.table`, `landfall.status`, `landfall.attempt`,
`landfall.run_id`, `landfall.rows_in`, `landfall.rows_out`, `landfall.rows_quarantined`, `landfall.bytes`; a
failed or dead run's span has status ERROR with the error. Spans go wherever the process's OpenTelemetry SDK
sends them (for example `opentelemetry-instrument landfall up` with `OTEL_EXPORTER_OTLP_ENDPOINT` set); with the
API alone they cost next to nothing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from msgspec.structs import replace

from landfall.state.base import Run

log = logging.getLogger("landfall.tracing")


def available() -> bool:
    """Whether spans can go anywhere: the OpenTelemetry API is installed and something in this process set it up
    (an SDK's tracer provider, or `opentelemetry-instrument`, both import `opentelemetry.trace` before landfall
    runs). Without that the API's spans go nowhere, and importing it would cost every command a few ms."""
    if "opentelemetry.trace" in sys.modules:
        return True
    return any(name.startswith("OTEL_") for name in os.environ) and (
        importlib.util.find_spec("opentelemetry") is not None
        and importlib.util.find_spec("opentelemetry.trace") is not None
    )


def trace_run(run: Run, tracer: Any = None) -> None:
    """Record one ended run (and its steps) as spans."""
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    tracer = tracer or trace.get_tracer("landfall")
    if run.started_at is None or run.finished_at is None:
        return
    start = int(run.started_at * 1e9)
    end = int(run.finished_at * 1e9)
    attrs = {
        "landfall.run_id": run.run_id,
        "landfall.file": run.file_key,
        "landfall.workflow": run.workflow or "",
        "landfall.table": run.table_name or "",
        "landfall.status": run.status,
        "landfall.attempt": run.attempt,
    }
    for key, value in (
        ("rows_in", run.rows_in),
        ("rows_out", run.rows_out),
        ("rows_quarantined", run.rows_quarantined),
        ("bytes", run.bytes if run.bytes is not None else run.size),
    ):
        if value is not None:
            attrs[f"landfall.{key}"] = int(value)
    span = tracer.start_span(f"landfall.run {run.workflow}", start_time=start, attributes=attrs)
    context = trace.set_span_in_context(span)
    at = start
    for step in run.steps:
        took = int(float(step.get("seconds") or 0.0) * 1e9)
        child = tracer.start_span(f"landfall.step {step.get('step')}", context=context, start_time=at)
        at = max(at, min(end, at + took))
        child.end(end_time=at)
    if run.status in ("failed", "dead"):
        span.set_status(Status(StatusCode.ERROR, (run.error or "")[:1000]))
    span.end(end_time=max(end, start))


def ended(outcome: Any) -> Run:
    """The run record an outcome stands for, as the store holds it once recorded: built from what the worker had
    in hand when it committed (the leased run, its result or error), not read back (a round trip per run)."""
    res = outcome.result
    return replace(
        outcome.run,
        status=outcome.status,
        finished_at=outcome.ended_at,
        error=outcome.error,
        rows_in=res.rows_in if res else None,
        rows_out=res.rows_out if res else outcome.rows_out,
        rows_quarantined=res.rows_quarantined if res else None,
        bytes=res.bytes if res else None,
        steps=list(res.steps) if res else [],
        output_files=list(res.output_files) if res else [],
        note=res.note if res else None,
        quality=dict(res.quality) if res else {},
        content_hash=res.content_hash if res else outcome.run.content_hash,
    )


def traced(on_done: Callable[[Any], None] | None) -> Callable[[Any], None] | None:
    """`on_done` that also records each ended run as spans (when OpenTelemetry is installed)."""
    if not available():
        return on_done

    def done(outcome: Any) -> None:
        try:
            trace_run(ended(outcome))
        except Exception as exc:  # tracing never stops a worker
            log.debug("tracing run %s failed: %s", outcome.run.run_id, exc)
        if on_done:
            on_done(outcome)

    return done
