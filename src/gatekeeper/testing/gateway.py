"""A model of API Gateway in front of a Lambda authorizer, for tests and local serving.

Why: the authorizer's answer is not what a client sees. API Gateway first selects a route (or
answers 403/404 itself), checks the identity sources (or answers 401 itself), caches the answer
per identity-source values for the TTL and applies a cached IAM policy to the *next* request's
ARN. A decision that is right when the authorizer runs can be wrong when the cache answers, and
only a model of all of that can show it. :class:`GatewayModel` plays client requests against a
:class:`DeployedApi` description through any ``invoke`` callable (:func:`handler_invoke` calls the
real ``functions/authorizer/handler.py``) and returns, per request, a small
:class:`GatewayAnswer`: status, who answered (gateway, authorizer or cache), the route, the
context that would reach the backend and the event that was sent.

>>> api = DeployedApi(api_type="http", routes=("$default",), identity_sources=(
...     "$request.header.Authorization",), ttl_seconds=300)
>>> calls = []
>>> def invoke(event):
...     calls.append(event)
...     return {"isAuthorized": True, "context": {"principalId": "me"}}
>>> gateway = GatewayModel(api, invoke)
>>> [a.status for a in gateway.play([ClientRequest("GET", "/a", {"Authorization": "t"})] * 2)]
[200, 200]
>>> len(calls), gateway.send(ClientRequest("GET", "/a")).answered_by
(1, 'gateway')

What is modelled, and the documentation it follows
---------------------------------------------------
- Route selection. REST (resource tree): the most specific resource wins, segment by segment a
  literal before ``{param}`` before ``{proxy+}`` (greedy, one or more segments); then the
  request's verb on that resource, else ``ANY``; nothing → 403 ``Missing Authentication Token``
  without invoking the authorizer. The method is chosen *after* the resource: a resource that
  matches the path but lacks the verb does not fall back to a less specific resource (a modelling
  choice; AWS does not document the case). HTTP API: "1. Full match for a route and method.
  2. Match for a route and method with a greedy path variable ({proxy+}). 3. The $default
  route", otherwise 404 ``Not Found``; ``ANY`` matches the methods a path does not define
  (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-routes.html).
  WebSocket: only ``$connect`` is authorized.
- Events, as in https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-lambda-authorizer-input.html
  (TOKEN, REQUEST), .../http-api-lambda-authorizer.html (payload 2.0 and 1.0) and
  .../apigateway-websocket-api-lambda-auth.html (``$connect``: ``methodArn`` ends in
  ``/STAGE/$connect``, no verb). ARNs carry the concrete request path without its leading ``/``;
  an HTTP API ``$default`` route's ``routeArn`` is ``…/STAGE/$default``. For an HTTP API on a
  named stage ``rawPath`` and ``requestContext.http.path`` start with ``/STAGE`` (not in
  AWS's sample, which uses ``$default``; as commonly reported by framework adapters).
- Identity sources. The REST API reference for ``identitySource``: "These parameters will be used
  to derive the authorization caching key and to perform runtime validation of the REQUEST
  authorizer by verifying all of the identity-related request parameters are present, not null
  and non-empty. Only when this is true does the authorizer invoke the authorizer Lambda
  function, otherwise, it returns a 401 Unauthorized response without calling the Lambda
  function. [...] When the authorization caching is not enabled, this property is optional."
  (https://docs.aws.amazon.com/apigateway/latest/api/API_Authorizer.html). So the 401 applies
  to *configured* identity sources whatever the TTL; with none configured (only allowed with a
  TTL of 0) the authorizer is always invoked. The HTTP API guide says the same ("When caching is
  turned off, it is not necessary to specify an identity source", quoted in
  https://github.com/aws/aws-lambda-rust-runtime/pull/860, where an unset source reaches the
  function as ``identitySource: null``); this model applies the same 401 rule to HTTP and
  WebSocket APIs. A TOKEN authorizer's one header is its identity source; an optional
  ``validation_regex`` that the token does not fully match is a 401 without invocation
  (https://repost.aws/knowledge-center/api-gateway-401-error-lambda-authorizer).
- Cache: keyed by the tuple of identity-source values (the token for TOKEN), one cache per
  authorizer and API stage (one :class:`GatewayModel`), entries live ``ttl_seconds`` on the
  injected clock, TTL 0 disables it, at most 3600 s. WebSocket authorizers cannot cache ("Authorizer
  caching is not currently supported", API Gateway V2 ``AuthorizerResultTtlInSeconds``).
  An authorizer's "Unauthorized" and failures (500) are not cached; Allow and Deny answers are.
- Judging an answer: a raised ``Unauthorized`` → 401; a policy is evaluated against the current
  request's ``methodArn``/``routeArn`` with :func:`gatekeeper.iam_simulator.iam_evaluate` under
  both readings of ``*`` (crossing ``/`` or not) and a disagreement raises :class:`ModelError`
  (the model cannot say what AWS would do, so a test must fail rather than guess); Allow → 200,
  explicit or implicit deny → 403. A simple response's ``isAuthorized`` is reused as is. Any
  other exception, a non-JSON answer, a missing ``principalId``/``policyDocument``, a REST
  ``context`` value that is an object or array, or the wrong response type → 500. Events and
  answers go through ``json`` as they would through Lambda.

Paths are passed on as the client sent them: the model neither decodes nor normalises them
(whether API Gateway does varies by API type; the authorizer must not bet on it), and empty
segments are ignored only when *matching* routes (``/orders//1`` selects ``/orders/{id}``).

Not modelled: stage variables and ``stageVariables.*`` identity sources, API keys and usage
plans, resource policies, throttling, mutual TLS, Cognito/JWT authorizers, custom domains and
base paths, WebSocket routes other than ``$connect``, multi-value query strings, and the exact
bodies and headers of gateway responses.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlencode

from gatekeeper.clock import Clock, system_clock
from gatekeeper.iam_simulator import iam_evaluate
from gatekeeper.testing.lambda_context import LocalLambdaContext

if TYPE_CHECKING:
    from gatekeeper.authorizer import Authorizer

Invoke = Callable[[dict[str, Any]], dict[str, Any]]
"""Calls the authorizer with an event; raises (``Exception("Unauthorized")`` for a 401)."""

ApiType = Literal["rest", "http", "websocket"]
AuthorizerType = Literal["TOKEN", "REQUEST"]
ResponseType = Literal["simple", "iam"]
PayloadVersion = Literal["1.0", "2.0"]
AnsweredBy = Literal["gateway", "authorizer", "cache"]
Outcome = Literal[
    "allow",
    "deny",
    "implicit_deny",
    "unauthorized",
    "no_route",
    "missing_identity_source",
    "authorizer_error",
    "malformed_response",
]

MAX_TTL_SECONDS = 3600
VERBS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_GREEDY = re.compile(r"^\{[A-Za-z0-9._-]+\+\}$")
_PARAM = re.compile(r"^\{[A-Za-z0-9._-]+\}$")
_IDENTITY_SYNTAX: dict[ApiType, re.Pattern[str]] = {
    "rest": re.compile(
        r"^(method\.request\.(header|querystring)\.[^\s.][^\s]*"
        r"|context\.(httpMethod|resourcePath|path|stage|identity\.sourceIp))$"
    ),
    "http": re.compile(
        r"^(\$request\.(header|querystring)\.[^\s.][^\s]*"
        r"|\$context\.(httpMethod|path|routeKey|stage|identity\.sourceIp))$"
    ),
    "websocket": re.compile(
        r"^(route\.request\.(header|querystring)\.[^\s.][^\s]*"
        r"|context\.(routeKey|stage|identity\.sourceIp))$"
    ),
}


class ModelError(Exception):
    """The model cannot say what API Gateway would answer (e.g. the two IAM readings disagree)."""


# --- the deployed API --------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """One route as deployed: ``"GET /orders/{id}"``, ``"ANY /{proxy+}"``, ``"$default"``."""

    key: str
    method: str | None
    path: str | None
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, key: str) -> Route:
        if key in ("$default", "$connect", "$disconnect"):
            return cls(key, None, None, ())
        method, _, path = key.partition(" ")
        if method not in (*VERBS, "ANY") or not path.startswith("/"):
            raise ValueError(f"route must be 'VERB /path', '$default' or '$connect': {key!r}")
        segments = tuple(s for s in path.split("/") if s)
        for i, segment in enumerate(segments):
            if _GREEDY.match(segment) and i != len(segments) - 1:
                raise ValueError(f"a greedy path variable must end the path: {key!r}")
        return cls(key, method, path, segments)

    def rank(self, request_segments: Sequence[str]) -> tuple[int, ...] | None:
        """How specifically this route's path matches: per segment 0 literal, 1 ``{param}``,
        2 ``{proxy+}``; lower is more specific. ``None`` when it does not match."""
        if self.path is None:
            return None
        rank: list[int] = []
        for i, segment in enumerate(self.segments):
            if _GREEDY.match(segment):
                return (*rank, 2) if len(request_segments) > i else None
            if i >= len(request_segments):
                return None
            if _PARAM.match(segment):
                rank.append(1)
            elif segment == request_segments[i]:
                rank.append(0)
            else:
                return None
        return tuple(rank) if len(request_segments) == len(self.segments) else None

    @property
    def greedy(self) -> bool:
        return bool(self.segments) and bool(_GREEDY.match(self.segments[-1]))

    def path_parameters(self, request_segments: Sequence[str]) -> dict[str, str]:
        values: dict[str, str] = {}
        for i, segment in enumerate(self.segments):
            if _GREEDY.match(segment):
                values[segment[1:-2]] = "/".join(request_segments[i:])
            elif _PARAM.match(segment):
                values[segment[1:-1]] = request_segments[i]
        return values


@dataclass(frozen=True)
class DeployedApi:
    """What is deployed: API type, stage, routes and the one Lambda authorizer on every route.

    ``identity_sources`` use API Gateway's own syntax (REST ``method.request.header.X``,
    ``context.httpMethod``; HTTP ``$request.header.X``, ``$context.routeKey``; WebSocket
    ``route.request.querystring.X``) so a test reads like the deployment it stands for.
    """

    api_type: ApiType
    routes: tuple[str, ...]
    authorizer_type: AuthorizerType = "REQUEST"
    identity_sources: tuple[str, ...] = ()
    ttl_seconds: int = 300
    response_type: ResponseType = "simple"
    payload_version: PayloadVersion = "2.0"
    api_id: str = "a1b2c3d4e5"
    stage: str = "prod"
    region: str = "us-east-1"
    account: str = "123456789012"
    validation_regex: str | None = None

    def __post_init__(self) -> None:
        """Refuse descriptions API Gateway would refuse: the model must not play the impossible."""
        self.parsed_routes  # noqa: B018 - parses (and validates) every route
        if not 0 <= self.ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be 0..{MAX_TTL_SECONDS}")
        syntax = _IDENTITY_SYNTAX[self.api_type]
        for source in self.identity_sources:
            if not syntax.match(source):
                raise ValueError(f"identity source {source!r} is not {self.api_type} syntax")
        if self.authorizer_type == "TOKEN":
            if self.api_type != "rest":
                raise ValueError("TOKEN authorizers exist only on REST APIs")
            if len(self.identity_sources) != 1 or not self.identity_sources[0].startswith(
                "method.request.header."
            ):
                raise ValueError("a TOKEN authorizer needs exactly one method.request.header.X")
        elif self.validation_regex is not None:
            raise ValueError("validation_regex applies to TOKEN authorizers only")
        if self.ttl_seconds and not self.identity_sources:
            raise ValueError("caching (ttl_seconds > 0) needs at least one identity source")
        if self.api_type == "websocket":
            if self.ttl_seconds:
                raise ValueError("WebSocket authorizers do not cache: ttl_seconds must be 0")
            if "$connect" not in self.routes:
                raise ValueError("a WebSocket API with an authorizer needs a $connect route")
        if self.api_type == "http":
            if self.response_type == "simple" and self.payload_version != "2.0":
                raise ValueError("simple responses need payload format version 2.0")
        elif any(r.key in ("$default", "$connect") for r in self.parsed_routes) and (
            self.api_type == "rest"
        ):
            raise ValueError("REST APIs have no $default or $connect routes")

    @cached_property
    def parsed_routes(self) -> tuple[Route, ...]:
        return tuple(Route.parse(key) for key in self.routes)

    @property
    def arn_base(self) -> str:
        return f"arn:aws:execute-api:{self.region}:{self.account}:{self.api_id}/{self.stage}"

    @property
    def domain(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"

    @property
    def evaluates_policy(self) -> bool:
        """Whether the answer is an IAM policy (REST, WebSocket, HTTP with ``iam``)."""
        return self.api_type != "http" or self.response_type == "iam"


@dataclass(frozen=True)
class ClientRequest:
    """One request as a client sends it; ``path`` is concrete (``/orders/o-1``), no query."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    source_ip: str = "203.0.113.10"
    user_agent: str = "gatekeeper-gateway-model/1.0"

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or "?" in self.path:
            raise ValueError(f"path must start with '/' and hold no query: {self.path!r}")

    def header(self, name: str) -> str | None:
        """Case-insensitive; several spellings of one name are joined with ``,``."""
        found = [v for k, v in self.headers.items() if k.lower() == name.lower()]
        return ",".join(found) if found else None


@dataclass(frozen=True)
class GatewayAnswer:
    """What the client sees for one request, and why."""

    status: int
    outcome: Outcome
    answered_by: AnsweredBy
    route: str | None = None
    principal_id: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    """The authorizer context as the backend would receive it (empty unless status 200/403)."""
    event: Mapping[str, Any] | None = None
    """The event sent to the authorizer (``None`` when it was not invoked)."""

    @property
    def invoked(self) -> bool:
        return self.answered_by == "authorizer"


@dataclass
class _Entry:
    response: dict[str, Any]
    expires_at: float


# --- the model ---------------------------------------------------------------------------------
class GatewayModel:
    """One API stage with its authorizer cache; :meth:`send` plays one client request."""

    def __init__(
        self,
        api: DeployedApi,
        invoke: Invoke,
        *,
        clock: Clock = system_clock,
        documented_iam_only: bool = False,
    ) -> None:
        """``documented_iam_only``: judge cached policies only under IAM's documented rule
        (``*`` matches across ``/``) instead of raising where the one-segment reading differs."""
        self.api = api
        self._invoke = invoke
        self._clock = clock
        self._documented_only = documented_iam_only
        self._cache: dict[tuple[str, ...], _Entry] = {}
        self.invocations = 0

    def play(self, requests: Iterable[ClientRequest]) -> list[GatewayAnswer]:
        return [self.send(request) for request in requests]

    def flush(self) -> None:
        """Like "Flush authorizer cache" in the console."""
        self._cache.clear()

    def send(self, request: ClientRequest) -> GatewayAnswer:
        api = self.api
        route = select_route(api, request.method, request.path)
        if route is None:
            return GatewayAnswer(404 if api.api_type == "http" else 403, "no_route", "gateway")
        identity = identity_values(api, request, route)
        if identity is None:
            return GatewayAnswer(401, "missing_identity_source", "gateway", route.key)
        event = build_event(api, request, route, identity, now=self._clock())
        arn = str(event.get("routeArn") or event["methodArn"])
        key = tuple(identity)
        entry = self._cache.get(key) if api.ttl_seconds else None
        if entry is not None and self._clock() < entry.expires_at:
            return self._judge(entry.response, arn, route.key, "cache", event)
        self._cache.pop(key, None)
        self.invocations += 1
        try:
            response = json.loads(json.dumps(self._invoke(json.loads(json.dumps(event)))))
        except Exception as exc:  # every failure is an answer to the client
            outcome: Outcome = "unauthorized" if str(exc) == "Unauthorized" else "authorizer_error"
            return GatewayAnswer(
                401 if outcome == "unauthorized" else 500,
                outcome,
                "authorizer",
                route.key,
                event=event,
            )
        answer = self._judge(response, arn, route.key, "authorizer", event)
        if api.ttl_seconds and answer.outcome != "malformed_response":
            self._cache[key] = _Entry(response, self._clock() + api.ttl_seconds)
        return answer

    def _judge(
        self, response: Any, arn: str, route: str, by: AnsweredBy, event: Mapping[str, Any]
    ) -> GatewayAnswer:
        """Turn an authorizer answer (fresh or cached) into the client's status for ``arn``."""
        malformed = GatewayAnswer(500, "malformed_response", by, route, event=event)
        if not isinstance(response, dict):
            return malformed
        context = response.get("context") or {}
        if not isinstance(context, dict):
            return malformed
        if not self.api.evaluates_policy:
            allowed = response.get("isAuthorized")
            if not isinstance(allowed, bool):
                return malformed
            outcome: Outcome = "allow" if allowed else "deny"
            return GatewayAnswer(200 if allowed else 403, outcome, by, route, None, context, event)
        principal = response.get("principalId")
        document = response.get("policyDocument")
        if not isinstance(principal, str) or not isinstance(document, dict):
            return malformed
        if self.api.api_type != "http" and any(
            isinstance(v, dict | list) for v in context.values()
        ):
            return malformed  # REST: "You cannot set a JSON object or array" as a context value
        try:
            wide = iam_evaluate(document, arn, star_crosses_slash=True)
            narrow = iam_evaluate(document, arn, star_crosses_slash=False)
        except ValueError:
            return malformed
        if wide != narrow and not self._documented_only:
            raise ModelError(
                f"IAM readings disagree on {arn}: '*' crossing '/' gives {wide}, "
                f"held to one segment gives {narrow}; policy: {json.dumps(document)}"
            )
        status = 200 if wide == "allow" else 403
        return GatewayAnswer(status, wide, by, route, principal, context, event)


# --- route selection ---------------------------------------------------------------------------
def select_route(api: DeployedApi, method: str, path: str) -> Route | None:
    """The route API Gateway selects for ``method path``, or ``None`` (403/404, no authorizer)."""
    routes = api.parsed_routes
    if api.api_type == "websocket":
        return next(r for r in routes if r.key == "$connect")
    segments = [s for s in path.split("/") if s]
    method = method.upper()
    if api.api_type == "rest":
        ranked = [(rank, r) for r in routes if (rank := r.rank(segments)) is not None]
        if not ranked:
            return None
        best = min(rank for rank, _ in ranked)
        on_resource = [r for rank, r in ranked if rank == best]
        return next((r for r in on_resource if r.method == method), None) or next(
            (r for r in on_resource if r.method == "ANY"), None
        )
    candidates = [
        (r.greedy, rank, r.method == "ANY", r)
        for r in routes
        if r.method in (method, "ANY") and (rank := r.rank(segments)) is not None
    ]
    if candidates:
        return min(candidates, key=lambda c: (c[0], c[1], c[2]))[3]
    return next((r for r in routes if r.key == "$default"), None)


# --- identity sources --------------------------------------------------------------------------
def identity_values(api: DeployedApi, request: ClientRequest, route: Route) -> list[str] | None:
    """The configured identity sources' values in order; ``None`` when one is missing or empty
    (API Gateway's 401 without invoking) or a TOKEN fails ``validation_regex``."""
    values: list[str] = []
    for source in api.identity_sources:
        value = _identity_value(api, request, route, source)
        if not value:
            return None
        values.append(value)
    if api.validation_regex is not None and not re.fullmatch(api.validation_regex, values[0]):
        return None
    return values


def _identity_value(api: DeployedApi, request: ClientRequest, route: Route, source: str) -> str:
    if ".header." in source:
        return request.header(source.split(".header.", 1)[1]) or ""
    if ".querystring." in source:
        return request.query.get(source.split(".querystring.", 1)[1], "")
    context = source.removeprefix("$").removeprefix("context.")
    values = {
        "httpMethod": request.method.upper(),
        "resourcePath": route.path or route.key,
        "path": _http_path(api, request)
        if api.api_type == "http"
        else f"/{api.stage}{request.path}",
        "routeKey": route.key,
        "stage": api.stage,
        "identity.sourceIp": request.source_ip,
    }
    return values.get(context, "")


# --- events ------------------------------------------------------------------------------------
def build_event(
    api: DeployedApi,
    request: ClientRequest,
    route: Route,
    identity: Sequence[str],
    *,
    now: float,
) -> dict[str, Any]:
    """The authorizer event API Gateway sends for ``request`` on ``route``."""
    if api.api_type == "websocket":
        return _websocket_event(api, request, now)
    if api.api_type == "http":
        if api.payload_version == "2.0":
            return _http_v2_event(api, request, route, identity, now)
        event = _rest_request_event(api, request, route, now, headers=_lower_headers(request))
        joined = ",".join(identity) if identity else None
        return {"version": "1.0", **event, "identitySource": joined, "authorizationToken": joined}
    arn = f"{api.arn_base}/{request.method.upper()}/{request.path.lstrip('/')}"
    if api.authorizer_type == "TOKEN":
        return {"type": "TOKEN", "authorizationToken": identity[0], "methodArn": arn}
    return _rest_request_event(api, request, route, now, headers=dict(request.headers))


def _rest_request_event(
    api: DeployedApi,
    request: ClientRequest,
    route: Route,
    now: float,
    *,
    headers: dict[str, str],
) -> dict[str, Any]:
    method = request.method.upper()
    segments = [s for s in request.path.split("/") if s]
    resource = route.path or "/"
    if route.key == "$default":  # HTTP API payload 1.0 on the catch-all route
        resource = "$default"
    headers = {"Host": api.domain, "User-Agent": request.user_agent, **headers}
    if api.api_type == "http":
        headers = {k.lower(): v for k, v in headers.items()}
    arn_path = request.path.lstrip("/")
    return {
        "type": "REQUEST",
        "methodArn": f"{api.arn_base}/{method}/{arn_path}"
        if route.key != "$default"
        else f"{api.arn_base}/$default",
        "resource": resource,
        "path": request.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": dict(request.query) or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in request.query.items()} or None,
        "pathParameters": route.path_parameters(segments) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": _resource_id(resource),
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": _request_id()[:16],
            "requestTime": _clf_time(now),
            "path": f"/{api.stage}{request.path}",
            "accountId": api.account,
            "protocol": "HTTP/1.1",
            "stage": api.stage,
            "domainPrefix": api.api_id,
            "requestTimeEpoch": int(now * 1000),
            "requestId": _request_id(),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.user_agent,
                "user": None,
            },
            "domainName": api.domain,
            "apiId": api.api_id,
        },
    }


def _http_v2_event(
    api: DeployedApi, request: ClientRequest, route: Route, identity: Sequence[str], now: float
) -> dict[str, Any]:
    method = request.method.upper()
    segments = [s for s in request.path.split("/") if s]
    arn = (
        f"{api.arn_base}/$default"
        if route.key == "$default"
        else f"{api.arn_base}/{method}/{request.path.lstrip('/')}"
    )
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": arn,
        "identitySource": list(identity) if api.identity_sources else None,
        "routeKey": route.key,
        "rawPath": _http_path(api, request),
        "rawQueryString": urlencode(dict(request.query)),
        "headers": _lower_headers(request),
        "requestContext": {
            "accountId": api.account,
            "apiId": api.api_id,
            "domainName": api.domain,
            "domainPrefix": api.api_id,
            "http": {
                "method": method,
                "path": _http_path(api, request),
                "protocol": "HTTP/1.1",
                "sourceIp": request.source_ip,
                "userAgent": request.user_agent,
            },
            "requestId": _request_id(),
            "routeKey": route.key,
            "stage": api.stage,
            "time": _clf_time(now),
            "timeEpoch": int(now * 1000),
        },
    }
    if request.query:
        event["queryStringParameters"] = dict(request.query)
    if parameters := route.path_parameters(segments):
        event["pathParameters"] = parameters
    return event


def _websocket_event(api: DeployedApi, request: ClientRequest, now: float) -> dict[str, Any]:
    headers = {
        "Host": api.domain,
        "Sec-WebSocket-Key": base64.b64encode(uuid.uuid4().bytes).decode(),
        "Sec-WebSocket-Version": "13",
        "User-Agent": request.user_agent,
        "X-Forwarded-For": request.source_ip,
        **request.headers,
    }
    return {
        "type": "REQUEST",
        "methodArn": f"{api.arn_base}/$connect",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": dict(request.query) or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in request.query.items()} or None,
        "stageVariables": None,
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": _request_id()[:16],
            "requestTime": _clf_time(now),
            "messageDirection": "IN",
            "stage": api.stage,
            "connectedAt": int(now * 1000),
            "requestTimeEpoch": int(now * 1000),
            "identity": {"userAgent": request.user_agent, "sourceIp": request.source_ip},
            "requestId": _request_id(),
            "domainName": api.domain,
            "connectionId": base64.b64encode(uuid.uuid4().bytes[:9]).decode(),
            "apiId": api.api_id,
        },
    }


def _http_path(api: DeployedApi, request: ClientRequest) -> str:
    return request.path if api.stage == "$default" else f"/{api.stage}{request.path}"


def _lower_headers(request: ClientRequest) -> dict[str, str]:
    """HTTP API: lower-cased names, repeated names joined with ``,`` (payload 2.0)."""
    merged: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        merged.setdefault(name.lower(), []).append(value)
    headers = {"user-agent": request.user_agent, "x-forwarded-for": request.source_ip}
    headers |= {name: ",".join(values) for name, values in merged.items()}
    return headers


def _clf_time(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _request_id() -> str:
    return str(uuid.uuid4())


def _resource_id(resource: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, resource).hex[:6]


# --- the real handler --------------------------------------------------------------------------
def authorizer_handler_path() -> Path:
    """``functions/authorizer/handler.py`` of this checkout (the file Lambda runs)."""
    return Path(__file__).resolve().parents[3] / "functions" / "authorizer" / "handler.py"


def load_authorizer_handler(
    path: Path | None = None, *, module_name: str = "gatekeeper_gateway_model_handler"
) -> ModuleType:
    """Load the deployed handler file by path, as Lambda would (a fresh module per call)."""
    spec = importlib.util.spec_from_file_location(module_name, path or authorizer_handler_path())
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the authorizer handler from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def handler_invoke(
    module: ModuleType | None = None, *, authorizer: Authorizer | None = None
) -> Invoke:
    """An :data:`Invoke` that calls the real ``lambda_handler`` with a local Lambda context.

    ``authorizer`` (e.g. the tests' seeded one) replaces the handler's per-container singleton,
    which would otherwise be built from the environment on first use.
    """
    handler = module or load_authorizer_handler()
    if authorizer is not None:
        vars(handler)["_authorizer"] = authorizer  # the per-container singleton
    lambda_handler = cast(
        "Callable[[dict[str, Any], LocalLambdaContext], dict[str, Any]]", handler.lambda_handler
    )

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        return lambda_handler(event, LocalLambdaContext())

    return invoke
