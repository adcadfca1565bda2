from __future__ import annotations

from fastapi import FastAPI

from customs.api import router
from customs.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    return create_service_app(
        settings or Settings(),
        title="ucx customs",
        description="Broker webhooks in and out; declarations behind the export gates.",
        routers=[router],
    )
