"""An SQS-compatible server for tests: moto in server mode (`moto_server`, from `moto[server]`) on a free loopback
port. No real SQS server installs on these machines; moto implements the API the `sqs` source calls (receive with
long polling and visibility timeouts, batch delete, batch visibility changes) over HTTP, so the source talks to
it exactly as to AWS, through boto3.

    with MotoServer(tmp_path) as sqs:
        url = sqs.create_queue("landing")
        sqs.client().send_message(QueueUrl=url, MessageBody=...)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from landfall.testing.ports import free_port

REGION = "us-east-1"
KEY, SECRET = "testing", "testing"  # moto accepts any credentials


def moto_binary() -> str | None:
    found = shutil.which("moto_server")
    if found:
        return found
    beside = Path(sys.executable).parent / "moto_server"
    return str(beside) if beside.exists() else None


class MotoServer:
    """One `moto_server` on 127.0.0.1; `endpoint_url`, `create_queue`, `client`, `counts`."""

    def __init__(self, workdir: str | os.PathLike[str]) -> None:
        self.workdir = Path(workdir)
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        binary = moto_binary()
        if binary is None:
            raise RuntimeError('`moto_server` not found: pip install "moto[server]" (in landfall\'s "test" extra)')
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.workdir / "moto.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [binary, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}; see {self.workdir / 'moto.log'}")
            try:
                self.client().list_queues()
                return self
            except Exception:  # not up yet
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server not ready after {timeout:.0f} s")

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=Config(retries={"max_attempts": 1}),
        )

    def create_queue(self, name: str, **attributes: str) -> str:
        return self.client().create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def counts(self, queue_url: str) -> tuple[int, int]:
        """(messages visible, messages in flight: received and not yet deleted or visible again)."""
        attrs = self.client().get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.proc = None
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def s3_event(bucket: str, key: str, *, size: int = 0, etag: str = "", event: str = "ObjectCreated:Put") -> dict:
    """An S3 event notification as S3 sends it to SQS (the key URL-encoded, spaces as `+`)."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-12-01T10:00:00.000Z",
                "eventName": event,
                "userIdentity": {"principalId": "EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "EXAMPLE", "x-amz-id-2": "EXAMPLE"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "landfall",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": "0A1B2C"},
                },
            }
        ]
    }


def sns_wrapped(event: dict) -> dict:
    """The same event as SNS delivers it to an SQS subscription (no raw message delivery)."""
    import json

    return {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:landing",
        "Subject": "Amazon S3 Notification",
        "Message": json.dumps(event),
        "Timestamp": "2026-12-01T10:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


def eventbridge_event(bucket: str, key: str, *, size: int = 0, etag: str = "") -> dict:
    """An `Object Created` event as EventBridge delivers it to an SQS target (the key not encoded)."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-12-01T10:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": key, "size": size, "etag": etag, "sequencer": "0A1B2C"},
            "request-id": "EXAMPLE",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }
