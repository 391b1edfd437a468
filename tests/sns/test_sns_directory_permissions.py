"""The directory of communities across towns on the bus (contracts.sns_directory): only the sns service publishes
on `evt.<node>.snsfed.>`, peers may source EVT_<NODE>_SNSFED and never EVT_<NODE>_SNS, and every event on the
directory's stream names its town (a node speaks only for its own communities)."""

from __future__ import annotations

import re
from pathlib import Path

from towntip.kernel.bus import subjects
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts import sns_directory as d
from towntip.kernel.contracts.events import registered
from towntip.node.leafnode import FEDERATED_SERVICES, OWN_FED_STREAMS
from towntip.node.natsauth import BusUsers
from towntip.node.source_guard import sourceable

NODE = "tsuru"


def _user(config: str, user: str) -> str:
    found = re.search(r'\{ user: "' + re.escape(user) + r'".*', config)
    assert found, user
    return found.group(0)


def test_only_the_sns_service_announces_the_directory(tmp_path: Path) -> None:
    config = BusUsers(tmp_path, NODE, subjects.SERVICES).render()
    sns = _user(config, "svc-sns")
    assert f'"evt.{NODE}.snsfed.>"' in sns[:sns.index("subscribe")]
    for other in ("svc-notices", "svc-projects", "svc-identity", "svc-points", "svc-bookings", "svc-signage",
                  "gateway"):
        assert "snsfed" not in _user(config, other), other


def test_peers_source_the_directory_never_the_sns_stream() -> None:
    assert d.EVENTS in FEDERATED_SERVICES and d.EVENTS in OWN_FED_STREAMS
    assert c.SERVICE not in FEDERATED_SERVICES
    assert sourceable(NODE)[subjects.evt_stream(NODE, d.EVENTS)] == f"evt.{NODE}.snsfed.>"
    assert subjects.evt_stream(NODE, c.SERVICE) not in sourceable(NODE)


def test_every_directory_event_names_its_town_and_no_person() -> None:
    on_stream = {name: model for (service, name), model in registered().items() if service == d.EVENTS}
    assert set(on_stream) == {"CommunityListed", "CommunityUpdated", "CommunityUnlisted"}
    for name, model in on_stream.items():
        fields = set(model.model_fields)
        assert "origin_node" in fields, name
        assert not fields & {"leader", "member", "members_list", "global_handle", "actor", "display_name"}, name
