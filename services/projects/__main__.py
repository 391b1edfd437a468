"""`python -m services.projects`: run one instance of the projects service (settings from TOWNTIP_* variables)."""

from __future__ import annotations

import sys

from services.projects.app import ProjectsService
from towntip.kernel import runtime

if __name__ == "__main__":
    sys.exit(runtime.serve("projects", ProjectsService))
