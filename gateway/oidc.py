"""The node's OpenID Connect endpoints on the public HTTP edge, relayed to the identity service over NATS.

The gateway passes on only what the provider needs: the method, the URL as the issuer sees it (the public base URL
with the path and query), the Authorization and Content-Type headers, the form, and the person's session token
from the portal's cookie. The provider's answer comes back as status, headers and body. When the person has no
session here, the authorize request goes to the login page and comes back to the same URL afterwards.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from gateway.portal import session as ps
from gateway.portal.common import message, render, user_or_none
from gateway.portal.i18n import add_words, t
from gateway.portal.session import clear_session, session_token
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c

router = APIRouter(include_in_schema=False)
FORWARDED_HEADERS = ("authorization", "content-type")
MAX_FORM_BYTES = 16 * 1024
LOGOUT_CONFIRMED = "x-towntip-logout-confirmed"  # the person said yes on the logout question (identity/oidc.py)


async def _relay(request: Request, endpoint: c.OidcEndpoint) -> Response:
    answer = await _ask(request, endpoint)
    if isinstance(answer, Response):
        return answer
    if answer.login_required:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(back, safe='')}", status_code=303)
    response = _response(answer)
    if answer.clear_session:
        clear_session(response, request)
    return response


async def _ask(request: Request, endpoint: c.OidcEndpoint, own_headers: dict[str, str] | None = None
               ) -> c.OidcResponse | Response:
    """The provider's answer to this request, or the response to send when it could not be asked. `own_headers`:
    what this gateway itself tells the provider (a client's headers other than FORWARDED_HEADERS never pass)."""
    settings = request.app.state.settings
    nc = request.app.state.nc
    if nc is None or not nc.is_connected:
        return JSONResponse({"error": "temporarily_unavailable", "error_description": "the bus is not connected"},
                            status_code=503)
    form: dict[str, str] = {}
    if request.method == "POST":
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return JSONResponse({"error": "invalid_request", "error_description": "request too large"},
                                status_code=413)
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    url = settings.public_url.rstrip("/") + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    oidc_request = c.OidcRequest(
        endpoint=endpoint, method=request.method, url=url,
        headers={**{k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS},
                 **(own_headers or {})},
        form=form, session_token=session_token(request),
    )
    try:
        return c.OidcResponse.model_validate(await rpc.call(
            nc, subjects.svc(settings.node_id, c.SERVICE, c.EP_OIDC), oidc_request, timeout=settings.request_timeout))
    except Exception as exc:  # noqa: BLE001 - the provider is down or refused the relayed request itself
        status = getattr(exc, "code", 503)
        return JSONResponse({"error": "temporarily_unavailable" if status >= 500 else "invalid_request",
                             "error_description": str(exc)}, status_code=status if status >= 400 else 503)


def _response(answer: c.OidcResponse) -> Response:
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "content-type")}
    if answer.status in (301, 302, 303, 307) and "Location" in answer.headers:
        return RedirectResponse(answer.headers["Location"], status_code=302, headers=headers)
    body: Any = answer.body
    media = answer.headers.get("Content-Type", "")
    if isinstance(body, str) and media and media != "application/json":
        return Response(body, status_code=answer.status, headers=headers, media_type=media)
    if isinstance(body, str):
        try:  # authlib hands JSON over as text
            body = json.loads(body)
        except ValueError:
            return Response(body, status_code=answer.status, headers=headers, media_type="text/plain")
    if body is None and answer.status == 200:
        body = {}
    return JSONResponse(body, status_code=answer.status, headers=headers)


# ---- the provider's logout question (RP-initiated logout without a hint of the person) ----------------------

add_words({
    "logout_question": ("ログアウトしますか？", "Log out?"),
    "logout_explain": (
        "この地域のポータルからログアウトします。ほかのサイトから開かれた可能性があるため、確認しています。",
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
    return render(request, "logout.html", user=await user_or_none(request), fields=fields)


async def logout_answer_refused(request: Request) -> HTMLResponse | None:
    """None if the question's form came back with its CSRF token, else the refusal (403: nothing is ended)."""
    submitted = (await request.form()).get("csrf")
    if ps.csrf_ok(request, submitted if isinstance(submitted, str) else None):
        return None
    lang = ps.lang(request)
    return message(request, heading=t("error", lang), paragraphs=[t("csrf", lang)], status=403,
                   user=await user_or_none(request), link=("/", t("home", lang)))


@router.get("/.well-known/openid-configuration")
async def discovery(request: Request) -> Response:
    return await _relay(request, "discovery")


@router.get("/.well-known/openid-federation")
async def federation(request: Request) -> Response:
    """This node's entity configuration (OpenID Federation), signed by the node."""
    return await _relay(request, "federation")


@router.get("/oauth/jwks")
async def jwks(request: Request) -> Response:
    return await _relay(request, "jwks")


@router.api_route("/oauth/authorize", methods=["GET", "POST"])
async def authorize(request: Request) -> Response:
    return await _relay(request, "authorize")


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    return await _relay(request, "token")


@router.post("/oauth/revoke")
async def revoke(request: Request) -> Response:
    return await _relay(request, "revocation")


@router.api_route("/oauth/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> Response:
    return await _relay(request, "userinfo")


@router.api_route("/oauth/logout", methods=["GET", "POST"])
async def end_session(request: Request) -> Response:
    """RP-initiated logout. Without an id_token_hint of the person logged in here the provider asks first: this
    gateway shows the question (logout_question), and only its form, posted back here with the portal's
    CSRF token (and `confirm`), ends the session; that form without a valid token is refused and changes nothing."""
    confirmed = False
    if request.method == "POST" and int(request.headers.get("content-length") or 0) <= MAX_FORM_BYTES \
            and "confirm" in await request.form():
        refused = await logout_answer_refused(request)
        if refused is not None:
            return refused
        confirmed = True
    answer = await _ask(request, "end_session", {LOGOUT_CONFIRMED: "1"} if confirmed else None)
    if isinstance(answer, Response):
        return answer
    if answer.status == 200 and isinstance(answer.body, dict) and answer.body.get("confirm_logout"):
        return await logout_question(request)
    response = _response(answer)
    if answer.clear_session:
        clear_session(response, request)
    if response.status_code == 200 and "location" not in response.headers:
        logged_out = RedirectResponse("/?logged_out=1", status_code=303)
        clear_session(logged_out, request)
        return logged_out
    return response
