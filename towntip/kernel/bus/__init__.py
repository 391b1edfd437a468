"""The bus: subject names, the event envelope, streams, outbox, idempotent consumers, service endpoints."""
