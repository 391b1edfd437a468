"""The node's log files kept bounded: each child's `<data-dir>/logs/<name>.log` is copied aside and truncated once
it passes LOG_FILE_BYTES, with LOG_FILE_BACKUPS older copies kept (`<name>.log.1` newest ... `.3` oldest).

Copy-then-truncate (logrotate's `copytruncate`) because the children write straight into the file through a
descriptor the supervisor opened for them with O_APPEND (`_popen`): after the truncation their next write lands at
the new end, so nothing has to be reopened or restarted. Lines written between the copy and the truncation (a few
milliseconds once per 10 MB) are lost; that is the price of not piping every log line through the supervisor.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

LOG_FILE_BYTES = 10 * 1024 * 1024
LOG_FILE_BACKUPS = 3
CHECK_EVERY = 30.0  # seconds between the supervisor's looks at the sizes


def trim(path: Path, *, max_bytes: int = LOG_FILE_BYTES, backups: int = LOG_FILE_BACKUPS) -> bool:
    """Rotate `path` if it has reached `max_bytes`; True if it did. At most (backups + 1) files, each about
    `max_bytes` (plus what was written between two looks)."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    if backups > 0:
        for n in range(backups, 1, -1):
            newer = path.with_name(f"{path.name}.{n - 1}")
            if newer.exists():
                os.replace(newer, path.with_name(f"{path.name}.{n}"))
        shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    os.truncate(path, 0)
    return True
