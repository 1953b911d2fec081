"""The demo APIs (REST with TOKEN + REQUEST authorizers, HTTP API 2.0) and the admin API.

Rate-limit rejections (design.md section 3, option (b)): when a caller is over a limit the
authorizer *allows* the request with ``rateLimited=true`` plus ``reason``, ``retryAfter``,
``rateLimitLimit``, ``rateLimitRemaining`` and ``rateLimitReset`` in its context, and the
integration answers 429 with ``Retry-After`` and ``RateLimit-*`` headers:

* REST: the mock integration's response template checks ``$context.authorizer.rateLimited``
  and sets ``$context.responseOverride.status = 429`` and the headers
  (:func:`rate_limited_response_template`, reusable for any non-proxy integration);
* HTTP API: the backend Lambda checks ``requestContext.authorizer.lambda.rateLimited``.

Denials stay 403 (``ACCESS_DENIED``) and carry ``reason`` and the same headers when present
(a limiter configured to deny instead of flag still tells the client when to retry).
"""

from __future__ import annotations

import jsii
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as apigwv2_int
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from gatekeeper_cdk.authorizer_construct import GatekeeperAuthorizer
from gatekeeper_cdk.nag import acknowledge

STAGE = "prod"
RATE_LIMIT_HEADERS = {
    "Retry-After": "retryAfter",
    "RateLimit-Limit": "rateLimitLimit",
    "RateLimit-Remaining": "rateLimitRemaining",
    "RateLimit-Reset": "rateLimitReset",
}

ACCESS_LOG_FORMAT = apigw.AccessLogFormat.custom(
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTimeEpoch","method":"$context.httpMethod",'
    '"resourcePath":"$context.resourcePath","status":"$context.status",'
    '"principalId":"$context.authorizer.principalId","reason":"$context.authorizer.reason",'
    '"rateLimited":"$context.authorizer.rateLimited",'
    '"authorizerError":"$context.authorizer.error",'
    '"authorizerLatency":"$context.authorizer.integrationLatency",'
    '"responseLatency":"$context.responseLatency"}'
)


def rate_limited_response_template(ok_body: str) -> str:
    """VTL for a non-proxy integration response: 429 + headers when the authorizer flagged it."""
    headers = "\n".join(
        f'#set($context.responseOverride.header.{header} = "$context.authorizer.{key}")'
        for header, key in RATE_LIMIT_HEADERS.items()
    )
    return (
        '#if("$context.authorizer.rateLimited" == "true")\n'
        "#set($context.responseOverride.status = 429)\n"
        f"{headers}\n"
        '{"message": "Too Many Requests", '
        '"reason": "$util.escapeJavaScript($context.authorizer.reason)", '
        '"retryAfter": "$context.authorizer.retryAfter", '
        '"requestId": "$context.requestId"}\n'
        "#else\n"
        f"{ok_body}\n"
        "#end"
    )


DEMO_OK_BODY = (
    '{"ok": true, "route": "$context.httpMethod $context.resourcePath", '
    '"principalId": "$util.escapeJavaScript($context.authorizer.principalId)", '
    '"tenant": "$util.escapeJavaScript($context.authorizer.tenant)", '
    '"policyScope": "$context.authorizer.policyScope"}'
)

DENIED_BODY = (
    '{"message": "Forbidden", '
    '"reason": "$util.escapeJavaScript($context.authorizer.reason)", '
    '"retryAfter": "$context.authorizer.retryAfter", '
    '"requestId": "$context.requestId"}'
)
UNAUTHORIZED_BODY = (
    '{"message": "Unauthorized", "reason": "unauthorized", '
    '"detail": "see the audit event with this requestId", "requestId": "$context.requestId"}'
)


def add_gateway_responses(api: apigw.RestApi) -> None:
    """401/403/429/5xx answers in JSON, carrying the authorizer's reason and retry headers.

    A raised ``Unauthorized`` (401) has no authorizer context: its reason code is in the audit
    event, found by ``requestId``. A Deny (403) carries ``reason`` and, for rate limits,
    ``Retry-After`` and ``RateLimit-*`` from the context.
    """
    json_type = "'application/json'"
    api.add_gateway_response(
        "Unauthorized",
        type=apigw.ResponseType.UNAUTHORIZED,
        status_code="401",
        response_headers={"WWW-Authenticate": "'Bearer'", "Content-Type": json_type},
        templates={"application/json": UNAUTHORIZED_BODY},
    )
    api.add_gateway_response(
        "AccessDenied",
        type=apigw.ResponseType.ACCESS_DENIED,
        status_code="403",
        response_headers={
            "Content-Type": json_type,
            "X-Gatekeeper-Reason": "context.authorizer.reason",
            **{h: f"context.authorizer.{k}" for h, k in RATE_LIMIT_HEADERS.items()},
        },
        templates={"application/json": DENIED_BODY},
    )
    api.add_gateway_response(
        "Throttled",  # the stage's own throttle (a backstop, not the Gatekeeper limiter)
        type=apigw.ResponseType.THROTTLED,
        status_code="429",
        response_headers={"Retry-After": "'1'", "Content-Type": json_type},
        templates={
            "application/json": '{"message": "Too Many Requests", "reason": "stage_throttle", '
            '"retryAfter": "1", "requestId": "$context.requestId"}'
        },
    )
    for name, rtype in (
        ("AuthorizerFailure", apigw.ResponseType.AUTHORIZER_FAILURE),
        ("AuthorizerConfigError", apigw.ResponseType.AUTHORIZER_CONFIGURATION_ERROR),
        ("Default5xx", apigw.ResponseType.DEFAULT_5_XX),
    ):
        api.add_gateway_response(
            name,
            type=rtype,
            response_headers={"Content-Type": json_type},
            templates={
                "application/json": (
                    '{"message": "Internal error", "requestId": "$context.requestId"}'
                )
            },
        )
    api.add_gateway_response(
        "Default4xx",
        type=apigw.ResponseType.DEFAULT_4_XX,
        response_headers={"Content-Type": json_type},
        templates={
            "application/json": '{"message": $context.error.messageString, '
            '"requestId": "$context.requestId"}'
        },
    )


def _access_logs(scope: Construct, construct_id: str, key: kms.IKey) -> logs.LogGroup:
    return logs.LogGroup(
        scope,
        construct_id,
        retention=logs.RetentionDays.ONE_MONTH,
        encryption_key=key,
        removal_policy=RemovalPolicy.DESTROY,
    )


def _stage_options(log_group: logs.LogGroup) -> apigw.StageOptions:
    return apigw.StageOptions(
        stage_name=STAGE,
        access_log_destination=apigw.LogGroupLogDestination(log_group),
        access_log_format=ACCESS_LOG_FORMAT,
        tracing_enabled=True,
        metrics_enabled=True,
        throttling_rate_limit=100,
        throttling_burst_limit=200,
    )


def _acknowledge_rest_api(api: apigw.RestApi, auth: str) -> None:
    acknowledge(
        api,
        "AwsSolutions-APIG3",
        "WAF is an account/edge decision left to the deployer; the stage has throttling and "
        "every method is authorized.",
    )
    acknowledge(
        api,
        "AwsSolutions-APIG6",
        "Execution logging needs the account-wide API Gateway CloudWatch role (a singleton this "
        "stack does not take over); access logs record every request, including the "
        "authorizer's reason and error.",
    )
    acknowledge(
        api, "AwsSolutions-COG4", f"Methods use {auth}, not a Cognito user pool authorizer."
    )


class DemoRestApi(Construct):
    """REST API, mock integrations: TOKEN on /orders, REQUEST on /orders/{id} and tenants.

    With caching on (and a tenant header) /orders uses REQUEST too: see ``token_authorizer``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        gatekeeper: GatekeeperAuthorizer,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name="gatekeeper-demo",
            description="Gatekeeper demo: TOKEN and REQUEST authorizers on mock routes",
            cloud_watch_role=False,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            deploy_options=_stage_options(_access_logs(self, "AccessLogs", key)),
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )
        request = gatekeeper.request_authorizer()
        # With caching on and a tenant header configured a TOKEN authorizer is refused (it
        # cannot see the tenant header): /orders then uses the REQUEST authorizer as well.
        token = gatekeeper.token_authorizer() if gatekeeper.token_authorizer_allowed else request
        integration = apigw.MockIntegration(
            request_templates={"application/json": '{"statusCode": 200}'},
            passthrough_behavior=apigw.PassthroughBehavior.WHEN_NO_TEMPLATES,
            integration_responses=[
                apigw.IntegrationResponse(
                    status_code="200",
                    response_templates={
                        "application/json": rate_limited_response_template(DEMO_OK_BODY)
                    },
                )
            ],
        )
        method_responses = [
            apigw.MethodResponse(status_code="200"),
            apigw.MethodResponse(
                status_code="429",
                response_parameters={
                    f"method.response.header.{h}": False for h in RATE_LIMIT_HEADERS
                },
            ),
        ]

        def add(resource: apigw.IResource, verb: str, authorizer: apigw.IAuthorizer) -> None:
            resource.add_method(
                verb,
                integration,
                authorizer=authorizer,
                request_validator=validator,
                method_responses=method_responses,
            )

        orders = self.api.root.add_resource("orders")
        add(orders, "GET", token)
        add(orders, "POST", token)
        order = orders.add_resource("{id}")
        add(order, "GET", request)
        add(order, "DELETE", request)
        reports = (
            self.api.root.add_resource("tenants").add_resource("{tenant}").add_resource("reports")
        )
        add(reports, "GET", request)
        add(reports, "POST", request)
        add_gateway_responses(self.api)
        self.routes = gatekeeper.publish_rest_api_routes(self.api, stage=STAGE)
        _acknowledge_rest_api(self.api, "the Gatekeeper Lambda authorizer (TOKEN/REQUEST)")


DEMO_BACKEND_CODE = """\
import json

HEADERS = {"Retry-After": "retryAfter", "RateLimit-Limit": "rateLimitLimit",
           "RateLimit-Remaining": "rateLimitRemaining", "RateLimit-Reset": "rateLimitReset"}


def handler(event, context):
    auth = (event.get("requestContext", {}).get("authorizer") or {}).get("lambda") or {}
    if str(auth.get("rateLimited", "")).lower() == "true":
        headers = {h: str(auth[k]) for h, k in HEADERS.items() if k in auth}
        body = {"message": "Too Many Requests", "reason": auth.get("reason"),
                "retryAfter": auth.get("retryAfter")}
        return {"statusCode": 429, "headers": {**headers, "Content-Type": "application/json"},
                "body": json.dumps(body)}
    body = {"ok": True, "route": event.get("routeKey"), "principalId": auth.get("principalId"),
            "tenant": auth.get("tenant"), "policyScope": auth.get("policyScope")}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body)}
"""


HTTP_ACCESS_LOG_FORMAT = apigw.AccessLogFormat.custom(
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTimeEpoch","routeKey":"$context.routeKey",'
    '"status":"$context.status","principalId":"$context.authorizer.principalId",'
    '"reason":"$context.authorizer.reason","authorizerError":"$context.authorizer.error",'
    '"responseLatency":"$context.responseLatency"}'
)


@jsii.implements(apigwv2.IAccessLogSettings)
class HttpAccessLogs:
    """``IAccessLogSettings`` for an HTTP API stage (CDK has no concrete class for it)."""

    def __init__(self, destination: apigwv2.IAccessLogDestination) -> None:
        self._destination = destination

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return HTTP_ACCESS_LOG_FORMAT


class DemoHttpApi(Construct):
    """HTTP API with the payload 2.0 authorizer (simple responses) and a tiny echo backend."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        gatekeeper: GatekeeperAuthorizer,
        key: kms.IKey,
        runtime: lambda_.Runtime,
        architecture: lambda_.Architecture,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        backend_logs = logs.LogGroup(
            self,
            "BackendLogs",
            retention=log_retention,
            encryption_key=key,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = iam.Role(
            self, "BackendRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[backend_logs.log_group_arn],
            )
        )
        self.backend = lambda_.Function(
            self,
            "Backend",
            runtime=runtime,
            architecture=architecture,
            handler="index.handler",
            code=lambda_.Code.from_inline(DEMO_BACKEND_CODE),
            role=role,
            log_group=backend_logs,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=Duration.seconds(5),
            description="Gatekeeper demo backend: echoes the caller, answers 429 when flagged",
        )
        acknowledge(
            self.backend,
            "AwsSolutions-L1",
            "Same runtime as the suite's functions (python3.13), pinned with the layer's wheels.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level "
            "permissions (added by CDK for active tracing).",
        )
        self.api = apigwv2.HttpApi(
            self,
            "Api",
            api_name="gatekeeper-demo-http",
            description="Gatekeeper demo: HTTP API with the payload 2.0 authorizer",
            create_default_stage=False,
        )
        access_logs = _access_logs(self, "AccessLogs", key)
        self.stage = apigwv2.HttpStage(
            self,
            "Stage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=100, burst_limit=200),
            access_log_settings=HttpAccessLogs(apigwv2.LogGroupLogDestination(access_logs)),
        )
        integration = apigwv2_int.HttpLambdaIntegration("Backend", self.backend)
        authorizer = gatekeeper.http_authorizer()
        for path, methods in (
            ("/orders", [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.POST]),
            ("/orders/{id}", [apigwv2.HttpMethod.GET, apigwv2.HttpMethod.DELETE]),
            ("/tenants/{tenant}/reports", [apigwv2.HttpMethod.GET]),
        ):
            self.api.add_routes(
                path=path, methods=methods, integration=integration, authorizer=authorizer
            )
        self.routes = gatekeeper.publish_routes(
            "RoutesDemoHttp",
            api_id=self.api.api_id,
            stage="$default",
            routes=[
                "GET /orders",
                "POST /orders",
                "GET /orders/{id}",
                "DELETE /orders/{id}",
                "GET /tenants/{tenant}/reports",
            ],
        )


class AdminApi(Construct):
    """The admin API: IAM (SigV4) authorization on every method, Lambda proxy to admin."""

    def __init__(
        self, scope: Construct, construct_id: str, *, function: lambda_.IFunction, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name="gatekeeper-admin",
            description="Gatekeeper admin API (IAM auth)",
            cloud_watch_role=False,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            deploy_options=_stage_options(_access_logs(self, "AccessLogs", key)),
            default_method_options=apigw.MethodOptions(
                authorization_type=apigw.AuthorizationType.IAM
            ),
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_parameters=True, validate_request_body=True
        )
        integration = apigw.LambdaIntegration(function, proxy=True)
        self.api.root.add_method("ANY", integration, request_validator=validator)
        self.api.root.add_resource("{proxy+}").add_method(
            "ANY", integration, request_validator=validator
        )
        add_gateway_responses(self.api)
        _acknowledge_rest_api(self.api, "IAM (SigV4) authorization")
