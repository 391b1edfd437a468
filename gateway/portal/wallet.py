"""The wallet pages: a person's まちづくりポイント, 単位 and 地域通貨, coupons bought with the currency (with their
codes), and the staff's coupon desk (kinds of coupon, redemption at the counter, currency awarded for an activity)."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from gateway.deps import CsrfForm, CurrentUser, StaffUser
from gateway.portal import session as ps
from gateway.portal.common import (
    actor_of,
    add_nav,
    call_identity,
    call_points,
    error_status,
    message,
    render,
    why,
)
from gateway.portal.i18n import add_words, t
from gateway.portal.pages import JST
from towntip.kernel import errors
from towntip.kernel.contracts import coupons as cc
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import points as pc

router = APIRouter(include_in_schema=False)

add_words({
    "wallet": ("マイポイント", "My points"),
    "wallet_intro": ("まちづくりポイント・単位・地域通貨の残高と、地域通貨で交換したクーポンです。",
                     "Your town points, course credits and local currency, and the coupons you got with it."),
    "coupons": ("クーポン", "Coupons"),
    "my_coupons": ("わたしのクーポン", "My coupons"),
    "no_coupons": ("まだクーポンはありません。", "No coupons yet."),
    "coupon_offer": ("地域通貨で交換できるクーポン", "Coupons for local currency"),
    "exchange": ("交換する", "Exchange"),
    "price": ("必要な地域通貨", "Price"),
    "valid_for": ("有効期間", "Valid for"),
    "days": ("日", "days"),
    "expires": ("有効期限", "Expires"),
    "coupon_code": ("クーポンコード（窓口で提示）", "Coupon code (show it at the counter)"),
    "status_active": ("利用可能", "Ready to use"),
    "status_redeemed": ("使用済み", "Used"),
    "status_expired": ("期限切れ", "Expired"),
    "bought": ("クーポンと交換しました。窓口でコードを提示してください。",
               "Exchanged. Show the code at the counter."),
    "coupon_desk": ("クーポン窓口（職員）", "Coupon desk (staff)"),
    "redeem": ("クーポンを使用済みにする", "Redeem a coupon"),
    "redeemed_ok": ("使用済みにしました", "Redeemed"),
    "coupon_kinds": ("クーポンの種類", "Kinds of coupon"),
    "code": ("コード", "Code"),
    "title_ja": ("名称（日本語）", "Name (Japanese)"),
    "title_en": ("名称（英語）", "Name (English)"),
    "issuer": ("発行元（公民館・市営バス・店舗など）", "Issuer (hall, bus, shop)"),
    "active": ("交換を受け付ける", "On offer"),
    "award_currency": ("地域通貨を付与する", "Award local currency"),
    "person_query": ("相手（例: hanako@tsurugashima またはメールアドレス）",
                     "Person (e.g. hanako@tsurugashima or e-mail)"),
    "amount": ("数量", "Amount"),
    "memo": ("活動の内容", "Activity"),
    "awarded": ("付与しました", "Awarded"),
})
add_nav("wallet", "/points", "user", "mine")
add_nav("coupon_desk", "/staff/coupons", "staff")


def _when(t_: Any) -> str:
    return t_.astimezone(JST).strftime("%Y-%m-%d %H:%M") if t_ else "—"


async def _wallet_page(request: Request, user: Any, *, status: int = 200, **ctx: Any) -> Response:
    lang = ps.lang(request)
    try:
        wallet = cc.Wallet.model_validate(await call_points(request, cc.EP_WALLET, pc.PersonQuery(person=user.id)))
        mine = cc.CouponList.model_validate(await call_points(request, cc.EP_COUPON_MINE,
                                                              pc.PersonQuery(person=user.id)))
        offer = cc.CouponTypeList.model_validate(await call_points(request, cc.EP_COUPON_TYPES, None))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=503, user=user)
    # Each exchange button carries its own purchase key: a double click or a resent form buys one coupon.
    return render(request, "wallet/wallet.html", status=status, user=user, wallet=wallet, coupons=mine.coupons,
                  offer=[k for k in offer.types if k.active], key=secrets.token_urlsafe(24), when=_when, **ctx)


@router.get("/points", response_class=HTMLResponse)
async def wallet_page(request: Request, user: CurrentUser) -> Response:
    return await _wallet_page(request, user)


@router.post("/points/coupons/buy")
async def buy(request: Request, form: CsrfForm, user: CurrentUser) -> Response:
    lang = ps.lang(request)
    try:
        await call_points(request, cc.EP_COUPON_BUY, cc.CouponBuyIn(
            person=user.id, type_code=str(form.get("type_code", "")), key=str(form.get("key", ""))))
    except ValidationError:
        return await _wallet_page(request, user, status=400, error=t("error", lang))
    except errors.ServiceError as exc:
        return await _wallet_page(request, user, status=error_status(exc),
                                  error=why(exc, lang))
    return await _wallet_page(request, user, notice=t("bought", lang))


# ---- staff: the coupon desk ---------------------------------------------------------------------------------------


async def _desk(request: Request, user: Any, *, status: int = 200, **ctx: Any) -> Response:
    lang = ps.lang(request)
    try:
        kinds = cc.CouponTypeList.model_validate(await call_points(request, cc.EP_COUPON_TYPES, None))
    except errors.ServiceError as exc:
        return message(request, heading=t("error", lang), paragraphs=[why(exc, lang)], status=503, user=user)
    return render(request, "wallet/desk.html", status=status, user=user, kinds=kinds.types,
                  key=secrets.token_urlsafe(24), **ctx)


@router.get("/staff/coupons", response_class=HTMLResponse)
async def desk(request: Request, user: StaffUser) -> Response:
    return await _desk(request, user)


@router.post("/staff/coupons/types")
async def put_type(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        q = cc.CouponTypeIn(actor=actor_of(user), code=form.get("kind_code", ""), title_ja=form.get("title_ja", ""),
                            title_en=form.get("title_en", ""), issuer=form.get("issuer", ""),
                            price=_int(form.get("price")), valid_days=_int(form.get("valid_days")),
                            active=form.get("active") == "on")
        await call_points(request, cc.EP_COUPON_TYPE_PUT, q)
    except (ValidationError, ValueError) as exc:
        return await _desk(request, user, status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        return await _desk(request, user, status=error_status(exc), error=why(exc, lang))
    return await _desk(request, user, notice=t("save", lang) + " ✓")


@router.post("/staff/coupons/redeem")
async def redeem(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    try:
        used = cc.CouponOut.model_validate(await call_points(request, cc.EP_COUPON_REDEEM, cc.CouponRedeemIn(
            actor=actor_of(user), code=str(form.get("code", "")))))
    except ValidationError as exc:
        return await _desk(request, user, status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        return await _desk(request, user, status=error_status(exc), error=why(exc, lang))
    title = used.title_en if lang == "en" else used.title_ja
    return await _desk(request, user, notice=f"{t('redeemed_ok', lang)}: {title} ({used.price})")


@router.post("/staff/currency/award")
async def award(request: Request, form: CsrfForm, user: StaffUser) -> Response:
    lang = ps.lang(request)
    actor = actor_of(user)
    try:
        who = ic.PersonRef.model_validate(await call_identity(request, ic.EP_PEOPLE_LOOKUP, ic.PersonLookupIn(
            actor=actor, query=str(form.get("person", "")))))
        await call_points(request, cc.EP_CURRENCY_AWARD, cc.CurrencyAwardIn(
            actor=actor, person=who.user_id, amount=_int(form.get("amount")), memo=str(form.get("memo", "")),
            key=str(form.get("key", ""))))
    except (ValidationError, ValueError) as exc:
        return await _desk(request, user, status=400, error=why(exc, lang))
    except errors.ServiceError as exc:
        return await _desk(request, user, status=error_status(exc), error=why(exc, lang))
    return await _desk(request, user, notice=f"{t('awarded', lang)}: {who.display_name} ({who.global_handle})")


def _int(v: Any) -> int:
    try:
        return int(str(v).strip())
    except ValueError:
        raise ValueError("a whole number is needed / 整数を入力してください") from None
