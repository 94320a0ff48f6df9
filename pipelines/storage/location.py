"""``s3://bucket/prefix`` URLs and object keys that are safe to mirror onto a local path."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.=+-]{1,200}$")


class UrlError(ValueError):
    """Not an object-storage URL this tool understands."""


@dataclass(frozen=True)
class ObjectUrl:
    bucket: str
    prefix: str = ""  # no leading or trailing slash

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, relative: str) -> str:
        """The full object key of ``relative`` under this URL's prefix."""
        relative = relative.strip("/")
        return f"{self.prefix}/{relative}" if self.prefix and relative else (self.prefix or relative)

    def child(self, relative: str) -> ObjectUrl:
        return ObjectUrl(self.bucket, self.key(relative))

    def url(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.key(relative)}"


def is_object_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith("s3://")


def parse_url(value: str) -> ObjectUrl:
    if not is_object_url(value):
        raise UrlError(f"{value!r} is not an s3:// URL")
    rest = value[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise UrlError(f"{value!r}: {bucket!r} is not a valid bucket name")
    prefix = prefix.strip("/")
    if prefix:
        safe_key(prefix)
    return ObjectUrl(bucket, prefix)


def safe_key(key: str) -> list[str]:
    """The key's segments; refuses keys that could escape a local mirror (``..``, odd characters)."""
    parts = key.strip("/").split("/")
    for part in parts:
        if part in (".", "..") or not _KEY_SEGMENT.match(part):
            raise UrlError(f"refusing object key {key!r}: segment {part!r} cannot shape a local path")
    return parts
