"""The API's documentation pages, served whole by the node: Swagger UI at /docs with its script, style and icon from
the `fastapi-swagger` package (Swagger UI 5, which reads the OpenAPI 3.1 document FastAPI makes), so that the page
works on a municipality's closed network, where a public CDN is out of reach. FastAPI's own /docs and /redoc (which
load their code from cdn.jsdelivr.net) are switched off in gateway/app.py."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response

router = APIRouter(include_in_schema=False)
ASSETS = {  # name in the URL: (file of the package, media type)
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "favicon.png": ("favicon-32x32.png", "image/png"),
}
_cache: dict[str, bytes] = {}


def asset(name: str) -> bytes:
    if name not in _cache:
        _cache[name] = (resources.files("fastapi_swagger") / "resources" / ASSETS[name][0]).read_bytes()
    return _cache[name]


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=str(request.app.openapi_url), title=f"{request.app.title} — API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js", swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon.png",
        swagger_ui_parameters={"filter": True, "displayRequestDuration": True, "defaultModelsExpandDepth": 0})


@router.get("/docs/assets/{name}")
async def swagger_asset(name: str) -> Response:
    if name not in ASSETS:
        raise HTTPException(status_code=404)
    return Response(asset(name), media_type=ASSETS[name][1],
                    headers={"Cache-Control": "public, max-age=86400"})
