"""Walk an archive and prove it is what the sink wrote (``gatekeeper archive verify``).

For every chain (Kinesis shard) the digests are checked in order: each signature over the
CloudTrail-style string (see :func:`~gatekeeper.audit.archive.signing_string`), each digest
naming its predecessor and that predecessor's signature, and the object links recomputed from
the chain's genesis. Then every listed object is fetched and hashed. Finally every object under
``events/`` must be listed by some digest, or be one the sink wrote after its last digest (the
state's ``pending`` list: reported, not a finding, but held to the SHA-256 the state recorded).

Findings name the object: ``modified`` (bytes changed), ``deleted``, ``reordered`` (an object
holds the bytes another key should hold: swapped or moved objects), ``inserted`` (not written
by the sink), and for digests ``digest_invalid`` / ``digest_missing`` / ``chain_broken``.

Two outcomes are not a list of findings: when *no* digest verifies with the key the operator
named, the report is one ``digest_invalid`` finding saying so (the wrong key, or every digest
re-signed), not one per digest and object; and an archive with nothing in it (no digest, no
object: usually a wrong bucket or prefix) is not ``ok``: :attr:`VerifyReport.empty`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from gatekeeper.audit.archive import (
    Layout,
    ShardState,
    chain_link,
    genesis_link,
    sha256_hex,
    signing_string,
)
from gatekeeper.audit.signer import verify_signature
from gatekeeper.audit.store import ObjectStore

FindingKind = Literal[
    "modified", "deleted", "reordered", "inserted", "digest_invalid", "digest_missing",
    "chain_broken",
]  # fmt: skip
PublicKeys = Callable[[str], bytes]
"""Public key PEM for a signing key id (a fixed PEM file, or KMS GetPublicKey)."""
Progress = Callable[[int, int], None]
"""Called with (objects checked, objects to check)."""


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    key: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.upper():15} {self.key}  ({self.detail})"


@dataclass
class VerifyReport:
    findings: list[Finding] = field(default_factory=list)
    chains: int = 0
    digests: int = 0
    objects: int = 0
    events: int = 0
    pending: list[str] = field(default_factory=list)
    signatures: int = 0
    """Digests whose signature verified."""

    @property
    def empty(self) -> bool:
        """Nothing was found to verify: no digest, no object (a wrong bucket or prefix?)."""
        return self.digests == 0 and self.objects == 0 and not self.pending

    @property
    def ok(self) -> bool:
        """No finding, and something was verified (an empty archive proves nothing)."""
        return not self.findings and not self.empty

    def add(self, kind: FindingKind, key: str, detail: str) -> None:
        self.findings.append(Finding(kind, key, detail))


@dataclass(frozen=True, slots=True)
class _Expected:
    key: str
    sha256: str


def check_public_key(pem: bytes) -> None:
    """Raise ``ValueError`` unless ``pem`` is an RSA public key (as digests are signed)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key (digests are signed with RSA)")


def verify_archive(
    store: ObjectStore,
    public_keys: PublicKeys,
    layout: Layout | None = None,
    *,
    progress: Progress | None = None,
) -> VerifyReport:
    layout = layout or Layout()
    report = VerifyReport()
    expected: list[_Expected] = []
    digest_keys: dict[str, list[str]] = defaultdict(list)
    for key in store.list(layout.digests):
        chain = key[len(layout.digests) :].split("/", 1)[0]
        digest_keys[chain].append(key)
    states = _states(store, layout)
    for chain in sorted(set(digest_keys) | set(states)):
        report.chains += 1
        expected += _verify_chain(
            store, public_keys, layout, chain, sorted(digest_keys.get(chain, [])), states, report
        )
    if report.digests and report.signatures == 0 and _all_unsigned(report):
        # One cause, not hundreds of findings: every digest (and so every object) would fail.
        where = report.findings[0].key if report.digests == 1 else layout.digests
        report.findings = [
            Finding(
                "digest_invalid",
                where,
                f"no digest verifies with this key ({report.digests} digest(s) checked): "
                "the wrong --public-key/--kms, or every digest edited or re-signed",
            )
        ]
        return report
    listed = {item.key for item in expected}
    # Objects newer than the last digest are held to the hashes the sink's state recorded: not
    # signed yet, but an edit or a deletion there must not pass as "pending".
    unsigned = [
        _Expected(entry.key, entry.sha256)
        for state in states.values()
        for entry in state.pending
        if entry.key not in listed
    ]
    by_sha = {item.sha256: item.key for item in (*expected, *unsigned)}
    total = len(expected) + len(unsigned)
    for done, item in enumerate((*expected, *unsigned), start=1):
        if progress is not None:
            progress(done, total)
        signed = item.key in listed
        found = store.get(item.key)
        if found is None:
            where = "a signed digest" if signed else "the sink's state (pending)"
            report.add("deleted", item.key, f"listed in {where}, missing from the archive")
            continue
        actual = sha256_hex(found.body)
        if signed:
            report.objects += 1
        if actual == item.sha256:
            report.events += _count_lines(found.body) if signed else 0
        elif actual in by_sha:
            report.add("reordered", item.key, f"holds the bytes of {by_sha[actual]}")
        else:
            report.add("modified", item.key, f"sha256 {actual[:16]}… != digest {item.sha256[:16]}…")
    pending = {entry.key for state in states.values() for entry in state.pending}
    for key in store.list(layout.events):
        if key in listed:
            continue
        if key in pending:
            report.pending.append(key)
        else:
            report.add("inserted", key, "not written by the sink (in no digest, not pending)")
    return report


_BAD_SIGNATURE = "signature does not verify (digest edited or forged)"


def _all_unsigned(report: VerifyReport) -> bool:
    """Every digest failed on its signature alone (not on an unreadable document)."""
    bad = [f for f in report.findings if f.kind == "digest_invalid"]
    return len(bad) == report.digests and all(f.detail == _BAD_SIGNATURE for f in bad)


def _states(store: ObjectStore, layout: Layout) -> dict[str, ShardState]:
    states: dict[str, ShardState] = {}
    for key in store.list(layout.state):
        found = store.get(key)
        if found is not None:
            state = ShardState.model_validate_json(found.body)
            states[state.chain] = state
    return states


def _verify_chain(
    store: ObjectStore,
    public_keys: PublicKeys,
    layout: Layout,
    chain: str,
    keys: list[str],
    states: dict[str, ShardState],
    report: VerifyReport,
) -> list[_Expected]:
    expected: list[_Expected] = []
    previous_key: str | None = None
    previous_signature: str | None = None
    link = genesis_link(chain)
    index = 0
    for key in keys:
        found = store.get(key)
        if found is None:  # listed a moment ago
            report.add("digest_missing", key, "vanished while verifying")
            continue
        report.digests += 1
        try:
            document: dict[str, Any] = json.loads(found.body)
            signature = found.metadata["signature"]
            key_id = document["signing"]["key_id"]
            message = signing_string(
                document["end_time"],
                store.bucket,
                key,
                sha256_hex(found.body),
                document["previous_digest_signature"],
            )
            valid = verify_signature(public_keys(key_id), message, bytes.fromhex(signature))
        except (ValueError, KeyError, TypeError) as exc:
            report.add("digest_invalid", key, f"unreadable digest: {exc}")
            continue
        if not valid:
            report.add("digest_invalid", key, _BAD_SIGNATURE)
            continue
        report.signatures += 1
        index += 1
        if document["index"] != index or document["chain"] != chain:
            missing = layout.digest_key(chain, index)
            report.add("digest_missing", missing, f"deleted: {key} is #{document['index']}")
            index = document["index"]
        if (document["previous_digest_key"], document["previous_digest_signature"]) != (
            previous_key,
            previous_signature,
        ):
            report.add("chain_broken", key, f"does not follow {previous_key}")
        if document["start_link"] != link:
            report.add("chain_broken", key, "objects do not continue the previous digest's chain")
        link = document["start_link"]
        for entry in document["objects"]:
            link = chain_link(link, entry["key"], entry["sha256"])
            if link != entry["link"]:
                report.add("chain_broken", entry["key"], "link does not follow its predecessor")
                link = entry["link"]
            expected.append(_Expected(entry["key"], entry["sha256"]))
        previous_key, previous_signature = key, signature
    state = states.get(chain)
    if state is not None and state.last_digest_key != previous_key:
        report.add(
            "digest_missing",
            state.last_digest_key or layout.digest_key(chain, 1),
            f"the sink's last digest is {state.last_digest_key}; found up to {previous_key}",
        )
    return expected


def _count_lines(body: bytes) -> int:
    import gzip

    try:
        return sum(1 for row in gzip.decompress(body).split(b"\n") if row)
    except OSError:
        return 0
