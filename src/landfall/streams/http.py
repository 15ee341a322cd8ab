"""The HTTP intake of streams, as Starlette routes that `landfall serve` mounts.

- `POST /streams/<name>`: JSON Lines (one record per line) or a JSON array of records. The answer comes once
  the accepted records are on disk: `{"stream", "accepted", "errored", "failed", "errors": [...]}`, HTTP 200
  when anything was accepted, 400 when every record was refused, 429 (with `Retry-After`) when the stream is
  over its buffer limit, 404 for an unknown stream, 413 for a body over 16 MiB.
- `POST /` with `X-Amz-Target`: the Firehose and Kinesis APIs (see `aws.py`).

With a token, every call must carry it: `Authorization: Bearer <token>`, or an AWS Signature Version 4 made
with the token as the secret access key.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from datetime import UTC, datetime
from typing import Any

try:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
except ImportError:  # pragma: no cover - depends on the environment
    from landfall.registry import missing_dependency

    raise missing_dependency("the stream intake over HTTP", "starlette", "serve") from None

from landfall.streams import aws
from landfall.streams.log import LogClosed
from landfall.streams.records import UNPARSED, BadBody, split_body
from landfall.streams.service import NoSuchStream, Streams
from landfall.streams.stream import Throttled

MAX_BODY_BYTES = 16 << 20
OWN_AUTH = ("/streams/", "/")  # the paths whose routes check the token themselves (bearer or SigV4)
AMZ_JSON = "application/x-amz-json-1.1"


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def auth_error(request: Request, body: bytes, token: str | None) -> str | None:
    """Why the request may not post (None when it may): a token is set and the call does not carry it."""
    if not token:
        return None
    header = request.headers.get("authorization", "")
    if header.startswith("Bearer "):
        if hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode()):
            return None
        return "the bearer token is not the server's token"
    raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0]
    return aws.sigv4_error(
        request.method,
        raw_path,
        request.url.query,
        request.headers,
        body,
        token,
        datetime.now(UTC),
    )


def routes(streams: Streams, *, token: str | None = None) -> list[Route]:
    """The intake routes for `streams`; with `token`, every call must carry it."""

    async def post_records(request: Request) -> Response:
        try:
            body = await read_body(request)
        except BodyTooLarge:
            return _error(413, f"request body over {MAX_BODY_BYTES >> 20} MiB; send fewer records per call")
        why = auth_error(request, body, token)
        if why:
            return _error(401, why, headers={"WWW-Authenticate": "Bearer"})
        name = request.path_params["name"]
        try:
            stream = streams.get(name)
            records = split_body(body, request.headers.get("content-type", ""))
        except NoSuchStream as exc:
            return _error(404, str(exc))
        except BadBody as exc:
            return _error(400, str(exc))
        if not records:
            return _error(400, "no records in the request body; send JSON Lines or a JSON array of objects")
        try:
            put = stream.put([(data, parsed) for data, _, parsed in records])
            await asyncio.wrap_future(put.durable)
        except Throttled as exc:
            return _error(429, str(exc), headers={"Retry-After": "1"})
        except LogClosed as exc:
            return _error(503, f"{exc}; retry", headers={"Retry-After": "1"})
        errors = []
        for (_, position, parsed), res in zip(records, put.results, strict=True):
            if res.code is None:
                continue
            where = "line" if parsed is UNPARSED else "index"
            errors.append(
                {
                    where: position,
                    "code": res.code,
                    "reason": res.message,
                    "action": "error_prefix" if res.to_errors else "refused",
                }
            )
        failed = sum(1 for e in errors if e["action"] == "refused")
        errored = len(errors) - failed
        answer = {
            "stream": name,
            "accepted": len(records) - failed - errored,
            "errored": errored,
            "failed": failed,
            "errors": errors,
        }
        return JSONResponse(answer, status_code=400 if failed == len(records) else 200)

    async def aws_call(request: Request) -> Response:
        target = request.headers.get("x-amz-target")
        if not target:
            return _error(400, "`POST /` takes AWS API calls, named by the `X-Amz-Target` header")
        rid = aws.request_id()
        try:
            body = await read_body(request)
            why = auth_error(request, body, token)
            if why:
                raise aws.AwsError("UnrecognizedClientException", why, 403)
            put, answer = aws.handle(streams, target, body)
            if put is not None:
                try:
                    await asyncio.wrap_future(put.durable)
                except LogClosed as exc:
                    raise aws.AwsError("ServiceUnavailableException", str(exc), 503) from None
        except BodyTooLarge:
            return _aws(aws.AwsError("InvalidArgumentException", "request body over 16 MiB").body(), rid, 413)
        except aws.AwsError as exc:
            return _aws(exc.body(), rid, exc.status, error=exc.code)
        return _aws(answer(), rid)

    return [
        Route("/streams/{name}", post_records, methods=["POST"], name="streams:post"),
        Route("/", aws_call, methods=["POST"], name="streams:aws"),
    ]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _aws(doc: dict[str, Any], rid: str, status: int = 200, *, error: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": rid}
    if error:
        headers["x-amzn-ErrorType"] = error
    return Response(json.dumps(doc, separators=(",", ":")), status_code=status, media_type=AMZ_JSON, headers=headers)
