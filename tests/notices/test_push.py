"""Web Push of activity notifications (issue 18, point 4): a real push receiver (an HTTP server in the test, as a
browser's push service) gets the encrypted POST, and the test decrypts it with the subscription's own keys through
http_ece, as the browser would; the VAPID signature names the node's key; a push service that says "gone" loses the
subscription; endpoints inside the network are refused (SSRF)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import http_ece
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.notices import push
from services.notices.app import NoticesService
from tests.notices.test_activity import HANAKO, NODE, notices_service, publish
from tests.support.bus import call, wait_for
from tests.support.http_server import served
from tests.support.nodes import started
from towntip.kernel import errors
from towntip.kernel.contracts import notices_activity as c
from towntip.kernel.contracts import points as pc
from towntip.node.natsd import free_port


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Receiver:
    """A push service: records each POST; `/gone/...` answers 410 as a push service does for an expired one."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict[str, str], bytes]] = []

    async def receive(self, request: Request) -> Response:
        self.got.append((request.url.path, dict(request.headers), await request.body()))
        return Response(status_code=410 if request.url.path.startswith("/gone") else 201)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{path:path}", self.receive, methods=["POST"])])


@pytest.fixture
async def running(
    nats_server: Any, database: tuple[str, str | None], tmp_path: Path
) -> AsyncIterator[tuple[nats.NATS, NoticesService]]:
    svc = notices_service(nats_server.url, tmp_path, database)
    nc = await nats.connect(nats_server.url)
    try:
        async with started(svc):
            yield nc, svc
    finally:
        await nc.close()


def browser_keys() -> tuple[ec.EllipticCurvePrivateKey, str, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    return key, b64(key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)), os.urandom(16)


async def test_push_reaches_the_browser_encrypted(running: tuple[nats.NATS, NoticesService], tmp_path: Path) -> None:
    nc, svc = running
    receiver, port = Receiver(), free_port()
    key, p256dh, auth = browser_keys()
    public = (await call(nc, c.EP_PUSH_KEY, None, service="notices"))["public_key"]
    assert len(unb64(public)) == 65  # an uncompressed P-256 point, as applicationServerKey wants
    assert (Path(svc.settings.data_dir) / "secrets" / "vapid-private.pem").stat().st_mode & 0o777 == 0o600

    async with served(receiver.app(), "127.0.0.1", port):
        base = f"http://127.0.0.1:{port}"
        for path in ("/push/hanako-phone", "/gone/old-laptop"):
            await call(
                nc,
                c.EP_PUSH_SUBSCRIBE,
                c.PushSubscribeIn(actor=HANAKO, endpoint=base + path, p256dh=p256dh, auth=b64(auth)),
                service="notices",
            )
        # Not a URL this node would POST to: refused, nothing kept.
        with pytest.raises(errors.BadRequest) as info:
            await call(
                nc,
                c.EP_PUSH_SUBSCRIBE,
                c.PushSubscribeIn(actor=HANAKO, endpoint="file:///etc/passwd", p256dh=p256dh, auth=b64(auth)),
                service="notices",
            )
        assert info.value.error_code == c.PUSH_ENDPOINT_REFUSED.code
        settings = await call(nc, c.EP_ACTIVITY_SETTINGS, c.SettingsQuery(actor=HANAKO), service="notices")
        assert settings["push_browsers"] == 2

        now = datetime.now(UTC)
        tap = pc.TapRecorded(
            key="tap:t1:9",
            terminal_id="t1",
            tap_id="9",
            event="clean-up",
            role="participant",
            points=3,
            card_ref="c" * 16,
            tapped_at=now,
            person=HANAKO.global_handle,
        )
        await publish(nc, tap.envelope(node=NODE, at=now))
        await wait_for(lambda: _async(len(receiver.got) >= 2), "both browsers' pushes")

    path, headers, body = next(g for g in receiver.got if g[0] == "/push/hanako-phone")
    assert headers["content-encoding"] == "aes128gcm" and int(headers["ttl"]) > 0
    message = json.loads(http_ece.decrypt(body, private_key=key, auth_secret=auth, version="aes128gcm"))
    assert message == {
        "title": push.TITLES["points_credited"],
        "body": "3 — clean-up",
        "link": "/points",
        "kind": "points_credited",
    }
    assert b"clean-up" not in body  # encrypted: the push service in between reads nothing
    # Signed with the node's VAPID key, for this push service's origin.
    scheme, _, params = headers["authorization"].partition(" ")
    fields = dict(p.strip().split("=", 1) for p in params.split(","))
    assert scheme == "vapid" and fields["k"] == public
    claims = json.loads(unb64(fields["t"].split(".")[1]))
    assert claims["aud"] == f"http://127.0.0.1:{port}" and claims["exp"] > now.timestamp()

    # The push service said the old laptop's subscription is gone: it is deleted; the phone's stays.
    settings = await call(nc, c.EP_ACTIVITY_SETTINGS, c.SettingsQuery(actor=HANAKO), service="notices")
    assert settings["push_browsers"] == 1
    assert svc.activity.pusher.sent == 1


async def _async(value: Any) -> Any:
    return value


@pytest.mark.parametrize(
    "url",
    [
        "http://push.example.com/x",
        "https://localhost/x",
        "https://10.1.2.3/x",
        "https://[::1]/x",
        "https://192.168.0.9/x",
        "https://169.254.169.254/latest",
        "https://printer.local/x",
        "ftp://push.example.com/x",
    ],
)
def test_endpoints_inside_the_network_are_refused(url: str) -> None:
    with pytest.raises(errors.BadRequest):
        push.check_endpoint(url)


def test_push_services_on_the_internet_are_taken() -> None:
    url = "https://fcm.googleapis.com/fcm/send/abc"
    assert push.check_endpoint(url) == url
