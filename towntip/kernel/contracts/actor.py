"""Who is asking: the gateway authenticates the person (the identity service's session) and passes them to a
service as an `Actor` inside the request; the service decides what the actor may do.

Services trust this field only because of who may publish to their endpoints: the node's NATS users let the gateway
and the operator call `svc.<node>.<service>.>`, nobody else (towntip/node/natsauth.py). A service never takes an
actor from anything a device or another node sent."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

GlobalHandle = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{2,29}@[a-z][a-z0-9-]{0,30}[a-z0-9]$")]


class Actor(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: Annotated[str, StringConstraints(min_length=8, max_length=64)]  # the identity service's id at this node
    global_handle: GlobalHandle  # name@home: the same person on every node
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    roles: tuple[str, ...] = ()  # roles at this node: see contracts.identity.ROLES

    def has(self, *roles: str) -> bool:
        return bool(set(roles) & set(self.roles))
