# ruff: noqa: RUF001 - the report prints ratios with the multiplication sign
"""Every performance claim of the README in one run: latency against the floor, DynamoDB calls,
the naive way, cold start, the audit sink, the rate limiter, and $ per million decisions.

Run (offline: moto in-process, a local JWKS server)::

    .venv/bin/python bench/run.py            # full run (1.5 min on a quiet 2-core machine);
                                             # prints the tables and writes bench/results.md
    .venv/bin/python bench/run.py --smoke    # seconds; what CI runs (tests/test_bench_smoke.py)

Latency rows call ``Authorizer.authorize()`` on REST REQUEST events (the recommended TTL-0
deployment) with the audit event built but not written; the handler row adds the audit line and
metrics through ``functions/authorizer/handler.py``. DynamoDB calls are counted with botocore
event hooks (``before-call``/``after-call``), and their time is subtracted for "excl. DynamoDB".
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(ROOT)]  # sibling benchmarks; functions/ for the handler

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",  # moto's dummy credentials
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_METRICS_NAMESPACE="Gatekeeper",
)

import audit_sink_bench  # noqa: E402
import boto3  # noqa: E402
import cost  # noqa: E402
import jwt  # noqa: E402
import naive  # noqa: E402
import rate_limit_bench  # noqa: E402
from aws_lambda_powertools import Logger  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402
from moto import mock_aws  # noqa: E402

from gatekeeper.audit.emit import compact_json  # noqa: E402
from gatekeeper.audit.event import AuditEvent  # noqa: E402
from gatekeeper.authorizer import Authorizer  # noqa: E402
from gatekeeper.config import Settings  # noqa: E402
from gatekeeper.identity.api_keys import check_key, parse_key  # noqa: E402
from gatekeeper.rbac.evaluator import evaluate, grants_for, resolve_roles  # noqa: E402
from gatekeeper.rbac.model import Permission, Role, RoleAssignment  # noqa: E402
from gatekeeper.store import tables  # noqa: E402
from gatekeeper.store.config_store import DynamoConfigStore  # noqa: E402
from gatekeeper.testing import (  # noqa: E402
    LocalJwksServer,
    SigningKey,
    claims_for,
    ec_key,
    mint,
    public_jwks,
    rsa_key,
)
from gatekeeper.testing.audit_events import kinesis_event, subscription_payloads  # noqa: E402
from gatekeeper.testing.events import http_api_event, rest_request_event  # noqa: E402
from gatekeeper.testing.lambda_context import LocalLambdaContext  # noqa: E402
from gatekeeper.testing.sample_access import seed  # noqa: E402

ISSUER, AUDIENCE = "https://login.example.com/", "orders-api"
TABLE, COUNTERS = "bench-config", "bench-counters"
MEMORY_MB, ARCH, SINK_MEMORY_MB = 1024, "arm64", 512  # infra/cdk/gatekeeper_cdk/stack.py
HIGH_LIMIT = 10_000_000  # a per-minute limit the benchmark never reaches
MOTO_ROWS = 2_000  # rows that write to (in-process, slow) moto on every decision: fewer samples
LEASED_RULE = {
    "rule_id": "per-principal",
    "scope": "principal",
    "limit": HIGH_LIMIT,
    "window": "minute",
    "mode": "leased",
}


# --- measurement ------------------------------------------------------------------------------
class DynamoMeter:
    """Counts DynamoDB calls and the time spent in them, through botocore's event hooks."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self.seconds = 0.0
        self._started = 0.0
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, **_: Any) -> None:
        self.calls += 1
        self._started = time.perf_counter()

    def _after(self, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._started


@dataclass
class Row:
    name: str
    p50: float  # µs
    p99: float
    n: int
    net_p50: float | None = None  # µs excluding DynamoDB
    calls: float | None = None  # DynamoDB calls per decision
    note: str = ""
    ratios: dict[str, float] = field(default_factory=dict)


def pct(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(
    name: str,
    fn: Callable[[Any], Any],
    inputs: Sequence[Any],
    meter: DynamoMeter | None = None,
    note: str = "",
) -> Row:
    wall: list[float] = []
    net: list[float] = []
    calls0 = meter.calls if meter else 0
    clock = time.perf_counter
    for item in inputs:
        ddb0 = meter.seconds if meter else 0.0
        started = clock()
        fn(item)
        elapsed = clock() - started
        wall.append(elapsed * 1e6)
        net.append((elapsed - ((meter.seconds if meter else 0.0) - ddb0)) * 1e6)
    n = len(inputs)
    return Row(
        name,
        statistics.median(wall),
        pct(wall, 0.99),
        n,
        net_p50=statistics.median(net) if meter else None,
        calls=(meter.calls - calls0) / n if meter else None,
        note=note,
    )


def repeat(value: Any, n: int) -> list[Any]:
    return [value] * n


# --- the floor --------------------------------------------------------------------------------
def _b64(segment: str) -> bytes:
    return jwt.utils.base64url_decode(segment.encode())


def floor_rows(rsa: SigningKey, ecdsa: SigningKey, n: int) -> list[Row]:
    rows = []
    for key, label in ((rsa, "RS256"), (ecdsa, "ES256")):
        token = mint(claims_for(ISSUER, AUDIENCE, now=time.time(), ttl=3600), key)
        header, payload, signature = token.split(".")
        signed = f"{header}.{payload}".encode()
        raw = _b64(signature)
        public = key.private_key.public_key()
        if label == "RS256":

            def check(_: Any, p: Any = public, s: bytes = raw, m: bytes = signed) -> None:
                p.verify(s, m, padding.PKCS1v15(), hashes.SHA256())
        else:
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )

            def check(_: Any, p: Any = public, s: bytes = der, m: bytes = signed) -> None:
                p.verify(s, m, ec.ECDSA(hashes.SHA256()))

        check(None)
        rows.append(measure(f"bare {label} signature check (`cryptography`)", check, [None] * n))

        def decode(_: Any, t: str = token, p: Any = public, a: str = label) -> None:
            jwt.decode(t, p, algorithms=[a], audience=AUDIENCE, issuer=ISSUER)

        rows.append(measure(f"PyJWT `decode` {label}, cached key", decode, [None] * n))
    return rows


# --- the world --------------------------------------------------------------------------------
class NullEmitter:
    """Builds nothing further: the audit event is made by authorize(), not written."""

    def emit(self, event: AuditEvent) -> None:
        return None


@dataclass
class World:
    client: Any
    meter: DynamoMeter
    settings: dict[str, Any]
    rsa: SigningKey
    ecdsa: SigningKey
    api_key: str
    jwks_uri: str

    def authorizer(self, **overrides: Any) -> Authorizer:
        settings = Settings.model_validate({**self.settings, **overrides})
        return Authorizer.from_settings(
            settings,
            logger=Logger(service="bench"),
            store=DynamoConfigStore(self.client, TABLE),
            counters=None,
            emitter=NullEmitter(),
        )

    def token(
        self, subject: str = "alice", key: SigningKey | None = None, tenant: str = "acme"
    ) -> str:
        claims = claims_for(
            ISSUER, AUDIENCE, now=time.time(), subject=subject, ttl=3600, extra={"tenant": tenant}
        )
        return mint(claims, key or self.rsa)


@contextlib.contextmanager
def world() -> Iterator[World]:
    rsa, ecdsa = rsa_key("bench-rsa"), ec_key("bench-ec")
    with LocalJwksServer(public_jwks(rsa, ecdsa)) as jwks, mock_aws():
        client = boto3.client("dynamodb")
        client.create_table(**tables.table_definition(TABLE))  # type: ignore[arg-type]
        client.create_table(**tables.counters_table_definition(COUNTERS))  # type: ignore[arg-type]
        naive.create_tables(client)
        store = DynamoConfigStore(client, TABLE)
        keys = seed(store, now=time.time())
        # IAM globs cannot allow one invoice and deny the others: a "request" scope policy
        store.put(
            Role(
                name="odd",
                permissions=(
                    Permission(methods=("GET",), path="/orders/*"),
                    Permission(methods=("GET",), path="/orders/o-special/invoice"),
                ),
            ),
            RoleAssignment(principal_id="corp:dave", tenant="acme", roles=("odd",)),
        )
        naive.seed(
            client,
            "alice",
            {
                "orders-clerk": ["GET /orders*", "POST /orders", "PUT /orders/*"],
                "tenant-analyst": ["GET /tenants/*/reports", "POST /tenants/*/reports"],
            },
        )
        meter = DynamoMeter(client)
        settings = {
            "config_table": TABLE,
            "issuers": [
                {"name": "corp", "issuer": ISSUER, "audiences": [AUDIENCE], "jwks_uri": jwks.uri}
            ],
        }
        yield World(client, meter, settings, rsa, ecdsa, keys.active, jwks.uri)


def counters_authorizer(w: World, rule: dict[str, Any]) -> Authorizer:
    from gatekeeper.rate_limit.counters import DynamoCounterStore

    settings = Settings.model_validate({**w.settings, "default_limits": [rule]})
    return Authorizer.from_settings(
        settings,
        logger=Logger(service="bench"),
        store=DynamoConfigStore(w.client, TABLE),
        counters=DynamoCounterStore(w.client, COUNTERS),
        emitter=NullEmitter(),
    )


def expect(result: Any, decision: str, reason: str | None = None, scope: str | None = None) -> Any:
    """Every benchmark row checks once that it measures the outcome it claims to."""
    audit = result.audit
    assert audit.decision == decision, (audit.decision, audit.reason)
    assert reason is None or audit.reason == reason, audit.reason
    assert scope is None or audit.policy_scope == scope, audit.policy_scope
    return result


def request(token: str, method: str = "GET", path: str = "/orders/o-1") -> dict[str, Any]:
    return rest_request_event({"Authorization": f"Bearer {token}"}, method, path)


def authorizer_rows(w: World, n: int) -> tuple[list[Row], dict[str, Any]]:
    main = w.authorizer()
    meter = w.meter
    rows: list[Row] = []
    extra: dict[str, Any] = {}

    # first-seen JWTs: every decision a token the container has not verified before
    for key, label in ((w.rsa, "RS256"), (w.ecdsa, "ES256")):
        warm = [request(w.token(key=key)) for _ in range(50)]
        for event in warm:
            expect(main.authorize(event), "allow")
        events = [request(w.token(key=key)) for _ in range(n)]
        rows.append(
            measure(f"`authorize()`, first-seen JWT ({label})", main.authorize, events, meter)
        )

    token = w.token()
    repeated = request(token)
    expect(main.authorize(repeated), "allow", scope="api")
    rows.append(measure("`authorize()`, repeated JWT", main.authorize, repeat(repeated, n), meter))

    key_event = http_api_event({"x-api-key": w.api_key}, "GET", "/orders/o-1")
    expect(main.authorize(key_event), "allow")
    rows.append(measure("`authorize()`, API key", main.authorize, repeat(key_event, n), meter))

    forbidden = request(token, "DELETE", "/orders/o-1")
    expect(main.authorize(forbidden), "deny", "explicit_deny")
    rows.append(
        measure("`authorize()`, forbidden route (403)", main.authorize, repeat(forbidden, n), meter)
    )

    odd = request(w.token("dave"))
    expect(main.authorize(odd), "allow", scope="request")
    rows.append(
        measure("`authorize()`, request-scope policy", main.authorize, repeat(odd, n), meter)
    )

    limited = counters_authorizer(
        w, {"rule_id": "one-per-hour", "scope": "principal", "limit": 1, "window": "hour"}
    )
    bob = request(w.token("bob", tenant="globex"))
    expect(limited.authorize(bob), "allow")
    expect(limited.authorize(bob), "deny", "rate_limited")
    rows.append(
        measure(
            "`authorize()`, rate-limited request (403)", limited.authorize, repeat(bob, n), meter
        )
    )

    for mode in ("exact", "leased"):
        counted = counters_authorizer(
            w,
            {
                "rule_id": f"bench-{mode}",
                "scope": "principal",
                "limit": HIGH_LIMIT,
                "window": "minute",
                "mode": mode,
            },
        )
        expect(counted.authorize(repeated), "allow")
        rows.append(
            measure(
                f"`authorize()`, repeated JWT + 1 {mode} limit rule",
                counted.authorize,
                repeat(repeated, min(n, MOTO_ROWS) if mode == "exact" else n),
                meter,
            )
        )

    # the API-key floor: SHA-256 of the secret + the RBAC lookup and decision, nothing else
    config = main._config
    key_id, secret = parse_key(w.api_key, "gk")

    def api_key_floor(_: Any) -> None:
        record = config.api_key(key_id)
        assert record is not None
        principal = check_key(record, secret, time.time())
        snapshot = config.snapshot()
        roles = resolve_roles(snapshot, principal, config.assignments(principal.principal_id))
        grants = grants_for(snapshot, roles, "f6g7h8i9j0", "$default")
        evaluate(grants, "GET", "/orders/o-1", principal.tenant)

    extra["api_key_floor"] = measure(
        "API-key floor: SHA-256 + RBAC lookup and decision", api_key_floor, [None] * n
    )
    extra["repeated_event"] = repeated
    tokens = main._tokens
    version = config.version
    assert tokens is not None and tokens.get(token, config_version=version) is not None
    extra["token_cache_hit"] = measure(
        "authentication of a repeated JWT: token-cache hit (SHA-256 + lookup)",
        lambda _: tokens.get(token, config_version=version),
        [None] * n,
    )
    count = max(50, n // 10)
    extra["profiles"] = profile_paths(
        {
            "first-seen JWT (RS256)": (
                main.authorize,
                [request(w.token()) for _ in range(count)],
            ),
            "repeated JWT": (main.authorize, repeat(repeated, count)),
            "API key": (main.authorize, repeat(key_event, count)),
        }
    )
    extra["main"] = main
    return rows, extra


def naive_row(w: World, n: int) -> Row:
    authorizer = naive.NaiveAuthorizer(
        w.client,
        jwks_uri=w.jwks_uri,
        issuer=ISSUER,
        audience=AUDIENCE,
        limits={"per-principal": HIGH_LIMIT},
    )
    event = request(w.token())
    response = authorizer(event)
    assert response["policyDocument"]["Statement"][0]["Effect"] == "Allow", response
    return measure(
        "naive authorizer (PyJWKClient, Powertools response, 3 reads + 1 write)",
        authorizer,
        repeat(event, min(n, MOTO_ROWS)),
        w.meter,
    )


# --- where the time goes: cProfile of the paths whose goals are measured ---------------------
PROFILED = (  # (label, file suffix, function): cumulative time per decision
    ("parse the event (`requests.parse_event`)", "gatekeeper/requests.py", "parse_event"),
    ("authenticate (`Authorizer._authenticate`)", "gatekeeper/authorizer.py", "_authenticate"),
    ("· JWT verification (`JwtVerifier.verify`)", "identity/jwt_verifier.py", "verify"),
    ("· · PyJWT `decode` (signature, claims)", "jwt/api_jwt.py", "decode"),
    (
        "· · unverified pre-parse (`_parse_unverified`)",
        "identity/jwt_verifier.py",
        "_parse_unverified",
    ),
    ("· token cache lookup (`TokenCache.get`)", "identity/token_cache.py", "get"),
    ("· API key check (`check_key`: SHA-256)", "identity/api_keys.py", "check_key"),
    ("decide (`Authorizer._decide`)", "gatekeeper/authorizer.py", "_decide"),
    ("· roles (`resolve_roles`)", "rbac/evaluator.py", "resolve_roles"),
    ("· grants (`grants_for`)", "rbac/evaluator.py", "grants_for"),
    ("· RBAC decision (`evaluate`)", "rbac/evaluator.py", "evaluate"),
    (
        "· adapt the memoised policy (`policy_for_request`)",
        "gatekeeper/policy_builder.py",
        "policy_for_request",
    ),
    (
        "· · IAM evaluation of the policy (`iam_evaluate`)",
        "gatekeeper/iam_simulator.py",
        "iam_evaluate",
    ),
    ("· rate limiter (`RateLimiter.check`)", "rate_limit/limiter.py", "check"),
    ("answer (`Authorizer._finish`)", "gatekeeper/authorizer.py", "_finish"),
    ("· response and context (`_response`)", "gatekeeper/authorizer.py", "_response"),
    ("· response size check (`_json_size`)", "gatekeeper/authorizer.py", "_json_size"),
    ("· audit event (`_audit`: pydantic `AuditEvent`)", "gatekeeper/authorizer.py", "_audit"),
    ("· response and context (`answer.response_for`)", "gatekeeper/answer.py", "response_for"),
    ("· audit event (`answer.audit_event`: pydantic)", "gatekeeper/answer.py", "audit_event"),
)


def profile_paths(paths: dict[str, tuple[Callable[[Any], Any], Sequence[Any]]]) -> dict[str, Any]:
    """Per path, the share of ``authorize()`` each step takes (cProfile inflates absolute times,
    so shares are reported, with the step's µs scaled to the path's unprofiled p50 later)."""
    import cProfile
    import pstats

    out: dict[str, Any] = {}
    for name, (fn, inputs) in paths.items():
        profiler = cProfile.Profile()
        profiler.enable()
        for item in inputs:
            fn(item)
        profiler.disable()
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        total = sum(
            v[3]
            for k, v in stats.items()
            if k[0].endswith("gatekeeper/authorizer.py") and k[2] == "authorize"
        )
        shares = {}
        for label, suffix, func in PROFILED:
            spent = sum(v[3] for k, v in stats.items() if k[0].endswith(suffix) and k[2] == func)
            if spent:
                shares[label] = spent / total if total else 0.0
        out[name] = shares
    return out


# --- the handler: what one invocation logs, and its time --------------------------------------
class Counting(io.TextIOBase):
    def __init__(self) -> None:
        self.bytes = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        return len(text)


def load_handler(w: World) -> Any:
    os.environ["GATEKEEPER_CONFIG_TABLE"] = TABLE
    os.environ["GATEKEEPER_ISSUERS"] = json.dumps(w.settings["issuers"])
    os.environ["GATEKEEPER_COUNTERS_TABLE"] = COUNTERS
    os.environ["GATEKEEPER_DEFAULT_LIMITS"] = json.dumps([LEASED_RULE])
    spec = importlib.util.spec_from_file_location(
        "bench_authorizer_handler", ROOT / "functions" / "authorizer" / "handler.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handler_rows(w: World, event: dict[str, Any], n: int) -> tuple[Row, dict[str, Any]]:
    module = load_handler(w)
    context = LocalLambdaContext(memory_limit_in_mb=MEMORY_MB)
    captured = io.StringIO()
    module.logger.logger_handler.setStream(captured)
    with contextlib.redirect_stdout(captured):
        module.lambda_handler(event, context)  # cold: builds the authorizer
        captured.seek(0)
        captured.truncate()
        module.lambda_handler(event, context)
    lines = captured.getvalue().splitlines()
    audit = [line for line in lines if '"audit"' in line]
    emf = [line for line in lines if '"_aws"' in line and '"audit"' not in line]
    other = [line for line in lines if line not in audit and line not in emf]
    sizes = {
        "audit_line": sum(len(x.encode()) + 1 for x in audit),
        "emf": sum(len(x.encode()) + 1 for x in emf),
        "other": sum(len(x.encode()) + 1 for x in other),
        "audit_sample": audit[0] if audit else "",
        "emf_sample": emf[0] if emf else "",
    }
    counter = Counting()
    module.logger.logger_handler.setStream(counter)
    with contextlib.redirect_stdout(counter):
        row = measure(
            "handler invocation, repeated JWT, 1 leased rule (+ audit line, metrics)",
            lambda e: module.lambda_handler(e, context),
            repeat(event, n),
        )
    sizes["bytes_per_invocation"] = counter.bytes / n
    return row, sizes


# --- cold start --------------------------------------------------------------------------------
def _process_seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)  # noqa: S603
    return time.perf_counter() - started


def cold_start(runs: int) -> dict[str, Any]:
    codes = {
        "python -c pass": "pass",
        "import boto3": "import boto3",
        "import handler": "import functions.authorizer.handler",
    }
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):  # interleaved, so background load hits every variant alike
        for name, code in codes.items():
            samples[name].append(_process_seconds(code))
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    trace = subprocess.run(  # noqa: S603
        [sys.executable, "-X", "importtime", "-c", codes["import handler"]],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    by_package: dict[str, int] = defaultdict(int)
    modules: list[tuple[int, int, str]] = []
    for line in trace.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, total, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        module = name.strip()
        by_package[module.split(".")[0]] += int(own)
        modules.append((int(own), int(total), module))
    top_packages = sorted(by_package.items(), key=lambda kv: -kv[1])[:8]
    top_modules = sorted(modules, reverse=True)[:8]
    return {
        "medians_ms": medians,
        "runs": runs,
        "ratio": medians["import handler"] / medians["import boto3"],
        "top_packages": [(name, us / 1000) for name, us in top_packages],
        "top_modules": [(name, own / 1000, total / 1000) for own, total, name in top_modules],
    }


# --- audit sink, rate limiter ------------------------------------------------------------------
def audit_sink(n: int, repeats: int) -> dict[str, float]:
    events = audit_sink_bench.make_events(n, start=1_795_640_400.0)
    payloads = subscription_payloads([audit_sink_bench.log_line(e) for e in events], per_record=50)
    batches = [kinesis_event(payloads[i : i + 100], first=i) for i in range(0, len(payloads), 100)]
    rates = []
    for _ in range(repeats):
        elapsed, archived, _ = audit_sink_bench.run_batches(batches)
        assert archived == n
        rates.append(archived / elapsed)
    return {"events_per_s": statistics.median(rates), "n": n, "repeats": repeats}


def rate_limiter() -> dict[str, tuple[float, float]]:
    """DynamoDB calls and limiter CPU (µs) per request, by rules, mode and containers."""
    out = {}
    for containers in (1, 4):
        for rules in (1, 3, 5):
            for mode in ("exact", "leased"):
                calls, cpu, _ = rate_limit_bench.run(rules, mode, containers)
                key = f"{rules} rule{'s' if rules > 1 else ''}, {mode}"
                out[key if containers == 1 else f"{key}, {containers} containers"] = (calls, cpu)
    return out


# --- cost --------------------------------------------------------------------------------------
def cost_model(
    handler: Row, sizes: dict[str, Any], limiter: dict[str, tuple[float, float]], sink: float
) -> dict[str, Any]:
    table, as_of = cost.prices()
    audit_bytes = sizes["audit_line"]
    # what the subscription delivers to Kinesis: CloudWatch Logs envelopes of varied audit
    # lines, gzip'd (identical lines would compress unrealistically well)
    audit_lines = [
        '{"level":"INFO","audit":' + compact_json(e) + "}"
        for e in audit_sink_bench.make_events(200, start=1_795_640_400.0)
    ]
    envelopes = "\n".join(
        json.dumps({"id": f"{i:056d}", "timestamp": 1_795_640_400_000 + i, "message": line})
        for i, line in enumerate(audit_lines)
    )
    # Kinesis bytes per audit byte logged
    gzip_ratio = len(gzip.compress(envelopes.encode())) / sum(len(x) for x in audit_lines)
    app_bytes = sizes["bytes_per_invocation"]
    leased_calls = limiter["1 rule, leased"][0]
    version_reads = 1 / (5 * 50)  # one GetItem per 5 s per container, at 50 decisions/s each
    leased = cost.Usage(
        app_log_bytes=app_bytes,
        platform_log_bytes=0.0,  # JSON log format + system log level WARN (the stack's)
        billed_ms=cost.billed_ms(handler.p50 / 1000),
        memory_mb=MEMORY_MB,
        arch=ARCH,
        dynamodb_writes=leased_calls,
        dynamodb_reads=version_reads,
        kinesis_bytes=audit_bytes * gzip_ratio,
        sink_seconds=1 / sink,
        sink_memory_mb=SINK_MEMORY_MB,
        traced_fraction=0.0,
    )
    scenarios = {
        "exact, 1 rule": replace(leased, dynamodb_writes=1.0),
        "leased, 1 rule": leased,
        "leased + X-Ray active (5 % sampled)": replace(leased, traced_fraction=0.05),
        "leased, text log format": replace(
            leased, platform_log_bytes=float(cost.text_platform_bytes(traced=False))
        ),
        "leased, metrics by metric filters (no EMF)": replace(
            leased, app_log_bytes=app_bytes - sizes["emf"]
        ),
    }
    items = {name: cost.line_items(usage, table) for name, usage in scenarios.items()}
    return {
        "as_of": as_of,
        "items": items,
        "totals": {name: sum(v.values()) for name, v in items.items()},
        "app_bytes": app_bytes,
        "audit_bytes": audit_bytes,
        "emf_bytes": sizes["emf"],
        "billed_ms": leased.billed_ms,
        "gzip_ratio": gzip_ratio,
    }


# --- report ------------------------------------------------------------------------------------
def fmt_us(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f} µs" if value >= 10 else f"{value:.1f} µs"


def fmt_calls(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if 0 < value < 0.1 else f"{value:.2f}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = []
    for dist in ("PyJWT", "cryptography", "pydantic", "boto3", "aws-lambda-powertools", "moto"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions.append(f"{dist} {version(dist)}")
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f", {int(line.split()[1]) / 1024**2:.0f} GiB RAM"
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores{memory}, "
        f"Python {platform.python_version()}; {'; '.join(versions)}; load average at the end "
        f"{load} (other agents share the machine: numbers are noisy)"
    )


def build_report(r: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
    rows: list[Row] = r["rows"]
    by = {row.name: row for row in rows}
    rs_check = by["bare RS256 signature check (`cryptography`)"].p50
    rs_decode = by["PyJWT `decode` RS256, cached key"].p50
    es_decode = by["PyJWT `decode` ES256, cached key"].p50
    key_floor: Row = r["api_key_floor"]
    out = [
        f"n = {r['n']:,} decisions per row unless the n column says otherwise (rows that write "
        f"to moto on every decision); p50 and p99 over all of them. Machine: {r['machine']}",
        "",
        "| measure | p50 | p99 | vs bare RS256 check | vs PyJWT decode (RS256) | "
        "DynamoDB calls / decision | p50 excl. DynamoDB | n |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    cache_hit: Row = r["token_cache_hit"]
    for row in [*rows, key_floor, cache_hit]:
        out.append(
            f"| {row.name} | {fmt_us(row.p50)} | {fmt_us(row.p99)} | {row.p50 / rs_check:.2f}× "
            f"| {row.p50 / rs_decode:.2f}× | {fmt_calls(row.calls)} | {fmt_us(row.net_p50)} "
            f"| {row.n:,} |"
        )
    first_rs = by["`authorize()`, first-seen JWT (RS256)"].p50
    first_es = by["`authorize()`, first-seen JWT (ES256)"].p50
    again = by["`authorize()`, repeated JWT"].p50
    api_key = by["`authorize()`, API key"].p50
    naive_row_ = by[next(name for name in by if name.startswith("naive"))]
    leased = by["`authorize()`, repeated JWT + 1 leased limit rule"]
    cold = r["cold"]
    money = r["cost"]
    leased_total = money["totals"]["leased, 1 rule"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    goals = [
        (
            "first-seen JWT ≤ 1.5× PyJWT decode",
            f"RS256 {first_rs / rs_decode:.2f}×, ES256 {first_es / es_decode:.2f}× "
            "(vs decode of the same algorithm)",
            verdict(first_rs <= 1.5 * rs_decode and first_es <= 1.5 * es_decode),
        ),
        (
            "repeated JWT ≤ 1× one bare signature check",
            f"whole decision {again / rs_check:.2f}× the bare RS256 check "
            f"({fmt_us(again)} vs {fmt_us(rs_check)}); its authentication step (token-cache "
            f"hit) {cache_hit.p50 / rs_check:.2f}×",
            verdict(again <= rs_check),
        ),
        (
            "API key ≤ 1.2× SHA-256 + RBAC lookup",
            f"{api_key / key_floor.p50:.2f}× ({fmt_us(api_key)} vs {fmt_us(key_floor.p50)})",
            verdict(api_key <= 1.2 * key_floor.p50),
        ),
        (
            "cold import of the handler ≤ 1.3× `import boto3`",
            f"{cold['ratio']:.2f}× ({cold['medians_ms']['import handler']:.0f} ms vs "
            f"{cold['medians_ms']['import boto3']:.0f} ms, whole-process medians)",
            verdict(cold["ratio"] <= 1.3),
        ),
        (
            "≥ 3× faster than the naive authorizer",
            f"{naive_row_.p50 / leased.p50:.1f}× (p50 {fmt_us(naive_row_.p50)} vs "
            f"{fmt_us(leased.p50)}, both with 1 limit rule, DynamoDB = in-process moto); "
            f"excl. DynamoDB {(naive_row_.net_p50 or 0) / (leased.net_p50 or 1):.1f}×",
            verdict(naive_row_.p50 >= 3 * leased.p50),
        ),
        (
            "≥ 3× fewer DynamoDB calls than the naive authorizer",
            f"{naive_row_.calls:.2f} vs {fmt_calls(leased.calls)} per decision",
            verdict((naive_row_.calls or 0) >= 3 * (leased.calls or 0)),
        ),
        (
            "≤ $0.60 per million decisions added (TTL 0, leased)",
            f"${leased_total:.3f}/M (exact: ${money['totals']['exact, 1 rule']:.3f}/M)",
            verdict(leased_total <= 0.60),
        ),
    ]
    out += ["", "| goal | measured | verdict |", "|---|---|---|"]
    out += [f"| {g} | {m} | {v} |" for g, m, v in goals]

    out += [
        "",
        f"Handler invocation (`lambda_handler`, repeated JWT, 1 leased limit rule, audit line "
        "and metrics written): p50 "
        f"{fmt_us(r['handler'].p50)}, p99 {fmt_us(r['handler'].p99)}; "
        f"{money['app_bytes']:.0f} bytes logged per decision (audit line "
        f"{money['audit_bytes']:.0f} B, metrics {money['emf_bytes']:.0f} B).",
        "",
        f"Cold start ({cold['runs']} interleaved runs, whole-process medians): "
        + ", ".join(f"{k} {v:.0f} ms" for k, v in cold["medians_ms"].items())
        + ". `python -X importtime` of the handler, self time by top-level package: "
        + ", ".join(f"{name} {ms:.1f} ms" for name, ms in cold["top_packages"])
        + "; slowest modules (self / cumulative): "
        + ", ".join(f"{name} {own:.1f}/{tot:.1f} ms" for name, own, tot in cold["top_modules"])
        + ".",
        "",
        f"Audit sink: {r['sink']['events_per_s']:,.0f} events/s (in-process, median of "
        f"{r['sink']['repeats']} runs of {r['sink']['n']:,} events, CloudWatch Logs records of 50 "
        "events, batches of 100; S3 latency excluded).",
        "",
        "Rate limiter (`bench/rate_limit_bench.py`: steady traffic at 90 % of a 1,000/minute "
        "limit for ten minutes, the first excluded; extra rules are looser hourly rules):",
        "",
        "| rules | exact: calls / request | leased, 1 container | leased, 4 containers | "
        "limiter CPU / request (exact, leased) |",
        "|---:|---:|---:|---:|---:|",
    ]
    limiter = r["limiter"]
    for rules in (1, 3, 5):
        key = f"{rules} rule{'s' if rules > 1 else ''}"
        exact, leased_1 = limiter[f"{key}, exact"], limiter[f"{key}, leased"]
        leased_4 = limiter[f"{key}, leased, 4 containers"]
        out.append(
            f"| {rules} | {exact[0]:.2f} | {leased_1[0]:.3f} | {leased_4[0]:.3f} | "
            f"{exact[1]:.0f} µs, {leased_1[1]:.0f} µs |"
        )
    out += []
    profiles = r["profiles"]
    p50s = {
        "first-seen JWT (RS256)": first_rs,
        "repeated JWT": again,
        "API key": api_key,
    }
    out += [
        "",
        "Where the time goes (cProfile, cumulative share of `authorize()`, scaled to the "
        "unprofiled p50; `·` marks a part of the step above; profiler overhead inflates small "
        "functions):",
        "",
        "| step | " + " | ".join(profiles) + " |",
        "|---|" + "---:|" * len(profiles),
    ]
    for label, _, _ in PROFILED:
        cells = []
        for path in profiles:
            share = profiles[path].get(label)
            cells.append("–" if not share else f"{share:.0%} ≈ {share * p50s[path]:.0f} µs")
        if any(cell != "–" for cell in cells):
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    out += [
        "",
        f"Cost per million decisions (prices: `bench/prices.csv`, as of {money['as_of']}; "
        f"Lambda arm64 {MEMORY_MB} MB billed {money['billed_ms']:.0f} ms; JSON log format with "
        "the system log level WARN unless stated):",
        "",
        "| item | " + " | ".join(money["items"]) + " |",
        "|---|" + "---:|" * len(money["items"]),
    ]
    names = list(next(iter(money["items"].values())))
    for item in names:
        out.append(
            f"| {item} | " + " | ".join(f"${v[item]:.4f}" for v in money["items"].values()) + " |"
        )
    out.append(
        "| **total** | " + " | ".join(f"**${t:.3f}**" for t in money["totals"].values()) + " |"
    )
    return "\n".join(out), goals


def write_results(path: Path, report: str, smoke: bool) -> None:
    analysis = BENCH / "analysis.md"
    parts = [
        "# Benchmark results",
        "",
        "Generated by `.venv/bin/python bench/run.py`"
        + (" --smoke (tiny samples: not for quoting)" if smoke else "")
        + f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Do not edit by hand: "
        "the analysis below the table is `bench/analysis.md`.",
        "",
        report,
    ]
    if analysis.exists():
        parts += ["", analysis.read_text().rstrip()]
    path.write_text("\n".join(parts) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny samples: checks it runs")
    parser.add_argument("-n", type=int, default=None, help="decisions per row (default 10,000)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default bench/results.md; smoke: none)",
    )
    args = parser.parse_args(argv)
    n = args.n or (200 if args.smoke else 10_000)
    started = time.perf_counter()
    results: dict[str, Any] = {"n": n}

    def phase(name: str) -> None:
        print(f"[{time.perf_counter() - started:5.0f} s] {name}", file=sys.stderr, flush=True)

    with world() as w:
        phase("the floor")
        results["rows"] = floor_rows(w.rsa, w.ecdsa, n)
        phase("authorize() paths, profiles")
        rows, extra = authorizer_rows(w, n)
        results["rows"] += rows
        phase("the naive authorizer")
        results["rows"].append(naive_row(w, n))
        results["api_key_floor"] = extra["api_key_floor"]
        results["profiles"] = extra["profiles"]
        results["token_cache_hit"] = extra["token_cache_hit"]
        phase("the handler")
        results["handler"], sizes = handler_rows(w, extra["repeated_event"], n)
    phase("cold start")
    results["cold"] = cold_start(3 if args.smoke else 9)
    phase("audit sink, rate limiter")
    results["sink"] = audit_sink(500 if args.smoke else 10_000, 1 if args.smoke else 3)
    results["limiter"] = rate_limiter()
    results["cost"] = cost_model(
        results["handler"], sizes, results["limiter"], results["sink"]["events_per_s"]
    )
    results["machine"] = machine()
    report, _ = build_report(results)
    print(report)
    print(f"\n(sample audit line: {sizes['audit_sample']})")
    print(f"(sample metrics line: {sizes['emf_sample']})")
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    out = args.out or (None if args.smoke else BENCH / "results.md")
    if out is not None:
        write_results(out, report, args.smoke)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
