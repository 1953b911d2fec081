"""Build the app from CDK context: used by ``app.py`` (the CLI) and by ``tests/infra``.

Context keys (``cdk.json`` or ``-c key=value``):

====================================  =================================================  ========
key                                   meaning                                            default
====================================  =================================================  ========
``gatekeeper:bundle``                 ``false``: skip the pip bundling (offline synth)   ``true``
``gatekeeper:issuers``                ``GATEKEEPER_ISSUERS`` JSON for the authorizer     ``[]``
``gatekeeper:cacheTtl``               authorizer result cache TTL in seconds (0..3600)   ``0``
``gatekeeper:objectLockDays``         retention the sink sets per archive object         ``365``
``gatekeeper:breakGlassRoleArn``      the one role the archive lets delete               none
``gatekeeper:digestIntervalSeconds``  audit digests (heartbeat: every half)              ``3600``
``gatekeeper:alarmEmail``             e-mail subscribed to the alarm topic               none
``gatekeeper:retainData``             ``false``: tables/buckets/keys deleted with stack  ``true``
``gatekeeper:demoApis``               ``false``: no demo REST/HTTP APIs                  ``true``
``gatekeeper:nag``                    ``false``: do not run cdk-nag (AwsSolutions)       ``true``
====================================  =================================================  ========

``gatekeeper:tenantHeader``: ``GATEKEEPER_TENANT_HEADER`` (default ``x-tenant-id``); with
``cacheTtl`` > 0 it is part of the authorizer cache key, so every request must carry it.

``gatekeeper:rateLimitResponse``: ``deny`` (default: a 403 carrying Retry-After) or ``flag``
(allow with ``rateLimited=true``; the integration answers 429; see the README).

``gatekeeper:objectLockDays`` is ``GATEKEEPER_AUDIT_OBJECT_LOCK_DAYS``: the retention the sink
gives each archive object, quarantine marker and digest as it writes it (``0`` or ``off``:
none). The archive bucket always has Object Lock enabled and never a default retention, which
would lock every version of the chain state as well.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from gatekeeper_cdk.authorizer_construct import DEFAULT_TENANT_HEADER
from gatekeeper_cdk.stack import GatekeeperSettings, GatekeeperStack

STACK_NAME = "Gatekeeper"
SKIP_BUNDLING: dict[str, Any] = {"aws:cdk:bundling-stacks": []}
# Feature flags the stack relies on; set here so the CLI and the tests synthesize the same thing.
DEFAULT_CONTEXT: dict[str, Any] = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/customresources:installLatestAwsSdkDefault": False,
    "@aws-cdk/aws-iam:minimizePolicies": False,
}


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in {"false", "0", "no", "off"}


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _lock_days(value: Any) -> int | None:
    if value is None or value == "":
        return GatekeeperSettings.object_lock_days
    if str(value).strip().lower() in {"0", "off", "false", "none"}:
        return None
    return int(value)


def settings_from_context(app: App) -> GatekeeperSettings:
    ctx = app.node.try_get_context
    return GatekeeperSettings(
        issuers_json=str(ctx("gatekeeper:issuers") or "[]"),
        authorizer_cache_ttl_seconds=_int(ctx("gatekeeper:cacheTtl")) or 0,
        object_lock_days=_lock_days(ctx("gatekeeper:objectLockDays")),
        break_glass_role_arn=ctx("gatekeeper:breakGlassRoleArn") or None,
        digest_interval_seconds=_int(ctx("gatekeeper:digestIntervalSeconds"))
        or GatekeeperSettings.digest_interval_seconds,
        alarm_email=ctx("gatekeeper:alarmEmail") or None,
        retain_data=_flag(ctx("gatekeeper:retainData"), default=True),
        demo_apis=_flag(ctx("gatekeeper:demoApis"), default=True),
        rate_limit_response=str(ctx("gatekeeper:rateLimitResponse") or "deny"),
        tenant_header=str(ctx("gatekeeper:tenantHeader") or DEFAULT_TENANT_HEADER),
    )


def build_app(
    context: Mapping[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, GatekeeperStack]:
    """The app with its one stack and the AwsSolutions checks (findings fail the synth)."""
    app = App(context={**DEFAULT_CONTEXT, **(context or {})}, outdir=outdir)
    if not _flag(app.node.try_get_context("gatekeeper:bundle"), default=True):
        for key, value in SKIP_BUNDLING.items():
            app.node.set_context(key, value)
    env = Environment(
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
    )
    stack = GatekeeperStack(
        app,
        STACK_NAME,
        settings=settings_from_context(app),
        env=env,
        description="Gatekeeper: API authorization for AWS serverless (authorizer, audit, admin)",
    )
    if _flag(app.node.try_get_context("gatekeeper:nag"), default=True):
        Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack
