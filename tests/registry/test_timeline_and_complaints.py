from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from contracts import envelope, events
from registry.consumers import subscriptions
from registry.settings import Settings
from servicekit.consumer import BatchApplier, Record
from servicekit.db import make_engine

import factories
from helpers import ADMIN, bearer, sql
from stack_support import admitted_enterprise


def admitted_vehicle(registry: TestClient) -> tuple[str, str]:
    uscc, key = admitted_enterprise(registry)
    vehicle = factories.vehicle(uscc)
    assert registry.post("/v1/vehicles", json=vehicle, headers=bearer(key)).status_code == 201
    return uscc, vehicle["vin"]


def life(uscc: str, vin: str) -> list[envelope.CloudEvent]:
    """A failed inspection, a pass, a rejected then an accepted declaration, the departure."""
    t0 = datetime.now(UTC)

    def inspected(fail: tuple[str, ...], minutes: int) -> envelope.CloudEvent:
        data = factories.vehicle_inspected(
            uscc, vin, fail, inspected_at=t0, first_inspection=bool(fail)
        )
        return envelope.new_event(
            data, source="ucx/inspection", time=t0 + timedelta(minutes=minutes)
        )

    def declared(outcome: str, minutes: int) -> envelope.CloudEvent:
        return envelope.new_event(
            events.VehicleDeclared(
                enterprise_uscc=uscc,
                declaration_no=f"D{minutes}",
                vin=vin,
                broker_id="b",
                outcome=outcome,
                reasons=[] if outcome == "accepted" else ["licence_missing"],
                port_of_loading="CNXMN",
                destination_country="KZ",
                declared_at=t0,
            ),
            source="ucx/customs",
            time=t0 + timedelta(minutes=minutes),
        )

    exported = envelope.new_event(
        events.VehicleExported(
            enterprise_uscc=uscc,
            declaration_no="D40",
            vin=vin,
            bill_of_lading="COSU6312458790",
            vessel_name="COSCO Fortune",
            vessel_imo="9074729",
            port_of_loading="CNXMN",
            departed_at=t0,
        ),
        source="ucx/customs",
        time=t0 + timedelta(minutes=50),
    )
    return [
        inspected(("BRAKES",), 10),
        inspected((), 20),
        declared("rejected", 30),
        declared("accepted", 40),
        exported,
    ]


def test_out_of_order_and_duplicated_events_give_one_ordered_timeline(registry: TestClient) -> None:
    uscc, vin = admitted_vehicle(registry)
    story = life(uscc, vin)
    deliveries = story + story[1:3]
    random.Random(4).shuffle(deliveries)
    settings = Settings(database_url=registry.app.state.settings.database_url)  # type: ignore[attr-defined]
    engine = make_engine(settings.database_url)
    [lifecycle, _assessments] = subscriptions(settings)
    applier = BatchApplier(engine, lifecycle, max_attempts=1)
    for i, event in enumerate(deliveries):  # one at a time: every arrival order is seen
        applier.apply([Record(event.topic, 0, i, uscc.encode(), envelope.encode(event))])
    engine.dispose()
    timeline = registry.get(f"/v1/vehicles/{vin}/timeline").json()
    assert [e["id"] for e in timeline["events"]][1:] == [e.id for e in story]
    assert [e["type"] for e in timeline["events"]] == [
        "vehicle.registered",
        "vehicle.inspected",
        "vehicle.inspected",
        "vehicle.declared",
        "vehicle.declared",
        "vehicle.exported",
    ]
    assert timeline["stage"] == "exported"
    assert "rejected: licence_missing" in timeline["events"][3]["summary"]


def test_a_late_older_event_does_not_move_the_stage_back(registry: TestClient) -> None:
    uscc, vin = admitted_vehicle(registry)
    fail, passed, *_ = life(uscc, vin)
    settings = Settings(database_url=registry.app.state.settings.database_url)  # type: ignore[attr-defined]
    engine = make_engine(settings.database_url)
    applier = BatchApplier(engine, subscriptions(settings)[0], max_attempts=1)
    applier.apply([Record(passed.topic, 0, 0, None, envelope.encode(passed))])
    applier.apply([Record(fail.topic, 0, 1, None, envelope.encode(fail))])
    engine.dispose()
    assert registry.get(f"/v1/vehicles/{vin}").json()["stage"] == "inspected_passed"


def test_complaints_are_filed_resolved_listed_and_emitted(registry: TestClient) -> None:
    uscc, vin = admitted_vehicle(registry)
    url = f"/v1/enterprises/{uscc}/complaints"
    body = {
        "country": "KZ",
        "category": "no_spare_parts",
        "description": "Dealer in Almaty cannot source brake pads for 3 months.",
    }
    assert registry.post(url, json=body).status_code == 401  # admin or regulator only
    r = registry.post(url, json={**body, "vin": vin}, headers=ADMIN)
    assert r.status_code == 422  # the VIN is not (yet) exported
    assert r.json()["errors"][0]["rule"] == "complaint_vin_not_exported"
    filed = registry.post(url, json=body, headers=ADMIN)
    assert filed.status_code == 201
    complaint = filed.json()
    assert complaint["status"] == "open"
    resolved = registry.post(
        f"{url}/{complaint['id']}/resolve",
        headers=ADMIN,
        json={"resolution": "Parts shipped by air on 2026-11-30."},
    )
    assert resolved.json()["status"] == "resolved"
    again = registry.post(
        f"{url}/{complaint['id']}/resolve", headers=ADMIN, json={"resolution": "again"}
    )
    assert again.status_code == 409
    assert [c["id"] for c in registry.get(url).json()] == [complaint["id"]]
    topics = [
        r[0] for r in sql(registry, "SELECT topic FROM outbox WHERE key = :u ORDER BY id", u=uscc)
    ]
    assert topics[-2:] == ["enterprise.complaint-filed.v1", "enterprise.complaint-resolved.v1"]
    bad = registry.post(url, json={**body, "category": "rudeness"}, headers=ADMIN)
    assert bad.status_code == 422
