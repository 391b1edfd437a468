"""`python -m services.bookings`: run one instance of the bookings service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import sys

from services.bookings.app import BookingsService
from towntip.kernel import runtime

if __name__ == "__main__":
    sys.exit(runtime.serve("bookings", BookingsService))
