"""The words of the identity service's refusals (towntip.kernel.contracts.identity): accounts, login, sessions,
OpenID clients and tokens, logging in with another region's ID, and the federation's person queries."""

from __future__ import annotations

from towntip.kernel.contracts import identity as c

WORDS: dict[str, tuple[str, str]] = {
    # accounts and login
    c.ACCOUNT_HANDLE_TAKEN.code: ("このハンドルはすでに使われています。別のハンドルをお選びください。",
                                  "This handle is taken. Choose another one."),
    c.ACCOUNT_EMAIL_TAKEN.code: (
        "このメールアドレスのアカウントはすでにあります。ログインするか、パスワードを再設定してください。",
        "An account with this e-mail address exists. Log in, or reset the password."),
    c.ACCOUNT_HANDLE_OR_EMAIL_TAKEN.code: (
        "このハンドルまたはメールアドレスは、たった今ほかの方が登録しました。別のものでお試しください。",
        "The handle or the e-mail address was just taken. Try another one."),
    c.ACCOUNT_LINK_INVALID.code: ("このリンクは無効か、使用済みか、有効期限が切れています。もう一度お手続きください。",
                                  "This link is invalid, used or expired. Please start again."),
    c.ACCOUNT_PASSWORD_WRONG.code: ("パスワードが違います。", "The password is wrong."),
    c.ACCOUNT_NOT_FOUND.code: ("この地域にそのユーザーはいません。", "No such user in this region."),
    c.ACCOUNT_GONE.code: ("このアカウントはすでに削除されています。", "This account no longer exists."),
    c.PROFILE_DISTRICT_UNKNOWN.code: ("地区は一覧から選んでください。", "Choose the district from the list."),
    c.LOGIN_LOCKED.code: ("ログインの失敗が続いたため、一時的にロックしています。時間をおいてからお試しください。",
                          "Too many failed logins: wait a while, then try again."),
    c.LOGIN_WRONG.code: ("ハンドル（またはメールアドレス）かパスワードが違います。",
                         "Wrong handle (or e-mail) or password."),
    c.SESSION_NONE.code: ("ログインしていないか、ログインの有効期限が切れました。もう一度ログインしてください。",
                          "You are not logged in, or your session has ended. Please log in again."),
    c.PEOPLE_STAFF_ONLY.code: ("利用者の検索は、この地域の職員だけが行えます。",
                               "Only this region's staff can look people up."),
    c.PEOPLE_NOT_FOUND.code: ("この地域には、該当する人がいません。",
                              "Nobody by that name is known in this region."),
    # OpenID clients and tokens
    c.CLIENT_EXISTS.code: ("そのIDのクライアントはすでに登録されています。",
                           "A client with that ID is registered already."),
    c.CLIENT_OPENID_REQUIRED.code: ("クライアントのスコープには openid を含めてください。",
                                    "A client's scope must include openid."),
    c.CLIENT_NOT_FOUND.code: ("そのクライアントは登録されていません。", "No such client."),
    c.TOKEN_INVALID.code: ("このアクセストークンは、この地域で有効なものではありません。",
                           "This is not a valid access token of this region."),
    # the federation, logging in with another region's ID
    c.FEDERATION_NONE.code: ("この地域は、まだ地域間の連携に参加していません。",
                             "This region belongs to no federation yet."),
    c.FEDERATION_ANCHOR_UNAVAILABLE.code: ("連携の認証基盤から応答がありません。しばらくしてからお試しください。",
                                           "The federation's trust anchor did not answer. Please try again later."),
    c.FEDERATED_THIS_NODE.code: ("それはこの地域のIDです。この画面でパスワードを入力してログインしてください。",
                                 "That ID belongs to this region: log in here with your password."),
    c.FEDERATED_UNTRUSTED.code: ("その地域は、連携先として信頼されていません。",
                                 "That region is not a trusted member of the federation."),
    c.FEDERATED_FOREIGN_PROVIDER.code: (
        "その地域のログイン先が、その地域のサイトの外を指しているため、利用できません。",
        "That region names a login provider outside its own site: it cannot be used."),
    c.FEDERATED_LINK_INVALID.code: (
        "このログインのリンクは無効か、使用済みか、有効期限が切れています。もう一度ログインしてください。",
        "This login link is unknown, used or expired. Please log in again."),
    c.FEDERATED_ISSUER_CHANGED.code: (
        "ログインの途中で、ホーム地域の設定が変わりました。もう一度ログインしてください。",
        "Your home region's settings changed during the login. Please log in again."),
    c.FEDERATED_WRONG_ISSUER.code: ("ホーム地域以外から応答がありました。もう一度ログインしてください。",
                                    "The answer did not come from your home region. Please log in again."),
    c.FEDERATED_CODE_REFUSED.code: ("ホーム地域がログインを受け付けませんでした。もう一度ログインしてください。",
                                    "Your home region refused the login. Please log in again."),
    c.FEDERATED_ID_TOKEN_INVALID.code: (
        "ホーム地域からのログイン情報を確認できませんでした。もう一度ログインしてください。",
        "Your home region's login could not be verified. Please log in again."),
    c.FEDERATED_HANDLE_LINKED.code: ("このハンドルは、この地域ではすでに別の方と結び付いています。",
                                     "This handle is linked to another person in this region."),
    c.HOME_UNTRUSTED.code: ("ホーム地域は、現在は連携先として信頼されていません。",
                            "Your home region is no longer trusted."),
    c.HOME_FOREIGN_ENDPOINT.code: ("ホーム地域の接続先が、そのサイトの外を指しているため、利用できません。",
                                   "Your home region names an address outside its own site: it cannot be used."),
    c.HOME_UNAVAILABLE.code: ("ホーム地域から正しい応答がありません。しばらくしてからお試しください。",
                              "Your home region did not answer properly. Please try again later."),
    c.HOME_NO_ACCESS.code: (
        "このログインでは、ホーム地域の情報を見ることができません。ホーム地域のIDでログインし直してください。",
        "This login holds no access to your home region. Log in again with your home ID."),
    c.HOME_RENEWING.code: ("ホーム地域との接続を更新しています。少し待ってからお試しください。",
                           "The access to your home region is being renewed. Try again in a moment."),
    c.HOME_LOGIN_ENDED.code: ("ホーム地域でのログインが終了しています。もう一度ログインしてください。",
                              "Your home region no longer accepts the login. Please log in again."),
    c.REGIONS_NO_FEDERATION.code: ("この地域は、まだ地域間の連携に参加していません。",
                                   "This region belongs to no federation yet."),
    c.REGIONS_SCOPE_MISSING.code: ("このアクセストークンには、参加地域を見る権限（regions）がありません。",
                                   "The access token lacks the 'regions' scope."),
    c.REGIONS_CLIENT_UNTRUSTED.code: ("このアクセストークンのクライアントは、この地域では信頼されていません。",
                                      "The access token's client is not trusted here."),
    c.REGIONS_CREDENTIAL_REQUIRED.code: ("ログインするか、アクセストークンを付けてお試しください。",
                                         "Log in, or send an access token."),
    c.REGIONS_HOME_ONLY.code: ("参加している地域は、ご本人のホーム地域でだけ確認できます。",
                               "Only your home region knows, or asks, where you take part."),
    # the federation's signed person queries (node to node)
    c.QUERY_MALFORMED.code: ("問い合わせの形式が正しくありません。", "The person query is not well formed."),
    c.QUERY_UNTRUSTED.code: ("問い合わせ元の地域が信頼されていません。", "The asking region is not trusted."),
    c.QUERY_INVALID.code: ("問い合わせの署名を確認できないか、有効期限が切れています。",
                           "The query does not verify, or it has expired."),
    c.QUERY_WRONG_AUDIENCE.code: ("この問い合わせは、別の地域あてです。", "The query is meant for another region."),
    c.QUERY_REPLAYED.code: ("この問い合わせには、すでに回答しています。", "The query was answered already."),
}
