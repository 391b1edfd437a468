"""TownTip Commons: the shared kernel, the node supervisor and the command line."""

__version__ = "0.1.0"
