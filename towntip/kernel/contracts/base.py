"""The base of the contracts' answer models: frozen, like every request and event model, so that an answer a
service gave is a value nobody changes on its way to the page, the API or another service."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """A model whose fields cannot be reassigned after it is made (`model_copy(update=...)` makes a changed one).
    A subclass's own `model_config` is merged with this one, so it stays frozen."""

    model_config = ConfigDict(frozen=True)
