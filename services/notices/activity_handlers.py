"""The notices service's endpoint tables for activity notifications, Web Push and the navi (issue 18, points 4 and
6), added to the service's DOMAINS (services/notices/handlers.py)."""

from __future__ import annotations

from services.notices import activity, navi, push
from towntip.kernel.contracts import notices_activity as c
from towntip.kernel.domain import ANYONE, GET, POST, STAFF, Domain, own, read, write


async def push_key(*, vapid_public: str) -> c.PushKey:
    return c.PushKey(public_key=vapid_public)


ACTIVITY = Domain(
    "activity",
    ops=(
        read(
            c.EP_ACTIVITY_LIST,
            c.ActivityQuery,
            c.ActivityList,
            activity.list_,
            http=GET("/notifications", "My activity notifications, newest first"),
        ),
        write(
            c.EP_ACTIVITY_READ,
            c.ActivityRead,
            c.ActivityList,
            activity.mark_read,
            http=POST("/notifications/read", "Mark some or all of my notifications read"),
        ),
        read(
            c.EP_ACTIVITY_SETTINGS,
            c.SettingsQuery,
            c.ActivitySettings,
            activity.settings,
            http=GET("/notifications/settings", "Which kinds of notification I get, digest and push"),
        ),
        write(
            c.EP_ACTIVITY_SETTINGS_SET,
            c.SettingsIn,
            c.ActivitySettings,
            activity.set_settings,
            refusals=(c.DIGEST_NO_ADDRESS,),
            http=POST("/notifications/settings", "Switch kinds of notification, the daily digest on or off"),
        ),
    ),
)

PUSH = Domain(
    "push",
    ops=(
        read(
            c.EP_PUSH_KEY,
            None,
            c.PushKey,
            push_key,
            role=ANYONE,
            http=GET("/push/key", "The node's VAPID public key (applicationServerKey)"),
        ),
        write(
            c.EP_PUSH_SUBSCRIBE,
            c.PushSubscribeIn,
            c.ActivitySettings,
            push.subscribe,
            refusals=(c.PUSH_ENDPOINT_REFUSED, c.PUSH_TOO_MANY),
            http=POST("/push/subscriptions", "Receive my notifications in this browser (Web Push)"),
        ),
        write(
            c.EP_PUSH_UNSUBSCRIBE,
            c.PushUnsubscribeIn,
            c.ActivitySettings,
            push.unsubscribe,
            http=POST("/push/subscriptions/remove", "Stop push to one browser, or to all"),
        ),
    ),
)

NAVI = Domain(
    "navi",
    ops=(
        own(c.EP_NAVI, c.NaviQuery, c.NaviList, navi.suggest),
        # Counts only, and no actor: the redirect of a followed suggestion (gateway/portal/navi.py) names kind, reason.
        write(c.EP_NAVI_TAKE, c.NaviTake, c.NaviTaken, navi.take, role=ANYONE, refusals=(c.NAVI_UNKNOWN,)),
        read(
            c.EP_NAVI_FIGURES,
            c.NaviFiguresQuery,
            c.NaviFigures,
            navi.figures,
            role=STAFF,
            http=GET("/navi/figures", "Staff: suggestions shown and taken, per kind and reason (counts only)"),
        ),
    ),
)

DOMAINS = (ACTIVITY, PUSH, NAVI)
