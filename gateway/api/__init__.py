"""The HTTP API under /api/v1: each route maps onto a service endpoint over NATS."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from gateway.api import generated, points, sns

PREFIX = "/api/v1"


@cache
def routers() -> tuple[APIRouter, ...]:
    """A few routes are written by hand (points' that staff tools call with the admin token; sending a message,
    which needs the addressee's profile from identity); the others come from the services' tables, read when the
    first app is made (not when this module is imported)."""
    return (points.router, points.terminals_router, sns.router, generated.router())


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX)
    for r in routers():
        api.include_router(r)
    return api


def route_templates() -> dict[Callable[..., Any], str]:
    """{endpoint function: full path template}, for span names that never carry path values (card IDms)."""
    return {route.endpoint: PREFIX + route.path for r in routers() for route in r.routes if isinstance(route, APIRoute)}
