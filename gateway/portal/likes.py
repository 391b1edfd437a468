"""共感 (likes) on the portal's pages: the count and the button (a form with the CSRF token: works without
JavaScript) for themes and cases (the projects service); posts and comments have theirs in gateway/portal/sns.py.
The services decide: one per person per thing, never one's own, only what is published (contracts.likes)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from gateway.portal import session as ps
from gateway.portal.common import actor_of, bad_status, call, message, why
from gateway.portal.i18n import add_words, t
from towntip.kernel import errors
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import likes as lk

add_words({
    "lk_likes": ("共感", "Empathy"),
    "lk_like": ("共感する", "Empathise"),
    "lk_unlike": ("共感を取り消す", "Withdraw empathy"),
    "lk_back": ("元のページへ戻る", "Back to the page"),
})


async def state(request: Request, service: str, kind: str, item: str, user: ic.User | None) -> lk.LikeState | None:
    """The count (and whether the person gave 共感) of one theme or case; None if the service cannot say now (the
    page shows without it)."""
    try:
        got = lk.LikeStates.model_validate(await call(request, service, lk.EP_LIKE_COUNTS, lk.LikesQuery(
            kind=kind, ids=[item], actor=actor_of(user) if user else None)))
    except (ValidationError, errors.ServiceError):
        return None
    return got.items[0] if got.items else None


async def press(request: Request, form: dict[str, object], user: ic.User, *, service: str, kind: str, item: str,
                back: str) -> Response:
    """The button: gives 共感, or withdraws it when the form says `undo`; back to the page, or the refusal's words
    (nothing changed)."""
    lang = ps.lang(request)
    try:
        data = lk.LikeIn(actor=actor_of(user), kind=kind, id=item)
        await call(request, service, lk.EP_LIKE_WITHDRAW if form.get("undo") else lk.EP_LIKE_GIVE, data)
    except (ValidationError, errors.ServiceError) as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=bad_status(exc),
                       user=user, link=(back, t("lk_back", lang)))
    return RedirectResponse(f"{back}#likes", status_code=303)
