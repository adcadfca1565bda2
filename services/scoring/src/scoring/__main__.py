"""``python -m scoring api | relay | replay | worker | migrate`` (servicekit.cli)."""

from __future__ import annotations

from scoring.app import create_app
from scoring.consumers import subscriptions, timers
from scoring.settings import Settings
from servicekit.cli import ServiceSpec, run

SPEC = ServiceSpec("scoring", Settings, create_app, subscriptions, timers)
run(SPEC, __name__)
