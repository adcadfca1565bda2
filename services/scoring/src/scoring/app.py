from __future__ import annotations

from fastapi import FastAPI

from scoring import policy
from scoring.api import router
from scoring.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    settings = settings or Settings()
    assert isinstance(settings, Settings)
    app = create_service_app(
        settings,
        title="ucx scoring",
        description="The dynamic assessment of every export enterprise.",
        routers=[router],
    )
    app.state.policy = policy.load(settings.policy_path)
    return app
