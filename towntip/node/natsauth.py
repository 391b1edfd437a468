"""Who may say what on a node's embedded nats-server: one user per process and per terminal, each scoped to its
own subjects (nats-server `authorization` with per-user permissions).

| user | may publish | may subscribe |
| --- | --- | --- |
| `operator` (supervisor, the operator's CLI) | everything | everything |
| `svc-<service>` | its events `evt.<node>.<service>.>`, dead letters, JetStream API and acks, `$SRV`, replies to `_INBOX.>` | its endpoints `svc.<node>.<service>.>`, `$SRV`, `_INBOX.>`; points also `edge.<node>.*.heartbeat` |
| `gateway` | the services' endpoints `svc.<node>.<service>.>` but not their `admin.>` ones, `svc.<node>.node.status`, `$SRV` | `_INBOX.>` |
| `term-<terminal>` | `edge.<node>.<terminal>.>` only | its own inboxes `_INBOX.<terminal>.>` only |

So terminal X cannot publish as terminal Y, no service can publish another service's events, and the gateway
cannot enrol terminals. Passwords are 256-bit random secrets in `<data-dir>/secrets/` (0600); the rendered
config is 0600 too. Terminals are enrolled at run time (`svc.<node>.node.enroll`, operator only) and the server
reloads its config.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from towntip.kernel.bus import subjects
from towntip.kernel.secrets import load_or_create_secret

OPERATOR = "operator"
GATEWAY = "gateway"
TERMINAL_PREFIX = "term-"


# Core NATS messages of the terminals a service listens to (not through JetStream): the points service keeps
# each terminal's latest heartbeat.
EDGE_LISTENERS = {"points": ("heartbeat",)}


def service_user(service: str) -> str:
    return f"svc-{service}"


def terminal_user(terminal: str) -> str:
    return f"{TERMINAL_PREFIX}{terminal}"


def terminal_inbox_prefix(terminal: str) -> str:
    """A terminal's inboxes (its connection's inbox_prefix): the only subjects it may subscribe to."""
    return f"_INBOX.{terminal}"


def _quote(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid nats-server config string


def _perms(publish: list[str], subscribe: list[str], deny_publish: list[str] | None = None) -> str:
    pub = ", ".join(_quote(s) for s in publish)
    sub = ", ".join(_quote(s) for s in subscribe)
    deny = f", deny: [{', '.join(_quote(s) for s in deny_publish)}]" if deny_publish else ""
    return f"permissions: {{ publish: {{ allow: [{pub}]{deny} }}, subscribe: {{ allow: [{sub}] }} }}"


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
        terms = self.terminals()
        terms[terminal] = secrets.token_urlsafe(32)
        tmp = self.terminals_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(terms, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(self.terminals_path)
        return terms[terminal]

    def url(self, base_url: str, user: str, password: str | None = None) -> str:
        """`nats://user:password@host:port` for one user."""
        scheme, _, rest = base_url.partition("://")
        return f"{scheme}://{user}:{password or self.passwords[user]}@{rest}"

    def render(self) -> str:
        n = self.node
        users = [f"{{ user: {_quote(OPERATOR)}, password: {_quote(self.passwords[OPERATOR])} }}"]
        gateway_pub = [f"svc.{n}.{s}.>" for s in self.services] + [f"svc.{n}.node.status", "$SRV.>"]
        admin = [f"svc.{n}.{s}.admin.>" for s in self.services]  # the operator's endpoints, not the gateway's
        users.append(f"{{ user: {_quote(GATEWAY)}, password: {_quote(self.passwords[GATEWAY])}, "
                     f"{_perms(gateway_pub, ['_INBOX.>'], admin)} }}")
        for s in self.services:
            pub = [subjects.evt_all(n, s), f"dlq.{n}.{s}.>", "$JS.API.>", "$JS.ACK.>", "$SRV.>", "_INBOX.>"]
            sub = [f"svc.{n}.{s}.>", "$SRV.>", "_INBOX.>"] + [subjects.edge_kind(n, k) for k in EDGE_LISTENERS.get(s, ())]
            users.append(f"{{ user: {_quote(service_user(s))}, password: {_quote(self.passwords[service_user(s)])}, "
                         f"{_perms(pub, sub)} }}")
        for terminal, password in sorted(self.terminals().items()):
            users.append(f"{{ user: {_quote(terminal_user(terminal))}, password: {_quote(password)}, "
                         f"{_perms([f'edge.{n}.{terminal}.>'], [terminal_inbox_prefix(terminal) + '.>'])} }}")
        body = ",\n    ".join(users)
        return f"authorization {{\n  users: [\n    {body}\n  ]\n}}\n"
