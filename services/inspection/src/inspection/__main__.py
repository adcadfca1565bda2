"""``python -m inspection api | relay | replay | worker | migrate`` (servicekit.cli)."""

from __future__ import annotations

from inspection.app import create_app
from inspection.consumers import subscriptions
from inspection.settings import Settings
from servicekit.cli import ServiceSpec, run

SPEC = ServiceSpec("inspection", Settings, create_app, subscriptions)
run(SPEC, __name__)
