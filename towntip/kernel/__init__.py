"""The kernel every service shares: settings, database, bus, errors, telemetry."""
