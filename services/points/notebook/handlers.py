"""NATS adapters of the まちづくり手帳 (notebook) and the staff's figures: the request/reply endpoints."""

from __future__ import annotations

import asyncio

from services.points.notebook import figures
from services.points.notebook import service as notebook
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import notebook as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.uow import UnitOfWork


def add_endpoints(eps: Endpoints, *, tx: UnitOfWork, node: str) -> None:
    """Each notebook request links the actor in the directory (a small write)."""

    async def mine_(actor: Actor) -> c.Notebook:
        return await tx.write(lambda s, _now: notebook.notebook(s, actor=actor, node=node))

    @eps.add(c.EP_NOTEBOOK_MINE, c.NotebookQuery)
    async def mine(q: c.NotebookQuery) -> c.Notebook:
        return await mine_(q.actor)

    @eps.add(c.EP_NOTEBOOK_EXPORT, c.NotebookExportIn)
    async def export_(q: c.NotebookExportIn) -> c.Export:
        # The PDF takes a while on a long notebook: in a thread, so taps keep flowing meanwhile.
        return await asyncio.to_thread(notebook.export, await mine_(q.actor), q)

    @eps.add(c.EP_FIGURES, c.FiguresQuery)
    async def figures_(q: c.FiguresQuery) -> c.Figures:
        notebook.staff_only(q.actor)
        return await tx.read(figures.summary)

    @eps.add(c.EP_FIGURES_EXPORT, c.FiguresExportIn)
    async def figures_export(q: c.FiguresExportIn) -> c.Export:
        notebook.staff_only(q.actor)
        return figures.export(await tx.read(figures.summary), q)
