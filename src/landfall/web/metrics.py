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


def _le(bound: float) -> str:
    return repr(float(bound))


class Metrics:
    """The `/metrics` route over one pipeline, with a registry of its own."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Collector(pipeline))  # type: ignore[arg-type]

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
