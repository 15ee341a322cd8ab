"""The Firehose and Kinesis wire APIs (AWS JSON 1.1), so producers switch to landfall by endpoint URL alone.

`POST /` with `X-Amz-Target: Firehose_20150804.PutRecord | PutRecordBatch` or
`Kinesis_20131202.PutRecord | PutRecords`; bodies and answers as AWS documents them: base64 `Data`, a result per
record in request order, `FailedPutCount` / `FailedRecordCount`, errors as `{"__type", "message"}`. A delivery
stream or Kinesis stream is a landfall stream of the same name (Kinesis has one shard, `shardId-000000000000`).
What producers and their tools ask before they write is answered too: `Firehose_20150804.ListDeliveryStreams |
DescribeDeliveryStream`, `Kinesis_20131202.ListStreams | DescribeStream | DescribeStreamSummary | ListShards`
(streams are made by landfall.yaml, not by the API: every stream is `ACTIVE`).

A record landfall cannot deliver (not a JSON object, over `max_record_size`, a partition field missing) fails
alone with `InvalidArgumentException` and the reason, or is accepted into the stream's `error_prefix` when one is
set (as Firehose does with records it cannot process). Over the buffer limit a whole call is refused with the
error each service uses for throttling (Firehose `ServiceUnavailableException`, HTTP 503; Kinesis
`ProvisionedThroughputExceededException`), which the AWS SDKs retry with backoff.

Requests are authenticated with Signature Version 4 when a token is set: the token is the secret access key (any
access key id), so `boto3.client("firehose", endpoint_url=..., aws_secret_access_key=TOKEN, ...)` just works.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from landfall.streams.service import NoSuchStream, Streams
from landfall.streams.stream import Put, Result, Stream, Throttled

ACCOUNT = "000000000000"
SHARD = "shardId-000000000000"
FIREHOSE = "Firehose_20150804"
KINESIS = "Kinesis_20131202"
MAX_SKEW_SECONDS = 15 * 60
REGION = "us-east-1"  # in the ARNs of answers; a request may name any region
LAST_HASH_KEY = str(2**128 - 1)  # the one shard takes every partition key's hash


@dataclass
class AwsError(Exception):
    """An error answer: `{"__type": code, "message": message}` with an HTTP status."""

    code: str
    message: str
    status: int = 400

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


# --- Signature Version 4 --------------------------------------------------------------------------------------


def sigv4_error(
    method: str, raw_path: str, query: str, headers: Mapping[str, str], body: bytes, secret: str, now: datetime
) -> str | None:
    """Why the request's SigV4 signature does not hold for `secret` (None when it does)."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return "the request is not signed (AWS Signature Version 4, or `Authorization: Bearer <token>`)"
    try:
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
        _key_id, day, region, service, terminal = fields["Credential"].split("/")
        signed = fields["SignedHeaders"].split(";")
        signature = fields["Signature"]
        stamp = headers["x-amz-date"]
        when = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return "the Authorization header is not a well-formed AWS Signature Version 4"
    if abs((now - when).total_seconds()) > MAX_SKEW_SECONDS:
        return f"the signature's time {stamp} is more than 15 minutes from the server's"
    if "host" not in signed:
        return "the signature must cover the `host` header"
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(parse_qsl(query, keep_blank_values=True))
    )
    canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    payload = headers.get("x-amz-content-sha256") or hashlib.sha256(body).hexdigest()
    request = "\n".join(
        [method, quote(raw_path, safe="/~"), canonical_query, canonical_headers, ";".join(signed), payload]
    )
    scope = f"{day}/{region}/{service}/{terminal}"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, terminal):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the request signature does not match; sign with the server's token as the secret access key"
    return None


# --- the operations -------------------------------------------------------------------------------------------


def handle(streams: Streams, target: str, body: bytes) -> tuple[Put | None, Any]:
    """Run one call: (the put to wait for, a function of it that makes the answer). Raises `AwsError`."""
    service, _, operation = target.partition(".")
    op = _OPERATIONS.get((service, operation))
    if op is None:
        supported = ", ".join(f"`{s}.{o}`" for s, o in _OPERATIONS)
        raise AwsError("UnknownOperationException", f"landfall does not serve `{target}`; it serves {supported}")
    try:
        doc = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AwsError("SerializationException", "the request body is not JSON") from None
    if not isinstance(doc, dict):
        raise AwsError("SerializationException", "the request body is not a JSON object")
    return op(streams, doc)


def _stream(streams: Streams, doc: dict[str, Any], member: str, kind: str) -> Stream:
    name = doc.get(member)
    if not name and isinstance(doc.get("StreamARN"), str):
        name = doc["StreamARN"].rpartition("/")[2]
    if not isinstance(name, str) or not name:
        raise AwsError("ValidationException", f"1 validation error detected: `{member}` must not be null")
    try:
        return streams.get(name)
    except NoSuchStream as exc:
        raise AwsError(
            "ResourceNotFoundException", f"{kind} {name} under account {ACCOUNT} not found ({exc})"
        ) from None


def _data(item: Any, where: str) -> bytes:
    data = item.get("Data") if isinstance(item, dict) else None
    if not isinstance(data, str):
        raise ValueError(f"{where}: `Data` must be a base64 string")
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{where}: `Data` is not valid base64") from None


#: records in one PutRecords or PutRecordBatch call, at most (AWS's limit: a producer that sent more here would
#: be refused once it writes to AWS)
MAX_RECORDS = 500


def _records(doc: dict[str, Any], member: str) -> list[Any]:
    items = doc.get(member)
    if not isinstance(items, list) or not 0 < len(items) <= MAX_RECORDS:
        held = len(items) if isinstance(items, list) else 0
        raise AwsError(
            "ValidationException",
            f"1 validation error detected: `{member}` must hold 1 to {MAX_RECORDS} records; it holds {held}",
        )
    return items


def _put(stream: Stream, items: list[bytes | ValueError], throttle: AwsError) -> Put:
    """Put the records that decoded; the results keep request order (an undecodable record's is its error)."""
    try:
        put = stream.put([r for r in items if isinstance(r, bytes)])
    except Throttled as exc:
        raise AwsError(throttle.code, f"{throttle.message} {exc}", throttle.status) from None
    if len(put.results) < len(items):
        done = iter(put.results)
        put.results = [
            next(done) if isinstance(r, bytes) else Result(code="InvalidData", message=str(r)) for r in items
        ]
    return put


def _decode_all(items: list[Any]) -> list[bytes | ValueError]:
    """Each record's bytes, or why its `Data` is missing or not base64."""
    out: list[bytes | ValueError] = []
    for i, item in enumerate(items):
        try:
            out.append(_data(item, f"Records[{i}]"))
        except ValueError as exc:
            out.append(exc)
    return out


def _entry(res: Result, accepted: Any) -> dict[str, Any]:
    """One record's part of a batch answer: `accepted(offset)`, or AWS's per-record error."""
    if res.ok:
        return accepted(res.offset)
    return {"ErrorCode": "InvalidArgumentException", "ErrorMessage": f"{res.code}: {res.message}"}


def _single(put: Put) -> int:
    """The offset of a one-record call's record, or its error as the call's error."""
    res = put.results[0]
    if res.offset is None:
        raise AwsError("InvalidArgumentException", f"{res.code}: {res.message}")
    return res.offset


def _firehose_throttle() -> AwsError:
    return AwsError("ServiceUnavailableException", "Slow down.", 503)


def _kinesis_throttle(stream: Stream) -> AwsError:
    return AwsError(
        "ProvisionedThroughputExceededException",
        f"Rate exceeded for shard {SHARD} in stream {stream.name} under account {ACCOUNT}.",
    )


def firehose_put_record(streams: Streams, doc: dict[str, Any]) -> tuple[Put, Any]:
    stream = _stream(streams, doc, "DeliveryStreamName", "Firehose")
    try:
        raw = _data(doc.get("Record"), "Record")
    except ValueError as exc:
        raise AwsError("InvalidArgumentException", str(exc)) from None
    put = _put(stream, [raw], _firehose_throttle())
    offset = _single(put)
    return put, lambda: {"RecordId": record_id(stream, offset), "Encrypted": False}


def firehose_put_record_batch(streams: Streams, doc: dict[str, Any]) -> tuple[Put, Any]:
    stream = _stream(streams, doc, "DeliveryStreamName", "Firehose")
    put = _put(stream, _decode_all(_records(doc, "Records")), _firehose_throttle())

    def answer() -> dict[str, Any]:
        out = [_entry(res, lambda offset: {"RecordId": record_id(stream, offset)}) for res in put.results]
        return {"FailedPutCount": put.failed, "Encrypted": False, "RequestResponses": out}

    return put, answer


def kinesis_put_record(streams: Streams, doc: dict[str, Any]) -> tuple[Put, Any]:
    stream = _stream(streams, doc, "StreamName", "Stream")
    _partition_key(doc, "PartitionKey")
    try:
        raw = _data(doc, "the record")
    except ValueError as exc:
        raise AwsError("InvalidArgumentException", str(exc)) from None
    put = _put(stream, [raw], _kinesis_throttle(stream))
    offset = _single(put)
    return put, lambda: {"ShardId": SHARD, "SequenceNumber": sequence_number(offset), "EncryptionType": "NONE"}


def kinesis_put_records(streams: Streams, doc: dict[str, Any]) -> tuple[Put, Any]:
    stream = _stream(streams, doc, "StreamName", "Stream")
    items = _records(doc, "Records")
    for i, item in enumerate(items):
        _partition_key(item if isinstance(item, dict) else {}, f"Records[{i}].PartitionKey")
    put = _put(stream, _decode_all(items), _kinesis_throttle(stream))

    def answer() -> dict[str, Any]:
        out = [
            _entry(res, lambda offset: {"SequenceNumber": sequence_number(offset), "ShardId": SHARD})
            for res in put.results
        ]
        return {"FailedRecordCount": put.failed, "Records": out, "EncryptionType": "NONE"}

    return put, answer


def _partition_key(doc: dict[str, Any], where: str) -> None:
    key = doc.get("PartitionKey")
    if not isinstance(key, str) or not 1 <= len(key) <= 256:
        raise AwsError("ValidationException", f"1 validation error detected: `{where}` must be 1 to 256 characters")


def record_id(stream: Stream, offset: int | None) -> str:
    """Firehose's `RecordId`: unique per record, naming the log and the record's offset in it."""
    return f"{stream.log.id}-{offset:020d}"


def sequence_number(offset: int | None) -> str:
    """Kinesis's `SequenceNumber`: increasing within the stream's (one) shard."""
    return f"{offset:020d}"


def request_id() -> str:
    return str(uuid.uuid4())


# --- what producers ask before they write: the streams there are, and each one's description ---------------


def _page(streams: Streams, doc: dict[str, Any], start: str, default: int) -> tuple[list[Stream], bool]:
    """The streams after the one named by `start` (or by `NextToken`), in name order, at most `Limit`."""
    limit = doc.get("Limit", default)
    if not isinstance(limit, int) or not 1 <= limit <= 10000:
        raise AwsError("ValidationException", "1 validation error detected: `Limit` must be 1 to 10000")
    after = doc.get(start) or doc.get("NextToken") or ""
    rest = sorted((s for s in streams if s.name > after), key=lambda s: s.name)
    return rest[:limit], len(rest) > limit


def kinesis_arn(stream: Stream) -> str:
    return f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{stream.name}"


def _shard() -> dict[str, Any]:
    return {
        "ShardId": SHARD,
        "HashKeyRange": {"StartingHashKey": "0", "EndingHashKey": LAST_HASH_KEY},
        "SequenceNumberRange": {"StartingSequenceNumber": sequence_number(0)},
    }


def _kinesis_summary(stream: Stream) -> dict[str, Any]:
    return {
        "StreamName": stream.name,
        "StreamARN": kinesis_arn(stream),
        "StreamStatus": "ACTIVE",
        "StreamModeDetails": {"StreamMode": "PROVISIONED"},
        "StreamCreationTimestamp": stream.log.created,
    }


def _kinesis_description(stream: Stream) -> dict[str, Any]:
    return {
        **_kinesis_summary(stream),
        "RetentionPeriodHours": 24,
        "EnhancedMonitoring": [{"ShardLevelMetrics": []}],
        "EncryptionType": "NONE",
    }


def kinesis_list_streams(streams: Streams, doc: dict[str, Any]) -> tuple[None, Any]:
    page, more = _page(streams, doc, "ExclusiveStartStreamName", 100)
    answer = {
        "StreamNames": [s.name for s in page],
        "HasMoreStreams": more,
        "StreamSummaries": [_kinesis_summary(s) for s in page],
    }
    if more:
        answer["NextToken"] = page[-1].name
    return None, lambda: answer


def kinesis_describe_stream(streams: Streams, doc: dict[str, Any]) -> tuple[None, Any]:
    stream = _stream(streams, doc, "StreamName", "Stream")
    shards = [] if doc.get("ExclusiveStartShardId") == SHARD else [_shard()]
    description = {**_kinesis_description(stream), "Shards": shards, "HasMoreShards": False}
    return None, lambda: {"StreamDescription": description}


def kinesis_describe_stream_summary(streams: Streams, doc: dict[str, Any]) -> tuple[None, Any]:
    stream = _stream(streams, doc, "StreamName", "Stream")
    summary = {**_kinesis_description(stream), "OpenShardCount": 1, "ConsumerCount": 0}
    return None, lambda: {"StreamDescriptionSummary": summary}


def kinesis_list_shards(streams: Streams, doc: dict[str, Any]) -> tuple[None, Any]:
    _stream(streams, doc, "StreamName", "Stream")  # one that exists
    return None, lambda: {"Shards": [_shard()]}


def firehose_list_delivery_streams(streams: Streams, doc: dict[str, Any]) -> tuple[None, Any]:
    kind = doc.get("DeliveryStreamType")
    page, more = _page(streams, doc, "ExclusiveStartDeliveryStreamName", 10)
    if kind not in (None, "DirectPut"):  # landfall's streams take records put to them, from no other source
        page, more = [], False
    return None, lambda: {"DeliveryStreamNames": [s.name for s in page], "HasMoreDeliveryStreams": more}


def firehose_describe_delivery_stream(streams: Streams, doc: dict[str, Any]) -> tuple[None, Any]:
    stream = _stream(streams, doc, "DeliveryStreamName", "Firehose")
    cfg = stream.config
    s3 = {
        "Prefix": cfg.prefix,
        "BufferingHints": {
            "SizeInMBs": max(1, round(cfg.buffer.size_mb)),
            "IntervalInSeconds": max(1, round(cfg.buffer.interval_seconds)),
        },
        "CompressionFormat": "GZIP" if cfg.compression == "gzip" else "UNCOMPRESSED",
        "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
    }
    if cfg.error_prefix:
        s3["ErrorOutputPrefix"] = cfg.error_prefix
    description = {
        "DeliveryStreamName": stream.name,
        "DeliveryStreamARN": f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{stream.name}",
        "DeliveryStreamStatus": "ACTIVE",
        "DeliveryStreamType": "DirectPut",
        "VersionId": "1",
        "CreateTimestamp": stream.log.created,
        "Destinations": [{"DestinationId": "destinationId-000000000001", "ExtendedS3DestinationDescription": s3}],
        "HasMoreDestinations": False,
    }
    return None, lambda: {"DeliveryStreamDescription": description}


_OPERATIONS = {
    (FIREHOSE, "PutRecord"): firehose_put_record,
    (FIREHOSE, "PutRecordBatch"): firehose_put_record_batch,
    (FIREHOSE, "ListDeliveryStreams"): firehose_list_delivery_streams,
    (FIREHOSE, "DescribeDeliveryStream"): firehose_describe_delivery_stream,
    (KINESIS, "PutRecord"): kinesis_put_record,
    (KINESIS, "PutRecords"): kinesis_put_records,
    (KINESIS, "ListStreams"): kinesis_list_streams,
    (KINESIS, "DescribeStream"): kinesis_describe_stream,
    (KINESIS, "DescribeStreamSummary"): kinesis_describe_stream_summary,
    (KINESIS, "ListShards"): kinesis_list_shards,
}
