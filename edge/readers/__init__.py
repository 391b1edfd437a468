"""Card readers behind one small interface: a simulated reader for tests and demos, an nfcpy FeliCa reader."""

from edge.readers.base import CardRead, CardReader, utcnow
from edge.readers.simulated import SimulatedReader

__all__ = ["CardRead", "CardReader", "SimulatedReader", "utcnow"]
