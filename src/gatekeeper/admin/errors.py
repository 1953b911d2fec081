"""Admin failures as types; each maps to one HTTP status and a stable code (API and CLI)."""

from __future__ import annotations

from typing import ClassVar


class AdminError(Exception):
    """Base: ``status`` for the API, ``code`` for scripts, ``field`` names the offending input."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(AdminError):
    status, code = 400, "bad_request"


class Unauthenticated(AdminError):
    status, code = 401, "unauthenticated"


class Forbidden(AdminError):
    status, code = 403, "forbidden"


class NotFound(AdminError):
    status, code = 404, "not_found"


class AlreadyExists(AdminError):
    status, code = 409, "already_exists"


class Conflict(AdminError):
    """The change contradicts other stored data, or the config changed while it was validated."""

    status, code = 409, "conflict"


class PreconditionFailed(AdminError):
    """``If-Match`` does not match the stored item's ETag: someone changed it meanwhile."""

    status, code = 412, "precondition_failed"


class PreconditionRequired(AdminError):
    """Updating an existing item needs ``If-Match`` (no blind overwrites)."""

    status, code = 428, "precondition_required"


class Invalid(AdminError):
    """Valid JSON, but not a valid change (unknown role, inheritance cycle, …)."""

    status, code = 422, "invalid"
