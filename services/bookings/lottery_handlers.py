"""The endpoints of registered groups (団体登録) and lotteries (抽選), one table per domain (added to the service's
DOMAINS in services/bookings/handlers.py)."""

from __future__ import annotations

from services.bookings import groups, lottery
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_lottery as lc
from towntip.kernel.domain import ANYONE, GET, POST, STAFF, Domain, read, write

GROUPS = Domain("groups", refusals=(lc.GROUP_NOT_FOUND,), ops=(
    write(lc.EP_GROUP_APPLY, lc.GroupApply, lc.Group, groups.apply,
          refusals=(lc.GROUP_INVALID, lc.GROUP_NAME_TAKEN),
          http=POST("/groups", "Apply to register a group (団体登録): the applicant is its representative",
                    status=201)),
    write(lc.EP_GROUP_DECIDE, lc.GroupDecide, lc.Group, groups.decide, role=STAFF, admin=True,
          refusals=(lc.GROUP_STAFF_ONLY, lc.GROUP_BAD_DECISION),
          http=POST("/groups/{group_id}/decide", "Approve, reject, suspend or reinstate a group (staff)")),
    read(lc.EP_GROUP_GET, lc.GroupQuery, lc.Group, groups.get, admin=True,
         http=GET("/groups/{group_id}", "One group (its representative, members, or staff)")),
    read(lc.EP_GROUP_MINE, lc.GroupMineQuery, lc.GroupList, groups.mine,
         http=GET("/groups", "Groups I represent or belong to")),
    read(lc.EP_GROUP_LIST, lc.GroupListQuery, lc.GroupList, groups.list_, role=STAFF, admin=True,
         refusals=(lc.GROUP_STAFF_ONLY,),
         http=GET("/group-applications", "Groups by state, e.g. the applications waiting (staff)")),
))

LOTTERY = Domain("lottery", refusals=(lc.LOTTERY_NOT_FOUND,), ops=(
    write(lc.EP_LOTTERY_OPEN, lc.LotteryOpen, lc.LotteryRound, lottery.open_, role=STAFF, admin=True,
          refusals=(c.FACILITY_NOT_FOUND, lc.LOTTERY_STAFF_ONLY, lc.LOTTERY_INVALID, lc.LOTTERY_EXISTS),
          http=POST("/lottery/rounds", "Open a lottery round for a facility's month (staff)", status=201)),
    read(lc.EP_LOTTERY_LIST, lc.LotteryListQuery, lc.LotteryRoundList, lottery.list_, role=ANYONE,
         http=GET("/lottery/rounds", "Lottery rounds")),
    read(lc.EP_LOTTERY_GET, lc.LotteryQuery, lc.LotteryRound, lottery.get, role=ANYONE,
         http=GET("/lottery/rounds/{round_id}", "One lottery round: its window, slots and number of entries")),
    write(lc.EP_LOTTERY_ENTER, lc.LotteryEnter, lc.LotteryEntry, lottery.enter, refusals=(
        lc.LOTTERY_NOT_OPEN, lc.LOTTERY_LIMIT, lc.LOTTERY_BAD_CHOICE, lc.BOOKING_OTHER_NODES_CLOSED,
        lc.GROUP_NOT_FOUND, lc.GROUP_NOT_APPROVED, lc.GROUP_NOT_BOOKER),
          http=POST("/lottery/rounds/{round_id}/entries", "Enter a lottery (ranked choices)", status=201)),
    write(lc.EP_LOTTERY_WITHDRAW, lc.LotteryEntryAction, lc.LotteryEntry, lottery.withdraw,
          refusals=(lc.LOTTERY_NOT_OPEN,),
          http=POST("/lottery/entries/{entry_id}/withdraw", "Withdraw an entry while the window is open")),
    read(lc.EP_LOTTERY_MINE, lc.LotteryMineQuery, lc.LotteryEntryList, lottery.mine,
         http=GET("/lottery/entries", "My lottery entries and their results")),
    write(lc.EP_LOTTERY_DRAW, lc.LotteryDraw, lc.LotteryRound, lottery.draw_round, role=STAFF, admin=True,
          refusals=(lc.LOTTERY_STAFF_ONLY, lc.LOTTERY_DRAWN, lc.LOTTERY_WINDOW_OPEN, c.BOOKING_TAKEN),
          http=POST("/lottery/rounds/{round_id}/draw", "Draw the round after its window (staff)")),
    read(lc.EP_LOTTERY_PUBLISHED, lc.LotteryQuery, lc.LotteryPublication, lottery.published, role=ANYONE,
         refusals=(lc.LOTTERY_NOT_DRAWN,),
         http=GET("/lottery/rounds/{round_id}/published", "The draw's seed, entries and results (no personal data)")),
    read(lc.EP_LOTTERY_VERIFY, lc.LotteryQuery, lc.LotteryCheck, lottery.verify, role=ANYONE,
         refusals=(lc.LOTTERY_NOT_DRAWN,),
         http=GET("/lottery/rounds/{round_id}/verify", "Recompute the draw from what is published")),
    read(lc.EP_LOTTERY_CHECK, lc.LotteryPublication, lc.LotteryCheck, lottery.check_posted, role=ANYONE,
         max_bytes=lc.CHECK_MAX_BYTES, refusals=(lc.LOTTERY_BAD_DATA,),
         http=POST("/lottery/check", "Recompute a draw from published data anyone sends")),
))
