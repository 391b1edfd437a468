"""The secret files of a node that runs in containers (compose.yaml, deploy/kubernetes/), made by
`towntip node secrets --out DIR`: what `towntip node up` makes in its data dir, for processes that do not share one.

Written to `<out>/secrets/` (made once, kept when run again, so adding a service only adds its files):

| file | who reads it | how |
| --- | --- | --- |
| `admin-token` | gateway | TOWNTIP_ADMIN_TOKEN_FILE |
| `portal-key` | gateway (every replica the same, or sessions break between them) | mounted as `<data-dir>/secrets/portal-key` |
| `card-key` | points | TOWNTIP_CARD_KEY_FILE (never change it: a new key makes every card a new account) |
| `vapid-private.pem` | notices (Web Push; every replica the same) | mounted as `<data-dir>/secrets/vapid-private.pem` |
| `postgres-password`, `database-url` | PostgreSQL in compose, every service | POSTGRES_PASSWORD_FILE, TOWNTIP_DATABASE_URL_FILE |
| `nats-auth.conf` | nats-server | included by its config: one user per process with its permissions (`natsauth.BusUsers`) |
| `nats-url-<user>` | each process (`svc-<service>`, `gateway`, `operator`) | TOWNTIP_NATS_URL_FILE: its own user and password |
| `nats-url-probe` | the health probe in every service's container (towntip/cli/health.py) | TOWNTIP_HEALTH_NATS_URL_FILE |
| `nats-<user>` | this command, when run again | the users' passwords |

The `probe` user exists only here (not on `towntip node up`'s embedded server): a service's own user may not publish
`$SRV.PING` (natsauth), so the container's probe asks as `probe`, which may publish `$SRV.PING.>` and nothing else
and read only its own inboxes `_INBOX._probe.>`. Its password is in every service's container; what it can learn
(the services' names, versions, instance ids and hosts) is no secret, and it can neither call an endpoint nor
publish an event.

Security: every value is a 256-bit random secret. The directory is 0700; the files are 0644 because compose hands
file secrets to a container as bind mounts with the host's owner and mode, and the processes run as an unprivileged
user: keep the directory out of git (deploy/.gitignore) and on the operator's machine only. Kubernetes gets them as
Secrets (deploy/README.md); no value is ever committed.
"""  # noqa: E501 (a Markdown table)

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from towntip.kernel.bus import subjects
from towntip.kernel.secrets import load_or_create_secret
from towntip.node.natsauth import GATEWAY, OPERATOR, BusUsers, service_user

FILE_MODE = 0o644
PROBE = "probe"
PROBE_INBOX_PREFIX = "_INBOX._probe"  # cannot collide: terminal ids and NUIDs never start with "_" (natsauth)


def write_node_secrets(out: str | Path, *, node: str, services: tuple[str, ...] = subjects.SERVICES,
                       nats_host: str = "nats", nats_port: int = 4222, postgres_host: str = "postgres",
                       postgres_user: str = "towntip", postgres_db: str = "towntip") -> list[Path]:
    """Make (or keep) the node's secret files under `<out>/secrets/`; returns their paths."""
    out = Path(out)
    secrets_dir = out / "secrets"
    load_or_create_secret(out, "admin-token", nbytes=32, kind="urlsafe")
    load_or_create_secret(out, "portal-key", nbytes=32, kind="hex")
    load_or_create_secret(out, "card-key", nbytes=32, kind="hex")
    pg_password = load_or_create_secret(out, "postgres-password", nbytes=32, kind="urlsafe")
    _write(secrets_dir / "database-url",
           f"postgresql+asyncpg://{postgres_user}:{quote(pg_password, safe='')}@{postgres_host}:5432/{postgres_db}")
    vapid = secrets_dir / "vapid-private.pem"
    if not vapid.exists():  # the same key pair push.load_or_create_vapid makes (P-256, PKCS#8 PEM)
        key = ec.generate_private_key(ec.SECP256R1())
        _write(vapid, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode())
    users = BusUsers(out, node, services)
    probe_password = load_or_create_secret(out, f"nats-{PROBE}", nbytes=32, kind="urlsafe")
    _write(secrets_dir / "nats-auth.conf", with_probe_user(users.render(), probe_password))
    base = f"nats://{nats_host}:{nats_port}"
    for user in (OPERATOR, GATEWAY, *(service_user(s) for s in services)):
        _write(secrets_dir / f"nats-url-{user}", users.url(base, user))
    _write(secrets_dir / f"nats-url-{PROBE}", users.url(base, PROBE, probe_password))
    os.chmod(secrets_dir, 0o700)
    made = sorted(p for p in secrets_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    for path in made:
        path.chmod(FILE_MODE)
    return made


def with_probe_user(authorization: str, password: str) -> str:
    """natsauth's `authorization { users: [...] }` with the `probe` user added at the end of the list."""
    head, sep, tail = authorization.rpartition("\n  ]\n}")
    if not sep:
        raise ValueError("unexpected authorization block: no users list to add the probe user to")
    probe = (f"{{ user: {json.dumps(PROBE)}, password: {json.dumps(password)}, permissions: {{ "
             f"publish: {{ allow: [\"$SRV.PING.>\"] }}, subscribe: {{ allow: [\"{PROBE_INBOX_PREFIX}.>\"] }} }} }}")
    return f"{head},\n    {probe}{sep}{tail}"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text if text.endswith("\n") else text + "\n")
    tmp.replace(path)
