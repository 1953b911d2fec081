"""Functions, the audit pipeline wiring, the APIs (authorizers, gateway responses, 429 path)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gatekeeper.rbac.model import ApiRoutes
from tests.infra.conftest import Synth


def _functions(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"]
        for k, r in synth.of_type("AWS::Lambda::Function").items()
        if r["Properties"].get("Handler") == "handler.lambda_handler"
    }


def _fn(synth: Synth, prefix: str) -> dict[str, Any]:
    (props,) = [p for k, p in _functions(synth).items() if k.startswith(prefix)]
    return props


def test_three_functions_runtime_arch_tracing_logs(synth: Synth) -> None:
    functions = _functions(synth)
    assert len(functions) == 3
    for props in functions.values():
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert "LogGroup" in props["LoggingConfig"]
        assert len(props["Layers"]) == 1
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Gatekeeper"
        assert env["POWERTOOLS_SERVICE_NAME"].startswith("gatekeeper-")
        assert "POWERTOOLS_LOG_LEVEL" in env


def test_authorizer_environment_matches_settings(synth: Synth) -> None:
    from gatekeeper.config import ENV_PREFIX, Settings

    env = _fn(synth, "Authorizer")["Environment"]["Variables"]
    gatekeeper_vars = {k for k in env if k.startswith(ENV_PREFIX)}
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert gatekeeper_vars <= known, gatekeeper_vars - known
    assert {"GATEKEEPER_CONFIG_TABLE", "GATEKEEPER_COUNTERS_TABLE"} <= gatekeeper_vars
    # every literal value validates, as the cold start would
    literal = {k: v for k, v in env.items() if isinstance(v, str)}
    Settings.from_env({**literal, "GATEKEEPER_CONFIG_TABLE": "config-table"})


def test_event_source_mapping(synth: Synth) -> None:
    (esm,) = synth.of_type("AWS::Lambda::EventSourceMapping").values()
    props = esm["Properties"]
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert 0 <= props["MaximumRetryAttempts"] <= 10
    assert 60 <= props["MaximumRecordAgeInSeconds"] <= 24 * 3600
    assert props["BatchSize"] == 100
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["ParallelizationFactor"] == 1
    dest = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert dest["Fn::GetAtt"][0].startswith("FailedBatchesBucket")
    assert props["EventSourceArn"]["Fn::GetAtt"][0].startswith("AuditStream")
    assert props["FunctionName"]["Ref"].startswith("AuditSink")


def test_subscription_filters_forward_audit_lines_to_stream(synth: Synth) -> None:
    filters = synth.of_type("AWS::Logs::SubscriptionFilter")
    sources = set()
    for res in filters.values():
        props = res["Properties"]
        assert props["FilterPattern"] == '{ $.audit.event_id = "*" }'  # present, any string
        assert props["DestinationArn"]["Fn::GetAtt"][0].startswith("AuditStream")
        sources.add(props["LogGroupName"]["Ref"])
        role = synth.props(props["RoleArn"]["Fn::GetAtt"][0])
        principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        assert principal == {"Service": "logs.amazonaws.com"}
    assert any(s.startswith("AuthorizerLogs") for s in sources)
    assert any(s.startswith("AdminLogs") for s in sources)


def test_audit_line_matches_the_filter() -> None:
    """The emitter's log line has ``audit.event_id``, which the filter pattern requires."""
    from gatekeeper.audit.event import AuditEvent

    event = AuditEvent(time="2026-01-01T00:00:00+00:00", decision="deny", reason="x", latency_ms=1)
    line: dict[str, Any] = {"level": "INFO", "audit": event.model_dump(mode="json")}
    assert line["audit"]["event_id"]


def test_sink_environment_matches_its_settings(synth: Synth) -> None:
    from gatekeeper.config import AuditSinkSettings

    env = _fn(synth, "AuditSink")["Environment"]["Variables"]
    fields = {f"GATEKEEPER_{name.upper()}" for name in AuditSinkSettings.model_fields}
    gatekeeper_vars = {k for k in env if k.startswith("GATEKEEPER_")}
    assert gatekeeper_vars <= fields, gatekeeper_vars - fields
    assert env["GATEKEEPER_AUDIT_PREFIX"] == "audit/"
    assert env["GATEKEEPER_AUDIT_SIGNING_KEY_ID"]["Fn::GetAtt"][0].startswith("DigestSigning")


def test_athena_table_has_partition_projection(synth: Synth) -> None:
    from gatekeeper.audit.archive import Layout

    (table,) = synth.of_type("AWS::Glue::Table").values()
    params = table["Properties"]["TableInput"]["Parameters"]
    template = "".join(str(p) for p in params["storage.location.template"]["Fn::Join"][1])
    assert template.endswith(f"/audit/{Layout('').events}" + "dt=${dt}/hour=${hour}/")
    assert params["projection.enabled"] == "true"
    assert params["projection.dt.type"] == "date"
    assert params["projection.hour.type"] == "integer"
    keys = [k["Name"] for k in table["Properties"]["TableInput"]["PartitionKeys"]]
    assert keys == ["dt", "hour"]


def _authorizers(synth: Synth) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in synth.of_type("AWS::ApiGateway::Authorizer").items()}


def test_rest_authorizers_default_to_ttl_zero(synth: Synth) -> None:
    auth = _authorizers(synth)
    types = sorted(p["Type"] for p in auth.values())
    assert types == ["REQUEST", "TOKEN"]
    for props in auth.values():
        assert props["AuthorizerResultTtlInSeconds"] == 0
        if props["Type"] == "REQUEST":
            # no identity source without caching: requests without credentials are audited too
            assert "IdentitySource" not in props
        else:
            assert props["IdentitySource"] == "method.request.header.Authorization"
    (http,) = synth.of_type("AWS::ApiGatewayV2::Authorizer").values()
    hp = http["Properties"]
    assert hp["AuthorizerPayloadFormatVersion"] == "2.0"
    assert hp["EnableSimpleResponses"] is True
    assert hp["AuthorizerResultTtlInSeconds"] == 0
    assert "IdentitySource" not in hp


def test_caching_variant_sets_ttl_and_identity_sources(synth_variant: Synth) -> None:
    """Details per API type: tests/infra/test_caching.py."""
    for props in _authorizers(synth_variant).values():
        assert props["AuthorizerResultTtlInSeconds"] == 300
        assert props["IdentitySource"]
    (http,) = synth_variant.of_type("AWS::ApiGatewayV2::Authorizer").values()
    assert http["Properties"]["IdentitySource"][0] == "$request.header.Authorization"


def test_every_method_is_authorized(synth: Synth) -> None:
    methods = synth.of_type("AWS::ApiGateway::Method").values()
    kinds = {m["Properties"]["AuthorizationType"] for m in methods}
    assert kinds == {"CUSTOM", "AWS_IAM"}
    for route in synth.of_type("AWS::ApiGatewayV2::Route").values():
        assert route["Properties"]["AuthorizationType"] == "CUSTOM"


def test_admin_api_uses_iam(synth: Synth) -> None:
    rest_apis = synth.of_type("AWS::ApiGateway::RestApi")
    admin_id = next(
        k for k, r in rest_apis.items() if r["Properties"]["Name"] == "gatekeeper-admin"
    )
    admin_methods = [
        m["Properties"]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["RestApiId"] == {"Ref": admin_id}
    ]
    assert admin_methods
    assert {m["AuthorizationType"] for m in admin_methods} == {"AWS_IAM"}


def _gateway_responses(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    rest_apis = synth.of_type("AWS::ApiGateway::RestApi")
    names = {k: r["Properties"]["Name"] for k, r in rest_apis.items()}
    return {
        (names[r["Properties"]["RestApiId"]["Ref"]], r["Properties"]["ResponseType"]): r[
            "Properties"
        ]
        for r in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }


RATE_HEADERS = {
    "gatewayresponse.header.Retry-After": "context.authorizer.retryAfter",
    "gatewayresponse.header.RateLimit-Limit": "context.authorizer.rateLimitLimit",
    "gatewayresponse.header.RateLimit-Remaining": "context.authorizer.rateLimitRemaining",
    "gatewayresponse.header.RateLimit-Reset": "context.authorizer.rateLimitReset",
}


@pytest.mark.parametrize("api", ["gatekeeper-demo", "gatekeeper-admin"])
def test_gateway_responses(synth: Synth, api: str) -> None:
    responses = _gateway_responses(synth)
    denied = responses[(api, "ACCESS_DENIED")]
    assert denied["StatusCode"] == "403"
    assert RATE_HEADERS.items() <= denied["ResponseParameters"].items()
    body = denied["ResponseTemplates"]["application/json"]
    assert "$context.authorizer.reason" in body and "$context.authorizer.retryAfter" in body
    json.loads(body.replace("$util.escapeJavaScript(", "").replace(")", ""))  # valid JSON shape
    unauthorized = responses[(api, "UNAUTHORIZED")]
    assert unauthorized["StatusCode"] == "401"
    assert unauthorized["ResponseParameters"]["gatewayresponse.header.WWW-Authenticate"]
    throttled = responses[(api, "THROTTLED")]
    assert throttled["StatusCode"] == "429"
    assert throttled["ResponseParameters"]["gatewayresponse.header.Retry-After"] == "'1'"
    for rtype in ("AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR", "DEFAULT_4XX"):
        assert (api, rtype) in responses


def test_rest_integration_answers_429_when_flagged(synth: Synth) -> None:
    """Option (b): Allow + ``rateLimited`` in context -> the integration overrides to 429."""
    mocks = [
        m["Properties"]
        for m in synth.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["Integration"]["Type"] == "MOCK"
    ]
    assert len(mocks) == 6
    for method in mocks:
        (response,) = method["Integration"]["IntegrationResponses"]
        vtl = response["ResponseTemplates"]["application/json"]
        assert '#if("$context.authorizer.rateLimited" == "true")' in vtl
        assert "#set($context.responseOverride.status = 429)" in vtl
        for header, key in (
            ("Retry-After", "retryAfter"),
            ("RateLimit-Limit", "rateLimitLimit"),
            ("RateLimit-Remaining", "rateLimitRemaining"),
            ("RateLimit-Reset", "rateLimitReset"),
        ):
            assert (
                f'#set($context.responseOverride.header.{header} = "$context.authorizer.{key}")'
                in vtl
            )
        codes = {r["StatusCode"] for r in method["MethodResponses"]}
        assert codes == {"200", "429"}


def test_http_backend_answers_429_when_flagged() -> None:
    from gatekeeper_cdk.demo_apis import DEMO_BACKEND_CODE

    namespace: dict[str, Any] = {}
    exec(compile(DEMO_BACKEND_CODE, "index.py", "exec"), namespace)  # noqa: S102 - our code
    limited = {
        "routeKey": "GET /orders",
        "requestContext": {
            "authorizer": {
                "lambda": {
                    "rateLimited": True,
                    "reason": "rate_limited",
                    "retryAfter": 7,
                    "rateLimitLimit": 100,
                    "rateLimitRemaining": 0,
                    "rateLimitReset": 7,
                }
            }
        },
    }
    response = namespace["handler"](limited, None)
    assert response["statusCode"] == 429
    assert response["headers"]["Retry-After"] == "7"
    assert response["headers"]["RateLimit-Remaining"] == "0"
    assert json.loads(response["body"])["reason"] == "rate_limited"
    ok = namespace["handler"](
        {"routeKey": "GET /orders", "requestContext": {"authorizer": {"lambda": {}}}}, None
    )
    assert ok["statusCode"] == 200


def _render(value: Any, tokens: dict[str, str]) -> str:
    """Resolve the Fn::Join/Ref/GetAtt a custom resource's JSON is built from."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_render(p, tokens) for p in parts)
    if "Ref" in value:
        return tokens.get(value["Ref"], str(value["Ref"]))
    if "Fn::GetAtt" in value:
        return tokens.get(value["Fn::GetAtt"][0], str(value["Fn::GetAtt"][0]))
    raise AssertionError(value)


def test_route_catalogs_are_published_in_the_store_format(synth: Synth) -> None:
    catalogs = synth.of_type("Custom::AWS")
    assert len(catalogs) == 2
    seen_stages = set()
    for res in catalogs.values():
        call = json.loads(_render(res["Properties"]["Create"], {}))
        assert call["service"] == "DynamoDB" and call["action"] == "transactWriteItems"
        put, bump = call["parameters"]["TransactItems"]
        item = put["Put"]["Item"]
        assert item["pk"] == {"S": "RBAC"}
        api_id, stage = item["sk"]["S"].removeprefix("API#").split("#")
        routes = ApiRoutes.model_validate_json(item["doc"]["S"])  # the store's own model
        assert (routes.api_id, routes.stage) == (api_id, stage)
        assert "GET /orders" in routes.routes
        seen_stages.add(stage)
        assert bump["Update"]["Key"] == {"pk": {"S": "RBAC"}, "sk": {"S": "VERSION"}}
        assert bump["Update"]["UpdateExpression"] == "ADD version :one"
    assert seen_stages == {"prod", "$default"}


def test_alarms_and_dashboard(synth: Synth) -> None:
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    ids = {k.split("Monitoring", 1)[1][: -8 if len(k) > 8 else None] for k in alarms}
    for name in ("DenySpike", "LimiterErrors", "SinkFailures", "FailedBatches", "SinkLag"):
        assert any(i.startswith(name) for i in ids), (name, ids)
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"][0]["Ref"].startswith("AlarmTopic")
    assert len(synth.of_type("AWS::CloudWatch::Dashboard")) == 1
    filters = synth.of_type("AWS::Logs::MetricFilter")
    patterns = {f["Properties"]["FilterPattern"] for f in filters.values()}
    assert '{ $.audit.decision = "deny" }' in patterns
    [checks] = [f for f in filters.values() if "rate_limit" in f["Properties"]["FilterPattern"]]
    [transform] = checks["Properties"]["MetricTransformations"]
    assert transform["Dimensions"] == [{"Key": "rule", "Value": "$.audit.rate_limit.rule_id"}]


def test_glue_table_is_the_table_schema(synth: Synth) -> None:
    """Columns, partitions, projection and SerDe straight from gatekeeper.audit.table_schema
    (the Athena DDL and `archive query` are rendered from it too), named as in Athena."""
    from gatekeeper.audit import table_schema

    (table,) = synth.of_type("AWS::Glue::Table").values()
    table_input = table["Properties"]["TableInput"]
    assert table_input["Name"] == table_schema.TABLE == "gatekeeper_audit"
    storage = table_input["StorageDescriptor"]
    columns = [(c["Name"], c["Type"]) for c in storage["Columns"]]
    assert columns == table_schema.glue_columns()
    assert ("class_uid", "int") in columns
    partitions = [(k["Name"], k["Type"]) for k in table_input["PartitionKeys"]]
    assert partitions == [(n, table_schema.hive_type(t)) for n, t in table_schema.PARTITIONS]
    params = table_input["Parameters"]
    assert {k: params[k] for k in table_schema.PROJECTION} == table_schema.PROJECTION
    assert storage["SerdeInfo"]["SerializationLibrary"] == table_schema.SERDE
    assert storage["SerdeInfo"]["Parameters"] == table_schema.SERDE_PROPERTIES
