"""`/metrics`: Prometheus text format, every name prefixed `landfall_`, read from the state store at each scrape
(so every `landfall serve` over one lake reports the same numbers) through one library call,
`Pipeline.activity()`:

| metric | type | labels |
|---|---|---|
| `landfall_files_total` | counter | workflow, status (runs that ended: succeeded, failed, dead, skipped, unrouted) |
| `landfall_rows_read_total`, `landfall_rows_written_total` | counter | workflow, status |
| `landfall_bytes_total` | counter | workflow, status (bytes of the landed files) |
| `landfall_rows_quarantined_total` | counter | workflow |
| `landfall_run_duration_seconds` | histogram | workflow (runs that succeeded, failed or died) |
| `landfall_queue_depth` | gauge | workflow (queued runs) |
| `landfall_running_runs` | gauge | workflow |
| `landfall_oldest_queued_age_seconds` | gauge | workflow |
| `landfall_dead_letters` | gauge | |
| `landfall_compactions_total` | counter | table (compactions this process committed) |

and, when the process serves streams, what its streams did (this process's counts, from its start):

| metric | type | labels |
|---|---|---|
| `landfall_stream_records_total` | counter | stream, outcome (accepted; errored: to the `error_prefix`; refused) |
| `landfall_stream_bytes_total` | counter | stream (bytes appended to the segment log) |
| `landfall_stream_calls_refused_total` | counter | stream, reason (throttled: over `buffer.limit_mb`; disk: refused) |
| `landfall_stream_files_landed_total` | counter | stream |
| `landfall_stream_log_failures_total` | counter | stream (syncs or writes the disk refused; each cut the log back) |
| `landfall_stream_unflushed_bytes` | gauge | stream (in the log, not yet landed) |
| `landfall_stream_oldest_unflushed_age_seconds` | gauge | stream (how long the oldest record not landed has waited) |
| `landfall_stream_log_up` | gauge | stream (1 when its log takes records, 0 while it refuses them) |
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from landfall.pipeline import Pipeline
from landfall.readback import DURATION_BUCKETS


class Collector:
    """A prometheus-client collector over `Pipeline.activity()`."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        act = self.pipeline.activity()
        now = time.time()
        files = CounterMetricFamily("landfall_files", "Runs (file versions) that ended, by status", labels=_WS)
        rows_in = CounterMetricFamily("landfall_rows_read", "Rows read from landed files", labels=_WS)
        rows_out = CounterMetricFamily("landfall_rows_written", "Rows written to tables", labels=_WS)
        nbytes = CounterMetricFamily("landfall_bytes", "Bytes of landed files whose runs ended", labels=_WS)
        quarantined = CounterMetricFamily("landfall_rows_quarantined", "Rows set aside", labels=["workflow"])
        duration = HistogramMetricFamily("landfall_run_duration_seconds", "Run durations", labels=["workflow"])
        per_flow_q: dict[str, int] = {}
        hist: dict[str, list[Any]] = {}
        for (wf, status), t in sorted(act.totals.items()):
            for fam, value in ((files, t.runs), (rows_in, t.rows_in), (rows_out, t.rows_out), (nbytes, t.bytes)):
                fam.add_metric([wf, status], value)
            per_flow_q[wf] = per_flow_q.get(wf, 0) + t.rows_quarantined
            if status in ("succeeded", "failed", "dead"):
                h = hist.setdefault(wf, [[0] * len(DURATION_BUCKETS), 0, 0.0])
                h[0] = [a + b for a, b in zip(h[0], t.buckets, strict=True)]
                h[1] += t.runs
                h[2] += t.seconds
        for wf, n in sorted(per_flow_q.items()):
            quarantined.add_metric([wf], n)
        for wf, (buckets, count, total) in sorted(hist.items()):
            pairs = [(_le(b), c) for b, c in zip(DURATION_BUCKETS, buckets, strict=True)] + [("+Inf", count)]
            duration.add_metric([wf], pairs, total)
        yield from (files, rows_in, rows_out, nbytes, quarantined, duration)

        depth = GaugeMetricFamily("landfall_queue_depth", "Queued runs", labels=["workflow"])
        running = GaugeMetricFamily("landfall_running_runs", "Runs in progress", labels=["workflow"])
        age = GaugeMetricFamily(
            "landfall_oldest_queued_age_seconds", "Age of the oldest queued run's file", labels=["workflow"]
        )
        flows = sorted({wf or "" for wf, *_ in act.backlog} | {wf for wf, _ in act.totals})
        backlog = {(wf or "", status): (n, oldest) for wf, status, n, oldest in act.backlog}
        for wf in flows:
            queued, oldest = backlog.get((wf, "queued"), (0, None))
            depth.add_metric([wf], queued)
            running.add_metric([wf], backlog.get((wf, "running"), (0, None))[0])
            age.add_metric([wf], max(0.0, now - oldest) if oldest is not None else 0.0)
        dead = GaugeMetricFamily("landfall_dead_letters", "Runs on the dead-letter list", value=act.dead_letters)
        compactions = CounterMetricFamily("landfall_compactions", "Compactions committed", labels=["table"])
        for table, n in sorted(act.compactions.items()):
            compactions.add_metric([table], n)
        yield from (depth, running, age, dead, compactions)


_WS = ["workflow", "status"]


class StreamCollector:
    """A prometheus-client collector over the streams this process serves (`landfall.streams.Streams`)."""

    def __init__(self, streams: Any) -> None:
        self.streams = streams

    def collect(self) -> Iterator[Metric]:
        records = CounterMetricFamily(
            "landfall_stream_records", "Records posted to a stream, by outcome", labels=["stream", "outcome"]
        )
        nbytes = CounterMetricFamily("landfall_stream_bytes", "Bytes appended to a stream's log", labels=["stream"])
        refused = CounterMetricFamily(
            "landfall_stream_calls_refused", "Calls refused whole, by reason", labels=["stream", "reason"]
        )
        landed = CounterMetricFamily("landfall_stream_files_landed", "Files a stream landed", labels=["stream"])
        failures = CounterMetricFamily(
            "landfall_stream_log_failures", "Syncs or writes of a stream's log the disk refused", labels=["stream"]
        )
        unflushed = GaugeMetricFamily("landfall_stream_unflushed_bytes", "Bytes not yet landed", labels=["stream"])
        age = GaugeMetricFamily(
            "landfall_stream_oldest_unflushed_age_seconds", "Age of the oldest record not landed", labels=["stream"]
        )
        up = GaugeMetricFamily("landfall_stream_log_up", "1 when the stream's log takes records", labels=["stream"])
        for st in self.streams.status():
            name = st["name"]
            for outcome, n in st["records"].items():
                records.add_metric([name, outcome], n)
            nbytes.add_metric([name], st["bytes"])
            for reason, n in st["calls_refused"].items():
                refused.add_metric([name, reason], n)
            landed.add_metric([name], st["files_landed"])
            failures.add_metric([name], st["log_failures"])
            unflushed.add_metric([name], st["unflushed_bytes"])
            age.add_metric([name], st["oldest_unflushed_age_seconds"])
            up.add_metric([name], 1 if st["log"] == "ok" else 0)
        yield from (records, nbytes, refused, landed, failures, unflushed, age, up)


def _le(bound: float) -> str:
    return repr(float(bound))


class Metrics:
    """The `/metrics` route over one pipeline (and the streams the process serves), with a registry of its own."""

    def __init__(self, pipeline: Pipeline, streams: Any = None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(pipeline))  # type: ignore[arg-type]
        if streams is not None:
            self.registry.register(StreamCollector(streams))  # type: ignore[arg-type]

    def render(self, request: Request) -> Response:
        """Prometheus metrics.
        ---
        summary: Prometheus metrics (text format), prefixed landfall_
        responses:
          200: {description: 'text/plain; version=0.0.4'}
        """
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def routes(self) -> list[Route]:
        return [Route("/metrics", self.render, methods=["GET"])]
