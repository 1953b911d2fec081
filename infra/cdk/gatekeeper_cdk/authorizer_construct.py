"""``GatekeeperAuthorizer``: attach the Gatekeeper authorizer function to your own APIs.

Drop it into any stack that can reference the authorizer function (and, to publish route
catalogs, the config table and its key)::

    gk = GatekeeperAuthorizer(self, "Auth", function=authorizer_fn,
                              config_table=table, config_key=key)
    api.root.add_resource("orders").add_method(
        "GET", integration, authorizer=gk.token_authorizer())
    gk.publish_rest_api_routes(api)                 # route catalog -> config table

Caching: ``results_cache_ttl`` defaults to 0 so that every request reaches the authorizer and
rate limits count exactly; a TTL > 0 saves invocations but API Gateway then reuses one answer
for every route of the API during the TTL (see the README, "Caching and rate limits").
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as apigwv2_auth
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct

# Keys the authorizer puts into its context for rejections (strings/numbers/booleans only).
CONTEXT_REASON = "reason"
CONTEXT_RATE_LIMITED = "rateLimited"
CONTEXT_RETRY_AFTER = "retryAfter"
CONTEXT_LIMIT = "rateLimitLimit"
CONTEXT_REMAINING = "rateLimitRemaining"
CONTEXT_RESET = "rateLimitReset"

REST_TOKEN_SOURCE = "method.request.header.Authorization"  # noqa: S105 - a header name


class GatekeeperAuthorizer(Construct):
    """Authorizers (REST TOKEN / REST REQUEST / HTTP API 2.0) backed by one Gatekeeper function.

    ``identity_sources``: for REQUEST and HTTP API authorizers. With the default TTL of 0 none
    are required (API Gateway then invokes the authorizer even for requests without
    credentials, so they are audited); with a TTL > 0 API Gateway requires at least one and
    caches per their values: include everything that changes the answer (e.g.
    ``method.request.header.Authorization``, ``method.request.header.x-api-key``, and
    ``context.httpMethod`` / ``context.resourcePath`` for per-route answers).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        results_cache_ttl: Duration | None = None,
        identity_sources: Sequence[str] | None = None,
        http_identity_sources: Sequence[str] | None = None,
        config_table: dynamodb.ITable | None = None,
        config_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = function
        self.results_cache_ttl = results_cache_ttl or Duration.seconds(0)
        self.identity_sources = list(identity_sources or ())
        self.http_identity_sources = list(http_identity_sources or ())
        self.config_table = config_table
        self.config_key = config_key
        ttl = self.results_cache_ttl.to_seconds()
        if ttl > 3600:
            raise ValueError("API Gateway caches authorizer results for at most 3600 s")
        if ttl > 0 and not (self.identity_sources and self.http_identity_sources):
            raise ValueError("a cache TTL > 0 needs identity sources (the cache key)")
        self._token: apigw.TokenAuthorizer | None = None
        self._request: apigw.RequestAuthorizer | None = None
        self._http: apigwv2_auth.HttpLambdaAuthorizer | None = None

    @property
    def caching(self) -> bool:
        return self.results_cache_ttl.to_seconds() > 0

    def token_authorizer(self) -> apigw.TokenAuthorizer:
        """REST TOKEN authorizer on ``Authorization`` (a JWT, ``Bearer <jwt>`` or an API key)."""
        if self._token is None:
            self._token = apigw.TokenAuthorizer(
                self,
                "Token",
                handler=self.function,
                identity_source=REST_TOKEN_SOURCE,
                results_cache_ttl=self.results_cache_ttl,
            )
        return self._token

    def request_authorizer(self) -> apigw.RequestAuthorizer:
        """REST REQUEST authorizer: sees headers (``x-api-key``, tenant), path and method."""
        if self._request is None:
            self._request = apigw.RequestAuthorizer(
                self,
                "Request",
                handler=self.function,
                # CDK insists on one; without caching it is removed below.
                identity_sources=self.identity_sources or [REST_TOKEN_SOURCE],
                results_cache_ttl=self.results_cache_ttl,
            )
            if not self.caching:
                cfn = self._request.node.default_child
                assert isinstance(cfn, apigw.CfnAuthorizer)
                cfn.add_property_deletion_override("IdentitySource")
        return self._request

    def http_authorizer(self) -> apigwv2_auth.HttpLambdaAuthorizer:
        """HTTP API (payload 2.0) authorizer with simple responses (``isAuthorized``)."""
        if self._http is None:
            self._http = apigwv2_auth.HttpLambdaAuthorizer(
                "Http",
                self.function,
                authorizer_name=f"{self.node.id}-http",
                response_types=[apigwv2_auth.HttpLambdaResponseType.SIMPLE],
                results_cache_ttl=self.results_cache_ttl,
                identity_source=self.http_identity_sources or ["$request.header.Authorization"],
            )
        return self._http

    def finalize_http_authorizer(self) -> None:
        """Call after the first route used :meth:`http_authorizer` (the L1 exists only then)."""
        if self._http is None or self.caching:
            return
        for child in self._find_http_cfn_authorizers():
            child.add_property_deletion_override("IdentitySource")

    def _find_http_cfn_authorizers(self) -> list[apigwv2.CfnAuthorizer]:
        found: list[apigwv2.CfnAuthorizer] = []
        for construct in Stack.of(self).node.find_all():
            if isinstance(construct, apigwv2.CfnAuthorizer) and construct.name == (
                f"{self.node.id}-http"
            ):
                found.append(construct)
        return found

    # --- route catalogs ------------------------------------------------------------------------

    def publish_routes(
        self, construct_id: str, *, api_id: str, stage: str, routes: Sequence[str]
    ) -> cr.AwsCustomResource:
        """Write the route catalog item and bump the config version, in one transaction.

        Item ``pk=RBAC``, ``sk=API#<api id>#<stage>``, ``doc`` = ``{"api_id", "stage",
        "routes"}`` (the ``ApiRoutes`` model), exactly as ``DynamoConfigStore.put`` writes it.
        """
        if self.config_table is None:
            raise ValueError("publish_routes needs config_table")
        table = self.config_table
        stack = Stack.of(self)
        key = {"pk": {"S": "RBAC"}, "sk": {"S": f"API#{api_id}#{stage}"}}
        doc = stack.to_json_string({"api_id": api_id, "stage": stage, "routes": sorted(routes)})
        bump = {
            "Update": {
                "TableName": table.table_name,
                "Key": {"pk": {"S": "RBAC"}, "sk": {"S": "VERSION"}},
                "UpdateExpression": "ADD version :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
        put_call = cr.AwsSdkCall(
            service="DynamoDB",
            action="transactWriteItems",
            parameters={
                "TransactItems": [
                    {
                        "Put": {
                            "TableName": table.table_name,
                            "Item": {**key, "doc": {"S": doc}, "kind": {"S": "ApiRoutes"}},
                        }
                    },
                    bump,
                ]
            },
            physical_resource_id=cr.PhysicalResourceId.of(f"API#{api_id}#{stage}"),
        )
        delete_call = cr.AwsSdkCall(
            service="DynamoDB",
            action="transactWriteItems",
            parameters={
                "TransactItems": [{"Delete": {"TableName": table.table_name, "Key": key}}, bump]
            },
        )
        statements = [
            iam.PolicyStatement(
                sid="RouteCatalogWrite",
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[table.table_arn],
            )
        ]
        if self.config_key is not None:
            statements.append(
                iam.PolicyStatement(
                    sid="RouteCatalogKey",
                    actions=[
                        "kms:Decrypt",
                        "kms:DescribeKey",
                        "kms:Encrypt",
                        "kms:GenerateDataKey",
                    ],
                    resources=[self.config_key.key_arn],
                )
            )
        return cr.AwsCustomResource(
            self,
            construct_id,
            on_create=put_call,
            on_update=put_call,
            on_delete=delete_call,
            policy=cr.AwsCustomResourcePolicy.from_statements(statements),
            install_latest_aws_sdk=False,
        )

    def publish_rest_api_routes(
        self, api: apigw.RestApi, stage: str | None = None
    ) -> cr.AwsCustomResource:
        """Catalog every method of a REST API (call after all methods are added)."""
        return self.publish_routes(
            f"Routes{api.node.id}",
            api_id=api.rest_api_id,
            stage=stage or api.deployment_stage.stage_name,
            routes=rest_api_routes(api),
        )


def rest_api_routes(api: apigw.RestApi) -> list[str]:
    """``"VERB /path"`` for every method of the API (``OPTIONS`` preflights excluded)."""
    routes = {
        f"{method.http_method} {method.resource.path}"
        for method in api.methods
        if method.http_method != "OPTIONS"
    }
    return sorted(routes)
