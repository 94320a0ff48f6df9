"""Loopback servers for object-storage tests: moto's S3 server and a requester-pays proxy in front of it.

moto does not enforce requester pays, so the proxy answers 403 AccessDenied (the real buckets' answer)
to every request without ``x-amz-request-payer: requester`` and forwards the rest unchanged.
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "liqf-test-key",
    "AWS_SECRET_ACCESS_KEY": "liqf-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class MotoServer:
    def __init__(self) -> None:
        exe = Path(sys.executable).parent / "moto_server"
        if not exe.exists():
            pytest.skip("moto_server is not installed (uv sync installs the dev group)")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_port(self.port)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )

    def bucket(self, name: str) -> str:
        c = self.client()
        try:
            c.create_bucket(Bucket=name)
        except c.exceptions.BucketAlreadyOwnedByYou:
            pass
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        out, token = [], None
        c = self.client()
        while True:
            kw = {"Bucket": bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            page = c.list_objects_v2(**kw)
            out += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Anonymous users cannot invoke requests against Requester Pays buckets</Message></Error>"
)


class RequesterPaysProxy:
    """Forwards to ``upstream`` only requests that carry ``x-amz-request-payer: requester``."""

    def __init__(self, upstream_port: int) -> None:
        self.denied = 0
        self.forwarded = 0
        self.cuts = 0  # this many GETs send only half their body, then close the connection
        self.ranges: list[str] = []  # Range headers of forwarded GETs
        self.access_keys: set[str] = set()  # key ids of the signed requests (SigV4 Credential=<key>/...)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                signed = re.search(r"Credential=([^/]+)/", self.headers.get("Authorization", ""))
                if signed:
                    proxy.access_keys.add(signed.group(1))
                if self.headers.get("x-amz-request-payer", "").lower() != "requester":
                    proxy.denied += 1
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(DENIED)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(DENIED)
                    return
                proxy.forwarded += 1
                if self.command == "GET" and self.headers.get("Range"):
                    proxy.ranges.append(self.headers["Range"])
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                conn.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
                resp = conn.getresponse()
                data = resp.read()
                cut = len(data) // 2 if self.command == "GET" and proxy.cuts > 0 and len(data) > 1 else None
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                if cut is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data[:cut] if cut is not None else data)
                if cut is not None:
                    proxy.cuts -= 1
                    self.close_connection = True
                conn.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="session")
def moto():
    server = MotoServer()
    yield server
    server.stop()


def no_aws_config(monkeypatch, tmp_path: Path) -> None:
    """Nothing of this machine's AWS setup reaches a test: no profile files, no instance metadata probe."""
    for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    no_aws_config(monkeypatch, tmp_path)
    for k, v in CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    return CREDENTIALS


@pytest.fixture
def aws_profile(monkeypatch, tmp_path):
    """Credentials only in a profile file (``AWS_PROFILE`` names the profile; no AWS_* key variables), as a
    person with ``~/.aws/credentials`` has them; returns the profile's key id."""
    no_aws_config(monkeypatch, tmp_path)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k, raising=False)
    key = "AKIALIQFPROFILE00001"
    (tmp_path / "aws-credentials").write_text(
        f"[liqf-research]\naws_access_key_id = {key}\naws_secret_access_key = liqf-profile-secret\n"
    )
    (tmp_path / "aws-config").write_text("[profile liqf-research]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_PROFILE", "liqf-research")
    for k in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(k, raising=False)
    return key


def have_redis() -> str | None:
    return shutil.which("redis-server")
