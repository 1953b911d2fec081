"""One normalized access request from every event shape API Gateway sends an authorizer.

- REST API TOKEN: ``{"type": "TOKEN", "authorizationToken", "methodArn"}``; no headers, no IP.
- REST API REQUEST (and HTTP API payload 1.0): headers, ``requestContext.identity.sourceIp``,
  ``methodArn``, ``httpMethod``, ``path``.
- HTTP API REQUEST (payload 2.0): ``version: "2.0"``, lower-cased headers,
  ``requestContext.http``, ``rawPath``, ``routeArn``.
- WebSocket ``$connect`` (REQUEST): ``methodArn`` ``…/{stage}/$connect``, headers and query string.
- Mutual TLS (REQUEST, payload 2.0): the verified client certificate, REST
  ``requestContext.identity.clientCert``, HTTP API ``requestContext.authentication.clientCert``.

Two things are kept apart: the **request** a decision is made on (``method`` and a canonical
``path``: what RBAC rules describe) and the **ARN** API Gateway will evaluate a returned policy
against (``arn``). Usually the ARN names the request itself (``shape="request"``) and the event's
``httpMethod``/``path`` (or ``http.method``/``rawPath``) must agree with it. An HTTP API's
catch-all route names only itself (``…/$default``, ``shape="default_route"``): the request comes
from ``http.method`` and ``rawPath``. A WebSocket connect is decided as ``GET /$connect``
(``shape="connect"``). The console's "Test authorizer" sends ``*`` as the stage or the verb
(``shape="test_invoke"``): the decision must then hold for every stage or verb it stands for.

The event models below are deliberately lenient (only what we use is required, unknown fields are
ignored): a real event with a field we did not expect must not lock users out, while anything we
rely on is validated. Credentials are kept as ``SecretStr`` so that they never print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any
from urllib.parse import quote, unquote, urlencode

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.canonical_path import canonical_path
from gatekeeper.errors import MalformedEvent, NotAnAuthorizerEvent, UnsupportedRoute

BEARER = "bearer "
CONNECT_PATH = "/$connect"
"""The path a WebSocket connect is decided on (with verb ``GET``, the upgrade request's)."""


class EventKind(StrEnum):
    REST_TOKEN = "rest_token"  # noqa: S105 - an event kind, not a credential
    REST_REQUEST = "rest_request"
    HTTP_V1 = "http_v1"
    HTTP_V2 = "http_v2"
    WEBSOCKET = "websocket"


class EventShape(StrEnum):
    """Which request form the ARN took (``eventShape`` in the context and the audit event)."""

    REQUEST = "request"
    DEFAULT_ROUTE = "default_route"
    CONNECT = "connect"
    TEST_INVOKE = "test_invoke"


class Credentials(BaseModel):
    """What the caller presented; ``SecretStr`` keeps values out of reprs and dumps."""

    model_config = ConfigDict(frozen=True)

    bearer: SecretStr | None = None
    api_key: SecretStr | None = None
    ambiguous: bool = False

    @property
    def present(self) -> bool:
        return self.bearer is not None or self.api_key is not None


class ClientCert(BaseModel):
    """The client certificate API Gateway verified (mutual TLS on a custom domain), as the event
    carries it; :mod:`gatekeeper.identity.mtls` parses and checks it."""

    model_config = ConfigDict(frozen=True)

    pem: str | None = None
    subject_dn: str | None = None
    issuer_dn: str | None = None
    serial_number: str | None = None


class SignedParts(BaseModel):
    """A signed request (RFC 9421): the signature headers and the request as the client sent
    it (raw path and query: what ``@path`` and ``@query`` cover); checked in
    :mod:`gatekeeper.identity.signatures`."""

    model_config = ConfigDict(frozen=True)

    signature_input: str | None = None
    signature: str | None = None
    content_digest: str | None = None
    host: str = "unknown.invalid"
    raw_path: str = "/"
    raw_query: str = ""


class AccessRequest(BaseModel):
    """What is being asked for, by whom (credentials), from where; the same for every event kind.

    ``method``/``path`` are the request decided on (``method`` is ``*`` only for a console test);
    ``arn`` is what API Gateway evaluates the returned policy against.
    """

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    shape: EventShape = EventShape.REQUEST
    arn: ExecuteApiArn
    method: str
    path: str
    source_ip: str | None = None
    request_id: str | None = None
    user_agent: str | None = None
    tenant_hint: str | None = Field(default=None, description="From the tenant header, if any.")
    route_key: str | None = None
    credentials: Credentials = Field(default_factory=Credentials, exclude=True, repr=False)
    client_cert: ClientCert | None = Field(default=None, exclude=True, repr=False)
    signed: SignedParts | None = Field(default=None, exclude=True, repr=False)


# --- event models (only the fields we read) --------------------------------------------------
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _TokenEvent(_Lenient):
    type: str
    methodArn: str = Field(min_length=1)
    authorizationToken: str = ""


class _CertValidity(_Lenient):
    notBefore: str | None = None
    notAfter: str | None = None


class _ClientCert(_Lenient):
    """``clientCert`` (mutual TLS): REST ``identity.clientCert``, HTTP ``authentication``."""

    clientCertPem: str | None = None
    subjectDN: str | None = None
    issuerDN: str | None = None
    serialNumber: str | None = None
    validity: _CertValidity | None = None

    def parsed(self) -> ClientCert:
        return ClientCert(
            pem=self.clientCertPem,
            subject_dn=self.subjectDN,
            issuer_dn=self.issuerDN,
            serial_number=self.serialNumber,
        )


class _RestIdentity(_Lenient):
    sourceIp: str | None = None
    userAgent: str | None = None
    clientCert: _ClientCert | None = None


class _RestContext(_Lenient):
    requestId: str | None = None
    path: str | None = None  # the path as the client sent it (with the stage or base path)
    identity: _RestIdentity = Field(default_factory=_RestIdentity)
    resourcePath: str | None = None
    routeKey: str | None = None  # WebSocket
    eventType: str | None = None  # WebSocket: CONNECT


class _RestRequestEvent(_Lenient):
    """REST REQUEST, HTTP API payload 1.0 (``routeArn`` in some samples) and WebSocket connect."""

    type: str
    version: str | None = None
    methodArn: str | None = Field(default=None, min_length=1)
    routeArn: str | None = Field(default=None, min_length=1)
    httpMethod: str | None = None
    path: str | None = None
    resource: str | None = None
    headers: dict[str, str] | None = None
    multiValueHeaders: dict[str, list[str] | None] | None = None
    queryStringParameters: dict[str, str] | None = None
    multiValueQueryStringParameters: dict[str, list[str] | None] | None = None
    requestContext: _RestContext = Field(default_factory=_RestContext)


class _HttpInfo(_Lenient):
    method: str
    path: str
    sourceIp: str | None = None
    userAgent: str | None = None


class _HttpAuthentication(_Lenient):
    clientCert: _ClientCert | None = None


class _HttpContext(_Lenient):
    requestId: str | None = None
    routeKey: str | None = None
    http: _HttpInfo
    authentication: _HttpAuthentication | None = None


class _HttpV2Event(_Lenient):
    version: str
    type: str
    routeArn: str = Field(min_length=1)
    routeKey: str | None = None
    rawPath: str | None = None
    rawQueryString: str | None = None
    headers: dict[str, str] | None = None
    requestContext: _HttpContext


def _merge_headers(
    *sources: Mapping[str, str] | Mapping[str, list[str] | None] | None,
) -> dict[str, str]:
    """Headers by lower-cased name; one sent more than once with different values (repeated, or
    in two spellings) has them joined with ``,``, as HTTP API payload 2.0 does.

    REST's ``headers`` keeps only the last value while a backend may read the first from
    ``multiValueHeaders``: a check must never pass on one value and leave the other unchecked.
    Joined, a tenant matches no tenant and a credential does not parse: both fail closed.
    """
    values: dict[str, list[str]] = {}
    for source in sources:
        for name, value in (source or {}).items():
            seen = values.setdefault(name.lower(), [])
            items: Sequence[str] = [value] if isinstance(value, str) else (value or ())
            seen.extend(v for v in dict.fromkeys(items) if v not in seen)
    return {name: ",".join(found) for name, found in values.items() if found}


def _credentials_from_token(token: str, api_key_prefix: str) -> Credentials:
    """A TOKEN authorizer gets one string: ``Bearer <jwt>``, a bare JWT, or one of our API keys."""
    token = token.strip()
    if token[: len(BEARER)].lower() == BEARER:
        token = token[len(BEARER) :].strip()
    if not token:
        return Credentials()
    if token.startswith(f"{api_key_prefix}_"):
        return Credentials(api_key=SecretStr(token))
    return Credentials(bearer=SecretStr(token))


def _credentials_from_headers(headers: Mapping[str, str], api_key_prefix: str) -> Credentials:
    """``Authorization`` (Bearer JWT or one of our keys) and/or ``x-api-key``.

    An ``x-api-key`` that is not ours (e.g. an API Gateway usage-plan key) is left alone when a
    bearer token is present; two credentials of ours at once are refused as ambiguous rather than
    silently picking one.
    """
    from_auth = _credentials_from_token(headers.get("authorization", ""), api_key_prefix)
    api_key = headers.get("x-api-key", "").strip()
    if not api_key:
        return from_auth
    if not from_auth.present:
        return Credentials(api_key=SecretStr(api_key))
    if api_key.startswith(f"{api_key_prefix}_"):
        return Credentials(ambiguous=True)
    return from_auth


def parse_event(
    event: Any,
    *,
    api_key_prefix: str = "gk",
    tenant_header: str = "x-tenant-id",
    query_token_parameter: str | None = "token",  # noqa: S107 - a parameter name
) -> AccessRequest:
    """Normalize any supported authorizer event; raises :class:`MalformedEvent` otherwise.

    ``query_token_parameter`` names the query-string parameter a WebSocket connect may carry its
    credential in (browsers cannot set headers on a WebSocket); other events never read it.
    """
    if not isinstance(event, Mapping):
        raise NotAnAuthorizerEvent("event is not a JSON object")
    kind = event.get("type")
    try:
        if event.get("version") == "2.0" and kind == "REQUEST":
            return _parse_http_v2(_HttpV2Event.model_validate(event), api_key_prefix, tenant_header)
        if kind == "TOKEN":
            return _parse_token(_TokenEvent.model_validate(event), api_key_prefix)
        if kind == "REQUEST":
            return _parse_request(
                _RestRequestEvent.model_validate(event),
                api_key_prefix,
                tenant_header,
                query_token_parameter,
            )
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise MalformedEvent(f"invalid authorizer event (fields: {fields})") from None
    except MalformedEvent:
        raise
    except ValueError as exc:
        raise MalformedEvent(f"invalid authorizer event: {exc}") from None
    raise NotAnAuthorizerEvent(
        "not an API Gateway authorizer event (expected type TOKEN or REQUEST)"
    )


def _parse_arn(raw: str) -> ExecuteApiArn:
    arn = ExecuteApiArn.parse(raw)
    if arn.path is not None:
        canonical_path(arn.path)
    return arn


def _shape(arn: ExecuteApiArn) -> EventShape:
    if arn.route == "$default":
        return EventShape.DEFAULT_ROUTE
    if arn.route == "$connect":
        return EventShape.CONNECT
    return EventShape.TEST_INVOKE if arn.wildcard else EventShape.REQUEST


def _same_request(arn: ExecuteApiArn, method: str | None, path: str | None) -> None:
    """The event's own method and path must name the request the ARN names.

    ``path`` may carry a prefix the ARN does not (a custom domain's base path, an HTTP API
    stage name), so it must *end* with the ARN's path, segment-aligned; both are compared
    percent-decoded, since API Gateway decodes one and not always the other.
    """
    if arn.wildcard:
        return  # the console test form: the ARN is a wildcard, not a request
    assert arn.method is not None and arn.path is not None
    if method is not None and method.upper() != arn.method:
        raise MalformedEvent("the event's HTTP method differs from its ARN's")
    if path is None:
        return
    canonical_path(path)
    sent, named = unquote(path).rstrip("/"), unquote(arn.path).rstrip("/")
    if sent != named and not (sent.endswith(named) and sent[: len(sent) - len(named)]):
        raise MalformedEvent("the event's path differs from its ARN's")


def _route_path(raw_path: str, stage: str) -> str:
    """The request path of a catch-all route, without the stage prefix a named stage adds."""
    path = canonical_path(raw_path)
    prefix = f"/{stage}"
    if stage not in ("$default", "*") and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    return path


def _parse_token(event: _TokenEvent, prefix: str) -> AccessRequest:
    arn = _parse_arn(event.methodArn)
    if arn.route is not None:
        raise UnsupportedRoute(f"a TOKEN authorizer cannot decide on route {arn.route}")
    assert arn.method is not None and arn.path is not None
    return AccessRequest(
        kind=EventKind.REST_TOKEN,
        shape=_shape(arn),
        arn=arn,
        method=arn.method,
        path=arn.path,
        credentials=_credentials_from_token(event.authorizationToken, prefix),
    )


def _parse_request(
    event: _RestRequestEvent, prefix: str, tenant_header: str, query_parameter: str | None
) -> AccessRequest:
    raw_arn = event.methodArn or event.routeArn
    if raw_arn is None:
        raise MalformedEvent("invalid authorizer event (fields: methodArn)")
    arn = _parse_arn(raw_arn)
    headers = _merge_headers(event.multiValueHeaders, event.headers)
    ctx = event.requestContext
    credentials = _credentials_from_headers(headers, prefix)
    connect = arn.route == "$connect" or ctx.eventType == "CONNECT"
    if connect:
        if arn.route != "$connect":
            raise MalformedEvent("a WebSocket CONNECT event must name the $connect route")
        kind = EventKind.WEBSOCKET
        method, path = "GET", CONNECT_PATH
        if not credentials.present and query_parameter:
            query = _merge_headers(
                event.multiValueQueryStringParameters, event.queryStringParameters
            )
            credentials = _credentials_from_token(query.get(query_parameter, ""), prefix)
    else:
        kind = EventKind.HTTP_V1 if event.version == "1.0" else EventKind.REST_REQUEST
        if arn.route == "$default":
            if not event.httpMethod or not event.path:
                raise MalformedEvent("a $default-route event needs httpMethod and path")
            method, path = event.httpMethod.upper(), _route_path(event.path, arn.stage)
        else:
            assert arn.method is not None and arn.path is not None
            _same_request(arn, event.httpMethod, event.path)
            method, path = arn.method, arn.path
    route_key = ctx.routeKey or (f"{method} {event.resource}" if event.resource else None)
    return AccessRequest(
        kind=kind,
        shape=_shape(arn),
        arn=arn,
        method=method,
        path=path,
        source_ip=ctx.identity.sourceIp,
        request_id=ctx.requestId,
        user_agent=ctx.identity.userAgent,
        tenant_hint=headers.get(tenant_header.lower()) or None,
        route_key=route_key,
        credentials=credentials,
        client_cert=ctx.identity.clientCert.parsed() if ctx.identity.clientCert else None,
        signed=_signed_parts(
            headers,
            ctx.path or event.path or "/",
            _rest_query(event.multiValueQueryStringParameters, event.queryStringParameters),
        ),
    )


def _parse_http_v2(event: _HttpV2Event, prefix: str, tenant_header: str) -> AccessRequest:
    arn = _parse_arn(event.routeArn)
    if arn.route == "$connect":
        raise UnsupportedRoute("an HTTP API event cannot name the $connect route")
    headers = _merge_headers(event.headers)
    http = event.requestContext.http
    raw_path = event.rawPath if event.rawPath is not None else http.path
    if arn.route == "$default":
        method, path = http.method.upper(), _route_path(raw_path, arn.stage)
    else:
        assert arn.method is not None and arn.path is not None
        _same_request(arn, http.method, raw_path)
        method, path = arn.method, arn.path
    return AccessRequest(
        kind=EventKind.HTTP_V2,
        shape=_shape(arn),
        arn=arn,
        method=method,
        path=path,
        source_ip=http.sourceIp,
        request_id=event.requestContext.requestId,
        user_agent=http.userAgent,
        tenant_hint=headers.get(tenant_header.lower()) or None,
        route_key=event.routeKey or event.requestContext.routeKey,
        credentials=_credentials_from_headers(headers, prefix),
        client_cert=_http_client_cert(event.requestContext.authentication),
        signed=_signed_parts(headers, raw_path, event.rawQueryString or ""),
    )


def _signed_parts(headers: Mapping[str, str], raw_path: str, raw_query: str) -> SignedParts | None:
    if "signature" not in headers and "signature-input" not in headers:
        return None
    return SignedParts(
        signature_input=headers.get("signature-input"),
        signature=headers.get("signature"),
        content_digest=headers.get("content-digest"),
        host=headers.get("host") or "unknown.invalid",
        raw_path=raw_path,
        raw_query=raw_query,
    )


def _rest_query(
    multi: Mapping[str, list[str] | None] | None, single: Mapping[str, str] | None
) -> str:
    """REST events carry no raw query string: rebuilt from the decoded parameters, in the
    event's order, percent-encoded as RFC 3986 unreserved (a client signing another spelling
    of the same query is refused: fail closed)."""
    pairs: list[tuple[str, str]] = []
    if multi:
        pairs = [(k, v) for k, values in multi.items() for v in (values or ())]
    elif single:
        pairs = list(single.items())
    return urlencode(pairs, quote_via=quote, safe="-._~")


def _http_client_cert(authentication: _HttpAuthentication | None) -> ClientCert | None:
    if authentication is None or authentication.clientCert is None:
        return None
    return authentication.clientCert.parsed()
