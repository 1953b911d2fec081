"""The authenticated caller, whatever the credential was."""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from gatekeeper.errors import InvalidPrincipalId

AuthMethod = Literal["jwt", "api_key", "mtls", "signature"]

MAX_PRINCIPAL_ID_BYTES: Final = 512
"""UTF-8 bytes. A principal id becomes part of DynamoDB keys (partition keys take 2048 bytes,
``PRINCIPAL#<id>``, ``RL#<rule>#<id>``) and of every response and audit event; real ``sub``
values are UUIDs, numbers or e-mail addresses, far below this."""
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
SCOPE_TOKEN: Final = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]{1,256}$")
"""RFC 6749 section 3.3: ``scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`` (bounded here)."""


def checked_principal_id(value: str) -> str:
    """``value`` if it can serve as a principal id; :class:`InvalidPrincipalId` otherwise."""
    if not value or len(value.encode("utf-8", "surrogatepass")) > MAX_PRINCIPAL_ID_BYTES:
        raise InvalidPrincipalId(f"principal id must be 1 to {MAX_PRINCIPAL_ID_BYTES} bytes")
    if _CONTROL.search(value):
        raise InvalidPrincipalId("principal id must not contain control characters")
    return value


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
    bound_thumbprint: str | None = Field(
        default=None,
        description="RFC 8705 cnf.x5t#S256 of a certificate-bound token: only good together "
        "with that client certificate.",
    )
