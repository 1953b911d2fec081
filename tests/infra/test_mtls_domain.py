"""``MutualTlsDomain`` and the mTLS cache guard, synthesized in-process (CDK's own assertions)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from gatekeeper_cdk import GatekeeperAuthorizer, MutualTlsDomain
from gatekeeper_cdk.authorizer_construct import UnsafeCachingError

CERT_ARN = "arn:aws:acm:eu-west-1:111111111111:certificate/0b5e2d3c-0000-4000-8000-000000000000"
FN_ARN = "arn:aws:lambda:eu-west-1:111111111111:function:gatekeeper-authorizer"


def _parts(stack: Stack) -> tuple[Any, Any, Any]:
    fn = lambda_.Function.from_function_arn(stack, "Fn", FN_ARN)
    cert = acm.Certificate.from_certificate_arn(stack, "Cert", CERT_ARN)
    bucket = s3.Bucket.from_bucket_name(stack, "Trust", "example-truststore")
    return fn, cert, bucket


def test_a_rest_api_behind_a_mutual_tls_domain() -> None:
    stack = Stack(App(), "S", env={"account": "111111111111", "region": "eu-west-1"})
    fn, cert, bucket = _parts(stack)
    gk = GatekeeperAuthorizer(stack, "Gk", function=fn, client_certificates=True)
    api = apigw.RestApi(stack, "Api")
    api.root.add_resource("orders").add_method(
        "GET", apigw.MockIntegration(), authorizer=gk.request_authorizer()
    )
    MutualTlsDomain(
        stack,
        "Mtls",
        domain_name="api.example.com",
        certificate=cert,
        truststore_bucket=bucket,
        truststore_key="truststore.pem",
        truststore_version="v3",
        api=api,
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ApiGateway::DomainName",
        {
            "DomainName": "api.example.com",
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "SecurityPolicy": "TLS_1_2",
            "MutualTlsAuthentication": {
                "TruststoreUri": "s3://example-truststore/truststore.pem",
                "TruststoreVersion": "v3",
            },
        },
    )
    template.resource_count_is("AWS::ApiGateway::BasePathMapping", 1)
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"DisableExecuteApiEndpoint": True}
    )
    # no caching: no identity source, so a caller with only a certificate reaches the authorizer
    template.has_resource_properties(
        "AWS::ApiGateway::Authorizer",
        {"Type": "REQUEST", "AuthorizerResultTtlInSeconds": 0, "IdentitySource": Match.absent()},
    )


def test_an_http_api_behind_a_mutual_tls_domain() -> None:
    stack = Stack(App(), "S", env={"account": "111111111111", "region": "eu-west-1"})
    _, cert, bucket = _parts(stack)
    api = apigwv2.HttpApi(
        stack,
        "Http",
        default_integration=integrations.HttpUrlIntegration("Echo", "https://example.com"),
    )
    MutualTlsDomain(
        stack,
        "Mtls",
        domain_name="api.example.com",
        certificate=cert,
        truststore_bucket=bucket,
        truststore_key="truststore.pem",
        api=api,
    )
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::DomainName",
        {
            "DomainName": "api.example.com",
            "DomainNameConfigurations": [
                Match.object_like({"EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"})
            ],
            "MutualTlsAuthentication": {"TruststoreUri": "s3://example-truststore/truststore.pem"},
        },
    )
    template.resource_count_is("AWS::ApiGatewayV2::ApiMapping", 1)
    template.has_resource_properties("AWS::ApiGatewayV2::Api", {"DisableExecuteApiEndpoint": True})


def test_client_certificates_refuse_a_cache() -> None:
    stack = Stack(App(), "S")
    fn, _, _ = _parts(stack)
    with pytest.raises(UnsafeCachingError, match="another certificate"):
        GatekeeperAuthorizer(
            stack,
            "Gk",
            function=fn,
            client_certificates=True,
            results_cache_ttl=Duration.seconds(60),
        )
    GatekeeperAuthorizer(stack, "Ok", function=fn, results_cache_ttl=Duration.seconds(60))
