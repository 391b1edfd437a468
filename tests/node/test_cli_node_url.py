"""The operator's `towntip` commands talk to the node the operator started: without --nats-url they read the NATS URL
`towntip node up` wrote in its data directory (`secrets/nats-operator-url`; --data-dir, default ./var), and an
explicit --nats-url still wins. Against a real `towntip node up` (real nats-server with its users, real services).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.node.test_supervisor import NODE, finish, start_node
from towntip.cli.points import DEFAULT_NATS_URL, OPERATOR_URL_FILE, operator_nats_url
from towntip.node.natsd import free_port

PW = "correct horse battery"


def towntip(*argv: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from towntip.cli import main; import sys; sys.exit(main())", *argv],
                          input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd)


@pytest.mark.timeout(300)  # a whole node's start on a busy machine
@pytest.mark.xdist_group("whole-node")
async def test_commands_use_the_url_the_node_wrote(tmp_path: Path) -> None:
    node = start_node(tmp_path)  # data dir tmp_path/var, an embedded nats-server that takes only its users
    try:
        await node.wait_health(200, timeout=180)
        await node.wait_running("nats-server", "identity")
        written = node.data_dir / OPERATOR_URL_FILE
        assert written.exists() and "@127.0.0.1:" in written.read_text()

        # --data-dir names the node's directory; no --nats-url
        add = towntip("identity", "user", "add", "--data-dir", str(node.data_dir), "--node", NODE,
                      "--handle", "hanako", "--email", "hanako@example.jp", "--password-stdin",
                      cwd=tmp_path.parent, stdin=PW + "\n")
        assert add.returncode == 0, add.stderr
        assert add.stdout.strip() == f"hanako@{NODE}"

        # the default data dir, ./var, from where the node was started
        ls = towntip("identity", "user", "list", "--node", NODE, "--json", cwd=tmp_path)
        assert ls.returncode == 0, ls.stderr
        assert "hanako" in ls.stdout

        # an explicit --nats-url wins over the data dir's (here: one where nothing listens)
        nowhere = f"nats://127.0.0.1:{free_port()}"
        ls = towntip("identity", "user", "list", "--node", NODE, "--nats-url", nowhere, cwd=tmp_path)
        assert ls.returncode == 1 and f"cannot reach NATS at {nowhere}" in ls.stderr and not ls.stdout
    finally:
        finish(node)


def test_without_a_node_url_the_default_and_clear_errors(tmp_path: Path) -> None:
    assert operator_nats_url(str(tmp_path / "none")) == DEFAULT_NATS_URL
    secrets = tmp_path / "var" / OPERATOR_URL_FILE
    secrets.parent.mkdir(parents=True)

    # a data dir whose URL file holds no URL: exit 2, nothing sent
    secrets.write_text("not a url\n")
    r = towntip("identity", "user", "list", "--node", NODE, cwd=tmp_path)
    assert r.returncode == 2 and "does not hold a NATS URL" in r.stderr and not r.stdout

    # the operator's password is never printed, even when its server is gone
    port = free_port()
    secrets.write_text(f"nats://operator:s3cret-pass@127.0.0.1:{port}\n")
    r = towntip("identity", "user", "list", "--node", NODE, cwd=tmp_path)
    assert r.returncode == 1 and f"operator:***@127.0.0.1:{port}" in r.stderr and "s3cret" not in r.stderr
    r = towntip("points", "balance", "--node", NODE, "--card", "0123456789ABCDEF", cwd=tmp_path)
    assert r.returncode == 1 and f"operator:***@127.0.0.1:{port}" in r.stderr and "s3cret" not in r.stderr


def test_user_add_says_it_needs_an_email(tmp_path: Path) -> None:
    helped = towntip("identity", "user", "add", "--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert "--email ADDR" in helped.stdout and "required" in helped.stdout.split("--email ADDR")[-1]
    r = towntip("identity", "user", "add", "--handle", "hanako", "--password-stdin", cwd=tmp_path, stdin=PW + "\n")
    assert r.returncode == 2 and "required: --email" in r.stderr
