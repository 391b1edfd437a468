"""Errors as RFC 9457 problem details (application/problem+json), for every way a request can fail."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

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
    code: str | None = None  # the refusal's stable machine-readable code (towntip.kernel.errors)
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


def _served(app: Any) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """(path regex, methods) of every route of the app, read once. FastAPI >= 0.16x keeps included routers as
    nested branches (iter_route_contexts walks them with their prefixes); older ones, a flat list of routes."""
    served = getattr(app.state, "served_methods", None)
    if served is None:
        try:
            from fastapi.routing import iter_route_contexts
        except ImportError:  # FastAPI < 0.16x
            routes: Any = app.router.routes
        else:
            routes = iter_route_contexts(app.router.routes)
        served = app.state.served_methods = [
            (compile_path(r.path)[0], frozenset(r.methods)) for r in routes
            if isinstance(getattr(r, "path", None), str) and getattr(r, "methods", None)]
    return served


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this request's path (RFC 9110 15.5.6: a 405 lists them in Allow).
    Starlette's 405 names only the methods of the first route whose path matched: GET where a PUT route for the
    same path follows it."""
    path, root = request.scope["path"], request.scope.get("root_path", "")
    if root and path.startswith(root + "/"):  # behind a --root-path, routes match the rest (as Starlette's do)
        path = path[len(root):]
    return ", ".join(sorted({m for regex, methods in _served(request.app) if regex.match(path) for m in methods}))


# Addresses of machines (the API, federation, OpenID Connect, health, documents and assets): always a problem.
MACHINE_PATHS = ("/api/", "/federation/", "/oidc/", "/.well-known/", "/openapi.json", "/asyncapi.json", "/healthz",
                 "/docs/assets/", "/metrics")


def wants_page(request: Request) -> bool:
    """A person's browser asking for a page (not the API, not a script): it gets the portal's page for the status
    (`app.state.error_page`, set by the portal) rather than a problem document."""
    return (request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")
            and not request.url.path.startswith(MACHINE_PATHS))


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    page = getattr(request.app.state, "error_page", None)
    if page is not None and exc.status_code in (403, 404, 405) and wants_page(request):
        response: Response = await page(request, exc.status_code)
        return response
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == phrase(exc.status_code):
        detail = None
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request) or headers.get("Allow", "")
    return problem(request, exc.status_code, detail=detail, headers=headers or None,
                   code=errors.generic_code(exc.status_code))


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        {"loc": [p for p in e.get("loc", ())], "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(str(p) for p in i['loc'])}: {i['msg']}" for i in items[:5])
    return problem(
        request, 422, title="Invalid request", type_=TYPE_VALIDATION,
        detail=summary or "the request is not valid", errors=items, code=errors.generic_code(422),
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.ServiceError)
    status = exc.code if 400 <= exc.code <= 599 else 502
    headers = {"Retry-After": "1"} if status == 503 else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    # a plain ServiceError carries the title of a 500 whatever its code (e.g. 413 "the query is too large")
    title = phrase(status) if type(exc) is errors.ServiceError and status != 500 else exc.title
    return problem(request, status, title=title, detail=exc.reason, type_=TYPE_SERVICE, headers=headers,
                   code=exc.error_code)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, detail="an unexpected error occurred; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(errors.ServiceError, _service_error)
    app.add_exception_handler(Exception, _unexpected)
