"""The portal's one stylesheet (static/towntip.css), read once; its address carries a digest of its content, so
that pages may let browsers keep it for a year and still never show an old one after an upgrade."""

from __future__ import annotations

import hashlib
from pathlib import Path

CSS = (Path(__file__).parent / "static" / "towntip.css").read_bytes()
VERSION = hashlib.sha256(CSS).hexdigest()[:12]
URL = f"/static/towntip.css?v={VERSION}"
