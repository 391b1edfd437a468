"""Node secrets kept in the data dir (admin token, card-hashing key): made once, mode 0600, reused."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create_secret(data_dir: str | Path, name: str, *, nbytes: int = 32, kind: str = "hex") -> str:
    """The secret `name`, made on first use. Several processes may ask at once (the gateway's workers): the value is
    written whole to a file of its own and linked into place, so each of them reads the one that was linked first."""
    path = Path(data_dir) / "secrets" / name
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    value = secrets.token_hex(nbytes) if kind == "hex" else secrets.token_urlsafe(nbytes)
    draft = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    try:
        os.link(draft, path)  # fails if another process linked its value first
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        draft.unlink()
    return value
