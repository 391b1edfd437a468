"""`python -m services.signage`: run one instance of the signage service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import sys

from services.signage.app import SignageService
from towntip.kernel import runtime

if __name__ == "__main__":
    sys.exit(runtime.serve("signage", SignageService))
