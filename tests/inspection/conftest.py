"""What inspection's API tests share. ``deliver``, ``registered`` and ``station`` work on the
test module's own ``inspection`` client (each module builds it with the settings it needs)."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import envelope
from inspection.__main__ import SPEC
from servicekit.clock import clock

import factories
from helpers import ADMIN, consume

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
"""The moment the tests that move time start from (a Wednesday morning, 17:30 in Fuzhou)."""


@pytest.fixture
def now() -> Iterator[datetime]:
    """The service's clock stopped at ``NOW`` (tests move it with ``clock.set/advance``)."""
    clock.set(NOW)
    try:
        yield NOW
    finally:
        clock.reset()


@pytest.fixture
def deliver(inspection: TestClient) -> Callable[..., None]:
    """``deliver(*events)``: the events applied as inspection's worker applies a batch."""
    settings = inspection.app.state.settings  # type: ignore[attr-defined]

    def apply(*batch: envelope.CloudEvent) -> None:
        consume(SPEC, settings, *batch)

    return apply


@pytest.fixture
def registered(deliver: Callable[..., None]) -> Callable[..., tuple[str, str]]:
    """``registered(**overrides)``: a new enterprise's vehicle, registered as inspection learns
    of one (the registry's ``vehicle.registered``, delivered); its (USCC, VIN). ``overrides``
    replace fields of :func:`factories.vehicle_registered`."""

    def register(**overrides: Any) -> tuple[str, str]:
        data = factories.vehicle_registered(factories.uscc(), **overrides)
        deliver(envelope.new_event(data, source="ucx/registry"))
        return data.enterprise_uscc, data.vin

    return register


@pytest.fixture
def station(inspection: TestClient) -> Callable[..., dict[str, str]]:
    """``station(**overrides)``: a station the admin created; its id, name, key_id, api_key."""

    def create(**overrides: object) -> dict[str, str]:
        body = {**factories.station(), **overrides}
        r = inspection.post("/v1/stations", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        return dict(r.json())

    return create
