"""The offline demo: the real authorizer handler against moto, with a local JWKS endpoint.

Creates the config and counters tables in moto, seeds the sample roles, principals, API keys and
a rate-limit rule, generates a signing key and serves its JWKS on 127.0.0.1, then sends a
scripted set of requests (including a rate limit and a brute-force block) through
``functions/authorizer/handler.py`` and prints each decision, its reason and the policy. Exits
non-zero if any decision differs from the expected one, so it doubles as a smoke test.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from gatekeeper.canonical_path import NON_CANONICAL_GLOBS
from gatekeeper.identity.mtls import CertMapping, CertRevocation, parse_certificate
from gatekeeper.identity.signatures import SigningKeyRecord
from gatekeeper.rate_limit.rules import LimitRule, RuleMatch
from gatekeeper.store import tables
from gatekeeper.store.config_store import DynamoConfigStore
from gatekeeper.testing import LocalJwksServer, claims_for, mint, public_jwks, rsa_key
from gatekeeper.testing.certs import Issued, issue_client_cert, make_ca, with_client_cert
from gatekeeper.testing.events import (
    http_api_event,
    rest_request_event,
    rest_token_event,
    websocket_connect_event,
)
from gatekeeper.testing.lambda_context import LocalLambdaContext
from gatekeeper.testing.sample_access import SampleKeys, seed
from gatekeeper.testing.signing import public_pem, sign_request

AUDIENCE = "orders-api"
CONFIG_TABLE = "gatekeeper-demo-config"
COUNTERS_TABLE = "gatekeeper-demo-counters"
ATTACKER_IP = "192.0.2.66"
BRUTE_FORCE_THRESHOLD = 3
AUDIT_BUCKET = "gatekeeper-demo-audit"
HANDLER = Path(__file__).resolve().parents[2] / "functions" / "authorizer" / "handler.py"


@dataclass(frozen=True)
class Scenario:
    name: str
    expected: str  # "allow" | "deny" | "401"
    reason: str
    event: Callable[[], dict[str, Any]]
    repeat: int = 1  # send the event this many times; the last answer is the one checked


@dataclass(frozen=True)
class Outcome:
    decision: str
    reason: str
    response: dict[str, Any] | None


def load_handler() -> ModuleType:
    """Import the deployed handler file itself, not a copy of its logic."""
    if not HANDLER.exists():
        raise FileNotFoundError(f"{HANDLER} not found: run the demo from a clone of the repo")
    spec = importlib.util.spec_from_file_location("gatekeeper_demo_authorizer", HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def demo_environment(extra: dict[str, str]) -> Iterator[None]:
    values = {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
        "AWS_SESSION_TOKEN": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "GatekeeperDemo",
        "POWERTOOLS_SERVICE_NAME": "gatekeeper-authorizer",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **extra,
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def scenarios(
    tokens: dict[str, str],
    keys: SampleKeys,
    certs: dict[str, Issued] | None = None,
    signed: dict[str, str] | None = None,
) -> list[Scenario]:
    bearer = {name: f"Bearer {token}" for name, token in tokens.items()}
    certs, signed = certs or {}, signed or {}
    return [
        Scenario(
            "valid JWT, REST TOKEN, GET /orders/o-1001",
            "allow",
            "allowed",
            lambda: rest_token_event(bearer["alice"], "GET", "/orders/o-1001"),
        ),
        Scenario(
            "valid JWT, REST REQUEST, POST /orders (tenant header acme)",
            "allow",
            "allowed",
            lambda: rest_request_event(
                {"Authorization": bearer["alice"], "X-Tenant-Id": "acme"}, "POST", "/orders"
            ),
        ),
        Scenario(
            "valid JWT, own tenant's reports",
            "allow",
            "allowed",
            lambda: rest_token_event(bearer["alice"], "GET", "/tenants/acme/reports"),
        ),
        Scenario(
            "group claim -> admin role, GET /admin/users",
            "allow",
            "allowed",
            lambda: rest_token_event(bearer["carol"], "GET", "/admin/users"),
        ),
        Scenario(
            "HTTP API catch-all ($default route): decided on the request, GET /orders/o-1001",
            "allow",
            "allowed",
            lambda: http_api_event(
                {"authorization": bearer["alice"]}, "GET", "/orders/o-1001", default_route=True
            ),
        ),
        Scenario(
            "WebSocket $connect, token in the query string (admin)",
            "allow",
            "allowed",
            lambda: websocket_connect_event({"token": tokens["carol"]}),
        ),
        Scenario(
            "console's Test authorizer form (stage *): allowed only if allowed on every stage",
            "allow",
            "allowed",
            lambda: rest_token_event(bearer["carol"], "GET", "/", stage="*"),
        ),
        Scenario(
            "non-canonical path: GET /orders/../admin/users (before any signature work)",
            "401",
            "non_canonical_path",
            lambda: rest_request_event(
                {"Authorization": bearer["alice"]}, "GET", "/orders/../admin/users"
            ),
        ),
        Scenario(
            "mTLS client certificate, mapped by its SAN to svc:orders (clerk), POST /orders",
            "allow",
            "allowed",
            lambda: with_client_cert(rest_request_event({}, "POST", "/orders"), certs["orders"]),
        ),
        Scenario(
            "revoked mTLS client certificate",
            "401",
            "client_certificate_revoked",
            lambda: with_client_cert(rest_request_event({}, "GET", "/orders"), certs["revoked"]),
        ),
        Scenario(
            "signed request (RFC 9421, Ed25519 key registered to svc:reporting), GET /orders",
            "allow",
            "allowed",
            lambda: rest_request_event(dict(signed), "GET", "/orders"),
        ),
        Scenario(
            "the same signed request replayed (its nonce was already used)",
            "401",
            "replayed_request",
            lambda: rest_request_event(dict(signed), "GET", "/orders"),
        ),
        Scenario(
            "expired JWT",
            "401",
            "token_expired",
            lambda: rest_token_event(bearer["expired"], "GET", "/orders"),
        ),
        Scenario(
            "forged kid (signed by an unknown key)",
            "401",
            "unknown_kid",
            lambda: rest_token_event(bearer["forged"], "GET", "/orders"),
        ),
        Scenario(
            "API key, HTTP API, GET /orders/o-1001",
            "allow",
            "allowed",
            lambda: http_api_event(
                {"x-api-key": keys.active}, "GET", "/orders/o-1001", route_key="GET /orders/{id}"
            ),
        ),
        Scenario(
            "revoked API key",
            "401",
            "api_key_revoked",
            lambda: http_api_event({"x-api-key": keys.revoked}, "GET", "/orders"),
        ),
        Scenario(
            "rotated API key within its grace time",
            "allow",
            "allowed",
            lambda: http_api_event({"x-api-key": keys.rotated_in_grace}, "GET", "/orders"),
        ),
        Scenario(
            "forbidden route: clerk may not DELETE orders",
            "deny",
            "explicit_deny",
            lambda: rest_token_event(bearer["alice"], "DELETE", "/orders/o-1001"),
        ),
        Scenario(
            "forbidden route: reader on /admin/users",
            "deny",
            "no_matching_permission",
            lambda: rest_token_event(bearer["bob"], "GET", "/admin/users"),
        ),
        Scenario(
            "tenant mismatch: acme user asks as globex",
            "deny",
            "tenant_mismatch",
            lambda: rest_request_event(
                {"Authorization": bearer["alice"], "X-Tenant-Id": "globex"}, "GET", "/orders"
            ),
        ),
        Scenario(
            "tenant isolation: acme user on globex reports",
            "deny",
            "no_matching_permission",
            lambda: rest_token_event(bearer["alice"], "GET", "/tenants/globex/reports"),
        ),
        Scenario(
            "no credentials",
            "401",
            "missing_credentials",
            lambda: rest_request_event({}, "GET", "/orders"),
        ),
        Scenario(
            "rate limit: bob's 3rd invoice request in a minute (limit 2/minute)",
            "deny",
            "rate_limited",
            lambda: rest_token_event(bearer["bob"], "GET", "/orders/o-7/invoice"),
            repeat=3,
        ),
        Scenario(
            f"brute force: {BRUTE_FORCE_THRESHOLD} wrong API key secrets from {ATTACKER_IP}",
            "401",
            "invalid_api_key_secret",
            lambda: rest_request_event(
                {"x-api-key": _wrong_secret(keys.active)}, "GET", "/orders", source_ip=ATTACKER_IP
            ),
            repeat=BRUTE_FORCE_THRESHOLD,
        ),
        Scenario(
            "blocked IP: even the valid key, before any signature check",
            "deny",
            "blocked",
            lambda: rest_request_event(
                {"x-api-key": keys.active}, "GET", "/orders", source_ip=ATTACKER_IP
            ),
        ),
    ]


def _demo_certificates(store: DynamoConfigStore, now: float) -> dict[str, Issued]:
    """A CA, a service certificate mapped by its SAN, and a revoked one (made at run time)."""
    ca = make_ca(now=now)
    spiffe = x509.UniformResourceIdentifier("spiffe://example.com/orders")
    certs = {
        "orders": issue_client_cert(ca, "orders-svc", now=now, sans=(spiffe,)),
        "revoked": issue_client_cert(ca, "orders-svc-old", now=now, sans=(spiffe,)),
    }
    store.put(
        CertMapping(
            match="san",
            value="URI:spiffe://example.com/orders",
            principal_id="svc:orders",
            tenant="acme",
            roles=("orders-clerk",),
            issuer_dn=ca.subject_dn,
        ),
        CertRevocation(
            fingerprint=parse_certificate(certs["revoked"].pem).fingerprint, reason="key compromise"
        ),
    )
    return certs


def _demo_signed_request(store: DynamoConfigStore, now: float) -> dict[str, str]:
    """Register a caller's Ed25519 public key (no secret is stored) and sign one request."""
    private = ed25519.Ed25519PrivateKey.generate()
    store.put(
        SigningKeyRecord(
            key_id="reporting-ed",
            principal_id="svc:reporting",
            tenant="acme",
            roles=("orders-reader",),
            algorithm="ed25519",
            public_key=public_pem(private),
        )
    )
    # the stage prefix is part of the path the client called on the default endpoint
    return sign_request(
        private,
        key_id="reporting-ed",
        method="GET",
        path="/prod/orders",
        nonce=secrets.token_urlsafe(18),
        created=now,
    )


def _wrong_secret(key: str) -> str:
    prefix, key_id, _ = key.split("_", 2)
    return f"{prefix}_{key_id}_{'x' * 43}"


DEMO_LIMIT = LimitRule(
    rule_id="invoices-per-principal",
    description="invoices are expensive to render",
    scope="principal",
    match=RuleMatch(methods=("GET",), path="/orders/*/invoice"),
    limit=2,
    window="minute",
)


def _invoke(handler: ModuleType, event: dict[str, Any], log: io.StringIO) -> Outcome:
    start = log.tell()
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # EMF metric lines: not for the reader
            response = handler.lambda_handler(event, LocalLambdaContext())
    except Exception as exc:
        if str(exc) != "Unauthorized":
            raise
        response = None
    log.seek(start)
    audits = [json.loads(line)["audit"] for line in log.read().splitlines() if '"audit"' in line]
    log.seek(0, io.SEEK_END)
    if len(audits) != 1:
        raise RuntimeError(f"expected one audit event per decision, got {len(audits)}")
    audit = audits[0]
    decision = "401" if audit["decision"] == "unauthorized" else audit["decision"]
    return Outcome(decision, audit["reason"], response)


def _policy_lines(response: dict[str, Any] | None) -> list[str]:
    if response is None:
        return ["(no policy: API Gateway answers 401 Unauthorized)"]
    if "isAuthorized" in response:
        return [f"simple response: isAuthorized={response['isAuthorized']}"]
    lines = []
    for statement in response["policyDocument"]["Statement"]:
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        short = [r.split("/", 1)[1] if "/" in r else r for r in resources]
        shown = [r for r in short if r.split("/", 1)[-1] not in NON_CANONICAL_GLOBS]
        hidden = len(short) - len(shown)
        forms = f"{hidden} non-canonical path forms" if hidden else ""
        listed = ", ".join(shown) + (f" (+ {forms})" if shown and forms else forms)
        lines.append(f"{statement['Effect']}: {listed}")
    return lines


def run(out: IO[str] = sys.stdout) -> int:
    try:
        import boto3
        from moto import mock_aws
    except ImportError:
        print("the demo needs the dev extras: pip install -e '.[dev]'", file=out)
        return 2

    started = time.perf_counter()
    now = time.time()
    signing, attacker = rsa_key("demo-2026"), rsa_key("demo-2026-rotated")
    with LocalJwksServer(public_jwks(signing)) as jwks, mock_aws():
        issuers = [
            # by its URL alone: the JWKS location comes from OIDC discovery
            {"name": "corp", "issuer": jwks.issuer, "audiences": [AUDIENCE]}
        ]
        with demo_environment(
            {
                "GATEKEEPER_CONFIG_TABLE": CONFIG_TABLE,
                "GATEKEEPER_COUNTERS_TABLE": COUNTERS_TABLE,
                "GATEKEEPER_BRUTE_FORCE_THRESHOLD": str(BRUTE_FORCE_THRESHOLD),
                "GATEKEEPER_ISSUERS": json.dumps(issuers),
                "GATEKEEPER_MTLS": "true",
            }
        ):
            client = boto3.client("dynamodb")
            client.create_table(**tables.table_definition(CONFIG_TABLE))  # type: ignore[arg-type]
            client.create_table(**tables.counters_table_definition(COUNTERS_TABLE))  # type: ignore[arg-type]
            store = DynamoConfigStore(client, CONFIG_TABLE)
            keys = seed(store, now=now)
            store.put(DEMO_LIMIT)
            certs = _demo_certificates(store, now)
            signed = _demo_signed_request(store, now)

            def token(subject: str, key: Any = signing, **extra: Any) -> str:
                claims = claims_for(jwks.issuer, AUDIENCE, now=now, subject=subject, extra=extra)
                return mint(claims, key)

            tokens = {
                "alice": token("alice", tenant="acme"),
                "bob": token("bob", tenant="globex"),
                "carol": token("carol", tenant="acme", groups=["platform-admins"]),
                "expired": token("alice", tenant="acme", iat=int(now) - 7200, exp=int(now) - 3600),
                "forged": mint(
                    claims_for(jwks.issuer, AUDIENCE, now=now, subject="mallory"), attacker
                ),
            }
            handler = load_handler()
            log = io.StringIO()
            handler.logger.logger_handler.setStream(log)
            failures = decisions = 0
            for number, scenario in enumerate(scenarios(tokens, keys, certs, signed), start=1):
                for _ in range(scenario.repeat):
                    outcome = _invoke(handler, scenario.event(), log)
                    decisions += 1
                ok = (outcome.decision, outcome.reason) == (scenario.expected, scenario.reason)
                failures += not ok
                mark = "ok " if ok else "FAIL"
                times = f" (request {scenario.repeat} of {scenario.repeat})" * (scenario.repeat > 1)
                print(f"[{mark}] {number:2}. {scenario.name}{times}", file=out)
                print(f"        decision: {outcome.decision}  reason: {outcome.reason}", file=out)
                if not ok:
                    print(
                        f"        expected: {scenario.expected}  reason: {scenario.reason}",
                        file=out,
                    )
                for line in _policy_lines(outcome.response):
                    print(f"        {line}", file=out)
            archive_ok = archive_and_verify(log.getvalue().splitlines(), decisions, out)
    elapsed = time.perf_counter() - started
    total = number
    print(
        f"\n{total - failures}/{total} scenarios as expected in {elapsed:.1f} s "
        f"(OIDC discovery fetched {jwks.discovery_hits} time(s), JWKS {jwks.hits})",
        file=out,
    )
    return 1 if failures or not archive_ok else 0


def archive_and_verify(lines: list[str], decisions: int, out: IO[str]) -> bool:
    """The audit pipeline, locally: log lines → subscription records → sink → moto S3 → verify."""
    import boto3

    from gatekeeper.audit.archive import ArchiveWriter, Layout
    from gatekeeper.audit.signer import LocalRsaSigner
    from gatekeeper.audit.sink import AuditSink, records_from_event
    from gatekeeper.audit.store import S3ObjectStore
    from gatekeeper.audit.verify import verify_archive
    from gatekeeper.testing.audit_events import kinesis_event, subscription_payloads

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=AUDIT_BUCKET)
    store = S3ObjectStore(s3, AUDIT_BUCKET)
    signer = LocalRsaSigner.generate("demo-digest-key")
    layout = Layout("audit/")
    sink = AuditSink(ArchiveWriter(store, signer, layout=layout, digest_interval_seconds=0))
    result = sink.process(records_from_event(kinesis_event(subscription_payloads(lines))))
    report = verify_archive(store, lambda _key_id: signer.public_key_pem(), layout)
    ok = report.ok and not result.failed and report.events == decisions
    print(
        f"\naudit: {len(lines)} log lines -> CloudWatch Logs subscription -> audit_sink -> "
        f"s3://{AUDIT_BUCKET}/audit/: {len(result.archived)} events in {len(result.objects)} "
        f"object(s), {len(result.digests)} signed digest(s)",
        file=out,
    )
    print(
        f"audit: archive verify {'OK' if report.ok else 'FAILED'}: {report.events}/{decisions} "
        f"decisions archived exactly once, chain and signatures intact"
        if ok
        else f"audit: archive verify FAILED: {[str(f) for f in report.findings]}",
        file=out,
    )
    return ok
