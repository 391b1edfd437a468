"""The portal's pages: home, sign-up, e-mail confirmation, login and logout, My Page, profile, password,
data export and account deletion. Every page asks the identity service over NATS; every form is CSRF-protected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError

from gateway.portal import session as ps
from gateway.portal.i18n import add_words, t
from towntip.kernel import categories, errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts.actor import Actor

router = APIRouter(include_in_schema=False)
ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())
MAX_FORM_BYTES = 64 * 1024
# The header's links to features, in order: (word key, path, who sees it). Each feature's pages module adds its own
# with add_nav(): who is "all", "user" (logged in) or a role ("staff", "secretariat").
NAV: list[tuple[str, str, str]] = []


def add_nav(key: str, href: str, who: str = "all") -> None:
    NAV.append((key, href, who))


def _nav_for(user: c.User | None) -> list[tuple[str, str]]:
    return [(key, href) for key, href, who in NAV
            if who == "all" or (user is not None and (who == "user" or who in user.roles))]


async def call(request: Request, service: str, endpoint: str, payload: BaseModel | dict[str, Any] | None = None,
               *, timeout: float | None = None) -> Any:
    """One request to a service of this node over NATS, for a page (every portal module calls through here)."""
    settings = request.app.state.settings
    nc = request.app.state.nc
    if nc is None or not nc.is_connected:
        raise errors.Unavailable("the gateway is not connected to the node's message bus")
    return await rpc.call(nc, subjects.svc(settings.node_id, service, endpoint), payload,
                          timeout=settings.request_timeout if timeout is None else timeout)


async def _call(request: Request, endpoint: str, payload: BaseModel | dict[str, Any] | None = None) -> Any:
    """The identity service (a password check may take a moment: at least 10 s)."""
    return await call(request, c.SERVICE, endpoint, payload,
                      timeout=max(request.app.state.settings.request_timeout, 10.0))


async def current_user(request: Request) -> c.User | None:
    token = ps.session_token(request)
    if not token:
        return None
    try:
        return c.Session.model_validate(await _call(request, c.EP_SESSION, {"session_token": token})).user
    except errors.Unauthorized:
        return None


def render(request: Request, template: str, *, status: int = 200, user: c.User | None = None,
           **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    new_cookies: dict[str, str] = {}
    csrf = ps.csrf_token(request, new_cookies)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ctx.setdefault("form", {})
    body = ENV.get_template(template).render(
        t=lambda key: t(key, lang), lang=lang, node=request.app.state.settings.node_id, csrf=csrf, user=user,
        here=here, nav=_nav_for(user), **ctx,
    )
    response = HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store",
                                                               "X-Frame-Options": "DENY",
                                                               "Referrer-Policy": "same-origin"})
    if ps.CSRF_COOKIE in new_cookies:
        ps.set_csrf_cookie(response, request, new_cookies[ps.CSRF_COOKIE])
    if request.query_params.get("lang") in ("ja", "en"):
        response.set_cookie(ps.LANG_COOKIE, request.query_params["lang"], max_age=365 * 86400, samesite="lax")
    return response


def message(request: Request, *, heading: str, paragraphs: list[str], status: int = 200,
            link: tuple[str, str] | None = None, user: c.User | None = None, error: str | None = None
            ) -> HTMLResponse:
    return render(request, "message.html", status=status, heading=heading, paragraphs=paragraphs, link=link,
                  user=user, error=error)


async def form_of(request: Request) -> dict[str, Any] | HTMLResponse:
    """The posted form, or the refusal page: too large, or without a valid CSRF token (changes nothing)."""
    lang = ps.lang(request)
    if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
        return message(request, heading=t("error", lang), paragraphs=["413"], status=413)
    form = await request.form()
    if not ps.csrf_ok(request, form.get("csrf") if isinstance(form.get("csrf"), str) else None):
        return message(request, heading=t("error", lang), paragraphs=[t("csrf", lang)], status=403,
                       link=(request.url.path, t("home", lang)))
    return {k: (form.getlist(k) if k == "interests" else v) for k, v in form.items() if k != "csrf"}


async def signed_in_form(request: Request) -> tuple[dict[str, Any], c.User, str] | Response:
    """A form posted by a logged-in person: (form, user, session token), or the response to send instead
    (the refusal of a form without its CSRF token, or the way to the login page)."""
    form = await form_of(request)
    if isinstance(form, HTMLResponse):
        return form
    user = await current_user(request)
    token = ps.session_token(request)
    if user is None or token is None:
        return _login_redirect(request)
    return form, user, token


def actor_of(user: c.User) -> Actor:
    """The person as services see them (contracts.actor): passed inside requests the gateway makes for them."""
    return Actor(user_id=user.id, global_handle=user.global_handle, display_name=user.display_name,
                 roles=tuple(user.roles))


async def require_role(request: Request, *roles: str) -> c.User | Response:
    """The logged-in person if they hold one of `roles` at this node (granted by the operator:
    `towntip identity user grant`), else the login page (not logged in) or a 403 page (logged in without it)."""
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    if not set(roles) & set(user.roles):
        lang = ps.lang(request)
        return message(request, heading=t("error", lang), paragraphs=[t("forbidden", lang)], status=403, user=user,
                       link=("/", t("home", lang)))
    return user


def _reason(exc: Exception, lang: str) -> str:
    """What to tell the person about a refusal: the contract's reasons, the service's, or "not available now"."""
    if isinstance(exc, ValidationError):
        return errors.describe_validation_error(exc)
    if isinstance(exc, errors.Unavailable):
        return t("unavailable", lang)
    return str(getattr(exc, "reason", exc))


def error_status(exc: errors.ServiceError) -> int:
    """The HTTP status of a page that shows a service's refusal (a 5xx stays 5xx; anything odd is 400)."""
    return exc.code if 400 <= exc.code < 600 else 400


def _login_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


# ---- pages ----------------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    user = await _user_or_none(request)
    notice = t("logged_out", ps.lang(request)) if request.query_params.get("logged_out") else None
    return render(request, "home.html", user=user, notice=notice)


async def _user_or_none(request: Request) -> c.User | None:
    try:
        return await current_user(request)
    except errors.ServiceError:
        return None  # the home page works while identity is down


@router.get("/lang/{code}")
async def switch_lang(code: str, request: Request) -> Response:
    response = RedirectResponse(ps.safe_next(request.query_params.get("next"), "/"), status_code=303)
    if code in ("ja", "en"):
        response.set_cookie(ps.LANG_COOKIE, code, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> Response:
    return render(request, "login.html", next=ps.safe_next(request.query_params.get("next")))


@router.post("/login")
async def login(request: Request) -> Response:
    lang = ps.lang(request)
    form = await form_of(request)
    if isinstance(form, HTMLResponse):
        return form
    nxt = ps.safe_next(form.get("next"))
    ip = request.client.host if request.client else ""
    if not request.app.state.login_throttle.allow(ip):
        return render(request, "login.html", status=429, error=t("too_many", lang), next=nxt,
                      form={"login": form.get("login", "")})
    try:
        data = c.LoginIn(login=form.get("login", ""), password=form.get("password", ""), client_ip=ip,
                         user_agent=request.headers.get("user-agent", "")[:300])
        sess = c.Session.model_validate(await _call(request, c.EP_LOGIN, data))
    except ValidationError:
        return render(request, "login.html", status=400, error=t("handle_or_email", lang), next=nxt, form=form)
    except errors.ServiceError as exc:
        return render(request, "login.html", status=error_status(exc), error=_reason(exc, lang), next=nxt,
                      form={"login": form.get("login", "")})
    response = RedirectResponse(nxt, status_code=303)
    ps.set_session(response, request, sess.session_token)
    return response


@router.post("/login/federated")
async def login_federated(request: Request) -> Response:
    """Log in with one's home node: off to its provider, through the federation's trust."""
    lang = ps.lang(request)
    form = await form_of(request)
    if isinstance(form, HTMLResponse):
        return form
    nxt = ps.safe_next(form.get("next"))
    try:
        data = c.FederatedStartIn(target=str(form.get("target", "")).strip().lower(), return_to=nxt)
        start = c.FederatedStart.model_validate(await _call(request, c.EP_FEDERATED_START, data))
    except ValidationError:
        return render(request, "login.html", status=400, error=t("federated_hint", lang), next=nxt)
    except errors.ServiceError as exc:
        return render(request, "login.html", status=error_status(exc),
                      error=_reason(exc, lang), next=nxt)
    return RedirectResponse(start.authorize_url, status_code=303)


@router.get("/login/federated/callback")
async def login_federated_callback(request: Request) -> Response:
    lang = ps.lang(request)
    q = request.query_params
    if q.get("error"):
        return message(request, heading=t("error", lang), status=400,
                       paragraphs=[f"{q.get('error')}: {q.get('error_description', '')}"[:300]],
                       link=("/login", t("login", lang)))
    ip = request.client.host if request.client else ""
    try:
        data = c.FederatedFinishIn(state=q.get("state", ""), code=q.get("code", ""), iss=q.get("iss", ""), client_ip=ip,
                                   user_agent=request.headers.get("user-agent", "")[:300])
        done = c.FederatedSession.model_validate(await _call(request, c.EP_FEDERATED_FINISH, data))
    except ValidationError:
        return message(request, heading=t("error", lang), paragraphs=["invalid callback"], status=400,
                       link=("/login", t("login", lang)))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[_reason(exc, lang)],
                       status=error_status(exc), link=("/login", t("login", lang)))
    response = RedirectResponse(ps.safe_next(done.return_to), status_code=303)
    ps.set_session(response, request, done.session.session_token)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await form_of(request)
    if isinstance(form, HTMLResponse):
        return form
    token = ps.session_token(request)
    if token:
        try:
            await _call(request, c.EP_LOGOUT, {"session_token": token})
        except errors.ServiceError:
            pass  # the cookie goes anyway; the session expires on its own
    response = RedirectResponse("/?logged_out=1", status_code=303)
    ps.clear_session(response, request)
    return response


# ---- the provider's logout question (RP-initiated logout without a hint of the person: gateway/oidc.py) -------

add_words({
    "logout_question": ("ログアウトしますか？", "Log out?"),
    "logout_explain": ("この地域のポータルからログアウトします。ほかのサイトから開かれた可能性があるため、確認しています。",
                       "This logs you out of this region's portal. We ask because another site may have sent you here."),
    "logout_yes": ("ログアウトする", "Log out"),
    "logout_no": ("ログインしたままにする", "Stay logged in"),
    "logged_in_as": ("ログイン中", "Logged in as"),
})
LOGOUT_FIELDS = ("id_token_hint", "post_logout_redirect_uri", "state", "client_id")  # carried to the answer


async def logout_question(request: Request) -> HTMLResponse:
    """"Log out?" (OpenID Connect RP-Initiated Logout 1.0 §2): the answer is this form posted back to
    /oauth/logout with the portal's CSRF token, which no other site's page can send (and no frame: DENY)."""
    asked = {**request.query_params, **(await request.form() if request.method == "POST" else {})}
    fields = {k: v for k in LOGOUT_FIELDS if isinstance(v := asked.get(k), str) and v}
    return render(request, "logout.html", user=await _user_or_none(request), fields=fields)


async def logout_answer_refused(request: Request) -> HTMLResponse | None:
    """None if the question's form came back with its CSRF token, else the refusal (403: nothing is ended)."""
    submitted = (await request.form()).get("csrf")
    if ps.csrf_ok(request, submitted if isinstance(submitted, str) else None):
        return None
    lang = ps.lang(request)
    return message(request, heading=t("error", lang), paragraphs=[t("csrf", lang)], status=403,
                   user=await _user_or_none(request), link=("/", t("home", lang)))


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request) -> Response:
    return render(request, "register.html")


@router.post("/register")
async def register(request: Request) -> Response:
    lang = ps.lang(request)
    form = await form_of(request)
    if isinstance(form, HTMLResponse):
        return form
    keep = {k: form.get(k, "") for k in ("handle", "display_name", "email")}
    try:
        data = c.RegisterIn(handle=form.get("handle", ""), display_name=form.get("display_name", ""),
                            email=form.get("email", ""), password=form.get("password", ""), lang=lang)
        await _call(request, c.EP_REGISTER, data)
    except ValidationError as exc:
        return render(request, "register.html", status=400, error=errors.describe_validation_error(exc), form=keep)
    except errors.ServiceError as exc:
        return render(request, "register.html", status=error_status(exc),
                      error=_reason(exc, lang), form=keep)
    return message(request, heading=t("register", lang), paragraphs=[t("registered", lang), t("mail_help", lang)],
                   link=("/login", t("login", lang)))


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email(request: Request) -> Response:
    lang = ps.lang(request)
    try:
        await _call(request, c.EP_VERIFY_EMAIL, c.TokenIn(token=request.query_params.get("token", "")))
    except (ValidationError, errors.ServiceError) as exc:
        reason = _reason(exc, lang) if isinstance(exc, errors.ServiceError) else "invalid link"
        return message(request, heading=t("error", lang), paragraphs=[reason], status=400,
                       link=("/me", t("mypage", lang)))
    return message(request, heading=t("verified", lang), paragraphs=[], link=("/me", t("mypage", lang)))


@router.post("/verify-email/resend")
async def resend(request: Request) -> Response:
    lang = ps.lang(request)
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, user, _token = got
    await _call(request, c.EP_RESEND_VERIFICATION, {"email": user.email, "lang": lang})
    return message(request, heading=t("resend", lang), paragraphs=[t("resent", lang), t("mail_help", lang)],
                   user=user, link=("/me", t("mypage", lang)))


@router.get("/me", response_class=HTMLResponse)
async def my_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    from gateway import regions  # it builds on this module's helpers

    lang = ps.lang(request)
    names = {cat.code: (cat.name_en if lang == "en" else cat.name_ja) for cat in categories.all_categories()}
    # every region where the person takes part, home first; a part or a region that does not answer says so
    views = await regions.my_page_regions(request, user, ps.session_token(request) or "")
    return render(request, "me.html", user=user, interests=[names.get(i, i) for i in user.interests],
                  since=user.created_at.astimezone(JST).strftime("%Y-%m-%d"), regions=views, categories=names,
                  region_name=lambda n: regions.region_name(n, lang),
                  local_time=lambda t: t.astimezone(JST).strftime("%m/%d %H:%M"))


async def _points(request: Request, endpoint: str, payload: BaseModel) -> Any:
    return await call(request, pc.SERVICE, endpoint, payload)


async def _cards_page(request: Request, user: c.User, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    try:
        points = pc.PersonPoints.model_validate(await _points(request, pc.EP_PERSON_POINTS,
                                                              pc.PersonQuery(person=user.id)))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", ps.lang(request)), paragraphs=[_reason(exc, ps.lang(request))],
                       status=503, user=user)
    return render(request, "cards.html", status=status, user=user, points=points, **ctx)


# Binding a card online: typing its IDm proves nothing (anyone with a reader can read one), so the request only
# makes the card's next touches at a terminal show a code, entered below by whoever holds the card.
add_words({
    "bind_code_help": ("登録を申し込んだら、15分以内にいずれかの会場端末へカードをいつも通りタッチしてください。"
                       "端末に8文字の登録コードが表示されます。このページの「コードで登録」に入力すると登録が完了し、"
                       "カードに貯まっていたポイントがアカウントに移ります。",
                       "After asking, touch the card as usual on any event terminal within 15 minutes. The terminal "
                       "shows an 8-character code: enter it on this page under \"Register with the code\" to complete "
                       "the binding, and the card's points move to your account."),
    "pending_code": ("登録申請中：端末にタッチしてコードを入力してください",
                     "Requested: touch a terminal, then enter the code it shows"),
    "card_code_where": ("カードをタッチすると、端末に8文字の登録コードが表示されます（「カード登録」モードの端末、"
                        "または下で登録を申し込んだあとの会場端末）。10分以内に入力してください。",
                        "Touching your card shows an 8-character code on a terminal in card registration mode, or on "
                        "any event terminal after you ask below. Enter it within 10 minutes."),
})


@router.get("/settings/cards", response_class=HTMLResponse)
async def cards_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    return await _cards_page(request, user)


@router.post("/settings/cards/bind")
async def bind_card(request: Request) -> Response:
    lang = ps.lang(request)
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, user, _token = got
    try:
        await _points(request, pc.EP_CARD_BIND_REQUEST,
                      pc.CardBindRequest(person=user.id, card_idm=str(form.get("card_idm", "")).strip()))
    except ValidationError:
        return await _cards_page(request, user, status=400, error=t("card_idm", lang))
    except errors.ServiceError as exc:
        return await _cards_page(request, user, status=error_status(exc),
                                 error=_reason(exc, lang))
    return await _cards_page(request, user, notice=t("bind_code_help", lang))


CODE_ATTEMPTS = (10, 600.0)  # registration codes tried per person per 10 minutes (a code has 40 bits and lives 10 min)


@router.post("/settings/cards/code")
async def card_code(request: Request) -> Response:
    """The one-time code a terminal showed (a touch in registration mode, or any touch of a card whose binding was
    asked for online): binds that card to the logged-in person."""
    lang = ps.lang(request)
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, user, _token = got
    throttle = getattr(request.app.state, "card_code_throttle", None)
    if throttle is None:
        throttle = request.app.state.card_code_throttle = ps.Throttle(*CODE_ATTEMPTS)
    if not throttle.allow(user.id):
        return await _cards_page(request, user, status=429, error=t("too_many_codes", lang))
    try:
        await _points(request, pc.EP_CARD_REGISTER_CODE, pc.CardCodeIn(person=user.id, code=str(form.get("code", ""))))
    except ValidationError:
        return await _cards_page(request, user, status=400, error=t("card_code_where", lang))
    except errors.ServiceError as exc:
        return await _cards_page(request, user, status=error_status(exc),
                                 error=_reason(exc, lang))
    return await _cards_page(request, user, notice=t("card_registered", lang))


@router.post("/settings/cards/unbind")
async def unbind_card(request: Request) -> Response:
    lang = ps.lang(request)
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, user, _token = got
    try:
        await _points(request, pc.EP_CARD_UNBIND, pc.CardUnbind(person=user.id, card_ref=str(form.get("card_ref", ""))))
    except ValidationError:
        return await _cards_page(request, user, status=400, error="card")
    except errors.ServiceError as exc:
        return await _cards_page(request, user, status=error_status(exc),
                                 error=_reason(exc, lang))
    return await _cards_page(request, user, notice=t("unbound", lang))


@router.get("/settings/profile", response_class=HTMLResponse)
async def profile_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    return render(request, "profile.html", user=user, categories=categories.all_categories())


@router.post("/settings/profile")
async def profile(request: Request) -> Response:
    lang = ps.lang(request)
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, user, token = got
    try:
        data = c.ProfileUpdateIn(session_token=token, display_name=form.get("display_name"),
                                 nickname=form.get("nickname", ""), district=form.get("district", ""),
                                 interests=form.get("interests", []), lang=form.get("lang") or None)
        user = c.User.model_validate(await _call(request, c.EP_PROFILE_UPDATE, data))
    except ValidationError as exc:
        return render(request, "profile.html", status=400, user=user, categories=categories.all_categories(),
                      error=errors.describe_validation_error(exc))
    except errors.ServiceError as exc:
        return render(request, "profile.html", status=exc.code, user=user, categories=categories.all_categories(),
                      error=_reason(exc, lang))
    response = render(request, "profile.html", user=user, categories=categories.all_categories(),
                      notice=t("saved", user.lang))
    response.set_cookie(ps.LANG_COOKIE, user.lang, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/settings/password", response_class=HTMLResponse)
async def password_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    return render(request, "password.html", user=user, action="/settings/password", token=None)


@router.post("/settings/password")
async def change_password(request: Request) -> Response:
    lang = ps.lang(request)
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, user, token = got
    try:
        data = c.PasswordChangeIn(session_token=token, current_password=form.get("current_password", ""),
                                  new_password=form.get("new_password", ""))
        await _call(request, c.EP_PASSWORD_CHANGE, data)
    except (ValidationError, errors.ServiceError) as exc:
        reason = _reason(exc, lang)
        return render(request, "password.html", status=400 if isinstance(exc, ValidationError) else exc.code,
                      user=user, action="/settings/password", token=None, error=reason)
    return message(request, heading=t("password", lang), paragraphs=[t("password_changed", lang)], user=user,
                   link=("/me", t("mypage", lang)))


@router.get("/password/forgot", response_class=HTMLResponse)
async def forgot_page(request: Request) -> Response:
    return render(request, "forgot.html")


@router.post("/password/forgot")
async def forgot(request: Request) -> Response:
    lang = ps.lang(request)
    form = await form_of(request)
    if isinstance(form, HTMLResponse):
        return form
    try:
        await _call(request, c.EP_RESET_REQUEST, c.EmailIn(email=form.get("email", ""), lang=lang))
    except ValidationError as exc:
        return render(request, "forgot.html", status=400, error=errors.describe_validation_error(exc))
    return message(request, heading=t("forgot", lang), paragraphs=[t("reset_sent", lang), t("mail_help", lang)])


@router.get("/password/reset", response_class=HTMLResponse)
async def reset_page(request: Request) -> Response:
    return render(request, "password.html", action="/password/reset", token=request.query_params.get("token", ""))


@router.post("/password/reset")
async def reset(request: Request) -> Response:
    lang = ps.lang(request)
    form = await form_of(request)
    if isinstance(form, HTMLResponse):
        return form
    try:
        await _call(request, c.EP_RESET, c.ResetIn(token=form.get("token", ""),
                                                  new_password=form.get("new_password", "")))
    except (ValidationError, errors.ServiceError) as exc:
        reason = _reason(exc, lang)
        return render(request, "password.html", status=400, action="/password/reset",
                      token=form.get("token", ""), error=reason)
    return message(request, heading=t("password", lang), paragraphs=[t("password_set", lang)],
                   link=("/login", t("login", lang)))


@router.get("/settings/export")
async def export(request: Request) -> Response:
    token = ps.session_token(request)
    if token is None:
        return _login_redirect(request)
    try:
        data = await _call(request, c.EP_EXPORT, {"session_token": token})
    except errors.Unauthorized:
        return _login_redirect(request)
    return Response(json.dumps(data, ensure_ascii=False, indent=2), media_type="application/json",
                    headers={"Content-Disposition": 'attachment; filename="towntip-my-data.json"',
                             "Cache-Control": "no-store"})


@router.get("/settings/delete", response_class=HTMLResponse)
async def delete_page(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return _login_redirect(request)
    return render(request, "delete.html", user=user)


@router.post("/settings/delete")
async def delete(request: Request) -> Response:
    lang = ps.lang(request)
    got = await signed_in_form(request)
    if isinstance(got, Response):
        return got
    form, user, token = got
    try:
        await _call(request, c.EP_DELETE, c.DeleteIn(session_token=token, password=form.get("password", "x")))
    except errors.ServiceError as exc:
        return render(request, "delete.html", status=exc.code, user=user, error=_reason(exc, lang))
    response = message(request, heading=t("deleted", lang), paragraphs=[], link=("/", t("home", lang)))
    ps.clear_session(response, request)
    return response
