from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import Engine, func, select

from customs import policy
from customs.api import router
from customs.models import Subscription
from customs.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings

ENDPOINTS = Gauge("ucx_webhook_endpoints", "Outbound webhook endpoints by status", ["status"])


def count_endpoints(engine: Engine) -> None:
    with engine.connect() as conn:
        query = select(Subscription.status, func.count()).group_by(Subscription.status)
        counts = {status: n for status, n in conn.execute(query)}
    for status in ("active", "disabled", *counts):
        ENDPOINTS.labels(status).set(counts.get(status, 0))


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    settings = settings or Settings()
    assert isinstance(settings, Settings)
    policy.load(settings.policy_path)  # a missing or invalid policy stops the start
    return create_service_app(
        settings,
        title="ucx customs",
        description="Broker webhooks in and out; declarations behind the export gates.",
        routers=[router],
        gauges=[count_endpoints],
    )
