"""The admin REST API (behind IAM auth, or the project's authorizer with an admin role).

Thin by design: the routes live in :mod:`gatekeeper.admin.api`, every rule in
:class:`gatekeeper.admin.service.AdminService`. Settings and AWS clients are built on first use
and kept for the container's life.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from gatekeeper.admin.api import build_app
from gatekeeper.admin.audit import LogAdminAuditEmitter
from gatekeeper.admin.service import AdminService
from gatekeeper.admin.settings import AdminSettings
from gatekeeper.store.config_store import DynamoConfigStore
from gatekeeper.store.counters_admin import DynamoCountersAdminStore

logger = Logger(service="gatekeeper-admin")


@cache
def settings() -> AdminSettings:
    return AdminSettings.from_env()


@cache
def service() -> AdminService:
    config = settings()
    client = boto3.client("dynamodb", endpoint_url=config.dynamodb_endpoint)
    counters = (
        DynamoCountersAdminStore(client, config.counters_table) if config.counters_table else None
    )
    return AdminService(
        DynamoConfigStore(client, config.config_table),
        counters=counters,
        emitter=LogAdminAuditEmitter(logger),
        key_prefix=config.api_key_prefix,
    )


app = build_app(service, admin_roles=lambda: settings().admin_roles, logger=logger)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
