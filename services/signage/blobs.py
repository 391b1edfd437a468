"""Content bytes in the service's database, in CHUNK_MAX pieces keyed by sha256 (one item's bytes or many items
sharing them). No NATS, no commits."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.signage.models import blobs
from towntip.kernel import db
from towntip.kernel.contracts import signage as c


async def put(session: AsyncSession, data: bytes) -> str:
    """Store the bytes (once per sha256: the same upload twice stores nothing new); returns their sha256."""
    digest = hashlib.sha256(data).hexdigest()
    if (await session.execute(select(blobs.c.seq).where(blobs.c.sha256 == digest).limit(1))).first():
        return digest
    rows = [
        {"sha256": digest, "seq": n, "data": data[off : off + c.CHUNK_MAX]}
        for n, off in enumerate(range(0, max(len(data), 1), c.CHUNK_MAX))
    ]
    ins = db.insert_on_conflict(session, blobs).values(rows).on_conflict_do_nothing()
    await session.execute(ins)
    return digest


async def read(session: AsyncSession, *, sha256: str, offset: int, length: int) -> bytes:
    """`length` bytes from `offset` (fewer at the end)."""
    first, last = offset // c.CHUNK_MAX, (offset + length - 1) // c.CHUNK_MAX
    rows = await session.execute(
        select(blobs.c.seq, blobs.c.data)
        .where(blobs.c.sha256 == sha256, blobs.c.seq.between(first, last))
        .order_by(blobs.c.seq)
    )
    joined = b"".join(r.data for r in rows)
    start = offset - first * c.CHUNK_MAX
    return joined[start : start + length]


async def whole(session: AsyncSession, sha256: str) -> bytes:
    rows = await session.execute(select(blobs.c.data).where(blobs.c.sha256 == sha256).order_by(blobs.c.seq))
    return b"".join(r.data for r in rows)
