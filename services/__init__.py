"""The services of a node; each owns its data and talks to the others only over NATS."""
