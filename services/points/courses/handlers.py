"""The endpoint table of courses, certifications and certificates (svc.<node>.points.courses.*, certifications.*,
certificates.*; contracts: towntip.kernel.contracts.courses). A write whose keys clash with a concurrent one's even
when run again answers `course.clash` (409: try again)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.points.courses import service as courses
from towntip.kernel.contracts import courses as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.domain import ANYONE, SIGNED_IN, STAFF, Domain, read, write


async def list_courses(*, session: AsyncSession) -> c.CourseList:
    return c.CourseList(courses=await courses.list_courses(session))


async def list_completions(*, session: AsyncSession, q: c.CompletionsQuery) -> c.CompletionList:
    return c.CompletionList(completions=await courses.list_completions(session, q))


async def list_certifications(*, session: AsyncSession) -> c.CertificationList:
    return c.CertificationList(certifications=await courses.list_certifications(session))


async def list_certificates(*, session: AsyncSession, actor: Actor) -> c.CertificateList:
    return c.CertificateList(certificates=await courses.list_certificates(session, actor))


DOMAIN = Domain("courses", refusals=(
    c.COURSE_STAFF_ONLY, c.COURSE_NOT_FOUND, c.CERTIFICATION_UNKNOWN_COURSES, c.CERTIFICATE_NOT_FOUND,
    c.CERTIFICATE_ALREADY_REVOKED,
), ops=(
    write(c.EP_COURSE_PUT, c.CourseIn, c.Course, courses.put_course, role=STAFF, clash=c.COURSE_CLASH),
    read(c.EP_COURSE_LIST, None, c.CourseList, list_courses, role=ANYONE),
    read(c.EP_COURSE_GET, c.CodeQuery, c.Course, courses.get_course, role=ANYONE),
    write(c.EP_COURSE_COMPLETE, c.CompletionIn, c.CompletionOut, courses.complete, role=STAFF,
          clash=c.COURSE_CLASH),
    read(c.EP_COURSE_COMPLETIONS, c.CompletionsQuery, c.CompletionList, list_completions, role=STAFF),
    # A write: the person is linked in the directory, and certifications now due are granted.
    write(c.EP_COURSE_MINE, c.MineQuery, c.MyCredits, courses.mine, role=SIGNED_IN, clash=c.COURSE_CLASH),
    write(c.EP_CERTIFICATION_PUT, c.CertificationIn, c.Certification, courses.put_certification, role=STAFF,
          clash=c.COURSE_CLASH),
    read(c.EP_CERTIFICATION_LIST, None, c.CertificationList, list_certifications, role=ANYONE),
    read(c.EP_CERTIFICATE_GET, c.CertificateQuery, c.CertificateView, courses.get_certificate, role=ANYONE),
    read(c.EP_CERTIFICATE_VERIFY, c.VerifyIn, c.Verification, courses.verify, role=ANYONE),
    read(c.EP_CERTIFICATE_JWKS, None, c.JWKS, courses.jwks, role=ANYONE),
    read(c.EP_CERTIFICATE_LIST, c.CertificateListQuery, c.CertificateList, list_certificates, role=STAFF),
    write(c.EP_CERTIFICATE_REVOKE, c.RevokeIn, c.CertificateView, courses.revoke, role=STAFF,
          clash=c.COURSE_CLASH),
))
