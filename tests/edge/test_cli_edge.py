"""`towntip edge simulate` against a real nats-server: outcomes, bad input (exit 2, nothing sent), failures."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import nats
import pytest

from edge.terminal.spool import Spool
from tests.edge.test_edge_agent import CARD, NODE, Responder, stream_taps
from towntip.kernel.bus.streams import ensure_node_streams


def run_cli(argv: list[str]) -> int:
    """The `towntip` command in-process. Uses the real dispatcher when every verb module is present."""
    try:
        from towntip.cli import main, node  # noqa: F401 - node: another team's verb, absent in a partial tree
    except ImportError:
        from towntip.cli import demo, edge, points

        parser = argparse.ArgumentParser(prog="towntip")
        sub = parser.add_subparsers(dest="command", required=True)
        for module in (edge, points, demo):
            module.register(sub)
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    return main(argv)


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(run_cli, list(argv))


def sim_args(url: str, tmp_path: Path, *extra: str) -> list[str]:
    return ["edge", "simulate", "--nats-url", url, "--node", NODE, "--terminal", "sim-test",
            "--spool", str(tmp_path / "spool.sqlite3"), *extra]


async def test_simulate_ten_taps_all_credited(nc: nats.NATS, nats_server, tmp_path: Path, capsys) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    responder = await Responder(nc).start()
    code = await cli(*sim_args(nats_server.url, tmp_path, "--event", "ev", "--card", CARD, "--count", "10"))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "10 taps: 10 credited, 0 duplicate, 0 rejected; balance 10"
    assert len(await stream_taps(nc)) == 10
    code = await cli(*sim_args(nats_server.url, tmp_path, "--event", "ev", "--card", CARD, "--volunteer"))
    assert code == 0
    assert capsys.readouterr().out.strip() == "1 taps: 1 credited, 0 duplicate, 0 rejected; balance 15"
    await responder.stop()


async def test_simulate_reports_a_rejection(nc: nats.NATS, nats_server, tmp_path: Path, capsys) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    responder = await Responder(nc, events={}).start()
    code = await cli(*sim_args(nats_server.url, tmp_path, "--event", "nope", "--card", CARD, "--count", "2"))
    out, err = capsys.readouterr()
    assert code == 1
    assert out.strip() == "2 taps: 0 credited, 0 duplicate, 2 rejected"
    assert "unknown event nope (404)" in err
    await responder.stop()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--event", "ev", "--card", "0123"], "16 hexadecimal digits"),
        (["--event", "ev", "--card", "XYZ3456789ABCDEF"], "16 hexadecimal digits"),
        (["--event", "Bad Event", "--card", CARD], "event code"),
        (["--event", "ev", "--card", CARD, "--count", "0"], "between 1 and 100000"),
        (["--event", "ev", "--card", CARD, "--count", "100001"], "between 1 and 100000"),
        (["--event", "ev", "--card", CARD, "--count", "ten"], "whole number"),
        (["--event", "ev", "--card", CARD, "--terminal", "Not_OK"], "terminal id"),
        (["--event", "ev", "--card", CARD, "--node", "X"], "node id"),
    ],
)
async def test_simulate_refuses_bad_input(nc: nats.NATS, nats_server, tmp_path: Path, capsys, extra, message) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    code = await cli(*sim_args(nats_server.url, tmp_path, *extra))  # a later --terminal or --node wins
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("towntip: ") and message in err and "Traceback" not in err
    assert await stream_taps(nc) == []
    assert not (tmp_path / "spool.sqlite3").exists()


async def test_simulate_without_nats(tmp_path: Path, capsys) -> None:
    from towntip.node.natsd import free_port

    url = f"nats://127.0.0.1:{free_port()}"
    code = await cli(*sim_args(url, tmp_path, "--event", "ev", "--card", CARD))
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot reach NATS" in err and "Traceback" not in err
    assert not (tmp_path / "spool.sqlite3").exists()


async def test_simulate_without_points_service_keeps_taps(nc: nats.NATS, nats_server, tmp_path: Path, capsys) -> None:
    await ensure_node_streams(nc.jetstream(), NODE)
    code = await cli(*sim_args(nats_server.url, tmp_path, "--event", "ev", "--card", CARD, "--count", "3",
                               "--wait", "0.5"))
    out, err = capsys.readouterr()
    assert code == 1
    assert out.strip() == "3 taps: 0 credited, 0 duplicate, 0 rejected"
    assert "3 accepted by the bus await the points service" in err
    with Spool(tmp_path / "spool.sqlite3") as spool:
        assert spool.counts()["accepted"] == 3


async def test_simulate_without_stream_leaves_taps_spooled_then_sends_them(
    nc: nats.NATS, nats_server, tmp_path: Path, capsys
) -> None:
    args = sim_args(nats_server.url, tmp_path, "--event", "ev", "--card", CARD, "--count", "2", "--wait", "0.5")
    assert await cli(*args) == 1
    err = capsys.readouterr().err
    assert "2 not yet accepted by the bus remain spooled" in err and "will be sent next time" in err
    await ensure_node_streams(nc.jetstream(), NODE)
    responder = await Responder(nc).start()
    args[args.index("--count") + 1] = "1"
    args[args.index("--wait") + 1] = "5"
    assert await cli(*args) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "1 taps: 1 credited, 0 duplicate, 0 rejected; balance 3"
    assert "re-sent 2 taps spooled earlier" in err
    assert len(await stream_taps(nc)) == 3
    await responder.stop()


async def test_simulate_against_the_points_service_credits_an_event_once(
        nc: nats.NATS, nats_server, points_service, tmp_path: Path, capsys) -> None:
    """The README's walk-through: three touches of one card at one event earn its points once; the other two are
    settled as "already checked in" (the real points service, not the stand-in)."""
    from tests.points.test_tap_path import define_event

    await define_event(nc, "ev")
    code = await cli(*sim_args(nats_server.url, tmp_path, "--event", "ev", "--card", CARD, "--count", "3"))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.strip() == "3 taps: 1 credited, 2 already checked in, 0 duplicate, 0 rejected; balance 1"
