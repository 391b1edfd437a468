"""Contracts of donations (寄附) to certified projects: svc.<node>.points.donations.* (the points service).

Certified projects (認定プロジェクト) are registered and certified by staff; a person pledges an amount in yen with a
payment method; staff confirm the payment (at the counter, on their page, or by the donor's card touched on a
terminal in donation mode); the confirmation awards まちづくりポイント once and numbers a receipt (寄附金受領証明書).
Money is integer yen. Staff requests carry an `Actor` with the role "staff"; a person sees only their own donations.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from towntip.kernel import categories
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.points import PointsEvent
from towntip.kernel.errors import Refusal, check_failed

SERVICE = "points"
EP_PROJECT_PUT = "donations.projects.put"  # ProjectPut -> Project (staff: create or change)
EP_PROJECT_CERTIFY = "donations.projects.certify"  # ProjectCertify -> Project (staff)
EP_PROJECT_LIST = "donations.projects.list"  # ProjectListQuery -> ProjectList (public: certified only)
EP_PROJECT_GET = "donations.projects.get"  # ProjectQuery -> ProjectDetail (the transparency page)
EP_FUND_USE_ADD = "donations.fund_uses.add"  # FundUseIn -> ProjectDetail (staff)
EP_METHODS = "donations.methods"  # {} -> MethodList
EP_PLEDGE = "donations.pledge"  # PledgeIn -> Donation (a logged-in person)
EP_MINE = "donations.mine"  # ActorQuery -> MyDonations
EP_LIST = "donations.list"  # DonationListQuery -> DonationList (staff)
EP_CONFIRM = "donations.confirm"  # DonationAction -> Donation (staff)
EP_CANCEL = "donations.cancel"  # DonationAction -> Donation (staff)
EP_RECEIPT = "donations.receipt"  # DonationAction -> ReceiptPdf (the donor or staff)
EP_RULES_GET = "donations.rules.get"  # {} -> Rules
EP_RULES_PUT = "donations.rules.put"  # RulesPut -> Rules (staff)

MAX_YEN = 100_000_000  # one pledge, one use of funds: at most 1億円
MAX_GOAL = 10_000_000_000

_IN = ConfigDict(extra="forbid", frozen=True)
ProjectCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{1,31}$")]
Reference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,16}$", to_upper=True, strip_whitespace=True)]
MethodCode = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,31}$")]
Yen = Annotated[int, Field(strict=True, ge=1, le=MAX_YEN)]  # 1.5, "3", 0 and negatives are refused, not rounded


def _text(max_length: int, min_length: int = 1) -> type[str]:
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length,  # type: ignore[return-value]
                                            strip_whitespace=True)]


Status = Literal["pledged", "confirmed", "cancelled"]


class ProjectPut(BaseModel):
    model_config = _IN
    actor: Actor
    code: ProjectCode
    title: _text(200)  # type: ignore[valid-type]
    organisation: _text(200)  # type: ignore[valid-type]
    description: _text(4000, 0) = ""  # type: ignore[valid-type]
    field: str
    goal_yen: Annotated[int, Field(strict=True, ge=0, le=MAX_GOAL)] = 0  # 0: no goal
    open: bool = True  # takes donations (once certified)

    @field_validator("field")
    @classmethod
    def _known_field(cls, v: str) -> str:
        if v not in categories.codes():
            raise check_failed("category.unknown",
                               "unknown field {value}: one of the category grid's codes (npo-<n>, pib-<n>)",
                               value=repr(v))
        return v


class ProjectCertify(BaseModel):
    model_config = _IN
    actor: Actor
    code: ProjectCode
    certified: bool = True  # False withdraws the certification (no new pledges)


class ProjectListQuery(BaseModel):
    model_config = _IN
    actor: Actor | None = None
    include_uncertified: bool = False  # staff only


class ProjectQuery(BaseModel):
    model_config = _IN
    code: ProjectCode
    actor: Actor | None = None


class Project(Frozen):
    code: str
    title: str
    organisation: str
    description: str
    field: str
    goal_yen: int
    open: bool
    certified: bool
    certified_at: datetime | None = None
    raised_yen: int = 0  # confirmed donations only
    donors: int = 0  # distinct people with a confirmed donation
    takes_donations: bool = False  # certified and open


class ProjectList(Frozen):
    projects: list[Project]


class FundUseIn(BaseModel):
    model_config = _IN
    actor: Actor
    project: ProjectCode
    used_on: date
    amount_yen: Yen
    description: _text(500)  # type: ignore[valid-type]


class FundUse(Frozen):
    id: str
    used_on: date
    amount_yen: int
    description: str
    recorded_at: datetime


class ProjectDetail(Frozen):
    """What the transparency page shows: raised (confirmed only), donors, goal, the use of funds, the balance."""

    project: Project
    uses: list[FundUse]
    used_yen: int
    balance_yen: int  # raised - used
    pending_yen: int = 0  # pledged, not yet confirmed (staff only; 0 for others)


class Method(Frozen):
    code: str
    name_ja: str
    name_en: str
    confirmed_by: Literal["staff", "provider"]
    channels: list[str]  # how a confirmation may come: "staff" (their page), "terminal" (the donor's card)
    instructions_ja: str
    instructions_en: str


class MethodList(Frozen):
    methods: list[Method]


class PledgeIn(BaseModel):
    model_config = _IN
    actor: Actor
    project: ProjectCode
    amount_yen: Yen
    method: MethodCode
    donor_name: _text(100, 0) = ""  # type: ignore[valid-type]  # the name on the receipt; the display name if empty
    # The address on the receipt (寄附金受領証明書 names the donor by address and name, as a tax deduction needs);
    # optional, kept only for the receipt (see services/points/donations/models.py), never shown in lists.
    donor_address: _text(300, 0) = ""  # type: ignore[valid-type]


class ActorQuery(BaseModel):
    model_config = _IN
    actor: Actor


class DonationListQuery(BaseModel):
    model_config = _IN
    actor: Actor
    status: Status | None = None
    project: ProjectCode | None = None


class DonationAction(BaseModel):
    model_config = _IN
    actor: Actor
    reference: Reference
    reason: _text(200, 0) = ""  # type: ignore[valid-type]  # why it was cancelled


class Donation(Frozen):
    id: str
    reference: str  # D-XXXXXX: shown at the counter, written on the transfer
    project: str
    project_title: str
    person: str
    donor_name: str
    amount_yen: int
    method: str
    status: Status
    pledged_at: datetime
    confirmed_at: datetime | None = None
    confirmed_via: str | None = None  # staff | terminal
    cancelled_at: datetime | None = None
    cancel_reason: str = ""
    points: int = 0  # まちづくりポイント awarded on confirmation
    receipt_no: str | None = None


class DonationList(Frozen):
    donations: list[Donation]


class MyDonations(Frozen):
    donations: list[Donation]
    confirmed_yen: int
    points: int  # points earned by donating


class ReceiptPdf(Frozen):
    receipt_no: str
    filename: str
    pdf_base64: str


class Rules(Frozen):
    points_per_1000_yen: int
    issuer_name: str  # the municipality on receipts (the node id if empty)
    bank_account: str  # shown with bank transfer instructions
    updated_at: datetime | None = None


class RulesPut(BaseModel):
    model_config = _IN
    actor: Actor
    points_per_1000_yen: Annotated[int, Field(strict=True, ge=0, le=1000)]
    issuer_name: _text(100, 0) = ""  # type: ignore[valid-type]
    bank_account: _text(300, 0) = ""  # type: ignore[valid-type]


# ---- events: evt.<node>.points.donation_pledged / _confirmed / _cancelled (one payload, three facts) -------------


class DonationEvent(PointsEvent):
    """What every donation event says: the donation as it stands after the fact."""

    IS_EVENT: ClassVar[bool] = False  # the shared payload; the three events below are on the stream

    reference: str
    project: str
    person: str
    amount_yen: int
    method: str
    status: Status
    points: int = 0
    receipt_no: str | None = None


class DonationPledged(DonationEvent):
    """A person pledged a donation (status pledged)."""


class DonationConfirmed(DonationEvent):
    """Staff, a payment or the donor's card at a terminal confirmed it (its points and receipt number set)."""


class DonationCancelled(DonationEvent):
    """Staff cancelled a pledge not yet confirmed."""


# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

DONATION_UNKNOWN_METHOD = Refusal("donation.unknown_method", 422, "no such payment method")
DONATION_STAFF_ONLY = Refusal("donation.staff_only", 403, "only the node's staff may do this")
DONATION_PROJECT_NOT_FOUND = Refusal("donation.project_not_found", 404, "no such certified project")
DONATION_OVER_BALANCE = Refusal("donation.over_balance", 422,
                                "a fund use above what confirmed donations left for the project")
DONATION_NO_REFERENCE = Refusal("donation.no_free_reference", 503, "no free reference number was found: try again")
DONATION_PROJECT_NOT_CERTIFIED = Refusal("donation.project_not_certified", 422,
                                         "the project is not certified: it takes no donations")
DONATION_PROJECT_CLOSED = Refusal("donation.project_closed", 422, "the project takes no more donations")
DONATION_NOT_FOUND = Refusal("donation.not_found", 404, "no donation under that reference")
DONATION_ALREADY_SETTLED = Refusal("donation.already_settled", 409, "the donation is confirmed or cancelled already")
DONATION_WRONG_CONFIRMATION = Refusal("donation.wrong_confirmation", 422,
                                      "the donation's payment method is not confirmed this way")
DONATION_NOT_CANCELLABLE = Refusal("donation.not_cancellable", 409, "only a pledge not yet confirmed is cancelled")
DONATION_RECEIPT_NOT_READY = Refusal("donation.receipt_not_ready", 409,
                                     "a receipt is issued once the donation is confirmed")
DONATION_CARD_NOT_DONORS = Refusal("donation.card_not_donors", 403,
                                   "the card is not registered to the person who pledged")
