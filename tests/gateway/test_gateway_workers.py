"""The gateway's worker processes share what must be shared: the throttles' counts (a SQLite file of the data dir)
and the secrets made on first start (the portal key), whichever worker comes first."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gateway.app import create_app
from gateway.portal.session import LoginThrottle, SharedCounts, Throttle
from towntip.kernel.settings import GatewaySettings


def test_workers_counting_in_one_file_let_through_the_limit_once(tmp_path: Path) -> None:
    path = tmp_path / "throttles.sqlite3"
    # eight "workers", each with its own connection, try the same key 40 times at once: five get through in all
    workers = [Throttle(5, 300.0, store=SharedCounts(path), name="contact") for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        allowed = list(pool.map(lambda i: workers[i % 8].allow("10.0.0.1"), range(40)))
    assert sum(allowed) == 5
    assert all(w.full("10.0.0.1") for w in workers)
    # another address and another throttle's name count apart
    assert workers[0].allow("10.0.0.2")
    assert Throttle(5, 300.0, store=SharedCounts(path), name="card-code").allow("10.0.0.1")
    # the window slides: attempts older than it no longer count
    short = [Throttle(1, 0.2, store=SharedCounts(path), name="short") for _ in range(2)]
    assert short[0].allow("k") and not short[1].allow("k")
    time.sleep(0.3)
    assert short[1].allow("k")


def test_the_login_throttle_of_two_workers_counts_together(tmp_path: Path) -> None:
    path = tmp_path / "throttles.sqlite3"
    one, two = (LoginThrottle(3, 300.0, address_failures=4, store=SharedCounts(path)) for _ in range(2))
    assert [one.allow("10.0.0.9", "hanako"), two.allow("10.0.0.9", "hanako"), one.allow("10.0.0.9", "Hanako"),
            two.allow("10.0.0.9", "hanako")] == [True, True, True, False]
    for throttle in (one, two, one, two):  # failures from one address, wherever they were counted
        throttle.failed("10.0.0.9")
    assert not one.allow("10.0.0.9", "taro") and not two.allow("10.0.0.9", "jiro")


def test_one_worker_counts_in_memory_and_several_in_the_data_dir(tmp_path: Path) -> None:
    alone = create_app(GatewaySettings(node_id="testnode", data_dir=str(tmp_path / "a")))
    assert alone.state.throttle_store is None and alone.state.login_throttle.attempts.store is None
    many = create_app(GatewaySettings(node_id="testnode", data_dir=str(tmp_path / "b"), gateway_workers=2))
    assert many.state.throttle_store is not None
    assert many.state.login_throttle.attempts.store is many.state.throttle_store
    assert (tmp_path / "b" / "gateway" / "throttles.sqlite3").exists()


def test_workers_starting_at_once_read_the_same_portal_key(tmp_path: Path) -> None:
    script = ("import sys; from towntip.kernel.secrets import load_or_create_secret; "
              "print(load_or_create_secret(sys.argv[1], 'portal-key'))")
    for attempt in range(5):
        data_dir = tmp_path / f"n{attempt}"
        procs = [subprocess.Popen([sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, text=True)
                 for _ in range(4)]
        keys = {p.communicate(timeout=60)[0].strip() for p in procs}
        assert all(p.returncode == 0 for p in procs)
        assert len(keys) == 1 and keys == {(data_dir / "secrets" / "portal-key").read_text().strip()}
        assert sorted(f.name for f in (data_dir / "secrets").iterdir()) == ["portal-key"]  # no draft left
