"""`towntip node backup` / `node restore` on whole nodes: a node's people, points, theme and card survive a move to
an empty machine (a new data dir), on SQLite and on PostgreSQL; a damaged archive, another node's archive and a
data dir in use are refused and change nothing."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import pytest

from tests.node.test_supervisor import NODE, Node, finish, start_node
from tests.support.bus import call, wait_for
from tests.support.nodes import PW, add_people
from towntip.kernel.bus import subjects
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import points as pc
from towntip.kernel.contracts import projects as prc
from towntip.kernel.contracts.actor import Actor

# Whole nodes, one after another beside the supervisor's own tests (two cores: at most two nodes start at once).
pytestmark = [pytest.mark.xdist_group("supervisor"), pytest.mark.timeout(600)]

CARD = "0300000000000007"
TAP = pc.Tap(tap_id="bk-tap-1", terminal_id="term-bk", card_idm=CARD, event="seisou", role="volunteer",
             tapped_at=datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
# a tap the bus acknowledged while the points service could not apply it: in the backup only in EDGE_<NODE>
LATE = pc.Tap(tap_id="bk-tap-2", terminal_id="term-bk", card_idm=CARD, event="hanami", role="volunteer",
              tapped_at=datetime(2026, 11, 4, 9, 0, tzinfo=UTC))


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())",
                           "node", *args], capture_output=True, text=True, timeout=timeout)


async def a_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(cli, *args)


def node_in(where: Path, database_url: str = "") -> Node:
    where.mkdir(parents=True, exist_ok=True)
    return start_node(where, database_url=database_url, gateway_workers=1)


async def operator(node: Node) -> nats.NATS:
    return await nats.connect(node.operator_url(), connect_timeout=5)


async def enroll(nc: nats.NATS) -> dict[str, str]:
    """The card terminal's own bus user (only enrolled terminals hear their taps' outcomes)."""
    got = await nc.request(f"svc.{NODE}.node.enroll", json.dumps({"terminal": TAP.terminal_id}).encode(),
                           timeout=30)
    return dict(json.loads(got.data))


def terminal_url(node: Node, terminal: dict[str, str]) -> str:
    """The enrolled terminal's URL on this node's nats-server port (the password is the one enrolment made)."""
    netloc = urlsplit(terminal["url"]).netloc.rsplit(":", 1)[0]
    return urlunsplit(urlsplit(terminal["url"])._replace(netloc=f"{netloc}:{urlsplit(node.operator_url()).port}"))


async def tap(node: Node, terminal: dict[str, str], *, stream_dedup: bool = True) -> pc.TapOutcome:
    """Sends TAP (always the same tap id) as the enrolled terminal, on this node's port, and answers its outcome.
    Without `stream_dedup` it goes without Nats-Msg-Id, as a tap re-sent after JetStream's window would be heard."""
    nc = await nats.connect(terminal_url(node, terminal), inbox_prefix=terminal["inbox_prefix"], connect_timeout=5)
    try:
        inbox = await nc.subscribe(nc.new_inbox(), max_msgs=1)
        await nc.jetstream().publish(subjects.edge(NODE, TAP.terminal_id, "tap"), TAP.model_dump_json().encode(),
                                     headers={subjects.HDR_RESULT_TO: inbox.subject}
                                     | ({subjects.HDR_MSG_ID: TAP.key} if stream_dedup else {}))
        return pc.TapOutcome.model_validate_json((await inbox.next_msg(timeout=60)).data)
    finally:
        await nc.close()


async def tap_unapplied(node: Node, terminal: dict[str, str], archive: Path, pg: list[str]) -> None:
    """LATE acknowledged by JetStream while the points service is frozen (SIGSTOP): the terminal would never send it
    again, and the service has not applied it when the backup is taken."""
    pid = (await node.status())["points"]["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        nc = await nats.connect(terminal_url(node, terminal), inbox_prefix=terminal["inbox_prefix"])
        try:
            ack = await nc.jetstream().publish(subjects.edge(NODE, LATE.terminal_id, "tap"),
                                               LATE.model_dump_json().encode(), headers={subjects.HDR_MSG_ID: LATE.key})
            assert not ack.duplicate
        finally:
            await nc.close()
        r = await a_cli("backup", "--data-dir", str(node.data_dir), "--out", str(archive), *pg)
        assert r.returncode == 0, r.stderr
        assert "backup of testnode written" in r.stdout and "暗号化" in r.stdout
    finally:
        os.kill(pid, signal.SIGCONT)


async def make_town(node: Node, nc: nats.NATS) -> dict[str, Any]:
    """Two people (one staff), a theme, an event, hanako's card bound by its code, and one tap credited."""
    users = await add_people(nc, NODE, [("hanako", "山田 花子", None), ("kikaku", "企画 太郎", "staff")])
    hanako, staff = users["hanako"], users["kikaku"]
    actor = Actor(user_id=staff.id, global_handle=staff.global_handle, display_name=staff.display_name,
                  roles=tuple(staff.roles)).model_dump(mode="json")
    dept = await call(nc, prc.EP_ORG_CREATE, {"actor": actor, "kind": "department", "name": "交通政策課"},
                      service="projects", node=NODE)
    theme = await call(nc, prc.EP_THEME_CREATE, {"actor": actor, "owner_department_id": dept["id"],
                                                  "title": "高齢者の移動手段の確保"}, service="projects", node=NODE)
    await call(nc, pc.EP_EVENT_PUT, pc.EventIn(code="seisou", name="河川清掃", volunteer_points=30), node=NODE)
    await call(nc, pc.EP_EVENT_PUT, pc.EventIn(code="hanami", name="花見の片付け", volunteer_points=20), node=NODE)
    await call(nc, pc.EP_CARD_BIND_REQUEST, pc.CardBindRequest(person=hanako.id, card_idm=CARD), node=NODE)
    terminal = await enroll(nc)
    first = await tap(node, terminal)
    assert first.status == "credited" and first.points == 30 and first.display, first
    code = first.display[:9]
    held = await call(nc, pc.EP_CARD_REGISTER_CODE, pc.CardCodeIn(person=hanako.id, code=code), node=NODE)
    assert held["balance"] == 30 and len(held["cards"]) == 1, held
    return {"hanako": hanako.id, "theme": theme["id"], "card_ref": held["cards"][0]["card_ref"],
            "terminal": terminal, "staff": actor}


async def logs_in(nc: nats.NATS, handle: str) -> bool:
    got = await call(nc, ic.EP_LOGIN, ic.LoginIn(login=handle, password=PW), service="identity", node=NODE)
    return bool(got["session_token"])


async def the_same_town(node: Node, town: dict[str, Any]) -> None:
    """After the restore: the same people log in, hanako's balance and card, the theme; the old tap, touched again
    with its id, is a duplicate (no second credit)."""
    nc = await operator(node)
    try:
        assert await wait_for(lambda: logs_in(nc, "hanako"), "hanako logs in", timeout=30,
                              tolerate=(Exception,))
        assert await logs_in(nc, "kikaku")
        async def points() -> Any:  # LATE, restored in EDGE_<NODE>, is applied once at the first start: 30 + 20
            mine = await call(nc, pc.EP_PERSON_POINTS, pc.PersonQuery(person=town["hanako"]), node=NODE)
            return mine if mine["balance"] == 50 else None

        mine = await wait_for(points, "the late tap credited after the restore", timeout=60)
        assert [c["card_ref"] for c in mine["cards"]] == [town["card_ref"]], mine
        theme = await call(nc, prc.EP_THEME_GET, {"theme_id": town["theme"], "actor": town["staff"]},
                           service="projects", node=NODE)
        assert theme["title"] == "高齢者の移動手段の確保"
        # The restore published the tap again moments ago, inside the stream's dedup window: the terminal's own
        # re-send would only be acknowledged as a duplicate. One heard after the window reaches the service, which
        # knows the tap id from the restored database. (The terminal's password came back with the secrets.)
        again = await tap(node, town["terminal"], stream_dedup=False)
        assert again.status == "duplicate", again  # (its points are the first outcome's, told again)
        await asyncio.sleep(1)
        mine = await call(nc, pc.EP_PERSON_POINTS, pc.PersonQuery(person=town["hanako"]), node=NODE)
        assert mine["balance"] == 50, mine
    finally:
        await nc.close()


def listing(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def bad_archives(archive: Path, tmp: Path) -> tuple[Path, Path]:
    """A copy with one byte flipped, and one whose card key was changed but the manifest kept."""
    damaged = tmp / "damaged.tar.gz"
    raw = bytearray(archive.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    # a member changed but the manifest kept: the archive is well-formed gzip, only the SHA-256 tells
    altered = tmp / "altered.tar.gz"
    with tarfile.open(archive, "r:gz") as src, tarfile.open(altered, "w:gz") as dst:
        for m in src.getmembers():
            body = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name == "secrets/card-key":
                body = b"0" * len(body)
            m.size = len(body)
            dst.addfile(m, io.BytesIO(body))
    return damaged, altered


async def refusals(archive: Path, tmp: Path, node_args: list[str]) -> None:
    """Each refusal exits 1 with its reason and leaves the data dir as it was."""
    damaged, altered = await asyncio.to_thread(bad_archives, archive, tmp)
    empty = tmp / "empty-dir"
    for bad, why in ((damaged, "damaged"), (altered, "does not match its SHA-256"),
                     (tmp / "nothing.tar.gz", "no file")):
        r = await a_cli("restore", str(bad), "--data-dir", str(empty), *node_args)
        assert r.returncode == 1 and why in r.stderr, r.stderr
        assert listing(empty) == []
    r = await a_cli("restore", str(archive), "--node", "othernode", "--data-dir", str(empty), *node_args)
    assert r.returncode == 1 and "not 'othernode'" in r.stderr and "--force" in r.stderr, r.stderr
    assert listing(empty) == []
    forced = tmp / "forced"
    r = await a_cli("restore", str(archive), "--node", "othernode", "--force", "--data-dir", str(forced))
    if node_args:  # a PostgreSQL node's archive is not restored onto SQLite files
        assert r.returncode == 1 and "on postgresql, the target is sqlite" in r.stderr, r.stderr
        assert listing(forced) == []
    else:  # --force: the archive as another node (its databases and secrets; not its streams, named after the old id)
        assert r.returncode == 0 and "as othernode" in r.stdout and "0 stream messages" in r.stdout, r.stderr
        assert (forced / "secrets" / "card-key").exists() and (forced / "points.sqlite3").exists()
    busy = tmp / "busy"
    await asyncio.to_thread(busy.mkdir)
    await asyncio.to_thread((busy / "notes.txt").write_text, "mine")
    r = await a_cli("restore", str(archive), "--data-dir", str(busy), *node_args)
    assert r.returncode == 1 and "not empty" in r.stderr, r.stderr
    assert listing(busy) == ["notes.txt"] and (busy / "notes.txt").read_text() == "mine"


async def round_trip(tmp_path: Path, *, db_a: str = "", db_b: str = "") -> None:
    pg = ["--database-url", db_a] if db_a else []
    node = node_in(tmp_path / "a", db_a)
    archive = tmp_path / "a" / "frozen.tar.gz"  # taken on the running node while the points service is frozen
    try:
        await node.wait_health(200, timeout=400)
        nc = await operator(node)
        try:
            town = await make_town(node, nc)
        finally:
            await nc.close()
        await tap_unapplied(node, town["terminal"], archive, pg)
        assert node.stop() == 0
    finally:
        finish(node)
    assert (archive.stat().st_mode & 0o777) == 0o600
    with tarfile.open(archive, "r:gz") as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        names = set(tar.getnames())
    assert manifest["node"] == NODE and manifest["node_was_running"] is True
    assert set(manifest["databases"]) == set(subjects.SERVICES)
    assert all(db["alembic"] for db in manifest["databases"].values()), manifest["databases"]
    assert {"secrets/card-key", "secrets/admin-token", "secrets/portal-key"} <= names
    assert "secrets/nats-operator-url" not in names
    assert manifest["streams"][subjects.edge_stream(NODE)]["messages"] == 2  # the taps
    assert set(manifest["members"]) == names - {"manifest.json"}

    # the node stopped: a backup takes the lock and reads the streams through a nats-server of its own
    stopped = tmp_path / "stopped.tar.gz"
    r = await a_cli("backup", "--data-dir", str(node.data_dir), "--out", str(stopped), *pg)
    assert r.returncode == 0, r.stderr
    with tarfile.open(stopped, "r:gz") as tar:
        again = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert again["node_was_running"] is False and set(again["databases"]) == set(subjects.SERVICES)
    assert again["streams"][subjects.edge_stream(NODE)]["messages"] == 2

    archive = Path(shutil.copy(archive, tmp_path / "off-site.tar.gz"))
    shutil.rmtree(tmp_path / "a")  # the machine is gone
    b_args = ["--database-url", db_b] if db_b else []
    await refusals(archive, tmp_path, b_args)
    fresh = tmp_path / "b" / "var"
    r = await a_cli("restore", str(archive), "--data-dir", str(fresh), *b_args)
    assert r.returncode == 0, r.stderr
    assert "restored testnode" in r.stdout
    assert (fresh / "secrets" / "card-key").stat().st_mode & 0o777 == 0o600
    if not db_b:
        assert {f"{s}.sqlite3" for s in subjects.SERVICES} <= {p.name for p in fresh.iterdir()}
    node = node_in(tmp_path / "b", db_b)
    try:
        await node.wait_health(200, timeout=400)
        await the_same_town(node, town)
        assert node.stop() == 0
    finally:
        finish(node)


async def test_backup_and_restore_on_sqlite(tmp_path: Path) -> None:
    await round_trip(tmp_path)


@pytest.fixture
async def two_databases() -> AsyncIterator[tuple[str, str]]:
    """Two new PostgreSQL databases: the old machine's and the new one's."""
    from tests.conftest import PG_URL, postgres_available

    reason = await asyncio.to_thread(postgres_available)
    if reason:
        pytest.skip(reason)
    missing = [tool for tool in ("pg_dump", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: a PostgreSQL node's backup needs the client tools")
    import asyncpg

    dsn = PG_URL.replace("postgresql+asyncpg", "postgresql")
    stamp = f"{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    names = [f"towntip_bk_a_{stamp}", f"towntip_bk_b_{stamp}"]
    admin = await asyncpg.connect(dsn)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG_URL.rsplit("/", 1)[0]
        yield f"{base}/{names[0]}", f"{base}/{names[1]}"
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.postgres
async def test_backup_and_restore_on_postgres(tmp_path: Path, two_databases: tuple[str, str]) -> None:
    await round_trip(tmp_path, db_a=two_databases[0], db_b=two_databases[1])


def test_backup_of_no_node_is_refused(tmp_path: Path) -> None:
    r = cli("backup", "--node", NODE, "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.tgz"))
    assert r.returncode == 1 and "not a node's data dir" in r.stderr, r.stderr
    assert not (tmp_path / "x.tgz").exists()
    r = cli("backup", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.tgz"))
    assert r.returncode == 2 and "pass --node" in r.stderr, r.stderr


def test_a_gzip_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(gzip.compress(b"hello"))
    r = cli("restore", str(bogus), "--data-dir", str(tmp_path / "var"))
    assert r.returncode == 1 and "restore refused" in r.stderr, r.stderr
    assert not (tmp_path / "var").exists()
