"""Whose inboxes are where: the `inbox_prefix` each kind of process connects with.

On a node's own nats-server each user may subscribe only below its own prefix (towntip/node/natsauth.py renders
those permissions from these names), so nobody reads another process's replies. The prefixes cannot collide: a
terminal id is `[a-z0-9][a-z0-9-]{0,31}` and a NUID (the operator's default `_INBOX.<nuid>`) is alphanumeric, so
neither is ever `_svc` or `_gateway`. The names live in the kernel because the processes (services, gateway,
terminals) connect with them; the node's tooling only grants them.
"""

from __future__ import annotations

# The gateway's inboxes; a service's are below SERVICE_INBOX_ROOT (see service_inbox_prefix).
GATEWAY_INBOX_PREFIX = "_INBOX._gateway"
SERVICE_INBOX_ROOT = "_INBOX._svc"


def service_inbox_prefix(service: str) -> str:
    """A service's inboxes (its connection's inbox_prefix): `_INBOX._svc.<service>`, which no terminal's
    `_INBOX.<terminal>` can be (a terminal id never starts with `_`)."""
    return f"{SERVICE_INBOX_ROOT}.{service}"


def terminal_inbox_prefix(terminal: str) -> str:
    """A terminal's inboxes (its connection's inbox_prefix): the only subjects it may subscribe to."""
    return f"_INBOX.{terminal}"


SCREEN_INBOX_ROOT = "_INBOX._scr"


def screen_inbox_prefix(screen: str) -> str:
    """A signage screen's inboxes: `_INBOX._scr.<name>`. Not `_INBOX.scr-<name>`: a card terminal may be named
    `scr-x` (terminal ids are `[a-z0-9][a-z0-9-]{0,31}`), and would then read screen x's replies."""
    return f"{SCREEN_INBOX_ROOT}.{screen}"
