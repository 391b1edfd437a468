"""What the person at the terminal sees and hears: a message per outcome (Japanese first, then English) on a
`Screen`, and a short tone per kind of outcome from a `Sound`. Backends are chosen by name (`console`, `none`;
`auto`, `aplay`, `bell`, `none`); tests use the recording ones."""

from edge.feedback.messages import Message, render
from edge.feedback.panel import FeedbackPanel
from edge.feedback.screen import ConsoleScreen, NullScreen, RecordingScreen, Screen, make_screen
from edge.feedback.sound import AplaySound, BellSound, NullSound, RecordingSound, Sound, make_sound, tone_wav

__all__ = [
    "AplaySound", "BellSound", "ConsoleScreen", "FeedbackPanel", "Message", "NullScreen", "NullSound",
    "RecordingScreen", "RecordingSound", "Screen", "Sound", "make_screen", "make_sound", "render", "tone_wav",
]
