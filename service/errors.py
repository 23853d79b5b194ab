"""Domain errors carry their HTTP status; one handler renders them (services never raise
HTTPException)."""

from __future__ import annotations

from typing import Any

from rules.load import error_path


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Invalid(DomainError):
    """Bad input only the service can judge (a program not in the policy, a unit not on
    the roster): 422 naming the field and why, as a request's own bad fields are."""

    status = 422
    code = "invalid"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}",
                         detail=[{"field": field, "reason": reason, "type": "value_error"}])


class Unavailable(DomainError):
    status = 503
    code = "unavailable"


class Unauthenticated(DomainError):
    status = 401
    code = "unauthenticated"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


def field_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic's errors as Liaison reports them: {field, reason, type}, the field as a
    dotted path (the 422 body; a CAD export's reject reason)."""
    out = []
    for err in errors:
        loc = [p for p in err.get("loc", ()) if p != "body"]
        out.append({"field": error_path(loc) or "(body)",
                    "reason": str(err.get("msg", "")).removeprefix("Value error, "),
                    "type": err.get("type", "")})
    return out
