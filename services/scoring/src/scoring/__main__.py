from __future__ import annotations

import sys
from pathlib import Path

from scoring.app import create_app
from scoring.consumers import subscriptions, timers
from scoring.settings import Settings
from servicekit.cli import ServiceSpec, main

SPEC = ServiceSpec(
    name="scoring",
    settings=Settings,
    create_app=create_app,
    migrations=Path(__file__).resolve().parents[2] / "migrations",
    subscriptions=subscriptions,
    timers=timers,
)

if __name__ == "__main__":
    sys.exit(main(SPEC))
