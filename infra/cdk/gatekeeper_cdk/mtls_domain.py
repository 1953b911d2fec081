"""``MutualTlsDomain``: a custom domain that requires client certificates, in front of an API.

API Gateway checks the client certificate against the truststore (a PEM bundle of your CAs in
S3) during the TLS handshake and passes it to the authorizer, which maps and revokes
certificates (``GATEKEEPER_MTLS=true``, README "Mutual TLS client certificates")::

    truststore = s3.Bucket(self, "Truststore", enforce_ssl=True, versioned=True, ...)
    MutualTlsDomain(self, "Mtls", domain_name="api.example.com", certificate=cert,
                    truststore_bucket=truststore, truststore_key="truststore.pem", api=rest_api)

What it does, and why:

- a regional domain (mutual TLS is not offered on edge-optimized ones) with TLS 1.2 at least;
- the truststore by S3 URI, with its object version when given (pin it: a new upload then
  changes nothing until the version is updated here, so a bad bundle cannot lock clients out);
- the API's default ``execute-api`` endpoint disabled: otherwise any client reaches the same API
  without a certificate, and the authorizer would only see requests without one.
"""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_s3 as s3
from constructs import Construct


class MutualTlsDomain(Construct):
    """A mutual-TLS custom domain mapped to one REST API (its deployment stage) or HTTP API
    (its default stage); ``domain`` is the L2 domain (its ``domain_name_alias_domain_name`` is the
    target of your DNS record)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_name: str,
        certificate: acm.ICertificate,
        truststore_bucket: s3.IBucket,
        truststore_key: str,
        api: apigw.RestApi | apigwv2.HttpApi,
        truststore_version: str | None = None,
        base_path: str | None = None,
        disable_execute_api_endpoint: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        self.domain: apigw.DomainName | apigwv2.DomainName
        if isinstance(api, apigw.RestApi):
            self.domain = apigw.DomainName(
                self,
                "Domain",
                domain_name=domain_name,
                certificate=certificate,
                endpoint_type=apigw.EndpointType.REGIONAL,
                security_policy=apigw.SecurityPolicy.TLS_1_2,
                mtls=apigw.MTLSConfig(
                    bucket=truststore_bucket, key=truststore_key, version=truststore_version
                ),
            )
            self.domain.add_base_path_mapping(api, base_path=base_path)
            rest = api.node.default_child
            assert isinstance(rest, apigw.CfnRestApi)
            if disable_execute_api_endpoint:
                rest.disable_execute_api_endpoint = True
        else:
            self.domain = apigwv2.DomainName(
                self,
                "Domain",
                domain_name=domain_name,
                certificate=certificate,
                endpoint_type=apigwv2.EndpointType.REGIONAL,
                security_policy=apigwv2.SecurityPolicy.TLS_1_2,
                mtls=apigwv2.MTLSConfig(
                    bucket=truststore_bucket, key=truststore_key, version=truststore_version
                ),
            )
            apigwv2.ApiMapping(
                self, "Mapping", api=api, domain_name=self.domain, api_mapping_key=base_path
            )
            http = api.node.default_child
            assert isinstance(http, apigwv2.CfnApi)
            if disable_execute_api_endpoint:
                http.disable_execute_api_endpoint = True
