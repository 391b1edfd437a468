"""Errors that cross a process boundary: each has an HTTP-like status, a stable machine-readable code
(`theme.requirements_missing`) and an English reason safe to show the caller.

Pages and clients act on the code, never on the reason's wording. A service declares the refusals it may answer in
its contracts as `Refusal` constants and raises them: `raise c.COMMUNITY_NOT_FOUND(f"no community {cid}")`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticCustomError

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")  # dotted lower-case words: domain.what

# Where nothing more precise is declared: the plumbing's own refusals (bad JSON, too large, a service down).
GENERIC_CODES = {
    400: "request.invalid", 401: "request.unauthenticated", 403: "request.forbidden", 404: "request.not_found",
    409: "request.conflict", 413: "request.too_large", 422: "request.unprocessable", 429: "request.too_many",
    500: "service.internal", 502: "service.bad_gateway", 503: "service.unavailable",
}


def generic_code(status: int) -> str:
    return GENERIC_CODES.get(status, "service.internal" if status >= 500 else "request.refused")


class ServiceError(Exception):
    """An error a caller may see. Never carries a traceback or internals.

    `code` is the HTTP-like status (its historical name, read by the gateway and the CLI; `status` says the same);
    `error_code` is the stable machine-readable code.
    """

    code: int = 500
    title: str = "Internal error"

    def __init__(self, reason: str, *, code: int | None = None, error_code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code
        self.error_code = error_code or generic_code(self.code)

    @property
    def status(self) -> int:
        return self.code

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


def from_code(code: int, reason: str, error_code: str | None = None) -> ServiceError:
    """The exception of this status (NotFound for 404...), carrying the machine-readable code when there is one."""
    cls = _BY_CODE.get(code, ServiceError)
    return cls(reason, code=code, error_code=error_code)


@dataclass(frozen=True)
class Refusal:
    """One refusal a service may answer, declared once in its contracts: the stable code, the status, and what it
    means (for the docs and the AsyncAPI document). Calling it makes the exception to raise."""

    code: str
    status: int
    doc: str = ""

    def __post_init__(self) -> None:
        if not CODE_PATTERN.match(self.code):
            raise ValueError(f"refusal code {self.code!r} is not of the form domain.what (lower case, dotted)")
        if not 400 <= self.status <= 599:
            raise ValueError(f"refusal {self.code}: status {self.status} is not an error status")

    def __call__(self, reason: str) -> ServiceError:
        return from_code(self.status, reason, self.code)


def check_failed(code: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A contract's own check of a request (a validator) that fails: raise it where a ValueError would go. The error's
    `type` is a stable code (`kpi.target_not_above`), so a page shows its words (gateway/words) as for a refusal;
    `message` is the English line, its `{name}`s filled from `ctx`."""
    if not CODE_PATTERN.match(code):
        raise ValueError(f"check code {code!r} is not of the form domain.what (lower case, dotted)")
    return PydanticCustomError(code, message, {k: str(v) for k, v in ctx.items()})


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
