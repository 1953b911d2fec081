"""Signed requests (HTTP Message Signatures, RFC 9421) for server-to-server callers.

The caller signs, with a private key whose public half is registered to its principal
(:class:`SigningKeyRecord`, Ed25519 or ECDSA P-256: no shared secret is stored), the components
``@method``, ``@path``, ``@query`` and, when the request carries one, ``content-digest``, with
the parameters ``created``, ``nonce`` and ``keyid``. The authorizer verifies with
``http-message-signatures`` (never by hand), enforces a clock-skew window on ``created`` by its
own clock, and refuses a replay by a conditional put of the nonce, with a TTL, in the counters
table. It never sees the body, so a signed ``content-digest`` proves only what the client said
the body was: the backend must check the body against it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

import http_sf
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from http_message_signatures import HTTPMessageVerifier, HTTPSignatureKeyResolver, algorithms
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatekeeper.errors import (
    GatekeeperError,
    InvalidRequestSignature,
    MalformedSignature,
    ReplayCheckUnavailable,
    ReplayedRequest,
    SignatureExpired,
    SigningKeyRevoked,
    UnknownSigningKey,
)
from gatekeeper.identity.principal import Principal, checked_principal_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

    from gatekeeper.requests import SignedParts

SigningAlgorithm = Literal["ed25519", "ecdsa-p256-sha256"]
_ALGORITHMS: Final[Mapping[str, Any]] = {
    "ed25519": algorithms.ED25519,
    "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
}
_NONCE: Final = re.compile(r"^[A-Za-z0-9._~+/=-]{16,128}$")
_MAX_HEADER: Final = 4096
REQUIRED_COMPONENTS: Final = ("@method", "@path", "@query")


class SigningKeyRecord(BaseModel):
    """A request-signing public key registered to a principal (config table ``SIGKEY#<id>``).

    Example::

        SigningKeyRecord(key_id="billing-2026", principal_id="svc:billing", tenant="acme",
                         roles=("orders-reader",), algorithm="ed25519", public_key=pem)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    principal_id: str = Field(min_length=1, max_length=512)
    tenant: str | None = None
    roles: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    algorithm: SigningAlgorithm
    public_key: str = Field(description="PEM (SubjectPublicKeyInfo).")
    status: Literal["active", "revoked"] = "active"
    expires_at: float | None = None

    @field_validator("public_key")
    @classmethod
    def _a_public_key(cls, value: str) -> str:
        try:
            load_pem_public_key(value.encode())
        except Exception:
            raise ValueError("public_key must be a PEM public key") from None
        return value


def algorithm_of(public_key_pem: str) -> SigningAlgorithm | None:
    """The algorithm a PEM public key signs with (Ed25519, EC P-256), or None for any other key.
    Raises ``ValueError`` if the text is not a PEM public key."""
    key = load_pem_public_key(public_key_pem.encode())
    if isinstance(key, Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, EllipticCurvePublicKey) and isinstance(key.curve, SECP256R1):
        return "ecdsa-p256-sha256"
    return None


def key_algorithm_problem(record: SigningKeyRecord) -> str | None:
    """Why ``public_key`` cannot verify ``algorithm`` signatures (checked when a key is
    registered: a P-256 key filed as ``ed25519`` would refuse every request it signs)."""
    if algorithm_of(record.public_key) == record.algorithm:
        return None
    if record.algorithm == "ed25519":
        return "ed25519 needs an Ed25519 key"
    return "ecdsa-p256-sha256 needs an EC key on the P-256 curve"


def public_key_fingerprint(pem: str) -> str:
    """SHA-256 (hex) of the key's DER SubjectPublicKeyInfo: a short name an operator can check."""
    der = load_pem_public_key(pem.encode()).public_bytes(
        Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class NonceStore(Protocol):
    def claim(self, key: str, expires_at: float, now: float) -> bool:
        """True if ``key`` was not seen (now recorded until ``expires_at``); False if it was.
        Raises on any store failure."""
        ...


class InMemoryNonceStore:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def claim(self, key: str, expires_at: float, now: float) -> bool:
        if self.seen.get(key, 0.0) > now:
            return False
        self.seen[key] = expires_at
        return True


class DynamoNonceStore:
    """One conditional ``PutItem`` per signed request: ``NONCE#<key id>#<hash>`` in the counters
    table, with ``expires_at`` as its TTL. An expired item still present (TTL deletes late) may be
    replaced: by then ``created`` is out of the window, so the old request is refused anyway."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def claim(self, key: str, expires_at: float, now: float) -> bool:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": key},
                    "sk": {"S": "NONCE"},
                    "expires_at": {"N": str(int(expires_at) + 1)},
                },
                ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def nonce_key(key_id: str, nonce: str) -> str:
    return f"NONCE#{key_id}#{hashlib.sha256(nonce.encode()).hexdigest()[:32]}"


class _Message:
    """The request as the library reads it (``method``, absolute ``url``, ``headers``)."""

    def __init__(self, method: str, parts: SignedParts) -> None:
        self.method = method
        query = f"?{parts.raw_query}" if parts.raw_query else ""
        self.url = f"https://{parts.host}{parts.raw_path}{query}"
        self.headers: dict[str, str] = {
            "Signature-Input": parts.signature_input or "",
            "Signature": parts.signature or "",
        }
        if parts.content_digest is not None:
            self.headers["Content-Digest"] = parts.content_digest


class _Resolver(HTTPSignatureKeyResolver):
    def __init__(self, record: SigningKeyRecord) -> None:
        self._record = record

    def resolve_public_key(self, key_id: str) -> Any:
        if key_id != self._record.key_id:
            raise UnknownSigningKey("signing key changed while verifying")
        return load_pem_public_key(self._record.public_key.encode())


class _Verifier(HTTPMessageVerifier):
    """The library's verifier with our clock and window for ``created``."""

    def __init__(self, algorithm: Any, resolver: _Resolver, *, now: float, skew: float,
                 max_age: float) -> None:  # fmt: skip
        super().__init__(signature_algorithm=algorithm, key_resolver=resolver)
        self._now, self._skew, self._max_age = now, skew, max_age

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        created = sig_input.params.get("created")
        if type(created) is not int:
            raise MalformedSignature("signature 'created' must be an integer")
        if created > self._now + self._skew:
            raise SignatureExpired("signature 'created' is in the future")
        if created < self._now - self._max_age - self._skew:
            raise SignatureExpired("signature is too old")
        expires = sig_input.params.get("expires")
        if expires is not None and (type(expires) is not int or expires < self._now - self._skew):
            raise SignatureExpired("signature has expired")


def _parameters(parts: SignedParts) -> tuple[list[str], dict[str, Any]]:
    """The one signature's covered components and parameters; :class:`MalformedSignature`."""
    if not parts.signature_input or not parts.signature:
        raise MalformedSignature("both Signature and Signature-Input are required")
    if len(parts.signature_input) > _MAX_HEADER or len(parts.signature) > _MAX_HEADER:
        raise MalformedSignature("signature headers are too large")
    try:
        inputs = http_sf.parse(parts.signature_input.encode(), tltype="dictionary")
        http_sf.parse(parts.signature.encode(), tltype="dictionary")
    except Exception:
        raise MalformedSignature("signature headers are not structured fields") from None
    if not isinstance(inputs, dict) or len(inputs) != 1:
        raise MalformedSignature("exactly one signature is expected")
    [member] = list(inputs.values())
    if not isinstance(member, tuple) or len(member) != 2:
        raise MalformedSignature("Signature-Input member must be an inner list")
    members, params = member[0], member[1]
    if not isinstance(members, list) or not isinstance(params, dict):
        raise MalformedSignature("Signature-Input member must be an inner list")
    components = [m[0] for m in members if isinstance(m, tuple) and isinstance(m[0], str)]
    keyid, nonce = params.get("keyid"), params.get("nonce")
    if not isinstance(keyid, str) or not isinstance(nonce, str):
        raise MalformedSignature("signature parameters 'keyid' and 'nonce' are required")
    if not _NONCE.match(nonce):
        raise MalformedSignature("signature 'nonce' must be 16-128 URL-safe characters")
    if type(params.get("created")) is not int:
        raise MalformedSignature("signature parameter 'created' is required")
    return components, dict(params)


def verify_signed_request(
    method: str,
    parts: SignedParts,
    keys: Mapping[str, SigningKeyRecord],
    *,
    now: float,
    nonces: NonceStore | None,
    max_age: float,
    skew: float,
) -> Principal:
    """The principal of a correctly signed, fresh, first-seen request; raises otherwise."""
    components, params = _parameters(parts)
    record = keys.get(params["keyid"])
    if record is None:
        raise UnknownSigningKey("no signing key with that keyid")
    if record.status == "revoked" or (record.expires_at is not None and now >= record.expires_at):
        raise SigningKeyRevoked("signing key is revoked or expired")
    required = list(REQUIRED_COMPONENTS)
    if parts.content_digest is not None:
        required.append("content-digest")
    missing = [c for c in required if c not in components]
    if missing:
        raise InvalidRequestSignature(f"signature must cover {', '.join(missing)}")
    verifier = _Verifier(
        _ALGORITHMS[record.algorithm], _Resolver(record), now=now, skew=skew, max_age=max_age
    )
    try:
        verifier.verify(_Message(method, parts), max_age=None, require_components=required)
    except GatekeeperError:
        raise
    except HTTPMessageSignaturesException as exc:
        if isinstance(exc.__cause__, GatekeeperError):
            raise exc.__cause__ from None
        raise InvalidRequestSignature("request signature does not verify") from None
    except Exception:
        raise InvalidRequestSignature("request signature does not verify") from None
    if nonces is None:
        raise ReplayCheckUnavailable("no counters table for the replay check")
    try:
        fresh = nonces.claim(
            nonce_key(record.key_id, params["nonce"]), params["created"] + max_age + skew, now
        )
    except Exception:
        raise ReplayCheckUnavailable("the replay check failed") from None
    if not fresh:
        raise ReplayedRequest("this nonce was already used")
    return Principal(
        principal_id=checked_principal_id(record.principal_id),
        auth_method="signature",
        tenant=record.tenant,
        roles=frozenset(record.roles),
        scopes=frozenset(record.scopes),
        attributes={"signing_key": (record.key_id,)},
    )


def created_now(now: float) -> dt.datetime:
    """``created`` for a signer (the library's ``sign(created=...)``) from our clock."""
    return dt.datetime.fromtimestamp(now, dt.UTC)
