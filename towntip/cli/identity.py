"""`towntip identity ...`: the operator's admin commands for a node's identity service (in the spirit of kcadm).

Users, OpenID Connect clients and the signing keys, over the service's admin endpoints
(svc.<node>.identity.admin.*). Arguments are checked against the contract before anything is sent (exit 2);
a password is read from stdin, never taken as an argument.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, ValidationError

from towntip.cli import EXIT_OK, EXIT_USAGE, fail
from towntip.cli.points import BadInput, Unreachable, add_nats_args, check_node, connect, redact
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as c

M = TypeVar("M", bound=BaseModel)

TIMEOUT = 15.0  # adding a user hashes its password (Argon2id): allow the service a moment
MAX_PASSWORD_LINE = 4096


class Failed(Exception):
    """The call did not succeed: exit 1 with this message."""


class RefusePassword(argparse.Action):
    """`--password X` would leave the password in the shell history and the process list: refuse it (exit 2)
    without repeating it."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        parser.error("the password is never taken as an argument; give it on stdin with --password-stdin")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("identity", help="administer a node's identity service: users, OIDC clients, keys")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")

    user = groups.add_parser("user", help="accounts whose home is this node")
    user_verbs = user.add_subparsers(dest="verb", required=True, metavar="VERB")
    add = user_verbs.add_parser(
        "add", help="create an account; the password is read from stdin; prints the global handle", allow_abbrev=False,
        description="Create an account at the node: a handle, the person's e-mail address (--email, required) and "
                    "a password, one line on stdin (--password-stdin), e.g. `printf '%s\\n' \"$PW\" | towntip "
                    "identity user add --handle hanako --email hanako@example.jp --password-stdin`.",
    )
    add_nats_args(add)
    add.add_argument("--handle", required=True, help="a-z, 0-9 and '_', 3-30 characters, e.g. hanako")
    add.add_argument("--email", required=True, metavar="ADDR",
                     help="required: the person's e-mail address (confirmed unless --unverified)")
    add.add_argument("--display-name", default=None, metavar="TEXT", help="shown name (default: the handle)")
    add.add_argument("--unverified", action="store_true", help="leave the e-mail address unconfirmed")
    add.add_argument("--password-stdin", action="store_true", required=True,
                     help="read the password (10-256 characters) as one line from stdin")
    add.add_argument("--password", nargs="?", action=RefusePassword, help=argparse.SUPPRESS)
    add.set_defaults(func=cmd_user_add)

    ls = user_verbs.add_parser("list", help="the node's accounts, as a table or JSON")
    add_nats_args(ls)
    ls.add_argument("--json", action="store_true", help="print JSON (a list of users) instead of a table")
    ls.set_defaults(func=cmd_user_list)

    rm = user_verbs.add_parser("remove", help="delete an account with its sessions and tokens")
    add_nats_args(rm)
    rm.add_argument("--handle", required=True, help="the account's handle (without @node)")
    rm.set_defaults(func=cmd_user_remove)

    for verb, helptext in (("grant", "give a person a role at this node"), ("revoke", "take a role away")):
        g = user_verbs.add_parser(verb, help=helptext, description=f"{helptext.capitalize()}. Roles: staff "
                                  "(municipal staff: events, issuance, coupons, courses, the municipality's themes), "
                                  "secretariat (the co-creation secretariat: inquiries, calls, evaluators).")
        add_nats_args(g)
        g.add_argument("--handle", required=True, help="name (a person of this node) or name@home (of another node)")
        g.add_argument("--role", required=True, metavar="ROLE", help=f"one of: {', '.join(c.ROLES)}")
        g.set_defaults(func=cmd_user_role, granted=verb == "grant")

    client = groups.add_parser("client", help="OpenID Connect clients (relying parties) of this node")
    client_verbs = client.add_subparsers(dest="verb", required=True, metavar="VERB")
    cadd = client_verbs.add_parser(
        "add", help="register a client; a confidential client's secret is printed once",
    )
    add_nats_args(cadd)
    cadd.add_argument("--client-id", required=True, metavar="ID", help="e.g. portal or city-app")
    cadd.add_argument("--redirect-uri", dest="redirect_uris", action="append", required=True, metavar="URI",
                      help="an allowed redirect URI, http(s); repeat for several (at most 10)")
    cadd.add_argument("--post-logout-redirect-uri", dest="post_logout_redirect_uris", action="append", default=[],
                      metavar="URI", help="an allowed redirect URI after logout; repeat for several")
    cadd.add_argument("--public", action="store_true",
                      help="a public client (SPA, native app): no secret, must use PKCE")
    cadd.add_argument("--name", default=None, metavar="TEXT", help="shown name (default: the client id)")
    cadd.add_argument("--scope", default="openid profile email", help="allowed scopes (default 'openid profile email')")
    cadd.set_defaults(func=cmd_client_add)

    cls = client_verbs.add_parser("list", help="the registered clients (never their secrets)")
    add_nats_args(cls)
    cls.add_argument("--json", action="store_true", help="print JSON (a list of clients) instead of a table")
    cls.set_defaults(func=cmd_client_list)

    crm = client_verbs.add_parser("remove", help="delete a client; its users' codes and refresh tokens go too")
    add_nats_args(crm)
    crm.add_argument("--client-id", required=True, metavar="ID")
    crm.set_defaults(func=cmd_client_remove)

    keys = groups.add_parser("keys", help="the provider's signing keys and the node's federation key")
    key_verbs = keys.add_subparsers(dest="verb", required=True, metavar="VERB")
    rot = key_verbs.add_parser(
        "rotate", help="retire the provider's signing keys and make new ones (the old ones stay published for a "
                       "day); the federation key stays, so the trust anchor's pin holds")
    add_nats_args(rot)
    rot.set_defaults(func=cmd_keys_rotate)
    frot = key_verbs.add_parser(
        "rotate-federation", help="retire the node's federation key (the one the trust anchor pinned) and make a "
                                  "new one; the other nodes refuse this node until the anchor re-pins",
        description="Change the key that signs this node's entity configuration. Deliberate (a leaked key, a "
                    "policy): from now on the other nodes refuse this node until the trust anchor's operator pins "
                    "the new key with `towntip federation anchor rekey --entity-id <this node> "
                    "--expect-thumbprint=<the printed thumbprint>`. Routine rotation is `keys rotate`.")
    add_nats_args(frot)
    frot.set_defaults(func=cmd_keys_rotate_federation)


# ---- the verbs -------------------------------------------------------------------------------------------------


def cmd_user_add(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        password = read_password()
        data = c.UserAddIn(handle=args.handle, email=args.email, display_name=args.display_name, password=password,
                           email_verified=not args.unverified)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        return fail(errors.describe_validation_error(exc), EXIT_USAGE)
    try:
        user = ask(args.nats_url, node, c.EP_USER_ADD, data, c.User)
    except Failed as exc:
        return fail(str(exc))
    print(user.global_handle)
    state = "confirmed" if user.email_verified else "not confirmed"
    print(f"{user.display_name} <{user.email}>, e-mail {state}", file=sys.stderr)
    return EXIT_OK


def cmd_user_list(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        users = ask(args.nats_url, node, c.EP_USER_LIST, None, c.UserList).users
    except Failed as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([u.model_dump(mode="json") for u in users], ensure_ascii=False, indent=2))
    else:
        print(table(["HANDLE", "GLOBAL HANDLE", "E-MAIL", "VERIFIED", "ROLES", "CREATED"], [
            [u.handle, u.global_handle, u.email, "yes" if u.email_verified else "no", ",".join(u.roles) or "-",
             when(u.created_at)]
            for u in users
        ]))
        print(f"{len(users)} users", file=sys.stderr)
    return EXIT_OK


def cmd_user_remove(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        data = c.UserRef(handle=args.handle)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        return fail(errors.describe_validation_error(exc), EXIT_USAGE)
    try:
        ask(args.nats_url, node, c.EP_USER_REMOVE, data, c.Done)
    except Failed as exc:
        return fail(str(exc))
    print(f"removed user {data.handle}@{node}")
    return EXIT_OK


def cmd_user_role(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        data = c.RoleIn(handle=args.handle, role=args.role)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        return fail(errors.describe_validation_error(exc), EXIT_USAGE)
    try:
        user = ask(args.nats_url, node, c.EP_USER_GRANT if args.granted else c.EP_USER_REVOKE, data, c.User)
    except Failed as exc:
        return fail(str(exc))
    print(f"{user.global_handle}: {', '.join(user.roles) or 'no roles'}")
    return EXIT_OK


def cmd_client_add(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        data = c.ClientAddIn(
            client_id=args.client_id, name=args.name, redirect_uris=args.redirect_uris,
            post_logout_redirect_uris=args.post_logout_redirect_uris, public=args.public, scope=args.scope,
        )
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        return fail(errors.describe_validation_error(exc), EXIT_USAGE)
    try:
        client = ask(args.nats_url, node, c.EP_CLIENT_ADD, data, c.Client)
    except Failed as exc:
        return fail(str(exc))
    print(f"client_id: {client.client_id}")
    if client.public:
        print("public client: no secret; it must use PKCE (S256)", file=sys.stderr)
    else:
        print(f"client_secret: {client.client_secret}")
        print("note: the client secret is shown only this once (the node keeps only its hash); store it now",
              file=sys.stderr)
    return EXIT_OK


def cmd_client_list(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        clients = ask(args.nats_url, node, c.EP_CLIENT_LIST, None, c.ClientList).clients
    except Failed as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps([k.model_dump(mode="json", exclude={"client_secret"}) for k in clients],
                         ensure_ascii=False, indent=2))
    else:
        print(table(["CLIENT ID", "NAME", "TYPE", "SCOPE", "REDIRECT URIS", "CREATED"], [
            [k.client_id, k.name, "public" if k.public else "confidential", k.scope, " ".join(k.redirect_uris),
             when(k.created_at)]
            for k in clients
        ]))
        print(f"{len(clients)} clients", file=sys.stderr)
    return EXIT_OK


def cmd_client_remove(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
        data = c.ClientRef(client_id=args.client_id)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    except ValidationError as exc:
        return fail(errors.describe_validation_error(exc), EXIT_USAGE)
    try:
        ask(args.nats_url, node, c.EP_CLIENT_REMOVE, data, c.Done)
    except Failed as exc:
        return fail(str(exc))
    print(f"removed client {data.client_id}")
    return EXIT_OK


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        rotated = ask(args.nats_url, node, c.EP_KEY_ROTATE, None, c.KeyRotated)
    except Failed as exc:
        return fail(str(exc))
    print(f"kid: {rotated.kid}")
    if rotated.access_token_kid:
        print(f"access token kid: {rotated.access_token_kid}")
    print(f"published: {' '.join(rotated.published)}")
    print("the new key signs from now on; retired keys stay published for a day", file=sys.stderr)
    if rotated.federation_kid:
        print(f"the federation key {rotated.federation_kid} is unchanged: the trust anchor's pin holds, other nodes "
              "take the new keys from this node's entity configuration", file=sys.stderr)
    return EXIT_OK


def cmd_keys_rotate_federation(args: argparse.Namespace) -> int:
    try:
        node = check_node(args.node)
    except BadInput as exc:
        return fail(str(exc), EXIT_USAGE)
    try:
        rotated = ask(args.nats_url, node, c.EP_FEDERATION_KEY_ROTATE, None, c.FederationKeyRotated)
    except Failed as exc:
        return fail(str(exc))
    print(f"federation key thumbprint: {rotated.kid}")
    if rotated.retired:
        print(f"retired: {' '.join(rotated.retired)}")
    print(f"the other nodes refuse {rotated.entity_id} until the trust anchor pins the new key: its operator runs\n"
          f"  towntip federation anchor rekey --data-dir <the anchor's> --entity-id {rotated.entity_id} "
          f"--expect-thumbprint={rotated.kid}", file=sys.stderr)
    return EXIT_OK


# ---- helpers ---------------------------------------------------------------------------------------------------


def read_password() -> str:
    """One line from stdin without its line ending; nothing else is stripped. No echo when stdin is a terminal."""
    if sys.stdin is None:
        raise BadInput("--password-stdin: there is no stdin to read the password from")
    if sys.stdin.isatty():
        line = getpass.getpass("password: ", stream=sys.stderr)
    else:
        line = sys.stdin.readline(MAX_PASSWORD_LINE)
    if line.endswith("\n"):
        line = line[:-1]
        if line.endswith("\r"):
            line = line[:-1]
    if not line:
        raise BadInput("--password-stdin: the password on stdin is empty (give it as one line)")
    return line


def ask(url: str, node: str, endpoint: str, payload: BaseModel | None, answer: type[M]) -> M:
    """One admin call over the node's NATS; any failure becomes Failed with a message for the operator."""
    subject = subjects.svc(node, c.SERVICE, endpoint)
    try:
        reply = asyncio.run(_call(url, subject, payload))
    except Unreachable as exc:
        raise Failed(f"{exc}; nothing was sent") from None
    except errors.ServiceError as exc:
        if isinstance(exc.__cause__, NoRespondersError):
            raise Failed(f"no identity service answers on {subject}: is it running for node {node!r} "
                         f"(python -m identity)? nothing was changed") from None
        if isinstance(exc.__cause__, NatsTimeout):
            raise Failed(f"the identity service did not answer on {subject} within {TIMEOUT:g}s; the change may "
                         "or may not have been made: check with a list") from None
        raise Failed(f"identity service: {exc.reason} ({exc.code})") from None
    except NatsError as exc:
        raise Failed(f"NATS at {redact(url)}: {exc or type(exc).__name__}") from None
    try:
        return answer.model_validate(reply)
    except ValidationError as exc:
        raise Failed(f"identity service answered something unexpected: {errors.describe_validation_error(exc)}") \
            from None


async def _call(url: str, subject: str, payload: BaseModel | None) -> Any:
    nc = await connect(url)
    try:
        return await rpc.call(nc, subject, payload, timeout=TIMEOUT)
    finally:
        await nc.close()


def when(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _width(text: str) -> int:
    """Columns on a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([_width(h), *(_width(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = []
    for row in (headers, *rows):
        cells = [cell + " " * (widths[i] - _width(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
