"""The answers a Lambda authorizer returns: an IAM-policy response (REST, WebSocket, HTTP API
without simple responses) or an HTTP API simple response, with a context of scalars."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gatekeeper.arn import ExecuteApiArn
from gatekeeper.policy_builder import PolicyResult

ContextValue = str | int | bool


def rest_response(
    principal_id: str,
    policy: PolicyResult,
    context: Mapping[str, ContextValue],
    usage_identifier_key: str | None = None,
) -> dict[str, Any]:
    """The IAM-policy answer (REST APIs, and HTTP APIs without simple responses)."""
    if not principal_id:
        raise ValueError("principalId must not be empty")
    response: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": policy.document,
        "context": _check_context(context),
    }
    if usage_identifier_key is not None:
        response["usageIdentifierKey"] = usage_identifier_key
    return response


def http_simple_response(
    is_authorized: bool, context: Mapping[str, ContextValue]
) -> dict[str, Any]:
    """The HTTP API simple answer (``enableSimpleResponses``)."""
    return {"isAuthorized": bool(is_authorized), "context": _check_context(context)}


def deny_response(
    principal_id: str, arn: ExecuteApiArn, context: Mapping[str, ContextValue] | None = None
) -> dict[str, Any]:
    """A Deny of the request resource, for failures before any policy could be built."""
    policy = PolicyResult((), (arn.arn,), "request", False)
    return rest_response(principal_id or "anonymous", policy, context or {})


def _check_context(context: Mapping[str, ContextValue]) -> dict[str, ContextValue]:
    """API Gateway accepts only string, number and boolean context values: fail here, not there."""
    checked: dict[str, ContextValue] = {}
    for key, value in context.items():
        if not isinstance(key, str):
            raise TypeError(f"context keys must be strings, not {type(key).__name__}")
        if not isinstance(value, str | int | bool):
            raise TypeError(
                f"context value {key!r} must be a string, integer or boolean, "
                f"not {type(value).__name__}"
            )
        checked[key] = value
    return checked
