"""The words of the gateway's own refusals (gateway/api/generated.py) and of the generic codes a ServiceError gets
when nothing more precise was declared (towntip.kernel.errors.GENERIC_CODES and generic_code).
tests/gateway/test_words.py checks that each of those codes has words here."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    # the generic codes (errors.GENERIC_CODES, errors.generic_code)
    "request.invalid": ("入力内容または依頼の内容に誤りがあります。確認して、もう一度お試しください。",
                        "The request is not valid. Check it and try again."),
    "request.unauthenticated": ("ログインが必要です。ログインしてから、もう一度お試しください。",
                                "You need to log in. Log in and try again."),
    "request.forbidden": ("この操作を行う権限がありません。", "You do not have permission to do this."),
    "request.not_found": ("お探しのものが見つかりません。", "What you are looking for was not found."),
    "request.conflict": ("ほかの操作と重なったため、受け付けられませんでした。ページを開き直してください。",
                         "This clashes with another change. Reload the page."),
    "request.too_large": ("送信された内容が大きすぎます。", "What was sent is too large."),
    "request.unprocessable": ("入力内容を処理できませんでした。内容を確認してください。",
                              "The input could not be processed. Check it."),
    "request.too_many": ("短い時間に操作が集中しました。少し時間をおいてからお試しください。",
                         "Too many requests. Wait a little and try again."),
    "request.refused": ("この操作は受け付けられませんでした。", "The request was refused."),
    "service.internal": ("システムで問題が発生しました。しばらくしてからお試しください。",
                         "Something went wrong on our side. Please try again later."),
    "service.bad_gateway": ("連携先のサービスから正しい応答がありませんでした。しばらくしてからお試しください。",
                            "A service we rely on did not answer properly. Please try again later."),
    "service.unavailable": ("ただいま利用できません。しばらくしてからお試しください。",
                            "Not available right now. Please try again shortly."),
    # the gateway's own (gateway/api/generated.py: NO_TOKEN is request.unauthenticated, above)
    "request.person_required": ("この操作は、ログインした本人のアカウントで行ってください。",
                                "This needs a person's own account, logged in."),
    "request.role_missing": ("この操作に必要な役割（職員・事務局など）がありません。",
                             "This needs a role (staff, secretariat...) that your account does not hold here."),
}
