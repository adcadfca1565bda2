"""The scoring worker: every vehicle event into the ledger and the enterprise's assessment."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from sqlalchemy.orm import Session

from contracts import events
from contracts.envelope import CloudEvent
from scoring import policy as policies
from scoring import services
from scoring.settings import Settings
from servicekit.consumer import Subscription
from servicekit.settings import BaseServiceSettings

TYPES = (
    events.VehicleRegistered.TYPE,
    events.VehicleInspected.TYPE,
    events.VehicleDeclared.TYPE,
    events.VehicleExported.TYPE,
)


def subscriptions(settings: BaseServiceSettings) -> list[Subscription]:
    assert isinstance(settings, Settings)
    policy = policies.load(settings.policy_path)
    record = partial(services.record, policy=policy)

    def handle(session: Session, event: CloudEvent) -> None:
        record(session, event=event)

    def after_batch(session: Session, batch: Sequence[CloudEvent]) -> None:
        services.emit_changes(session, policy, batch)

    return [Subscription("scoring-ledger", dict.fromkeys(TYPES, handle), after_batch)]
