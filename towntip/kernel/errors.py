"""Errors that cross a process boundary: each has a code (HTTP-like) and a reason safe to show the caller."""

from __future__ import annotations


class ServiceError(Exception):
    """An error a caller may see. Never carries a traceback or internals."""

    code: int = 500
    title: str = "Internal error"

    def __init__(self, reason: str, *, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.reason


class BadRequest(ServiceError):
    code = 400
    title = "Bad request"


class Unauthorized(ServiceError):
    code = 401
    title = "Unauthorized"


class Forbidden(ServiceError):
    code = 403
    title = "Forbidden"


class NotFound(ServiceError):
    code = 404
    title = "Not found"


class Conflict(ServiceError):
    code = 409
    title = "Conflict"


class Unprocessable(ServiceError):
    code = 422
    title = "Unprocessable"


class TooManyRequests(ServiceError):
    code = 429
    title = "Too many requests"


class Unavailable(ServiceError):
    code = 503
    title = "Service unavailable"


_BY_CODE = {
    c.code: c
    for c in (BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Unprocessable, TooManyRequests, Unavailable)
}


def from_code(code: int, reason: str) -> ServiceError:
    cls = _BY_CODE.get(code, ServiceError)
    return cls(reason, code=code)


def describe_validation_error(exc: Exception) -> str:
    """A pydantic ValidationError as one readable line: 'field: message; field: message'."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for err in errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "request"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
