"""Streams: records posted over HTTP, Firehose or Kinesis (boto3 against a server on loopback) become tables."""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import threading
import time

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from landfall.streams import Streams
from landfall.testing.streams import TOKEN, serving_in_thread

from conftest import wf


def stream(name: str = "clicks", **kw) -> dict:
    doc = {"name": name, "prefix": f"raw/{name}/", "buffer": {"size_mb": 1, "interval_seconds": 0.2}}
    doc.update(kw)
    return doc


def aws(service: str, url: str, secret: str = TOKEN, retries: int = 0):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="landfall",
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1 + retries}),
    )


def post(url: str, **kw) -> httpx.Response:
    """`httpx.post` with the server's token."""
    headers = {"authorization": f"Bearer {TOKEN}", **kw.pop("headers", {})}
    return httpx.post(url, headers=headers, **kw)


def landed(lake, prefix: str = "raw/") -> dict[str, bytes]:
    root = lake.landing
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted((root / prefix).rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def lines_of(data: bytes, key: str) -> list[dict]:
    if key.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines() if line.strip()]


@pytest.fixture
def clicks_lake(make_lake):
    return make_lake([wf("clicks", match="raw/clicks/")], streams=[stream(partition_by=["event_type"])])


def test_records_posted_over_http_become_a_table(clicks_lake):
    lake = clicks_lake
    with serving_in_thread(lake.config) as url:
        body = b"".join(
            json.dumps({"id": i, "event_type": ["view", "click"][i % 2]}).encode() + b"\n" for i in range(10)
        )
        r = post(f"{url}/streams/clicks", content=body, headers={"content-type": "application/x-ndjson"})
        assert r.status_code == 200, r.text
        assert r.json() == {"stream": "clicks", "accepted": 10, "errored": 0, "failed": 0, "errors": []}
        r = post(f"{url}/streams/clicks", json=[{"id": 10, "event_type": "view"}, {"id": 11, "event_type": "buy"}])
        assert r.json()["accepted"] == 2
    # the server landed what it held when it stopped; the pipeline loads it
    summary = lake.process()  # a file per event type, or more when a flush came between the two posts
    assert summary.ok and summary.count("succeeded") == len(landed(lake)) >= 3
    assert lake.rows("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM clicks") == [(12, 12, 0, 11)]
    assert lake.rows("SELECT event_type, count(*) FROM clicks GROUP BY 1 ORDER BY 1") == [
        ("buy", 1),
        ("click", 5),
        ("view", 6),
    ]
    files = landed(lake)
    assert all(
        k.startswith(("raw/clicks/event_type=view/", "raw/clicks/event_type=click/", "raw/clicks/event_type=buy/"))
        for k in files
    )
    key = next(k for k in files if "event_type=buy" in k)
    parts = key.split("/")
    assert len(parts[3]) == 4 and parts[3].isdigit() and len(parts[4]) == 2 and len(parts[6]) == 2  # YYYY/MM/DD/HH
    assert parts[7].startswith("clicks-") and parts[7].endswith(".jsonl")
    sources = {row[0] for row in lake.rows("SELECT DISTINCT _source_file FROM clicks")}
    assert sources == set(files)


def test_compressed_bodies_and_a_bom_before_an_array_are_read(clicks_lake):
    """Log shippers compress what they post (`Content-Encoding: gzip`, deflate or zstd): the records were refused
    as `NotUtf8`. A JSON array after a UTF-8 BOM (as Windows tools write it) was one record, refused as
    `NotAnObject`. A body that is not what its header says, a coding landfall does not know and one over the
    body limit once decompressed are refused whole, with what was wrong."""
    import zlib

    import zstandard

    lake = clicks_lake
    with serving_in_thread(lake.config) as url:
        target = f"{url}/streams/clicks"

        def rec(i):
            return json.dumps({"id": i, "event_type": "view"}).encode() + b"\n"

        bodies = {
            "gzip": gzip.compress(rec(1) + rec(2)),
            "deflate": zlib.compress(rec(3)),
            "zstd": zstandard.ZstdCompressor().compress(rec(4)),
            "identity": rec(5),
            "gzip, zstd": zstandard.ZstdCompressor().compress(gzip.compress(rec(6))),
        }
        for coding, body in bodies.items():
            r = post(target, content=body, headers={"content-encoding": coding})
            assert r.status_code == 200 and r.json()["failed"] == 0, (coding, r.text)
        raw = zlib.compressobj(wbits=-15)
        r = post(target, content=raw.compress(rec(7)) + raw.flush(), headers={"content-encoding": "deflate"})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        r = post(
            target,
            content=b"\xef\xbb\xbf" + json.dumps([{"id": 8, "event_type": "view"}]).encode(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        r = post(target, content=rec(9), headers={"content-encoding": "gzip"})
        assert r.status_code == 400 and "Content-Encoding says gzip, but it is not valid gzip" in r.json()["error"]
        r = post(target, content=gzip.compress(rec(10))[:-9], headers={"content-encoding": "gzip"})
        assert r.status_code == 400 and "not valid gzip" in r.json()["error"], r.text
        r = post(target, content=rec(11), headers={"content-encoding": "br"})
        assert r.status_code == 415 and "Content-Encoding `br` is not supported" in r.json()["error"]
        r = post(target, content=gzip.compress(b" " * (17 << 20)), headers={"content-encoding": "gzip"})
        assert r.status_code == 413 and "decompressed" in r.json()["error"]
    assert lake.process().ok
    assert lake.rows("SELECT list(id ORDER BY id) FROM clicks") == [([1, 2, 3, 4, 5, 6, 7, 8],)]


def test_firehose_api_with_boto3(clicks_lake):
    lake = clicks_lake
    with serving_in_thread(lake.config) as url:
        fh = aws("firehose", url)
        one = fh.put_record(DeliveryStreamName="clicks", Record={"Data": b'{"id": 1, "event_type": "view"}\n'})
        assert set(one) - {"ResponseMetadata"} == {"RecordId", "Encrypted"} and one["Encrypted"] is False
        batch = fh.put_record_batch(
            DeliveryStreamName="clicks",
            Records=[{"Data": json.dumps({"id": i, "event_type": "click"}).encode()} for i in range(2, 6)]
            + [
                {"Data": b"not json"},
                {"Data": b'{"id": 99}'},
                {"Data": json.dumps({"id": 6, "event_type": "view"}).encode()},
            ],
        )
        assert batch["FailedPutCount"] == 2 and batch["Encrypted"] is False
        resp = batch["RequestResponses"]
        assert len(resp) == 7
        assert all(set(r) == {"RecordId"} for i, r in enumerate(resp) if i not in (4, 5))
        assert resp[4]["ErrorCode"] == "InvalidArgumentException" and "InvalidJson" in resp[4]["ErrorMessage"]
        assert (
            resp[5]["ErrorCode"] == "InvalidArgumentException" and "`event_type` is missing" in resp[5]["ErrorMessage"]
        )
        ids = [r["RecordId"] for r in resp if "RecordId" in r] + [one["RecordId"]]
        assert len(set(ids)) == 6
        with pytest.raises(ClientError) as err:
            fh.put_record(DeliveryStreamName="clicks", Record={"Data": b"[1, 2]"})
        assert err.value.response["Error"]["Code"] == "InvalidArgumentException"
        assert "not an object" in err.value.response["Error"]["Message"]
        with pytest.raises(fh.exceptions.ResourceNotFoundException, match="nope"):
            fh.put_record(DeliveryStreamName="nope", Record={"Data": b"{}"})
    lake.process()
    assert lake.rows("SELECT list(id ORDER BY id) FROM clicks") == [([1, 2, 3, 4, 5, 6],)]


def test_kinesis_api_with_boto3(clicks_lake):
    lake = clicks_lake
    with serving_in_thread(lake.config) as url:
        k = aws("kinesis", url)
        one = k.put_record(StreamName="clicks", Data=b'{"id": 1, "event_type": "view"}', PartitionKey="p")
        assert one["ShardId"] == "shardId-000000000000" and one["EncryptionType"] == "NONE"
        many = k.put_records(
            StreamName="clicks",
            Records=[
                {"Data": json.dumps({"id": i, "event_type": "view"}).encode(), "PartitionKey": str(i)} for i in (2, 3)
            ]
            + [{"Data": b"\xff\xfe{}", "PartitionKey": "x"}],
        )
        assert many["FailedRecordCount"] == 1 and many["EncryptionType"] == "NONE"
        recs = many["Records"]
        assert [set(r) for r in recs[:2]] == [{"SequenceNumber", "ShardId"}] * 2
        assert recs[2]["ErrorCode"] == "InvalidArgumentException" and "NotUtf8" in recs[2]["ErrorMessage"]
        seqs = [one["SequenceNumber"], recs[0]["SequenceNumber"], recs[1]["SequenceNumber"]]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        arn = "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"
        k.put_record(StreamARN=arn, Data=b'{"id": 4, "event_type": "view"}', PartitionKey="p")
        # more than AWS's 500 records a call is refused, as AWS refuses it (all 501 were accepted)
        over = [{"Data": b'{"id": 9, "event_type": "view"}', "PartitionKey": "p"}] * 501
        with pytest.raises(ClientError, match=r"ValidationException.*1 to 500 records; it holds 501"):
            k.put_records(StreamName="clicks", Records=over)
    lake.process()
    assert lake.rows("SELECT list(id ORDER BY id) FROM clicks") == [([1, 2, 3, 4],)]


def test_producers_find_and_describe_streams_with_boto3(make_lake):
    """What producers and their tools ask before they write (which streams there are, is this one active, its
    shard): Kinesis ListStreams, DescribeStream (boto3's `stream_exists` waiter), DescribeStreamSummary,
    ListShards; Firehose ListDeliveryStreams, DescribeDeliveryStream. Every call was `UnknownOperationException`."""
    lake = make_lake(
        [wf("clicks", match="raw/")],
        streams=[stream("clicks", error_prefix="errors/clicks/"), stream("views", compression="gzip")],
    )
    with serving_in_thread(lake.config) as url:
        k, fh = aws("kinesis", url), aws("firehose", url)
        listed = k.list_streams()
        assert listed["StreamNames"] == ["clicks", "views"] and listed["HasMoreStreams"] is False
        first = k.list_streams(Limit=1)
        assert first["StreamNames"] == ["clicks"] and first["HasMoreStreams"] is True
        assert k.list_streams(NextToken=first["NextToken"])["StreamNames"] == ["views"]
        assert k.list_streams(ExclusiveStartStreamName="clicks")["StreamNames"] == ["views"]
        assert [
            p["StreamNames"] for p in k.get_paginator("list_streams").paginate(PaginationConfig={"PageSize": 1})
        ] == [
            ["clicks"],
            ["views"],
        ]
        summary = listed["StreamSummaries"][0]
        arn = "arn:aws:kinesis:us-east-1:000000000000:stream/clicks"
        assert summary["StreamARN"] == arn and summary["StreamStatus"] == "ACTIVE"
        assert abs(summary["StreamCreationTimestamp"].timestamp() - time.time()) < 600
        k.get_waiter("stream_exists").wait(StreamName="clicks", WaiterConfig={"Delay": 1, "MaxAttempts": 2})
        described = k.describe_stream(StreamARN=arn)["StreamDescription"]
        assert described["StreamName"] == "clicks" and described["HasMoreShards"] is False
        assert [s["ShardId"] for s in described["Shards"]] == ["shardId-000000000000"]
        assert described["Shards"][0]["HashKeyRange"]["EndingHashKey"] == str(2**128 - 1)
        brief = k.describe_stream_summary(StreamName="views")["StreamDescriptionSummary"]
        assert (brief["OpenShardCount"], brief["StreamStatus"], brief["EncryptionType"]) == (1, "ACTIVE", "NONE")
        assert [s["ShardId"] for s in k.list_shards(StreamName="clicks")["Shards"]] == ["shardId-000000000000"]
        with pytest.raises(k.exceptions.ResourceNotFoundException, match="nope"):
            k.describe_stream_summary(StreamName="nope")
        names = fh.list_delivery_streams()
        assert names["DeliveryStreamNames"] == ["clicks", "views"] and names["HasMoreDeliveryStreams"] is False
        assert fh.list_delivery_streams(Limit=1, ExclusiveStartDeliveryStreamName="clicks")["DeliveryStreamNames"] == [
            "views"
        ]
        assert fh.list_delivery_streams(DeliveryStreamType="KinesisStreamAsSource")["DeliveryStreamNames"] == []
        d = fh.describe_delivery_stream(DeliveryStreamName="clicks")["DeliveryStreamDescription"]
        assert d["DeliveryStreamStatus"] == "ACTIVE" and d["DeliveryStreamType"] == "DirectPut"
        assert d["DeliveryStreamARN"] == "arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks"
        s3 = d["Destinations"][0]["ExtendedS3DestinationDescription"]
        assert (s3["Prefix"], s3["ErrorOutputPrefix"], s3["CompressionFormat"]) == (
            "raw/clicks/",
            "errors/clicks/",
            "UNCOMPRESSED",
        )
        assert s3["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 1}
        views = fh.describe_delivery_stream(DeliveryStreamName="views")["DeliveryStreamDescription"]
        assert views["Destinations"][0]["ExtendedS3DestinationDescription"]["CompressionFormat"] == "GZIP"
        with pytest.raises(fh.exceptions.ResourceNotFoundException, match="nope"):
            fh.describe_delivery_stream(DeliveryStreamName="nope")
        unchecked = boto3.client(  # boto3 checks `Limit` itself; another client may not
            "kinesis",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="landfall",
            aws_secret_access_key=TOKEN,
            config=Config(parameter_validation=False),
        )
        with pytest.raises(ClientError, match="`Limit` must be 1 to 10000"):
            unchecked.list_streams(Limit=0)


def test_bad_records_are_refused_one_by_one(clicks_lake):
    with serving_in_thread(clicks_lake.config) as url:
        body = (
            b'{"id": 1, "event_type": "view"}\n'
            b"{not json\n"
            b"\n"
            b"[1, 2]\n"
            b'{"id": 4, "event_type": {"nested": 1}}\n'
            b'{"id": 5, "event_type": "view", "big": "' + b"x" * 1_100_000 + b'"}\n'
        )
        r = post(f"{url}/streams/clicks", content=body)
        assert r.status_code == 200
        doc = r.json()
        assert (doc["accepted"], doc["failed"], doc["errored"]) == (1, 4, 0)
        assert [(e["line"], e["code"], e["action"]) for e in doc["errors"]] == [
            (2, "InvalidJson", "refused"),
            (4, "NotAnObject", "refused"),
            (5, "PartitionFieldInvalid", "refused"),
            (6, "RecordTooLarge", "refused"),
        ]
        assert "`max_record_size`" in doc["errors"][3]["reason"]
        r = post(f"{url}/streams/clicks", content=b"{oops\n")
        assert r.status_code == 400 and r.json()["failed"] == 1
        r = post(f"{url}/streams/clicks", content=b'[{"id": 1}, ', headers={"content-type": "application/json"})
        assert r.status_code == 400 and "line 1, column" in r.json()["error"]
        assert post(f"{url}/streams/nope", content=b"{}").status_code == 404
        assert post(f"{url}/streams/clicks", content=b"\n\n").status_code == 400


def test_records_land_as_written_every_number_and_escape(make_lake):
    """A record lands as its producer wrote it: a JSON array's elements and a pretty-printed record too (before:
    those were decoded and encoded again, landing `1234567890.123456789` as `1234567890.1234567` and `1e400` as
    `Infinity`, which then loaded as an infinity, where a file holding `1e400` makes its column text)."""
    lake = make_lake([wf("m", match="raw/m/")], streams=[stream("m")])
    written = '{"id": 1, "amount": 1234567890.123456789, "big": 1e400, "e": 2.50E+3, "s": "caf\\u00e9 \\ud83d\\ude00"}'
    pretty = '{\r\n  "id": 2,\n  "amount": 0.1000000000000000055511151231257827,\n\t"big": -1E+999,\n  "e": 1e0\n}'
    with serving_in_thread(lake.config) as url:
        r = post(
            f"{url}/streams/m",
            content=f"[{written},\n {pretty}]".encode(),
            headers={"content-type": "application/json"},
        )
        assert r.json()["accepted"] == 2, r.text
        put = aws("firehose", url).put_record_batch(
            DeliveryStreamName="m",
            Records=[
                {"Data": written.replace('"id": 1', '"id": 3').encode()},
                {"Data": pretty.replace('"id": 2', '"id": 4').encode()},
            ],
        )
        assert put["FailedPutCount"] == 0
    lines = [line for data in landed(lake).values() for line in data.decode().splitlines()]
    compact = re.sub(r"[\r\n]\s*", "", pretty)  # the line breaks out (and the indent after), every token as written
    assert sorted(lines) == sorted(
        [written, compact, written.replace('"id": 1', '"id": 3'), compact.replace('"id": 2', '"id": 4')]
    )
    assert lake.process().ok
    assert lake.rows("SELECT id, big, s FROM m ORDER BY id") == [
        (1, "1e400", "café 😀"),
        (2, "-1E+999", None),
        (3, "1e400", "café 😀"),
        (4, "-1E+999", None),
    ]


def test_a_record_the_loader_would_refuse_is_refused_alone(clicks_lake):
    """Half a surrogate pair, nesting deeper than the loader follows: each refused with its reason, the rest of the
    call accepted and loaded (before: the first was accepted, and the file it landed in failed whole at load,
    every other record in it with it; the second failed the whole call with HTTP 500). A key twice in one object
    is accepted as written: its last value loads (its partition too), as from a file."""
    deep = b'{"event_type": "view", "d": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    with serving_in_thread(clicks_lake.config) as url:
        body = (
            b'{"id": 1, "event_type": "view"}\n'
            b'{"id": 2, "event_type": "view", "id": 3}\n'
            b'{"id": 4, "event_type": "view", "s": "a\\ud800b"}\n'
            + deep
            + b'\n{"id": 5, "event_type": "view", "s": "a\\\\ud800 \\ud83d\\ude00"}\n'
        )
        r = post(f"{url}/streams/clicks", content=body)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert (doc["accepted"], doc["failed"]) == (3, 2)
        assert [(e["line"], e["code"]) for e in doc["errors"]] == [(3, "InvalidJson"), (4, "InvalidJson")]
        reasons = [e["reason"] for e in doc["errors"]]
        assert "`\\ud800` (column 40) is half of a UTF-16 surrogate pair" in reasons[0]
        assert "nested deeper than" in reasons[1]
        batch = aws("kinesis", url).put_records(
            StreamName="clicks",
            Records=[
                {"Data": b'{"id": 6, "event_type": "view"}', "PartitionKey": "k"},
                {"Data": b'{"id": 7, "event_type": "view", "event_type": "click"}', "PartitionKey": "k"},
                {"Data": deep, "PartitionKey": "k"},
            ],
        )
        assert batch["FailedRecordCount"] == 1
        assert ["InvalidJson" in r.get("ErrorMessage", "") for r in batch["Records"]] == [False, False, True]
    summary = clicks_lake.process()
    assert summary.ok, summary
    assert clicks_lake.rows("SELECT id, event_type, s FROM clicks ORDER BY id") == [
        (1, "view", None),
        (3, "view", None),
        (5, "view", "a\\ud800 😀"),
        (6, "view", None),
        (7, "click", None),
    ]
    assert any("/event_type=click/" in k for k in landed(clicks_lake))


def test_error_prefix_takes_bad_records_as_firehose_does(make_lake):
    lake = make_lake(
        [wf("clicks", match="raw/clicks/"), wf("click_errors", match="errors/clicks/")],
        # one buffer for both requests, written when the server stops (the 0.2 s default could flush between them)
        streams=[
            stream(
                partition_by=["event_type"],
                error_prefix="errors/clicks/",
                max_record_size="1KiB",
                buffer={"size_mb": 1, "interval_seconds": 60},
            )
        ],
    )
    with serving_in_thread(lake.config) as url:
        r = post(
            f"{url}/streams/clicks",
            content=b'{"id": 1, "event_type": "view"}\nnot json\n{"id": 3}\n{"id": 4, "event_type": "view", "pad": "'
            + b"y" * 2000
            + b'"}\n',
        )
        doc = r.json()
        assert (doc["accepted"], doc["errored"], doc["failed"]) == (1, 3, 0)
        assert {e["action"] for e in doc["errors"]} == {"error_prefix"}
        batch = aws("firehose", url).put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"nope"}])
        assert batch["FailedPutCount"] == 0 and "RecordId" in batch["RequestResponses"][0]
    files = landed(lake, "errors/")
    assert len(files) == 1
    key, data = next(iter(files.items()))
    assert key.startswith("errors/clicks/") and "/event_type=" not in key
    errors = lines_of(data, key)
    assert [(e["errorCode"], base64.b64decode(e["rawData"])[:8]) for e in errors] == [
        ("InvalidJson", b"not json"),
        ("PartitionFieldMissing", b'{"id": 3'),
        ("RecordTooLarge", b'{"id": 4'),
        ("InvalidJson", b"nope"),
    ]
    assert all(e["streamName"] == "clicks" and e["errorMessage"] and e["arrivalTimestamp"] > 0 for e in errors)
    lake.process()
    assert lake.rows("SELECT count(*) FROM clicks") == [(1,)]
    assert lake.rows("SELECT count(*) FROM click_errors") == [(4,)]


def test_gzip_output_and_dynamic_partitions_with_escaping(make_lake):
    lake = make_lake(
        [wf("orders", match="raw/orders/")],
        streams=[stream("orders", partition_by=["region", "customer.tier"], compression="gzip")],
    )
    recs = [
        {"id": 1, "region": "eu", "customer": {"tier": "gold"}},
        {"id": 2, "region": "eu", "customer": {"tier": "gold"}},
        {"id": 3, "region": "../../etc", "customer": {"tier": 2}},
        {"id": 4, "region": "us/east", "customer": {"tier": True}},
    ]
    with serving_in_thread(lake.config) as url:
        assert post(f"{url}/streams/orders", json=recs).json()["accepted"] == 4
    files = landed(lake)
    folders = sorted("/".join(k.split("/")[2:4]) for k in files)
    assert folders == [
        "region=..%2F..%2Fetc/customer.tier=2",
        "region=eu/customer.tier=gold",
        "region=us%2Feast/customer.tier=true",
    ]
    assert all(k.endswith(".jsonl.gz") and d[:2] == b"\x1f\x8b" for k, d in files.items())
    eu = next(d for k, d in files.items() if "region=eu/" in k)
    assert [r["id"] for r in lines_of(eu, ".gz")] == [1, 2]
    assert all(p.resolve().is_relative_to(lake.landing.resolve()) for p in lake.landing.rglob("*"))
    lake.process()
    assert lake.rows("SELECT list(id ORDER BY id) FROM orders") == [([1, 2, 3, 4],)]


def test_a_partition_value_too_long_for_a_folder_is_refused_alone(make_lake):
    """A record whose partition folder passes 255 bytes was accepted; its file could never land (`File name too
    long`), and the flush that held it was tried again for ever: no record after it landed, and the buffer
    filled until every call was refused. Now the record is refused alone, naming the field and the bytes."""
    lake = make_lake([wf("orders", match="raw/orders/")], streams=[stream("orders", partition_by=["region"])])
    with serving_in_thread(lake.config) as url:
        doc = post(f"{url}/streams/orders", json=[{"id": 1, "region": "eu"}, {"id": 2, "region": "x" * 249}]).json()
        assert (doc["accepted"], doc["failed"]) == (1, 1)
        (err,) = doc["errors"]
        assert err["code"] == "PartitionFieldInvalid"
        assert "`region=` and its value of 249 characters, escaped, take 256 bytes" in err["reason"], err
        doc = post(f"{url}/streams/orders", json=[{"id": 3, "region": "x" * 248}, {"id": 4, "region": "eu"}]).json()
        assert doc["accepted"] == 2
    assert lake.process().ok
    assert lake.rows("SELECT id, length(region) FROM orders ORDER BY id") == [(1, 2), (3, 248), (4, 2)]


def test_back_pressure_refuses_calls_over_the_buffer_limit(make_lake):
    lake = make_lake(
        [wf("clicks", match="raw/clicks/")],
        streams=[stream(buffer={"size_mb": 0.01, "interval_seconds": 3600, "limit_mb": 0.02})],
    )
    # a landing zone that cannot be written: flushes fail, the buffer fills
    blocker = lake.landing / "raw"
    blocker.write_text("not a folder")
    rec = json.dumps({"id": 0, "pad": "z" * 180}).encode()
    with serving_in_thread(lake.config) as url:
        statuses = []
        for _ in range(40):
            statuses.append(post(f"{url}/streams/clicks", content=b"\n".join([rec] * 20)).status_code)
        assert 429 in statuses and statuses[0] == 200
        r = post(f"{url}/streams/clicks", content=rec)
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
        assert "`buffer.limit_mb`" in r.json()["error"]
        with pytest.raises(ClientError) as err:
            aws("firehose", url).put_record(DeliveryStreamName="clicks", Record={"Data": rec})
        assert err.value.response["Error"]["Code"] == "ServiceUnavailableException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        with pytest.raises(ClientError) as err:
            aws("kinesis", url).put_records(StreamName="clicks", Records=[{"Data": rec, "PartitionKey": "a"}])
        assert err.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
        accepted = sum(20 for s in statuses if s == 200)
        blocker.unlink()  # the landing zone comes back: the held records land, nothing was dropped
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and post(f"{url}/streams/clicks", content=rec).status_code == 429:
            time.sleep(0.2)
        accepted += 1
    lake.process()
    assert lake.rows("SELECT count(*) FROM clicks") == [(accepted,)]


def test_a_disk_that_refuses_records_answers_503_and_keeps_nothing(clicks_lake, monkeypatch):
    """The segment log's disk full (`LogFull`; the log itself is tested on a real full disk in
    test_stream_log.py, here the append is made to refuse): every API says 503, retry, for HTTP, Firehose and
    Kinesis alike, and the records sent once there is room load. Before, the error went up as a 500."""
    from landfall.streams.log import LogFull, SegmentLog

    real, full = SegmentLog.append, threading.Event()
    full.set()

    def append(self, data):
        if full.is_set():
            raise LogFull(f"the segment log `{self.folder}`: No space left on device; nothing was kept, retry")
        return real(self, data)

    monkeypatch.setattr(SegmentLog, "append", append)
    rec = json.dumps({"id": 1, "event_type": "view"}).encode()
    with serving_in_thread(clicks_lake.config) as url:
        r = post(f"{url}/streams/clicks", content=rec)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert "No space left on device" in r.json()["error"]
        for call in (
            lambda: aws("firehose", url).put_record(DeliveryStreamName="clicks", Record={"Data": rec}),
            lambda: aws("kinesis", url).put_records(StreamName="clicks", Records=[{"Data": rec, "PartitionKey": "a"}]),
        ):
            with pytest.raises(ClientError) as err:
                call()
            assert err.value.response["Error"]["Code"] == "ServiceUnavailableException"
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        full.clear()  # room again
        assert post(f"{url}/streams/clicks", content=rec).status_code == 200
    clicks_lake.process()
    assert clicks_lake.rows("SELECT count(*) FROM clicks") == [(1,)]


def test_a_failed_sync_refuses_its_calls_and_the_stream_goes_on(clicks_lake, monkeypatch):
    """An `fdatasync` of the segment log failing once (an I/O error, injected: no disk here fails a sync): the
    call it was to cover answers 503 and loads nothing, and the calls after it are taken and load; before, the
    stream refused every call until the server restarted."""
    import errno

    fail, real = threading.Event(), os.fdatasync

    def fdatasync(fd: int) -> None:
        if fail.is_set():
            fail.clear()
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with serving_in_thread(clicks_lake.config) as url:
        assert post(f"{url}/streams/clicks", content=b'{"id": 1, "event_type": "view"}').status_code == 200
        fail.set()
        r = post(f"{url}/streams/clicks", content=b'{"id": 2, "event_type": "view"}')
        assert r.status_code == 503 and "could not be synced (Input/output error)" in r.json()["error"], r.text
        deadline = time.monotonic() + 10
        while (r := post(f"{url}/streams/clicks", content=b'{"id": 3, "event_type": "view"}')).status_code == 503:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.05)
        assert r.status_code == 200, r.text
    clicks_lake.process()
    assert clicks_lake.rows("SELECT id FROM clicks ORDER BY id") == [(1,), (3,)]


def test_readiness_says_when_a_streams_log_refuses_records(clicks_lake, monkeypatch):
    """While a failed sync is not yet cut back (the disk refuses the cut too; both injected), `/readyz` answers 503
    naming the stream and why, so a load balancer sends producers elsewhere; ready again once the log is cut back."""
    import errno

    stuck, real_sync, real_truncate = threading.Event(), os.fdatasync, os.ftruncate

    def fdatasync(fd: int) -> None:
        if stuck.is_set():
            raise OSError(errno.EIO, "Input/output error")
        real_sync(fd)

    def ftruncate(fd: int, length: int) -> None:
        if stuck.is_set():
            raise OSError(errno.EIO, "Input/output error")
        real_truncate(fd, length)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(os, "ftruncate", ftruncate)
    headers = {"authorization": f"Bearer {TOKEN}"}
    with serving_in_thread(clicks_lake.config) as url:
        ready = httpx.get(f"{url}/readyz", headers=headers)
        assert ready.status_code == 200 and ready.json()["checks"]["stream:clicks"] == "ok", ready.text
        stuck.set()
        assert post(f"{url}/streams/clicks", content=b'{"id": 1, "event_type": "view"}').status_code == 503
        ready = httpx.get(f"{url}/readyz", headers=headers)
        assert ready.status_code == 503, ready.text
        assert "could not be synced (Input/output error)" in ready.json()["checks"]["stream:clicks"], ready.text
        stuck.clear()
        deadline = time.monotonic() + 10
        while httpx.get(f"{url}/readyz", headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "the log was never cut back"
            time.sleep(0.05)
        assert post(f"{url}/streams/clicks", content=b'{"id": 2, "event_type": "view"}').status_code == 200
    clicks_lake.process()
    assert clicks_lake.rows("SELECT id FROM clicks") == [(2,)]


def test_a_flush_passes_over_what_a_failed_sync_cut_back(clicks_lake, monkeypatch):
    """Offsets a failed sync cut back hold no record: a flush with nothing else to land moves past them (it would
    otherwise find nothing, move nothing and be due again at every tick), and nothing is landed for them."""
    import errno

    from landfall.streams.log import LogFull

    lake, real = clicks_lake, os.fdatasync
    streams = Streams(lake.pipeline.settings)
    streams.start(lake.pipeline.submit)
    st = streams.get("clicks")
    st.put([b'{"id": 1, "event_type": "view"}']).durable.result(5)
    streams.flush()

    def fdatasync(fd: int) -> None:
        monkeypatch.setattr(os, "fdatasync", real)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    with pytest.raises(LogFull):
        st.put([b'{"id": 2, "event_type": "view"}']).durable.result(5)
    deadline = time.monotonic() + 5
    while st.log.durable == st.log.flushed:  # the log cut back: its offsets jump past the records it dropped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert streams.flush() == [] and st.log.flushed == st.log.durable == st.log.written
    assert not st.due(time.time() + 3600)
    streams.close()
    assert lake.process().ok
    assert lake.rows("SELECT id FROM clicks") == [(1,)]


def test_metrics_show_what_the_streams_did(make_lake):
    """`/metrics` of a server that takes records: records by outcome, bytes, calls refused whole by reason, files
    landed, bytes waiting and their age, and whether the log takes records."""
    lake = make_lake(
        [wf("clicks", match="raw/clicks/")],
        streams=[stream(buffer={"size_mb": 0.01, "interval_seconds": 3600, "limit_mb": 0.02}, error_prefix="e/")],
    )
    headers = {"authorization": f"Bearer {TOKEN}"}

    def scrape(url: str) -> dict[str, float]:
        text = httpx.get(f"{url}/metrics", headers=headers).text
        lines = [ln.rsplit(" ", 1) for ln in text.splitlines() if ln.startswith("landfall_stream")]
        return {k.replace('stream="clicks"', "").replace("{,", "{").replace(",}", "}"): float(v) for k, v in lines}

    with serving_in_thread(lake.config) as url:
        assert post(f"{url}/streams/clicks", content=b'{"id": 1}\n{"id": 2}\nnot json\n').json()["errored"] == 1
        post(f"{url}/streams/clicks", content=b"[1]", headers={"content-type": "application/json"})
        time.sleep(0.01)  # the oldest record has waited
        got = scrape(url)
        assert got['landfall_stream_records_total{outcome="accepted"}'] == 2
        assert got['landfall_stream_records_total{outcome="errored"}'] == 2  # `not json`, `1`
        assert got['landfall_stream_records_total{outcome="refused"}'] == 0
        assert got["landfall_stream_bytes_total{}"] > 0
        assert got["landfall_stream_unflushed_bytes{}"] == got["landfall_stream_bytes_total{}"]
        assert got["landfall_stream_oldest_unflushed_age_seconds{}"] > 0
        assert got["landfall_stream_log_up{}"] == 1
        (lake.landing / "raw").write_text("not a folder")  # flushes fail: the buffer fills
        statuses = [post(f"{url}/streams/clicks", content=b'{"pad": "%s"}' % (b"z" * 4000)).status_code]
        while statuses[-1] == 200 and len(statuses) < 50:
            statuses.append(post(f"{url}/streams/clicks", content=b'{"pad": "%s"}' % (b"z" * 4000)).status_code)
        assert statuses[-1] == 429, statuses
        got = scrape(url)
        assert got['landfall_stream_calls_refused_total{reason="throttled"}'] == 1
        assert got['landfall_stream_calls_refused_total{reason="disk"}'] == 0
        assert got["landfall_stream_files_landed_total{}"] == 0
        assert got["landfall_stream_unflushed_bytes{}"] > 0.02 * (1 << 20)
        (lake.landing / "raw").unlink()
        deadline = time.monotonic() + 30
        while (got := scrape(url))["landfall_stream_unflushed_bytes{}"] > 0:
            assert time.monotonic() < deadline, got
            time.sleep(0.1)
        assert got["landfall_stream_files_landed_total{}"] >= 2  # records, and the error lines beside them
        assert got["landfall_stream_oldest_unflushed_age_seconds{}"] == 0
        (api,) = httpx.get(f"{url}/api/streams", headers=headers).json()["streams"]  # the same numbers
        assert api["records"] == {"accepted": 2 + statuses.count(200), "errored": 2, "refused": 0}, api
        assert (api["calls_refused"], api["log"], api["unflushed_bytes"]) == ({"throttled": 1, "disk": 0}, "ok", 0)
        assert api["files_landed"] == got["landfall_stream_files_landed_total{}"]


def test_every_call_carries_the_token(clicks_lake):
    rec = b'{"id": 1, "event_type": "view"}'
    with serving_in_thread(clicks_lake.config) as url:
        assert httpx.post(f"{url}/streams/clicks", content=rec).status_code == 401
        wrong = httpx.post(f"{url}/streams/clicks", content=rec, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401 and "not the server's token" in wrong.json()["error"]
        assert post(f"{url}/streams/clicks", content=rec).status_code == 200
        assert aws("firehose", url).put_record(DeliveryStreamName="clicks", Record={"Data": rec})["RecordId"]
        assert aws("kinesis", url).put_record(StreamName="clicks", Data=rec, PartitionKey="k")["SequenceNumber"]
        with pytest.raises(ClientError) as err:
            aws("firehose", url, secret="wrong").put_record(DeliveryStreamName="clicks", Record={"Data": rec})
        assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"
        assert "signature does not match" in err.value.response["Error"]["Message"]
        unsigned = httpx.post(url + "/", content=b"{}", headers={"x-amz-target": "Firehose_20150804.PutRecord"})
        assert unsigned.status_code == 403 and unsigned.json()["__type"] == "UnrecognizedClientException"
    clicks_lake.process()
    assert clicks_lake.rows("SELECT count(*) FROM clicks") == [(3,)]


def test_records_land_by_age_while_the_server_runs(clicks_lake):
    lake = clicks_lake
    with serving_in_thread(lake.config) as url:
        post(f"{url}/streams/clicks", content=b'{"id": 1, "event_type": "view"}')
        deadline = time.monotonic() + 10
        while not landed(lake) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(landed(lake)) == 1, "the buffer interval (0.2 s) passed and nothing landed"
        lake.process()
        assert lake.rows("SELECT id FROM clicks") == [(1,)]


def test_records_land_by_size_in_files_near_the_buffer_size(make_lake):
    lake = make_lake(
        [wf("clicks", match="raw/clicks/")], streams=[stream(buffer={"size_mb": 0.05, "interval_seconds": 3600})]
    )
    streams = Streams(lake.pipeline.settings)
    st = streams.get("clicks")
    rec = json.dumps({"pad": "p" * 200}).encode()
    for _ in range(10):
        st.put([rec] * 100).durable.result(5)
    assert st.due(time.time())
    streams.poll()
    sizes = [len(d) for d in landed(lake).values()]
    assert len(sizes) >= 4 and max(sizes) < 0.05 * (1 << 20) * 1.1
    held = len(list(st.log.read(st.log.flushed, st.log.written)))  # less than a buffer's worth waits for its age
    assert st.unflushed < st.config.buffer.size_bytes and not st.due(time.time())
    assert sum(len(lines_of(d, k)) for k, d in landed(lake).items()) == 1000 - held
    streams.close()
    assert sum(len(lines_of(d, k)) for k, d in landed(lake).items()) == 1000


def test_the_same_records_in_two_flushes_both_load(clicks_lake):
    """Stream files are named by their log offsets; identical bytes in two of them are two deliveries."""
    lake = clicks_lake
    streams = Streams(lake.pipeline.settings)
    streams.start(lake.pipeline.submit)
    st = streams.get("clicks")
    for _ in range(2):
        st.put([b'{"status": "ok", "event_type": "heartbeat"}']).durable.result(5)
        streams.flush()
    streams.close()
    assert len(landed(lake)) == 2 and len(set(landed(lake).values())) == 1
    assert lake.process().ok
    assert lake.rows("SELECT count(*) FROM clicks") == [(2,)]


def test_a_flush_cut_short_is_redone_with_the_same_files(clicks_lake, monkeypatch):
    """A crash after some files landed and before the checkpoint moved: reopening lands the rest, each once."""
    import landfall.streams.stream as stream_mod

    lake = clicks_lake
    streams = Streams(lake.pipeline.settings)
    st = streams.get("clicks")
    for i in range(30):
        st.put([json.dumps({"id": i, "event_type": f"t{i % 3}"}).encode()]).durable.result(5)
    landed_so_far = []

    def crash(point: str) -> None:
        if point == "stream_after_land":
            landed_so_far.append(point)
            if len(landed_so_far) == 2:
                raise SystemExit("crash")

    monkeypatch.setattr(stream_mod, "crash_point", crash)
    with pytest.raises(SystemExit):
        st.flush()
    assert len(landed(lake)) == 2
    for s in streams:
        s.close()
    monkeypatch.setattr(stream_mod, "crash_point", lambda point: None)
    again = Streams(lake.pipeline.settings)
    assert again.get("clicks").log.pending is not None
    again.start(lake.pipeline.submit)
    again.get("clicks").put([b'{"id": 30, "event_type": "t0"}']).durable.result(5)
    again.close()
    assert len(landed(lake)) == 4
    lake.process()
    assert lake.rows("SELECT count(*), count(DISTINCT id) FROM clicks") == [(31, 31)]


def test_records_left_in_the_log_of_a_stream_taken_out_of_the_config_are_said_at_start(clicks_lake):
    """A stream removed (or renamed) from landfall.yaml after a crash kept its acknowledged records in its log,
    landed by nothing, without a word."""
    from msgspec.structs import replace

    from landfall.streams.service import warn_left_behind

    lake = clicks_lake
    streams = Streams(lake.pipeline.settings)
    streams.get("clicks").put([b'{"id": 1, "event_type": "view"}']).durable.result(5)
    streams.close(flush=False)  # as after kill -9
    gone = replace(lake.pipeline.settings, streams=[])
    (said,) = warn_left_behind(gone)
    assert (
        said.startswith("stream `clicks` is not in landfall.yaml, but its segment log (")
        and " bytes of records accepted and not landed" in said
    ), said
    assert "put the stream back in `streams:`" in said
    assert warn_left_behind(lake.pipeline.settings) == []  # in the config: its server lands them
    streams = Streams(lake.pipeline.settings)
    streams.start(lake.pipeline.submit)
    streams.close()
    assert warn_left_behind(gone) == []  # landed: nothing left behind
    assert lake.process().ok and lake.rows("SELECT id FROM clicks") == [(1,)]


def test_streams_config_is_checked_at_load(tmp_path):
    from landfall.config import load_settings
    from landfall.errors import ConfigError

    def load(streams, **extra):
        (tmp_path / "landfall.yaml").write_text(json.dumps({"streams": streams, **extra}))
        return load_settings(tmp_path / "landfall.yaml")

    s = load([{"name": "clicks"}])
    c = s.streams[0]
    assert (c.prefix, c.buffer.size_mb, c.buffer.interval_seconds, c.compression, c.record_limit) == (
        "clicks/",
        5.0,
        60.0,
        "none",
        1000 * 1024,
    )
    assert c.buffer.limit_bytes == 64 << 20
    assert s.stream_log_path == str(tmp_path.resolve() / "lake" / "_landfall" / "streams")
    cases = [
        ([{"name": "a b"}], "stream name `a b`"),
        ([{"name": "x", "prefix": "../out/"}], "`..` segment"),
        ([{"name": "x", "prefix": "/abs/"}], "absolute path"),
        ([{"name": "x", "prefix": "raw/_tmp/"}], "never loaded"),
        ([{"name": "x", "prefix": "raw/x/", "error_prefix": "raw/x/errors/"}], "overlap"),
        ([{"name": "x", "buffer": {"size_mb": 10, "limit_mb": 5}}], "`limit_mb` (5) is below `size_mb` (10)"),
        ([{"name": "x", "partition_by": ["_hidden"]}], "partition field `_hidden`"),
        ([{"name": "x", "compression": "zip"}], "streams[0] (x).compression"),
        ([{"name": "x", "bufer": {}}], "unknown key"),
        ([{"name": "x"}, {"name": "x"}], "repeated: `x`"),
        ([{"name": "Clicks"}, {"name": "clicks"}], "ignoring case (each names a folder); repeated: `Clicks`, `c"),
        ([{"name": "x", "max_record_size": "lots"}], "size `lots`"),
    ]
    for streams, needle in cases:
        with pytest.raises(ConfigError) as err:
            load(streams)
        assert needle in str(err.value), (needle, str(err.value))
    remote = {"zones": {"state": "s3://bucket/state"}, "state_url": "sqlite:////tmp/state.db"}
    with pytest.raises(ConfigError, match="set `stream_log_dir`"):
        load([{"name": "x"}], **remote)
    with pytest.raises(ConfigError, match="expected a local folder"):
        load([{"name": "x"}], stream_log_dir="s3://bucket/logs")
    assert load([{"name": "x"}], **remote, stream_log_dir="./logs").stream_log_path == str(
        (tmp_path / "logs").resolve()
    )


@pytest.mark.slow
def test_the_stream_demo_posts_with_boto3_and_runs_three_hops():
    from click.testing import CliRunner

    from landfall.cli import main

    out = CliRunner().invoke(main, ["demo", "--stream"])
    assert out.exit_code == 0, out.output
    text = out.output
    assert text.count("FailedPutCount 0") == 3
    assert "raw/sales/product.category=Tools/" in text
    assert "cancelled\t1\t" in text and "delivered\t5\t" in text  # later rounds updated earlier sales by key
    versions = [int(line.split("\t")[0]) for line in text.splitlines() if line.split("\t")[1:2] == ["MERGE"]]
    assert len(versions) >= 3 and versions == sorted(versions, reverse=True) and versions[-1] == 0
    staged = [line for line in text.splitlines() if line.startswith("T-1002\t")]
    assert [line.split("\t")[1] for line in staged[-3:]] == ["placed", "shipped", "delivered"]  # sales_staging
