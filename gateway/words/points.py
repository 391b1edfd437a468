"""What a resident or a member of staff reads for each refusal of the points service: {code: (Japanese, English)}."""

WORDS: dict[str, tuple[str, str]] = {
    # events, cards and taps (contracts/points.py)
    "event.not_found": ("指定されたイベントが見つかりません。", "We could not find that event."),
    "card.already_yours": (
        "このカードはすでにあなたのアカウントに登録されています。",
        "This card is already registered to your account.",
    ),
    "card.bound_elsewhere": (
        "このカードは別のアカウントに登録されています。登録を移すには、"
        "先にそのアカウントで紛失の届け出をしてください。",
        "This card is registered to another account. Please report it lost from that account first.",
    ),
    "card.already_registered": (
        "このカードは登録済みです。登録し直す場合は、マイページで紛失の届け出をしてください。",
        "This card is already registered. To register it again, please report it lost on My Page first.",
    ),
    "card.not_found": (
        "お使いのアカウントに、そのカードは登録されていません。",
        "No such card is registered to your account.",
    ),
    "card.code_invalid": (
        "登録コードが正しくないか、有効期限が切れています。端末の登録モードでもう一度カードをタッチしてください。",
        "The registration code is incorrect or has expired. Please touch your card again at a terminal in "
        "registration mode.",
    ),
    "tap.mode_unsupported": (
        "この端末のモードでのタッチは、現在受け付けていません。",
        "Touches in this terminal mode are not accepted yet.",
    ),
    "tap.id_reused": (
        "同じ番号の別のタッチがすでに記録されています。係員にお知らせください。",
        "Another touch with the same number has already been recorded. Please tell a member of staff.",
    ),
    "tap.repeat_of_refused": (
        "受け付けられなかったタッチの再送です。もう一度カードをタッチしてください。",
        "This repeats a touch that was not accepted. Please touch your card again.",
    ),
    # the ledger and its assets (contracts/ledger.py)
    "ledger.bad_key": (
        "取引キーの形式が正しくありません（英数字と _ . : @ - で8〜200文字）。",
        "The entry key is not valid (8 to 200 letters, digits or _ . : @ -).",
    ),
    "ledger.bad_kind": ("取引の種類の指定が正しくありません。", "The kind of entry is not valid."),
    "ledger.bad_legs": ("1件の取引には2〜64件の仕訳が必要です。", "An entry needs 2 to 64 postings."),
    "ledger.bad_account": (
        "口座の指定が正しくありません（種類:ID の形式です）。",
        "The account is not valid (it is written kind:id).",
    ),
    "ledger.unknown_asset": (
        "この地域では扱っていないポイント・通貨です。",
        "This point or currency is not handled here.",
    ),
    "ledger.bad_amount": (
        "金額は0以外の整数で、上限以内で指定してください。",
        "The amount must be a whole number other than 0, within the limit.",
    ),
    "ledger.account_twice": (
        "1件の取引の中で、同じ口座が同じ資産に2回指定されています。",
        "The same account appears twice for one asset in this entry.",
    ),
    "ledger.unbalanced": ("仕訳の合計がゼロになっていません。", "The postings of this entry do not add up to zero."),
    "ledger.text_too_long": (
        "操作者は100文字以内、メモは200文字以内で入力してください。",
        "The actor may have up to 100 characters and the memo up to 200.",
    ),
    "ledger.key_reused": (
        "この取引キーは、別の取引ですでに使われています。",
        "This entry key has already been used for a different entry.",
    ),
    "ledger.insufficient_balance": ("残高が足りません。", "The balance is not sufficient."),
    "ledger.entry_not_found": ("指定された取引が見つかりません。", "We could not find that entry."),
    "ledger.reversal_final": (
        "取消の取引はさらに取り消せません。新しい取引として登録してください。",
        "A reversal cannot itself be reversed. Please post a new entry instead.",
    ),
    "ledger.already_reversed": ("この取引はすでに取り消されています。", "This entry has already been reversed."),
    "asset.rule_exclusive": (
        "有効期限と減価は、どちらか一方だけ設定できます。",
        "A point or currency may have an expiry or a monthly reduction, not both.",
    ),
    "asset.not_found": ("指定されたポイント・通貨が見つかりません。", "We could not find that point or currency."),
    # the wallet and coupons (contracts/coupons.py)
    "coupon.staff_only": ("この操作は職員のみ行えます。", "Only staff can do this."),
    "coupon.purchase_key_reused": (
        "この購入番号は、別のクーポンの購入に使われています。もう一度お試しください。",
        "This purchase number was used for another coupon. Please try again.",
    ),
    "coupon.not_offered": ("このクーポンは現在取り扱っていません。", "This coupon is not offered at the moment."),
    "coupon.not_enough_currency": ("地域通貨の残高が足りません。", "You do not have enough local currency."),
    "coupon.not_found": (
        "クーポンが見つかりません。使えるクーポンがあるかご確認ください。",
        "We could not find the coupon. Please check that you have one you can use.",
    ),
    "coupon.already_used": ("このクーポンは使用済みです。", "This coupon has already been used."),
    "coupon.expired": ("このクーポンは有効期限が切れています。", "This coupon has expired."),
    "coupon.card_not_registered": (
        "このカードはアカウントに登録されていません。クーポンを使うには、マイページでカードを登録してください。",
        "This card is not registered to an account. To use coupons, please register it on My Page.",
    ),
    # courses, certifications and certificates (contracts/courses.py)
    "course.clash": (
        "ほかの方が同時に更新しました。もう一度お試しください。",
        "Someone else changed this at the same moment. Please try again.",
    ),
    "course.staff_only": ("この操作は職員のみ行えます。", "Only staff can do this."),
    "course.not_found": ("指定された講座が見つかりません。", "We could not find that course."),
    "certification.unknown_courses": (
        "登録されていない講座が含まれています。",
        "Some of the courses named are not registered.",
    ),
    "certificate.not_found": ("証明書が見つかりません。", "We could not find that certificate."),
    "certificate.already_revoked": (
        "この証明書はすでに取り消されています。",
        "This certificate has already been revoked.",
    ),
    # donations (contracts/donations.py)
    "donation.unknown_method": ("この支払方法は取り扱っていません。", "This payment method is not available."),
    "donation.staff_only": ("この操作は職員のみ行えます。", "Only staff can do this."),
    "donation.project_not_found": ("指定されたプロジェクトが見つかりません。", "We could not find that project."),
    "donation.over_balance": (
        "寄附金の残高を超える金額は登録できません。",
        "This amount is more than the donations left for the project.",
    ),
    "donation.no_free_reference": (
        "受付番号を発行できませんでした。しばらくしてからもう一度お試しください。",
        "We could not issue a reference number. Please try again in a moment.",
    ),
    "donation.project_not_certified": (
        "このプロジェクトは認定されていないため、寄附を受け付けていません。",
        "This project is not certified, so it does not accept donations.",
    ),
    "donation.project_closed": (
        "このプロジェクトは寄附の受付を終了しました。",
        "This project is no longer accepting donations.",
    ),
    "donation.not_found": ("受付番号が見つかりません。", "We could not find that reference number."),
    "donation.already_settled": (
        "この寄附はすでに確定または取消されています。",
        "This donation has already been confirmed or cancelled.",
    ),
    "donation.wrong_confirmation": (
        "この支払方法の寄附は、ここでは確認できません。",
        "Donations with this payment method cannot be confirmed here.",
    ),
    "donation.not_cancellable": (
        "確定済み・取消済みの寄附は取り消せません。",
        "A donation that is confirmed or already cancelled cannot be cancelled.",
    ),
    "donation.receipt_not_ready": (
        "受領証明書は、寄附の確定後に発行されます。",
        "The receipt is issued once the donation has been confirmed.",
    ),
    "donation.card_not_donors": (
        "このカードは、寄附をお申し込みになった方のカードではありません。",
        "This card is not registered to the person who made the pledge.",
    ),
    # the notebook and the staff's figures (contracts/notebook.py)
    "figures.staff_only": ("集計は職員のみ見ることができます。", "Only staff can see the figures."),
    # facility fees paid for the bookings service (contracts/payments.py)
    "payment.insufficient_balance": ("地域通貨の残高が足りません。", "Not enough local currency for the fee."),
    "payment.coupon_not_usable": ("このクーポンはこの使用料に使えません。", "This coupon cannot pay this fee."),
    "payment.key_reused": ("この支払いキーは別の支払いに使われています。", "The key was used for another payment."),
    "payment.not_charged": ("この支払いの記録がない、または返金額が支払額を超えています。",
                            "Nothing was charged under that key, or less than the refund."),
}
