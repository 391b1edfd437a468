"""The portal's pages: home, sign-up, e-mail confirmation, login and logout, My Page, profile, password,
data export and account deletion. Every page asks the identity service over NATS; every form is CSRF-protected."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from gateway import regions
from gateway.deps import CsrfForm, CurrentUser, OptionalUser, SessionToken
from gateway.portal import leaders
from gateway.portal import session as ps
from gateway.portal.common import (
    call_identity,
    call_points,
    error_status,
    message,
    render,
    user_or_none,
    why,
)
from gateway.portal.home import home_page
from gateway.portal.i18n import add_words, t
from gateway.words import words
from towntip.kernel import categories, errors
from towntip.kernel.clock import JST
from towntip.kernel.contracts import identity as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import sns as sns_contract

router = APIRouter(include_in_schema=False)

add_words({
    "page_404": ("ページが見つかりません", "Page not found"),
    "page_404_text": ("お探しのページは移動または削除されたか、アドレスが間違っている可能性があります。",
                      "The page may have moved or been removed, or the address may be mistyped."),
    "page_403": ("このページは表示できません", "You cannot see this page"),
    "page_403_text": ("このページを見る権限がありません。ログインしているアカウントをご確認ください。",
                      "You have no permission for this page. Check which account you are logged in with."),
    "page_405": ("この操作はできません", "This cannot be done here"),
    "page_405_text": ("このアドレスではその操作は受け付けていません。トップページからやり直してください。",
                      "This address does not take that request. Please start again from the home page."),
    "to_home": ("トップページへ", "To the home page"),
})


async def error_page(request: Request, status: int) -> Response:
    """A friendly page for a browser that asked for an address that is not there (404), not theirs (403) or not
    for that method (405): Japanese first, the site's header, a way home (gateway/problems.py calls it)."""
    lang = ps.lang(request)
    user = await user_or_none(request)
    return message(request, heading=t(f"page_{status}", lang), paragraphs=[t(f"page_{status}_text", lang)],
                   status=status, link=("/", t("to_home", lang)), user=user)


# ---- pages ----------------------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, user: OptionalUser) -> Response:
    notice = t("logged_out", ps.lang(request)) if request.query_params.get("logged_out") else None
    return await home_page(request, user, notice)  # gateway/portal/home.py: the living home page


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
async def login(request: Request, form: CsrfForm) -> Response:
    lang = ps.lang(request)
    nxt = ps.safe_next(form.get("next"))
    ip = request.client.host if request.client else ""
    throttle: ps.LoginThrottle = request.app.state.login_throttle
    if not throttle.allow(ip, str(form.get("login", ""))):
        return render(request, "login.html", status=429, error=t("too_many", lang), next=nxt,
                      form={"login": form.get("login", "")})
    try:
        data = c.LoginIn(login=form.get("login", ""), password=form.get("password", ""), client_ip=ip,
                         user_agent=request.headers.get("user-agent", "")[:300])
        sess = c.Session.model_validate(await call_identity(request, c.EP_LOGIN, data))
    except ValidationError:
        return render(request, "login.html", status=400, error=t("handle_or_email", lang), next=nxt, form=form)
    except errors.ServiceError as exc:
        if exc.error_code == c.LOGIN_WRONG.code:
            throttle.failed(ip)
        return render(request, "login.html", status=error_status(exc), error=why(exc, lang), next=nxt,
                      form={"login": form.get("login", "")})
    response = RedirectResponse(nxt, status_code=303)
    ps.set_session(response, request, sess.session_token)
    return response


@router.post("/login/federated")
async def login_federated(request: Request, form: CsrfForm) -> Response:
    """Log in with one's home node: off to its provider, through the federation's trust."""
    lang = ps.lang(request)
    nxt = ps.safe_next(form.get("next"))
    try:
        data = c.FederatedStartIn(target=str(form.get("target", "")).strip().lower(), return_to=nxt)
        start = c.FederatedStart.model_validate(await call_identity(request, c.EP_FEDERATED_START, data))
    except ValidationError:
        return render(request, "login.html", status=400, error=t("federated_hint", lang), next=nxt)
    except errors.ServiceError as exc:
        return render(request, "login.html", status=error_status(exc),
                      error=why(exc, lang), next=nxt)
    return RedirectResponse(start.authorize_url, status_code=303)


@router.get("/login/federated/callback")
async def login_federated_callback(request: Request) -> Response:
    lang = ps.lang(request)
    q = request.query_params
    if q.get("error"):
        return message(request, heading=t("error", lang), status=400,  # the OAuth error code, not its description
                       paragraphs=[t("federated_error", lang).format(error=str(q.get("error"))[:60])],
                       link=("/login", t("login", lang)))
    ip = request.client.host if request.client else ""
    try:
        data = c.FederatedFinishIn(state=q.get("state", ""), code=q.get("code", ""), iss=q.get("iss", ""), client_ip=ip,
                                   user_agent=request.headers.get("user-agent", "")[:300])
        done = c.FederatedSession.model_validate(await call_identity(request, c.EP_FEDERATED_FINISH, data))
    except ValidationError:
        return message(request, heading=t("error", lang), paragraphs=[words(c.FEDERATED_LINK_INVALID.code, lang)],
                       status=400, link=("/login", t("login", lang)))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)],
                       status=error_status(exc), link=("/login", t("login", lang)))
    response = RedirectResponse(ps.safe_next(done.return_to), status_code=303)
    ps.set_session(response, request, done.session.session_token)
    return response


@router.post("/logout")
async def logout(request: Request, form: CsrfForm) -> Response:
    token = ps.session_token(request)
    if token:
        try:
            await call_identity(request, c.EP_LOGOUT, {"session_token": token})
        except errors.ServiceError:
            pass  # the cookie goes anyway; the session expires on its own
    response = RedirectResponse("/?logged_out=1", status_code=303)
    ps.clear_session(response, request)
    return response


@router.get("/register", response_class=HTMLResponse)
async def register_page(request: Request) -> Response:
    return render(request, "register.html")


@router.post("/register")
async def register(request: Request, form: CsrfForm) -> Response:
    lang = ps.lang(request)
    keep = {k: form.get(k, "") for k in ("handle", "display_name", "email")}
    try:
        data = c.RegisterIn(handle=form.get("handle", ""), display_name=form.get("display_name", ""),
                            email=form.get("email", ""), password=form.get("password", ""), lang=lang)
        await call_identity(request, c.EP_REGISTER, data)
    except ValidationError as exc:
        return render(request, "register.html", status=400, error=why(exc, lang), form=keep)
    except errors.ServiceError as exc:
        return render(request, "register.html", status=error_status(exc),
                      error=why(exc, lang), form=keep)
    return message(request, heading=t("register", lang), paragraphs=[t("registered", lang), t("mail_help", lang)],
                   link=("/login", t("login", lang)))


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_email(request: Request) -> Response:
    lang = ps.lang(request)
    try:
        await call_identity(request, c.EP_VERIFY_EMAIL, c.TokenIn(token=request.query_params.get("token", "")))
    except (ValidationError, errors.ServiceError) as exc:
        reason = why(exc, lang) if isinstance(exc, errors.ServiceError) else words(c.ACCOUNT_LINK_INVALID.code, lang)
        return message(request, heading=t("error", lang), paragraphs=[reason], status=400,
                       link=("/me", t("mypage", lang)))
    return message(request, heading=t("verified", lang), paragraphs=[], link=("/me", t("mypage", lang)))


@router.post("/verify-email/resend")
async def resend(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    await call_identity(request, c.EP_RESEND_VERIFICATION, {"email": user.email, "lang": lang})
    return message(request, heading=t("resend", lang), paragraphs=[t("resent", lang), t("mail_help", lang)],
                   user=user, link=("/me", t("mypage", lang)))


def _may_lead(views: list[Any], request: Request) -> bool:
    """False when this node's sns part of My Page lists the person's communities and they lead none of them."""
    here = next((v for v in views if v.node == request.app.state.settings.node_id), None)
    sns = here.summary.sns if here is not None and here.summary is not None else None
    return sns is None or any(g.role == "leader" for g in sns.communities)


@router.get("/me", response_class=HTMLResponse)
async def my_page(request: Request, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    names = categories.labels(lang)
    # every region where the person takes part, home first; a part or a region that does not answer says so
    views = await regions.my_page_regions(request, user, ps.session_token(request) or "")
    # the leader's card only for a person who leads a community here: most do not, and are spared the call
    leader = await leaders.leader_todo(request, user) if _may_lead(views, request) else None
    return render(request, "me.html", user=user, interests=[names.get(i, i) for i in user.interests],
                  leader=leader, leader_days=sns_contract.LEADER_WINDOW_DAYS,
                  since=user.created_at.astimezone(JST).strftime("%Y-%m-%d"), regions=views, categories=names,
                  region_name=lambda n: regions.region_name(n, lang),
                  local_time=lambda t: t.astimezone(JST).strftime("%m/%d %H:%M"))


async def _cards_page(request: Request, user: c.User, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    try:
        points = pc.PersonPoints.model_validate(await call_points(request, pc.EP_PERSON_POINTS,
                                                                  pc.PersonQuery(person=user.id)))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", ps.lang(request)), paragraphs=[why(exc, ps.lang(request))],
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
    "federated_error": ("ホーム地域でのログインが完了しませんでした（{error}）。もう一度ログインしてください。",
                        "The login at your home region did not complete ({error}). Please log in again."),
    "card_code_where": ("カードをタッチすると、端末に8文字の登録コードが表示されます（「カード登録」モードの端末、"
                        "または下で登録を申し込んだあとの会場端末）。10分以内に入力してください。",
                        "Touching your card shows an 8-character code on a terminal in card registration mode, or on "
                        "any event terminal after you ask below. Enter it within 10 minutes."),
})


@router.get("/settings/cards", response_class=HTMLResponse)
async def cards_page(request: Request, user: CurrentUser) -> Response:
    return await _cards_page(request, user)


@router.post("/settings/cards/bind")
async def bind_card(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        await call_points(request, pc.EP_CARD_BIND_REQUEST,
                          pc.CardBindRequest(person=user.id, card_idm=str(form.get("card_idm", "")).strip()))
    except ValidationError:
        return await _cards_page(request, user, status=400, error=t("card_idm", lang))
    except errors.ServiceError as exc:
        return await _cards_page(request, user, status=error_status(exc),
                                 error=why(exc, lang))
    return await _cards_page(request, user, notice=t("bind_code_help", lang))


CODE_ATTEMPTS = (10, 600.0)  # registration codes tried per person per 10 minutes (a code has 40 bits and lives 10 min)


@router.post("/settings/cards/code")
async def card_code(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    """The one-time code a terminal showed (a touch in registration mode, or any touch of a card whose binding was
    asked for online): binds that card to the logged-in person."""
    lang = ps.lang(request)
    throttle = getattr(request.app.state, "card_code_throttle", None)
    if throttle is None:
        throttle = request.app.state.card_code_throttle = ps.Throttle(
            *CODE_ATTEMPTS, store=request.app.state.throttle_store, name="card-code")
    if not throttle.allow(user.id):
        return await _cards_page(request, user, status=429, error=t("too_many_codes", lang))
    try:
        await call_points(request, pc.EP_CARD_REGISTER_CODE,
                          pc.CardCodeIn(person=user.id, code=str(form.get("code", ""))))
    except ValidationError:
        return await _cards_page(request, user, status=400, error=t("card_code_where", lang))
    except errors.ServiceError as exc:
        return await _cards_page(request, user, status=error_status(exc),
                                 error=why(exc, lang))
    return await _cards_page(request, user, notice=t("card_registered", lang))


@router.post("/settings/cards/unbind")
async def unbind_card(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        await call_points(request, pc.EP_CARD_UNBIND,
                          pc.CardUnbind(person=user.id, card_ref=str(form.get("card_ref", ""))))
    except ValidationError:
        return await _cards_page(request, user, status=400, error="card")
    except errors.ServiceError as exc:
        return await _cards_page(request, user, status=error_status(exc),
                                 error=why(exc, lang))
    return await _cards_page(request, user, notice=t("unbound", lang))


@router.get("/settings/profile", response_class=HTMLResponse)
async def profile_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "profile.html", user=user, categories=categories.all_categories())


@router.post("/settings/profile")
async def profile(request: Request, form: CsrfForm, user: CurrentUser, token: SessionToken) -> Response:
    lang = ps.lang(request)
    try:
        data = c.ProfileUpdateIn(session_token=token, display_name=form.get("display_name"),
                                 nickname=form.get("nickname", ""), district=form.get("district", ""),
                                 interests=form.get("interests", []), lang=form.get("lang") or None,
                                 findable=form.get("findable") == "1")
        user = c.User.model_validate(await call_identity(request, c.EP_PROFILE_UPDATE, data))
    except ValidationError as exc:
        return render(request, "profile.html", status=400, user=user, categories=categories.all_categories(),
                      error=why(exc, lang))
    except errors.ServiceError as exc:
        return render(request, "profile.html", status=exc.code, user=user, categories=categories.all_categories(),
                      error=why(exc, lang))
    response = render(request, "profile.html", user=user, categories=categories.all_categories(),
                      notice=t("saved", user.lang))
    response.set_cookie(ps.LANG_COOKIE, user.lang, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/settings/password", response_class=HTMLResponse)
async def password_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "password.html", user=user, action="/settings/password", token=None)


@router.post("/settings/password")
async def change_password(request: Request, form: CsrfForm, user: CurrentUser, token: SessionToken
                          ) -> Response:
    lang = ps.lang(request)
    try:
        data = c.PasswordChangeIn(session_token=token, current_password=form.get("current_password", ""),
                                  new_password=form.get("new_password", ""))
        await call_identity(request, c.EP_PASSWORD_CHANGE, data)
    except (ValidationError, errors.ServiceError) as exc:
        reason = why(exc, lang)
        return render(request, "password.html", status=400 if isinstance(exc, ValidationError) else exc.code,
                      user=user, action="/settings/password", token=None, error=reason)
    return message(request, heading=t("password", lang), paragraphs=[t("password_changed", lang)], user=user,
                   link=("/me", t("mypage", lang)))


@router.get("/password/forgot", response_class=HTMLResponse)
async def forgot_page(request: Request) -> Response:
    return render(request, "forgot.html")


@router.post("/password/forgot")
async def forgot(request: Request, form: CsrfForm) -> Response:
    lang = ps.lang(request)
    try:
        await call_identity(request, c.EP_RESET_REQUEST, c.EmailIn(email=form.get("email", ""), lang=lang))
    except ValidationError as exc:
        return render(request, "forgot.html", status=400, error=why(exc, lang))
    return message(request, heading=t("forgot", lang), paragraphs=[t("reset_sent", lang), t("mail_help", lang)])


@router.get("/password/reset", response_class=HTMLResponse)
async def reset_page(request: Request) -> Response:
    return render(request, "password.html", action="/password/reset", token=request.query_params.get("token", ""))


@router.post("/password/reset")
async def reset(request: Request, form: CsrfForm) -> Response:
    lang = ps.lang(request)
    try:
        await call_identity(request, c.EP_RESET, c.ResetIn(token=form.get("token", ""),
                                                  new_password=form.get("new_password", "")))
    except (ValidationError, errors.ServiceError) as exc:
        reason = why(exc, lang)
        return render(request, "password.html", status=400, action="/password/reset",
                      token=form.get("token", ""), error=reason)
    return message(request, heading=t("password", lang), paragraphs=[t("password_set", lang)],
                   link=("/login", t("login", lang)))


@router.get("/settings/delete", response_class=HTMLResponse)
async def delete_page(request: Request, user: CurrentUser) -> Response:
    return render(request, "delete.html", user=user)


@router.post("/settings/delete")
async def delete(request: Request, form: CsrfForm, user: CurrentUser, token: SessionToken) -> Response:
    lang = ps.lang(request)
    try:
        # what becomes of their posts and comments (issue 20 point 7): kept by nobody unless they chose "remove"
        content = "remove" if form.get("content") == "remove" else "anonymise"
        await call_identity(request, c.EP_DELETE, c.DeleteIn(session_token=token, password=form.get("password", "x"),
                                                             content=content))
    except errors.ServiceError as exc:
        return render(request, "delete.html", status=exc.code, user=user, error=why(exc, lang))
    response = message(request, heading=t("deleted", lang), paragraphs=[], link=("/", t("home", lang)))
    ps.clear_session(response, request)
    return response
