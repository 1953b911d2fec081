"""Routes from an OpenAPI document (3.x, or Swagger 2.0), for ``gatekeeper serve --openapi``.

Each operation under ``paths`` becomes an API Gateway route ``VERB /path``; API Gateway's
``x-amazon-apigateway-any-method`` becomes ``ANY /path``. Path templates are API Gateway's
own syntax (``/orders/{id}``, ``/{proxy+}``); anything else is refused with the reason.

>>> routes_from_openapi('{"openapi": "3.0.1", "paths": {"/orders/{id}": {"get": {}}}}')
('GET /orders/{id}',)
"""

from __future__ import annotations

from typing import Any

from gatekeeper.admin.access_file import load_yaml
from gatekeeper.rbac.model import parse_route

OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch")
ANY_METHOD = "x-amazon-apigateway-any-method"


def routes_from_openapi(text: str) -> tuple[str, ...]:
    """The routes of the document; ``ValueError`` (or ``yaml.YAMLError``) when it is not one."""
    data: Any = load_yaml(text)
    if not isinstance(data, dict) or not (data.get("openapi") or data.get("swagger")):
        raise ValueError("not an OpenAPI document (no 'openapi' or 'swagger' version)")
    paths = data.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise ValueError("the document has no 'paths'")
    routes: list[str] = []
    for path, item in paths.items():
        if not isinstance(path, str) or not isinstance(item, dict):
            raise ValueError(f"paths: {path!r} is not a path with operations")
        found = [f"{m.upper()} {path}" for m in OPERATIONS if m in item]
        if ANY_METHOD in item:
            found.append(f"ANY {path}")
        for route in found:
            try:
                parse_route(route)
            except ValueError as exc:
                raise ValueError(f"paths: {exc}") from None
        routes += found
    if not routes:
        raise ValueError("the document has no operations")
    return tuple(dict.fromkeys(routes))
