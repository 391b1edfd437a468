"""The confirmation step before an action that cannot be undone or that moves money (delete a post, close a
community, publish a theme, record a payment): a page that says what will happen, reached by a link and working
without JavaScript, whose form alone carries `confirmed=yes`. A post without it (an old form, a stray click, a
forged request that got past CSRF) changes nothing and is sent to the page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.portal.common import render
from gateway.portal.i18n import add_words
from towntip.kernel.contracts import identity as ic

FIELD = "confirmed"

add_words(
    {
        "cf_sure": ("よろしいですか？", "Are you sure?"),
        "cf_what": ("これから行うこと", "What will happen"),
        "cf_back": ("やめて戻る", "No, go back"),
        "cf_post_delete": ("投稿を削除する", "Delete the post"),
        "cf_post_delete_do": ("削除する", "Delete"),
        "cf_post_delete_1": (
            "この投稿と、ついたコメントはすべて削除されます。",
            "The post and all its comments are deleted.",
        ),
        "cf_post_delete_2": ("削除した投稿は元に戻せません。", "A deleted post cannot be brought back."),
        "cf_close": ("コミュニティを閉じる", "Close the community"),
        "cf_close_do": ("閉じる", "Close it"),
        "cf_close_1": ("これまでの投稿は残り、誰でも読めます。", "Its posts stay and anyone can still read them."),
        "cf_close_2": ("新しい投稿・コメント・参加はできなくなります。", "No one can post, comment or join any more."),
        "cf_close_3": ("閉じたコミュニティは再開できません。", "A closed community cannot be opened again."),
        "cf_publish": ("テーマを公開する", "Publish the theme"),
        "cf_publish_do": ("公開する", "Publish"),
        "cf_publish_1": (
            "テーマは誰でも見られるようになり、企業や団体がパートナーとして関心を寄せられるようになります。",
            "Anyone can read the theme, and companies and groups can show interest as partners.",
        ),
        "cf_publish_2": (
            "公開後の変更は履歴に残ります。公開を取り消すことはできません。",
            "Later changes are kept in its history. Publication cannot be withdrawn.",
        ),
        "cf_payment": ("入金を確認する", "Confirm the payment"),
        "cf_payment_do": ("入金を確認済みにする", "Mark as paid"),
        "cf_payment_1": (
            "寄附者にまちづくりポイントが付与され、寄附金受領証明書が発行できるようになります。",
            "The donor receives town points and can download the donation receipt.",
        ),
        "cf_payment_2": (
            "実際に入金があったことを、金額と受付番号で確かめてから押してください。",
            "Check that the money arrived, with the amount and the reference, before you press it.",
        ),
        "cf_reference": ("受付番号", "Reference"),
        "cf_donor": ("寄附者", "Donor"),
        "cf_amount": ("金額", "Amount"),
        "cf_project": ("寄附先", "Project"),
        "cf_title": ("件名", "Title"),
        "cf_community": ("コミュニティ", "Community"),
        "cf_theme": ("テーマ", "Theme"),
    }
)


def confirmed(form: Mapping[str, Any]) -> bool:
    return form.get(FIELD) == "yes"


def ask_first(page: str) -> Response:
    """A post that was not confirmed: to the page that asks (303, nothing done)."""
    return RedirectResponse(page, status_code=303)


def confirm_page(
    request: Request,
    user: ic.User,
    *,
    key: str,
    action: str,
    back: str,
    facts: list[tuple[str, str]],
    steps: int,
    danger: bool = True,
) -> HTMLResponse:
    """The page for one action: `key` names its words (cf_<key>, cf_<key>_do, cf_<key>_1..steps), `facts` what it
    is done to (label key, value), `action` where its form posts, `back` where "no" goes."""
    return render(
        request,
        "confirm.html",
        user=user,
        key=key,
        action=action,
        back=back,
        facts=facts,
        steps=[f"cf_{key}_{i}" for i in range(1, steps + 1)],
        danger=danger,
        field=FIELD,
    )
