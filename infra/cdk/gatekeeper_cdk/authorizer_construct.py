"""``GatekeeperAuthorizer``: attach the Gatekeeper authorizer function to your own APIs.

Drop it into any stack that can reference the authorizer function (and, to publish route
catalogs, the config table and its key)::

    gk = GatekeeperAuthorizer(self, "Auth", function=authorizer_fn,
                              config_table=table, config_key=key)
    api.root.add_resource("orders").add_method(
        "GET", integration, authorizer=gk.request_authorizer())
    gk.publish_rest_api_routes(api)                 # route catalog -> config table

Caching is safe by construction: the construct, not its user, chooses the identity sources
(API Gateway's cache key) so that a cached answer is only ever reused where the authorizer would
have answered the same. See :class:`GatekeeperAuthorizer` and the README ("Caching, and why the
policy covers every route") for the table per API type and TTL.
"""

from __future__ import annotations

from collections.abc import Sequence

import jsii
from aws_cdk import Aspects, Duration, IAspect, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as apigwv2_auth
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

# Keys the authorizer puts into its context for rejections (strings/numbers/booleans only).
CONTEXT_REASON = "reason"
CONTEXT_RATE_LIMITED = "rateLimited"
CONTEXT_RETRY_AFTER = "retryAfter"
CONTEXT_LIMIT = "rateLimitLimit"
CONTEXT_REMAINING = "rateLimitRemaining"
CONTEXT_RESET = "rateLimitReset"

CREDENTIAL_HEADER = "Authorization"
DEFAULT_TENANT_HEADER = "x-tenant-id"  # GATEKEEPER_TENANT_HEADER's default
REST_TOKEN_SOURCE = f"method.request.header.{CREDENTIAL_HEADER}"
HTTP_TOKEN_SOURCE = f"$request.header.{CREDENTIAL_HEADER}"
# HTTP API context variables that make the cache key per request: a simple response
# (isAuthorized) then only ever answers the method and path it was computed for.
HTTP_REQUEST_SOURCES = ("$context.httpMethod", "$context.path")
MAX_TTL_SECONDS = 3600


class UnsafeCachingError(ValueError):
    """A cache setting under which API Gateway would reuse an answer where it is wrong."""


def rest_request_identity_sources(ttl_seconds: int, tenant_header: str | None) -> list[str]:
    """Identity sources of the REST REQUEST authorizer (empty: none, the property is omitted).

    * TTL 0: none. API Gateway then invokes the authorizer for every request, including
      requests without credentials (audited) and API-key callers using ``x-api-key``.
    * TTL > 0 (API Gateway requires at least one source and refuses, 401, any request missing
      one): the credential header, plus the tenant header if given. The answer is an IAM policy
      covering every route of the API (the runtime builds it from the stored route catalog), and
      API Gateway evaluates the cached policy against each request's own method ARN, so the
      path and method need not be in the key; the tenant header must be, because the authorizer
      checks it against the caller's tenant and a cached answer would skip that check.
    """
    if ttl_seconds <= 0:
        return []
    sources = [REST_TOKEN_SOURCE]
    if tenant_header:
        sources.append(f"method.request.header.{tenant_header}")
    return sources


def http_identity_sources(ttl_seconds: int, tenant_header: str | None) -> list[str]:
    """Identity sources of the HTTP API authorizer (simple responses).

    * TTL 0: none (every request reaches the authorizer).
    * TTL > 0: credential header, tenant header (if given), ``$context.httpMethod`` and
      ``$context.path``. A simple response is a bare yes/no that API Gateway would otherwise
      reuse for every route; and an IAM policy cannot help on ``$default`` catch-all routes,
      whose route ARN is ``.../$default/$default`` for every path. Keying on method and path is
      the one exact option: a cached answer is reused only for the same credential, tenant,
      method and path.
    """
    if ttl_seconds <= 0:
        return []
    sources = [HTTP_TOKEN_SOURCE]
    if tenant_header:
        sources.append(f"$request.header.{tenant_header}")
    sources.extend(HTTP_REQUEST_SOURCES)
    return sources


@jsii.implements(IAspect)
class _OmitIdentitySource:
    """Drop ``IdentitySource`` from the named API Gateway v2 authorizers.

    CDK's L2 authorizers always write one, but an identity source is a *requirement* (a
    request without it is refused with 401 before the authorizer runs). Without caching there
    is nothing to key, so the construct sets none. The L1 only exists once a route uses the
    authorizer, hence an aspect rather than an edit at creation time.
    """

    def __init__(self, names: set[str]) -> None:
        self.names = names

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, apigwv2.CfnAuthorizer) and node.name in self.names:
            node.add_property_deletion_override("IdentitySource")


class GatekeeperAuthorizer(Construct):
    """Authorizers (REST TOKEN / REST REQUEST / HTTP API 2.0 / WebSocket) on one function.

    The construct chooses the identity sources (API Gateway's cache key and its list of
    mandatory request parts) from the cache TTL and the tenant header, so that a cached answer
    is never reused where the authorizer would have answered differently:

    ===================  =====================  ===============================================
    authorizer           TTL 0                  TTL > 0
    ===================  =====================  ===============================================
    REST REQUEST         none                   ``Authorization`` + tenant header
    REST TOKEN           ``Authorization``      refused if a tenant header is configured
    HTTP API (simple)    none                   ``Authorization`` + tenant header + method +
                                                path
    WebSocket            ``websocket_identity_sources`` (default none); never cached
    ===================  =====================  ===============================================

    ``tenant_header``: the header the runtime checks against the caller's tenant
    (``GATEKEEPER_TENANT_HEADER``, default ``x-tenant-id``); ``None`` when no backend relies on
    a tenant header (the runtime's check of it then does not apply to cached answers).
    ``tenant_header_in_cache_key`` (default: on whenever caching is on and a tenant header is
    configured) puts it into the cache key. The price: with caching on, identity sources are
    mandatory, so every request must then carry the tenant header (401 without it). Turning it
    off is only safe when every backend takes the tenant from the authorizer context, never
    from the header.

    API-key callers: with TTL 0 no identity source is set, so ``x-api-key: gk_...`` works. With
    TTL > 0 the key goes in ``Authorization: gk_...`` (the authorizer accepts both), because
    all identity sources are mandatory and a key in ``x-api-key`` alone would be refused with
    401 before the authorizer runs.

    A TOKEN authorizer receives only the token: it never sees the tenant header. With a TTL > 0
    and a tenant header configured, :meth:`token_authorizer` raises :class:`UnsafeCachingError`;
    use :meth:`request_authorizer` instead.

    ``client_certificates`` (the function runs with ``GATEKEEPER_MTLS=true``): the client
    certificate cannot be part of API Gateway's cache key, so a cached answer would be reused
    for another certificate on the same token, defeating certificate-bound tokens (RFC 8705)
    and revocations. With it, a TTL > 0 raises :class:`UnsafeCachingError`. (Signed requests
    need TTL 0 as well, but fail closed without it: API Gateway refuses a request without an
    ``Authorization`` header before the authorizer runs.)
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.IFunction,
        results_cache_ttl: Duration | None = None,
        tenant_header: str | None = DEFAULT_TENANT_HEADER,
        tenant_header_in_cache_key: bool | None = None,
        websocket_identity_sources: Sequence[str] | None = None,
        config_table: dynamodb.ITable | None = None,
        config_key: kms.IKey | None = None,
        client_certificates: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = function
        self.results_cache_ttl = results_cache_ttl or Duration.seconds(0)
        ttl = int(self.results_cache_ttl.to_seconds())
        if ttl > MAX_TTL_SECONDS:
            raise ValueError("API Gateway caches authorizer results for at most 3600 s")
        if client_certificates and ttl > 0:
            raise UnsafeCachingError(
                f"{self.node.path}: with client certificates (mTLS) the cache key cannot hold "
                f"the certificate, so with a cache TTL of {ttl} s a cached answer would be reused "
                "for another certificate presenting the same token (certificate-bound tokens "
                "and revocations bypassed). Use a results_cache_ttl of 0."
            )
        self.client_certificates = client_certificates
        self.tenant_header = tenant_header.strip() if tenant_header else None
        if tenant_header_in_cache_key and not self.tenant_header:
            raise ValueError("tenant_header_in_cache_key needs a tenant_header")
        if tenant_header_in_cache_key is None:
            tenant_header_in_cache_key = ttl > 0 and self.tenant_header is not None
        self.tenant_header_in_cache_key = bool(tenant_header_in_cache_key)
        key_tenant = self.tenant_header if self.tenant_header_in_cache_key else None
        self.rest_identity_sources = rest_request_identity_sources(ttl, key_tenant)
        self.http_identity_sources = http_identity_sources(ttl, key_tenant)
        self.websocket_identity_sources = list(websocket_identity_sources or ())
        self.config_table = config_table
        self.config_key = config_key
        self._token: apigw.TokenAuthorizer | None = None
        self._request: apigw.RequestAuthorizer | None = None
        self._http: apigwv2_auth.HttpLambdaAuthorizer | None = None
        self._websocket: apigwv2_auth.WebSocketLambdaAuthorizer | None = None
        self._omit = _OmitIdentitySource(set())
        Aspects.of(Stack.of(self)).add(self._omit)

    @property
    def caching(self) -> bool:
        return self.results_cache_ttl.to_seconds() > 0

    @property
    def http_authorizer_name(self) -> str:
        return f"{self.node.id}-http"

    @property
    def websocket_authorizer_name(self) -> str:
        return f"{self.node.id}-websocket"

    @property
    def token_authorizer_allowed(self) -> bool:
        """False when a TOKEN authorizer would cache answers that skip the tenant check."""
        return not (self.caching and self.tenant_header is not None)

    def token_authorizer(self) -> apigw.TokenAuthorizer:
        """REST TOKEN authorizer on ``Authorization`` (a JWT, ``Bearer <jwt>`` or an API key).

        Raises :class:`UnsafeCachingError` with a TTL > 0 and a tenant header configured: the
        TOKEN event carries only the token, so the tenant header could not be in the cache key
        (nor checked at all) and a cached Allow would be reused for any tenant header.
        """
        if not self.token_authorizer_allowed:
            raise UnsafeCachingError(
                f"{self.node.path}: a REST TOKEN authorizer only sees the {CREDENTIAL_HEADER} "
                f"header, not the tenant header {self.tenant_header!r}, so with a cache TTL of "
                f"{int(self.results_cache_ttl.to_seconds())} s a cached answer would be reused "
                "for any tenant header. Use request_authorizer() (its cache key includes the "
                "tenant header), a results_cache_ttl of 0, or tenant_header=None if no backend "
                "relies on the tenant header."
            )
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
        """REST REQUEST authorizer: sees headers (``x-api-key``, tenant), path and method.

        Identity sources: :func:`rest_request_identity_sources`.
        """
        if self._request is None:
            self._request = apigw.RequestAuthorizer(
                self,
                "Request",
                handler=self.function,
                # CDK insists on one; without caching it is removed below.
                identity_sources=self.rest_identity_sources or [REST_TOKEN_SOURCE],
                results_cache_ttl=self.results_cache_ttl,
            )
            if not self.rest_identity_sources:
                cfn = self._request.node.default_child
                assert isinstance(cfn, apigw.CfnAuthorizer)
                cfn.add_property_deletion_override("IdentitySource")
        return self._request

    def http_authorizer(self) -> apigwv2_auth.HttpLambdaAuthorizer:
        """HTTP API (payload 2.0) authorizer with simple responses (``isAuthorized``).

        Identity sources: :func:`http_identity_sources`. The function must answer simple
        responses too (``GATEKEEPER_HTTP_API_RESPONSE=simple``, the default). CDK binds one
        ``HttpLambdaAuthorizer`` to one HTTP API.
        """
        if self._http is None:
            self._http = apigwv2_auth.HttpLambdaAuthorizer(
                "Http",
                self.function,
                authorizer_name=self.http_authorizer_name,
                response_types=[apigwv2_auth.HttpLambdaResponseType.SIMPLE],
                results_cache_ttl=self.results_cache_ttl,
                identity_source=self.http_identity_sources or [HTTP_TOKEN_SOURCE],
            )
            if not self.http_identity_sources:
                self._omit.names.add(self.http_authorizer_name)
        return self._http

    def websocket_authorizer(self) -> apigwv2_auth.WebSocketLambdaAuthorizer:
        """WebSocket REQUEST authorizer, for the ``$connect`` route.

        API Gateway never caches WebSocket authorizer answers, so identity sources are only
        requirements. By default there are none: every ``$connect`` reaches the authorizer (and
        is audited), with credentials in a header or the query string. Pass
        ``websocket_identity_sources`` (e.g. ``["route.request.querystring.token"]``) to have
        API Gateway refuse connections without them before invoking the function.
        """
        if self._websocket is None:
            self._websocket = apigwv2_auth.WebSocketLambdaAuthorizer(
                "WebSocket",
                self.function,
                authorizer_name=self.websocket_authorizer_name,
                identity_source=self.websocket_identity_sources
                or [f"route.request.header.{CREDENTIAL_HEADER}"],
            )
            if not self.websocket_identity_sources:
                self._omit.names.add(self.websocket_authorizer_name)
        return self._websocket

    # --- route catalogs ------------------------------------------------------------------------

    def publish_routes(
        self, construct_id: str, *, api_id: str, stage: str, routes: Sequence[str]
    ) -> cr.AwsCustomResource:
        """Write the route catalog item and bump the config version, in one transaction.

        Item ``pk=RBAC``, ``sk=API#<api id>#<stage>``, ``doc`` = ``{"api_id", "stage",
        "routes"}`` (the ``ApiRoutes`` model), exactly as ``DynamoConfigStore.put`` writes it,
        plus ``managed_by`` = ``cdk:<stack name>``: an access file that does not mention the
        catalog leaves it in place (``gatekeeper policy apply``).
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
                            "Item": {
                                **key,
                                "doc": {"S": doc},
                                "kind": {"S": "ApiRoutes"},
                                # owner marker: `gatekeeper policy apply` never deletes an
                                # item marked so (gatekeeper.admin.ownership)
                                "managed_by": {"S": f"cdk:{stack.stack_name}"},
                            },
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
