"""One normalized access request from the three event shapes API Gateway sends an authorizer.

- REST API TOKEN: ``{"type": "TOKEN", "authorizationToken", "methodArn"}``; no headers, no IP.
- REST API REQUEST (payload 1.0): headers, ``requestContext.identity.sourceIp``, ``methodArn``.
- HTTP API REQUEST (payload 2.0): ``version: "2.0"``, lower-cased headers,
  ``requestContext.http.sourceIp``, ``routeArn``.

The event models below are deliberately lenient (only what we use is required, unknown fields are
ignored): a real event with a field we did not expect must not lock users out, while anything we
rely on is validated. Credentials are kept as ``SecretStr`` so that they never print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.errors import MalformedEvent

BEARER = "bearer "


class EventKind(StrEnum):
    REST_TOKEN = "rest_token"  # noqa: S105 - an event kind, not a credential
    REST_REQUEST = "rest_request"
    HTTP_V2 = "http_v2"


class Credentials(BaseModel):
    """What the caller presented; ``SecretStr`` keeps values out of reprs and dumps."""

    model_config = ConfigDict(frozen=True)

    bearer: SecretStr | None = None
    api_key: SecretStr | None = None
    ambiguous: bool = False

    @property
    def present(self) -> bool:
        return self.bearer is not None or self.api_key is not None


class AccessRequest(BaseModel):
    """What is being asked for, by whom (credentials), from where; the same for every event kind."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    arn: ExecuteApiArn
    method: str
    path: str
    source_ip: str | None = None
    request_id: str | None = None
    user_agent: str | None = None
    tenant_hint: str | None = Field(default=None, description="From the tenant header, if any.")
    route_key: str | None = None
    credentials: Credentials = Field(default_factory=Credentials, exclude=True, repr=False)


# --- event models (only the fields we read) --------------------------------------------------
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _TokenEvent(_Lenient):
    type: str
    methodArn: str = Field(min_length=1)
    authorizationToken: str = ""


class _RestIdentity(_Lenient):
    sourceIp: str | None = None
    userAgent: str | None = None


class _RestContext(_Lenient):
    requestId: str | None = None
    identity: _RestIdentity = Field(default_factory=_RestIdentity)
    resourcePath: str | None = None


class _RestRequestEvent(_Lenient):
    type: str
    methodArn: str = Field(min_length=1)
    httpMethod: str | None = None
    resource: str | None = None
    headers: dict[str, str] | None = None
    multiValueHeaders: dict[str, list[str] | None] | None = None
    requestContext: _RestContext = Field(default_factory=_RestContext)


class _HttpInfo(_Lenient):
    method: str
    path: str
    sourceIp: str | None = None
    userAgent: str | None = None


class _HttpContext(_Lenient):
    requestId: str | None = None
    routeKey: str | None = None
    http: _HttpInfo


class _HttpV2Event(_Lenient):
    version: str
    type: str
    routeArn: str = Field(min_length=1)
    routeKey: str | None = None
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
    event: Any, *, api_key_prefix: str = "gk", tenant_header: str = "x-tenant-id"
) -> AccessRequest:
    """Normalize any supported authorizer event; raises :class:`MalformedEvent` otherwise."""
    if not isinstance(event, Mapping):
        raise MalformedEvent("event is not a JSON object")
    try:
        if event.get("version") == "2.0":
            return _parse_http_v2(_HttpV2Event.model_validate(event), api_key_prefix, tenant_header)
        if event.get("type") == "TOKEN":
            return _parse_token(_TokenEvent.model_validate(event), api_key_prefix)
        if event.get("type") == "REQUEST":
            return _parse_rest_request(
                _RestRequestEvent.model_validate(event), api_key_prefix, tenant_header
            )
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
        raise MalformedEvent(f"invalid authorizer event (fields: {fields})") from None
    except ValueError as exc:
        raise MalformedEvent(f"invalid authorizer event: {exc}") from None
    raise MalformedEvent("unknown event type (expected TOKEN, REQUEST or payload 2.0)")


def _parse_token(event: _TokenEvent, prefix: str) -> AccessRequest:
    arn = ExecuteApiArn.parse(event.methodArn)
    return AccessRequest(
        kind=EventKind.REST_TOKEN,
        arn=arn,
        method=arn.method,
        path=arn.path,
        credentials=_credentials_from_token(event.authorizationToken, prefix),
    )


def _parse_rest_request(event: _RestRequestEvent, prefix: str, tenant_header: str) -> AccessRequest:
    arn = ExecuteApiArn.parse(event.methodArn)
    headers = _merge_headers(event.multiValueHeaders, event.headers)
    ctx = event.requestContext
    return AccessRequest(
        kind=EventKind.REST_REQUEST,
        arn=arn,
        method=(event.httpMethod or arn.method).upper(),
        path=arn.path,
        source_ip=ctx.identity.sourceIp,
        request_id=ctx.requestId,
        user_agent=ctx.identity.userAgent,
        tenant_hint=headers.get(tenant_header.lower()) or None,
        route_key=f"{(event.httpMethod or arn.method).upper()} {event.resource}"
        if event.resource
        else None,
        credentials=_credentials_from_headers(headers, prefix),
    )


def _parse_http_v2(event: _HttpV2Event, prefix: str, tenant_header: str) -> AccessRequest:
    arn = ExecuteApiArn.parse(event.routeArn)
    headers = _merge_headers(event.headers)
    http = event.requestContext.http
    return AccessRequest(
        kind=EventKind.HTTP_V2,
        arn=arn,
        method=http.method.upper(),
        path=arn.path,
        source_ip=http.sourceIp,
        request_id=event.requestContext.requestId,
        user_agent=http.userAgent,
        tenant_hint=headers.get(tenant_header.lower()) or None,
        route_key=event.routeKey or event.requestContext.routeKey,
        credentials=_credentials_from_headers(headers, prefix),
    )
