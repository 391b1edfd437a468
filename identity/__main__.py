"""`python -m identity`: run one instance of the identity service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import sys

from identity.app import IdentityService
from towntip.kernel import runtime

if __name__ == "__main__":
    sys.exit(runtime.serve("identity", IdentityService))
