"""The admin function (``functions/admin/handler.py``) fed AWS's published REST proxy event
(``sam local generate-event apigateway aws-proxy``, from the aws-sam-cli wheel): an anonymous
one is refused; signed by IAM (as API Gateway fills ``requestContext.identity`` for an
``AWS_IAM`` route) it registers a signing key and a certificate rule that the authorizer then
honours. The ``events/admin_*.json`` samples are that event with a JSON body sent as text."""

from __future__ import annotations

import base64
import io
import json
import secrets
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import APIGatewayProxyEventModel
from cryptography.hazmat.primitives.asymmetric import ed25519

from gatekeeper.testing.events import rest_request_event
from gatekeeper.testing.lambda_context import LocalLambdaContext
from gatekeeper.testing.signing import public_pem, sign_request
from tests.conftest import COUNTERS, TABLE, World, make_world
from tests.integration.test_admin_handler import load_admin_handler
from tests.published_events import SamEvents

ROOT = Path(__file__).resolve().parents[2]
IAM_ARN = "arn:aws:iam::123456789012:user/ops"
SAMPLES = {
    "admin_put_signing_key.json": ("PUT", "/signing-keys/reporting-2026"),
    "admin_post_cert_mapping.json": ("POST", "/cert-mappings"),
}


@pytest.fixture
def world(dynamodb: Any, jwks_server: Any, signing_key: Any) -> World:
    return make_world(dynamodb, jwks_server, signing_key, mtls=True, counters_table=COUNTERS)


@pytest.fixture
def admin(world: World, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("GATEKEEPER_CONFIG_TABLE", TABLE)
    monkeypatch.setenv("GATEKEEPER_COUNTERS_TABLE", COUNTERS)
    module = load_admin_handler()
    module.logger.logger_handler.setStream(io.StringIO())
    return module


def published(sam: SamEvents, method: str, path: str, body: Any) -> dict[str, Any]:
    return sam.render(
        "apigateway",
        "aws-proxy",
        method=method,
        path=path.lstrip("/"),
        body=json.dumps(body),
        querystringparameters="{}",
    )


def as_iam(event: dict[str, Any]) -> dict[str, Any]:
    """What API Gateway adds for a caller that signed with SigV4 on an AWS_IAM route."""
    identity = event["requestContext"]["identity"]
    identity.update(
        {
            "userArn": IAM_ARN,
            "caller": "AIDAEXAMPLE",
            "accountId": "123456789012",
            "accessKey": "ASIAEXAMPLE",
            "user": "AIDAEXAMPLE",
        }
    )
    return event


def answer(admin: ModuleType, event: dict[str, Any]) -> tuple[int, Any]:
    APIGatewayProxyEventModel.model_validate(event)  # Powertools' own reading of the shape
    response = admin.lambda_handler(event, LocalLambdaContext())
    body = response.get("body")
    return response["statusCode"], json.loads(body) if body else None


def test_an_anonymous_published_event_is_refused(sam: SamEvents, admin: ModuleType) -> None:
    event = published(sam, "PUT", "/roles/anyone", {"name": "anyone"})
    status, body = answer(admin, event)
    assert status == 401 and body["error"]["code"] == "unauthenticated"


def test_credentials_registered_through_the_published_event_work(
    sam: SamEvents, admin: ModuleType, world: World
) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    record = {
        "key_id": "reporting-2026",
        "principal_id": "svc:reporting",
        "tenant": "acme",
        "roles": ["orders-reader"],
        "algorithm": "ed25519",
        "public_key": public_pem(private),
    }
    event = as_iam(published(sam, "PUT", "/signing-keys/reporting-2026", record))
    assert event["isBase64Encoded"] is True  # SAM's sample body: base64, as for binary types
    status, body = answer(admin, event)
    assert status == 200, body
    assert body["state"] == "active" and len(body["fingerprint"]) == 64

    world.clock.advance(60)
    headers = sign_request(
        private,
        key_id="reporting-2026",
        method="GET",
        path="/orders",
        nonce=secrets.token_urlsafe(18),
        created=world.clock(),
    )
    request = rest_request_event(headers, "GET", "/orders")
    request["requestContext"]["path"] = "/orders"
    result = world.authorizer.authorize(request)
    assert result.audit.decision == "allow" and result.audit.principal_id == "svc:reporting"

    status, body = answer(admin, as_iam(published(sam, "POST", "/signing-keys/x/revoke", {})))
    assert status == 404  # a key that is not there


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_committed_admin_samples_are_the_published_shape_and_work(
    sam: SamEvents, admin: ModuleType, world: World, name: str
) -> None:
    sample = json.loads((ROOT / "events" / name).read_text())
    method, path = SAMPLES[name]
    assert (sample["httpMethod"], sample["path"]) == (method, path)
    body = json.loads(sample["body"])
    reference = as_iam(published(sam, method, path, body))
    # the same event, but the JSON body sent as text (no binaryMediaTypes match)
    reference["body"], reference["isBase64Encoded"] = sample["body"], False
    assert sample == reference
    assert base64.b64decode(published(sam, method, path, body)["body"]) == sample["body"].encode()
    status, reply = answer(admin, sample)
    assert status in (200, 201), reply
