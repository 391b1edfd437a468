"""NATS adapters of donations: the request/reply endpoints (svc.<node>.points.donations.*)."""

from __future__ import annotations

from services.points.donations.service import (
    METHODS,
    add_fund_use,
    cancel,
    certify_project,
    confirm,
    get_rules,
    list_donations,
    list_projects,
    my_donations,
    pledge,
    project_detail,
    put_project,
    put_rules,
    receipt,
)
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import donations as c
from towntip.kernel.uow import UnitOfWork


def add_endpoints(eps: Endpoints, *, tx: UnitOfWork, node: str) -> None:
    @eps.add(c.EP_PROJECT_PUT, c.ProjectPut)
    async def project_put(q: c.ProjectPut) -> c.Project:
        return await tx.write(lambda s, _now: put_project(s, q))

    @eps.add(c.EP_PROJECT_CERTIFY, c.ProjectCertify)
    async def project_certify(q: c.ProjectCertify) -> c.Project:
        return await tx.write(lambda s, _now: certify_project(s, q))

    @eps.add(c.EP_PROJECT_LIST, c.ProjectListQuery)
    async def project_list(q: c.ProjectListQuery) -> c.ProjectList:
        return await tx.read(lambda s: list_projects(s, q))

    @eps.add(c.EP_PROJECT_GET, c.ProjectQuery)
    async def project_get(q: c.ProjectQuery) -> c.ProjectDetail:
        return await tx.read(lambda s: project_detail(s, q.code, q.actor))

    @eps.add(c.EP_FUND_USE_ADD, c.FundUseIn)
    async def fund_use_add(q: c.FundUseIn) -> c.ProjectDetail:
        return await tx.write(lambda s, _now: add_fund_use(s, q))

    @eps.add(c.EP_METHODS)
    async def methods(_: None) -> c.MethodList:
        return c.MethodList(methods=[m.describe() for m in METHODS.values()])

    @eps.add(c.EP_RULES_GET)
    async def rules_get(_: None) -> c.Rules:
        return await tx.read(get_rules)

    @eps.add(c.EP_RULES_PUT, c.RulesPut)
    async def rules_put(q: c.RulesPut) -> c.Rules:
        return await tx.write(lambda s, _now: put_rules(s, q))

    @eps.add(c.EP_PLEDGE, c.PledgeIn)
    async def pledge_ep(q: c.PledgeIn) -> c.Donation:
        return await tx.write(lambda s, _now: pledge(s, q, node))

    @eps.add(c.EP_MINE, c.ActorQuery)
    async def mine(q: c.ActorQuery) -> c.MyDonations:
        return await tx.read(lambda s: my_donations(s, q.actor))

    @eps.add(c.EP_LIST, c.DonationListQuery)
    async def list_ep(q: c.DonationListQuery) -> c.DonationList:
        return await tx.read(lambda s: list_donations(s, q))

    @eps.add(c.EP_CONFIRM, c.DonationAction)
    async def confirm_ep(q: c.DonationAction) -> c.Donation:
        return await tx.write(lambda s, _now: confirm(s, q, node))

    @eps.add(c.EP_CANCEL, c.DonationAction)
    async def cancel_ep(q: c.DonationAction) -> c.Donation:
        return await tx.write(lambda s, _now: cancel(s, q, node))

    @eps.add(c.EP_RECEIPT, c.DonationAction)
    async def receipt_ep(q: c.DonationAction) -> c.ReceiptPdf:
        return await tx.read(lambda s: receipt(s, q, node))
