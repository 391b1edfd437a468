"""What the co-creation pages share (projects, projects_calls, projects_pilots, federation): asking the projects
service, the page and refusal of its templates, a theme as this person sees it, and a form post that goes back to
its page with the reason when refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from gateway.portal import session as ps
from gateway.portal.common import AgainFn, actor_of, bad_status, call, message, render, why
from gateway.portal.i18n import t
from gateway.portal.pages import JST
from towntip.kernel import categories, errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import projects as c


async def ask(request: Request, endpoint: str, payload: BaseModel | dict[str, Any]) -> Any:
    return await call(request, c.SERVICE, endpoint, payload)


def jst(value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Times are UTC on the wire and Asia/Tokyo on screen."""
    if not value:
        return ""
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return when.astimezone(JST).strftime(fmt)
    except ValueError:
        return str(value)


def page(request: Request, template: str, *, user: ic.User | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = ps.lang(request)
    names = categories.labels(lang)
    phases = c.PHASES_EN if lang == "en" else c.PHASES
    return render(request, f"projects/{template}", status=status, user=user, jst=jst, category_names=names,
                  categories=categories.all_categories(), phases=phases, sizes=c.ORG_SIZES, **ctx)


def refusal(request: Request, exc: errors.ServiceError | ValidationError, user: ic.User | None,
            back: tuple[str, str] | None = None) -> HTMLResponse:
    """A refusal (or a form's failed check: 400) as a message page, in the page's language."""
    lang = ps.lang(request)
    heading = t("pj_not_found", lang) if isinstance(exc, errors.NotFound) else t("error", lang)
    return message(request, heading=heading, paragraphs=[why(exc, lang)], status=bad_status(exc), user=user,
                   link=back or ("/themes", t("pj_themes", lang)))


def is_internal(user: ic.User | None) -> bool:
    return user is not None and bool({"staff", "secretariat"} & set(user.roles))


async def form_lists(request: Request) -> Any:
    """The posted form with repeated fields (checkboxes): the CsrfForm dependency has checked its token and size
    already, and Starlette keeps the parsed form, so this reads no body twice."""
    return await request.form()


async def get_theme(request: Request, theme_id: str, user: ic.User | None) -> c.Theme:
    try:
        q = c.ThemeQuery(theme_id=theme_id, actor=actor_of(user) if user else None)
    except ValidationError:
        raise c.THEME_NOT_FOUND(f"no theme {theme_id}") from None
    return c.Theme.model_validate(await ask(request, c.EP_THEME_GET, q))


async def managed_theme(request: Request, theme_id: str, user: ic.User) -> c.Theme:
    """The theme, if this person may change it (the service checks again on every change)."""
    theme = await get_theme(request, theme_id, user)
    if not theme.may_manage:
        raise c.THEME_MANAGERS_ONLY(f"only staff of {theme.owner_department_name} (the theme's owner) or the "
                                    "secretariat may change this theme")
    return theme


async def my_departments(request: Request, user: ic.User) -> list[c.Org]:
    """The departments a theme may be made for by this person: their own, or all for the secretariat."""
    q = c.OrgListQuery(kind="department", member=None if "secretariat" in user.roles else actor_of(user))
    return c.OrgList.model_validate(await ask(request, c.EP_ORG_LIST, q)).orgs


async def form_action(request: Request, form: dict[str, Any], user: ic.User,
                      make: Callable[[Any, dict[str, Any], Any], tuple[str, Any]], done: str, again: AgainFn
                      ) -> Response:
    """A form post (its token checked, the person logged in: the route's dependencies): the call the form makes,
    then `done` (a redirect) or the page again with the reason."""
    raw = await form_lists(request)
    try:
        endpoint, payload = make(actor_of(user), form, raw)
        await ask(request, endpoint, payload)
    except (ValidationError, errors.ServiceError) as exc:
        request.state.refusal_code = getattr(exc, "error_code", None)  # pages act on the code (gateway/words)
        return await again(request, user, bad_status(exc), why(exc, ps.lang(request)))
    return RedirectResponse(done, status_code=303)
