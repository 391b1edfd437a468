"""The portal's checks as FastAPI dependencies: who is logged in, which role they hold, and the posted form with its
CSRF token checked. A route states what it needs in its signature, e.g.

    @router.post("/staff/coupons/redeem")
    async def redeem(request: Request, form: CsrfForm, user: StaffUser) -> Response: ...

and the checks run in the order of the parameters (the form's token first, as every form did before: a forged
post is refused with the CSRF page whether or not anyone is logged in). A check that fails sends the page it always
sent instead of running the route: the login page with `next` (no session), the 403 page (logged in without the
role), the CSRF refusal (403) or 413 (a form too large). Each dependency carries `requirement`, which
tests/test_portal_roles.py reads from every route's dependency tree.

Roles are granted by the operator (`towntip identity user grant`): "staff" (municipality staff: the coupon desk,
courses, donations and figures), "secretariat" (事務局: the inquiries inbox); a theme owner is staff or
secretariat (the projects service then checks the theme's department on every change).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from gateway.portal import common
from gateway.portal import session as ps
from gateway.portal.i18n import t
from towntip.kernel.contracts import identity as ic

PUBLIC = "public"
USER = "user"


class PageInstead(Exception):  # not an error: the response a check sends instead of the route's
    """Raised by a dependency: send this response (a login redirect, a refusal page) instead of running the route."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


async def _send(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageInstead)
    return exc.response


def install(app: FastAPI) -> None:
    """Called by gateway.app.create_app: a failed check's page is sent as it is."""
    app.add_exception_handler(PageInstead, _send)


# ---- who is logged in ---------------------------------------------------------------------------------------------


async def _session_user(request: Request) -> ic.User | None:
    """Asked once per request (FastAPI caches a dependency's answer): every check below builds on it."""
    return await common.current_user(request)


async def optional_user(request: Request) -> ic.User | None:
    """The logged-in person or None; None too while the identity service does not answer (public pages)."""
    return await common.user_or_none(request)


optional_user.requirement = PUBLIC  # type: ignore[attr-defined]


def logged_in(location: Callable[[Request], str] | None = None) -> Callable[..., Any]:
    """A dependency: the logged-in person, else the login page coming back to this page (or to `location(request)`,
    a page of the app's choosing)."""
    async def dependency(request: Request, user: Annotated[ic.User | None, Depends(_session_user)]) -> ic.User:
        if user is None or ps.session_token(request) is None:
            if location is None:
                raise PageInstead(common.login_redirect(request))
            raise PageInstead(RedirectResponse(location(request), status_code=303))
        return user

    dependency.requirement = USER  # type: ignore[attr-defined]
    return dependency


_logged_in = logged_in()


def role(*roles: str) -> Callable[..., Any]:
    """A dependency: the logged-in person if they hold one of `roles` at this node, else the login page (not logged
    in) or the 403 page (logged in without it)."""
    async def dependency(request: Request, user: Annotated[ic.User, Depends(_logged_in)]) -> ic.User:
        if not set(roles) & set(user.roles):
            lang = ps.lang(request)
            raise PageInstead(common.message(request, heading=t("error", lang), paragraphs=[t("forbidden", lang)],
                                             status=403, user=user, link=("/", t("home", lang))))
        return user

    dependency.requirement = "|".join(roles)  # type: ignore[attr-defined]
    return dependency


async def session_token(request: Request, user: Annotated[ic.User, Depends(_logged_in)]) -> str:
    """The session token of the logged-in person (what identity's own account endpoints ask for)."""
    token = ps.session_token(request)
    assert token is not None  # _logged_in has checked it
    return token


# ---- the posted form ----------------------------------------------------------------------------------------------


async def csrf_form(request: Request) -> dict[str, Any]:
    """The posted form (repeated "interests" as a list, without the token), or the refusal page: too large (413),
    or without a valid CSRF token (403: missing, forged, another browser's, or posted from another site)."""
    lang = ps.lang(request)
    if int(request.headers.get("content-length") or 0) > common.MAX_FORM_BYTES:
        raise PageInstead(common.message(request, heading=t("error", lang), paragraphs=["413"], status=413))
    form = await request.form()
    csrf = form.get("csrf")
    if not ps.csrf_ok(request, csrf if isinstance(csrf, str) else None):
        raise PageInstead(common.message(request, heading=t("error", lang), paragraphs=[t("csrf", lang)],
                                         status=403, link=(request.url.path, t("home", lang))))
    return {k: (form.getlist(k) if k == "interests" else v) for k, v in form.items() if k != "csrf"}


csrf_form.checks_csrf = True  # type: ignore[attr-defined]


async def _uploaded(request: Request, *, files: int, max_bytes: int) -> dict[str, Any]:
    lang = ps.lang(request)
    if int(request.headers.get("content-length") or 0) > max_bytes:
        raise PageInstead(common.message(request, heading=t("error", lang), paragraphs=["413"], status=413))
    form = await request.form(max_files=files, max_fields=20)
    csrf = form.get("csrf")
    if not ps.csrf_ok(request, csrf if isinstance(csrf, str) else None):
        raise PageInstead(common.message(request, heading=t("error", lang), paragraphs=[t("csrf", lang)],
                                         status=403, link=(request.url.path, t("home", lang))))
    return {k: v for k, v in form.items() if k != "csrf"}


async def csrf_upload(request: Request) -> dict[str, Any]:
    """A posted form with a file (a picture): as `csrf_form`, up to the size of one picture and its fields."""
    return await _uploaded(request, files=1, max_bytes=common.MAX_UPLOAD_BYTES)


csrf_upload.checks_csrf = True  # type: ignore[attr-defined]


async def csrf_pictures(request: Request) -> dict[str, Any]:
    """A posted form with up to four pictures (a blog entry's): as `csrf_upload`, up to four pictures' size."""
    return await _uploaded(request, files=4, max_bytes=common.MAX_PICTURES_BYTES)


csrf_pictures.checks_csrf = True  # type: ignore[attr-defined]

OptionalUser = Annotated[ic.User | None, Depends(optional_user)]
CurrentUser = Annotated[ic.User, Depends(_logged_in)]
SessionToken = Annotated[str, Depends(session_token)]
StaffUser = Annotated[ic.User, Depends(role("staff"))]
SecretariatUser = Annotated[ic.User, Depends(role("secretariat"))]
# who may own and change a theme (and start one from another town's case): staff of a department or the secretariat
ThemeOwner = Annotated[ic.User, Depends(role("staff", "secretariat"))]
CsrfForm = Annotated[dict[str, Any], Depends(csrf_form)]
CsrfUpload = Annotated[dict[str, Any], Depends(csrf_upload)]
CsrfPictures = Annotated[dict[str, Any], Depends(csrf_pictures)]
