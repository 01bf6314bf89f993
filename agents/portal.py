"""The customer portal: compliance, breaches and credits per customer, behind a token.

`add_portal(app, monitor)` adds the portal's pages to the worker's web server.
"""

from __future__ import annotations

from typing import Any

import faust

__all__ = ["add_portal"]


def add_portal(app: faust.App, monitor: Any) -> None:
    """Add the portal's view feeder and pages to `app` (filled in by the portal modules)."""
