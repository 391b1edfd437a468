"""The endpoint table of the まちづくり手帳 (notebook) and the staff's figures."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from services.points.notebook import figures
from services.points.notebook import service as notebook
from towntip.kernel.contracts import notebook as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.domain import GET, SERVICE, SIGNED_IN, STAFF, Domain, own, read, write
from towntip.kernel.uow import UnitOfWork


async def mine(*, session: AsyncSession, actor: Actor, node: str) -> c.Notebook:
    """A write: each notebook request links the actor in the directory (a small write)."""
    return await notebook.notebook(session, actor=actor, node=node)


async def export(*, uow: UnitOfWork, data: c.NotebookExportIn, node: str) -> c.Export:
    """The notebook in its own short transaction; then the file, made in a thread (a PDF of a long notebook takes a
    while: taps and other writes keep flowing meanwhile)."""
    nb = await uow.write(lambda session, _now: notebook.notebook(session, actor=data.actor, node=node,
                                                                 empathy=data.empathy))
    return await asyncio.to_thread(notebook.export, nb, data)


async def summary(*, session: AsyncSession, actor: Actor) -> c.Figures:
    notebook.staff_only(actor)
    return await figures.summary(session)


async def figures_export(*, session: AsyncSession, data: c.FiguresExportIn) -> c.Export:
    notebook.staff_only(data.actor)
    return figures.export(await figures.summary(session), data)


async def districts(*, session: AsyncSession) -> c.DistrictFigures:
    """Totals per district for another service of the node (NATS permissions: natsauth's SERVICE_CALLS)."""
    whole = await figures.summary(session)
    rows = [d for d in whole.districts if d.district]
    rows.sort(key=lambda d: (-d.points, d.district))
    return c.DistrictFigures(
        districts=[
            c.DistrictTotal(district=d.district, points=d.points, participations=d.participations) for d in rows
        ],
        points=whole.points,
    )


DOMAIN = Domain("notebook", refusals=(c.FIGURES_STAFF_ONLY,), ops=(
    # A write for the service (the actor is linked in the directory), a read for the caller: GET.
    write(c.EP_NOTEBOOK_MINE, c.NotebookQuery, c.Notebook, mine, role=SIGNED_IN,
          http=GET("/notebook", "My まちづくり手帳 (notebook)")),
    own(c.EP_NOTEBOOK_EXPORT, c.NotebookExportIn, c.Export, export, role=SIGNED_IN),
    read(c.EP_FIGURES, c.FiguresQuery, c.Figures, summary, role=STAFF,
         http=GET("/figures", "The staff's figures from every notebook")),
    read(c.EP_FIGURES_EXPORT, c.FiguresExportIn, c.Export, figures_export, role=STAFF),
    read(c.EP_FIGURES_DISTRICTS, c.DistrictFiguresQuery, c.DistrictFigures, districts, role=SERVICE),
))
