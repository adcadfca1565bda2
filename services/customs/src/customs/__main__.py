"""``python -m customs api | relay | replay | worker | migrate`` (servicekit.cli)."""

from __future__ import annotations

from customs.app import create_app
from customs.consumers import subscriptions, timers
from customs.settings import Settings
from servicekit.cli import ServiceSpec, run

SPEC = ServiceSpec("customs", Settings, create_app, subscriptions, timers)
run(SPEC, __name__)
