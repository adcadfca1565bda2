"""Issue 13's bypasses of the customs gates, replayed with real signed webhooks against the ASGI
app: each is refused with its documented reason and changes nothing. Time moves with
servicekit's clock, never by rewriting rows."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

from customs_support import (
    Broker,
    Ready,
    deliver,
    departed,
    outbox,
    outbox_topics,
    released,
    revoked,
    status_changed,
)
from fastapi.testclient import TestClient

from customs import domain, services
from customs.consumers import timers
from customs.settings import Settings
from servicekit.clock import clock
from servicekit.db import make_engine, session_factory
from servicekit.idempotency import Answer

import factories
from helpers import ADMIN, sql


def declaration_of(client: TestClient, no: str) -> dict[str, Any]:
    r = client.get(f"/v1/declarations/{no}", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def problem_fields(r: Any) -> list[tuple[str, str]]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return [(e["field"], e["rule"]) for e in r.json()["errors"]]


# -- time is the server's ---------------------------------------------------------------------
def test_declared_at_backdated_to_2025_does_not_skip_the_after_sales_letter(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    young = Ready.of(client, settings, first_registration=clock.today() - timedelta(days=30))
    broker = young.broker
    lodging = young.lodging(declared_at="2025-12-31T10:00:00+08:00")
    r = broker.send("declaration.lodged", lodging, msg_id="msg_backdated_new_year")
    assert problem_fields(r) == [("data.declared_at", "time_out_of_range")]
    retried = broker.send("declaration.lodged", lodging, msg_id="msg_backdated_new_year")
    assert (retried.status_code, retried.json()) == (422, r.json())
    assert retried.headers["webhook-replayed"] == "true"
    assert outbox_topics(settings) == []
    assert (
        client.get(f"/v1/declarations/{lodging['declaration_no']}", headers=ADMIN).status_code
        == 404
    )


def test_the_letter_rule_is_judged_on_the_day_customs_received_the_lodging(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    clock.set(datetime(2026, 1, 1, 0, 20, tzinfo=UTC))
    young = Ready.of(client, settings, first_registration=date(2025, 12, 2))
    # claimed 30 minutes before the rule's first day: a claim within its allowed age is kept
    claimed = "2025-12-31T23:50:00Z"
    lodging = young.lodging(declared_at=claimed)
    r = young.broker.send("declaration.lodged", lodging)
    assert (r.status_code, r.json()["status"]) == (202, "rejected")
    assert r.json()["reasons"] == ["after_sales_letter_missing"]
    [(_topic, event)] = outbox(settings)
    assert event["declared_at"] == claimed
    assert event["received_at"] == "2026-01-01T00:20:00Z"
    assert event["policy_version"] == "v1"
    recorded = declaration_of(client, lodging["declaration_no"])
    assert (recorded["declared_at"], recorded["received_at"], recorded["policy_version"]) == (
        claimed,
        "2026-01-01T00:20:00Z",
        "v1",
    )
    with_letter = young.lodging(declared_at=claimed, after_sales_letter_ref="SVW-AS-2025-12-0417")
    assert young.broker.send("declaration.lodged", with_letter).json()["status"] == "accepted"


def test_a_backdated_declared_at_does_not_bring_an_expired_certificate_back(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    clock.set(datetime(2026, 8, 3, 9, tzinfo=UTC))
    ready = Ready.of(client, settings)  # certificate valid until 2026-11-01
    clock.set(datetime(2026, 11, 2, 0, 30, tzinfo=UTC))
    while_valid = ready.lodging(declared_at="2026-10-20T09:00:00+08:00")
    r = ready.broker.send("declaration.lodged", while_valid)
    assert problem_fields(r) == [("data.declared_at", "time_out_of_range")]
    assert outbox_topics(settings) == []
    an_hour_before = ready.lodging(declared_at="2026-11-01T23:30:00Z")
    r = ready.broker.send("declaration.lodged", an_hour_before)
    assert (r.json()["status"], r.json()["reasons"]) == ("rejected", ["inspection_expired"])
    assert [e["outcome"] for _t, e in outbox(settings)] == ["rejected"]


def test_a_declared_at_in_the_future_beyond_the_skew_is_refused(ready: Ready) -> None:
    skew = ready.settings.clock_skew_s
    later = (clock.now() + timedelta(seconds=skew + 60)).isoformat()
    r = ready.broker.send("declaration.lodged", ready.lodging(declared_at=later))
    assert problem_fields(r) == [("data.declared_at", "time_out_of_range")]
    within = (clock.now() + timedelta(seconds=skew - 60)).isoformat()
    r = ready.broker.send("declaration.lodged", ready.lodging(declared_at=within))
    assert r.json()["status"] == "accepted"


def test_claimed_release_and_departure_times_are_bounded_by_our_own_records(
    ready: Ready,
) -> None:
    client, settings, broker = ready.client, ready.settings, ready.broker
    lodging = ready.lodging()
    no = lodging["declaration_no"]
    broker.send("declaration.lodged", lodging)
    now, skew = clock.now(), timedelta(seconds=settings.clock_skew_s)
    field = "data.released_at"
    future = broker.send("declaration.released", released(no, now + skew + timedelta(minutes=1)))
    assert problem_fields(future) == [(field, "time_out_of_range")]
    before = broker.send("declaration.released", released(no, now - skew - timedelta(minutes=1)))
    assert problem_fields(before) == [(field, "released_before_lodged")]
    assert declaration_of(client, no)["status"] == "accepted"
    assert broker.send("declaration.released", released(no, now)).status_code == 202
    early = now - timedelta(minutes=1)
    r = broker.send("shipment.departed", departed(no, departed_at=early.isoformat()))
    assert problem_fields(r) == [("data.departed_at", "departed_before_released")]
    stale = now - timedelta(days=8)
    r = broker.send("shipment.departed", departed(no, departed_at=stale.isoformat()))
    assert problem_fields(r) == [("data.departed_at", "time_out_of_range")]
    assert declaration_of(client, no)["status"] == "released"
    assert outbox_topics(settings) == ["vehicle.declared.v1"]


# -- one open declaration per VIN -------------------------------------------------------------
def test_a_vin_has_one_open_declaration_withdrawn_and_rejected_ones_do_not_count(
    ready: Ready,
) -> None:
    client, settings, broker = ready.client, ready.settings, ready.broker
    first, second = ready.lodging(), ready.lodging()
    assert broker.send("declaration.lodged", first).json()["status"] == "accepted"
    r = broker.send("declaration.lodged", second)
    assert (r.status_code, r.json()["status"], r.json()["reasons"]) == (
        202,
        "rejected",
        ["declaration_open"],
    )
    details = declaration_of(client, second["declaration_no"])["reason_details"]
    assert details == {"declaration_open": first["declaration_no"]}
    assert [(e["declaration_no"], e["outcome"], e["reasons"]) for _t, e in outbox(settings)] == [
        (first["declaration_no"], "accepted", []),
        (second["declaration_no"], "rejected", ["declaration_open"]),
    ]
    withdrawn = broker.send(
        "declaration.withdrawn",
        {"declaration_no": first["declaration_no"], "reason": "buyer cancelled"},
    )
    assert withdrawn.json()["status"] == "withdrawn"
    ready.lodged_and_released()
    fourth = broker.send("declaration.lodged", ready.lodging()).json()
    assert (fourth["status"], fourth["reasons"]) == ("rejected", ["declaration_open"])


def test_a_pending_declaration_holds_its_vin_too(customs: tuple[TestClient, Settings]) -> None:
    client, _settings = customs
    uscc = factories.uscc()
    broker = Broker(client, [uscc])
    vin = factories.vin()  # its registration and inspection are still on their way
    waiting = factories.declaration(vin, uscc, "EXC-2611-LATE")
    assert broker.send("declaration.lodged", waiting).json()["status"] == "pending"
    again = broker.send("declaration.lodged", factories.declaration(vin, uscc, "EXC-2611-LATE"))
    assert (again.json()["status"], again.json()["reasons"]) == ("rejected", ["declaration_open"])


def test_two_lodgings_of_one_vin_at_the_same_moment_leave_one_open(ready: Ready) -> None:
    """Two connections, the second lodging while the first is not yet committed (two api
    replicas): the second waits (SQLite's write lock; PostgreSQL's open-VIN index), then is
    judged against the committed first and rejected."""
    client, settings, broker = ready.client, ready.settings, ready.broker
    first, second = ready.lodging(), ready.lodging()
    first_body, first_headers = broker.signed("declaration.lodged", first)
    second_body, second_headers = broker.signed("declaration.lodged", second)
    engine = make_engine(settings.database_url)
    sessions = session_factory(engine)
    answers: dict[str, Answer] = {}

    def lodge_second() -> None:
        with sessions() as session, session.begin():
            answers["second"] = services.receive_webhook(
                session, settings, broker.id, second_body, second_headers
            )

    try:
        with sessions() as session:
            session.begin()
            answers["first"] = services.receive_webhook(
                session, settings, broker.id, first_body, first_headers
            )
            racer = threading.Thread(target=lodge_second)
            racer.start()
            racer.join(1.5)
            assert racer.is_alive()  # waiting for the first lodging's transaction
            session.commit()
        racer.join(30)
    finally:
        engine.dispose()
    assert answers["first"].status == answers["second"].status == 202
    assert declaration_of(client, first["declaration_no"])["status"] == "accepted"
    rejected = declaration_of(client, second["declaration_no"])
    assert (rejected["status"], rejected["reasons"]) == ("rejected", ["declaration_open"])
    assert rejected["reason_details"] == {"declaration_open": first["declaration_no"]}
    still_open = "SELECT count(*) FROM declarations WHERE vin = :vin AND status IN ({})"
    statuses = ", ".join(f"'{s}'" for s in domain.OPEN_STATUSES)
    assert sql(client, still_open.format(statuses), vin=ready.vin) == [(1,)]


# -- decided as soon as it is certain ---------------------------------------------------------
def test_a_declaration_sure_to_fail_is_rejected_at_once_not_left_pending(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    suspended, admitted = factories.uscc(), factories.uscc()
    deliver(settings, status_changed(suspended, "suspended"), status_changed(admitted, "admitted"))
    broker = Broker(client, [suspended, admitted])
    unknown_yet = factories.vin()
    r = broker.send("declaration.lodged", factories.declaration(unknown_yet, suspended, "EXC-1"))
    assert (r.json()["status"], r.json()["reasons"]) == (
        "rejected",
        ["enterprise_not_in_good_standing"],
    )
    no_licence = factories.declaration(factories.vin(), admitted, "EXC-2", export_licence_no=None)
    r = broker.send("declaration.lodged", no_licence)
    assert (r.json()["status"], r.json()["reasons"]) == ("rejected", ["licence_missing"])
    assert [e["outcome"] for _t, e in outbox(settings)] == ["rejected", "rejected"]


def waiting(client: TestClient, settings: Settings) -> tuple[str, str]:
    """An admitted enterprise's declaration lodged before its vehicle is known: pending.
    Returns (enterprise, declaration number)."""
    uscc = factories.uscc()
    deliver(settings, status_changed(uscc, "admitted", from_="applied"))
    lodging = factories.declaration(factories.vin(), uscc, "EXC-2611-LATE")
    lodged = Broker(client, [uscc]).send("declaration.lodged", lodging)
    assert lodged.json()["status"] == "pending"
    return uscc, lodging["declaration_no"]


def test_a_suspension_decides_the_enterprises_waiting_declarations_at_once(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    uscc, no = waiting(client, settings)
    deliver(settings, status_changed(uscc, "suspended"))
    decided = declaration_of(client, no)
    assert (decided["status"], decided["reasons"]) == (
        "rejected",
        ["enterprise_not_in_good_standing"],
    )
    assert [e["outcome"] for _t, e in outbox(settings)] == ["rejected"]


def sweep(settings: Settings) -> None:
    """The worker's pending-timeout timer, once, on its own transaction."""
    [timer] = [t for t in timers(settings) if t.name == "customs-pending-timeout"]
    assert timer.run is not None
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session, session.begin():
            timer.run(session)
    finally:
        engine.dispose()


def test_a_declaration_still_waiting_at_the_timeout_is_decided_with_what_is_known(
    customs: tuple[TestClient, Settings],
) -> None:
    client, settings = customs
    _uscc, no = waiting(client, settings)
    clock.advance(timedelta(seconds=settings.pending_timeout_s - 1))
    sweep(settings)
    assert declaration_of(client, no)["status"] == "pending"
    clock.advance(timedelta(seconds=2))
    sweep(settings)
    decided = declaration_of(client, no)
    assert (decided["status"], decided["reasons"]) == (
        "rejected",
        ["vehicle_unknown", "inspection_missing"],
    )
    assert [(e["declaration_no"], e["outcome"]) for _t, e in outbox(settings)] == [(no, "rejected")]
    sweep(settings)  # decided once
    assert len(outbox(settings)) == 1


# -- re-checked at release and departure ------------------------------------------------------
def test_a_suspension_after_acceptance_refuses_release_and_departure(ready: Ready) -> None:
    client, settings, broker = ready.client, ready.settings, ready.broker
    accepted = ready.lodging()
    broker.send("declaration.lodged", accepted)
    to_depart = ready.lodged_and_released(ready.another_vehicle())
    deliver(settings, status_changed(ready.uscc, "suspended"))

    release = broker.send("declaration.released", released(accepted["declaration_no"]))
    assert release.status_code == 409
    assert release.headers["content-type"].startswith("application/problem+json")
    assert release.json()["type"].endswith("enterprise-not-in-good-standing")
    assert (release.json()["step"], release.json()["reasons"]) == (
        "release",
        ["enterprise_not_in_good_standing"],
    )
    departure = broker.send("shipment.departed", departed(to_depart))
    assert departure.status_code == 409
    assert (departure.json()["step"], departure.json()["reasons"]) == (
        "departure",
        ["enterprise_not_in_good_standing"],
    )

    assert declaration_of(client, accepted["declaration_no"])["status"] == "accepted"
    assert declaration_of(client, to_depart)["status"] == "released"
    assert sql(client, "SELECT count(*) FROM known_vehicles WHERE exported") == [(0,)]
    refusals = [e for t, e in outbox(settings) if t == "vehicle.departure-refused.v1"]
    assert [(e["step"], e["reason"], e["reasons"]) for e in refusals] == [
        ("release", "enterprise_not_in_good_standing", ["enterprise_not_in_good_standing"]),
        ("departure", "enterprise_not_in_good_standing", ["enterprise_not_in_good_standing"]),
    ]
    assert "vehicle.exported.v1" not in outbox_topics(settings)
    recorded = sql(client, "SELECT step, reason FROM refused_departures ORDER BY refused_at")
    assert [tuple(row) for row in recorded] == [
        ("release", "enterprise_not_in_good_standing"),
        ("departure", "enterprise_not_in_good_standing"),
    ]


def test_a_certificate_revoked_or_expired_after_acceptance_refuses_departure(
    ready: Ready,
) -> None:
    client, settings, broker = ready.client, ready.settings, ready.broker
    revoked_one = ready.lodged_and_released()
    expiring = ready.lodged_and_released(ready.another_vehicle())
    deliver(settings, revoked(ready.uscc, ready.vin, ready.cert))
    r = broker.send("shipment.departed", departed(revoked_one))
    assert (r.status_code, r.json()["reasons"]) == (409, ["certificate_revoked"])
    clock.advance(timedelta(days=91))  # the 90-day certificate ran out before the ship left
    r = broker.send("shipment.departed", departed(expiring))
    assert (r.status_code, r.json()["reasons"]) == (409, ["inspection_expired"])
    assert "vehicle.exported.v1" not in outbox_topics(settings)
    assert sql(client, "SELECT count(*) FROM known_vehicles WHERE exported") == [(0,)]


# -- bills of lading carry many vehicles ------------------------------------------------------
def test_two_cars_on_one_bill_of_lading_both_depart_and_a_retry_gets_the_first_answer(
    ready: Ready,
) -> None:
    settings, broker = ready.settings, ready.broker
    cars = [(ready.vin, ready.cert), ready.another_vehicle()]
    numbers = [ready.lodged_and_released(car) for car in cars]
    bill = "COSU6312458790"
    first = broker.send("shipment.departed", departed(numbers[0], bill))
    second = broker.send("shipment.departed", departed(numbers[1], bill), msg_id="msg_car_two")
    assert (first.status_code, first.json()["status"]) == (202, "exported")
    assert (second.status_code, second.json()["status"]) == (202, "exported")
    retry = broker.send("shipment.departed", departed(numbers[1], bill), msg_id="msg_car_two")
    assert (retry.status_code, retry.json()) == (202, second.json())
    assert retry.headers["webhook-replayed"] == "true"
    exported = [e for t, e in outbox(settings) if t == "vehicle.exported.v1"]
    assert sorted((e["vin"], e["bill_of_lading"]) for e in exported) == sorted(
        (vin, bill) for vin, _cert in cars
    )
    again = broker.send("shipment.departed", departed(numbers[1], bill))  # a new webhook-id
    assert again.status_code == 409 and again.json()["type"].endswith("already-exported")
