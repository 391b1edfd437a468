"""The portal's navigation: the pages of each group a resident looks in, the tab bar (a bottom bar on a phone, the
header on a desktop), the tab a page belongs to, and the breadcrumbs of a deep page. Pure: no requests, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.portal.i18n import t
from towntip.kernel.contracts import identity as c

# "join" (参加する), "mine" (マイ手帳・ポイント), "menu" (メニュー) and "staff" (the staff area, /staff: never in a
# resident's navigation). Without a group, a role's page goes to the staff area and anything else to the menu, so
# that a page added without thought still has a way in.
GROUPS = ("join", "mine", "menu", "staff")
GROUP_PAGE = {"join": "/join", "mine": "/mine", "menu": "/menu", "staff": "/staff"}
# Each group in the order a newcomer looks for things (communities and themes first, My Page, the profile); pages
# not named here follow in the order they were added.
ORDER = (
    "/communities", "/themes", "/events", "/blogs", "/facilities", "/courses", "/donations", "/lottery", "/cases",
    "/me", "/notebook", "/points", "/bookings", "/bookings/waitlist", "/credits", "/donations/mine",
    "/settings/profile", "/friends", "/messages", "/settings/cards", "/settings/password", "/orgs", "/contact",
)  # fmt: skip


@dataclass(frozen=True)
class NavItem:
    key: str  # the word key of its name (gateway/portal/i18n.py); "<key>_desc" is its line of explanation
    href: str
    who: str  # "all", "user" (logged in) or a role
    group: str


@dataclass(frozen=True)
class Tab:
    key: str  # the word key of its label; also its id in `current_tab`
    href: str
    icon: str  # the name of its symbol in base.html


NAV: list[NavItem] = []


def add_nav(key: str, href: str, who: str = "all", group: str | None = None) -> None:
    """A feature's page in the navigation: who is "all", "user" (logged in) or a role ("staff", "secretariat")."""
    chosen = group or ("menu" if who in ("all", "user") else "staff")
    if chosen not in GROUPS:
        raise ValueError(f"unknown navigation group {chosen!r}")
    NAV.append(NavItem(key, href, who, chosen))


def _may(item: NavItem, user: c.User | None) -> bool:
    return item.who == "all" or (user is not None and (item.who == "user" or item.who in user.roles))


def _rank(item: NavItem) -> int:
    return ORDER.index(item.href) if item.href in ORDER else len(ORDER)


def nav_for(user: c.User | None, group: str | None = None) -> list[NavItem]:
    """The pages this person may open, in one group or all of them."""
    return sorted((item for item in NAV if (group is None or item.group == group) and _may(item, user)), key=_rank)


def is_staff(user: c.User | None) -> bool:
    return user is not None and bool(set(user.roles) & set(c.ROLES))


def tabs(user: c.User | None) -> list[Tab]:
    """Five tabs at most, the same for every page: a phone's thumb finds them at the bottom."""
    if user is None:
        return [
            Tab("home", "/", "home"),
            Tab("tab_join", "/join", "join"),
            Tab("login", "/login", "login"),
            Tab("tab_menu", "/menu", "menu"),
        ]
    return [
        Tab("home", "/", "home"),
        Tab("tab_join", "/join", "join"),
        Tab("tab_mine", "/mine", "mine"),
        Tab("tab_inbox", "/inbox", "inbox"),
        Tab("tab_menu", "/menu", "menu"),
    ]


def _under(path: str, href: str) -> bool:
    return path == href or path.startswith(href.rstrip("/") + "/")


def owner(path: str) -> NavItem | None:
    """The navigation's page that a path is, or lies under (the longest match: /bookings/waitlist before /bookings)."""
    found = [item for item in NAV if _under(path, item.href)]
    return max(found, key=lambda item: len(item.href)) if found else None


_TAB_OF_GROUP = {"join": "tab_join", "mine": "tab_mine", "menu": "tab_menu", "staff": "tab_menu"}
_TAB_OF_PATH = {
    "/": "home",
    "/join": "tab_join",
    "/mine": "tab_mine",
    "/me": "tab_mine",
    "/inbox": "tab_inbox",
    "/menu": "tab_menu",
    "/settings": "tab_menu",
    "/staff": "tab_menu",
    "/login": "login",
    "/register": "login",
}


def current_tab(path: str) -> str | None:
    """The tab a page belongs to (aria-current): its own, its group's, or none."""
    for prefix, tab in _TAB_OF_PATH.items():
        if path == prefix or (prefix != "/" and _under(path, prefix)):
            return tab
    item = owner(path)
    return _TAB_OF_GROUP[item.group] if item else None


def crumbs(path: str, user: c.User | None, lang: str) -> list[tuple[str, str]]:
    """The way back from a deep page: ホーム › its group › its section (the page's own title follows in the
    template). Empty for the home page, the group pages and the sections themselves' first level."""
    item = owner(path)
    if item is None or path == item.href:
        return []
    group = item.group if item.group != "staff" or is_staff(user) else "menu"
    trail = [(t("home", lang), "/"), (t(f"group_{group}", lang), GROUP_PAGE[group])]
    return [*trail, (t(item.key, lang), item.href)]


# ---- the town's colour ------------------------------------------------------------------------------------------


def _luminance(hex_colour: str) -> float:
    """WCAG 2's relative luminance of #rrggbb."""

    def channel(v: int) -> float:
        s = v / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def palette(primary: str) -> dict[str, str]:
    """The colours a town's one colour gives (AA, 4.5:1): the ink on it (white or black, whichever reads better;
    black, not a softer near-black, because only black reaches 4.5:1 on every colour), and for links on white the
    colour itself or, if it is too light, the same hue darkened until it reads."""
    ink = "#ffffff" if contrast(primary, "#ffffff") >= contrast(primary, "#000000") else "#000000"
    link = primary
    while contrast(link, "#ffffff") < 4.5:
        link = "#" + "".join(f"{int(int(link[i : i + 2], 16) * 0.9):02x}" for i in (1, 3, 5))
    return {"primary": primary, "ink": ink, "link": link}
