"""The endpoint table of donations (svc.<node>.points.donations.*)."""

from __future__ import annotations

from services.points.donations import service as donations
from towntip.kernel.contracts import donations as c
from towntip.kernel.domain import ANYONE, GET, SIGNED_IN, STAFF, Domain, read, write


async def methods() -> c.MethodList:
    return c.MethodList(methods=[m.describe() for m in donations.METHODS.values()])


DOMAIN = Domain("donations", refusals=(
    c.DONATION_UNKNOWN_METHOD, c.DONATION_STAFF_ONLY, c.DONATION_PROJECT_NOT_FOUND, c.DONATION_OVER_BALANCE,
    c.DONATION_NO_REFERENCE, c.DONATION_PROJECT_NOT_CERTIFIED, c.DONATION_PROJECT_CLOSED, c.DONATION_NOT_FOUND,
    c.DONATION_ALREADY_SETTLED, c.DONATION_WRONG_CONFIRMATION, c.DONATION_NOT_CANCELLABLE,
    c.DONATION_RECEIPT_NOT_READY,
), ops=(
    write(c.EP_PROJECT_PUT, c.ProjectPut, c.Project, donations.put_project, role=STAFF),
    write(c.EP_PROJECT_CERTIFY, c.ProjectCertify, c.Project, donations.certify_project, role=STAFF),
    read(c.EP_PROJECT_LIST, c.ProjectListQuery, c.ProjectList, donations.list_projects, role=ANYONE,
         http=GET("/donations/projects", "Certified projects that take donations")),
    read(c.EP_PROJECT_GET, c.ProjectQuery, c.ProjectDetail, donations.project_detail, role=ANYONE,
         http=GET("/donations/projects/{code}", "One project: donations raised and how they were used")),
    write(c.EP_FUND_USE_ADD, c.FundUseIn, c.ProjectDetail, donations.add_fund_use, role=STAFF),
    read(c.EP_METHODS, None, c.MethodList, methods, role=ANYONE),
    read(c.EP_RULES_GET, None, c.Rules, donations.get_rules, role=ANYONE),
    write(c.EP_RULES_PUT, c.RulesPut, c.Rules, donations.put_rules, role=STAFF),
    write(c.EP_PLEDGE, c.PledgeIn, c.Donation, donations.pledge, role=SIGNED_IN),
    read(c.EP_MINE, c.ActorQuery, c.MyDonations, donations.my_donations, role=SIGNED_IN),
    read(c.EP_LIST, c.DonationListQuery, c.DonationList, donations.list_donations, role=STAFF),
    write(c.EP_CONFIRM, c.DonationAction, c.Donation, donations.confirm, role=STAFF),
    write(c.EP_CANCEL, c.DonationAction, c.Donation, donations.cancel, role=STAFF),
    read(c.EP_RECEIPT, c.DonationAction, c.ReceiptPdf, donations.receipt, role=SIGNED_IN),
))
