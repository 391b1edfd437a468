"""The releases a node is upgraded from (deploy/releases.toml): which commit, and its code taken out of git.

A release's code is `git archive <commit>` unpacked into a directory and run with the current virtualenv (its
`PYTHONPATH` and working directory that tree): tests/node/test_rolling_upgrade.py and `bench.cluster --scenario
upgrade` run it beside the current code on one database. A checkout without that commit (a shallow clone, an
unpacked tarball) cannot: `extract` then raises `ReleaseUnavailable` with the reason, which the tests skip with.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RELEASES = ROOT / "deploy" / "releases.toml"
MIGRATION_DIRS = ("identity/migrations/versions", "services/*/migrations/versions")


class ReleaseUnavailable(RuntimeError):
    """The release's commit is not in this checkout (or there is no git): say why, do not guess."""


@dataclass(frozen=True)
class Release:
    key: str  # "previous", "previous_cluster"
    commit: str
    date: str
    cluster: bool  # runs on a NATS cluster (several server URLs, TOWNTIP_STREAM_REPLICAS)

    @property
    def short(self) -> str:
        return self.commit[:7]


def release(key: str = "previous", path: Path = RELEASES) -> Release:
    table = tomllib.loads(path.read_text())[key]
    return Release(key, str(table["commit"]), str(table.get("date", "")), bool(table.get("cluster", False)))


def _git(*args: str, root: Path = ROOT) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=False, timeout=120)
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise ReleaseUnavailable(f"git is not usable here: {exc}") from exc
    if done.returncode != 0:
        raise ReleaseUnavailable(f"git {' '.join(args[:2])}: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def available(rel: Release, root: Path = ROOT) -> str | None:
    """None when the release's commit is in this checkout, else why not (e.g. a shallow clone)."""
    try:
        _git("cat-file", "-e", f"{rel.commit}^{{commit}}", root=root)
    except ReleaseUnavailable as exc:
        shallow = (root / ".git" / "shallow").exists()
        return (f"release {rel.key} ({rel.short}) is not in this checkout"
                f"{' (a shallow clone: fetch with --unshallow)' if shallow else ''}: {exc}")
    return None


def extract(rel: Release, dest: Path, root: Path = ROOT) -> Path:
    """The release's tree under `dest` (made), as `git archive` gives it: code only, no virtualenv, no data."""
    why = available(rel, root)
    if why is not None:
        raise ReleaseUnavailable(why)
    data = _git("archive", "--format=tar", rel.commit, root=root)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def migrations_since(rel: Release, root: Path = ROOT) -> list[Path]:
    """The migration files of the current tree that the release does not have (what an upgrade from it runs)."""
    why = available(rel, root)
    if why is not None:
        raise ReleaseUnavailable(why)
    old = set(_git("ls-tree", "-r", "--name-only", rel.commit, root=root).decode().splitlines())
    return [p for p in migration_files(root) if str(p.relative_to(root)) not in old]


def migration_files(root: Path = ROOT) -> list[Path]:
    """Every service's migration files in the tree under `root`."""
    return sorted(p for pattern in MIGRATION_DIRS for p in root.glob(f"{pattern}/*.py"))
