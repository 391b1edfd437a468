"""What a node in containers needs from the code: settings read from files (TOWNTIP_*_FILE), the secret files
`towntip node secrets` makes (nats-server takes its users), the probe `towntip health`, traces over OTLP."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from opentelemetry import trace

from towntip.cli import health
from towntip.cli import main as cli_main
from towntip.kernel import telemetry
from towntip.kernel.bus import subjects
from towntip.kernel.bus.endpoints import Endpoints, start_service
from towntip.kernel.bus.inboxes import service_inbox_prefix
from towntip.kernel.mail import SmtpSettings
from towntip.kernel.settings import GatewaySettings, ServiceSettings
from towntip.kernel.uow import UnitOfWork
from towntip.node.deploy_secrets import write_node_secrets
from towntip.node.natsauth import service_user

ROOT = Path(__file__).resolve().parents[2]
NODE = "testnode"


def test_a_setting_is_read_from_the_file_its_FILE_variable_names(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "card-key").write_text("ab" * 32 + "\n")
    (tmp_path / "smtp-password").write_text("s3cret\n")
    monkeypatch.setenv("TOWNTIP_CARD_KEY_FILE", str(tmp_path / "card-key"))
    monkeypatch.setenv("TOWNTIP_SMTP_USERNAME", "node")
    monkeypatch.setenv("TOWNTIP_SMTP_PASSWORD_FILE", str(tmp_path / "smtp-password"))
    assert ServiceSettings(service="points").card_key == "ab" * 32  # the trailing newline dropped
    password = SmtpSettings().password
    assert password is not None and password.get_secret_value() == "s3cret"


def test_a_setting_and_its_FILE_together_are_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "token").write_text("from-file")
    monkeypatch.setenv("TOWNTIP_ADMIN_TOKEN", "from-env")
    monkeypatch.setenv("TOWNTIP_ADMIN_TOKEN_FILE", str(tmp_path / "token"))
    with pytest.raises(ValueError, match="TOWNTIP_ADMIN_TOKEN or TOWNTIP_ADMIN_TOKEN_FILE, not both"):
        GatewaySettings()


def test_a_missing_secret_file_is_named(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOWNTIP_NATS_URL_FILE", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="TOWNTIP_NATS_URL_FILE: cannot read"):
        GatewaySettings()


def test_an_operators_postgresql_uri_gets_the_asyncpg_driver(monkeypatch) -> None:
    # CloudNativePG's `<cluster>-app` Secret holds `uri` as postgresql://…: the services take it as it is.
    monkeypatch.setenv("TOWNTIP_DATABASE_URL", "postgresql://app:pw@towntip-pg-rw:5432/towntip")
    s = ServiceSettings(service="sns")
    assert s.resolved_database_url() == "postgresql+asyncpg://app:pw@towntip-pg-rw:5432/towntip"
    assert s.resolved_schema() == "sns"


def test_node_secrets_make_every_processes_files_and_nats_server_takes_the_users(tmp_path: Path) -> None:
    made = {p.name for p in write_node_secrets(tmp_path, node=NODE)}
    users = ["operator", "gateway", "probe", *(service_user(s) for s in subjects.SERVICES)]
    assert {f"nats-url-{u}" for u in users} <= made
    assert {"admin-token", "portal-key", "card-key", "vapid-private.pem", "database-url", "nats-auth.conf"} <= made
    first = (tmp_path / "secrets" / "card-key").read_text()
    write_node_secrets(tmp_path, node=NODE)  # run again: the keys stay (a new card key would orphan every card)
    assert (tmp_path / "secrets" / "card-key").read_text() == first
    url = (tmp_path / "secrets" / "nats-url-svc-points").read_text().strip()
    password = (tmp_path / "secrets" / "nats-svc-points").read_text().strip()
    assert url == f"nats://svc-points:{password}@nats:4222"
    # deploy/nats.conf includes the users as auth.conf beside it, as compose mounts them.
    conf = tmp_path / "conf"
    conf.mkdir()
    text = (ROOT / "deploy" / "nats.conf").read_text().replace('"/data"', f'"{tmp_path / "js"}"')
    (conf / "nats.conf").write_text(text)
    shutil.copy(tmp_path / "secrets" / "nats-auth.conf", conf / "auth.conf")
    checked = subprocess.run([_nats_server(), "-t", "-c", str(conf / "nats.conf")], capture_output=True, text=True,
                             timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert f'user: "{service_user("signage")}"' in (conf / "auth.conf").read_text()


def test_the_secrets_command_refuses_a_bad_node_id(tmp_path: Path, capsys) -> None:
    assert cli_main(["node", "secrets", "--out", str(tmp_path), "--node", "Bad Node"]) == 2
    assert not (tmp_path / "secrets").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_probe_user_pings_a_service_on_the_nodes_own_users(tmp_path: Path, monkeypatch) -> None:
    """compose's nats-server as configured (deploy/nats.conf with the generated users): a service connects as its
    own user and the probe, as `probe`, finds it; the service's own user could not have asked."""
    write_node_secrets(tmp_path, node=NODE)
    secrets = tmp_path / "secrets"
    port = _free_port()
    conf = tmp_path / "conf"
    conf.mkdir()
    text = (ROOT / "deploy" / "nats.conf").read_text().replace('"/data"', f'"{tmp_path / "js"}"')
    text = text.replace('"0.0.0.0:4222"', f'"127.0.0.1:{port}"').replace('http: "0.0.0.0:8222"', "")
    text = text.replace('"tsurugashima"', f'"{NODE}"')
    (conf / "nats.conf").write_text(text)
    shutil.copy(secrets / "nats-auth.conf", conf / "auth.conf")
    server = await asyncio.create_subprocess_exec(_nats_server(), "-c", str(conf / "nats.conf"),
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def local(name: str) -> str:
        return (secrets / name).read_text().strip().replace("@nats:4222", f"@127.0.0.1:{port}")

    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.05)
        svc_nc = await nats.connect(local("nats-url-svc-points"), inbox_prefix=service_inbox_prefix("points"))
        eps = Endpoints.from_domains([], uow=UnitOfWork(None))  # type: ignore[arg-type]
        svc = await start_service(svc_nc, node=NODE, service="points", version="0.0.1", endpoints=eps)
        try:
            monkeypatch.setenv("TOWNTIP_NODE_ID", NODE)
            monkeypatch.setenv("TOWNTIP_NATS_URL", local("nats-url-svc-points"))  # may not publish $SRV.PING
            assert await health._service("points", socket.gethostname()) == 1
            monkeypatch.setenv("TOWNTIP_HEALTH_NATS_URL", local("nats-url-probe"))
            assert await health._service("points", socket.gethostname()) == 0
        finally:
            await svc.stop()
            await svc_nc.close()
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=10)


def _nats_server() -> str:
    return shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")


async def test_the_health_probe_counts_only_this_hosts_instance(nats_server, nc, monkeypatch) -> None:
    monkeypatch.setenv("TOWNTIP_NATS_URL", nats_server.url)
    monkeypatch.setenv("TOWNTIP_NODE_ID", NODE)
    assert await health._service("points", socket.gethostname()) == 1  # nothing runs yet
    eps = Endpoints.from_domains([], uow=UnitOfWork(None))  # type: ignore[arg-type]
    svc = await start_service(nc, node=NODE, service="points", version="0.0.1", endpoints=eps)
    try:
        assert await health._service("points", socket.gethostname()) == 0
        assert await health._service("points", "another-pod") == 1  # a live replica elsewhere does not count
        assert await health._service("points", None) == 0
    finally:
        await svc.stop()


def test_the_gateway_probe_fails_when_nothing_listens(monkeypatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TOWNTIP_HTTP_PORT", str(port))
    assert health._gateway() == 1


def test_otlp_trace_export_sends_to_the_collector(monkeypatch) -> None:
    installed: list[object] = []
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    telemetry.setup_tracing("points", "otlp:http://otel-collector:4318/", node_id=NODE)
    (provider,) = installed
    processors = provider._active_span_processor._span_processors  # type: ignore[attr-defined]
    exporter = processors[0].span_exporter if hasattr(processors[0], "span_exporter") else processors[0]._exporter
    assert exporter._endpoint == "http://otel-collector:4318/v1/traces"
