"""Config items that another tool owns: ``policy apply`` never plans to delete them.

The CDK construct (``GatekeeperAuthorizer.publish_routes``) writes each API's route catalog at
deploy time and marks the item with :data:`OWNER_ATTRIBUTE` (e.g. ``cdk:Gatekeeper``), an
attribute beside ``doc``, so the document and the authorizer are unaffected. An access file
that does not mention such a catalog leaves it in place; a file that does mention it updates
it (and takes it over: the store writes the item without the marker).

Example::

    owners = managed_items(dynamodb, "gatekeeper-config")   # {("RBAC", "API#a1#prod"): "cdk:…"}
    plan = service.plan(access, owners=owners)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gatekeeper.store import tables
from gatekeeper.store.config_store import ItemKey

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

OWNER_ATTRIBUTE = "managed_by"


def managed_items(client: DynamoDBClient, table: str) -> dict[ItemKey, str]:
    """Every config item of the ``RBAC`` partition that carries an owner marker."""
    owners: dict[ItemKey, str] = {}
    start: dict[str, Any] | None = None
    while True:
        extra: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        page = client.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            FilterExpression="attribute_exists(#owner)",
            ProjectionExpression="pk, sk, #owner",
            ExpressionAttributeNames={"#owner": OWNER_ATTRIBUTE},
            ExpressionAttributeValues={":pk": {"S": tables.RBAC_PK}},
            ConsistentRead=True,
            **extra,
        )
        for item in page.get("Items", []):
            owners[(item["pk"]["S"], item["sk"]["S"])] = item[OWNER_ATTRIBUTE]["S"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return owners
