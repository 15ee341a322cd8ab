"""S3 event notifications as SQS delivers them: the plain, SNS-wrapped and EventBridge shapes, S3's test event,
and messages that are none of these (each refused with what was found)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from landfall.errors import MalformedEvent
from landfall.events import s3_notifications
from landfall.testing.sqs import eventbridge_event, s3_event, sns_wrapped


def test_plain_s3_event_decodes_the_key():
    body = json.dumps(s3_event("raw", "landing/sales/red flower+1 €.csv", size=12, etag='"abc"'))
    (n,) = s3_notifications(body)
    assert (n.bucket, n.key, n.event, n.created, n.size, n.etag) == (
        "raw",
        "landing/sales/red flower+1 €.csv",
        "ObjectCreated:Put",
        True,
        12,
        "abc",
    )
    assert json.loads(body)["Records"][0]["s3"]["object"]["key"] == "landing/sales/red+flower%2B1+%E2%82%AC.csv"


def test_sns_wrapped_and_eventbridge_shapes():
    (sns,) = s3_notifications(json.dumps(sns_wrapped(s3_event("raw", "in/a b.csv"))))
    assert (sns.bucket, sns.key, sns.created) == ("raw", "in/a b.csv", True)
    (eb,) = s3_notifications(json.dumps(eventbridge_event("raw", "in/a+b c.csv", size=3, etag="e")))
    assert (eb.bucket, eb.key, eb.event, eb.created, eb.size, eb.etag) == (
        "raw",
        "in/a+b c.csv",  # EventBridge keys are not URL-encoded
        "Object Created",
        True,
        3,
        "e",
    )
    (eb_sns,) = s3_notifications(json.dumps(sns_wrapped(eventbridge_event("raw", "in/x.csv"))))
    assert eb_sns.key == "in/x.csv"


def test_test_event_removals_and_several_records():
    test = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-01T10:00:00Z", "Bucket": "raw"}
    assert s3_notifications(json.dumps(test)) == []
    removed = s3_event("raw", "in/a.csv", event="ObjectRemoved:Delete")
    created = s3_event("raw", "in/b.csv")
    body = {"Records": removed["Records"] + created["Records"]}
    found = s3_notifications(json.dumps(body))
    assert [(n.key, n.created) for n in found] == [("in/a.csv", False), ("in/b.csv", True)]
    gone = eventbridge_event("raw", "in/c.csv") | {"detail-type": "Object Deleted"}
    assert [n.created for n in s3_notifications(json.dumps(gone))] == [False]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "the message body is not JSON"),
        ("[1, 2]", "expected a JSON object; got list"),
        ('{"hello": "world"}', "not an S3 event notification (keys: `hello`)"),
        ('{"Records": {}}', "`Records` is not a list"),
        ('{"Records": [{"eventSource": "aws:sqs", "eventName": "x"}]}', "expected `eventSource` `aws:s3`"),
        (
            '{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", '
            '"s3": {"bucket": {"name": "b"}}}]}',
            "`object` missing",
        ),
        ('{"Type": "Notification", "Message": "{oops"}', "the SNS notification's `Message` is not JSON"),
        ('{"source": "aws.s3", "detail": {"bucket": {"name": "b"}, "object": {}}}', "`key` missing"),
    ],
)
def test_malformed_messages_say_what_was_found(body, says):
    with pytest.raises(MalformedEvent) as err:
        s3_notifications(body)
    assert says in str(err.value)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40))
def test_any_key_survives_the_plain_shapes_encoding(key):
    for shape in (s3_event("b", key), sns_wrapped(s3_event("b", key)), eventbridge_event("b", key)):
        (n,) = s3_notifications(json.dumps(shape))
        assert n.key == key


def test_the_shapes_another_implementation_sends():
    """moto's S3 (in-process) sends its own notifications through SQS, SNS -> SQS and EventBridge -> SQS; each
    reads back as the object that was put."""
    moto = pytest.importorskip("moto")
    import boto3

    with moto.mock_aws():
        region = "us-east-1"
        s3, sqs = boto3.client("s3", region_name=region), boto3.client("sqs", region_name=region)
        sns, events = boto3.client("sns", region_name=region), boto3.client("events", region_name=region)
        queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("plain", "sns", "eb")}
        arn = {
            n: sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            for n, u in queues.items()
        }
        topic = sns.create_topic(Name="landing")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["sns"])
        events.put_rule(Name="s3", EventPattern=json.dumps({"source": ["aws.s3"]}))
        events.put_targets(Rule="s3", Targets=[{"Id": "q", "Arn": arn["eb"]}])
        s3.create_bucket(Bucket="raw")
        s3.put_bucket_notification_configuration(
            Bucket="raw",
            NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn["plain"], "Events": ["s3:ObjectCreated:*"]}],
                "TopicConfigurations": [{"TopicArn": topic, "Events": ["s3:ObjectCreated:*"]}],
                "EventBridgeConfiguration": {},
            },
        )
        s3.put_object(Bucket="raw", Key="landing/sales/a b+c.csv", Body=b"id\n1\n")
        etag = s3.head_object(Bucket="raw", Key="landing/sales/a b+c.csv")["ETag"].strip('"')
        for name, url in queues.items():
            bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
            found = [n for b in bodies for n in s3_notifications(b) if n.created]
            assert [(n.bucket, n.key, n.size, n.etag) for n in found] == [
                ("raw", "landing/sales/a b+c.csv", 5, etag)
            ], (name, bodies)
