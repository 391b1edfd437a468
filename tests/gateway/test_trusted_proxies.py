"""TLS ends at a reverse proxy in front of the gateway (docs/operating.md, "TLS in front of the gateway"): the
gateway believes X-Forwarded-For only from the proxies the operator names (`--trusted-proxies`,
TOWNTIP_TRUSTED_PROXIES), so the login throttle counts each resident's own address; from anyone else the header is
ignored, so a client cannot pick the address it is counted under. Real uvicorn on a real port, with the options
`python -m gateway` uses."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from gateway.__main__ import uvicorn_options
from towntip.kernel.settings import GatewaySettings
from towntip.node.natsd import free_port


async def _client_host(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.client.host if request.client else "")


async def _seen(trusted: str) -> tuple[str, str]:
    """(the address the app sees with a forged X-Forwarded-For, without it) under the gateway's uvicorn options."""
    port = free_port()
    options = uvicorn_options(GatewaySettings(http_host="127.0.0.1", http_port=port, trusted_proxies=trusted))
    app = Starlette(routes=[Route("/", _client_host)])
    server = uvicorn.Server(uvicorn.Config(app, **options))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            forwarded = (await http.get("/", headers={"X-Forwarded-For": "203.0.113.7"})).text
            plain = (await http.get("/")).text
        return forwarded, plain
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_forwarded_for_is_believed_from_a_trusted_proxy_only() -> None:
    # the proxy on the same machine (nginx, Caddy): the resident's address is the one it forwards
    assert await _seen("127.0.0.1") == ("203.0.113.7", "127.0.0.1")
    # a network of proxies (a load balancer's subnet)
    assert (await _seen("10.0.0.0/8, 127.0.0.0/8"))[0] == "203.0.113.7"
    # no proxy named (the default) or another one: the header is ignored, the connection's address counts
    assert await _seen("") == ("127.0.0.1", "127.0.0.1")
    assert (await _seen("192.0.2.10"))[0] == "127.0.0.1"


def test_node_up_refuses_a_proxy_that_is_not_an_address() -> None:
    for bad in ("*", "proxy.example.jp", "10.0.0.0/33"):
        run = subprocess.run([sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())",
                              "node", "up", "--trusted-proxies", bad], capture_output=True, text=True, timeout=60)
        assert run.returncode == 2, (bad, run.stdout, run.stderr)
        assert "--trusted-proxies wants IP addresses or networks" in run.stderr and repr(bad) in run.stderr
