"""Signed requests (RFC 9421) through the authorizer: signatures made by the library's own signer
with keys generated at test time, nonces recorded in the (moto) counters table."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from http_message_signatures import HTTPMessageSigner, HTTPSignatureKeyResolver, algorithms

from gatekeeper.identity.signatures import (
    InMemoryNonceStore,
    SigningKeyRecord,
    created_now,
    nonce_key,
)
from gatekeeper.testing.events import http_api_event, rest_request_event
from gatekeeper.testing.signing import public_pem
from tests.conftest import COUNTERS, World, make_world

HOST = "api.example.com"
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class Request:
    """What the library's signer reads and writes: method, absolute URL, headers."""

    def __init__(self, method: str, path: str, query: str = "", **headers: str) -> None:
        self.method = method
        self.url = f"https://{HOST}{path}" + (f"?{query}" if query else "")
        self.headers: dict[str, str] = {"Host": HOST, **headers}


class Keys(HTTPSignatureKeyResolver):
    def __init__(self, private: PrivateKey) -> None:
        self.private = private

    def resolve_private_key(self, key_id: str) -> Any:
        return self.private

    def resolve_public_key(self, key_id: str) -> Any:
        return self.private.public_key()


@pytest.fixture
def world(dynamodb: Any, jwks_server: Any, signing_key: Any) -> World:
    return make_world(dynamodb, jwks_server, signing_key, counters_table=COUNTERS)


@pytest.fixture
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def registered(world: World, ed_key: ed25519.Ed25519PrivateKey) -> World:
    world.store.put(
        SigningKeyRecord(
            key_id="billing-ed",
            principal_id="svc:signer",
            tenant="acme",
            roles=("orders-clerk",),
            algorithm="ed25519",
            public_key=public_pem(ed_key),
        ),
    )
    world.clock.advance(60)
    return world


def sign(
    world: World,
    private: PrivateKey,
    request: Request,
    *,
    key_id: str = "billing-ed",
    nonce: str | None = "n0nce-0123456789abcdef",
    created: float | None = None,
    components: tuple[str, ...] = ("@method", "@path", "@query"),
) -> dict[str, str]:
    algorithm: Any = algorithms.ED25519
    if isinstance(private, ec.EllipticCurvePrivateKey):
        algorithm = algorithms.ECDSA_P256_SHA256
    signer = HTTPMessageSigner(signature_algorithm=algorithm, key_resolver=Keys(private))
    if "Content-Digest" in request.headers:
        components = (*components, "content-digest")
    signer.sign(
        request,
        key_id=key_id,
        created=created_now(world.clock() if created is None else created),
        nonce=nonce,
        covered_component_ids=components,
        use_existing_digest="Content-Digest" in request.headers,
    )
    return request.headers


def rest_event(
    headers: dict[str, str], method: str, path: str, query: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    event = rest_request_event(headers, method, path)
    event["requestContext"]["path"] = path  # a custom domain without a base path
    if query:
        event["multiValueQueryStringParameters"] = query
        event["queryStringParameters"] = {k: v[-1] for k, v in query.items()}
    return event


def test_a_signed_request_is_its_principal(registered: World, ed_key: Any) -> None:
    headers = sign(registered, ed_key, Request("POST", "/orders"))
    result = registered.authorizer.authorize(rest_event(headers, "POST", "/orders"))
    assert result.audit.decision == "allow"
    assert result.audit.principal_id == "svc:signer" and result.audit.auth_method == "signature"


def test_query_and_http_api(registered: World, ed_key: Any) -> None:
    headers = sign(registered, ed_key, Request("GET", "/orders", "status=open&page=2"))
    event = rest_event(headers, "GET", "/orders", {"status": ["open"], "page": ["2"]})
    assert registered.authorizer.authorize(event).audit.decision == "allow"
    headers = sign(
        registered, ed_key, Request("GET", "/orders", "status=open"), nonce="n0nce-http-api-000001"
    )
    v2 = http_api_event({k.lower(): v for k, v in headers.items()}, "GET", "/orders")
    v2["rawQueryString"] = "status=open"
    result = registered.authorizer.authorize(v2)
    assert result.audit.decision == "allow" and result.audit.principal_id == "svc:signer"


def test_an_ecdsa_p256_key(registered: World) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    registered.store.put(
        SigningKeyRecord(
            key_id="billing-ec",
            principal_id="svc:signer",
            tenant="acme",
            roles=("orders-reader",),
            algorithm="ecdsa-p256-sha256",
            public_key=public_pem(private),
        ),
    )
    registered.clock.advance(60)
    headers = sign(registered, private, Request("GET", "/orders"), key_id="billing-ec")
    result = registered.authorizer.authorize(rest_event(headers, "GET", "/orders"))
    assert result.audit.decision == "allow"


def test_a_replay_is_refused(registered: World, ed_key: Any) -> None:
    headers = sign(registered, ed_key, Request("GET", "/orders"))
    first = registered.authorizer.authorize(rest_event(dict(headers), "GET", "/orders"))
    assert first.audit.decision == "allow"
    again = registered.authorizer.authorize(rest_event(dict(headers), "GET", "/orders"))
    assert again.unauthorized and again.audit.reason == "replayed_request"
    item = registered.client.get_item(
        TableName=COUNTERS,
        Key={
            "pk": {"S": nonce_key("billing-ed", "n0nce-0123456789abcdef")},
            "sk": {"S": "NONCE"},
        },
    )["Item"]
    assert float(item["expires_at"]["N"]) > registered.clock()  # a TTL, so it goes away


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (
            lambda e: (
                e.update(httpMethod="DELETE")
                or e.update(methodArn=e["methodArn"].replace("/GET/", "/DELETE/"))
            ),
            "invalid_request_signature",
        ),
        (
            lambda e: (
                e["requestContext"].update(path="/orders/o-1")
                or e.update(path="/orders/o-1", methodArn=e["methodArn"] + "/o-1")
            ),
            "invalid_request_signature",
        ),
        (
            lambda e: e.update(multiValueQueryStringParameters={"admin": ["1"]}),
            "invalid_request_signature",
        ),
    ],
    ids=["method", "path", "query"],
)
def test_what_is_signed_cannot_change(
    registered: World, ed_key: Any, mutate: Any, reason: str
) -> None:
    headers = sign(registered, ed_key, Request("GET", "/orders"))
    event = rest_event(headers, "GET", "/orders")
    mutate(event)
    result = registered.authorizer.authorize(event)
    assert result.unauthorized and result.audit.reason == reason


def test_clock_skew_window(registered: World, ed_key: Any) -> None:
    now = registered.clock()
    for created, nonce in ((now - 400, "n0nce-too-old-000001"), (now + 60, "n0nce-future-0000001")):
        headers = sign(registered, ed_key, Request("GET", "/orders"), created=created, nonce=nonce)
        result = registered.authorizer.authorize(rest_event(headers, "GET", "/orders"))
        assert result.unauthorized and result.audit.reason == "signature_expired"
    headers = sign(
        registered,
        ed_key,
        Request("GET", "/orders"),
        created=now - 290,
        nonce="n0nce-in-window-0001",
    )
    assert (
        registered.authorizer.authorize(rest_event(headers, "GET", "/orders")).audit.decision
        == "allow"
    )


def test_content_digest_must_be_covered_when_present(registered: World, ed_key: Any) -> None:
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(b'{"n": 1}').digest()).decode() + ":"
    headers = sign(registered, ed_key, Request("POST", "/orders", **{"Content-Digest": digest}))
    assert "content-digest" in headers["Signature-Input"]
    ok = registered.authorizer.authorize(rest_event(headers, "POST", "/orders"))
    assert ok.audit.decision == "allow"
    # a digest added after signing (to a signature that does not cover it) is refused
    unsigned = sign(registered, ed_key, Request("POST", "/orders"), nonce="n0nce-no-digest-0001")
    unsigned["Content-Digest"] = digest
    result = registered.authorizer.authorize(rest_event(unsigned, "POST", "/orders"))
    assert result.unauthorized and result.audit.reason == "invalid_request_signature"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Signature": "sig1=:AAAA:"}, "malformed_signature"),
        ({"Signature-Input": "sig1=(", "Signature": "sig1=:AAAA:"}, "malformed_signature"),
        (
            {
                "Signature-Input": 'sig1=("@method");created=1;keyid="billing-ed"',
                "Signature": "sig1=:AAAA:",
            },
            "malformed_signature",
        ),  # no nonce
        (
            {
                "Signature-Input": 'sig1=("@method" "@path" "@query");created=1;keyid="nobody";'
                'nonce="n0nce-0123456789abcdef"',
                "Signature": "sig1=:AAAA:",
            },
            "unknown_signing_key",
        ),
        (
            {
                "Signature-Input": 'sig1=("@method");created=1;keyid="billing-ed";'
                'nonce="n0nce-0123456789abcdef"',
                "Signature": "sig1=:AAAA:",
            },
            "invalid_request_signature",
        ),  # does not cover @path, @query
    ],
    ids=["input-missing", "not-structured", "no-nonce", "unknown-key", "too-little-covered"],
)
def test_bad_signature_headers(registered: World, headers: dict[str, str], reason: str) -> None:
    result = registered.authorizer.authorize(rest_event(headers, "GET", "/orders"))
    assert result.unauthorized and result.audit.reason == reason
    assert registered.audit.events[-1].reason == reason


def test_a_forged_signature_is_refused(registered: World) -> None:
    stranger = ed25519.Ed25519PrivateKey.generate()
    headers = sign(registered, stranger, Request("GET", "/orders"))  # the right keyid, wrong key
    result = registered.authorizer.authorize(rest_event(headers, "GET", "/orders"))
    assert result.unauthorized and result.audit.reason == "invalid_request_signature"


def test_a_revoked_key_is_refused(registered: World, ed_key: Any) -> None:
    registered.store.put(
        SigningKeyRecord(
            key_id="billing-ed",
            principal_id="svc:signer",
            algorithm="ed25519",
            public_key=public_pem(ed_key),
            status="revoked",
        ),
    )
    registered.clock.advance(5)
    headers = sign(registered, ed_key, Request("GET", "/orders"))
    result = registered.authorizer.authorize(rest_event(headers, "GET", "/orders"))
    assert result.unauthorized and result.audit.reason == "signing_key_revoked"


def test_a_signature_with_another_credential_is_ambiguous(registered: World, ed_key: Any) -> None:
    headers = sign(registered, ed_key, Request("GET", "/orders"))
    headers["x-api-key"] = registered.keys.active
    result = registered.authorizer.authorize(rest_event(headers, "GET", "/orders"))
    assert result.unauthorized and result.audit.reason == "ambiguous_credentials"


def test_without_a_counters_table_signed_requests_fail_closed(
    dynamodb: Any, jwks_server: Any, signing_key: Any, ed_key: Any
) -> None:
    world = make_world(dynamodb, jwks_server, signing_key)
    world.store.put(
        SigningKeyRecord(
            key_id="billing-ed",
            principal_id="svc:signer",
            algorithm="ed25519",
            public_key=public_pem(ed_key),
        ),
    )
    world.clock.advance(60)
    headers = sign(world, ed_key, Request("GET", "/health"))
    result = world.authorizer.authorize(rest_event(headers, "GET", "/health"))
    assert result.unauthorized and result.audit.reason == "replay_check_unavailable"


def test_in_memory_nonce_store() -> None:
    store = InMemoryNonceStore()
    assert store.claim("k", 100, 0) and not store.claim("k", 100, 50)
    assert store.claim("k", 300, 150)  # expired: the window check refuses the old request


def test_a_revoked_client_certificate_is_refused_beside_a_signature(
    dynamodb: Any, jwks_server: Any, signing_key: Any, ed_key: Any
) -> None:
    from gatekeeper.identity.mtls import CertRevocation, parse_certificate
    from gatekeeper.testing.certs import issue_client_cert, make_ca, with_client_cert

    world = make_world(dynamodb, jwks_server, signing_key, counters_table=COUNTERS, mtls=True)
    cert = issue_client_cert(make_ca(now=world.clock()), "svc", now=world.clock())
    world.store.put(
        SigningKeyRecord(
            key_id="billing-ed",
            principal_id="svc:signer",
            tenant="acme",
            roles=("orders-reader",),
            algorithm="ed25519",
            public_key=public_pem(ed_key),
        ),
        CertRevocation(fingerprint=parse_certificate(cert.pem).fingerprint),
    )
    world.clock.advance(60)
    headers = sign(world, ed_key, Request("GET", "/orders"))
    event = with_client_cert(rest_event(headers, "GET", "/orders"), cert)
    result = world.authorizer.authorize(event)
    assert result.unauthorized and result.audit.reason == "client_certificate_revoked"
    headers = sign(world, ed_key, Request("GET", "/orders"), nonce="n0nce-no-cert-000001")
    assert world.authorizer.authorize(rest_event(headers, "GET", "/orders")).audit.decision == (
        "allow"
    )
