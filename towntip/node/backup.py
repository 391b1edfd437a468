"""`towntip node backup` and `towntip node restore`: a whole node in one archive, and back on an empty machine.

What is in the archive (one tar.gz, members listed with their SHA-256 in `manifest.json`):

- `db/<service>.sqlite3` (SQLite, copied with the online backup API, never a file copy of a live WAL database) or
  `db/<service>.sql` (PostgreSQL: `pg_dump --schema=<service>`, which reads one snapshot of its own);
- `secrets/*`: the admin token, the card key (without it the card accounts are lost: a card's account is keyed by
  the IDm's HMAC), the portal key, the bus users' and enrolled terminals' and screens' passwords, the VAPID key —
  every file of `<data-dir>/secrets/` but `nats-operator-url` (it names a port; `node up` writes it again);
- `streams/<STREAM>.jsonl`: the messages of the node's own JetStream streams (`EDGE_<NODE>`, `DLQ_<NODE>`,
  `EVT_<NODE>_*`), with subject, headers and data. The sourced `FED_*` streams are not kept: they are copies of
  peers' streams, and a new stream sources them again from the peers (30 days kept there).

Why the streams' messages and not consumer positions: a tap acknowledged by JetStream is no longer re-sent by its
terminal (`edge/terminal/spool.py`: pending → accepted), so a tap not yet applied exists only in `EDGE_<NODE>`; an
event published but not yet consumed exists only in its `EVT` stream once the outbox row is marked published.
Copying the messages (rather than JetStream's snapshot API, which nats-py does not offer, or the store's files, which
are not consistent while the server writes) and publishing them again into fresh streams is simple and correct:
every consumer starts again from the first message, and every message it had applied already is in its inbox
(or, for a tap, its journal key `tap:<terminal>:<tap id>`), so it is answered "duplicate" and changes nothing.

Consistency on a running node (in this order):
1. the last sequence of each `EVT` stream is noted;
2. each database is copied (each copy is consistent in itself; services never read each other's tables);
3. the `EVT` streams are copied up to the noted sequence, `EDGE` and `DLQ` to their end.
An event in a database copy was either published before step 1 (so it is in the copied stream) or is still in the
service's outbox (published rows are kept a day): restore marks every kept outbox row unpublished, and the relay
publishes it again at the first start. An event committed after its database was copied is past step 1, so it is
not in the archive either. A tap accepted after its database was copied is in the archive (step 3 comes later) and
is applied at the first start. On a stopped node the backup holds `node.lock`, so the node cannot start meanwhile,
and reads the streams through a nats-server of its own on the data dir's store (its bus users, no hub link).

Security and privacy: the archive holds everything personal the node keeps (accounts, password hashes, balances,
messages) and every secret (the card key, the admin token, the bus passwords): it is written 0600, and whoever
holds it can be the node. Keep it encrypted off the machine (docs/operating.md, "Backups"). Only the operator runs
these commands (they need the data dir and, on a running node, the operator's NATS user). Restore refuses an
archive whose members do not match the manifest's SHA-256 (a corrupt or altered archive), names outside the
manifest or with a path (no writing outside the data dir), another node's archive unless `--force`, and a data
dir or PostgreSQL schema that is not empty (it never overwrites a node).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

import towntip
from towntip.kernel.bus import subjects
from towntip.kernel.bus.streams import ensure_node_streams
from towntip.node.natsauth import OPERATOR, BusUsers
from towntip.node.natsd import NatsServer

FORMAT = 1
MANIFEST = "manifest.json"
SKIPPED_SECRETS = ("nats-operator-url",)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MEMBER = re.compile(r"^(db/[a-z]+\.(sqlite3|sql)|secrets/[A-Za-z0-9][A-Za-z0-9._-]*|streams/[A-Z0-9_-]+\.jsonl)$")


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why (English; the CLI adds the Japanese)."""


@dataclass
class NodeTarget:
    """Where a node's data is: as `towntip node up` was (or will be) given it."""

    node: str
    data_dir: Path
    database_url: str = ""
    service_dbs: dict[str, str] = field(default_factory=dict)
    nats_url: str = ""
    services: tuple[str, ...] = subjects.SERVICES

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    def database(self, service: str) -> tuple[str, str]:
        """("sqlite", file path) or ("postgresql", libpq URL) of one service; its PostgreSQL schema is its name."""
        url = self.service_dbs.get(service) or self.database_url
        if not url:
            return "sqlite", str(self.data_dir / f"{service}.sqlite3")
        if url.startswith("sqlite"):
            return "sqlite", url.split(":///", 1)[1]
        return "postgresql", "postgresql://" + url.split("://", 1)[1]


# -- small parts -------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed on this machine (PostgreSQL client tools: apt-get install "
                          f"postgresql-client)")
    return found


def _psql(dsn: str, sql: str) -> str:
    r = subprocess.run([_pg_tool("psql"), "--dbname", dsn, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise BackupError(f"psql: {r.stderr.strip()}")
    return r.stdout.strip()


def _sqlite_heads(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in con.execute("SELECT version_num FROM alembic_version"))
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


@contextlib.contextmanager
def _lock(data_dir: Path) -> Iterator[bool]:
    """Holds node.lock if the node is stopped (yields False), else yields True (the node is running)."""
    path = data_dir / "node.lock"
    if not path.exists():
        yield False
        return
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield True
            return
        try:
            yield False
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.asynccontextmanager
async def _bus(target: NodeTarget, *, running: bool) -> AsyncIterator[NATS]:
    """The operator's connection to the node's NATS: the running node's, an outside one, or a nats-server of our own
    on the data dir's JetStream store (the node's users, no hub link) while the node is stopped."""
    server: NatsServer | None = None
    if target.nats_url:
        url = target.nats_url
    elif running:
        path = target.data_dir / "secrets" / "nats-operator-url"
        if not path.exists():
            raise BackupError(f"the node on {target.data_dir} runs but left no secrets/nats-operator-url; "
                              "pass --nats-url")
        url = path.read_text().strip()
    else:
        users = BusUsers(target.data_dir, target.node, target.services)
        (target.data_dir / "logs").mkdir(parents=True, exist_ok=True)
        server = NatsServer(node_id=target.node, data_dir=target.data_dir / "nats", extra_config=users.render(),
                            log_file=target.data_dir / "logs" / "nats-server-backup.log")
        await asyncio.to_thread(server.start)
        url = users.url(server.url, OPERATOR)
    try:
        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=2, name=f"backup@{target.node}")
    except Exception as exc:  # noqa: BLE001 - nats-py raises several kinds for a server it cannot reach
        if server is not None:
            server.stop()
        raise BackupError(f"cannot reach the node's NATS: {exc.__class__.__name__}: {exc}") from None
    try:
        yield nc
    finally:
        await nc.close()
        if server is not None:
            await asyncio.to_thread(server.stop)


def _own_stream(name: str, node: str) -> bool:
    """The node's own streams (not FED_*: copies of peers' streams, sourced again by a new node)."""
    n = node.upper().replace("-", "_")
    return name in (subjects.edge_stream(node), subjects.dlq_stream(node)) or name.startswith(f"EVT_{n}_")


# -- backup ------------------------------------------------------------------------------------------------------


async def _stream_names(nc: NATS, node: str) -> list[str]:
    js = nc.jetstream()
    names = []
    for info in await js.streams_info():
        if _own_stream(info.config.name or "", node) and not info.config.sources and not info.config.mirror:
            names.append(info.config.name or "")
    return sorted(names)


async def _copy_stream(nc: NATS, name: str, upto: int | None, out: Path) -> dict[str, Any]:
    js = nc.jetstream()
    info = await js.stream_info(name)
    first, last = info.state.first_seq, info.state.last_seq
    if upto is not None:
        last = min(last, upto)
    lines = []
    for seq in range(first, last + 1) if info.state.messages else ():
        try:
            msg = await js.get_msg(name, seq)
        except NotFoundError:
            continue  # deleted or aged out between the info and now
        # JetStream's own headers go, but the message id (dedup); so does a tap's reply address, long gone
        headers = {k: v for k, v in (msg.headers or {}).items()
                   if (not k.startswith("Nats-") or k == subjects.HDR_MSG_ID) and k != subjects.HDR_RESULT_TO}
        lines.append(json.dumps({"seq": msg.seq, "subject": msg.subject, "headers": headers,
                                 "data": base64.b64encode(msg.data or b"").decode()}) + "\n")
    await asyncio.to_thread(_write_lines, out, lines)
    return {"messages": len(lines), "upto": last, "config": info.config.as_dict()}


def _write_lines(path: Path, lines: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(lines)


def _copy_database(target: NodeTarget, service: str, stage: Path) -> dict[str, Any] | None:
    kind, where = target.database(service)
    if kind == "sqlite":
        src = Path(where)
        if not src.exists():
            return None  # a service that never ran on this node
        dest = stage / "db" / f"{service}.sqlite3"
        source = sqlite3.connect(src)
        copy = sqlite3.connect(dest)
        try:
            source.backup(copy)  # the online backup API: one consistent copy while the service writes
        finally:
            copy.close()
            source.close()
        return {"kind": "sqlite", "file": f"db/{service}.sqlite3", "alembic": _sqlite_heads(dest)}
    exists = _psql(where, f"SELECT count(*) FROM pg_namespace WHERE nspname = '{service}'")
    if exists == "0":
        return None
    dest = stage / "db" / f"{service}.sql"
    r = subprocess.run([_pg_tool("pg_dump"), "--dbname", where, "--schema", service, "--no-owner",
                        "--no-privileges", "--format", "plain", "--file", str(dest)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise BackupError(f"pg_dump of schema {service}: {r.stderr.strip()}")
    heads = _psql(where, f'SELECT version_num FROM "{service}".alembic_version').split()
    # pg_dump --schema leaves out the extensions the schema uses (bookings: btree_gist, in public): noted here,
    # made again before the restore.
    extensions = [line.split("|") for line in _psql(where, (
        "SELECT e.extname || '|' || n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname <> 'plpgsql' ORDER BY 1")).splitlines() if line]
    return {"kind": "postgresql", "file": f"db/{service}.sql", "alembic": sorted(heads), "extensions": extensions}


def node_of(data_dir: Path) -> str:
    """The node id the data dir's nats-server was configured with (its JetStream domain), or ""."""
    conf = data_dir / "nats" / "nats-server.conf"
    if conf.exists():
        found = re.search(r'^\s*domain:\s*"([a-z0-9-]+)"', conf.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    return ""


async def create_backup(target: NodeTarget, out: Path) -> dict[str, Any]:
    """Writes the archive to `out` (0600, written beside and renamed into place); answers its manifest."""
    data = target.data_dir
    out = await asyncio.to_thread(_before_backup, target, out)
    with _lock(data) as running, tempfile.TemporaryDirectory(prefix=".backup-", dir=out.parent) as tmp:
        stage = Path(tmp)
        for sub in ("db", "secrets", "streams"):
            (stage / sub).mkdir()
        manifest: dict[str, Any] = {
            "format": FORMAT, "node": target.node, "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "towntip_version": getattr(towntip, "__version__", "0"), "node_was_running": running,
            "databases": {}, "streams": {}, "members": {},
        }
        async with _bus(target, running=running) as nc:
            names = await _stream_names(nc, target.node)
            js = nc.jetstream()
            upto = {n: (await js.stream_info(n)).state.last_seq for n in names if n.startswith("EVT_")}
            for service in target.services:
                copied = await asyncio.to_thread(_copy_database, target, service, stage)
                if copied is not None:
                    manifest["databases"][service] = copied
            for name in names:
                manifest["streams"][name] = await _copy_stream(nc, name, upto.get(name), stage / "streams" /
                                                               f"{name}.jsonl")
                manifest["streams"][name]["file"] = f"streams/{name}.jsonl"
        await asyncio.to_thread(_write_archive, data, stage, manifest, out)
    return manifest


def _before_backup(target: NodeTarget, out: Path) -> Path:
    data = target.data_dir
    if not (data / "secrets" / "card-key").exists():
        raise BackupError(f"{data} is not a node's data dir (no secrets/card-key)")
    seen = node_of(data)
    if seen and seen != target.node:
        raise BackupError(f"the data dir {data} is node {seen!r}, not {target.node!r}")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _write_archive(data: Path, stage: Path, manifest: dict[str, Any], out: Path) -> None:
    """The secrets joined to the staged databases and streams; the manifest first, then each member."""
    for path in sorted((data / "secrets").iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name not in SKIPPED_SECRETS:
            shutil.copyfile(path, stage / "secrets" / path.name)
    for path in sorted(p for p in stage.rglob("*") if p.is_file()):
        manifest["members"][path.relative_to(stage).as_posix()] = _sha256(path)
    draft = out.with_name(f".{out.name}.{os.getpid()}.part")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
        body = json.dumps(manifest, indent=1, ensure_ascii=False).encode()
        entry = tarfile.TarInfo(MANIFEST)
        entry.size, entry.mode = len(body), 0o600
        tar.addfile(entry, io.BytesIO(body))
        for member in manifest["members"]:
            tar.add(stage / member, arcname=member, recursive=False)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(draft, out)


# -- restore -----------------------------------------------------------------------------------------------------


def read_archive(archive: Path, into: Path) -> dict[str, Any]:
    """Unpacks the archive into `into` after checking it: the manifest, each member's name and SHA-256."""
    if not archive.is_file():
        raise BackupError(f"no file {archive}")
    os.chmod(into, 0o700)
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            members = tar.getmembers()
            names = [m.name for m in members]
            if MANIFEST not in names:
                raise BackupError("not a TownTip backup: no manifest.json")
            extracted = tar.extractfile(MANIFEST)
            assert extracted is not None
            manifest = json.loads(extracted.read())
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                shown = manifest.get("format") if isinstance(manifest, dict) else None
                raise BackupError(f"unknown archive format {shown!r}")
            listed = manifest.get("members") or {}
            for m in members:
                if m.name == MANIFEST:
                    continue
                if m.name not in listed or not m.isfile() or not _MEMBER.match(m.name):
                    raise BackupError(f"unexpected member {m.name!r} in the archive")
            if set(listed) - set(names):
                missing = ", ".join(sorted(set(listed) - set(names)))
                raise BackupError(f"the archive is damaged: members missing: {missing}")
            for m in members:
                if m.name == MANIFEST:
                    continue
                dest = into / m.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(m)
                assert src is not None
                with open(dest, "wb") as fh:
                    shutil.copyfileobj(src, fh)
                if _sha256(dest) != listed[m.name]:
                    raise BackupError(f"{m.name} does not match its SHA-256 in the manifest: the archive is damaged")
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise BackupError(f"the archive cannot be read ({exc.__class__.__name__}: {exc}): damaged or not a "
                          "TownTip backup") from None
    return manifest


def peek_node(archive: Path) -> str:
    """The node id the archive's manifest names (checked again, with everything else, by the restore)."""
    if not archive.is_file():
        raise BackupError(f"no file {archive}")
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            extracted = tar.extractfile(MANIFEST)
            node = json.loads(extracted.read()).get("node") if extracted is not None else None
    except (tarfile.TarError, OSError, EOFError, KeyError, ValueError, AttributeError, zlib.error) as exc:
        raise BackupError(f"the archive cannot be read ({exc.__class__.__name__}): damaged or not a TownTip "
                          "backup") from None
    if not isinstance(node, str) or not node:
        raise BackupError("the archive's manifest names no node")
    return node


def _check_target(target: NodeTarget, manifest: dict[str, Any]) -> None:
    data = target.data_dir
    if data.exists() and any(data.iterdir()):
        raise BackupError(f"the data dir {data} is not empty: restore only into a new, empty data dir")
    for service, db in manifest["databases"].items():
        kind, where = target.database(service)
        if kind != db["kind"]:
            raise BackupError(f"the archive holds {service}'s database on {db['kind']}, the target is {kind}")
        if kind == "postgresql":
            tables = _psql(where, "SELECT count(*) FROM information_schema.tables "
                                  f"WHERE table_schema = '{service}'")
            if tables != "0":
                raise BackupError(f"PostgreSQL schema {service!r} already holds tables: restore only into an "
                                  "empty database")


def _empty(data: Path) -> None:
    if data.exists():
        for path in data.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _write_secrets(data: Path, manifest: dict[str, Any], unpacked: Path) -> None:
    (data / "secrets").mkdir(parents=True, exist_ok=True)
    os.chmod(data / "secrets", 0o700)
    for member in manifest["members"]:
        if member.startswith("secrets/"):
            fd = os.open(data / member, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh, open(unpacked / member, "rb") as src:
                shutil.copyfileobj(src, fh)


def _restore_database(target: NodeTarget, service: str, db: dict[str, Any], unpacked: Path) -> None:
    kind, where = target.database(service)
    src = unpacked / db["file"]
    if kind == "sqlite":
        dest = Path(where)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        con = sqlite3.connect(dest)
        try:
            with con:  # events kept in the outbox are published again: the consumers' inboxes drop what they had
                con.execute("UPDATE outbox SET published_at = NULL")
        finally:
            con.close()
        return
    _psql(where, f'DROP SCHEMA IF EXISTS "{service}"')  # an empty one (checked): the dump creates it
    for name, schema in db.get("extensions", []):
        if _IDENT.match(name) and _IDENT.match(schema) and schema not in subjects.SERVICES:
            _psql(where, f'CREATE SCHEMA IF NOT EXISTS "{schema}"; '
                         f'CREATE EXTENSION IF NOT EXISTS "{name}" WITH SCHEMA "{schema}"')
    r = subprocess.run([_pg_tool("psql"), "--dbname", where, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                        "--single-transaction", "-f", str(src)], capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise BackupError(f"psql restoring schema {service}: {r.stderr.strip()}")
    _psql(where, f'UPDATE "{service}".outbox SET published_at = NULL')


async def _restore_streams(target: NodeTarget, manifest: dict[str, Any], unpacked: Path) -> int:
    async with _bus(target, running=False) as nc:
        js = nc.jetstream()
        await ensure_node_streams(js, target.node, target.services)
        sent = 0
        for name, stream in manifest["streams"].items():
            try:
                await js.stream_info(name)
            except NotFoundError:
                await js.add_stream(StreamConfig.from_response(dict(stream["config"])))
            text = await asyncio.to_thread((unpacked / stream["file"]).read_text, encoding="utf-8")
            for line in text.splitlines():
                msg = json.loads(line)
                await js.publish(msg["subject"], base64.b64decode(msg["data"]), stream=name,
                                 headers=msg["headers"] or None)
                sent += 1
        return sent


async def restore_backup(archive: Path, target: NodeTarget, *, force: bool = False) -> dict[str, Any]:
    """Brings the archive up in an empty data dir (and empty PostgreSQL schemas): then `towntip node up`.

    With `force` and another node id the streams are not restored: their subjects and names carry the archive's
    node id, which the new node neither reads nor may write (its people's global handles keep the old id too)."""
    with tempfile.TemporaryDirectory(prefix="towntip-restore-") as tmp:
        unpacked = Path(tmp)
        manifest = await asyncio.to_thread(read_archive, archive, unpacked)
        same_node = manifest.get("node") == target.node
        if not same_node and not force:
            raise BackupError(f"the archive is node {manifest.get('node')!r}, not {target.node!r} "
                              "(--force restores it as this node)")
        await asyncio.to_thread(_check_target, target, manifest)
        try:
            await asyncio.to_thread(_write_secrets, target.data_dir, manifest, unpacked)
            for service, db in manifest["databases"].items():
                await asyncio.to_thread(_restore_database, target, service, db, unpacked)
            manifest["restored_messages"] = await _restore_streams(target, manifest, unpacked) if same_node else 0
        except BaseException:
            # The data dir was empty (checked): leave it so, and a second try finds it empty again. PostgreSQL
            # schemas restored before the failure stay (the error names the one that failed).
            await asyncio.to_thread(_empty, target.data_dir)
            raise
    return manifest
