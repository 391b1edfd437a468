"""/api/v1/messages (POST): a direct message to a person known at this node. Written by hand because the sns service
takes the addressee's display name as the identity service knows it (a caller could otherwise put any name on the
thread): the gateway asks identity for the person's public profile, then the sns service to send. Every other
messages route (conversations, a thread, read, block and mute, unread) comes from the sns service's table
(gateway/api/generated.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from gateway.api.deps import Nats, Settings
from gateway.api.generated import enforce
from gateway.problems import responses
from towntip.kernel.bus import rpc, subjects
from towntip.kernel.contracts import identity as ic
from towntip.kernel.contracts import sns as c
from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.domain import SIGNED_IN

router = APIRouter(tags=["sns"])


class MessageSend(BaseModel):
    """To whom (name@home, a person known at this node) and what."""

    model_config = ConfigDict(extra="forbid")
    to: GlobalHandle
    body: c.MessageBody


@router.post("/messages", response_model=c.Message, summary="Send a direct message (ダイレクト・メッセージ)",
             responses=responses(401, 403, 404, 409, 422, 429, 503))
async def send_message(data: MessageSend, actor: Annotated[Actor, Depends(enforce(SIGNED_IN))], nc: Nats,
                       settings: Settings) -> c.Message:
    timeout = settings.request_timeout
    found = ic.PublicProfile.model_validate(await rpc.call(
        nc, subjects.svc(settings.node_id, ic.SERVICE, ic.EP_PEOPLE_PROFILE), ic.ProfileLookupIn(handle=data.to),
        timeout=timeout))
    return c.Message.model_validate(await rpc.call(
        nc, subjects.svc(settings.node_id, c.SERVICE, c.EP_MESSAGE_SEND),
        c.MessageIn(actor=actor, to=found.global_handle, to_name=found.display_name, body=data.body),
        timeout=timeout))
