"""``python -m registry api | relay | replay | worker | migrate`` (servicekit.cli)."""

from __future__ import annotations

from registry.app import create_app
from registry.consumers import subscriptions, timers
from registry.settings import Settings
from servicekit.cli import ServiceSpec, run

SPEC = ServiceSpec("registry", Settings, create_app, subscriptions, timers)
run(SPEC, __name__)
