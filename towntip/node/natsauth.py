"""Who may say what on a node's embedded nats-server: one user per process and per terminal, each scoped to its
own subjects (nats-server `authorization` with per-user permissions).

| user | may publish | may subscribe |
| --- | --- | --- |
| `operator` (supervisor, the operator's CLI) | everything | everything |
| `svc-<service>` | its events `evt.<node>.<service>.>` (notices also `evt.<node>.publicnotices.>`, sns `evt.<node>.snsfed.>`: `EXTRA_EVENTS`), dead letters `dlq.<node>.<service>.>`, the JetStream API `$JS.API.>` but not its destructive calls (delete, purge, snapshot, restore, …), acks `$JS.ACK.>`; the reply to each request it receives, once (`allow_responses`); points also the inboxes of the enrolled terminals `_INBOX.<terminal>.>` (tap outcomes, `Towntip-Result-To`); bookings also `svc.<node>.points.payments.>` and `svc.<node>.notices.message.>`, notices `svc.<node>.sns.audience.>` and `svc.<node>.projects.audience.>`, points `svc.<node>.notices.message.>`, signage `svc.<node>.points.figures.districts.>` (`SERVICE_CALLS`); notices and signage single public lists, sns `svc.<node>.projects.themes.get` (`SERVICE_READS`); signage also its federation events `evt.<node>.sigfed.>` | its endpoints `svc.<node>.<service>.>`, `$SRV.>`, its own inboxes `_INBOX._svc.<service>.>`; points also `edge.<node>.*.heartbeat` |
| `gateway` | the services' endpoints `svc.<node>.<service>.>` but not their `admin.>` ones nor those in `SERVICE_CALLS` (`svc.<node>.points.payments.>`, …), `svc.<node>.node.status`, `$SRV.>` | its own inboxes `_INBOX._gateway.>` |
| `term-<terminal>` | `edge.<node>.<terminal>.>` only | its own inboxes `_INBOX.<terminal>.>` only |
| `scr-<screen>` (a signage screen) | `signage.<node>.screen.<screen>.>` only (sync and content requests, heartbeats, its plays into JetStream) | the broadcasts `signage.<node>.push.>` and its own inboxes `_INBOX._scr.<screen>.>` |

So terminal X cannot publish as terminal Y, no service can publish another service's events, and the gateway
cannot enrol terminals. Nobody but the operator reads another process's replies (login answers, session tokens,
terminal passwords) or slips a forged reply into another's pending request: each process connects with its own
inbox prefix (`inbox_prefix`, towntip/kernel/bus/inboxes.py) and
may subscribe only below it, and a service publishes into an inbox only as the one answer to a request it was
sent. The prefixes cannot collide: a terminal id is `[a-z0-9][a-z0-9-]{0,31}` and a NUID (the operator's default
`_INBOX.<nuid>`) is alphanumeric, so neither is ever `_svc` or `_gateway`. They all stay under `_INBOX.`, which a
node's leafnode remote never exports (towntip/node/leafnode.py).

Two properties of nats-server's `allow_responses` (measured with 2.15): it forgets which replies a client still
owes when the server reloads its config (an enrolment, below), so a request a service received before the reload
and answers after it is refused and its caller times out once; and an answer goes to whatever reply subject the
asker set, past the service's allow and deny lists (the server checks no publisher's reply subject), so whoever
may ask a service could choose where its answer lands: the endpoints (towntip/kernel/bus/endpoints.py) serve no
request whose reply subject is not an inbox.

Passwords are 256-bit random secrets in `<data-dir>/secrets/` (0600); the rendered config is 0600 too.
Terminals are enrolled at run time (`svc.<node>.node.enroll`, operator only) and the server reloads its config.
"""  # noqa: E501 (a Markdown table: its rows cannot wrap)

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from towntip.kernel.bus import subjects
from towntip.kernel.bus.inboxes import (  # the names processes connect with; this module grants them
    GATEWAY_INBOX_PREFIX,
    screen_inbox_prefix,
    service_inbox_prefix,
    terminal_inbox_prefix,
)
from towntip.kernel.secrets import load_or_create_secret

OPERATOR = "operator"
GATEWAY = "gateway"
TERMINAL_PREFIX = "term-"
SCREEN_PREFIX = "scr-"  # towntip.kernel.contracts.signage.screen_user


# Core NATS messages of the terminals a service listens to (not through JetStream): the points service keeps
# each terminal's latest heartbeat.
EDGE_LISTENERS = {"points": ("heartbeat",)}
# Services whose consumers read the terminals' messages and send each one's outcome to the terminal's inbox (the
# message's `Towntip-Result-To`, towntip/kernel/bus/consumer.py): they may publish to every enrolled terminal's
# inboxes, and to no other inbox except as a reply.
EDGE_CONSUMERS = ("points",)
# What the signage service hears from its screens (request/reply and heartbeats; their plays come through JetStream)
# and what it tells them (core NATS broadcasts).
SCREEN_LISTENS = ("sync", "content", "status")
# Endpoints of another service a service may call (request/reply; the reply comes to its own inbox), which the
# gateway may not: the bookings service charges and refunds facility fees through the points service's ledger; the
# notices service asks sns and projects who a community's members and a theme's followers are when it sends a
# notice to them, and bookings and points may send an official message to one person's inbox; the signage service
# asks points for the districts' totals of its data slides.
SERVICE_CALLS = {"bookings": ("points.payments", "notices.message"),
                 "notices": ("sns.audience", "projects.audience"),
                 "points": ("notices.message",),
                 "signage": ("points.figures.districts",)}
# Single endpoints of another service a service may call, which the gateway may call too (public lists, and a
# followed item's followers): the notices service's navi and activity notifications (services/notices/navi_bus.py).
SERVICE_READS = {"notices": ("sns.communities.list", "points.events.list", "projects.themes.list",
                             "projects.federation.followers", "projects.federation.members"),
                 # the data slides (services/signage/slide_feed.py READS): public lists only
                 "signage": ("points.events.list", "sns.communities.list", "sns.posts.list", "notices.feeds.public",
                             "projects.themes.list", "bookings.feeds.facility"),
                 # matching: whether the person may manage a theme whose opening they post (services/sns/themes.py)
                 "sns": ("projects.themes.get",)}
# Event streams a service announces on besides its own `evt.<node>.<service>.>`: the notices service's notices to
# everyone, the one notices stream peers may source (contracts.notices_towns); the sns service's directory of
# communities across towns (contracts.sns_directory).
EXTRA_EVENTS = {"notices": ("publicnotices",), "sns": ("snsfed",)}

# JetStream API calls no service makes and none may: they destroy or copy out a stream or consumer, or act on the
# account or the server. (Stream and consumer create, update and info, and fetching, stay allowed: see
# docs/operating.md, "Users and permissions on the bus", for what narrowing those further would take.)
JS_API_DENIED = (
    "$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.MSG.DELETE.>",
    "$JS.API.STREAM.SNAPSHOT.>", "$JS.API.STREAM.RESTORE.>", "$JS.API.STREAM.PEER.>", "$JS.API.STREAM.LEADER.>",
    "$JS.API.CONSUMER.DELETE.>", "$JS.API.CONSUMER.PAUSE.>", "$JS.API.CONSUMER.RESET.>",
    "$JS.API.CONSUMER.LEADER.>", "$JS.API.ACCOUNT.>", "$JS.API.META.>", "$JS.API.SERVER.>",
)


def service_user(service: str) -> str:
    return f"svc-{service}"


def terminal_user(terminal: str) -> str:
    return f"{TERMINAL_PREFIX}{terminal}"


def screen_user(screen: str) -> str:
    return f"{SCREEN_PREFIX}{screen}"


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid nats-server config string


def _perms(publish: list[str], subscribe: list[str], deny_publish: list[str] | tuple[str, ...] | None = None, *,
           responses: bool = False) -> str:
    """`responses`: the user may also publish to the reply subject of each message it receives, once
    (nats-server's `allow_responses: true`: at most one message, no time limit)."""
    pub = ", ".join(_quote(s) for s in publish)
    sub = ", ".join(_quote(s) for s in subscribe)
    deny = f", deny: [{', '.join(_quote(s) for s in deny_publish)}]" if deny_publish else ""
    resp = ", allow_responses: true" if responses else ""
    return f"permissions: {{ publish: {{ allow: [{pub}]{deny} }}, subscribe: {{ allow: [{sub}] }}{resp} }}"


@dataclass
class BusUsers:
    """The node's NATS users and their secrets (made on first start, kept in the data dir)."""

    data_dir: Path
    node: str
    services: tuple[str, ...]
    passwords: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        for user in (OPERATOR, GATEWAY, *(service_user(s) for s in self.services)):
            self.passwords[user] = load_or_create_secret(self.data_dir, f"nats-{user}", nbytes=32, kind="urlsafe")

    @property
    def terminals_path(self) -> Path:
        return self.data_dir / "secrets" / "nats-terminals.json"

    def terminals(self) -> dict[str, str]:
        return json.loads(self.terminals_path.read_text()) if self.terminals_path.exists() else {}

    def enroll(self, terminal: str) -> str:
        """A terminal's password (a new one if it was enrolled before: re-enrolling replaces a lost device)."""
        return self._enroll_into(self.terminals_path, terminal)

    @property
    def screens_path(self) -> Path:
        return self.data_dir / "secrets" / "nats-screens.json"

    def screens(self) -> dict[str, str]:
        return json.loads(self.screens_path.read_text()) if self.screens_path.exists() else {}

    def enroll_screen(self, screen: str) -> str:
        """A signage screen's password (re-enrolling replaces it, as for a terminal)."""
        return self._enroll_into(self.screens_path, screen)

    @staticmethod
    def _enroll_into(path: Path, name: str) -> str:
        known = json.loads(path.read_text()) if path.exists() else {}
        known[name] = secrets.token_urlsafe(32)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(path)
        return str(known[name])

    def url(self, base_url: str, user: str, password: str | None = None) -> str:
        """`nats://user:password@host:port` for one user."""
        scheme, _, rest = base_url.partition("://")
        return f"{scheme}://{user}:{password or self.passwords[user]}@{rest}"

    def render(self) -> str:
        n = self.node
        users = [f"{{ user: {_quote(OPERATOR)}, password: {_quote(self.passwords[OPERATOR])} }}"]
        gateway_pub = [f"svc.{n}.{s}.>" for s in self.services] + [f"svc.{n}.node.status", "$SRV.>"]
        admin = [f"svc.{n}.{s}.admin.>" for s in self.services]  # the operator's endpoints, not the gateway's
        admin += [f"svc.{n}.{ep}.>" for calls in SERVICE_CALLS.values() for ep in calls]  # services' only
        users.append(f"{{ user: {_quote(GATEWAY)}, password: {_quote(self.passwords[GATEWAY])}, "
                     f"{_perms(gateway_pub, [GATEWAY_INBOX_PREFIX + '.>'], admin)} }}")
        terminals = sorted(self.terminals().items())
        for s in self.services:
            # No `_INBOX.>`: a service answers a request through `allow_responses`, never into any inbox it likes.
            pub = [subjects.evt_all(n, s), f"dlq.{n}.{s}.>", "$JS.API.>", "$JS.ACK.>"]
            pub += [subjects.evt_all(n, x) for x in EXTRA_EVENTS.get(s, ())]
            if s in EDGE_CONSUMERS:
                pub += [terminal_inbox_prefix(t) + ".>" for t, _ in terminals]
            pub += [f"svc.{n}.{ep}.>" for ep in SERVICE_CALLS.get(s, ())]
            pub += [f"svc.{n}.{ep}" for ep in SERVICE_READS.get(s, ())]
            sub = [f"svc.{n}.{s}.>", "$SRV.>", service_inbox_prefix(s) + ".>"]
            sub += [subjects.edge_kind(n, k) for k in EDGE_LISTENERS.get(s, ())]
            if s == "signage":
                pub.append(f"signage.{n}.push.>")
                pub.append(subjects.evt_all(n, "sigfed"))  # its federation events (services/signage/federation.py)
                sub += [f"signage.{n}.screen.*.{k}" for k in SCREEN_LISTENS] + [f"signage.{n}.push.changed"]
            users.append(f"{{ user: {_quote(service_user(s))}, password: {_quote(self.passwords[service_user(s)])}, "
                         f"{_perms(pub, sub, JS_API_DENIED, responses=True)} }}")
        for terminal, password in terminals:
            users.append(f"{{ user: {_quote(terminal_user(terminal))}, password: {_quote(password)}, "
                         f"{_perms([f'edge.{n}.{terminal}.>'], [terminal_inbox_prefix(terminal) + '.>'])} }}")
        for screen, password in sorted(self.screens().items()):
            hears = [f"signage.{n}.push.>", screen_inbox_prefix(screen) + ".>"]
            users.append(f"{{ user: {_quote(screen_user(screen))}, password: {_quote(password)}, "
                         f"{_perms([f'signage.{n}.screen.{screen}.>'], hears)} }}")
        body = ",\n    ".join(users)
        return f"authorization {{\n  users: [\n    {body}\n  ]\n}}\n"
