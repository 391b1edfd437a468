"""NATS adapters of courses, certifications and certificates: the request/reply endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.points.courses.service import (
    complete,
    get_certificate,
    get_course,
    jwks,
    list_certificates,
    list_certifications,
    list_completions,
    list_courses,
    mine,
    put_certification,
    put_course,
    revoke,
    verify,
)
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import courses as c
from towntip.kernel.uow import UnitOfWork

T = TypeVar("T")


def add_endpoints(eps: Endpoints, *, tx: UnitOfWork, node: str) -> None:
    """svc.<node>.points.courses.*, certifications.*, certificates.* (contracts: towntip.kernel.contracts.courses)."""

    async def write(fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await tx.write(lambda s, _now: fn(s), clash=c.COURSE_CLASH)

    @eps.add(c.EP_COURSE_PUT, c.CourseIn)
    async def course_put(q: c.CourseIn) -> c.Course:
        return await write(lambda s: put_course(s, q, node))

    @eps.add(c.EP_COURSE_LIST)
    async def course_list(_: None) -> c.CourseList:
        return c.CourseList(courses=await tx.read(list_courses))

    @eps.add(c.EP_COURSE_GET, c.CodeQuery)
    async def course_get(q: c.CodeQuery) -> c.Course:
        return await tx.read(lambda s: get_course(s, q.code))

    @eps.add(c.EP_COURSE_COMPLETE, c.CompletionIn)
    async def course_complete(q: c.CompletionIn) -> c.CompletionOut:
        return await write(lambda s: complete(s, q, node))

    @eps.add(c.EP_COURSE_COMPLETIONS, c.CompletionsQuery)
    async def course_completions_(q: c.CompletionsQuery) -> c.CompletionList:
        return c.CompletionList(completions=await tx.read(lambda s: list_completions(s, q)))

    @eps.add(c.EP_COURSE_MINE, c.MineQuery)
    async def course_mine(q: c.MineQuery) -> c.MyCredits:
        return await write(lambda s: mine(s, q.actor, node))

    @eps.add(c.EP_CERTIFICATION_PUT, c.CertificationIn)
    async def certification_put(q: c.CertificationIn) -> c.Certification:
        return await write(lambda s: put_certification(s, q, node))

    @eps.add(c.EP_CERTIFICATION_LIST)
    async def certification_list(_: None) -> c.CertificationList:
        return c.CertificationList(certifications=await tx.read(list_certifications))

    @eps.add(c.EP_CERTIFICATE_GET, c.CertificateQuery)
    async def certificate_get(q: c.CertificateQuery) -> c.CertificateView:
        return await tx.read(lambda s: get_certificate(s, q))

    @eps.add(c.EP_CERTIFICATE_VERIFY, c.VerifyIn)
    async def certificate_verify(q: c.VerifyIn) -> c.Verification:
        return await tx.read(lambda s: verify(s, q.token))

    @eps.add(c.EP_CERTIFICATE_JWKS)
    async def certificate_jwks(_: None) -> c.JWKS:
        return await tx.read(jwks)

    @eps.add(c.EP_CERTIFICATE_LIST, c.CertificateListQuery)
    async def certificate_list(q: c.CertificateListQuery) -> c.CertificateList:
        return c.CertificateList(certificates=await tx.read(lambda s: list_certificates(s, q.actor)))

    @eps.add(c.EP_CERTIFICATE_REVOKE, c.RevokeIn)
    async def certificate_revoke(q: c.RevokeIn) -> c.CertificateView:
        return await write(lambda s: revoke(s, q, node))
