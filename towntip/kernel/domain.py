"""Endpoints declared per domain, in a table: name, request model, answer model, handler, refusals, role.

A domain's table is data, not code: each row says what the endpoint takes and answers and which service function
serves it. The kernel turns the tables of a service's domains into its bus endpoints
(`towntip.kernel.bus.endpoints.Endpoints.from_domains`), and the AsyncAPI document (and the gateway's HTTP
routes) come from the same rows.

    COMMUNITIES = Domain("communities", refusals=(c.COMMUNITY_NOT_FOUND, ...), ops=(
        write(c.EP_COMMUNITY_JOIN, c.CommunityAction, c.Community, communities.join, role=SIGNED_IN),
        read(c.EP_COMMUNITY_GET, c.CommunityQuery, c.Community, communities.get, role=ANYONE),
    ))

A handler is an async service function called with keyword arguments chosen by their names from what the kernel
and the service provide: `session` (in the unit of work's transaction for a write; a plain session for a read),
`data` (the request model), `now` (the service's clock), the service's own context (`node`, ...), and for a
required parameter the request's field of that name (`theme_id`, `actor`). `tx="none"` rows get `sessions`
instead and own their transactions (they call other nodes between short transactions).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from towntip.kernel.errors import Refusal
from towntip.kernel.uow import UnitOfWork

MAX_REQUEST_BYTES = 64 * 1024

# Who may call (for the gateway's HTTP routes; on the bus, NATS permissions decide which process may ask).
ANYONE = "anyone"  # public reads
SIGNED_IN = "signed_in"  # any person signed in at this node (the service decides what they may do as the actor)
STAFF = "staff"
SECRETARIAT = "secretariat"
GATEWAY = "gateway"  # the node's gateway only (sessions, OIDC, lookups it does for a page)
OPERATOR = "operator"  # the operator's admin CLI only
SERVICE = "service"  # another service of the node (towntip/node/natsauth.py SERVICE_CALLS grants it; never HTTP)

Tx = Literal["write", "read", "none"]
Method = Literal["GET", "POST", "PUT", "DELETE"]
HTTP_ROLES = (ANYONE, SIGNED_IN, STAFF, SECRETARIAT)  # GATEWAY and OPERATOR ops are never HTTP routes
# The person's roles at the node (contracts.identity.ROLES) that satisfy a row's role: the secretariat may do what
# staff may (as the portal's staff pages admit both); the service still decides on the particular thing.
HOLDERS = {STAFF: ("staff", "secretariat"), SECRETARIAT: ("secretariat",)}


@dataclass(frozen=True)
class Http:
    """An op served as an HTTP route by the gateway (gateway/api/generated.py), under /api/v1.

    `path` may name fields of the request model (`/communities/{community_id}`); the other fields are the query
    (GET) or the JSON body. `actor` is never sent: the gateway fills it from the caller's bearer token."""

    method: Method
    path: str
    summary: str = ""
    status: int = 200  # the status of a successful answer (201 for a POST that creates something)


def GET(path: str, summary: str = "") -> Http:  # reads like the route it declares
    return Http("GET", path, summary)


def POST(path: str, summary: str = "", *, status: int = 200) -> Http:
    return Http("POST", path, summary, status)


@dataclass(frozen=True)
class Op:
    """One row of a domain's table: one endpoint (svc.<node>.<service>.<name>)."""

    name: str
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    handler: Callable[..., Awaitable[Any]]
    tx: Tx = "read"
    refusals: tuple[Refusal, ...] = ()  # besides its domain's
    role: str = SIGNED_IN
    setup: bool = True  # a write runs the service's setup step first (sns: the actor is recorded)
    max_bytes: int = MAX_REQUEST_BYTES
    doc: str = ""
    http: Http | None = None  # also an HTTP route of the gateway (with `role` enforced there); None: bus only
    clash: Refusal | None = None  # a write: a unique-key conflict left after the retry answered as this refusal
    # The node's admin token may call the HTTP route too, for no person: the request goes without an actor (its
    # model's `actor` is optional, and the service treats None as the node's operator, as on the bus).
    admin: bool = False


def write(name: str, request: type[BaseModel] | None, response: type[BaseModel] | None,
          handler: Callable[..., Awaitable[Any]], **kw: Any) -> Op:
    """A change: one transaction of the unit of work, retried on a serialisation failure, relay woken after."""
    return Op(name, request, response, handler, tx="write", **kw)


def read(name: str, request: type[BaseModel] | None, response: type[BaseModel] | None,
         handler: Callable[..., Awaitable[Any]], **kw: Any) -> Op:
    """A query: a session of its own, nothing committed."""
    return Op(name, request, response, handler, tx="read", **kw)


def own(name: str, request: type[BaseModel] | None, response: type[BaseModel] | None,
        handler: Callable[..., Awaitable[Any]], **kw: Any) -> Op:
    """A handler that owns its transactions (gets `sessions`): it calls other nodes between short ones."""
    return Op(name, request, response, handler, tx="none", **kw)


@dataclass(frozen=True)
class Domain:
    """A domain's table: its endpoints and the refusals they may answer."""

    name: str
    ops: tuple[Op, ...]
    refusals: tuple[Refusal, ...] = ()

    def refusals_of(self, op: Op) -> tuple[Refusal, ...]:
        return tuple(dict.fromkeys(self.refusals + op.refusals + ((op.clash,) if op.clash is not None else ())))


Setup = Callable[..., Awaitable[None]]  # called like a handler, before a write whose row says `setup=True`


@dataclass
class Bound:
    """An op ready to serve: its handler called with what it asks for."""

    op: Op
    domain: Domain
    call: Callable[[Any], Awaitable[Any]] = field(repr=False)


def _injector(fn: Callable[..., Awaitable[Any]], offered: set[str], fields: set[str], where: str) -> list[str]:
    """The names `fn` takes that the kernel fills: what the kernel and the service offer (`offered`), and for a
    required parameter also a field of the request of the same name (`theme_id=q.theme_id`). A required parameter
    nobody offers is a mistake in the table, found when the service starts, not on the first request."""
    sig = inspect.signature(fn)
    names = []
    for p in sig.parameters.values():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if p.name in offered or p.name in fields and p.default is p.empty:
            names.append(p.name)
        elif p.default is p.empty:
            raise TypeError(f"{where}: {fn.__qualname__} asks for {p.name!r}, which nobody offers "
                            f"(offered: {', '.join(sorted(offered | fields))})")
    return names


def _args(names: list[str], offered: dict[str, Any], data: Any) -> dict[str, Any]:
    return {n: offered[n] if n in offered else getattr(data, n) for n in names}


def bind(domains: Iterable[Domain], *, uow: UnitOfWork, context: Mapping[str, Any] | None = None,
         setup: Setup | None = None) -> list[Bound]:
    """Each op of each domain, with a coroutine that serves one request: `await bound.call(request_model)`."""
    ctx = dict(context or {})
    out: list[Bound] = []
    seen: set[str] = set()
    for domain in domains:
        for op in domain.ops:
            if op.name in seen:
                raise ValueError(f"endpoint {op.name!r} is declared twice")
            seen.add(op.name)
            out.append(Bound(op, domain, _serve(op, domain, uow, ctx, setup)))
    return out


def _serve(op: Op, domain: Domain, uow: UnitOfWork, ctx: dict[str, Any], setup: Setup | None
           ) -> Callable[[Any], Awaitable[Any]]:
    where = f"{domain.name}.{op.name}"
    base = set(ctx) | {"data", "q", "now"}
    fields = set(op.request.model_fields) if op.request is not None else set()
    if op.tx == "none":
        names = _injector(op.handler, base | {"sessions", "uow"}, fields, where)

        async def serve_own(data: Any) -> Any:
            offered = {**ctx, "data": data, "q": data, "now": uow.clock(), "sessions": uow.sessions, "uow": uow}
            return await op.handler(**_args(names, offered, data))

        return serve_own
    names = _injector(op.handler, base | {"session"}, fields, where)
    if op.tx == "read":
        async def serve_read(data: Any) -> Any:
            async def query(session: Any) -> Any:
                offered = {**ctx, "data": data, "q": data, "now": uow.clock(), "session": session}
                return await op.handler(**_args(names, offered, data))

            return await uow.read(query)

        return serve_read
    setup_names = (_injector(setup, base | {"session"}, fields, f"{where} (setup)")
                   if setup is not None and op.setup else None)

    async def serve_write(data: Any) -> Any:
        async def change(session: Any, now: Any) -> Any:
            offered = {**ctx, "data": data, "q": data, "now": now, "session": session}
            if setup is not None and setup_names is not None:
                await setup(**_args(setup_names, offered, data))
            return await op.handler(**_args(names, offered, data))

        return await uow.write(change, clash=op.clash)

    return serve_write
