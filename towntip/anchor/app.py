"""The trust anchor's HTTP face (FastAPI): its entity configuration, fetch and list endpoints. It makes no
requests of its own: a fetch is answered from the keys pinned at enrolment."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse, Response

from towntip.anchor.anchor import REPIN_HINT, TrustAnchor
from towntip.kernel.trust import WELL_KNOWN, TrustError

log = logging.getLogger(__name__)

DEFAULT_PORT = 8900  # python -m towntip.anchor and `towntip federation anchor serve`


def anchor_app(anchor: TrustAnchor) -> FastAPI:
    """The anchor's configuration, fetch and list endpoints, answered from `anchor` (read per request)."""
    app = FastAPI(title="TownTip trust anchor", docs_url=None, redoc_url=None)
    media = "application/entity-statement+jwt"
    for entity in anchor.unpinned():
        log.warning("member %s has no pinned keys and is not vouched for: %s", entity,
                    REPIN_HINT.format(entity=entity))

    @app.get(WELL_KNOWN)
    async def configuration() -> Response:
        return Response(anchor.configuration(), media_type=media)

    @app.get("/federation/fetch")
    async def fetch(sub: str = Query(max_length=500)) -> Response:
        reason = "not a member of this federation"
        try:
            statement = anchor.subordinate(sub)
        except TrustError as exc:
            log.warning("%s", exc)
            statement, reason = None, str(exc)
        if statement is None:
            return JSONResponse({"error": "not_found", "error_description": reason}, status_code=404)
        return Response(statement, media_type=media)

    @app.get("/federation/list")
    async def members() -> list[str]:
        return sorted(anchor.pinned())

    return app


def serve(data_dir: Path, entity_id: str, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve the anchor over HTTP until interrupted (`python -m towntip.anchor`, `towntip federation anchor
    serve`): its key is made on first start; its members are whatever the operator enrolled."""
    import uvicorn

    uvicorn.run(anchor_app(TrustAnchor(data_dir, entity_id)), host=host, port=port, log_level="info")
