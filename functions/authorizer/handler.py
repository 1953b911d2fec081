"""API Gateway Lambda authorizer (REST TOKEN/REQUEST, HTTP API payload 2.0).

Thin by design: build the :class:`~gatekeeper.authorizer.Authorizer` once per container, hand it
the event, and translate its result. ``raise Exception("Unauthorized")`` is the one way a Lambda
authorizer makes API Gateway answer 401; every other outcome is a policy (Allow/Deny) or an HTTP
API simple response.
"""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from gatekeeper.authorizer import Authorizer, AuthorizerResult
from gatekeeper.config import Settings, SettingsError

# Most decisions add no metric (they are counted from the audit line): not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")
logger = Logger(service="gatekeeper-authorizer")
metrics = Metrics(namespace="Gatekeeper", service="authorizer")

_authorizer: Authorizer | None = None


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__("Unauthorized")


def get_authorizer() -> Authorizer:
    """Created on first use and kept for the container's life (JWKS and config caches)."""
    global _authorizer  # noqa: PLW0603 - per-container singleton, the Lambda way
    if _authorizer is None:
        _authorizer = Authorizer.from_settings(Settings.from_env(), logger=logger)
    return _authorizer


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        authorizer = get_authorizer()
    except Exception as exc:  # fail closed; a SettingsError names the variable, holds no secret
        detail = str(exc) if isinstance(exc, SettingsError) else type(exc).__name__
        logger.error("authorizer is misconfigured; denying", extra={"error": detail})
        metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
        raise Unauthorized from None
    result = authorizer.authorize(event)
    # Decisions are counted from the audit line by the stack's metric filters: an EMF line per
    # decision would cost more CloudWatch Logs ingestion than the audit line's own fields.
    if result.audit.reason == "blocked":
        metrics.add_metric(name="Blocked", unit=MetricUnit.Count, value=1)
    _rate_limit_metrics(result)
    if result.unauthorized or result.response is None:
        raise Unauthorized
    return result.response


def _rate_limit_metrics(result: AuthorizerResult) -> None:
    """Per-rule rejections and errors (EMF, dimension ``rule``); a limiter error is never silent.

    Allowed requests are not counted here: the audit line names the rule, and the stack's
    metric filter counts per rule from it (``RateLimitChecks``), so the common path logs nothing
    extra.
    """
    if result.limit is None:
        return
    if any(outcome.error for outcome in result.limit.outcomes):  # the alarm reads this one
        metrics.add_metric(name="RateLimiterErrors", unit=MetricUnit.Count, value=1)
    for outcome in result.limit.outcomes:
        if outcome.error:
            name = "LimiterErrors"
            logger.warning(
                "rate-limit counters failed",
                extra={"rule": outcome.rule_id, "failed_open": outcome.allowed},
            )
        elif outcome.allowed:
            continue
        else:
            name = "RateLimitShadowLimited" if outcome.shadow else "RateLimitLimited"
        with single_metric(
            name=name,
            unit=MetricUnit.Count,
            value=1,
            namespace=metrics.namespace,
            default_dimensions={"rule": outcome.rule_id},
        ):
            pass
