"""Provider presets: each provider's token, as it issues it, accepted; the other kind refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from gatekeeper.clock import FakeClock
from gatekeeper.errors import InvalidClaimValue, InvalidToken, MissingClaim
from gatekeeper.identity.jwt_verifier import IssuerConfig, JwtVerifier
from gatekeeper.testing import LocalJwksServer, SigningKey, claims_for, mint, public_jwks, rsa_key

TID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TID = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
COGNITO = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
APP_CLIENT = "4f1k2example0client0id"
GROUPS: dict[str, Any] = {"cognito:groups": ["ops"]}


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return rsa_key("p1")


@pytest.fixture
def server(key: SigningKey) -> Iterator[LocalJwksServer]:
    with LocalJwksServer(public_jwks(key)) as srv:
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def verify(
    server: LocalJwksServer,
    clock: FakeClock,
    key: SigningKey,
    entry: dict[str, Any],
    audience: str | None,
    subject: str = "user-1",
    **claims: Any,
) -> Any:
    config = IssuerConfig(**{"name": "idp", "jwks_uri": server.uri, **entry})
    token = mint(
        claims_for(config.issuer, audience, now=clock(), subject=subject, extra=claims), key
    )
    return JwtVerifier([config], clock=clock).verify(token)


# --- Cognito ----------------------------------------------------------------------------------
COGNITO_ACCESS = {"issuer": COGNITO, "audiences": [APP_CLIENT], "preset": "cognito_access"}
COGNITO_ID = {"issuer": COGNITO, "audiences": [APP_CLIENT], "preset": "cognito_id"}


def test_cognito_access_token(server: LocalJwksServer, clock: FakeClock, key: SigningKey) -> None:
    principal = verify(
        server,
        clock,
        key,
        COGNITO_ACCESS,
        None,
        "3f1c2a5e-uuid",
        token_use="access",
        client_id=APP_CLIENT,
        scope="orders/read aws.cognito.signin.user.admin",
        **GROUPS,
        username="alice",
    )
    assert principal.principal_id == "idp:3f1c2a5e-uuid"
    assert principal.attributes["groups"] == ("ops",)
    assert "orders/read" in principal.scopes


def test_cognito_id_token_is_not_an_access_token(
    server: LocalJwksServer, clock: FakeClock, key: SigningKey
) -> None:
    with pytest.raises(MissingClaim):  # an id token has no client_id
        verify(server, clock, key, COGNITO_ACCESS, APP_CLIENT, token_use="id")
    with pytest.raises(InvalidClaimValue) as info:  # even one carrying a client_id
        verify(server, clock, key, COGNITO_ACCESS, APP_CLIENT, token_use="id", client_id=APP_CLIENT)
    assert info.value.reason == "invalid_claim_value"


def test_cognito_id_token(server: LocalJwksServer, clock: FakeClock, key: SigningKey) -> None:
    principal = verify(
        server,
        clock,
        key,
        COGNITO_ID,
        APP_CLIENT,
        token_use="id",
        email="alice@example.com",
        **GROUPS,
    )
    assert principal.attributes["groups"] == ("ops",)
    with pytest.raises(InvalidClaimValue):
        verify(server, clock, key, COGNITO_ID, APP_CLIENT, token_use="access")


# --- Auth0 and Okta -----------------------------------------------------------------------------
def test_auth0_access_token(server: LocalJwksServer, clock: FakeClock, key: SigningKey) -> None:
    entry = {
        "issuer": "https://example.eu.auth0.com/",
        "audiences": ["https://orders.example.com"],
        "preset": "auth0",
    }
    principal = verify(
        server,
        clock,
        key,
        entry,
        "https://orders.example.com",
        "auth0|64f0c1",
        scope="openid orders:read",
        permissions=["orders:read", "orders:write"],
    )
    assert principal.principal_id == "idp:auth0|64f0c1"
    assert principal.attributes["groups"] == ("orders:read", "orders:write")


def test_okta_access_token(server: LocalJwksServer, clock: FakeClock, key: SigningKey) -> None:
    entry = {
        "issuer": "https://example.okta.com/oauth2/default",
        "audiences": ["api://default"],
        "preset": "okta",
    }
    principal = verify(
        server,
        clock,
        key,
        entry,
        "api://default",
        "alice@example.com",
        scp=["orders.read"],
        cid="0oa1b2c3",
        groups=["Everyone", "ops"],
    )
    assert principal.scopes == {"orders.read"}
    assert principal.attributes["groups"] == ("Everyone", "ops")


# --- Entra ID ---------------------------------------------------------------------------------
ENTRA_V2 = {
    "issuer": f"https://login.microsoftonline.com/{TID}/v2.0",
    "audiences": ["6e74172b-be56-4843-9ff4-e66a39bb12e3"],
    "preset": "entra_v2",
}
ENTRA_V1 = {
    "issuer": f"https://sts.windows.net/{TID}/",
    "audiences": ["api://orders"],
    "preset": "entra_v1",
}
OID = "690222be-ff1a-4d56-abd1-7e4f7d38e474"


def test_entra_v2_access_token(server: LocalJwksServer, clock: FakeClock, key: SigningKey) -> None:
    principal = verify(
        server,
        clock,
        key,
        ENTRA_V2,
        "6e74172b-be56-4843-9ff4-e66a39bb12e3",
        "pairwise-sub-per-app",
        oid=OID,
        tid=TID,
        ver="2.0",
        scp="Orders.Read Orders.Write",
        roles=["Orders.Admin"],
    )
    assert principal.principal_id == f"idp:{OID}"  # oid: the same user in every app
    assert principal.scopes == {"Orders.Read", "Orders.Write"}
    assert principal.attributes["groups"] == ("Orders.Admin",)


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"oid": OID, "tid": OTHER_TID, "ver": "2.0"}, InvalidClaimValue),  # another tenant
        ({"oid": OID, "tid": TID, "ver": "1.0"}, InvalidClaimValue),  # a v1 token
        ({"oid": OID, "ver": "2.0"}, MissingClaim),  # no tid
        ({"tid": TID, "ver": "2.0"}, MissingClaim),  # no oid (an app-only token without it)
    ],
    ids=["other-tenant", "v1-token", "no-tid", "no-oid"],
)
def test_entra_v2_refusals(
    server: LocalJwksServer,
    clock: FakeClock,
    key: SigningKey,
    claims: dict[str, Any],
    error: type[InvalidToken],
) -> None:
    with pytest.raises(error):
        verify(server, clock, key, ENTRA_V2, "6e74172b-be56-4843-9ff4-e66a39bb12e3", **claims)


def test_entra_v1_access_token(server: LocalJwksServer, clock: FakeClock, key: SigningKey) -> None:
    principal = verify(
        server,
        clock,
        key,
        ENTRA_V1,
        "api://orders",
        oid=OID,
        tid=TID,
        ver="1.0",
        appid="c44b4083",
        scp="user_impersonation",
    )
    assert principal.principal_id == f"idp:{OID}"
    with pytest.raises(InvalidClaimValue):
        verify(server, clock, key, ENTRA_V1, "api://orders", oid=OID, tid=TID, ver="2.0")


# --- Google -----------------------------------------------------------------------------------
def test_google_id_token(server: LocalJwksServer, clock: FakeClock, key: SigningKey) -> None:
    client = "1234-abc.apps.googleusercontent.com"
    entry = {
        "issuer": "https://accounts.google.com",
        "audiences": [client],
        "preset": "google",
        "required_claim_values": {"hd": ["example.com"]},
    }
    principal = verify(
        server,
        clock,
        key,
        entry,
        client,
        "110169484474386276334",
        email="alice@example.com",
        email_verified=True,
        hd="example.com",
    )
    assert principal.principal_id == "idp:110169484474386276334"
    with pytest.raises(MissingClaim):  # a consumer account: no hosted domain
        verify(server, clock, key, entry, client, email="bob@gmail.com")


# --- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "issuer"),
    [
        ("auth0", "https://example.eu.auth0.com"),  # Auth0's iss ends with "/"
        ("okta", "https://example.okta.com"),  # the org server: not for your APIs
        ("entra_v2", f"https://sts.windows.net/{TID}/"),  # the v1 issuer
        ("entra_v1", f"https://login.microsoftonline.com/{TID}/v2.0"),
        ("entra_v2", "https://login.microsoftonline.com/common/v2.0"),  # not one tenant
        ("google", "accounts.google.com"),
        ("cognito_access", "https://cognito-idp.eu-west-1.amazonaws.com"),
    ],
)
def test_a_preset_checks_the_issuer_form(preset: str, issuer: str) -> None:
    with pytest.raises(ValidationError, match="this preset's issuer looks like"):
        IssuerConfig(name="x", issuer=issuer, audiences=["a"], preset=preset)


def test_explicit_fields_win_over_the_preset() -> None:
    config = IssuerConfig(
        name="x",
        issuer=COGNITO,
        audiences=["a"],
        preset="cognito_access",
        group_claims=("groups",),
        required_claim_values={"token_use": ["x"]},
    )
    assert config.group_claims == ("groups",)
    assert config.audience_claim == "client_id"
    assert config.required_claim_values == {"token_use": ("x",)}


def test_presets_work_from_the_environment() -> None:
    from gatekeeper.config import Settings

    settings = Settings.from_env(
        {
            "GATEKEEPER_CONFIG_TABLE": "cfg",
            "GATEKEEPER_ISSUERS": f'[{{"name": "entra", "issuer": "https://login.microsoftonline.com/'
            f'{TID}/v2.0", "audiences": ["app"], "preset": "entra_v2"}}]',
        }
    )
    [entra] = settings.issuers
    assert entra.subject_claim == "oid" and entra.required_claim_values["tid"] == (TID,)
