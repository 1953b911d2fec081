"""Where the archive lives: a tiny object-store protocol, over S3 and in memory.

The archive logic needs five primitives; keeping them behind a protocol lets the unit tests and
the benchmark run without S3 and lets a test inject exactly one failing write. ``create`` is
write-once (S3 conditional write ``If-None-Match: *``), the basis of idempotent retries: a
retried write of an object that already exists raises :class:`AlreadyExists` instead of
silently replacing it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class AlreadyExists(Exception):
    """A write-once object is already there."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    metadata: dict[str, str]


class ObjectStore(Protocol):
    bucket: str

    def create(self, key: str, body: bytes, metadata: dict[str, str], content_type: str) -> None:
        """Write ``key`` once; raise :class:`AlreadyExists` if it exists."""
        ...

    def put(self, key: str, body: bytes, content_type: str) -> None:
        """Write or replace ``key`` (state and quarantine objects)."""
        ...

    def get(self, key: str) -> StoredObject | None: ...

    def head(self, key: str) -> dict[str, str] | None:
        """The user metadata of ``key``, None if absent."""
        ...

    def list(self, prefix: str) -> Iterator[str]: ...


class S3ObjectStore:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._s3 = client
        self.bucket = bucket

    def create(self, key: str, body: bytes, metadata: dict[str, str], content_type: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                Metadata=metadata,
                ContentType=content_type,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise AlreadyExists(key) from None
            raise

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        return StoredObject(response["Body"].read(), dict(response.get("Metadata", {})))

    def head(self, key: str) -> dict[str, str] | None:
        from botocore.exceptions import ClientError

        try:
            response = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return None
            raise
        return dict(response.get("Metadata", {}))

    def list(self, prefix: str) -> Iterator[str]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item["Key"]


class MemoryObjectStore:
    """A dict; for unit tests, the benchmark and anything that must not touch S3."""

    def __init__(self, bucket: str = "memory") -> None:
        self.bucket = bucket
        self.objects: dict[str, StoredObject] = {}

    def create(self, key: str, body: bytes, metadata: dict[str, str], content_type: str) -> None:
        if key in self.objects:
            raise AlreadyExists(key)
        self.objects[key] = StoredObject(body, dict(metadata))

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = StoredObject(body, {})

    def get(self, key: str) -> StoredObject | None:
        return self.objects.get(key)

    def head(self, key: str) -> dict[str, str] | None:
        found = self.objects.get(key)
        return None if found is None else dict(found.metadata)

    def list(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))
