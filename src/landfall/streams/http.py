"""The HTTP intake of streams, as Starlette routes that `landfall serve` mounts.

- `POST /streams/<name>`: JSON Lines (one record per line) or a JSON array of records. The answer comes once
  the accepted records are on disk: `{"stream", "accepted", "errored", "failed", "errors": [...]}`, HTTP 200
  when anything was accepted, 400 when every record was refused, 429 (with `Retry-After`) when the stream is
  over its buffer limit, 404 for an unknown stream, 413 for a body over 16 MiB.
- `POST /` with `X-Amz-Target`: the Firehose and Kinesis APIs (see `aws.py`).

With a token, every call must carry it: `Authorization: Bearer <token>`, or an AWS Signature Version 4 made
with the token as the secret access key.

The endpoints are plain ASGI apps (no request or response objects): a record's cost is its checks and its share
of an fsync, and a small call should not pay more than that for the framework.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

try:
    from starlette.datastructures import Headers
    from starlette.routing import Route
except ImportError:  # pragma: no cover - depends on the environment
    from landfall.registry import missing_dependency

    raise missing_dependency("the stream intake over HTTP", "starlette", "serve") from None

from landfall import compression
from landfall.streams import aws
from landfall.streams.log import LogClosed, LogFull
from landfall.streams.records import BadBody, split_body
from landfall.streams.service import NoSuchStream, Streams
from landfall.streams.stream import Throttled

MAX_BODY_BYTES = 16 << 20
OWN_AUTH = ("/streams/", "/")  # the paths whose routes check the token themselves (bearer or SigV4)
AMZ_JSON = b"application/x-amz-json-1.1"

Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class UnsupportedEncoding(BadBody):
    """A `Content-Encoding` landfall cannot decompress (HTTP 415)."""


async def read_body(scope: Scope, receive: Receive, limit: int = MAX_BODY_BYTES) -> bytes:
    length = Headers(scope=scope).get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BodyTooLarge
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def decoded(body: bytes, encoding: str) -> bytes:
    """The request body its `Content-Encoding` (gzip, deflate, zstd) compressed, at most `MAX_BODY_BYTES`."""
    if not encoding:
        return body
    try:
        return compression.decode_content(body, encoding, MAX_BODY_BYTES)
    except OverflowError:
        raise BodyTooLarge from None
    except LookupError as exc:
        raise UnsupportedEncoding(
            f"Content-Encoding `{exc.args[0]}` is not supported; send {', '.join(compression.CONTENT_ENCODINGS)} "
            "or an uncompressed body"
        ) from None
    except ValueError as exc:
        raise BadBody(f"request body: Content-Encoding says {encoding}, but it is {exc}") from None


async def respond(send: Send, status: int, body: bytes, content_type: bytes, headers: Mapping[str, str] = {}) -> None:
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, doc: Any, headers: Mapping[str, str] = {}) -> None:
    await respond(send, status, json.dumps(doc, separators=(",", ":")).encode(), b"application/json", headers)


def auth_error(scope: Scope, headers: Headers, body: bytes, token: str | None) -> str | None:
    """Why the request may not post (None when it may): a token is set and the call does not carry it."""
    if not token:
        return None
    header = headers.get("authorization", "")
    if header.startswith("Bearer "):
        if hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode()):
            return None
        return "the bearer token is not the server's token"
    raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?")[0]
    query = scope.get("query_string", b"").decode("latin-1")
    return aws.sigv4_error(scope["method"], raw_path, query, headers, body, token, datetime.now(UTC))


class PostRecords:
    """`POST /streams/<name>`: records as JSON Lines or a JSON array."""

    def __init__(self, streams: Streams, token: str | None) -> None:
        self.streams, self.token = streams, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await read_body(scope, receive)
        except BodyTooLarge:
            await _error(send, 413, f"request body over {MAX_BODY_BYTES >> 20} MiB; send fewer records per call")
            return
        headers = Headers(scope=scope)
        why = auth_error(scope, headers, body, self.token)
        if why:
            await _error(send, 401, why, {"WWW-Authenticate": "Bearer"})
            return
        name = scope["path_params"]["name"]
        try:
            body = decoded(body, headers.get("content-encoding", ""))
        except BodyTooLarge:
            await _error(send, 413, f"request body over {MAX_BODY_BYTES >> 20} MiB decompressed; send fewer records")
            return
        except BadBody as exc:
            await _error(send, 415 if isinstance(exc, UnsupportedEncoding) else 400, str(exc))
            return
        try:
            stream = self.streams.get(name)
            records, position = split_body(body, headers.get("content-type", ""))
        except NoSuchStream as exc:
            await _error(send, 404, str(exc))
            return
        except BadBody as exc:
            await _error(send, 400, str(exc))
            return
        if not records:
            await _error(send, 400, "no records in the request body; send JSON Lines or a JSON array of objects")
            return
        try:
            put = stream.put([data for data, _ in records])
            await put.on_disk()
        except Throttled as exc:
            await _error(send, 429, str(exc), {"Retry-After": "1"})
            return
        except (LogClosed, LogFull) as exc:
            await _error(send, 503, f"{exc}; retry", {"Retry-After": "1"})
            return
        errors = []
        for (_, at), res in zip(records, put.results, strict=True):
            if res.code is not None:
                errors.append(
                    {
                        position: at,
                        "code": res.code,
                        "reason": res.message,
                        "action": "error_prefix" if res.to_errors else "refused",
                    }
                )
        failed = sum(1 for e in errors if e["action"] == "refused")
        answer = {
            "stream": name,
            "accepted": len(records) - len(errors),
            "errored": len(errors) - failed,
            "failed": failed,
            "errors": errors,
        }
        await respond_json(send, 400 if failed == len(records) else 200, answer)


class AwsCall:
    """`POST /` with `X-Amz-Target`: the Firehose and Kinesis APIs."""

    def __init__(self, streams: Streams, token: str | None) -> None:
        self.streams, self.token = streams, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = Headers(scope=scope)
        target = headers.get("x-amz-target")
        if not target:
            await _error(send, 400, "`POST /` takes AWS API calls, named by the `X-Amz-Target` header")
            return
        rid = aws.request_id()
        try:
            body = await read_body(scope, receive)
            why = auth_error(scope, headers, body, self.token)
            if why:
                raise aws.AwsError("UnrecognizedClientException", why, 403)
            try:
                put, answer = aws.handle(self.streams, target, body)
                if put is not None:
                    await put.on_disk()
            except (LogClosed, LogFull) as exc:
                raise aws.AwsError("ServiceUnavailableException", str(exc), 503) from None
        except BodyTooLarge:
            err = aws.AwsError("InvalidArgumentException", "request body over 16 MiB", 413)
            await _aws(send, err.body(), rid, err.status, error=err.code)
            return
        except aws.AwsError as exc:
            await _aws(send, exc.body(), rid, exc.status, error=exc.code)
            return
        await _aws(send, answer(), rid)


def routes(streams: Streams, *, token: str | None = None) -> list[Route]:
    """The intake routes for `streams`; with `token`, every call must carry it."""
    return [
        Route("/streams/{name}", PostRecords(streams, token), methods=["POST"], name="streams:post"),
        Route("/", AwsCall(streams, token), methods=["POST"], name="streams:aws"),
    ]


async def _error(send: Send, status: int, message: str, headers: Mapping[str, str] = {}) -> None:
    await respond_json(send, status, {"error": message}, headers)


async def _aws(send: Send, doc: dict[str, Any], rid: str, status: int = 200, *, error: str | None = None) -> None:
    headers = {"x-amzn-RequestId": rid}
    if error:
        headers["x-amzn-ErrorType"] = error
    await respond(send, status, json.dumps(doc, separators=(",", ":")).encode(), AMZ_JSON, headers)
