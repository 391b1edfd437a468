"""Settings for every process of a node, read from TOWNTIP_* environment variables (pydantic-settings)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

NODE_ID_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def check_node_id(value: str) -> str:
    """A node id appears in subjects, stream names and JetStream domains: keep it to [a-z0-9-]."""
    if not NODE_ID_RE.fullmatch(value):
        raise ValueError(
            f"node id {value!r} must be 2-32 characters of a-z, 0-9 and '-', starting with a letter"
        )
    return value


class NodeSettings(BaseSettings):
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

    def resolved_database_url(self) -> str:
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

    def expected_services(self) -> list[str]:
        return [s.strip() for s in self.services.split(",") if s.strip()]
