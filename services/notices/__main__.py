"""`python -m services.notices`: run one instance of the notices service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import sys

from services.notices.app import NoticesService
from towntip.kernel import runtime

if __name__ == "__main__":
    sys.exit(runtime.serve("notices", NoticesService))
