from __future__ import annotations

from fastapi import FastAPI

from registry.api import router
from registry.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="ucx registry",
        description="Export enterprises, admission status, vehicles for export.",
        routers=[router],
    )
