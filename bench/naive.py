"""A naive authorizer, written the way most teams start, to compare with in the same run.

PyJWT's ``PyJWKClient`` (its JWK-set cache on, as documented), Powertools'
``APIGatewayAuthorizerResponse``, a DynamoDB ``GetItem`` for the principal and one per role on
every request, and one counter ``UpdateItem`` per limit rule. It is correct enough to compare
with (signature, issuer, audience, expiry; roles from the table; a conditional counter), not a
straw man: no sleeps, no repeated client creation, keys cached by PyJWT.
"""

from __future__ import annotations

import fnmatch
import json
import time
from typing import TYPE_CHECKING, Any

import jwt
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

NAIVE_TABLE = "naive-config"
NAIVE_COUNTERS = "naive-counters"


def create_tables(client: DynamoDBClient) -> None:
    for name in (NAIVE_TABLE, NAIVE_COUNTERS):
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )


def seed(client: DynamoDBClient, principal: str, roles: dict[str, list[str]]) -> None:
    """One principal item listing its roles; one item per role with ``"VERB /glob"`` grants."""
    client.put_item(
        TableName=NAIVE_TABLE,
        Item={"pk": {"S": f"principal#{principal}"}, "roles": {"SS": sorted(roles)}},
    )
    for role, grants in roles.items():
        client.put_item(
            TableName=NAIVE_TABLE,
            Item={"pk": {"S": f"role#{role}"}, "grants": {"S": json.dumps(grants)}},
        )


class NaiveAuthorizer:
    def __init__(
        self,
        client: DynamoDBClient,
        *,
        jwks_uri: str,
        issuer: str,
        audience: str,
        limits: dict[str, int],
    ) -> None:
        self._db = client
        self._jwks = jwt.PyJWKClient(jwks_uri, cache_keys=True)
        self._issuer = issuer
        self._audience = audience
        self._limits = limits  # rule id -> requests per minute per principal

    def __call__(self, raw: dict[str, Any]) -> dict[str, Any]:
        event = APIGatewayAuthorizerRequestEvent(raw)
        arn = event.parsed_arn
        token = (event.headers.get("Authorization") or "").removeprefix("Bearer ")
        try:
            key = self._jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256"],
                audience=self._audience,
                issuer=self._issuer,
            )
        except jwt.PyJWTError:
            raise Exception("Unauthorized") from None
        sub = claims["sub"]
        item = self._db.get_item(TableName=NAIVE_TABLE, Key={"pk": {"S": f"principal#{sub}"}})
        roles = sorted(item.get("Item", {}).get("roles", {}).get("SS", []))
        request = f"{event.http_method} {event.path}"
        allowed = False
        for role in roles:
            found = self._db.get_item(TableName=NAIVE_TABLE, Key={"pk": {"S": f"role#{role}"}})
            grants = json.loads(found.get("Item", {}).get("grants", {}).get("S", "[]"))
            allowed = allowed or any(fnmatch.fnmatchcase(request, grant) for grant in grants)
        if allowed:
            window = int(time.time() // 60)
            for rule, limit in self._limits.items():
                try:
                    self._db.update_item(
                        TableName=NAIVE_COUNTERS,
                        Key={"pk": {"S": f"{rule}#{sub}#{window}"}},
                        UpdateExpression="ADD #c :one",
                        ConditionExpression="attribute_not_exists(#c) OR #c < :limit",
                        ExpressionAttributeNames={"#c": "count"},
                        ExpressionAttributeValues={
                            ":one": {"N": "1"},
                            ":limit": {"N": str(limit)},
                        },
                    )
                except self._db.exceptions.ConditionalCheckFailedException:
                    allowed = False
        response = APIGatewayAuthorizerResponse(
            principal_id=sub,
            region=arn.region,
            aws_account_id=arn.aws_account_id,
            api_id=arn.api_id,
            stage=arn.stage,
            context={"tenant": claims.get("tenant", ""), "roles": ",".join(roles)},
        )
        if allowed:
            response.allow_route(http_method=event.http_method, resource=event.path)
        else:
            response.deny_all_routes()
        return response.asdict()
