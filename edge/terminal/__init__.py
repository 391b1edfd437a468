"""The IC card terminal: a spool on the device and the agent that sends taps to the node."""

from edge.terminal.agent import TerminalAgent
from edge.terminal.spool import Spool, SpooledTap, new_tap_id

__all__ = ["Spool", "SpooledTap", "TerminalAgent", "new_tap_id"]
