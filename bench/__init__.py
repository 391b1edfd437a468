"""Benchmarks of a TownTip node (run them as modules, e.g. `python -m bench.taps`)."""
