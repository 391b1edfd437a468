"""The endpoints of the collected feeds and the calendar (issue 18 points 5 and 7), as tables the notices service
adds to its DOMAINS: registering, reading and pausing a feed, its sorting rules, the public items and calendar
entries, and the private calendar's token."""

from __future__ import annotations

from services.notices import calendar_tokens, feeds
from towntip.kernel.contracts import notices_feeds as f
from towntip.kernel.domain import ANYONE, GATEWAY, GET, POST, STAFF, Domain, own, read, write

FEEDS = Domain(
    "feeds",
    refusals=(f.FEED_STAFF_ONLY,),
    ops=(
        own(
            f.EP_FEED_REGISTER,
            f.FeedCreate,
            f.Feed,
            feeds.register,
            role=STAFF,
            admin=True,
            refusals=(f.FEED_DUPLICATE, f.FEED_BAD_URL, f.FEED_ADDRESS_REFUSED, f.FEED_UNREACHABLE),
            http=POST(
                "/feeds", "Register a feed of another site (RSS, Atom, iCalendar, JSON); read at once", status=201
            ),
        ),
        read(
            f.EP_FEED_LIST,
            f.FeedListQuery,
            f.FeedList,
            feeds.list_,
            role=STAFF,
            admin=True,
            http=GET("/feeds", "Registered feeds, their state and why one is broken"),
        ),
        own(
            f.EP_FEED_POLL,
            f.FeedAction,
            f.Feed,
            feeds.poll_now,
            role=STAFF,
            admin=True,
            refusals=(f.FEED_NOT_FOUND,),
            http=POST("/feeds/{feed_id}/poll", "Read a feed now"),
        ),
        write(
            f.EP_FEED_PAUSE,
            f.FeedPause,
            f.Feed,
            feeds.pause,
            role=STAFF,
            admin=True,
            refusals=(f.FEED_NOT_FOUND,),
            http=POST("/feeds/{feed_id}/pause", "Stop or resume reading a feed"),
        ),
        read(
            f.EP_FEED_RULES,
            f.RulesQuery,
            f.Rules,
            feeds.rules_get,
            role=STAFF,
            admin=True,
            http=GET("/feed-rules", "The rules that sort collected items into categories"),
        ),
        write(
            f.EP_FEED_RULES_PUT,
            f.RulesPut,
            f.Rules,
            feeds.rules_put,
            role=STAFF,
            admin=True,
            http=POST("/feed-rules", "Replace the sorting rules (the first that matches wins)"),
        ),
        read(
            f.EP_FEED_ITEMS,
            f.ItemsQuery,
            f.ItemList,
            feeds.items,
            role=ANYONE,
            http=GET("/feed-items", "Collected notices and events, newest first"),
        ),
    ),
)

PUBLIC = Domain(
    "public",
    ops=(
        read(
            f.EP_PUBLIC,
            f.PublicQuery,
            f.PublicNotices,
            feeds.public,
            role=ANYONE,
            http=GET("/public-notices", "The node's public notices: sent to everyone, and collected"),
        ),
    ),
)

CALENDAR = Domain(
    "calendar",
    ops=(
        read(
            f.EP_CALENDAR,
            f.CalendarQuery,
            f.CalendarEntries,
            feeds.calendar,
            role=ANYONE,
            http=GET("/calendar-entries", "Collected calendar entries of a span of days"),
        ),
        write(
            f.EP_CALENDAR_TOKEN,
            f.CalendarTokenIn,
            f.CalendarToken,
            calendar_tokens.new_token,
            http=POST("/calendar-token", "A new private calendar URL (the old one stops working)", status=201),
        ),
        read(
            f.EP_CALENDAR_STATUS,
            f.CalendarStatusQuery,
            f.CalendarStatus,
            calendar_tokens.status,
            http=GET("/calendar-token", "Whether I have a private calendar URL, and since when"),
        ),
        read(
            f.EP_CALENDAR_HOLDER,
            f.CalendarHolderQuery,
            f.CalendarHolder,
            calendar_tokens.holder,
            role=GATEWAY,
            refusals=(f.CALENDAR_TOKEN_UNKNOWN,),
        ),
    ),
)

DOMAINS = (FEEDS, PUBLIC, CALENDAR)
