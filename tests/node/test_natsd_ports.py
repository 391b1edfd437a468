"""A port chosen free can be taken by another process before nats-server binds it (four test workers choosing ports
at once): the start chooses it again, and says nothing of it. A port the caller gave, or one kept from an earlier
start, is never changed: the node's clients were told it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from towntip.node import natsd
from towntip.node.natsd import NatsServer


def test_a_chosen_port_found_taken_is_chosen_again_a_given_one_never(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        real = natsd.free_port
        first = [taken]  # the first port chosen is the taken one, as when another process won the race
        monkeypatch.setattr(natsd, "free_port", lambda: first.pop() if first else real())

        server = NatsServer(node_id="ports", data_dir=tmp_path / "a").start()
        try:
            assert server.port not in (0, taken)
            with socket.create_connection(("127.0.0.1", server.port), timeout=2) as conn:
                assert conn.recv(4) == b"INFO"
            assert b"address already in use" in (tmp_path / "a" / "nats-server.log").read_bytes()
        finally:
            server.stop()

        given = NatsServer(node_id="ports", data_dir=tmp_path / "b", port=taken)
        with pytest.raises(RuntimeError, match="exited"):
            given.start()
        assert given.port == taken


def test_free_port_never_hands_out_one_port_twice_within_its_hold() -> None:
    ports = [natsd.free_port() for _ in range(300)]
    assert len(set(ports)) == 300  # the kernel alone may answer the same free port again once it was closed
    assert all((natsd.PORTS_DIR / str(p)).exists() for p in ports)
