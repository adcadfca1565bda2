from __future__ import annotations

from fastapi import FastAPI

from registry import policy, principals_api
from registry.api import router
from registry.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    settings = settings or Settings()
    assert isinstance(settings, Settings)
    app = create_service_app(
        settings,
        title="ucx registry",
        description="Export enterprises, admission status, vehicles for export.",
        routers=[router, principals_api.router],
    )
    app.state.directory = principals_api.LocalDirectory(app.state.engine)  # the registry's own
    app.state.policy = policy.load(settings.policy_path)  # once: the hot path reads it
    return app
