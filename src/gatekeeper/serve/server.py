"""``gatekeeper serve``: API Gateway on 127.0.0.1, the real authorizer handler behind it.

One process: an ASGI app (Starlette, served by uvicorn) that turns each HTTP request into a
:class:`~gatekeeper.testing.gateway.ClientRequest` and plays it through a
:class:`~gatekeeper.testing.gateway.GatewayModel` (route selection, identity sources, the
authorizer event, the cache with its TTL, the cached policy judged against each request's ARN),
which calls ``functions/authorizer/handler.py`` itself. Allowed requests are proxied with httpx
(timeouts on every phase: an unreachable backend is a 502, a slow one a 504, never a hang) or
answered by the built-in echo backend.

The handler runs in a worker thread under one lock: a Lambda container serves one request at a
time, and the authorizer's caches (config, JWKS, policies, leases) assume it.

Embedded mode (the default): the config and counters tables live in an in-process moto server
(``ThreadedMotoServer`` on a free 127.0.0.1 port, so ``gatekeeper keys create --endpoint-url``
and ``explain`` reach them), seeded from the access file; a local JWKS issuer serves the key of
the state directory (:mod:`gatekeeper.serve.state`). External mode (``--endpoint-url`` or
``--config-table``): the tables as they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from gatekeeper.serve import state
from gatekeeper.serve.gateway import gateway_reply, upstream_request_headers
from gatekeeper.testing.gateway import ClientRequest, DeployedApi, GatewayAnswer, GatewayModel

CONFIG_TABLE = "gatekeeper-local-config"
COUNTERS_TABLE = "gatekeeper-local-counters"
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class Options:
    """What the command line decided (validated before anything starts)."""

    api: DeployedApi
    upstream: str | None
    port: int
    state_dir: Path
    issuer_name: str = state.ISSUER_NAME
    rate_limit_response: Literal["deny", "flag"] = "deny"
    http_response: Literal["simple", "iam"] = "simple"
    upstream_timeout: float = 10.0
    quiet: bool = False
    external_endpoint: str | None = None
    external: bool = False
    config_table: str = CONFIG_TABLE
    counters_table: str | None = COUNTERS_TABLE
    region: str = "us-east-1"
    seed: tuple[Any, ...] = ()
    extra_issuers: tuple[dict[str, Any], ...] = ()
    log: IO[str] = field(default_factory=lambda: sys.stdout)


# --- the tables ----------------------------------------------------------------------------------
class EmbeddedDynamo:
    """moto's DynamoDB in this process, on a free 127.0.0.1 port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedDynamo:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per DynamoDB call
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dynamodb_client(endpoint: str | None, region: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2})
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name=region, config=config)


def seed_tables(client: Any, options: Options) -> None:
    """Create both tables, write the access file's items, restore the saved API keys."""
    from gatekeeper.identity.api_keys import ApiKeyRecord
    from gatekeeper.store import tables
    from gatekeeper.store.config_store import DynamoConfigStore

    client.create_table(**tables.table_definition(options.config_table))
    if options.counters_table:
        client.create_table(**tables.counters_table_definition(options.counters_table))
    store = DynamoConfigStore(client, options.config_table)
    items = list(options.seed)
    saved = state.state_dir(options.state_dir) / state.API_KEYS_FILE
    if saved.exists():
        items += [ApiKeyRecord.model_validate(r) for r in json.loads(saved.read_text())]
    for start in range(0, len(items), 90):
        store.put(*items[start : start + 90])


def stored_keys(client: Any, table: str) -> list[dict[str, Any]]:
    """Every API key record (hashes, never a secret), for the state directory."""
    from gatekeeper.store.config_store import DynamoConfigStore

    store = DynamoConfigStore(client, table)
    records: list[dict[str, Any]] = []
    after = None
    while True:
        docs, after = store.list_docs(pk_prefix="APIKEY#", limit=100, after=after)
        records += [json.loads(d.doc) for d in docs if d.sk == "APIKEY"]
        if after is None:
            return sorted(records, key=lambda r: str(r.get("key_id")))


class KeySaver:
    """Saves the embedded table's API keys to the state directory every second and at exit,
    so keys created with ``gatekeeper keys create`` survive a restart."""

    def __init__(self, client: Any, table: str, path: Path) -> None:
        self._client, self._table, self._path = client, table, path
        self._last: list[dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="key-saver", daemon=True)

    def start(self) -> KeySaver:
        self._thread.start()
        return self

    def save(self) -> None:
        with contextlib.suppress(Exception):  # best effort; the next round retries
            records = stored_keys(self._client, self._table)
            if records != self._last:
                state.write_json(self._path, records)
                self._last = records

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.save()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.save()


# --- the gateway ---------------------------------------------------------------------------------
class LocalGateway:
    """The model, one authorizer call at a time (one Lambda container)."""

    def __init__(self, api: DeployedApi, invoke: Callable[[dict[str, Any]], dict[str, Any]]):
        self.model = GatewayModel(api, invoke, documented_iam_only=True)
        self._lock = threading.Lock()

    def send(self, request: ClientRequest) -> GatewayAnswer:
        with self._lock:
            return self.model.send(request)


def client_request(scope: Mapping[str, Any], headers: list[tuple[bytes, bytes]]) -> ClientRequest:
    """The request as the client sent it: the raw (undecoded) path, joined repeated headers."""
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1").split("?", 1)[0] or "/"
    joined: dict[str, str] = {}
    for name, value in headers:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        joined[key] = f"{joined[key]},{text}" if key in joined else text
    from urllib.parse import parse_qsl

    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    client = scope.get("client") or ("127.0.0.1", 0)
    return ClientRequest(
        scope["method"],
        path,
        joined,
        query,
        source_ip=str(client[0]),
        user_agent=joined.get("user-agent", "unknown"),
    )


def build_app(gateway: LocalGateway, options: Options) -> Any:
    """The Starlette app: every path and verb goes through the gateway."""
    import httpx
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    timeout = httpx.Timeout(options.upstream_timeout, connect=min(options.upstream_timeout, 3.0))
    clients: dict[str, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        clients["upstream"] = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        try:
            yield
        finally:
            await clients["upstream"].aclose()

    async def handle(request: Request) -> Response:
        started = time.perf_counter()
        try:
            client_req = client_request(request.scope, request.headers.raw)
        except ValueError:
            return JSONResponse({"message": "Bad Request"}, status_code=400)
        answer = await run_in_threadpool(gateway.send, client_req)
        event = answer.event or {}
        request_id = str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4())
        reply = gateway_reply(answer, request_id, api_type=options.api.api_type)
        if not reply.forward:
            response: Response = Response(reply.content(), reply.status, reply.headers)
        elif options.upstream is None:
            body = echo(client_req, answer, reply.upstream_headers)
            response = JSONResponse(body, headers=reply.headers)
        else:
            response = await proxy(
                clients["upstream"],
                options,
                client_req,
                request.url.query,
                await request.body(),
                reply.upstream_headers,
                reply.headers,
            )
        if not options.quiet:
            reason = answer.context.get("reason", answer.outcome)
            took = (time.perf_counter() - started) * 1000
            print(
                f"{client_req.method} {client_req.path} -> {response.status_code} "
                f"({answer.answered_by}: {answer.outcome}, {reason}) {took:.1f} ms",
                file=options.log,
                flush=True,
            )
        return response

    return Starlette(routes=[Route("/{path:path}", handle, methods=list(VERBS))], lifespan=lifespan)


async def proxy(
    http: Any,
    options: Options,
    client_req: ClientRequest,
    query: str,
    body: bytes,
    context_headers: dict[str, str],
    extra: dict[str, str],
) -> Any:
    """The backend's answer, or a 502 (unreachable) / 504 (timed out) naming the reason."""
    import httpx
    from starlette.responses import JSONResponse, Response

    assert options.upstream is not None
    url = options.upstream.rstrip("/") + client_req.path + (f"?{query}" if query else "")
    headers = upstream_request_headers(dict(client_req.headers), context_headers)
    try:
        upstream = await http.request(client_req.method, url, headers=headers, content=body)
    except httpx.TimeoutException as exc:
        error = {"message": "Endpoint request timed out", "reason": "upstream_timeout"}
        error["detail"] = f"{type(exc).__name__} after {options.upstream_timeout:g} s"
        return JSONResponse(error, status_code=504, headers=extra)
    except httpx.HTTPError as exc:
        error = {"message": "Bad Gateway", "reason": "upstream_unreachable"}
        error["detail"] = f"{options.upstream}: {type(exc).__name__}: {exc}".strip(": ")
        return JSONResponse(error, status_code=502, headers=extra)
    dropped = {"content-length", "content-encoding", "transfer-encoding", "connection"}
    passed = {k: v for k, v in upstream.headers.items() if k.lower() not in dropped}
    return Response(upstream.content, upstream.status_code, {**passed, **extra})


def echo(
    request: ClientRequest, answer: GatewayAnswer, context_headers: Mapping[str, str]
) -> dict[str, Any]:
    """The built-in backend's answer: what it received, the authorizer context first."""
    return {
        "echo": "gatekeeper serve's built-in backend",
        "method": request.method,
        "path": request.path,
        "query": dict(request.query),
        "route": answer.route,
        "answeredBy": answer.answered_by,
        "authorizer": dict(answer.context),
        "headers": dict(context_headers),
    }


# --- running -------------------------------------------------------------------------------------
@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
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


@contextlib.contextmanager
def running_backend(options: Options) -> Iterator[dict[str, str]]:
    """Tables (embedded or external), the local issuer, the handler's environment."""
    from gatekeeper.testing import LocalJwksServer

    stack = contextlib.ExitStack()
    with stack:
        endpoint = options.external_endpoint
        region = options.region
        info: dict[str, str] = {}
        if not options.external:
            dynamo = EmbeddedDynamo().start()
            stack.callback(dynamo.stop)
            endpoint = dynamo.endpoint
            creds = {
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": region,
            }
            stack.enter_context(environment(creds))
            os.environ.pop("AWS_SESSION_TOKEN", None)
            client = dynamodb_client(endpoint, region)
            seed_tables(client, options)
            saver = KeySaver(
                client,
                options.config_table,
                state.state_dir(options.state_dir) / state.API_KEYS_FILE,
            ).start()
            stack.callback(saver.stop)
        from gatekeeper.serve.archive import LocalArchiver

        archiver = LocalArchiver(state.state_dir(options.state_dir)).start()
        stack.callback(archiver.stop)
        jwks = LocalJwksServer(state.local_jwks(options.state_dir)).start()
        stack.callback(jwks.close)
        local = state.issuer_config(jwks.uri) | {"name": options.issuer_name}
        state.write_json(
            state.state_dir(options.state_dir) / state.ISSUER_FILE, {"name": options.issuer_name}
        )
        env = {
            "GATEKEEPER_CONFIG_TABLE": options.config_table,
            "GATEKEEPER_ISSUERS": json.dumps([local, *options.extra_issuers]),
            "GATEKEEPER_RATE_LIMIT_RESPONSE": options.rate_limit_response,
            "GATEKEEPER_HTTP_API_RESPONSE": options.http_response,
            "GATEKEEPER_CONFIG_REFRESH_SECONDS": "1",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "gatekeeper-authorizer",
            "AWS_DEFAULT_REGION": region,
        }
        if options.counters_table:
            env["GATEKEEPER_COUNTERS_TABLE"] = options.counters_table
        if endpoint:
            env["GATEKEEPER_DYNAMODB_ENDPOINT"] = endpoint
        stack.enter_context(environment(env))
        info.update(endpoint=endpoint or "AWS", jwks=jwks.uri)
        yield info


def serve(options: Options, *, prepare: Callable[[LocalGateway], None] | None = None) -> int:
    """Start everything, serve until Ctrl-C or SIGTERM, stop everything. ``prepare`` runs
    against the gateway before the port opens (the demo uses it)."""
    import signal

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _serve(options, prepare)
    except Stopped:
        pass  # Ctrl-C or SIGTERM: everything below was stopped in order
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


class Stopped(Exception):
    """Ctrl-C or SIGTERM. uvicorn shuts down gracefully, then re-raises the signal it caught:
    this exception (rather than the default handler, which would end the process there) lets
    the state directory be saved and the embedded servers be stopped."""


def _stop(_signum: int, _frame: object) -> None:
    raise Stopped


def _serve(options: Options, prepare: Callable[[LocalGateway], None] | None) -> None:
    import uvicorn

    from gatekeeper.testing.gateway import handler_invoke, load_authorizer_handler

    with running_backend(options) as info:
        handler = load_authorizer_handler(module_name="gatekeeper_serve_handler")
        audit_path = state.state_dir(options.state_dir) / "audit.jsonl"
        audit = audit_path.open("a", encoding="utf-8")
        metrics = (audit_path.parent / "metrics.jsonl").open("a", encoding="utf-8")
        handler.logger.logger_handler.setStream(audit)
        invoke = handler_invoke(handler)

        def quiet_invoke(event: dict[str, Any]) -> dict[str, Any]:
            # EMF metric lines go to stdout in Lambda; here to a file (the caller holds the
            # gateway's lock, so nothing else prints to stdout meanwhile)
            with contextlib.redirect_stdout(metrics):
                return invoke(event)

        try:
            gateway = LocalGateway(options.api, quiet_invoke)
            app = build_app(gateway, options)
            banner(options, info, audit_path)
            if prepare is not None:
                prepare(gateway)
            config = uvicorn.Config(
                app,
                host="127.0.0.1",
                port=options.port,
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=5,
                lifespan="on",
            )
            server = uvicorn.Server(config)
            server.run()
            if not server.started:
                from gatekeeper.commands._errors import UsageError

                raise UsageError(f"could not listen on 127.0.0.1:{options.port} (in use?)")
        finally:
            audit.close()
            metrics.close()


def banner(options: Options, info: dict[str, str], audit_path: Path) -> None:
    api = options.api
    kind = f"{api.api_type.upper()} API {api.api_id}/{api.stage}"
    auth = f"{api.authorizer_type} authorizer" if api.api_type == "rest" else "Lambda authorizer"
    ttl = f"cache TTL {api.ttl_seconds} s"
    backend = options.upstream or "the built-in echo backend"
    out = options.log
    print(
        f"gatekeeper serve: {kind} ({auth}, {ttl}) on http://127.0.0.1:{options.port} -> {backend}",
        file=out,
    )
    print(f"  routes: {len(api.routes)} ({', '.join(api.routes[:4])}, ...)", file=out)
    if options.external:
        print(f"  tables: {options.config_table} at {info['endpoint']}", file=out)
    else:
        print(
            f"  tables: embedded DynamoDB at {info['endpoint']} ({options.config_table}, "
            f"{options.counters_table}); e.g. gatekeeper keys create --endpoint-url "
            f"{info['endpoint']} --config-table {options.config_table} --principal svc:me "
            "--tenant acme --role orders-reader",
            file=out,
        )
    print(
        f"  JWT issuer: {state.ISSUER} (name {options.issuer_name}); tokens: gatekeeper mint "
        f"--sub alice --tenant acme",
        file=out,
    )
    archive = audit_path.parent / "archive"
    print(f"  audit events: {audit_path}, archived by the audit sink into {archive}", file=out)
    print(
        f"    verify: gatekeeper archive verify --dir {archive} --public-key "
        f"{audit_path.parent / 'archive-public-key.pem'} --max-age off",
        file=out,
        flush=True,
    )
