"""Contracts of the node's open data (オープンデータ, issue 20 points 8 and 9), served alike by identity, points, sns,
bookings and projects: svc.<node>.<service>.open_data and svc.<node>.<service>.usage.months.

`open_data` (role ANYONE: what it answers is public) gives a service's aggregate tables for the gateway's
`/open-data/download` zip: counts and sums only, never a handle, a name, an e-mail or an id of a person, and every
count of people under `towntip.kernel.open_data.SUPPRESS_BELOW` already suppressed by the service (a cell of None,
written "<5" in the CSV). `usage.months` (role STAFF) gives the staff figures page the same usage series unsuppressed:
per month, how many people were new and how many there were by the month's end."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.errors import Refusal

EP_OPEN_DATA = "open_data"  # OpenDataQuery -> OpenData (anyone: public aggregates, small counts suppressed)
EP_USAGE = "usage.months"  # UsageQuery -> Usage (staff: the usage series, unsuppressed)

USAGE_STAFF_ONLY = Refusal("usage.staff_only", 403, "only the node's staff see the usage figures unsuppressed")

_IN = ConfigDict(extra="forbid", frozen=True)

Cell = str | int | float | None  # None: suppressed (a count of people under the threshold), "<5" in the CSV


class OpenDataQuery(BaseModel):
    model_config = _IN


class OpenDataTable(Frozen):
    """One CSV file of the zip: `name`.csv with a Japanese and an English header line."""

    name: str  # a-z0-9_ (the file's name without .csv)
    title_ja: str
    title_en: str
    columns_ja: list[str]
    columns_en: list[str]
    rows: list[list[Cell]]
    notes_ja: str = ""  # what the README says of this table besides its columns
    notes_en: str = ""


class UsageMonth(Frozen):
    month: str  # YYYY-MM (Japan)
    new: int | None  # joined that month (None in open data: suppressed)
    total: int | None  # by the month's end (None in open data: suppressed)


class Usage(Frozen):
    """One usage series (the seed's 利用状況): registered people, card members or community leaders."""

    series: str  # registered | card_members | community_leaders
    months: list[UsageMonth]
    total: int | None  # now


class OpenData(Frozen):
    tables: list[OpenDataTable]
    usage: list[Usage] = []  # the service's usage series, suppressed for open data


class UsageQuery(BaseModel):
    model_config = _IN
    actor: Actor
