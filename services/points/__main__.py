"""`python -m services.points`: run one instance of the points service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import sys

from services.points.app import PointsService
from towntip.kernel import runtime

if __name__ == "__main__":
    sys.exit(runtime.serve("points", PointsService))
