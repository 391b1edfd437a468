"""Contracts of certified courses (認定講座), credits (単位), certifications (修了資格) and their certificates, served
by the points service (svc.<node>.points.courses.*, certifications.*, certificates.*).

Who may do what (the service decides, from the `Actor` the gateway puts in the request):
- staff (`actor.has("staff")`): define courses and certifications, record completions, list and revoke certificates;
- a person: reads their own credits and certificates only (`courses.mine` answers for `actor.user_id`, nothing else);
- anyone: the course and certification lists, a certificate's public page, verification of a pasted token, the JWKS.
  These reveal only what a certificate itself states (name, certification, date, node, id) and whether it stands.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from towntip.kernel import categories
from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.points import PointsEvent
from towntip.kernel.errors import Refusal, check_failed

EP_COURSE_PUT = "courses.put"  # CourseIn -> Course (staff)
EP_COURSE_LIST = "courses.list"  # {} -> CourseList (anyone)
EP_COURSE_GET = "courses.get"  # CodeQuery -> Course
EP_COURSE_COMPLETE = "courses.complete"  # CompletionIn -> CompletionOut (staff)
EP_COURSE_COMPLETIONS = "courses.completions"  # CompletionsQuery -> CompletionList (staff)
EP_COURSE_MINE = "courses.mine"  # MineQuery -> MyCredits (the person themselves)
EP_CERTIFICATION_PUT = "certifications.put"  # CertificationIn -> Certification (staff)
EP_CERTIFICATION_LIST = "certifications.list"  # {} -> CertificationList (anyone)
EP_CERTIFICATE_GET = "certificates.get"  # CertificateQuery -> CertificateView (anyone; the token for owner/staff)
EP_CERTIFICATE_VERIFY = "certificates.verify"  # VerifyIn -> Verification (anyone)
EP_CERTIFICATE_JWKS = "certificates.jwks"  # {} -> JWKS (anyone)
EP_CERTIFICATE_LIST = "certificates.list"  # CertificateListQuery -> CertificateList (staff)
EP_CERTIFICATE_REVOKE = "certificates.revoke"  # RevokeIn -> CertificateView (staff)

# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

COURSE_CLASH = Refusal("course.clash", 409, "changed by someone else at the same moment: try again")
COURSE_STAFF_ONLY = Refusal("course.staff_only", 403, "only the node's staff may do this")
COURSE_NOT_FOUND = Refusal("course.not_found", 404, "no such course")
CERTIFICATION_UNKNOWN_COURSES = Refusal("certification.unknown_courses", 422,
                                        "a certification names courses that are not defined")
CERTIFICATE_NOT_FOUND = Refusal("certificate.not_found", 404, "no such certificate")
CERTIFICATE_ALREADY_REVOKED = Refusal("certificate.already_revoked", 409, "the certificate is revoked already")

ASSET_CREDIT = "credit"  # the ledger's asset for 単位
CERT_TYP = "towntip-certificate+jws"  # the JWS header's typ
MAX_TOKEN = 4096

_IN = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Description = Annotated[str, StringConstraints(max_length=4000)]
Reason = Annotated[str, StringConstraints(min_length=2, max_length=500)]
CertificateId = Annotated[str,
                          StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")]
# Whom staff name: a global handle (name@node), a handle of this node (name), or the identity service's user id.
PersonRef = Annotated[str, StringConstraints(
    to_lower=True, pattern=r"^([a-z0-9][a-z0-9_]{2,29}(@[a-z][a-z0-9-]{0,30}[a-z0-9])?|[0-9a-f-]{36})$")]


def _field(v: str) -> str:
    if v not in categories.codes():
        raise check_failed("category.unknown", "unknown field {value} (a category code such as npo-1 or pib-1)",
                           value=repr(v))
    return v


def _fields(v: list[str]) -> list[str]:
    for f in v:
        _field(f)
    return sorted(set(v))


Field_ = Annotated[str, AfterValidator(_field)]
Fields = Annotated[list[str], Field(max_length=43), AfterValidator(_fields)]


class CourseIn(BaseModel):
    """A certified course (認定講座): finishing it grants `credits` 単位, once per person."""

    model_config = _IN
    actor: Actor
    code: Code
    title: Title
    description: Description = ""
    field: Field_
    credits: int = Field(ge=1, le=100, strict=True)
    starts_on: date | None = None
    ends_on: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> CourseIn:
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            raise check_failed("period.ends_before_start", "ends_on is before starts_on")
        return self


class Course(Frozen):
    code: str
    title: str
    description: str
    field: str
    credits: int
    starts_on: date | None
    ends_on: date | None
    completions: int = 0
    updated_at: datetime


class CourseList(Frozen):
    courses: list[Course]


class CodeQuery(BaseModel):
    model_config = _IN
    code: Code


class CertificationIn(BaseModel):
    """A certification (修了資格): granted once a person's counted credits reach `credits_required`. Credits count
    from courses in `courses` (if given) whose field is in `fields` (if given); both empty: every course."""

    model_config = _IN
    actor: Actor
    code: Code
    title: Title
    description: Description = ""
    credits_required: int = Field(ge=1, le=1000, strict=True)
    fields: Fields = []
    courses: Annotated[list[Code], Field(max_length=100)] = []


class Certification(Frozen):
    code: str
    title: str
    description: str
    credits_required: int
    fields: list[str]
    courses: list[str]
    granted: int = 0
    updated_at: datetime


class CertificationList(Frozen):
    certifications: list[Certification]


class KnownPerson(BaseModel):
    """Who `person` is, as the identity service answered the gateway (people.lookup, for staff): lets the points
    service credit at once. Without it, a handle not yet seen here waits until the person opens マイ単位."""

    model_config = _IN
    user_id: Annotated[str, StringConstraints(min_length=8, max_length=64)]
    global_handle: GlobalHandle
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class CompletionIn(BaseModel):
    model_config = _IN
    actor: Actor
    course: Code
    person: PersonRef
    known: KnownPerson | None = None
    completed_on: date | None = None  # default: today (Japan)

    @model_validator(mode="after")
    def _same_person(self) -> CompletionIn:
        if self.known is not None and self.person not in (self.known.global_handle, self.known.user_id):
            raise ValueError("known is someone else than person")
        return self


class Completion(Frozen):
    id: str
    course: str
    person_ref: str  # what staff entered
    person: str | None  # person:<user id> once known
    global_handle: str | None
    display_name: str | None
    credits: int
    completed_on: date
    recorded_at: datetime
    recorded_by: str
    status: Literal["credited", "pending"]  # pending: the person has not been seen at this node's portal yet
    journal_key: str | None


class CompletionOut(Frozen):
    status: Literal["credited", "pending", "duplicate"]
    completion: Completion
    certificates: list[CertificateView] = []  # certifications this completion earned


class CompletionsQuery(BaseModel):
    model_config = _IN
    actor: Actor
    course: Code | None = None


class CompletionList(Frozen):
    completions: list[Completion]


class MineQuery(BaseModel):
    model_config = _IN
    actor: Actor


class Progress(Frozen):
    certification: str
    title: str
    counted: int
    required: int
    certificate_id: str | None


class MyCredits(Frozen):
    person: str
    credits: int  # the ledger's `credit` balance of person:<user id>
    completions: list[Completion]
    progress: list[Progress]
    certificates: list[CertificateView]


class CertificateQuery(BaseModel):
    model_config = _IN
    id: CertificateId
    actor: Actor | None = None  # the owner or staff also get the signed token


class CertificateView(Frozen):
    """What a certificate states, and whether it stands. `token` only for its holder and staff."""

    id: str
    certification: str
    title: str
    name: str  # the holder's display name when it was issued
    global_handle: str
    credits: int
    issued_at: datetime
    issued_on: date  # in Japan
    node: str
    kid: str
    status: Literal["valid", "revoked"]
    revoked_at: datetime | None = None
    revoke_reason: str | None = None  # staff only
    token: str | None = None


class VerifyIn(BaseModel):
    model_config = _IN
    token: Annotated[str, StringConstraints(min_length=10, max_length=MAX_TOKEN)]


class Verification(Frozen):
    """`status`: valid (signature good, issued here, not revoked), revoked, invalid (bad signature, malformed, not
    this node's key, or no such certificate here)."""

    status: Literal["valid", "revoked", "invalid"]
    reason: str = ""
    certificate: CertificateView | None = None


class JWKS(Frozen):
    keys: list[dict[str, str]]


class CertificateListQuery(BaseModel):
    model_config = _IN
    actor: Actor


class CertificateList(Frozen):
    certificates: list[CertificateView]


class RevokeIn(BaseModel):
    model_config = _IN
    actor: Actor
    id: CertificateId
    reason: Reason


# ---- events (evt.<node>.points.<type>) -------------------------------------------------------------------------


class CourseDefined(PointsEvent):
    code: str
    title: str
    field: str
    credits: int


class CertificationDefined(PointsEvent):
    code: str
    title: str
    credits_required: int
    fields: list[str]
    courses: list[str]


class CourseCompleted(PointsEvent):
    course: str
    person: str  # person:<user id>
    credits: int
    journal_key: str
    completed_on: date


class CertificationGranted(PointsEvent):
    certificate_id: str
    certification: str
    person: str
    issued_at: datetime


class CertificateRevoked(PointsEvent):
    certificate_id: str
    certification: str
    revoked_at: datetime


CompletionOut.model_rebuild()
MyCredits.model_rebuild()
