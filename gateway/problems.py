"""Errors as RFC 9457 problem details (application/problem+json), for every way a request can fail."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from towntip.kernel import errors

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
TYPE_VALIDATION = "urn:towntip:problem:validation-error"
TYPE_SERVICE = "urn:towntip:problem:service-error"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(
    request: Request,
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or phrase(status),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for problem replies."""
    return {
        code: {
            "model": Problem,
            "description": phrase(code),
            "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }


def fix_openapi(doc: dict[str, Any]) -> dict[str, Any]:
    """Problem responses are application/problem+json only (FastAPI also lists application/json)."""
    for path in doc.get("paths", {}).values():
        for op in path.values():
            for resp in (op.get("responses") or {}).values() if isinstance(op, dict) else ():
                content = resp.get("content") or {}
                if MEDIA_TYPE in content:
                    content.pop("application/json", None)
    return doc


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if detail == phrase(exc.status_code):
        detail = None
    return problem(request, exc.status_code, detail=detail, headers=dict(exc.headers or {}) or None)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        {"loc": [p for p in e.get("loc", ())], "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(str(p) for p in i['loc'])}: {i['msg']}" for i in items[:5])
    return problem(
        request, 422, title="Invalid request", type_=TYPE_VALIDATION,
        detail=summary or "the request is not valid", errors=items,
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServiceError)
    status = exc.code if 400 <= exc.code <= 599 else 502
    headers = {"Retry-After": "1"} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return problem(request, status, title=exc.title, detail=exc.reason, type_=TYPE_SERVICE, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, detail="an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(errors.ServiceError, _service_error)
    app.add_exception_handler(Exception, _unexpected)
