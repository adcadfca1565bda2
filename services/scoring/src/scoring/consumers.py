"""The scoring worker: every event about an enterprise into the ledger and its assessment;
the clock's re-evaluation as a timer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import CloudEvent
from scoring import policy as policies
from scoring import rescore as rescoring
from scoring import services
from scoring.settings import Settings
from servicekit.consumer import Subscription, Timer
from servicekit.settings import BaseServiceSettings

SCORED: tuple[type[events.EventData], ...] = (
    events.VehicleRegistered,
    events.VehicleInspected,
    events.CertificateRevoked,
    events.VehicleDeclared,
    events.VehicleExported,
    events.DepartureRefused,
    events.ComplaintFiled,
    events.ComplaintResolved,
    events.EnterpriseStatusChanged,
)
"""The events the ledger keeps: the one list of them (the worker reads exactly these)."""


def subscriptions(settings: BaseServiceSettings) -> list[Subscription]:
    assert isinstance(settings, Settings)
    policy = policies.load(settings.policy_path)

    def after_batch(session: Session, batch: Sequence[CloudEvent]) -> None:
        services.record_batch(session, policy, batch)

    # No handler per event: the consumer parses each one (a dead letter if its data is not
    # what its type promises) and the batch is folded once, in after_batch.
    ledger = Subscription("scoring-ledger", after_batch=after_batch)
    for model in SCORED:
        ledger = ledger.on(model)
    return [ledger]


def timers(settings: BaseServiceSettings) -> list[Timer]:
    """The clock's re-evaluation, and the rescore jobs (run here, not in the api: see
    :mod:`scoring.rescore`); at stop, a job under way is let go after its current chunks."""
    assert isinstance(settings, Settings)
    policy = policies.load(settings.policy_path)
    runner = rescoring.Runner(settings, policy)

    def reevaluate(session: Session) -> None:
        services.reevaluate(session, policy)

    async def rescore(engine: Engine) -> None:
        await asyncio.to_thread(rescoring.run_pending, engine, runner)

    async def stop_rescoring() -> None:
        runner.stopping.set()

    return [
        Timer("scoring-clock", settings.reevaluate_interval_s, run=reevaluate),
        Timer(
            "scoring-rescore", settings.rescore_poll_interval_s, arun=rescore, close=stop_rescoring
        ),
    ]
