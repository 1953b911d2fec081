"""``gatekeeper serve``: a local API Gateway on 127.0.0.1 in front of a backend (or an echo).

Everything that can be wrong with the input (the access file, the options, the tables in
external mode) is checked before anything starts, and is one line and exit 1. See
:mod:`gatekeeper.serve.server`; needs the ``serve`` extra (``pip install -e '.[serve]'``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gatekeeper.commands._admin import client, common_options
from gatekeeper.commands._errors import UsageError

if TYPE_CHECKING:
    from gatekeeper.admin.access_file import AccessFile
    from gatekeeper.serve.server import Options

DEMO_ACCESS = Path(__file__).resolve().parents[3] / "examples" / "access.yaml"
DEMO_ISSUER_NAME = "corp"
"""In the demo, minted tokens speak for the sample's principals (corp:alice, corp:bob)."""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        parents=[common_options()],
        help="a local API Gateway on 127.0.0.1: the real authorizer in front of your backend",
        description="Play API Gateway locally: route, call the real authorizer handler, apply "
        "its answer (401/403/429, cache), proxy allowed requests. Embedded tables unless "
        "--endpoint-url or --config-table.",
    )
    parser.add_argument("--access", type=Path, help="access file: rules and route catalog")
    parser.add_argument(
        "--openapi", type=Path, help="OpenAPI file (JSON or YAML): the routes to serve"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="sample data (examples/access.yaml, a demo limit); prints three curl commands",
    )
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (8080)")
    parser.add_argument("--upstream", help="backend URL (default: a built-in echo backend)")
    parser.add_argument(
        "--upstream-timeout", type=float, default=10.0, help="seconds per backend request (10)"
    )
    api = parser.add_argument_group("the API")
    api.add_argument("--api-id", help="catalogued API to serve (default: the first)")
    api.add_argument("--stage", help="its stage (default: its first catalogued stage)")
    api.add_argument("--api-type", choices=("rest", "http"), default="rest")
    api.add_argument(
        "--authorizer-type", choices=("REQUEST", "TOKEN"), default="REQUEST", help="REST only"
    )
    api.add_argument(
        "--ttl", type=int, default=0, help="authorizer cache TTL in seconds (0..3600; 0)"
    )
    api.add_argument(
        "--identity-source",
        action="append",
        help="API Gateway syntax, repeat (default: as GatekeeperAuthorizer chooses them)",
    )
    api.add_argument("--http-response", choices=("simple", "iam"), default="simple")
    api.add_argument(
        "--rate-limit-response",
        choices=("deny", "flag"),
        help="deny: 403 with Retry-After; flag: 429 from the integration (demo: flag)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="issuer key, saved API keys, audit log (default: "
        "$GATEKEEPER_STATE_DIR, else ~/.local/state/gatekeeper/serve)",
    )
    parser.add_argument(
        "--issuer-name", help="name of the local issuer: principal ids are <name>:<sub> (local)"
    )
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    parser.set_defaults(func=run_serve)


def default_identity_sources(api_type: str, authorizer: str, ttl: int) -> tuple[str, ...]:
    """What ``GatekeeperAuthorizer`` configures (README, *Caching*)."""
    tenant = os.environ.get("GATEKEEPER_TENANT_HEADER", "x-tenant-id")
    if api_type == "rest":
        if authorizer == "TOKEN":
            return ("method.request.header.Authorization",)
        if ttl == 0:
            return ()
        return ("method.request.header.Authorization", f"method.request.header.{tenant}")
    if ttl == 0:
        return ()
    return (
        "$request.header.Authorization",
        f"$request.header.{tenant}",
        "$context.httpMethod",
        "$context.path",
    )


def _seed(access: AccessFile, demo: bool) -> tuple[Any, ...]:
    items: list[Any] = [
        *access.role_models(),
        *(access.claim_mappings or ()),
        *(access.apis or ()),
        *(access.assignments or ()),
        *(access.limits or ()),
        *(access.cert_mappings or ()),
    ]
    if demo:
        items.append(demo_limit())
    return tuple(items)


def demo_limit() -> Any:
    from gatekeeper.rate_limit.rules import LimitRule, RuleMatch

    return LimitRule(
        rule_id="demo-invoices",
        description="gatekeeper serve --demo: two invoices a day per principal",
        scope="principal",
        match=RuleMatch(methods=("GET",), path="/orders/*/invoice"),
        limit=2,
        window="day",
    )


def _catalog(
    args: argparse.Namespace, access: AccessFile | None, *, external: bool
) -> tuple[str, str, tuple[str, ...]]:
    """(api id, stage, routes) of the API to serve: the access file's catalog, else (external
    tables) the stored one, else a catch-all API."""
    apis = list(access.apis or ()) if access is not None else []
    if not apis and external:
        from gatekeeper.store.config_store import DynamoConfigStore

        store = DynamoConfigStore(client(args, "dynamodb"), args.config_table)
        apis = list(store.load_snapshot().apis)
    if args.api_id:
        apis = [a for a in apis if a.api_id == args.api_id]
        if not apis:
            raise UsageError(f"no route catalog for API {args.api_id!r}")
    if args.stage:
        apis = [a for a in apis if a.stage == args.stage]
    if apis:
        if args.api_type == "rest":
            chosen = next((a for a in apis if a.stage != "$default"), apis[0])
        else:
            chosen = next((a for a in apis if a.stage == "$default"), apis[0])
        return chosen.api_id, chosen.stage, chosen.routes
    api_id = args.api_id or "local"
    stage = args.stage or ("prod" if args.api_type == "rest" else "$default")
    routes = ("ANY /", "ANY /{proxy+}") if args.api_type == "rest" else ("$default",)
    return api_id, stage, routes


def options_from(args: argparse.Namespace) -> Options:
    from gatekeeper.commands.policy import read_access_file
    from gatekeeper.serve import state
    from gatekeeper.serve.server import Options
    from gatekeeper.testing.gateway import DeployedApi

    access_path = args.access or (DEMO_ACCESS if args.demo else None)
    external = not args.demo and bool(args.endpoint_url or args.config_table)
    if access_path is None and not external:
        raise UsageError("name the access file with --access (or try --demo)")
    access = read_access_file(access_path, force=False) if access_path else None
    if external:
        _check_tables(args)
    api_id, stage, routes = _catalog(args, access, external=external)
    if args.openapi is not None:
        routes = openapi_routes(args.openapi)
    sources = tuple(args.identity_source or ()) or default_identity_sources(
        args.api_type, args.authorizer_type, args.ttl
    )
    try:
        api = DeployedApi(
            api_type=args.api_type,
            routes=routes,
            authorizer_type=args.authorizer_type if args.api_type == "rest" else "REQUEST",
            identity_sources=sources,
            ttl_seconds=args.ttl,
            response_type=args.http_response if args.api_type == "http" else "iam",
            payload_version="2.0",
            api_id=api_id,
            stage=stage,
        )
    except ValueError as exc:
        raise UsageError(f"cannot deploy that API: {exc}") from None
    if not 0 < args.port < 65536:
        raise UsageError("--port must be 1..65535")
    if args.upstream is not None and not args.upstream.startswith(("http://", "https://")):
        raise UsageError(f"--upstream must be an http(s) URL: {args.upstream!r}")
    if not 0 < args.upstream_timeout <= 300:
        raise UsageError("--upstream-timeout must be 0..300 seconds")
    extra = os.environ.get("GATEKEEPER_ISSUERS")
    issuers: tuple[dict[str, Any], ...] = ()
    if extra:
        import json

        try:
            issuers = tuple(json.loads(extra))
        except ValueError:
            raise UsageError("GATEKEEPER_ISSUERS: not a JSON list") from None
    return Options(
        api=api,
        upstream=args.upstream,
        port=args.port,
        state_dir=state.state_dir(args.state_dir),
        issuer_name=args.issuer_name or (DEMO_ISSUER_NAME if args.demo else state.ISSUER_NAME),
        rate_limit_response=args.rate_limit_response or ("flag" if args.demo else "deny"),
        http_response=args.http_response,
        upstream_timeout=args.upstream_timeout,
        quiet=args.quiet,
        external_endpoint=args.endpoint_url if external else None,
        external=external,
        config_table=args.config_table if external else "gatekeeper-local-config",
        counters_table=args.counters_table if external else "gatekeeper-local-counters",
        region=args.region or "us-east-1",
        seed=_seed(access, args.demo) if access is not None and not external else (),
        extra_issuers=issuers,
    )


def openapi_routes(path: Path) -> tuple[str, ...]:
    """The routes of an OpenAPI file; any problem is one line naming the file (and line)."""
    import yaml

    from gatekeeper.serve.openapi import routes_from_openapi

    text = path.read_text(encoding="utf-8")
    try:
        return routes_from_openapi(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        raise UsageError(f"{path}: {at}{what}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None


def _check_tables(args: argparse.Namespace) -> None:
    if not args.config_table:
        raise UsageError("no config table: pass --config-table or set GATEKEEPER_CONFIG_TABLE")
    dynamodb = client(args, "dynamodb")
    dynamodb.describe_table(TableName=args.config_table)
    if args.counters_table:
        dynamodb.describe_table(TableName=args.counters_table)


def run_serve(args: argparse.Namespace) -> int:
    try:
        import httpx  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"gatekeeper serve needs the serve extra ({exc.name} is missing): "
            "pip install -e '.[serve]'"
        ) from None
    options = options_from(args)
    if args.demo:
        return _demo(options)
    from gatekeeper.serve.server import serve

    return serve(options)


def _demo(options: Options) -> int:
    """Serve the sample, with two minted tokens and bob's invoice quota already used."""
    from gatekeeper.serve import server, state
    from gatekeeper.testing.gateway import ClientRequest

    alice = state.mint_token(options.state_dir, "alice", tenant="acme", ttl=86_400)
    bob = state.mint_token(options.state_dir, "bob", tenant="globex", ttl=86_400)
    url = f"http://127.0.0.1:{options.port}"

    def prepare(gateway: server.LocalGateway) -> None:
        for _ in range(2):
            gateway.send(
                ClientRequest("GET", "/orders/o-7/invoice", {"Authorization": f"Bearer {bob}"})
            )
        print(
            "\nTry these three (alice: orders clerk in acme; bob: reader in globex, who has "
            "used his 2 invoices of the day):\n"
            f"  curl -i -H 'Authorization: Bearer {alice}' {url}/orders/o-1001\n"
            "      # 200: the echo backend shows the authorizer context (x-gatekeeper-*)\n"
            f"  curl -i -X DELETE -H 'Authorization: Bearer {alice}' {url}/orders/o-1001\n"
            "      # 403: X-Gatekeeper-Reason: explicit_deny (clerks may not delete)\n"
            f"  curl -i -H 'Authorization: Bearer {bob}' {url}/orders/o-7/invoice\n"
            "      # 429: Retry-After, RateLimit-Limit/Remaining/Reset/Policy\n"
            "Why? gatekeeper explain --access examples/access.yaml --principal corp:alice "
            "--tenant acme DELETE /orders/o-1001\n",
            file=options.log,
            flush=True,
        )

    return server.serve(options, prepare=prepare)
