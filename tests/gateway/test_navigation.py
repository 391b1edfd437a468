"""The portal's navigation without a browser: which group and tab a page belongs to, the breadcrumbs of deep pages,
what a resident and a staff member see, and the town's colour turned into inks that pass WCAG AA."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import gateway.app  # noqa: F401 - every feature module adds its pages to the navigation at import
from gateway.portal import navbar
from towntip.kernel.contracts import identity as ic


def person(*roles: str) -> ic.User:
    return ic.User(
        id="u1",
        handle="hanako",
        global_handle="hanako@tsurugashima",
        home_node="tsurugashima",
        display_name="山田 花子",
        email="hanako@example.jp",
        email_verified=True,
        roles=list(roles),
        created_at=datetime(2026, 4, 1, tzinfo=UTC),
    )


def test_a_resident_sees_groups_without_staff_tools_and_staff_find_theirs_in_the_staff_area() -> None:
    resident, staff = person(), person("staff")
    everything = [i.href for i in navbar.nav_for(resident)]
    assert "/communities" in everything and "/notebook" in everything
    assert not [h for h in everything if h.startswith(("/staff", "/secretariat", "/hearings"))]
    assert [i.href for i in navbar.nav_for(resident, "join")][:3] == ["/communities", "/themes", "/events"]
    assert navbar.nav_for(staff, "join") == navbar.nav_for(resident, "join")  # no staff tool among the resident's
    assert {"/staff/figures", "/staff/bookings/approvals"} <= {i.href for i in navbar.nav_for(staff, "staff")}
    assert [i.href for i in navbar.nav_for(None, "mine")] == []  # nothing of one's own before logging in
    assert [tb.key for tb in navbar.tabs(None)] == ["home", "tab_join", "login", "tab_menu"]
    assert [tb.href for tb in navbar.tabs(resident)] == ["/", "/join", "/mine", "/inbox", "/menu"]


@pytest.mark.parametrize(
    ("path", "tab"),
    [
        ("/", "home"),
        ("/join", "tab_join"),
        ("/themes/abc", "tab_join"),
        ("/facilities/x", "tab_join"),
        ("/notebook", "tab_mine"),
        ("/bookings/waitlist", "tab_mine"),
        ("/me", "tab_mine"),
        ("/inbox", "tab_inbox"),
        ("/settings/profile", "tab_menu"),
        ("/friends", "tab_menu"),
        ("/staff/figures", "tab_menu"),
        ("/login", "login"),
        ("/nowhere", None),
        ("/meetings", None),
    ],
)
def test_the_tab_a_page_belongs_to(path: str, tab: str | None) -> None:
    assert navbar.current_tab(path) == tab


def test_breadcrumbs_lead_back_through_the_group_and_the_section() -> None:
    assert navbar.crumbs("/themes/123", None, "ja") == [
        ("ホーム", "/"),
        ("参加する", "/join"),
        ("共創テーマ", "/themes"),
    ]
    assert navbar.crumbs("/bookings/waitlist/9", person(), "en")[-1] == ("Waitlist & series", "/bookings/waitlist")
    assert navbar.crumbs("/staff/bookings/approvals/1", person("staff"), "ja")[1] == ("職員メニュー", "/staff")
    assert navbar.crumbs("/themes", None, "ja") == []  # a section's own page: the tab bar is enough
    assert navbar.crumbs("/", None, "ja") == [] and navbar.crumbs("/nowhere/1", None, "ja") == []


def test_a_page_added_without_a_known_group_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown navigation group"):
        navbar.add_nav("x", "/x", "all", "sidebar")


@pytest.mark.parametrize("primary", ["#0b6e4f", "#ffd400", "#e60012", "#00a0e9", "#1d2088", "#f5f5f5", "#777777"])
def test_any_town_colour_gets_inks_that_pass_aa(primary: str) -> None:
    p = navbar.palette(primary)
    assert navbar.contrast(p["ink"], primary) >= 4.5
    assert navbar.contrast(p["link"], "#ffffff") >= 4.5
    assert navbar.palette("#0b6e4f") == {"primary": "#0b6e4f", "ink": "#ffffff", "link": "#0b6e4f"}
