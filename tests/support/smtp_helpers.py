"""A real local SMTP server for tests (aiosmtpd) that records what it receives."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from typing import Any

from aiosmtpd.controller import Controller


class Recorder:
    """An SMTP handler that keeps every message; refuses the recipients in `refuse` with the given reply."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def parsed(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(raw, policy=email.policy.default) for _f, _t, raw in self.messages]


@dataclass
class Smtp:
    """A port for a local SMTP server and its recorder; `start()` brings the server up (a test may leave it down)."""

    port: int
    handler: Recorder
    controller: Controller | None = None

    def start(self) -> Smtp:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost")
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
