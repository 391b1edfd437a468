"""Every subject and stream name of a node, built in one place. The node id is in every subject."""

from __future__ import annotations

# services that run in a node today; the others arrive with their issues
SERVICES = ("identity", "points", "projects", "sns", "bookings", "notices", "signage")
# Where each service's code lives (`python -m <module>`): the design card puts identity at the top level.
SERVICE_MODULES = {"identity": "identity", "points": "services.points", "projects": "services.projects",
                   "sns": "services.sns", "bookings": "services.bookings", "notices": "services.notices",
                   "signage": "services.signage"}


def svc(node: str, service: str, endpoint: str) -> str:
    """Request/reply endpoint of a service (nats.micro, queue group per service)."""
    return f"svc.{node}.{service}.{endpoint}"


def svc_group(node: str, service: str) -> str:
    return f"svc.{node}.{service}"


def evt(node: str, service: str, event_type: str) -> str:
    """A fact a service announces; published by its outbox relay into its event stream."""
    return f"evt.{node}.{service}.{event_type}"


def evt_all(node: str, service: str) -> str:
    return f"evt.{node}.{service}.>"


def edge(node: str, terminal: str, kind: str) -> str:
    """What a device sends: taps, heartbeats (JetStream, ids made on the device)."""
    return f"edge.{node}.{terminal}.{kind}"


def edge_kind(node: str, kind: str) -> str:
    """Every terminal's messages of one kind, e.g. all taps of a node."""
    return f"edge.{node}.*.{kind}"


def dlq(node: str, service: str, consumer: str) -> str:
    """Where a poison message lands, with its error in the headers."""
    return f"dlq.{node}.{service}.{consumer}"


def _stream_part(node: str) -> str:
    return node.upper().replace("-", "_")


def stream_part(node: str) -> str:
    """The node id as a stream name takes it (streams of a contract built outside this module: signage's plays)."""
    return _stream_part(node)


def evt_stream(node: str, service: str) -> str:
    return f"EVT_{_stream_part(node)}_{service.upper()}"


def edge_stream(node: str) -> str:
    return f"EDGE_{_stream_part(node)}"


def fed_stream(node: str) -> str:
    """What a node takes in from its peers: their event streams, sourced over the leafnodes (FED_<NODE>)."""
    return f"FED_{_stream_part(node)}"


def fed_service_stream(node: str, service: str) -> str:
    """A service's own copies of its peers' events (FED_<NODE>_<SERVICE>): its own stream, so that no two services
    update one stream's sources at once (a read-modify-write that could lose a source)."""
    return f"FED_{_stream_part(node)}_{service.upper()}"


def fed_service_in(node: str, service: str) -> str:
    """The subject of FED_<NODE>_<SERVICE> itself (it takes nothing: only its sources fill it)."""
    return f"fed.{node}.{service}.in"


def js_api(node: str) -> str:
    """Another node's JetStream API, reached through the hub by its JetStream domain (= node id)."""
    return f"$JS.{node}.API"


def source_deliver(node: str, peer: str) -> str:
    """Where a peer's JetStream delivers what `node` sources from it ($JS.S.<node>.<peer>, then `.S.<id>`): one
    prefix per pair, so the federation's hub exports each peer's deliveries to exactly the node that asked."""
    return f"$JS.S.{node}.{peer}"


def source_create(node: str) -> str:
    """Where a peer's consumer creation for sourcing `node` arrives at `node` (`<this>.<STREAM>.<name>.<filter>`):
    the hub maps `$JS.<node>.API.CONSUMER.CREATE` onto it, and the node's source guard answers
    (towntip/node/source_guard.py)."""
    return f"fedsrc.{node}.CREATE"


def flow_control(node: str, service: str) -> str:
    """The flow-control replies of the consumers sourcing `node`'s event stream of `service`."""
    return f"$JS.FC.{evt_stream(node, service)}.>"


def dlq_stream(node: str) -> str:
    return f"DLQ_{_stream_part(node)}"


# Headers the bus uses besides NATS's own.
HDR_MSG_ID = "Nats-Msg-Id"
HDR_RESULT_TO = "Towntip-Result-To"  # where a consumer sends the outcome of a device message
HDR_ERROR = "Towntip-Error"
HDR_ERROR_CODE = "Towntip-Error-Code"
HDR_ORIGINAL_SUBJECT = "Towntip-Original-Subject"
HDR_DELIVERIES = "Towntip-Deliveries"
# NATS service-error headers (nats.micro's convention), used for every error reply.
HDR_SERVICE_ERROR = "Nats-Service-Error"
HDR_SERVICE_ERROR_CODE = "Nats-Service-Error-Code"  # numeric (the HTTP-like status), as nats.micro defines it
HDR_REFUSAL_CODE = "Towntip-Refusal-Code"  # the refusal's stable machine-readable code (`theme.requirements_missing`)
