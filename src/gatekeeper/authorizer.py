"""One authorization, end to end: event → principal → RBAC decision → response + audit event.

The order is fixed and every step fails closed: a problem before we know who is calling is a 401
(``Unauthorized``); a problem after that is a Deny (403). Nothing here raises: every outcome,
including an unexpected exception, comes back as an :class:`AuthorizerResult` with its audit event.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from gatekeeper.answer import Facts, audit_event, flagged, minimal_deny, response_for
from gatekeeper.audit.emit import AuditEmitter, emitter_from_settings
from gatekeeper.audit.event import AuditEvent
from gatekeeper.clock import Clock, system_clock
from gatekeeper.config import Settings
from gatekeeper.errors import (
    AmbiguousCredentials,
    ConfigUnavailable,
    GatekeeperError,
    MissingCredentials,
    ResponseTooLarge,
    StoreUnavailable,
    TenantMismatch,
    UnknownApiKey,
)
from gatekeeper.identity.api_keys import check_key, parse_key
from gatekeeper.identity.jwks import fetch_jwks
from gatekeeper.identity.jwt_verifier import JwtVerifier
from gatekeeper.identity.mtls import (
    certificate_principal,
    check_binding,
    check_certificate,
    find_mapping,
    parse_certificate,
)
from gatekeeper.identity.principal import Principal
from gatekeeper.identity.signatures import DynamoNonceStore, NonceStore, verify_signed_request
from gatekeeper.identity.token_cache import TokenCache
from gatekeeper.policy_builder import (
    BasePolicy,
    build_base,
    policy_for_request,
    request_only,
)
from gatekeeper.rate_limit.brute_force import BruteForceGuard
from gatekeeper.rate_limit.counters import CounterStore, DynamoCounterStore
from gatekeeper.rate_limit.limiter import LimitDecision, RateLimiter, applicable
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.evaluator import (
    evaluate,
    evaluate_wildcard,
    grants_for,
    resolve_roles,
)
from gatekeeper.rbac.model import ConfigSnapshot
from gatekeeper.requests import AccessRequest, EventShape, parse_event
from gatekeeper.store.config_cache import ConfigCache
from gatekeeper.store.config_store import ConfigStore, DynamoConfigStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass(frozen=True)
class AuthorizerResult:
    """What the handler returns (``response``) or whether it must answer 401 (``unauthorized``)."""

    audit: AuditEvent
    response: dict[str, Any] | None = None
    unauthorized: bool = False
    principal: Principal | None = field(default=None, repr=False)
    limit: LimitDecision | None = None


class Authorizer:
    """Holds the per-container state (config cache, JWKS cache); one instance per container."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: ConfigCache,
        jwt_verifier: JwtVerifier,
        emitter: AuditEmitter,
        limiter: RateLimiter | None = None,
        guard: BruteForceGuard | None = None,
        clock: Clock = system_clock,
        perf_counter: Callable[[], float] = time.perf_counter,
        token_cache: TokenCache | None = None,
        nonces: NonceStore | None = None,
    ) -> None:
        self._settings = settings
        self._config = config
        self._jwt = jwt_verifier
        self._emitter = emitter
        self._limiter = limiter or RateLimiter(_NoCounters(), clock=clock)
        self._guard = guard
        self._clock = clock
        self._perf = perf_counter
        self._policies = PolicyMemo(settings.cache_max_entries)
        self._limits_version: int | None = None
        self._tokens = token_cache  # None: every JWT is verified
        self._nonces = nonces  # None: signed requests are refused (no replay check)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        logger: Logger,
        store: ConfigStore | None = None,
        counters: CounterStore | None = None,
        emitter: AuditEmitter | None = None,
        clock: Clock = system_clock,
        nonces: NonceStore | None = None,
    ) -> Authorizer:
        """Build clients once per container (short timeouts: the authorizer answers in ms).

        Without a counters table, brute-force blocking is off and every limit rule behaves as
        if its counters were failing (its ``on_error`` policy, with a metric), never silently.
        """
        client = None
        if store is None or (counters is None and settings.counters_table):
            client = _dynamodb_client(settings)
        if store is None:
            assert client is not None
            store = DynamoConfigStore(client, settings.config_table)
        if counters is None and settings.counters_table and client is not None:
            counters = DynamoCounterStore(client, settings.counters_table)
        if nonces is None and settings.counters_table:
            client = client or _dynamodb_client(settings)
            nonces = DynamoNonceStore(client, settings.counters_table)
        guard = None
        if counters is not None:
            guard = BruteForceGuard(
                counters,
                clock=clock,
                threshold=settings.brute_force_threshold,
                window_seconds=settings.brute_force_window_seconds,
                block_seconds=settings.brute_force_block_seconds,
                cache_seconds=settings.block_cache_seconds,
            )
        limiter = RateLimiter(
            counters or _NoCounters(), clock=clock, max_lease_fraction=settings.lease_max_fraction
        )
        tokens = TokenCache(
            max_entries=settings.cache_max_entries,
            jwks_max_age=min((i.jwks_max_age_seconds for i in settings.issuers), default=3600.0),
            clock=clock,
        )
        return cls(
            settings,
            config=ConfigCache(
                store,
                clock=clock,
                refresh_seconds=settings.config_refresh_seconds,
                max_entries=settings.cache_max_entries,
            ),
            jwt_verifier=JwtVerifier(settings.issuers, clock=clock, fetch=tokens.watch(fetch_jwks)),
            emitter=emitter or emitter_from_settings(settings, logger),
            limiter=limiter,
            guard=guard,
            clock=clock,
            nonces=nonces,
            token_cache=tokens,
        )

    def authorize(self, event: Any) -> AuthorizerResult:
        started = self._perf()
        facts = Facts()
        try:
            facts.request = parse_event(
                event,
                api_key_prefix=self._settings.api_key_prefix,
                tenant_header=self._settings.tenant_header,
                query_token_parameter=self._settings.websocket_token_parameter or None,
            )
        except GatekeeperError as exc:
            return self._finish(facts, started, unauthorized=True, reason=exc.reason)
        except Exception:  # fail closed on anything unexpected, without echoing its message
            return self._finish(facts, started, unauthorized=True, reason="internal_error")

        blocked = self._check_block(facts)  # before any signature work: blocks must be cheap
        if blocked is not None:
            return self._finish(facts, started, reason=blocked)

        try:
            facts.principal = self._identify(facts.request, facts)
        except GatekeeperError as exc:
            self._record_failure(facts, exc.reason)
            return self._finish(facts, started, unauthorized=True, reason=exc.reason)
        except Exception:
            return self._finish(facts, started, unauthorized=True, reason="internal_error")

        try:
            self._decide(facts)
        except GatekeeperError as exc:
            return self._finish(facts, started, reason=exc.reason)
        except Exception:
            return self._finish(facts, started, reason="internal_error")
        assert facts.decision is not None
        if facts.limit is not None and not facts.limit.allowed:
            return self._finish(facts, started, reason=facts.limit.reason or "rate_limited")
        return self._finish(facts, started, reason=facts.decision.reason)

    # --- steps -------------------------------------------------------------------------------
    def _limits(self, snapshot: ConfigSnapshot) -> tuple[LimitRule, ...]:
        """Stored rules, plus the configured defaults that no stored rule overrides by id."""
        defaults = self._settings.default_limits
        if not defaults:
            return snapshot.limits
        stored = {rule.rule_id for rule in snapshot.limits}
        return snapshot.limits + tuple(r for r in defaults if r.rule_id not in stored)

    def _check_block(self, facts: Facts) -> str | None:
        """The deny reason if the source IP is blocked (or the blocklist cannot be read)."""
        request = facts.request
        if self._guard is None or request is None or not request.source_ip:
            return None
        try:
            facts.block = self._guard.blocked(request.source_ip)
        except Exception:  # fail closed: brute-force protection is not optional once configured
            return "blocklist_unavailable"
        return "blocked" if facts.block is not None else None

    def _record_failure(self, facts: Facts, reason: str) -> None:
        if self._guard is None or facts.request is None:
            return
        with contextlib.suppress(Exception):  # counting must never change the 401
            facts.block = self._guard.record_failure(
                facts.request.source_ip, facts.presented_key_id, reason
            )

    def _identify(self, request: AccessRequest, facts: Facts) -> Principal:
        """The credential, and (with ``GATEKEEPER_MTLS``) the client certificate: a presented
        certificate is checked (validity, revocation) whatever the credential, a signature
        included; alone, it names the principal by a mapping rule. A certificate-bound token
        (RFC 8705) needs the certificate it names, so without mTLS it is always refused."""
        cert = None
        if request.client_cert is not None and self._settings.mtls:
            cert = parse_certificate(request.client_cert.pem)
            try:
                snapshot = self._config.snapshot()
            except Exception:
                raise StoreUnavailable("certificate rules could not be read") from None
            check_certificate(cert, self._clock(), snapshot.cert_revocations)
            creds = request.credentials
            if not creds.present and not creds.ambiguous and request.signed is None:
                return certificate_principal(cert, find_mapping(cert, snapshot.cert_mappings))
        if request.signed is not None:  # a signed request: the signature names the principal
            return self._verify_signature(request)
        principal = self._authenticate(request, facts)
        check_binding(principal, cert)
        return principal

    def _verify_signature(self, request: AccessRequest) -> Principal:
        """A signed request (RFC 9421): the signature is the credential, alone."""
        assert request.signed is not None
        if request.credentials.present or request.credentials.ambiguous:
            raise AmbiguousCredentials("a signed request carries no other credential")
        try:
            snapshot = self._config.snapshot()
        except Exception:
            raise StoreUnavailable("signing keys could not be read") from None
        return verify_signed_request(
            request.method,
            request.signed,
            snapshot.signing_keys,
            now=self._clock(),
            nonces=self._nonces,
            max_age=self._settings.signature_max_age_seconds,
            skew=self._settings.signature_clock_skew_seconds,
        )

    def _authenticate(self, request: AccessRequest, facts: Facts) -> Principal:
        creds = request.credentials
        if creds.ambiguous:
            raise AmbiguousCredentials("both a bearer token and an API key were presented")
        if creds.api_key is not None:
            key_id, secret = parse_key(
                creds.api_key.get_secret_value(), self._settings.api_key_prefix
            )
            facts.presented_key_id = key_id
            try:
                record = self._config.api_key(key_id)
            except Exception:
                raise StoreUnavailable("API key lookup failed") from None
            if record is None:
                raise UnknownApiKey(f"no API key with id {key_id}")
            return check_key(record, secret, self._clock())
        if creds.bearer is not None:
            token = creds.bearer.get_secret_value()
            if self._tokens is None:
                return self._jwt.verify(token)
            version = self._config.version
            principal = self._tokens.get(token, config_version=version)
            if principal is None:  # verified once per token, config version and key set
                principal = self._jwt.verify(token)
                self._tokens.put(token, principal, config_version=version)
            return principal
        raise MissingCredentials("no bearer token or API key")

    def _decide(self, facts: Facts) -> None:
        request, principal = facts.request, facts.principal
        assert request is not None and principal is not None
        if request.tenant_hint is not None and request.tenant_hint != principal.tenant:
            raise TenantMismatch("tenant header does not match the caller's tenant")
        try:
            snapshot = self._config.snapshot()
            assignments = self._config.assignments(principal.principal_id)
        except Exception:
            raise ConfigUnavailable("RBAC data could not be read") from None
        facts.config_version = snapshot.version
        facts.roles = resolve_roles(snapshot, principal, assignments)
        arn = request.arn
        # the caller's scopes that some permission requires: they change the grants (a
        # permission whose scopes the caller lacks does not apply), so they key the memo too
        scopes = snapshot.relevant_scopes(principal.scopes)
        grants = grants_for(snapshot, facts.roles, arn.api_id, arn.stage, scopes)
        if request.shape is EventShape.TEST_INVOKE:
            facts.decision = evaluate_wildcard(
                snapshot, facts.roles, request, principal.tenant, scopes
            )
        else:
            facts.decision = evaluate(grants, request.method, request.path, principal.tenant)
        if request.shape is not EventShape.REQUEST:
            # The ARN names a route (or is a wildcard): it is all a policy can name.
            facts.policy = request_only(
                arn, facts.decision.allowed, self._settings.policy_max_bytes
            )
        else:
            base = self._policies.get(snapshot, arn.base, facts.roles, principal.tenant, scopes)
            if base is None:
                base = build_base(
                    base=arn.base,
                    grants=grants,
                    tenant=principal.tenant,
                    routes=snapshot.routes_for(arn.api_id, arn.stage),
                    max_bytes=self._settings.policy_max_bytes,
                )
                self._policies.put(snapshot, arn.base, facts.roles, principal.tenant, scopes, base)
            facts.policy = policy_for_request(
                base, arn, facts.decision.allowed, self._settings.policy_max_bytes
            )
        if snapshot.version != self._limits_version:
            self._limiter.forget_rejections()
            self._limits_version = snapshot.version
        limits = self._limits(snapshot)
        # Counted last, and only for a request that would otherwise be allowed: a denial (by
        # RBAC, or a policy that cannot express the decision) consumes no quota.
        if facts.decision.allowed and facts.policy.allows_request and limits:
            facts.limit = self._limiter.check(
                applicable(
                    limits,
                    api_id=arn.api_id,
                    stage=arn.stage,
                    method=request.method,
                    path=request.path,
                    tenant=principal.tenant,
                    principal_id=principal.principal_id,
                    key_id=principal.key_id,
                    source_ip=request.source_ip,
                    roles=facts.roles,
                )
            )

    # --- answer ------------------------------------------------------------------------------
    def _finish(
        self, facts: Facts, started: float, *, reason: str, unauthorized: bool = False
    ) -> AuthorizerResult:
        allowed = (
            not unauthorized
            and facts.decision is not None
            and facts.decision.allowed
            and facts.policy is not None
            and facts.policy.allows_request
            and (facts.limit is None or facts.limit.allowed)
        )
        policy_refused = facts.policy is not None and not facts.policy.allows_request
        if policy_refused and facts.decision is not None and facts.decision.allowed:
            reason = "policy_mismatch"  # the policy could not express the decision: denied
        limited = facts.limit is not None and not facts.limit.allowed
        let_through = limited and reason == "rate_limited" and flagged(self._settings, facts)
        response = None
        now = self._clock()
        if not unauthorized:
            # flag mode: API Gateway lets the request through to an integration that answers
            # 429 from the context; the audit still records the request as rejected (deny).
            response = response_for(
                self._settings, facts, allowed=allowed or let_through, reason=reason, now=now
            )
            if _json_size(response) > self._settings.response_max_bytes:
                allowed, reason = False, ResponseTooLarge.reason
                response = minimal_deny(self._settings, facts, reason)
        audit = audit_event(
            facts,
            reason,
            allowed=allowed,
            unauthorized=unauthorized,
            now=now,
            latency_ms=round((self._perf() - started) * 1000, 3),
        )
        with contextlib.suppress(Exception):  # an audit failure must not change the decision
            self._emitter.emit(audit)
        return AuthorizerResult(
            audit=audit,
            response=response,
            unauthorized=unauthorized,
            principal=facts.principal,
            limit=facts.limit,
        )


class PolicyMemo:
    """Base policies per (API stage, tenant, roles, relevant scopes), valid for one config
    version.

    Building a verified policy walks the route catalog (milliseconds); the result depends only
    on the caller's roles, tenant and the scopes some permission requires (they decide which
    permissions apply), so a warm container builds it once per combination,
    whatever its scope: adapting it to a request (:func:`policy_for_request`) re-checks it
    against the request's own RBAC answer, so a memo hit can never answer differently from RBAC.
    """

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._version: int | None = None
        self._entries: dict[tuple[str, str | None, frozenset[str], frozenset[str]], BasePolicy] = {}

    def get(
        self,
        snapshot: ConfigSnapshot,
        base: str,
        roles: tuple[str, ...],
        tenant: str | None,
        scopes: frozenset[str] = frozenset(),
    ) -> BasePolicy | None:
        if snapshot.version != self._version:
            self._entries.clear()
            self._version = snapshot.version
            return None
        return self._entries.get((base, tenant, frozenset(roles), scopes))

    def put(
        self,
        snapshot: ConfigSnapshot,
        base: str,
        roles: tuple[str, ...],
        tenant: str | None,
        scopes: frozenset[str],
        policy: BasePolicy,
    ) -> None:
        if snapshot.version != self._version:
            return
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[(base, tenant, frozenset(roles), scopes)] = policy


class _NoCounters:
    """Stands in when no counters table is configured: every counter call fails, so each limit
    rule applies its own ``on_error`` policy (and the failure shows in metrics and audit)."""

    def __getattr__(self, name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("no counters table configured (GATEKEEPER_COUNTERS_TABLE)")

        return fail


def _json_size(response: dict[str, Any]) -> int:
    return len(json.dumps(response, separators=(",", ":")).encode())


def _dynamodb_client(settings: Settings) -> DynamoDBClient:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=1,
        read_timeout=2,
        retries={"mode": "standard", "max_attempts": 2},
    )
    return boto3.client("dynamodb", endpoint_url=settings.dynamodb_endpoint, config=config)
