"""Several services in one process (towntip.kernel.host): each keeps its own settings, spans and log lines."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from towntip.kernel.host import HOSTED_PREFIX, ServiceNames, current_service, hosted_env, hosted_settings
from towntip.kernel.telemetry import HostedTracerProvider


def test_hosted_env_keeps_what_differs_per_service() -> None:
    envs = {
        "points": {"PATH": "/bin", "TOWNTIP_NODE_ID": "n1", "TOWNTIP_SERVICE": "points",
                   "TOWNTIP_NATS_URL": "nats://svc-points:pw1@127.0.0.1:4222"},
        "sns": {"PATH": "/bin", "TOWNTIP_NODE_ID": "n1", "TOWNTIP_SERVICE": "sns",
                "TOWNTIP_NATS_URL": "nats://svc-sns:pw2@127.0.0.1:4222",
                "TOWNTIP_DATABASE_URL": "postgresql+asyncpg://x/y"},
    }
    env = hosted_env(envs)
    assert env["PATH"] == "/bin" and env["TOWNTIP_NODE_ID"] == "n1"
    # No NATS URL for all: a service would otherwise connect as whichever user it names.
    assert "TOWNTIP_NATS_URL" not in env and "TOWNTIP_SERVICE" not in env and "TOWNTIP_DATABASE_URL" not in env
    assert env[f"{HOSTED_PREFIX}POINTS_NATS_URL"] == "nats://svc-points:pw1@127.0.0.1:4222"
    assert env[f"{HOSTED_PREFIX}SNS_NATS_URL"] == "nats://svc-sns:pw2@127.0.0.1:4222"
    assert env[f"{HOSTED_PREFIX}SNS_DATABASE_URL"] == "postgresql+asyncpg://x/y"
    assert f"{HOSTED_PREFIX}POINTS_DATABASE_URL" not in env

    points, sns = hosted_settings("points", env), hosted_settings("sns", env)
    assert (points.service, points.nats_url, points.database_url) == (
        "points", "nats://svc-points:pw1@127.0.0.1:4222", "")
    assert (sns.service, sns.nats_url, sns.database_url) == (
        "sns", "nats://svc-sns:pw2@127.0.0.1:4222", "postgresql+asyncpg://x/y")


def test_hosted_env_refuses_services_that_differ_outside_their_settings() -> None:
    with pytest.raises(ValueError, match="must share PATH"):
        hosted_env({"points": {"PATH": "/bin"}, "sns": {"PATH": "/usr/bin"}})


class Collect(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: object) -> SpanExportResult:
        self.spans.extend(spans)  # type: ignore[call-overload]
        return SpanExportResult.SUCCESS


async def test_each_hosted_service_names_its_own_spans() -> None:
    out = Collect()
    provider = HostedTracerProvider(["points", "sns"], "n1", SimpleSpanProcessor(out), current_service.get)
    with provider.get_tracer("towntip.sns").start_as_current_span("by name"):
        pass

    async def in_points() -> None:
        current_service.set("points")  # as the host's task for points does
        with provider.get_tracer("some.library").start_as_current_span("by task"):
            pass

    await asyncio.ensure_future(in_points())
    got = {s.name: s.resource.attributes["service.name"] for s in out.spans}
    assert got == {"by name": "sns", "by task": "points"}
    assert all(s.resource.attributes["service.namespace"] == "n1" for s in out.spans)


async def test_each_hosted_service_gets_its_own_log_lines() -> None:
    seen: list[tuple[str, str]] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.service, record.getMessage()))  # type: ignore[attr-defined]

    handler = Keep()
    handler.addFilter(ServiceNames("host", only="sns"))
    logger = logging.getLogger("test_host.lines")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async def say(service: str) -> None:
            current_service.set(service)
            logger.info("from %s", service)

        await asyncio.gather(say("points"), say("sns"))
        logger.info("from the host")
    finally:
        logger.removeHandler(handler)
    assert seen == [("sns", "from sns")]
