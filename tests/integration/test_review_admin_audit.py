"""Review findings on the admin store and the audit pipeline, each pinned by a test."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import boto3
import pytest
from moto import mock_aws

from gatekeeper import cli
from gatekeeper.admin.audit import Actor, ListAdminAuditEmitter
from gatekeeper.admin.errors import Conflict
from gatekeeper.admin.service import AdminService
from gatekeeper.audit.archive import ArchiveWriter, Layout
from gatekeeper.audit.signer import KmsSigner
from gatekeeper.audit.sink import AuditSink
from gatekeeper.audit.store import MemoryObjectStore, S3ObjectStore
from gatekeeper.audit.verify import verify_archive
from gatekeeper.clock import FakeClock
from gatekeeper.rbac.model import ClaimMapping, Role
from gatekeeper.store import tables
from gatekeeper.store.config_store import InMemoryConfigStore, ItemKey, StoredDoc
from tests.audit_helpers import (
    T0,
    FlakyStore,
    archived_ids,
    direct_event,
    event,
    make_sink,
    public_key,
    run,
)


def test_retry_in_smaller_batches_after_an_adopted_object_archives_each_event_once() -> None:
    """A timeout after the object write but before the state save makes Lambda bisect the batch:
    the first half adopts the object (which also holds the second half's events), so the second
    half must be recognised as archived, not written again under a new key."""
    store = MemoryObjectStore()
    state_puts = Counter[str]()

    def fail(key: str, op: str) -> bool:
        if op == "put" and "/state/" in key:
            state_puts[key] += 1
            return state_puts[key] == 1  # the first state save is lost
        return False

    sink = make_sink(FlakyStore(store, fail))
    events = [event(n) for n in range(4)]
    assert len(run(sink, direct_event(events))) == 4  # everything is retried
    assert run(sink, direct_event(events[:2], first=0)) == []
    assert run(sink, direct_event(events[2:], first=2)) == []
    ids = archived_ids(store)
    assert sorted(ids) == sorted(e.event_id for e in events)


def test_cli_verify_with_kms_trusts_only_the_operators_key(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A digest names its signing key; with ``--kms`` the verifier must not fetch and trust
    whatever key the (possibly forged) digest names: anyone able to write the bucket could
    re-sign a rewritten archive with a KMS key of their own."""
    bucket = "gatekeeper-audit-kms"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        kms = boto3.client("kms", region_name="us-east-1")

        def rsa_key() -> str:
            meta = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
            return meta["Arn"]

        ours, theirs = rsa_key(), rsa_key()
        writer = ArchiveWriter(
            S3ObjectStore(s3, bucket),
            KmsSigner(kms, theirs),  # the forger's archive, signed with the forger's key
            layout=Layout("audit/"),
            clock=FakeClock(T0 + 3600),
            digest_interval_seconds=0,
        )
        assert run(AuditSink(writer), direct_event([event(1), event(2)])) == []
        argv = ["archive", "verify", "--bucket", bucket, "--prefix", "audit/", "--max-age", "off"]
        assert cli.main([*argv, "--kms", ours]) == 1
        assert "DIGEST_INVALID" in capsys.readouterr().out
        assert cli.main([*argv, "--kms", theirs]) == 0


@pytest.mark.parametrize("tamper", ["edit", "delete"])
def test_verify_reports_tampering_with_objects_newer_than_the_last_digest(tamper: str) -> None:
    """With the default hourly digest, the newest objects are only in the sink's state (with
    their SHA-256): editing or deleting one must still be a finding, not a quiet "pending"."""
    memory = MemoryObjectStore()
    sink = make_sink(memory, digest_interval_seconds=3600)
    assert run(sink, direct_event([event(1), event(2)])) == []
    (key,) = [k for k in memory.objects if "/events/" in k]
    if tamper == "edit":
        stored = memory.objects[key]
        memory.objects[key] = type(stored)(stored.body + b"\x00", stored.metadata)
    else:
        del memory.objects[key]
    report = verify_archive(memory, public_key, Layout("audit/"))
    kind = "modified" if tamper == "edit" else "deleted"
    assert [(f.kind, f.key) for f in report.findings] == [(kind, key)]


class _RacingStore(InMemoryConfigStore):
    """Runs ``meanwhile`` once, right after the first read of a claim-mapping item: another
    admin's change landing between this change's validation and its write."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Callable[[], None] | None = None

    def get_doc(self, key: ItemKey) -> StoredDoc | None:
        found = super().get_doc(key)
        if self.meanwhile is not None and key[1].startswith(tables.CLAIMMAP_PREFIX):
            run_now, self.meanwhile = self.meanwhile, None
            run_now()
        return found


def test_a_claim_mapping_cannot_grant_a_role_deleted_while_it_was_validated() -> None:
    """delete_role refuses a role that a claim mapping grants; a mapping validated against the
    snapshot must likewise fail if the configuration changed before it is written."""
    store = _RacingStore()
    service = AdminService(store, emitter=ListAdminAuditEmitter())
    actor = Actor(id="arn:aws:iam::123456789012:user/ops", kind="iam")
    service.put_role("auditor", Role(name="auditor"), if_match=None, actor=actor)
    store.meanwhile = lambda: service.delete_role("auditor", if_match=None, actor=actor)
    mapping = ClaimMapping(claim="groups", value="audit", roles=("auditor",))
    with pytest.raises(Conflict):
        service.create_claim_mapping(mapping, actor=actor)
    snapshot = store.load_snapshot()
    assert "auditor" not in snapshot.roles
    assert snapshot.claim_mappings == ()
