from __future__ import annotations

from fastapi import FastAPI

from inspection.api import router
from inspection.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="ucx inspection",
        description="Stations post inspections; the service decides and certifies.",
        routers=[router],
    )
