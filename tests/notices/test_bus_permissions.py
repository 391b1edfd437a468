"""Who may call the notices service's service-only endpoints, and what it may call, as the node's NATS config says:
the gateway may not send an official message nor list a community's members; notices may ask sns and projects for
those; bookings and points may send messages."""

from __future__ import annotations

import re
from pathlib import Path

from towntip.kernel.bus import subjects
from towntip.node.natsauth import BusUsers

NODE = "tsuru"


def _user(config: str, user: str) -> str:
    found = re.search(r'\{ user: "' + re.escape(user) + r'".*', config)
    assert found, user
    return found.group(0)


def test_service_only_endpoints_are_granted_to_services_and_denied_to_the_gateway(tmp_path: Path) -> None:
    config = BusUsers(tmp_path, NODE, subjects.SERVICES).render()
    gateway = _user(config, "gateway")
    deny = gateway[gateway.index("deny:"):]
    for endpoint in ("notices.message", "sns.audience", "projects.audience"):
        assert f'"svc.{NODE}.{endpoint}.>"' in deny, endpoint
    notices = _user(config, "svc-notices")
    assert f'"svc.{NODE}.sns.audience.>"' in notices and f'"svc.{NODE}.projects.audience.>"' in notices
    assert f'"svc.{NODE}.notices.message.>"' not in notices  # it answers them, it does not call them
    for caller in ("svc-bookings", "svc-points"):
        assert f'"svc.{NODE}.notices.message.>"' in _user(config, caller), caller
    for other in ("svc-sns", "svc-projects", "svc-identity"):
        assert "notices.message" not in _user(config, other), other


def test_notices_may_announce_public_notices_and_ask_for_the_member_towns(tmp_path: Path) -> None:
    """Other towns' public notices (services/notices/towns.py): the notices user publishes on the public stream
    peers source, and asks projects for the member towns; no other service publishes there."""
    config = BusUsers(tmp_path, NODE, subjects.SERVICES).render()
    notices = _user(config, "svc-notices")
    allowed = notices[:notices.index("subscribe")]
    assert f'"evt.{NODE}.publicnotices.>"' in allowed
    assert f'"svc.{NODE}.projects.federation.members"' in allowed
    for other in ("svc-sns", "svc-projects", "svc-identity", "svc-points", "svc-bookings"):
        assert "publicnotices" not in _user(config, other), other
