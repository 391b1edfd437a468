"""The node's AsyncAPI 3 document (GET /asyncapi.json): every service's endpoint declarations and event models,
given to the kernel's generator (towntip.kernel.asyncapi)."""

from __future__ import annotations

from functools import cache
from typing import Any

from gateway.asyncapi_screens import screen_protocol
from towntip.kernel.asyncapi import ServiceDoc, document
from towntip.kernel.bus.endpoints import Endpoints


def service_docs(node: str) -> list[ServiceDoc]:
    """Each service's endpoints, declared without starting anything (no database, no NATS)."""
    from identity.handlers import DOMAINS as IDENTITY
    from services.bookings.handlers import DOMAINS as BOOKINGS
    from services.notices.handlers import DOMAINS as NOTICES
    from services.points.handlers import DOMAINS as POINTS
    from services.projects.handlers import DOMAINS as PROJECTS
    from services.signage.handlers import DOMAINS as SIGNAGE
    from services.sns.handlers import DOMAINS as SNS

    def tables(domains: Any) -> tuple[Any, ...]:
        return tuple(Endpoints.describe(domains).items)

    return [
        ServiceDoc("identity", tables(IDENTITY)),
        ServiceDoc("points", tables(POINTS)),
        ServiceDoc("projects", tables(PROJECTS)),
        ServiceDoc("sns", tables(SNS)),
        ServiceDoc("bookings", tables(BOOKINGS)),
        ServiceDoc("notices", tables(NOTICES)),
        ServiceDoc("signage", tables(SIGNAGE)),
    ]


@cache
def node_document(node: str, version: str) -> dict[str, Any]:
    doc = document(service_docs(node), node=node, title=f"TownTip Commons node {node}: the bus", version=version)
    screens = screen_protocol(node)  # the signage screens' own subjects (gateway/asyncapi_screens.py)
    for part in ("channels", "operations"):
        doc[part] = dict(sorted({**doc[part], **screens[part]}.items()))
    for part in ("messages", "schemas"):
        doc["components"][part].update(screens[part])
    return doc
