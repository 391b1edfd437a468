"""What every portal page shares: asking a service over NATS, rendering a page or a message, the navigation, the
words of a refusal and its status, the way to the login page, and who is logged in. Feature modules import these
by their public names; the checks a route needs (login, role, CSRF) are dependencies in gateway/deps.py."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ValidationError

from gateway import words
from gateway.portal import navbar, pictures, public_answers, stylesheet
from gateway.portal import session as ps
from gateway.portal.i18n import t
from gateway.portal.navbar import add_nav as add_nav  # feature modules add their pages through common
from gateway.portal.navbar import nav_for as nav_for
from towntip.kernel import categories, errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts.actor import Actor

log = logging.getLogger(__name__)
ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape())
ENV.filters["palette"] = navbar.palette  # base.html: the town's colour and the inks that read on it
ENV.globals["stylesheet"] = stylesheet.URL
ENV.globals["category_groups"] = categories.grouped()  # templates/_categories.html: families of everyday words
ENV.globals["card_picture"] = pictures.card_picture  # a card's illustration by its first category's family
MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 10 * 1024 * 1024 + MAX_FORM_BYTES  # one picture (towntip.kernel.images) and its fields
MAX_PICTURES_BYTES = 4 * 10 * 1024 * 1024 + MAX_FORM_BYTES  # a blog entry's four pictures and its fields


# ---- asking the node's services ---------------------------------------------------------------------------------


async def call(request: Request, service: str, endpoint: str, payload: BaseModel | dict[str, Any] | None = None,
               *, timeout: float | None = None) -> Any:
    """One request to a service of this node over NATS, for a page (every portal module calls through here). A
    visitor's public read may be answered from what another visitor was just told (gateway/portal/public_answers.py)."""
    settings = request.app.state.settings
    nc = request.app.state.nc
    if nc is None or not nc.is_connected:
        raise errors.Unavailable("the gateway is not connected to the node's message bus")

    def ask() -> Awaitable[Any]:
        return rpc.call(nc, subjects.svc(settings.node_id, service, endpoint), payload,
                        timeout=settings.request_timeout if timeout is None else timeout)

    kept = getattr(request.app.state, "public_answers", None)
    if (kept is not None and request.method == "GET" and not ps.session_token(request)
            and public_answers.cacheable(endpoint, payload)):
        return await kept.get(public_answers.key_of(service, endpoint, payload), ask)
    return await ask()


async def call_identity(request: Request, endpoint: str, payload: BaseModel | dict[str, Any] | None = None) -> Any:
    """The identity service (a password check may take a moment: at least 10 s)."""
    return await call(request, c.SERVICE, endpoint, payload,
                      timeout=max(request.app.state.settings.request_timeout, 10.0))


async def call_points(request: Request, endpoint: str, payload: BaseModel | None) -> Any:
    """The points service."""
    return await call(request, pc.SERVICE, endpoint, payload)


# ---- who is logged in ---------------------------------------------------------------------------------------------


async def current_user(request: Request) -> c.User | None:
    """The person of this browser's session, or None (no session, or one the identity service does not know)."""
    token = ps.session_token(request)
    if not token:
        return None
    try:
        found = c.Session.model_validate(await call_identity(request, c.EP_SESSION, {"session_token": token}))
    except errors.Unauthorized:
        return None
    request.state.elsewhere = found.elsewhere  # My Page asks the other regions only when there are some
    return found.user


async def user_or_none(request: Request) -> c.User | None:
    """current_user, or None while the identity service does not answer (public pages work without it)."""
    try:
        return await current_user(request)
    except errors.ServiceError:
        return None


def actor_of(user: c.User) -> Actor:
    """The person as services see them (contracts.actor): passed inside requests the gateway makes for them."""
    return Actor(user_id=user.id, global_handle=user.global_handle, display_name=user.display_name,
                 roles=tuple(user.roles))


def login_redirect(request: Request) -> RedirectResponse:
    """To the login page, coming back to this page (path and query) afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(here, safe='')}", status_code=303)


# ---- pages ----------------------------------------------------------------------------------------------------


def render(request: Request, template: str, *, status: int = 200, user: c.User | None = None,
           **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    new_cookies: dict[str, str] = {}
    csrf = ps.csrf_token(request, new_cookies)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    ctx.setdefault("form", {})
    body = ENV.get_template(template).render(
        t=lambda key: t(key, lang), lang=lang, node=request.app.state.settings.node_id, csrf=csrf, user=user,
        town=request.app.state.town,
        here=here, tabs=navbar.tabs(user), tab=navbar.current_tab(request.url.path),
        crumbs=navbar.crumbs(request.url.path, user, lang), **ctx,
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


# ---- refusals -----------------------------------------------------------------------------------------------------


def why(exc: Exception, lang: str) -> str:
    """What to tell the person about a refusal, in the page's language: the words of its code (gateway/words), never
    the service's English sentence on a Japanese page. A form's failed check names the field (words.invalid); a code
    without words yet says so generically with the code (an English page shows the service's own sentence)."""
    if isinstance(exc, ValidationError):
        return words.invalid(exc, lang)
    code = getattr(exc, "error_code", None)
    if isinstance(exc, errors.ServiceError):  # the page shows words; the operator's log keeps the details
        log.info("refusal %s (%s) shown as its words: %s", code, exc.code, exc.reason,
                 extra={"refusal_code": code, "refusal_reason": exc.reason})
    if words.has_words(code):
        return words.words(code, lang)
    if isinstance(exc, errors.Unavailable):
        return t("unavailable", lang)
    if isinstance(exc, errors.ServiceError):
        return exc.reason if lang == "en" else words.unknown(exc.error_code, lang)
    return words.words("form.invalid_input", lang)  # the page's own reading of the form failed (a ValueError)


def error_status(exc: errors.ServiceError) -> int:
    """The HTTP status of a page that shows a service's refusal (a 5xx stays 5xx; anything odd is 400)."""
    return exc.code if 400 <= exc.code < 600 else 400


def bad_status(exc: Exception) -> int:
    """The status of a form's page shown again: the service's for its refusal; 400 for what the contract refused
    or the page could not read (a ValueError: a date typed wrong)."""
    return error_status(exc) if isinstance(exc, errors.ServiceError) else 400


AgainFn = Callable[[Request, c.User, int, str], Awaitable[Response]]


def again_page(page: Callable[..., Awaitable[Response]], *args: str) -> AgainFn:
    """The form's page shown again after a refusal: `page(request, user, *args, status=, error=)`."""
    async def again(request: Request, user: c.User, status: int, error: str) -> Response:
        return await page(request, user, *args, status=status, error=error)
    return again
