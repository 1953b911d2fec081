"""The authenticated caller, whatever the credential was."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

AuthMethod = Literal["jwt", "api_key"]


class Principal(BaseModel):
    """Who is calling, as far as authentication can tell; what they may do is RBAC's job.

    ``attributes`` holds multi-valued claims (scopes, groups, other string claims) that claim
    mappings turn into roles; it never holds the credential.
    """

    model_config = ConfigDict(frozen=True)

    principal_id: str
    auth_method: AuthMethod
    tenant: str | None = None
    issuer: str | None = Field(default=None, description="Configured issuer name (JWT only).")
    key_id: str | None = Field(default=None, description="Public API key id (API key only).")
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset()
    attributes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    usage_identifier: str | None = None
