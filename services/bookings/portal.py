"""The endpoints the portal's booking pages add (issue 17, points 3 and 8): the staff's day sheet and usage figures,
and the data of the iCalendar feeds. One more domain table beside those in handlers.py."""

from __future__ import annotations

from services.bookings import dayplan, feeds, figures, photos
from towntip.kernel.contracts import bookings as c
from towntip.kernel.contracts import bookings_photos as ph
from towntip.kernel.contracts import bookings_portal as p
from towntip.kernel.domain import ANYONE, GATEWAY, GET, SIGNED_IN, STAFF, Domain, read, write

PORTAL = Domain("bookings_portal", ops=(
    read(p.EP_DAY_SHEET, p.DaySheetQuery, p.DaySheet, dayplan.day_sheet, role=STAFF, refusals=(p.DAY_STAFF_ONLY,),
         doc="every facility's bookings of one day in order of time (当日の利用一覧)"),
    read(p.EP_USAGE, p.UsageQuery, p.Usage, figures.usage, role=STAFF, refusals=(p.DAY_STAFF_ONLY,),
         doc="稼働率 per facility of a month: booked over open slot time, by user class"),
    read(p.EP_OVERVIEW, p.OverviewQuery, p.Overview, dayplan.overview, role=SIGNED_IN,
         doc="the person's bookings: upcoming, past, cancelled (by the service's clock)"),
    read(p.EP_FACILITY_BUSY, p.BusyQuery, p.Busy, feeds.busy, role=ANYONE, refusals=(c.FACILITY_NOT_FOUND,),
         doc="a facility's held times (no personal data), for its public iCalendar feed"),
    write(p.EP_FEED_TOKEN, p.FeedTokenIn, p.FeedToken, feeds.new_token, role=SIGNED_IN,
          doc="a new private feed token for the person (shown once; the old one stops working)"),
    read(p.EP_FEED_STATUS, p.FeedStatusQuery, p.FeedStatus, feeds.status, role=SIGNED_IN,
         doc="whether the person has a private feed, and since when"),
    read(p.EP_FEED_PERSON, p.FeedQuery, p.PersonFeed, feeds.person, role=GATEWAY, refusals=(p.FEED_NOT_FOUND,),
         doc="the bookings of whoever the token belongs to, for their private iCalendar feed"),
))

# A facility's photos (services/bookings/photos.py): the gateway prepares the pictures, the service checks them again.
PHOTOS = Domain("facility_photos", ops=(
    write(ph.EP_PHOTO_ADD, ph.PhotoAdd, ph.FacilityPhoto, photos.add, role=STAFF, admin=True,
          refusals=(ph.PHOTO_STAFF_ONLY, ph.PHOTO_TOO_MANY, ph.PHOTO_BAD, c.FACILITY_NOT_FOUND),
          max_bytes=ph.PHOTO_REQUEST_BYTES, doc="add a prepared photo (and its thumbnail) to a facility"),
    write(ph.EP_PHOTO_REMOVE, ph.PhotoRemove, ph.FacilityPhoto, photos.remove, role=STAFF, admin=True,
          refusals=(ph.PHOTO_STAFF_ONLY, ph.PHOTO_NOT_FOUND), doc="remove one of a facility's photos"),
    read(ph.EP_PHOTO_LIST, ph.PhotoListQuery, ph.PhotoList, photos.list_, role=ANYONE,
         http=GET("/facilities/{facility_id}/photos", "A facility's photos, in order (without the pictures)")),
    read(ph.EP_PHOTO_GET, ph.PhotoQuery, ph.PhotoData, photos.get, role=ANYONE, refusals=(ph.PHOTO_NOT_FOUND,),
         doc="one photo's picture (full size or thumbnail), base64"),
))
