"""Where the archive lives: a tiny object-store protocol, over S3 and in memory.

The archive logic needs five primitives; keeping them behind a protocol lets the unit tests and
the benchmark run without S3 and lets a test inject exactly one failing write. ``create`` is
write-once (S3 conditional write ``If-None-Match: *``), the basis of idempotent retries: a
retried write of an object that already exists raises :class:`AlreadyExists` instead of
silently replacing it. ``put`` (the chain state) can be conditional on the ETag read
(``If-Match``) or on absence, so two writers of one chain (a batch and the scheduled heartbeat)
never overwrite each other's state: the loser gets :class:`Conflict` and retries.

``versions`` (S3 only, versioned buckets) lists every version and delete marker under a prefix:
a delete marker hides a version that Object Lock keeps, and ``archive verify`` reports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client


class AlreadyExists(Exception):
    """A write-once object is already there."""


class Conflict(Exception):
    """A conditional ``put`` lost: the object changed (or appeared) since it was read."""


ABSENT = "*"
"""``put(..., if_match=ABSENT)``: write only if the key does not exist yet."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    body: bytes
    metadata: dict[str, str]
    etag: str | None = None


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a key, or a delete marker (``body`` absent)."""

    key: str
    version_id: str
    latest: bool
    delete_marker: bool


class ObjectStore(Protocol):
    bucket: str

    def create(self, key: str, body: bytes, metadata: dict[str, str], content_type: str) -> None:
        """Write ``key`` once; raise :class:`AlreadyExists` if it exists."""
        ...

    def put(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
    ) -> str | None:
        """Write or replace ``key`` (the chain state); return its ETag. ``if_match``: the ETag
        read (or :data:`ABSENT`); raise :class:`Conflict` if the object is no longer that."""
        ...

    def get(self, key: str) -> StoredObject | None: ...

    def head(self, key: str) -> dict[str, str] | None:
        """The user metadata of ``key``, None if absent."""
        ...

    def list(self, prefix: str) -> Iterator[str]: ...


class S3ObjectStore:
    """``lock_days``: write-once objects get an Object Lock retention of that many days
    (compliance mode) as they are written, so that neither the sink nor an administrator can
    delete or overwrite a version of an archive object, a quarantine marker or a digest until
    then. Only those: the chain state, rewritten with every batch, is not locked (a bucket's
    default retention would lock every one of its versions). The bucket needs Object Lock
    enabled, the writer ``s3:PutObjectRetention``."""

    def __init__(self, client: S3Client, bucket: str, *, lock_days: int | None = None) -> None:
        self._s3 = client
        self.bucket = bucket
        self.lock_days = lock_days

    def create(self, key: str, body: bytes, metadata: dict[str, str], content_type: str) -> None:
        from datetime import UTC, datetime, timedelta

        from botocore.exceptions import ClientError

        lock: dict[str, Any] = {}
        if self.lock_days:
            until = datetime.now(UTC) + timedelta(days=self.lock_days)
            lock = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                Metadata=metadata,
                ContentType=content_type,
                IfNoneMatch="*",
                **lock,
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
                raise AlreadyExists(key) from None
            raise

    def put(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
    ) -> str | None:
        from botocore.exceptions import ClientError

        condition: dict[str, str] = {}
        if if_match == ABSENT:
            condition["IfNoneMatch"] = ABSENT
        elif if_match is not None:
            condition["IfMatch"] = if_match
        try:
            response = self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                Metadata=metadata or {},
                **condition,  # type: ignore[arg-type]
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"}:
                raise Conflict(key) from None
            raise
        return response.get("ETag")

    def get(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                return None
            raise
        return StoredObject(
            response["Body"].read(), dict(response.get("Metadata", {})), response.get("ETag")
        )

    def get_version(self, key: str, version_id: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            response = self._s3.get_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "NoSuchVersion", "404"}:
                return None
            raise
        return StoredObject(
            response["Body"].read(), dict(response.get("Metadata", {})), response.get("ETag")
        )

    def versioned(self) -> bool:
        """Versioning enabled or suspended: deletions leave delete markers, not nothing."""
        status = self._s3.get_bucket_versioning(Bucket=self.bucket).get("Status")
        return status in {"Enabled", "Suspended"}

    def versions(self, prefix: str) -> Iterator[Version]:
        paginator = self._s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for kept in page.get("Versions", []):
                yield Version(kept["Key"], kept.get("VersionId", "null"), kept["IsLatest"], False)
            for marker in page.get("DeleteMarkers", []):
                yield Version(
                    marker["Key"], marker.get("VersionId", "null"), marker["IsLatest"], True
                )

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
        self.objects[key] = StoredObject(body, dict(metadata), _etag(body))

    def put(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
    ) -> str | None:
        check_precondition(key, self.get(key), if_match)
        etag = _etag(body)
        self.objects[key] = StoredObject(body, dict(metadata or {}), etag)
        return etag

    def get(self, key: str) -> StoredObject | None:
        found = self.objects.get(key)
        if found is not None and found.etag is None:  # written by a test as StoredObject(…)
            found = StoredObject(found.body, found.metadata, _etag(found.body))
        return found

    def head(self, key: str) -> dict[str, str] | None:
        found = self.objects.get(key)
        return None if found is None else dict(found.metadata)

    def list(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))


def check_precondition(key: str, found: StoredObject | None, if_match: str | None) -> None:
    """S3's conditional-write rule for stores that emulate it: :data:`ABSENT` requires no object,
    an ETag requires that very object; raise :class:`Conflict` otherwise."""
    if if_match == ABSENT and found is not None:
        raise Conflict(key)
    if if_match not in (None, ABSENT) and (found is None or found.etag != if_match):
        raise Conflict(key)


def _etag(body: bytes) -> str:
    import hashlib

    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'
