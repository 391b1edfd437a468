"""The portal's words, Japanese first. `t(key, lang)`; a missing English falls back to Japanese."""

from __future__ import annotations

WORDS: dict[str, tuple[str, str]] = {
    "site": ("TownTip 地域協働ポータル", "TownTip regional portal"),
    "home": ("ホーム", "Home"),
    "login": ("ログイン", "Log in"),
    "logout": ("ログアウト", "Log out"),
    "register": ("新規登録", "Sign up"),
    "mypage": ("マイページ", "My Page"),
    "settings": ("設定", "Settings"),
    "profile": ("プロフィール", "Profile"),
    "password": ("パスワード", "Password"),
    "node_status": ("ノードの状態", "Node status"),
    "welcome": ("楽しみながらまちづくりに参加！", "Take part in your town, and enjoy it!"),
    "intro": (
        "地域のテーマコミュニティ、まちづくり手帳、まちづくりポイント。ひとつのIDで、どの地域のポータルにも参加できます。",
        "Theme communities, your activity notebook and town points: one ID for every region's portal."),
    "handle_or_email": ("ハンドルまたはメールアドレス", "Handle or e-mail"),
    "handle": ("ハンドル（半角英小文字・数字・_、3〜30文字）", "Handle (a-z, 0-9, _; 3-30 characters)"),
    "display_name": ("表示名", "Display name"),
    "email": ("メールアドレス", "E-mail"),
    "password_rule": ("パスワード（10文字以上）", "Password (at least 10 characters)"),
    "current_password": ("現在のパスワード", "Current password"),
    "new_password": ("新しいパスワード（10文字以上）", "New password (at least 10 characters)"),
    "forgot": ("パスワードを忘れた方", "Forgot your password?"),
    "send_reset": ("再設定リンクを送る", "Send a reset link"),
    "reset_sent": ("登録されているアドレスなら、再設定リンクを送りました。1時間以内に開いてください。",
                   "If the address has an account, a reset link is on its way. Open it within an hour."),
    "set_password": ("パスワードを設定", "Set the password"),
    "password_set": ("パスワードを設定しました。新しいパスワードでログインしてください。",
                     "Your password is set. Log in with it."),
    "password_changed": ("パスワードを変更しました。ほかの端末のログインは終了しました。",
                         "Password changed. Your other sessions have ended."),
    "registered": ("登録しました。確認メールのリンクを開いて、メールアドレスを確認してください。",
                   "You are registered. Open the link in the e-mail we sent to confirm your address."),
    "mail_help": (
        "メールが届かない場合：迷惑メールフォルダ、アドレスの入力誤り、受信拒否設定（ドメイン指定受信）をご確認ください。",
        "No e-mail? Check your spam folder, the address you typed, and any filter that blocks unknown senders."),
    "verified": ("メールアドレスを確認しました。", "Your e-mail address is confirmed."),
    "not_verified": ("メールアドレスが未確認です。", "Your e-mail address is not confirmed yet."),
    "resend": ("確認メールを再送", "Send the confirmation again"),
    "resent": ("確認メールを再送しました。", "We sent the confirmation again."),
    "global_handle": ("グローバルID", "Global ID"),
    "home_node": ("ホーム地域", "Home region"),
    "nickname": ("ニックネーム", "Nickname"),
    "district": ("地区", "District"),
    "district_none": ("選ばない", "Not stated"),
    "findable": ("名前やニックネームで検索されてもよい（トモダチ申請のため）",
                 "Others may find me by name or nickname (for friend requests)"),
    "findable_hint": ("オンにすると、このまちの登録者がトモダチ検索であなたの表示名とニックネームを見つけられます。"
                      "メールアドレスは表示されません。",
                      "When on, people of this town can find your display name and nickname in the friend search. "
                      "Your e-mail address is never shown."),
    "interests": ("関心のある分野", "Fields of interest"),
    "save": ("保存", "Save"),
    "saved": ("保存しました。", "Saved."),
    "language": ("表示言語", "Language"),
    "export": ("わたしのデータ（ダウンロード）", "My data (download)"),
    "delete_account": ("アカウントを削除", "Delete my account"),
    "delete_warning": ("アカウントとログイン情報、そしてポイント・コミュニティ・予約・お知らせなど、すべてのサービスに"
                       "あるあなたのデータを削除します(ポイントの記録は匿名で残ります)。元に戻せません。"
                       "確認のためパスワードを入力してください。",
                       "This deletes your account and your data in every service (points, community, bookings, "
                       "notices; the points ledger stays, anonymous) for good. Enter your password to confirm."),
    "deleted": ("アカウントを削除しました。", "Your account is deleted."),
    "logged_out": ("ログアウトしました。", "You are logged out."),
    "communities": ("参加コミュニティ", "Communities"),
    "projects": ("参加プロジェクト", "Projects"),
    "friends": ("友だち", "Friends"),
    "points": ("まちづくりポイント", "Town points"),
    "not_yet": ("この地域のポータルでは、まだ始まっていません。", "Not started on this portal yet."),
    "error": ("エラー", "Error"),
    "forbidden": ("このページを見る権限がありません。", "You do not have permission to see this page."),
    "csrf": ("フォームの有効期限が切れたか、別のサイトから送られました。ページを開き直して、もう一度お試しください。",
             "The form expired or came from another site. Reload the page and try again."),
    "too_many": ("ログインの試行が多すぎます。しばらく待ってからお試しください。",
                 "Too many login attempts. Wait a few minutes and try again."),
    "unavailable": ("ただいま利用できません。しばらくしてからお試しください。",
                    "Not available right now. Please try again shortly."),
    "federated": ("ほかの地域のIDでログイン", "Log in with my home region"),
    "federated_hint": ("ホーム地域のID（例: hanako@tsurugashima）", "Your ID at home (e.g. hanako@tsurugashima)"),
    "federated_go": ("ホーム地域でログイン", "Log in at home"),
    "cards": ("交通系ICカード", "Transit IC cards"),
    "card": ("カード", "Card"),
    "bound_cards": ("登録済みのカード", "Your cards"),
    "no_cards": ("まだカードを登録していません。", "No card yet."),
    "bind_card": ("カードを登録", "Add a card"),
    "card_idm": ("カードのIDm（16桁の英数字）", "The card's IDm (16 hex digits)"),
    "report_lost": ("紛失を届け出る", "Report lost"),
    "unbound": ("カードの登録を解除しました。これまでのポイントはアカウントに残ります。",
                "The card is unbound. The points you earned stay in your account."),
    "card_code": ("端末に表示された登録コード", "The code the terminal showed"),
    "card_code_help": (
        "会場の端末を「カード登録」にしてカードをタッチすると、8文字の登録コードが表示されます。10分以内に入力してください。",
        "Touch your card on a terminal in card registration mode: it shows an 8-character code. "
        "Enter it within 10 minutes."),
    "card_code_go": ("コードで登録", "Register with the code"),
    "card_registered": ("カードを登録しました。カードに貯まっていたポイントはアカウントに移りました。",
                        "Your card is registered. The points it held are now in your account."),
    "too_many_codes": ("コードの入力が多すぎます。10分ほど待ってからお試しください。",
                       "Too many codes entered. Wait about 10 minutes and try again."),
    "member_since": ("登録日", "Member since"),
}


def add_words(words: dict[str, tuple[str, str]]) -> None:
    """A feature's own words (its pages module calls this at import); a key already taken is a programming error."""
    taken = sorted(set(words) & set(WORDS))
    if taken:
        raise ValueError(f"portal words defined twice: {', '.join(taken)}")
    WORDS.update(words)


def t(key: str, lang: str) -> str:
    ja, en = WORDS.get(key, (key, key))
    return en if lang == "en" else ja
