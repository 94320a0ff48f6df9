"""Object stores built from AWS's standard configuration, and errors in one line.

Credentials come from the standard AWS chain, as the AWS CLI and boto3 find them: the ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` variables, else the profile named by ``AWS_PROFILE`` (or
``default``) in ``~/.aws/credentials`` and ``~/.aws/config`` (``AWS_SHARED_CREDENTIALS_FILE`` and
``AWS_CONFIG_FILE`` move them), SSO sessions, assumed roles, web identity, container and instance roles. They are
handed to obstore (refreshed by botocore when they expire) and to DuckDB, and never printed. ``AWS_ENDPOINT_URL``
(or an explicit endpoint) selects any S3-compatible server.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from typing import Any

import obstore.exceptions as oe
from obstore.store import S3Store

from pipelines.storage.location import ObjectUrl

#: where a person fixes missing or refused credentials
CREDENTIALS_HINT = (
    "set AWS_PROFILE to a profile in ~/.aws/credentials or ~/.aws/config (SSO included: aws sso login), "
    "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys)"
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


@dataclass(frozen=True)
class AwsCredentials:
    """Keys of one moment, from the chain (never printed: the dataclass repr leaves them out)."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)
    method: str = ""  # where botocore found them: env, shared-credentials-file, sso, assume-role, ...


def _session() -> Any:
    """A boto3 session: it reads the environment and the AWS files as they are now (not cached, so a changed
    profile or variable is seen by the next store)."""
    # heavy (boto3, botocore): loaded only when a store is opened
    import boto3

    return boto3.Session()


def _chain(session: Any = None) -> Any:
    """botocore's credentials from the standard chain; a one-line :class:`StorageError` when there are none."""
    # heavy (boto3, botocore): loaded only when a store is opened
    import botocore.exceptions as be

    try:
        found = (session or _session()).get_credentials()
    except be.ProfileNotFound as exc:
        raise StorageError(f"{exc}: {CREDENTIALS_HINT}") from None
    except (be.SSOError, be.TokenRetrievalError, be.UnauthorizedSSOTokenError) as exc:
        raise StorageError(
            f"the AWS SSO session gives no credentials ({type(exc).__name__}): run aws sso login"
        ) from None
    except be.BotoCoreError as exc:
        raise StorageError(f"AWS credentials could not be loaded ({type(exc).__name__}): {CREDENTIALS_HINT}") from None
    if found is None:
        raise StorageError(f"no AWS credentials: {CREDENTIALS_HINT}")
    return found


def check_credentials() -> None:
    """Fail fast, in one line, when the chain finds no AWS credentials."""
    _chain()


def aws_credentials() -> AwsCredentials:
    """The chain's credentials now (for DuckDB's S3 secret, which takes keys, not a provider)."""
    found = _chain()
    frozen = found.get_frozen_credentials()
    return AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token, getattr(found, "method", ""))


def open_store(url: ObjectUrl, settings: StoreSettings | None = None) -> S3Store:
    """An obstore S3 store rooted at ``url`` (bucket and prefix)."""
    # heavy (boto3, botocore): loaded only when a store is opened
    from obstore.auth.boto3 import Boto3CredentialProvider

    settings = settings or StoreSettings()
    session = _session()
    _chain(session)  # none found: one line now, not a failed request later
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
        credential_provider=Boto3CredentialProvider(session),
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
                "buckets) and give credentials: AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
            )
        return StorageError(f"access denied on {where} (HTTP 403): check that your AWS credentials may read it")
    if isinstance(exc, oe.UnauthenticatedError) or "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text:
        return StorageError(
            f"{endpoint} rejected the AWS credentials for {where}: check the profile (AWS_PROFILE) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
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
