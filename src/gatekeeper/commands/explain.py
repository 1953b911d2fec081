"""``gatekeeper explain``: why a request is allowed or denied (see :mod:`gatekeeper.explain`).

Offline against an access file (``--access``), or online against the config (and counters)
table with the CLI's usual options. The caller is a principal id (+ tenant, claims, roles), a
credential (``--token``, ``--api-key``), or the credential of an authorizer event (``--event``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import client, common_options, key_prefix_option, print_json
from gatekeeper.commands._errors import UsageError

if TYPE_CHECKING:
    from gatekeeper.identity.principal import Principal
    from gatekeeper.rbac.model import ConfigSnapshot, RoleAssignment
    from gatekeeper.store.config_store import DynamoConfigStore


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "explain",
        parents=[common_options()],
        help="why a request is allowed or denied: roles, rules, limits, policy, cached routes",
        description="Explain the authorizer's answer for a caller and a request, offline "
        "(--access FILE) or against the tables.",
    )
    parser.add_argument("method", nargs="?", help="HTTP verb, e.g. GET (not with --event)")
    parser.add_argument("path", nargs="?", help="request path, e.g. /orders/o-1")
    parser.add_argument("--access", type=Path, help="explain offline against this access file")
    who = parser.add_argument_group("the caller (one of)")
    who.add_argument("--principal", help="principal id, e.g. corp:alice")
    who.add_argument("--token", help="a JWT (or 'Bearer <jwt>')")
    who.add_argument("--api-key", help="an API key (online only: keys live in the config table)")
    who.add_argument("--event", type=Path, help="an authorizer event (JSON file)")
    who.add_argument(
        "--request-id",
        help="the requestId of an audit event (in --audit-log): its caller and request, "
        "explained with the roles it recorded",
    )
    parser.add_argument(
        "--audit-log",
        type=Path,
        help="audit log lines (JSON) to find --request-id in (default: `gatekeeper serve`'s "
        "audit.jsonl in --state-dir)",
    )
    principal = parser.add_argument_group("with --principal")
    principal.add_argument("--tenant", help="the caller's tenant")
    principal.add_argument(
        "--claim", action="append", default=[], metavar="NAME=VALUE", help="a JWT claim (repeat)"
    )
    principal.add_argument("--role", action="append", default=[], help="a role held directly")
    principal.add_argument(
        "--scope", action="append", default=[], help="a scope the credential carries (repeat)"
    )
    principal.add_argument("--issuer", help="issuer name (default: the principal id's prefix)")
    request = parser.add_argument_group("the request")
    request.add_argument("--api-id", help="API id (default: the first catalogued API)")
    request.add_argument("--stage", help="stage (default: the API's first catalogued stage)")
    request.add_argument("--tenant-header", help="the tenant header's value, if any")
    request.add_argument("--source-ip", help="source IP (for ip-scoped limits)")
    parser.add_argument(
        "--issuers",
        help="trusted issuers to verify --token with: JSON or @FILE (default: "
        "$GATEKEEPER_ISSUERS, else the `gatekeeper serve` issuer of --state-dir)",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="`gatekeeper serve`'s state directory (its local issuer)"
    )
    key_prefix_option(parser)
    parser.set_defaults(func=run_explain)


def run_explain(args: argparse.Namespace) -> int:
    from gatekeeper import explain

    callers = [args.principal, args.token, args.api_key, args.event, args.request_id]
    if sum(c is not None for c in callers) != 1:
        raise UsageError(
            "name the caller: one of --principal, --token, --api-key, --event, --request-id"
        )
    from_file = args.event is not None or args.request_id is not None
    if not from_file and (args.method is None or args.path is None):
        raise UsageError("give the request as METHOD PATH (or an --event file)")
    if from_file and args.method is not None:
        raise UsageError("the request comes from the event: no METHOD PATH with it")
    recorded = recorded_event(args) if args.request_id is not None else None

    store = None
    if args.access is not None:
        from gatekeeper.access_tests import snapshot_of
        from gatekeeper.commands.policy import read_access_file

        access = read_access_file(args.access, force=False)
        snapshot = snapshot_of(access)
        all_assignments: tuple[RoleAssignment, ...] = access.assignments or ()
    else:
        store = _store(args)
        snapshot = store.load_snapshot()
        all_assignments = ()

    principal: Principal | None
    if recorded is not None:
        spec, principal, verified = _from_audit(recorded)
    else:
        spec, credential = _request(args, snapshot)
        principal, verified = _caller(args, credential, store)
    if principal is None:
        raise UsageError("no caller")
    assignments = (
        all_assignments if store is None else store.get_assignments(principal.principal_id)
    )
    answer = explain.explain(snapshot, assignments, principal, spec, verified=verified)
    if store is not None:
        answer = with_usage(args, answer)
    if args.json:
        data = answer.model_dump(mode="json")
        data["routes"] = [{**r.model_dump(mode="json"), "exact": r.exact} for r in answer.routes]
        if recorded is not None:
            data["recorded"] = recorded
        print_json(data)
    else:
        if recorded is not None:
            print(
                f"audit event {recorded['request_id']} at {recorded['time']}: "
                f"{recorded['decision']} ({recorded['reason']}); explained now, with the "
                "roles it recorded"
            )
        print(explain.render(answer))
    return 0


def recorded_event(args: argparse.Namespace) -> dict[str, Any]:
    """The audit event with ``--request-id`` in the audit log (the last one, if several)."""
    from gatekeeper.serve import state

    path = args.audit_log or state.state_dir(args.state_dir) / "audit.jsonl"
    found: dict[str, Any] | None = None
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if args.request_id not in line:
                continue
            try:
                audit = json.loads(line).get("audit")
            except (ValueError, AttributeError):
                continue
            if isinstance(audit, dict) and audit.get("request_id") == args.request_id:
                found = audit
    if found is None:
        raise UsageError(f"{path}: no audit event with requestId {args.request_id!r}")
    if found.get("decision") == "unauthorized" or not found.get("principal_id"):
        raise UsageError(
            f"request {args.request_id}: the authorizer answered 401 {found.get('reason')} "
            "(no caller was identified)"
        )
    if not (found.get("method") and found.get("path") and found.get("api_id")):
        raise UsageError(f"request {args.request_id}: the audit event names no request")
    return found


def _from_audit(audit: dict[str, Any]) -> tuple[Any, Principal, bool]:
    from gatekeeper.access_tests import offline_principal
    from gatekeeper.explain import RequestSpec

    spec = RequestSpec(
        str(audit["method"]),
        str(audit["path"]),
        api_id=str(audit["api_id"]),
        stage=str(audit.get("stage") or "$default"),
        source_ip=audit.get("source_ip"),
    )
    from typing import cast, get_args

    from gatekeeper.identity.principal import AuthMethod

    method = audit.get("auth_method")
    auth = cast("AuthMethod", method if method in get_args(AuthMethod) else "jwt")
    principal = offline_principal(
        str(audit["principal_id"]),
        tenant=audit.get("tenant"),
        roles=audit.get("roles") or (),
        issuer=audit.get("issuer"),
        auth=auth,
        key_id=audit.get("key_id"),
    )
    return spec, principal, True


def _store(args: argparse.Namespace) -> DynamoConfigStore:
    from gatekeeper.store.config_store import DynamoConfigStore

    if not args.config_table:
        raise UsageError(
            "explain offline with --access FILE, or name the config table "
            "(--config-table or GATEKEEPER_CONFIG_TABLE)"
        )
    return DynamoConfigStore(client(args, "dynamodb"), args.config_table)


def _request(args: argparse.Namespace, snapshot: ConfigSnapshot) -> tuple[Any, dict[str, Any]]:
    """The request (a :class:`RequestSpec`) and the credential it carries (``--event``)."""
    from gatekeeper.errors import GatekeeperError
    from gatekeeper.explain import RequestSpec
    from gatekeeper.requests import parse_event

    credential: dict[str, Any] = {}
    if args.event is not None:
        try:
            event = json.loads(args.event.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{args.event}: not JSON ({exc.msg}, line {exc.lineno})") from None
        try:
            parsed = parse_event(
                event,
                api_key_prefix=args.api_key_prefix,
                tenant_header=os.environ.get("GATEKEEPER_TENANT_HEADER", "x-tenant-id"),
            )
        except GatekeeperError as exc:
            raise UsageError(f"{args.event}: the authorizer answers 401 {exc.reason}") from None
        creds = parsed.credentials
        if creds.api_key is not None:
            credential["api_key"] = creds.api_key.get_secret_value()
        elif creds.bearer is not None:
            credential["token"] = creds.bearer.get_secret_value()
        else:
            raise UsageError(f"{args.event}: no credential (the authorizer answers 401)")
        spec = RequestSpec(
            parsed.method,
            parsed.path,
            api_id=parsed.arn.api_id,
            stage=parsed.arn.stage,
            tenant_header=parsed.tenant_hint,
            source_ip=parsed.source_ip,
        )
        return spec, credential
    from gatekeeper.canonical_path import canonical_path

    try:
        canonical_path(args.path)
    except GatekeeperError as exc:
        raise UsageError(f"the authorizer answers 401 {exc.reason}: {exc}") from None
    api_id = args.api_id or (snapshot.apis[0].api_id if snapshot.apis else "local")
    stage = args.stage or next((a.stage for a in snapshot.apis if a.api_id == api_id), "$default")
    try:
        spec = RequestSpec(
            args.method.upper(),
            args.path,
            api_id=api_id,
            stage=stage,
            tenant_header=args.tenant_header,
            source_ip=args.source_ip,
        )
        spec.arn()
    except ValueError as exc:
        raise UsageError(f"not a request to explain: {' '.join(str(exc).split())}") from None
    return spec, credential


def _caller(
    args: argparse.Namespace, credential: dict[str, Any], store: DynamoConfigStore | None
) -> tuple[Principal | None, bool]:
    from gatekeeper.access_tests import offline_principal
    from gatekeeper.errors import GatekeeperError

    if args.principal is not None:
        claims: dict[str, list[str]] = {}
        for item in args.claim:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise UsageError(f"--claim must be NAME=VALUE: {item!r}")
            claims.setdefault(name, []).append(value)
        flat = {k: v[0] if len(v) == 1 else v for k, v in claims.items()}
        return offline_principal(
            args.principal,
            tenant=args.tenant,
            roles=args.role,
            claims=flat or None,
            issuer=args.issuer,
            auth="jwt" if flat or args.issuer else "api_key" if args.role else "jwt",
            scopes=args.scope,
        ), True
    api_key = args.api_key or credential.get("api_key")
    token = args.token or credential.get("token")
    try:
        if api_key is not None:
            return _api_key_principal(args, api_key, store), True
        assert token is not None
        return _jwt_principal(args, token.removeprefix("Bearer ").strip())
    except GatekeeperError as exc:
        raise UsageError(f"the authorizer answers 401 {exc.reason}: {exc}") from None


def _api_key_principal(
    args: argparse.Namespace, api_key: str, store: DynamoConfigStore | None
) -> Principal:
    from gatekeeper.errors import UnknownApiKey
    from gatekeeper.identity.api_keys import check_key, parse_key

    if store is None:
        raise UsageError(
            "API keys are stored in the config table, not in the access file: explain a key "
            "online (--config-table/--endpoint-url), or use --principal with --role"
        )
    key_id, secret = parse_key(api_key, args.api_key_prefix)
    record = store.get_api_key(key_id)
    if record is None:
        raise UnknownApiKey(f"no API key with id {key_id}")
    return check_key(record, secret, time.time())


def issuer_configs(args: argparse.Namespace) -> list[Any]:
    """``--issuers`` (JSON or ``@FILE``), else ``$GATEKEEPER_ISSUERS``."""
    from pydantic import TypeAdapter

    from gatekeeper.identity.jwt_verifier import IssuerConfig

    raw = args.issuers or os.environ.get("GATEKEEPER_ISSUERS") or "[]"
    if raw.startswith("@"):
        raw = Path(raw[1:]).read_text(encoding="utf-8")
    try:
        configs: list[Any] = TypeAdapter(list[IssuerConfig]).validate_json(raw)
    except ValueError as exc:
        raise UsageError(f"--issuers: {' '.join(str(exc).split())}") from None
    return configs


def _jwt_principal(args: argparse.Namespace, token: str) -> tuple[Principal, bool]:
    """Verified with the configured issuers, or with `gatekeeper serve`'s local issuer (its key
    in the state directory); decoded only, and said so, when no issuer matches."""
    import jwt

    from gatekeeper.access_tests import offline_principal
    from gatekeeper.identity.jwt_verifier import IssuerConfig, JwtVerifier
    from gatekeeper.serve import state

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise UsageError("--token is not a JWT (the authorizer answers 401)") from None
    known = [c for c in issuer_configs(args) if c.issuer == claims.get("iss")]
    if known:
        return JwtVerifier(known).verify(token), True
    folder = state.state_dir(args.state_dir)
    if claims.get("iss") == state.ISSUER and (folder / state.KEY_FILE).exists():
        jwks = state.local_jwks(folder)
        local = IssuerConfig.model_validate(
            state.issuer_config("http://127.0.0.1/jwks.json") | {"name": state.issuer_name(folder)}
        )
        return JwtVerifier([local], fetch=lambda *_: jwks).verify(token), True
    name = args.issuer or "unverified"
    tenant = claims.get("tenant")
    return offline_principal(
        f"{name}:{claims.get('sub')}",
        tenant=tenant if isinstance(tenant, str) else None,
        claims={k: v for k, v in claims.items() if isinstance(v, str | list)},
        issuer=name,
        auth="jwt",
    ), False


def with_usage(args: argparse.Namespace, answer: Any) -> Any:
    """The explanation with each limit's units used in the current window (online, with a
    counters table; fixed and sliding windows)."""
    if not args.counters_table or not answer.limits:
        return answer
    from gatekeeper.store.counters_admin import DynamoCountersAdminStore

    counters = DynamoCountersAdminStore(client(args, "dynamodb"), args.counters_table)
    now = int(time.time())
    limits = []
    for limit in answer.limits:
        if limit.algorithm == "token_bucket":
            limits.append(limit)
            continue
        from gatekeeper.rate_limit.rules import WINDOW_SECONDS

        width = WINDOW_SECONDS[limit.window]
        windows = counters.usage(limit.rule_id, limit.scope_key).windows
        used = sum(w.count for w in windows if w.window_start == now - now % width)
        limits.append(limit.model_copy(update={"current": used}))
    return answer.model_copy(update={"limits": tuple(limits)})
