"""The gateway: the public HTTP edge of a node (HTTP API over NATS, health, a status page).

Nothing is configured or connected at import time: `gateway.app.create_app(settings)` builds the app,
`python -m gateway` runs it with uvicorn.
"""
