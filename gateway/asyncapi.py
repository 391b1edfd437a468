"""The node's AsyncAPI 3 document (GET /asyncapi.json): every service's endpoint declarations and event models,
given to the kernel's generator (towntip.kernel.asyncapi)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from towntip.kernel.asyncapi import ServiceDoc, document
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import courses as cc
from towntip.kernel.contracts import donations as dc
from towntip.kernel.contracts import points as pc

# Events of the points service whose payload models are not kernel `Event`s yet: {type name: payload model}
# (points moves to Event models next; then this table goes).
POINTS_EVENTS: dict[str, type[BaseModel]] = {
    "TapRecorded": pc.TapRecorded, "EventDefined": pc.EventDefined,
    "DonationPledged": dc.DonationEvent, "DonationConfirmed": dc.DonationEvent, "DonationCancelled": dc.DonationEvent,
    "CourseDefined": cc.CourseDefined, "CertificationDefined": cc.CertificationDefined,
    "CourseCompleted": cc.CourseCompleted, "CertificationGranted": cc.CertificationGranted,
    "CertificateRevoked": cc.CertificateRevoked,
}


def service_docs(node: str) -> list[ServiceDoc]:
    """Each service's endpoints, declared without starting anything (no database, no NATS)."""
    from identity.handlers import DOMAINS as IDENTITY
    from services.points.handlers import DOMAINS as POINTS
    from services.projects.handlers import DOMAINS as PROJECTS
    from services.sns.handlers import DOMAINS as SNS

    def tables(domains: Any) -> tuple[Any, ...]:
        return tuple(Endpoints.describe(domains).items)

    return [
        ServiceDoc("identity", tables(IDENTITY)),
        ServiceDoc("points", tables(POINTS), events=POINTS_EVENTS),
        ServiceDoc("projects", tables(PROJECTS)),
        ServiceDoc("sns", tables(SNS)),
    ]


@cache
def node_document(node: str, version: str) -> dict[str, Any]:
    return document(service_docs(node), node=node, title=f"TownTip Commons node {node}: the bus", version=version)
