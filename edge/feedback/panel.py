"""The agent's feedback callback: each event rendered and put on the screen, with its tone."""

from __future__ import annotations

import logging

from edge.feedback.messages import Feedback, Message, render
from edge.feedback.screen import Screen
from edge.feedback.sound import Sound

log = logging.getLogger(__name__)


class FeedbackPanel:
    """`TerminalAgent(..., feedback=FeedbackPanel(screen, sound))`. A failing screen or speaker is logged only."""

    def __init__(self, screen: Screen, sound: Sound) -> None:
        self.screen = screen
        self.sound = sound

    def __call__(self, fb: Feedback) -> Message:
        message = render(fb)
        try:
            self.screen.show(message)
        except Exception:  # the terminal goes on without its screen
            log.exception("the screen failed")
        if message.tone:
            try:
                self.sound.play(message.tone)
            except Exception:
                log.exception("the sound failed")
        return message
