"""OpenID Connect clients of this provider: added, listed and removed by the node's operator (admin CLI)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from identity.accounts import aware, digest, new_secret
from identity.models import oauth_clients, oauth_codes, oauth_refresh_tokens
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import identity as c


def to_client(row: Any, secret: str = "") -> c.Client:
    return c.Client(
        client_id=row.client_id, name=row.name, redirect_uris=list(row.redirect_uris),
        post_logout_redirect_uris=list(row.post_logout_redirect_uris), public=row.secret_hash is None,
        scope=row.scope, created_at=aware(row.created_at), client_secret=secret,
    )


async def add_client(session: AsyncSession, *, data: c.ClientAddIn) -> c.Client:
    """A confidential client gets a secret, shown once in the answer and stored only as its hash."""
    exists = (await session.execute(
        select(oauth_clients.c.client_id).where(oauth_clients.c.client_id == data.client_id))).first()
    if exists:
        raise c.CLIENT_EXISTS(f"client {data.client_id!r} exists")
    if "openid" not in data.scope.split():
        raise c.CLIENT_OPENID_REQUIRED("the client's scope must include openid")
    secret = "" if data.public else new_secret()
    row = {
        "client_id": data.client_id, "name": data.name or data.client_id,
        "secret_hash": digest(secret) if secret else None, "redirect_uris": data.redirect_uris,
        "post_logout_redirect_uris": data.post_logout_redirect_uris, "scope": data.scope, "created_at": utcnow(),
    }
    await session.execute(oauth_clients.insert().values(**row))
    return to_client((await session.execute(
        select(oauth_clients).where(oauth_clients.c.client_id == data.client_id))).one(), secret)


async def list_clients(session: AsyncSession) -> list[c.Client]:
    return [to_client(r) for r in await session.execute(select(oauth_clients).order_by(oauth_clients.c.client_id))]


async def remove_client(session: AsyncSession, *, client_id: str) -> None:
    """The client and every code and refresh token it holds: its logged-in users are logged out of it."""
    for table in (oauth_codes, oauth_refresh_tokens):
        await session.execute(delete(table).where(table.c.client_id == client_id))
    result = await session.execute(delete(oauth_clients).where(oauth_clients.c.client_id == client_id))
    if not db.rowcount(result):
        raise c.CLIENT_NOT_FOUND(f"no client {client_id!r}")
