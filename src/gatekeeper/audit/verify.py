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

Freshness and completeness (digest version 2, see :mod:`gatekeeper.audit.archive`):

- ``stale``: given ``now``, every chain's newest digest must be at most ``max_age`` old
  (default twice the interval the digests name): the sink signs a digest per interval even
  when idle, so an old newest digest means digests were deleted (a rollback) or the sink
  stopped;
- ``state_missing`` / ``state_invalid``: the chain state must exist, carry a valid signature
  and continue the newest digest exactly (digest index and key, chain head over its pending
  objects, object count); ``state_recovered``: the sink found its state missing or forged
  and rebuilt it from a digest (the digest says so);
- ``gap``: Kinesis records the event source mapping gave up on and nobody replayed yet;
- on a versioned bucket, every version and delete marker is looked at: a delete marker over an
  archive key is ``deleted`` (the version it hides, kept by Object Lock, is named), and a
  write-once key with more than one version is ``overwritten``.

Archives written before digest version 2 still verify; :attr:`VerifyReport.notes` says which
chains predate these checks (a stale version 1 chain is a note, not a finding).
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
    state_signing_string,
)
from gatekeeper.audit.signer import verify_signature
from gatekeeper.audit.store import ObjectStore, StoredObject

FindingKind = Literal[
    "modified", "deleted", "reordered", "inserted", "overwritten", "digest_invalid",
    "digest_missing", "chain_broken", "state_missing", "state_invalid", "state_recovered",
    "stale", "gap",
]  # fmt: skip
DEFAULT_INTERVAL = 3600.0
"""The sink's digest interval when no digest names one (version 1 digests)."""
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
    notes: list[str] = field(default_factory=list)
    """What was not checked, and why (old formats, an unversioned bucket, replayed gaps)."""
    max_age: float | None = None
    """The freshness bound applied (seconds), None when freshness was not checked."""

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


@dataclass
class _Chain:
    """What the digest walk of one chain established."""

    expected: list[_Expected] = field(default_factory=list)
    newest_key: str | None = None
    newest: dict[str, Any] | None = None
    link: str = ""


@dataclass(frozen=True, slots=True)
class _State:
    key: str
    state: ShardState | None
    stored: StoredObject
    bucket: str


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
    now: float | None = None,
    max_age: float | None = None,
) -> VerifyReport:
    """Verify the archive under ``layout``; with ``now``, also that every chain's newest digest
    is at most ``max_age`` seconds old (default: twice the interval the digests name)."""
    layout = layout or Layout()
    report = VerifyReport()
    expected: list[_Expected] = []
    digest_keys: dict[str, list[str]] = defaultdict(list)
    for key in store.list(layout.digests):
        chain = key[len(layout.digests) :].split("/", 1)[0]
        digest_keys[chain].append(key)
    states = _states(store, layout)
    walked: dict[str, _Chain] = {}
    for chain in sorted(set(digest_keys) | set(states)):
        report.chains += 1
        walked[chain] = _verify_chain(
            store, public_keys, layout, chain, sorted(digest_keys.get(chain, [])), states, report
        )
        expected += walked[chain].expected
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
    for chain, walk in walked.items():
        _check_state(public_keys, layout, chain, walk, states.get(chain), report)
    if now is not None:
        report.max_age = max_age if max_age is not None else _default_max_age(walked)
        for chain, walk in walked.items():
            _check_fresh(chain, walk, states.get(chain), now, report.max_age, report)
    listed = {item.key for item in expected}
    # Objects newer than the last digest are held to the hashes the sink's state recorded: not
    # signed yet, but an edit or a deletion there must not pass as "pending".
    pending_entries = [
        entry for found in states.values() if found.state for entry in found.state.pending
    ]
    unsigned = [_Expected(e.key, e.sha256) for e in pending_entries if e.key not in listed]
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
    pending = {entry.key for entry in pending_entries}
    for key in store.list(layout.events):
        if key in listed:
            continue
        if key in pending:
            report.pending.append(key)
        else:
            report.add("inserted", key, "not written by the sink (in no digest, not pending)")
    _check_versions(store, layout, report)
    return report


def _default_max_age(walked: dict[str, _Chain]) -> float:
    intervals = [
        float(walk.newest.get("interval_seconds") or 0)
        for walk in walked.values()
        if walk.newest is not None
    ]
    interval = max(intervals, default=0.0) or DEFAULT_INTERVAL
    return 2 * interval


def _check_state(
    public_keys: PublicKeys,
    layout: Layout,
    chain: str,
    walk: _Chain,
    found: _State | None,
    report: VerifyReport,
) -> None:
    """The state exists, is the sink's (signature) and continues the newest digest exactly."""
    newest = walk.newest
    v2 = newest is not None and newest.get("version", 1) >= 2
    if found is None:
        if newest is not None:
            report.add(
                "state_missing",
                layout.state_key(chain),
                f"the chain has digests up to {walk.newest_key} but no state: deleted",
            )
        return
    state = found.state
    if state is None:
        report.add("state_invalid", found.key, "not a chain state (unreadable)")
        return
    signature = found.stored.metadata.get("signature")
    if signature is None:
        if v2 or state.state_version >= 2:
            report.add("state_invalid", found.key, "unsigned: the sink signs its state")
            return
        report.notes.append(f"{chain}: the state predates signed states (digest version 1)")
    else:
        message = state_signing_string(found.bucket, found.key, sha256_hex(found.stored.body))
        try:
            key_id = found.stored.metadata.get("key-id", "")
            valid = verify_signature(public_keys(key_id), message, bytes.fromhex(signature))
        except (ValueError, TypeError):
            valid = False
        if not valid:
            report.add("state_invalid", found.key, "signature does not verify (state edited)")
            return
    for incident in state.incidents:
        report.add("state_recovered", found.key, f"{incident} (not digested yet)")
    if newest is None or state.last_digest_key != walk.newest_key:
        return  # no digest yet, or another one than the newest (digest_missing says so)
    link = walk.link
    for entry in state.pending:
        if entry.prev != link or chain_link(link, entry.key, entry.sha256) != entry.link:
            report.add(
                "state_invalid", found.key, f"pending {entry.key} does not continue the chain"
            )
            return
        link = entry.link
    problems = []
    if state.head != link:
        problems.append("its chain head is not the newest digest's followed by its pending list")
    if state.digest_count != newest["index"]:
        problems.append(f"digest #{state.digest_count}, the newest is #{newest['index']}")
    total = newest.get("objects_total")
    if v2 and total is not None and state.objects_written != total + len(state.pending):
        problems.append(
            f"{state.objects_written} objects written, the digest counts {total} "
            f"+ {len(state.pending)} pending"
        )
    if problems:
        report.add("state_invalid", found.key, "; ".join(problems))


def _check_fresh(
    chain: str,
    walk: _Chain,
    found: _State | None,
    now: float,
    max_age: float,
    report: VerifyReport,
) -> None:
    from datetime import datetime

    newest = walk.newest
    state = found.state if found is not None else None
    if newest is None:
        since = state.pending_since if state is not None else None
        if since is not None and now - since > max_age:
            report.add(
                "stale",
                chain,
                f"no digest of {chain}, though objects wait since {human_duration(now - since)} "
                f"ago (at most {human_duration(max_age)} expected)",
            )
        return
    age = now - datetime.fromisoformat(newest["end_time"]).timestamp()
    if age <= max_age:
        return
    detail = (
        f"the newest digest of {chain} is {human_duration(age)} old (at most "
        f"{human_duration(max_age)} expected: the sink signs one per interval, even idle): "
        "newer digests deleted (a rollback), or the sink or its heartbeat stopped"
    )
    state_v2 = state is not None and state.state_version >= 2
    if newest.get("version", 1) >= 2 or state_v2:
        report.add("stale", walk.newest_key or chain, detail)
    else:
        report.notes.append(f"{chain}: digests predate version 2 (no heartbeat): {detail}")


def human_duration(seconds: float) -> str:
    """``45m``, ``3h``, ``6d2h``: how old, for a finding."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d{hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h{mins}m" if mins else f"{hours}h"
    return f"{mins}m" if mins else f"{int(seconds)}s"


def _check_versions(store: ObjectStore, layout: Layout, report: VerifyReport) -> None:
    """Delete markers over archive keys and write-once keys written twice (versioned bucket)."""
    versioned = getattr(store, "versioned", None)
    versions = getattr(store, "versions", None)
    if versioned is None or versions is None:
        return
    try:
        enabled = versioned()
    except Exception:  # an operator may lack s3:GetBucketVersioning
        report.notes.append("bucket versioning unknown (no s3:GetBucketVersioning): not checked")
        return
    if not enabled:
        report.notes.append(
            "bucket not versioned: a deleted object leaves nothing behind (enable versioning "
            "and Object Lock to keep what is deleted)"
        )
        return
    by_key: dict[str, list[Any]] = defaultdict(list)
    try:
        for version in versions(layout.prefix):
            by_key[version.key].append(version)
    except Exception as exc:  # an operator may lack s3:ListBucketVersions
        report.notes.append(
            f"versions not listed ({type(exc).__name__}; needs s3:ListBucketVersions): delete "
            "markers and overwritten objects not checked"
        )
        return
    areas = (layout.events, layout.quarantine, layout.digests)
    reported = {(f.kind, f.key): i for i, f in enumerate(report.findings)}
    for key, found in sorted(by_key.items()):
        kept = [v for v in found if not v.delete_marker]
        marker = next((v for v in found if v.latest and v.delete_marker), None)
        if marker is not None and (key.startswith(areas) or key.startswith(layout.state)):
            detail = (
                f"hidden by a delete marker ({marker.version_id}); {len(kept)} version(s) still "
                "stored" + (f", the newest {kept[0].version_id}" if kept else "")
                + ": delete the marker to restore it"
            )  # fmt: skip
            kind: FindingKind = "state_missing" if key.startswith(layout.state) else "deleted"
            at = reported.get((kind, key))
            if at is not None:
                report.findings[at] = Finding(kind, key, detail)
            else:
                report.add(kind, key, detail)
        if key.startswith(areas) and len(kept) > 1:
            report.add(
                "overwritten",
                key,
                f"{len(kept)} versions of a write-once key: the oldest is the sink's",
            )


_BAD_SIGNATURE = "signature does not verify (digest edited or forged)"


def _all_unsigned(report: VerifyReport) -> bool:
    """Every digest failed on its signature alone (not on an unreadable document)."""
    bad = [f for f in report.findings if f.kind == "digest_invalid"]
    return len(bad) == report.digests and all(f.detail == _BAD_SIGNATURE for f in bad)


def _states(store: ObjectStore, layout: Layout) -> dict[str, _State]:
    states: dict[str, _State] = {}
    for key in store.list(layout.state):
        found = store.get(key)
        if found is None:
            continue
        chain = key[len(layout.state) :].removesuffix(".json")
        try:
            state: ShardState | None = ShardState.model_validate_json(found.body)
        except ValueError:
            state = None
        states[chain] = _State(key, state, found, store.bucket)
    return states


def _verify_chain(
    store: ObjectStore,
    public_keys: PublicKeys,
    layout: Layout,
    chain: str,
    keys: list[str],
    states: dict[str, _State],
    report: VerifyReport,
) -> _Chain:
    walk = _Chain()
    previous_key: str | None = None
    previous_signature: str | None = None
    link = genesis_link(chain)
    index = 0
    total: int | None = 0
    newest_object: str | None = None
    for key in keys:
        read = _read_digest(store, public_keys, key, report)
        if read is None:
            continue
        document, signature = read
        index += 1
        if document["index"] != index or document["chain"] != chain:
            missing = layout.digest_key(chain, index)
            report.add("digest_missing", missing, f"deleted: {key} is #{document['index']}")
            index = document["index"]
            total = None  # the count across the missing digest is unknown
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
            walk.expected.append(_Expected(entry["key"], entry["sha256"]))
            newest_object = entry["key"]
        if document.get("version", 1) >= 2:
            _check_v2(key, document, total, newest_object, report)
            total = document["objects_total"]
            newest_object = document["newest_object"]
        else:
            total = None
        _digest_news(chain, key, document, report)
        previous_key, previous_signature = key, signature
        walk.newest_key, walk.newest, walk.link = key, document, document["end_link"]
    found_state = states.get(chain)
    state = found_state.state if found_state is not None else None
    if state is not None and state.last_digest_key != previous_key:
        report.add(
            "digest_missing",
            state.last_digest_key or layout.digest_key(chain, 1),
            f"the sink's last digest is {state.last_digest_key}; found up to {previous_key}",
        )
    _report_gaps(chain, walk, state, report)
    return walk


def _read_digest(
    store: ObjectStore, public_keys: PublicKeys, key: str, report: VerifyReport
) -> tuple[dict[str, Any], str] | None:
    """The digest and its signature, if the signature verifies (else a finding)."""
    found = store.get(key)
    if found is None:  # listed a moment ago
        report.add("digest_missing", key, "vanished while verifying")
        return None
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
        return None
    if not valid:
        report.add("digest_invalid", key, _BAD_SIGNATURE)
        return None
    report.signatures += 1
    return document, signature


def _digest_news(chain: str, key: str, document: dict[str, Any], report: VerifyReport) -> None:
    for incident in document.get("incidents", []):
        report.add("state_recovered", key, incident)
    for gap in document.get("gaps_closed", []):
        report.notes.append(
            f"{chain}: records {gap['first']}..<{gap['before']} given up by the event "
            f"source mapping were replayed (closed {gap['closed']})"
        )


def _report_gaps(chain: str, walk: _Chain, state: ShardState | None, report: VerifyReport) -> None:
    """Open gaps of the newest digest and of the state (newer): records nobody archived."""
    gaps = {gap["first"]: gap for gap in (walk.newest or {}).get("gaps", [])}
    if state is not None:
        gaps.update({gap.first: gap.model_dump(mode="json") for gap in state.gaps})
        for closed in state.gaps_closed:
            gaps.pop(closed.first, None)
            report.notes.append(
                f"{chain}: records {closed.first}..<{closed.before} were replayed (closed "
                f"{closed.closed}, not digested yet)"
            )
    for first, gap in sorted(gaps.items()):
        report.add(
            "gap",
            chain,
            f"Kinesis records {first}..<{gap['before']}: {len(gap['missing'])} record(s) the "
            "event source mapping gave up on, not archived: replay them from its on-failure "
            "destination (gatekeeper archive replay)",
        )


def _check_v2(
    key: str,
    document: dict[str, Any],
    total: int | None,
    newest_object: str | None,
    report: VerifyReport,
) -> None:
    """A version 2 digest's count and newest object follow from its predecessor's."""
    count = len(document["objects"])
    if total is not None and document["objects_total"] != total + count:
        report.add(
            "chain_broken",
            key,
            f"counts {document['objects_total']} objects, the chain has {total} + {count}",
        )
    if document["newest_object"] != newest_object:
        report.add(
            "chain_broken", key, f"names {document['newest_object']} as newest, not {newest_object}"
        )


def _count_lines(body: bytes) -> int:
    import gzip

    try:
        return sum(1 for row in gzip.decompress(body).split(b"\n") if row)
    except OSError:
        return 0
