"""Feedback events from the terminal agent and the words shown for them (Japanese first, then English)."""

from __future__ import annotations

from dataclasses import dataclass

# Kinds of feedback, as the agent reports them:
#   accepted   the card was read and the tap is on the device (sent next)
#   ignored    the same card again within the debounce window: counted once
#   refused    the read was not a FeliCa IDm (touch again)
#   needs_ref  donation/coupon mode, but staff has not entered what the touch confirms
#   queued     the node is out of reach (or silent): the tap waits on the device and is sent later
#   credited   the node took the tap (points, balance, and what the mode confirms)
#   duplicate  the node had this tap already (e.g. re-sent after a restart)
#   already    the person (or card) checked in to this event before: an event's points are earned once
#   rejected   the node refused the tap, with its reason
KINDS = ("accepted", "ignored", "refused", "needs_ref", "queued", "credited", "duplicate", "already", "rejected")

# The tone each kind plays (none for "accepted": the outcome follows within milliseconds, with its own tone).
TONES = {
    "accepted": None, "ignored": "notice", "refused": "error", "needs_ref": "error", "queued": "queued",
    "credited": "success", "duplicate": "notice", "already": "notice", "rejected": "error",
}


@dataclass(frozen=True)
class Feedback:
    """What happened at the terminal. `kind` is one of KINDS; the rest is filled where it applies."""

    kind: str
    idm: str = ""
    tap_id: str | None = None
    detail: str = ""
    mode: str = "checkin"
    points: int | None = None
    balance: int | None = None
    display: str = ""  # what the node asked the terminal to show (e.g. a registration code)
    code: int | None = None  # the node's error code, for rejected


@dataclass(frozen=True)
class Message:
    """One screenful: the kind, the tone to play (or None), and the words in Japanese and English."""

    kind: str
    tone: str | None
    ja: str
    en: str

    @property
    def text(self) -> str:
        return f"{self.ja}\n{self.en}"


def _balance(fb: Feedback) -> tuple[str, str]:
    if fb.balance is None:
        return "", ""
    return f"（残高 {fb.balance}）", f" (balance {fb.balance})"


def _points_en(n: int) -> str:
    return f"{n} point{'' if n == 1 else 's'} earned"


def _credited(fb: Feedback) -> tuple[str, str]:
    bja, ben = _balance(fb)
    pts = fb.points or 0
    if fb.mode == "register":  # the node shows a one-time code the person enters on the portal
        if fb.display:
            return (f"登録コード：{fb.display}（10分以内にマイページで入力してください）",
                    f"Registration code: {fb.display} (enter it on the portal within 10 minutes)")
        ja, en = "カードを登録しました", "Card registered"
    elif fb.mode == "donation":
        ja, en = "寄附を確認しました。ありがとうございます", "Donation confirmed, thank you"
        if pts:
            ja, en = f"{ja}。{pts}ポイント獲得{bja}", f"{en}. {_points_en(pts)}{ben}"
    elif fb.mode == "coupon":
        ja, en = "クーポンを利用しました", "Coupon redeemed"
    else:
        ja, en = f"{pts}ポイント獲得{bja}", f"{_points_en(pts)}{ben}"
    if fb.display:
        ja, en = f"{ja}：{fb.display}", f"{en}: {fb.display}"
    return ja, en


def render(fb: Feedback) -> Message:
    """The words for one feedback event."""
    kind = fb.kind
    if kind == "credited":
        ja, en = _credited(fb)
    elif kind == "duplicate":
        bja, ben = _balance(fb)
        ja, en = f"このタッチは受付済みです{bja}", f"This touch was already counted{ben}"
    elif kind == "already":
        bja, ben = _balance(fb)
        ja, en = (f"チェックイン済みです（ポイントは1イベント1回）{bja}",
                  f"Already checked in (an event's points are earned once){ben}")
        if fb.display:
            ja, en = f"{ja}：{fb.display}", f"{en}: {fb.display}"
    elif kind == "accepted":
        ja, en = "読み取りました。送信中…", "Card read. Sending…"
    elif kind == "ignored":
        ja, en = "読み取り済みです", "Already read"
    elif kind == "refused":
        ja, en = ("カードを読み取れませんでした。もう一度タッチしてください",
                  "Could not read the card. Please touch again")
    elif kind == "needs_ref":
        what_ja, what_en = ("寄附", "donation") if fb.mode == "donation" else ("クーポン", "coupon")
        ja = f"係員が{what_ja}の番号を入力してからタッチしてください"
        en = f"Staff must enter the {what_en} number before the touch"
    elif kind == "queued":
        ja, en = ("受け付けました（オフライン：接続が戻りしだい送信します）",
                  "Accepted (offline: it will be sent when the connection is back)")
    elif kind == "rejected":
        reason = f"：{fb.detail}" if fb.detail else ""
        ja, en = f"受け付けられませんでした{reason}", f"Not accepted{': ' + fb.detail if fb.detail else ''}"
    else:
        ja, en = fb.kind, fb.kind
    return Message(kind=kind, tone=TONES.get(kind), ja=ja, en=en)
