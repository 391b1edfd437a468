"""Contracts of the まちづくり手帳 (activity notebook) and the staff's figures: svc.<node>.points.notebook.* and
svc.<node>.points.figures.* (the points service, services/points/notebook.py and figures.py).

A person sees only their own notebook (the actor is the person); the figures need an actor with the role "staff".
Amounts: points are integers; CO2 in kg, hours and calories are sums of what staff set per event (EventIn)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from towntip.kernel.contracts.actor import Actor
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.errors import Refusal

SERVICE = "points"
EP_NOTEBOOK_MINE = "notebook.mine"  # NotebookQuery -> Notebook (the person)
EP_NOTEBOOK_EXPORT = "notebook.export"  # NotebookExportIn -> Export (CSV with BOM, or PDF)
EP_FIGURES = "figures.summary"  # FiguresQuery -> Figures (staff)
EP_FIGURES_EXPORT = "figures.export"  # FiguresExportIn -> Export (CSV with BOM; staff)
# DistrictFiguresQuery -> DistrictFigures (services only: the signage service's slide of the districts' points)
EP_FIGURES_DISTRICTS = "figures.districts"

_IN = ConfigDict(extra="forbid", frozen=True)
Kind = Literal["contribution", "donation"]  # 貢献 (taps at events) / 寄付 (confirmed donations)
Table = Literal["events", "months", "districts", "fields"]


# 共感 received on what the person wrote (posts, comments: sns; themes, cases: projects), as the gateway counted it
# from both services' `likes.received` (contracts.likes); None: not counted (a service did not answer). Only the
# export takes it (bus only: no HTTP route lets a person send their own figure); the portal's page puts the same
# count into the Notebook it shows.
Empathy = Annotated[int, Field(ge=0, le=10**9)]


class NotebookQuery(BaseModel):
    model_config = _IN
    actor: Actor


class NotebookExportIn(BaseModel):
    model_config = _IN
    actor: Actor
    format: Literal["csv", "pdf"]
    lang: Literal["ja", "en"] = "ja"
    empathy: Empathy | None = None


class Entry(Frozen):
    """One line of the notebook: a participation (a tap at an event) or a confirmed donation."""

    on: date  # 実施日 (Japan)
    kind: Kind
    title: str  # the event's or the project's name
    field: str | None  # category code (npo-7, pib-16), None when staff set none
    field_letter: str | None  # the seed's letter (A, C, D) where it applies
    field_ja: str | None
    field_en: str | None
    activity: str  # participate | carry_out | learn | volunteer | donate
    points: int
    co2_kg: float | None
    hours: float | None
    kcal: int | None
    empathy: int | None = None  # 共感 belongs to no one activity: always None here, the total is in Totals


class Totals(Frozen):
    entries: int
    points: int
    contribution: int  # points from taking part (貢献)
    donation: int  # points from donations (寄付)
    co2_kg: float
    hours: float
    kcal: int
    empathy: int | None = None  # 共感 received (None: not counted)


class Average(Frozen):
    """Per person, over the people the directory knows (linked to a user id) in the scope, those without activity
    counted as 0."""

    scope: Literal["district", "region"]
    name: str  # the district, or the node
    people: int
    entries: float
    points: float
    contribution: float
    donation: float
    co2_kg: float
    hours: float
    kcal: float


class Notebook(Frozen):
    global_handle: str
    display_name: str
    district: str  # '' when the person has not given one (profile)
    entries: list[Entry]
    totals: Totals
    district_average: Average | None  # None without a district
    region_average: Average
    empathy_counted: bool = False  # totals.empathy holds the 共感 received; False: not counted, shown as "—"


class Export(Frozen):
    filename: str
    content_type: str
    base64: str


class FiguresQuery(BaseModel):
    model_config = _IN
    actor: Actor


class FiguresExportIn(BaseModel):
    model_config = _IN
    actor: Actor
    table: Table
    lang: Literal["ja", "en"] = "ja"


class EventFigure(Frozen):
    code: str
    name: str
    field: str | None
    field_letter: str | None
    points: int
    people: int  # distinct holders: a person (their cards together), or a card bound to nobody
    participations: int


class MonthFigure(Frozen):
    month: str  # YYYY-MM (Japan)
    points: int  # tap points + donation points
    contribution: int
    donation: int
    participations: int
    people: int


class DistrictFigure(Frozen):
    district: str  # '' = not known (a card bound to nobody, a person without a district or not in the directory)
    registered: int  # people of the directory in the district
    active: int  # of whom (or, for '', holders) with any activity
    points: int
    participations: int
    co2_kg: float
    hours: float
    kcal: int


class FieldFigure(Frozen):
    field: str | None
    field_letter: str | None
    name_ja: str
    name_en: str
    points: int
    participations: int
    people: int


class Figures(Frozen):
    events: list[EventFigure]
    months: list[MonthFigure]
    districts: list[DistrictFigure]
    fields: list[FieldFigure]
    points: int  # all issued through taps and donations
    participations: int
    people: int


# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

FIGURES_STAFF_ONLY = Refusal("figures.staff_only", 403, "only the node's staff may see the figures")


# ---- the districts' figures for another service of the node (signage's slide): totals per district only ---------


class DistrictFiguresQuery(BaseModel):
    model_config = _IN


class DistrictTotal(Frozen):
    """A district's totals: no count of registered or active people (a small district's would come near a person)."""

    district: str
    points: int
    participations: int


class DistrictFigures(Frozen):
    districts: list[DistrictTotal]  # most points first; people of no known district are left out
    points: int  # all issued through taps and donations
