"""`python -m towntip.kernel.host identity points …`: several services of a node as tasks of one process.

Why: a service process is mostly its imports (Python, SQLAlchemy, pydantic, nats, OpenTelemetry, its own models:
80-105 MB resident each); seven of them beside the gateway and nats-server came to ~900 MB, over the 600 MB a node
on the embedded default may take (issue 21, point 7). Hosted together they share one interpreter and one copy of
those modules. `towntip node up` runs the services this way by default (`--processes grouped`); containers
(compose.yaml, deploy/kubernetes) keep `python -m <service>`, one process per service. The same classes run either
way: each hosted service is built from its own `ServiceSettings` and calls the same `start()` / `stop()`.

What stays apart, so the bus sees exactly what it sees from separate processes:
- each service has its own NATS connection as its own NATS user (its own password, its own inbox prefix): the
  nats-server's permissions of one service are not widened by hosting it beside another; a bug in one service's
  code still cannot publish as another, because the connection it holds can't;
- its own database engine (its own SQLite file, or its own PostgreSQL schema), migrated at its start;
- its own settings: the variables every service shares are read as usual (TOWNTIP_*); what differs between them
  (their NATS URL with its password, their database URL or schema) comes in `TOWNTIP_HOSTED_<SERVICE>_<NAME>`
  (`hosted_env()` writes them, `hosted_settings()` reads them);
- its own spans (`service.name` is the service's, as from its own process) and its own log lines (the service's
  name in each, and its own file with `--log-dir`), told apart by a context variable every task it starts inherits.

What is shared, and what it costs: the event loop and the CPU core (a busy service delays the others' answers; the
gateway keeps its own processes), and the process's life: when one service's background task dies, or a service
fails to start, the host exits 1 and the supervisor restarts the host with all its services (their durable
consumers take up where they stopped; nothing is kept in memory between two lives).

Security and privacy: no new data is kept. The passwords of the hosted services' NATS users are in the host's
environment, as each service's own was in its process's (readable by the same OS user only); a service hosted here
can in principle read another's connection object in memory: hosting is for one operator's own services on one
machine, never for code of different trust.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import importlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from towntip.kernel.runtime import ServiceProcess as Runnable
    from towntip.kernel.service import ServiceProcess
    from towntip.kernel.settings import ServiceSettings

log = logging.getLogger(__name__)

HOSTED_PREFIX = "TOWNTIP_HOSTED_"
# The hosted service a task works for (inherited by every task it starts: its consumers, its endpoints' handlers,
# its NATS client's reader): names its log lines and its spans.
current_service: contextvars.ContextVar[str] = contextvars.ContextVar("towntip_service", default="")


def hosted_env(envs: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """One process's environment for several services, from each service's own (`envs`: service -> environment):
    what all of them share as is, what differs as `TOWNTIP_HOSTED_<SERVICE>_<NAME>` (NAME without TOWNTIP_)."""
    keys = set().union(*(set(e) for e in envs.values())) if envs else set()
    common: dict[str, str] = {}
    hosted: dict[str, str] = {}
    for key in sorted(keys):
        values = {name: env.get(key) for name, env in envs.items()}
        first = next(iter(values.values()))
        if first is not None and all(v == first for v in values.values()):
            common[key] = first
            continue
        if not key.startswith("TOWNTIP_"):
            raise ValueError(f"hosted services must share {key} (only TOWNTIP_* settings may differ)")
        for name, value in values.items():
            if value is not None:
                hosted[f"{HOSTED_PREFIX}{name.upper()}_{key.removeprefix('TOWNTIP_')}"] = value
    return common | hosted


def hosted_settings(name: str, environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """A hosted service's settings: the shared TOWNTIP_* variables, then its own `TOWNTIP_HOSTED_<SERVICE>_*`."""
    from towntip.kernel.settings import ServiceSettings

    env = os.environ if environ is None else environ
    prefix = f"{HOSTED_PREFIX}{name.upper()}_"
    own: dict[str, Any] = {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    own["service"] = name
    return ServiceSettings(**own)


def service_class(module: str, name: str) -> type[ServiceProcess]:
    """The ServiceProcess subclass of `<module>.app` that runs service `name` (imported by name: the kernel knows
    no service's code)."""
    from towntip.kernel.service import ServiceProcess

    app = importlib.import_module(f"{module}.app")
    for value in vars(app).values():
        if (isinstance(value, type) and issubclass(value, ServiceProcess) and value.__module__ == app.__name__
                and value.service == name):
            return value
    raise LookupError(f"{module}.app defines no ServiceProcess for {name!r}")


class ServiceNames(logging.Filter):
    """Puts the hosted service's name on each record (`%(service)s`); with `only`, lets through that one's only."""

    def __init__(self, default: str, only: str = "") -> None:
        super().__init__()
        self.default = default
        self.only = only

    def filter(self, record: logging.LogRecord) -> bool:
        service = current_service.get() or self.default
        record.service = service  # read by %(service)s
        return not self.only or service == self.only


def setup_logging(level: str, names: Sequence[str], host: str, log_dir: str = "", log_format: str = "text") -> None:
    """Each record names its hosted service: in the text line, or as `process` in a JSON one (TOWNTIP_LOG_FORMAT)."""
    from towntip.kernel.telemetry import JsonLogFormatter

    fmt: logging.Formatter = (JsonLogFormatter(host) if log_format == "json" else
                              logging.Formatter("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(level)
    console = logging.StreamHandler()
    console.setFormatter(fmt)
    console.addFilter(ServiceNames(host))
    root.addHandler(console)
    if log_dir:
        for name in names:
            handler = logging.FileHandler(Path(log_dir) / f"{name}.log", encoding="utf-8")
            handler.setFormatter(fmt)
            handler.addFilter(ServiceNames(host, only=name))
            root.addHandler(handler)


async def run_hosted(names: Sequence[str], stop: asyncio.Event) -> int:
    """Start each service in its own task (its own context), run until `stop` or until one fails; stop them all
    together. 0 on a requested stop, 1 when a service failed."""
    from towntip.kernel.bus import subjects
    from towntip.kernel.runtime import settle_heap

    services: list[tuple[str, Runnable]] = []

    async def start(name: str) -> Runnable:
        current_service.set(name)  # this task's own context, copied into every task the service starts
        svc = cast("Runnable", service_class(subjects.SERVICE_MODULES[name], name)(hosted_settings(name)))
        await svc.start()
        log.info("%s started (hosted in pid %d)", name, os.getpid())
        return svc

    async def stop_one(name: str, svc: Runnable) -> None:
        current_service.set(name)
        await svc.stop()

    failed = False
    try:
        for name in names:  # one after another: their migrations and first connections do not race
            services.append((name, await asyncio.ensure_future(start(name))))
        settle_heap()
        waiters = [(name, asyncio.ensure_future(svc.wait_failed())) for name, svc in services]
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({stopped, *(w for _n, w in waiters)}, return_when=asyncio.FIRST_COMPLETED)
        for name, waiter in waiters:
            if waiter.done():
                failed = True
                log.error("%s: a background task died; the host stops, to be restarted", name)
            waiter.cancel()
        stopped.cancel()
    except Exception:
        log.exception("a hosted service did not start; the host stops, to be restarted")
        failed = True
    # All at once, as separate processes stop on one SIGTERM each: the supervisor gives the host 10 s in all.
    results = await asyncio.gather(*(stop_one(name, svc) for name, svc in services), return_exceptions=True)
    for (name, _svc), result in zip(services, results, strict=True):
        if isinstance(result, BaseException):
            log.error("%s did not stop cleanly: %r", name, result)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    from towntip.kernel import runtime
    from towntip.kernel.bus import subjects
    from towntip.kernel.settings import NodeSettings
    from towntip.kernel.telemetry import setup_tracing

    parser = argparse.ArgumentParser(prog="python -m towntip.kernel.host",
                                     description="run several services of a node in one process")
    parser.add_argument("services", nargs="+", choices=subjects.SERVICES)
    parser.add_argument("--name", default="services", help="the host's name in its own log lines")
    parser.add_argument("--log-dir", default="", help="also write each service's log lines to <dir>/<service>.log")
    args = parser.parse_args(argv)
    names = list(dict.fromkeys(args.services))
    node = NodeSettings()
    setup_logging(node.log_level, names, args.name, args.log_dir, node.log_format)

    async def amain() -> int:
        setup_tracing(names, node.trace_export, node_id=node.node_id, current=current_service.get)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        return await run_hosted(names, stop)

    return runtime.run(amain())


if __name__ == "__main__":
    sys.exit(main())
