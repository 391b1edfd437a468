"""`towntip points ...`: ask a node's points service. Also the small helpers the edge and demo verbs share."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from towntip.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, fail
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts.points import EP_BALANCE, SERVICE, Balance, BalanceQuery, CardIdm
from towntip.kernel.settings import check_node_id

log = logging.getLogger(__name__)

DEFAULT_NODE = "tsurugashima"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_DATA_DIR = "./var"  # as `towntip node up --data-dir`
# Where `towntip node up` writes the operator's NATS URL (with its password) for the embedded nats-server, which
# takes only its own users (towntip/node/supervisor.py): the commands an operator runs read it from there.
OPERATOR_URL_FILE = Path("secrets", "nats-operator-url")


class BadInput(ValueError):
    """An argument that is wrong: exit 2, nothing sent."""


class Unreachable(Exception):
    """NATS could not be reached: exit 1 with a clear message."""


def check_idm(value: str) -> str:
    try:
        return TypeAdapter(CardIdm).validate_python(value)
    except ValidationError:
        raise BadInput(f"card IDm {value!r} must be 16 hexadecimal digits (8 bytes), e.g. 0123456789ABCDEF") from None


def check_node(value: str) -> str:
    try:
        return check_node_id(value)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


async def connect(url: str, **callbacks: Any) -> Any:
    """Connect to NATS, a few quick tries only: a command should say the bus is unreachable, not hang."""
    import nats

    async def quiet(exc: Exception) -> None:
        log.debug("nats: %s", exc)

    try:
        return await nats.connect(
            url, connect_timeout=2, max_reconnect_attempts=3, reconnect_time_wait=0.5, error_cb=quiet,
            name="towntip-cli", **callbacks,
        )
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        raise Unreachable(f"cannot reach NATS at {redact(url)}: {exc or type(exc).__name__}") from None


def redact(url: str) -> str:
    """A NATS URL fit to print: a password in it is replaced by ***."""
    scheme, sep, rest = url.partition("://")
    creds, at, host = rest.rpartition("@")
    if not at:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


def add_nats_args(p: argparse.ArgumentParser, *, operator: bool = True) -> None:
    """--nats-url and --node; for the operator's commands also --data-dir, whose operator URL is the default
    (`towntip main` fills it in: operator_nats_url). A terminal (operator=False) connects as its own user."""
    if not operator:
        p.add_argument("--nats-url", default=DEFAULT_NATS_URL, help=f"the node's NATS (default {DEFAULT_NATS_URL})")
    else:
        p.add_argument("--nats-url", default=None, metavar="URL",
                       help=f"the node's NATS (default: the operator's URL that `towntip node up` wrote in "
                            f"<data-dir>/{OPERATOR_URL_FILE.as_posix()}, else {DEFAULT_NATS_URL})")
        p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, metavar="DIR",
                       help="the data directory the node was started with (default %(default)s)")
    p.add_argument("--node", default=DEFAULT_NODE, help=f"node id (default {DEFAULT_NODE})")


def operator_nats_url(data_dir: str) -> str:
    """The NATS URL for a command run without --nats-url: the operator's, when the node started by `towntip node up`
    in `data_dir` wrote it there; otherwise DEFAULT_NATS_URL (a node on an existing NATS writes none). Raises
    Unreachable (exit 1) if that file is there but cannot be read, BadInput (exit 2) if it holds no NATS URL."""
    path = Path(data_dir) / OPERATOR_URL_FILE
    try:
        url = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return DEFAULT_NATS_URL
    except (OSError, UnicodeDecodeError) as exc:
        raise Unreachable(f"cannot read the operator's NATS URL in {path}: {exc}; give --nats-url") from None
    if not url.startswith(("nats://", "tls://", "ws://", "wss://")) or any(ch.isspace() for ch in url):
        raise BadInput(f"{path} does not hold a NATS URL (nats://user:password@host:port); give --nats-url")
    return url


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("points", help="query a node's points service")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    bal = verbs.add_parser("balance", help="a card's balance: the number on stdout, details on stderr")
    add_nats_args(bal)
    bal.add_argument("--card", required=True, metavar="IDM", help="the card's IDm, 16 hex digits")
    bal.set_defaults(func=cmd_balance)

    rules = verbs.add_parser(
        "asset-rules", help="set an asset's rule: expiry of unused balances, or a monthly demurrage (or none)",
        description="The node's rule for one asset (まちづくりポイント machi-point, 単位 credit, 地域通貨 "
                    "local-currency): "
                    "balances on which nothing was posted for N days expire (--expiry-days N), or P%% of every "
                    "balance goes each month (--demurrage-percent P), or neither (--none). The points service "
                    "applies it every hour. Prints the rule as set.")
    add_nats_args(rules)
    rules.add_argument("--asset", required=True, help="machi-point, credit or local-currency")
    rule = rules.add_mutually_exclusive_group(required=True)
    rule.add_argument("--expiry-days", type=int, metavar="N", help="unused for N days (1-3650): expires")
    rule.add_argument("--demurrage-percent", type=int, metavar="P", help="P %% a month (1-50)")
    rule.add_argument("--none", action="store_true", help="balances keep")
    rules.set_defaults(func=cmd_asset_rules)


def cmd_balance(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        query = BalanceQuery(card_idm=check_idm(args.card))
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        balance = asyncio.run(_balance(args.nats_url, node, query))
    except Unreachable as exc:
        return fail(str(exc))
    except errors.ServiceError as exc:
        return fail(f"points service: {exc.reason} ({exc.code})", EXIT_FAILURE)
    except ValidationError as exc:
        return fail(f"points service answered something unexpected: {errors.describe_validation_error(exc)}")
    print(balance.balance)
    print(f"asset {balance.asset}, {balance.taps} taps", file=sys.stderr)
    return EXIT_OK


async def _balance(url: str, node: str, query: BalanceQuery) -> Balance:
    nc = await connect(url)
    try:
        reply = await rpc.call(nc, subjects.svc(node, SERVICE, EP_BALANCE), query, timeout=5.0)
    finally:
        await nc.close()
    return Balance.model_validate(reply)


def cmd_asset_rules(args: argparse.Namespace) -> int:
    from towntip.kernel.contracts import ledger as lc

    try:
        node = check_node(args.node)
        data = lc.AssetRulesIn(asset=args.asset, expiry_days=args.expiry_days,
                               demurrage_percent_per_month=args.demurrage_percent)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        return fail(errors.describe_validation_error(exc), EXIT_USAGE)

    async def go() -> lc.AssetRules:
        nc = await connect(args.nats_url)
        try:
            reply = await rpc.call(nc, subjects.svc(node, SERVICE, lc.EP_ASSET_RULES), data, timeout=10.0)
        finally:
            await nc.close()
        return lc.AssetRules.model_validate(reply)

    try:
        out = asyncio.run(go())
    except Unreachable as exc:
        return fail(str(exc))
    except errors.ServiceError as exc:
        return fail(f"points service: {exc.reason} ({exc.code})", EXIT_FAILURE)
    if out.expiry_days is not None:
        print(f"{out.asset}: balances unused for {out.expiry_days} days expire")
    elif out.demurrage_percent_per_month is not None:
        print(f"{out.asset}: {out.demurrage_percent_per_month}% of each balance goes each month")
    else:
        print(f"{out.asset}: balances keep")
    return EXIT_OK
