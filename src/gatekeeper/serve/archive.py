"""The audit pipeline of ``gatekeeper serve``, locally: the same sink code into a folder.

The authorizer writes one audit log line per decision to ``audit.jsonl`` (as it does to
CloudWatch Logs); :class:`LocalArchiver` tails that file and sends new lines, shaped as a
CloudWatch Logs subscription delivered through Kinesis, to
:class:`~gatekeeper.audit.sink.AuditSink` with an :class:`~gatekeeper.audit.archive.ArchiveWriter`
over a :class:`DirectoryObjectStore`: gzip JSON Lines, hash chain, signed digests, exactly as
in S3. ``gatekeeper archive verify --dir <state>/archive --public-key
<state>/archive-public-key.pem --max-age off`` checks it.

The digest signing key is a local RSA key in the state directory (mode 0600), its public half
beside it; the position in ``audit.jsonl`` is kept in ``archive-position.json`` so a restart
neither skips nor repeats lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gatekeeper.audit.store import AlreadyExists, StoredObject, check_precondition

BUCKET = "gatekeeper-local-archive"
"""The name signatures bind an archive to (S3: the bucket); the same wherever the folder is."""
META = ".gatekeeper-meta"
ARCHIVE_DIR = "archive"
SIGNING_KEY = "archive-signing-key.pem"
PUBLIC_KEY = "archive-public-key.pem"
POSITION = "archive-position.json"


class DirectoryObjectStore:
    """:class:`~gatekeeper.audit.store.ObjectStore` over a folder: ``<root>/<key>`` holds the
    body, ``<root>/.gatekeeper-meta/<key>.json`` the metadata. Write-once creates use
    ``O_EXCL``; one writer at a time (one ``serve`` process), like a Kinesis shard."""

    def __init__(self, root: Path, bucket: str = BUCKET) -> None:
        self.root = root
        self.bucket = bucket

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..", META) for p in parts):
            raise ValueError(f"not an object key: {key!r}")
        return self.root.joinpath(*parts)

    def _meta(self, key: str) -> Path:
        return self.root / META / f"{key}.json"

    def create(self, key: str, body: bytes, metadata: dict[str, str], content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_meta(key, metadata, content_type)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise AlreadyExists(key) from None
        with os.fdopen(descriptor, "wb") as out:
            out.write(body)

    def put(
        self,
        key: str,
        body: bytes,
        content_type: str,
        metadata: dict[str, str] | None = None,
        if_match: str | None = None,
    ) -> str | None:
        check_precondition(key, self.get(key), if_match)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._write_meta(key, metadata or {}, content_type)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(body)
        temporary.replace(path)
        return _etag(body)

    def _write_meta(self, key: str, metadata: dict[str, str], content_type: str) -> None:
        meta = self._meta(key)
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"metadata": metadata, "content_type": content_type}))

    def get(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            body = path.read_bytes()
        except FileNotFoundError:
            return None
        return StoredObject(body, self.head(key) or {}, _etag(body))

    def head(self, key: str) -> dict[str, str] | None:
        if not self._path(key).exists():
            return None
        try:
            data = json.loads(self._meta(key).read_text())
        except (OSError, ValueError):
            return {}
        return dict(data.get("metadata") or {})

    def list(self, prefix: str) -> Iterator[str]:
        if not self.root.exists():
            return
        keys = []
        for path in self.root.rglob("*"):
            relative = path.relative_to(self.root)
            if path.is_file() and relative.parts[0] != META and not path.name.endswith(".tmp"):
                key = "/".join(relative.parts)
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)


def _etag(body: bytes) -> str:
    return f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'


def signer(state_dir: Path) -> Any:
    """The local digest signer, its key kept in the state directory (public half beside it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from gatekeeper.audit.signer import LocalRsaSigner

    path = state_dir / SIGNING_KEY
    if path.exists():
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: not an RSA private key")
    else:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(pem)
    local = LocalRsaSigner(private, "gatekeeper-serve-local")
    (state_dir / PUBLIC_KEY).write_bytes(local.public_key_pem())
    return local


class LocalArchiver:
    """Tails ``audit.jsonl`` into the local archive every ``interval`` seconds and at stop."""

    def __init__(self, state_dir: Path, *, interval: float = 2.0) -> None:
        from gatekeeper.audit.archive import ArchiveWriter, Layout
        from gatekeeper.audit.sink import AuditSink

        self.state_dir = state_dir
        self.log = state_dir / "audit.jsonl"
        self.store = DirectoryObjectStore(state_dir / ARCHIVE_DIR)
        writer = ArchiveWriter(
            self.store, signer(state_dir), layout=Layout(""), digest_interval_seconds=0
        )
        self._sink = AuditSink(writer)
        self._interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="audit-archiver", daemon=True)
        self.archived = 0

    def _position(self) -> dict[str, int]:
        try:
            data = json.loads((self.state_dir / POSITION).read_text())
            return {"offset": int(data["offset"]), "records": int(data["records"])}
        except (OSError, ValueError, KeyError, TypeError):
            return {"offset": 0, "records": 0}

    def flush(self) -> int:
        """Archive the lines written since the last call; the number of events archived."""
        from gatekeeper.audit.sink import records_from_event
        from gatekeeper.testing.audit_events import kinesis_event, subscription_payloads

        with self._lock:
            position = self._position()
            try:
                with self.log.open("rb") as handle:
                    handle.seek(position["offset"])
                    data = handle.read()
            except FileNotFoundError:
                return 0
            complete = data[: data.rfind(b"\n") + 1]  # a line being written waits
            lines = [
                line
                for line in complete.decode("utf-8", "replace").splitlines()
                if '"audit"' in line
            ]
            if not complete:
                return 0
            payloads = subscription_payloads(lines) if lines else []
            if payloads:
                event = kinesis_event(payloads, first=position["records"])
                result = self._sink.process(records_from_event(event))
                if result.failed:
                    return 0  # retried from the same position next time
                self.archived += len(result.archived)
            position = {
                "offset": position["offset"] + len(complete),
                "records": position["records"] + len(payloads),
            }
            from gatekeeper.serve.state import write_json

            write_json(self.state_dir / POSITION, position)
            return len(lines)

    def start(self) -> LocalArchiver:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(Exception):  # the next round retries
                self.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with contextlib.suppress(Exception):
            self.flush()
