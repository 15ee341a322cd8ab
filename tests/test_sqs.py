"""The `sqs` source: S3 event notifications through SQS (the seeds' S3 -> SQS path), end to end.

The landing zone is a bucket on SeaweedFS (started by the tests); the queue is moto in server mode on loopback,
the only SQS-compatible server that installs here: the source talks to it over HTTP with boto3, as to AWS.
SeaweedFS sends no notifications, so each test puts the object on SeaweedFS and then sends the notification S3
would have sent (in the shapes `tests/test_events.py` checks against moto's own S3, SNS and EventBridge).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from landfall import Pipeline, load_settings
from landfall.testing.sqs import MotoServer, eventbridge_event, moto_binary, s3_event, sns_wrapped

pytestmark = [pytest.mark.slow, pytest.mark.s3]


@pytest.fixture(scope="module")
def moto(tmp_path_factory) -> Iterator[MotoServer]:
    if moto_binary() is None:
        pytest.skip('`moto_server` is not installed (pip install "moto[server]", in the "test" extra)')
    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def queue(moto, request) -> str:
    return moto.create_queue(request.node.name[:60].replace("[", "-").replace("]", ""))


def make_pipeline(tmp_path: Path, s3_server, bucket: str, moto, queue: str, *, listing: bool = False, **extra: Any):
    sqs = {"queue_url": queue, "endpoint_url": moto.endpoint_url, "wait_seconds": 1, "visibility_seconds": 10}
    doc = {
        "lake": str(tmp_path / "lake"),
        "zones": {"landing": f"s3://{bucket}/landing"},
        "storage": s3_server.storage_settings(),
        "sources": ([{"listing": {"interval_seconds": 1}}] if listing else []) + [{"sqs": sqs}],
        "settle_seconds": 0,
        "workflows": [{"name": "sales", "match": "sales/", "read": {"format": "csv"}, "write": {"table": "sales"}}],
        **extra,
    }
    return Pipeline(load_settings(overrides=doc))


@contextmanager
def running(p: Pipeline) -> Iterator[None]:
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            p.up(stop, workers=1)
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)

    t = threading.Thread(target=run, name="test-up")
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(60)
        p.close()
    assert not t.is_alive(), "up did not stop"
    assert not errors, errors


def wait_for(pred, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or pred}")


def put(s3_server, bucket: str, key: str, body: bytes) -> str:
    """Land an object; its ETag."""
    return s3_server.client().put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')


def send(moto, queue: str, message: dict | str) -> None:
    moto.client().send_message(QueueUrl=queue, MessageBody=message if isinstance(message, str) else json.dumps(message))


def succeeded(p: Pipeline) -> list[str]:
    return sorted(r.file_key for r in p.runs(status="succeeded"))


def test_upload_notification_loaded_and_message_deleted(tmp_path, s3_server, s3_bucket, moto, queue, monkeypatch):
    from landfall.sources.sqs import SqsSource

    p = make_pipeline(tmp_path, s3_server, s3_bucket, moto, queue)
    order: list[str] = []  # the state store on disk before a message goes (a power cut could lose the run's end)
    real_sync, real_delete = p.store.sync, SqsSource._delete
    monkeypatch.setattr(p.store, "sync", lambda: (order.append("sync"), real_sync())[1])
    monkeypatch.setattr(
        SqsSource, "_delete", lambda self, m: (order.extend(["delete"] * bool(m)), real_delete(self, m))[1]
    )
    with running(p):
        etag = put(s3_server, s3_bucket, "landing/sales/day 1.csv", b"id,total\n1,10\n2,20\n")
        send(moto, queue, s3_event(s3_bucket, "landing/sales/day 1.csv", size=19, etag=etag))
        wait_for(lambda: succeeded(p) == ["sales/day 1.csv"], what="the notified file to load")
        wait_for(lambda: moto.counts(queue) == (0, 0), what="the message to be deleted")
        assert p.query("SELECT sum(total) FROM sales")[1] == [(30,)]
        assert [r.status for r in p.runs()] == ["succeeded"]
    assert order[:2] == ["sync", "delete"], order


def test_sns_and_eventbridge_shapes_and_a_duplicate_message_load_once(tmp_path, s3_server, s3_bucket, moto, queue):
    p = make_pipeline(tmp_path, s3_server, s3_bucket, moto, queue)
    with running(p):
        a = put(s3_server, s3_bucket, "landing/sales/a.csv", b"id,total\n1,1\n")
        b = put(s3_server, s3_bucket, "landing/sales/b+c.csv", b"id,total\n2,2\n")
        send(moto, queue, sns_wrapped(s3_event(s3_bucket, "landing/sales/a.csv", etag=a)))
        for _ in range(2):  # S3 delivers at least once: the same event twice
            send(moto, queue, eventbridge_event(s3_bucket, "landing/sales/b+c.csv", etag=b))
        wait_for(lambda: succeeded(p) == ["sales/a.csv", "sales/b+c.csv"], what="both files")
        wait_for(lambda: moto.counts(queue) == (0, 0), what="all three messages deleted")
        time.sleep(1.5)  # nothing else arrives later
        assert sorted((r.file_key, r.status) for r in p.runs()) == [
            ("sales/a.csv", "succeeded"),
            ("sales/b+c.csv", "succeeded"),
        ]
        assert p.query("SELECT count(*) FROM sales")[1] == [(2,)]


def test_a_failing_files_message_stays_hidden_until_its_run_ends(tmp_path, s3_server, s3_bucket, moto):
    """Dead-letter semantics: while a file's runs fail and are retried, its message stays in flight (its visibility
    extended past `visibility_seconds`: the queue's own redrive policy, one receive at most, never fires); once
    the last attempt is dead the file is on landfall's dead-letter list and the message is deleted."""
    dlq = moto.create_queue("landing-dlq")
    dlq_arn = moto.client().get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = moto.create_queue(
        "landing-redrive", RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
    )
    workflows = [
        {  # joins a table no file has loaded yet: each attempt fails as `TableNotReady` (retried, not terminal)
            "name": "sales",
            "match": "sales/",
            "read": {"format": "csv"},
            "transform": [{"sql": "SELECT i.* FROM input i LEFT JOIN regions r USING (id)"}],
            "write": {"table": "sales"},
            "retry": {"max_attempts": 3, "backoff_seconds": 5, "jitter": 0},
        },
        {"name": "regions", "match": "regions/", "write": {"table": "regions"}},
    ]
    p = make_pipeline(tmp_path, s3_server, s3_bucket, moto, queue, workflows=workflows)
    with running(p):
        etag = put(s3_server, s3_bucket, "landing/sales/x.csv", b"id,total\n1,1\n")
        send(moto, queue, s3_event(s3_bucket, "landing/sales/x.csv", etag=etag))
        wait_for(lambda: p.counts()["failed"] >= 1, what="the first failed attempt")
        seen = []
        deadline = time.time() + 60
        while True:
            sample = moto.counts(queue)
            if p.counts()["dead"]:  # (the sample may be from after the run ended dead and its message went)
                break
            seen.append(sample)  # taken before the run ended
            assert time.time() < deadline, "the file never ended dead"
            time.sleep(0.5)
        assert seen and set(seen) == {(0, 1)}, seen  # in flight the whole time, never visible again
        wait_for(lambda: moto.counts(queue) == (0, 0), what="the message to be deleted once the run is dead")
        (dead,) = p.dead_letters()
        assert dead.attempt == 3 and "regions" in dead.error
        assert dead.finished_at - p.runs(status="failed")[-1].started_at > 10  # longer than one visibility period
        assert moto.counts(dlq) == (0, 0)  # received once: the visibility was extended, not run out


def test_malformed_foreign_and_test_messages_are_logged_and_deleted(
    tmp_path, s3_server, s3_bucket, moto, queue, caplog
):
    p = make_pipeline(tmp_path, s3_server, s3_bucket, moto, queue)
    caplog.set_level("INFO", logger="landfall.sources")
    with running(p):
        put(s3_server, s3_bucket, "elsewhere/sales/a.csv", b"id\n1\n")
        send(moto, queue, "this is not JSON")
        send(moto, queue, {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": s3_bucket})
        send(moto, queue, s3_event(s3_bucket, "elsewhere/sales/a.csv"))  # outside the landing zone's prefix
        send(moto, queue, s3_event(s3_bucket, "landing/../etc/passwd"))  # would leave the zone
        send(moto, queue, s3_event(s3_bucket, "landing/sales/gone.csv"))  # never landed (or deleted since)
        put(s3_server, s3_bucket, "landing/sales/", b"")  # a folder made in the S3 console: no file
        send(moto, queue, s3_event(s3_bucket, "landing/sales/"))  # was refused by `safe_key` with a warning
        send(moto, queue, s3_event(s3_bucket, "landing/sales/a.csv", event="ObjectRemoved:Delete"))
        wait_for(lambda: moto.counts(queue) == (0, 0), what="every message deleted")
    assert p.counts()["queued"] == 0 and not p.runs()
    text = caplog.text
    assert "deleted: the message body is not JSON" in text
    assert "is outside the landing zone" in text and "`..` segment" in text
    assert "`sales/gone.csv` is gone" in text and "is not a created object" in text
    assert "empty segment" not in text  # a folder marker is no mistake to warn of


def test_listing_stays_the_backfill_and_agrees_with_notifications(tmp_path, s3_server, s3_bucket, moto, queue):
    """A file with no notification is found by the listing; a file the listing found first and that is notified
    afterwards is the same file version (the source reads the object as the listing does): loaded once, and
    its message deleted."""
    p = make_pipeline(tmp_path, s3_server, s3_bucket, moto, queue, listing=True)
    with running(p):
        put(s3_server, s3_bucket, "landing/sales/silent.csv", b"id,total\n1,1\n")
        wait_for(lambda: succeeded(p) == ["sales/silent.csv"], what="the listing to find the file")
        send(moto, queue, s3_event(s3_bucket, "landing/sales/silent.csv"))
        wait_for(lambda: moto.counts(queue) == (0, 0), what="the late message to be deleted")
        time.sleep(1.5)
    assert [(r.file_key, r.status) for r in p.runs()] == [("sales/silent.csv", "succeeded")]
