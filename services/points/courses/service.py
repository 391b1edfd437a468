"""Certified courses (認定講座), credits (単位), certifications (修了資格) and signed certificates.

- Staff define courses and certifications and record that a person finished a course. The credits go through the
  ledger (asset `credit`, system:issuance -> person:<user id>) under the key `course:<code>:<user id>`: a person
  finishes a course once; a repeat answers duplicate and posts nothing.
- Staff name the person by global handle (or this node's handle, or the identity user id). Ledger accounts are
  person:<identity user id>; this service learns which id a handle is only from an Actor the gateway authenticated
  (the node's people directory, `services/points/people/`: fed by identity's events, and refreshed whenever the
  person opens their credits page). A completion for someone not seen
  here yet waits (pending) and is credited the first time they open マイ単位. No handle is ever taken from a form
  as proof of who someone is.
- When the credits a certification counts (its courses and fields; all courses if none given) reach its threshold,
  it is granted once and a certificate issued: a compact JWS signed with Ed25519 (EdDSA), its public key in the
  JWKS (`certificates.jwks`, published by the gateway at /certificates/jwks.json). Staff may revoke it.

Domain code; the endpoints (courses/handlers.py) own the transactions, through the kernel's unit of work.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from joserfc.jwk import OKPKey
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.points.courses.models import (
    certificate_keys,
    certificates,
    certifications,
    course_completions,
    courses,
)
from services.points.documents import certificate
from services.points.documents.certificate import check_signature, sign
from services.points.documents.certificate import claims_of as _claims_of
from services.points.ledger import service as ledger
from services.points.people import service as directory
from services.points.people.models import people
from services.points.tables import bus
from towntip.kernel import db, errors
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.clock import JST
from towntip.kernel.contracts import courses as c
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.db import aware as _aware

SERVICE = "points"


def _staff(actor: Actor) -> None:
    if not actor.has("staff"):
        raise c.COURSE_STAFF_ONLY("staff only / 職員のみ操作できます")


# ---- signing: compact JWS, EdDSA (Ed25519), through joserfc (services/points/documents/certificate.py) -------------


async def signing_key(session: AsyncSession) -> tuple[str, OKPKey]:
    """The newest unretired key, made on first use (kept in the service's database, like identity's keys)."""
    row = (await session.execute(select(certificate_keys.c.kid, certificate_keys.c.private_key)
                                 .where(certificate_keys.c.retired_at.is_(None))
                                 .order_by(certificate_keys.c.created_at.desc()).limit(1))).first()
    if row is not None:
        return row.kid, certificate.load_key(row.private_key)
    key = certificate.new_key()
    kid = certificate.key_id(key)
    await session.execute(certificate_keys.insert().values(kid=kid, private_key=certificate.private_pem(key),
                                                           public_x=certificate.public_x(key), created_at=utcnow()))
    return kid, key


async def jwks(session: AsyncSession) -> c.JWKS:
    rows = await session.execute(select(certificate_keys.c.kid, certificate_keys.c.public_x)
                                 .order_by(certificate_keys.c.created_at))
    return c.JWKS(keys=[certificate.public_jwk(r.kid, r.public_x) for r in rows])


# ---- courses and certifications ---------------------------------------------------------------------------------


def _course_out(r: Any, completions: int = 0) -> c.Course:
    return c.Course(code=r.code, title=r.title, description=r.description, field=r.field, credits=r.credits,
                    starts_on=r.starts_on, ends_on=r.ends_on, completions=completions,
                    updated_at=_aware(r.updated_at))


async def put_course(session: AsyncSession, data: c.CourseIn, node: str) -> c.Course:
    _staff(data.actor)
    now = utcnow()
    values = {"title": data.title, "description": data.description, "field": data.field, "credits": data.credits,
              "starts_on": data.starts_on, "ends_on": data.ends_on, "updated_at": now,
              "updated_by": data.actor.global_handle}
    ins = db.insert_on_conflict(session, courses).values(code=data.code, created_at=now, **values)
    await session.execute(ins.on_conflict_do_update(index_elements=["code"], set_=values))
    await announce(session, bus, c.CourseDefined(
        code=data.code, title=data.title, field=data.field, credits=data.credits), node=node)
    return await get_course(session, data.code)


async def get_course(session: AsyncSession, code: str) -> c.Course:
    row = (await session.execute(select(courses).where(courses.c.code == code))).first()
    if row is None:
        raise c.COURSE_NOT_FOUND(f"no course {code!r} / 講座が見つかりません")
    n = (await session.execute(select(func.count()).select_from(course_completions)
                               .where(course_completions.c.course_code == code))).scalar_one()
    return _course_out(row, int(n))


async def list_courses(session: AsyncSession) -> list[c.Course]:
    counts: dict[str, int] = dict((await session.execute(select(course_completions.c.course_code, func.count())
                                         .group_by(course_completions.c.course_code))).all())
    rows = await session.execute(select(courses).order_by(courses.c.starts_on.is_(None), courses.c.starts_on,
                                                          courses.c.code))
    return [_course_out(r, int(counts.get(r.code, 0))) for r in rows]


def _certification_out(r: Any, granted: int = 0) -> c.Certification:
    return c.Certification(code=r.code, title=r.title, description=r.description,
                           credits_required=r.credits_required, fields=list(r.rule_fields),
                           courses=list(r.rule_courses), granted=granted, updated_at=_aware(r.updated_at))


async def put_certification(session: AsyncSession, data: c.CertificationIn, node: str) -> c.Certification:
    _staff(data.actor)
    wanted = sorted(set(data.courses))
    if wanted:
        known = set((await session.execute(select(courses.c.code).where(courses.c.code.in_(wanted)))).scalars())
        missing = [w for w in wanted if w not in known]
        if missing:
            raise c.CERTIFICATION_UNKNOWN_COURSES(f"unknown courses: {', '.join(missing)} / 登録されていない講座です")
    now = utcnow()
    values = {"title": data.title, "description": data.description, "credits_required": data.credits_required,
              "rule_fields": list(data.fields), "rule_courses": wanted, "updated_at": now,
              "updated_by": data.actor.global_handle}
    ins = db.insert_on_conflict(session, certifications).values(code=data.code, created_at=now, **values)
    await session.execute(ins.on_conflict_do_update(index_elements=["code"], set_=values))
    await announce(session, bus, c.CertificationDefined(
        code=data.code, title=data.title, credits_required=data.credits_required, fields=list(data.fields),
        courses=wanted), node=node)
    # People who already have enough credits under the new rule get it now.
    people = (await session.execute(select(course_completions.c.person_id).distinct()
                                    .where(course_completions.c.credited_at.is_not(None)))).scalars().all()
    for person_id in people:
        await grant_due(session, person_id, node)
    return (await list_certifications(session, code=data.code))[0]


async def list_certifications(session: AsyncSession, code: str | None = None) -> list[c.Certification]:
    counts: dict[str, int] = dict((await session.execute(select(certificates.c.certification_code, func.count())
                                         .group_by(certificates.c.certification_code))).all())
    stmt = select(certifications).order_by(certifications.c.code)
    if code is not None:
        stmt = stmt.where(certifications.c.code == code)
    return [_certification_out(r, int(counts.get(r.code, 0))) for r in await session.execute(stmt)]


# ---- people, completions, credits -------------------------------------------------------------------------------


def _global(ref: str, node: str) -> str:
    return ref if "@" in ref else f"{ref}@{node}"


async def _person_of(session: AsyncSession, ref: str, node: str) -> Any:
    """The person `ref` names in the node's people directory, if their identity user id is known here."""
    col = people.c.user_id if "-" in ref and "@" not in ref else people.c.global_handle
    key = ref if col is people.c.user_id else _global(ref, node)
    return (await session.execute(select(people).where(col == key, people.c.user_id.is_not(None)))).first()


def _completion_out(r: Any, person: Any = None) -> c.Completion:
    return c.Completion(
        id=r.id, course=r.course_code, person_ref=r.person_ref,
        person=f"person:{r.person_id}" if r.person_id else None,
        global_handle=person.global_handle if person is not None else None,
        display_name=person.display_name if person is not None else None,
        credits=r.credits, completed_on=r.completed_on, recorded_at=_aware(r.recorded_at),
        recorded_by=r.recorded_by, status="credited" if r.credited_at is not None else "pending",
        journal_key=r.journal_key)


async def _credit(session: AsyncSession, completion_id: str, person_id: str, node: str) -> None:
    """Post a completion's credits to the person (key course:<code>:<user id>) and mark it credited."""
    row = (await session.execute(select(course_completions).where(course_completions.c.id == completion_id))).one()
    key = f"course:{row.course_code}:{person_id}"
    entry = ledger.Entry(key=key, kind="course_credit", actor=row.recorded_by[:100],
                         memo=f"course {row.course_code}"[:200],
                         legs=(ledger.Leg(ledger.ISSUANCE, c.ASSET_CREDIT, -row.credits),
                               ledger.Leg(f"person:{person_id}", c.ASSET_CREDIT, row.credits)))
    result = (await ledger.post_entries(session, [entry], node=node))[0]
    if isinstance(result, errors.ServiceError):
        raise result
    now = utcnow()
    await session.execute(update(course_completions).where(course_completions.c.id == completion_id)
                          .values(person_id=person_id, journal_key=key, credited_at=now))
    await announce(session, bus, c.CourseCompleted(
        course=row.course_code, person=f"person:{person_id}", credits=row.credits, journal_key=key,
        completed_on=row.completed_on), node=node)


async def complete(session: AsyncSession, data: c.CompletionIn, node: str) -> c.CompletionOut:
    _staff(data.actor)
    course = (await session.execute(select(courses).where(courses.c.code == data.course))).first()
    if course is None:
        raise c.COURSE_NOT_FOUND(f"no course {data.course!r} / 講座が見つかりません")
    if data.known is not None:
        await see_person(session, data.known, node)
    person = await _person_of(session, data.person, node)
    ref = data.person if ("-" in data.person and "@" not in data.person) else _global(data.person, node)
    conds = [course_completions.c.person_ref == ref]
    if person is not None:
        conds += [course_completions.c.person_id == person.user_id,
                  course_completions.c.person_ref.in_([person.user_id, person.global_handle])]
    existing = (await session.execute(select(course_completions).where(
        course_completions.c.course_code == data.course, or_(*conds)))).first()
    if existing is not None:
        return c.CompletionOut(status="duplicate", completion=_completion_out(existing, person))
    cid = new_id()
    await session.execute(course_completions.insert().values(
        id=cid, course_code=data.course, person_ref=ref, person_id=None, credits=course.credits,
        completed_on=data.completed_on or datetime.now(JST).date(), recorded_at=utcnow(),
        recorded_by=data.actor.global_handle))
    granted: list[c.CertificateView] = []
    if person is not None:
        await _credit(session, cid, person.user_id, node)
        granted = await grant_due(session, person.user_id, node)
    row = (await session.execute(select(course_completions).where(course_completions.c.id == cid))).one()
    return c.CompletionOut(status="credited" if person is not None else "pending",
                           completion=_completion_out(row, person), certificates=granted)


async def list_completions(session: AsyncSession, q: c.CompletionsQuery) -> list[c.Completion]:
    _staff(q.actor)
    stmt = (select(course_completions, people.c.global_handle, people.c.display_name)
            .outerjoin(people, people.c.user_id == course_completions.c.person_id)
            .order_by(course_completions.c.recorded_at.desc()).limit(1000))
    if q.course:
        stmt = stmt.where(course_completions.c.course_code == q.course)
    return [_completion_out(r, r if r.global_handle else None) for r in await session.execute(stmt)]


async def see_person(session: AsyncSession, actor: Actor | c.KnownPerson, node: str) -> None:
    """The gateway vouches for this person (an authenticated Actor, or identity's answer to staff's lookup):
    remember their handle and name, and credit completions that waited for them."""
    await directory.link_actor(session, actor)  # type: ignore[arg-type]  # a KnownPerson has the same three fields
    waiting = (await session.execute(select(course_completions.c.id, course_completions.c.course_code).where(
        course_completions.c.person_id.is_(None),
        course_completions.c.person_ref.in_([actor.user_id, actor.global_handle])))).all()
    if not waiting:
        return
    done = set((await session.execute(select(course_completions.c.course_code).where(
        course_completions.c.person_id == actor.user_id))).scalars())
    for w in waiting:
        if w.course_code in done:  # recorded twice (by handle and by id): the first one counts
            await session.execute(delete(course_completions).where(course_completions.c.id == w.id))
            continue
        await _credit(session, w.id, actor.user_id, node)
        done.add(w.course_code)
    await grant_due(session, actor.user_id, node)


async def _counted(session: AsyncSession, person_id: str) -> list[tuple[str, str, int]]:
    """(course, field, credits) of the person's credited completions."""
    rows = await session.execute(
        select(course_completions.c.course_code, courses.c.field, course_completions.c.credits)
        .join(courses, courses.c.code == course_completions.c.course_code)
        .where(course_completions.c.person_id == person_id, course_completions.c.credited_at.is_not(None)))
    return [(r.course_code, r.field, r.credits) for r in rows]


def _count_for(rule: Any, done: list[tuple[str, str, int]]) -> int:
    return sum(n for course, field, n in done
               if (not rule.rule_courses or course in rule.rule_courses)
               and (not rule.rule_fields or field in rule.rule_fields))


async def grant_due(session: AsyncSession, person_id: str, node: str) -> list[c.CertificateView]:
    """Grant each certification whose threshold the person's counted credits reach, once."""
    done = await _counted(session, person_id)
    if not done:
        return []
    have = set((await session.execute(select(certificates.c.certification_code)
                                       .where(certificates.c.person_id == person_id))).scalars())
    person = (await session.execute(select(people).where(people.c.user_id == person_id))).first()
    out = []
    for rule in await session.execute(select(certifications).order_by(certifications.c.code)):
        counted = _count_for(rule, done)
        if rule.code in have or counted < rule.credits_required or person is None:
            continue
        out.append(await _issue(session, rule, person, counted, node))
    return out


async def _issue(session: AsyncSession, rule: Any, person: Any, counted: int, node: str) -> c.CertificateView:
    kid, key = await signing_key(session)
    cid = str(uuid.uuid4())  # public in links, so from the OS's random source: certificates cannot be enumerated
    now = utcnow().replace(microsecond=0)
    claims = {"iss": node, "jti": cid, "sub": person.global_handle, "name": person.display_name,
              "certification": {"code": rule.code, "title": rule.title}, "credits": counted,
              "iat": int(now.timestamp()), "issued_on": now.astimezone(JST).date().isoformat(),
              "node": node, "verify": f"/certificates/{cid}"}
    token = sign(claims, kid, key)
    await session.execute(certificates.insert().values(
        id=cid, certification_code=rule.code, person_id=person.user_id, global_handle=person.global_handle,
        display_name=person.display_name, credits=counted, issued_at=now, kid=kid, token=token))
    await announce(session, bus, c.CertificationGranted(
        certificate_id=cid, certification=rule.code, person=f"person:{person.user_id}",
        issued_at=now), node=node)
    row = (await session.execute(select(certificates).where(certificates.c.id == cid))).one()
    return _certificate_out(row, with_token=True, staff=False)


def _certificate_out(r: Any, *, with_token: bool, staff: bool) -> c.CertificateView:
    """What the certificate states (read from its own signed claims), and whether it stands."""
    claims = _claims_of(r.token)
    return c.CertificateView(
        id=claims["jti"], certification=claims["certification"]["code"], title=claims["certification"]["title"],
        name=claims["name"], global_handle=claims["sub"], credits=claims["credits"],
        issued_at=datetime.fromtimestamp(claims["iat"], tz=ZoneInfo("UTC")),
        issued_on=date.fromisoformat(claims["issued_on"]), node=claims["node"], kid=r.kid,
        status="revoked" if r.revoked_at is not None else "valid",
        revoked_at=_aware(r.revoked_at) if r.revoked_at is not None else None,
        revoke_reason=r.revoke_reason if staff else None, token=r.token if with_token else None)


async def mine(session: AsyncSession, actor: Actor, node: str) -> c.MyCredits:
    await see_person(session, actor, node)
    person = (await session.execute(select(people).where(people.c.user_id == actor.user_id))).first()
    rows = await session.execute(select(course_completions).where(course_completions.c.person_id == actor.user_id)
                                 .order_by(course_completions.c.completed_on, course_completions.c.course_code))
    completions = [_completion_out(r, person) for r in rows]
    done = await _counted(session, actor.user_id)
    certs = {r.certification_code: r for r in await session.execute(
        select(certificates).where(certificates.c.person_id == actor.user_id).order_by(certificates.c.issued_at))}
    progress = [c.Progress(certification=rule.code, title=rule.title, counted=_count_for(rule, done),
                           required=rule.credits_required,
                           certificate_id=certs[rule.code].id if rule.code in certs else None)
                for rule in await session.execute(select(certifications).order_by(certifications.c.code))]
    return c.MyCredits(person=f"person:{actor.user_id}",
                       credits=await ledger.balance(session, f"person:{actor.user_id}", c.ASSET_CREDIT),
                       completions=completions, progress=progress,
                       certificates=[_certificate_out(r, with_token=True, staff=False) for r in certs.values()])


# ---- certificates ----------------------------------------------------------------------------------------------


async def get_certificate(session: AsyncSession, q: c.CertificateQuery) -> c.CertificateView:
    row = (await session.execute(select(certificates).where(certificates.c.id == q.id))).first()
    if row is None:
        raise c.CERTIFICATE_NOT_FOUND("no such certificate / 証明書が見つかりません")
    staff = q.actor is not None and q.actor.has("staff")
    owner = q.actor is not None and q.actor.user_id == row.person_id
    return _certificate_out(row, with_token=staff or owner, staff=staff)


async def verify(session: AsyncSession, token: str) -> c.Verification:
    keys = {r.kid: r.public_x for r in await session.execute(select(certificate_keys.c.kid,
                                                                    certificate_keys.c.public_x))}
    try:
        claims = check_signature(token, keys)
    except ValueError as exc:
        return c.Verification(status="invalid", reason=str(exc))
    row = (await session.execute(select(certificates).where(certificates.c.id == str(claims.get("jti")))))\
        .first()
    if row is None:
        return c.Verification(status="invalid", reason="no such certificate was issued here")
    view = _certificate_out(row, with_token=False, staff=False)
    if view.status == "revoked":
        return c.Verification(status="revoked", reason="revoked by the issuer / 発行者により取り消されました",
                              certificate=view)
    return c.Verification(status="valid", certificate=view)


async def list_certificates(session: AsyncSession, actor: Actor) -> list[c.CertificateView]:
    _staff(actor)
    rows = await session.execute(select(certificates).order_by(certificates.c.issued_at.desc()).limit(1000))
    return [_certificate_out(r, with_token=False, staff=True) for r in rows]


async def revoke(session: AsyncSession, data: c.RevokeIn, node: str) -> c.CertificateView:
    _staff(data.actor)
    row = (await session.execute(select(certificates).where(certificates.c.id == data.id))).first()
    if row is None:
        raise c.CERTIFICATE_NOT_FOUND("no such certificate / 証明書が見つかりません")
    if row.revoked_at is not None:
        raise c.CERTIFICATE_ALREADY_REVOKED("this certificate is already revoked / すでに取り消されています")
    now = utcnow()
    await session.execute(update(certificates).where(certificates.c.id == data.id).values(
        revoked_at=now, revoked_by=data.actor.global_handle, revoke_reason=data.reason))
    await announce(session, bus, c.CertificateRevoked(
        certificate_id=data.id, certification=row.certification_code, revoked_at=now), node=node)
    row = (await session.execute(select(certificates).where(certificates.c.id == data.id))).one()
    return _certificate_out(row, with_token=False, staff=True)
