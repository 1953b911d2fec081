"""What API Gateway sends back to the client, from a :class:`GatewayAnswer` (pure functions).

The gateway responses follow the CDK stack's (``infra/cdk/gatekeeper_cdk/demo_apis.py``): a 401
carries ``WWW-Authenticate: Bearer`` and the request id under which the audit event records the
reason; a 403 carries ``X-Gatekeeper-Reason``, ``Retry-After`` and ``RateLimit-*`` from the
authorizer context and a JSON body with ``reason`` and ``retryAfter``. An allowed request goes
to the backend with the authorizer context as ``x-gatekeeper-*`` headers; with
``rateLimited=true`` in the context (``GATEKEEPER_RATE_LIMIT_RESPONSE=flag``) the integration
answers 429 itself, as the demo APIs' integrations do.

>>> answer = GatewayAnswer(403, "deny", "authorizer", "GET /a", "p", {"reason": "rate_limited",
...     "retryAfter": 7, "rateLimitLimit": 5, "rateLimitRemaining": 0, "rateLimitReset": 7})
>>> reply = gateway_reply(answer, "r-1")
>>> reply.status, reply.headers["Retry-After"], reply.headers["X-Gatekeeper-Reason"]
(403, '7', 'rate_limited')
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from gatekeeper.testing.gateway import GatewayAnswer

RATE_LIMIT_HEADERS = {
    "Retry-After": "retryAfter",
    "RateLimit-Limit": "rateLimitLimit",
    "RateLimit-Remaining": "rateLimitRemaining",
    "RateLimit-Reset": "rateLimitReset",
    "RateLimit-Policy": "rateLimitPolicy",
}
"""Response header -> authorizer context key (the stack's gateway responses, plus the policy)."""
CONTEXT_HEADER_PREFIX = "x-gatekeeper-"
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@dataclass(frozen=True)
class Reply:
    """A response decided by the gateway itself (``forward`` False) or the go-ahead to call
    the backend with ``upstream_headers`` (``forward`` True)."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    forward: bool = False
    upstream_headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        return json.dumps(self.body).encode() if self.body is not None else b""


def header_value(value: object) -> str:
    """A context value as a header value: text, with anything outside printable ASCII escaped."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if all(32 <= ord(c) < 127 for c in text):
        return text
    return quote(text, safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def context_headers(context: Mapping[str, Any]) -> dict[str, str]:
    """``principalId`` → ``x-gatekeeper-principal-id``, for every context value."""
    return {
        CONTEXT_HEADER_PREFIX + _CAMEL.sub("-", key).lower(): header_value(value)
        for key, value in context.items()
        if key and value is not None
    }


def rate_limit_headers(context: Mapping[str, Any]) -> dict[str, str]:
    return {h: header_value(context[k]) for h, k in RATE_LIMIT_HEADERS.items() if k in context}


def gateway_reply(answer: GatewayAnswer, request_id: str, *, api_type: str = "rest") -> Reply:
    """The client's response for ``answer``; ``forward`` when the backend must answer."""
    context = dict(answer.context)
    json_type = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
    if answer.outcome == "no_route":
        if api_type == "http":
            return Reply(404, {"message": "Not Found"}, json_type)
        return Reply(403, {"message": "Missing Authentication Token"}, json_type)
    if answer.status == 401:
        body = {
            "message": "Unauthorized",
            "reason": "unauthorized",
            "detail": "see the audit event with this requestId",
            "requestId": request_id,
        }
        if api_type == "http":
            body = {"message": "Unauthorized"}
        return Reply(401, body, {**json_type, "WWW-Authenticate": "Bearer"})
    if answer.status == 403:
        if api_type == "http":
            return Reply(403, {"message": "Forbidden"}, json_type)
        reason = str(context.get("reason", "forbidden"))
        body = {
            "message": "Forbidden",
            "reason": reason,
            "retryAfter": str(context.get("retryAfter", "")),
            "requestId": request_id,
        }
        headers = {**json_type, "X-Gatekeeper-Reason": header_value(reason)}
        return Reply(403, body, {**headers, **rate_limit_headers(context)})
    if answer.status != 200:
        error = "AuthorizerConfigurationException"
        return Reply(500, {"message": None}, {**json_type, "x-amzn-ErrorType": error})
    if context.get("rateLimited") is True:
        body = {
            "message": "Too Many Requests",
            "reason": str(context.get("reason", "rate_limited")),
            "retryAfter": str(context.get("retryAfter", "")),
            "requestId": request_id,
        }
        return Reply(429, body, {**json_type, **rate_limit_headers(context)})
    return Reply(
        200,
        headers={"x-amzn-RequestId": request_id, **rate_limit_headers(context)},
        forward=True,
        upstream_headers=context_headers(context),
    )


def upstream_request_headers(
    client_headers: Mapping[str, str], context_values: Mapping[str, str]
) -> dict[str, str]:
    """What the backend receives: the client's headers without hop-by-hop ones and without any
    ``x-gatekeeper-*`` the client sent (only the gateway may set those), plus the context."""
    kept = {
        name: value
        for name, value in client_headers.items()
        if name.lower() not in HOP_BY_HOP and not name.lower().startswith(CONTEXT_HEADER_PREFIX)
    }
    return {**kept, **context_values}
