"""JWT verification: one test per way a token can be wrong, against a real local JWKS server."""

from __future__ import annotations

import base64
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gatekeeper.clock import FakeClock
from gatekeeper.errors import (
    ExpiredToken,
    GatekeeperError,
    InvalidAudience,
    InvalidPrincipalId,
    InvalidSignature,
    InvalidToken,
    JwksUnavailable,
    KeyAlgorithmMismatch,
    KidNotFound,
    MissingClaim,
    TokenNotYetValid,
    TokenTooLarge,
    UnknownIssuer,
    UnsupportedAlgorithm,
)
from gatekeeper.identity.jwt_verifier import IssuerConfig, JwtVerifier
from gatekeeper.testing import (
    LocalJwksServer,
    SigningKey,
    claims_for,
    ec_key,
    forge_hmac,
    forge_unsigned,
    mint,
    public_jwks,
    rsa_key,
)
from tests.conftest import FAST, LOCAL_FETCH_TIMEOUT

ISS_A = "https://idp-a.example.com"
ISS_B = "https://idp-b.example.com/pool"
AUD = "api://orders"
INTERVAL = 60.0


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def a_rsa() -> SigningKey:
    return rsa_key("a-rsa")


@pytest.fixture(scope="module")
def a_ec() -> SigningKey:
    return ec_key("a-ec")


@pytest.fixture(scope="module")
def b_rsa() -> SigningKey:
    return rsa_key("b-rsa")


@pytest.fixture(scope="module")
def attacker() -> SigningKey:
    return rsa_key("a-rsa")  # same kid as issuer A's real key, different key pair


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server_a(a_rsa: SigningKey, a_ec: SigningKey) -> Iterator[LocalJwksServer]:
    with LocalJwksServer(public_jwks(a_rsa, a_ec)) as server:
        yield server


@pytest.fixture
def server_b(b_rsa: SigningKey) -> Iterator[LocalJwksServer]:
    with LocalJwksServer(public_jwks(b_rsa)) as server:
        yield server


def issuer_a(server: LocalJwksServer, **overrides: Any) -> IssuerConfig:
    fields: dict[str, Any] = {
        "name": "corp",
        "issuer": ISS_A,
        "audiences": (AUD,),
        "jwks_uri": server.uri,
        "kid_refetch_interval_seconds": INTERVAL,
        "jwks_timeout_seconds": LOCAL_FETCH_TIMEOUT,
    }
    return IssuerConfig(**(fields | overrides))


def issuer_b(server: LocalJwksServer) -> IssuerConfig:
    return IssuerConfig(
        name="partner",
        issuer=ISS_B,
        audiences=("partner-client",),
        jwks_uri=server.uri,
        audience_claim="client_id",
        jwks_timeout_seconds=LOCAL_FETCH_TIMEOUT,
    )


@pytest.fixture
def verifier(server_a: LocalJwksServer, server_b: LocalJwksServer, clock: FakeClock) -> JwtVerifier:
    return JwtVerifier([issuer_a(server_a), issuer_b(server_b)], clock=clock)


def token_a(key: SigningKey, clock: FakeClock, **extra: Any) -> str:
    return mint(claims_for(ISS_A, AUD, now=clock(), extra=extra), key)


def token_b(key: SigningKey, clock: FakeClock, **extra: Any) -> str:
    claims = claims_for(ISS_B, None, now=clock(), extra={"client_id": "partner-client"} | extra)
    return mint(claims, key)


def b64json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# --- valid tokens --------------------------------------------------------------------------
def test_valid_rs256(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    principal = verifier.verify(token_a(a_rsa, clock, sub="alice"))
    assert principal.principal_id == "corp:alice"
    assert principal.auth_method == "jwt"
    assert principal.issuer == "corp"


def test_valid_es256(verifier: JwtVerifier, a_ec: SigningKey, clock: FakeClock) -> None:
    assert verifier.verify(token_a(a_ec, clock, sub="bob")).principal_id == "corp:bob"


def test_jwk_without_alg_verifies_any_allowed_rsa_algorithm(
    a_rsa: SigningKey, clock: FakeClock
) -> None:
    jwk = {k: v for k, v in a_rsa.public_jwk().items() if k != "alg"}
    with LocalJwksServer({"keys": [jwk]}) as server:
        verifier = JwtVerifier([issuer_a(server, algorithms=("PS256",))], clock=clock)
        token = mint(claims_for(ISS_A, AUD, now=clock()), a_rsa, alg="PS256")
        assert verifier.verify(token).principal_id == "corp:user-1"


def test_audience_list_with_one_accepted_value(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock
) -> None:
    assert verifier.verify(token_a(a_rsa, clock, aud=["other", AUD]))


# --- several issuers -----------------------------------------------------------------------
def test_token_of_issuer_b_verified_with_b_keys(
    verifier: JwtVerifier,
    b_rsa: SigningKey,
    clock: FakeClock,
    server_a: LocalJwksServer,
    server_b: LocalJwksServer,
) -> None:
    principal = verifier.verify(token_b(b_rsa, clock, sub="svc-7"))
    assert (principal.principal_id, principal.issuer) == ("partner:svc-7", "partner")
    assert (server_a.hits, server_b.hits) == (0, 1)


def test_key_of_issuer_b_cannot_sign_for_a(
    verifier: JwtVerifier, b_rsa: SigningKey, clock: FakeClock
) -> None:
    with pytest.raises(KidNotFound):  # B's kid is not in A's JWKS
        verifier.verify(token_a(b_rsa, clock))
    forged = mint(claims_for(ISS_A, AUD, now=clock()), b_rsa, kid="a-rsa")
    with pytest.raises(InvalidSignature):  # A's kid, B's signature
        verifier.verify(forged)


# --- time ----------------------------------------------------------------------------------
def test_expired(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    token = token_a(a_rsa, clock)  # exp = now + 300, leeway 30
    clock.advance(300 + 29)
    assert verifier.verify(token)  # within leeway
    clock.advance(1)
    with pytest.raises(ExpiredToken):
        verifier.verify(token)


def test_not_yet_valid_nbf(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    with pytest.raises(TokenNotYetValid):
        verifier.verify(token_a(a_rsa, clock, nbf=int(clock()) + 31))
    assert verifier.verify(token_a(a_rsa, clock, nbf=int(clock()) + 30))


def test_issued_in_the_future(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    with pytest.raises(TokenNotYetValid):
        verifier.verify(token_a(a_rsa, clock, iat=int(clock()) + 120))
    assert verifier.verify(token_a(a_rsa, clock, iat=int(clock()) + 20))


@pytest.mark.parametrize("value", ["1767225900", True, None, math.inf, {"t": 1}], ids=repr)
def test_exp_must_be_a_finite_number(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, value: object
) -> None:
    expected = MissingClaim if value is None else InvalidToken
    with pytest.raises(expected) as info:
        verifier.verify(token_a(a_rsa, clock, exp=value))
    assert type(info.value) is expected


# --- issuer and audience -------------------------------------------------------------------
def test_unknown_issuer(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    token = mint(claims_for("https://evil.example.com", AUD, now=clock()), a_rsa)
    with pytest.raises(UnknownIssuer):
        verifier.verify(token)


def test_configured_issuer_not_signed_by_it(
    verifier: JwtVerifier, attacker: SigningKey, clock: FakeClock
) -> None:
    with pytest.raises(InvalidSignature):
        verifier.verify(token_a(attacker, clock))


def test_missing_or_non_string_iss(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock
) -> None:
    claims = claims_for(ISS_A, AUD, now=clock())
    with pytest.raises(MissingClaim):
        verifier.verify(mint({k: v for k, v in claims.items() if k != "iss"}, a_rsa))
    with pytest.raises(InvalidToken):
        verifier.verify(mint(claims | {"iss": [ISS_A]}, a_rsa))


def test_wrong_audience(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    with pytest.raises(InvalidAudience):
        verifier.verify(token_a(a_rsa, clock, aud="api://billing"))


def test_cognito_client_id_audience(
    verifier: JwtVerifier, b_rsa: SigningKey, clock: FakeClock
) -> None:
    assert verifier.verify(token_b(b_rsa, clock))
    with pytest.raises(InvalidAudience):
        verifier.verify(token_b(b_rsa, clock, client_id="someone-else"))
    claims = claims_for(ISS_B, None, now=clock())  # no client_id at all
    with pytest.raises(MissingClaim):
        verifier.verify(mint(claims, b_rsa))


# --- signatures and algorithms -------------------------------------------------------------
def test_tampered_payload(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    header, _, signature = token_a(a_rsa, clock, sub="alice").split(".")
    payload = b64json(claims_for(ISS_A, AUD, now=clock(), subject="admin"))
    with pytest.raises(InvalidSignature):
        verifier.verify(f"{header}.{payload}.{signature}")


def test_alg_none(verifier: JwtVerifier, clock: FakeClock, server_a: LocalJwksServer) -> None:
    with pytest.raises(UnsupportedAlgorithm):
        verifier.verify(forge_unsigned(claims_for(ISS_A, AUD, now=clock()), kid="a-rsa"))
    assert server_a.hits == 0


def test_hs256_keyed_with_the_rsa_public_key(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock
) -> None:
    claims = claims_for(ISS_A, AUD, now=clock())
    with pytest.raises(UnsupportedAlgorithm):
        verifier.verify(forge_hmac(claims, a_rsa.public_pem(), kid="a-rsa"))


def test_header_alg_must_fit_the_key(
    verifier: JwtVerifier, a_ec: SigningKey, a_rsa: SigningKey, clock: FakeClock
) -> None:
    # ES256 is allowed for issuer A, but kid "a-rsa" is an RSA key (published as RS256).
    token = mint(claims_for(ISS_A, AUD, now=clock()), a_ec, kid="a-rsa")
    with pytest.raises(KeyAlgorithmMismatch):
        verifier.verify(token)


def test_jwk_alg_must_equal_token_alg(
    server_a: LocalJwksServer, a_rsa: SigningKey, clock: FakeClock
) -> None:
    verifier = JwtVerifier([issuer_a(server_a, algorithms=("RS256", "PS256"))], clock=clock)
    token = mint(claims_for(ISS_A, AUD, now=clock()), a_rsa, alg="PS256")
    with pytest.raises(KeyAlgorithmMismatch):  # the JWK says RS256
        verifier.verify(token)


def test_key_embedded_in_header_is_ignored(
    verifier: JwtVerifier, attacker: SigningKey, clock: FakeClock
) -> None:
    token = mint(
        claims_for(ISS_A, AUD, now=clock()), attacker, headers={"jwk": attacker.public_jwk()}
    )
    with pytest.raises(InvalidSignature):
        verifier.verify(token)


def test_missing_kid(verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock) -> None:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(mint(claims_for(ISS_A, AUD, now=clock()), a_rsa, kid=None))
    assert type(info.value) is InvalidToken


@pytest.mark.parametrize(
    "sub", ["s" * 5400, "é" * 300, "alice\nbob", "alice\x00"], ids=["5400", "utf8", "lf", "nul"]
)
def test_principal_ids_are_bounded(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, sub: str
) -> None:
    token = mint(claims_for(ISS_A, AUD, now=clock(), subject=sub), a_rsa)
    with pytest.raises(InvalidPrincipalId) as info:
        verifier.verify(token)
    assert info.value.reason == "invalid_principal_id"
    assert sub not in str(info.value)


def test_a_principal_id_at_the_bound_is_fine(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock
) -> None:
    sub = "s" * (512 - len("corp:"))
    token = mint(claims_for(ISS_A, AUD, now=clock(), subject=sub), a_rsa)
    assert verifier.verify(token).principal_id == f"corp:{sub}"


# --- JWKS cache behaviour through the verifier ----------------------------------------------
def test_unknown_kid_refetches_at_most_once_per_interval(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, server_a: LocalJwksServer
) -> None:
    verifier.verify(token_a(a_rsa, clock))
    assert server_a.hits == 1
    stranger = mint(claims_for(ISS_A, AUD, now=clock()), a_rsa, kid="unknown")

    clock.advance(INTERVAL)
    with pytest.raises(KidNotFound):
        verifier.verify(stranger)
    assert server_a.hits == 2  # exactly one refetch

    clock.advance(INTERVAL - 1)
    for _ in range(5):
        with pytest.raises(KidNotFound):
            verifier.verify(stranger)
    assert server_a.hits == 2  # penalty window: no network

    clock.advance(1)
    with pytest.raises(KidNotFound):
        verifier.verify(stranger)
    assert server_a.hits == 3


def test_key_rotation_picked_up_by_refetch(
    verifier: JwtVerifier,
    a_rsa: SigningKey,
    clock: FakeClock,
    server_a: LocalJwksServer,
) -> None:
    verifier.verify(token_a(a_rsa, clock))
    rotated = rsa_key("a-rsa-2")
    server_a.serve(public_jwks(rotated))
    clock.advance(INTERVAL)
    assert verifier.verify(token_a(rotated, clock)).principal_id == "corp:user-1"
    assert server_a.hits == 2
    # The old key left the JWKS with the refetch; its tokens no longer verify. The first such
    # token costs one fetch (a refetch that found its kid opens no penalty window); that miss
    # opens the window, so the next ones cost none.
    for _ in range(3):
        with pytest.raises(KidNotFound):
            verifier.verify(token_a(a_rsa, clock))
    assert server_a.hits == 3


def test_jwks_down_with_warm_cache_keeps_working(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, server_a: LocalJwksServer
) -> None:
    verifier.verify(token_a(a_rsa, clock))
    server_a.fail()
    clock.advance(INTERVAL)
    with pytest.raises(JwksUnavailable):  # an unknown kid forces a fetch, which fails
        verifier.verify(mint(claims_for(ISS_A, AUD, now=clock()), a_rsa, kid="new"))
    assert server_a.hits == 2
    assert verifier.verify(token_a(a_rsa, clock))  # cached key survives the failed fetch
    assert server_a.hits == 2


def test_jwks_down_with_cold_cache(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, server_a: LocalJwksServer
) -> None:
    server_a.fail()
    with pytest.raises(JwksUnavailable):
        verifier.verify(token_a(a_rsa, clock))
    with pytest.raises(JwksUnavailable):  # within the interval: no retry, no network
        verifier.verify(token_a(a_rsa, clock))
    assert server_a.hits == 1
    server_a.serve(public_jwks(a_rsa))
    clock.advance(INTERVAL)
    assert verifier.verify(token_a(a_rsa, clock))
    assert server_a.hits == 2


def test_jwks_hanging_fails_fast(
    server_a: LocalJwksServer, a_rsa: SigningKey, clock: FakeClock
) -> None:
    verifier = JwtVerifier([issuer_a(server_a, jwks_timeout_seconds=0.2)], clock=clock)
    server_a.hang(10)
    started = time.monotonic()
    with pytest.raises(JwksUnavailable):
        verifier.verify(token_a(a_rsa, clock))
    assert time.monotonic() - started < FAST


# --- shape of the token --------------------------------------------------------------------
def test_oversized_token_rejected_before_any_parsing(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, server_a: LocalJwksServer
) -> None:
    token = token_a(a_rsa, clock, padding="x" * 9000)
    with pytest.raises(TokenTooLarge):
        verifier.verify(token)
    with pytest.raises(TokenTooLarge):
        verifier.verify("!" * 10_000)  # not even a JWT: the size check comes first
    assert server_a.hits == 0


def test_per_issuer_size_limit(
    server_a: LocalJwksServer, server_b: LocalJwksServer, a_rsa: SigningKey, clock: FakeClock
) -> None:
    small = issuer_a(server_a, max_token_bytes=1024)
    verifier = JwtVerifier([small, issuer_b(server_b)], clock=clock)
    with pytest.raises(TokenTooLarge):
        verifier.verify(token_a(a_rsa, clock, padding="x" * 1500))


@pytest.mark.parametrize("claim", ["exp", "iat", "sub"])
def test_missing_required_claim(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, claim: str
) -> None:
    claims = claims_for(ISS_A, AUD, now=clock())
    del claims[claim]
    with pytest.raises(MissingClaim):
        verifier.verify(mint(claims, a_rsa))


@pytest.mark.parametrize("sub", ["", 42, ["alice"]], ids=repr)
def test_sub_must_be_a_non_empty_string(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, sub: object
) -> None:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token_a(a_rsa, clock, sub=sub))
    assert type(info.value) is InvalidToken


GARBAGE = [
    "",
    "not-a-jwt",
    "a.b.c",
    "...",
    "Bearer abc.def.ghi",
    "é.é.é",
    f"{b64json([1, 2])}.{b64json({'iss': ISS_A})}.c2ln",
    f"{b64json({'alg': 'RS256'})}.{b64json(42)}.c2ln",
    f"{b64json({'alg': 'RS256', 'kid': 7})}.{b64json({'iss': ISS_A})}.c2ln",
    "eyJhbGciOiJSUzI1NiJ9.%%%.abc",
]


@pytest.mark.parametrize("token", GARBAGE)
def test_garbage_is_invalid_token(verifier: JwtVerifier, token: str) -> None:
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert type(info.value) is InvalidToken


def test_non_string_token(verifier: JwtVerifier) -> None:
    with pytest.raises(InvalidToken):
        verifier.verify(b"abc.def.ghi")  # type: ignore[arg-type]


def test_unexpected_errors_are_wrapped(server_a: LocalJwksServer, a_rsa: SigningKey) -> None:
    def broken_clock() -> float:
        raise RuntimeError("clock exploded")

    verifier = JwtVerifier([issuer_a(server_a)], clock=broken_clock)
    token = mint(claims_for(ISS_A, AUD, now=time.time()), a_rsa)
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert info.value.__cause__ is None
    assert "exploded" not in str(info.value)


# --- what the principal carries ------------------------------------------------------------
def test_scopes_groups_tenant_and_attributes(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock
) -> None:
    token = token_a(
        a_rsa,
        clock,
        scope="orders:read orders:write",
        scp=["profile"],
        tenant="acme",
        groups=["clerks"],
        **{"cognito:groups": ["admins", "clerks"]},
        email="alice@example.com",
        roles=["x", 3],
        address={"city": "Berlin"},
        email_verified=True,
    )
    principal = verifier.verify(token)
    assert principal.scopes == {"orders:read", "orders:write", "profile"}
    assert principal.tenant == "acme"
    attrs = principal.attributes
    assert attrs["scope"] == ("orders:read", "orders:write")
    assert attrs["cognito:groups"] == ("admins", "clerks")
    assert attrs["groups"] == ("clerks", "admins")  # union of the configured group claims
    assert attrs["email"] == ("alice@example.com",)
    assert attrs["aud"] == (AUD,)
    for dropped in ("roles", "address", "email_verified", "exp", "iat"):
        assert dropped not in attrs
    assert token not in principal.model_dump_json()


@pytest.mark.parametrize("tenant", ["", 7, ["acme"]], ids=repr)
def test_tenant_only_from_a_non_empty_string(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock, tenant: object
) -> None:
    assert verifier.verify(token_a(a_rsa, clock, tenant=tenant)).tenant is None


def test_scp_as_space_separated_string(
    verifier: JwtVerifier, a_rsa: SigningKey, clock: FakeClock
) -> None:
    principal = verifier.verify(token_a(a_rsa, clock, scp="a b"))
    assert principal.scopes == {"a", "b"}


def test_groups_claim_not_configured_is_not_trusted(
    server_a: LocalJwksServer, a_rsa: SigningKey, clock: FakeClock
) -> None:
    cfg = issuer_a(server_a, group_claims=("cognito:groups",), tenant_claim=None)
    verifier = JwtVerifier([cfg], clock=clock)
    principal = verifier.verify(token_a(a_rsa, clock, groups=["admins"], tenant="acme"))
    assert "groups" not in principal.attributes
    assert principal.tenant is None


# --- configuration -------------------------------------------------------------------------
@pytest.mark.parametrize("algorithms", [("HS256",), ("none",), ("RS256", "HS512"), ()])
def test_config_rejects_symmetric_and_none(algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError):
        IssuerConfig(
            name="x", issuer=ISS_A, audiences=(AUD,), jwks_uri=ISS_A, algorithms=algorithms
        )


@pytest.mark.parametrize(
    "overrides",
    [
        {"required_claims": ("exp", "sub")},
        {"jwks_uri": "file:///etc/passwd"},
        {"jwks_uri": "https://"},
        {"audiences": ()},
        {"name": "has:colon"},
        {"leeway_seconds": 301},
        {"unknown_field": 1},
    ],
    ids=repr,
)
def test_config_validation(overrides: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"name": "x", "issuer": ISS_A, "audiences": (AUD,)}
    with pytest.raises(ValidationError):
        IssuerConfig(**({"jwks_uri": f"{ISS_A}/jwks"} | fields | overrides))


def test_config_error_message_names_the_problem() -> None:
    with pytest.raises(ValidationError, match="asymmetric"):
        IssuerConfig(
            name="x", issuer=ISS_A, audiences=(AUD,), jwks_uri=ISS_A, algorithms=("HS256",)
        )


def test_duplicate_issuers_rejected(server_a: LocalJwksServer) -> None:
    with pytest.raises(ValueError, match="distinct"):
        JwtVerifier([issuer_a(server_a), issuer_a(server_a, name="other")])


# --- nothing secret in errors --------------------------------------------------------------
def test_errors_never_contain_the_token_or_signature(
    verifier: JwtVerifier,
    a_rsa: SigningKey,
    attacker: SigningKey,
    b_rsa: SigningKey,
    clock: FakeClock,
) -> None:
    now = clock()
    bad = [
        token_a(attacker, clock),
        token_a(a_rsa, clock, aud="nope"),
        token_a(a_rsa, clock, exp=int(now) - 3600),
        token_a(a_rsa, clock, nbf=int(now) + 3600),
        token_a(b_rsa, clock),
        mint(claims_for("https://evil", AUD, now=now), a_rsa),
        forge_hmac(claims_for(ISS_A, AUD, now=now), a_rsa.public_pem(), kid="a-rsa"),
        token_a(a_rsa, clock, padding="y" * 9000),
    ]
    for token in bad:
        with pytest.raises(GatekeeperError) as info:
            verifier.verify(token)
        exc = info.value
        text = f"{exc!s} {exc!r}"
        signature = token.rsplit(".", 1)[1]
        assert token not in text
        assert signature not in text
        assert exc.__cause__ is None
        assert exc.__context__ is None or exc.__suppress_context__


# --- property: nothing but a genuine token verifies ------------------------------------------
@pytest.fixture(scope="module")
def shared(a_rsa: SigningKey) -> Iterator[tuple[JwtVerifier, str]]:
    with LocalJwksServer(public_jwks(a_rsa)) as server:
        clock = FakeClock()
        verifier = JwtVerifier([issuer_a(server)], clock=clock)
        token = mint(claims_for(ISS_A, AUD, now=clock(), extra={"scope": "a b"}), a_rsa)
        verifier.verify(token)  # warm the cache
        yield verifier, token


def _flip(token: str, segment: int, bit: int) -> str:
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[segment] + "=" * (-len(parts[segment]) % 4)))
    raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
    parts[segment] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    return ".".join(parts)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segment=st.integers(0, 2), bit=st.integers(0, 4096))
def test_property_bit_flips_never_verify(
    shared: tuple[JwtVerifier, str], segment: int, bit: int
) -> None:
    verifier, token = shared
    forged = _flip(token, segment, bit)
    with pytest.raises(GatekeeperError) as info:
        verifier.verify(forged)
    assert forged not in str(info.value)


@settings(max_examples=150, deadline=None)
@given(
    garbage=st.one_of(
        st.text(max_size=300),
        st.lists(st.text("abcdefXYZ0189-_=+/", max_size=60), min_size=1, max_size=5).map(".".join),
    )
)
def test_property_garbage_raises_only_gatekeeper_errors(
    shared: tuple[JwtVerifier, str], garbage: str
) -> None:
    verifier, _ = shared
    with pytest.raises(GatekeeperError) as info:
        verifier.verify(garbage)
    if len(garbage) >= 16:
        assert garbage not in str(info.value)
