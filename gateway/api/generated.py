"""HTTP routes generated from the services' endpoint tables (towntip.kernel.domain): one row, marked `http=`, gives
the bus endpoint, this route, its OpenAPI entry and its AsyncAPI entry.

For each such op the gateway mounts a route under /api/v1 that
- takes the op's request model: fields named in the path are path parameters, the others the query (GET) or the
  JSON body; `actor` is never taken from the request: it is the person holding the bearer token;
- enforces the op's role from the caller's credentials: `anyone` needs no token (a valid one still says who asks);
  `signed_in` needs an access token of this node's OpenID provider; `staff` and `secretariat` need one whose person
  holds that role here (the identity service says who holds a token: svc.<node>.identity.oidc.token_user);
  the node's admin token is no person and acts for nobody (403 `request.person_required` where a person is needed,
  unless the op's row says `admin=True`: then the request goes without an actor, as the operator's would);
- calls the bus endpoint with `rpc.call` and answers its answer model, or its refusal as problem+json with the
  refusal's status and code (documented per status with the op's declared refusals).

Ops whose role is `gateway` or `operator` are never routes. The tables are read once when the gateway starts, only
for their declarations (as gateway/asyncapi.py reads them): no handler is ever called here.

Points' routes come from its tables too (events, donation projects, my notebook, my points, the staff's figures),
except the hand-written ones in gateway/api/points.py: a card's balance, PUT /points/events/{code} and
/terminals, which staff tooling calls with the node's admin token (no person: a generated staff route takes it only
where the row says `admin=True`, as the bookings service's counter bookings do).
"""

from __future__ import annotations

import hmac
import importlib
import inspect
import re
import types
from collections.abc import Iterable
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ValidationError, create_model

from gateway.api.deps import bearer, nats, settings
from gateway.problems import responses as problem_responses
from towntip.kernel import errors
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts.actor import Actor
from towntip.kernel.domain import ANYONE, HOLDERS, HTTP_ROLES, SIGNED_IN, Domain, Op

# Services whose domain tables the gateway serves over HTTP: (service, module holding DOMAINS)
SERVICES: tuple[tuple[str, str], ...] = (
    ("points", "services.points.handlers"),
    ("projects", "services.projects.handlers"),
    ("sns", "services.sns.handlers"),
    ("bookings", "services.bookings.handlers"),
    ("notices", "services.notices.handlers"),
    ("signage", "services.signage.handlers"),
)

# The refusals of the gateway itself (also problem+json with a code)
NO_TOKEN = "request.unauthenticated"
PERSON_REQUIRED = "request.person_required"
ROLE_MISSING = "request.role_missing"

ADMIN = object()  # the caller presented the node's admin token: staff tooling, but no person

Caller = Actor | object | None


def exposed(services: Iterable[tuple[str, str]] = SERVICES) -> list[tuple[str, Domain, Op]]:
    """(service, domain, op) for every op marked for HTTP, from the services' tables."""
    out = []
    for service, module in services:
        for domain in importlib.import_module(module).DOMAINS:
            for op in domain.ops:
                if op.http is not None:
                    if op.role not in HTTP_ROLES:
                        raise ValueError(f"{service}.{op.name}: role {op.role!r} is never an HTTP route")
                    out.append((service, domain, op))
    return out


def actor_of(user: ic.User) -> Actor:
    return Actor(user_id=user.id, global_handle=user.global_handle, display_name=user.display_name,
                 roles=tuple(user.roles))


async def caller(request: Request,
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    """Who asks: None (no token), ADMIN (the node's admin token) or the person holding an access token."""
    if creds is None:
        return None
    token = creds.credentials.strip()
    admin: str = request.app.state.settings.admin_token
    if admin and hmac.compare_digest(token.encode(), admin.encode()):
        return ADMIN
    try:
        query = ic.AccessTokenIn(access_token=token)
    except ValidationError:
        raise ic.TOKEN_INVALID("the bearer token is not an access token of this node") from None
    s = settings(request)
    answer = await rpc.call(nats(request), subjects.svc(s.node_id, ic.SERVICE, ic.EP_TOKEN_USER), query,
                            timeout=s.request_timeout)
    return actor_of(ic.User.model_validate(answer))


def enforce(role: str, *, admin: bool = False) -> Any:
    """The route's dependency: the person it acts for, refused (401/403) before its input is even read."""

    async def allowed(who: Annotated[Caller, Depends(caller)]) -> Actor | None:
        return allow(role, who, admin=admin)

    return allowed


def allow(role: str, who: Caller, *, admin: bool = False) -> Actor | None:
    """The person the op acts for, if `who` may call an op that needs `role`; else the refusal. `admin`: the node's
    admin token may call it too, for nobody (None)."""
    person = who if isinstance(who, Actor) else None
    if role == ANYONE or admin and who is ADMIN:
        return person
    if who is None:
        raise errors.Unauthorized("a bearer access token of this node's OpenID provider is required",
                                  error_code=NO_TOKEN)
    if person is None:
        raise errors.Forbidden("the node's admin token acts for nobody: this needs a person's access token",
                               error_code=PERSON_REQUIRED)
    if role != SIGNED_IN and not person.has(*HOLDERS[role]):
        raise errors.Forbidden(f"only a person with the role {role!r} at this node may do this",
                               error_code=ROLE_MISSING)
    return person


def _is_model(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_model(a) for a in get_args(annotation))
    return False


_inputs: dict[tuple[Any, ...], type[BaseModel]] = {}


def _input_model(op: Op, path_fields: list[str], in_query: bool) -> type[BaseModel] | None:
    """The part of the request model the client sends (not the actor, not the path): one model per shape."""
    request = op.request
    if request is None:
        return None
    fields = {n: f for n, f in request.model_fields.items()
              if n != "actor" and n not in path_fields and not (in_query and _is_model(f.annotation))}
    if not fields:
        return None
    key = (request, tuple(fields), in_query)
    if key not in _inputs:
        name = f"{request.__name__}{'Query' if in_query else 'Body'}"
        taken = {m.__name__ for m in _inputs.values()}
        n = 2
        while name in taken:
            name, n = f"{request.__name__}{'Query' if in_query else 'Body'}{n}", n + 1
        _inputs[key] = create_model(name, __config__=request.model_config, __doc__=request.__doc__,
                                    **{k: (f.annotation, f) for k, f in fields.items()})  # type: ignore[call-overload]
    return _inputs[key]


def _responses(op: Op, domain: Domain, path_fields: list[str]) -> dict[int | str, dict[str, Any]]:
    codes: dict[int, list[str]] = {401: [f"{ic.TOKEN_INVALID.code}: {ic.TOKEN_INVALID.doc}"],
                                   422: [f"{errors.generic_code(422)}: the request does not match its schema"],
                                   503: [f"{errors.generic_code(503)}: the service did not answer"]}
    if op.role != ANYONE:
        codes[401].append(f"{NO_TOKEN}: no bearer token")
        if not op.admin:
            codes.setdefault(403, []).append(f"{PERSON_REQUIRED}: the admin token is no person")
        if op.role != SIGNED_IN:
            codes.setdefault(403, []).append(f"{ROLE_MISSING}: the person lacks the role {op.role!r}")
    for r in domain.refusals_of(op):
        codes.setdefault(r.status, []).append(f"{r.code}: {r.doc}" if r.doc else r.code)
    if path_fields:
        codes.setdefault(404, [])
    body = set(op.request.model_fields) - set(path_fields) - {"actor"} if op.request is not None else set()
    if op.http is not None and op.http.method != "GET" and body:  # FastAPI's answer to a body that is not JSON
        codes.setdefault(400, []).append(f"{errors.generic_code(400)}: the body is not JSON")
    out = problem_responses(*sorted(codes))
    for status, lines in codes.items():
        if lines:
            out[status]["description"] += " — " + "; ".join(lines)
        out[status]["x-codes"] = sorted({line.split(":")[0] for line in lines})
    return out


def _route(router: APIRouter, service: str, domain: Domain, op: Op) -> None:
    assert op.http is not None
    http = op.http
    request_model = op.request
    path_fields = re.findall(r"{(\w+)}", http.path)
    model_fields = request_model.model_fields if request_model is not None else {}
    for p in path_fields:
        if p not in model_fields:
            raise ValueError(f"{service}.{op.name}: path {http.path!r} names {p!r}, not a field of its request")
    in_query = http.method == "GET"
    given = _input_model(op, path_fields, in_query)
    takes_actor = "actor" in model_fields

    async def endpoint(**kw: Any) -> Any:
        person = kw.pop("api_caller")
        s, nc = kw.pop("api_settings"), kw.pop("api_nc")
        sent = kw.pop("api_input", None)
        payload: BaseModel | None = None
        if request_model is not None:
            data: dict[str, Any] = dict(sent.model_dump(exclude_unset=True)) if sent is not None else {}
            data.update({p: kw[p] for p in path_fields})
            if takes_actor and person is not None:
                data["actor"] = person
            try:
                payload = request_model.model_validate(data)
            except ValidationError as exc:
                raise RequestValidationError(exc.errors(include_url=False)) from None
        return await rpc.call(nc, subjects.svc(s.node_id, service, op.name), payload, timeout=s.request_timeout)

    params = [inspect.Parameter(p, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[
        (model_fields[p].annotation, *model_fields[p].metadata, Path(description=model_fields[p].description))])
        for p in path_fields]
    if given is not None:
        params.append(inspect.Parameter("api_input", inspect.Parameter.KEYWORD_ONLY,
                                        annotation=Annotated[given, Query()] if in_query else Annotated[given, Body()]))
    params += [
        inspect.Parameter("api_caller", inspect.Parameter.KEYWORD_ONLY,
                          annotation=Annotated[Any, Depends(enforce(op.role, admin=op.admin))]),
        inspect.Parameter("api_settings", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Any, Depends(settings)]),
        inspect.Parameter("api_nc", inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[Any, Depends(nats)]),
    ]
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = f"{service}_{op.name}".replace(".", "_")
    who = {ANYONE: "anyone", SIGNED_IN: "signed in"}.get(op.role, op.role)
    router.add_api_route(
        http.path, endpoint, methods=[http.method], response_model=op.response, status_code=http.status,
        tags=[f"{service}: {domain.name}"],
        summary=f"{http.summary or op.doc or op.name} ({who})", operation_id=f"{service}.{op.name}",
        description=f"Bus endpoint `svc.<node>.{service}.{op.name}`; role `{op.role}`."
                    + (" A bearer token is optional: with one, the answer is for that person." if op.role == ANYONE
                       and takes_actor else " Acts as the person holding the bearer token." if takes_actor else "")
                    + (" The node's admin token may call it too, for no person." if op.admin else ""),
        responses=_responses(op, domain, path_fields),
        # a public read: the token is optional (FastAPI lists the bearer scheme; {} adds "or none")
        openapi_extra={"security": [{}]} if op.role == ANYONE else None,
    )


def router(services: Iterable[tuple[str, str]] = SERVICES) -> APIRouter:
    api = APIRouter()
    for service, domain, op in exposed(services):
        _route(api, service, domain, op)
    return api
