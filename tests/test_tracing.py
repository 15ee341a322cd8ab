"""OpenTelemetry: each run that ends is a span with its steps as children (the SDK's in-memory exporter here)."""

from __future__ import annotations

import pytest

from conftest import wf

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the test extra brings opentelemetry-sdk")


@pytest.fixture(scope="module")
def spans():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the process's provider, as opentelemetry-instrument would set it
    return exporter


def test_runs_and_steps_become_spans(make_lake, spans):
    spans.clear()
    lake = make_lake([wf("s", retry={"max_attempts": 1}, transform=[{"cast": {"x": "int"}}])])
    lake.land("s/a.csv", "x\n1\n2\n")
    lake.land("s/bad.csv", "x\nnope\n")
    lake.process()
    got = spans.get_finished_spans()
    runs = {s.attributes["landfall.file"]: s for s in got if s.name == "landfall.run s"}
    assert set(runs) == {"s/a.csv", "s/bad.csv"}
    good, bad = runs["s/a.csv"], runs["s/bad.csv"]
    assert good.attributes["landfall.status"] == "succeeded" and good.attributes["landfall.rows_out"] == 2
    assert good.status.is_ok and not bad.status.is_ok and "nope" in bad.status.description
    steps = [s for s in got if s.parent is not None and s.parent.span_id == good.context.span_id]
    names = [s.name for s in sorted(steps, key=lambda s: s.start_time)]
    assert names[0] == "landfall.step read" and "landfall.step write" in names
    assert all(good.start_time <= s.start_time <= s.end_time <= good.end_time for s in steps)
    assert good.context.trace_id == steps[0].context.trace_id


def test_spans_say_what_the_store_recorded(make_lake, spans):
    """Spans are made from what the worker committed (not read back from the store): they match the records,
    for a loaded, a skipped (same bytes as another file) and a dead run."""
    spans.clear()
    lake = make_lake([wf("s", retry={"max_attempts": 1}, transform=[{"cast": {"x": "int"}}])])
    lake.land("s/a.csv", "x\n1\n2\n")
    lake.land("s/same.csv", "x\n1\n2\n")
    lake.land("s/bad.csv", "x\nnope\n")
    lake.process()
    got = {s.attributes["landfall.file"]: s for s in spans.get_finished_spans() if s.name == "landfall.run s"}
    runs = {r.file_key: r for r in lake.pipeline.runs()}
    assert set(got) == set(runs) == {"s/a.csv", "s/same.csv", "s/bad.csv"}
    assert {r.status for r in runs.values()} == {"succeeded", "skipped", "dead"}
    for key, run in runs.items():
        attrs = got[key].attributes
        assert attrs["landfall.run_id"] == run.run_id and attrs["landfall.status"] == run.status
        assert attrs["landfall.attempt"] == run.attempt and attrs["landfall.table"] == run.table_name
        for name in ("rows_in", "rows_out", "rows_quarantined"):
            assert attrs.get(f"landfall.{name}") == getattr(run, name), (key, name)
        assert attrs["landfall.bytes"] == (run.bytes if run.bytes is not None else run.size)
        assert got[key].start_time == int(run.started_at * 1e9)
        assert abs(got[key].end_time / 1e9 - run.finished_at) < 1.0  # recorded, then told: the same moment
        children = [s for s in spans.get_finished_spans() if s.parent and s.parent.span_id == got[key].context.span_id]
        assert len(children) == len(run.steps)
    assert runs["s/bad.csv"].error and got["s/bad.csv"].status.description == runs["s/bad.csv"].error[:1000]
