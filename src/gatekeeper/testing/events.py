"""Builders for authorizer events shaped as API Gateway sends them (see ``events/``)."""

from __future__ import annotations

import uuid
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
REST_API = "a1b2c3d4e5"
HTTP_API = "f6g7h8i9j0"


def method_arn(api_id: str, stage: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/{method}/{path.lstrip('/')}"


def rest_token_event(
    token: str, method: str = "GET", path: str = "/", *, api_id: str = REST_API, stage: str = "prod"
) -> dict[str, Any]:
    return {
        "type": "TOKEN",
        "authorizationToken": token,
        "methodArn": method_arn(api_id, stage, method, path),
    }


def rest_request_event(
    headers: dict[str, str],
    method: str = "GET",
    path: str = "/",
    *,
    resource: str | None = None,
    source_ip: str = "203.0.113.10",
    api_id: str = REST_API,
    stage: str = "prod",
) -> dict[str, Any]:
    resource = resource or path
    return {
        "type": "REQUEST",
        "methodArn": method_arn(api_id, stage, method, path),
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": {},
        "stageVariables": {},
        "requestContext": {
            "resourceId": "k3x9q1",
            "resourcePath": resource,
            "httpMethod": method,
            "requestTime": "25/Nov/2026:20:14:33 +0000",
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "requestTimeEpoch": 1795637673000,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": "curl/8.5.0"},
            "domainName": f"{api_id}.execute-api.{REGION}.amazonaws.com",
            "apiId": api_id,
        },
    }


def http_api_event(
    headers: dict[str, str],
    method: str = "GET",
    path: str = "/",
    *,
    route_key: str | None = None,
    source_ip: str = "198.51.100.7",
    api_id: str = HTTP_API,
    stage: str = "$default",
    default_route: bool = False,
) -> dict[str, Any]:
    """``default_route``: the request reached the API's catch-all ``$default`` route, whose
    ``routeArn`` names the route (``…/{stage}/$default``), not the request."""
    lowered = {k.lower(): v for k, v in headers.items()}
    route_key = "$default" if default_route else route_key or f"{method} {path}"
    route_arn = (
        f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/$default"
        if default_route
        else method_arn(api_id, stage, method, path)
    )
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": route_arn,
        "identitySource": list(lowered.values())[:1],
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": lowered,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": api_id,
            "domainName": f"{api_id}.execute-api.{REGION}.amazonaws.com",
            "domainPrefix": api_id,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "python-requests/2.32.3",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": stage,
            "time": "25/Nov/2026:20:14:35 +0000",
            "timeEpoch": 1795637675000,
        },
        "pathParameters": {},
        "stageVariables": {},
    }


def websocket_connect_event(
    query: dict[str, str],
    headers: dict[str, str] | None = None,
    *,
    source_ip: str = "192.0.2.44",
    api_id: str = "w1x2y3z4a5",
    stage: str = "prod",
) -> dict[str, Any]:
    """A WebSocket API's ``$connect`` REQUEST authorizer event (events/websocket_connect.json)."""
    headers = {"Host": f"{api_id}.execute-api.{REGION}.amazonaws.com", **(headers or {})}
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{api_id}/{stage}/$connect",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "messageDirection": "IN",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "connectionId": "Fq4DecZkqAMCJrA=",
            "identity": {"sourceIp": source_ip, "userAgent": "Mozilla/5.0"},
            "domainName": f"{api_id}.execute-api.{REGION}.amazonaws.com",
            "apiId": api_id,
        },
    }
