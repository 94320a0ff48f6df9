"""Object stores built from the environment (standard AWS variables), and errors in one line.

Credentials come only from the environment (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/
``AWS_SESSION_TOKEN``, or a web-identity / container credential provider); they are handed to obstore
and DuckDB and never printed. ``AWS_ENDPOINT_URL`` (or an explicit endpoint) selects any
S3-compatible server.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass

import obstore.exceptions as oe
from obstore.store import S3Store

from pipelines.storage.location import ObjectUrl

_CREDENTIAL_SOURCES = (
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


class StorageError(RuntimeError):
    """An object-storage failure, as one line saying what to do next."""


@dataclass(frozen=True)
class StoreSettings:
    endpoint: str | None = None  # None: AWS_ENDPOINT_URL, else AWS itself
    requester_pays: bool = False
    region: str | None = None

    def resolved_endpoint(self) -> str | None:
        return self.endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None

    def resolved_region(self) -> str:
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def check_credentials() -> None:
    """Fail fast (instead of probing instance metadata) when the environment holds no AWS credentials."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return
    if any(os.environ.get(v) for v in _CREDENTIAL_SOURCES):
        return
    raise StorageError(
        "no AWS credentials in the environment: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "(and AWS_SESSION_TOKEN for temporary keys)"
    )


def open_store(url: ObjectUrl, settings: StoreSettings | None = None) -> S3Store:
    """An obstore S3 store rooted at ``url`` (bucket and prefix)."""
    settings = settings or StoreSettings()
    check_credentials()
    endpoint = settings.resolved_endpoint()
    config: dict = {"region": settings.resolved_region()}
    client: dict = {"connect_timeout": "5s", "timeout": "300s"}
    if endpoint:
        config["endpoint"] = endpoint
        config["virtual_hosted_style_request"] = False
        if endpoint.startswith("http://"):
            client["allow_http"] = True
    if settings.requester_pays:
        config["request_payer"] = True
    return S3Store(
        url.bucket,
        prefix=url.prefix or None,
        config=config,
        client_options=client,
        retry_config={"max_retries": 3, "retry_timeout": dt.timedelta(seconds=20)},
    )


_SECRET_LIKE = re.compile(r"(?i)(secret|signature|credential|x-amz-security-token)[=:][^\s&,]+")


def storage_error(exc: BaseException, where: str, settings: StoreSettings | None = None) -> StorageError:
    """Translate an obstore exception on ``where`` (an s3:// URL) into one actionable line."""
    settings = settings or StoreSettings()
    text = str(exc)
    endpoint = settings.resolved_endpoint() or "AWS S3"
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, oe.PermissionDeniedError) or "AccessDenied" in text or "403" in text:
        if "requester" in text.lower() or not settings.requester_pays:
            return StorageError(
                f"access denied on {where} (HTTP 403): requester-pays buckets need AWS credentials with S3 read "
                "access and the requester-pays header; keep requester pays on (the default for Hyperliquid "
                "buckets) and set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        return StorageError(f"access denied on {where} (HTTP 403): check that your AWS credentials may read it")
    if isinstance(exc, oe.UnauthenticatedError) or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return StorageError(
            f"{endpoint} rejected the AWS credentials for {where}: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    if "NoSuchBucket" in text:
        return StorageError(f"bucket of {where} does not exist at {endpoint}: create it or fix the URL")
    if isinstance(exc, oe.NotFoundError):
        return StorageError(f"{where} not found at {endpoint}: check the URL (and the date/hour)")
    if any(s in text for s in ("Connection refused", "error sending request", "dns error", "timed out", "tcp connect")):
        return StorageError(
            f"cannot reach {endpoint} for {where}: check --lake-endpoint/--endpoint-url or AWS_ENDPOINT_URL"
        )
    first = _SECRET_LIKE.sub(r"\1=<redacted>", text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
    return StorageError(f"object storage failed on {where}: {first[:300]}")
