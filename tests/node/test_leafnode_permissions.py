"""Node A cannot speak as node B over the federation's leafnodes, and a test proves each refusal.

Real nats-servers: a hub and two nodes, each node's config rendered as `towntip node up --hub` renders it (its bus
users from `natsauth.BusUsers`, its leafnode remote from `towntip.node.leafnode`). The attacker is node A's
operator, who may publish anything on A's own server. Two defences, each tested alone: the nodes' deny lists
(`protected`) and the hub's one account per node (`accounts`, towntip/node/hub.py). Each refusal is also run with
neither (`unprotected-shared`: no deny lists, the old single-account hub): there the same attempt succeeds, so
"nothing arrived" means something.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NoStreamResponseError, NotFoundError

from tests.node.test_supervisor import NODE, Node, finish, node_argv
from tests.support.federation_hub import RunningGuard, leaf_config, start_guard, start_hub
from towntip.cli import main as cli_main
from towntip.kernel.bus import subjects
from towntip.kernel.bus.streams import (
    edge_stream_config,
    ensure_node_streams,
    ensure_peer_sources,
    ensure_stream,
    evt_stream_config,
    fed_stream_config,
)
from towntip.node import leafnode
from towntip.node.hub import Hub, credentials_path, leaf_user
from towntip.node.natsauth import OPERATOR, BusUsers
from towntip.node.natsd import NatsServer, free_port

pytestmark = pytest.mark.slow
A, B = "town-a", "town-b"


@dataclass
class Federation:
    """A hub and nodes A and B; `op[node]` is that node's operator connection (it may do anything there)."""

    protected: bool
    layout: str
    hub: NatsServer
    servers: dict[str, NatsServer]
    op: dict[str, NATS] = field(default_factory=dict)
    guards: list[RunningGuard] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        """Whether A's attempts on B should fail: either defence alone is enough."""
        return self.protected or self.layout == "accounts"

    async def reach(self, src: str, dst: str, timeout: float = 15.0) -> None:
        """Until a message published at `src` arrives at `dst`. Messages on one path keep their order, so what
        `src` published before has arrived at `dst` by then — or never will. The probe goes where `src` delivers
        what `dst` sources from it: the one path between two nodes that every hub layout lets through."""
        subject = f"{subjects.source_deliver(dst, src)}.probe.{uuid.uuid4().hex}"
        got = asyncio.Event()

        async def on_probe(_msg: Msg) -> None:
            got.set()

        sub = await self.op[dst].subscribe(subject, cb=on_probe)
        await self.op[dst].flush()
        deadline = time.monotonic() + timeout
        try:
            while not got.is_set():
                assert time.monotonic() < deadline, f"no link from {src} to {dst} after {timeout}s"
                await self.op[src].publish(subject, b"")
                await self.op[src].flush()
                try:
                    await asyncio.wait_for(got.wait(), 0.1)
                except TimeoutError:
                    pass
        finally:
            await sub.unsubscribe()
        await asyncio.sleep(0.3)  # a stream stores what its subscription took in a moment later


@asynccontextmanager
async def running_federation(tmp_path: Path, *, protected: bool, layout: str = "accounts") -> AsyncIterator[Federation]:
    hub = start_hub(tmp_path, [A, B], layout=layout)
    fed = Federation(protected, layout, hub, {})
    try:
        for node in (A, B):
            users = BusUsers(tmp_path / node, node, subjects.SERVICES)
            server = NatsServer(node_id=node, data_dir=tmp_path / node / "nats", extra_config=(
                users.render() + leaf_config(node, hub, protected=protected)))
            fed.servers[node] = server.start()
            fed.op[node] = await nats.connect(users.url(server.url, OPERATOR))
            fed.guards.append(await start_guard(node, users.url(server.url, OPERATOR)))
            await ensure_node_streams(fed.op[node].jetstream(), node, subjects.SERVICES)
        await fed.reach(A, B)
        await fed.reach(B, A)
        yield fed
    finally:
        for guard in fed.guards:
            await guard.stop()
        for nc in fed.op.values():
            await nc.close()
        for server in fed.servers.values():
            server.stop()
        hub.stop()


@pytest.fixture(params=[(True, "accounts"), (True, "shared"), (False, "accounts"), (False, "shared")],
                ids=["protected-accounts", "protected-shared", "unprotected-accounts", "unprotected-shared"])
async def fed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Federation]:
    protected, layout = request.param
    async with running_federation(tmp_path, protected=protected, layout=layout) as f:
        yield f


async def answer(nc: NATS, subject: str, payload: bytes = b"", timeout: float = 1.0) -> bytes | None:
    """The reply to a request, or None when nobody answers (no responders, or silence)."""
    try:
        return (await nc.request(subject, payload, timeout=timeout)).data
    except (NoRespondersError, NatsTimeout):
        return None


async def messages(nc: NATS, stream: str) -> int:
    return (await nc.jetstream().stream_info(stream)).state.messages


def forged_event(node: str) -> bytes:
    """What A would have to say to make B's peers change hanako@<node>'s profile."""
    return json.dumps({"id": str(uuid.uuid4()), "type": "ProfileChanged", "version": 1, "node": node,
                       "data": {"global_handle": f"hanako@{node}", "nickname": "forged"}}).encode()


async def test_a_forged_event_of_b_published_at_a_does_not_land_in_bs_event_stream(fed: Federation) -> None:
    stream = subjects.evt_stream(B, "identity")
    subject = subjects.evt(B, "identity", "ProfileChanged")
    if fed.refused:
        with pytest.raises(NoStreamResponseError):  # no stream anywhere takes it from A: not even an ack
            await fed.op[A].jetstream().publish(subject, forged_event(B), timeout=2)
    else:
        ack = await fed.op[A].jetstream().publish(subject, forged_event(B), timeout=5)
        assert ack.stream == stream  # B's own stream acknowledged A's forgery
    await fed.op[A].publish(subject, forged_event(B))  # and fire-and-forget
    await fed.reach(A, B)
    assert await messages(fed.op[B], stream) == (0 if fed.refused else 2)


async def test_a_forged_tap_at_bs_terminal_does_not_land_in_bs_edge_stream(fed: Federation) -> None:
    stream, subject = subjects.edge_stream(B), subjects.edge(B, "t1", "tap")
    tap = json.dumps({"tap_id": str(uuid.uuid4()), "terminal": "t1", "idm": "0123456789ABCDEF"}).encode()
    if fed.refused:
        with pytest.raises(NoStreamResponseError):
            await fed.op[A].jetstream().publish(subject, tap, timeout=2)
    else:
        assert (await fed.op[A].jetstream().publish(subject, tap, timeout=5)).stream == stream
    await fed.op[A].publish(subject, tap)
    await fed.reach(A, B)
    assert await messages(fed.op[B], stream) == (0 if fed.refused else 2)


async def test_a_cannot_call_bs_endpoints(fed: Federation) -> None:
    seen: list[str] = []

    async def responder(msg: Msg) -> None:
        seen.append(msg.subject)
        await msg.respond(b'{"id": 1}')

    endpoints = [subjects.svc(B, "identity", "admin.user.add"), subjects.svc(B, "node", "enroll"),
                 subjects.svc(B, "points", "events.put")]
    for subject in endpoints:
        await fed.op[B].subscribe(subject, cb=responder)
    await fed.op[B].flush()
    await fed.reach(B, A)  # B's interest has had the time to reach A, were it let out
    await fed.reach(A, B)
    payload = json.dumps({"handle": "mallory", "display_name": "M", "email": "m@example.org",
                          "password": "x" * 12}).encode()
    replies = [await answer(fed.op[A], subject, payload) for subject in endpoints]
    if fed.refused:
        assert replies == [None] * len(endpoints) and seen == []
    else:
        assert replies == [b'{"id": 1}'] * len(endpoints) and seen == endpoints


async def test_a_cannot_delete_purge_or_read_bs_streams_through_bs_jetstream_domain(fed: Federation) -> None:
    js_b = fed.op[B].jetstream()
    edge = subjects.edge_stream(B)
    await js_b.publish(subjects.edge(B, "t1", "tap"), b'{"idm": "0123456789ABCDEF"}')
    await js_b.add_consumer(edge, ConsumerConfig(durable_name="points-taps", ack_policy=AckPolicy.EXPLICIT))
    await js_b.add_stream(name="SCRATCH", subjects=["scratch.b"])
    await ensure_stream(js_b, fed_stream_config(B, [], own="projects"))
    await js_b.publish(subjects.fed_service_in(B, "projects"), b"{}")
    api = subjects.js_api(B)
    evt_points = subjects.evt_stream(B, "points")
    fed_projects = subjects.fed_service_stream(B, "projects")
    attempts = [  # (subject, payload): what a peer has no business asking of B's JetStream
        (f"{api}.STREAM.MSG.GET.{edge}", b'{"seq": 1}'),  # read a tap (it carries a card's IDm)
        (f"{api}.DIRECT.GET.{edge}", b'{"seq": 1}'),
        (f"{api}.STREAM.INFO.{edge}", b""),
        (f"{api}.STREAM.NAMES", b""),
        (f"{api}.INFO", b""),
        (f"{api}.CONSUMER.MSG.NEXT.{edge}.points-taps", b'{"batch": 1, "expires": 200000000}'),
        (f"{api}.CONSUMER.DELETE.{edge}.points-taps", b""),
        (f"{api}.CONSUMER.CREATE.{edge}", json.dumps(
            {"stream_name": edge, "config": {"deliver_subject": "stolen.taps", "ack_policy": "none"}}).encode()),
        (f"{api}.CONSUMER.CREATE.{evt_points}.spy.evt.{B}.points.>", json.dumps(
            {"stream_name": evt_points, "config": {"name": "spy", "deliver_subject": "stolen.points",
                                                   "ack_policy": "none", "filter_subject": f"evt.{B}.points.>"}}
        ).encode()),
        (f"{api}.CONSUMER.CREATE.{fed_projects}.spy.>", json.dumps(  # what B copied of its peers: B's own business
            {"stream_name": fed_projects, "config": {"name": "spy", "deliver_subject": "stolen.fed",
                                                     "ack_policy": "none", "filter_subject": ">"}}).encode()),
        (f"{api}.CONSUMER.CREATE.{fed_projects}", json.dumps(
            {"stream_name": fed_projects, "config": {"deliver_subject": "stolen.fed", "ack_policy": "none"}}).encode()),
        (f"{api}.STREAM.MSG.DELETE.{edge}", b'{"seq": 1}'),
        (f"{api}.STREAM.UPDATE.{edge}", json.dumps({"name": edge, "subjects": ["nothing.any.more"]}).encode()),
        (f"{api}.STREAM.CREATE.FORGED", b'{"name": "FORGED", "subjects": ["forged.>"]}'),
        (f"{api}.STREAM.PURGE.{edge}", b""),
        (f"{api}.STREAM.DELETE.SCRATCH", b""),
        (f"{api}.STREAM.DELETE.{edge}", b""),
    ]
    replies = {subject: await answer(fed.op[A], subject, payload, timeout=0.5) for subject, payload in attempts}
    if fed.refused:
        assert replies == {subject: None for subject, _ in attempts}
        assert await messages(fed.op[B], edge) == 1  # the stream survives with its tap
        assert (await js_b.consumer_info(edge, "points-taps")).num_pending == 1
        assert (await js_b.stream_info(edge)).config.subjects == edge_stream_config(B).subjects  # not updated
        assert await messages(fed.op[B], "SCRATCH") == 0
        with pytest.raises(NotFoundError):
            await js_b.stream_info("FORGED")
    else:  # each of these did what it says at B
        purged = json.loads(replies[f"{api}.STREAM.PURGE.{edge}"] or b"{}")
        read = json.loads(replies[f"{api}.STREAM.MSG.GET.{edge}"] or b"{}")
        assert read["message"]["subject"] == subjects.edge(B, "t1", "tap")
        assert purged.get("success") is True
        for name in ("SCRATCH", edge):
            with pytest.raises(NotFoundError):
                await js_b.stream_info(name)


async def test_a_cannot_acknowledge_bs_messages_for_b(fed: Federation) -> None:
    """A tap that B's consumer holds unacknowledged stays pending when A forges its ack (else it would be lost)."""
    js_b = fed.op[B].jetstream()
    edge = subjects.edge_stream(B)
    await js_b.publish(subjects.edge(B, "t1", "tap"), b"{}")
    sub = await js_b.pull_subscribe(subjects.edge_kind(B, "tap"), durable="points-taps", stream=edge,
                                    config=ConsumerConfig(ack_wait=60))
    (held,) = await sub.fetch(1, timeout=5)
    await fed.op[A].publish(held.reply, b"+ACK")  # the ack subject is guessable: stream, consumer, sequences
    await fed.reach(A, B)
    want = 1 if fed.refused else 0
    for _ in range(300):  # the consumer takes an ack in a moment after its subscription did (a busy machine: 30 s)
        pending = (await js_b.consumer_info(edge, "points-taps")).num_ack_pending
        if pending == want:
            break
        await asyncio.sleep(0.1)
    if fed.refused:  # and it stays so
        await asyncio.sleep(0.5)
        pending = (await js_b.consumer_info(edge, "points-taps")).num_ack_pending
    assert pending == want


async def test_what_is_private_to_b_never_reaches_a(fed: Federation) -> None:
    """A listens on B's terminals, B's endpoints and every reply inbox: B's own traffic stays at B."""
    leaked: list[str] = []

    async def spy(msg: Msg) -> None:
        leaked.append(msg.subject)

    for subject in (f"edge.{B}.>", f"svc.{B}.>", "_INBOX.>", "$SRV.>"):
        await fed.op[A].subscribe(subject, cb=spy)
    await fed.op[A].flush()
    await fed.reach(A, B)
    await fed.reach(B, A)  # A's interest has reached B

    async def login(msg: Msg) -> None:
        await msg.respond(b'{"session_token": "secret"}')

    await fed.op[B].subscribe(subjects.svc(B, "identity", "login"), cb=login)
    await fed.op[B].jetstream().publish(subjects.edge(B, "t1", "tap"), b'{"idm": "0123456789ABCDEF"}')
    reply = await fed.op[B].request(subjects.svc(B, "identity", "login"), b"{}", timeout=5)  # at B, by B
    assert reply.data == b'{"session_token": "secret"}'
    await fed.reach(B, A)
    if fed.refused:
        assert leaked == []
    else:
        assert {s.split(".")[0] for s in leaked} >= {"edge", "svc", "_INBOX"}, leaked


async def wait_messages(nc: NATS, stream: str, want: int, timeout: float = 20.0) -> int:
    """The stream's message count once it reaches `want`, or when `timeout` is over."""
    have = 0
    for _ in range(int(timeout / 0.1)):
        have = await messages(nc, stream)
        if have >= want:
            break
        await asyncio.sleep(0.1)
    return have


async def test_b_still_sources_as_public_events_and_catches_up_after_a_partition(tmp_path: Path) -> None:
    """What federation needs still crosses: B's FED stream sources A's identity events (consumer creation on A
    through A's JetStream domain, deliveries, heartbeats), also after the hub was gone for a while."""
    async with running_federation(tmp_path, protected=True) as f:
        js_a, js_b = f.op[A].jetstream(), f.op[B].jetstream()
        await ensure_stream(js_a, evt_stream_config(A, "identity"))
        await js_a.publish(subjects.evt(A, "identity", "ProfileChanged"), forged_event(A))
        assert await ensure_peer_sources(js_b, B, {A}, "identity") == [A]
        fed_b = subjects.fed_stream(B)
        assert await wait_messages(f.op[B], fed_b, 1) == 1
        await js_a.publish(subjects.evt(A, "identity", "ProfileChanged"), forged_event(A))
        assert await wait_messages(f.op[B], fed_b, 2) == 2
        got = await js_b.get_msg(fed_b, 2)
        assert got.subject == subjects.evt(A, "identity", "ProfileChanged")

        f.hub.stop()
        await js_a.publish(subjects.evt(A, "identity", "UserDeleted"), forged_event(A))
        await asyncio.sleep(1.0)
        assert await messages(f.op[B], fed_b) == 2
        f.hub.start()
        assert await wait_messages(f.op[B], fed_b, 3, timeout=30) == 3, "no catch-up after the partition"


async def test_b_sources_as_public_projects_events_into_its_own_fed_stream(tmp_path: Path) -> None:
    """B's projects service sources A's projects events into FED_B_PROJECTS while identity sources A's profiles
    into FED_B, both at once: each keeps its source (one stream each, so no update overwrites the other's), and
    both cross the hub, also after a partition."""
    async with running_federation(tmp_path, protected=True) as f:
        js_a, js_b = f.op[A].jetstream(), f.op[B].jetstream()
        added = await asyncio.gather(*(ensure_peer_sources(js_b, B, {A}, service, own=service == "projects")
                                       for service in ("identity", "projects", "identity", "projects")))
        assert [A] in added and all(a in ([], [A]) for a in added)
        fed_b, fed_p = subjects.fed_stream(B), subjects.fed_service_stream(B, "projects")
        assert [s.name for s in (await js_b.stream_info(fed_b)).config.sources] == [subjects.evt_stream(A, "identity")]
        assert [s.name for s in (await js_b.stream_info(fed_p)).config.sources] == [subjects.evt_stream(A, "projects")]
        theme = json.dumps({"id": str(uuid.uuid4()), "type": "ThemePublished", "version": 1, "node": A,
                            "data": {"id": str(uuid.uuid4()), "origin_node": A}}).encode()
        await js_a.publish(subjects.evt(A, "projects", "theme_published"), theme)
        await js_a.publish(subjects.evt(A, "identity", "ProfileChanged"), forged_event(A))
        assert await wait_messages(f.op[B], fed_p, 1) == 1
        assert await wait_messages(f.op[B], fed_b, 1) == 1
        got = await js_b.get_msg(fed_p, 1)
        assert got.subject == subjects.evt(A, "projects", "theme_published") and got.data == theme

        f.hub.stop()
        await js_a.publish(subjects.evt(A, "projects", "theme_changed"), theme)
        await asyncio.sleep(1.0)
        assert await messages(f.op[B], fed_p) == 1
        f.hub.start()
        assert await wait_messages(f.op[B], fed_p, 2, timeout=30) == 2, "no catch-up after the partition"


def test_the_deny_lists_name_the_nodes_own_namespaces_and_leave_sourcing_open() -> None:
    imports, exports = leafnode.deny_imports("town-b"), leafnode.deny_exports("town-b")
    for ns in ("evt", "edge", "svc", "dlq", "fed"):
        assert f"{ns}.town-b.>" in imports
    assert {"$JS.town-b.API.>", "$JS.ACK.>"} <= set(imports)  # no peer reaches B's JetStream API directly
    # what stays open: the source guard's door, the deliveries, the creation's reply and flow control
    assert not [s for s in imports + exports if s.startswith(("fedsrc.", "$JS.S.", "$JSC.", "$JS.FC.", "_R_."))]
    assert {"edge.town-b.>", "svc.town-b.>", "dlq.town-b.>", "_INBOX.>"} <= set(exports)
    assert f"evt.{B}.>" not in exports  # its events are what peers source


@pytest.mark.parametrize("args, message", [
    (["--hub", "http://hub.example:7422"], "must start with"),
    (["--hub", "nats-leaf://town:pw@hub.example:7422"], "--hub-credentials-file"),
    (["--hub", "nats-leaf://hub.example"], "host:port"),
    (["--hub", "nats-leaf://hub.example:7422", "--nats-url", "nats://127.0.0.1:4222"], "--nats-url"),
    (["--hub-credentials-file", "/nonexistent"], "goes with --hub"),
    (["--hub", "nats-leaf://hub.example:7422", "--hub-credentials-file", "/nonexistent/creds"], "cannot read"),
])
def test_bad_hub_input_exits_2(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["node", "up", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_credentials_file_must_hold_user_colon_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = tmp_path / "hub-creds"
    creds.write_text("just-a-password-no-user\n")
    assert cli_main(["node", "up", "--hub", "nats-leaf://hub.example:7422", "--hub-credentials-file", str(creds)]) == 2
    err = capsys.readouterr().err
    assert "user:password" in err and "just-a-password" not in err


def start_node_up(tmp_path: Path, *args: str) -> Node:
    """`towntip node up` as a real subprocess on free ports, with extra arguments."""
    http_port, nats_port, data_dir = free_port(), free_port(), tmp_path / "var"
    out_path = tmp_path / "node-up.out"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            node_argv("--node", NODE, "--data-dir", str(data_dir), "--http-port", str(http_port),
                      "--nats-port", str(nats_port), "--trace-export", "none", *args),
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    return Node(proc, data_dir, http_port, nats_port, out_path)


async def leafs(monitor: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=2) as client:
        return (await client.get(f"http://127.0.0.1:{monitor}/leafz")).json().get("leafs") or []


async def wait_leaf(monitor: int, name: str, timeout: float = 20.0) -> bool:
    for _ in range(int(timeout / 0.2)):
        if any(leaf.get("name") == name for leaf in await leafs(monitor)):
            return True
        await asyncio.sleep(0.2)
    return False


# tests that start whole nodes (`towntip node up`) run one after another on one worker
@pytest.mark.xdist_group("whole-node")
@pytest.mark.timeout(300)  # a whole node starting beside the suite's other workers
async def test_node_up_with_hub_joins_the_hub_with_its_deny_lists(tmp_path: Path) -> None:
    """`towntip node up --hub … --hub-credentials-file …`: the embedded server's config holds the remote with the
    deny lists, the hub (which asks for a password) sees the node, an enrolment's reload keeps the link, and the
    password is printed nowhere."""
    password = secrets.token_urlsafe(16) + "@:/%"  # characters the URL must quote
    monitor = free_port()
    creds = credentials_path(tmp_path / "hub", NODE)  # the hub keeps a member's credentials file and reuses it
    creds.parent.mkdir(parents=True)
    creds.write_text(f"{leaf_user(NODE)}:{password}\n")
    creds.chmod(0o600)
    hub = Hub(data_dir=tmp_path / "hub", members=[NODE], monitor_port=monitor).start()
    assert hub.credentials[NODE] == (leaf_user(NODE), password)
    hub_url = hub.leaf_url
    node = start_node_up(tmp_path, "--hub", hub_url, "--hub-credentials-file", str(creds))
    data_dir = node.data_dir
    try:
        await node.wait_health(200, timeout=180)
        config = (data_dir / "nats" / "nats-server.conf").read_text()
        assert leafnode.render_leafnodes(NODE, [hub_url], credentials=(leaf_user(NODE), password)) in config
        assert await wait_leaf(monitor, NODE), f"the hub never saw {NODE}: {await leafs(monitor)}"

        operator = await nats.connect(node.operator_url())
        try:
            await operator.request(f"svc.{NODE}.node.enroll", b'{"terminal": "hall-1"}', timeout=5)
            # the supervisor runs the node's source guard: a creation that did not come through the hub's
            # accounts (here: published at the node itself) is refused with the reason
            stream = subjects.evt_stream(NODE, "identity")
            reply = await operator.request(
                f"{subjects.source_create(NODE)}.{stream}.n.{subjects.evt_all(NODE, 'identity')}",
                b"{}", timeout=5)
            error = json.loads(reply.data)["error"]
            assert error["code"] == 403 and "through the hub's accounts" in error["description"], error
        finally:
            await operator.close()
        config = (data_dir / "nats" / "nats-server.conf").read_text()
        assert "term-hall-1" in config and f'"evt.{NODE}.>"' in config  # the reload kept the remote
        await asyncio.sleep(1.0)
        assert await wait_leaf(monitor, NODE), "the link did not survive the reload"
        assert node.stop() == 0
        assert hub_url in node.output and password not in node.output and "source guard ready" in node.output
        assert password not in "".join(p.read_text(errors="replace") for p in (data_dir / "logs").glob("*.log"))
    finally:
        finish(node)
        hub.stop()
