"""The admin REST API: Powertools routes over :class:`~gatekeeper.admin.service.AdminService`.

Request and response bodies are pydantic models (validated by Powertools, which also generates
the OpenAPI document). Each route parses, calls one service method and formats; the service
holds every rule. Errors are JSON ``{"error": {"code", "message", "field"}}``.

Access: reads need an authenticated caller (IAM or the project's authorizer); changes need an
IAM caller or an authorizer principal holding one of ``admin_roles``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from gatekeeper.admin.audit import Actor
from gatekeeper.admin.errors import AdminError, Forbidden, Unauthenticated
from gatekeeper.admin.models import (
    BlockCreate,
    BlockView,
    CertMappingView,
    CertRevocationView,
    ClaimMappingView,
    ErrorBody,
    ErrorDetail,
    KeyCreate,
    KeyCreated,
    KeyRotate,
    KeyRotated,
    KeyView,
    Page,
    SigningKeyView,
    UsageReset,
    UsageView,
)
from gatekeeper.admin.service import AdminService, cert_mapping_view, mapping_id
from gatekeeper.identity.mtls import CertMapping, CertRevocation
from gatekeeper.identity.signatures import SigningKeyRecord
from gatekeeper.rate_limit.rules import LimitRule
from gatekeeper.rbac.model import ApiRoutes, ClaimMapping, Role, RoleAssignment
from gatekeeper.store.config_store import StoredDoc

API_TITLE = "Gatekeeper admin API"
API_VERSION = "1.0.0"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

M = TypeVar("M", bound=BaseModel)

IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The ETag last read; required to change an item."),
]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page.")]

_ERRORS: dict[int, OpenAPIResponse] = {
    code: {"description": text, "content": {"application/json": {"model": ErrorBody}}}
    for code, text in {
        401: "No authenticated caller",
        403: "Caller may not change the configuration",
        404: "Not found",
        409: "Conflicts with stored data",
        412: "Stale If-Match",
        422: "Invalid input (the field is named)",
        428: "If-Match required",
    }.items()
}


def _r(model: Any, status: int = 200) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: its success body (``None``: no content) and the errors."""
    ok: OpenAPIResponse = {"description": "No content" if model is None else "OK"}
    if model is not None:
        ok["content"] = {"application/json": {"model": model}}
    return {status: ok, **_ERRORS}


def caller_of(event: Mapping[str, Any]) -> Actor | None:
    """The IAM caller, or the principal the project's authorizer let through, or None."""
    ctx = event.get("requestContext") or {}
    request_id = ctx.get("requestId")
    identity = ctx.get("identity") or {}
    arn = identity.get("userArn") or identity.get("caller")
    if isinstance(arn, str) and arn:
        return Actor(id=arn, kind="iam", request_id=request_id)
    authorizer: dict[str, Any] = ctx.get("authorizer") or {}
    nested = authorizer.get("lambda")  # HTTP API payload 2.0 puts the context under "lambda"
    lam: dict[str, Any] = nested if isinstance(nested, dict) else authorizer
    principal = lam.get("principalId") or authorizer.get("principalId")
    if isinstance(principal, str) and principal:
        raw = lam.get("roles", "")
        roles = tuple(r for r in str(raw).split(",") if r) if raw else ()
        return Actor(id=principal, kind="authorizer", roles=roles, request_id=request_id)
    return None


def refusal(event: Mapping[str, Any], admin_roles: frozenset[str]) -> AdminError | None:
    """Why this caller may not make this request, or None. Runs before any input is parsed."""
    who = caller_of(event)
    if who is None:
        return Unauthenticated("no authenticated caller")
    method = str(event.get("httpMethod", "")).upper()
    if method in MUTATING and who.kind != "iam" and not admin_roles.intersection(who.roles):
        return Forbidden(
            f"changes need an IAM caller or one of the roles: {', '.join(sorted(admin_roles))}"
        )
    return None


class _GatedResolver(APIGatewayRestResolver):
    """Refuses callers before routing: Powertools validates bodies ahead of any middleware, and
    an unauthorized caller must learn nothing, not even which fields a body needs."""

    def __init__(self, admin_roles: Callable[[], frozenset[str]], log: Logger) -> None:
        super().__init__(enable_validation=True)
        self._admin_roles = admin_roles
        self._log = log

    def resolve(self, event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            admin_roles = self._admin_roles()
        except Exception as exc:  # misconfigured: fail closed, name the problem in the log only
            self._log.error("admin API is misconfigured", extra={"error": str(exc)})
            return _raw_error(500, "internal_error", "internal error (see the function's log)")
        refused = refusal(event, admin_roles)
        if refused is None:
            return super().resolve(event, context)
        who = caller_of(event)
        self._log.warning(
            "admin request refused",
            extra={"caller": who.id if who else None, "status": refused.status},
        )
        return _raw_error(refused.status, refused.code, refused.message)


def _raw_error(status: int, code: str, message: str) -> dict[str, Any]:
    """A proxy-integration response, for answers given before Powertools routes the event."""
    body = ErrorBody(error=ErrorDetail(code=code, message=message))
    return {
        "statusCode": status,
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


def _json(status: int, body: BaseModel | dict[str, Any], etag: str | None = None) -> Response[Any]:
    headers = {"ETag": f'"{etag}"'} if etag else None
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers
    )


def _error(status: int, code: str, message: str, field: str | None) -> Response[Any]:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, field=field))
    return _json(status, body.model_dump(mode="json"))


def _stored(model: type[M], stored: StoredDoc, status: int = 200) -> Response[M]:
    return _json(status, model.model_validate_json(stored.doc), stored.etag)


def build_app(  # noqa: PLR0915 - one nested function per route
    service: Callable[[], AdminService],
    *,
    admin_roles: Callable[[], frozenset[str]],
    logger: Logger | None = None,
) -> APIGatewayRestResolver:
    """The resolver; ``service`` and ``admin_roles`` are called lazily (cold start, tests)."""
    log = logger or Logger(service="gatekeeper-admin")
    app = _GatedResolver(admin_roles, log)

    def actor() -> Actor:
        found = caller_of(app.current_event.raw_event)
        assert found is not None  # the middleware refused anonymous callers
        return found

    @app.exception_handler(AdminError)  # type: ignore[untyped-decorator]
    def _admin_error(exc: AdminError) -> Response[Any]:
        return _error(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def _internal(exc: Exception) -> Response[Any]:
        log.exception("admin request failed")
        return _error(500, "internal_error", "internal error (see the function's log)", None)

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def _invalid(exc: RequestValidationError) -> Response[Any]:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ())]
        where = loc[0] if loc else "body"
        field = ".".join(loc[1:]) or where
        status = 400 if where == "body" and first.get("type") == "json_invalid" else 422
        return _error(status, "validation_error", f"{field}: {first.get('msg')}", field)

    # --- roles ------------------------------------------------------------------------------
    @app.get("/roles", tags=["roles"], responses=_r(Page[Role], 200))
    def list_roles(limit: Limit = 50, cursor: Cursor = None) -> Page[Role]:
        return service().list_roles(limit=limit, cursor=cursor)

    @app.get("/roles/<name>", tags=["roles"], responses=_r(Role, 200))
    def get_role(name: str) -> Response[Role]:
        role, etag = service().get_role(name)
        return _json(200, role, etag)

    @app.put("/roles/<name>", tags=["roles"], responses=_r(Role, 200))
    def put_role(name: str, role: Role, if_match: IfMatch = None) -> Response[Role]:
        return _stored(Role, service().put_role(name, role, if_match=if_match, actor=actor()))

    @app.delete("/roles/<name>", tags=["roles"], responses=_r(None, 204))
    def delete_role(name: str, if_match: IfMatch = None) -> Response[None]:
        service().delete_role(name, if_match=if_match, actor=actor())
        return Response(status_code=204)

    # --- principals -------------------------------------------------------------------------
    @app.get("/principals", tags=["principals"], responses=_r(Page[RoleAssignment], 200))
    def list_assignments(limit: Limit = 50, cursor: Cursor = None) -> Page[RoleAssignment]:
        return service().list_assignments(limit=limit, cursor=cursor)

    @app.get(
        "/principals/<principal_id>", tags=["principals"], responses=_r(list[RoleAssignment], 200)
    )
    def get_principal(principal_id: str) -> list[RoleAssignment]:
        return service().get_principal(principal_id)

    @app.get(
        "/principals/<principal_id>/tenants/<tenant>",
        tags=["principals"],
        responses=_r(RoleAssignment, 200),
    )
    def get_assignment(principal_id: str, tenant: str) -> Response[RoleAssignment]:
        found, etag = service().get_assignment(principal_id, tenant)
        return _json(200, found, etag)

    @app.put(
        "/principals/<principal_id>/tenants/<tenant>",
        tags=["principals"],
        responses=_r(RoleAssignment, 200),
    )
    def put_assignment(
        principal_id: str, tenant: str, assignment: RoleAssignment, if_match: IfMatch = None
    ) -> Response[RoleAssignment]:
        stored = service().put_assignment(
            principal_id, tenant, assignment, if_match=if_match, actor=actor()
        )
        return _stored(RoleAssignment, stored)

    @app.delete(
        "/principals/<principal_id>/tenants/<tenant>", tags=["principals"], responses=_r(None, 204)
    )
    def delete_assignment(
        principal_id: str, tenant: str, if_match: IfMatch = None
    ) -> Response[None]:
        service().delete_assignment(principal_id, tenant, if_match=if_match, actor=actor())
        return Response(status_code=204)

    # --- claim mappings ---------------------------------------------------------------------
    @app.get("/claim-mappings", tags=["claim mappings"], responses=_r(Page[ClaimMappingView], 200))
    def list_claim_mappings(limit: Limit = 50, cursor: Cursor = None) -> Page[ClaimMappingView]:
        return service().list_claim_mappings(limit=limit, cursor=cursor)

    @app.post("/claim-mappings", tags=["claim mappings"], responses=_r(ClaimMappingView, 201))
    def create_claim_mapping(mapping: ClaimMapping) -> Response[ClaimMappingView]:
        stored = service().create_claim_mapping(mapping, actor=actor())
        return _json(
            201, ClaimMappingView(id=mapping_id(mapping), **mapping.model_dump()), stored.etag
        )

    @app.get(
        "/claim-mappings/<mapping_id>", tags=["claim mappings"], responses=_r(ClaimMappingView, 200)
    )
    def get_claim_mapping(mapping_id: str) -> Response[ClaimMappingView]:
        found, etag = service().get_claim_mapping(mapping_id)
        return _json(200, found, etag)

    @app.put(
        "/claim-mappings/<mapping_id>", tags=["claim mappings"], responses=_r(ClaimMappingView, 200)
    )
    def put_claim_mapping(
        mapping_id: str, mapping: ClaimMapping, if_match: IfMatch = None
    ) -> Response[ClaimMappingView]:
        stored = service().put_claim_mapping(mapping_id, mapping, if_match=if_match, actor=actor())
        return _json(200, ClaimMappingView(id=mapping_id, **mapping.model_dump()), stored.etag)

    @app.delete("/claim-mappings/<mapping_id>", tags=["claim mappings"], responses=_r(None, 204))
    def delete_claim_mapping(mapping_id: str, if_match: IfMatch = None) -> Response[None]:
        service().delete_claim_mapping(mapping_id, if_match=if_match, actor=actor())
        return Response(status_code=204)

    # --- API route catalogs -----------------------------------------------------------------
    @app.get("/apis", tags=["apis"], responses=_r(Page[ApiRoutes], 200))
    def list_apis(limit: Limit = 50, cursor: Cursor = None) -> Page[ApiRoutes]:
        return service().list_apis(limit=limit, cursor=cursor)

    @app.get("/apis/<api_id>/stages/<stage>", tags=["apis"], responses=_r(ApiRoutes, 200))
    def get_api(api_id: str, stage: str) -> Response[ApiRoutes]:
        found, etag = service().get_api(api_id, stage)
        return _json(200, found, etag)

    @app.put("/apis/<api_id>/stages/<stage>", tags=["apis"], responses=_r(ApiRoutes, 200))
    def put_api(
        api_id: str, stage: str, api: ApiRoutes, if_match: IfMatch = None
    ) -> Response[ApiRoutes]:
        stored = service().put_api(api_id, stage, api, if_match=if_match, actor=actor())
        return _stored(ApiRoutes, stored)

    @app.delete("/apis/<api_id>/stages/<stage>", tags=["apis"], responses=_r(None, 204))
    def delete_api(api_id: str, stage: str, if_match: IfMatch = None) -> Response[None]:
        service().delete_api(api_id, stage, if_match=if_match, actor=actor())
        return Response(status_code=204)

    # --- rate-limit rules -------------------------------------------------------------------
    @app.get("/limits", tags=["limits"], responses=_r(Page[LimitRule], 200))
    def list_limits(limit: Limit = 50, cursor: Cursor = None) -> Page[LimitRule]:
        return service().list_limits(limit=limit, cursor=cursor)

    @app.get("/limits/<rule_id>", tags=["limits"], responses=_r(LimitRule, 200))
    def get_limit(rule_id: str) -> Response[LimitRule]:
        found, etag = service().get_limit(rule_id)
        return _json(200, found, etag)

    @app.put("/limits/<rule_id>", tags=["limits"], responses=_r(LimitRule, 200))
    def put_limit(rule_id: str, rule: LimitRule, if_match: IfMatch = None) -> Response[LimitRule]:
        stored = service().put_limit(rule_id, rule, if_match=if_match, actor=actor())
        return _stored(LimitRule, stored)

    @app.delete("/limits/<rule_id>", tags=["limits"], responses=_r(None, 204))
    def delete_limit(rule_id: str, if_match: IfMatch = None) -> Response[None]:
        service().delete_limit(rule_id, if_match=if_match, actor=actor())
        return Response(status_code=204)

    # --- API keys ---------------------------------------------------------------------------
    @app.get("/keys", tags=["keys"], responses=_r(Page[KeyView], 200))
    def list_keys(limit: Limit = 50, cursor: Cursor = None) -> Page[KeyView]:
        return service().list_keys(limit=limit, cursor=cursor)

    @app.post("/keys", tags=["keys"], responses=_r(KeyCreated, 201))
    def create_key(body: KeyCreate) -> Response[KeyCreated]:
        created = service().create_key(body, actor=actor())
        return _json(201, created)

    @app.get("/keys/<key_id>", tags=["keys"], responses=_r(KeyView, 200))
    def get_key(key_id: str) -> Response[KeyView]:
        found, etag = service().get_key(key_id)
        return _json(200, found, etag)

    @app.post("/keys/<key_id>/revoke", tags=["keys"], responses=_r(KeyView, 200))
    def revoke_key(key_id: str, if_match: IfMatch = None) -> Response[KeyView]:
        view, etag = service().revoke_key(key_id, if_match=if_match, actor=actor())
        return _json(200, view, etag)

    @app.post("/keys/<key_id>/rotate", tags=["keys"], responses=_r(KeyRotated, 201))
    def rotate_key(key_id: str, body: KeyRotate, if_match: IfMatch = None) -> Response[KeyRotated]:
        rotated = service().rotate_key(key_id, body, if_match=if_match, actor=actor())
        return _json(201, rotated)

    # --- client certificates (mTLS) --------------------------------------------------------
    @app.get("/cert-mappings", tags=["certificates"], responses=_r(Page[CertMappingView], 200))
    def list_cert_mappings(limit: Limit = 50, cursor: Cursor = None) -> Page[CertMappingView]:
        return service().list_cert_mappings(limit=limit, cursor=cursor)

    @app.post("/cert-mappings", tags=["certificates"], responses=_r(CertMappingView, 201))
    def create_cert_mapping(mapping: CertMapping) -> Response[CertMappingView]:
        stored = service().create_cert_mapping(mapping, actor=actor())
        return _json(201, cert_mapping_view(mapping), stored.etag)

    @app.get(
        "/cert-mappings/<mapping_id>", tags=["certificates"], responses=_r(CertMappingView, 200)
    )
    def get_cert_mapping(mapping_id: str) -> Response[CertMappingView]:
        found, etag = service().get_cert_mapping(mapping_id)
        return _json(200, found, etag)

    @app.put(
        "/cert-mappings/<mapping_id>", tags=["certificates"], responses=_r(CertMappingView, 200)
    )
    def put_cert_mapping(
        mapping_id: str, mapping: CertMapping, if_match: IfMatch = None
    ) -> Response[CertMappingView]:
        stored = service().put_cert_mapping(mapping_id, mapping, if_match=if_match, actor=actor())
        return _json(200, cert_mapping_view(mapping), stored.etag)

    @app.delete("/cert-mappings/<mapping_id>", tags=["certificates"], responses=_r(None, 204))
    def delete_cert_mapping(mapping_id: str, if_match: IfMatch = None) -> Response[None]:
        service().delete_cert_mapping(mapping_id, if_match=if_match, actor=actor())
        return Response(status_code=204)

    @app.get(
        "/cert-revocations", tags=["certificates"], responses=_r(Page[CertRevocationView], 200)
    )
    def list_cert_revocations(limit: Limit = 50, cursor: Cursor = None) -> Page[CertRevocationView]:
        return service().list_cert_revocations(limit=limit, cursor=cursor)

    @app.post(
        "/cert-revocations",
        tags=["certificates"],
        responses={**_r(CertRevocationView, 201), **_r(CertRevocationView, 200)},
    )
    def revoke_cert(revocation: CertRevocation) -> Response[CertRevocationView]:
        view, created = service().revoke_cert(revocation, actor=actor())
        return _json(201 if created else 200, view)

    @app.delete("/cert-revocations/<revocation_id>", tags=["certificates"], responses=_r(None, 204))
    def delete_cert_revocation(revocation_id: str) -> Response[None]:
        service().delete_cert_revocation(revocation_id, actor=actor())
        return Response(status_code=204)

    # --- request-signing keys ---------------------------------------------------------------
    @app.get("/signing-keys", tags=["signing keys"], responses=_r(Page[SigningKeyView], 200))
    def list_signing_keys(limit: Limit = 50, cursor: Cursor = None) -> Page[SigningKeyView]:
        return service().list_signing_keys(limit=limit, cursor=cursor)

    @app.get("/signing-keys/<key_id>", tags=["signing keys"], responses=_r(SigningKeyView, 200))
    def get_signing_key(key_id: str) -> Response[SigningKeyView]:
        found, etag = service().get_signing_key(key_id)
        return _json(200, found, etag)

    @app.put("/signing-keys/<key_id>", tags=["signing keys"], responses=_r(SigningKeyView, 200))
    def put_signing_key(
        key_id: str, record: SigningKeyRecord, if_match: IfMatch = None
    ) -> Response[SigningKeyView]:
        view, stored = service().put_signing_key(key_id, record, if_match=if_match, actor=actor())
        return _json(200, view, stored.etag)

    @app.post(
        "/signing-keys/<key_id>/revoke",
        tags=["signing keys"],
        responses=_r(SigningKeyView, 200),
    )
    def revoke_signing_key(key_id: str, if_match: IfMatch = None) -> Response[SigningKeyView]:
        view, etag = service().revoke_signing_key(key_id, if_match=if_match, actor=actor())
        return _json(200, view, etag)

    @app.delete("/signing-keys/<key_id>", tags=["signing keys"], responses=_r(None, 204))
    def delete_signing_key(key_id: str, if_match: IfMatch = None) -> Response[None]:
        service().delete_signing_key(key_id, if_match=if_match, actor=actor())
        return Response(status_code=204)

    # --- usage ------------------------------------------------------------------------------
    @app.get("/usage/<rule_id>/<scope_key>", tags=["usage"], responses=_r(UsageView, 200))
    def get_usage(rule_id: str, scope_key: str) -> UsageView:
        return service().usage(rule_id, scope_key)

    @app.delete("/usage/<rule_id>/<scope_key>", tags=["usage"], responses=_r(UsageReset, 200))
    def reset_usage(rule_id: str, scope_key: str) -> UsageReset:
        return service().reset_usage(rule_id, scope_key, actor=actor())

    # --- IP blocklist -----------------------------------------------------------------------
    @app.get("/blocks", tags=["blocks"], responses=_r(Page[BlockView], 200))
    def list_blocks(limit: Limit = 50, cursor: Cursor = None) -> Page[BlockView]:
        return service().list_blocks(limit=limit, cursor=cursor)

    @app.get("/blocks/<ip>", tags=["blocks"], responses=_r(BlockView, 200))
    def get_block(ip: str) -> BlockView:
        return service().get_block(ip)

    @app.put("/blocks/<ip>", tags=["blocks"], responses=_r(BlockView, 200))
    def add_block(ip: str, body: BlockCreate) -> BlockView:
        return service().add_block(ip, body, actor=actor())

    @app.delete("/blocks/<ip>", tags=["blocks"], responses=_r(None, 204))
    def remove_block(ip: str) -> Response[None]:
        service().remove_block(ip, actor=actor())
        return Response(status_code=204)

    return app


def openapi_json(app: APIGatewayRestResolver) -> str:
    """The OpenAPI document, as committed in ``functions/admin/openapi.json``."""
    doc = app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Manage Gatekeeper's roles, principals, API keys, client-certificate mappings "
        "and revocations, request-signing keys, limits, usage and blocks.",
    )
    return doc + "\n"


def _documentation_only() -> AdminService:
    raise RuntimeError("this app instance only generates the OpenAPI document")


def document() -> str:
    """The OpenAPI document of the routes, without any AWS client."""
    return openapi_json(build_app(_documentation_only, admin_roles=frozenset))


if __name__ == "__main__":  # python -m gatekeeper.admin.api > functions/admin/openapi.json
    import sys

    sys.stdout.write(document())
