"""`python -m services.sns`: run one instance of the sns service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import sys

from services.sns.app import SnsService
from towntip.kernel import runtime

if __name__ == "__main__":
    sys.exit(runtime.serve("sns", SnsService))
