"""The player's disk cache: content files named by their sha256 and the last manifest (the sync reply) as JSON.

Everything is written to a temporary file, flushed to disk and renamed into place, so a power cut leaves either the
old file or the new one, never half of one; a content file is only ever named by the sha256 of its bytes, checked
before it is renamed. The cache is what the screen plays from while the node is out of reach, for days.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

SHA256 = re.compile(r"[0-9a-f]{64}")


class ContentMismatch(ValueError):
    """Bytes received for an item do not hash to the sha256 the manifest names: they are thrown away."""


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


class Cache:
    """A cache directory: `manifest.json` and `content/<sha256>`."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.content_dir = self.root / "content"
        self.content_dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.root / "manifest.json"

    # --- the manifest --------------------------------------------------------------------------------------
    def load_manifest(self) -> dict[str, Any] | None:
        """The last manifest written, or None (first start, or a file that cannot be read: the node sends anew)."""
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save_manifest(self, manifest: dict[str, Any]) -> None:
        _write_atomically(self.manifest_path, json.dumps(manifest, ensure_ascii=False, sort_keys=True).encode())

    # --- content -------------------------------------------------------------------------------------------
    def path(self, sha256: str) -> Path:
        if not SHA256.fullmatch(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.content_dir / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def put(self, sha256: str, data: bytes) -> Path:
        """Keep `data` as the content `sha256`, after checking that it is; raises ContentMismatch otherwise."""
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise ContentMismatch(f"content {sha256[:12]}… arrived as {actual[:12]}…: discarded")
        path = self.path(sha256)
        _write_atomically(path, data)
        return path

    def incoming(self, sha256: str) -> Incoming:
        """A content file written chunk by chunk (a video need not fit in memory), checked, then renamed in."""
        return Incoming(self.path(sha256))

    def keep_only(self, wanted: set[str]) -> int:
        """Remove content files no manifest item names any more (and stray temporary files); returns how many."""
        removed = 0
        for f in self.content_dir.iterdir():
            if f.name not in wanted:
                f.unlink(missing_ok=True)
                removed += 1
        return removed

    def size(self) -> int:
        """Bytes the cached content takes (the heartbeat's cache_bytes)."""
        return sum(f.stat().st_size for f in self.content_dir.iterdir() if f.is_file())


class Incoming:
    """Chunks of one content file on their way in: hashed as they come, renamed into place only if they match."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._hash = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        self._tmp = Path(tmp)
        self._file = os.fdopen(fd, "wb")
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    def commit(self) -> Path:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        actual = self._hash.hexdigest()
        if actual != self.path.name:
            self._tmp.unlink(missing_ok=True)
            raise ContentMismatch(f"content {self.path.name[:12]}… arrived as {actual[:12]}…: discarded")
        os.replace(self._tmp, self.path)
        return self.path

    def discard(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)
