"""Drive the admin API's resolver with REST API events, as API Gateway would send them."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from gatekeeper.testing.lambda_context import LocalLambdaContext

IAM_ARN = "arn:aws:iam::123456789012:user/ops"
CALLERS: dict[str, dict[str, Any]] = {
    "iam": {"identity": {"userArn": IAM_ARN, "caller": "AIDAEXAMPLE"}},
    "admin": {
        "identity": {},
        "authorizer": {"principalId": "corp:root", "roles": "gatekeeper-admin"},
    },
    "user": {"identity": {}, "authorizer": {"principalId": "corp:alice", "roles": "orders-clerk"}},
    "anonymous": {"identity": {}},
}


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]
    raw: str = field(repr=False)

    @property
    def etag(self) -> str:
        return self.headers["ETag"]

    def error_field(self) -> str | None:
        return self.body["error"]["field"]  # type: ignore[no-any-return]


def event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    caller: str = "iam",
) -> dict[str, Any]:
    headers = {"content-type": "application/json", **(headers or {})}
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "body": None if body is None else (body if isinstance(body, str) else json.dumps(body)),
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": "req-1",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "stage": "prod",
            **CALLERS[caller],
        },
    }


def call(
    app: APIGatewayRestResolver | Callable[[dict[str, Any], Any], dict[str, Any]],
    method: str,
    path: str,
    **kwargs: Any,
) -> Reply:
    """``app`` is a resolver or a Lambda handler function (``functions/admin/handler.py``)."""
    resolve: Callable[[dict[str, Any], Any], dict[str, Any]] = (
        app.resolve if isinstance(app, APIGatewayRestResolver) else app
    )
    response = resolve(event(method, path, **kwargs), LocalLambdaContext())
    headers = {k: v[0] for k, v in (response.get("multiValueHeaders") or {}).items()}
    headers.update(response.get("headers") or {})
    raw = response.get("body") or ""
    return Reply(response["statusCode"], json.loads(raw) if raw else None, headers, raw)
