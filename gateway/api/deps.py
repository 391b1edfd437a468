"""What routes need from the app: the NATS connection, the settings, and who is calling."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from nats.aio.client import Client as NATS

from towntip.kernel import errors
from towntip.kernel.settings import GatewaySettings

bearer = HTTPBearer(auto_error=False, description="An access token of the node's OpenID provider (a person; "
                    "/api/v1 routes generated from the services' tables), or the node's admin token (staff tools)")


def settings(request: Request) -> GatewaySettings:
    return request.app.state.settings


def nats(request: Request) -> NATS:
    nc: NATS | None = getattr(request.app.state, "nc", None)
    if nc is None or not nc.is_connected:
        raise errors.Unavailable("the gateway is not connected to the node's message bus")
    return nc


def require_staff(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> str:
    """Staff only: Authorization: Bearer <admin token>. No token configured means nobody is staff."""
    expected: str = request.app.state.settings.admin_token
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "a staff bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    if not expected or not hmac.compare_digest(creds.credentials.encode(), expected.encode()):
        raise HTTPException(
            401, "the bearer token is not valid", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return "staff"


Settings = Annotated[GatewaySettings, Depends(settings)]
Nats = Annotated[NATS, Depends(nats)]
Staff = Annotated[str, Depends(require_staff)]
