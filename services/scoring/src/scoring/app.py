from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import Gauge
from sqlalchemy import Engine, func, select

from scoring import ops, policy
from scoring.api import router
from scoring.models import EnterpriseAssessment, LedgerEntry
from scoring.settings import Settings
from servicekit.http import create_service_app
from servicekit.settings import BaseServiceSettings

TIERS = Gauge("ucx_assessments", "Enterprises by assessment tier", ["tier"])
LEDGER = Gauge("ucx_ledger_entries", "Entries in the scoring ledger")


def count_assessments(engine: Engine) -> None:
    tier = EnterpriseAssessment.tier
    with engine.connect() as conn:
        counts = {name: n for name, n in conn.execute(select(tier, func.count()).group_by(tier))}
        LEDGER.set(conn.scalar(select(func.max(LedgerEntry.seq))) or 0)
    for name in ("good", "warning", "suspension", "exit"):
        TIERS.labels(name).set(counts.get(name, 0))


def create_app(settings: BaseServiceSettings | None = None) -> FastAPI:
    settings = settings or Settings()
    assert isinstance(settings, Settings)
    app = create_service_app(
        settings,
        title="ucx scoring",
        description="The dynamic assessment of every export enterprise.",
        routers=[router, ops.router],
        gauges=[count_assessments],
    )
    app.state.policy = policy.load(settings.policy_path)
    return app
