"""The signage service's staff endpoints, one table per domain (svc.<node>.signage.*); the screens' own protocol is
served by screen_link.py. Each change runs in the unit of work's transaction; after the commit the outbox relay and
the pusher (which tells the screens) are woken."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.signage import (
    content,
    emergency,
    federation,
    figures,
    peer_media,
    playlists,
    privacy,
    screens,
    slides,
)
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.bus.envelope import utcnow
from towntip.kernel.contracts import privacy as pv
from towntip.kernel.contracts import signage as c
from towntip.kernel.contracts import signage_federation as f
from towntip.kernel.domain import ANYONE, GATEWAY, GET, OPERATOR, POST, STAFF, Domain, own, read, write
from towntip.kernel.uow import UnitOfWork

SCREENS = Domain(
    "screens",
    refusals=(c.STAFF_ONLY, c.SCREEN_NOT_FOUND),
    ops=(
        write(
            c.EP_SCREEN_REGISTER,
            c.ScreenRegister,
            c.Screen,
            screens.register,
            role=STAFF,
            admin=True,
            http=POST("/signage/screens", "Register a screen or change its place, orientation and groups"),
        ),
        read(
            c.EP_SCREEN_LIST,
            c.ScreenListQuery,
            c.ScreenList,
            screens.list_,
            role=STAFF,
            admin=True,
            http=GET("/signage/screens", "Screens and their state"),
        ),
        read(
            c.EP_SCREEN_GET,
            c.ScreenQuery,
            c.Screen,
            screens.get,
            role=STAFF,
            admin=True,
            http=GET("/signage/screens/{name}", "One screen, its state and latest screenshot"),
        ),
        write(c.EP_ADMIN_SCREEN_ENROLLED, c.ScreenRegister, c.Screen, screens.register, role=OPERATOR),
    ),
)

CONTENT = Domain(
    "content",
    refusals=(c.STAFF_ONLY, c.ITEM_NOT_FOUND),
    ops=(
        write(
            c.EP_UPLOAD_PART,
            c.UploadPart,
            c.UploadProgress,
            content.upload_part,
            role=STAFF,
            max_bytes=c.UPLOAD_PART_REQUEST_MAX,
            refusals=(c.UPLOAD_TOO_LARGE, c.UPLOAD_BROKEN),
        ),
        write(
            c.EP_CONTENT_CREATE,
            c.ContentCreate,
            c.ContentItem,
            content.create,
            role=STAFF,
            refusals=(c.UPLOAD_INCOMPLETE, c.UPLOAD_TYPE, c.UPLOAD_TOO_LARGE, c.UPLOAD_BROKEN, c.VALIDITY),
        ),
        write(
            c.EP_CONTENT_APPROVE,
            c.ItemAction,
            c.ContentItem,
            content.approve,
            role=STAFF,
            refusals=(c.ITEM_STATE, c.SAME_APPROVER),
            http=POST("/signage/content/{item_id}/approve", "Approve an item (a second staff member)"),
        ),
        write(c.EP_CONTENT_REJECT, c.ItemAction, c.ContentItem, content.reject, role=STAFF, refusals=(c.ITEM_STATE,)),
        write(
            c.EP_CONTENT_WITHDRAW,
            c.ItemAction,
            c.ContentItem,
            content.withdraw,
            role=STAFF,
            refusals=(c.ITEM_STATE,),
            http=POST("/signage/content/{item_id}/withdraw", "Take an item off every screen"),
        ),
        read(
            c.EP_CONTENT_LIST,
            c.ContentListQuery,
            c.ContentList,
            content.list_,
            role=STAFF,
            http=GET("/signage/content", "Content items"),
        ),
        read(
            c.EP_CONTENT_GET,
            c.ItemAction,
            c.ContentItem,
            content.get,
            role=STAFF,
            http=GET("/signage/content/{item_id}", "One content item"),
        ),
    ),
)

PLAYLISTS = Domain(
    "playlists",
    refusals=(c.STAFF_ONLY,),
    ops=(
        write(
            c.EP_PLAYLIST_PUT,
            c.PlaylistPut,
            c.PlaylistView,
            playlists.put,
            role=STAFF,
            refusals=(c.PLAYLIST_NOT_FOUND, c.PLAYLIST_EMPTY, c.PLAYLIST_ITEM_UNKNOWN, c.SCREEN_NOT_FOUND, c.VALIDITY),
            http=POST("/signage/playlists", "Create or replace a playlist"),
        ),
        read(
            c.EP_PLAYLIST_LIST,
            c.PlaylistListQuery,
            c.PlaylistList,
            playlists.list_,
            role=STAFF,
            http=GET("/signage/playlists", "Playlists"),
        ),
        write(
            c.EP_PLAYLIST_DELETE,
            c.PlaylistAction,
            c.PlaylistList,
            playlists.delete_,
            role=STAFF,
            refusals=(c.PLAYLIST_NOT_FOUND,),
        ),
        read(
            c.EP_PREVIEW,
            c.PreviewQuery,
            c.Preview,
            playlists.preview,
            role=STAFF,
            refusals=(c.SCREEN_NOT_FOUND,),
            http=GET("/signage/screens/{screen}/preview", "What a screen plays in the hour holding a time"),
        ),
    ),
)

EMERGENCY = Domain(
    "emergency",
    refusals=(c.STAFF_ONLY,),
    ops=(
        write(
            c.EP_EMERGENCY_SEND,
            c.EmergencySend,
            c.Emergency,
            emergency.send,
            role=STAFF,
            admin=True,
            refusals=(c.SCREEN_NOT_FOUND,),
            http=POST("/signage/emergency", "Send an emergency message (緊急情報) to all screens or some", status=201),
        ),
        write(
            c.EP_EMERGENCY_CLEAR,
            c.EmergencyAction,
            c.Emergency,
            emergency.clear,
            role=STAFF,
            admin=True,
            refusals=(c.EMERGENCY_NOT_FOUND, c.EMERGENCY_CLEARED),
            http=POST("/signage/emergency/{id}/clear", "Clear an emergency message"),
        ),
        read(
            c.EP_EMERGENCY_LIST,
            c.EmergencyListQuery,
            c.EmergencyList,
            emergency.list_,
            role=STAFF,
            admin=True,
            http=GET("/signage/emergency", "Active and recent emergency messages"),
        ),
        write(
            c.EP_CAP_INGEST,
            c.CapIngest,
            c.CapOutcome,
            emergency.ingest_cap,
            role=STAFF,
            admin=True,
            max_bytes=c.CAP_MAX_BYTES + 4096,
            refusals=(c.CAP_INVALID, c.SCREEN_NOT_FOUND),
            http=POST("/signage/emergency/cap", "Take a CAP 1.2 alert (shown if severe enough and in the area)"),
        ),
    ),
)

PLAYS = Domain(
    "plays",
    refusals=(c.STAFF_ONLY,),
    ops=(
        read(
            c.EP_PLAYS_SUMMARY,
            c.PlaysQuery,
            c.PlaysSummary,
            figures.summary,
            role=STAFF,
            http=GET("/signage/plays", "Plays per item or per screen over a period"),
        ),
    ),
)

FEDERATION = Domain(
    "federation",
    refusals=(c.STAFF_ONLY,),
    ops=(
        write(
            f.EP_OFFER,
            f.OfferSet,
            c.ContentItem,
            federation.offer,
            role=STAFF,
            refusals=(c.ITEM_NOT_FOUND, f.OFFER_NOT_ALLOWED),
            http=POST("/signage/content/{item_id}/offer", "Offer an approved item to the federation, or withdraw it"),
        ),
        read(
            f.EP_OFFERS,
            f.OffersQuery,
            f.OfferList,
            federation.offers,
            role=STAFF,
            http=GET("/signage/federation/offers", "What the other towns of the federation offer"),
        ),
        own(
            f.EP_ADOPT,
            f.AdoptRequest,
            c.ContentItem,
            federation.adopt,
            role=STAFF,
            refusals=(
                f.OFFER_NOT_FOUND,
                f.ALREADY_ADOPTED,
                f.PEER_UNREACHABLE,
                f.PEER_MEDIA_MISMATCH,
                c.UPLOAD_TYPE,
                c.UPLOAD_TOO_LARGE,
                c.UPLOAD_BROKEN,
            ),
            http=POST("/signage/federation/adopt", "Adopt another town's offer (it then waits for approval)"),
        ),
        read(
            f.EP_ABROAD,
            f.AbroadQuery,
            f.AbroadPlays,
            federation.abroad,
            role=STAFF,
            http=GET("/signage/federation/plays", "Plays of this town's items in other towns, per town and day"),
        ),
        read(f.EP_MEDIA, f.MediaPart, f.MediaChunk, federation.media, role=ANYONE,
             refusals=(f.NOT_OFFERED, c.CHUNK_OUT_OF_RANGE)),
        write(f.EP_REPORT, f.ReportNow, f.ReportDone, federation.report_now, role=OPERATOR),
    ),
)

SLIDES = Domain(
    "slides",
    refusals=(c.STAFF_ONLY,),
    ops=(
        write(
            c.EP_SLIDE_CREATE,
            c.SlideCreate,
            c.DataSlide,
            slides.create,
            role=STAFF,
            refusals=(c.SLIDE_FACILITY, c.VALIDITY),
            http=POST("/signage/slides", "Add a slide made from the node's own data (pending approval)", status=201),
        ),
        read(
            c.EP_SLIDE_LIST,
            c.SlideListQuery,
            c.SlideList,
            slides.list_,
            role=STAFF,
            http=GET("/signage/slides", "Slides made from data: source, last refresh, what they show"),
        ),
    ),
)

# A person's data (issue 20 point 7): the gateway's export of the person's part (services/signage/privacy.py).
PRIVACY = Domain("privacy", ops=(
    read(pv.EP_PERSON_EXPORT, pv.ExportQuery, pv.PersonData, privacy.export, role=GATEWAY),
))

DOMAINS = (SCREENS, CONTENT, PLAYLISTS, EMERGENCY, PLAYS, FEDERATION, SLIDES, PRIVACY)


def build_endpoints(
    *,
    sessions: async_sessionmaker[AsyncSession],
    node: str,
    on_commit: Callable[[], None],
    clock: Callable[[], datetime] = utcnow,
    fetch: federation.Fetch = peer_media.fetch,
) -> Endpoints:
    """The service's endpoints from its domains' tables."""
    uow = UnitOfWork(sessions, on_commit=on_commit, clock=clock)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={"node": node, "fetch": fetch})
