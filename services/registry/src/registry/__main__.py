"""``python -m registry api | relay | replay | worker | migrate`` (servicekit.cli), and
``python -m registry principals create ...`` (registry.principals_cli)."""

from __future__ import annotations

from registry import principals_cli
from registry.app import create_app
from registry.consumers import subscriptions, timers
from registry.settings import Settings
from servicekit.cli import ServiceSpec, run

SPEC = ServiceSpec(
    "registry", Settings, create_app, subscriptions, timers, {"principals": principals_cli.main}
)
run(SPEC, __name__)
