from __future__ import annotations

import sys
from pathlib import Path

from registry.app import create_app
from registry.consumers import subscriptions, timers
from registry.settings import Settings
from servicekit.cli import ServiceSpec, main

SPEC = ServiceSpec(
    name="registry",
    settings=Settings,
    create_app=create_app,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=subscriptions,
    timers=timers,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
