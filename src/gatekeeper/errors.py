"""Every way an authorization can fail, as one flat list of named errors.

Shaped after aws-jwt-verify's ``error.ts``: each failure is its own class so tests can assert on
the type, and each carries a stable ``reason`` code that ends up in the audit event. Messages
never contain the credential itself (no token, key secret or signature), only what is safe to log.

``outcome`` says how the handler answers: ``"unauthorized"`` (401: we do not know who is calling)
or ``"forbidden"`` (403/Deny: we know who, or cannot safely decide what they may do).
"""

from __future__ import annotations

from typing import ClassVar, Literal

Outcome = Literal["unauthorized", "forbidden"]


class GatekeeperError(Exception):
    """Base of all authorization failures; ``reason`` is the stable code for audit events."""

    reason: ClassVar[str] = "error"
    outcome: ClassVar[Outcome] = "unauthorized"


# --- request -------------------------------------------------------------------------------
class MalformedEvent(GatekeeperError):
    reason = "malformed_event"


class NotAnAuthorizerEvent(MalformedEvent):
    """A Lambda event of another kind (a proxy request, an SQS batch, …) reached the authorizer."""

    reason = "not_an_authorizer_event"


class NonCanonicalPath(MalformedEvent):
    """Dot or empty segments, escaped separators, ambiguous escapes: refused before anything."""

    reason = "non_canonical_path"


class UnsupportedRoute(MalformedEvent):
    """A route key the authorizer cannot decide on (a WebSocket route other than ``$connect``)."""

    reason = "unsupported_route"


class MissingCredentials(GatekeeperError):
    reason = "missing_credentials"


class AmbiguousCredentials(GatekeeperError):
    reason = "ambiguous_credentials"


class InvalidPrincipalId(GatekeeperError):
    """The credential names a principal id we cannot carry: longer than the bound (it becomes a
    DynamoDB key and goes into every response), or with control characters."""

    reason = "invalid_principal_id"


# --- JWT -----------------------------------------------------------------------------------
class InvalidToken(GatekeeperError):
    """The token cannot be parsed as a JWT (or a claim has the wrong type)."""

    reason = "invalid_token"


class TokenTooLarge(InvalidToken):
    reason = "token_too_large"


class UnknownIssuer(InvalidToken):
    reason = "unknown_issuer"


class UnsupportedAlgorithm(InvalidToken):
    reason = "unsupported_algorithm"


class KidNotFound(InvalidToken):
    reason = "unknown_kid"


class JwksUnavailable(InvalidToken):
    """The key is not cached and the JWKS endpoint cannot be reached (or is penalised)."""

    reason = "jwks_unavailable"


class DiscoveryUnavailable(JwksUnavailable):
    """OIDC discovery (``/.well-known/openid-configuration``) failed and no usable ``jwks_uri``
    is cached."""

    reason = "discovery_unavailable"


class InvalidDiscoveryDocument(DiscoveryUnavailable):
    """The discovery document is not an object, names another ``issuer`` than the configured
    one, or has no absolute http(s) ``jwks_uri``."""

    reason = "invalid_discovery_document"


class InvalidSignature(InvalidToken):
    reason = "invalid_signature"


class ExpiredToken(InvalidToken):
    reason = "token_expired"


class TokenNotYetValid(InvalidToken):
    reason = "token_not_yet_valid"


class InvalidAudience(InvalidToken):
    reason = "invalid_audience"


class InvalidIssuer(InvalidToken):
    reason = "invalid_issuer"


class MissingClaim(InvalidToken):
    reason = "missing_claim"


class InvalidScopeClaim(InvalidToken):
    """``scope``/``scp`` is neither a space-separated string nor a list of strings, or holds
    something that is not an RFC 6749 scope token."""

    reason = "invalid_scope_claim"


class InvalidClaimValue(InvalidToken):
    """A claim the issuer's configuration pins (``required_claim_values``: Cognito's
    ``token_use``, Entra ID's ``ver`` and ``tid``) has another value."""

    reason = "invalid_claim_value"


class KeyAlgorithmMismatch(InvalidToken):
    """The JWK for the token's kid is not for the token's ``alg`` (its own alg or key type)."""

    reason = "key_algorithm_mismatch"


class InvalidConfirmationClaim(InvalidToken):
    """``cnf`` is not an object, or its ``x5t#S256`` is not a base64url SHA-256 (RFC 8705)."""

    reason = "invalid_cnf_claim"


# --- mutual TLS ----------------------------------------------------------------------------
class InvalidClientCertificate(GatekeeperError):
    """The event's client certificate is missing its PEM, too large, or does not parse."""

    reason = "invalid_client_certificate"


class ExpiredClientCertificate(InvalidClientCertificate):
    reason = "client_certificate_expired"


class ClientCertificateNotYetValid(InvalidClientCertificate):
    reason = "client_certificate_not_yet_valid"


class RevokedClientCertificate(InvalidClientCertificate):
    reason = "client_certificate_revoked"


class UnknownClientCertificate(InvalidClientCertificate):
    """No mapping rule names a principal for the certificate (and no other credential)."""

    reason = "unknown_client_certificate"


class CertificateBindingMismatch(GatekeeperError):
    """A certificate-bound token (RFC 8705 ``cnf.x5t#S256``) without that certificate."""

    reason = "certificate_binding_mismatch"


# --- signed requests (RFC 9421) ----------------------------------------------------------
class MalformedSignature(GatekeeperError):
    """``Signature``/``Signature-Input`` missing one of the two, not structured fields, more
    than one signature, or without ``keyid``, ``nonce`` or ``created``."""

    reason = "malformed_signature"


class UnknownSigningKey(MalformedSignature):
    reason = "unknown_signing_key"


class SigningKeyRevoked(MalformedSignature):
    reason = "signing_key_revoked"


class InvalidRequestSignature(MalformedSignature):
    """The signature does not verify, or does not cover what it must."""

    reason = "invalid_request_signature"


class SignatureExpired(MalformedSignature):
    """``created`` outside the clock-skew window (or ``expires`` passed)."""

    reason = "signature_expired"


class ReplayedRequest(MalformedSignature):
    reason = "replayed_request"


class ReplayCheckUnavailable(MalformedSignature):
    """The nonce could not be recorded (no counters table, or it failed): fail closed."""

    reason = "replay_check_unavailable"


# --- API keys ------------------------------------------------------------------------------
class MalformedApiKey(GatekeeperError):
    reason = "malformed_api_key"


class UnknownApiKey(GatekeeperError):
    reason = "unknown_api_key"


class InvalidApiKeySecret(GatekeeperError):
    reason = "invalid_api_key_secret"


class RevokedApiKey(GatekeeperError):
    reason = "api_key_revoked"


class ExpiredApiKey(GatekeeperError):
    reason = "api_key_expired"


class RotatedApiKey(GatekeeperError):
    """The key was replaced by a rotation and its grace window has ended."""

    reason = "api_key_rotated"


# --- after authentication: we know who, so these are Deny (403) ----------------------------
class ConfigUnavailable(GatekeeperError):
    """RBAC data could not be read or is invalid: deny rather than guess."""

    reason = "config_unavailable"
    outcome = "forbidden"


class StoreUnavailable(GatekeeperError):
    """The store failed while authenticating (e.g. API key lookup): we cannot tell who it is."""

    reason = "store_unavailable"


class TenantMismatch(GatekeeperError):
    reason = "tenant_mismatch"
    outcome = "forbidden"


class ResponseTooLarge(GatekeeperError):
    """The authorizer response would exceed its size bound: deny just this request instead."""

    reason = "response_too_large"
    outcome = "forbidden"
