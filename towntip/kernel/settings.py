"""Settings for every process of a node, read from TOWNTIP_* environment variables (pydantic-settings).

Any setting can also come from a file: `TOWNTIP_<NAME>_FILE=/run/secrets/x` reads the value from that file (its
trailing newline dropped), as container platforms hand over secrets (compose `secrets:`, Kubernetes Secret volumes),
so a password or key is never in the process's environment or in `docker inspect`. Setting both the variable and
its `_FILE` is refused: which one wins would be a guess.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

NODE_ID_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def check_node_id(value: str) -> str:
    """A node id appears in subjects, stream names and JetStream domains: keep it to [a-z0-9-]."""
    if not NODE_ID_RE.fullmatch(value):
        raise ValueError(
            f"node id {value!r} must be 2-32 characters of a-z, 0-9 and '-', starting with a letter"
        )
    return value


def nats_servers(url: str) -> list[str]:
    """TOWNTIP_NATS_URL as nats-py takes it: one URL, or the servers of a cluster separated by commas (each with
    the process's user and password, so it logs in to whichever it reconnects to: towntip/node/cluster.py)."""
    return [u.strip() for u in url.split(",") if u.strip()]


class FileVariablesSource(PydanticBaseSettingsSource):
    """`<prefix><NAME>_FILE` variables: each names a file that holds the setting's value."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.config.get("env_prefix", "")).upper()
        values: dict[str, Any] = {}
        for name in self.settings_cls.model_fields:
            variable = f"{prefix}{name.upper()}"
            path = os.environ.get(f"{variable}_FILE")
            if not path:
                continue
            if os.environ.get(variable):
                raise ValueError(f"set {variable} or {variable}_FILE, not both")
            try:
                values[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"{variable}_FILE: cannot read {path!r} ({exc.strerror})") from None
        return values


class FileVariables(BaseSettings):
    """Settings that also read `<prefix><NAME>_FILE` (after the variables themselves, before .env files)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, FileVariablesSource(settings_cls), dotenv_settings, file_secret_settings


class BusSettings(FileVariables):
    """How a process provisions the node's JetStream streams (towntip/kernel/bus/streams.py)."""

    model_config = SettingsConfigDict(env_prefix="TOWNTIP_", extra="ignore")

    # Copies JetStream keeps of every stream (and so of its consumers, which inherit it) this process creates or
    # updates: 1 on one nats-server, 3 on a three-server cluster (towntip/node/cluster.py, docs/operating.md). An
    # existing stream is scaled to it on the next start; it cannot exceed the cluster's servers.
    stream_replicas: int = Field(default=1, ge=1, le=5)


class NodeSettings(BusSettings):
    """What every process of a node needs to know."""

    model_config = SettingsConfigDict(env_prefix="TOWNTIP_", extra="ignore")

    node_id: str = "tsurugashima"
    nats_url: str = "nats://127.0.0.1:4222"
    data_dir: str = "./var"
    # The node's public base URL (the gateway as people's browsers reach it): links in e-mails, the OpenID issuer.
    public_url: str = "http://127.0.0.1:8000"
    # Where OpenTelemetry spans go: "none", "console", "file:<path>" (JSON lines, rotated at 10 MB, 3 kept) or
    # "otlp:<http://host:4318>" (an OpenTelemetry collector over OTLP/HTTP): towntip/kernel/telemetry.py.
    trace_export: str = "none"
    log_level: str = "INFO"
    # "text" (a person reading a terminal: `make run`) or "json" (one object a line with the trace id, for a log
    # collector): towntip/kernel/telemetry.py setup_logging.
    log_format: str = "text"
    # The town the node serves, as residents read it (towntip/kernel/town.py; empty: the demo table, else the id),
    # and the districts they choose from, separated by `|` (empty: the demo table's, else free text).
    town_name: str = ""
    town_name_en: str = ""
    districts: str = ""
    # Its colour (#rrggbb, white text on it at least 4.5:1) and emblem (an SVG or PNG file): towntip/kernel/town.py.
    town_colour: str = ""
    town_emblem: str = ""
    @field_validator("node_id")
    @classmethod
    def _valid_node_id(cls, value: str) -> str:
        return check_node_id(value)


class ServiceSettings(NodeSettings):
    """A service process: its own database (SQLite file by default, or PostgreSQL with a schema)."""

    service: str = ""
    database_url: str = ""
    # With PostgreSQL: the schema this service owns (defaults to the service name).
    database_schema: str = ""
    # Key for hashing card IDms (hex); the supervisor writes one into the data dir on first start.
    card_key: str = ""
    # Federation (identity): the trust anchor's entity id (URL) and its public keys (a JWKS file handed over out of
    # band). Without them this node trusts no other node. Resolved chains are cached this long at most.
    trust_anchor: str = ""
    trust_anchor_jwks: str = ""
    federation_cache_seconds: float = Field(default=300.0, ge=0)
    # How often the projects service asks the trust anchor for its members (whose themes and cases it copies).
    federation_refresh_seconds: float = Field(default=60.0, gt=0)
    # Batches a stream consumer applies at once (pullers on one durable; see kernel.bus.consumer). 1 gives the
    # lowest latency; on PostgreSQL 2 gives more throughput (bench: ~4,300 against ~3,300 taps/s sustained, p99 at
    # 1,000 taps/s ~70 against ~50 ms). On SQLite keep 1: one connection per process (kernel.db), so a second
    # batch only waits for the first, and its taps with it.
    consumer_concurrency: int = Field(default=1, ge=1, le=8)
    # The bookings service: people of other nodes (logged in here with their home ID) may book every facility of
    # this node (else only facilities whose rule `open_to_other_nodes` says so).
    bookings_open_to_other_nodes: bool = False
    # The notices service: a notice to more people than this waits for a second staff member's approval.
    notices_approval_over: int = Field(default=1000, ge=0)
    # The notices service's collected feeds: private networks it may read from besides the public internet (a CMS
    # on the municipal LAN), as CIDRs separated by commas: TOWNTIP_FEED_ALLOW=10.20.0.0/16,192.168.5.0/24.
    feed_allow: str = ""
    # The signage service's CAP 1.2 feeds (緊急情報 without a person in the loop, docs/signage.md): URLs separated by
    # spaces, each a CAP alert or an Atom feed of them, read every `signage_cap_every_seconds`; an alert at least as
    # severe as `signage_cap_min_severity` and in one of `signage_cap_areas` (geocode prefixes, commas; none: any
    # area) goes to every screen. TOWNTIP_SIGNAGE_CAP_FEEDS=https://alerts.example.jp/cap.atom
    signage_cap_feeds: str = ""
    signage_cap_min_severity: Literal["extreme", "severe", "moderate", "minor", "unknown"] = "severe"
    signage_cap_areas: str = ""
    signage_cap_every_seconds: float = Field(default=60.0, gt=0)

    def resolved_database_url(self) -> str:
        if self.database_url.startswith(("postgresql://", "postgres://")):
            # As PostgreSQL operators write it (CloudNativePG's `<cluster>-app` Secret, key `uri`): the node's
            # driver is asyncpg.
            return "postgresql+asyncpg://" + self.database_url.split("://", 1)[1]
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir}/{self.service}.sqlite3"

    def resolved_schema(self) -> str | None:
        url = self.resolved_database_url()
        if url.startswith("postgresql"):
            return self.database_schema or self.service
        return None


class GatewaySettings(NodeSettings):
    """The gateway: HTTP edge of a node."""

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # Services the gateway expects to answer on $SRV.PING (comma separated).
    services: str = "identity,points,projects,sns,bookings,notices,signage"
    # Bearer token for staff API calls (until the identity service issues real tokens).
    admin_token: str = ""
    request_timeout: float = 5.0
    # Portal logins per account and client address per window, at this gateway (TOWNTIP_LOGIN_LIMIT; benchmarks
    # raise it); an address may fail ten times as often across accounts (gateway.portal.session.LoginThrottle).
    # gateway processes serving the port (uvicorn's workers; `towntip node up --gateway-workers`): with more than
    # one, the throttles count in a shared file of the data dir (gateway/portal/session.py)
    gateway_workers: int = Field(default=1, ge=1, le=16)
    # seconds a visitor's public read is kept for other visitors (gateway/portal/public_answers.py); 0: never
    public_cache_seconds: float = Field(default=2.0, ge=0.0, le=60.0)
    login_limit: int = Field(default=10, ge=1)
    login_window: float = Field(default=300.0, gt=0)
    # My Page across regions: seconds the home node waits for all other regions (its own plan included).
    regions_wait: float = Field(default=4.0, ge=1.0, le=30.0)
    # Open data (/open-data): the licence the node publishes it under (TOWNTIP_OPEN_DATA_LICENCE, ..._URL; default
    # the government's standard terms, compatible with CC BY 4.0) and how long a built zip is served before the
    # next download builds it again (gateway/portal/open_data.py).
    open_data_licence: str = "公共データ利用規約（第1.0版）(PDL1.0)"
    open_data_licence_url: str = "https://www.digital.go.jp/resources/open_data/public_data_license_v1.0"
    open_data_cache_seconds: float = Field(default=300.0, ge=0.0, le=86400.0)
    # The reverse proxies in front of the gateway (TLS ends there), comma separated addresses or networks
    # (TOWNTIP_TRUSTED_PROXIES, `towntip node up --trusted-proxies`): only from them are X-Forwarded-For and
    # X-Forwarded-Proto believed, so the login throttle counts each resident's own address. "": none (the
    # connection's address is the client's; a proxy then looks like one address to the throttle).
    trusted_proxies: str = ""

    def expected_services(self) -> list[str]:
        return [s.strip() for s in self.services.split(",") if s.strip()]
