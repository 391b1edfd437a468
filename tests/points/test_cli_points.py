"""`towntip points balance` against a tiny nats.micro service standing in for the points service."""

from __future__ import annotations

import json

import nats
from nats.micro import add_service
from nats.micro.request import Request

from tests.edge.test_cli_edge import cli
from tests.edge.test_edge_agent import CARD, NODE
from towntip.kernel.bus import subjects
from towntip.kernel.contracts.points import EP_BALANCE, SERVICE, BalanceQuery


async def balance_service(nc: nats.NATS, asked: list[str]):
    async def handle(req: Request) -> None:
        query = BalanceQuery.model_validate_json(req.data)
        asked.append(query.card_idm)
        if query.card_idm == "FFFFFFFFFFFFFFFF":
            await req.respond_error("404", "card not registered")
            return
        await req.respond(json.dumps({"asset": "pt", "balance": 12, "taps": 7}).encode())

    svc = await add_service(nc, name="points-test", version="0.0.1")
    await svc.add_endpoint(name="balance", subject=subjects.svc(NODE, SERVICE, EP_BALANCE), handler=handle)
    return svc


async def test_balance_prints_the_number(nc: nats.NATS, nats_server, capsys) -> None:
    asked: list[str] = []
    svc = await balance_service(nc, asked)
    code = await cli("points", "balance", "--nats-url", nats_server.url, "--node", NODE, "--card", CARD.lower())
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0] == "12"
    assert "7 taps" in err
    assert asked == [CARD]

    code = await cli("points", "balance", "--nats-url", nats_server.url, "--node", NODE, "--card", "F" * 16)
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "card not registered (404)" in err
    await svc.stop()


async def test_balance_refuses_a_bad_idm(nc: nats.NATS, nats_server, capsys) -> None:
    asked: list[str] = []
    svc = await balance_service(nc, asked)
    code = await cli("points", "balance", "--nats-url", nats_server.url, "--node", NODE, "--card", "12-34")
    assert code == 2
    assert "16 hexadecimal digits" in capsys.readouterr().err
    assert asked == []
    await svc.stop()


async def test_balance_without_a_service(nats_server, capsys) -> None:
    code = await cli("points", "balance", "--nats-url", nats_server.url, "--node", NODE, "--card", CARD)
    err = capsys.readouterr().err
    assert code == 1
    assert "no service answers" in err and "Traceback" not in err
