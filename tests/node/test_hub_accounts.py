"""The federation's hub with one account per node closes what the nodes' deny lists cannot (towntip/node/hub.py).

Real nats-servers: a hub and three nodes. B sources A's identity and projects events; C is the attacker: its
operator may do anything on C's own server, and C's remote carries no deny lists. Each attempt runs against the
accounts hub and against the old single-account hub (`shared`), where it succeeds: so "nothing" means something.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, ExternalStream, StreamSource

from tests.node.test_leafnode_permissions import forged_event, messages, wait_messages
from tests.support.federation_hub import LAYOUTS, RunningGuard, leaf_config, start_guard, start_hub
from towntip.cli import main as cli_main
from towntip.kernel.bus import subjects
from towntip.kernel.bus.streams import (
    ensure_node_streams,
    ensure_peer_sources,
    ensure_stream,
    fed_stream_config,
)
from towntip.node import hub as hubmod
from towntip.node.hub import Hub
from towntip.node.leafnode import FEDERATED_SERVICES, read_credentials
from towntip.node.natsd import NatsServer, free_port, nats_server_binary, wait_for_port

pytestmark = pytest.mark.slow
A, B, C = "town-a", "town-b", "town-c"


@dataclass
class Nodes:
    layout: str
    hub: Hub | NatsServer
    servers: dict[str, NatsServer] = field(default_factory=dict)
    op: dict[str, NATS] = field(default_factory=dict)
    guards: list[RunningGuard] = field(default_factory=list)

    async def source(self, node: str, peer: str, services: tuple[str, ...] = ("identity", "projects")) -> None:
        """`node` sources `peer`'s identity and projects events, as its services do."""
        js = self.op[node].jetstream()
        for service in services:
            assert await ensure_peer_sources(js, node, {peer}, service, own=service == "projects") == [peer]

    async def publish(self, node: str, service: str, payload: bytes) -> None:
        await self.op[node].jetstream().publish(subjects.evt(node, service, "ProfileChanged"), payload)


@asynccontextmanager
async def three_nodes(tmp_path: Path, layout: str, *, unprotected: tuple[str, ...] = (C,)) -> AsyncIterator[Nodes]:
    """Each node with its source guard. Through the old hub (`shared`) a node with its deny lists cannot be sourced
    at all (it refuses `$JS.<n>.API`; only the accounts hub maps a creation onto its guard), so there every node
    runs without them, as nodes had to for sourcing to work through that hub."""
    if layout == "shared":
        unprotected = (A, B, C)
    hub = start_hub(tmp_path, [A, B, C], layout=layout)
    nodes = Nodes(layout, hub)
    try:
        for node in (A, B, C):
            server = NatsServer(node_id=node, data_dir=tmp_path / node, extra_config=leaf_config(
                node, hub, protected=node not in unprotected)).start()
            nodes.servers[node] = server
            nodes.op[node] = await nats.connect(server.url)
            nodes.guards.append(await start_guard(node, server.url))
            await ensure_node_streams(nodes.op[node].jetstream(), node, subjects.SERVICES)
        await asyncio.sleep(1.0)  # the leafnodes are up (sourcing retries anyway)
        yield nodes
    finally:
        for guard in nodes.guards:
            await guard.stop()
        for nc in nodes.op.values():
            await nc.close()
        for server in nodes.servers.values():
            server.stop()
        hub.stop()


@pytest.fixture(params=LAYOUTS)
async def fed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Nodes]:
    async with three_nodes(tmp_path, request.param) as nodes:
        yield nodes


async def create_consumer(nc: NATS, subject: str, payload: bytes, timeout: float = 1.0) -> bytes | None:
    """A consumer creation as a source sends it (the reply on `$JSC.R.`, which the nodes' deny lists let out), or
    None when nobody answers."""
    reply = f"$JSC.R.{uuid.uuid4().hex}"
    sub = await nc.subscribe(reply, max_msgs=1)
    await nc.publish(subject, payload, reply=reply)
    try:
        msg = await sub.next_msg(timeout)
    except nats.errors.TimeoutError:
        return None
    finally:
        await sub.unsubscribe()
    return None if msg.headers and msg.headers.get("Status") == "503" else msg.data  # 503: no responders


async def record(nc: NATS, subject: str) -> list[Msg]:
    got: list[Msg] = []

    async def cb(msg: Msg) -> None:
        got.append(msg)

    await nc.subscribe(subject, cb=cb)
    await nc.flush()
    return got


async def sourced_from_a(fed: Nodes) -> None:
    """B sources A; two identity events and one projects event of A have arrived at B."""
    await fed.source(B, A)
    await fed.publish(A, "identity", forged_event(A))
    await fed.publish(A, "identity", forged_event(A))
    await fed.publish(A, "projects", b"{}")
    assert await wait_messages(fed.op[B], subjects.fed_stream(B), 2) == 2
    assert await wait_messages(fed.op[B], subjects.fed_service_stream(B, "projects"), 1) == 1


async def test_c_listening_on_everything_sees_nothing_of_bs_deliveries_from_a(fed: Nodes) -> None:
    deliveries = await record(fed.op[C], "$JS.S.>")
    everything = await record(fed.op[C], ">")
    await asyncio.sleep(0.5)  # C's interest has reached the hub
    await sourced_from_a(fed)
    await asyncio.sleep(1.5)  # an idle heartbeat (1 s) too
    about_a_or_b = [m.subject for m in everything if A in m.subject + m.reply or B in m.subject + m.reply]
    if fed.layout == "accounts":
        assert deliveries == [] and about_a_or_b == []
    else:  # C learns B's deliver subjects from A, messages and heartbeats
        assert deliveries and about_a_or_b
        assert any(m.reply.startswith(f"$JS.ACK.{subjects.evt_stream(A, 'identity')}.") for m in deliveries)


async def test_c_cannot_inject_a_forged_event_into_bs_source_of_a(fed: Nodes) -> None:
    """Even told B's deliver subject and the next sequence, C's forgery does not land in FED_B."""
    deliveries = await record(fed.op[C], "$JS.S.>")
    at_a = await record(fed.op[A], subjects.source_deliver(B, A) + ".>")  # what A's server sends B's source
    await asyncio.sleep(0.5)
    await fed.source(B, A, ("identity",))  # one source of A at B: one deliver subject
    await fed.publish(A, "identity", forged_event(A))
    await fed.publish(A, "identity", forged_event(A))
    assert await wait_messages(fed.op[B], subjects.fed_stream(B), 2) == 2
    stream = subjects.evt_stream(A, "identity")
    for _ in range(30):  # an idle heartbeat names the deliver subject; a message's ack subject names the consumer
        beats = [m.subject for m in at_a if m.headers and m.headers.get("Status") == "100"]
        acks = [m.reply for m in at_a if m.reply.startswith(f"$JS.ACK.{stream}.")]
        if beats and acks:
            break
        await asyncio.sleep(0.1)
    deliver, consumer = beats[0], acks[0].split(".")[3]
    assert deliver.startswith(subjects.source_deliver(B, A) + ".S.")
    if fed.layout == "shared":  # C learnt both on its own
        assert deliver in {d.subject for d in deliveries}
        assert any(d.reply.startswith(f"$JS.ACK.{stream}.{consumer}.") for d in deliveries)
    forged = json.dumps({"id": str(uuid.uuid4()), "type": "ProfileChanged", "version": 1, "node": A,
                         "data": {"global_handle": f"hanako@{A}", "nickname": "forged by C"}}).encode()
    # A client may not publish with a `$JS.ACK.` reply (nats-server refuses it), so C lets its own JetStream
    # deliver: a stream on C's server holding A's subjects, its third message forged, and a consumer delivering to
    # B's deliver subject. B's source takes consumer sequences 1 and 2 as already seen and 3 as the next one.
    js_c = fed.op[C].jetstream()
    await js_c.add_stream(name="FORGE", subjects=[f"evt.{A}.identity.>"])
    for data in (b"{}", b"{}", forged):
        await js_c.publish(subjects.evt(A, "identity", "ProfileChanged"), data)
    await js_c.add_consumer("FORGE", ConsumerConfig(name=consumer, deliver_subject=deliver,
                                                    ack_policy=AckPolicy.NONE))
    fed_b = subjects.fed_stream(B)
    if fed.layout == "accounts":
        await asyncio.sleep(1.5)
        assert await messages(fed.op[B], fed_b) == 2
        await fed.publish(A, "identity", forged_event(A))  # and A's next real event still arrives
        assert await wait_messages(fed.op[B], fed_b, 3) == 3
        assert b"forged by C" not in (await fed.op[B].jetstream().get_msg(fed_b, 3)).data
    else:  # (A without deny lists also takes C's FORGE publishes into its own stream, which B then sources too)
        assert await wait_messages(fed.op[B], fed_b, 3) >= 3
        js_b = fed.op[B].jetstream()
        got = [await js_b.get_msg(fed_b, seq) for seq in range(3, await messages(fed.op[B], fed_b) + 1)]
        assert any(m.data == forged and m.subject == subjects.evt(A, "identity", "ProfileChanged") for m in got)


async def test_c_cannot_create_consumers_on_as_streams_beyond_what_sourcing_needs(fed: Nodes) -> None:
    # A push consumer delivers once it sees interest in its very subject.
    records = [await record(fed.op[C], d) for d in ("stolen.identity", "stolen.all", "stolen.points", "stolen.taps")]
    await fed.publish(A, "identity", forged_event(A))
    await asyncio.sleep(0.5)
    api, identity = subjects.js_api(A), subjects.evt_stream(A, "identity")

    def create(stream: str, tail: str, deliver: str, filter_subject: str | None = None) -> tuple[str, bytes]:
        config = {"deliver_subject": deliver, "ack_policy": "none", "name": tail.split(".")[0] or None}
        if filter_subject:
            config["filter_subject"] = filter_subject
        subject = f"{api}.CONSUMER.CREATE.{stream}" + (f".{tail}" if tail else "")
        return subject, json.dumps({"stream_name": stream, "config": {k: v for k, v in config.items() if v}}).encode()

    # Consumers on A's identity stream named and filtered as sourcing does, with deliver subjects of C's choice: to
    # C's own subject, onto an endpoint of A's at A (JetStream publishes deliveries as the server, past every
    # permission: A's endpoint would take A's events as requests), or on B's prefix (C posing as B).
    endpoint = subjects.svc(A, "identity", "admin.user.add")
    at_endpoint = await record(fed.op[A], endpoint)  # A's identity service listening there
    chosen = {"stolen.identity": "its own subject", endpoint: "A's own endpoint",
              f"{subjects.source_deliver(B, A)}.S.posing": "B's deliveries"}
    answers = {}
    for i, deliver in enumerate(chosen):
        subject, payload = create(identity, f"spy{i}.evt.{A}.identity.>", deliver, f"evt.{A}.identity.>")
        answers[deliver] = json.loads(await create_consumer(fed.op[C], subject, payload, timeout=3) or b"{}")
    # and the form a source of C's really sends (deliveries on C's own prefix from A): the guard lets it through
    subject, payload = create(identity, f"src.evt.{A}.identity.>", f"{subjects.source_deliver(C, A)}.S.1",
                              f"evt.{A}.identity.>")
    good = json.loads(await create_consumer(fed.op[C], subject, payload, timeout=3) or b"{}")
    assert good.get("config", {}).get("deliver_subject") == f"{subjects.source_deliver(C, A)}.S.1", good
    refused = [  # not the form sourcing uses, or not a stream peers source: no responder at the accounts hub
        create(identity, "", "stolen.all"),
        create(identity, "spy2", "stolen.all"),
        create(identity, "spy3.>", "stolen.all", ">"),
        create(subjects.evt_stream(A, "points"), f"spy.evt.{A}.points.>", "stolen.points", f"evt.{A}.points.>"),
        create(subjects.edge_stream(A), f"spy.edge.{A}.>", "stolen.taps", f"edge.{A}.>"),
    ]
    replies = [await create_consumer(fed.op[C], s, p) for s, p in refused]
    await asyncio.sleep(1.0)
    stolen = [m for r in records for m in r]
    if fed.layout == "accounts":
        for deliver, answer in answers.items():  # A's source guard refused each, and said why
            assert answer.get("error", {}).get("code") == 403, (chosen[deliver], answer)
            assert f"only on {subjects.source_deliver(C, A)}." in answer["error"]["description"]
        assert replies == [None] * len(refused)
        assert stolen == [] and at_endpoint == []
    else:  # through the old hub every form succeeds, and A's events flow to C and into A's own points stream
        assert all(a.get("config", {}).get("deliver_subject") == d for d, a in answers.items()), answers
        assert all(r and b'"deliver_subject"' in r for r in replies), replies
        assert {m.subject for m in stolen} == {subjects.evt(A, "identity", "ProfileChanged")}
        assert at_endpoint, "A's endpoint took A's own events as requests"


async def test_c_reaches_into_as_account_only_with_what_a_imports_from_c(tmp_path: Path) -> None:
    """A without its deny lists, so the hub alone decides: of all C publishes, A receives only its imports from C
    (C's deliveries for A's sources of C, C's flow-control replies for the consumers A's streams run for C)."""
    for layout in LAYOUTS:
        async with three_nodes(tmp_path / layout, layout, unprotected=(A, C)) as fed:
            marker = uuid.uuid4().hex.encode()
            received = await record(fed.op[A], ">")
            await asyncio.sleep(0.5)
            allowed = [f"{subjects.source_deliver(A, C)}.S.x",
                       f"$JS.FC.{subjects.evt_stream(A, 'identity')}.c.1",
                       f"$JS.FC.{subjects.evt_stream(A, 'projects')}.c.1"]
            forbidden = [subjects.evt(A, "identity", "ProfileChanged"), subjects.edge(A, "t1", "tap"),
                         subjects.svc(A, "identity", "admin.user.add"), subjects.svc(A, "node", "enroll"),
                         f"dlq.{A}.points.x", f"fed.{A}.in", "_INBOX.x.y", "$SRV.PING",
                         f"$JS.ACK.{subjects.evt_stream(A, 'identity')}.c.1.1.1.1.0",
                         f"{subjects.js_api(A)}.STREAM.NAMES",  # A's server maps it to its own $JS.API
                         f"{subjects.source_deliver(A, B)}.S.x",  # as if it were B delivering to A
                         f"$JS.FC.{subjects.evt_stream(B, 'identity')}.c.1", "anything.else"]
            for subject in allowed + forbidden:
                await fed.op[C].publish(subject, marker)
            await fed.op[C].flush()
            await asyncio.sleep(1.0)
            got = sorted(m.subject for m in received if m.data == marker)
            if layout == "accounts":
                assert got == sorted(allowed)
            else:
                assert got == sorted(s.replace(f"{subjects.js_api(A)}.", "$JS.API.") for s in allowed + forbidden)


@pytest.mark.parametrize("layout", ["accounts"])
async def test_a_node_removed_from_the_hub_and_reloaded_is_cut_off(tmp_path: Path, layout: str) -> None:
    async with three_nodes(tmp_path, layout, unprotected=()) as fed:
        assert isinstance(fed.hub, Hub)
        await fed.source(B, A)
        await fed.source(C, A)
        await fed.publish(A, "identity", forged_event(A))
        fed_b, fed_c = subjects.fed_stream(B), subjects.fed_stream(C)
        assert await wait_messages(fed.op[C], fed_c, 1) == 1
        assert await wait_messages(fed.op[B], fed_b, 1) == 1
        old = fed.hub.credentials[C]

        assert await fed.hub.set_members([A, B]) == [C]
        assert not hubmod.credentials_path(fed.hub.data_dir, C).exists()  # its secret is gone
        await asyncio.sleep(2.0)
        await fed.publish(A, "identity", forged_event(A))
        assert await wait_messages(fed.op[B], fed_b, 2) == 2  # B still sources A
        await asyncio.sleep(2.0)
        assert await messages(fed.op[C], fed_c) == 1  # C is cut off

        # Back in: with a fresh secret, so C's old credentials stay refused.
        assert await fed.hub.set_members([A, B, C]) == []
        assert fed.hub.credentials[C] != old
        await fed.publish(A, "identity", forged_event(A))
        assert await wait_messages(fed.op[B], fed_b, 3) == 3
        await asyncio.sleep(2.0)
        assert await messages(fed.op[C], fed_c) == 1


async def test_a_source_set_up_before_the_deliver_prefix_is_set_up_again_and_keeps_its_position(
        tmp_path: Path) -> None:
    """A node that sourced a peer before the per-pair prefix (at the shared hub) moves to it on its next
    ensure_peer_sources, without copying anything twice, and then works at the accounts hub too."""
    # (through a hub without accounts only a node without deny lists can be sourced: see three_nodes)
    async with three_nodes(tmp_path, "shared") as fed:
        js_b, fed_b = fed.op[B].jetstream(), subjects.fed_stream(B)
        before = StreamSource(name=subjects.evt_stream(A, "identity"), filter_subject=subjects.evt_all(A, "identity"),
                              external=ExternalStream(api=subjects.js_api(A)))
        await ensure_stream(js_b, fed_stream_config(B, [before]))
        for _ in range(2):
            await fed.publish(A, "identity", forged_event(A))
        assert await wait_messages(fed.op[B], fed_b, 2) == 2
        assert await ensure_peer_sources(js_b, B, {A}, "identity") == []  # nothing added, one source moved
        (source,) = (await js_b.stream_info(fed_b)).config.sources
        assert source.external.deliver == subjects.source_deliver(B, A)
        await fed.publish(A, "identity", forged_event(A))
        assert await wait_messages(fed.op[B], fed_b, 3) == 3
        await asyncio.sleep(1.5)
        assert await messages(fed.op[B], fed_b) == 3  # and not 5: the source went on from where it was


def test_each_account_exports_only_to_its_peers_what_sourcing_needs() -> None:
    # identity's profiles, projects' public facts, signage's offers and plays, notices to everyone and the sns
    # directory of communities (never the notices stream itself, nor signage's own, which names screens and places,
    # nor sns's own, with posts, comments and friend requests)
    assert FEDERATED_SERVICES == ("identity", "projects", "sigfed", "publicnotices", "snsfed")
    assert "notices" not in FEDERATED_SERVICES and "signage" not in FEDERATED_SERVICES
    assert "sns" not in FEDERATED_SERVICES
    members = [A, B, C]
    for node in members:
        peers = {p for p in members if p != node}
        exported = hubmod.exports(node, members)
        assert all(e["accounts"] and set(e["accounts"]) <= peers for e in exported)  # none public
        services = {e["service"] for e in exported if "service" in e}
        # the consumer creation, on the subject the node's source guard answers (never its JetStream API)
        assert services == {f"fedsrc.{node}.CREATE.{subjects.evt_stream(node, s)}.*.evt.{node}.{s}.>"
                            for s in FEDERATED_SERVICES}
        streams = {(e["stream"], tuple(e["accounts"])) for e in exported if "stream" in e}
        for peer in peers:
            assert (f"$JS.S.{peer}.{node}.>", (peer,)) in streams
            assert (f"$JS.FC.{subjects.evt_stream(peer, 'identity')}.>", (peer,)) in streams
        assert len(streams) == (1 + len(FEDERATED_SERVICES)) * len(peers)  # deliveries, a flow control each
        imported = hubmod.imports(node, members)
        assert all(i.get("service", i.get("stream"))["account"] in peers for i in imported)
        # a peer's source sends `$JS.<peer>.API.CONSUMER.CREATE…` as ever: the import maps it onto the guard's
        assert {(i["service"]["subject"], i["to"]) for i in imported if "service" in i} == {
            (f"fedsrc.{p}.CREATE.{subjects.evt_stream(p, s)}.*.evt.{p}.{s}.>",
             f"$JS.{p}.API.CONSUMER.CREATE.{subjects.evt_stream(p, s)}.*.evt.{p}.{s}.>")
            for p in peers for s in FEDERATED_SERVICES}
        # from each peer: a consumer creation and a flow control per federated service, and its deliveries
        assert len(imported) == (1 + 2 * len(FEDERATED_SERVICES)) * len(peers)
    assert hubmod.exports(A, [A]) == [] and hubmod.imports(A, [A]) == []


def test_hub_config_writes_the_config_and_one_private_credentials_file_per_node(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, out = tmp_path / "hub", tmp_path / "etc" / "hub.conf"
    args = ["federation", "hub-config", "--data-dir", str(data), "--out", str(out), "--listen", "127.0.0.1:7422"]
    assert cli_main([*args, "--node", A, "--node", B]) == 0
    printed = capsys.readouterr().out
    creds = {n: hubmod.credentials_path(data, n) for n in (A, B)}
    for node, path in creds.items():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and f"--hub-credentials-file {path}" in printed
        user, password = read_credentials(path)
        assert user == f"leaf-{node}" and len(password) >= 43  # 256 bits, url-safe base64
        assert password not in printed
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    checked = subprocess.run([nats_server_binary(), "-c", str(out), "-t"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    first = {n: read_credentials(p) for n, p in creds.items()}

    assert cli_main([*args, "--node", A, "--node", B, "--node", C]) == 0  # a node added: the others keep theirs
    assert {n: read_credentials(creds[n]) for n in (A, B)} == first
    assert f'"{C}"' in out.read_text()
    assert cli_main([*args, "--node", A, "--node", C]) == 0  # B removed: gone from the config, its file deleted
    assert not creds[B].exists() and f'"{B}"' not in out.read_text() and "leaf-town-b" not in out.read_text()

    client = free_port()  # the hub running on that config takes the next one with --apply
    args += ["--client-listen", f"127.0.0.1:{client}"]
    assert cli_main([*args, "--node", A, "--node", C]) == 0
    hub = subprocess.Popen([nats_server_binary(), "-c", str(out)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", client, proc=hub)
        capsys.readouterr()
        assert cli_main([*args, "--node", A, "--apply", f"nats://127.0.0.1:{client}"]) == 0
        assert "cut off: nobody" in capsys.readouterr().out
        assert hub.poll() is None
    finally:
        hub.terminate()
        hub.wait()
    assert cli_main([*args, "--node", A, "--apply", f"nats://127.0.0.1:{client}"]) == 1  # nobody listens now
    assert "cannot reach the hub's admin" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--node", "Town_A"], "node id"),
    (["--node", A, "--node", A], "given twice"),
    (["--node", A, "--listen", "7422"], "--listen must be HOST:PORT"),
    (["--node", A, "--client-listen", "localhost:99999"], "--client-listen must be HOST:PORT"),
])
def test_hub_config_refuses_bad_input_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    assert cli_main(["federation", "hub-config", "--data-dir", str(tmp_path / "hub"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "hub").exists()


def test_hub_config_national_and_prefecture_hubs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The national hub connects only nodes of different prefectures; a prefecture hub connects its members and
    dials the national hub with one remote per member account, bound to the same-named account there."""
    national, saitama = tmp_path / "national", tmp_path / "saitama"
    assert cli_main(["federation", "hub-config", "--data-dir", str(national), "--listen", "127.0.0.1:7422",
                     "--prefecture", f"saitama={A},{B}", "--prefecture", f"kyoto={C}"]) == 0
    assert cli_main(["federation", "hub-config", "--data-dir", str(saitama), "--listen", "127.0.0.1:7423",
                     "--node", A, "--node", B, "--upstream", "nats-leaf://127.0.0.1:7422",
                     "--upstream-credentials-dir", str(national / "credentials")]) == 0
    printed = capsys.readouterr().out
    for conf in (national / "hub.conf", saitama / "hub.conf"):
        checked = subprocess.run([nats_server_binary(), "-c", str(conf), "-t"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr

    def accounts(conf: Path) -> dict[str, dict]:
        text = conf.read_text()
        return {n: json.loads(line.split(": ", 1)[1]) for line in text.splitlines() for n in (A, B, C)
                if line.startswith(f'  "{n}": ')}

    def peers_imported(body: dict) -> set[str]:
        return {i["service"]["account"] for i in body["imports"] if "service" in i}

    at_national = accounts(national / "hub.conf")
    assert peers_imported(at_national[A]) == {C} and peers_imported(at_national[C]) == {A, B}
    at_saitama = accounts(saitama / "hub.conf")
    assert set(at_saitama) == {A, B} and peers_imported(at_saitama[A]) == {B}
    text = (saitama / "hub.conf").read_text()
    for node in (A, B):
        _user, password = read_credentials(national / "credentials" / node)
        assert f'"account": "{node}"' in text and password in text and password not in printed
    assert '"account": "' + C not in text


@pytest.mark.parametrize("extra, message", [
    (["--prefecture", "saitama"], "NAME=NODE"),
    (["--prefecture", f"saitama={A}", "--node", B], "not both"),
    (["--prefecture", f"saitama={A}", "--upstream", "nats-leaf://h:1", "--upstream-credentials-dir", "x"],
     "no --upstream"),
    (["--node", A, "--upstream", "nats-leaf://h:1"], "go together"),
    (["--node", A, "--upstream", "http://h:1", "--upstream-credentials-dir", "x"], "--upstream: a hub URL"),
    (["--node", A, "--upstream", "nats-leaf://h:1", "--upstream-credentials-dir", "nowhere"],
     "--upstream-credentials-dir"),
    ([], "name the members"),
])
def test_hub_config_refuses_bad_hierarchy_options_and_writes_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str) -> None:
    assert cli_main(["federation", "hub-config", "--data-dir", str(tmp_path / "hub"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "hub" / "hub.conf").exists()
