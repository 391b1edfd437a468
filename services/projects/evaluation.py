"""The fair selection of a theme's proposals (選定): evaluators, declarations of interest, independent scores, the
close, and the published result with its reasons and pilot candidates (実証候補). No NATS, no commits here.

- the criteria and weights were published with the requirements and frozen when the call opened;
- the secretariat appoints evaluators (people, by global handle; they need hold no role) once the call is open;
- after the deadline each evaluator first declares, per proposal, whether they have a conflict of interest (once,
  final; a member of the proposing companies must declare one); a conflict excludes them from that proposal;
- then they score every criterion 0..SCORE_MAX with a comment, and may change their scores until the close; they
  see only their own: nobody sees another's scores, and the secretariat sees only who has done what;
- a proposal's total is the weighted average over its evaluators without a conflict: each evaluator's
  sum(score × weight) / 100, averaged; equal totals share a rank;
- the secretariat closes the evaluation only when at least MIN_EVALUATORS are appointed, every one has declared for
  every proposal, every one without a conflict has scored it, and every proposal has someone to score it; the
  ranking is computed then and frozen;
- the secretariat publishes the result once: the selected proposals (pilot candidates; a consortium's partners must
  all have confirmed), the reasons; from then on the result, the criteria, the totals and the anonymised
  per-criterion averages are public. The proposals' own texts never are (services.projects.proposals).
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.projects import proposals as proposal_domain
from services.projects import themes as theme_domain
from services.projects.common import audit, aware, roles_of
from services.projects.models import (
    bus,
    evaluators,
    proposal_partners,
    proposals,
    results,
    review_scores,
    reviews,
)
from towntip.kernel import db
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import projects as c
from towntip.kernel.contracts.actor import Actor


def _secretariat(actor: Actor, what: str) -> None:
    if not actor.has("secretariat"):
        raise c.SECRETARIAT_ONLY(f"{what} is for the secretariat (事務局)")


async def _result_row(session: AsyncSession, theme_id: str) -> Any:
    return (await session.execute(select(results).where(results.c.theme_id == theme_id))).first()


async def _evaluators(session: AsyncSession, theme_id: str) -> list[str]:
    rows = await session.execute(select(evaluators.c.global_handle).where(evaluators.c.theme_id == theme_id)
                                 .order_by(evaluators.c.appointed_at, evaluators.c.global_handle))
    return [r[0] for r in rows]


async def _submitted(session: AsyncSession, theme_id: str) -> list[Any]:
    rows = await session.execute(proposal_domain._query().where(
        proposals.c.theme_id == theme_id, proposals.c.status == "submitted")
        .order_by(proposals.c.created_at, proposals.c.id))
    return list(rows)


async def _reviews(session: AsyncSession, theme_id: str) -> dict[tuple[str, str], Any]:
    rows = await session.execute(select(reviews).where(reviews.c.theme_id == theme_id))
    return {(r.proposal_id, r.evaluator): r for r in rows}


async def _scores(session: AsyncSession, proposal_ids: list[str]) -> dict[tuple[str, str], dict[str, int]]:
    out: dict[tuple[str, str], dict[str, int]] = {}
    if not proposal_ids:
        return out
    rows = await session.execute(select(review_scores).where(review_scores.c.proposal_id.in_(proposal_ids)))
    for r in rows:
        out.setdefault((r.proposal_id, r.evaluator), {})[r.criterion_id] = r.score
    return out


async def _all_confirmed(session: AsyncSession, proposal_id: str) -> bool:
    rows = await session.execute(select(proposal_partners.c.status).where(
        proposal_partners.c.proposal_id == proposal_id))
    return all(r[0] == "confirmed" for r in rows)


async def _open_theme(session: AsyncSession, theme_id: str, actor: Actor) -> tuple[Any, c.Requirements]:
    theme = await theme_domain._theme_row(session, theme_id, actor)
    req = await theme_domain._requirements(session, theme.id)
    if theme.phase != 2 or req is None or req.call_opened_at is None:
        raise c.EVALUATION_CALL_NOT_OPEN("the evaluation belongs to a theme whose call is open (phase 2)")
    return theme, req


# ---- evaluators --------------------------------------------------------------------------------------------------


async def appoint(*, session: AsyncSession, data: c.EvaluatorAppoint, node: str,
                  now: datetime | None = None) -> c.EvaluationStatus:
    _secretariat(data.actor, "appointing evaluators")
    theme, _req = await _open_theme(session, data.theme_id, data.actor)
    now = now or utcnow()
    if await _result_row(session, theme.id) is not None:
        raise c.EVALUATION_CLOSED("the evaluation is closed")
    inserted = await session.execute(
        db.insert_on_conflict(session, evaluators)
        .values(theme_id=theme.id, global_handle=data.global_handle, appointed_at=now,
                appointed_by=data.actor.global_handle)
        .on_conflict_do_nothing(index_elements=["theme_id", "global_handle"])
        .returning(evaluators.c.theme_id))
    if inserted.first() is None:
        raise c.EVALUATOR_ALREADY(f"{data.global_handle} is already an evaluator of this theme")
    await audit(session, kind="theme", subject_id=theme.id, action="evaluator_appointed", actor=data.actor, at=now,
                after={"evaluator": data.global_handle})
    await announce(session, bus, node=node, at=now, event=c.EvaluatorAppointed(
        theme_id=theme.id, origin_node=theme.origin_node, at=now))
    return await status(session=session, theme_id=theme.id, actor=data.actor, now=now)


# ---- an evaluator's own reviews ----------------------------------------------------------------------------------


async def _evaluator_row(session: AsyncSession, proposal_id: str, actor: Actor, now: datetime) -> Any:
    """The proposal, if this actor evaluates its theme and reviews are open now."""
    row = await proposal_domain._row(session, proposal_id)
    rel = await proposal_domain.relation(session, row, actor)
    if not rel:
        raise proposal_domain._not_found(proposal_id)
    if "evaluator" not in rel:
        raise c.EVALUATOR_ONLY("only the theme's evaluators review its proposals")
    req = await theme_domain._requirements(session, row.theme_id)
    assert req is not None
    if now < req.deadline:
        raise c.EVALUATION_NOT_STARTED("the evaluation starts when the call's deadline has passed")
    if await _result_row(session, row.theme_id) is not None:
        raise c.EVALUATION_CLOSED("the evaluation is closed")
    return row


async def declare(*, session: AsyncSession, data: c.ConflictDeclare, node: str,
                  now: datetime | None = None) -> c.MyReviews:
    now = now or utcnow()
    row = await _evaluator_row(session, data.proposal_id, data.actor, now)
    if not data.conflicted:
        mine = await roles_of(session, data.actor.global_handle)
        partners = [p.org_id for p in await proposal_domain._partners(session, row.id)]
        if row.lead_org_id in mine or any(p in mine for p in partners):
            raise c.REVIEW_MUST_DECLARE_CONFLICT(
                "you are a member of an organisation of this proposal: declare the conflict of "
                "interest")
    inserted = await session.execute(
        db.insert_on_conflict(session, reviews)
        .values(proposal_id=row.id, evaluator=data.actor.global_handle, theme_id=row.theme_id,
                conflicted=data.conflicted, conflict_reason=data.reason, declared_at=now, comment="")
        .on_conflict_do_nothing(index_elements=["proposal_id", "evaluator"])
        .returning(reviews.c.proposal_id))
    if inserted.first() is None:
        raise c.REVIEW_ALREADY_DECLARED(
            "you have already declared your interests for this proposal (a declaration is final)")
    await audit(session, kind="review", subject_id=row.id, action="interests_declared", actor=data.actor, at=now,
                after={"evaluator": data.actor.global_handle, "conflicted": data.conflicted, "reason": data.reason})
    return await mine_(session=session, theme_id=row.theme_id, actor=data.actor, now=now)


async def score(*, session: AsyncSession, data: c.ScoreSubmit, node: str,
                now: datetime | None = None) -> c.MyReviews:
    now = now or utcnow()
    row = await _evaluator_row(session, data.proposal_id, data.actor, now)
    review = (await session.execute(select(reviews).where(
        reviews.c.proposal_id == row.id, reviews.c.evaluator == data.actor.global_handle))).first()
    if review is None:
        raise c.REVIEW_DECLARE_FIRST("declare your interests for this proposal before scoring it")
    if review.conflicted:
        raise c.REVIEW_CONFLICTED("you declared a conflict of interest for this proposal: you do not score it")
    req = await theme_domain._requirements(session, row.theme_id)
    assert req is not None
    names = {x.id: x.name for x in req.criteria}
    missing = [names[k] for k in names if k not in data.scores]
    unknown = [k for k in data.scores if k not in names]
    if missing or unknown:
        raise c.REVIEW_SCORES_INCOMPLETE(
            "score every criterion of the theme once"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not a criterion of this theme: {', '.join(unknown)}" if unknown else ""))
    old = (await _scores(session, [row.id])).get((row.id, data.actor.global_handle))
    await session.execute(delete(review_scores).where(review_scores.c.proposal_id == row.id,
                                                      review_scores.c.evaluator == data.actor.global_handle))
    await session.execute(insert(review_scores), [
        {"proposal_id": row.id, "evaluator": data.actor.global_handle, "criterion_id": k, "score": v}
        for k, v in data.scores.items()])
    await session.execute(update(reviews).where(
        reviews.c.proposal_id == row.id, reviews.c.evaluator == data.actor.global_handle)
        .values(comment=data.comment, scored_at=now))
    await audit(session, kind="review", subject_id=row.id, action="scored" if old is None else "rescored",
                actor=data.actor, at=now,
                before=None if old is None else {"evaluator": data.actor.global_handle,
                                                 "scores": {names[k]: v for k, v in old.items()},
                                                 "comment": review.comment},
                after={"evaluator": data.actor.global_handle,
                       "scores": {names[k]: v for k, v in data.scores.items()}, "comment": data.comment})
    return await mine_(session=session, theme_id=row.theme_id, actor=data.actor, now=now)


async def mine_(*, session: AsyncSession, theme_id: str, actor: Actor | None,
                now: datetime | None = None) -> c.MyReviews:
    now = now or utcnow()
    theme = await theme_domain._theme_row(session, theme_id, actor)
    if not await proposal_domain.is_evaluator(session, theme.id, actor):
        raise c.EVALUATOR_ONLY("this page is for the theme's evaluators")
    assert actor is not None
    req = await theme_domain._requirements(session, theme.id)
    assert req is not None
    closed = await _result_row(session, theme.id) is not None
    rows = await _submitted(session, theme.id)
    own = {k: v for k, v in (await _reviews(session, theme.id)).items() if k[1] == actor.global_handle}
    scores = await _scores(session, [r.id for r in rows])
    out = []
    for r in rows:
        rv = own.get((r.id, actor.global_handle))
        out.append(c.MyReview(
            proposal_id=r.id, proposal_title=r.title, lead_org_name=r.lead_org_name, declared=rv is not None,
            conflicted=rv.conflicted if rv is not None else None,
            conflict_reason=rv.conflict_reason if rv is not None else "",
            scores=scores.get((r.id, actor.global_handle)), comment=rv.comment if rv is not None else "",
            scored_at=aware(rv.scored_at) if rv is not None else None))
    return c.MyReviews(theme_id=theme.id, theme_title=theme.title, criteria=req.criteria, deadline=req.deadline,
                       open_for_review=now >= req.deadline and not closed, closed=closed, reviews=out)


# ---- progress, close, ranking ------------------------------------------------------------------------------------


def _rank(rows: list[Any], criteria: list[c.CriterionOut], partner_names: dict[str, list[str]],
          reviews_: dict[tuple[str, str], Any], scores: dict[tuple[str, str], dict[str, int]],
          handles: list[str]) -> list[c.RankedProposal]:
    exact: list[tuple[Fraction, c.RankedProposal]] = []
    for r in rows:
        counted = [scores[(r.id, h)] for h in handles
                   if (r.id, h) in reviews_ and not reviews_[(r.id, h)].conflicted and (r.id, h) in scores]
        n = len(counted)
        total = (sum((Fraction(sum(s[x.id] * x.weight for x in criteria), 100) for s in counted), Fraction(0)) / n
                 if n else Fraction(0))
        averages = [c.CriterionAverage(criterion_id=x.id, name=x.name, weight=x.weight,
                                       average=round(float(Fraction(sum(s[x.id] for s in counted), n)), 3) if n
                                       else 0.0) for x in criteria]
        exact.append((total, c.RankedProposal(
            proposal_id=r.id, title=r.title, lead_org_name=r.lead_org_name, partner_names=partner_names[r.id],
            rank=0, total=round(float(total), 3), evaluators_counted=n, averages=averages)))
    exact.sort(key=lambda pair: (-pair[0], pair[1].title, pair[1].proposal_id))
    out: list[c.RankedProposal] = []
    for i, (total, item) in enumerate(exact):
        rank = out[-1].rank if out and exact[i - 1][0] == total else i + 1
        out.append(item.model_copy(update={"rank": rank}))
    return out


async def _progress(session: AsyncSession, theme: Any, req: c.Requirements, now: datetime
                    ) -> tuple[list[str], list[Any], list[c.ProgressCell], list[str], dict[tuple[str, str], Any],
                               dict[tuple[str, str], dict[str, int]]]:
    handles = await _evaluators(session, theme.id)
    rows = await _submitted(session, theme.id)
    reviews_ = await _reviews(session, theme.id)
    scores = await _scores(session, [r.id for r in rows])
    cells, missing = [], []
    if now < req.deadline:
        missing.append("the call's deadline has not passed yet")
    if len(handles) < c.MIN_EVALUATORS:
        missing.append(f"at least {c.MIN_EVALUATORS} evaluators must be appointed ({len(handles)} so far)")
    for r in rows:
        free = 0
        for h in handles:
            rv = reviews_.get((r.id, h))
            if rv is None:
                state = "undeclared"
            elif rv.conflicted:
                state = "conflicted"
            else:
                free += 1
                state = "scored" if (r.id, h) in scores else "to_score"
            cells.append(c.ProgressCell(evaluator=h, proposal_id=r.id, state=state))
        if handles and free == 0 and all((r.id, h) in reviews_ for h in handles):
            missing.append(f"every evaluator declared a conflict for {r.title!r}: appoint another evaluator")
    undeclared = sum(1 for x in cells if x.state == "undeclared")
    unscored = sum(1 for x in cells if x.state == "to_score")
    if undeclared:
        missing.append(f"{undeclared} declaration(s) of interest are missing")
    if unscored:
        missing.append(f"{unscored} review(s) are not scored yet")
    return handles, rows, cells, missing, reviews_, scores


async def _partner_names(session: AsyncSession, rows: list[Any]) -> dict[str, list[str]]:
    return {r.id: [p.org_name for p in await proposal_domain._partners(session, r.id)] for r in rows}


async def status(*, session: AsyncSession, theme_id: str, actor: Actor | None,
                 now: datetime | None = None) -> c.EvaluationStatus:
    now = now or utcnow()
    theme = await theme_domain._theme_row(session, theme_id, actor)
    if not await theme_domain.may_manage(session, actor, theme.owner_department_id):
        raise c.EVALUATION_NOT_FOR_YOU("the evaluation's progress is for the secretariat and the owner department")
    req = await theme_domain._requirements(session, theme.id)
    if req is None or req.call_opened_at is None:
        raise c.EVALUATION_CALL_NOT_OPEN("the theme's call has not been opened")
    handles, rows, cells, missing, _r, _s = await _progress(session, theme, req, now)
    result = await _result_row(session, theme.id)
    briefs = [c.ProposalBrief(id=r.id, title=r.title, lead_org_name=r.lead_org_name,
                              partners_confirmed=await _all_confirmed(session, r.id)) for r in rows]
    return c.EvaluationStatus(
        theme_id=theme.id, theme_title=theme.title, deadline=req.deadline, deadline_passed=now >= req.deadline,
        evaluators=handles, proposals=briefs, progress=cells, missing=[] if result is not None else missing,
        closed_at=aware(result.closed_at) if result is not None else None,
        published_at=aware(result.published_at) if result is not None else None,
        ranking=[c.RankedProposal(**x) for x in result.ranking] if result is not None else None)


async def close(*, session: AsyncSession, data: c.ThemeAction, node: str,
                now: datetime | None = None) -> c.EvaluationStatus:
    _secretariat(data.actor, "closing the evaluation")
    now = now or utcnow()
    theme, req = await _open_theme(session, data.theme_id, data.actor)
    if await _result_row(session, theme.id) is not None:
        raise c.EVALUATION_CLOSED("the evaluation is already closed")
    handles, rows, _cells, missing, reviews_, scores = await _progress(session, theme, req, now)
    if missing:
        raise c.EVALUATION_INCOMPLETE("the evaluation cannot close yet: " + "; ".join(missing))
    ranking = _rank(rows, req.criteria, await _partner_names(session, rows), reviews_, scores, handles)
    inserted = await session.execute(
        db.insert_on_conflict(session, results)
        .values(theme_id=theme.id, closed_at=now, closed_by=data.actor.global_handle,
                ranking=[x.model_dump(mode="json") for x in ranking], reasons="", selected=[])
        .on_conflict_do_nothing(index_elements=["theme_id"]).returning(results.c.theme_id))
    if inserted.first() is None:
        raise c.EVALUATION_CLOSED("the evaluation is already closed")
    await audit(session, kind="theme", subject_id=theme.id, action="evaluation_closed", actor=data.actor, at=now,
                after={"evaluators": handles, "ranking": [{"proposal_id": x.proposal_id, "rank": x.rank,
                                                           "total": x.total} for x in ranking]}, note=data.note)
    await announce(session, bus, node=node, at=now, event=c.EvaluationClosed(
        theme_id=theme.id, origin_node=theme.origin_node, proposals=len(rows), at=now))
    return await status(session=session, theme_id=theme.id, actor=data.actor, now=now)


# ---- the result --------------------------------------------------------------------------------------------------


async def _result(session: AsyncSession, theme: Any, row: Any) -> c.Result:
    req = await theme_domain._requirements(session, theme.id)
    assert req is not None
    ranking = [c.RankedProposal(**x) for x in row.ranking]
    return c.Result(
        theme_id=theme.id, origin_node=theme.origin_node, theme_title=theme.title,
        status="published" if row.published_at is not None else "closed", closed_at=aware(row.closed_at),
        published_at=aware(row.published_at), reasons=row.reasons, criteria=req.criteria, ranking=ranking,
        pilot_candidates=[x for x in ranking if x.selected])


async def publish(*, session: AsyncSession, data: c.ResultPublish, node: str,
                  now: datetime | None = None) -> c.Result:
    _secretariat(data.actor, "publishing the result")
    now = now or utcnow()
    theme = await theme_domain._theme_row(session, data.theme_id, data.actor)
    row = await _result_row(session, theme.id)
    if row is None:
        raise c.RESULT_EVALUATION_OPEN("close the evaluation first (every evaluator must have declared and scored)")
    if row.published_at is not None:
        raise c.RESULT_ALREADY_PUBLISHED("the result is already published")
    ranked = {x["proposal_id"]: x for x in row.ranking}
    chosen = list(dict.fromkeys(data.selected))
    unknown = [p for p in chosen if p not in ranked]
    if unknown:
        raise c.RESULT_UNKNOWN_PROPOSAL(f"not a proposal of this evaluation: {', '.join(unknown)}")
    for p in chosen:
        if not await _all_confirmed(session, p):
            raise c.RESULT_PARTNERS_UNCONFIRMED(
                f"{ranked[p]['title']!r}: not every partner of the consortium has confirmed its "
                "participation")
        if (await proposal_domain._row(session, p)).status != "submitted":
            raise c.RESULT_WITHDRAWN(f"{ranked[p]['title']!r} was withdrawn")
    ranking = [{**x, "selected": x["proposal_id"] in chosen} for x in row.ranking]
    done = await session.execute(
        update(results).where(results.c.theme_id == theme.id, results.c.published_at.is_(None))
        .values(published_at=now, published_by=data.actor.global_handle, reasons=data.reasons, selected=chosen,
                ranking=ranking))
    if db.rowcount(done) != 1:
        raise c.RESULT_ALREADY_PUBLISHED("the result is already published")
    await audit(session, kind="theme", subject_id=theme.id, action="result_published", actor=data.actor, at=now,
                after={"selected": [ranked[p]["title"] for p in chosen], "reasons": data.reasons})
    out = await _result(session, theme, await _result_row(session, theme.id))
    await announce(session, bus, node=node, at=now, event=c.ResultPublished(
        theme_id=theme.id, origin_node=theme.origin_node, published_at=now, reasons=data.reasons,
        criteria=[x.model_dump(mode="json") for x in out.criteria],
        ranking=[x.model_dump(mode="json") for x in out.ranking], pilot_candidates=chosen))
    return out


async def result(*, session: AsyncSession, theme_id: str, actor: Actor | None) -> c.Result:
    """Public once published; before that, the frozen ranking for the secretariat and the owner department only."""
    theme = await theme_domain._theme_row(session, theme_id, actor)
    row = await _result_row(session, theme.id)
    if row is None or (row.published_at is None and not await theme_domain.may_manage(
            session, actor, theme.owner_department_id)):
        raise c.RESULT_NOT_FOUND(f"no published result for theme {theme_id}")
    return await _result(session, theme, row)


async def pilot_candidates(session: AsyncSession, theme_id: str) -> list[str] | None:
    """The published result's selected proposals (None: no result published). For the phase gate."""
    row = await _result_row(session, theme_id)
    if row is None or row.published_at is None:
        return None
    return list(row.selected or [])
