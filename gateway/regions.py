"""My Page across regions at the gateway (docs/identity.md, "My Page across regions").

- `POST /federation/person-summary`: another node, the home of one of the people known here, asks what the person
  does here. The body is its signed query (a compact JWT); the identity service checks it through the trust chain
  and names the person's user id here; then this node's points, projects and sns services each give their part.
- At the person's home node, My Page and `GET /api/v1/me/regions` (the person's session, or a member node's
  bearer access token with the scope `regions`) ask every node where the person takes part, concurrently, each
  with its own signed query, and put the answers together: a node that does not answer in time is shown as
  unreachable, never as an error.
- At another node, My Page asks the home node's `/api/v1/me/regions` with the access token the home node issued to
  this node at the person's login (the identity service keeps and renews it).
Personal data never goes on the bus between nodes: this is HTTP between the nodes' public URLs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from gateway.portal import common
from gateway.portal import session as ps
from gateway.portal.i18n import add_words
from gateway.problems import responses
from towntip.kernel import errors
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts import sns as snc
from towntip.kernel.contracts.mypage import (
    EP_PERSON_SUMMARY,
    MyRegions,
    PointsPart,
    ProjectsSummary,
    RegionSummary,
    RegionView,
    SnsSummary,
    SummaryQuery,
)

router = APIRouter()

add_words({
    "regions": ("地域ごとの参加", "Your regions"),
    "regions_hint": ("ホーム地域と、ログインしたことのある地域での参加状況です。",
                     "Your home region and every region where you have logged in."),
    "region_home": ("ホーム地域", "home region"),
    "region_here": ("この地域", "this region"),
    "region_unreachable": ("応答がありませんでした", "Did not answer"),
    "region_refused": ("問い合わせを受け付けませんでした", "Refused the request"),
    "region_removed": ("連携から外れたため問い合わせていません", "No longer in the federation: not asked"),
    "region_login_again": ("ホーム地域のIDでログインし直すと表示されます。",
                           "Log in with your home region again to see it."),
    "region_checked": ("確認時刻", "Checked at"),
    "part_unavailable": ("いまは表示できません", "Not available right now"),
    "none_yet": ("まだありません", "None yet"),
    "friend_requests": ("承認待ちの友だち申請", "Friend requests waiting"),
    "org_memberships": ("所属団体", "Organisations"),
    "themes_joined": ("参加テーマ", "Themes"),
    "phase": ("フェーズ", "Phase"),
    "people_count": ("人", "people"),
    "role_leader": ("リーダー", "leader"),
    "role_member": ("メンバー", "member"),
    "role_admin": ("管理者", "admin"),
    "role_owner_department": ("担当部署", "owner department"),
    "role_proposal_lead": ("提案（代表）", "proposal lead"),
    "role_proposal_partner": ("提案（構成員）", "proposal partner"),
    "role_pilot_party": ("実証の担当", "pilot party"),
    "role_evaluator": ("審査員", "evaluator"),
    "role_briefing": ("説明会に参加", "briefing"),
})
# The seed's RING network (shared DESIGN): names of the demo federation's towns; any other node shows its id.
TOWNS = {"tsurugashima": ("鶴ヶ島市", "Tsurugashima"), "suginami": ("杉並区", "Suginami"),
         "shibuya": ("渋谷区", "Shibuya"), "yokohama": ("横浜市", "Yokohama"), "tama": ("多摩市", "Tama"),
         "tateyama": ("館山市", "Tateyama"), "kyoto": ("京都市", "Kyoto"), "sendai": ("仙台市", "Sendai"),
         "nagoya": ("名古屋市", "Nagoya")}


def region_name(node: str, lang: str) -> str:
    ja, en = TOWNS.get(node, (node, node))
    return en if lang == "en" else ja
SNS = snc.SERVICE
PART_TIMEOUT = 2.0  # one service's part of a summary at this node
# Every other region's answer is awaited at most `regions_wait` seconds (settings; 4 s), counted from the start of
# the page (the plan included); each request's own phases at most 3/4 of it; each region gets at least 3/8 of it
# however long the plan took. A member node waits for its people's home node 2 s longer than that.
MAX_QUERY_BYTES = 8192
QUERY_LIMIT = (600, 60.0)  # signed queries per client address per minute (a home node asks once per My Page load)
QUERY_MEDIA = "application/jwt"


def http(request: Request) -> httpx.AsyncClient:
    """The gateway's client for other nodes (made with the app's lifespan)."""
    client: httpx.AsyncClient | None = getattr(request.app.state, "http", None)
    if client is None:
        raise errors.Unavailable("the gateway is starting")
    return client


# ---- this node's part ------------------------------------------------------------------------------------------


async def _part(request: Request, service: str, endpoint: str, payload: BaseModel, model: type[Any]) -> Any:
    try:
        return model.model_validate(await common.call(request, service, endpoint, payload, timeout=PART_TIMEOUT))
    except (errors.ServiceError, ValidationError):
        return None  # the part is listed as unavailable; the rest is still shown


async def local_summary(request: Request, *, user_id: str, global_handle: str) -> RegionSummary:
    """What the person does at this node: each service asked at once; one that does not answer is `unavailable`."""
    query = SummaryQuery(person=user_id, global_handle=global_handle)
    points, sns, projects = await asyncio.gather(
        _part(request, pc.SERVICE, pc.EP_PERSON_POINTS, pc.PersonQuery(person=user_id), pc.PersonPoints),
        _part(request, SNS, EP_PERSON_SUMMARY, query, SnsSummary),
        _part(request, prc.SERVICE, EP_PERSON_SUMMARY, query, ProjectsSummary),
    )
    return RegionSummary(
        node=request.app.state.settings.node_id, global_handle=global_handle,
        points=PointsPart(asset=points.asset, balance=points.balance, cards=len(points.cards)) if points else None,
        sns=sns, projects=projects,
        unavailable=[name for name, part in (("points", points), (SNS, sns), ("projects", projects)) if part is None],
    )


def _here(request: Request, summary: RegionSummary, *, home: bool) -> RegionView:
    settings = request.app.state.settings
    return RegionView(node=settings.node_id, url=settings.public_url.rstrip("/"), state="ok", checked_at=utcnow(),
                      home=home, summary=summary)


# What the body must be, as ic.PersonQueryIn checks it: the schema says the same (a shorter one is refused with 400)
_QUERY_SCHEMA = {k: v for k, v in ic.PersonQueryIn.model_json_schema()["properties"]["token"].items()
                 if k in ("minLength", "maxLength", "pattern")}


@router.post("/federation/person-summary", tags=["federation"], response_model=RegionSummary,
             summary="A home node asks what one of its people does here (a signed query as the body)",
             responses=responses(400, 401, 403, 404, 413, 429, 503),
             openapi_extra={"requestBody": {"required": True, "content": {
                 QUERY_MEDIA: {"schema": {"type": "string", "description": "the signed query (compact JWS)",
                                          **_QUERY_SCHEMA}}}}})
async def person_summary(request: Request) -> JSONResponse:
    throttle = getattr(request.app.state, "person_query_throttle", None)
    if throttle is None:
        throttle = request.app.state.person_query_throttle = ps.Throttle(
            *QUERY_LIMIT, store=request.app.state.throttle_store, name="person-query")
    if not throttle.allow(request.client.host if request.client else ""):
        raise errors.TooManyRequests("too many queries from this address; try again in a minute")
    if int(request.headers.get("content-length") or 0) > MAX_QUERY_BYTES:
        raise errors.ServiceError("the query is too large", code=413)
    body = await request.body()
    if len(body) > MAX_QUERY_BYTES:
        raise errors.ServiceError("the query is too large", code=413)
    try:
        query = ic.PersonQueryIn(token=body.decode("ascii", "replace").strip())
    except ValidationError:
        raise errors.BadRequest(f"the body must be the home node's signed query ({QUERY_MEDIA})") from None
    person = ic.QueriedPerson.model_validate(await common.call(request, ic.SERVICE, ic.EP_REGIONS_VERIFY, query))
    summary = await local_summary(request, user_id=person.user_id, global_handle=person.global_handle)
    return JSONResponse(summary.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


# ---- at home: asking every region ------------------------------------------------------------------------------


async def _ask(client: httpx.AsyncClient, query: ic.RegionQuery, handle: str, within: float) -> RegionView:
    def view(state: str, reason: str = "", summary: RegionSummary | None = None) -> RegionView:
        return RegionView(node=query.node, url=query.url, state=state, checked_at=utcnow(),
                          summary=summary, reason=reason[:300])

    try:
        r = await asyncio.wait_for(client.post(f"{query.url}/federation/person-summary", content=query.token,
                                               headers={"Content-Type": QUERY_MEDIA}, timeout=within * 3 / 4),
                                   within)
    except (httpx.HTTPError, TimeoutError) as exc:
        return view("unreachable", exc.__class__.__name__)
    if r.status_code != 200:
        try:
            detail = str(r.json().get("detail") or "")
        except ValueError:
            detail = ""
        return view("unreachable" if r.status_code >= 500 else "refused", f"HTTP {r.status_code} {detail}".strip())
    try:
        summary = RegionSummary.model_validate(r.json())
    except (ValueError, ValidationError):
        return view("refused", "the answer is not a region summary")
    if summary.node != query.node or summary.global_handle != handle:
        return view("refused", "the answer is about another node or person")
    return view("ok", summary=summary)


async def home_regions(request: Request, plan_in: ic.RegionsPlanIn) -> MyRegions:
    """At the person's home node: their part here and every other region's answer, home first."""
    started = time.monotonic()
    plan = ic.RegionsPlan.model_validate(await common.call(request, ic.SERVICE, ic.EP_REGIONS_PLAN, plan_in))
    client = http(request)
    wait = request.app.state.settings.regions_wait
    within = max(wait * 3 / 8, wait - (time.monotonic() - started))  # the plan's time counts too
    here, others = await asyncio.gather(
        local_summary(request, user_id=plan.user_id, global_handle=plan.global_handle),
        asyncio.gather(*(_ask(client, q, plan.global_handle, within) for q in plan.queries)))
    removed = [RegionView(node=r.node, url=r.url, state=state, checked_at=utcnow(), reason=r.reason[:300])
               for state, regions in (("removed", plan.removed), ("unreachable", plan.unreachable)) for r in regions]
    return MyRegions(global_handle=plan.global_handle, home_node=plan.home_node,
                     regions=[_here(request, here, home=True), *sorted([*others, *removed], key=lambda v: v.node)])


@router.get("/api/v1/me/regions", tags=["me"], response_model=MyRegions,
            summary="My communities, projects, friends and points in every region (at my home node)",
            responses=responses(400, 401, 403, 503))
async def my_regions_api(request: Request) -> JSONResponse:
    """The person's session cookie, or `Authorization: Bearer <access token>` with the scope `regions` (a member
    node's, issued by this node at the person's login there)."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        try:
            plan_in = ic.RegionsPlanIn(access_token=credentials.strip())
        except ValidationError:
            raise errors.Unauthorized("the bearer token is not an access token of this node") from None
    elif (token := ps.session_token(request)) is not None:
        plan_in = ic.RegionsPlanIn(session_token=token)
    else:
        raise errors.Unauthorized("log in, or send a bearer access token with the scope 'regions'")
    answer = await home_regions(request, plan_in)
    return JSONResponse(answer.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


# ---- at another node: asking the home node ---------------------------------------------------------------------


def home_wait(request: Request) -> float:
    """How long a member node waits for the home node (which asks the other regions within regions_wait)."""
    return request.app.state.settings.regions_wait + 2.0


async def away_regions(request: Request, user: ic.User, session_token: str) -> list[RegionView]:
    """At a node where a person of another node is logged in: their part here, and what their home node gathered
    (every region but this one, which is shown from here); the home region as unreachable if it does not answer."""
    here_task = asyncio.create_task(local_summary(request, user_id=user.id, global_handle=user.global_handle))
    try:
        access = ic.HomeAccess.model_validate(
            await common.call(request, ic.SERVICE, ic.EP_REGIONS_HOME_TOKEN, ic.SessionIn(session_token=session_token),
                              timeout=home_wait(request)))
    except errors.ServiceError as exc:
        others = _home_view(user.home_node, "", "unreachable" if exc.code >= 500 else "refused", exc.reason)
    except ValidationError:
        others = _home_view(user.home_node, "", "unreachable", "the identity service answered oddly")
    else:
        others = await _ask_home(request, access, user)
    here = await here_task
    node = request.app.state.settings.node_id
    others = [v for v in others if v.node != node]
    home = [v for v in others if v.home]
    rest = sorted([v for v in others if not v.home] + [_here(request, here, home=False)], key=lambda v: v.node)
    return home + rest


def _home_view(node: str, url: str, state: str, reason: str) -> list[RegionView]:
    """The home region when it could not give the list: unreachable, or refused with the reason."""
    return [RegionView(node=node, url=url, state=state, checked_at=utcnow(), home=True,
                       reason=reason[:300])]


async def _ask_home(request: Request, access: ic.HomeAccess, user: ic.User) -> list[RegionView]:
    def home_view(state: str, reason: str) -> list[RegionView]:
        return _home_view(access.home_node, access.url, state, reason)

    try:
        r = await http(request).get(f"{access.url}/api/v1/me/regions", timeout=home_wait(request),
                                    headers={"Authorization": f"Bearer {access.access_token}"})
    except httpx.HTTPError as exc:
        return home_view("unreachable", exc.__class__.__name__)
    if r.status_code != 200:
        return home_view("unreachable" if r.status_code >= 500 else "refused", f"HTTP {r.status_code}")
    try:
        mine = MyRegions.model_validate(r.json())
    except (ValueError, ValidationError):
        return home_view("refused", "the answer is not a list of regions")
    if mine.global_handle != user.global_handle or mine.home_node != access.home_node:
        return home_view("refused", "the home node answered about someone else")
    return [v for v in mine.regions if v.home == (v.node == access.home_node)]


# ---- My Page ---------------------------------------------------------------------------------------------------


async def my_page_regions(request: Request, user: ic.User, session_token: str) -> list[RegionView]:
    """My Page's regions: at home, every region asked from here; elsewhere, through the home node."""
    if user.home_node != request.app.state.settings.node_id:
        return await away_regions(request, user, session_token)
    if not getattr(request.state, "elsewhere", True):  # the session check said: at home only, nothing to plan
        here = await local_summary(request, user_id=user.id, global_handle=user.global_handle)
        return [_here(request, here, home=True)]
    try:
        return (await home_regions(request, ic.RegionsPlanIn(session_token=session_token))).regions
    except errors.ServiceError:  # identity could not plan: this node's part alone, still a page
        here = await local_summary(request, user_id=user.id, global_handle=user.global_handle)
        return [_here(request, here, home=True)]
