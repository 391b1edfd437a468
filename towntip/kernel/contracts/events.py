"""The base of every event model: a frozen, versioned fact that knows its service, type name and subject.

A service's events subclass its own base (`class SnsEvent(Event)` with `SERVICE = "sns"` and `IS_EVENT = False`);
each concrete event is registered here so that the AsyncAPI document and the tests can list every event of every stream.
Announcing one is `towntip.kernel.bus.outbox.announce(session, tables, event, node=...)`; consuming one is
`Model.parse(data)` (a payload that does not fit raises Rejected's cause, pydantic's ValidationError).

Changes are additive: a new field gets a default, so older events stay valid; a change that is not additive
raises VERSION. Unknown fields of a newer sender are ignored, so a node can read a peer that upgraded first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict

from towntip.kernel.bus import subjects
from towntip.kernel.bus.envelope import Envelope, event_token

_REGISTRY: dict[tuple[str, str], type[Event]] = {}


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    SERVICE: ClassVar[str] = ""  # set by each service's base class
    VERSION: ClassVar[int] = 1  # the payload's schema version (the envelope's `version`)
    IS_EVENT: ClassVar[bool] = True  # False on a reply model that reuses an event's fields (not on any stream)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if cls.SERVICE and cls.__dict__.get("IS_EVENT", True):
            _REGISTRY[(cls.SERVICE, cls.__name__)] = cls

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__

    @classmethod
    def token(cls) -> str:
        """The subject's last token: 'PostPublished' -> 'post_published'."""
        return event_token(cls.__name__)

    @classmethod
    def subject(cls, node: str) -> str:
        return subjects.evt(node, cls.SERVICE, cls.token())

    @classmethod
    def parse(cls, data: Any) -> Self:
        """The event from an envelope's `data` (raises pydantic.ValidationError when it does not fit)."""
        return cls.model_validate(data)

    def envelope(self, *, node: str, at: datetime | None = None) -> Envelope:
        """The envelope the outbox stores: the kernel's one way to build it."""
        return Envelope(type=self.type_name(), version=self.VERSION, node=node, service=self.SERVICE,
                        data=self.model_dump(mode="json"), **({"time": at} if at is not None else {}))


def registered() -> dict[tuple[str, str], type[Event]]:
    """{(service, type name): model} of every event model imported so far."""
    return dict(_REGISTRY)


def model_of(service: str, type_name: str) -> type[Event] | None:
    return _REGISTRY.get((service, type_name))
