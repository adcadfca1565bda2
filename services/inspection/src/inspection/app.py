from __future__ import annotations

from fastapi import FastAPI

from inspection import policy
from inspection.api import router
from inspection.ratelimit import RateLimiter
from inspection.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    settings = settings or Settings()
    assert isinstance(settings, Settings)
    rules = policy.load(settings.policy_path)  # once, before anything: a bad file stops it
    app = create_service_app(
        settings,
        title="ucx inspection",
        description="Stations post inspections; the service decides and certifies.",
        routers=[router],
    )
    app.state.limiter = RateLimiter(settings.verify_rate_per_minute)
    app.state.policy = rules
    return app
