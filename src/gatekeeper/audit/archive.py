"""The tamper-evident archive: gzip JSON Lines objects, a hash chain per shard, signed digests.

Modelled on CloudTrail's log file integrity validation:

- every archive object's (and quarantine marker's) SHA-256 is chained to the previous object
  written for the same Kinesis shard: ``link = sha256(previous link \\n key \\n sha256(object))``,
  starting from :func:`genesis_link`; the link and its predecessor are also stored in the
  object's metadata;
- periodically (``digest_interval_seconds``) a digest object lists every object written since
  the previous digest (key, SHA-256, link, positions, event count), names the previous digest
  and its signature, and is signed over
  ``end_time \\n bucket/key \\n hex(sha256(digest)) \\n previous signature`` (SHA256withRSA);
- digest version 2 (:data:`DIGEST_VERSION`) proves freshness and completeness as well: a digest
  is due once the previous one is ``digest_interval_seconds`` old even when nothing was written
  (the scheduled heartbeat, :meth:`ArchiveWriter.heartbeat`, covers idle chains), so a verifier
  knows how recent the newest digest must be (``interval_seconds`` is in the digest); it counts
  the chain's objects (``objects_total``), names the newest (``newest_object``), the positions
  done (``done_through``), the Kinesis records the event source mapping gave up on (``gaps``,
  open until replayed; ``gaps_closed``) and what went wrong with the state (``incidents``);
- the state is signed with the digest key (metadata ``signature`` over
  :func:`state_signing_string`): the sink never signs a pending list it did not write itself.
  A missing, unsigned (once version 2 digests exist) or forged state is rebuilt from the newest
  digest, and the next digest says so (``incidents``).

Object keys are deterministic (chain id + the first Kinesis position in the object) and written
once (``If-None-Match: *``), so a retried batch that finds its object already written adopts it
instead of writing a duplicate; see :class:`ArchiveWriter`. The per-shard :class:`ShardState`
(chain head, archived positions, recent event ids, objects not yet in a digest) is a small JSON
object under ``state/``; the event-source mapping must process each shard serially
(ParallelizationFactor 1), which is what makes a per-shard chain well defined.

Layout under the archive prefix::

    events/dt=YYYY-MM-DD/hour=HH/<chain>.<seq>-<idx>.jsonl.gz   OCSF records (Athena table)
    quarantine/dt=YYYY-MM-DD/hour=HH/<chain>.<seq>-<idx>.json    invalid records + the error
                                                                 (chained like objects; hour of
                                                                 the record's arrival)
    digests/<chain>/<index>.json                                 signed digests
    state/<chain>.json                                           the writer's state
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from gatekeeper.audit.signer import ALGORITHM, Signer, verify_signature
from gatekeeper.audit.store import ABSENT, AlreadyExists, Conflict, ObjectStore
from gatekeeper.clock import Clock, system_clock

Pos = tuple[int, int]
"""A position in a shard: (Kinesis sequence number, index of the audit event in the record)."""

DIGEST_VERSION = 2
"""1: objects and the chain only; 2: also freshness (heartbeats, ``interval_seconds``),
``objects_total``, ``newest_object``, ``done_through``, ``gaps`` and ``incidents``."""
STATE_VERSION = 2
"""1: unsigned; 2: signed (metadata ``signature``)."""
MAX_FAILING = 10_000
"""Sequence numbers remembered as failed, per chain (a gap lists at most these)."""
JSONL_GZ = "application/x-ndjson"


# --- chain arithmetic (pure) -------------------------------------------------------------------
def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def genesis_link(chain: str) -> str:
    return sha256_hex(f"gatekeeper-audit-chain/v1\n{chain}".encode())


def chain_link(previous: str, key: str, object_sha256: str) -> str:
    return sha256_hex(f"{previous}\n{key}\n{object_sha256}".encode())


def signing_string(
    end_time: str, bucket: str, key: str, digest_sha256: str, previous_signature: str | None
) -> bytes:
    """What a digest's signature covers (CloudTrail's string to sign, same order)."""
    return f"{end_time}\n{bucket}/{key}\n{digest_sha256}\n{previous_signature or 'null'}".encode()


def state_signing_string(bucket: str, key: str, body_sha256: str) -> bytes:
    """What a state object's signature covers (domain-separated from digests)."""
    return f"gatekeeper-audit-state/v2\n{bucket}/{key}\n{body_sha256}".encode()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="seconds")


def gzip_lines(lines: Sequence[bytes]) -> bytes:
    """Deterministic gzip (mtime 0): the same events always give the same bytes and SHA-256."""
    return gzip.compress(b"".join(line + b"\n" for line in lines), compresslevel=6, mtime=0)


def chain_id(stream: str, shard_id: str) -> str:
    return f"{stream}.{shard_id}"


EARLIEST_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
LATEST_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z


class OutOfRange(ValueError):
    """An event time the archive does not hold (Athena's partition projection would hide it)."""


def partition(epoch_ms: int) -> str:
    """``dt=YYYY-MM-DD/hour=HH`` of ``epoch_ms``; :class:`OutOfRange` outside 2000..2100."""
    if not EARLIEST_MS <= epoch_ms < LATEST_MS:
        raise OutOfRange(f"time {epoch_ms} ms is outside 2000-01-01..2100-01-01 UTC")
    when = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return f"dt={when:%Y-%m-%d}/hour={when:%H}"


@dataclass(frozen=True)
class Layout:
    prefix: str = ""

    @property
    def events(self) -> str:
        return f"{self.prefix}events/"

    @property
    def quarantine(self) -> str:
        return f"{self.prefix}quarantine/"

    @property
    def digests(self) -> str:
        return f"{self.prefix}digests/"

    @property
    def state(self) -> str:
        return f"{self.prefix}state/"

    def object_key(self, chain: str, part: str, first: Pos) -> str:
        return f"{self.events}{part}/{chain}.{first[0]}-{first[1]}.jsonl.gz"

    def quarantine_key(self, chain: str, part: str, pos: Pos) -> str:
        return f"{self.quarantine}{part}/{chain}.{pos[0]}-{pos[1]}.json"

    def digest_key(self, chain: str, index: int) -> str:
        return f"{self.digests}{chain}/{index:010d}.json"

    def state_key(self, chain: str) -> str:
        return f"{self.state}{chain}.json"


# --- state -------------------------------------------------------------------------------------
class ObjectEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    sha256: str
    prev: str
    link: str
    first: Pos
    last: Pos
    events: int


class Gap(BaseModel):
    """Kinesis records the event source mapping gave up on (retries or record age exhausted):
    sequence numbers the sink reported failed, then saw the mapping move past."""

    first: int = Field(description="The first sequence number given up.")
    before: int = Field(description="The first sequence number delivered after the gap.")
    missing: list[int] = Field(description="Sequence numbers not archived yet (replay them).")
    detected: str
    closed: str | None = None


class ShardState(BaseModel):
    """What the writer remembers about one shard between batches."""

    state_version: int = 1
    chain: str
    head: str
    objects_written: int = 0
    done_through: Pos | None = Field(default=None, description="Every position <= is done.")
    done_ranges: list[tuple[Pos, Pos]] = Field(
        default_factory=list, description="Done runs beyond a failed position (until retried)."
    )
    recent_ids: list[str] = Field(default_factory=list, description="Newest last; dedup window.")
    pending: list[ObjectEntry] = Field(default_factory=list, description="Not yet in a digest.")
    pending_since: float | None = None
    digest_count: int = 0
    last_digest_key: str | None = None
    last_digest_signature: str | None = None
    last_digest_time: str | None = None
    newest_object: str | None = None
    failing: list[int] = Field(
        default_factory=list, description="Sequence numbers reported failed, not archived yet."
    )
    gaps: list[Gap] = Field(default_factory=list, description="Open gaps (see Gap).")
    gaps_closed: list[Gap] = Field(default_factory=list, description="Closed since the digest.")
    incidents: list[str] = Field(default_factory=list, description="Since the last digest.")
    _etag: str | None = PrivateAttr(default=None)

    @classmethod
    def genesis(cls, chain: str) -> ShardState:
        state = cls(chain=chain, head=genesis_link(chain), state_version=STATE_VERSION)
        state._etag = ABSENT
        return state

    def in_gap(self, seq: int) -> bool:
        return any(seq in gap.missing for gap in self.gaps)

    def is_done(self, pos: Pos) -> bool:
        if self.gaps and self.in_gap(pos[0]):
            return False  # given up by the mapping, now replayed
        if self.done_through is not None and pos <= self.done_through:
            return True
        return any(lo <= pos <= hi for lo, hi in self.done_ranges)

    def note_delivery(self, first: int, delivered: set[int], now: float) -> Gap | None:
        """A batch in stream order starts at ``first``: failed sequence numbers below it that it
        does not carry were given up by the event source mapping. Returns the new gap."""
        given_up = sorted(seq for seq in self.failing if seq < first and seq not in delivered)
        if not given_up:
            return None
        self.failing = [seq for seq in self.failing if seq not in set(given_up)]
        gap = Gap(first=given_up[0], before=first, missing=given_up, detected=iso(now))
        self.gaps.append(gap)
        return gap

    def note_outcome(self, failed: set[int], done: set[int], now: float) -> list[Gap]:
        """Remember what failed (until done); close the gaps a replay filled."""
        self.failing = sorted((set(self.failing) | failed) - done)[-MAX_FAILING:]
        closed: list[Gap] = []
        for gap in list(self.gaps):
            gap.missing = [seq for seq in gap.missing if seq not in done]
            if not gap.missing:
                gap.closed = iso(now)
                self.gaps.remove(gap)
                self.gaps_closed.append(gap)
                closed.append(gap)
        return closed

    def record_batch(self, positions: Sequence[tuple[Pos, bool]]) -> None:
        """Advance the done marks after a batch (``positions`` in stream order, with done flag).

        Lambda re-delivers a shard from the first failed record, so the done prefix of the batch
        is never seen again; done runs after a failure are kept as ranges until retried.
        """
        runs: list[tuple[Pos, Pos]] = []
        start: Pos | None = None
        last: Pos | None = None
        for pos, done in positions:
            if done:
                start = pos if start is None else start
                last = pos
            elif start is not None and last is not None:
                runs.append((start, last))
                start = None
        if start is not None and last is not None:
            runs.append((start, last))
        if runs and positions and runs[0][0] == positions[0][0]:
            first_end = runs.pop(0)[1]
            if self.done_through is None or first_end > self.done_through:
                self.done_through = first_end
        ranges = self.done_ranges + runs
        self.done_ranges = [
            r for r in ranges if self.done_through is None or r[1] > self.done_through
        ]

    def remember_ids(self, ids: Sequence[str], window: int) -> None:
        self.recent_ids.extend(ids)
        if len(self.recent_ids) > window:
            del self.recent_ids[: len(self.recent_ids) - window]


@dataclass(frozen=True, slots=True)
class Line:
    """One archived event: its position, id and serialized OCSF record."""

    pos: Pos
    event_id: str
    data: bytes


class ArchiveWriter:
    """Writes objects and digests for one shard at a time, given its :class:`ShardState`."""

    def __init__(
        self,
        store: ObjectStore,
        signer: Signer,
        *,
        layout: Layout | None = None,
        clock: Clock = system_clock,
        digest_interval_seconds: float = 3600.0,
    ) -> None:
        self.store = store
        self.signer = signer
        self.layout = layout or Layout()
        self._clock = clock
        self._digest_interval = digest_interval_seconds
        self._failing: dict[str, set[int]] = {}

    def now(self) -> float:
        return self._clock()

    # --- state ---------------------------------------------------------------------------------
    def load_state(self, chain: str) -> ShardState:
        """The chain's state, if the sink wrote it; else rebuilt from the newest digest.

        A state that is missing while digests exist, unreadable, wrongly signed, or unsigned
        while the chain has version 2 digests was not written by this sink (or was deleted):
        trusting it could sign a forged pending list, and starting over would fork the chain.
        The chain carries on from the newest digest instead, and the incident goes into the
        next digest (``archive verify`` reports it).
        """
        key = self.layout.state_key(chain)
        found = self.store.get(key)
        if found is None:
            newest = self._newest_digest(chain)
            if newest is None or json.loads(newest[1].body).get("index") == 1:
                # a new chain, or one whose first state save failed after its first digest:
                # the retry adopts that digest (and its objects) by their deterministic keys
                state = ShardState.genesis(chain)
                self._merge_failing(state)
                return state
            return self._recover(chain, "state missing", ABSENT, newest=newest)
        try:
            state = ShardState.model_validate_json(found.body)
        except ValueError:
            return self._recover(chain, "state unreadable", found.etag)
        signature = found.metadata.get("signature")
        if signature is None:
            newest = self._newest_digest(chain)
            if newest is not None and json.loads(newest[1].body).get("version", 1) >= 2:
                return self._recover(chain, "state unsigned", found.etag)
            state.incidents = list(state.incidents)
        elif not self._signed(key, found.body, signature) or state.chain != chain:
            return self._recover(chain, "state signature invalid", found.etag)
        state._etag = found.etag
        self._merge_failing(state)
        return state

    def save_state(self, state: ShardState) -> None:
        """Write the signed state, on condition that it is still the one loaded (a concurrent
        writer of the chain, e.g. the heartbeat, makes this raise :class:`Conflict`)."""
        key = self.layout.state_key(state.chain)
        state.state_version = STATE_VERSION
        body = state.model_dump_json().encode()
        message = state_signing_string(self.store.bucket, key, sha256_hex(body))
        metadata = {
            "signature": self.signer.sign(message).hex(),
            "key-id": self.signer.key_id,
            "algorithm": ALGORITHM,
        }
        state._etag = self.store.put(key, body, "application/json", metadata, state._etag)
        self._failing.pop(state.chain, None)

    def remember_failing(self, chain: str, failed: set[int]) -> None:
        """Failed sequence numbers, kept in memory when the state cannot be saved (an S3
        outage): the container's next save of the chain records them."""
        if failed:
            self._failing.setdefault(chain, set()).update(failed)

    def _merge_failing(self, state: ShardState) -> None:
        """Add what this container saw fail and could not save; not what another container
        archived meanwhile (a retry need not land on the same container)."""
        extra = {seq for seq in self._failing.get(state.chain, ()) if not state.is_done((seq, 0))}
        if extra:
            state.failing = sorted(set(state.failing) | extra)[-MAX_FAILING:]

    def _signed(self, key: str, body: bytes, signature: str) -> bool:
        message = state_signing_string(self.store.bucket, key, sha256_hex(body))
        try:
            return verify_signature(self.signer.public_key_pem(), message, bytes.fromhex(signature))
        except ValueError:
            return False

    def _newest_digest(self, chain: str) -> tuple[str, Any] | None:
        keys = sorted(self.store.list(f"{self.layout.digests}{chain}/"))
        for key in reversed(keys):
            found = self.store.get(key)
            if found is not None:
                return key, found
        return None

    def _recover(
        self, chain: str, reason: str, etag: str | None, *, newest: tuple[str, Any] | None = None
    ) -> ShardState:
        newest = newest or self._newest_digest(chain)
        if newest is None:
            state = ShardState.genesis(chain)
            state.incidents.append(f"{reason} at {iso(self._clock())}: no digest, chain restarted")
            state._etag = etag
            self._merge_failing(state)
            return state
        key, found = newest
        document = json.loads(found.body)
        state = ShardState(
            chain=chain,
            head=document["end_link"],
            state_version=STATE_VERSION,
            objects_written=document.get("objects_total", 0),
            done_through=document.get("done_through"),
            digest_count=document["index"],
            last_digest_key=key,
            last_digest_signature=found.metadata.get("signature"),
            last_digest_time=document["end_time"],
            newest_object=document.get("newest_object"),
            gaps=[Gap.model_validate(gap) for gap in document.get("gaps", [])],
            incidents=[f"{reason} at {iso(self._clock())}: state rebuilt from {key}"],
        )
        state.pending_since = self._clock()
        state._etag = etag
        self._merge_failing(state)
        return state

    # --- objects -------------------------------------------------------------------------------
    def write_object(self, state: ShardState, part: str, lines: Sequence[Line]) -> set[str]:
        """Archive ``lines`` (one partition) and chain the object(s); return the ids archived.

        If the deterministic key already exists (an earlier attempt wrote it, then failed before
        saving the state), that object is adopted into the chain and only the events it lacks
        are written anew. The returned ids then also include the adopted object's other events:
        a retry in smaller batches (bisection) must treat them as archived, not write them again.
        Raises on a storage failure: nothing was chained for those lines.
        """
        archived: set[str] = set()
        remaining = list(lines)
        while remaining:
            key = self.layout.object_key(state.chain, part, remaining[0].pos)
            body = gzip_lines([line.data for line in remaining])
            digest = sha256_hex(body)
            link = chain_link(state.head, key, digest)
            metadata = {
                "sha256": digest,
                "chain-link": link,
                "chain-prev": state.head,
                "first-pos": f"{remaining[0].pos[0]}-{remaining[0].pos[1]}",
                "last-pos": f"{remaining[-1].pos[0]}-{remaining[-1].pos[1]}",
                "events": str(len(remaining)),
            }
            try:
                self.store.create(key, body, metadata, JSONL_GZ)
                written = remaining
                remaining = []
            except AlreadyExists:
                existing = self.store.get(key)
                if existing is None:
                    raise
                body, digest = existing.body, sha256_hex(existing.body)
                ids = {json.loads(row)["metadata"]["uid"] for row in _lines(body)}
                written = [line for line in remaining if line.event_id in ids]
                if not written:
                    raise RuntimeError(f"{key} exists but holds none of these events") from None
                remaining = [line for line in remaining if line.event_id not in ids]
                archived.update(ids)
            self._chain(state, key, digest, written[0].pos, written[-1].pos, len(_lines(body)))
            archived.update(line.event_id for line in written)
        return archived

    def write_quarantine(
        self, state: ShardState, pos: Pos, document: dict[str, Any], at: float | None = None
    ) -> str:
        """Quarantine one item and chain the marker like an archive object: evidence of an
        attack is covered by the digests, so deleting or editing it is a ``verify`` finding.

        The key is deterministic (``pos`` and the hour of ``at``, the record's arrival, else
        now) and written once, so a retry adopts the marker an earlier attempt wrote.
        """
        when = self._clock() if at is None else at
        try:
            part = partition(int(when * 1000))
        except OutOfRange:
            part = partition(int(self._clock() * 1000))
        key = self.layout.quarantine_key(state.chain, part, pos)
        body = json.dumps(document, sort_keys=True).encode()
        digest = sha256_hex(body)
        link = chain_link(state.head, key, digest)
        metadata = {"sha256": digest, "chain-link": link, "chain-prev": state.head,
                    "first-pos": f"{pos[0]}-{pos[1]}", "last-pos": f"{pos[0]}-{pos[1]}",
                    "events": "0"}  # fmt: skip
        try:
            self.store.create(key, body, metadata, "application/json")
        except AlreadyExists:
            existing = self.store.get(key)
            if existing is None:
                raise
            digest = sha256_hex(existing.body)
        self._chain(state, key, digest, pos, pos, events=0)
        return key

    def _chain(
        self, state: ShardState, key: str, digest: str, first: Pos, last: Pos, events: int
    ) -> None:
        """Append ``key`` to the shard's chain (once: an adopted object may be chained already)."""
        if any(entry.key == key for entry in state.pending):
            return
        link = chain_link(state.head, key, digest)
        state.pending.append(
            ObjectEntry(
                key=key, sha256=digest, prev=state.head, link=link, first=first, last=last,
                events=events,
            )
        )  # fmt: skip
        state.head = link
        state.objects_written += 1
        state.newest_object = key
        if state.pending_since is None:
            state.pending_since = self._clock()

    # --- digests -------------------------------------------------------------------------------
    def digest_due(self, state: ShardState) -> bool:
        """Objects, gap news or an incident waited an interval; or the last digest is an
        interval old: then a digest is due even if nothing was written (a heartbeat)."""
        now = self._clock()
        news = state.pending or state.incidents or state.gaps_closed
        since = state.pending_since
        if news and (since is None or now - since >= self._digest_interval):
            return True
        if self._digest_interval <= 0 or state.last_digest_time is None:
            return False
        last = datetime.fromisoformat(state.last_digest_time).timestamp()
        return now - last >= self._digest_interval

    def note_news(self, state: ShardState) -> None:
        """Something for the next digest that is not an object (a gap, an incident)."""
        if state.pending_since is None:
            state.pending_since = self._clock()

    def write_digest(self, state: ShardState) -> str:
        """Sign and write the digest of ``state.pending`` (or adopt one an earlier try wrote)."""
        index = state.digest_count + 1
        key = self.layout.digest_key(state.chain, index)
        end_time = datetime.fromtimestamp(self._clock(), tz=UTC).isoformat(timespec="seconds")
        document = {
            "version": DIGEST_VERSION,
            "chain": state.chain,
            "index": index,
            "start_time": state.last_digest_time,
            "end_time": end_time,
            "previous_digest_key": state.last_digest_key,
            "previous_digest_signature": state.last_digest_signature,
            "start_link": state.pending[0].prev if state.pending else state.head,
            "end_link": state.head,
            "objects": [entry.model_dump(mode="json") for entry in state.pending],
            "objects_total": state.objects_written,
            "newest_object": state.newest_object,
            "done_through": list(state.done_through) if state.done_through else None,
            "gaps": [gap.model_dump(mode="json") for gap in state.gaps],
            "gaps_closed": [gap.model_dump(mode="json") for gap in state.gaps_closed],
            "incidents": list(state.incidents),
            "interval_seconds": self._digest_interval,
            "signing": {"algorithm": ALGORITHM, "key_id": self.signer.key_id},
        }
        body = json.dumps(document, sort_keys=True, indent=1).encode()
        message = signing_string(
            end_time, self.store.bucket, key, sha256_hex(body), state.last_digest_signature
        )
        signature = self.signer.sign(message).hex()
        metadata = {"signature": signature, "key-id": self.signer.key_id, "algorithm": ALGORITHM}
        try:
            self.store.create(key, body, metadata, "application/json")
        except AlreadyExists:
            existing = self.store.get(key)
            if existing is None:
                raise
            document = json.loads(existing.body)
            signature = existing.metadata["signature"]
            end_time = document["end_time"]
            covered = {entry["key"] for entry in document["objects"]}
            self._rechain(state, document, [e for e in state.pending if e.key not in covered])
            if document.get("version", 1) >= 2:
                state.incidents = [i for i in state.incidents if i not in document["incidents"]]
        else:
            state.pending = []
            state.incidents = []
            state.gaps_closed = []
        state.pending_since = self._clock() if state.pending else None
        state.digest_count = index
        state.last_digest_key = key
        state.last_digest_signature = signature
        state.last_digest_time = end_time
        return key

    def _rechain(
        self, state: ShardState, document: dict[str, Any], rest: list[ObjectEntry]
    ) -> None:
        """Continue the chain after an adopted digest: what it does not cover follows its end
        (a retry may chain objects in another order than the attempt that wrote the digest)."""
        link = document["end_link"]
        state.pending = []
        for entry in rest:
            following = chain_link(link, entry.key, entry.sha256)
            state.pending.append(entry.model_copy(update={"prev": link, "link": following}))
            link = following
        state.head = link
        if document.get("version", 1) >= 2:
            state.objects_written = document["objects_total"] + len(state.pending)
            state.newest_object = state.pending[-1].key if rest else document["newest_object"]

    def heartbeat(self) -> list[str]:
        """Write the digest of every chain whose last digest is an interval old, even if
        nothing was written since: a verifier can then require a recent digest of every chain
        (an idle chain is otherwise indistinguishable from one rolled back). Run on a schedule;
        a batch of the chain running at the same time wins (conditional state write)."""
        written: list[str] = []
        for key in list(self.store.list(self.layout.state)):
            chain = key[len(self.layout.state) :].removesuffix(".json")
            state = self.load_state(chain)
            if not self.digest_due(state):
                continue
            digest = self.write_digest(state)
            with suppress(Conflict):  # a batch saved the chain meanwhile; it adopts this digest
                self.save_state(state)
            written.append(digest)
        return written


def _lines(body: bytes) -> list[bytes]:
    return [row for row in gzip.decompress(body).split(b"\n") if row]
