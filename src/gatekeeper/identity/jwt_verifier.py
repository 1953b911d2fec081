"""JWT authentication against configured issuers, each with its own JWKS, producing a Principal.

Shaped after aws-jwt-verify's ``jwt-rsa.ts``: cheap checks first (size, then the unverified
header and ``iss`` to pick the issuer and its allowed algorithms), then the key by ``kid``,
then PyJWT for the signature, issuer, audience and required claims. Time claims are checked
here against the injected clock, because PyJWT only knows the wall clock. Every failure is a
named :mod:`gatekeeper.errors` type; messages never carry the token, signature or key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import jwt
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gatekeeper.clock import Clock, system_clock
from gatekeeper.errors import (
    ExpiredToken,
    GatekeeperError,
    InvalidAudience,
    InvalidClaimValue,
    InvalidConfirmationClaim,
    InvalidIssuer,
    InvalidScopeClaim,
    InvalidSignature,
    InvalidToken,
    MissingClaim,
    TokenNotYetValid,
    TokenTooLarge,
    UnknownIssuer,
    UnsupportedAlgorithm,
)
from gatekeeper.identity.discovery import DocumentFetch, OidcDiscovery
from gatekeeper.identity.https import fetch_json
from gatekeeper.identity.jwks import JwksCache, JwksFetch, fetch_jwks
from gatekeeper.identity.presets import Preset, apply_preset
from gatekeeper.identity.principal import SCOPE_TOKEN, Principal, checked_principal_id

ASYMMETRIC_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MANDATORY_CLAIMS: Final = ("exp", "iat", "sub")
GROUPS_ATTRIBUTE: Final = "groups"
DEFAULT_MAX_TOKEN_BYTES: Final = 8192

NonEmpty = Annotated[str, Field(min_length=1)]


class IssuerConfig(BaseModel):
    """One trusted token issuer (an OIDC provider, a Cognito user pool, ...).

    Example::

        IssuerConfig(
            name="corp",
            issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc",
            audiences=("4f1k2...",),
            jwks_uri="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/.well-known/jwks.json",
            audience_claim="client_id",  # Cognito access tokens
        )
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Short id; prefixes principal ids as '<name>:<sub>', so no ':'.",
    )
    issuer: NonEmpty = Field(description="The exact 'iss' value.")
    audiences: tuple[NonEmpty, ...] = Field(min_length=1)
    jwks_uri: str | None = Field(
        default=None,
        description="Where the keys are; absent: read from the issuer's OIDC discovery document "
        "(<issuer>/.well-known/openid-configuration).",
    )
    algorithms: tuple[str, ...] = Field(default=("RS256", "ES256"), min_length=1)
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    required_claims: tuple[NonEmpty, ...] = MANDATORY_CLAIMS
    max_token_bytes: int = Field(default=DEFAULT_MAX_TOKEN_BYTES, ge=256, le=65_536)
    audience_claim: Literal["aud", "client_id"] = Field(
        default="aud", description="Cognito access tokens carry 'client_id', not 'aud'."
    )
    tenant_claim: NonEmpty | None = "tenant"
    group_claims: tuple[NonEmpty, ...] = ("groups", "cognito:groups")
    kid_refetch_interval_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="At most one JWKS refetch per interval."
    )
    jwks_timeout_seconds: float = Field(default=2.0, gt=0, le=10)
    jwks_max_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    jwks_max_age_seconds: float = Field(
        default=3600.0,
        ge=60,
        le=86_400,
        description="Re-check a key set this old, so keys the issuer withdrew stop working.",
    )
    preset: Preset | None = Field(
        default=None,
        description="A provider's details (gatekeeper.identity.presets): fills the fields left "
        "out, adds required claim values and checks the issuer's form.",
    )
    required_claim_values: dict[NonEmpty, tuple[NonEmpty, ...]] = Field(
        default_factory=dict,
        description="Claims that must be present, as a string equal to one of the values "
        "(e.g. Cognito's token_use, Entra ID's tid).",
    )
    subject_claim: NonEmpty = Field(
        default="sub",
        description="The claim the principal id is made of ('<name>:<value>'); Entra ID: oid.",
    )
    jwks_stale_if_error_seconds: float = Field(
        default=3600.0,
        ge=0,
        le=86_400,
        description="While the JWKS endpoint fails, cached keys keep working this long past "
        "jwks_max_age_seconds, and no longer.",
    )

    @model_validator(mode="before")
    @classmethod
    def _preset(cls, data: Any) -> Any:
        return apply_preset(data) if isinstance(data, Mapping) else data

    @field_validator("jwks_uri")
    @classmethod
    def _http_uri(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("jwks_uri must be an absolute http(s) URL")
        return value

    @model_validator(mode="after")
    def _discoverable(self) -> IssuerConfig:
        if self.jwks_uri is None:
            parts = urlsplit(self.issuer)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ValueError(
                    "without jwks_uri, issuer must be an http(s) URL (OIDC discovery reads "
                    "<issuer>/.well-known/openid-configuration)"
                )
        return self

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        rejected = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if rejected:
            raise ValueError(
                f"algorithms {rejected} not allowed: only asymmetric algorithms "
                f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); 'none' accepts unsigned tokens "
                "and HS* would let anyone who holds the verification key mint tokens"
            )
        return value

    @field_validator("required_claims")
    @classmethod
    def _mandatory_claims(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        missing = [claim for claim in MANDATORY_CLAIMS if claim not in value]
        if missing:
            raise ValueError(f"required_claims must include {', '.join(missing)}")
        return value


@dataclass(frozen=True, slots=True)
class _Issuer:
    config: IssuerConfig
    jwks: JwksCache


# PyJWT exceptions in the order to test them (subclasses first), and what each means here.
_PYJWT_ERRORS: Final[tuple[tuple[type[Exception], type[GatekeeperError], str], ...]] = (
    (jwt.InvalidSignatureError, InvalidSignature, "token signature does not verify"),
    (jwt.ExpiredSignatureError, ExpiredToken, "token has expired"),
    (jwt.ImmatureSignatureError, TokenNotYetValid, "token is not valid yet"),
    (jwt.InvalidAudienceError, InvalidAudience, "token audience is not accepted"),
    (jwt.InvalidIssuerError, InvalidIssuer, "token issuer does not match"),
    (jwt.InvalidAlgorithmError, UnsupportedAlgorithm, "token algorithm is not allowed"),
    (jwt.PyJWTError, InvalidToken, "token is malformed"),
)


class JwtVerifier:
    """Verifies bearer JWTs of the configured issuers; one instance per container (JWKS cache).

    Example::

        verifier = JwtVerifier(settings.issuers)
        principal = verifier.verify(token)  # or raises a GatekeeperError subclass
    """

    def __init__(
        self,
        issuers: Sequence[IssuerConfig],
        *,
        fetch: JwksFetch = fetch_jwks,
        discover: DocumentFetch = fetch_json,
        clock: Clock = system_clock,
    ) -> None:
        for field in ("name", "issuer"):
            values = [getattr(cfg, field) for cfg in issuers]
            if len(set(values)) != len(values):
                raise ValueError(f"issuer configs must have distinct '{field}' values")
        self._clock = clock
        self._issuers: Mapping[str, _Issuer] = {
            cfg.issuer: _Issuer(cfg, _jwks_cache(cfg, fetch, discover, clock)) for cfg in issuers
        }
        self._max_token_bytes = max(
            (cfg.max_token_bytes for cfg in issuers), default=DEFAULT_MAX_TOKEN_BYTES
        )

    def verify(self, token: str) -> Principal:
        """The principal the token speaks for; raises a :class:`GatekeeperError` otherwise."""
        try:
            return self._verify(token)
        except GatekeeperError:
            raise
        except Exception:  # fail closed, and never echo a foreign message that may hold the token
            raise InvalidToken("token could not be verified") from None

    def _verify(self, token: str) -> Principal:
        if not isinstance(token, str):
            raise InvalidToken("token must be a string")
        # len() is O(1) and a valid JWT is ASCII, so characters == bytes; anything longer is
        # refused before a single byte is decoded.
        if len(token) > self._max_token_bytes:
            raise TokenTooLarge(f"token longer than {self._max_token_bytes} bytes")
        header, unverified = _parse_unverified(token)

        iss = unverified.get("iss")
        if iss is None:
            raise MissingClaim("token has no 'iss' claim")
        if not isinstance(iss, str):
            raise InvalidToken("'iss' claim must be a string")
        entry = self._issuers.get(iss)
        if entry is None:
            raise UnknownIssuer("token issuer is not configured")
        cfg = entry.config
        if len(token) > cfg.max_token_bytes:
            raise TokenTooLarge(f"token longer than {cfg.max_token_bytes} bytes ({cfg.name})")

        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in cfg.algorithms:
            raise UnsupportedAlgorithm(f"token algorithm is not allowed for issuer {cfg.name}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token header has no 'kid'")
        key = entry.jwks.get_key(kid, alg)

        claims = _decode(token, key, alg, cfg)
        _check_times(claims, now=self._clock(), leeway=cfg.leeway_seconds)
        return _principal(cfg, claims)


def _jwks_cache(
    cfg: IssuerConfig, fetch: JwksFetch, discover: DocumentFetch, clock: Clock
) -> JwksCache:
    """The issuer's key cache: at its ``jwks_uri``, or at the one its discovery names."""
    uri: str | OidcDiscovery = cfg.jwks_uri or OidcDiscovery(
        cfg.issuer,
        fetch=discover,
        clock=clock,
        timeout=cfg.jwks_timeout_seconds,
        max_bytes=cfg.jwks_max_bytes,
        max_age=cfg.jwks_max_age_seconds,
        stale_if_error=cfg.jwks_stale_if_error_seconds,
    )
    return JwksCache(
        uri,
        fetch=fetch,
        clock=clock,
        refetch_interval=cfg.kid_refetch_interval_seconds,
        timeout=cfg.jwks_timeout_seconds,
        max_bytes=cfg.jwks_max_bytes,
        max_age=cfg.jwks_max_age_seconds,
        stale_if_error=cfg.jwks_stale_if_error_seconds,
    )


def _parse_unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload before any trust: only used to pick the issuer, algorithm and key."""
    try:
        decoded = jwt.decode_complete(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidToken("token is not a well-formed JWT") from None
    header, payload = decoded["header"], decoded["payload"]
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise InvalidToken("token is not a well-formed JWT")
    return header, payload


def _decode(token: str, key: jwt.PyJWK, alg: str, cfg: IssuerConfig) -> dict[str, Any]:
    """Signature, issuer, audience and required-claim presence, by PyJWT.

    The bare public key is passed with ``algorithms=[alg]``: a ``PyJWK`` would verify with the
    algorithm inferred for the JWK (RS256 for any RSA key without ``alg``), not the token's
    (already allowed and checked against the key) algorithm. Time claims are checked by
    :func:`_check_times`, so PyJWT's wall-clock checks are off.
    """
    by_aud = cfg.audience_claim == "aud"
    required = list(dict.fromkeys((*cfg.required_claims, cfg.subject_claim)))
    if not by_aud:
        required.append(cfg.audience_claim)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[alg],
            audience=list(cfg.audiences) if by_aud else None,
            issuer=cfg.issuer,
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": by_aud,
                "verify_iss": True,
                "require": required,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.MissingRequiredClaimError as exc:
        raise MissingClaim(f"token has no '{exc.claim}' claim") from None
    except jwt.PyJWTError as exc:
        for pyjwt_error, error, message in _PYJWT_ERRORS:
            if isinstance(exc, pyjwt_error):
                raise error(message) from None
        raise InvalidToken("token is malformed") from None
    if not by_aud and claims[cfg.audience_claim] not in cfg.audiences:
        raise InvalidAudience(f"token '{cfg.audience_claim}' is not accepted")
    sub = claims.get(cfg.subject_claim)
    if not isinstance(sub, str) or not sub:
        raise InvalidToken(f"'{cfg.subject_claim}' claim must be a non-empty string")
    for name, allowed in cfg.required_claim_values.items():
        value = claims.get(name)
        if value is None:
            raise MissingClaim(f"token has no '{name}' claim")
        if not isinstance(value, str) or value not in allowed:
            raise InvalidClaimValue(f"token '{name}' is not accepted for issuer {cfg.name}")
    return claims


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int in Python; JSON also admits NaN/Infinity, which would never expire.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"'{name}' claim must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidToken(f"'{name}' claim must be a finite number")
    return value


def _check_times(claims: Mapping[str, Any], *, now: float, leeway: float) -> None:
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is not None and now >= exp + leeway:
        raise ExpiredToken("token has expired")
    if nbf is not None and now < nbf - leeway:
        raise TokenNotYetValid("token is not valid yet ('nbf')")
    if iat is not None and now < iat - leeway:
        raise TokenNotYetValid("token was issued in the future ('iat')")


def _strings(name: str, value: Any) -> tuple[str, ...] | None:
    """A claim as a tuple of strings, or None if it is not a string or a list of strings."""
    if isinstance(value, str):
        return tuple(value.split()) if name in ("scope", "scp") else (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


SCOPE_CLAIMS: Final = ("scope", "scp")


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """``scope`` (RFC 8693: space-separated) and ``scp`` (a string or a list, as Entra ID and
    Okta send it); anything else is refused, never silently read as "no scopes"."""
    scopes: list[str] = []
    for name in SCOPE_CLAIMS:
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            items = value.split(" ") if value else []
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = value
        else:
            raise InvalidScopeClaim(f"'{name}' claim must be a string or a list of strings")
        for item in items:
            if not SCOPE_TOKEN.match(item):
                raise InvalidScopeClaim(f"'{name}' claim holds an invalid scope")
        scopes.extend(items)
    return frozenset(scopes)


_X5T_S256: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")


def _bound_thumbprint(claims: Mapping[str, Any]) -> str | None:
    """RFC 8705's ``cnf.x5t#S256``. A confirmation we cannot enforce (another method, such as
    DPoP's ``jkt``) is refused rather than accepted as a plain bearer token."""
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    if not isinstance(cnf, dict):
        raise InvalidConfirmationClaim("'cnf' claim must be an object")
    x5t = cnf.get("x5t#S256")
    if not isinstance(x5t, str) or not _X5T_S256.match(x5t):
        raise InvalidConfirmationClaim("'cnf' claim has no usable 'x5t#S256'")
    return x5t


def _principal(cfg: IssuerConfig, claims: Mapping[str, Any]) -> Principal:
    scopes = _scopes(claims)
    bound = _bound_thumbprint(claims)
    attributes: dict[str, tuple[str, ...]] = {}
    for name, value in claims.items():
        strings = _strings(name, value)
        if strings is not None:
            attributes[name] = strings
    # "groups" is the union of the configured group claims (each also kept under its own
    # name), so one claim mapping on "groups" serves every issuer: Cognito says
    # "cognito:groups", others "groups" or "roles". A raw "groups" claim that is not configured
    # as a group claim is not trusted as one.
    groups = tuple(dict.fromkeys(g for c in cfg.group_claims for g in attributes.get(c, ())))
    attributes.pop(GROUPS_ATTRIBUTE, None)
    if groups:
        attributes[GROUPS_ATTRIBUTE] = groups
    tenant = claims.get(cfg.tenant_claim) if cfg.tenant_claim else None
    return Principal(
        principal_id=checked_principal_id(f"{cfg.name}:{claims[cfg.subject_claim]}"),
        auth_method="jwt",
        issuer=cfg.name,
        tenant=tenant if isinstance(tenant, str) and tenant else None,
        scopes=scopes,
        attributes=attributes,
        bound_thumbprint=bound,
    )
