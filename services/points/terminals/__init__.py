"""Card terminals as the node hears them: heartbeats, taps' arrival, status."""
